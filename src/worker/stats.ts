// Counters of the worker, read by logs and the metrics endpoint.
import type { Decoded } from "../domain/commands.ts";

export class WorkerStats {
  batches = 0;
  /** Batches whose ledger requests were counted (those the ledger resolved) and their requests. */
  ledgerCountedBatches = 0;
  ledgerRequests = 0;
  /** Ledger requests of recent counted batches, bounded. */
  readonly requestsPerBatch = new BoundedList(1024);
  passes = 0;
  naks = 0;
  eventsPublished = 0;
  /** Attempts to store a decided batch's events and dead letters again after one failed. */
  publishRetries = 0;
  /** Decided outcomes whose event or dead letter is not stored yet, per batch in hand. */
  readonly unstored = new UnstoredOutcomes();
  /** Recent batch sizes, bounded. */
  readonly batchSizes = new BoundedList(1024);
  /** Settled messages by command type and outcome (ack, dead, nak). */
  readonly outcomes = new Map<string, number>();

  count(decoded: Decoded, settlement: { kind: string; reason?: string; outcome?: string }): void {
    const type = decoded.kind === "malformed" ? "malformed" : decoded.type;
    const outcome =
      settlement.kind === "dead"
        ? `dead_${settlement.reason ?? ""}`
        : (settlement.outcome ?? settlement.kind);
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

/**
 * The events and dead letters of decided operations this process holds and has not stored yet, one
 * entry per batch in hand (at most worker.pipelineDepth), with the time its batch was decided. The
 * backlog metrics and the readiness check read it.
 */
export class UnstoredOutcomes {
  private readonly batches = new Set<{ count: number; sinceMs: number }>();

  add(count: number, sinceMs: number): { count: number; sinceMs: number } {
    const entry = { count, sinceMs };
    this.batches.add(entry);
    return entry;
  }

  remove(entry: { count: number; sinceMs: number }): void {
    this.batches.delete(entry);
  }

  count(): number {
    let n = 0;
    for (const b of this.batches) n += b.count;
    return n;
  }

  /** When the oldest batch with something unstored was decided; null when nothing is unstored. */
  oldestSinceMs(): number | null {
    let oldest: number | null = null;
    for (const b of this.batches)
      if (b.count > 0 && (oldest === null || b.sinceMs < oldest)) oldest = b.sinceMs;
    return oldest;
  }
}
