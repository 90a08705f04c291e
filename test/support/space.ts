// A fixed deployment id space for tests that build a chart without a running deployment (domain
// tests, components wired by hand): derived ids are the same on every run. Tests that run a real
// service read the deployment's own space with readChart (src/service.ts).
import { IdSpace } from "../../src/domain/ids.ts";

export const testSpace = new IdSpace(0x5eed_0000_0000_0000_0000_0000_0000_0001n, 0x7a6n);
