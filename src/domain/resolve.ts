// Exactly-once, decided in the ledger. A batch of operations is resolved in passes; each pass is
//   lookup(ids)  →  decide()  →  createTransfers(plans)  →  verdictsOfPlans()  →  createTransfers(markers)  →  verdictsOfMarkers()
// and every function here is pure: the worker does the I/O in between.
//
// What the ledger holds under an operation id decides everything:
//   - a transfer with the same fingerprint: applied before, replay its event;
//   - a marker with the same fingerprint: rejected before, replay the rejection;
//   - anything with another fingerprint: a conflict (dead letter, no second event);
//   - nothing, but a marker under the burned-marker id: the id was burned by a transient failure;
//   - nothing at all: new, submit its plan.
// Races between workers show up as `exists*` results and are resolved by the next pass's lookup.
import type { CreateTransferResult, Transfer } from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";
import type { Chart } from "./accounts.ts";
import { commandOf, type Command, type Decoded } from "./commands.ts";
import { isHold, isMarker, isOwn, markerTransfer, planTransfers, type HoldFacts } from "./plan.ts";
import { CreateTransferStatus as S, transferStatusName } from "./ledger-codes.ts";
import {
  BURN_REASON,
  burnsId,
  REASON_DETAIL,
  reasonOfMarkerCode,
  reasonOfStatus,
  type Reason,
} from "./reasons.ts";

export type Operation = {
  id: bigint;
  decoded: Extract<Decoded, { kind: "command" | "rejected" }>;
  /** When the broker stored the command (ms since the epoch): the hold grace period counts from it. */
  publishedAtMs: number;
};

export type Verdict =
  /**
   * `ledger`, on a replay: the ledger the operation was applied on. A command without a currency
   * took the default of its first decision, which need not be today's, so its event's currency
   * and the accounts whose balances it shows come from the record. Absent: the command's own.
   */
  | {
      kind: "applied";
      replay: boolean;
      timestamps: bigint[];
      hold: HoldFacts | null;
      ledger?: number;
    }
  | { kind: "rejected"; replay: boolean; reason: Reason; detail: string }
  | { kind: "conflict"; detail: string }
  /** Not decidable yet (a capture before its hold): nak with a delay. */
  | { kind: "wait"; detail: string };

export type Plan = { op: Operation; transfers: Transfer[]; hold: HoldFacts | null };
export type MarkerPlan = {
  op: Operation;
  transfer: Transfer;
  reason: Reason;
  detail: string;
  burned: boolean;
};

/** `retry`: operations to decide in the next pass (a capture of a hold planned in this one). */
export type Decision = {
  verdicts: Map<bigint, Verdict>;
  plans: Plan[];
  markers: MarkerPlan[];
  retry: Operation[];
};

export type Clock = { nowMs: number; holdGraceMs: number };

/** Every id the pass must look up for these operations. */
export function lookupIds(chart: Chart, ops: ReadonlyArray<Operation>): bigint[] {
  const { space } = chart;
  const ids: bigint[] = [];
  for (const op of ops) {
    ids.push(...space.operationLookupIds(op.id));
    // A command a limit rejects still looks its hold up: it may have been applied under a larger one.
    const c = commandOf(op.decoded);
    if (c && (c.type === "capture" || c.type === "release"))
      ids.push(c.holdId, space.burnedMarkerId(c.holdId));
  }
  return ids;
}

function holdFacts(t: Transfer): HoldFacts {
  return { id: t.id, debitAccountId: t.debit_account_id, amount: t.amount, ledger: t.ledger };
}

function fingerprintOf(op: Operation): bigint {
  return op.decoded.fingerprint;
}

function rejection(
  chart: Chart,
  op: Operation,
  id: bigint,
  reason: Reason,
  detail: string,
  burned: boolean,
): MarkerPlan {
  return {
    op,
    transfer: markerTransfer(chart, id, op.decoded.type, reason, fingerprintOf(op)),
    reason,
    detail,
    burned,
  };
}

/** What the ledger already says about an operation, or null when it says nothing. */
/**
 * What the ledger already says about an operation, or null when it says nothing. Everything found
 * here may have been shaped by a publisher (it chose the id), so nothing unexpected is asserted:
 * a record that is not what this deployment would have written is a conflict, named.
 */
function recorded(
  chart: Chart,
  op: Operation,
  found: ReadonlyMap<bigint, Transfer>,
): Verdict | null {
  const own = found.get(op.id);
  const burned = found.get(chart.space.burnedMarkerId(op.id));
  const record = own ?? burned;
  if (!record) return null;
  if (!isOwn(chart, record)) {
    return {
      kind: "conflict",
      detail: `operationId is taken in the ledger by a transfer of another deployment (user_data_64 ${record.user_data_64})`,
    };
  }
  if (record.user_data_128 !== fingerprintOf(op)) {
    return {
      kind: "conflict",
      detail: `operationId ${own ? "was already used" : "was burned"} by a command with different content`,
    };
  }
  if (isMarker(chart, record)) {
    const reason = reasonOfMarkerCode(record.code);
    if (reason === undefined)
      return {
        kind: "conflict",
        detail: `operationId holds a marker with unknown code ${record.code}`,
      };
    return { kind: "rejected", replay: true, reason, detail: detailOf(op, reason) };
  }
  if (own === undefined)
    return {
      kind: "conflict",
      detail: "the operation's burned-marker id holds a transfer that is not a marker",
    };
  const timestamps = [own.timestamp];
  const fee = found.get(chart.space.feeLegId(op.id));
  if (fee) timestamps.push(fee.timestamp);
  const c = commandOf(op.decoded);
  const holdId = c && (c.type === "capture" || c.type === "release") ? c.holdId : null;
  const hold = holdId === null ? null : found.get(holdId);
  if (holdId !== null && hold === undefined)
    return {
      kind: "conflict",
      detail: "operationId holds a capture or release whose hold is not in the ledger",
    };
  return {
    kind: "applied",
    replay: true,
    timestamps,
    hold: hold ? holdFacts(hold) : null,
    ledger: own.ledger,
  };
}

function detailOf(op: Operation, reason: Reason): string {
  return op.decoded.kind === "rejected" && op.decoded.reason === reason
    ? op.decoded.detail
    : REASON_DETAIL[reason];
}

/** Decides each open operation from the lookup: a verdict now, a plan to submit, or a marker to write. */
export function decide(
  chart: Chart,
  ops: ReadonlyArray<Operation>,
  found: ReadonlyMap<bigint, Transfer>,
  clock: Clock,
): Decision {
  const decision: Decision = { verdicts: new Map(), plans: [], markers: [], retry: [] };
  const heldHere = new Map<bigint, HoldFacts>();
  const captures: Array<{
    op: Operation;
    fingerprint: bigint;
    command: Extract<Command, { type: "capture" | "release" }>;
  }> = [];
  for (const op of ops) {
    const verdict = recorded(chart, op, found);
    if (verdict) {
      decision.verdicts.set(op.id, verdict);
      continue;
    }
    const d = op.decoded;
    if (d.kind === "rejected") {
      decision.markers.push(rejection(chart, op, op.id, d.reason, d.detail, false));
    } else if (d.command.type === "capture" || d.command.type === "release") {
      captures.push({ op, fingerprint: d.fingerprint, command: d.command });
    } else {
      const transfers = planTransfers(chart, d.command, d.fingerprint, null);
      if (d.command.type === "hold")
        heldHere.set(d.command.operationId, holdFacts(transfers[0] as Transfer));
      decision.plans.push({ op, transfers, hold: null });
    }
  }
  for (const { op, fingerprint, command } of captures) {
    // A hold rejected with a burned id left only its burned marker: decided, so no need to wait.
    const stored =
      found.get(command.holdId) ?? found.get(chart.space.burnedMarkerId(command.holdId));
    if (!stored && heldHere.has(command.holdId)) {
      // Its hold is planned in this pass. Never post against a hold this worker has not seen stored:
      // another worker may store different content under that id first, and a post for less than
      // the pending amount would be accepted. Decide it next pass, from the stored hold.
      decision.retry.push(op);
      continue;
    }
    const hold = stored && isHold(chart, stored) ? holdFacts(stored) : null;
    if (hold) {
      decision.plans.push({
        op,
        transfers: planTransfers(chart, command, fingerprint, hold),
        hold,
      });
    } else if (stored || clock.nowMs - op.publishedAtMs >= clock.holdGraceMs) {
      // Not a hold at all, or still absent after the grace period: final, recorded like any rejection.
      decision.markers.push(
        rejection(chart, op, op.id, "hold_not_found", REASON_DETAIL.hold_not_found, false),
      );
    } else {
      decision.verdicts.set(op.id, { kind: "wait", detail: "the hold is not in the ledger yet" });
    }
  }
  return decision;
}

/** Transfers of the plans in submission order, one request. */
export function planRequest(plans: ReadonlyArray<Plan>): Transfer[] {
  return plans.flatMap((p) => p.transfers);
}

export type ResultVerdicts = {
  verdicts: Map<bigint, Verdict>;
  markers: MarkerPlan[];
  retry: Operation[];
};

/** Reads the results of the plans' request: applied, a rejection to record, or another pass. */
export function verdictsOfPlans(
  chart: Chart,
  plans: ReadonlyArray<Plan>,
  results: ReadonlyArray<CreateTransferResult>,
): ResultVerdicts {
  const out: ResultVerdicts = { verdicts: new Map(), markers: [], retry: [] };
  assert(results.length === planRequest(plans).length, "one result per planned transfer");
  let at = 0;
  for (const plan of plans) {
    const legs = results.slice(at, at + plan.transfers.length);
    at += plan.transfers.length;
    verdictOfPlan(chart, plan, legs, out);
  }
  return out;
}

function verdictOfPlan(
  chart: Chart,
  plan: Plan,
  legs: ReadonlyArray<CreateTransferResult>,
  out: ResultVerdicts,
): void {
  const { op } = plan;
  const main = legs[0];
  assert(main !== undefined, "a plan has a first leg");
  if (legs.every(isCreated)) {
    // A loop, not legs.map: map's result is a holey array once V8 optimizes this function and a
    // packed one before, so its readers (applied-facts) saw two array maps and were deoptimized.
    const timestamps: bigint[] = [];
    for (const l of legs) timestamps.push(l.timestamp);
    out.verdicts.set(op.id, { kind: "applied", replay: false, timestamps, hold: plan.hold });
    return;
  }
  const type = op.decoded.type;
  if (main.status === S.id_already_failed && BURN_REASON[type] === null) {
    // This command type never fails transiently, so a different command burned the id.
    out.verdicts.set(op.id, {
      kind: "conflict",
      detail: "operationId was burned by a command with different content",
    });
    return;
  }
  if (main.status === S.id_already_failed || burnsId(main.status)) {
    // The operation id is burned: record the rejection under the derived id, with its fingerprint.
    const reason =
      main.status === S.id_already_failed ? BURN_REASON[type] : reasonOfStatus(main.status);
    assert(
      reason !== undefined && reason !== null,
      `${type} burned by ${transferStatusName(main.status)}`,
    );
    out.markers.push(
      rejection(chart, op, chart.space.burnedMarkerId(op.id), reason, REASON_DETAIL[reason], true),
    );
    return;
  }
  if (main.status === S.exists || isExistsWithDifferent(main.status)) {
    out.retry.push(op); // Applied or recorded by another worker meanwhile: the next lookup decides.
    return;
  }
  const index =
    main.status === S.linked_event_failed
      ? legs.findIndex((l) => l.status !== S.linked_event_failed)
      : 0;
  const failed = legs[index];
  assert(failed !== undefined, "a broken chain has a failing leg");
  // The fee leg's own id is burned when it fails transiently; the operation id stays free.
  const reason =
    failed.status === S.id_already_failed ? BURN_REASON[type] : reasonOfStatus(failed.status);
  if (reason === undefined || reason === null) {
    // A status no plan of ours can cause by itself: the ledger holds something under one of the
    // operation's ids that this deployment did not plan (a derived id taken, a foreign transfer).
    // The command cannot be carried out as sent; it is answered, never asserted on.
    out.verdicts.set(op.id, {
      kind: "conflict",
      detail: `the ledger refused leg ${index + 1} of ${legs.length} with ${transferStatusName(failed.status) ?? failed.status}`,
    });
    return;
  }
  out.markers.push(rejection(chart, op, op.id, reason, REASON_DETAIL[reason], false));
}

function isCreated(leg: CreateTransferResult): boolean {
  return leg.status === S.created;
}

function isExistsWithDifferent(status: number): boolean {
  return (transferStatusName(status) ?? "").startsWith("exists_with_different_");
}

/**
 * Reads the results of the markers' request. A marker under the operation id can find the id burned
 * (a crash after a transient failure, before its marker): the rejection then moves to the
 * burned-marker id, with the reason a burn of this command type means, in the next request.
 */
export function verdictsOfMarkers(
  chart: Chart,
  markers: ReadonlyArray<MarkerPlan>,
  results: ReadonlyArray<CreateTransferResult>,
): ResultVerdicts {
  const out: ResultVerdicts = { verdicts: new Map(), markers: [], retry: [] };
  assert(results.length === markers.length, "one result per marker");
  markers.forEach((m, i) => {
    const status = (results[i] as CreateTransferResult).status;
    const burnReason = BURN_REASON[m.op.decoded.type];
    if (status === S.created || status === S.exists) {
      out.verdicts.set(m.op.id, {
        kind: "rejected",
        replay: status === S.exists,
        reason: m.reason,
        detail: m.detail,
      });
    } else if (
      status === S.id_already_failed &&
      !m.burned &&
      (m.op.decoded.kind === "rejected" || burnReason === null)
    ) {
      // Rejected before the ledger, or a type that never burns: only a different command burned it.
      out.verdicts.set(m.op.id, {
        kind: "conflict",
        detail: "operationId was burned by a command with different content",
      });
    } else if (status === S.id_already_failed && !m.burned && burnReason !== null) {
      out.markers.push(
        rejection(
          chart,
          m.op,
          chart.space.burnedMarkerId(m.op.id),
          burnReason,
          REASON_DETAIL[burnReason],
          true,
        ),
      );
    } else if (isExistsWithDifferent(status)) {
      out.retry.push(m.op); // Recorded by another worker meanwhile: the next lookup decides.
    } else {
      // Our own marker refused for a reason no marker of ours can cause: answered, never asserted on.
      out.verdicts.set(m.op.id, {
        kind: "conflict",
        detail: `the ledger refused the rejection marker with ${transferStatusName(status) ?? status}`,
      });
    }
  });
  return out;
}
