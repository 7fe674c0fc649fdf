/**
 * The lake's layout (docs/lake.md once the sink ships): where each file of a
 * table lands and what it is called, in the layout AWS DMS's S3 target uses,
 * so that existing DMS consumers read it unchanged, plus what DMS lacks: a
 * total order of changes and names that come from stream positions, so a
 * retried or resumed write replaces its own file and never adds a second.
 *
 *   PREFIX/SCHEMA/TABLE/full/LOAD00000001.parquet     full load (or flat, beside the changes: DMS's own folder)
 *   PREFIX/SCHEMA/TABLE/changes/[YYYY/MM/DD/]20261207-180102345-<seq>.parquet
 *   PREFIX/SCHEMA/TABLE/_ferry/manifest.json          the committed files (manifest.ts)
 *   PREFIX/SCHEMA/TABLE/current/                      the merged table (current.ts)
 *
 * Pure code.
 */

export type LakeFormat = 'parquet' | 'csv';

export interface LakeLayoutOptions {
  /** The key prefix under the bucket, without a trailing slash ('' for the bucket's root). */
  prefix: string;
  format: LakeFormat;
  /** `separate` (default): full load in `full/`, changes in `changes/`; `flat`: both in the table's folder, as DMS does. */
  folders: 'separate' | 'flat';
  /** Change files in `YYYY/MM/DD/` folders by the commit date of their first change (DMS's DatePartitionEnabled). */
  datePartitions: boolean;
}

/** `PREFIX/SCHEMA/TABLE/`: every key of one table starts here. */
export function tableRoot(options: Pick<LakeLayoutOptions, 'prefix'>, schema: string, table: string): string {
  for (const [what, name] of [['schema', schema], ['table', table]] as const) {
    if (name === '' || name.includes('/') || name === '.' || name === '..') throw new Error(`the ${what} name ${JSON.stringify(name)} cannot be a lake folder: it is empty, a dot folder or holds a slash`);
  }
  return `${options.prefix ? `${options.prefix.replace(/\/+$/, '')}/` : ''}${schema}/${table}/`;
}

/** The full load's n-th file (n from 1): `LOAD` and an 8-digit upper-case hex counter, as DMS names them. */
export function fullLoadKey(options: LakeLayoutOptions, root: string, n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) throw new Error(`full-load file number ${n} is not between 1 and 0xFFFFFFFF`);
  const name = `LOAD${n.toString(16).toUpperCase().padStart(8, '0')}.${options.format}`;
  return options.folders === 'flat' ? `${root}${name}` : `${root}full/${name}`;
}

/**
 * A change file, named by the commit time of its first change (`YYYYMMDD-HHMMSSfff`, UTC) as DMS names them, then
 * that change's sequence: two files whose first changes share a millisecond get two names, and a rewrite of the
 * same changes gets the same name.
 */
export function changeFileKey(options: LakeLayoutOptions, root: string, first: { commitMs: number; seq: string }): string {
  const t = new Date(first.commitMs);
  const two = (n: number) => String(n).padStart(2, '0');
  const date = `${t.getUTCFullYear()}${two(t.getUTCMonth() + 1)}${two(t.getUTCDate())}`;
  const time = `${two(t.getUTCHours())}${two(t.getUTCMinutes())}${two(t.getUTCSeconds())}${String(t.getUTCMilliseconds()).padStart(3, '0')}`;
  const folder = options.folders === 'flat' ? root : `${root}changes/`;
  const dated = options.datePartitions ? `${date.slice(0, 4)}/${date.slice(4, 6)}/${date.slice(6)}/` : '';
  return `${folder}${dated}${date}-${time}-${first.seq.replace(/\./g, '')}.${options.format}`;
}

export const manifestKey = (root: string): string => `${root}_ferry/manifest.json`;

const FILE_DIGITS = 8;
const OFFSET_DIGITS = 12;
const ROW_DIGITS = 5;

/**
 * `_ferry_seq` of a change: binlog file sequence, event offset and row index, zero-padded and dot-separated
 * (`00000042.000000012345.00003`), so text order is binlog order, rows of one event included. Made from a change's
 * version (src/capture/events.ts: file × 10^17 + offset × 10^5 + row).
 */
export function changeSeq(version: string): string {
  const v = BigInt(version);
  const file = v / 10n ** 17n;
  const offset = (v / 10n ** 5n) % 10n ** 12n;
  const row = v % 10n ** 5n;
  if (file >= 10n ** BigInt(FILE_DIGITS)) throw new Error(`binlog file sequence ${file} has more than ${FILE_DIGITS} digits: _ferry_seq cannot order it`);
  return `${pad(file, FILE_DIGITS)}.${pad(offset, OFFSET_DIGITS)}.${pad(row, ROW_DIGITS)}`;
}

/**
 * `_ferry_seq` of a full-load row: the capture start's file and offset without a row index. Shorter, it sorts
 * before every change at or after the start, so a change captured while the table was exported wins over the
 * exported row, whichever the export saw.
 */
export function fullLoadSeq(start: { file: string; position: number }): string {
  const m = /\.(\d+)$/.exec(start.file);
  if (!m) throw new Error(`binlog file name ${start.file} has no numeric suffix`);
  return `${pad(BigInt(m[1]!), FILE_DIGITS)}.${pad(BigInt(start.position), OFFSET_DIGITS)}`;
}

const pad = (n: bigint, digits: number) => n.toString().padStart(digits, '0');

/** DMS's TimestampColumnName format, `yyyy-MM-dd HH:mm:ss.SSSSSS` in UTC, of a commit time in ms. */
export function commitTimestamp(commitMs: number): string {
  return `${new Date(commitMs).toISOString().replace('T', ' ').replace('Z', '')}000`;
}
