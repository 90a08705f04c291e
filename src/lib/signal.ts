// Waiting for "this, unless we are told to stop" without leaking. Racing a promise against a
// long-lived one (`Promise.race([next, stop])`) attaches a reaction to the long-lived promise on
// every call, and each reaction keeps its race, and so the race's result, reachable until the
// long-lived promise settles: a worker that races each batch against its stop promise keeps every
// batch it ever took (bench: 180,000 messages, ~800 MB after 200,000 commands). An AbortSignal's
// listener can be removed once the race is decided.

/** `promise`'s value, or null once `signal` aborts first; nothing stays attached to `signal`. */
export function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | null> {
  if (signal.aborted) return Promise.resolve(null);
  return new Promise<T | null>((resolve, reject) => {
    const onAbort = () => resolve(null);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** Waits `ms`; resolves true then, or false as soon as `signal` aborts (at once when it has). */
export function pauseUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
