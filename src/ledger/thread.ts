// The embedded engine on a thread of its own. better-sqlite3 is synchronous, so in the service's
// thread every ledger request would stop the event loop for its whole SQLite transaction (≈ a third
// of a busy process's main-thread time, bench/results/e2e-profile.md); on a worker thread the
// engine's CPU runs while the main thread decodes, publishes and acknowledges.
//
// The client half lives here: it checks each request's input in the caller's thread (the same
// checks and errors as the in-thread engine and the native client), posts it, and resolves with the
// thread's answer. Requests run in the order they were posted, one at a time, exactly as in
// src/ledger/embedded.ts. Errors cross back as name + message (+ code) and are rebuilt as the same
// classes, so callers cannot tell the two apart. A thread that dies takes the client with it:
// every request then rejects with an AssertionError (the service exits and is restarted), never
// with something a caller would retry forever.
import { Worker } from "node:worker_threads";
import { ErrorCodes, RequestError, type Client } from "tigerbeetle-node";
import { assert, AssertionError } from "../lib/assert.ts";
import { clientOf, LedgerBusyError, type RequestName } from "./embedded.ts";
import { LEDGER_EVENTS_MAX } from "../config/limits.ts";
import { LedgerFileError } from "./schema.ts";

export interface ThreadOptions {
  path: string;
  lockWaitMs?: number;
  pageCacheKib?: number;
  /** The thread's entry; tests pass one that misbehaves. */
  entry?: URL;
}

/** What crosses from the engine's thread: the start-up outcome, or answers in the order asked. */
export type ThreadReply =
  { kind: "ready" } | { kind: "failed"; error: WireError } | { kind: "answers"; answers: Answer[] };

export type Answer =
  { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

/**
 * What crosses to the engine's thread: the requests made in one turn of the caller's event loop
 * (at most LEDGER_EVENTS_MAX, one message instead of one each), or the order to close.
 */
export type ThreadRequest =
  | { kind: "requests"; requests: Array<{ id: number; name: RequestName; input: unknown }> }
  | { kind: "close" };

export type WireError = { name: string; message: string; code?: string; stack?: string };

export function toWire(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const code = (error as { code?: unknown }).code;
  return {
    name: error.name,
    message: error.message,
    ...(typeof code === "string" ? { code } : {}),
    ...(error.stack ? { stack: error.stack } : {}),
  };
}

/** The error a caller in this thread would have seen from the in-thread engine. */
export function fromWire(wire: WireError): Error {
  let error: Error;
  switch (wire.name) {
    case "RequestError":
      error = new RequestError((wire.code ?? ErrorCodes.ERR_CLIENT_CLOSED) as ErrorCodes);
      break;
    case "LedgerBusyError":
      error = new LedgerBusyError(wire.message);
      break;
    case "LedgerFileError":
      error = new LedgerFileError(wire.message);
      break;
    case "AssertionError":
      error = new AssertionError(wire.message);
      break;
    default:
      error = new Error(wire.message);
      error.name = wire.name;
      if (wire.code !== undefined) Object.assign(error, { code: wire.code });
  }
  if (wire.stack !== undefined)
    error.stack = `${error.name}: ${error.message}\n    (ledger thread) ${wire.stack}`;
  return error;
}

/**
 * The thread's entry. Compiled (dist/ledger/thread.js) it is the compiled thread-main.js, loaded by
 * plain Node. From the sources (tsx, vitest) it is thread-boot.mjs, which registers tsx first: a
 * worker does not inherit the TypeScript loader of the thread that starts it.
 */
const bootUrl = import.meta.url.endsWith(".js")
  ? new URL("./thread-main.js", import.meta.url)
  : new URL("./thread-boot.mjs", import.meta.url);

/**
 * The thread's JavaScript heap. What it keeps is bounded: the account cache (engineAccountCacheMax,
 * ~20 MB) and one request's input and result (≤ LEDGER_EVENTS_MAX records). Without a bound V8 lets
 * the garbage of a busy thread grow the heap far past that (bench: +100 MB resident). The young
 * generation is 8 MB: a request's garbage dies within it as well as within 16 MB, which cost 8 MB
 * more resident (bench/results/memory-round2.md).
 * Running out is a crash of the thread, which the client turns into an AssertionError.
 */
const threadHeapLimits = { maxOldGenerationSizeMb: 160, maxYoungGenerationSizeMb: 8 };

export async function openThreadedLedger(options: ThreadOptions): Promise<Client> {
  const worker = new Worker(options.entry ?? bootUrl, {
    workerData: {
      path: options.path,
      lockWaitMs: options.lockWaitMs,
      pageCacheKib: options.pageCacheKib,
    },
    resourceLimits: threadHeapLimits,
  });
  const started = await new Promise<ThreadReply>((resolve) => {
    const onExit = (code: number) =>
      resolve({
        kind: "failed",
        error: {
          name: "AssertionError",
          message: `ledger thread exited during start-up (code ${code})`,
        },
      });
    const onError = (error: unknown) => resolve({ kind: "failed", error: toWire(error) });
    worker.once("message", (reply: ThreadReply) => {
      worker.off("exit", onExit);
      worker.off("error", onError);
      resolve(reply);
    });
    worker.once("exit", onExit);
    worker.once("error", onError);
  });
  if (started.kind !== "ready") {
    await worker.terminate();
    throw fromWire(
      started.kind === "failed"
        ? started.error
        : {
            name: "AssertionError",
            message: `ledger thread: unexpected first message ${started.kind}`,
          },
    );
  }
  return new ThreadClient(worker).client();
}

class ThreadClient {
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  private nextId = 0;
  /** Requests made in this turn of the event loop, posted together at its end. */
  private outbox: Array<{ id: number; name: RequestName; input: unknown }> = [];
  private closed = false;
  /** Set once the thread is gone without being asked to close: every request rejects with it. */
  private lost: Error | null = null;

  constructor(private readonly worker: Worker) {
    worker.unref(); // referenced only while a request waits for its answer
    worker.on("message", (reply: ThreadReply) => this.settle(reply));
    // Node's own failures carry their code (ERR_WORKER_OUT_OF_MEMORY: the thread reached
    // threadHeapLimits), which the message names for whoever reads the fatal line.
    worker.on("error", (error) => {
      const code = (error as { code?: unknown }).code;
      this.fail(
        `ledger thread failed${typeof code === "string" ? ` (${code})` : ""}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    });
    worker.on("exit", (code) => {
      if (!this.closed) this.fail(`ledger thread exited unexpectedly (code ${code})`);
    });
  }

  client(): Client {
    return clientOf(
      (name, input) => this.send(name, input),
      () => this.closed,
      () => this.destroy(),
    );
  }

  private send(name: RequestName, input: unknown): Promise<unknown> {
    if (this.lost !== null) return Promise.reject(this.lost);
    const id = this.nextId++;
    const answer = new Promise<unknown>((resolve, reject) =>
      this.pending.set(id, { resolve, reject }),
    );
    if (this.pending.size === 1) this.worker.ref();
    this.outbox.push({ id, name, input });
    if (this.outbox.length === 1) queueMicrotask(() => this.post());
    else if (this.outbox.length === LEDGER_EVENTS_MAX) this.post();
    return answer;
  }

  private post(): void {
    if (this.outbox.length === 0 || this.closed || this.lost !== null) return;
    const requests = this.outbox;
    this.outbox = [];
    this.worker.postMessage({ kind: "requests", requests } satisfies ThreadRequest);
  }

  private settle(reply: ThreadReply): void {
    assert(reply.kind === "answers", `ledger thread: unexpected message ${reply.kind}`);
    for (const answer of reply.answers) {
      const waiter = this.pending.get(answer.id);
      if (waiter === undefined) continue; // rejected already by destroy()
      this.pending.delete(answer.id);
      if (answer.ok) waiter.resolve(answer.value);
      else waiter.reject(fromWire(answer.error));
    }
    if (this.pending.size === 0) this.worker.unref();
  }

  private fail(message: string): void {
    this.lost ??= new AssertionError(message);
    this.rejectAll(this.lost);
  }

  private rejectAll(error: Error): void {
    const waiters = [...this.pending.values()];
    this.pending.clear();
    this.outbox = [];
    this.worker.unref();
    for (const w of waiters) w.reject(error);
  }

  /**
   * Like the native client: requests not answered yet reject with ERR_CLIENT_CLOSED (one may still
   * commit; the callers' ids make that safe). The thread finishes the request it is running, closes
   * the database and ends; until then it keeps the process alive, so a clean exit closes the file.
   */
  private destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.rejectAll(new RequestError(ErrorCodes.ERR_CLIENT_CLOSED));
    if (this.lost === null) {
      this.worker.ref();
      this.worker.postMessage({ kind: "close" } satisfies ThreadRequest);
    }
  }
}
