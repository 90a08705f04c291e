// The ledger side of a batch: passes of lookup → decide → create → verdicts of the results until every operation
// has a verdict (or is left for redelivery). Decisions are the domain's; this file only does I/O.
import type { Account, Transfer } from "tigerbeetle-node";
import type { Chart } from "../domain/accounts.ts";
import { userAccounts } from "../domain/accounts.ts";
import { touchedUsers } from "../domain/plan.ts";
import {
  decide,
  lookupIds,
  planRequest,
  verdictsOfMarkers,
  verdictsOfPlans,
  type Clock,
  type Operation,
  type Verdict,
} from "../domain/resolve.ts";
import type { Ledger } from "../ledger/port.ts";
import type { AccountRegistry } from "../ledger-facts/account-registry.ts";

export type LedgerCounters = { passes: number };

export async function resolveOperations(
  ledger: Ledger,
  registry: AccountRegistry,
  chart: Chart,
  ops: ReadonlyArray<Operation>,
  clock: () => Clock,
  passesMax: number,
  counters: LedgerCounters,
): Promise<Map<bigint, Verdict>> {
  const verdicts = new Map<bigint, Verdict>();
  let open: ReadonlyArray<Operation> = ops;
  for (let pass = 0; pass < passesMax && open.length > 0; pass += 1) {
    counters.passes += 1;
    const found = new Map<bigint, Transfer>();
    for (const t of await ledger.lookupTransfers(lookupIds(chart, open))) found.set(t.id, t);
    const decision = decide(chart, open, found, clock());
    for (const [id, v] of decision.verdicts) verdicts.set(id, v);
    const retry: Operation[] = [...decision.retry];
    const markers = [...decision.markers];
    if (decision.plans.length > 0) {
      await registry.ensure(accountsOfPlans(chart, decision.plans), ledger);
      const results = await ledger.createTransfers(planRequest(decision.plans));
      const judged = verdictsOfPlans(chart, decision.plans, results);
      for (const [id, v] of judged.verdicts) verdicts.set(id, v);
      markers.push(...judged.markers);
      retry.push(...judged.retry);
    }
    // A marker can lead to one more marker (under the burned-marker id); that ends it.
    for (let round = 0; round < 2 && markers.length > 0; round += 1) {
      const results = await ledger.createTransfers(markers.map((m) => m.transfer));
      const judged = verdictsOfMarkers(chart, markers, results);
      for (const [id, v] of judged.verdicts) verdicts.set(id, v);
      retry.push(...judged.retry);
      markers.splice(0, markers.length, ...judged.markers);
    }
    retry.push(...markers.map((m) => m.op));
    open = retry;
  }
  return verdicts;
}

/**
 * The user accounts the plans touch, in plan order. A loop, not closures made per pass: those lose
 * their optimized code at every full GC and are compiled again.
 */
function accountsOfPlans(chart: Chart, plans: ReadonlyArray<{ op: Operation }>): Account[] {
  const accounts: Account[] = [];
  for (const p of plans) {
    if (p.op.decoded.kind !== "command") continue;
    for (const u of touchedUsers(p.op.decoded.command))
      accounts.push(...userAccounts(chart.space, u.ledger, u.userId));
  }
  return accounts;
}
