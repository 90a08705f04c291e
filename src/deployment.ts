// Which ledger serves which set of streams. A deployment is one set of streams (one NATS) and the
// ledger that decides its operations; the first start binds them with an id written in both places:
//
//   streams: one message on `billing.deployment` in the deployment stream: { deploymentId }
//   ledger:  an account on the marker ledger whose id derives from the deploymentId (code 30),
//            holding the deployment's secret id key (user_data_128) and tag (user_data_64), and a
//            second account (code 31) confirming that the streams were bound to it
//
// Every later start reads the streams' deploymentId and refuses (exit 2, naming both sides) a
// ledger without that record: a second clone, another working directory or a deleted ./data
// would otherwise split the money between two ledgers in silence. The key never leaves the ledger,
// so no publisher can compute a derived id (src/domain/ids.ts); the tag marks every transfer, so
// deployments sharing a TigerBeetle cluster (`ledger.shared`) never see each other's.
//
// Order: ledger record first, then the stream message (claimed with expected-last-subject-sequence
// 0, so two first starts agree on one id), then the confirmation. A crash in between leaves an
// unconfirmed ledger record that nothing points to, which a later first start ignores.
import { randomBytes, randomUUID } from "node:crypto";
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type StoredMsg,
} from "@nats-io/jetstream";
import {
  AccountFlags,
  CreateAccountStatus,
  QueryFilterFlags,
  type Account,
} from "tigerbeetle-node";
import { deploymentSubject } from "./broker/topology.ts";
import { BrokerUnavailableError } from "./broker/errors.ts";
import { describeFailure } from "./lib/failure.ts";
import { AccountCode } from "./domain/accounts.ts";
import { formatOperationId, hashId, IdSpace, parseOperationId, U128_MAX } from "./domain/ids.ts";
import { DEPLOYMENTS_LISTED_MAX } from "./config/limits.ts";
import type { Ledger } from "./ledger/port.ts";

/** The subject of the deployment record, in the deployment stream (src/broker/topology.ts). */
export const DEPLOYMENT_SUBJECT = deploymentSubject;

/** JetStream's "wrong last sequence": another process stored the record first. */
const WRONG_LAST_SEQUENCE = JetStreamApiCodes.StreamWrongLastSequence;

/** A ledger and a set of streams that do not belong together, or a record that cannot be read. Exit 2. */
export class DeploymentError extends Error {
  override name = "DeploymentError";
}

export type DeploymentDeps = {
  js: JetStreamClient;
  jsm: JetStreamManager;
  ledger: Ledger;
  /** The deployment stream's name (config streams.deployment). */
  stream: string;
  markerLedger: number;
  /** May this ledger serve several deployments (a shared TigerBeetle cluster)? */
  shared: boolean;
  /** How to name each side in a refusal: "NATS nats://… (stream BILLING_DEPLOYMENT)", "ledger ./data/ledger.db". */
  streamsName: string;
  ledgerName: string;
};

export type Deployment = { id: string; space: IdSpace };

export function deploymentAccountId(deploymentId: bigint): bigint {
  return hashId("deployment", deploymentId);
}

function confirmationAccountId(deploymentId: bigint): bigint {
  return hashId("deployment-bound", deploymentId);
}

function tagOf(deploymentId: bigint): bigint {
  const tag = deploymentId >> 64n;
  return tag === 0n ? 1n : tag;
}

/** The id space of a deployment, from its id and key. */
export function spaceOf(deploymentId: bigint, key: bigint): IdSpace {
  return new IdSpace(key, tagOf(deploymentId));
}

/**
 * Writes a deployment's ledger records, confirmed, in one request: for tools that prepare a
 * ledger before its streams exist (the benchmark's preloaded ledger). They must then store the
 * stream record themselves (`claimDeployment`) before any service starts.
 */
export async function recordDeployment(
  ledger: Ledger,
  markerLedger: number,
  deploymentId: bigint,
  key: bigint,
): Promise<IdSpace> {
  const space = spaceOf(deploymentId, key);
  const results = await ledger.createAccounts([
    systemAccount(deploymentAccountId(deploymentId), markerLedger, AccountCode.deployment, {
      user_data_128: key,
      user_data_64: space.tag,
    }),
    systemAccount(confirmationAccountId(deploymentId), markerLedger, AccountCode.deploymentBound, {
      user_data_128: deploymentId,
      user_data_64: space.tag,
    }),
  ]);
  const bad = results.find(
    (r) => r.status !== CreateAccountStatus.created && r.status !== CreateAccountStatus.exists,
  );
  if (bad)
    throw new DeploymentError(
      `the deployment records were refused: ${CreateAccountStatus[bad.status] ?? bad.status}`,
    );
  return space;
}

/** Stores the streams' side of a deployment prepared with recordDeployment; false when one is there. */
export async function claimDeployment(
  deps: Pick<DeploymentDeps, "js" | "stream">,
  deploymentId: bigint,
): Promise<boolean> {
  return claimRecord(deps, deploymentId);
}

function systemAccount(
  id: bigint,
  markerLedger: number,
  code: number,
  data: Pick<Account, "user_data_128" | "user_data_64">,
): Account {
  return {
    id,
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    user_data_128: data.user_data_128,
    user_data_64: data.user_data_64,
    user_data_32: 1,
    reserved: 0,
    ledger: markerLedger,
    code,
    flags: AccountFlags.none,
    timestamp: 0n,
  };
}

/**
 * The deployment of these streams, binding them to the ledger on the first start. A ledger that
 * already serves a deployment is bound to fresh streams only on a shared ledger and only when
 * asked (`newDeployment`, from `billing setup --new-deployment`): otherwise lost or re-created
 * streams would start a new deployment in silence, every balance reading 0 under its new key.
 */
export async function bindDeployment(
  deps: DeploymentDeps,
  newDeployment = false,
): Promise<Deployment> {
  const recorded = await readRecord(deps);
  if (recorded !== null) return confirm(deps, recorded);
  const served = await servedDeployments(deps);
  const legacy = served.length === 0 && !deps.shared && (await holdsTransfers(deps.ledger));
  if (served.length > 0 || legacy) {
    // A first start racing ours may have bound these streams since we read them (it stores the
    // stream record before its confirmation and its first transfer): read them once more.
    const raced = await readRecord(deps);
    if (raced !== null) return confirm(deps, raced);
  }
  if (served.length > 0 && deps.shared && !newDeployment) {
    throw new DeploymentError(
      `${deps.ledgerName} is shared and serves deployment ${listed(served)}, but ${deps.streamsName} has no deployment record: ` +
        "refusing to start a new deployment by itself (lost or re-created streams would do the same). To add a deployment to this " +
        "shared ledger on purpose, run `billing setup --new-deployment` once with this configuration",
    );
  }
  if (served.length > 0 && !deps.shared) {
    throw new DeploymentError(
      `${deps.ledgerName} already serves deployment ${listed(served)}, but ${deps.streamsName} has no deployment record ` +
        "(new or re-created streams): refusing to bind a second deployment to it. Point the service at the streams of that " +
        'deployment, or start over on purpose (docs/operations.md, "Starting over"), or set ledger.shared for a TigerBeetle cluster shared by deployments',
    );
  }
  if (legacy) {
    throw new DeploymentError(
      `${deps.ledgerName} holds transfers but no deployment record (written before deployments were recorded, or by something else): ` +
        'refusing to bind it to new streams. Start over on purpose (docs/operations.md, "Starting over")',
    );
  }
  const id = parseOperationId(randomUUID()) as bigint;
  let key = 0n;
  while (key === 0n || key === U128_MAX) key = BigInt("0x" + randomBytes(16).toString("hex"));
  const [created] = await deps.ledger.createAccounts([
    systemAccount(deploymentAccountId(id), deps.markerLedger, AccountCode.deployment, {
      user_data_128: key,
      user_data_64: tagOf(id),
    }),
  ]);
  if (created !== undefined && created.status !== CreateAccountStatus.created) {
    throw new DeploymentError(
      `${deps.ledgerName} refused the deployment record: ${CreateAccountStatus[created.status] ?? created.status}`,
    );
  }
  const won = await claimRecord(deps, id);
  return confirm(deps, won ? id : await readRecordOrFail(deps));
}

/** The deployment of these streams, read only (the audit, queries from tools): nothing is written. */
export async function readDeployment(deps: Omit<DeploymentDeps, "shared">): Promise<Deployment> {
  const id = await readRecordOrFail(deps);
  const account = await deploymentAccount(deps, id);
  return { id: formatOperationId(id), space: spaceOf(id, account.user_data_128) };
}

async function confirm(deps: DeploymentDeps, id: bigint): Promise<Deployment> {
  const account = await deploymentAccount(deps, id);
  const [result] = await deps.ledger.createAccounts([
    systemAccount(confirmationAccountId(id), deps.markerLedger, AccountCode.deploymentBound, {
      user_data_128: id,
      user_data_64: account.user_data_64,
    }),
  ]);
  if (
    result !== undefined &&
    result.status !== CreateAccountStatus.created &&
    result.status !== CreateAccountStatus.exists
  ) {
    throw new DeploymentError(
      `${deps.ledgerName} refused the deployment confirmation: ${CreateAccountStatus[result.status] ?? result.status}`,
    );
  }
  return { id: formatOperationId(id), space: spaceOf(id, account.user_data_128) };
}

async function deploymentAccount(
  deps: Omit<DeploymentDeps, "shared">,
  id: bigint,
): Promise<Account> {
  const [account] = await deps.ledger.lookupAccounts([deploymentAccountId(id)]);
  if (
    account !== undefined &&
    account.code === AccountCode.deployment &&
    account.user_data_128 !== 0n &&
    account.user_data_64 !== 0n
  )
    return account;
  const served = await servedDeployments(deps);
  throw new DeploymentError(
    `${deps.streamsName} belongs to deployment ${formatOperationId(id)}, but ${deps.ledgerName} has no record of it ` +
      `(that ledger serves ${served.length === 0 ? "no deployment" : `deployment ${listed(served)}`}): refusing to serve with another deployment's ledger. ` +
      'Point the service at that deployment\'s ledger, or start over on purpose (docs/operations.md, "Starting over")',
  );
}

/** Deployments whose streams were bound to this ledger (confirmed records), oldest first. */
async function servedDeployments(
  deps: Pick<DeploymentDeps, "ledger" | "markerLedger">,
): Promise<bigint[]> {
  const accounts = await deps.ledger.queryAccounts({
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    ledger: deps.markerLedger,
    code: AccountCode.deploymentBound,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: DEPLOYMENTS_LISTED_MAX + 1,
    flags: 0,
  });
  return accounts.map((a) => a.user_data_128);
}

function listed(ids: ReadonlyArray<bigint>): string {
  const shown = ids.slice(0, DEPLOYMENTS_LISTED_MAX).map(formatOperationId).join(", ");
  return ids.length > DEPLOYMENTS_LISTED_MAX ? `${shown} and more` : shown;
}

async function holdsTransfers(ledger: Ledger): Promise<boolean> {
  const newest = await ledger.queryTransfers({
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    ledger: 0,
    code: 0,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: 1,
    flags: QueryFilterFlags.reversed,
  });
  return newest.length > 0;
}

/**
 * The first record on the subject: the claim that won (expected last subject sequence 0). A later
 * message there, whoever published it, never rebinds the streams.
 */
async function readRecord(
  deps: Pick<DeploymentDeps, "jsm" | "stream" | "streamsName">,
): Promise<bigint | null> {
  let stored: StoredMsg | null;
  try {
    stored = await deps.jsm.direct.getMessage(deps.stream, {
      seq: 1,
      next_by_subj: DEPLOYMENT_SUBJECT,
    });
  } catch (error) {
    throw new BrokerUnavailableError(
      `read the deployment record of ${deps.stream}: ${describeFailure(error)}`,
      { cause: error },
    );
  }
  if (stored === null) return null;
  let id: bigint | null = null;
  try {
    const body = JSON.parse(new TextDecoder().decode(stored.data)) as { deploymentId?: unknown };
    id = parseOperationId(body.deploymentId);
  } catch {
    id = null;
  }
  if (id === null)
    throw new DeploymentError(
      `${deps.streamsName}: the deployment record (sequence ${stored.seq}) is not a deployment record`,
    );
  return id;
}

async function readRecordOrFail(
  deps: Pick<DeploymentDeps, "jsm" | "stream" | "streamsName">,
): Promise<bigint> {
  const id = await readRecord(deps);
  if (id === null)
    throw new DeploymentError(
      `${deps.streamsName} has no deployment record: no service has started on these streams yet`,
    );
  return id;
}

/** Stores the record unless one is there; false when another process stored one first. */
async function claimRecord(
  deps: Pick<DeploymentDeps, "js" | "stream">,
  id: bigint,
): Promise<boolean> {
  const body = JSON.stringify({
    deploymentId: formatOperationId(id),
    createdAt: new Date().toISOString(),
  });
  try {
    await deps.js.publish(DEPLOYMENT_SUBJECT, body, {
      expect: { lastSubjectSequence: 0, streamName: deps.stream },
    });
    return true;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE) return false;
    throw new BrokerUnavailableError(
      `store the deployment record in ${deps.stream}: ${describeFailure(error)}`,
      { cause: error },
    );
  }
}
