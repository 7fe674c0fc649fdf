/**
 * Partition planning: one pass over the table's split key, in key order,
 * picking bounds so partitions hold about equal row counts.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { BoundaryPicker, partitionLimitProblem, quoteIdent, rangePredicate, sameKey, toKeyPart, type PartitionRange, type PickerState } from '../src/bulk/partitionPlan.js';
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
 *
 * Planning never restarts from zero: the count and the picker's progress are
 * checkpointed to staging (`plan-progress.json`) at a key change every few
 * seconds, and a retried attempt, or a resumed run, scans on after the last
 * checkpointed key.
 */
export async function planPartitions(spec: MigrationSpec, stage: Staging, source: SourceTable): Promise<PartitionRange[]> {
  const s3 = stagingS3(loadConfig().aws, stage);
  const keys = migrationKeys(stage);
  const planKey = keys.plan(source.table);
  const stored = await getJson<PartitionRange[]>(s3, stage.bucket, planKey);
  if (stored) return stored;
  const checkpoints: PlanCheckpoints = {
    load: () => getJson<PlanCheckpoint>(s3, stage.bucket, keys.planProgress(source.table)),
    save: (checkpoint) => putJson(s3, stage.bucket, keys.planProgress(source.table), checkpoint),
  };
  const progress: PlanProgress = { seen: 0, resumedFrom: 0 };
  // On a clock: the COUNT(*) and the first rows of the ordered scan are each one long call on a large table.
  const ranges = await heartbeatWhile(() => progress, () => planTable(spec, source, progress, checkpoints));
  Context.current().heartbeat(progress); // the scan's last figures: it may have ended between two beats
  await putJson(s3, stage.bucket, planKey, ranges);
  return ranges;
}

/** What planning heartbeats: rows of the ordered scan seen, and how many of them an earlier attempt had seen. */
export interface PlanProgress {
  seen: number;
  resumedFrom: number;
}

/** Planning's checkpoint: the table's count, the partitions wanted, and the picker's progress through the keys. */
export interface PlanCheckpoint {
  rows: number;
  partitions: number;
  picker: PickerState;
  savedAt: string;
}

interface PlanCheckpoints {
  load(): Promise<PlanCheckpoint | undefined>;
  save(checkpoint: PlanCheckpoint): Promise<void>;
}

/** How often planning saves its checkpoint (FERRY_PLAN_CHECKPOINT_MS, default 10 s): a crash costs at most that much of the scan. */
const checkpointEveryMs = () => Number(process.env.FERRY_PLAN_CHECKPOINT_MS ?? 10_000);

async function planTable(spec: MigrationSpec, source: SourceTable, progress: PlanProgress, checkpoints: PlanCheckpoints): Promise<PartitionRange[]> {
  const signal = Context.current().cancellationSignal;
  const db = await connectSource(spec);
  try {
    const table = `${quoteIdent(source.schema)}.${quoteIdent(source.table)}`;
    const resumed = await checkpoints.load();
    let rows: number;
    if (resumed) {
      rows = resumed.rows;
    } else {
      const [[{ n }]] = (await db.query(`SELECT COUNT(*) AS n FROM ${table}`)) as unknown as [[{ n: string | number }]];
      rows = Number(n);
    }
    const partitions = resumed?.partitions ?? spec.bulk.partitions ?? Math.max(1, Math.ceil(rows / spec.bulk.partitionRows));
    const tooMany = partitionLimitProblem(`table ${source.schema}.${source.table} (${rows.toLocaleString('en')} rows)`, rows, partitions);
    if (tooMany) throw ApplicationFailure.nonRetryable(tooMany, 'PlanTooLarge');
    const picker = resumed ? BoundaryPicker.restore(rows, partitions, resumed.picker) : new BoundaryPicker(rows, partitions);
    progress.seen = progress.resumedFrom = picker.rowsSeen;
    if (partitions > 1) {
      const columns = source.splitColumns.map(quoteIdent).join(', ');
      const integerColumns = new Set(source.columns.filter((c) => c.family === 'integer').map((c) => c.name));
      // After the checkpoint's last key: it was taken at a key change, so every row of that key had been seen.
      const after = picker.lastKey ? rangePredicate({ table: source.table, index: 0, columns: source.splitColumns, after: picker.lastKey, plannedRows: 0 }, integerColumns) : { sql: 'TRUE', params: [] };
      const everyMs = checkpointEveryMs();
      let savedAt = Date.now();
      for await (const row of streamRows(db, `SELECT ${columns} FROM ${table} WHERE ${after.sql} ORDER BY ${columns}`, after.params, 10_000)) {
        const key = row.map(toKeyPart);
        if (Date.now() - savedAt >= everyMs && !sameKey(picker.lastKey, key)) {
          if (signal.aborted) throw new CancelledFailure('planning was cancelled; its checkpoint is saved');
          await checkpoints.save({ rows, partitions, picker: picker.snapshot(), savedAt: new Date().toISOString() });
          savedAt = Date.now();
        }
        picker.add(key);
        progress.seen++;
      }
    }
    return picker.ranges(source.table, source.splitColumns);
  } finally {
    await db.end();
  }
}
