// Copies of a command's headers, for every place that stores a command (or a letter of it) again.
import { headers, type MsgHdrs } from "@nats-io/transport-node";

/**
 * A fresh header set with `source`'s headers, less every Nats-* header (JetStream acts on them when
 * a message is stored: a stored message read back carries Nats-Stream, Nats-Sequence, …, and its
 * Nats-Msg-Id may still be in the duplicate window) and less the `replaced` ones (any case), which
 * the caller sets itself. Fresh, because js.publish writes Nats-Msg-Id into the set it is given.
 */
export function copyHeaders(source: MsgHdrs | undefined, replaced: ReadonlyArray<string>): MsgHdrs {
  const drop = new Set(replaced.map((k) => k.toLowerCase()));
  const h = headers();
  for (const [key, values] of source ?? []) {
    const lower = key.toLowerCase();
    if (lower.startsWith("nats-") || drop.has(lower)) continue;
    for (const value of values) h.append(key, value);
  }
  return h;
}
