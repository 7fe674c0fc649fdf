/**
 * Export's fastest reader: DuckDB's MySQL extension (mysql_scanner). DuckDB
 * runs the partition's SELECT over MySQL's binary protocol and writes the rows
 * it receives straight into the staged file: one native pass, no text in
 * between, no row in JavaScript. scripts/ensure-duckdb-mysql installs the
 * extension for the DuckDB that @duckdb/node-api bundles.
 *
 * Loading the extension costs a DuckDB instance a few hundred milliseconds of
 * CPU, so the worker keeps one instance for it (scannerEngine) and attaches
 * each source once; every export runs on its own connection to it.
 *
 * What each column is selected as, so the staged file holds exactly what the
 * other two readers stage (test/exportReaders.test.ts compares them):
 * - integers, DECIMAL up to 38 digits and DOUBLE as they are: the binary
 *   protocol carries them exactly;
 * - FLOAT as (col + 0E0), as the driver selects it, then cast to FLOAT;
 * - BIT and YEAR as (col + 0): their number;
 * - text, ENUM, SET and JSON as CONVERT(col USING utf8mb4), the bytes the
 *   driver receives with utf8mb4 results; BINARY and BLOB as they are (BLOB);
 * - DATE, DATETIME, TIMESTAMP, TIME and DECIMAL past 38 digits as
 *   CAST(col AS CHAR): MySQL's own text, the text the driver reads, zero dates
 *   and TIME past 24 hours included; TIMESTAMP in UTC (the session time zone).
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config.js';
import { selectExpression, stagingType, type SourceColumn } from '../mapping/types.js';
import type { SourceEndpoint } from '../mysqlCli.js';
import { copyFormat, duckIdent, duckMemoryLimit, sqlString } from './duck.js';
import type { Staging } from './model.js';
import { quoteIdent } from './partitionPlan.js';

/** Why the extension cannot read this source on this worker; the other readers can. */
export class ScannerUnavailable extends Error {
  override name = 'ScannerUnavailable';
}

/** Where scripts/ensure-duckdb-mysql puts the extension for DuckDB `version` (e.g. `v1.5.5`). */
export function scannerExtensionPath(version: string, cacheDir = loadConfig().cacheDir): string {
  return path.join(cacheDir, 'duckdb-extensions', version, 'mysql_scanner.duckdb_extension');
}

interface Engine {
  instance: DuckDBInstance;
  attached: Map<string, Promise<string>>;
}

let engine: Promise<Engine> | undefined;

async function openEngine(): Promise<Engine> {
  // DuckDB creates its spill folder only when it spills, which streaming COPYs rarely do.
  const spill = path.join(os.tmpdir(), `ferry-scanner-${process.pid}`);
  process.once('exit', () => fs.rmSync(spill, { recursive: true, force: true }));
  const instance = await DuckDBInstance.create(':memory:', {
    memory_limit: duckMemoryLimit(),
    // Each export's COPY runs on the thread that asked for it, so concurrent exports
    // already run in parallel; DuckDB threads of its own only added CPU (measured on 2 cores).
    threads: '1',
    temp_directory: spill,
    preserve_insertion_order: 'false',
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  });
  const duck = await instance.connect();
  try {
    const version = String((await duck.runAndReadAll('SELECT version()')).getRows()[0]![0]);
    const file = scannerExtensionPath(version);
    if (!fs.existsSync(file)) throw new ScannerUnavailable(`DuckDB's MySQL extension ${version} is not installed at ${file} (scripts/ensure-duckdb-mysql installs it)`);
    try {
      await duck.run(`LOAD ${sqlString(file)}`);
    } catch (err) {
      throw new ScannerUnavailable(`DuckDB could not load its MySQL extension ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
    // Every connection the extension opens reads TIMESTAMP in UTC, as the driver does;
    // TINYINT(1) and BIT(1) stay numbers; no time limit, no server-side result buffering.
    for (const setting of [
      "mysql_session_time_zone = '+00:00'",
      'mysql_tinyint1_as_boolean = false',
      'mysql_bit1_as_boolean = false',
      'mysql_query_timeout_enabled = false',
      'mysql_sql_buffer_result = false',
      'mysql_enable_transactions = false',
    ]) {
      await duck.run(`SET GLOBAL ${setting}`);
    }
  } catch (err) {
    instance.closeSync();
    throw err;
  } finally {
    duck.closeSync();
  }
  return { instance, attached: new Map() };
}

/**
 * The worker's DuckDB instance with the MySQL extension loaded; rejects with
 * ScannerUnavailable when it cannot be, for the life of the process (a worker
 * restarted after the extension is installed uses it).
 */
export function scannerEngine(): Promise<Engine> {
  engine ??= openEngine();
  return engine;
}

/** Attaches `endpoint` once per worker (no compression; TLS as the URL's ssl-mode says); returns its catalog name. */
export function attachSource(found: Engine, endpoint: SourceEndpoint): Promise<string> {
  const key = JSON.stringify(endpoint);
  let alias = found.attached.get(key);
  if (!alias) {
    const name = `ferry_source_${found.attached.size + 1}`;
    alias = (async () => {
      const duck = await found.instance.connect();
      try {
        // The extension's client takes "localhost" for its Unix socket; the URL means TCP, as mysql2 reads it.
        const host = endpoint.host === 'localhost' ? '127.0.0.1' : endpoint.host;
        const secret = [
          'TYPE mysql',
          `HOST ${sqlString(host)}`,
          `PORT ${endpoint.port}`,
          `USER ${sqlString(endpoint.user)}`,
          `PASSWORD ${sqlString(endpoint.password)}`,
          `DATABASE ${sqlString(endpoint.database)}`,
        ];
        if (endpoint.socket) secret.push(`SOCKET ${sqlString(endpoint.socket)}`);
        await duck.run(`CREATE OR REPLACE TEMPORARY SECRET ${duckIdent(name)} (${secret.join(', ')})`);
        // TLS as the URL's ssl-mode says: MySQL's client library takes the same mode names.
        const tls = [`ssl_mode=${endpoint.tls.mode.toLowerCase()}`, ...(endpoint.tls.ca ? [`ssl_ca=${endpoint.tls.ca}`] : [])];
        await duck.run(`ATTACH ${sqlString(['compress=false', ...tls].join(' '))} AS ${duckIdent(name)} (TYPE mysql, SECRET ${duckIdent(name)})`);
        return name;
      } finally {
        duck.closeSync();
      }
    })();
    // A failed attach (server down, wrong password) is tried again by the next export.
    alias.catch(() => found.attached.delete(key));
    found.attached.set(key, alias);
  }
  return alias;
}

/** The MySQL expression each column is selected as (see the header), named c0, c1, …. */
export function scannerSelectList(columns: SourceColumn[]): string {
  return columns.map((column, i) => `${scannerExpression(column)} AS ${quoteIdent(`c${i}`)}`).join(', ');
}

function scannerExpression(column: SourceColumn): string {
  const name = quoteIdent(column.name);
  switch (column.family) {
    case 'text':
    case 'enum':
    case 'set':
    case 'json':
      return `CONVERT(${name} USING utf8mb4)`;
    case 'float':
      return selectExpression(column, quoteIdent);
    case 'bit':
    case 'year':
      return `(${name} + 0)`;
    case 'decimal':
      return stagingType(column) === 'VARCHAR' ? `CAST(${name} AS CHAR)` : name;
    case 'date':
    case 'datetime':
    case 'timestamp':
    case 'time':
      return `CAST(${name} AS CHAR)`;
    case 'integer':
    case 'binary':
      return name;
  }
}

/**
 * Runs `select` (its list from scannerSelectList) on the attached source and
 * writes the rows to `out` with the staged column names and types; returns
 * the rows written. `signal` interrupts the query.
 */
export async function stageFromSource(duck: DuckDBConnection, alias: string, select: string, columns: SourceColumn[], out: string, format: Staging['format'], signal?: AbortSignal): Promise<number> {
  const list = columns.map((c, i) => `CAST(${duckIdent(`c${i}`)} AS ${stagingType(c)}) AS ${duckIdent(c.name)}`).join(', ');
  const interrupt = () => duck.interrupt();
  signal?.addEventListener('abort', interrupt, { once: true });
  try {
    const result = await duck.runAndReadAll(`COPY (SELECT ${list} FROM mysql_query(${sqlString(alias)}, ${sqlString(select)})) TO ${sqlString(out)} (${copyFormat(format)})`);
    return Number(result.getRows()[0]![0]);
  } finally {
    signal?.removeEventListener('abort', interrupt);
  }
}
