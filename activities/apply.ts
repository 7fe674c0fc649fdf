/**
 * Apply: one Kinesis shard's change events into DynamoDB, in order per row (or
 * per item under grouping) and in parallel across them, each as
 * version-guarded transactions (src/capture/applyPlan.ts), so replayed and
 * out-of-order events never overwrite newer state. Heartbeats the last applied
 * sequence number; a retry resumes after it. Ends when the shard is read to
 * its end and the workflow says capture is complete, or when the shard closes.
 */
import { DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, type _Record, type Shard } from '@aws-sdk/client-kinesis';
import { TransactWriteItemsCommand, UpdateItemCommand, TransactionCanceledException, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamoClient, kinesisClient, stagingS3 } from '../src/aws.js';
import type { SourceTable, Staging } from '../src/bulk/model.js';
import { applyPlan, plainShape, stagedRow, type Shape, type ShapedRow } from '../src/capture/applyPlan.js';
import { deleteIfEmpty } from '../src/capture/emptyItems.js';
import { MAX_TRANSACTION_ITEMS, packRound, type KeyNames, type Step } from '../src/capture/applyBatch.js';
import { isEndMarker, type ChangeEvent, type EventRow } from '../src/capture/events.js';
import { afterPage } from '../src/capture/lag.js';
import { RowSql, RowSqlError, type ShapedImage } from '../src/capture/rowSql.js';
import { captureStartKey, type RecordedStart } from '../src/capture/startRecord.js';
import { loadConfig } from '../src/config.js';
import { failFastOnPermanent } from '../src/errors.js';
import { itemKey } from '../src/mapping/item.js';
import { keyAttributes, keyColumns } from '../src/mapping/tableMapping.js';
import { ConversionError, failureReason } from '../src/mapping/types.js';
import { queryOwnWorkflow } from '../src/ownWorkflow.js';
import { getJson } from '../src/s3.js';
import type { MigrationSpec } from '../src/spec.js';

/** Every shard of the stream, as ListShards describes it, page after page; `abortSignal` gives up on the calls. */
export async function streamShards(stream: string, abortSignal?: AbortSignal): Promise<Shard[]> {
  const kinesis = kinesisClient(loadConfig().aws);
  const shards: Shard[] = [];
  let NextToken: string | undefined;
  do {
    const page = await kinesis.send(NextToken ? new ListShardsCommand({ NextToken }) : new ListShardsCommand({ StreamName: stream }), { abortSignal });
    shards.push(...(page.Shards ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return shards;
}

/** A shard still taking records: one closed by a split or merge has an ending sequence number. */
function isOpen(shard: Shard): boolean {
  return !shard.SequenceNumberRange?.EndingSequenceNumber;
}

/** The stream's open shards; `abortSignal` gives up on the calls. */
export async function openShards(stream: string, abortSignal?: AbortSignal): Promise<Shard[]> {
  return (await streamShards(stream, abortSignal)).filter(isOpen);
}

/** The stream's shards, with their parents (a child is read after its parents) and whether they are closed. */
export async function listShards(stream: string): Promise<(Pick<Shard, 'ShardId' | 'ParentShardId' | 'AdjacentParentShardId'> & { closed: boolean })[]> {
  return (await streamShards(stream)).map((shard) => ({ ShardId: shard.ShardId, ParentShardId: shard.ParentShardId, AdjacentParentShardId: shard.AdjacentParentShardId, closed: !isOpen(shard) }));
}

export interface ApplyRequest {
  stream: string;
  shardId: string;
  tables: SourceTable[];
  versionsTable: string;
  /**
   * Apply a table's changes only once the workflow's `loadedTables` query lists it (its bulk load is done): a
   * change applied before its row's bulk write would be overwritten by the older exported row. Without it,
   * every table is applied from the start (catch-up after the whole bulk copy, or a replay).
   */
  waitForLoads?: boolean;
}

export interface ApplyCheckpoint {
  sequence?: string;
  applied: number;
  stale: number;
  deadLetters: number;
  /** Writes retried after a transaction conflict or throttling. */
  retried: number;
  /** `MillisBehindLatest` of the last page read; the reader's lag is `readerLag` of this and `oldestUnappliedAt`. */
  millisBehind: number;
  /**
   * When the oldest record not applied yet arrived (ms since the epoch): the first of the page being applied, or
   * after a full page the last one applied (src/capture/lag.ts); absent once a page reached the tip.
   */
  oldestUnappliedAt?: number;
  /** False until this attempt has read a page: until then its lag is not known (src/capture/lag.ts applyLag). */
  measured?: boolean;
  /** Tables (`schema.table`) whose changes are applied up to `sequence`; absent in checkpoints before per-table catch-up. */
  tables?: string[];
  /** A pass from the shard's start applying the changes of tables whose bulk load has just finished, up to `until`. */
  catchUp?: { tables: string[]; sequence?: string; until: string };
}

export interface ApplyResult extends ApplyCheckpoint {
  shardId: string;
  /** Tables whose changes this shard does not apply yet: their bulk load is running, or their catch-up pass is. */
  waitingTables: number;
}

export async function applyChanges(spec: MigrationSpec, stage: Staging, request: ApplyRequest): Promise<ApplyResult> {
  return failFastOnPermanent(`apply of shard ${request.shardId}`, spec.name, () => applyShard(spec, stage, request));
}

async function applyShard(spec: MigrationSpec, stage: Staging, request: ApplyRequest): Promise<ApplyResult> {
  const context = Context.current();
  const config = loadConfig();
  const kinesis = kinesisClient(config.aws);
  const dynamo = dynamoClient(config.aws);
  const s3 = stagingS3(config.aws, stage);
  const resumed = (context.info.heartbeatDetails as ApplyCheckpoint | undefined) ?? { applied: 0, stale: 0, deadLetters: 0, retried: 0, millisBehind: 0 };
  // A retry reads the dead attempt's page again: until it has, that page's oldest change is still unapplied, and
  // changes made while no reader ran are unread, so this reader does not know its lag until its first page.
  const state: ApplyCheckpoint = { ...resumed, measured: false };
  const sources = new Map(request.tables.map((t) => [`${t.schema}.${t.table}`, t]));
  const keyNames: KeyNames = new Map([[request.versionsTable, ['k']], ...request.tables.map((t) => [t.mapping.targetTable, keyAttributes(t.mapping)] as [string, string[]])]);

  /**
   * A reader that starts at the shard's oldest record relies on the stream holding every change since capture
   * began shipping them. Once that is longer ago than the stream's retention, changes may have been trimmed
   * unread: applying the rest would lose them without a word, so the table fails loudly instead.
   */
  // Read once per attempt: later checks are the clock's, so a reader re-reading a shard's start never waits on S3.
  let shipping: Promise<{ since: string; retentionHours: number } | undefined> | undefined;
  const checkRetention = async () => {
    shipping ??= (async () => {
      const recorded = await getJson<RecordedStart>(s3, stage.bucket, captureStartKey(stage));
      if (!recorded) return undefined;
      const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: request.stream }), { abortSignal: context.cancellationSignal });
      return { since: recorded.shippingSince ?? recorded.recordedAt, retentionHours: summary.StreamDescriptionSummary?.RetentionPeriodHours ?? 24 };
    })();
    const known = await shipping.catch((err: unknown) => {
      shipping = undefined; // asked again next time
      throw err;
    });
    if (!known) return;
    const { since, retentionHours } = known;
    const ageHours = (Date.now() - Date.parse(since)) / 3_600_000;
    if (ageHours <= retentionHours) return;
    throw ApplicationFailure.nonRetryable(
      `apply reads ${request.shardId} of ${request.stream} from its oldest record ${ageHours.toFixed(1)} h after capture began shipping changes into it (${since}), ` +
        `but the stream keeps records only ${retentionHours} h: the oldest changes may be gone from it, and applying the rest would lose them silently. ` +
        `Raise the stream's retention (spec.capture.expectedBulkHours with raiseRetention, or IncreaseStreamRetentionPeriod) above the bulk copy's duration, ` +
        `then \`ferry resume ${spec.name}\`: capture ships every change again from the binlog`,
      'ChangesExpired',
    );
  };

  /** A fresh iterator after `sequence`, or from the shard's start: held ones expire after five minutes unused. */
  const iteratorAfter = async (sequence: string | undefined) => {
    const { ShardIterator } = await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: request.stream,
        ShardId: request.shardId,
        ...(sequence ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: sequence } : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
      { abortSignal: context.cancellationSignal },
    );
    return ShardIterator;
  };

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
      await badChange(event, err.message, failureReason(err));
      return [];
    }
    const last = plan.transactions.length - 1;
    return plan.transactions.map((items, i) => ({ items, tag: { targetTable: source.mapping.targetTable, maybeEmpty: i === last ? plan.maybeEmpty : [], where: event.version, event } }));
  };

  /**
   * A change that can never be applied as it is (a value that does not convert, an item over 400 KB, a write
   * DynamoDB refuses as invalid), under spec.errors.policy as in the bulk copy: `fail` fails the run naming it;
   * `dead-letter` sets it aside in staging (apply/dead-letters/VERSION.json, the event and the reason), counts
   * it and goes on, so a resumed run does not stop on it again.
   */
  const badChange = async (event: ChangeEvent, reason: string, shownReason = reason) => {
    const where = `${event.table} row (${Object.entries(event.key).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}), change ${event.version}`;
    if (spec.errors.policy === 'fail') {
      // The failure message lands in Temporal's history: without the row's value (src/mapping/types.ts failureReason).
      throw ApplicationFailure.nonRetryable(`${where}: ${shownReason}. Fix the row on the source, or set spec.errors.policy "dead-letter" and \`ferry resume ${spec.name}\``, 'BadRecord');
    }
    await s3.send(new PutObjectCommand({ Bucket: stage.bucket, Key: changeDeadLetterKey(stage, event.version), Body: JSON.stringify({ ...event, reason }) }));
    state.deadLetters++;
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
                if (call.length === 1 && reason.Code === 'ValidationError') {
                  // Alone, refused as invalid (a grouped item grown past 400 KB, say): the change is bad, not the call.
                  await badChange(step.tag.event, `DynamoDB refused it for ${step.tag.targetTable}: ${reason.Message ?? reason.Code}`);
                  lanes[lane]!.shift();
                  alone.delete(lane);
                  continue;
                }
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

  // Tables whose changes this reader applies: their bulk load is done (or the workflow does not wait for loads).
  // An older checkpoint without the list applied every table.
  const loaded = new Set(state.tables ?? (request.waitForLoads && state.sequence === undefined ? [] : [...sources.keys()]));
  const checkpoint = (): ApplyResult => ({ ...state, tables: [...loaded], waitingTables: sources.size - loaded.size, shardId: request.shardId });
  // On a clock, not per page: a page that takes long to apply (throttling, conflicts) must not look like a dead worker.
  const beating = setInterval(() => context.heartbeat(checkpoint()), 1000);
  const runId = context.info.workflowExecution?.runId;

  let lastRead = 0;
  /** One GetRecords call, at most every READ_INTERVAL_MS for this shard, whichever pass asks. */
  const read = async (shardIterator: string) => {
    if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
    // Kinesis serves a shard at most five GetRecords calls a second: a reader that asked more often would be
    // throttled there, and here it would only load the stream with calls that find a record or two.
    const wait = lastRead + READ_INTERVAL_MS - Date.now();
    if (wait > 0) await sleep(wait);
    lastRead = Date.now();
    // Aborted on cancellation: a stream that stopped answering must not keep an aborted run waiting.
    return kinesis.send(new GetRecordsCommand({ ShardIterator: shardIterator, Limit: PAGE_RECORDS }), { abortSignal: context.cancellationSignal });
  };

  /**
   * Applies the records' changes to the tables `include` names. Records with the same partition key (the same
   * row, or the same item under grouping) are applied in order; different ones together, packed into few calls.
   * Returns whether this run's end marker was among them (what follows it is not applied).
   */
  const applyRecords = async (records: _Record[], include: Set<string>): Promise<boolean> => {
    // Until the page is applied, the reader is as far behind as its oldest record (src/capture/lag.ts).
    // Recorded now, not on the next tick: the throttled send to the server carries the latest details.
    state.oldestUnappliedAt = records[0]?.ApproximateArrivalTimestamp?.getTime() ?? state.oldestUnappliedAt;
    context.heartbeat(checkpoint());
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
      if (!include.has(event.table)) continue;
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
    return ended;
  };

  /**
   * Tables whose bulk load finished since this reader last asked: their changes were skipped up to the reader's
   * position, so one pass from the shard's start to that position applies them (the pass's own checkpoint is
   * `state.catchUp`); from then on the main pass applies them with the others.
   */
  const catchUp = async () => {
    const pass = state.catchUp!;
    const include = new Set(pass.tables);
    const mainPass = state.oldestUnappliedAt; // the pass's pages set their own
    const until = BigInt(pass.until);
    if (pass.sequence === undefined) await checkRetention();
    let passIterator = await iteratorAfter(pass.sequence);
    while (passIterator && (pass.sequence === undefined || BigInt(pass.sequence) < until)) {
      const page = await read(passIterator);
      const records = (page.Records ?? []).filter((r) => BigInt(r.SequenceNumber!) <= until);
      await applyRecords(records, include); // an end marker here is the main pass's to act on
      if (records.length) pass.sequence = records[records.length - 1]!.SequenceNumber;
      state.millisBehind = Math.max(state.millisBehind, page.MillisBehindLatest ?? 0);
      if (records.length < (page.Records?.length ?? 0)) break; // past `until`
      if (!page.Records?.length && page.MillisBehindLatest === 0) break; // `until` is gone from the shard (trimmed)
      passIterator = page.NextShardIterator;
    }
    for (const table of pass.tables) loaded.add(table);
    state.catchUp = undefined;
    // The main pass goes on from where it stood: records still unread behind its last page count as before.
    state.oldestUnappliedAt = mainPass;
  };
  let lastAskedLoads = 0;
  /**
   * Asks the workflow which tables' bulk loads are done (at most every second) and catches up the new ones.
   * True when the reader took new tables or made a pass.
   */
  const takeLoadedTables = async (force = false): Promise<boolean> => {
    if (state.catchUp) {
      await catchUp(); // a retried reader finishes the pass it was in
      return true;
    }
    if (!request.waitForLoads || loaded.size === sources.size || (!force && Date.now() - lastAskedLoads < LOADS_POLL_MS)) return false;
    lastAskedLoads = Date.now();
    // A query the workflow cannot answer now (its worker restarting) is asked again next time.
    const fresh = ((await queryOwnWorkflow<string[]>(context, 'loadedTables', []).catch(() => undefined)) ?? []).filter((t) => sources.has(t) && !loaded.has(t));
    if (!fresh.length) return false;
    if (state.sequence === undefined) for (const t of fresh) loaded.add(t); // nothing read yet: the main pass starts from the shard's start
    else {
      state.catchUp = { tables: fresh, until: state.sequence };
      await catchUp();
    }
    return true;
  };

  let lastAsked = 0;
  let ended = false;
  try {
    let iterator = await iteratorAfter(state.sequence);
    let held = false; // the iterator sat unused through a wait or a catch-up pass, and may have expired
    while (iterator) {
      if (await takeLoadedTables()) held = true;
      if (!loaded.size) {
        // No table's bulk load is done yet: nothing to apply, and reading now would only move past changes to skip.
        if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
        await sleep(LOADS_POLL_MS);
        held = true;
        continue;
      }
      if (held) {
        held = false;
        iterator = await iteratorAfter(state.sequence);
        if (!iterator) break;
      }
      // Reading from the shard's start to apply: the stream must still hold every change since capture began.
      if (state.sequence === undefined) await checkRetention();
      const page = await read(iterator);
      // From this page on the reader knows its lag: the page's oldest record, and how far the stream runs past it.
      state.measured = true;
      state.millisBehind = page.MillisBehindLatest ?? state.millisBehind;
      // The checkpoint moves only once the whole page is applied.
      const records = page.Records ?? [];
      ended = await applyRecords(records, loaded);
      if (records.length) state.sequence = records[records.length - 1]!.SequenceNumber;
      Object.assign(state, afterPage({ millisBehind: page.MillisBehindLatest ?? 0, records: records.length, lastArrivalAt: records.at(-1)?.ApproximateArrivalTimestamp?.getTime() }, PAGE_RECORDS));
      context.heartbeat(checkpoint());
      iterator = page.NextShardIterator;
      if (ended) break;
      if (!records.length && state.millisBehind === 0) {
        // Capture's end marker is what ends a reader; asking the workflow is the fallback (a run whose capture ended
        // before a marker could be shipped), and costs a workflow task, so not often.
        if (Date.now() - lastAsked > 1000) {
          lastAsked = Date.now();
          if (await queryOwnWorkflow(context, 'captureComplete', false)) break;
        }
      }
    }
    // The shard is read to its end (capture drained, or the shard closed): every table's changes on it must be
    // applied before the reader finishes, so it waits for the bulk loads still running (a shard closed by
    // resharding during the bulk copy) and catches their tables up.
    while (loaded.size < sources.size) {
      if (!(await takeLoadedTables(true))) {
        if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
        await sleep(LOADS_POLL_MS);
      }
    }
    if (ended && spec.capture && spec.capture.cutover !== 'none') {
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
  } finally {
    clearInterval(beating);
    for (const sql of rowSql.values()) sql.close();
  }
  context.heartbeat(checkpoint());
  return checkpoint();
}

/** What apply keeps with each step: where it writes, the items to delete if emptied, the change's version. */
interface StepTag {
  targetTable: string;
  maybeEmpty: Record<string, AttributeValue>[];
  where: string;
  event: ChangeEvent;
}

/** Where the dead-letter policy sets aside a change apply cannot write (docs/cdc.md). */
export const changeDeadLetterKey = (stage: Staging, version: string) => `${stage.root}/apply/dead-letters/${version}.json`;

/** Calls one shard's reader has in flight at once. */
const CALLS_IN_FLIGHT = 8;
/** How often a reader asks the workflow which bulk loads are done, while some are not. */
const LOADS_POLL_MS = 1000;
/** Between one shard's GetRecords calls: Kinesis's limit of five reads a second per shard. */
const READ_INTERVAL_MS = 200;
/** Records one GetRecords call returns at most. */
const PAGE_RECORDS = 1000;
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
