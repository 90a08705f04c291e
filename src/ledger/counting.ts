// The ledger port with a tally: counts the requests (client calls) made through it, by operation.
// The worker wraps the shared ledger in one per batch, so pipelined batches never mix their
// counts, and reports how many requests each batch cost (billing_ledger_requests_per_batch).
// A call is what the port sees; tigerbeetle-node may carry several concurrent calls of one
// operation in one message to the cluster (docs/benchmarks.md, "Ledger requests per batch").
import { assert } from "../lib/assert.ts";
import type { Ledger } from "./port.ts";

type Operation = Exclude<keyof Ledger, "destroy">;
type In<O extends Operation> = Parameters<Ledger[O]>[0];
type Out<O extends Operation> = ReturnType<Ledger[O]>;

export class CountingLedger implements Ledger {
  /** Requests made through this wrapper, all operations. */
  total = 0;
  readonly byOperation = new Map<Operation, number>();

  constructor(private readonly inner: Ledger) {}

  createAccounts(batch: In<"createAccounts">): Out<"createAccounts"> {
    return this.counted("createAccounts").createAccounts(batch);
  }
  createTransfers(batch: In<"createTransfers">): Out<"createTransfers"> {
    return this.counted("createTransfers").createTransfers(batch);
  }
  lookupAccounts(batch: In<"lookupAccounts">): Out<"lookupAccounts"> {
    return this.counted("lookupAccounts").lookupAccounts(batch);
  }
  lookupTransfers(batch: In<"lookupTransfers">): Out<"lookupTransfers"> {
    return this.counted("lookupTransfers").lookupTransfers(batch);
  }
  getAccountTransfers(filter: In<"getAccountTransfers">): Out<"getAccountTransfers"> {
    return this.counted("getAccountTransfers").getAccountTransfers(filter);
  }
  getAccountBalances(filter: In<"getAccountBalances">): Out<"getAccountBalances"> {
    return this.counted("getAccountBalances").getAccountBalances(filter);
  }
  queryAccounts(filter: In<"queryAccounts">): Out<"queryAccounts"> {
    return this.counted("queryAccounts").queryAccounts(filter);
  }
  queryTransfers(filter: In<"queryTransfers">): Out<"queryTransfers"> {
    return this.counted("queryTransfers").queryTransfers(filter);
  }

  /** The wrapper borrows the ledger; whoever opened it closes it. */
  destroy(): void {
    assert(false, "a counting wrapper does not own its ledger: destroy the ledger itself");
  }

  private counted(operation: Operation): Ledger {
    this.total += 1;
    this.byOperation.set(operation, (this.byOperation.get(operation) ?? 0) + 1);
    return this.inner;
  }
}
