/**
 * Apply: one Kinesis shard's change events into DynamoDB, in order per row (or
 * per item under grouping) and in parallel across them, each as
 * version-guarded transactions (src/capture/applyPlan.ts), so replayed and
 * out-of-order events never overwrite newer state. Heartbeats the last applied
 * sequence number; a retry resumes after it. Ends when the shard is read to
 * its end and the workflow says capture is complete, or when the shard closes.
 */
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, type Shard } from '@aws-sdk/client-kinesis';
import { TransactGetItemsCommand, TransactWriteItemsCommand, TransactionCanceledException, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamoClient, kinesisClient, s3Client } from '../src/aws.js';
import type { SourceTable, Staging } from '../src/bulk/model.js';
import { applyPlan, revisionKey } from '../src/capture/applyPlan.js';
import { inLanes } from '../src/capture/lanes.js';
import type { ChangeEvent } from '../src/capture/events.js';
import { loadConfig } from '../src/config.js';
import { ConversionError } from '../src/mapping/types.js';
import { getJson } from '../src/s3.js';
import type { MigrationSpec } from '../src/spec.js';

/** The stream's shards, with their parents: a child is read after its parents. */
export async function listShards(stream: string): Promise<Pick<Shard, 'ShardId' | 'ParentShardId' | 'AdjacentParentShardId'>[]> {
  const kinesis = kinesisClient(loadConfig().aws);
  const shards: Shard[] = [];
  let NextToken: string | undefined;
  do {
    const page = await kinesis.send(NextToken ? new ListShardsCommand({ NextToken }) : new ListShardsCommand({ StreamName: stream }));
    shards.push(...(page.Shards ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return shards.map(({ ShardId, ParentShardId, AdjacentParentShardId }) => ({ ShardId, ParentShardId, AdjacentParentShardId }));
}

export interface ApplyRequest {
  stream: string;
  shardId: string;
  tables: SourceTable[];
  versionsTable: string;
}

export interface ApplyCheckpoint {
  sequence?: string;
  applied: number;
  stale: number;
  deadLetters: number;
  /** Writes retried after a transaction conflict or throttling. */
  retried: number;
  millisBehind: number;
}

export interface ApplyResult extends ApplyCheckpoint {
  shardId: string;
}

export async function applyChanges(spec: MigrationSpec, stage: Staging, request: ApplyRequest): Promise<ApplyResult> {
  const context = Context.current();
  const config = loadConfig();
  const kinesis = kinesisClient(config.aws);
  const dynamo = dynamoClient(config.aws);
  const s3 = s3Client(config.aws);
  const state: ApplyCheckpoint = (context.info.heartbeatDetails as ApplyCheckpoint | undefined) ?? { applied: 0, stale: 0, deadLetters: 0, retried: 0, millisBehind: 0 };
  const sources = new Map(request.tables.map((t) => [`${t.schema}.${t.table}`, t]));

  let iterator = (
    await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: request.stream,
        ShardId: request.shardId,
        ...(state.sequence ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: state.sequence } : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    )
  ).ShardIterator;

  const apply = async (event: ChangeEvent) => {
    const source = sources.get(event.table);
    if (!source) return;
    let plan;
    try {
      plan = applyPlan(event, source, request.versionsTable, spec.conversion);
    } catch (err) {
      if (!(err instanceof ConversionError)) throw err;
      const where = `${event.table} row (${Object.entries(event.key).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}), change ${event.version}`;
      if (spec.errors.policy === 'fail') throw ApplicationFailure.nonRetryable(`${where}: ${err.message}`, 'BadRecord');
      await s3.send(new PutObjectCommand({ Bucket: stage.bucket, Key: `${stage.root}/apply/dead-letters/${event.version}.json`, Body: JSON.stringify({ ...event, reason: err.message }) }));
      state.deadLetters++;
      return;
    }
    for (const TransactItems of plan.transactions) {
      for (let attempt = 0; ; attempt++) {
        try {
          await dynamo.send(new TransactWriteItemsCommand({ TransactItems }));
          state.applied++;
          break;
        } catch (err) {
          if (err instanceof TransactionCanceledException && err.CancellationReasons?.some((r) => r.Code === 'ConditionalCheckFailed')) {
            state.stale++; // an equal or newer version is already applied
            break;
          }
          const retryable = err instanceof TransactionCanceledException || ['ProvisionedThroughputExceededException', 'ThrottlingException', 'TransactionConflictException'].includes((err as Error).name);
          if (!retryable || attempt > 20) throw err;
          state.retried++;
          await sleep(Math.random() * Math.min(2000, 25 * 2 ** attempt));
        }
      }
    }
    for (const Key of plan.maybeEmpty) await deleteIfEmpty(source.mapping.targetTable, Key);
  };

  /**
   * An item whose last row went: gone, as the bulk path would never have made
   * it. The item and its revision are read together, and the delete holds only
   * if the revision is unchanged, so a row another reader set meanwhile is
   * never deleted with it.
   */
  const deleteIfEmpty = async (TableName: string, Key: Record<string, AttributeValue>) => {
    const revision = { TableName: request.versionsTable, Key: { k: { S: revisionKey(TableName, Key) } } };
    for (let attempt = 0; ; attempt++) {
      const read = await dynamo.send(new TransactGetItemsCommand({ TransactItems: [{ Get: { TableName, Key } }, { Get: revision }] }));
      const item = read.Responses?.[0]?.Item;
      if (!item || !Object.keys(item).every((name) => name in Key)) return;
      const seen = read.Responses?.[1]?.Item?.r;
      try {
        await dynamo.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              { Delete: { TableName, Key } },
              { ConditionCheck: { ...revision, ...(seen ? { ConditionExpression: 'r = :r', ExpressionAttributeValues: { ':r': seen } } : { ConditionExpression: 'attribute_not_exists(r)' }) } },
            ],
          }),
        );
        return;
      } catch (err) {
        // Changed since the read (or a concurrent transaction): look again.
        const retryable = err instanceof TransactionCanceledException || ['ProvisionedThroughputExceededException', 'ThrottlingException', 'TransactionConflictException'].includes((err as Error).name);
        if (!retryable || attempt > 20) throw err;
        state.retried++;
        await sleep(Math.random() * Math.min(2000, 25 * 2 ** attempt));
      }
    }
  };

  // On a clock, not per page: a page that takes long to apply (throttling, conflicts) must not look like a dead worker.
  const beating = setInterval(() => context.heartbeat({ ...state, shardId: request.shardId }), 1000);
  try {
    while (iterator) {
      if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
      const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      // Records with the same partition key (the same row, or the same item under grouping) are applied in
      // order; different ones in parallel. The checkpoint moves only once the whole page is applied.
      const records = page.Records ?? [];
      await inLanes(records, (record) => record.PartitionKey ?? '', APPLY_LANES, async (record) => {
        let event = JSON.parse(Buffer.from(record.Data!).toString('utf8')) as ChangeEvent & { s3?: string };
        if (event.s3) event = (await getJson<ChangeEvent>(s3, stage.bucket, event.s3))!;
        await apply(event);
      });
      if (records.length) state.sequence = records[records.length - 1]!.SequenceNumber;
      state.millisBehind = page.MillisBehindLatest ?? 0;
      iterator = page.NextShardIterator;
      if (!page.Records?.length && state.millisBehind === 0) {
        if (await captureComplete(context)) break;
        await sleep(50); // short: the cutover freeze waits on this idle loop
      }
    }
  } finally {
    clearInterval(beating);
  }
  context.heartbeat({ ...state, shardId: request.shardId });
  return { shardId: request.shardId, ...state };
}

/** How many partition keys one shard's reader applies at once. */
const APPLY_LANES = 32;

async function captureComplete(context: Context): Promise<boolean> {
  const execution = context.info.workflowExecution;
  if (!execution) return false;
  return context.client.workflow.getHandle(execution.workflowId, execution.runId).query<boolean>('captureComplete');
}
