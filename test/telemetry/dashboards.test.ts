// Proves the on-call files in config/ name only what a running service exports: every metric in
// the Grafana dashboard's PromQL (config/grafana/billing-dashboard.json) and in the Prometheus
// alert rules (config/prometheus/alerts.yml) appears in a real process's /metrics, as the exact
// series name (a histogram's _bucket/_count suffix included), with every label the expression
// selects on. The service is a real `billing start` on a test nats-server; the test first drives an
// applied command, a rejection, a dead letter and two queries so that labelled series exist. It also
// checks that the dashboard and the alerts cover what on-call watches: throughput, p99 latency,
// backlog, dead letters, unpublished-event age, ledger errors and the process count.
//
// No YAML parser is installed: the rules file keeps each expression on one `expr: '...'` line,
// and the test reads only those lines (and fails on a rule whose expr is not written so).
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BillingClient } from "@billing-ledger/client";
import { freePort, startNats, type NatsServer } from "../support/nats-server.ts";
import { spawnService, workspace, type ServiceProcess } from "../support/service.ts";
import { waitFor } from "../support/streams.ts";
import { get, sample } from "./fixture.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const DASHBOARD = `${ROOT}config/grafana/billing-dashboard.json`;
const ALERTS = `${ROOT}config/prometheus/alerts.yml`;
/** Our metrics and prom-client's process metrics; `up` and the like are Prometheus's own. */
const METRIC = /\b(?:billing|process|nodejs)_[A-Za-z0-9_]+\b/g;

type Panel = { title?: string; targets?: Array<{ expr?: string }>; panels?: Panel[] };

function dashboardExpressions(text: string): string[] {
  const walk = (panels: Panel[]): string[] =>
    panels.flatMap((p) => [...(p.targets ?? []).map((t) => t.expr ?? ""), ...walk(p.panels ?? [])]);
  return walk((JSON.parse(text) as { panels: Panel[] }).panels).filter((e) => e !== "");
}

function alertExpressions(text: string): string[] {
  const lines = text.split("\n");
  const alerts = lines.filter((l) => /^\s*- alert:/.test(l)).length;
  const exprs = lines
    .map((l) => /^\s*expr:\s*'((?:[^']|'')*)'\s*$/.exec(l)?.[1])
    .filter((e): e is string => e !== undefined)
    .map((e) => e.replaceAll("''", "'"));
  const written = lines.filter((l) => /^\s*expr:/.test(l)).length;
  if (exprs.length !== written)
    throw new Error(
      `${written - exprs.length} expr lines of alerts.yml are not one single-quoted line`,
    );
  if (exprs.length !== alerts)
    throw new Error(`alerts.yml has ${alerts} alerts but ${exprs.length} expr lines`);
  return exprs;
}

/** metric name → the label names its selectors in `expr` use (`name{label="…"}`). */
function selections(expr: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const m of expr.matchAll(METRIC)) {
    const name = m[0];
    const labels = out.get(name) ?? new Set<string>();
    const after = expr.slice((m.index ?? 0) + name.length);
    const selector = /^\{([^}]*)\}/.exec(after)?.[1] ?? "";
    for (const l of selector.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g))
      labels.add(l[1] as string);
    out.set(name, labels);
  }
  return out;
}

/** Series name → the label names its samples carry, from the Prometheus text format. */
function exposition(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!m) continue;
    const labels = out.get(m[1] as string) ?? new Set<string>();
    for (const l of (m[2] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g))
      labels.add(l[1] as string);
    out.set(m[1] as string, labels);
  }
  return out;
}

describe("ops – the Grafana dashboard and the Prometheus alerts", () => {
  let nats: NatsServer;
  let service: ServiceProcess;
  let client: BillingClient;
  let metrics = "";
  const ws = workspace();

  beforeAll(async () => {
    nats = await startNats();
    const port = await freePort();
    service = await spawnService(nats.url, ws.ledgerPath, ws.configPath, {
      OPS_PORT: String(port),
    });
    client = await BillingClient.connect({ servers: nats.url, timeoutMs: 15_000 });
    await client.credit({ userId: "dash-a", amount: 100 }, { wait: true });
    await client.debit({ userId: "dash-a", amount: 10_000 }, { wait: true }); // rejected: insufficient funds
    await client.publishRaw("billing.cmd.debit", new TextEncoder().encode("not json"), undefined); // a dead letter
    await client.balance("dash-a");
    await client.balance("").catch(() => undefined); // refused: an invalid query
    metrics = await waitFor(
      "the dead letter counted",
      async () => {
        const text = (await get(`http://127.0.0.1:${port}/metrics`)).body;
        return (sample(text, "billing_dead_letters_total", { reason: "malformed" }) ?? 0) >= 1
          ? text
          : undefined;
      },
      30_000,
      200,
    );
  }, 90_000);

  afterAll(async () => {
    await client?.close();
    await service?.kill("SIGTERM");
    await nats?.stop();
    ws.cleanup();
  });

  const files = [
    {
      file: "the dashboard",
      expressions: () => dashboardExpressions(readFileSync(DASHBOARD, "utf8")),
    },
    { file: "the alert rules", expressions: () => alertExpressions(readFileSync(ALERTS, "utf8")) },
  ];

  it.each(files)(
    "every metric $file names is exported by a running service, with every label it selects on",
    ({ expressions }) => {
      const exported = exposition(metrics);
      const exprs = expressions();
      expect(exprs.length).toBeGreaterThan(5);
      const problems: string[] = [];
      for (const expr of exprs) {
        for (const [name, labels] of selections(expr)) {
          const have = exported.get(name);
          if (have === undefined) {
            problems.push(`${name} (in ${expr}) is not exported`);
            continue;
          }
          for (const label of labels)
            if (!have.has(label)) problems.push(`${name} has no label ${label} (in ${expr})`);
        }
      }
      expect(problems).toEqual([]);
    },
  );

  it("the dashboard and the alerts cover throughput, p99 latency, backlog, dead letters, unpublished-event age, ledger errors and the process count", () => {
    const dashboard = dashboardExpressions(readFileSync(DASHBOARD, "utf8")).join("\n");
    const alerts = alertExpressions(readFileSync(ALERTS, "utf8")).join("\n");
    const topics: Array<[string, RegExp]> = [
      ["throughput", /rate\(billing_commands_settled_total/],
      [
        "p99 latency",
        /histogram_quantile\(0\.99, .*billing_ledger_request_duration_seconds_bucket/,
      ],
      ["backlog", /billing_consumer_pending_messages/],
      [
        "dead letters",
        /billing_dead_letters_total[\s\S]*billing_max_deliveries_advisories_total|billing_max_deliveries_advisories_total[\s\S]*billing_dead_letters_total/,
      ],
      ["unpublished-event age", /billing_events_unstored_oldest_age_seconds/],
      ["ledger errors", /billing_ledger_request_duration_seconds_count\{result="error"\}/],
      ["process count", /billing_build_info/],
    ];
    for (const [topic, pattern] of topics) {
      expect(pattern.test(dashboard), `the dashboard shows ${topic}`).toBe(true);
      expect(pattern.test(alerts), `an alert watches ${topic}`).toBe(true);
    }
  });

  it("the metric check finds a name the service does not export", () => {
    const exported = exposition(metrics);
    expect(exported.has("billing_commands_settled_total")).toBe(true);
    expect(
      [...selections('sum(rate(billing_commands_setled_total{outcome="nak"}[5m]))').keys()].every(
        (n) => exported.has(n),
      ),
    ).toBe(false);
    expect(exported.get("billing_commands_settled_total")?.has("reason")).toBe(false);
  });
});
