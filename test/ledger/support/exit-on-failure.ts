// A process that meets one failure in a component and ends as every component ends on one
// (src/lib/failure.ts exitOnBug): `refused` meets a TigerBeetle release mismatch, `bug` a TypeError.
// For test/ledger/client-errors.test.ts.
import { ErrorCodes } from "tigerbeetle-node";
import { LedgerRefusedError } from "../../../src/ledger/index.ts";
import { exitOnBug } from "../../../src/lib/failure.ts";
import { createLogger } from "../../../src/lib/log.ts";

const kind = process.argv[2];
const error =
  kind === "refused"
    ? new LedgerRefusedError(ErrorCodes.ERR_CLIENT_RELEASE_TOO_LOW, "TigerBeetle cluster 0 at 3000")
    : new TypeError("x is not a function");
exitOnBug(createLogger("info"), error, "the worker loop");
