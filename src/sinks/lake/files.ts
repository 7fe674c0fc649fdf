/**
 * Writing one lake file: rows in DMS's column order, `Op` first, then the
 * commit time, `_ferry_seq`, and the source's columns in Parquet logical
 * types that keep their meaning (lakeType). Full-load rows come from a staged
 * export file (the bulk copy's own), changes from the capture's change events:
 * both pass through the staging representation (src/mapping/types.ts), so a
 * row reads the same in either.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { copyFormat, duckIdent, sqlString, stagingAppender } from '../../bulk/duck.js';
import { decodeValue, type ChangeEvent } from '../../capture/events.js';
import { DYNAMODB_MAX_DIGITS, fromMysql, stagingType, type SourceColumn } from '../../mapping/types.js';
import { changeSeq, commitTimestamp, type LakeFormat } from './layout.js';

/** DMS's operation codes. */
export type LakeOp = 'I' | 'U' | 'D';

/** The columns every lake file starts with, in this order, before the source's. */
export const LAKE_COLUMNS = ['Op', '_ferry_ts', '_ferry_seq'] as const;

/**
 * The Parquet (DuckDB) type a source column lands as. DECIMAL keeps its precision and scale (up to 38 digits,
 * Parquet's limit; wider ones land as text), DATETIME is a TIMESTAMP, TIMESTAMP an instant (TIMESTAMPTZ, UTC),
 * DATE a DATE. TIME lands as text: MySQL's TIME runs to ±838 h, past a time of day. JSON, ENUM and SET land as
 * their text. The table is docs/type-mapping.md's lake column.
 */
export function lakeType(column: SourceColumn): string {
  switch (column.family) {
    case 'date':
      return 'DATE';
    case 'datetime':
      return 'TIMESTAMP';
    case 'timestamp':
      return 'TIMESTAMPTZ';
    case 'decimal':
      return (column.precision ?? 10) <= DYNAMODB_MAX_DIGITS ? `DECIMAL(${column.precision ?? 10},${column.scale ?? 0})` : 'VARCHAR';
    default:
      return stagingType(column);
  }
}

/** The select list from a staged table to a lake file's source columns. */
function lakeSelect(columns: SourceColumn[]): string {
  return columns
    .map((c) => {
      const name = duckIdent(c.name);
      // Staged temporal values are MySQL's text; a TIMESTAMP's is UTC (capture and export read with time zone UTC).
      if (c.family === 'timestamp') return `CAST(${name} || '+00' AS TIMESTAMPTZ) AS ${name}`;
      return lakeType(c) === stagingType(c) ? name : `CAST(${name} AS ${lakeType(c)}) AS ${name}`;
    })
    .join(', ');
}

export interface WrittenFile {
  rows: number;
  bytes: number;
  /** Hex MD5 of the file's bytes, as the manifest lists it. */
  md5: string;
}

/** The file's size and MD5, hashed as a stream: a full-load file can be far larger than memory should hold. */
async function describeFile(file: string, rows: number): Promise<WrittenFile> {
  const hash = createHash('md5');
  await pipeline(fs.createReadStream(file), hash);
  return { rows, bytes: fs.statSync(file).size, md5: hash.digest('hex') };
}

/**
 * Change events of one table (in stream order) as one change file at `out`. An insert is `I` with the row, an
 * update `U` with the row after it, a delete `D` with the row before it; each row carries its commit time and
 * `_ferry_seq`. A value the lake type cannot hold (a zero date, say) fails the file, naming the column.
 */
export async function writeChangeFile(duck: DuckDBConnection, events: ChangeEvent[], columns: SourceColumn[], out: string, format: LakeFormat): Promise<WrittenFile> {
  const staged = `changes_${process.hrtime.bigint()}`;
  const metaColumns: SourceColumn[] = LAKE_COLUMNS.map((name) => ({ name, family: 'text', mysqlType: 'varchar', nullable: false, unsigned: false }));
  const all = [...metaColumns, ...columns];
  const appender = await stagingAppender(duck, staged, all);
  try {
    for (const event of events) {
      const op: LakeOp = event.op === 'insert' ? 'I' : event.op === 'update' ? 'U' : 'D';
      const image = event.op === 'delete' ? event.before : event.after;
      if (!image) throw new Error(`the ${event.op} of ${event.table} at version ${event.version} carries no row image: the binlog must be written with binlog_row_image=FULL`);
      appender.appendRow([op, commitTimestamp(event.ts), changeSeq(event.version), ...columns.map((c) => fromMysql(c, decodeValue(image[c.name] ?? null)))]);
    }
  } finally {
    appender.close();
  }
  try {
    await copyOut(duck, `SELECT "Op", "_ferry_ts", "_ferry_seq", ${lakeSelect(columns)} FROM ${duckIdent(staged)}`, out, format, columns);
  } finally {
    await duck.run(`DROP TABLE ${duckIdent(staged)}`);
  }
  return describeFile(out, events.length);
}

/**
 * A staged export file (the bulk copy's rows, in staging types) as one full-load file at `out`. `includeOp`: an `Op`
 * column of `I` first, as DMS's includeOpForFullLoad writes it; without it no `Op` column, as DMS writes a full load
 * by default (the merge reads such a file as inserts). Full-load rows carry `seq`, the capture start's (layout.ts
 * fullLoadSeq), and the commit time `ts` of the capture start.
 */
export async function writeFullLoadFile(
  duck: DuckDBConnection,
  staged: { file: string; format: LakeFormat },
  columns: SourceColumn[],
  meta: { includeOp: boolean; seq: string; commitMs: number },
  out: string,
  format: LakeFormat,
): Promise<WrittenFile> {
  const types = `{${columns.map((c) => `${sqlString(c.name)}: ${sqlString(stagingType(c))}`).join(', ')}}`;
  const reader = staged.format === 'csv' ? `read_csv(${sqlString(staged.file)}, header = true, columns = ${types})` : `read_parquet(${sqlString(staged.file)})`;
  const op = meta.includeOp ? `'I' AS "Op", ` : '';
  const rows = await copyOut(duck, `SELECT ${op}${sqlString(commitTimestamp(meta.commitMs))} AS "_ferry_ts", ${sqlString(meta.seq)} AS "_ferry_seq", ${lakeSelect(columns)} FROM ${reader}`, out, format, columns);
  return describeFile(out, rows);
}

/** COPYs `select` to `out`; returns the rows written, as COPY counts them. */
async function copyOut(duck: DuckDBConnection, select: string, out: string, format: LakeFormat, columns: SourceColumn[]): Promise<number> {
  try {
    const result = await duck.runAndReadAll(`COPY (${select}) TO ${sqlString(out)} (${copyFormat(format)})`);
    return Number(result.getRows()[0]![0]);
  } catch (err) {
    const message = (err as Error).message;
    if (!/Conversion Error|Could not convert|Invalid Input Error/i.test(message)) throw err;
    // DuckDB quotes the value, and failure messages land in Temporal's history: shown only when asked for.
    const said = process.env.FERRY_FAILURE_VALUES === '1' ? ` DuckDB said: ${message.split('\n')[0]}` : ' (set FERRY_FAILURE_VALUES=1 on the workers to see the value)';
    const typed = columns.filter((c) => lakeType(c) !== stagingType(c)).map((c) => `${c.name} (${c.mysqlType} as ${lakeType(c)})`);
    throw new Error(`a value cannot land in its lake type, a zero date or a value out of the type's range, in one of ${typed.join(', ') || 'the columns'}: fix the row in the source.${said}`);
  }
}
