// Who owns an account, as finance names it: a user's userId, or the system account's role and
// currency ("settlement EUR", "fee EUR", "marker debit"). A userId never holds a space (its
// alphabet, src/domain/user-name.ts), so the two kinds of names cannot collide.
import { AccountCode, feeAccountId, markerAccountIds, settlementAccountId, type Chart } from "../domain/accounts.ts";
import type { Ledger } from "../ledger/port.ts";
import { NameBook } from "../worker/facts.ts";

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
    case AccountCode.user: return "user";
    case AccountCode.userName: return "user name";
    case AccountCode.settlement: return "settlement";
    case AccountCode.fee: return "fee";
    case AccountCode.markerDebit:
    case AccountCode.markerCredit: return "marker";
    case AccountCode.deployment:
    case AccountCode.deploymentBound: return "deployment";
    default: return `code ${code}`;
  }
}

/**
 * Names the accounts of a page of transfers. Every account a money transfer of the service
 * touches is a system account or a user account; user names are read from the accounts'
 * user_data (two lookups at most per page) and kept in a bounded cache.
 */
export class OwnerBook {
  private readonly system: Map<bigint, string>;
  private readonly users: NameBook;

  constructor(private readonly ledger: Ledger, chart: Chart, cacheMax: number) {
    this.system = systemOwners(chart);
    this.users = new NameBook(chart.space, cacheMax);
  }

  async resolve(ids: Iterable<bigint>): Promise<Map<bigint, string>> {
    const all = [...new Set(ids)];
    const names = await this.users.resolve(this.ledger, all.filter((id) => !this.system.has(id)));
    for (const id of all) {
      const name = this.system.get(id);
      if (name !== undefined) names.set(id, name);
    }
    return names;
  }
}
