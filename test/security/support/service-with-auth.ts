// The service in this test process, authenticated with given NATS auth settings (the config's
// nats.auth), on a temp ledger. Separate from fixture.ts so that tests of authOf alone do not load
// the service.
import type { NatsServer } from "../../support/nats-server.ts";
import { startInProcess, workspace } from "../../support/service.ts";
import type { RunningService } from "../../../src/service.ts";

export type AuthSettings = Record<string, unknown>;

export type ServiceUnderTest = {
  service: RunningService;
  ledgerPath: string;
  configPath: string;
  stop(): Promise<void>;
};

// The ops endpoint is off (port 0): several test files run services at once on one host.
export function serviceOverrides(
  auth: AuthSettings,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { nats: { auth }, ops: { port: 0 }, ...extra };
}

/** The service in this process, authenticated with `auth` (the config's nats.auth). */
export async function startServiceWith(
  server: NatsServer,
  auth: AuthSettings,
  natsUrl = server.url,
): Promise<ServiceUnderTest> {
  const ws = workspace(serviceOverrides(auth));
  try {
    const service = await startInProcess(natsUrl, ws.ledgerPath, ws.configPath);
    return {
      service,
      ledgerPath: ws.ledgerPath,
      configPath: ws.configPath,
      stop: async () => {
        await service.stop();
        ws.cleanup();
      },
    };
  } catch (error) {
    ws.cleanup();
    throw error;
  }
}
