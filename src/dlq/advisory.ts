// The server's MAX_DELIVERIES advisory, parsed (never trusted). Pure.
//
// Body on nats-server 2.9.10 (shared notes §2):
//   {"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"…","timestamp":"…",
//    "stream":"BILLING_COMMANDS","consumer":"billing-worker","stream_seq":2010,"deliveries":3}
// Unknown fields are allowed: later servers add some (domain, …).
import { z } from "zod";

export const maxDeliverAdvisoryType = "io.nats.jetstream.advisory.v1.max_deliver";

const advisorySchema = z.looseObject({
  type: z.literal(maxDeliverAdvisoryType),
  stream: z.string().min(1),
  consumer: z.string().min(1),
  stream_seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  deliveries: z.number().int().min(0),
});

export interface MaxDeliverAdvisory {
  stream: string;
  consumer: string;
  streamSequence: number;
  deliveries: number;
}

export type ParsedAdvisory =
  { ok: true; advisory: MaxDeliverAdvisory } | { ok: false; error: string };

export function parseAdvisory(data: Uint8Array): ParsedAdvisory {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(data));
  } catch (err) {
    return { ok: false, error: `not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  const parsed = advisorySchema.safeParse(json);
  if (!parsed.success) {
    return {
      ok: false,
      error: parsed.error.issues
        .map((i) => `${i.path.join(".") || "advisory"}: ${i.message}`)
        .join("; "),
    };
  }
  const a = parsed.data;
  return {
    ok: true,
    advisory: {
      stream: a.stream,
      consumer: a.consumer,
      streamSequence: a.stream_seq,
      deliveries: a.deliveries,
    },
  };
}
