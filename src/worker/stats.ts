// Counters of the worker, read by logs and the metrics endpoint.
import type { Decoded } from "../domain/commands.ts";

export class WorkerStats {
  batches = 0;
  requests = 0;
  passes = 0;
  naks = 0;
  eventsPublished = 0;
  /** Recent batch sizes, bounded. */
  readonly batchSizes = new BoundedList(1024);
  /** Settled messages by command type and outcome (ack, dead, nak). */
  readonly outcomes = new Map<string, number>();

  count(decoded: Decoded, settlement: { kind: string; reason?: string; outcome?: string }): void {
    const type = decoded.kind === "malformed" ? "malformed" : decoded.type;
    const outcome = settlement.kind === "dead" ? `dead_${settlement.reason ?? ""}` : (settlement.outcome ?? settlement.kind);
    const key = `${type}:${outcome}`;
    this.outcomes.set(key, (this.outcomes.get(key) ?? 0) + 1);
  }
}

export class BoundedList {
  readonly values: number[] = [];
  constructor(private readonly max: number) {}
  push(value: number): void {
    if (this.values.length >= this.max) this.values.shift();
    this.values.push(value);
  }
}
