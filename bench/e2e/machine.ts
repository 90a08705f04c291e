// What the figures were measured on: printed at the top of every results page.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { availableParallelism } from "node:os";
import { NATS_SERVER_BIN } from "../../test/support/nats-server.ts";

export type Machine = {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  natsServer: string;
  kernel: string;
  date: string;
};

export function describeMachine(): Machine {
  let natsServer = "unknown";
  try {
    natsServer = execFileSync(NATS_SERVER_BIN, ["--version"], { encoding: "utf8" })
      .trim()
      .replace(/^nats-server:\s*/, "");
  } catch {
    // Reported as unknown; every run needs the binary anyway and fails loudly without it.
  }
  let kernel = "unknown";
  try {
    kernel = execFileSync("uname", ["-r"], { encoding: "utf8" }).trim();
  } catch {
    // Only informative.
  }
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    natsServer,
    kernel,
    date: new Date().toISOString(),
  };
}

/** Which code was measured: a snapshot's SNAPSHOT note, else the commit and whether src/ differs from it. */
export function describeTree(root: string): string {
  try {
    return readFileSync(join(root, "SNAPSHOT"), "utf8").trim();
  } catch {
    // Not a snapshot: ask git.
  }
  try {
    const head = execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
    }).trim();
    const dirty = execFileSync(
      "git",
      ["-C", root, "status", "--porcelain", "--", "src", "bin", "config"],
      { encoding: "utf8" },
    ).trim();
    return `${head}${dirty ? " with uncommitted changes in src/bin/config" : ""}`;
  } catch {
    return "unknown";
  }
}
