// A separate process that writes to a shared ledger file, for the cross-process tests. It appends
// one JSON line per resolved request to its report file (after the promise resolves, before the
// next request), so a parent that kills it knows exactly which requests it saw resolve.
//
//   node --import tsx child-writer.ts timestamps <db> <report> <requests> <batch>
//     ordinary transfers between accounts 1 and 2, with a frozen clock (so only the shared meta
//     row can keep timestamps increasing).
//   node --import tsx child-writer.ts mixed <db> <report> <worker> <transfers> <batch> <users>
//     the multi-process workload: transfers between users, pending transfers with timeouts,
//     posts and voids of its own pending transfers, credits from the settlement account.
import fs from "node:fs";
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { openLedger, type Ledger } from "../../../src/ledger/index.ts";
import { transfer } from "./events.ts";
import { settlementId, userId } from "./workload-ids.ts";

const amountMax = (1n << 128n) - 1n;

function report(
  file: string,
  events: Transfer[],
  results: Array<{ timestamp: bigint; status: number }>,
): void {
  const line = JSON.stringify({ events, results }, (_, v: unknown) =>
    typeof v === "bigint" ? v.toString() : v,
  );
  fs.appendFileSync(file, `${line}\n`);
}

async function timestamps(
  ledger: Ledger,
  file: string,
  requests: number,
  batchSize: number,
  worker: number,
): Promise<void> {
  for (let r = 0; r < requests; r++) {
    const events = Array.from({ length: batchSize }, (_, i) =>
      transfer({
        id: BigInt(worker) * 1_000_000n + BigInt(r * batchSize + i + 1),
        debit_account_id: 1n,
        credit_account_id: 2n,
        amount: 1n,
      }),
    );
    report(file, events, await ledger.createTransfers(events));
  }
}

/** Deterministic per worker, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}

async function mixed(
  ledger: Ledger,
  file: string,
  worker: number,
  total: number,
  batchSize: number,
  users: number,
): Promise<void> {
  const next = random(worker + 1);
  const user = () => userId(Math.floor(next() * users));
  const open: bigint[] = [];
  let sequence = 0;
  const newId = () => (BigInt(worker + 1) << 64n) + BigInt(++sequence);
  for (let sent = 0; sent < total; sent += batchSize) {
    const events: Transfer[] = [];
    for (let i = 0; i < batchSize; i++) {
      const kind = next();
      const pendingId =
        open.length > 0 && kind >= 0.75
          ? open.splice(Math.floor(next() * open.length), 1)[0]
          : undefined;
      if (pendingId !== undefined && kind < 0.87) {
        events.push(
          transfer({
            id: newId(),
            pending_id: pendingId,
            amount: next() < 0.5 ? amountMax : 1n,
            flags: TransferFlags.post_pending_transfer,
            ledger: 0,
            code: 0,
          }),
        );
      } else if (pendingId !== undefined) {
        events.push(
          transfer({
            id: newId(),
            pending_id: pendingId,
            amount: 0n,
            flags: TransferFlags.void_pending_transfer,
            ledger: 0,
            code: 0,
          }),
        );
      } else if (kind < 0.6) {
        const from = user();
        let to = user();
        if (to === from) to = settlementId;
        events.push(
          transfer({
            id: newId(),
            debit_account_id: from,
            credit_account_id: to,
            amount: 1n + BigInt(Math.floor(next() * 20)),
          }),
        );
      } else if (kind < 0.7) {
        events.push(
          transfer({
            id: newId(),
            debit_account_id: settlementId,
            credit_account_id: user(),
            amount: 1n + BigInt(Math.floor(next() * 20)),
          }),
        );
      } else {
        const id = newId();
        events.push(
          transfer({
            id,
            debit_account_id: user(),
            credit_account_id: settlementId,
            amount: 1n + BigInt(Math.floor(next() * 20)),
            flags: TransferFlags.pending,
            timeout: next() < 0.3 ? 1 : 60,
          }),
        );
        open.push(id);
      }
    }
    report(file, events, await ledger.createTransfers(events));
  }
}

const [mode, db, file, ...rest] = process.argv.slice(2);
const frozenNs = process.env["LEDGER_CLOCK_NS"];
const ledger = await openLedger({
  driver: "embedded",
  path: db as string,
  ...(frozenNs === undefined ? {} : { clock: () => BigInt(frozenNs) }),
});
try {
  if (mode === "timestamps")
    await timestamps(
      ledger,
      file as string,
      Number(rest[0]),
      Number(rest[1]),
      Number(rest[2] ?? 0),
    );
  else if (mode === "mixed")
    await mixed(
      ledger,
      file as string,
      Number(rest[0]),
      Number(rest[1]),
      Number(rest[2]),
      Number(rest[3]),
    );
  else throw new Error(`unknown mode ${mode}`);
} finally {
  ledger.destroy();
}
