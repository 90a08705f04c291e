// What running the compiled service (bin/billing.js → dist/) changes against running its
// TypeScript through tsx (bin/billing-dev.js → src/): start time (spawn to the "service started"
// line), resident memory when ready and after N commands, and CPU time per command (the whole
// process: main thread and ledger thread, from /proc/<pid>/stat). Plain JavaScript run by node, so
// the harness itself loads no TypeScript; it drives the service through the client package.
//
//   npm run build && node bench/compiled-vs-tsx.mjs [rounds=7] [commands=2000]
//
// One nats-server (random port, temp store) and one ledger file for the whole run; the variants
// alternate in every round (AB, BA, AB, …) so load that drifts on a shared machine falls on both;
// medians are printed. tsx's transform cache is warm after the first round (as on a developer's
// machine); round 1 is included.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BillingClient } from "@billing-ledger/client";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const NATS_SERVER_BIN = "/usr/sbin/nats-server";
const VARIANTS = { compiled: "bin/billing.js", tsx: "bin/billing-dev.js" };
const ROUNDS = Number(process.argv[2] ?? 7);
const COMMANDS = Number(process.argv[3] ?? 2000);
/** Publishes in flight at once; each awaits its JetStream acknowledgement. */
const IN_FLIGHT_MAX = 64;
const READY_TIMEOUT_MS = 60_000;
const EVENTS_TIMEOUT_MS = 120_000;
const EXIT_TIMEOUT_MS = 15_000;
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
const PAGE_BYTES = Number(execFileSync("getconf", ["PAGESIZE"], { encoding: "utf8" }).trim());

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** CPU seconds (user + system, all threads) and resident bytes of a live process. */
function usage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After "pid (comm) ": field 3 is state, so utime (14) and stime (15) are at 11 and 12, rss (24) at 21.
  return {
    cpuS: (Number(fields[11]) + Number(fields[12])) / CLK_TCK,
    rssBytes: Number(fields[21]) * PAGE_BYTES,
  };
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function startService(variant, env) {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [join(ROOT, VARIANTS[variant]), "start"], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${variant}: not ready within ${READY_TIMEOUT_MS} ms:\n${out}`)),
      READY_TIMEOUT_MS,
    );
    const onData = (chunk) => {
      out = (out + chunk.toString()).slice(-20_000);
      if (out.includes('"msg":"service started"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    exited.then(({ code, signal }) =>
      reject(new Error(`${variant}: exited (${code ?? signal}) before it was ready:\n${out}`)),
    );
  });
  const readyMs = Number(process.hrtime.bigint() - started) / 1e6;
  return { child, exited, readyMs };
}

/** Publishes `count` credits and resolves when their `count` events arrived. */
async function drive(client, round, variant, count) {
  const sub = client.nc.subscribe("billing.evt.>");
  let seen = 0;
  const allEvents = (async () => {
    for await (const _ of sub) if (++seen === count) return;
  })();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await client.credit({ userId: `bench-${variant}-${round}-${i % 100}`, amount: "1" });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT_MAX }, worker));
  let timer;
  await Promise.race([
    allEvents,
    new Promise(
      (_, reject) =>
        (timer = setTimeout(
          () => reject(new Error(`only ${seen}/${count} events`)),
          EVENTS_TIMEOUT_MS,
        )),
    ),
  ]);
  clearTimeout(timer);
  sub.unsubscribe();
}

async function trial(variant, round, env, client) {
  const service = await startService(variant, env);
  const pid = service.child.pid;
  const ready = usage(pid);
  await drive(client, round, variant, COMMANDS);
  const after = usage(pid);
  service.child.kill("SIGTERM");
  const timer = setTimeout(() => service.child.kill("SIGKILL"), EXIT_TIMEOUT_MS);
  await service.exited;
  clearTimeout(timer);
  return {
    readyMs: service.readyMs,
    startCpuMs: ready.cpuS * 1000,
    readyRssMiB: ready.rssBytes / 2 ** 20,
    afterRssMiB: after.rssBytes / 2 ** 20,
    cpuUsPerCommand: ((after.cpuS - ready.cpuS) * 1e6) / COMMANDS,
  };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "billing-bench-compiled-"));
  const port = await freePort();
  const nats = spawn(
    NATS_SERVER_BIN,
    ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", join(dir, "nats")],
    { stdio: "ignore" },
  );
  try {
    const configPath = join(dir, "config.json");
    writeFileSync(configPath, JSON.stringify({ ops: { port: 0 } }));
    const env = {
      NATS_URL: `nats://127.0.0.1:${port}`,
      LEDGER_PATH: join(dir, "ledger.db"),
      BILLING_CONFIG: configPath,
      LOG_LEVEL: "info",
    };
    let client;
    for (let attempt = 0; !client; attempt++) {
      try {
        client = await BillingClient.connect({
          servers: env.NATS_URL,
          timeoutMs: 30_000,
          maxReconnectAttempts: 0,
        });
      } catch (error) {
        if (attempt > 50) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const results = { compiled: [], tsx: [] };
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 ? ["compiled", "tsx"] : ["tsx", "compiled"];
      for (const variant of order) {
        const r = await trial(variant, round, env, client);
        results[variant].push(r);
        process.stderr.write(
          `round ${round} ${variant}: ${JSON.stringify(r, (_, v) => (typeof v === "number" ? Math.round(v * 10) / 10 : v))}\n`,
        );
      }
    }
    await client.close();
    const rows = [
      ['start: spawn to "service started" (ms)', "readyMs"],
      ["start: CPU time to ready (ms)", "startCpuMs"],
      ["RSS when ready (MiB)", "readyRssMiB"],
      [`RSS after ${COMMANDS} commands (MiB)`, "afterRssMiB"],
      ["CPU per command (µs, whole process)", "cpuUsPerCommand"],
    ];
    const lines = [
      `${ROUNDS} interleaved rounds, ${COMMANDS} credits per trial, ${IN_FLIGHT_MAX} publishes in flight; medians. Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}).`,
      "",
      "| | compiled (`bin/billing.js`) | tsx (`bin/billing-dev.js`) | compiled / tsx |",
      "|---|---:|---:|---:|",
    ];
    for (const [label, key] of rows) {
      const c = median(results.compiled.map((r) => r[key]));
      const t = median(results.tsx.map((r) => r[key]));
      lines.push(
        `| ${label} | ${c.toFixed(key === "readyMs" || key === "startCpuMs" ? 0 : 1)} | ${t.toFixed(key === "readyMs" || key === "startCpuMs" ? 0 : 1)} | ${(c / t).toFixed(2)} |`,
      );
    }
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    nats.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
