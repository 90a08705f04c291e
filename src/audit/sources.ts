// The audit's reads, all bounded: ledger accounts and transfers in pages ordered by timestamp
// (through the ledger port only), and the events stream in pages through an ordered consumer
// (no ack state on the server, removed when idle). Nothing here writes anything.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { Account, Transfer } from "tigerbeetle-node";
import { streamRange } from "../broker/stream-range.ts";
import type { Ledger } from "../ledger/port.ts";
import { timestampQuery } from "../ledger/queries.ts";
import { assert } from "../lib/assert.ts";
import type { StoredEvent } from "./event-index.ts";

/**
 * Transfers with from ≤ timestamp ≤ to, ascending, `pageMax` at a time; with a tag (not 0), only
 * the transfers of that deployment (user_data_64), as on a ledger shared by deployments.
 */
export async function* transferPages(
  ledger: Ledger,
  from: bigint,
  to: bigint,
  pageMax: number,
  tag = 0n,
): AsyncGenerator<Transfer[]> {
  assert(from > 0n && pageMax > 0, "transferPages: from > 0 and a page size");
  for (let min = from; min <= to;) {
    const page = await ledger.queryTransfers({
      ...timestampQuery(min, to, pageMax, 0),
      user_data_64: tag,
    });
    if (page.length > 0) yield page;
    const last = page[page.length - 1];
    if (page.length < pageMax || last === undefined) return;
    min = last.timestamp + 1n;
  }
}

/** Every account, ascending by creation timestamp, `pageMax` at a time. */
export async function* accountPages(ledger: Ledger, pageMax: number): AsyncGenerator<Account[]> {
  for (let min = 1n; ;) {
    const page = await ledger.queryAccounts(timestampQuery(min, 0n, pageMax, 0));
    if (page.length > 0) yield page;
    const last = page[page.length - 1];
    if (page.length < pageMax || last === undefined) return;
    min = last.timestamp + 1n;
  }
}

/** The events stream's last sequence now: the audit reads no event stored after it. */
export async function lastEventSequence(
  jsm: JetStreamManager,
  stream: string,
): Promise<{ first: number; last: number; messages: number }> {
  const info = await jsm.streams.info(stream);
  return { first: info.state.first_seq, last: info.state.last_seq, messages: info.state.messages };
}

/** Stored events with sequence ≤ `last`, in sequence order, `pageMax` at a time. */
export async function* eventPages(
  js: JetStreamClient,
  stream: string,
  first: number,
  last: number,
  pageMax: number,
): AsyncGenerator<StoredEvent[]> {
  for await (const page of streamRange(js, stream, first, last, pageMax))
    yield page.map((m) => ({ seq: m.seq, subject: m.subject, data: m.data }));
}
