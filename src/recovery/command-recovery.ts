// Commands the broker stored and never delivered, published again. On nats-server 2.9.10 with R3
// streams, a stream leader stopped past the election timeout and resumed can leave the commands
// stream's replicas disagreeing about what is at a sequence: the durable consumer then delivers
// another operation under that sequence, or reports nothing pending while the stream holds more
// (docs/guarantees.md, "Found by this suite" 4). The consumer's own figures never show it, so no
// redelivery or max-deliveries advisory ever comes: without this scan such a command would wait
// forever for an event.
//
// The scan walks the commands stream in fixed ranges of sequences (`rangeCommands`), behind the
// consumer: only sequences the consumer has acknowledged or terminated (at or below its ack floor)
// or, when it is idle (nothing pending, nothing awaiting an ack), everything the stream holds; and
// only commands older than `lagMs`. For each range it reads the commands (an ordered consumer), looks
// up their operations in the ledger (one request per page) and keeps those with no outcome at all:
// not decided in the ledger, no rejected event, no dead-letter claim, no copy published before.
// Each of those is published again, byte for byte with its own headers, under Nats-Msg-Id
// `recover:<sequence>:<digest>` (the digest of its subject and payload: replicas that disagree may
// hand two processes two different commands under one sequence, and a msg id by sequence alone
// made the second copy a "duplicate" of the first, observed on the cluster), then recorded on
// `billing.dlq.recovered.<sequence>.<digest>`, so the next scan does not copy it again while the
// copy waits for a worker. A worker takes the copy and the ledger decides once, as for any
// redelivery. A record `billing.dlq.checked.<firstSequence>` (expected last subject sequence 0)
// says a range is done, so other processes, and this one after a restart, skip it; two processes
// that judge the same range at once publish the same msg ids (stored once inside the duplicate
// window) and, outside it, a copy the ledger answers as a replay.
//
// A record holds the commands stream's leader it was judged under. On the cluster, what a range
// holds was seen to change with the leader (the new leader's store had other commands at some
// sequences, and commands the old one had delivered elsewhere): so when a process sees another
// leader than at its last scan, it walks back `rangesBackMax` ranges again, and a record made under
// another leader no longer counts: the range is judged again and recorded anew. Those ranges (and,
// on a cluster, the ones a process walks back over when it starts) are read from the leader, one
// message get per sequence: ordered consumers were seen served from a replica that disagreed with
// the leader about what a sequence holds. Between leader changes, ranges are read through an
// ordered consumer, at a fraction of the cost.
//
// Cost when nothing is lost: each command is read once more from the stream, one ledger lookup per
// page of commands and one record per range; nothing is published.
import { createHash } from "node:crypto";
import { headers } from "@nats-io/transport-node";
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type StoredMsg,
} from "@nats-io/jetstream";
import type { Transfer } from "tigerbeetle-node";
import { claimSubject } from "../broker/dead-letter.ts";
import { BrokerUnavailableError } from "../broker/errors.ts";
import { copyHeaders } from "../broker/headers.ts";
import { getLastBySubject } from "../broker/last-by-subject.ts";
import { leaderRange, streamRange, type RangeMessage } from "../broker/stream-range.ts";
import type { Chart } from "../domain/accounts.ts";
import { decodeMessage, type DecodeLimits } from "../domain/commands.ts";
import { formatOperationId } from "../domain/ids.ts";
import { decide, lookupIds, type Operation, type Verdict } from "../domain/resolve.ts";
import { checkedRangeSubject, recoveredCommandSubject } from "../dlq/layout.ts";
import {
  COMMAND_RECOVERY_LEADER_GETS_IN_FLIGHT_MAX,
  COMMAND_RECOVERY_PAGE_COMMANDS_MAX,
  LEDGER_EVENTS_MAX,
} from "../config/limits.ts";
import type { Ledger } from "../ledger/port.ts";
import { assert } from "../lib/assert.ts";
import { describeFailure } from "../lib/failure.ts";
import type { Logger } from "../lib/log.ts";
import { runPeriodically } from "../lib/periodic.ts";

export type CommandRecoveryLimits = DecodeLimits & {
  intervalMs: number;
  /** Commands younger than this (broker time) are left to the consumer. */
  lagMs: number;
  /** Sequences per range: the unit of a scan and of its done-record. */
  rangeCommands: number;
  /** Ranges one scan looks at, at most (skipping a done range costs one read). */
  rangesPerScanMax: number;
  /** At the first scan, how many ranges behind the consumer's position the walk starts. */
  rangesBackMax: number;
  holdGraceMs: number;
  publishTimeoutMs: number;
};

export type CommandRecoveryDeps = {
  js: JetStreamClient;
  jsm: JetStreamManager;
  ledger: Ledger;
  chart: Chart;
  log: Logger;
  commandsStream: string;
  consumer: string;
  dlqStream: string;
  eventsStream: string;
  limits: CommandRecoveryLimits;
  /** Called with the number of commands each range published again (the metric). */
  recovered: (count: number) => void;
};

export const recoveredOfHeader = "Billing-Recovered-Of";

/**
 * What the consumer says it is done with (the scan never looks past it), and the commands stream's
 * leader ("" on a single server).
 */
export type ConsumerPosition = {
  ackFloor: number;
  pending: number;
  ackPending: number;
  streamLast: number;
  leader: string;
};

export const checkedLeaderHeader = "Billing-Checked-Leader";

/**
 * The highest sequence the scan may judge: the consumer's ack floor, or, when the consumer is idle,
 * the stream's last sequence (what it holds beyond the consumer was never offered to anyone).
 */
export function horizonOf(p: Omit<ConsumerPosition, "leader">): number {
  return p.pending === 0 && p.ackPending === 0 ? Math.max(p.ackFloor, p.streamLast) : p.ackFloor;
}

/** The range holding `seq`: [first, last], ranges aligned on multiples of `size` (1-based). */
export function rangeOf(seq: number, size: number): { first: number; last: number } {
  const first = Math.floor((seq - 1) / size) * size + 1;
  return { first, last: first + size - 1 };
}

/** What one stored command needs: nothing (it has an outcome), a look at the broker, or a copy. */
export type Standing =
  | { kind: "decided" }
  /** Settled if one of these subjects holds a message (events: a rejection; dead letters: claims). */
  | { kind: "check"; eventSubjects: string[]; dlqSubjects: string[] };

/** How many of a page's commands (stored in sequence order) are older than `lagMs`: those are judged now. */
export function oldEnough(
  page: ReadonlyArray<Pick<RangeMessage, "storedAtMs">>,
  nowMs: number,
  lagMs: number,
): number {
  const young = page.findIndex((m) => m.storedAtMs > nowMs - lagMs);
  return young < 0 ? page.length : young;
}

/** Every reason a command may have been dead-lettered for, whatever its decoding says now. */
const CLAIM_REASONS = ["conflict", "max_deliveries", "malformed"] as const;

/**
 * Pure: a command's standing from its decoding and the ledger's verdict on its operation. A decided
 * operation (applied or rejected) with this content has its event, or event recovery rebuilds it
 * from the ledger. Any other may have been answered without a ledger record: by a dead letter of
 * any reason (a conflict, too, can show only when the worker's create meets an id another
 * operation holds: lookups alone see nothing recorded), or, with an operation id, a rejected event.
 */
export function standingOf(
  m: Pick<RangeMessage, "seq">,
  operationId: bigint | null,
  verdict: Verdict | undefined,
  sameContent: boolean,
): Standing {
  const decided = verdict?.kind === "applied" || verdict?.kind === "rejected";
  if (operationId !== null && decided && sameContent) return { kind: "decided" };
  const dlqSubjects = CLAIM_REASONS.map((reason) => claimSubject(reason, m.seq));
  const rejectable = operationId !== null && !decided && verdict?.kind !== "conflict";
  const eventSubjects = rejectable
    ? [`billing.evt.rejected.${formatOperationId(operationId)}`]
    : [];
  return { kind: "check", eventSubjects, dlqSubjects };
}

export class CommandRecovery {
  /** The first sequence of the next range to look at; null before the first scan. */
  private next: number | null = null;
  /** Within the range at `next`, every sequence up to this one was judged already (an idle stream's tail, read again each scan otherwise). */
  private judgedTo = 0;
  /** The commands stream's leader at the last scan; null before the first. */
  private leader: string | null = null;
  /** Ranges starting at or below this sequence are read from the leader (see the header). */
  private leaderReadsThrough = 0;

  constructor(private readonly deps: CommandRecoveryDeps) {
    const l = deps.limits;
    assert(
      Number.isSafeInteger(l.rangeCommands) && l.rangeCommands > 0,
      "command recovery: rangeCommands > 0",
    );
    assert(l.rangesPerScanMax > 0 && l.rangesBackMax >= 0, "command recovery: range limits");
  }

  /** One scan: at most rangesPerScanMax ranges from where the last one stopped; answers commands published again. */
  async scan(): Promise<number> {
    const { limits } = this.deps;
    const position = await this.position();
    const horizon = horizonOf(position);
    // A stream shorter than where the walk is (deleted and created again: sequences start over), or
    // a new leader, whose store may differ from what earlier scans read: walk back.
    const newLeader = this.leader !== null && this.leader !== position.leader;
    if (newLeader)
      this.deps.log.info(
        { from: this.leader, to: position.leader },
        "commands stream has a new leader; checking the recent ranges again",
      );
    if (newLeader || (this.next !== null && position.streamLast + 1 < this.next)) {
      this.next = null;
      this.judgedTo = 0;
    }
    // On a cluster: what this process walks back over after a new leader, or when it starts.
    if ((newLeader || this.leader === null) && position.leader !== "")
      this.leaderReadsThrough = position.streamLast;
    this.leader = position.leader;
    if (this.next === null)
      this.next = rangeOf(
        Math.max(1, horizon - limits.rangesBackMax * limits.rangeCommands),
        limits.rangeCommands,
      ).first;
    let published = 0;
    for (let n = 0; n < limits.rangesPerScanMax && this.next <= horizon; n += 1) {
      const range = rangeOf(this.next, limits.rangeCommands);
      const whole = range.last <= horizon;
      const record = whole ? await this.recordOf(range.first) : null;
      if (record !== null && (record.header?.get(checkedLeaderHeader) ?? "") === position.leader) {
        this.next = range.last + 1;
        continue;
      }
      const from = Math.max(range.first, this.judgedTo + 1);
      const outcome = await this.reconcile(
        from,
        Math.min(range.last, horizon),
        range.first <= this.leaderReadsThrough,
      );
      published += outcome.published;
      this.judgedTo = Math.max(this.judgedTo, outcome.judgedTo);
      // A range is done once every sequence in it is behind the consumer and old enough; the tail
      // of an idle stream is looked at again next time (new commands may join its range).
      if (!whole || outcome.young) break;
      await this.writeRecord(
        range.first,
        range.last,
        outcome.published,
        position.leader,
        record?.seq ?? 0,
      );
      this.next = range.last + 1;
    }
    return published;
  }

  private async position(): Promise<ConsumerPosition> {
    const { jsm, commandsStream, consumer } = this.deps;
    try {
      const [c, s] = await Promise.all([
        jsm.consumers.info(commandsStream, consumer),
        jsm.streams.info(commandsStream),
      ]);
      return {
        ackFloor: c.ack_floor.stream_seq,
        pending: c.num_pending,
        ackPending: c.num_ack_pending,
        streamLast: s.state.last_seq,
        leader: s.cluster?.leader ?? "",
      };
    } catch (err) {
      throw new BrokerUnavailableError(
        `position of consumer ${consumer} on ${commandsStream}: ${describeFailure(err)}`,
        { cause: err },
      );
    }
  }

  /**
   * Commands [first, last] without an outcome, published again; `young`: the scan reached commands
   * younger than lagMs; `judgedTo`: every sequence up to it was judged.
   */
  private async reconcile(
    first: number,
    last: number,
    fromLeader: boolean,
  ): Promise<{ published: number; young: boolean; judgedTo: number }> {
    const { js, jsm, commandsStream } = this.deps;
    let published = 0;
    const pages = fromLeader
      ? leaderRange(
          jsm,
          commandsStream,
          first,
          last,
          COMMAND_RECOVERY_PAGE_COMMANDS_MAX,
          COMMAND_RECOVERY_LEADER_GETS_IN_FLIGHT_MAX,
        )
      : streamRange(js, commandsStream, first, last, COMMAND_RECOVERY_PAGE_COMMANDS_MAX);
    for await (const page of pages) {
      const outcome = await this.reconcilePage(page);
      published += outcome.published;
      if (outcome.young !== null) return { published, young: true, judgedTo: outcome.young - 1 };
    }
    return { published, young: false, judgedTo: last };
  }

  /** `young`: the sequence of the first command younger than lagMs (the page is judged up to it), or null. */
  private async reconcilePage(
    page: ReadonlyArray<RangeMessage>,
  ): Promise<{ published: number; young: number | null }> {
    const { chart, ledger, limits } = this.deps;
    const nowMs = Date.now();
    const judged = page.slice(0, oldEnough(page, nowMs, limits.lagMs));
    const young = judged.length < page.length ? (page[judged.length] as RangeMessage).seq : null;
    const decoded = judged.map((m) => decodeMessage(m.subject, m.data, chart, limits));
    const leaders = new Map<bigint, Operation>();
    decoded.forEach((d, i) => {
      if (d.kind !== "malformed" && !leaders.has(d.operationId))
        leaders.set(d.operationId, {
          id: d.operationId,
          decoded: d,
          publishedAtMs: (judged[i] as RangeMessage).storedAtMs,
        });
    });
    const ops = [...leaders.values()];
    if (judged.length === 0) return { published: 0, young };
    const ids = lookupIds(chart, ops);
    assert(
      ids.length <= LEDGER_EVENTS_MAX,
      "command recovery: one page's lookups fit one ledger request",
    );
    const found = new Map<bigint, Transfer>();
    if (ids.length > 0) for (const t of await ledger.lookupTransfers(ids)) found.set(t.id, t);
    const { verdicts } = decide(chart, ops, found, { nowMs, holdGraceMs: limits.holdGraceMs });
    let published = 0;
    for (const [i, m] of judged.entries()) {
      const d = decoded[i];
      assert(d !== undefined, "command recovery: one decoding per message");
      const id = d.kind === "malformed" ? null : d.operationId;
      const leader = id === null ? undefined : leaders.get(id);
      const sameContent =
        d.kind === "malformed" ||
        leader === undefined ||
        leader.decoded.fingerprint === d.fingerprint;
      const standing = standingOf(m, id, id === null ? undefined : verdicts.get(id), sameContent);
      if (standing.kind === "decided") continue;
      const digest = digestOf(m);
      if (await this.answered(standing, recoveredCommandSubject(m.seq, digest))) continue;
      await this.publishAgain(m, id, digest);
      published += 1;
    }
    return { published, young };
  }

  /**
   * Whether one of the subjects holds a message: the command was answered without a ledger record,
   * or its copy was published already (`copied`).
   */
  private async answered(
    check: Extract<Standing, { kind: "check" }>,
    copied: string,
  ): Promise<boolean> {
    const { jsm, eventsStream, dlqStream } = this.deps;
    for (const subject of check.eventSubjects)
      if ((await getLastBySubject(jsm, eventsStream, subject)) !== null) return true;
    for (const subject of [...check.dlqSubjects, copied])
      if ((await getLastBySubject(jsm, dlqStream, subject)) !== null) return true;
    return false;
  }

  /** The copy, then its record (a crash between the two costs one more copy next scan, a replay). */
  private async publishAgain(
    m: RangeMessage,
    operationId: bigint | null,
    digest: string,
  ): Promise<void> {
    const { js, log, limits } = this.deps;
    const h = copyHeaders(m.headers, [recoveredOfHeader]);
    h.set(recoveredOfHeader, String(m.seq));
    let copy: number;
    try {
      copy = (
        await js.publish(m.subject, m.data, {
          msgID: `recover:${m.seq}:${digest}`,
          headers: h,
          timeout: limits.publishTimeoutMs,
          retries: 1,
        })
      ).seq;
    } catch (err) {
      throw new BrokerUnavailableError(
        `command #${m.seq} published again: ${describeFailure(err)}`,
        { cause: err },
      );
    }
    const record = headers();
    record.set(recoveredOfHeader, String(m.seq));
    record.set("Billing-Copy-Sequence", String(copy));
    await this.writeOnce(
      recoveredCommandSubject(m.seq, digest),
      record,
      `record of command #${m.seq} published again`,
    );
    this.deps.recovered(1);
    // Loud: a command the broker stored and the consumer never handed to a worker is a broker fault.
    log.warn(
      {
        seq: m.seq,
        subject: m.subject,
        operationId: operationId === null ? undefined : formatOperationId(operationId),
        storedAtMs: m.storedAtMs,
      },
      "command stored but never answered (no decision, event or dead letter) published again",
    );
  }

  private async recordOf(first: number): Promise<StoredMsg | null> {
    return getLastBySubject(this.deps.jsm, this.deps.dlqStream, checkedRangeSubject(first));
  }

  /** `replaces`: the stream sequence of the record made under another leader (0: none). */
  private async writeRecord(
    first: number,
    last: number,
    published: number,
    leader: string,
    replaces: number,
  ): Promise<void> {
    const h = headers();
    h.set("Billing-Range-Last", String(last));
    h.set("Billing-Published-Again", String(published));
    h.set(checkedLeaderHeader, leader);
    await this.writeOnce(
      checkedRangeSubject(first),
      h,
      `record of commands #${first}-#${last} checked`,
      replaces,
    );
  }

  /**
   * A headers-only record on a subject of its own, written once: expecting the subject's last
   * sequence to be `after` (0: empty), so of two processes writing at once one stores it.
   */
  private async writeOnce(
    subject: string,
    h: ReturnType<typeof headers>,
    what: string,
    after = 0,
  ): Promise<void> {
    try {
      await this.deps.js.publish(subject, new Uint8Array(0), {
        expect: { lastSubjectSequence: after },
        headers: h,
        timeout: this.deps.limits.publishTimeoutMs,
        retries: 1,
      });
    } catch (err) {
      if (
        err instanceof JetStreamApiError &&
        err.code === JetStreamApiCodes.StreamWrongLastSequence
      )
        return; // another process wrote it first
      throw new BrokerUnavailableError(`${what}: ${describeFailure(err)}`, { cause: err });
    }
  }

  /** Scans every intervalMs until stopped; a failed scan is logged and retried next interval. */
  start(): { stop(): Promise<void> } {
    return runPeriodically({
      where: "the command recovery",
      what: "command recovery scan",
      intervalMs: this.deps.limits.intervalMs,
      log: this.deps.log,
      run: async () => void (await this.scan()),
    });
  }
}

/** Hex of the first 64 bits of SHA-256 over subject and payload: which command a copy is of. */
export function digestOf(m: Pick<RangeMessage, "subject" | "data">): string {
  return createHash("sha256")
    .update(m.subject)
    .update("\n")
    .update(m.data)
    .digest("hex")
    .slice(0, 16);
}
