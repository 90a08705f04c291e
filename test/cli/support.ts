// Runs the real `billing` command (node bin/billing.js) as a child process, asynchronously (a
// service under test may run in this process), with a deadline, and returns what it printed.
import { spawn } from "node:child_process";

const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;
/** A CLI call that has not ended by then is killed and fails the test. */
const RUN_DEADLINE_MS = 60_000;

export type Run = { code: number | null; stdout: string; stderr: string };

export function billing(
  args: string[],
  env: Record<string, string> = {},
  input?: string | Buffer,
): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, LOG_LEVEL: "warn", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  child.stdin.on("error", () => undefined); // a CLI that stops reading early closes its end
  if (input !== undefined) child.stdin.end(input);
  else child.stdin.end();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `billing ${args.join(" ")} did not end within ${RUN_DEADLINE_MS} ms:\n${stdout}\n${stderr}`,
        ),
      );
    }, RUN_DEADLINE_MS);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** One line on stderr, without a stack trace. */
export function oneLine(r: Run): string {
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  if (lines.length !== 1 || /^\s+at /m.test(r.stderr))
    throw new Error(`expected one line on stderr, got:\n${r.stderr}`);
  return lines[0] as string;
}
