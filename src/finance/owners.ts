// Who owns an account, as finance names it: a user's userId, or the system account's role and
// currency ("settlement EUR", "fee EUR", "marker debit"). A userId never holds a space (its
// alphabet, src/domain/user-name.ts), so the two kinds of names cannot collide.
import {
  AccountCode,
  feeAccountId,
  markerAccountIds,
  settlementAccountId,
  userNameAccountId,
  type Chart,
} from "../domain/accounts.ts";
import type { Ledger } from "../ledger/port.ts";
import { decodeUserIdHead, decodeUserIdTail, type UserData } from "../domain/user-name.ts";

/** The system accounts' ids and names; pure. */
export function systemOwners(chart: Chart): Map<bigint, string> {
  const names = new Map<bigint, string>();
  for (const c of chart.currencies) {
    names.set(settlementAccountId(chart.space, c.ledger), `settlement ${c.code}`);
    names.set(feeAccountId(chart.space, c.ledger), `fee ${c.code}`);
  }
  const marker = markerAccountIds(chart.space, chart.markerLedger);
  names.set(marker.debit, "marker debit");
  names.set(marker.credit, "marker credit");
  return names;
}

/** What a trial balance calls an account that is neither a user's nor a system account. */
export function kindOfCode(code: number): string {
  switch (code) {
    case AccountCode.user:
      return "user";
    case AccountCode.userName:
      return "user name";
    case AccountCode.settlement:
      return "settlement";
    case AccountCode.fee:
      return "fee";
    case AccountCode.markerDebit:
    case AccountCode.markerCredit:
      return "marker";
    case AccountCode.deployment:
    case AccountCode.deploymentBound:
      return "deployment";
    default:
      return `code ${code}`;
  }
}

/** A user account's name as its user_data holds it, or null when the data is no encoded userId (the audit reports such an account). */
function decodeHead(a: UserData): { head: string; continued: boolean } | null {
  try {
    return decodeUserIdHead(a);
  } catch {
    return null; // data from the ledger, not a bug of ours: name the account, do not stop the books
  }
}

/**
 * Names the accounts of a page: system accounts from the chart, user accounts from their
 * user_data (the userId's first 36 characters, and the rest from the name account), at most two
 * lookups per page, kept in a bounded cache. It never fails on what it cannot name (an account of
 * another deployment on a shared ledger, whose name account lives in that deployment's id space):
 * such a name ends in "…", and an account that is no user's is named by its kind.
 */
export class OwnerBook {
  private readonly system: Map<bigint, string>;
  private readonly names = new Map<bigint, string>();

  constructor(
    private readonly ledger: Ledger,
    private readonly chart: Chart,
    private readonly cacheMax: number,
  ) {
    this.system = systemOwners(chart);
  }

  async resolve(ids: Iterable<bigint>): Promise<Map<bigint, string>> {
    const all = [...new Set(ids)];
    const missing = all.filter((id) => !this.system.has(id) && !this.names.has(id));
    const found = new Map<bigint, string>();
    if (missing.length > 0) {
      const continued: Array<{ id: bigint; head: string }> = [];
      for (const a of await this.ledger.lookupAccounts(missing)) {
        if (a.code !== AccountCode.user) {
          found.set(a.id, kindOfCode(a.code));
          continue;
        }
        const decoded = decodeHead(a);
        if (decoded === null) found.set(a.id, "user (undecodable name)");
        else if (decoded.continued) continued.push({ id: a.id, head: decoded.head });
        else found.set(a.id, decoded.head);
      }
      if (continued.length > 0) {
        const tails = new Map(
          (
            await this.ledger.lookupAccounts(
              continued.map((c) => userNameAccountId(this.chart.space, c.id)),
            )
          ).map((a) => [a.id, a]),
        );
        for (const c of continued) {
          const tail = tails.get(userNameAccountId(this.chart.space, c.id));
          found.set(c.id, tail === undefined ? `${c.head}…` : c.head + decodeUserIdTail(tail));
        }
      }
    }
    // The answer first, the cache after: remembering may clear the cache (its bound), and with it
    // names this very call found there.
    const out = new Map<bigint, string>();
    for (const id of all) {
      const name = this.system.get(id) ?? this.names.get(id) ?? found.get(id);
      if (name !== undefined) out.set(id, name); // an id with no account (0) has no owner
    }
    for (const [id, name] of found) this.remember(id, name);
    return out;
  }

  private remember(id: bigint, name: string): void {
    if (this.names.size >= this.cacheMax) this.names.clear();
    this.names.set(id, name);
  }
}
