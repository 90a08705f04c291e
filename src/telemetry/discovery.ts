// The service's own description on the NATS service-discovery subjects ($SRV.PING, $SRV.INFO,
// $SRV.STATS, each also with .<name> and .<name>.<id>), in the JSON shapes of the NATS micro
// protocol (io.nats.micro.v1.*_response), so `nats micro ls|info|stats billing` finds every
// running process. @nats-io/services is not used: its only releases are 3.0.0 pre-releases pinned
// to @nats-io/nats-core 3.0.0-50, a second core next to the 3.4.0 our transport uses.
//
// Every process answers (no queue group): discovery asks all of them. The query endpoints listed
// here are served by src/query/server.ts in its own queue group; this file only describes them.
import { readFileSync } from "node:fs";
import { nuid, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { z } from "zod";
import { assert } from "../lib/assert.ts";
import { within } from "../lib/deadline.ts";

/** Bound on the announcement's flush (a PING round trip; the JetStream API's own default bound). */
const ANNOUNCE_FLUSH_TIMEOUT_MS = 5_000;
import type { Logger } from "../lib/log.ts";
import type { EndpointStats } from "./query-meter.ts";

export const SERVICE_NAME = "billing";
const API_PREFIX = "$SRV";
const VERBS = ["PING", "INFO", "STATS"] as const;
/** The micro protocol's rule for service and endpoint names. */
const NAME = /^[A-Za-z0-9_-]+$/;
/** Semantic version, as the micro protocol's schema requires (semver.org's regex, shortened to its core). */
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

export type Endpoint = { name: string; subject: string; queue_group: string };

export type ServiceDescription = {
  name: string;
  version: string;
  description: string;
  /** String values only (the micro protocol's rule). */
  metadata: Record<string, string>;
  endpoints: ReadonlyArray<Endpoint>;
};

export type Announcement = { id: string; stop(): Promise<void> };

/** Version and description from the project's package.json, the version checked as semver. */
export function packageInfo(): { version: string; description: string } {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  return z
    .object({ version: z.string().regex(SEMVER), description: z.string() })
    .parse(JSON.parse(text));
}

/** Answers PING, INFO and STATS for this process until stop(). */
export async function announceService(
  nc: NatsConnection,
  description: ServiceDescription,
  endpointStats: (subject: string) => EndpointStats,
  log: Logger,
): Promise<Announcement> {
  assert(NAME.test(description.name), `service name ${description.name} must match ${NAME}`);
  assert(SEMVER.test(description.version), `service version ${description.version} must be semver`);
  for (const e of description.endpoints)
    assert(NAME.test(e.name), `endpoint name ${e.name} must match ${NAME}`);
  const id = nuid.next();
  const started = new Date().toISOString();
  const identity = {
    name: description.name,
    id,
    version: description.version,
    metadata: description.metadata,
  };
  const answers: Record<(typeof VERBS)[number], () => Record<string, unknown>> = {
    PING: () => ({ type: "io.nats.micro.v1.ping_response", ...identity }),
    INFO: () => ({
      type: "io.nats.micro.v1.info_response",
      ...identity,
      description: description.description,
      endpoints: description.endpoints.map((e) => ({ ...e, metadata: null })),
    }),
    STATS: () => ({
      type: "io.nats.micro.v1.stats_response",
      ...identity,
      started,
      endpoints: description.endpoints.map((e) => ({ ...e, ...endpointStats(e.subject) })),
    }),
  };
  const encoder = new TextEncoder();
  const subscriptions: Subscription[] = [];
  for (const verb of VERBS) {
    for (const subject of [
      `${API_PREFIX}.${verb}`,
      `${API_PREFIX}.${verb}.${description.name}`,
      `${API_PREFIX}.${verb}.${description.name}.${id}`,
    ]) {
      subscriptions.push(
        nc.subscribe(subject, {
          callback: (err: Error | null, m: Msg) => {
            if (err) {
              log.warn({ err, subject }, "service discovery subscription error");
              return;
            }
            if (m.reply) m.respond(encoder.encode(JSON.stringify(answers[verb]())));
          },
        }),
      );
    }
  }
  // The subscriptions are registered with the server before anyone is told the service runs. A
  // flush waits for a reconnect while the broker is away: bounded, and undone on failure, so the
  // start-up step can be tried again without a second set of subscriptions.
  try {
    await within(nc.flush(), ANNOUNCE_FLUSH_TIMEOUT_MS, "the service announcement's flush");
  } catch (error) {
    for (const s of subscriptions) s.unsubscribe();
    throw error;
  }
  log.info(
    { name: description.name, id, version: description.version },
    "service description announced",
  );
  return {
    id,
    stop: async () => {
      if (nc.isClosed()) return;
      await Promise.allSettled(subscriptions.map((s) => s.drain()));
    },
  };
}
