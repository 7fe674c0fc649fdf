/**
 * Which failures no retry can fix. Capture and apply run for days and retry
 * without end, which is right for a network blip or throttling and wrong for
 * a revoked grant, a purged binlog or a deleted stream: those would keep a run
 * in `bulk` or `catch-up` forever. A permanent one fails the run at once, with
 * the cause, what to do about it and the command that goes on afterwards.
 */
import { ApplicationFailure } from '@temporalio/common';

export interface PermanentCause {
  /** The ApplicationFailure type the run fails with. */
  type: string;
  /** What the operator must change before resuming. */
  fix: string;
}

/** MySQL/MariaDB error codes (the drivers' `code`) that a retry cannot fix, with what to do. */
const MYSQL: Record<string, PermanentCause> = {
  ER_ACCESS_DENIED_ERROR: { type: 'SourceAccessDenied', fix: "check the source URL's user and password" },
  ER_DBACCESS_DENIED_ERROR: { type: 'SourceAccessDenied', fix: 'grant the source user access to the database' },
  ER_TABLEACCESS_DENIED_ERROR: { type: 'SourceAccessDenied', fix: 'grant the source user SELECT on the migrated tables' },
  ER_SPECIFIC_ACCESS_DENIED_ERROR: { type: 'SourceAccessDenied', fix: 'grant the source user REPLICATION SLAVE and REPLICATION CLIENT (docs/cdc.md)' },
  ER_MASTER_FATAL_ERROR_READING_BINLOG: {
    type: 'BinlogUnreadable',
    fix: 'the binlog no longer holds the position capture reads from (purged, or the server was reset); raise binlog_expire_logs_seconds, and `ferry resume` ships everything again from a new start',
  },
  ER_SECURE_TRANSPORT_REQUIRED: { type: 'SourceRequiresTls', fix: 'the source requires TLS: add ssl options to the source URL (docs/configuration.md)' },
  ER_BAD_DB_ERROR: { type: 'SourceMissing', fix: 'the source database does not exist: check spec.source.database' },
  ER_NO_SUCH_TABLE: { type: 'SourceMissing', fix: 'a migrated table no longer exists on the source' },
};

/** AWS error names (the SDK's `name`) that a retry cannot fix. Throttling, 5xx and expired tokens stay transient. */
const AWS: Record<string, PermanentCause> = {
  AccessDeniedException: { type: 'AwsAccessDenied', fix: "grant the workers' AWS role the permission named above" },
  AccessDenied: { type: 'AwsAccessDenied', fix: "grant the workers' AWS role access to the staging bucket" },
  UnrecognizedClientException: { type: 'AwsAccessDenied', fix: "the workers' AWS credentials are not valid" },
  InvalidAccessKeyId: { type: 'AwsAccessDenied', fix: "the workers' AWS credentials are not valid" },
  InvalidSignatureException: { type: 'AwsAccessDenied', fix: "the workers' AWS secret key is wrong" },
  SignatureDoesNotMatch: { type: 'AwsAccessDenied', fix: "the workers' AWS secret key is wrong" },
  ValidationException: { type: 'AwsRequestInvalid', fix: 'the request can never succeed as it is (the message says why): fix the spec or the target table' },
  ResourceNotFoundException: { type: 'AwsResourceMissing', fix: 'the stream or table named above is gone: recreate it, or start a new migration' },
  NoSuchBucket: { type: 'AwsResourceMissing', fix: 'the staging bucket is gone: create it again' },
  KMSAccessDeniedException: { type: 'AwsAccessDenied', fix: "grant the workers' AWS role use of the KMS key" },
  KMSDisabledException: { type: 'AwsKeyUnusable', fix: 'enable the KMS key' },
  KMSNotFoundException: { type: 'AwsKeyUnusable', fix: 'the KMS key does not exist' },
};

/** ferry's own errors that no retry can fix. */
const FERRY: Record<string, PermanentCause> = {
  SpecSqlError: { type: 'InvalidSpecSql', fix: 'correct spec.sql (docs/transform.md)' },
};

/** Why `err` is permanent, or undefined for a failure worth retrying (and for one not recognised). */
export function permanentCause(err: unknown): PermanentCause | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && MYSQL[code]) return MYSQL[code];
  // MariaDB reports require_secure_transport with its own number; the text is the same as MySQL's.
  if (/insecure transport are prohibited/i.test(err.message)) return MYSQL.ER_SECURE_TRANSPORT_REQUIRED;
  if (Object.hasOwn(AWS, err.name)) return AWS[err.name];
  if (Object.hasOwn(FERRY, err.name)) return FERRY[err.name];
  return undefined;
}

/**
 * Runs an activity body; a permanent failure leaves it as a non-retryable
 * ApplicationFailure that names the cause, the fix and `ferry resume NAME`.
 * Anything else is thrown as it is, for Temporal to retry (visibly: `ferry
 * status` shows each activity's attempts and last failure).
 */
export async function failFastOnPermanent<T>(what: string, migration: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    const cause = permanentCause(err);
    if (!cause) throw err;
    const code = (err as { code?: string }).code;
    throw ApplicationFailure.nonRetryable(
      `${what} failed for good: ${code ?? (err as Error).name}: ${(err as Error).message}. To go on: ${cause.fix}; then \`ferry resume ${migration}\``,
      cause.type,
    );
  }
}
