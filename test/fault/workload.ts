// The fault suite's workload: a seeded stream of mixed commands over a few hundred users in two
// currencies: credits, debits, holds (some with a timeout of 1–3 s, so they expire during the run),
// captures and releases (a few of holds already resolved), transfers with and without a fee, and a
// few commands the service rejects before the ledger. Every command published is recorded, with the
// stream sequence of each stored copy, so the verification knows exactly what went in.
import { randomUUID } from "node:crypto";
import { rng } from "../support/workload.ts";
import { sleep, type FaultEnv } from "./harness.ts";

export type Published = {
  operationId: string;
  subject: string;
  body: Record<string, unknown>;
  data: Uint8Array;
  /** Stream sequences of the stored copies (a re-publish outside the window stores another). */
  sequences: number[];
  /** When its first publish began (ms since the epoch): the start of its publish→event latency. */
  sentAtMs: number;
};

const encoder = new TextEncoder();

export class Workload {
  readonly published = new Map<string, Published>();
  private readonly random: () => number;
  private readonly users: string[];
  private readonly holds: string[] = [];
  private readonly resolved: string[] = [];
  private readonly opening: Array<{ subject: string; body: Record<string, unknown> }> = [];

  constructor(
    seed: number,
    users: number,
    readonly prefix: string,
  ) {
    this.random = rng(seed);
    this.users = Array.from({ length: users }, (_, i) => `${prefix}-${i}`);
    for (const userId of this.users) {
      this.opening.push({
        subject: "billing.cmd.credit",
        body: { userId, amount: String(2000 + this.int(8000)) },
      });
      if (this.random() < 0.4)
        this.opening.push({
          subject: "billing.cmd.credit",
          body: { userId, amount: String(500 + this.int(2000)), currency: "USD" },
        });
    }
  }

  private int(n: number): number {
    return Math.floor(this.random() * n);
  }

  private user(): string {
    return this.users[this.int(this.users.length)] as string;
  }

  private currency(): Record<string, string> {
    return this.random() < 0.2 ? { currency: "USD" } : {};
  }

  /** The next command of the mix (its operation id is new). */
  next(): { subject: string; body: Record<string, unknown>; operationId: string } {
    const operationId = randomUUID();
    const c = this.opening.shift() ?? this.mixed(operationId);
    return { subject: c.subject, operationId, body: { operationId, ...c.body } };
  }

  private mixed(operationId: string): { subject: string; body: Record<string, unknown> } {
    const r = this.random();
    const amount = String(1 + this.int(800));
    if (r < 0.2)
      return {
        subject: "billing.cmd.credit",
        body: { userId: this.user(), amount: String(100 + this.int(2000)), ...this.currency() },
      };
    if (r < 0.37)
      return {
        subject: "billing.cmd.debit",
        body: { userId: this.user(), amount, ...this.currency() },
      };
    if (r < 0.53) {
      this.holds.push(operationId);
      const timeout = this.random() < 0.4 ? { timeoutSeconds: 1 + this.int(3) } : {};
      return {
        subject: "billing.cmd.hold",
        body: { userId: this.user(), amount, ...this.currency(), ...timeout },
      };
    }
    if (r < 0.67 && this.holds.length > 0) {
      // Mostly an open hold; sometimes one already captured or released (a rejection).
      const again = this.resolved.length > 0 && this.random() < 0.1;
      const holdId = again
        ? (this.resolved[this.int(this.resolved.length)] as string)
        : (this.holds.splice(this.int(this.holds.length), 1)[0] as string);
      if (!again) this.resolved.push(holdId);
      return {
        subject: this.random() < 0.6 ? "billing.cmd.capture" : "billing.cmd.release",
        body: { holdId },
      };
    }
    if (r < 0.97) {
      const from = this.user();
      let to = this.user();
      if (to === from)
        to = this.users[(this.users.indexOf(from) + 1) % this.users.length] as string;
      const fee = this.random() < 0.5 ? { fee: String(1 + this.int(20)) } : {};
      return {
        subject: "billing.cmd.transfer",
        body: { fromUserId: from, toUserId: to, amount, ...fee, ...this.currency() },
      };
    }
    return this.invalid();
  }

  /** Commands rejected before the ledger: each still has exactly one (rejected) event. */
  private invalid(): { subject: string; body: Record<string, unknown> } {
    const u = this.user();
    const pick = this.int(3);
    if (pick === 0) return { subject: "billing.cmd.credit", body: { userId: u, amount: "0" } };
    if (pick === 1)
      return { subject: "billing.cmd.debit", body: { userId: u, amount: "5", currency: "XXX" } };
    return { subject: "billing.cmd.transfer", body: { fromUserId: u, toUserId: u, amount: "5" } };
  }

  /** Publishes one command until stored and records it. */
  async publishOne(
    env: FaultEnv,
    c: { subject: string; body: Record<string, unknown>; operationId: string },
  ): Promise<Published> {
    const data = encoder.encode(JSON.stringify(c.body));
    const sentAtMs = Date.now();
    const sent = await env.publish(c.subject, data, c.operationId);
    const p: Published = {
      operationId: c.operationId,
      subject: c.subject,
      body: c.body,
      data,
      sequences: [sent.streamSequence],
      sentAtMs,
    };
    this.published.set(c.operationId, p);
    return p;
  }

  /** Publishes the same bytes again, with the same id or a new one; records the stored copy. */
  async republish(env: FaultEnv, p: Published, msgId: string): Promise<boolean> {
    const sent = await env.publish(p.subject, p.data, msgId);
    if (!sent.duplicate) p.sequences.push(sent.streamSequence);
    return sent.duplicate;
  }

  /**
   * Publishes the mix from `lanes` concurrent publishers at about `ratePerSecond`, until `stop`
   * has settled and at least `minimum` commands went out, and never more than `maximum`. `each`
   * runs after every publish.
   */
  async run(
    env: FaultEnv,
    o: {
      ratePerSecond: number;
      minimum: number;
      maximum: number;
      lanes: number;
      stop: Promise<unknown>;
      each?: (p: Published) => Promise<void>;
    },
  ): Promise<void> {
    let stopped = false;
    // Stop publishing when the faults are done, or failed (the scenario then reports the failure).
    void o.stop.then(
      () => (stopped = true),
      () => (stopped = true),
    );
    const gapMs = 1000 / o.ratePerSecond;
    let nextAt = Date.now();
    const lane = async (): Promise<void> => {
      while ((!stopped || this.published.size < o.minimum) && this.published.size < o.maximum) {
        nextAt += gapMs;
        const wait = nextAt - Date.now();
        if (wait > 0) await sleep(wait);
        const p = await this.publishOne(env, this.next());
        if (o.each) await o.each(p);
      }
    };
    await Promise.all(Array.from({ length: o.lanes }, lane));
  }

  /** Every command at once, as fast as the broker takes them (large batches for the workers). */
  async burst(env: FaultEnv, count: number, lanes: number): Promise<void> {
    const commands = Array.from({ length: count }, () => this.next());
    let next = 0;
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        while (next < commands.length)
          await this.publishOne(
            env,
            commands[next++] as {
              subject: string;
              body: Record<string, unknown>;
              operationId: string;
            },
          );
      }),
    );
  }

  /** Published operations with the timeout (seconds) of each hold that has one. */
  holdTimeouts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const p of this.published.values()) {
      const t = p.body["timeoutSeconds"];
      if (p.subject === "billing.cmd.hold" && typeof t === "number") out.set(p.operationId, t);
    }
    return out;
  }
}
