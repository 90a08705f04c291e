// Reads whole streams for assertions: every stored message of a stream, in sequence order.
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";

export async function storedMessages(jsm: JetStreamManager, stream: string): Promise<StoredMsg[]> {
  const info = await jsm.streams.info(stream);
  const out: StoredMsg[] = [];
  for (
    let seq = info.state.first_seq;
    seq <= info.state.last_seq && info.state.messages > 0;
    seq += 1
  ) {
    try {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (m) out.push(m);
    } catch {
      // deleted or purged sequence
    }
  }
  return out;
}

export type StoredEvent = {
  subject: string;
  seq: number;
  payload: Record<string, unknown> & { event: string };
};

export async function storedEvents(
  jsm: JetStreamManager,
  stream = "BILLING_EVENTS",
): Promise<StoredEvent[]> {
  return (await storedMessages(jsm, stream)).map((m) => ({
    subject: m.subject,
    seq: m.seq,
    payload: JSON.parse(new TextDecoder().decode(m.data)),
  }));
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until the consumer has nothing pending or unacknowledged. */
export async function waitIdle(
  jsm: JetStreamManager,
  stream = "BILLING_COMMANDS",
  consumer = "billing-worker",
  timeoutMs = 60_000,
): Promise<void> {
  await waitFor(
    "consumer idle",
    async () => {
      const info = await jsm.consumers.info(stream, consumer);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    },
    timeoutMs,
    100,
  );
}
