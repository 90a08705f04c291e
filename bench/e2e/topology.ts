// The run's JetStream topology from its config (the service's own mapping; no ledger module).
export { topologyOf } from "../../src/config/topology.ts";
