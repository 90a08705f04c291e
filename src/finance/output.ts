// Where a tool's lines go: stdout or a file, written with backpressure (a write that fills the
// stream's buffer waits for 'drain'), so an export of millions of lines holds one page at a time.
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import type { Writable } from "node:stream";

export class LineSink {
  private failure: Error | null = null;

  private constructor(
    private readonly stream: Writable,
    private readonly owned: boolean,
  ) {
    stream.on("error", (error: Error) => (this.failure ??= error));
  }

  static stdout(): LineSink {
    return new LineSink(process.stdout, false);
  }

  /** Opens (creates or truncates) a file; rejects with the open's error (a missing directory, no permission). */
  static async file(path: string): Promise<LineSink> {
    const stream = createWriteStream(path, { flags: "w" });
    await Promise.race([
      once(stream, "open"),
      once(stream, "error").then(([e]) => Promise.reject(e as Error)),
    ]);
    return new LineSink(stream, true);
  }

  async write(text: string): Promise<void> {
    this.throwIfFailed();
    if (!this.stream.write(text))
      await Promise.race([once(this.stream, "drain"), once(this.stream, "error")]);
    this.throwIfFailed();
  }

  async close(): Promise<void> {
    if (!this.owned) return;
    this.stream.end();
    await once(this.stream, "finish").catch(() => undefined);
    this.throwIfFailed();
  }

  /** A method, not an inline check: the stream's 'error' listener sets `failure` during an await. */
  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}

/** How often a long run says how far it is, on stderr. */
export const PROGRESS_EVERY_MS = 2_000;

/** A progress line on stderr at most every PROGRESS_EVERY_MS (none for a run shorter than that). */
export class Progress {
  private last = Date.now();

  constructor(
    private readonly what: string,
    private readonly enabled: boolean,
  ) {}

  tick(line: () => string): void {
    if (!this.enabled || Date.now() - this.last < PROGRESS_EVERY_MS) return;
    this.last = Date.now();
    process.stderr.write(`${this.what}: ${line()}\n`);
  }
}
