// The embedded engine's file: an SQLite database in WAL mode that says it is ours in two places
// (the header's application_id and a meta row naming the format), created when missing or empty,
// refused — never re-created — when it is anything else.
//
// Tables (see docs/ledger.md for the reasoning):
// - accounts: one row per account, rowid = account timestamp, unique id. Balances and the head of
//   the account's transfer chain (history.ts) change in place.
// - transfers: append-only, rowid = transfer timestamp, the transfer's fields as TigerBeetle
//   stores them. Each side carries its account's chain links (no per-account index: see
//   history.ts), and, when that account has the `history` flag, its balances after the transfer.
// - pending_transfers: resolution state of each pending transfer; a partial index holds the live
//   ones with a deadline, in deadline order.
// - transfer_ids: every transfer id ever used, with its transfer's timestamp, or 0 when the id was
//   burned by a transient failure: one probe answers "new, exists or burned".
// - meta: format, the last timestamp issued and a commit counter that validates in-memory caches.
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { assert } from "../lib/assert.ts";
import {
  sqliteBusyTimeoutMs,
  sqliteCacheKib,
  walAutocheckpointPages,
  walSizeLimitBytes,
} from "../config/limits.ts";

/** "TBLG" in the database header: a cheap first test that a file is a ledger. */
export const applicationId = 0x54424c47;
export const formatName = "billing-ledger embedded TigerBeetle 0.17";
export const formatVersion = 2;
const pageSizeBytes = 4096;

const ddl = `
CREATE TABLE meta (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  format TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_timestamp INTEGER NOT NULL,
  commit_seq INTEGER NOT NULL
) STRICT;
CREATE TABLE accounts (
  timestamp INTEGER PRIMARY KEY,
  id ANY NOT NULL UNIQUE,
  debits_pending ANY NOT NULL,
  debits_posted ANY NOT NULL,
  credits_pending ANY NOT NULL,
  credits_posted ANY NOT NULL,
  user_data_128 ANY NOT NULL,
  user_data_64 INTEGER NOT NULL,
  user_data_32 INTEGER NOT NULL,
  ledger INTEGER NOT NULL,
  code INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  history_count INTEGER NOT NULL,
  history_spine BLOB NOT NULL
) STRICT;
CREATE TABLE transfers (
  timestamp INTEGER PRIMARY KEY,
  id ANY NOT NULL,
  debit_account_id ANY NOT NULL,
  credit_account_id ANY NOT NULL,
  amount ANY NOT NULL,
  pending_id ANY NOT NULL,
  user_data_128 ANY NOT NULL,
  user_data_64 INTEGER NOT NULL,
  user_data_32 INTEGER NOT NULL,
  timeout INTEGER NOT NULL,
  ledger INTEGER NOT NULL,
  code INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  debit_prev INTEGER NOT NULL,
  debit_jump INTEGER NOT NULL,
  debit_seq INTEGER NOT NULL,
  credit_prev INTEGER NOT NULL,
  credit_jump INTEGER NOT NULL,
  credit_seq INTEGER NOT NULL,
  debit_balances BLOB,
  credit_balances BLOB
) STRICT;
CREATE TABLE pending_transfers (
  timestamp INTEGER PRIMARY KEY,
  expires_at INTEGER NOT NULL,
  status INTEGER NOT NULL
) STRICT;
CREATE INDEX pending_transfers_due ON pending_transfers (expires_at, timestamp) WHERE status = 1 AND expires_at > 0;
CREATE TABLE transfer_ids (id ANY PRIMARY KEY, timestamp INTEGER NOT NULL) STRICT, WITHOUT ROWID;
`;

const expectedObjects = [
  "accounts",
  "meta",
  "pending_transfers",
  "pending_transfers_due",
  "transfer_ids",
  "transfers",
];

export class LedgerFileError extends Error {
  override name = "LedgerFileError";
}

/**
 * Opens (or creates) the ledger database at `file`, with a page cache of `pageCacheKib`. Throws
 * LedgerFileError naming the path when the file is not ours or cannot be read as one; SQLITE_BUSY
 * propagates so the caller can retry.
 */
export function openLedgerDatabase(
  file: string,
  pageCacheKib: number = sqliteCacheKib,
): Database.Database {
  assert(
    Number.isSafeInteger(pageCacheKib) && pageCacheKib > 0,
    `the page cache is a positive number of KiB, got ${pageCacheKib}`,
  );
  const existed = fs.existsSync(file) && fs.statSync(file).size > 0;
  const db = new Database(file);
  try {
    db.pragma(`busy_timeout = ${sqliteBusyTimeoutMs}`);
    const state = inspect(db, file);
    if (state === "empty") create(db, file, existed);
    configure(db, pageCacheKib);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Reads the header and schema without changing anything. */
function inspect(db: Database.Database, file: string): "empty" | "ledger" {
  let appId: number;
  let names: string[];
  try {
    // One read transaction, so both come from one snapshot: read apart, another process's
    // creation could commit between them (header before it, schema after it), and a new ledger
    // would look like a foreign database (bench, 2026-12-08: two services started together).
    db.exec("BEGIN");
    try {
      appId = db.pragma("application_id", { simple: true }) as number;
      names = db
        .prepare("SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
        .pluck()
        .all() as string[];
    } finally {
      db.exec("COMMIT");
    }
  } catch (error) {
    if (isBusy(error)) throw error;
    throw new LedgerFileError(
      `${file} is not a readable ledger database (${describe(error)}); refusing to open it`,
    );
  }
  if (appId === 0 && names.length === 0) return "empty";
  if (appId !== applicationId) {
    throw new LedgerFileError(
      `${file} is not a ledger database (application_id ${appId}, expected ${applicationId}); refusing to open it`,
    );
  }
  verifyLedger(db, file, names);
  return "ledger";
}

function verifyLedger(db: Database.Database, file: string, names: string[]): void {
  if (names.join(",") !== expectedObjects.join(",")) {
    throw new LedgerFileError(
      `${file} has an unexpected schema (${names.join(", ")}); refusing to open it`,
    );
  }
  let meta: { format: string; version: number } | undefined;
  try {
    meta = db.prepare("SELECT format, version FROM meta WHERE singleton = 1").get() as typeof meta;
  } catch (error) {
    if (isBusy(error)) throw error;
    throw new LedgerFileError(`${file} is damaged (${describe(error)}); refusing to open it`);
  }
  if (meta === undefined || meta.format !== formatName) {
    throw new LedgerFileError(
      `${file} has no ledger meta row for format "${formatName}"; refusing to open it`,
    );
  }
  if (meta.version !== formatVersion) {
    throw new LedgerFileError(
      `${file} has ledger format version ${meta.version}; this build reads version ${formatVersion}`,
    );
  }
}

/** Creates the schema once; a process that loses the race finds it created and verifies it. */
function create(db: Database.Database, file: string, existed: boolean): void {
  db.pragma(`page_size = ${pageSizeBytes}`);
  db.pragma("journal_mode = WAL");
  db.exec("BEGIN IMMEDIATE");
  try {
    const names = db
      .prepare("SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
      .pluck()
      .all() as string[];
    if (names.length === 0) {
      db.exec(ddl);
      db.pragma(`application_id = ${applicationId}`);
      db.pragma(`user_version = ${formatVersion}`);
      db.prepare("INSERT INTO meta VALUES (1, ?, ?, 0, 0)").run(formatName, formatVersion);
    } else {
      verifyLedger(db, file, names);
    }
    db.exec("COMMIT");
  } catch (error) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw error;
  }
  // The new file's directory entry must survive a power cut as well as its contents.
  if (!existed) syncDirectory(path.dirname(path.resolve(file)));
}

function configure(db: Database.Database, pageCacheKib: number): void {
  const mode = db.pragma("journal_mode = WAL", { simple: true });
  if (mode !== "wal")
    throw new LedgerFileError(
      `could not switch the ledger database to WAL mode (got ${String(mode)})`,
    );
  // FULL: every commit fsyncs the WAL, so a resolved request survives a power cut.
  db.pragma("synchronous = FULL");
  db.pragma(`cache_size = -${pageCacheKib}`);
  db.pragma(`wal_autocheckpoint = ${walAutocheckpointPages}`);
  db.pragma(`journal_size_limit = ${walSizeLimitBytes}`);
  db.pragma("temp_store = MEMORY");
  db.defaultSafeIntegers(true);
}

function syncDirectory(directory: string): void {
  const fd = fs.openSync(directory, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    typeof code === "string" &&
    (code === "SQLITE_BUSY" || code.startsWith("SQLITE_BUSY_") || code === "SQLITE_LOCKED")
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
