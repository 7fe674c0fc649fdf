/**
 * Export: one partition's rows, selected in key order, staged as Parquet (or
 * CSV) in S3. A partition whose export marker exists is not exported again.
 *
 * Two readers stage the same file (same columns, types and values):
 * - the client, by default: MariaDB's command-line client (C) runs the
 *   partition's SELECT and writes tab-separated text to the scratch folder,
 *   and DuckDB reads that text straight into the staged file
 *   (src/bulk/textExport.ts). No row passes through JavaScript: several times
 *   faster than the driver.
 * - the driver: mysql2 streams the rows into DuckDB's appender, each value
 *   converted by fromMysql. Used when no MariaDB client is on the worker's
 *   PATH, when the source URL sets driver options the client does not
 *   reproduce (`ssl`, `charset`, …), for a partition holding a value too long
 *   for the server to hex-encode (over half its max_allowed_packet), and
 *   whenever FERRY_EXPORT=driver (docs/configuration.md).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import fs from 'node:fs';
import path from 'node:path';
import { s3Client } from '../src/aws.js';
import { copyFormat, duckIdent, openScratch, sqlString, stagingAppender, type Scratch } from '../src/bulk/duck.js';
import { partitionKeys, type ExportResult, type SourceTable, type Staging } from '../src/bulk/model.js';
import { partitionId, quoteIdent, rangePredicate, type PartitionRange } from '../src/bulk/partitionPlan.js';
import { stageText, textSelectList, ValueTooLongForText } from '../src/bulk/textExport.js';
import { loadConfig } from '../src/config.js';
import { fromMysql, selectExpression } from '../src/mapping/types.js';
import { connectMysql, streamRows } from '../src/mysql.js';
import { cliConnection, CliUnavailable, dumpQuery, findMysqlCli, type CliConnection, type MysqlCli } from '../src/mysqlCli.js';
import { getJson, putJson, uploadFile } from '../src/s3.js';
import { sourceUrl } from '../src/source.js';
import type { MigrationSpec } from '../src/spec.js';

export async function exportPartition(spec: MigrationSpec, stage: Staging, source: SourceTable, range: PartitionRange): Promise<ExportResult> {
  const s3 = s3Client(loadConfig().aws);
  const keys = partitionKeys(stage, range);
  const earlier = await getJson<ExportResult>(s3, stage.bucket, keys.exported);
  if (earlier) return { ...earlier, reused: true };

  const started = Date.now();
  const context = Context.current();
  let rowsSoFar = 0;
  const progress: ExportProgress = {
    onRows(rows) {
      if (Math.floor(rows / 20_000) > Math.floor(rowsSoFar / 20_000)) context.heartbeat({ stage: 'export', rows });
      rowsSoFar = rows;
    },
    signal: context.cancellationSignal,
  };
  // Between rows too (DuckDB writing the file, the upload), so a long step is not taken for a dead worker.
  const beat = setInterval(() => context.heartbeat({ stage: 'export', rows: rowsSoFar }), 10_000);
  const scratch = await openScratch('export');
  try {
    const out: StagedFile = { scratch, file: path.join(scratch.dir, path.basename(keys.rows)), format: stage.format };
    const rows = await stageRows(sourceUrl(spec), source, range, out, progress);
    const uploaded = await uploadFile(s3, stage.bucket, keys.rows, out.file);
    const result: ExportResult = { rows, bytes: uploaded.bytes, key: keys.rows, startedAt: started, ms: Date.now() - started, reused: false };
    await putJson(s3, stage.bucket, keys.exported, result);
    return result;
  } finally {
    clearInterval(beat);
    scratch.close();
  }
}

/** Where a partition's rows are staged: a file in the activity's scratch folder. */
export interface StagedFile {
  scratch: Scratch;
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

/** The reader FERRY_EXPORT asks for: `client`, `driver`, or unset for the client when it can. */
function exportSetting(): 'auto' | 'client' | 'driver' {
  const value = process.env.FERRY_EXPORT ?? '';
  if (value === '') return 'auto';
  if (value === 'client' || value === 'driver') return value;
  throw ApplicationFailure.nonRetryable(`FERRY_EXPORT=${value} on this worker is not a reader: set it to "client" or "driver", or unset it`);
}

const noted = new Set<string>();

/** Writes the partition's staged file with the reader the setting and the worker allow; returns its rows. */
async function stageRows(url: string, source: ExportedTable, range: PartitionRange, out: StagedFile, progress: ExportProgress): Promise<number> {
  const setting = exportSetting();
  if (setting !== 'driver') {
    const log = Context.current().log;
    let client: SourceClient | undefined;
    try {
      client = await sourceClient(url);
    } catch (err) {
      if (!(err instanceof CliUnavailable)) throw err;
      if (setting === 'client') throw ApplicationFailure.nonRetryable(`FERRY_EXPORT=client, but ${err.message}: install Debian's mariadb-client on this worker, or unset FERRY_EXPORT`);
      if (!noted.has(err.message)) log.info(`export reads with the mysql2 driver: ${err.message}`);
      noted.add(err.message);
    }
    if (client) {
      try {
        return await exportWithClient(client, source, range, out, progress);
      } catch (err) {
        if (!(err instanceof ValueTooLongForText)) throw err;
        const what = `export of ${source.schema}.${partitionId(range)}: ${err.message}`;
        if (setting === 'client') throw ApplicationFailure.nonRetryable(`${what}; unset FERRY_EXPORT to let the mysql2 driver read this partition, or raise the server's max_allowed_packet`);
        log.warn(`${what}; reading this partition with the mysql2 driver instead`);
      }
    }
  }
  return exportWithDriver(url, source, range, out, progress);
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

/** The client path: the partition's SELECT as tab-separated text, read by DuckDB into the staged file. */
export async function exportWithClient(client: SourceClient, source: ExportedTable, range: PartitionRange, out: StagedFile, progress: ExportProgress): Promise<number> {
  const select = partitionQuery(source, range, textSelectList(source.columns), true);
  const text = path.join(out.scratch.dir, 'rows.tsv');
  const what = `export of ${source.schema}.${partitionId(range)}`;
  try {
    const dumped = await dumpQuery(client.cli, client.connection, { session: CLIENT_SESSION, select: select.sql }, text, { signal: progress.signal, onRows: progress.onRows });
    const rows = await stageText(out.scratch.duck, text, source.columns, out.file, out.format, dumped.longestLine);
    if (rows !== dumped.rows) throw new Error(`the client wrote ${dumped.rows} rows but ${rows} were staged`);
    return rows;
  } catch (err) {
    if (err instanceof ValueTooLongForText || !(err instanceof Error) || progress.signal?.aborted) throw err;
    throw new Error(`${what}: ${err.message}`, { cause: err });
  } finally {
    fs.rmSync(text, { force: true });
  }
}

/** The driver path: mysql2 streams the rows, fromMysql converts them, DuckDB's appender stages them. */
export async function exportWithDriver(url: string, source: ExportedTable, range: PartitionRange, out: StagedFile, progress: ExportProgress): Promise<number> {
  const db = await connectMysql(url);
  try {
    const stagingTable = 'rows';
    const appender = await stagingAppender(out.scratch.duck, stagingTable, source.columns);
    const select = partitionQuery(source, range, source.columns.map((c) => selectExpression(c, quoteIdent)).join(', '), false);
    let rows = 0;
    for await (const row of streamRows(db, select.sql, select.params)) {
      appender.appendRow(row.map((value, i) => fromMysql(source.columns[i]!, value)));
      if (++rows % 20_000 === 0) progress.onRows(rows);
    }
    appender.close();
    progress.onRows(rows);
    await out.scratch.duck.run(`COPY ${duckIdent(stagingTable)} TO ${sqlString(out.file)} (${copyFormat(out.format)})`);
    return rows;
  } finally {
    await db.end();
  }
}
