// The operations HTTP endpoint of one service process: /metrics (Prometheus text), /healthz (the
// process is alive) and /readyz (it can do its work: NATS and the ledger answer). Several
// processes may share a machine and a configured port: the first binds it, the others log a
// warning and bind an ephemeral port, which they publish in the service description (unless
// ops.portInUse is "exit": then a taken port is a start-up error).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import type { Registry } from "prom-client";
import { ConfigError } from "../config/load.ts";
import { AssertionError } from "../lib/assert.ts";
import { exitOnBug } from "../lib/failure.ts";
import type { Logger } from "../lib/log.ts";
import type { WorkerStats } from "../worker/stats.ts";
import { within } from "../lib/deadline.ts";
import { describeFailure } from "../lib/failure.ts";
import { telemetryLimits } from "../config/limits.ts";
import type { ReadyReport } from "./readiness.ts";
import { registerWorkerMetrics, type ConsumerInfo } from "./worker-metrics.ts";

export type TelemetryServerDeps = {
  host: string;
  /** 0 disables the server: startTelemetryServer returns null. */
  port: number;
  /** When the port is taken: bind a free one and warn (the default), or fail with a ConfigError. */
  portInUse?: "ephemeral" | "exit";
  stats: WorkerStats;
  registry: Registry;
  ready: () => Promise<ReadyReport>;
  consumerInfo: ConsumerInfo;
  log: Logger;
};

export type TelemetryServer = {
  /** The port actually bound: the configured one, or an ephemeral one when it was in use. */
  port: number;
  /** http://<host>:<port>, with this machine's name when bound to every interface. */
  url: string;
  close(): Promise<void>;
};

export async function startTelemetryServer(
  deps: TelemetryServerDeps,
): Promise<TelemetryServer | null> {
  if (deps.port === 0) return null;
  const metrics = registerWorkerMetrics(deps.registry, deps.stats, deps.consumerInfo, deps.log);
  const server = createServer(
    {
      requestTimeout: telemetryLimits.httpRequestTimeoutMs,
      headersTimeout: telemetryLimits.httpRequestTimeoutMs,
      keepAliveTimeout: telemetryLimits.httpKeepAliveMs,
    },
    (req, res) => {
      void route(deps, req, res).catch((error: unknown) => {
        if (error instanceof AssertionError) exitOnBug(deps.log, error, "the operations endpoint");
        deps.log.warn({ err: describeFailure(error), url: req.url }, "operations request failed");
        if (!res.headersSent)
          send(res, 500, "text/plain; charset=utf-8", `${describeFailure(error)}\n`);
        else res.destroy();
      });
    },
  );
  server.maxConnections = telemetryLimits.httpConnectionsMax;
  let port: number;
  try {
    port = await listen(server, deps.host, deps.port, deps.portInUse ?? "ephemeral", deps.log);
  } catch (error) {
    metrics.unregister();
    throw error;
  }
  const url = `http://${urlHost(deps.host)}:${port}`;
  deps.log.info({ url }, "operations endpoint listening");
  return {
    port,
    url,
    close: async () => {
      metrics.unregister();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * Binds host:port; when the port is taken, warns and binds an ephemeral port instead (or, with
 * portInUse "exit", fails with a ConfigError: a pinned port must be this process's). Any other
 * failure (a host this machine does not have, a port it may not bind) is the configuration's: a
 * ConfigError naming both keys, so `billing start` exits 2 with one line.
 */
async function listen(
  server: Server,
  host: string,
  port: number,
  portInUse: "ephemeral" | "exit",
  log: Logger,
): Promise<number> {
  try {
    return await listenOnce(server, host, port);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EADDRINUSE")
      throw new ConfigError(
        `ops.host ${host}, ops.port (OPS_PORT) ${port}: cannot serve the operations endpoint there: ${code ?? describeFailure(error)}`,
        { cause: error },
      );
    if (portInUse === "exit")
      throw new ConfigError(
        `ops.port (OPS_PORT) ${port} on ${host} is in use by another process, and ops.portInUse is "exit"`,
        { cause: error },
      );
    const actual = await listenOnce(server, host, 0);
    log.warn(
      { host, configuredPort: port, port: actual },
      "operations port in use (another service process on this machine?); bound an ephemeral port instead",
    );
    return actual;
  }
}

function listenOnce(server: Server, host: string, port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once("error", onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "::") return hostname();
  return host.includes(":") ? `[${host}]` : host;
}

async function route(
  deps: TelemetryServerDeps,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    send(res, 405, "text/plain; charset=utf-8", "only GET and HEAD\n");
    return;
  }
  switch (path) {
    case "/metrics":
      send(res, 200, deps.registry.contentType, await deps.registry.metrics());
      return;
    case "/healthz":
      send(
        res,
        200,
        "application/json",
        `${JSON.stringify({ alive: true, uptimeSeconds: Math.floor(process.uptime()) })}\n`,
      );
      return;
    case "/readyz": {
      const report = await within(
        deps.ready(),
        telemetryLimits.readyTimeoutMs,
        "the readiness check",
      ).catch((error: unknown): ReadyReport => {
        if (error instanceof AssertionError) throw error;
        return {
          ready: false,
          checks: { readiness: { ok: false, detail: describeFailure(error) } },
        };
      });
      send(res, report.ready ? 200 : 503, "application/json", `${JSON.stringify(report)}\n`);
      return;
    }
    default:
      send(res, 404, "text/plain; charset=utf-8", "not found; try /metrics, /healthz or /readyz\n");
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    "content-type": contentType,
    "cache-control": "no-store",
    "content-length": Buffer.byteLength(body),
  });
  res.end(res.req.method === "HEAD" ? undefined : body);
}
