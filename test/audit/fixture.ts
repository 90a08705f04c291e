// Shared by the audit tests: copies of a ledger file to damage, a second nats-server holding a
// (damaged) copy of the events stream, and a raw SQLite handle for damage the port cannot do.
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { StoredEvent } from "../../src/audit/event-index.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";

const dirs: string[] = [];

/** A fresh copy of a (closed) ledger file and its WAL, in its own temp dir. */
export function copyLedger(path: string): string {
  const dir = mkdtempSync(join(tmpdir(), "billing-audit-"));
  dirs.push(dir);
  const copy = join(dir, "ledger.db");
  for (const suffix of ["", "-wal", "-shm"])
    if (existsSync(path + suffix)) copyFileSync(path + suffix, copy + suffix);
  return copy;
}

export function removeCopies(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** The ledger file opened raw, integers as bigints, for damage no ledger request can do. */
export function rawLedger(path: string): Database.Database {
  const db = new Database(path);
  db.defaultSafeIntegers(true);
  return db;
}

/** Deletes a transfer row (and its id-index row, where the engine keeps one) behind the engine's back. */
export function deleteTransfer(db: Database.Database, idSql: unknown): void {
  db.prepare("DELETE FROM transfers WHERE id = ?").run(idSql);
  const indexed =
    db
      .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'transfer_ids'")
      .get() !== undefined;
  if (indexed) db.prepare("DELETE FROM transfer_ids WHERE id = ?").run(idSql);
}

/** A second nats-server whose events stream is rebuilt, message by message, for each test. */
export class EventsCopy {
  private constructor(
    private readonly server: NatsServer,
    private readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
  ) {}

  static async start(): Promise<EventsCopy> {
    const server = await startNats();
    const nc = await connect({ servers: server.url });
    return new EventsCopy(server, nc, jetstream(nc), await jetstreamManager(nc));
  }

  /** Replaces the copy's events stream with these messages, in this order. */
  async fill(
    stream: string,
    events: ReadonlyArray<{ subject: string; data: Uint8Array }>,
  ): Promise<void> {
    await this.jsm.streams.delete(stream).catch(() => undefined);
    await this.jsm.streams.add({ name: stream, subjects: ["billing.evt.>"] });
    for (const e of events) await this.js.publish(e.subject, e.data);
  }

  async stop(): Promise<void> {
    await this.nc.close();
    await this.server.stop();
  }
}

export function payloadOf(e: StoredEvent): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(e.data)) as Record<string, unknown>;
}

export function withPayload(e: StoredEvent, payload: Record<string, unknown>): StoredEvent {
  return { ...e, data: new TextEncoder().encode(JSON.stringify(payload)) };
}
