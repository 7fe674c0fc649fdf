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

/** A DuckDB database in `dir`, memory-capped, spilling to `dir`; close() closes it and leaves the folder. */
export async function scratchDatabase(dir: string): Promise<{ duck: DuckDBConnection; close(): void }> {
  const instance = await DuckDBInstance.create(path.join(dir, 'scratch.duckdb'), {
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
