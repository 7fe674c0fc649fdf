/**
 * The merge of landed changes into the lake's `current/` table, as DuckDB SQL
 * over local Parquet files (current.ts downloads them and publishes the
 * result). Copy-on-write: the rows of every partition a change touches are
 * rebuilt from that partition's current files and the changes, latest
 * `_ferry_seq` per key winning, a winning `D` leaving the key out.
 *
 * Change files (and full-load files) hold `Op`, `_ferry_ts`, `_ferry_seq`,
 * then the source's columns; a later file may hold more columns than an
 * earlier one (ADD COLUMN), so every read unions by name. Current files hold
 * the source's columns, then `_ferry_ts` and `_ferry_seq` (no `Op`: every row
 * of current is present).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import fs from 'node:fs';
import path from 'node:path';
import { copyFormat, duckIdent, sqlString } from '../../bulk/duck.js';

/** The columns every change file carries before the source's own. */
export const CHANGE_COLUMNS = ['Op', '_ferry_ts', '_ferry_seq'] as const;
/** The columns every current file carries after the source's own: readers see each row's freshness. */
export const FRESHNESS_COLUMNS = ['_ferry_ts', '_ferry_seq'] as const;

/** A Parquet file in the scratch folder, and the name messages give it (the object's URL). */
export interface LocalFile {
  file: string;
  name: string;
}

/** What the merge needs to know of the table. */
export interface MergeShape {
  keyColumns: string[];
  partitionBy?: string;
}

const OPS = ['I', 'U', 'D'];
/** Columns the merge's SQL adds to rows on their way through: a source column of one of these names would be lost. */
const MERGE_COLUMNS = ['_ferry_from_change', '_ferry_rank', '_ferry_partition'];

async function rows(duck: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return (await duck.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
}

function parquetList(files: string[]): string {
  return `[${files.map(sqlString).join(', ')}]`;
}

/** The columns of one Parquet file, in order. */
async function fileColumns(duck: DuckDBConnection, file: string): Promise<string[]> {
  return (await rows(duck, `DESCRIBE SELECT * FROM read_parquet(${sqlString(file)})`)).map((r) => String(r.column_name));
}

/**
 * Refuses change files the merge would get wrong: one without `Op`,
 * `_ferry_seq`, a key column or the partition column, an `Op` other than
 * I/U/D, a NULL key. Returns the source columns of all the files in order of
 * first appearance (a column added on the source comes after the older ones).
 */
export async function checkChangeFiles(duck: DuckDBConnection, files: LocalFile[], shape: MergeShape): Promise<string[]> {
  const sourceColumns: string[] = [];
  // Op may be absent: a full-load file as DMS writes it without includeOpForFullLoad, every row an insert.
  const needed = [...CHANGE_COLUMNS.filter((c) => c !== 'Op'), ...shape.keyColumns, ...(shape.partitionBy ? [shape.partitionBy] : [])];
  for (const { file, name } of files) {
    const columns = await fileColumns(duck, file);
    for (const column of needed) {
      if (!columns.includes(column)) {
        const role = shape.keyColumns.includes(column) ? 'key column' : column === shape.partitionBy ? 'partition column' : 'column';
        throw new Error(
          `${name} has no ${role} ${duckIdent(column)} (it has ${columns.join(', ')}): every change file of the table must carry ${CHANGE_COLUMNS.join(', ')} and the key columns ${shape.keyColumns.join(', ')}` +
            `${shape.partitionBy ? ` and the partition column ${shape.partitionBy}` : ''}; land the table again with these columns, or fix keyColumns/partitionBy to the table's`,
        );
      }
    }
    const reserved = columns.find((c) => MERGE_COLUMNS.includes(c.toLowerCase()));
    if (reserved) throw new Error(`${name} has a column ${duckIdent(reserved)}, a name the lake's merge uses for itself (${MERGE_COLUMNS.join(', ')}): rename the source column, or exclude it from the lake`);
    for (const column of columns) if (!(CHANGE_COLUMNS as readonly string[]).includes(column) && !sourceColumns.includes(column)) sourceColumns.push(column);

    const [badOp] = !columns.includes('Op') ? [] : await rows(duck, `SELECT Op AS op, count(*) AS n FROM read_parquet(${sqlString(file)}) WHERE Op IS NULL OR Op NOT IN (${OPS.map(sqlString).join(', ')}) GROUP BY Op LIMIT 1`);
    if (badOp) {
      const op = badOp.op === null ? 'NULL' : `'${String(badOp.op)}'`;
      throw new Error(`${name} holds ${badOp.n} row(s) with Op ${op}: a change file's Op is I, U or D (DMS's layout); remove the file from the merge or land it again with ferry's lake sink`);
    }
    const nullKey = shape.keyColumns.map((c) => `${duckIdent(c)} IS NULL`).join(' OR ');
    const [nulls] = await rows(duck, `SELECT count(*) AS n FROM read_parquet(${sqlString(file)}) WHERE ${nullKey} OR _ferry_seq IS NULL`);
    if (Number(nulls!.n) > 0) {
      throw new Error(`${name} holds ${nulls!.n} row(s) with a NULL key column (${shape.keyColumns.join(', ')}) or a NULL _ferry_seq: every change row carries its key and seq; fix keyColumns to the table's primary key, or land the file again`);
    }
  }
  return sourceColumns;
}

async function fileColumnsOf(duck: DuckDBConnection, table: string): Promise<string[]> {
  return (await rows(duck, `DESCRIBE ${duckIdent(table)}`)).map((r) => String(r.column_name));
}

/** Loads the change files as the table `changes`, columns unioned by name. Returns the highest `_ferry_seq` in them. */
export async function loadChanges(duck: DuckDBConnection, files: string[]): Promise<string> {
  await duck.run(`CREATE OR REPLACE TABLE changes AS SELECT * FROM read_parquet(${parquetList(files)}, union_by_name = true)`);
  // Only files without an Op column leave it NULL here (checkChangeFiles refuses a NULL Op in one that has it).
  if ((await fileColumnsOf(duck, 'changes')).includes('Op')) await duck.run(`UPDATE changes SET Op = 'I' WHERE Op IS NULL`);
  else await duck.run(`ALTER TABLE changes ADD COLUMN Op VARCHAR DEFAULT 'I'`);
  const [top] = await rows(duck, 'SELECT max(_ferry_seq) AS seq FROM changes');
  return String(top!.seq);
}

/** The partition column's value as text, the one form partition folders are named from (NULL stays NULL). */
function partitionText(column: string): string {
  return `CAST(${duckIdent(column)} AS VARCHAR)`;
}

/** The distinct values (as text) of the partition column among the changes. */
export async function changedPartitionValues(duck: DuckDBConnection, partitionBy: string): Promise<(string | null)[]> {
  return (await rows(duck, `SELECT DISTINCT ${partitionText(partitionBy)} AS value FROM changes`)).map((r) => (r.value === null ? null : String(r.value)));
}

/**
 * Which of `currentFiles` hold a key that the changes touch: a key whose
 * update moved it to another partition must leave its old partition too, and
 * only the current files say where it was. Reads the key columns only.
 */
export async function filesHoldingChangedKeys(duck: DuckDBConnection, currentFiles: string[], keyColumns: string[]): Promise<string[]> {
  if (currentFiles.length === 0) return [];
  const keys = keyColumns.map(duckIdent).join(', ');
  const found = await rows(
    duck,
    `SELECT DISTINCT c.filename AS file FROM read_parquet(${parquetList(currentFiles)}, union_by_name = true, filename = true) AS c SEMI JOIN (SELECT ${keys} FROM changes) AS k USING (${keys})`,
  );
  return found.map((r) => String(r.file));
}

/**
 * Builds the table `merged`: the latest state of every key among the rows
 * of `currentFiles` and the changes, without the keys whose latest change
 * is a delete. The highest `_ferry_seq` wins; a change wins a tie with a
 * current row (the same change merged again). `columns` are the current
 * file's columns, in order; `_ferry_partition` is added, the partition
 * value as text (NULL for an unpartitioned table).
 */
export async function mergeLatest(duck: DuckDBConnection, currentFiles: string[], columns: string[], shape: MergeShape): Promise<void> {
  const current = currentFiles.length
    ? `UNION ALL BY NAME SELECT 'C' AS Op, 0 AS _ferry_from_change, * FROM read_parquet(${parquetList(currentFiles)}, union_by_name = true)`
    : '';
  const keys = shape.keyColumns.map(duckIdent).join(', ');
  await duck.run(`
    CREATE OR REPLACE TABLE merged AS
    WITH candidates AS (
      SELECT 1 AS _ferry_from_change, * FROM changes
      ${current}
    ),
    ranked AS (
      SELECT *, row_number() OVER (PARTITION BY ${keys} ORDER BY _ferry_seq DESC, _ferry_from_change DESC) AS _ferry_rank FROM candidates
    )
    SELECT ${columns.map(duckIdent).join(', ')}, ${shape.partitionBy ? partitionText(shape.partitionBy) : 'CAST(NULL AS VARCHAR)'} AS _ferry_partition
    FROM ranked WHERE _ferry_rank = 1 AND Op <> 'D'`);
}

/** The partition values (as text) of `merged`, and how many rows each holds. */
export async function mergedPartitions(duck: DuckDBConnection): Promise<{ value: string | null; rows: number }[]> {
  return (await rows(duck, 'SELECT _ferry_partition AS value, count(*) AS n FROM merged GROUP BY ALL')).map((r) => ({ value: r.value === null ? null : String(r.value), rows: Number(r.n) }));
}

/**
 * Writes the rows of `merged` whose partition value is one of `values` as
 * Parquet files of at most `rowsPerFile` rows each in `dir`
 * (part-00000.parquet, …), sorted by key so each file's row groups carry
 * narrow key statistics. Returns the files and their row counts.
 */
export async function writeMerged(
  duck: DuckDBConnection,
  values: (string | null)[],
  columns: string[],
  keyColumns: string[],
  dir: string,
  rowsPerFile: number,
): Promise<{ file: string; rows: number }[]> {
  const literal = values.filter((v): v is string => v !== null);
  const where = [...(values.includes(null) ? ['_ferry_partition IS NULL'] : []), ...(literal.length ? [`_ferry_partition IN (${literal.map(sqlString).join(', ')})`] : [])].join(' OR ');
  const select = `SELECT ${columns.map(duckIdent).join(', ')} FROM merged WHERE ${where || 'false'} ORDER BY ${keyColumns.map(duckIdent).join(', ')}`;
  fs.mkdirSync(dir, { recursive: true });
  const written: { file: string; rows: number }[] = [];
  for (let offset = 0; ; offset += rowsPerFile) {
    const file = path.join(dir, `part-${String(written.length).padStart(5, '0')}.parquet`);
    const result = await duck.runAndReadAll(`COPY (${select} LIMIT ${rowsPerFile} OFFSET ${offset}) TO ${sqlString(file)} (${copyFormat('parquet')})`);
    const count = Number(result.getRows()[0]![0]);
    if (count === 0) {
      fs.rmSync(file, { force: true });
      break;
    }
    written.push({ file, rows: count });
    if (count < rowsPerFile) break;
  }
  return written;
}
