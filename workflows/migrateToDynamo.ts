/**
 * migrateToDynamo: MySQL tables into DynamoDB. The bulk half of the runbook:
 * preflight → plan partitions → bounded fan-out of export → transform → load
 * per partition → report. Change capture slots in before the bulk copy and
 * catch-up/verify/cutover after it (DESIGN.md).
 *
 * Workflow code: deterministic, no I/O; rows never pass through here, only
 * key ranges, S3 keys and counts.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities/index.js';
import type { ApplyResult } from '../activities/apply.js';
import type { CaptureResult } from '../activities/capture.js';
import type { CutoverResult } from '../activities/cutover.js';
import { shardKeyColumns } from '../src/mapping/tableMapping.js';
import type { ApplyLag } from '../src/capture/lag.js';
import type { BinlogPosition } from '../src/capture/events.js';
import { staging, type ExportReader, type ExportResult, type LoadResult, type PartitionManifest, type SourceTable, type Staging, type TransformResult } from '../src/bulk/model.js';
import { partitionId, partitionLimitProblem, type PartitionRange } from '../src/bulk/partitionPlan.js';
import { FerryKind, FerryPercent, FerryPhase } from '../src/searchAttributes.js';
import { SpecError, parseSpec, type MigrationSpec, type MigrationSpecInput } from '../src/spec.js';

const retry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 };

const { preflight } = proxyActivities<typeof activities>({ startToCloseTimeout: '10 minutes', retry: { ...retry, maximumAttempts: 3 } });
// Planning, export and transform heartbeat on a clock through their long calls (activities/heartbeat.ts), so a short
// heartbeat timeout is safe: a killed worker's work moves to another worker within seconds, as the load's does.
const { planPartitions } = proxyActivities<typeof activities>({ startToCloseTimeout: '1 hour', heartbeatTimeout: '20 seconds', retry });
const { readManifest } = proxyActivities<typeof activities>({ startToCloseTimeout: '1 minute', retry });
// An abort waits until the partitions in flight have stopped, so nothing writes the target once the run is cancelled.
const { exportPartition, transformPartition } = proxyActivities<typeof activities>({
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '20 seconds',
  retry,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
const { captureStart, cleanUpCapture, currentBinlogPosition, listShards, measureLag } = proxyActivities<typeof activities>({ startToCloseTimeout: '1 minute', retry });
// Waits for apply to catch up before an automatic cutover; heartbeats while it polls.
const { awaitLag } = proxyActivities<typeof activities>({ startToCloseTimeout: '30 days', heartbeatTimeout: '1 minute', retry });
// A cutover is not retried on its own: a failed one released the freeze and left the routing on MySQL.
const { freezeAndFlip } = proxyActivities<typeof activities>({ startToCloseTimeout: '1 hour', heartbeatTimeout: '10 seconds', retry: { maximumAttempts: 1 } });
const { applyChanges } = proxyActivities<typeof activities>({
  startToCloseTimeout: '30 days',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
// Capture runs as long as the migration; a killed worker's capture resumes elsewhere within seconds.
const { captureChanges } = proxyActivities<typeof activities>({
  startToCloseTimeout: '30 days',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
// A short heartbeat timeout: a killed worker's partition moves to another worker within seconds.
const { loadPartition } = proxyActivities<typeof activities>({
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '20 seconds',
  retry,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

/** `aborted`: cancelled (`ferry abort`); shown while the run waits for what it started to stop, and after. */
export type MigrationPhase = 'preflight' | 'planning' | 'bulk' | 'catch-up' | 'cutover' | 'done' | 'failed' | 'aborted';

export interface PartitionReport {
  partition: string;
  table: string;
  index: number;
  rows: number;
  items: number;
  bytes: number;
  deadLetters: number;
  exportMs: number;
  transformMs: number;
  loadMs: number;
  /** When each stage began (epoch ms, worker clock): with the durations, the stages' wall-clock windows. */
  exportStartedAt: number;
  transformStartedAt: number;
  loadStartedAt: number;
  /** Where a retried load resumed (0: from the start). */
  loadResumedFrom: number;
  /** Write calls DynamoDB throttled (each slowed the partition's pace and was retried). */
  throttled: number;
  /** True when the partition's manifest came from an earlier run: nothing was redone. */
  reused: boolean;
  /** True when the staged export of an earlier attempt or run was reused. */
  exportReused: boolean;
  /** The reader that staged the rows: `duckdb`, `client` or `driver` (docs/configuration.md, FERRY_EXPORT). */
  exportReader?: ExportReader;
  checksum: string;
}

export interface TableReport {
  table: string;
  targetTable: string;
  partitions: number;
  rows: number;
  items: number;
  bytes: number;
  deadLetters: number;
  /**
   * Throughput of each stage: rows (items) over the wall-clock time during which
   * at least one of the table's partitions was in that stage, in this run
   * (partitions reused from an earlier run do not count).
   */
  exportRowsPerSecond: number;
  transformRowsPerSecond: number;
  loadItemsPerSecond: number;
}

export interface MigrationReport {
  name: string;
  tables: TableReport[];
  partitions: PartitionReport[];
  createdTables: string[];
  rows: number;
  items: number;
  deadLetters: number;
  durationMs: number;
  rowsPerSecond: number;
  /** With spec.capture: what change capture shipped, from its start position to where the run drained it. */
  capture?: CaptureResult & { stream: string; startReused: boolean; resumeNote?: string; apply: ApplyResult[]; cutover?: CutoverResult };
}

export interface MigrationProgress {
  phase: MigrationPhase;
  paused: boolean;
  writeBudget?: number;
  tables: { table: string; plannedRows: number; partitions: number; partitionsDone: number; rowsDone: number; itemsDone: number }[];
  plannedRows: number;
  /** Rows of finished partitions. */
  rowsDone: number;
  /**
   * Rows of partitions still loading, from their load checkpoints. The workflow
   * cannot see heartbeats and reports 0; the client's progress() fills it in.
   */
  rowsInFlight: number;
  /** (rowsDone + rowsInFlight) / plannedRows, in percent. */
  percent: number;
  partitionsRunning: string[];
  startedAt: number;
  error?: string;
  /** With spec.capture: the stream, where capture started (reused from an earlier run or not) and where it is to stop. */
  capture?: {
    stream: string;
    start: BinlogPosition;
    reused: boolean;
    /** A resumed run: whether capture goes on from the earlier run's position or ships everything again, and why. */
    resumeNote?: string;
    stopAt?: BinlogPosition;
    /** Per shard: how far behind the stream apply is, in ms (src/capture/lag.ts), and what it applied. The client's progress() fills it in from apply's checkpoints. */
    apply?: { shardId: string; millisBehind: number; applied: number; stale: number }[];
    /** The stream's shards, once apply has listed them. */
    shards?: number;
    /** Apply's lag by the measure approveCutover uses (src/capture/lag.ts applyLag); the client's progress() fills it in. */
    lag?: ApplyLag;
  };
  /**
   * Activities that failed at least once and are being retried: which, its
   * attempt and its last failure. The workflow cannot see them; the client's
   * progress() fills it in from the run's pending activities.
   */
  retrying?: { activity: string; attempt: number; lastFailure: string }[];
}

export const progressQuery = defineQuery<MigrationProgress>('progress');
/** Where change capture should stop once everything before it is in the stream; undefined: keep capturing. */
export const captureStopAtQuery = defineQuery<BinlogPosition | undefined>('captureStopAt');
/** The tables (`schema.table`) whose bulk load is done: apply applies their changes from then on. */
export const loadedTablesQuery = defineQuery<string[]>('loadedTables');
/** True once capture has shipped everything up to its stop position: apply may stop at the end of its shard. */
export const captureCompleteQuery = defineQuery<boolean>('captureComplete');
/** The cutover activity's freeze has read the final position: capture drains to it. */
export const frozenSignal = defineSignal<[BinlogPosition]>('frozen');
/** True once capture and apply have reached the frozen position: the cutover may flip. */
export const drainedQuery = defineQuery<boolean>('drained');
/** Approves the cutover (spec.capture.cutover "manual"); refused with the reason outside catch-up or while apply lags. Resolves when the cutover is done. */
export const approveCutoverUpdate = defineUpdate<CutoverResult, []>('approveCutover');
export const budgetShareQuery = defineQuery<{ itemsPerSecond?: number }>('budgetShare');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Sets the write budget in items per second for the whole migration; null lifts it. */
export const setWriteBudgetUpdate = defineUpdate<{ itemsPerSecond: number | null }, [number | null]>('setWriteBudget');

/** `resume`: a new run of a migration that failed; it reuses the staging folder's plan, exports and manifests. */
export interface MigrateOptions {
  resume?: boolean;
}

export async function migrateToDynamo(input: MigrationSpecInput, options: MigrateOptions = {}): Promise<MigrationReport> {
  let spec: MigrationSpec;
  try {
    spec = parseSpec(input);
  } catch (err) {
    if (err instanceof SpecError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidSpec');
    throw err;
  }
  const startedAt = workflowInfo().runStartTime.getTime();
  /**
   * An abort (the workflow's cancellation) stops the run only once nothing of it is left running: partitions in
   * flight stop at their next checkpoint, capture and apply stop, and then the run ends cancelled. A cutover already
   * begun is not interrupted: it completes, and the run with it, or rolls back and fails the run.
   */
  const root = CancellationScope.current();
  const state: MigrationProgress = { phase: 'preflight', paused: false, writeBudget: spec.writeBudget.itemsPerSecond, tables: [], plannedRows: 0, rowsDone: 0, rowsInFlight: 0, percent: 0, partitionsRunning: [], startedAt };
  const loading = new Set<string>();

  setHandler(progressQuery, () => state);
  let captureStopAt: BinlogPosition | undefined;
  setHandler(captureStopAtQuery, () => captureStopAt);
  let captureComplete = false;
  setHandler(captureCompleteQuery, () => captureComplete);
  const loadedTables: string[] = [];
  setHandler(loadedTablesQuery, () => loadedTables);
  let frozenAt: BinlogPosition | undefined;
  setHandler(frozenSignal, (position) => {
    frozenAt = position;
    captureStopAt = position;
  });
  let drained = false;
  setHandler(drainedQuery, () => drained);
  let cutoverApproved = false;
  let cutoverOutcome: { result?: CutoverResult; error?: unknown } | undefined;
  let shardCount = 0;
  setHandler(
    approveCutoverUpdate,
    async () => {
      const lag = await measureLag(shardCount);
      const maxLagMs = spec.capture!.maxLagMs;
      if (!lag.ready || lag.maxMillisBehind > maxLagMs) {
        throw ApplicationFailure.nonRetryable(
          lag.ready
            ? `apply is ${lag.maxMillisBehind} ms behind the stream, more than spec.capture.maxLagMs (${maxLagMs} ms): approve again once it has caught up`
            : 'apply has not yet reported from every shard, or is still catching up a table whose bulk load has just finished: approve again in a few seconds',
          'LagTooHigh',
        );
      }
      cutoverApproved = true;
      // An abort does not interrupt a cutover: this answers with its outcome (the catch below answers a run that ended first).
      const outcome = () => condition(() => cutoverOutcome !== undefined);
      await CancellationScope.nonCancellable(outcome);
      if (cutoverOutcome!.error !== undefined) throw cutoverOutcome!.error;
      return cutoverOutcome!.result!;
    },
    {
      validator: () => {
        if (!spec.capture || spec.capture.cutover !== 'manual') throw new Error(`this migration's cutover is "${spec.capture?.cutover ?? 'none (no capture)'}", not "manual": nothing to approve`);
        if (state.phase !== 'catch-up') throw new Error(`a cutover can be approved only during catch-up; the migration is in ${state.phase}`);
        if (cutoverApproved) throw new Error('the cutover is already approved');
      },
    },
  );
  setHandler(budgetShareQuery, () => ({ itemsPerSecond: state.writeBudget === undefined ? undefined : state.writeBudget / Math.max(1, loading.size) }));
  setHandler(pauseSignal, () => void (state.paused = true));
  setHandler(resumeSignal, () => void (state.paused = false));
  setHandler(
    setWriteBudgetUpdate,
    (itemsPerSecond) => {
      state.writeBudget = itemsPerSecond ?? undefined;
      return { itemsPerSecond };
    },
    {
      validator: (itemsPerSecond) => {
        if (itemsPerSecond !== null && !(typeof itemsPerSecond === 'number' && itemsPerSecond > 0)) {
          throw new Error(`write budget must be a positive number of items per second, or null for no limit; got ${JSON.stringify(itemsPerSecond)}`);
        }
      },
    },
  );

  const phase = (next: MigrationPhase) => {
    state.phase = next;
    upsertSearchAttributes([
      { key: FerryKind, value: 'migrateToDynamo' },
      { key: FerryPhase, value: next },
      { key: FerryPercent, value: state.percent },
    ]);
  };

  // Capture and apply are out of the abort's reach (a non-cancellable parent) and stopped by the
  // catch below: during a cutover they drain to the frozen position, and stopping them then would hold the
  // source's writes frozen until spec.capture.maxFreezeMs.
  const captureScope = new CancellationScope({ cancellable: true, parent: new CancellationScope({ cancellable: false }) });
  let capture: Promise<CaptureResult> | undefined;
  /** Capture and apply while they run: a failed or cancelled run waits for them to stop. */
  const background: Promise<unknown>[] = [];
  let failure: unknown;
  const running = new Set<Promise<void>>();
  try {
    phase('preflight');
    const checked = await preflight(spec, { resume: options.resume === true });
    const stage: Staging = staging(spec, checked.bucket);

    // Capture starts before any row is read for the bulk copy: every change after this point reaches the stream.
    if (checked.capture) {
      const { start, from, reused, note } = await captureStart(spec, stage, checked.capture.stream);
      if (note) log.info(note);
      state.capture = { stream: checked.capture.stream, start, reused, resumeNote: note };
      const request = { stream: checked.capture.stream, start, from, tables: checked.tables.map((t) => ({ schema: t.schema, table: t.table, primaryKey: t.primaryKey, shardKey: shardKeyColumns(t.mapping, t.primaryKey) })) };
      capture = captureScope.run(() => captureChanges(spec, stage, request));
      background.push(capture);
      capture.catch((err) => void (failure ??= err));
    }

    phase('planning');
    const plans: { source: SourceTable; ranges: PartitionRange[] }[] = [];
    for (const source of checked.tables) {
      const ranges = await planPartitions(spec, stage, source);
      plans.push({ source, ranges });
      const plannedRows = ranges.reduce((n, r) => n + r.plannedRows, 0);
      state.tables.push({ table: source.table, plannedRows, partitions: ranges.length, partitionsDone: 0, rowsDone: 0, itemsDone: 0 });
      if (ranges.length === 0) loadedTables.push(`${source.schema}.${source.table}`);
      state.plannedRows += plannedRows;
    }
    const tooMany = partitionLimitProblem(
      `the ${plans.length} selected tables (${state.plannedRows.toLocaleString('en')} rows)`,
      state.plannedRows,
      plans.reduce((n, p) => n + p.ranges.length, 0),
    );
    if (tooMany) throw ApplicationFailure.nonRetryable(tooMany, 'PlanTooLarge');

    // Apply follows capture: every shard, parents before children, until capture is complete. It starts with the
    // bulk copy and applies each table's changes once that table's load is done (activities/apply.ts).
    const startApplying = async () => {
      const stream = state.capture!.stream;
      const request = { stream, tables: checked.tables, versionsTable: checked.capture!.versionsTable, waitForLoads: true };
      const applyAll = async (): Promise<ApplyResult[]> => {
        const shards = await listShards(stream);
        const known = new Set(shards.map((s) => s.ShardId));
        const results: ApplyResult[] = [];
        const finished = new Set<string>();
        let remaining = shards;
        while (remaining.length) {
          const parentDone = (id: string | undefined) => !id || !known.has(id) || finished.has(id);
          const ready = remaining.filter((s) => parentDone(s.ParentShardId) && parentDone(s.AdjacentParentShardId));
          if (ready.length === 0) throw ApplicationFailure.nonRetryable(`the shards of ${stream} have a parent cycle`, 'BadShards');
          remaining = remaining.filter((s) => !ready.includes(s));
          results.push(...(await Promise.all(ready.map((s) => applyChanges(spec, stage, { ...request, shardId: s.ShardId! })))));
          for (const s of ready) finished.add(s.ShardId!);
        }
        return results;
      };
      shardCount = (await listShards(stream)).length;
      state.capture!.shards = shardCount;
      applying = captureScope.run(applyAll);
      background.push(applying);
      applying.catch((err) => void (failure ??= err));
    };
    let applying: Promise<ApplyResult[]> | undefined;
    if (capture && state.capture) await startApplying();

    phase('bulk');
    const reports: PartitionReport[] = [];
    const runPartition = async (source: SourceTable, range: PartitionRange): Promise<void> => {
      const id = partitionId(range);
      state.partitionsRunning.push(id);
      try {
        const manifest = await readManifest(stage, range);
        const report = manifest ? partitionReport(manifest, true) : await copyPartition(source, range, id);
        reports.push(report);
        const table = state.tables.find((t) => t.table === range.table)!;
        table.partitionsDone++;
        if (table.partitionsDone === table.partitions) loadedTables.push(`${source.schema}.${source.table}`);
        table.rowsDone += report.rows;
        table.itemsDone += report.items;
        state.rowsDone += report.rows;
        // Planned rows are counted before the copy: rows deleted meanwhile would leave a finished copy short of 100%.
        const allDone = state.tables.every((t) => t.partitionsDone === t.partitions);
        state.percent = state.plannedRows && !allDone ? Math.min(100, Math.round((state.rowsDone / state.plannedRows) * 1000) / 10) : 100;
        upsertSearchAttributes([{ key: FerryPercent, value: state.percent }]);
      } finally {
        state.partitionsRunning = state.partitionsRunning.filter((p) => p !== id);
      }
    };
    const copyPartition = async (source: SourceTable, range: PartitionRange, id: string): Promise<PartitionReport> => {
      const exported: ExportResult = await exportPartition(spec, stage, source, range);
      const transformed: TransformResult = await transformPartition(spec, stage, source, range);
      loading.add(id);
      let loaded: LoadResult;
      try {
        const share = state.writeBudget === undefined ? undefined : state.writeBudget / loading.size;
        loaded = await loadPartition(stage, { targetTable: source.mapping.targetTable, range, exported, transformed, writers: spec.bulk.writersPerPartition, itemsPerSecond: share });
      } finally {
        loading.delete(id);
      }
      return partitionReport({ partition: id, range, export: exported, transform: transformed, load: loaded, finishedAt: '' }, false);
    };

    // Bounded fan-out: at most `concurrency` partitions in flight; a failure stops new launches,
    // lets the running ones finish (their manifests make a resumed run skip them), then fails the run.
    for (const { source, ranges } of plans) {
      for (const range of ranges) {
        await condition(() => failure !== undefined || (!state.paused && running.size < spec.bulk.concurrency));
        if (failure !== undefined) break;
        const task: Promise<void> = runPartition(source, range)
          .catch((err) => void (failure ??= err))
          .finally(() => running.delete(task));
        running.add(task);
      }
    }
    await Promise.all(running);
    if (failure !== undefined) throw failure;

    let captured: MigrationReport['capture'];
    if (capture && state.capture) {
      // Drain: everything the source wrote until now must be in the stream before the run ends.
      phase('catch-up');
      let cutover: Promise<CutoverResult> | undefined;
      if (spec.capture!.cutover === 'none') {
        // No cutover: drain at once to the binlog's end, then let apply finish.
        captureStopAt = await currentBinlogPosition(spec);
      } else {
        if (spec.capture!.cutover === 'auto') {
          // One activity polls the lag, however long catch-up takes: a timer and a lag measurement every 2 s here
          // would add about 8 history events every 2 s, and a history holds 50,000 (over 3 hours of waiting).
          const waiting = new CancellationScope();
          const caughtUp = waiting.run(() => awaitLag(shardCount, spec.capture!.maxLagMs));
          caughtUp.catch(() => undefined); // cancelled below when something else failed first
          await Promise.race([caughtUp, condition(() => failure !== undefined)]);
          if (failure !== undefined) {
            waiting.cancel();
            throw failure;
          }
        } else {
          await condition(() => cutoverApproved || failure !== undefined);
          if (failure !== undefined) throw failure;
        }
        const cutOver = async () => {
          phase('cutover');
          cutover = freezeAndFlip(spec, checked.tables, stage);
          cutover.then(
            (result) => void (cutoverOutcome = { result }),
            (error) => void (cutoverOutcome = { error }),
          );
          await condition(() => frozenAt !== undefined || cutoverOutcome !== undefined);
          if (frozenAt === undefined) await cutover; // failed before the freeze: throws
        };
        // An abort that came with the approval, or while the lag was measured, stops the run before any freeze.
        if (root.consideredCancelled) throw new CancelledFailure('the migration was aborted before its cutover began');
        // From here the abort waits: the cutover and the drain behind it end in a flip or a rollback.
        await CancellationScope.nonCancellable(cutOver);
      }
      // Capture and apply are out of the abort's reach (see captureScope): without a cutover, an abort stops the drain.
      const drain = <T>(work: Promise<T>): Promise<T> => (!cutover ? Promise.race([work, root.cancelRequested]) : work);
      const finish = async (): Promise<MigrationReport['capture']> => {
        state.capture!.stopAt = captureStopAt;
        const shipped = await drain(capture!);
        captureComplete = true;
        const applied = await drain(applying!);
        drained = true;
        const cut = cutover ? await cutover : undefined;
        if (spec.capture!.cleanup) await cleanUpCapture(checked.capture!.createdStream ? state.capture!.stream : undefined, checked.capture!.versionsTable);
        return { stream: state.capture!.stream, startReused: state.capture!.reused, resumeNote: state.capture!.resumeNote, ...shipped, apply: applied, cutover: cut };
      };
      // Past a cutover the migration is done whatever is asked of it: its report and clean-up are not cancelled.
      captured = cutover ? await CancellationScope.nonCancellable(finish) : await finish();
    }

    phase('done');
    return { ...buildReport(spec.name, plans, reports, checked.createdTables, workflowNow() - startedAt), capture: captured };
  } catch (err) {
    state.error = err instanceof Error ? err.message : String(err);
    phase(isCancellation(err) ? 'aborted' : 'failed');
    cutoverOutcome ??= { error: err }; // an approval still waiting gets the reason the run ended
    // Stop capturing: a failed or cancelled migration leaves nothing running.
    // Wait until they have stopped, so a cancelled run leaves nothing reading the binlog or writing the target.
    await CancellationScope.nonCancellable(async () => {
      captureScope.cancel();
      await Promise.allSettled([...background, ...running]);
    });
    throw err;
  }
}

/** Temporal's deterministic workflow clock (the SDK replaces Date in workflow code). */
function workflowNow(): number {
  return new Date().getTime();
}

function partitionReport(manifest: PartitionManifest, reused: boolean): PartitionReport {
  return {
    partition: manifest.partition,
    table: manifest.range.table,
    index: manifest.range.index,
    rows: manifest.transform.rows,
    items: manifest.transform.items,
    bytes: manifest.export.bytes,
    deadLetters: manifest.transform.deadLetters,
    exportMs: manifest.export.ms,
    transformMs: manifest.transform.ms,
    loadMs: manifest.load.ms,
    exportStartedAt: manifest.export.startedAt,
    transformStartedAt: manifest.transform.startedAt,
    loadStartedAt: manifest.load.startedAt,
    loadResumedFrom: manifest.load.resumedFrom,
    throttled: manifest.load.throttled,
    reused,
    exportReused: manifest.export.reused,
    exportReader: manifest.export.reader,
    checksum: manifest.transform.checksum,
  };
}

const perSecond = (n: number, ms: number) => (ms > 0 ? Math.round((n / ms) * 1000) : 0);

/** Units over the union of the partitions' stage windows, per second. */
export function stageThroughput<P>(partitions: P[], units: (p: P) => number, window: (p: P) => [number, number]): number {
  const spans = partitions.map(window).filter(([start]) => start > 0).sort((a, b) => a[0] - b[0]);
  let busyMs = 0;
  let coveredTo = -Infinity;
  for (const [start, ms] of spans) {
    const end = start + ms;
    if (end <= coveredTo) continue;
    busyMs += end - Math.max(start, coveredTo);
    coveredTo = end;
  }
  return perSecond(partitions.reduce((n, p) => n + units(p), 0), busyMs);
}

function buildReport(name: string, plans: { source: SourceTable }[], partitions: PartitionReport[], createdTables: string[], durationMs: number): MigrationReport {
  partitions.sort((a, b) => (a.table === b.table ? a.index - b.index : a.table < b.table ? -1 : 1));
  const tables = plans.map(({ source }) => {
    const own = partitions.filter((p) => p.table === source.table);
    const sum = (f: (p: PartitionReport) => number) => own.reduce((n, p) => n + f(p), 0);
    return {
      table: source.table,
      targetTable: source.mapping.targetTable,
      partitions: own.length,
      rows: sum((p) => p.rows),
      items: sum((p) => p.items),
      bytes: sum((p) => p.bytes),
      deadLetters: sum((p) => p.deadLetters),
      exportRowsPerSecond: stageThroughput(own.filter((p) => !p.reused && !p.exportReused), (p) => p.rows, (p) => [p.exportStartedAt, p.exportMs]),
      transformRowsPerSecond: stageThroughput(own.filter((p) => !p.reused), (p) => p.rows, (p) => [p.transformStartedAt, p.transformMs]),
      loadItemsPerSecond: stageThroughput(own.filter((p) => !p.reused), (p) => p.items, (p) => [p.loadStartedAt, p.loadMs]),
    };
  });
  const rows = tables.reduce((n, t) => n + t.rows, 0);
  return {
    name,
    tables,
    partitions,
    createdTables,
    rows,
    items: tables.reduce((n, t) => n + t.items, 0),
    deadLetters: tables.reduce((n, t) => n + t.deadLetters, 0),
    durationMs,
    rowsPerSecond: perSecond(rows, durationMs),
  };
}
