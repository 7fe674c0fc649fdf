/**
 * Export: one partition's rows, streamed from MySQL in key order into DuckDB's
 * appender, written as Parquet (or CSV) and staged in S3. A partition whose
 * export marker exists is not exported again.
 */
import { Context } from '@temporalio/activity';
import { s3Client } from '../src/aws.js';
import { duckIdent, openScratch, sqlString, stagingAppender } from '../src/bulk/duck.js';
import { partitionKeys, type ExportResult, type SourceTable, type Staging } from '../src/bulk/model.js';
import { quoteIdent, rangePredicate, type PartitionRange } from '../src/bulk/partitionPlan.js';
import { loadConfig } from '../src/config.js';
import { fromMysql, selectExpression } from '../src/mapping/types.js';
import { streamRows } from '../src/mysql.js';
import { getJson, putJson, uploadFile } from '../src/s3.js';
import { connectSource } from '../src/source.js';
import type { MigrationSpec } from '../src/spec.js';
import path from 'node:path';

export async function exportPartition(spec: MigrationSpec, stage: Staging, source: SourceTable, range: PartitionRange): Promise<ExportResult> {
  const s3 = s3Client(loadConfig().aws);
  const keys = partitionKeys(stage, range);
  const earlier = await getJson<ExportResult>(s3, stage.bucket, keys.exported);
  if (earlier) return { ...earlier, reused: true };

  const started = Date.now();
  const scratch = await openScratch('export');
  const db = await connectSource(spec);
  try {
    const stagingTable = 'rows';
    const appender = await stagingAppender(scratch.duck, stagingTable, source.columns);
    const integerColumns = new Set(source.columns.filter((c) => c.family === 'integer').map((c) => c.name));
    const where = rangePredicate(range, integerColumns);
    const table = `${quoteIdent(source.schema)}.${quoteIdent(source.table)}`;
    const columns = source.columns.map((c) => selectExpression(c, quoteIdent)).join(', ');
    const order = source.primaryKey.map(quoteIdent).join(', ');
    let rows = 0;
    const context = Context.current();
    for await (const row of streamRows(db, `SELECT ${columns} FROM ${table} WHERE ${where.sql} ORDER BY ${order}`, where.params)) {
      appender.appendRow(row.map((value, i) => fromMysql(source.columns[i]!, value)));
      if (++rows % 20_000 === 0) context.heartbeat({ stage: 'export', rows });
    }
    appender.close();
    const file = path.join(scratch.dir, path.basename(keys.rows));
    const format = stage.format === 'csv' ? 'FORMAT csv, HEADER true' : 'FORMAT parquet, COMPRESSION zstd';
    await scratch.duck.run(`COPY ${duckIdent(stagingTable)} TO ${sqlString(file)} (${format})`);
    const uploaded = await uploadFile(s3, stage.bucket, keys.rows, file);
    const result: ExportResult = { rows, bytes: uploaded.bytes, key: keys.rows, startedAt: started, ms: Date.now() - started, reused: false };
    await putJson(s3, stage.bucket, keys.exported, result);
    return result;
  } finally {
    await db.end();
    scratch.close();
  }
}
