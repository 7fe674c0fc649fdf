/**
 * DuckDB as the staging engine: a file-backed database per activity in a
 * scratch folder, with a memory cap so large partitions spill to disk instead
 * of growing the worker.
 */
import { DuckDBAppender, DuckDBBlobValue, DuckDBDecimalValue, DuckDBInstance, type DuckDBConnection, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stagingType, type ColumnFamily, type SourceColumn, type StagedValue } from '../mapping/types.js';

export interface Scratch {
  dir: string;
  duck: DuckDBConnection;
  close(): void;
}

/** The memory limit of each DuckDB instance ferry opens (FERRY_DUCKDB_MEMORY); beyond it DuckDB spills to disk. */
export function duckMemoryLimit(): string {
  return process.env.FERRY_DUCKDB_MEMORY ?? '256MB';
}

/** A scratch folder; close() removes it. */
export interface ScratchFolder {
  dir: string;
  close(): void;
}

export function scratchFolder(label: string): ScratchFolder {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ferry-${label}-`));
  return { dir, close: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Settings of the DuckDBs that stage rows or run the spec's SQL: an extension
 * is loaded only when ferry loads it by file, never installed or loaded behind
 * its back by a query that names one of its functions (that would reach the
 * network or the worker's extension folder from the spec's SQL).
 */
export const NO_EXTENSION_AUTOLOAD = { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' } as const;

/** A DuckDB database in `dir`, memory-capped, spilling to `dir`; close() closes it and leaves the folder. */
export async function scratchDatabase(dir: string): Promise<{ duck: DuckDBConnection; close(): void }> {
  const instance = await DuckDBInstance.create(path.join(dir, 'scratch.duckdb'), {
    ...NO_EXTENSION_AUTOLOAD,
    memory_limit: duckMemoryLimit(),
    threads: '2',
    temp_directory: path.join(dir, 'spill'),
    preserve_insertion_order: 'false',
  });
  const duck = await instance.connect();
  return {
    duck,
    close() {
      duck.closeSync();
      instance.closeSync();
    },
  };
}

/** A scratch folder and a DuckDB database inside it; close() removes both. */
export async function openScratch(label: string): Promise<Scratch> {
  const folder = scratchFolder(label);
  const database = await scratchDatabase(folder.dir);
  return {
    dir: folder.dir,
    duck: database.duck,
    close() {
      database.close();
      folder.close();
    },
  };
}

/** spec.sql that DuckDB must not run: not one SELECT, or reaching past `source`. A spec error: no retry fixes it. */
export class SpecSqlError extends Error {
  override name = 'SpecSqlError';
}

/**
 * Confines `duck` before it runs the spec's SQL: from now on no file but those
 * in `readable` (the staged rows ferry itself set up as `source`) can be read,
 * none written, no database attached, no extension installed, and the SQL
 * cannot undo any of it (lock_configuration). Everything ferry reads or writes
 * through `duck` by path must happen before. DuckDB's own database file and
 * spill folder stay usable: they are not external access.
 */
export async function confineToSource(duck: DuckDBConnection, readable: string[] = []): Promise<void> {
  await duck.run(`SET allowed_paths = [${readable.map(sqlString).join(', ')}]`);
  await duck.run('SET enable_external_access = false');
  await duck.run('SET lock_configuration = true');
}

/**
 * Refuses `sql` (spec.sql.<table>) unless DuckDB's own parser reads it as
 * exactly one SELECT statement (WITH, FROM-first and VALUES forms included):
 * COPY, ATTACH, SET, PRAGMA, INSTALL, a second statement after a `;` never run.
 */
export async function checkOneSelect(duck: DuckDBConnection, table: string, sql: string): Promise<void> {
  const reader = await duck.runAndReadAll('SELECT json_serialize_sql(CAST($1 AS VARCHAR))', [sql]);
  const parsed = JSON.parse(String(reader.getRows()[0]![0])) as { error: boolean; error_message?: string; statements?: unknown[] };
  const fix = 'spec.sql holds one SELECT per table, over the relation `source` (the row being migrated)';
  if (parsed.error && parsed.error_message?.startsWith('Only SELECT statements')) {
    throw new SpecSqlError(`spec.sql.${table} is not a SELECT statement; ferry runs nothing else (no COPY, ATTACH, SET, PRAGMA or INSTALL): ${fix}`);
  }
  if (parsed.error) throw new SpecSqlError(`spec.sql.${table} does not parse: ${parsed.error_message}; ${fix}`);
  const count = parsed.statements?.length ?? 0;
  if (count !== 1) throw new SpecSqlError(`spec.sql.${table} holds ${count} statements; ${fix}`);
}

/** A DuckDB error the spec's SQL caused, as the error to report: the table's spec.sql named, file access explained. */
export function specSqlFailure(table: string, err: unknown): SpecSqlError {
  const message = (err as Error).message.split('\n')[0]!;
  const access = /^Permission Error/.test(message) ? ' (the SQL may read only `source`: files, URLs and other databases are closed to it)' : '';
  return new SpecSqlError(`spec.sql.${table} cannot run${access}: ${message}`);
}

/**
 * spec.sql.<table> checked before any row moves, the way the transform runs
 * it: one SELECT, binding over an empty `source` of the table's columns in a
 * confined DuckDB. Throws SpecSqlError.
 */
export async function checkSpecSql(table: string, sql: string, columns: SourceColumn[]): Promise<void> {
  const instance = await DuckDBInstance.create(':memory:', { ...NO_EXTENSION_AUTOLOAD, threads: '1', memory_limit: '64MB' });
  const duck = await instance.connect();
  try {
    await duck.run(`CREATE TABLE source (${columns.map((c) => `${duckIdent(c.name)} ${stagingType(c)}`).join(', ')})`);
    await confineToSource(duck);
    await checkOneSelect(duck, table, sql);
    try {
      (await duck.prepare(sql)).destroySync();
    } catch (err) {
      throw specSqlFailure(table, err);
    }
  } finally {
    duck.closeSync();
    instance.closeSync();
  }
}

type Append = (appender: DuckDBAppender, value: StagedValue) => void;

function decimalAppender(width: number, scale: number): Append {
  return (appender, value) => {
    const text = String(value);
    const negative = text.startsWith('-');
    const [whole = '0', fraction = ''] = text.replace(/^[-+]/, '').split('.');
    const digits = BigInt(whole + fraction.padEnd(scale, '0').slice(0, scale));
    appender.appendDecimal(new DuckDBDecimalValue(negative ? -digits : digits, width, scale));
  };
}

function appenderFor(column: SourceColumn): Append {
  const type = stagingType(column);
  const decimal = /^DECIMAL\((\d+),(\d+)\)$/.exec(type);
  if (decimal) return decimalAppender(Number(decimal[1]), Number(decimal[2]));
  switch (type) {
    case 'TINYINT': return (a, v) => a.appendTinyInt(Number(v));
    case 'UTINYINT': return (a, v) => a.appendUTinyInt(Number(v));
    case 'SMALLINT': return (a, v) => a.appendSmallInt(Number(v));
    case 'USMALLINT': return (a, v) => a.appendUSmallInt(Number(v));
    case 'INTEGER': return (a, v) => a.appendInteger(Number(v));
    case 'UINTEGER': return (a, v) => a.appendUInteger(Number(v));
    case 'BIGINT': return (a, v) => a.appendBigInt(BigInt(v as bigint | number | string));
    case 'UBIGINT': return (a, v) => a.appendUBigInt(BigInt(v as bigint | number | string));
    case 'FLOAT': return (a, v) => a.appendFloat(Number(v));
    case 'DOUBLE': return (a, v) => a.appendDouble(Number(v));
    case 'BLOB': return (a, v) => a.appendBlob(v as Uint8Array);
    default: return (a, v) => a.appendVarchar(String(v));
  }
}

/** Creates the staging table for `columns` and returns a row appender for it. */
export async function stagingAppender(duck: DuckDBConnection, table: string, columns: SourceColumn[]) {
  await duck.run(`CREATE TABLE ${duckIdent(table)} (${columns.map((c) => `${duckIdent(c.name)} ${stagingType(c)}`).join(', ')})`);
  return rowAppender(duck, table, columns);
}

/** A row appender for an existing table whose columns are `columns`, in order. */
export async function rowAppender(duck: DuckDBConnection, table: string, columns: SourceColumn[]) {
  const appender = await duck.createAppender(table);
  const appends = columns.map(appenderFor);
  return {
    appendRow(values: StagedValue[]) {
      for (let i = 0; i < appends.length; i++) {
        const value = values[i];
        if (value === null || value === undefined) appender.appendNull();
        else appends[i]!(appender, value);
      }
      appender.endRow();
    },
    close() {
      appender.closeSync();
    },
  };
}

/** A DuckDB result value → a staged value: exact decimals as text, bytes as bytes. */
export function fromDuckValue(value: DuckDBValue): StagedValue {
  if (value === null || typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string' || typeof value === 'boolean') return value;
  if (value instanceof DuckDBBlobValue) return value.bytes;
  if (value instanceof DuckDBDecimalValue) return value.toString();
  return String(value);
}

/** COPY's options for a staged rows file. */
export function copyFormat(format: 'parquet' | 'csv'): string {
  return format === 'csv' ? 'FORMAT csv, HEADER true' : 'FORMAT parquet, COMPRESSION zstd';
}

/** SQL string literal for file paths handed to read_parquet/COPY. */
export function sqlString(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** A DuckDB identifier (DuckDB quotes with ", MySQL with `). */
export function duckIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Families for columns the spec's SQL made up, from their DuckDB type. */
function familyOfDuckType(type: string): ColumnFamily {
  if (/^U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)$/.test(type)) return 'integer';
  if (/^DECIMAL/.test(type)) return 'decimal';
  if (type === 'FLOAT' || type === 'DOUBLE') return 'float';
  if (type === 'BLOB') return 'binary';
  if (type === 'BOOLEAN') return 'bit';
  if (type === 'DATE') return 'date';
  if (/^TIMESTAMP/.test(type)) return 'datetime';
  if (type === 'VARCHAR') return 'text';
  throw new Error(`the spec's SQL produced a ${type} column; return only scalar columns (cast lists and structs to VARCHAR JSON)`);
}

/** The columns a query over staged rows returns: the source's own where name and type are kept, else typed from DuckDB's type. */
export function outputColumns(sourceColumns: SourceColumn[], names: string[], types: DuckDBType[]): SourceColumn[] {
  return names.map((name, i) => {
    const type = types[i]!.toString();
    const original = sourceColumns.find((c) => c.name === name);
    if (original && stagingType(original) === type) return original;
    const family = familyOfDuckType(type);
    return { name, family, mysqlType: type.toLowerCase(), nullable: true, unsigned: type.startsWith('U'), precision: family === 'bit' ? 1 : undefined };
  });
}
