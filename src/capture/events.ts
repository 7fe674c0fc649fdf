/**
 * Change events as they travel through Kinesis: one JSON record per row
 * change, with the binlog position as a sortable version. Pure code, shared by
 * capture and apply (docs/cdc.md).
 */
import { createHash } from 'node:crypto';

export interface BinlogPosition {
  file: string;
  position: number;
}

/** JSON-safe column value: bytes as {"$b64": …}, big numbers and decimals as text. */
export type EventValue = string | number | boolean | null | { $b64: string };
export type EventRow = Record<string, EventValue>;

export interface ChangeEvent {
  /** `schema.table` */
  table: string;
  op: 'insert' | 'update' | 'delete';
  /** Primary-key values of the row the change is about (the after image's, or the before image's for a delete). */
  key: EventRow;
  before?: EventRow;
  after?: EventRow;
  /** Binlog position of the row as one number (decimal text): orders every change of a row. */
  version: string;
  /** Commit time, ms since the epoch. */
  ts: number;
}

/** `binlog.000042` → 42. */
export function binlogFileSequence(file: string): number {
  const m = /\.(\d+)$/.exec(file);
  if (!m) throw new Error(`binlog file name ${file} has no numeric suffix`);
  return Number(m[1]);
}

/** Orders positions: file first, then offset. */
export function comparePositions(a: BinlogPosition, b: BinlogPosition): number {
  return binlogFileSequence(a.file) - binlogFileSequence(b.file) || a.position - b.position;
}

/**
 * file sequence × 10^17 + event offset × 10^5 + row index: 23 digits at most,
 * which DynamoDB's 38-digit numbers hold, and monotonic in binlog order.
 */
export function eventVersion(file: string, eventOffset: number, rowIndex: number): string {
  if (rowIndex >= 100_000) throw new Error(`row ${rowIndex} of one binlog event: more than a version can order`);
  return (BigInt(binlogFileSequence(file)) * 10n ** 17n + BigInt(eventOffset) * 10n ** 5n + BigInt(rowIndex)).toString();
}

export function encodeValue(value: unknown): EventValue {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return { $b64: Buffer.from(value).toString('base64') };
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') return value;
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

export function decodeValue(value: EventValue): unknown {
  return value !== null && typeof value === 'object' ? Buffer.from(value.$b64, 'base64') : value;
}

export function encodeRow(row: Record<string, unknown>): EventRow {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, encodeValue(v)]));
}

/**
 * A row image as the binlog reader decoded it, in the staged representation
 * the bulk copy's export gives the same row. The reader adds 1900 to YEAR's
 * stored byte, so YEAR 0000 (stored as 0) comes out as 1900; YEAR holds only
 * 0000 and 1901–2155, so a 1900 is always 0000.
 */
export function encodeBinlogRow(row: Record<string, unknown>, yearColumns: string[]): EventRow {
  const image = encodeRow(row);
  for (const name of yearColumns) if (image[name] === 1900) image[name] = 0;
  return image;
}

/** Kinesis partition key (≤ 256 characters): one row's changes share a shard. */
export function partitionKeyOf(table: string, key: EventRow): string {
  const text = `${table}|${JSON.stringify(key)}`;
  return text.length <= 256 ? text : `${table.slice(0, 100)}|sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** Kinesis's limit for one record's data plus partition key. */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** PutRecords limits per call. */
export const MAX_BATCH_RECORDS = 500;
export const MAX_BATCH_BYTES = 5 * 1024 * 1024;

/** The record capture puts on every open shard once it has shipped everything up to the stop position (docs/cdc.md). */
export interface CaptureEndMarker {
  marker: 'capture-complete';
  /** The workflow run whose capture ended: readers of other runs (a replay, a resumed run) pass it by. */
  runId: string;
  position: BinlogPosition;
}

export function isEndMarker(record: object): record is CaptureEndMarker {
  return (record as { marker?: unknown }).marker === 'capture-complete';
}
