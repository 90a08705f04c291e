// Creates accounts on first use. Accounts are immutable and never deleted, so a process remembers
// which ids exist (bounded) and asks the ledger only for new ones.
import { CreateAccountStatus, type Account } from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";
import type { Ledger } from "../ledger/port.ts";

export class AccountRegistry {
  private readonly known = new Set<bigint>();

  constructor(
    private readonly ledger: Ledger,
    private readonly cacheMax: number,
  ) {}

  /** `ledger`: the same ledger seen through a per-batch wrapper (the worker counts requests per batch). */
  async ensure(accounts: ReadonlyArray<Account>, ledger: Ledger = this.ledger): Promise<void> {
    const fresh = new Map<bigint, Account>();
    for (const a of accounts) if (!this.known.has(a.id)) fresh.set(a.id, a);
    if (fresh.size === 0) return;
    const batch = [...fresh.values()];
    const results = await ledger.createAccounts(batch);
    assert(results.length === batch.length, "one result per account");
    results.forEach((r, i) => {
      const ok =
        r.status === CreateAccountStatus.created || r.status === CreateAccountStatus.exists;
      // Anything else means the chart changed under a running ledger (or an id collided): stop.
      assert(ok, `account ${batch[i]?.id} could not be created: ${CreateAccountStatus[r.status]}`);
    });
    if (this.known.size + batch.length > this.cacheMax) this.known.clear();
    for (const a of batch) this.known.add(a.id);
  }
}
