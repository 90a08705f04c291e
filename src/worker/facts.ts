// What an applied operation's event needs from the ledger: the userIds behind accounts (captures and
// releases name only their hold) and each touched account's balance right after the operation,
// read from the account history at the operation's own timestamps, so a replay reads the same.
import { AccountFilterFlags, type AccountBalance } from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";
import { currencyByLedger, userAccountId, userNameAccountId, type Chart, type Currency } from "../domain/accounts.ts";
import { commandOf, type CommandFields } from "../domain/commands.ts";
import type { BalanceLine } from "../domain/events.ts";
import { userBalance } from "../domain/money.ts";
import type { Operation, Verdict } from "../domain/resolve.ts";
import { decodeUserIdHead, decodeUserIdTail } from "../domain/user-name.ts";
import type { Ledger } from "../ledger/port.ts";
import { LEDGER_EVENTS_MAX } from "../config/schema.ts";

export type Applied = { op: Operation; verdict: Extract<Verdict, { kind: "applied" }> };
export type AppliedFacts = { fields: CommandFields; balances: BalanceLine[]; ledgerTimestamp: bigint };

type Touch = { account: bigint; userId: string | null; currency: string };

/** Remembers account id → userId (bounded); accounts never change owner. */
export class NameBook {
  private readonly names = new Map<bigint, string>();
  constructor(private readonly cacheMax: number) {}

  async resolve(ledger: Ledger, ids: ReadonlyArray<bigint>): Promise<Map<bigint, string>> {
    const missing = [...new Set(ids.filter((id) => !this.names.has(id)))];
    if (missing.length > 0) {
      const heads = await ledger.lookupAccounts(missing);
      const continued: Array<{ id: bigint; head: string }> = [];
      for (const a of heads) {
        const { head, continued: more } = decodeUserIdHead(a);
        if (more) continued.push({ id: a.id, head });
        else this.remember(a.id, head);
      }
      if (continued.length > 0) {
        const tails = new Map((await ledger.lookupAccounts(continued.map((c) => userNameAccountId(c.id)))).map((a) => [a.id, a]));
        for (const c of continued) {
          const tail = tails.get(userNameAccountId(c.id));
          assert(tail !== undefined, "a continued user name has its name account");
          this.remember(c.id, c.head + decodeUserIdTail(tail));
        }
      }
    }
    const out = new Map<bigint, string>();
    for (const id of ids) {
      const name = this.names.get(id);
      assert(name !== undefined, `account ${id} is not a user account in the ledger`);
      out.set(id, name);
    }
    return out;
  }

  private remember(id: bigint, name: string): void {
    if (this.names.size >= this.cacheMax) this.names.clear();
    this.names.set(id, name);
  }
}

function touches(chart: Chart, a: Applied): { touches: Touch[]; fields: CommandFields } {
  const d = a.op.decoded;
  // A command a limit rejects today may have been applied under a larger limit: it has its command.
  const c = commandOf(d);
  assert(c !== null, "only commands are applied");
  switch (c.type) {
    case "credit":
    case "debit":
    case "hold": {
      const { currency, fields } = decidedIn(chart, a, c.currency, d.fields);
      return { touches: [{ account: userAccountId(currency.ledger, c.userId), userId: c.userId, currency: currency.code }], fields };
    }
    case "transfer": {
      const { currency, fields } = decidedIn(chart, a, c.currency, d.fields);
      return {
        touches: [c.fromUserId, c.toUserId].map((u) => ({ account: userAccountId(currency.ledger, u), userId: u, currency: currency.code })),
        fields,
      };
    }
    case "capture":
    case "release": {
      const hold = a.verdict.hold;
      assert(hold !== null, "a capture or release is applied with its hold");
      const currency = currencyByLedger(chart, hold.ledger);
      assert(currency !== undefined, `hold on unconfigured ledger ${hold.ledger}`);
      return { touches: [{ account: hold.debitAccountId, userId: null, currency: currency.code }], fields: { ...d.fields, amount: hold.amount.toString(), currency: currency.code } };
    }
  }
}

/**
 * The currency an operation was applied in: the recorded ledger's on a replay. A command without a
 * currency took the default of its first decision; the default may have changed since, and the
 * replayed event must be the first one (same currency, balances of the same account).
 */
function decidedIn(chart: Chart, a: Applied, decoded: Currency, fields: CommandFields): { currency: Currency; fields: CommandFields } {
  const ledger = a.verdict.ledger;
  if (ledger === undefined || ledger === decoded.ledger) return { currency: decoded, fields };
  const currency = currencyByLedger(chart, ledger);
  assert(currency !== undefined, `operation applied on unconfigured ledger ${ledger}`);
  return { currency, fields: { ...fields, currency: currency.code } };
}

/** All history rows of one account between two timestamps, in ascending order. */
async function history(ledger: Ledger, account: bigint, from: bigint, to: bigint): Promise<AccountBalance[]> {
  const rows: AccountBalance[] = [];
  for (let min = from; ;) {
    const page = await ledger.getAccountBalances({
      account_id: account, user_data_128: 0n, user_data_64: 0n, user_data_32: 0, code: 0,
      timestamp_min: min, timestamp_max: to, limit: LEDGER_EVENTS_MAX, flags: AccountFilterFlags.debits | AccountFilterFlags.credits,
    });
    rows.push(...page);
    const last = page[page.length - 1];
    if (page.length < LEDGER_EVENTS_MAX || last === undefined) return rows;
    min = last.timestamp + 1n;
  }
}

/** The last row at or before `hi` and at or after `lo`. */
function rowIn(rows: ReadonlyArray<AccountBalance>, lo: bigint, hi: bigint): AccountBalance | undefined {
  let found: AccountBalance | undefined;
  for (const r of rows) {
    if (r.timestamp > hi) break;
    if (r.timestamp >= lo) found = r;
  }
  return found;
}

export async function appliedFacts(ledger: Ledger, chart: Chart, names: NameBook, applied: ReadonlyArray<Applied>): Promise<Map<bigint, AppliedFacts>> {
  const plans = applied.map((a) => ({ a, ...touches(chart, a) }));
  const unnamed = plans.flatMap((p) => p.touches.filter((t) => t.userId === null).map((t) => t.account));
  const named = unnamed.length > 0 ? await names.resolve(ledger, unnamed) : new Map<bigint, string>();
  const ranges = new Map<bigint, { lo: bigint; hi: bigint }>();
  for (const p of plans) {
    const ts = p.a.verdict.timestamps;
    const lo = ts[0] as bigint;
    const hi = ts[ts.length - 1] as bigint;
    for (const t of p.touches) {
      const r = ranges.get(t.account);
      ranges.set(t.account, r ? { lo: lo < r.lo ? lo : r.lo, hi: hi > r.hi ? hi : r.hi } : { lo, hi });
    }
  }
  const rows = new Map<bigint, AccountBalance[]>();
  await Promise.all([...ranges].map(async ([account, r]) => rows.set(account, await history(ledger, account, r.lo, r.hi))));
  const out = new Map<bigint, AppliedFacts>();
  for (const p of plans) {
    const ts = p.a.verdict.timestamps;
    const balances = p.touches.map((t): BalanceLine => {
      const row = rowIn(rows.get(t.account) ?? [], ts[0] as bigint, ts[ts.length - 1] as bigint);
      assert(row !== undefined, `no history row for account ${t.account} at operation ${p.a.op.id}`);
      const userId = t.userId ?? named.get(t.account);
      assert(userId !== undefined, "every touched account has a userId");
      return { userId, currency: t.currency, ...userBalance(row) };
    });
    const userId = p.touches[0]?.userId === null ? balances[0]?.userId : undefined;
    const fields = userId === undefined ? p.fields : { userId, ...p.fields };
    out.set(p.a.op.id, { fields, balances, ledgerTimestamp: ts[0] as bigint });
  }
  return out;
}
