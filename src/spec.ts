/**
 * The migration spec: one JSON document describes a migration. Validated with
 * zod; every error names its path (`spec.bulk.concurrency`) and what is
 * expected there. docs/spec.md documents each field with complete examples.
 */
import { z } from 'zod';
import { MAX_PARTITIONS_PER_MIGRATION } from './bulk/partitionPlan.js';
import { tableMappingDocument } from './mapping/tableMapping.js';
import { closedObject } from './closedObject.js';

const positiveInt = z.number().int().positive();

export const migrationSpec = closedObject({
  /** Names the migration: its workflow id and its staging folder. Letters, digits, `.`, `_`, `-`. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'expected 1–100 letters, digits, ".", "_" or "-", starting with a letter or digit'),
  source: closedObject({
      /**
       * Name of the environment variable, on the workers, that holds the MySQL
       * URL. The URL itself never enters the spec: workflow inputs are stored
       * in Temporal's history.
       */
      urlEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name').default('FERRY_MYSQL_URL'),
      /** Database (schema) to read; default: the URL's. */
      database: z.string().min(1).optional(),
    })
    .default({ urlEnv: 'FERRY_MYSQL_URL' }),
  /** AWS DMS table-mapping JSON, plus ferry's group-records-to-item rule. */
  mapping: tableMappingDocument,
  /** Row-local DuckDB SQL per source table, over a relation named `source`; runs before the mapping. */
  sql: z.record(z.string(), z.string().min(1)).default({}),
  staging: closedObject({
      /** Default: FERRY_STAGING_BUCKET on the workers. */
      bucket: z.string().min(3).optional(),
      prefix: z.string().regex(/^[A-Za-z0-9._/-]*$/, 'expected an S3 key prefix of letters, digits, ".", "_", "-", "/"').default('ferry'),
      format: z.enum(['parquet', 'csv']).default('parquet'),
      /** Server-side encryption of every object ferry stages: `AES256` (SSE-S3) or `aws:kms` (SSE-KMS). Absent: the bucket's default. */
      sse: z.enum(['AES256', 'aws:kms']).optional(),
      /** With `sse: "aws:kms"`: the KMS key (id, ARN or alias); absent, S3 uses the account's aws/s3 key. */
      kmsKeyId: z.string().min(1).optional(),
    })
    .refine((s) => s.kmsKeyId === undefined || s.sse === 'aws:kms', { message: 'kmsKeyId needs sse: "aws:kms"', path: ['kmsKeyId'] })
    .default({ prefix: 'ferry', format: 'parquet' }),
  target: closedObject({
      /** Create missing target tables (on-demand billing); when false, a missing table fails the preflight. */
      create: z.boolean().default(false),
    })
    .default({ create: false }),
  bulk: closedObject({
      /** Partitions per table; overrides partitionRows. */
      partitions: positiveInt.max(MAX_PARTITIONS_PER_MIGRATION).optional(),
      /** Target rows per partition when `partitions` is not set. */
      partitionRows: positiveInt.default(250_000),
      /** Partitions in flight at once, across all tables. */
      concurrency: positiveInt.max(256).default(4),
      /** BatchWriteItem calls in flight per loading partition. */
      writersPerPartition: positiveInt.max(64).default(8),
    })
    .default({ partitionRows: 250_000, concurrency: 4, writersPerPartition: 8 }),
  writeBudget: closedObject({
      /** Items the bulk load writes per second, across all its partitions (not catch-up's apply); unset: as fast as DynamoDB accepts. */
      itemsPerSecond: z.number().positive().optional(),
    })
    .default({}),
  /**
   * Change capture (binlog → Kinesis) from before the bulk copy, for a
   * near-zero-downtime migration. Absent: a one-shot bulk copy.
   */
  capture: closedObject({
      /** Kinesis stream the row changes go to; default `ferry-<name>`. */
      stream: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'expected a Kinesis stream name: 1–128 letters, digits, "_", ".", "-"').optional(),
      /** Create the stream (provisioned, `shards` shards) when it does not exist; when false a missing stream fails the preflight. */
      createStream: z.boolean().default(false),
      shards: positiveInt.max(500).default(2),
      /** How long the bulk copy is expected to take: the stream must keep records at least that long. */
      expectedBulkHours: z.number().positive().max(8760).default(6),
      /** Raise a retention shorter than expectedBulkHours (to twice it) instead of refusing. */
      raiseRetention: z.boolean().default(false),
      /**
       * Cutover after catch-up: `manual` waits for the approveCutover Update, `auto` starts once apply lag
       * is under maxLagMs, `none` ends the run after draining capture (no freeze, no routing flip).
       */
      cutover: z.enum(['manual', 'auto', 'none']).default('manual'),
      /** Apply lag (ms behind the stream's tip) under which cutover may start. */
      maxLagMs: positiveInt.default(1_000),
      /** Longest the freeze may last waiting for the drain; beyond it the cutover is rolled back. */
      maxFreezeMs: positiveInt.default(30_000),
      /**
       * Inside the freeze, after the drain, every item changed in this many ms before the final position is read
       * from the source (transformed) and the target and compared; a difference rolls the cutover back. It must
       * cover apply's lag at the freeze, so it may not be under maxLagMs.
       */
      checkWindowMs: positiveInt.max(600_000).default(5_000),
      /** After a completed run, delete the stream ferry created and the versions table (they are the run's own). */
      cleanup: z.boolean().default(true),
      /**
       * Schema changes of a migrated table that capture goes on past instead of stopping, each as the
       * refusal names it (`FILE:POSITION`, the binlog position after the statement): the operator's decision
       * that the target may stay as it is. Set by `ferry resume NAME --skip-ddl FILE:POSITION`.
       */
      skipDdl: z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected FILE:POSITION, as the SchemaChanged failure names it (e.g. mysql-bin.000003:1234)')).default([]),
      /** DynamoDB table of routing records that resolveBackend() reads (key `name`). */
      routingTable: z.string().regex(/^[A-Za-z0-9_.-]{3,255}$/, 'expected a DynamoDB table name').default('ferry-routing'),
    })
    .refine((c) => c.checkWindowMs >= c.maxLagMs, { message: 'expected at least capture.maxLagMs: the freeze checks the items changed in this window, which must cover what apply may still be applying when it starts', path: ['checkWindowMs'] })
    .optional(),
  errors: closedObject({
      /** `fail`: the first bad record fails the migration, naming its key and reason. `dead-letter`: it is written to S3 and counted. */
      policy: z.enum(['fail', 'dead-letter']).default('fail'),
    })
    .default({ policy: 'fail' }),
  conversion: closedObject({
      temporal: z.enum(['iso', 'epoch']).default('iso'),
      nulls: z.enum(['omit', 'null']).default('omit'),
    })
    .default({ temporal: 'iso', nulls: 'omit' }),
});

/** What a user writes (defaults optional). */
export type MigrationSpecInput = z.input<typeof migrationSpec>;
/** What ferry works with (defaults filled in). */
export type MigrationSpec = z.output<typeof migrationSpec>;

export class SpecError extends Error {
  constructor(readonly problems: string[]) {
    super(`the migration spec is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'SpecError';
  }
}

function issuePath(path: PropertyKey[]): string {
  return path.reduce<string>((out, p) => (typeof p === 'number' ? `${out}[${p}]` : `${out}.${String(p)}`), 'spec');
}

export function parseSpec(input: unknown): MigrationSpec {
  const result = migrationSpec.safeParse(input);
  if (result.success) return result.data;
  throw new SpecError(result.error.issues.map((issue) => `${issuePath(issue.path)}: ${issue.message}`));
}

/**
 * What a resumed run may change: how the copy runs, not what it produces or
 * where it stages, so every partition finished under the original spec stays
 * valid. (Setting bad rows aside, `errors`, is the one deliberate exception: it
 * is how a run that failed on a bad row goes on.)
 */
export const RESUMABLE_SETTINGS = [
  'errors.policy',
  'writeBudget.itemsPerSecond',
  'bulk.concurrency',
  'bulk.writersPerPartition',
  // The cutover's timing: a run whose freeze timed out or whose check found a difference goes on with new ones.
  'capture.maxLagMs',
  'capture.maxFreezeMs',
  'capture.checkWindowMs',
  // The operator's decision on a schema change that stopped capture: go on past it.
  'capture.skipDdl',
] as const;

/** Paths (`spec.mapping.rules[0]…`) where two specs differ. */
export function specDifferences(a: unknown, b: unknown, at = 'spec'): string[] {
  if (Object.is(a, b)) return [];
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  if (!isObject(a) || !isObject(b) || Array.isArray(a) !== Array.isArray(b)) return [at];
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return [at];
    return a.flatMap((v, i) => specDifferences(v, b[i], `${at}[${i}]`));
  }
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.flatMap((k) => specDifferences(a[k], b[k], `${at}.${k}`));
}

/**
 * Checks a revised spec for `ferry resume --spec`: same name, and changes only
 * to RESUMABLE_SETTINGS. Throws SpecError naming each other change.
 */
export function revisedSpecForResume(original: MigrationSpec, revisedInput: unknown): MigrationSpec {
  const revised = parseSpec(revisedInput);
  const allowed = RESUMABLE_SETTINGS.map((s) => `spec.${s}`);
  // A list setting differs as a whole (`spec.capture.skipDdl`) or entry by entry (`spec.capture.skipDdl[0]`).
  const refused = specDifferences(original, revised).filter((p) => !allowed.some((a) => p === a || p.startsWith(`${a}[`)));
  if (refused.length) {
    throw new SpecError(
      refused.map(
        (p) =>
          `${p}: differs from the run being resumed; a resume may change only ${RESUMABLE_SETTINGS.join(', ')}. ` +
          'Finished partitions were produced under the original value: start a new migration (a new name) to change it',
      ),
    );
  }
  return revised;
}
