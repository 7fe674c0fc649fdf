/**
 * Partition planning: one pass over the table's split key, in key order,
 * picking bounds so partitions hold about equal row counts.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { BoundaryPicker, partitionLimitProblem, quoteIdent, toKeyPart, type PartitionRange } from '../src/bulk/partitionPlan.js';
import { migrationKeys, type SourceTable, type Staging } from '../src/bulk/model.js';
import { stagingS3 } from '../src/aws.js';
import { loadConfig } from '../src/config.js';
import { getJson, putJson } from '../src/s3.js';
import { streamRows } from '../src/mysql.js';
import { connectSource } from '../src/source.js';
import type { MigrationSpec } from '../src/spec.js';
import { heartbeatWhile } from './heartbeat.js';

/**
 * The plan is stored in staging and a resumed run uses the stored one: manifests
 * and exports belong to key ranges, and a re-plan over a table that changed
 * since would move the bounds under them (rows skipped or copied twice).
 */
export async function planPartitions(spec: MigrationSpec, stage: Staging, source: SourceTable): Promise<PartitionRange[]> {
  const s3 = stagingS3(loadConfig().aws, stage);
  const planKey = migrationKeys(stage).plan(source.table);
  const stored = await getJson<PartitionRange[]>(s3, stage.bucket, planKey);
  if (stored) return stored;
  const progress = { seen: 0 };
  // On a clock: the COUNT(*) and the first rows of the ordered scan are each one long call on a large table.
  const ranges = await heartbeatWhile(() => progress, () => planTable(spec, source, progress));
  await putJson(s3, stage.bucket, planKey, ranges);
  return ranges;
}

async function planTable(spec: MigrationSpec, source: SourceTable, progress: { seen: number }): Promise<PartitionRange[]> {
  const db = await connectSource(spec);
  try {
    const table = `${quoteIdent(source.schema)}.${quoteIdent(source.table)}`;
    const [[{ n }]] = (await db.query(`SELECT COUNT(*) AS n FROM ${table}`)) as unknown as [[{ n: string | number }]];
    const rows = Number(n);
    const partitions = spec.bulk.partitions ?? Math.max(1, Math.ceil(rows / spec.bulk.partitionRows));
    const tooMany = partitionLimitProblem(`table ${source.schema}.${source.table} (${rows.toLocaleString('en')} rows)`, rows, partitions);
    if (tooMany) throw ApplicationFailure.nonRetryable(tooMany, 'PlanTooLarge');
    const picker = new BoundaryPicker(rows, partitions);
    if (partitions > 1) {
      const columns = source.splitColumns.map(quoteIdent).join(', ');
      for await (const row of streamRows(db, `SELECT ${columns} FROM ${table} ORDER BY ${columns}`, [], 10_000)) {
        picker.add(row.map(toKeyPart));
        progress.seen++;
      }
    }
    return picker.ranges(source.table, source.splitColumns);
  } finally {
    await db.end();
  }
}
