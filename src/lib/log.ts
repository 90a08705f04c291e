import { pino, type Logger } from "pino";

export type { Logger };

// One root logger per process, JSON lines on stdout. Children carry the component name.
export function createLogger(level: string, name = "billing"): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
