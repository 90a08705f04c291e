// A background task run every interval, one run at a time, until stopped. A transient failure is
// logged and retried next interval; anything else would fail the same way every interval (or,
// rethrown, end the process as an unhandled rejection, unlogged), so it is a bug: exitOnBug.
import { exitOnBug, isTransient } from "./failure.ts";
import type { Logger } from "./log.ts";

/** `where` names the component in a bug's fatal line; `what` the run in a transient failure's warning. */
export function runPeriodically(task: {
  where: string;
  what: string;
  intervalMs: number;
  log: Logger;
  run(): Promise<void>;
}): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = (): void => {
    running = task
      .run()
      .catch((error: unknown) => {
        if (!isTransient(error)) exitOnBug(task.log, error, task.where);
        task.log.warn({ err: error }, `${task.what} failed; retrying next interval`);
      })
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, task.intervalMs);
      });
  };
  tick();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running.catch(() => undefined);
    },
  };
}
