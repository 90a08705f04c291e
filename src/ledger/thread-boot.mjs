// Entry of the ledger's worker thread (src/ledger/thread.ts). A worker does not inherit the
// TypeScript loader of the thread that starts it (tsx, or vitest's), so it registers tsx itself.
import { register } from "tsx/esm/api";

register();
await import("./thread-main.ts");
