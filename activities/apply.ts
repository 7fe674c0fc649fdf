/**
 * Apply: one Kinesis shard's change events into DynamoDB, in order per row (or
 * per item under grouping) and in parallel across them, each as
 * version-guarded transactions (src/capture/applyPlan.ts), so replayed and
 * out-of-order events never overwrite newer state. Heartbeats the last applied
 * sequence number; a retry resumes after it. Ends when the shard is read to
 * its end and the workflow says capture is complete, or when the shard closes.
 */
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, type Shard } from '@aws-sdk/client-kinesis';
import { TransactWriteItemsCommand, UpdateItemCommand, TransactionCanceledException, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamoClient, kinesisClient, s3Client } from '../src/aws.js';
import type { SourceTable, Staging } from '../src/bulk/model.js';
import { applyPlan, plainShape, stagedRow, type Shape, type ShapedRow } from '../src/capture/applyPlan.js';
import { deleteIfEmpty } from '../src/capture/emptyItems.js';
import { MAX_TRANSACTION_ITEMS, packRound, type KeyNames, type Step } from '../src/capture/applyBatch.js';
import { isEndMarker, type ChangeEvent, type EventRow } from '../src/capture/events.js';
import { RowSql, RowSqlError, type ShapedImage } from '../src/capture/rowSql.js';
import { loadConfig } from '../src/config.js';
import { itemKey } from '../src/mapping/item.js';
import { keyAttributes, keyColumns } from '../src/mapping/tableMapping.js';
import { ConversionError } from '../src/mapping/types.js';
import { getJson } from '../src/s3.js';
import type { MigrationSpec } from '../src/spec.js';

/** Every shard of the stream, as ListShards describes it, page after page. */
export async function streamShards(stream: string): Promise<Shard[]> {
  const kinesis = kinesisClient(loadConfig().aws);
  const shards: Shard[] = [];
  let NextToken: string | undefined;
  do {
    const page = await kinesis.send(NextToken ? new ListShardsCommand({ NextToken }) : new ListShardsCommand({ StreamName: stream }));
    shards.push(...(page.Shards ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return shards;
}

/** The stream's shards, with their parents (a child is read after its parents) and whether they are closed. */
export async function listShards(stream: string): Promise<(Pick<Shard, 'ShardId' | 'ParentShardId' | 'AdjacentParentShardId'> & { closed: boolean })[]> {
  return (await streamShards(stream)).map(({ ShardId, ParentShardId, AdjacentParentShardId, SequenceNumberRange }) => ({ ShardId, ParentShardId, AdjacentParentShardId, closed: SequenceNumberRange?.EndingSequenceNumber !== undefined }));
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
  const keyNames: KeyNames = new Map([[request.versionsTable, ['k']], ...request.tables.map((t) => [t.mapping.targetTable, keyAttributes(t.mapping)] as [string, string[]])]);

  let iterator = (
    await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: request.stream,
        ShardId: request.shardId,
        ...(state.sequence ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: state.sequence } : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    )
  ).ShardIterator;

  // spec.sql per table, as the bulk transform runs it: one DuckDB call per page for each table's images.
  const rowSql = new Map<string, RowSql>();
  const shapePage = async (events: ChangeEvent[]): Promise<Map<EventRow, ShapedImage>> => {
    const shaped = new Map<EventRow, ShapedImage>();
    const imagesOf = new Map<string, EventRow[]>();
    for (const event of events) {
      const source = sources.get(event.table);
      if (!source || spec.sql[source.table] === undefined) continue;
      const images = imagesOf.get(event.table) ?? [];
      imagesOf.set(event.table, images);
      for (const image of [event.before, event.after]) if (image) images.push(image);
    }
    for (const [table, images] of imagesOf) {
      const source = sources.get(table)!;
      let sql = rowSql.get(table);
      if (!sql) rowSql.set(table, (sql = await RowSql.open(source.table, spec.sql[source.table]!, source.columns)));
      const out = await sql.shape(images.map((image) => stagedRow(source, image)));
      images.forEach((image, i) => shaped.set(image, out[i]!));
    }
    return shaped;
  };
  /** An image through spec.sql, from the page's shaped images; under grouping the SQL may not move a row to another item. */
  const sqlShape = (source: SourceTable, shaped: Map<EventRow, ShapedImage>): Shape => {
    const sql = rowSql.get(`${source.schema}.${source.table}`)!;
    const plain = plainShape(source);
    return (image) => {
      const s = shaped.get(image)!;
      if ('error' in s) throw new RowSqlError(s.error);
      if (!s.row) return undefined;
      const out = { columns: sql.columns!, row: s.row };
      if (source.mapping.group) {
        const key = (r: ShapedRow) => JSON.stringify(itemKey(source.mapping, r.columns, r.row, spec.conversion));
        const [own, shapedKey] = [key(plain(image)!), key(out)];
        if (shapedKey !== own) {
          throw ApplicationFailure.nonRetryable(
            `spec.sql.${source.table} changes the item key of a grouped row (${own} becomes ${shapedKey}); with change capture the rows of one item travel ` +
              `on one shard by their own key columns (${keyColumns(source.mapping).join(', ')}), so the SQL must leave those values as they are`,
            'SqlMovesGroupedRow',
          );
        }
      }
      return out;
    };
  };

  /** One event's transactions as steps, or nothing when the event is for no migrated table or is a dead letter. */
  const stepsOf = async (event: ChangeEvent, shaped: Map<EventRow, ShapedImage>): Promise<Step<StepTag>[]> => {
    const source = sources.get(event.table);
    if (!source) return [];
    let plan;
    try {
      plan = applyPlan(event, source, request.versionsTable, spec.conversion, spec.sql[source.table] === undefined ? undefined : sqlShape(source, shaped));
    } catch (err) {
      if (!(err instanceof ConversionError || err instanceof RowSqlError)) throw err;
      const where = `${event.table} row (${Object.entries(event.key).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}), change ${event.version}`;
      if (spec.errors.policy === 'fail') throw ApplicationFailure.nonRetryable(`${where}: ${err.message}`, 'BadRecord');
      await s3.send(new PutObjectCommand({ Bucket: stage.bucket, Key: `${stage.root}/apply/dead-letters/${event.version}.json`, Body: JSON.stringify({ ...event, reason: err.message }) }));
      state.deadLetters++;
      return [];
    }
    const last = plan.transactions.length - 1;
    return plan.transactions.map((items, i) => ({ items, tag: { targetTable: source.mapping.targetTable, maybeEmpty: i === last ? plan.maybeEmpty : [], where: event.version } }));
  };

  /**
   * Applies the lanes' steps, in order within each lane, in rounds of packed
   * calls (src/capture/applyBatch.ts). A stale step (its version check failed:
   * an equal or newer change is already applied) is dropped; a step refused
   * for another reason is tried again alone, and fails the activity if it is
   * refused alone too.
   */
  const applyLanes = async (lanes: Step<StepTag>[][]) => {
    const alone = new Set<number>();
    for (let attempt = 0; lanes.some((l) => l.length); ) {
      const calls = packRound(lanes, keyNames, MAX_TRANSACTION_ITEMS, alone);
      let again = false;
      const finish = async (lane: number, outcome: 'applied' | 'stale') => {
        const step = lanes[lane]!.shift()!;
        alone.delete(lane);
        state[outcome]++;
        // An item whose last row went is deleted, unless another reader set a row on it meanwhile.
        for (const Key of step.tag.maybeEmpty) await deleteIfEmpty(dynamo, request.versionsTable, step.tag.targetTable, Key, () => void state.retried++);
      };
      await inParallel(calls, CALLS_IN_FLIGHT, async (call) => {
        const TransactItems = call.flatMap((lane) => lanes[lane]![0]!.items);
        try {
          await dynamo.send(new TransactWriteItemsCommand({ TransactItems }));
          for (const lane of call) await finish(lane, 'applied');
        } catch (err) {
          if (err instanceof TransactionCanceledException && err.CancellationReasons) {
            // Steps cancelled only because another step of the call failed go again at once; a conflict or throttling waits.
            if (err.CancellationReasons.some((r) => r.Code && r.Code !== 'None' && PASSING.has(r.Code))) again = true;
            let offset = 0;
            for (const lane of call) {
              const step = lanes[lane]![0]!;
              const reasons = err.CancellationReasons.slice(offset, offset + step.items.length);
              offset += step.items.length;
              if (reasons.some((r) => r.Code === 'ConditionalCheckFailed')) await finish(lane, 'stale');
              else if (reasons.some((r) => r.Code && !PASSING.has(r.Code))) {
                const reason = reasons.find((r) => r.Code && !PASSING.has(r.Code))!;
                if (call.length === 1) throw ApplicationFailure.nonRetryable(`DynamoDB refused change ${step.tag.where} to ${step.tag.targetTable}: ${reason.Code}: ${reason.Message ?? ''}`, 'WriteRefused');
                alone.add(lane);
              }
            }
            return;
          }
          if (RETRYABLE.has((err as Error).name)) {
            again = true;
            return;
          }
          if (call.length === 1) throw err;
          for (const lane of call) alone.add(lane); // find which step DynamoDB refuses
        }
      });
      if (again) {
        state.retried++;
        await sleep(Math.random() * Math.min(2000, 25 * 2 ** Math.min(attempt++, 10)));
      } else {
        attempt = 0;
      }
    }
  };

  // On a clock, not per page: a page that takes long to apply (throttling, conflicts) must not look like a dead worker.
  const beating = setInterval(() => context.heartbeat({ ...state, shardId: request.shardId }), 1000);
  const runId = context.info.workflowExecution?.runId;
  let lastAsked = 0;
  try {
    let lastRead = 0;
    while (iterator) {
      if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
      // Kinesis serves a shard at most five GetRecords calls a second: a reader that asked more often would be
      // throttled there, and here it would only load the stream with calls that find a record or two.
      const wait = lastRead + READ_INTERVAL_MS - Date.now();
      if (wait > 0) await sleep(wait);
      lastRead = Date.now();
      const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      // Records with the same partition key (the same row, or the same item under grouping) are applied in
      // order; different ones together, packed into few calls. The checkpoint moves only once the whole page is applied.
      const records = page.Records ?? [];
      const lanes: Step<StepTag>[][] = [];
      const laneOf = new Map<string, number>();
      let ended = false;
      const events: { event: ChangeEvent; key: string }[] = [];
      for (const record of records) {
        let event = JSON.parse(Buffer.from(record.Data!).toString('utf8')) as ChangeEvent & { s3?: string };
        if (isEndMarker(event)) {
          if (event.runId === runId) {
            ended = true; // everything capture shipped to this shard is before it
            break;
          }
          continue; // another run's
        }
        if (event.s3) event = (await getJson<ChangeEvent>(s3, stage.bucket, event.s3))!;
        events.push({ event, key: record.PartitionKey ?? '' });
      }
      const shaped = await shapePage(events.map((e) => e.event));
      for (const { event, key } of events) {
        const steps = await stepsOf(event, shaped);
        if (!steps.length) continue;
        let lane = laneOf.get(key);
        if (lane === undefined) {
          lane = lanes.push([]) - 1;
          laneOf.set(key, lane);
        }
        lanes[lane]!.push(...steps);
      }
      await applyLanes(lanes);
      if (records.length) state.sequence = records[records.length - 1]!.SequenceNumber;
      state.millisBehind = page.MillisBehindLatest ?? 0;
      iterator = page.NextShardIterator;
      if (ended) {
        if (spec.capture && spec.capture.cutover !== 'none') {
          // For a cutover's freeze, which waits for every shard to get here (activities/cutover.ts).
          await dynamo.send(
            new UpdateItemCommand({
              TableName: spec.capture.routingTable,
              Key: { name: { S: spec.name } },
              UpdateExpression: 'ADD drained :shard',
              ExpressionAttributeValues: { ':shard': { SS: [`${runId}|${request.shardId}`] } },
            }),
          );
        }
        break;
      }
      if (!page.Records?.length && state.millisBehind === 0) {
        // Capture's end marker is what ends a reader; asking the workflow is the fallback (a run whose capture ended
        // before a marker could be shipped), and costs a workflow task, so not often.
        if (Date.now() - lastAsked > 1000) {
          lastAsked = Date.now();
          if (await captureComplete(context)) break;
        }
      }
    }
  } finally {
    clearInterval(beating);
    for (const sql of rowSql.values()) sql.close();
  }
  context.heartbeat({ ...state, shardId: request.shardId });
  return { shardId: request.shardId, ...state };
}

/** What apply keeps with each step: where it writes, the items to delete if emptied, the change's version. */
interface StepTag {
  targetTable: string;
  maybeEmpty: Record<string, AttributeValue>[];
  where: string;
}

/** Calls one shard's reader has in flight at once. */
const CALLS_IN_FLIGHT = 8;
/** Between one shard's GetRecords calls: Kinesis's limit of five reads a second per shard. */
const READ_INTERVAL_MS = 200;
/** Cancellation reasons that say nothing against the item: it was not the cause, or a retry will do. */
const PASSING = new Set(['None', 'TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded', 'RequestLimitExceeded']);
const RETRYABLE = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'TransactionConflictException', 'RequestLimitExceeded', 'InternalServerError']);

/** Runs `work` on every element, at most `limit` at once; rejects with the first failure once all have settled. */
async function inParallel<T>(elements: T[], limit: number, work: (element: T) => Promise<void>): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.min(limit, elements.length) }, async () => {
      while (next < elements.length) {
        const element = elements[next++]!;
        await work(element).catch((err: unknown) => void failures.push(err));
      }
    }),
  );
  if (failures.length) throw failures[0];
}

async function captureComplete(context: Context): Promise<boolean> {
  const execution = context.info.workflowExecution;
  if (!execution) return false;
  return context.client.workflow.getHandle(execution.workflowId, execution.runId).query<boolean>('captureComplete');
}
