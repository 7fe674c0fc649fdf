/**
 * Transform: the staged rows of one partition, through the spec's row-local
 * DuckDB SQL and the table mapping, into DynamoDB items staged in S3 as JSON
 * lines. Bad records follow the spec's error policy.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { stagingS3 } from '../src/aws.js';
import { checkOneSelect, confineToSource, duckIdent, fromDuckValue, openScratch, outputColumns, SpecSqlError, specSqlFailure, sqlString } from '../src/bulk/duck.js';
import { partitionKeys, type SourceTable, type Staging, type TransformResult } from '../src/bulk/model.js';
import type { PartitionRange } from '../src/bulk/partitionPlan.js';
import { loadConfig } from '../src/config.js';
import { checkItemSize, groupToItem, rowToItem, type Item, type Row } from '../src/mapping/item.js';
import { ItemChecksum, itemToLine } from '../src/mapping/itemJson.js';
import { keyColumns } from '../src/mapping/tableMapping.js';
import { ConversionError, failureReason, stagingType, templateText } from '../src/mapping/types.js';
import { deleteObject, downloadFile, uploadFile } from '../src/s3.js';
import type { MigrationSpec } from '../src/spec.js';
import { heartbeatWhile } from './heartbeat.js';

class LineFile {
  readonly stream: fs.WriteStream;
  lines = 0;
  constructor(readonly file: string) {
    this.stream = fs.createWriteStream(file);
  }
  async write(line: string): Promise<void> {
    this.lines++;
    if (!this.stream.write(`${line}\n`)) await once(this.stream, 'drain');
  }
  async close(): Promise<void> {
    this.stream.end();
    await once(this.stream, 'finish');
  }
}

function describeKey(source: SourceTable, row: Row): string {
  return source.primaryKey.map((c) => `${c}=${templateText(row[c] ?? null)}`).join(', ');
}

export async function transformPartition(spec: MigrationSpec, stage: Staging, source: SourceTable, range: PartitionRange): Promise<TransformResult> {
  const started = Date.now();
  const s3 = stagingS3(loadConfig().aws, stage);
  const keys = partitionKeys(stage, range);
  const scratch = await openScratch('transform');
  let rows = 0;
  try {
    // On a clock: the download, the query's first rows (a grouping mapping sorts the whole partition) and the
    // upload are each one long call.
    return await heartbeatWhile(() => ({ stage: 'transform', rows }), async () => {
      const rowsFile = path.join(scratch.dir, path.basename(keys.rows));
      await downloadFile(s3, stage.bucket, keys.rows, rowsFile);
      const columnTypes = `{${source.columns.map((c) => `${sqlString(c.name)}: ${sqlString(stagingType(c))}`).join(', ')}}`;
      const reader = stage.format === 'csv' ? `read_csv(${sqlString(rowsFile)}, header = true, columns = ${columnTypes})` : `read_parquet(${sqlString(rowsFile)})`;
      await scratch.duck.run(`CREATE VIEW source AS SELECT * FROM ${reader}`);
      // The spec's SQL comes from whoever may start a workflow: it sees the partition's rows and nothing else of the worker.
      await confineToSource(scratch.duck, [rowsFile]);
      const userSql = spec.sql[source.table] ?? 'SELECT * FROM source';
      const mapping = source.mapping;
      const groupBy = mapping.group ? keyColumns(mapping) : [];
      const query = groupBy.length ? `SELECT * FROM (\n${userSql}\n) ORDER BY ${groupBy.map(duckIdent).join(', ')}` : userSql;
      let result;
      try {
        await checkOneSelect(scratch.duck, source.table, userSql);
        result = await scratch.duck.stream(query);
      } catch (err) {
        const failure = err instanceof SpecSqlError ? err : specSqlFailure(source.table, err);
        throw ApplicationFailure.nonRetryable(`${failure.message}; fix spec.sql and start a new migration`, 'InvalidSpecSql');
      }
      const columns = outputColumns(source.columns, result.columnNames(), result.columnTypes());

      const items = new LineFile(path.join(scratch.dir, 'items.jsonl'));
      const deadLetters = new LineFile(path.join(scratch.dir, 'dead-letters.jsonl'));
      const checksum = new ItemChecksum();
      const options = spec.conversion;

      const emit = async (build: () => Item, failedRows: Row[]) => {
        try {
          const item = build();
          checkItemSize(item, mapping.targetTable);
          const line = itemToLine(item);
          checksum.addLine(line);
          await items.write(line);
        } catch (err) {
          if (!(err instanceof ConversionError)) throw err;
          const key = describeKey(source, failedRows[0]!);
          if (spec.errors.policy === 'fail') {
            // The fix is usually in the source row: a resumed run must read this partition again, not its stale export.
            await deleteObject(s3, stage.bucket, keys.exported);
            throw ApplicationFailure.nonRetryable(
              `${source.schema}.${source.table} row (${key}): ${failureReason(err)}. ` +
                'Fix the row and run `ferry resume`, or set such rows aside with `ferry resume --spec` and spec.errors.policy "dead-letter"; a mapping change needs a new migration',
              'BadRecord',
            );
          }
          for (const row of failedRows) {
            await deadLetters.write(
              JSON.stringify({ table: `${source.schema}.${source.table}`, key: describeKey(source, row), reason: err.message, row }, (_, v) =>
                typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? { $b64: Buffer.from(v).toString('base64') } : v,
              ),
            );
          }
        }
      };

      let group: Row[] = [];
      const groupKey = (row: Row) => groupBy.map((c) => templateText(row[c] ?? null)).join('\u0000');
      const flush = async () => {
        if (group.length === 0) return;
        const rowsOfItem = group;
        group = [];
        await emit(() => groupToItem(mapping, columns, rowsOfItem, options), rowsOfItem);
      };

      const context = Context.current();
      for await (const chunk of result.yieldRows()) {
        for (const values of chunk) {
          const row: Row = {};
          for (let i = 0; i < columns.length; i++) row[columns[i]!.name] = fromDuckValue(values[i]!);
          rows++;
          if (groupBy.length) {
            if (group.length && groupKey(group[0]!) !== groupKey(row)) await flush();
            group.push(row);
          } else {
            await emit(() => rowToItem(mapping, columns, row, options), [row]);
          }
        }
        if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason; // an abort waits for this to stop
      }
      await flush();
      await items.close();
      await deadLetters.close();

      const uploaded = await uploadFile(s3, stage.bucket, keys.items, items.file);
      let deadLetterKey: string | undefined;
      if (deadLetters.lines > 0) {
        await uploadFile(s3, stage.bucket, keys.deadLetters, deadLetters.file);
        deadLetterKey = keys.deadLetters;
      }
      return {
        rows,
        items: items.lines,
        bytes: uploaded.bytes,
        key: keys.items,
        checksum: checksum.hex(),
        deadLetters: deadLetters.lines,
        deadLetterKey,
        startedAt: started,
        ms: Date.now() - started,
      };
    });
  } finally {
    scratch.close();
  }
}
