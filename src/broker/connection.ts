// The one NATS connection of a process, with its JetStream client and manager.
//
// Every connection option is passed explicitly (STYLE habit 8). Two of the library's defaults
// would hurt us: maxReconnectAttempts is 10 (the connection closes for good after ~20 s of
// outage) and pingInterval is 2 minutes (a half-open TCP connection goes unnoticed that long).
// We reconnect forever instead, and a JetStream call made during an outage fails after its own
// timeout, which the caller treats as transient (BrokerUnavailableError).

import { readFile } from "node:fs/promises";
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from "@nats-io/transport-node";
import {
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { assert } from "../lib/assert.ts";
import { BrokerConfigError, BrokerConnectError } from "./errors.ts";
import { describeFailure } from "../lib/failure.ts";

export interface BrokerTlsOptions {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface BrokerAuthOptions {
  user?: string;
  pass?: string;
  token?: string;
  nkeySeed?: string;
  credsFile?: string;
  tls?: BrokerTlsOptions;
}

export interface ConnectBrokerOptions {
  servers: string[];
  name: string;
  // Bound on the TCP + NATS handshake with one server.
  connectTimeoutMs: number;
  // Bound on every JetStream API request and publish ack that does not pass its own timeout.
  apiTimeoutMs?: number;
  auth?: BrokerAuthOptions;
}

export interface Broker {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  // Drains (sends what is buffered, e.g. acks) and closes; bounded, safe to call twice.
  close(): Promise<void>;
}

// Defaults for the limits connectBroker does not take from its caller. Sources: nats.js v3
// ConnectionOptions docs and the project's notes on JetStream 2.9 reconnect behaviour (not in this repository).
export const brokerConnectionDefaults = {
  apiTimeoutMs: 5_000,
  // A kill -9 of a local server is noticed at once (TCP reset); 250 ms between attempts brings
  // us back within ~0.5 s of the server's return without busy-looping.
  reconnectTimeWaitMs: 250,
  reconnectJitterMs: 100,
  reconnectJitterTlsMs: 1_000,
  // A silent (half-open) connection is declared stale after pingIntervalMs × pingsOutstandingMax.
  pingIntervalMs: 10_000,
  pingsOutstandingMax: 3,
  // Bound on close(): drain waits for a flush, which never completes while disconnected.
  closeDrainMs: 5_000,
} as const;

export async function connectBroker(options: ConnectBrokerOptions): Promise<Broker> {
  assert(options.servers.length > 0, "connectBroker: at least one server");
  assert(options.name.length > 0, "connectBroker: a connection name");
  assert(
    Number.isInteger(options.connectTimeoutMs) && options.connectTimeoutMs > 0,
    "connectTimeoutMs > 0",
  );
  const apiTimeoutMs = options.apiTimeoutMs ?? brokerConnectionDefaults.apiTimeoutMs;
  assert(Number.isInteger(apiTimeoutMs) && apiTimeoutMs > 0, "apiTimeoutMs > 0");
  const shown = options.servers.map(redactUrl);

  const connectionOptions = await buildConnectionOptions(options);
  let nc: NatsConnection;
  try {
    nc = await connect(connectionOptions);
  } catch (err) {
    throw new BrokerConnectError(
      `cannot connect to NATS at ${shown.join(", ")} as "${options.name}": ${describeFailure(err)}`,
      shown,
      { cause: err },
    );
  }

  let jsm: JetStreamManager;
  try {
    // checkAPI asks the server for the account's JetStream info, so a server without JetStream
    // fails here, at start-up, rather than at the first publish.
    jsm = await jetstreamManager(nc, { timeout: apiTimeoutMs, checkAPI: true });
  } catch (err) {
    await nc.close().catch(() => undefined);
    if (isJetStreamDisabled(err)) {
      throw new BrokerConfigError(
        `NATS at ${shown.join(", ")}: JetStream is not enabled for this account: ${describeFailure(err)}`,
        { cause: err },
      );
    }
    throw new BrokerConnectError(
      `NATS at ${shown.join(", ")}: the JetStream API did not answer: ${describeFailure(err)}`,
      shown,
      { cause: err },
    );
  }
  const js = jetstream(nc, { timeout: apiTimeoutMs });
  return { nc, js, jsm, close: () => closeConnection(nc) };
}

async function buildConnectionOptions(
  options: ConnectBrokerOptions,
): Promise<NodeConnectionOptions> {
  const d = brokerConnectionDefaults;
  const base: NodeConnectionOptions = {
    servers: options.servers,
    name: options.name,
    timeout: options.connectTimeoutMs,
    reconnect: true,
    maxReconnectAttempts: -1, // forever: the process, not the library, decides when to give up
    // Fail fast when nothing answers at start-up: the caller decides how long to keep trying
    // (`billing start`: nats.startupWaitMs, one log line per attempt) and then exits 2.
    waitOnFirstConnect: false,
    reconnectTimeWait: d.reconnectTimeWaitMs,
    reconnectJitter: d.reconnectJitterMs,
    reconnectJitterTLS: d.reconnectJitterTlsMs,
    pingInterval: d.pingIntervalMs,
    maxPingOut: d.pingsOutstandingMax,
    noRandomize: false,
    ignoreClusterUpdates: false,
    // A repeated auth failure on reconnect closes the connection; the supervisor restarts us.
    ignoreAuthErrorAbort: false,
    noEcho: false,
    verbose: false,
    pedantic: false,
    debug: false,
    // The client otherwise builds an Error (capturing a stack) for every request and publish, so
    // that a later timeout can point at its caller: measured at ~6 % of a service process's CPU
    // (bench/results/e2e.md, profile: RequestError and TimeoutError constructors). Our own errors
    // name the subject and the operation (BrokerUnavailableError), so the trace adds nothing.
    noAsyncTraces: true,
  };
  return { ...base, ...(await authConnectionOptions(options.auth)) };
}

/** The authenticator and TLS options of a connection; clients (the CLI) use them too. */
export async function authConnectionOptions(
  auth: BrokerAuthOptions | undefined,
): Promise<Pick<NodeConnectionOptions, "authenticator" | "tls">> {
  if (auth === undefined) return {};
  const authenticator = await buildAuthenticator(auth);
  return {
    ...(authenticator === null ? {} : { authenticator }),
    ...(auth.tls === undefined ? {} : { tls: buildTls(auth.tls) }),
  };
}

// Exactly one authentication method, or none (TLS alone may authenticate by client certificate).
async function buildAuthenticator(auth: BrokerAuthOptions): Promise<Authenticator | null> {
  const methods = [
    auth.user !== undefined ? "user" : null,
    auth.token !== undefined ? "token" : null,
    auth.nkeySeed !== undefined ? "nkeySeed" : null,
    auth.credsFile !== undefined ? "credsFile" : null,
  ].filter((m): m is string => m !== null);
  if (methods.length > 1) {
    throw new BrokerConfigError(
      `NATS auth: choose one of user/pass, token, nkeySeed, credsFile; got ${methods.join(", ")}`,
    );
  }
  if (auth.pass !== undefined && auth.user === undefined) {
    throw new BrokerConfigError("NATS auth: pass is set without user");
  }
  if (auth.user !== undefined) return usernamePasswordAuthenticator(auth.user, auth.pass);
  if (auth.token !== undefined) return tokenAuthenticator(auth.token);
  if (auth.nkeySeed !== undefined)
    return nkeyAuthenticator(new TextEncoder().encode(auth.nkeySeed));
  if (auth.credsFile !== undefined) {
    let creds: Uint8Array;
    try {
      creds = await readFile(auth.credsFile);
    } catch (err) {
      throw new BrokerConfigError(
        `NATS auth: cannot read credsFile ${auth.credsFile}: ${describeFailure(err)}`,
        { cause: err },
      );
    }
    return credsAuthenticator(creds);
  }
  return null;
}

function buildTls(tls: BrokerTlsOptions): NonNullable<NodeConnectionOptions["tls"]> {
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new BrokerConfigError("NATS tls: certFile and keyFile go together");
  }
  // The node transport reads the files itself at connect time; a missing file fails connect.
  return {
    rejectUnauthorized: true,
    ...(tls.caFile !== undefined ? { caFile: tls.caFile } : {}),
    ...(tls.certFile !== undefined ? { certFile: tls.certFile } : {}),
    ...(tls.keyFile !== undefined ? { keyFile: tls.keyFile } : {}),
  };
}

async function closeConnection(nc: NatsConnection): Promise<void> {
  if (nc.isClosed()) return;
  if (!nc.isDraining()) {
    const drained = nc.drain().catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, brokerConnectionDefaults.closeDrainMs);
    });
    await Promise.race([drained, bound]);
    clearTimeout(timer);
  }
  if (!nc.isClosed()) await nc.close();
}

// No responders on $JS.API (the client names it JetStreamNotEnabled) or the account's error 10039.
function isJetStreamDisabled(err: unknown): boolean {
  if (err instanceof JetStreamApiError)
    return err.code === JetStreamApiCodes.JetStreamNotEnabledForAccount;
  return err instanceof Error && err.name === "JetStreamNotEnabled";
}

// nats://user:secret@host:4222 → nats://***@host:4222, so that errors never print credentials.
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, "//***@");
}
