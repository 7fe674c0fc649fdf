/**
 * The small JSON values the bulk workflow and its activities exchange: never
 * rows, only tables, key ranges, S3 keys and counts.
 */
import type { TableMapping } from '../mapping/tableMapping.js';
import type { SourceColumn } from '../mapping/types.js';
import type { MigrationSpec } from '../spec.js';
import { partitionId, type PartitionRange } from './partitionPlan.js';

/** A source table as preflight found it, with its compiled mapping. */
export interface SourceTable {
  schema: string;
  table: string;
  columns: SourceColumn[];
  primaryKey: string[];
  mapping: TableMapping;
  /** Columns partitions are split on: the primary key, or for a grouping mapping the item key's columns. */
  splitColumns: string[];
  rowsEstimate: number;
}

export interface PreflightReport {
  tables: SourceTable[];
  /** Target tables ferry created during preflight. */
  createdTables: string[];
  bucket: string;
  /** With spec.capture: the stream change capture writes to, ready and retaining long enough. */
  capture?: { stream: string; retentionHours: number; createdStream: boolean; versionsTable: string };
}

export interface ExportResult {
  rows: number;
  bytes: number;
  key: string;
  /** When the stage began (epoch ms) and how long it took. */
  startedAt: number;
  ms: number;
  /** True when an earlier attempt's staged file was reused. */
  reused: boolean;
  /** Which reader staged the rows (activities/export.ts); absent in markers written before readers were recorded. */
  reader?: ExportReader;
}

export type ExportReader = 'duckdb' | 'client' | 'driver';

export interface TransformResult {
  rows: number;
  items: number;
  bytes: number;
  key: string;
  /** Order-independent checksum of the items (sum of per-item hashes, mod 2^64, hex). */
  checksum: string;
  deadLetters: number;
  deadLetterKey?: string;
  startedAt: number;
  ms: number;
}

export interface LoadResult {
  items: number;
  /** Item offset the load resumed from after a retry (0: started fresh). */
  resumedFrom: number;
  attempts: number;
  throttled: number;
  startedAt: number;
  ms: number;
}

/** Written to S3 when a partition is loaded; its presence means "never redo this partition". */
export interface PartitionManifest {
  partition: string;
  range: PartitionRange;
  export: ExportResult;
  transform: TransformResult;
  load: LoadResult;
  finishedAt: string;
}

export interface Staging {
  bucket: string;
  /** `<prefix>/<migration name>` */
  root: string;
  format: 'parquet' | 'csv';
  /** Server-side encryption every staged object is written with (src/aws.ts stagingS3); absent: the bucket's default. */
  sse?: { algorithm: 'AES256' | 'aws:kms'; kmsKeyId?: string };
}

export function staging(spec: MigrationSpec, bucket: string): Staging {
  const prefix = spec.staging.prefix.replace(/\/+$/, '');
  const { sse, kmsKeyId } = spec.staging;
  return {
    bucket,
    root: prefix ? `${prefix}/${spec.name}` : spec.name,
    format: spec.staging.format,
    ...(sse ? { sse: { algorithm: sse, ...(kmsKeyId ? { kmsKeyId } : {}) } } : {}),
  };
}

/** The migration's claim on its staging folder, written once preflight passes. */
export interface StagingClaim {
  name: string;
  /** The run that first claimed the folder; resumed runs keep it. */
  runId: string;
  claimedAt: string;
}

/** Migration-level staging keys; docs/spec.md shows the layout. */
export function migrationKeys(stage: Staging) {
  return {
    claim: `${stage.root}/migration.json`,
    plan: (table: string) => `${stage.root}/${table}/plan.json`,
    planProgress: (table: string) => `${stage.root}/${table}/plan-progress.json`,
  };
}

/** The staging layout; docs/spec.md shows it. */
export function partitionKeys(stage: Staging, range: Pick<PartitionRange, 'table' | 'index'>) {
  const base = `${stage.root}/${partitionId(range)}`;
  return {
    rows: `${base}/rows.${stage.format}`,
    exported: `${base}/export.json`,
    items: `${base}/items.jsonl`,
    deadLetters: `${base}/dead-letters.jsonl`,
    manifest: `${base}/manifest.json`,
  };
}
