/**
 * Load: one partition's staged items into DynamoDB with BatchWriteItem, 25
 * items a call, several calls in flight, paced by the write budget. The
 * staged lines are sent as they are (src/load/batchWriter.ts).
 * UnprocessedItems and throttling are retried with full-jitter backoff. The
 * activity heartbeats how many items are durably written (a contiguous
 * prefix of the items file), and a retry resumes there. Finishing writes the
 * partition's manifest.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamoClient, stagingS3 } from '../src/aws.js';
import { partitionKeys, type ExportResult, type LoadResult, type PartitionManifest, type Staging, type TransformResult } from '../src/bulk/model.js';
import { partitionId, type PartitionRange } from '../src/bulk/partitionPlan.js';
import { loadConfig } from '../src/config.js';
import { BatchWriter } from '../src/load/batchWriter.js';
import { fullJitter, WriteBudget } from '../src/load/writeBudget.js';
import { queryOwnWorkflow } from '../src/ownWorkflow.js';
import { getJson, objectStream, putJson } from '../src/s3.js';

const BATCH = 25;
const THROTTLING = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded']);

export interface LoadCheckpoint {
  /** Items [0, done) of the items file are written. */
  done: number;
  attempts: number;
  /** Items in the file and the partition's planned rows: let a watcher turn `done` into rows. */
  of?: number;
  partitionRows?: number;
}

export interface LoadRequest {
  targetTable: string;
  range: PartitionRange;
  exported: ExportResult;
  transformed: TransformResult;
  writers: number;
  /** This partition's share of the write budget when it started (items/s); refreshed from the workflow while running. */
  itemsPerSecond?: number;
}

/** The share of the budget the workflow currently grants each loading partition. */
export interface BudgetShare {
  itemsPerSecond?: number;
}

/**
 * Test hook: FERRY_FAULT_WRITE_CAPACITY=N makes this worker's writes behave
 * like a table provisioned for N items/s: a call beyond that capacity fails as
 * throttled, as DynamoDB does (DynamoDB Local never throttles).
 */
const simulatedCapacity = { tokens: 0, last: performance.now() };
function simulatedThrottle(items: number): void {
  const capacity = Number(process.env.FERRY_FAULT_WRITE_CAPACITY ?? 0);
  if (!(capacity > 0)) return;
  const now = performance.now();
  simulatedCapacity.tokens = Math.min(capacity, simulatedCapacity.tokens + ((now - simulatedCapacity.last) / 1000) * capacity);
  simulatedCapacity.last = now;
  if (simulatedCapacity.tokens < items) {
    throw Object.assign(new Error(`simulated throttling: over ${capacity} items/s (FERRY_FAULT_WRITE_CAPACITY)`), { name: 'ProvisionedThroughputExceededException' });
  }
  simulatedCapacity.tokens -= items;
}

export async function loadPartition(stage: Staging, request: LoadRequest): Promise<LoadResult> {
  const started = Date.now();
  const context = Context.current();
  const config = loadConfig();
  const s3 = stagingS3(config.aws, stage);
  const writer = new BatchWriter(dynamoClient(config.aws));
  const keys = partitionKeys(stage, request.range);
  const checkpoint = (context.info.heartbeatDetails as LoadCheckpoint | undefined) ?? { done: 0, attempts: 0 };
  const resumedFrom = checkpoint.done;
  const budget = new WriteBudget(request.itemsPerSecond);

  // Pending batches by their first line; the checkpoint is the lowest one still in flight.
  const inFlight = new Map<number, Promise<void>>();
  let nextLine = 0;
  let written = resumedFrom;
  const done = () => (inFlight.size ? Math.min(...inFlight.keys()) : nextLine);
  let windowStart = performance.now();
  let windowItems = 0;

  const writeBatch = async (requests: string[], firstLine: number) => {
    let pending = requests;
    for (let attempt = 0; pending.length > 0; attempt++) {
      await budget.take(pending.length);
      // An abort waits for this activity: no write may start once it has been asked to stop.
      if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
      try {
        simulatedThrottle(pending.length);
        const { unprocessed } = await writer.write(request.targetTable, pending);
        windowItems += pending.length - unprocessed.length;
        pending = unprocessed;
      } catch (err) {
        if ((err as Error).name === 'ValidationException') {
          // Retrying cannot help: the items are what DynamoDB refuses. Transform checks what it can; this names the rest.
          throw ApplicationFailure.nonRetryable(
            `DynamoDB refused a write to ${request.targetTable}: ${(err as Error).message}. ` +
              `The batch is items ${firstLine + 1}–${firstLine + requests.length} of s3://${stage.bucket}/${request.transformed.key}`,
            'WriteRefused',
          );
        }
        if (!THROTTLING.has((err as Error).name)) throw err;
        const seconds = Math.max(0.001, (performance.now() - windowStart) / 1000);
        budget.throttled(windowItems / seconds);
      }
      if (pending.length) await sleep(fullJitter(attempt));
    }
  };

  let lastBeat = 0;
  let lastBudgetCheck = performance.now();
  const beat = async () => {
    const now = performance.now();
    if (now - lastBeat < 900) return;
    lastBeat = now;
    context.heartbeat({ done: done(), attempts: checkpoint.attempts + 1, of: request.transformed.items, partitionRows: request.range.plannedRows } satisfies LoadCheckpoint);
    if (now - windowStart > 5000) {
      windowStart = now;
      windowItems = 0;
    }
    if (now - lastBudgetCheck > 3000) {
      lastBudgetCheck = now;
      const share = await budgetShare(context).catch(() => undefined);
      if (share) budget.setRate(share.itemsPerSecond);
    }
  };

  const lines = readline.createInterface({ input: await objectStream(s3, stage.bucket, request.transformed.key), crlfDelay: Infinity });
  let batch: string[] = [];
  let batchStart = 0;
  const submit = async () => {
    if (batch.length === 0) return;
    while (inFlight.size >= request.writers) await Promise.race(inFlight.values());
    const start = batchStart;
    const requests = batch;
    batch = [];
    const task = writeBatch(requests, start).then(() => {
      inFlight.delete(start);
      written += requests.length;
    });
    task.catch(() => {}); // observed below through Promise.race/all
    inFlight.set(start, task);
  };
  // On a clock, not per batch: while every writer backs off under throttling, or waits for the budget, no batch
  // is submitted for a long time, and a load that looked dead would be retried (or never hear its cancellation).
  const beating = setInterval(() => void beat().catch(() => undefined), 1000);
  try {
    for await (const line of lines) {
      const index = nextLine++;
      if (index < resumedFrom || line === '') continue;
      if (batch.length === 0) batchStart = index;
      batch.push(line);
      if (batch.length === BATCH) await submit();
      if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
    }
    await submit();
    await Promise.all(inFlight.values());
  } finally {
    clearInterval(beating);
    // Failed or cancelled: the batches in flight end before the activity does, so none writes after it.
    await Promise.allSettled(inFlight.values());
    writer.close();
  }
  context.heartbeat({ done: nextLine, attempts: checkpoint.attempts + 1, of: request.transformed.items, partitionRows: request.range.plannedRows } satisfies LoadCheckpoint);

  const result: LoadResult = {
    items: written,
    resumedFrom,
    attempts: checkpoint.attempts + 1,
    throttled: budget.throttles,
    startedAt: started,
    ms: Date.now() - started,
  };
  const manifest: PartitionManifest = {
    partition: partitionId(request.range),
    range: request.range,
    export: request.exported,
    transform: request.transformed,
    load: result,
    finishedAt: new Date().toISOString(),
  };
  await putJson(s3, stage.bucket, keys.manifest, manifest);
  return result;
}

function budgetShare(context: Context): Promise<BudgetShare> {
  return queryOwnWorkflow<BudgetShare>(context, 'budgetShare', {});
}

/** A partition's manifest, if an earlier run or attempt finished it. */
export async function readManifest(stage: Staging, range: PartitionRange): Promise<PartitionManifest | undefined> {
  const key = partitionKeys(stage, range).manifest;
  const manifest = await getJson<PartitionManifest>(stagingS3(loadConfig().aws, stage), stage.bucket, key);
  if (manifest && JSON.stringify(manifest.range) !== JSON.stringify(range)) {
    throw ApplicationFailure.nonRetryable(
      `s3://${stage.bucket}/${key} covers a different key range than this run's plan; the staging folder holds another migration's partitions. ` +
        'Give the migration a new name or delete that folder',
      'StagingMismatch',
    );
  }
  return manifest;
}
