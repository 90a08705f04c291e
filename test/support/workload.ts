// A deterministic mixed workload: credits, debits, holds, captures and releases (some published
// before their hold), transfers with and without fee, over a set of users.
import { randomUUID } from "node:crypto";

export type Command = { subject: string; body: Record<string, unknown>; operationId: string };

/** A small seeded generator (mulberry32), so a failing run can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function mixedWorkload(count: number, users: number, seed: number, prefix = "w"): Command[] {
  const random = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const names = Array.from({ length: users }, (_, i) => `${prefix}-${i}`);
  const commands: Command[] = names.map((userId) => ({
    subject: "billing.cmd.credit",
    operationId: randomUUID(),
    body: { userId, amount: String(1000 + Math.floor(random() * 9000)) },
  }));
  const holds: string[] = [];
  while (commands.length < count) {
    const r = random();
    const operationId = randomUUID();
    const amount = String(1 + Math.floor(random() * 400));
    if (r < 0.3)
      commands.push({
        subject: "billing.cmd.credit",
        operationId,
        body: { userId: pick(names), amount },
      });
    else if (r < 0.55)
      commands.push({
        subject: "billing.cmd.debit",
        operationId,
        body: { userId: pick(names), amount },
      });
    else if (r < 0.7) {
      commands.push({
        subject: "billing.cmd.hold",
        operationId,
        body: { userId: pick(names), amount },
      });
      holds.push(operationId);
    } else if (r < 0.82 && holds.length > 0) {
      const holdId = holds.splice(Math.floor(random() * holds.length), 1)[0] as string;
      commands.push({
        subject: random() < 0.6 ? "billing.cmd.capture" : "billing.cmd.release",
        operationId,
        body: { holdId },
      });
    } else {
      const from = pick(names);
      let to = pick(names);
      if (to === from) to = names[(names.indexOf(from) + 1) % names.length] as string;
      const fee = random() < 0.5 ? { fee: String(Math.floor(random() * 10)) } : {};
      commands.push({
        subject: "billing.cmd.transfer",
        operationId,
        body: { fromUserId: from, toUserId: to, amount, ...fee },
      });
    }
  }
  // A few captures go out just before their hold (they must wait for it, not fail).
  for (let i = 0; i + 1 < commands.length; i += 97) {
    const a = commands[i] as Command;
    const b = commands[i + 1] as Command;
    if (b.subject === "billing.cmd.capture" && a.subject === "billing.cmd.hold")
      [commands[i], commands[i + 1]] = [b, a];
  }
  return commands.map((c) => ({ ...c, body: { operationId: c.operationId, ...c.body } }));
}

/** Runs `task` over items with at most `limit` in flight. */
export async function inParallel<T>(
  items: ReadonlyArray<T>,
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++] as T);
    }),
  );
}
