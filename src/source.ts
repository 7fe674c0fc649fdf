/**
 * What ferry reads about a MySQL source: its tables, their columns and primary
 * keys, from information_schema.
 */
import { loadConfig } from './config.js';
import type { MysqlConnection } from './mysql.js';
import { connectMysql } from './mysql.js';
import { classifyColumn, type ColumnInfo, type SourceColumn } from './mapping/types.js';
import type { MigrationSpec } from './spec.js';

/** The source URL lives on the workers, in the variable the spec names, never in workflow history. */
export function sourceUrl(spec: MigrationSpec): string {
  // FERRY_MYSQL_URL has a default: the local stack's database.
  const url = process.env[spec.source.urlEnv] || (spec.source.urlEnv === 'FERRY_MYSQL_URL' ? loadConfig().mysqlUrl : undefined);
  if (!url) throw new Error(`environment variable ${spec.source.urlEnv} (spec.source.urlEnv) is not set on this worker: set it to the source's mysql://user:password@host:port/database URL`);
  return url;
}

export function sourceDatabase(spec: MigrationSpec): string {
  if (spec.source.database) return spec.source.database;
  const database = decodeURIComponent(new URL(sourceUrl(spec)).pathname.replace(/^\//, ''));
  if (!database) throw new Error(`the source URL in ${spec.source.urlEnv} names no database: add /DATABASE to it or set spec.source.database`);
  return database;
}

export async function connectSource(spec: MigrationSpec): Promise<MysqlConnection> {
  return connectMysql(sourceUrl(spec));
}

export async function listTables(db: MysqlConnection, schema: string): Promise<string[]> {
  const [rows] = await db.query("SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", [schema]);
  return (rows as { name: string }[]).map((r) => r.name);
}

export async function readColumns(db: MysqlConnection, schema: string, table: string, exclude: string[] = []): Promise<SourceColumn[]> {
  const [rows] = await db.query(
    'SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, NUMERIC_PRECISION, NUMERIC_SCALE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [schema, table],
  );
  const jsonChecked = await jsonCheckedColumns(db, schema, table);
  return (rows as ColumnInfo[])
    .filter((c) => !exclude.includes(c.COLUMN_NAME))
    .map((c) => classifyColumn(`${schema}.${table}`, { ...c, JSON_CHECKED: jsonChecked.has(c.COLUMN_NAME) }));
}

/**
 * MariaDB's JSON columns: LONGTEXT with a `json_valid(col)` check, visible only
 * in CHECK_CONSTRAINTS (COLUMNS says "longtext"). MySQL has a real JSON type,
 * and its CHECK_CONSTRAINTS has no TABLE_NAME: there, nothing to find.
 */
async function jsonCheckedColumns(db: MysqlConnection, schema: string, table: string): Promise<Set<string>> {
  let rows: { clause: string }[];
  try {
    [rows] = (await db.query('SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?', [schema, table])) as unknown as [{ clause: string }[]];
  } catch {
    return new Set();
  }
  return new Set(rows.flatMap((r) => /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(r.clause.trim())?.[1]?.replace(/``/g, '`') ?? []));
}

export async function readPrimaryKey(db: MysqlConnection, schema: string, table: string): Promise<string[]> {
  const [rows] = await db.query(
    "SELECT COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
    [schema, table],
  );
  return (rows as { name: string }[]).map((r) => r.name);
}

export async function estimateRows(db: MysqlConnection, schema: string, table: string): Promise<number> {
  const [rows] = await db.query('SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [schema, table]);
  return Number((rows as { n: number | string | null }[])[0]?.n ?? 0);
}
