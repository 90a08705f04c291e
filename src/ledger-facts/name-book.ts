// Account id → userId, read from the ledger: a user account's own user data holds the head of
// its owner's name, a name account the rest (src/domain/user-name.ts). Captures and releases name
// only their hold, so their events learn the user here. Accounts never change owner, so a process
// keeps the names it read (bounded by cacheMax, cleared when full).
import { assert } from "../lib/assert.ts";
import { userNameAccountId } from "../domain/accounts.ts";
import type { IdSpace } from "../domain/ids.ts";
import { decodeUserIdHead, decodeUserIdTail } from "../domain/user-name.ts";
import type { Ledger } from "../ledger/port.ts";

/** Remembers account id → userId (bounded); accounts never change owner. */
export class NameBook {
  private readonly names = new Map<bigint, string>();
  constructor(
    private readonly space: IdSpace,
    private readonly cacheMax: number,
  ) {}

  async resolve(ledger: Ledger, ids: ReadonlyArray<bigint>): Promise<Map<bigint, string>> {
    // The answer is built before anything is cached: a call with more new names than the cache
    // keeps must not lose, to the cache's clearing, names it has just read.
    const out = new Map<bigint, string>();
    const missing: bigint[] = [];
    for (const id of new Set(ids)) {
      const name = this.names.get(id);
      if (name === undefined) missing.push(id);
      else out.set(id, name);
    }
    if (missing.length > 0) {
      const heads = await ledger.lookupAccounts(missing);
      const continued: Array<{ id: bigint; head: string }> = [];
      for (const a of heads) {
        const { head, continued: more } = decodeUserIdHead(a);
        if (more) continued.push({ id: a.id, head });
        else out.set(a.id, head);
      }
      if (continued.length > 0) {
        const tails = new Map(
          (
            await ledger.lookupAccounts(continued.map((c) => userNameAccountId(this.space, c.id)))
          ).map((a) => [a.id, a]),
        );
        for (const c of continued) {
          const tail = tails.get(userNameAccountId(this.space, c.id));
          assert(tail !== undefined, "a continued user name has its name account");
          out.set(c.id, c.head + decodeUserIdTail(tail));
        }
      }
      for (const id of missing) {
        const name = out.get(id);
        if (name !== undefined) this.remember(id, name);
      }
    }
    for (const id of ids) assert(out.has(id), `account ${id} is not a user account in the ledger`);
    return out;
  }

  private remember(id: bigint, name: string): void {
    if (this.names.size >= this.cacheMax) this.names.clear();
    this.names.set(id, name);
  }
}
