// Conformance cases as data, and the runner that plays one against a ledger. The JSON fixture
// (fixtures/tigerbeetle-cases.json) and our own spec cases (spec-cases.ts) share this form.
import fs from "node:fs";
import { expect } from "vitest";
import {
  CreateAccountStatus,
  CreateTransferStatus,
  type Account,
  type AccountFilter,
  type QueryFilter,
  type Transfer,
} from "tigerbeetle-node";
import type { LedgerUnderTest } from "./drivers.ts";

type Wire<T> = { [K in keyof T]: T[K] extends bigint ? string : T[K] };
type TimestampRef = "0" | { timestampOfTransfer: string } | { timestampOfAccount: string };
type WireFilter<T> = Omit<Wire<T>, "timestamp_min" | "timestamp_max"> & {
  timestamp_min: TimestampRef;
  timestamp_max: TimestampRef;
};
type Relation =
  | { consecutive: true }
  | { index: number; equals: [number, number]; plus?: number }
  | { index: number; greaterThan: [number, number] };
/** An event timestamp given relative to an earlier result (imported events): result `index` of step `step`, plus `plus` ns. */
type TimestampOf = { ofResult: [number, number]; plus: number };
type WireEvent<T> = Omit<Wire<T>, "timestamp"> & { timestamp: string | TimestampOf };
type Expected = Record<string, string | number>;

export type Step =
  | {
      call: "createAccounts";
      events: Array<WireEvent<Account>>;
      statuses: string[];
      timestampRelations?: Relation[];
    }
  | {
      call: "createTransfers";
      events: Array<WireEvent<Transfer>>;
      statuses: string[];
      timestampRelations?: Relation[];
    }
  | { call: "lookupAccounts"; ids: string[]; accounts: Expected[] }
  | { call: "lookupTransfers"; ids: string[]; transfers: Expected[] }
  | { call: "getAccountTransfers"; filter: WireFilter<AccountFilter>; transferIds: string[] }
  | {
      call: "getAccountBalances";
      filter: WireFilter<AccountFilter>;
      balances: Array<Expected & { timestampOfTransfer: string }>;
    }
  | { call: "queryTransfers"; filter: WireFilter<QueryFilter>; transferIds: string[] }
  | { call: "advanceClock"; seconds: number };

export interface Case {
  name: string;
  origin: string;
  steps: Step[];
}

export function loadFixture(file: URL): { cases: Case[]; credit: unknown } {
  return JSON.parse(fs.readFileSync(file, "utf8")) as { cases: Case[]; credit: unknown };
}

const u128Max = (1n << 128n) - 1n;
const idFields = new Set([
  "id",
  "debit_account_id",
  "credit_account_id",
  "pending_id",
  "account_id",
]);
const numberFields = new Set([
  "user_data_32",
  "reserved",
  "ledger",
  "code",
  "flags",
  "timeout",
  "limit",
]);

/** Plays one case: every step's results must match exactly. */
export async function runCase(target: LedgerUnderTest, c: Case, shared: boolean): Promise<void> {
  const run = new CaseRun(target, shared);
  for (const [index, step] of c.steps.entries()) {
    await run.step(index, step);
  }
}

class CaseRun {
  private readonly results: Array<Array<{ timestamp: bigint }>> = [];
  private readonly accountTimestamps = new Map<string, bigint>();
  private readonly transferTimestamps = new Map<string, bigint>();
  private caseStart = 0n;

  constructor(
    private readonly t: LedgerUnderTest,
    private readonly shared: boolean,
  ) {}

  /** Wire id → ledger id: offset by the case's base unless it is 0 or u128 max. */
  private id(wire: string): bigint {
    const value = BigInt(wire);
    return value === 0n || value === u128Max ? value : value + this.t.idBase;
  }

  private wireId(id: bigint): string {
    return (id === 0n || id === u128Max ? id : id - this.t.idBase).toString();
  }

  private object<T>(wire: Record<string, string | number | TimestampOf>): T {
    const out: Record<string, bigint | number> = {};
    for (const [key, value] of Object.entries(wire)) {
      if (typeof value === "object")
        out[key] = this.resultTimestamp(value.ofResult) + BigInt(value.plus);
      else
        out[key] = numberFields.has(key)
          ? Number(value)
          : idFields.has(key)
            ? this.id(String(value))
            : BigInt(value);
    }
    return out as T;
  }

  private resultTimestamp([step, index]: [number, number]): bigint {
    const result = this.results[step]?.[index];
    if (result === undefined)
      throw new Error(`no result ${index} of step ${step} to take a timestamp from`);
    return result.timestamp;
  }

  async step(index: number, step: Step): Promise<void> {
    const l = this.t.ledger;
    const where = `step ${index} (${step.call})`;
    switch (step.call) {
      case "createAccounts": {
        const results = await l.createAccounts(step.events.map((e) => this.object<Account>(e)));
        this.created(
          index,
          step,
          results.map((r) => ({ ...r, name: CreateAccountStatus[r.status] })),
          this.accountTimestamps,
          where,
        );
        return;
      }
      case "createTransfers": {
        const results = await l.createTransfers(step.events.map((e) => this.object<Transfer>(e)));
        this.created(
          index,
          step,
          results.map((r) => ({ ...r, name: CreateTransferStatus[r.status] })),
          this.transferTimestamps,
          where,
        );
        return;
      }
      case "lookupAccounts":
        return this.matches(
          await l.lookupAccounts(step.ids.map((id) => this.id(id))),
          step.accounts,
          where,
        );
      case "lookupTransfers":
        return this.matches(
          await l.lookupTransfers(step.ids.map((id) => this.id(id))),
          step.transfers,
          where,
        );
      case "getAccountTransfers": {
        const found = await l.getAccountTransfers(this.filter<AccountFilter>(step.filter));
        expect(
          found.map((t) => this.wireId(t.id)),
          where,
        ).toEqual(step.transferIds);
        return;
      }
      case "queryTransfers": {
        const found = await l.queryTransfers(this.filter<QueryFilter>(step.filter, this.shared));
        expect(
          found.map((t) => this.wireId(t.id)),
          where,
        ).toEqual(step.transferIds);
        return;
      }
      case "getAccountBalances": {
        const found = await l.getAccountBalances(this.filter<AccountFilter>(step.filter));
        const expected = step.balances.map(({ timestampOfTransfer, ...fields }) => ({
          ...this.object<object>(fields),
          timestamp: this.transferTimestamps.get(timestampOfTransfer),
        }));
        expect(found, where).toEqual(expected);
        return;
      }
      case "advanceClock":
        return this.t.advanceClock(step.seconds);
    }
  }

  private created(
    index: number,
    step: { events: Array<{ id: string }>; statuses: string[]; timestampRelations?: Relation[] },
    results: Array<{ timestamp: bigint; status: number; name: string | undefined }>,
    timestamps: Map<string, bigint>,
    where: string,
  ): void {
    expect(
      results.map((r) => r.name),
      where,
    ).toEqual(step.statuses);
    results.forEach((r, i) => {
      if (r.name === "created") timestamps.set((step.events[i] as { id: string }).id, r.timestamp);
      if (this.caseStart === 0n || r.timestamp < this.caseStart) this.caseStart = r.timestamp;
    });
    this.results[index] = results;
    for (const relation of step.timestampRelations ?? []) this.relation(index, relation, where);
  }

  private relation(index: number, relation: Relation, where: string): void {
    const mine = this.results[index] ?? [];
    if ("consecutive" in relation) {
      for (let i = 1; i < mine.length; i++) {
        expect(
          (mine[i] as { timestamp: bigint }).timestamp,
          `${where}: result ${i} is one ns after the previous`,
        ).toBe((mine[i - 1] as { timestamp: bigint }).timestamp + 1n);
      }
      return;
    }
    const actual = (mine[relation.index] as { timestamp: bigint }).timestamp;
    if ("equals" in relation) {
      const plus = BigInt(relation.plus ?? 0);
      expect(
        actual,
        `${where}: timestamp equals step ${relation.equals[0]} result ${relation.equals[1]} + ${plus}`,
      ).toBe(this.resultTimestamp(relation.equals) + plus);
    } else {
      expect(
        actual > this.resultTimestamp(relation.greaterThan),
        `${where}: timestamp after step ${relation.greaterThan[0]} result ${relation.greaterThan[1]}`,
      ).toBe(true);
    }
  }

  private matches(found: ReadonlyArray<object>, expected: Expected[], where: string): void {
    expect(found.length, `${where}: number of objects found`).toBe(expected.length);
    expected.forEach((fields, i) => {
      const want = this.object<Record<string, unknown>>(fields);
      const got = found[i] as Record<string, unknown>;
      const picked = Object.fromEntries(Object.keys(want).map((k) => [k, got[k]]));
      expect(picked, `${where}: object ${i}`).toEqual(want);
    });
  }

  /**
   * Resolves timestamp references. On a shared cluster an open lower bound of a query becomes
   * the case's first timestamp, so objects of other cases and earlier runs stay out.
   */
  private filter<F>(wire: WireFilter<AccountFilter> | WireFilter<QueryFilter>, bounded = false): F {
    const { timestamp_min, timestamp_max, ...rest } = wire;
    const filter = this.object<Record<string, unknown>>(rest);
    filter["timestamp_min"] = this.timestamp(timestamp_min);
    filter["timestamp_max"] = this.timestamp(timestamp_max);
    if (bounded && filter["timestamp_min"] === 0n) filter["timestamp_min"] = this.caseStart;
    return filter as F;
  }

  private timestamp(ref: TimestampRef): bigint {
    if (ref === "0") return 0n;
    const found =
      "timestampOfTransfer" in ref
        ? this.transferTimestamps.get(ref.timestampOfTransfer)
        : this.accountTimestamps.get(ref.timestampOfAccount);
    if (found === undefined) throw new Error(`no timestamp recorded for ${JSON.stringify(ref)}`);
    return found;
  }
}
