// Typed broker errors, one class per kind, so that callers decide by class and never by message:
//
// - BrokerUnavailableError: transient. A timeout, no responders, a lost or closed connection, a
//   failed publish. The worker naks the batch in hand and tries again later.
// - BrokerConnectError: the first connection at start-up failed (unreachable, refused, auth,
//   TLS). Fatal: the process ends with exit code 2 and the message names the server(s).
// - BrokerConfigError: the broker refused our configuration (an immutable stream or consumer
//   option differs, overlapping subjects, JetStream disabled) or the configuration is
//   inconsistent. Fatal: retrying cannot help.
//
// Assertion errors (src/lib/assert.ts) are programmer errors and are never wrapped here.

export abstract class BrokerError extends Error {
  // True when retrying the same operation later can succeed without anyone changing anything.
  abstract readonly transient: boolean;
}

export class BrokerUnavailableError extends BrokerError {
  override name = "BrokerUnavailableError";
  readonly transient = true;
}

export class BrokerConnectError extends BrokerError {
  override name = "BrokerConnectError";
  readonly transient = false;
  // The servers we tried, with any credentials in the URLs redacted.
  readonly servers: readonly string[];

  constructor(message: string, servers: readonly string[], options?: ErrorOptions) {
    super(message, options);
    this.servers = servers;
  }
}

export class BrokerConfigError extends BrokerError {
  override name = "BrokerConfigError";
  readonly transient = false;
}
