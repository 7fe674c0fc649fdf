/**
 * Cutover (docs/cdc.md): freeze the source's writes at the fence, drain
 * capture and apply to the final binlog position, check the items changed
 * last against the source, flip the routing record, release. One activity on
 * one connection: if anything fails, or the worker dies, the transaction rolls
 * back and the fence opens with the routing still on MySQL.
 */
import { GetItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamoClient, stagingS3 } from '../src/aws.js';
import type { SourceTable, Staging } from '../src/bulk/model.js';
import { quoteIdent } from '../src/bulk/partitionPlan.js';
import { binlogStatementsOf, readBinlogStatus } from '../src/capture/binlogStatements.js';
import type { BinlogPosition } from '../src/capture/events.js';
import { applyLag, readerCheckpoints } from '../src/capture/lag.js';
import { recentChangesKey, type RecentChanges } from '../src/capture/recentChanges.js';
import { ROUTING_SOURCE_TABLE } from '../src/capture/routing.js';
import { loadConfig } from '../src/config.js';
import { ownWorkflow } from '../src/ownWorkflow.js';
import { getJson } from '../src/s3.js';
import { connectSource, sourceDatabase } from '../src/source.js';
import type { MigrationSpec } from '../src/spec.js';
import { openShards } from './apply.js';
import { checkChangedItems } from './changedItems.js';

export interface CutoverResult {
  /** From taking the fence to releasing it: the writes' downtime. */
  freezeMs: number;
  /** Where the freeze went: reading the final position and telling the workflow, capture and apply draining to it, the item check, the flip and release. */
  phases: { positionMs: number; drainMs: number; checkMs: number; flipMs: number };
  position: BinlogPosition;
  flippedAt: string;
  /** The check inside the freeze: the changes of the last `coveredMs` (of `windowMs` asked for) and the items they touched, all equal. */
  check: { changes: number; items: number; windowMs: number; coveredMs: number };
}

/** Apply's lag, from its readers' checkpoints: the largest ms-behind now (src/capture/lag.ts), and whether every shard has reported and applies every table. */
export async function measureLag(shards: number): Promise<{ ready: boolean; maxMillisBehind: number }> {
  const context = Context.current();
  const readers = readerCheckpoints(await ownWorkflow(context)!.describe(), context.client.options.loadedDataConverter.payloadConverter);
  // A shard still to start applying a table (its bulk load has just finished) is behind by all of that table's changes.
  const { ready, maxMillisBehind } = applyLag(readers, shards, Date.now());
  return { ready, maxMillisBehind };
}

/**
 * Resolves once every shard has reported and apply lags at most `maxLagMs`:
 * an automatic cutover's wait, polled here every 2 s with a heartbeat, so a
 * catch-up of hours adds nothing to the workflow's history.
 */
export async function awaitLag(shards: number, maxLagMs: number): Promise<{ maxMillisBehind: number }> {
  const context = Context.current();
  for (;;) {
    const lag = await measureLag(shards);
    if (lag.ready && lag.maxMillisBehind <= maxLagMs) return { maxMillisBehind: lag.maxMillisBehind };
    context.heartbeat(lag);
    await context.sleep(2000); // rejects once the workflow cancels the wait
  }
}

export async function freezeAndFlip(spec: MigrationSpec, tables: SourceTable[], stage: Staging): Promise<CutoverResult> {
  const context = Context.current();
  const capture = spec.capture!;
  const handle = ownWorkflow(context)!;
  const schema = sourceDatabase(spec);
  const fence = `${quoteIdent(schema)}.${ROUTING_SOURCE_TABLE}`;
  const dynamo = dynamoClient(loadConfig().aws);
  const db = await connectSource(spec);
  let flipped = false;
  // Every wait inside the freeze ends at spec.capture.maxFreezeMs, or at once when the activity is cancelled: its
  // workflow terminated or the worker shutting down, so nobody would record a flip. (The run itself never cancels
  // its cutover: an abort waits for it.)
  const freezeDeadline = AbortSignal.timeout(capture.maxFreezeMs);
  const stop = AbortSignal.any([freezeDeadline, context.cancellationSignal]);
  // On a clock: `stop` bounds every wait, and a heartbeat is what brings the activity its cancellation.
  const beating = setInterval(() => context.heartbeat(), 1000);
  let waitingFor = 'starting the freeze';
  try {
    // If this worker's host vanishes inside the freeze, nothing closes this connection: MySQL would keep the fence
    // row locked, and the application's writes waiting, until it noticed (wait_timeout, 8 h by default). Bounded,
    // the server drops the idle connection and rolls the freeze back within maxFreezeMs plus a margin.
    const boundSeconds = Math.ceil(capture.maxFreezeMs / 1000) + FREEZE_SESSION_MARGIN_S;
    await db.query(`SET SESSION wait_timeout = ${boundSeconds}, innodb_lock_wait_timeout = ${boundSeconds}`);
    // What a second connection names to end a statement of this one that must not wait any longer.
    const [[{ id: connectionId }]] = (await db.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
    const statements = await binlogStatementsOf(db); // before the freeze: it costs the writes nothing
    await db.beginTransaction();
    const frozenAt = performance.now();
    // The exclusive row lock: new write transactions wait at their fence read; ones already past it finish first.
    waitingFor = "taking the fence, whose row an application write transaction held all that time (approve again once long write transactions on the migrated tables have committed, or raise spec.capture.maxFreezeMs)";
    await interruptible(spec, connectionId, stop, () => db.query(`UPDATE ${fence} SET backend = 'frozen', changed_at = NOW(3) WHERE name = ?`, [spec.name]));
    waitingFor = 'reading the final binlog position';
    const position = await interruptible(spec, connectionId, stop, () => readBinlogStatus(db, statements));
    if (!position) throw new Error(`${statements.status} returned nothing inside the freeze: the source no longer writes a binlog`);
    waitingFor = `telling the workflow and capture the final position ${position.file}:${position.position}`;
    await untilStopped(handle.signal('frozen', position), stop);
    // After the signal, so the workflow knows the position first. Capture reads this item every 50 ms: faster
    // than learning it from the workflow (a query can wait a second behind the workflow's task). Scoped to this
    // run, so no other run stops at it.
    await dynamo.send(
      new UpdateItemCommand({
        TableName: capture.routingTable,
        Key: { name: { S: spec.name } },
        UpdateExpression: 'SET stopAt = :stop',
        ExpressionAttributeValues: { ':stop': { S: JSON.stringify({ runId: context.info.workflowExecution!.runId, position }) } },
      }),
      { abortSignal: stop },
    );
    const signalled = performance.now();

    // Drained when every open shard's reader has applied up to capture's end marker: each says so on the routing
    // item as it reads it. Asking the workflow is the fallback, not often: a query can wait a second behind its task.
    const runId = context.info.workflowExecution!.runId;
    // Listed inside the freeze, so a shard split meanwhile is waited for too.
    waitingFor = "listing the stream's shards";
    const shards = (await openShards(capture.stream ?? `ferry-${spec.name}`, stop)).map((shard) => `${runId}|${shard.ShardId}`);
    waitingFor = `capture and apply reaching the final position ${position.file}:${position.position}`;
    let lastAsked = performance.now();
    const drained = async () => {
      const { Item } = await dynamo.send(
        new GetItemCommand({ TableName: capture.routingTable, Key: { name: { S: spec.name } }, ConsistentRead: true, ProjectionExpression: 'drained' }),
        { abortSignal: stop },
      );
      if (shards.every((shard) => Item?.drained?.SS?.includes(shard))) return true;
      if (performance.now() - lastAsked < 500) return false;
      lastAsked = performance.now();
      return untilStopped(handle.query<boolean>('drained'), stop);
    };
    while (!(await drained())) {
      stop.throwIfAborted();
      await sleep(20);
    }
    const drainedAt = performance.now();
    // Every item changed in the last capture.checkWindowMs, source (now final) against target, item by item.
    waitingFor = 'checking the items changed last';
    const listKey = recentChangesKey(stage, runId);
    const recent = await getJson<RecentChanges>(stagingS3(loadConfig().aws, stage), stage.bucket, listKey, stop);
    if (!recent) {
      throw ApplicationFailure.nonRetryable(
        `capture left no list of the last changes at s3://${stage.bucket}/${listKey}, so the items they touched could not be checked; ` +
          'the freeze was released and the routing left on MySQL; the run fails, and `ferry resume` starts a new run on its finished partitions and captured changes',
        'CutoverCheckMissing',
      );
    }
    const check = await interruptible(spec, connectionId, stop, () => checkChangedItems(db, dynamo, spec, tables, recent, stop));
    if (check.differing) {
      throw ApplicationFailure.nonRetryable(
        `after the drain ${check.differing} of the ${check.items} items changed in the last ${check.coveredMs} ms differ between the source and the target, first: ` +
          // Keys only: the message lands in Temporal's history. FERRY_FAILURE_VALUES=1 on the workers shows the items too.
          `${check.mismatches.map((m) => (process.env.FERRY_FAILURE_VALUES === '1' ? `${m.table} ${m.key}: source ${m.source}, target ${m.target}` : `${m.table} ${m.key}`)).join('; ')}. ` +
          'The freeze was released and the routing left on MySQL; the run fails. Run `ferry verify` for the whole table, then `ferry resume`',
        'CutoverItemsDiffer',
      );
    }
    // The last moment to give up: from here the freeze ends in the flip.
    stop.throwIfAborted();
    const checkedAt = performance.now();
    const flippedAt = new Date().toISOString();
    // The flip is the fence row's commit: the one source of truth, which application writes pass. The routing
    // item follows it; if this worker dies in between, a resumed run repairs the item from the row (preflight).
    await db.query(`UPDATE ${fence} SET backend = 'dynamodb', changed_at = NOW(3) WHERE name = ?`, [spec.name]);
    await db.commit();
    flipped = true;
    if (process.env.FERRY_FAULT_DIE_AFTER_FLIP === '1') process.kill(process.pid, 'SIGKILL'); // test hook: a death between the two writes
    await routingFollowsFence(dynamo, capture.routingTable, spec.name, flippedAt);
    const released = performance.now();
    const phases = { positionMs: signalled - frozenAt, drainMs: drainedAt - signalled, checkMs: checkedAt - drainedAt, flipMs: released - checkedAt };
    return { freezeMs: Math.round(released - frozenAt), phases: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round(v)])) as CutoverResult['phases'], position, flippedAt, check: { changes: check.changes, items: check.items, windowMs: check.windowMs, coveredMs: check.coveredMs } };
  } catch (err) {
    if (flipped) {
      // Flipped: the fence says DynamoDB and writes go there; only the routing item could not follow.
      throw ApplicationFailure.nonRetryable(
        `the cutover flipped (the fence row in ${schema}.${ROUTING_SOURCE_TABLE} says dynamodb and the application's writes go to DynamoDB), ` +
          `but the routing item in ${capture.routingTable} could not be updated (${(err as Error).message}); \`ferry resume ${spec.name}\` repairs it from the fence row`,
        'RoutingItemBehind',
      );
    }
    await db.rollback().catch(() => {});
    if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason ?? err;
    if (freezeDeadline.aborted && !(err instanceof ApplicationFailure)) {
      throw ApplicationFailure.nonRetryable(
        `the freeze did not finish within spec.capture.maxFreezeMs (${capture.maxFreezeMs} ms) while ${waitingFor}: ${(err as Error).message}; ` +
          'the freeze was released and the routing left on MySQL',
        'CutoverTimedOut',
      );
    }
    throw err;
  } finally {
    clearInterval(beating);
    await db.end();
  }
}

/** Seconds beyond maxFreezeMs after which MySQL drops a freeze whose worker vanished. */
const FREEZE_SESSION_MARGIN_S = 5;

/** Sets the routing item to what the fence row says after a flip, retrying throttling and blips for a minute. */
export async function routingFollowsFence(dynamo: DynamoDBClient, routingTable: string, name: string, flippedAt: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await dynamo.send(
        new UpdateItemCommand({
          TableName: routingTable,
          Key: { name: { S: name } },
          UpdateExpression: 'SET backend = :dynamodb, flippedAt = if_not_exists(flippedAt, :at)',
          ExpressionAttributeValues: { ':dynamodb': { S: 'dynamodb' }, ':at': { S: flippedAt } },
        }),
      );
      return;
    } catch (err) {
      if (attempt >= 12) throw err;
      await sleep(Math.min(5000, 100 * 2 ** attempt));
    }
  }
}

/** `work`, or a rejection with the reason once `stop` fires: for waits that take no signal of their own. */
async function untilStopped<T>(work: Promise<T>, stop: AbortSignal): Promise<T> {
  let onAbort!: () => void;
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(stop.reason as Error);
    if (stop.aborted) onAbort();
    else stop.addEventListener('abort', onAbort, { once: true });
  });
  stopped.catch(() => undefined);
  try {
    return await Promise.race([work, stopped]);
  } finally {
    stop.removeEventListener('abort', onAbort);
  }
}

/**
 * `work`'s statements on the freeze's connection (`connectionId`); one still running when `stop` fires is ended
 * with KILL QUERY from a second connection. The fence's UPDATE waits for the application transactions that hold its
 * row: without this, one that stayed open would hold the freeze, and every write queued behind it, for up to
 * innodb_lock_wait_timeout (50 s by default). A user may end its own statements without any privilege; one that
 * has already finished is not affected.
 */
async function interruptible<T>(spec: MigrationSpec, connectionId: number, stop: AbortSignal, work: () => Promise<T>): Promise<T> {
  stop.throwIfAborted();
  let killing: Promise<void> | undefined;
  const kill = () => {
    killing = (async () => {
      const other = await connectSource(spec);
      try {
        await other.query(`KILL QUERY ${Number(connectionId)}`);
      } finally {
        await other.end();
      }
    })().catch(() => undefined);
  };
  stop.addEventListener('abort', kill, { once: true });
  try {
    return await work();
  } finally {
    stop.removeEventListener('abort', kill);
    // Before the connection's next statement, which the KILL must not reach.
    await killing;
  }
}
