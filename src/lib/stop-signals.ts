// The stop signals of `billing start`: SIGTERM (a supervisor, `kill`) and SIGINT (Ctrl-C).
//
// The first one starts the stop; every later one is only acknowledged. A process often gets the
// same stop twice within a millisecond: Ctrl-C in a terminal signals the whole process group, and
// `npm start` forwards the SIGINT (or SIGTERM) it got itself to its child as well. With a one-shot
// listener the second signal met Node's default action and ended the process by that signal in
// the middle of its drain (exit 130/143 instead of 0, the batch in hand left to redelivery). A
// repeat does not shorten the drain either: `worker.drainTimeoutMs` bounds it, and SIGKILL is the
// way to end a process at once.

export const STOP_SIGNALS = ["SIGTERM", "SIGINT"] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** Calls `stop` on the first stop signal and `repeated` on each later one; returns the remover. */
export function onStopSignals(
  stop: (signal: StopSignal) => void,
  repeated: (signal: StopSignal) => void,
): () => void {
  let stopping = false;
  const listeners = STOP_SIGNALS.map((signal) => {
    const listener = (): void => {
      if (stopping) {
        repeated(signal);
        return;
      }
      stopping = true;
      stop(signal);
    };
    process.on(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of listeners) process.off(signal, listener);
  };
}
