/**
 * Export: one partition's rows, selected in key order, staged as Parquet (or
 * CSV) in S3. A partition whose export marker exists is not exported again.
 *
 * Three readers stage the same file (same columns, types and values):
 * - DuckDB, by default: DuckDB's MySQL extension runs the partition's SELECT
 *   and writes the rows straight into the staged file (src/bulk/scannerExport.ts):
 *   the fastest, one native pass. Used when the extension is installed
 *   (scripts/ensure-duckdb-mysql) and loads, and the source URL sets no driver
 *   option.
 * - the client, next: MariaDB's command-line client (C) runs the
 *   partition's SELECT and writes tab-separated text to the scratch folder,
 *   and DuckDB reads that text straight into the staged file
 *   (src/bulk/textExport.ts). No row passes through JavaScript: several times
 *   faster than the driver, about half as fast as DuckDB.
 * - the driver: mysql2 streams the rows into DuckDB's appender, each value
 *   converted by fromMysql. Used when no MariaDB client is on the worker's
 *   PATH, when the source URL sets driver options the client does not
 *   reproduce (`ssl`, `charset`, …), for a partition holding a value too long
 *   for the server to hex-encode (over half its max_allowed_packet) when DuckDB
 *   cannot read it either, and whenever FERRY_EXPORT=driver (docs/configuration.md).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import fs from 'node:fs';
import path from 'node:path';
import { stagingS3 } from '../src/aws.js';
import { copyFormat, duckIdent, scratchDatabase, scratchFolder, sqlString, stagingAppender } from '../src/bulk/duck.js';
import { partitionKeys, type ExportReader, type ExportResult, type SourceTable, type Staging } from '../src/bulk/model.js';
import { partitionId, quoteIdent, rangePredicate, type PartitionRange } from '../src/bulk/partitionPlan.js';
import { attachSource, scannerEngine, scannerSelectList, ScannerUnavailable, stageFromSource } from '../src/bulk/scannerExport.js';
import { stageText, textSelectList, ValueTooLongForText } from '../src/bulk/textExport.js';
import { loadConfig } from '../src/config.js';
import { fromMysql, selectExpression } from '../src/mapping/types.js';
import { connectMysql, streamRows } from '../src/mysql.js';
import { cliConnection, CliUnavailable, dumpQuery, findMysqlCli, scrub, sourceEndpoint, type CliConnection, type MysqlCli } from '../src/mysqlCli.js';
import { getJson, putJson, uploadFile } from '../src/s3.js';
import { sourceUrl } from '../src/source.js';
import type { MigrationSpec } from '../src/spec.js';
import { heartbeatWhile } from './heartbeat.js';

export async function exportPartition(spec: MigrationSpec, stage: Staging, source: SourceTable, range: PartitionRange): Promise<ExportResult> {
  const s3 = stagingS3(loadConfig().aws, stage);
  const keys = partitionKeys(stage, range);
  const earlier = await getJson<ExportResult>(s3, stage.bucket, keys.exported);
  if (earlier) return { ...earlier, reused: true };

  const started = Date.now();
  let rowsSoFar = 0;
  const progress: ExportProgress = {
    onRows(rows) {
      rowsSoFar = rows;
    },
    signal: Context.current().cancellationSignal,
  };
  const scratch = scratchFolder('export');
  try {
    // On a clock: the reader's query, DuckDB writing the file and the upload are each one long call.
    return await heartbeatWhile(
      () => ({ stage: 'export', rows: rowsSoFar }),
      async () => {
        const out: StagedFile = { dir: scratch.dir, file: path.join(scratch.dir, path.basename(keys.rows)), format: stage.format };
        const { rows, reader } = await stageRows(sourceUrl(spec), source, range, out, progress);
        const uploaded = await uploadFile(s3, stage.bucket, keys.rows, out.file);
        const result: ExportResult = { rows, bytes: uploaded.bytes, key: keys.rows, startedAt: started, ms: Date.now() - started, reused: false, reader };
        await putJson(s3, stage.bucket, keys.exported, result);
        return result;
      },
    );
  } finally {
    scratch.close();
  }
}

/** Where a partition's rows are staged: a file in the activity's scratch folder `dir`. */
export interface StagedFile {
  dir: string;
  file: string;
  format: Staging['format'];
}

/** What export needs of a source table. */
export type ExportedTable = Pick<SourceTable, 'schema' | 'table' | 'columns' | 'primaryKey'>;

export interface ExportProgress {
  /** Rows read so far. */
  onRows(rows: number): void;
  signal?: AbortSignal;
}

/** The reader FERRY_EXPORT asks for: `duckdb`, `client`, `driver`, or unset for the fastest this worker can use. */
function exportSetting(): 'auto' | 'duckdb' | 'client' | 'driver' {
  const value = process.env.FERRY_EXPORT ?? '';
  if (value === '') return 'auto';
  if (value === 'duckdb' || value === 'client' || value === 'driver') return value;
  throw ApplicationFailure.nonRetryable(`FERRY_EXPORT=${value} on this worker is not a reader: set it to "duckdb", "client" or "driver", or unset it`);
}

const noted = new Set<string>();

/** Logs `message` once per worker process. */
function noteOnce(message: string): void {
  if (noted.has(message)) return;
  noted.add(message);
  Context.current().log.info(message);
}

/** Writes the partition's staged file with the reader the setting and the worker allow; returns its rows and the reader. */
async function stageRows(url: string, source: ExportedTable, range: PartitionRange, out: StagedFile, progress: ExportProgress): Promise<{ rows: number; reader: ExportReader }> {
  const setting = exportSetting();
  if (setting === 'auto' || setting === 'duckdb') {
    try {
      return { rows: await exportWithScanner(url, source, range, out, progress), reader: 'duckdb' };
    } catch (err) {
      if (!(err instanceof ScannerUnavailable)) throw err;
      if (setting === 'duckdb') throw ApplicationFailure.nonRetryable(`FERRY_EXPORT=duckdb, but ${err.message}: run scripts/ensure-duckdb-mysql on this worker, or unset FERRY_EXPORT`);
      noteOnce(`export does not read with DuckDB's MySQL extension: ${err.message}`);
    }
  }
  if (setting === 'auto' || setting === 'client') {
    const log = Context.current().log;
    let client: SourceClient | undefined;
    try {
      client = await sourceClient(url);
    } catch (err) {
      if (!(err instanceof CliUnavailable)) throw err;
      if (setting === 'client') throw ApplicationFailure.nonRetryable(`FERRY_EXPORT=client, but ${err.message}: install Debian's mariadb-client on this worker, or unset FERRY_EXPORT`);
      noteOnce(`export reads with the mysql2 driver: ${err.message}`);
    }
    if (client) {
      try {
        return { rows: await exportWithClient(client, source, range, out, progress), reader: 'client' };
      } catch (err) {
        if (!(err instanceof ValueTooLongForText)) throw err;
        const what = `${exportLabel(source, range)}: ${err.message}`;
        if (setting === 'client') throw ApplicationFailure.nonRetryable(`${what}; unset FERRY_EXPORT to let the mysql2 driver read this partition, or raise the server's max_allowed_packet`);
        log.warn(`${what}; reading this partition with the mysql2 driver instead`);
      }
    }
  }
  return { rows: await exportWithDriver(url, source, range, out, progress), reader: 'driver' };
}

/** How errors name a partition's export: `export of schema.table/part-NNNNN`. */
function exportLabel(source: ExportedTable, range: PartitionRange): string {
  return `export of ${source.schema}.${partitionId(range)}`;
}

/** The command-line client and how it reaches the source. */
export interface SourceClient {
  cli: MysqlCli;
  connection: CliConnection;
}

/** The client for `url`; CliUnavailable says why there is none. */
export async function sourceClient(url: string): Promise<SourceClient> {
  const cli = await findMysqlCli();
  if (!cli) throw new CliUnavailable('no MariaDB command-line client (mariadb, or MariaDB\'s mysql) is on PATH');
  return { cli, connection: cliConnection(url) };
}

function partitionQuery(source: ExportedTable, range: PartitionRange, selectList: string, inline: boolean) {
  const integerColumns = new Set(source.columns.filter((c) => c.family === 'integer').map((c) => c.name));
  const where = rangePredicate(range, integerColumns, { inline });
  const table = `${quoteIdent(source.schema)}.${quoteIdent(source.table)}`;
  const order = source.primaryKey.map(quoteIdent).join(', ');
  return { sql: `SELECT ${selectList} FROM ${table} WHERE ${where.sql} ORDER BY ${order}`, params: where.params };
}

/**
 * The driver's session: mysql2's handshake collation, so the partition bounds
 * (the literals mysql2 would write) compare as they do there, and TIMESTAMP
 * read in UTC, as src/mysql.ts reads it.
 */
export const CLIENT_SESSION = "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci, time_zone = '+00:00'";

/** The DuckDB path: DuckDB's MySQL extension runs the partition's SELECT and writes the staged file. */
export async function exportWithScanner(url: string, source: ExportedTable, range: PartitionRange, out: StagedFile, progress: ExportProgress): Promise<number> {
  const endpoint = sourceEndpoint(url, ScannerUnavailable, "DuckDB's MySQL extension");
  const engine = await scannerEngine();
  const select = partitionQuery(source, range, scannerSelectList(source.columns), true);
  const duck = await engine.instance.connect();
  try {
    const alias = await attachSource(engine, endpoint);
    const rows = await stageFromSource(duck, alias, select.sql, source.columns, out.file, out.format, progress.signal);
    progress.onRows(rows);
    return rows;
  } catch (err) {
    if (!(err instanceof Error) || progress.signal?.aborted) throw err;
    throw new Error(`${exportLabel(source, range)}: DuckDB's MySQL extension: ${scrub(err.message, endpoint.password)}`, { cause: err });
  } finally {
    duck.closeSync();
  }
}

/** The client path: the partition's SELECT as tab-separated text, read by DuckDB into the staged file. */
export async function exportWithClient(client: SourceClient, source: ExportedTable, range: PartitionRange, out: StagedFile, progress: ExportProgress): Promise<number> {
  const select = partitionQuery(source, range, textSelectList(source.columns), true);
  const text = path.join(out.dir, 'rows.tsv');
  const database = await scratchDatabase(out.dir);
  try {
    const dumped = await dumpQuery(client.cli, client.connection, { session: CLIENT_SESSION, select: select.sql }, text, { signal: progress.signal, onRows: progress.onRows });
    const rows = await stageText(database.duck, text, source.columns, out.file, out.format, dumped.longestLine);
    if (rows !== dumped.rows) throw new Error(`the client wrote ${dumped.rows} rows but ${rows} were staged`);
    return rows;
  } catch (err) {
    if (err instanceof ValueTooLongForText || !(err instanceof Error) || progress.signal?.aborted) throw err;
    throw new Error(`${exportLabel(source, range)}: ${err.message}`, { cause: err });
  } finally {
    database.close();
    fs.rmSync(text, { force: true });
  }
}

/** The driver path: mysql2 streams the rows, fromMysql converts them, DuckDB's appender stages them. */
export async function exportWithDriver(url: string, source: ExportedTable, range: PartitionRange, out: StagedFile, progress: ExportProgress): Promise<number> {
  const db = await connectMysql(url);
  const database = await scratchDatabase(out.dir);
  try {
    const stagingTable = 'rows';
    const appender = await stagingAppender(database.duck, stagingTable, source.columns);
    const select = partitionQuery(source, range, source.columns.map((c) => selectExpression(c, quoteIdent)).join(', '), false);
    let rows = 0;
    for await (const row of streamRows(db, select.sql, select.params)) {
      appender.appendRow(row.map((value, i) => fromMysql(source.columns[i]!, value)));
      if (++rows % 20_000 === 0) progress.onRows(rows);
    }
    appender.close();
    progress.onRows(rows);
    await database.duck.run(`COPY ${duckIdent(stagingTable)} TO ${sqlString(out.file)} (${copyFormat(out.format)})`);
    return rows;
  } finally {
    database.close();
    await db.end();
  }
}
