// Proves that docker-compose.yml's two brokers, the single node and the `cluster` profile, are
// what the code expects: the cluster's three NATS nodes mount config files that nats-server 2.9.10
// itself accepts (`nats-server -t`), that name each node as compose does, route to all three and
// keep JetStream in the node's volume; the cluster's service connects to all three and its config
// file (loaded as the service loads it) makes every stream and consumer the code creates R3, as
// many replicas as there are nodes; the single node's service keeps R1. The compose file is read
// with a minimal reader for the fields checked here (no YAML dependency), the NATS files with a
// minimal reader of the NATS config format; a field either reader cannot find fails the test.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { consumerConfig, streamConfigs } from "../../src/broker/topology.ts";
import { loadConfig } from "../../src/config/load.ts";
import { topologyOf } from "../../src/config/topology.ts";
import { advisoryConsumerConfig } from "../../src/dlq/max-deliveries-processor.ts";
import { NATS_SERVER_BIN } from "../support/nats-server.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const NODES = ["nats-1", "nats-2", "nats-3"];

type Field = string | string[] | Record<string, string>;
type Service = Record<string, Field>;

/**
 * The `services:` of a compose file, two levels deep: each service's keys, with a scalar, a flow
 * list (`["a", "b"]`), a block list (`- a`) or a block map (`KEY: value`) as value. Deeper lines
 * (a block scalar's text) are skipped.
 */
export function composeServices(text: string): Record<string, Service> {
  const services: Record<string, Service> = {};
  let inServices = false;
  let service: Service | null = null;
  let key: string | null = null;
  const scalar = (v: string): string =>
    v
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .replace(/^'(.*)'$/, "$1");
  for (const raw of text.split("\n")) {
    if (raw.trim() === "" || raw.trim().startsWith("#")) continue;
    const indent = raw.length - raw.trimStart().length;
    const line = raw.trim();
    if (indent === 0) {
      inServices = line === "services:";
      continue;
    }
    if (!inServices) continue;
    if (indent === 2) {
      service = {};
      services[line.replace(/:$/, "")] = service;
    } else if (indent === 4 && service !== null) {
      const m = /^([\w-]+):\s*(.*)$/.exec(line);
      if (m === null) throw new Error(`compose: cannot read "${line}"`);
      key = m[1] as string;
      const value = m[2] as string;
      if (value.startsWith("[")) service[key] = JSON.parse(value) as string[];
      else if (value !== "") service[key] = scalar(value);
    } else if (indent === 6 && service !== null && key !== null) {
      if (line.startsWith("- ")) {
        const list = (service[key] ??= []) as string[];
        list.push(scalar(line.slice(2)));
      } else {
        const m = /^([\w-]+):\s*(.*)$/.exec(line);
        if (m === null) throw new Error(`compose: cannot read "${line}"`);
        const map = (service[key] ??= {}) as Record<string, string>;
        map[m[1] as string] = scalar(m[2] as string);
      }
    }
  }
  return services;
}

type Conf = { [key: string]: string | Conf | string[] };

/** The NATS config format as these files use it: `key: value`, `key { … }`, `key: [ … ]`, `#` comments. */
export function natsConf(text: string): Conf {
  const tokens =
    text.replace(/#.*$/gm, "").match(/[{}[\]]|[^\s{}[\]:=]+(?::\/\/[^\s{}[\]]+)?|[:=]/g) ?? [];
  let i = 0;
  const object = (): Conf => {
    const out: Conf = {};
    while (i < tokens.length && tokens[i] !== "}") {
      const key = tokens[i++] as string;
      if (tokens[i] === ":" || tokens[i] === "=") i += 1;
      const open = tokens[i++];
      if (open === "{") {
        out[key] = object();
        i += 1; // "}"
      } else if (open === "[") {
        const list: string[] = [];
        while (tokens[i] !== "]" && i < tokens.length) list.push(tokens[i++] as string);
        i += 1;
        out[key] = list;
      } else {
        out[key] = open as string;
      }
    }
    return out;
  };
  return object();
}

const compose = composeServices(readFileSync(join(ROOT, "docker-compose.yml"), "utf8"));

/** A compose volume "./host/path:/container/path[:ro]" → the repository file it mounts. */
function mountedFile(service: Service, target: string): string {
  const volume = (service["volumes"] as string[] | undefined)?.find(
    (v) => v.split(":")[1] === target,
  );
  expect(volume, `a volume mounted at ${target}`).toBeDefined();
  return join(ROOT, (volume as string).split(":")[0] as string);
}

function serviceConfig(name: string): ReturnType<typeof loadConfig> {
  const service = compose[name] as Service;
  const env = service["environment"] as Record<string, string>;
  // The service's /app is the repository (`.:/app`).
  const file = join(ROOT, (env["BILLING_CONFIG"] as string).replace(/^\/app\//, ""));
  expect(existsSync(file), file).toBe(true);
  return loadConfig({ BILLING_CONFIG: file, NATS_URL: env["NATS_URL"] });
}

describe("docker-compose – the single node and the cluster profile match what the code creates", () => {
  it("every service on TigerBeetle names the replica by the fixed address compose gives it (the client refuses host names) and shares its network", () => {
    const text = readFileSync(join(ROOT, "docker-compose.yml"), "utf8");
    const address = /ipv4_address:\s*([0-9.]+)/.exec(text)?.[1];
    expect(address, "the tigerbeetle service's fixed address").toBeDefined();
    const tbNetworks = Object.keys(
      (compose["tigerbeetle"] as Service)["networks"] as Record<string, string>,
    );
    const users = Object.entries(compose).filter(
      ([, s]) =>
        (s["environment"] as Record<string, string> | undefined)?.["TB_ADDRESSES"] !== undefined,
    );
    expect(users.map(([n]) => n).sort()).toEqual(["billing", "billing-cluster"]);
    for (const [name, s] of users) {
      const value = (
        (s["environment"] as Record<string, string>)["TB_ADDRESSES"] as string
      ).replace(/\s+#.*$/, "");
      for (const a of value.split(","))
        expect({ name, address: a.split(":")[0] }).toEqual({ name, address });
      expect({
        name,
        shared: (s["networks"] as string[]).some((n) => tbNetworks.includes(n)),
      }).toEqual({ name, shared: true });
    }
  });

  it("three NATS nodes in the cluster profile, the single node's image, each with a config file nats-server 2.9.10 accepts", () => {
    const single = compose["nats"] as Service;
    for (const name of NODES) {
      const node = compose[name] as Service;
      expect(node, name).toBeDefined();
      expect(node["profiles"]).toEqual(["cluster"]);
      expect(node["image"]).toBe(single["image"]);
      const command = node["command"] as string[];
      expect(command[0]).toBe("-c");
      const file = mountedFile(node, command[1] as string);
      const test = spawnSync(NATS_SERVER_BIN, ["-t", "-c", file], {
        encoding: "utf8",
        timeout: 10_000,
      });
      expect(test.status, `${file}: ${test.stdout}${test.stderr}`).toBe(0);
    }
    const hostPorts = NODES.map(
      (n) => ((compose[n] as Service)["ports"] as string[])[0]?.split(":")[1],
    );
    expect(new Set(hostPorts).size).toBe(NODES.length);
    expect(hostPorts).not.toContain("4222"); // beside the single node, not instead of it
  });

  it("each node's file names the node as compose does, routes to all three, and keeps JetStream in the node's volume", () => {
    const confs = NODES.map((name) => {
      const node = compose[name] as Service;
      return {
        name,
        node,
        conf: natsConf(
          readFileSync(mountedFile(node, (node["command"] as string[])[1] as string), "utf8"),
        ),
      };
    });
    const clusterNames = new Set(confs.map((c) => (c.conf["cluster"] as Conf)["name"]));
    expect(clusterNames.size).toBe(1);
    for (const { name, node, conf } of confs) {
      expect(conf["server_name"]).toBe(name);
      const store = (conf["jetstream"] as Conf)["store_dir"];
      expect(
        (node["volumes"] as string[]).some((v) => v === `${name}-data:${String(store)}`),
        `${name} keeps ${String(store)} in its volume`,
      ).toBe(true);
      // The container port compose publishes is the one the node listens on.
      expect(((node["ports"] as string[])[0] as string).split(":")[2]).toBe(conf["port"]);
      const cluster = conf["cluster"] as Conf;
      const routes = (cluster["routes"] as string[]).slice().sort();
      expect(routes).toEqual(NODES.map((n) => `nats-route://${n}:${String(cluster["port"])}`));
    }
  });

  it("the cluster's service connects to every node and creates every stream and consumer with as many replicas as there are nodes; the single node's keeps one", () => {
    const config = serviceConfig("billing-cluster");
    const confs = NODES.map((name) =>
      natsConf(readFileSync(mountedFile(compose[name] as Service, "/etc/nats/nats.conf"), "utf8")),
    );
    expect([...config.nats.servers].sort()).toEqual(
      NODES.map((n, i) => `nats://${n}:${String(confs[i]?.["port"])}`),
    );
    expect(config.streams.replicas).toBe(NODES.length);
    const topology = topologyOf(config);
    const streams = streamConfigs(topology);
    expect(streams.map((s) => s.name).sort()).toEqual(
      [
        config.streams.advisories,
        config.streams.commands,
        config.streams.deployment,
        config.streams.dlq,
        config.streams.events,
      ].sort(),
    );
    for (const s of streams)
      expect({ stream: s.name, replicas: s.num_replicas }).toEqual({
        stream: s.name,
        replicas: NODES.length,
      });
    expect(consumerConfig(topology).num_replicas).toBe(NODES.length);
    expect(advisoryConsumerConfig(config).num_replicas).toBe(NODES.length);
    expect((compose["billing-cluster"] as Service)["profiles"]).toEqual(["cluster"]);

    const single = serviceConfig("billing");
    expect(single.nats.servers).toEqual(["nats://nats:4222"]);
    for (const s of streamConfigs(topologyOf(single)))
      expect({ stream: s.name, replicas: s.num_replicas }).toEqual({ stream: s.name, replicas: 1 });
  });
});
