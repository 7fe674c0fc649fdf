/**
 * Change capture: the source's binlog, from a position recorded before any
 * export, into a Kinesis stream as one JSON record per row change
 * (src/capture/events.ts). Long-running: it heartbeats the position at the end
 * of the last transaction whose every record Kinesis acknowledged, and a retry
 * (on this worker or another) resumes there, so the stream may hold a change
 * twice but never misses one. It ends when the workflow's `captureStopAt`
 * position is shipped (docs/cdc.md).
 */
import { DeleteTableCommand, GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteStreamCommand, DescribeStreamSummaryCommand, PutRecordsCommand, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import ZongJi, { type AnyBinlogEvent, type DeleteRowsEvent, type QueryEvent, type RotateEvent, type UpdateRowsEvent, type WriteRowsEvent } from '@vlasky/zongji';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamoClient, kinesisClient, stagingS3 } from '../src/aws.js';
import type { SourceTable, Staging } from '../src/bulk/model.js';
import { binlogStatementsOf, readBinlogStatus } from '../src/capture/binlogStatements.js';
import { comparePositions, encodeBinlogRow, type CaptureEndMarker, eventVersion, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES, partitionKeyOf, type BinlogPosition, type ChangeEvent, type EventRow } from '../src/capture/events.js';
import { recentChangesKey, RecentWindow } from '../src/capture/recentChanges.js';
import { migratedTableChanged, schemaChangeOf } from '../src/capture/schemaChange.js';
import { loadConfig } from '../src/config.js';
import { failFastOnPermanent } from '../src/errors.js';
import { fullJitter } from '../src/load/writeBudget.js';
import { queryOwnWorkflow } from '../src/ownWorkflow.js';
import { driverTls, sourceTls } from '../src/mysql.js';
import { getJson, putJson } from '../src/s3.js';
import { connectSource, sourceUrl } from '../src/source.js';
import type { MigrationSpec } from '../src/spec.js';
import { openShards } from './apply.js';
import { historyProblem, readBinlogHistory } from '../src/capture/history.js';
import { captureStartKey, type RecordedStart } from '../src/capture/startRecord.js';

/** The binlog's current end: where capture starts, or where a drain must reach. */
export async function currentBinlogPosition(spec: MigrationSpec): Promise<BinlogPosition> {
  const db = await connectSource(spec);
  try {
    const statements = await binlogStatementsOf(db);
    const position = await readBinlogStatus(db, statements);
    if (!position) throw ApplicationFailure.nonRetryable(`${statements.status} returned nothing: the source writes no binlog (log_bin is off)`, 'NoBinlog');
    return position;
  } finally {
    await db.end();
  }
}

export interface CaptureStart {
  /** Where this migration's capture started: every change after it must reach the target. */
  start: BinlogPosition;
  /** Where this run's capture reads from: the start, or where an earlier run had shipped to. */
  from: BinlogPosition;
  /** True when the start was recorded by an earlier run of this migration. */
  reused: boolean;
  /** For a resumed run: what it found and what it does about it, in words. */
  note?: string;
}

/** Where the capture of an earlier run had shipped to (written while it runs), in the staging folder. */
const progressKey = (stage: Staging) => `${stage.root}/capture-progress.json`;

/**
 * Where capture starts: recorded once per migration, before any export, in the
 * staging folder (`capture.json`). A resumed run keeps that start. It goes on
 * from where the earlier run had shipped to when the stream still holds every
 * change since the start (the start is younger than the stream's retention and
 * the stream older than the start); otherwise it ships everything again from
 * the start, and says so. Either way the source's binlog must still hold the
 * position it reads from; when it does not, the changes are gone and the
 * resume is refused with what to do instead.
 */
export async function captureStart(spec: MigrationSpec, stage: Staging, stream: string): Promise<CaptureStart> {
  const config = loadConfig();
  const s3 = stagingS3(config.aws, stage);
  const key = captureStartKey(stage);
  const recorded = await getJson<RecordedStart>(s3, stage.bucket, key);
  if (!recorded) {
    const start = await currentBinlogPosition(spec);
    const db = await connectSource(spec);
    const history = await readBinlogHistory(db).finally(() => db.end());
    await putJson(s3, stage.bucket, key, { start, recordedAt: new Date().toISOString(), history } satisfies RecordedStart);
    return { start, from: start, reused: false };
  }
  await checkBinlogHistory(spec, recorded);
  const { start } = recorded;
  // Since when the stream has held every change from the start: the first run's start, or a later re-shipping.
  const startedAt = Date.parse(recorded.shippingSince ?? recorded.recordedAt);
  const summary = (await kinesisClient(config.aws).send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary!;
  const retentionHours = summary.RetentionPeriodHours ?? 24;
  const createdAt = summary.StreamCreationTimestamp?.getTime() ?? 0;
  const ageHours = (Date.now() - startedAt) / 3_600_000;
  const shipped = await getJson<{ position: BinlogPosition }>(s3, stage.bucket, progressKey(stage));
  const since = `this migration's capture started at ${formatPosition(start)} on ${recorded.recordedAt}`;
  let from = start;
  let note: string;
  if (ageHours > retentionHours - 0.25) {
    note = `${since}, ${ageHours.toFixed(1)} h ago; stream ${stream} keeps records ${retentionHours} h, so the oldest changes may be gone from it: capture ships every change again from the start`;
  } else if (createdAt > startedAt) {
    note = `${since}, before stream ${stream} was created: the changes shipped before it are gone from the stream, so capture ships every change again from the start`;
  } else {
    from = shipped?.position ?? start;
    note = `${since}; stream ${stream} still holds every change since then (it keeps records ${retentionHours} h), so capture goes on from ${formatPosition(from)}, where the earlier run had shipped to`;
  }
  const db = await connectSource(spec);
  try {
    const [logs] = (await db.query((await binlogStatementsOf(db)).logs)) as unknown as [{ Log_name: string }[]];
    if (!logs.some((l) => l.Log_name === from.file)) {
      throw ApplicationFailure.nonRetryable(
        `${note.replace(/: capture .*$|, so capture .*$/, '')}; but the source's binlog no longer has ${from.file} (it has ${logs[0]?.Log_name ?? 'none'} to ${logs.at(-1)?.Log_name ?? 'none'}; ` +
          'binlog_expire_logs_seconds purged it), so the changes made since then cannot be read any more and this migration cannot be resumed. ' +
          `Start it again under a new name (or delete s3://${stage.bucket}/${stage.root}/ and the target table), and raise binlog_expire_logs_seconds above the migration's expected duration`,
        'CaptureExpired',
      );
    }
  } finally {
    await db.end();
  }
  // Shipping everything again: from now on the stream holds every change since the start (apply's retention check).
  if (from === start) await putJson(s3, stage.bucket, key, { ...recorded, shippingSince: new Date().toISOString() } satisfies RecordedStart);
  return { start, from, reused: true, note };
}

/** Stops capture when the source's binlog is no longer the history it started on (src/capture/history.ts). */
async function checkBinlogHistory(spec: MigrationSpec, recorded: RecordedStart): Promise<void> {
  if (!recorded.history) return;
  const db = await connectSource(spec);
  const current = await readBinlogHistory(db).finally(() => db.end());
  const problem = historyProblem(recorded.history, current);
  if (!problem) return;
  throw ApplicationFailure.nonRetryable(
    `${problem}. Change versions order one binlog history, so the changes made since would compare as older than those already applied and be dropped as stale; ` +
      `capture stops instead. Point the source URL (${spec.source.urlEnv}) back at the server capture started on (${formatPosition(recorded.start)}, ${recorded.recordedAt}), ` +
      'or start the migration again under a new name: its bulk copy then reads the new server',
    'BinlogHistoryChanged',
  );
}

function formatPosition(p: BinlogPosition): string {
  return `${p.file}:${p.position}`;
}

/** After a completed run: the stream ferry created for it and the versions table go (spec.capture.cleanup). */
export async function cleanUpCapture(stream: string | undefined, versionsTable: string): Promise<void> {
  const config = loadConfig();
  if (stream) {
    await kinesisClient(config.aws)
      .send(new DeleteStreamCommand({ StreamName: stream, EnforceConsumerDeletion: true }))
      .catch((err: Error) => {
        if (err.name !== 'ResourceNotFoundException') throw err;
      });
  }
  await dynamoClient(config.aws)
    .send(new DeleteTableCommand({ TableName: versionsTable }))
    .catch((err: Error) => {
      if (err.name !== 'ResourceNotFoundException') throw err;
    });
}

export interface CaptureRequest {
  stream: string;
  start: BinlogPosition;
  /** Where to read from when no attempt of this run has a checkpoint yet (default: start). */
  from?: BinlogPosition;
  /** shardKey: the columns whose values place a change on a shard (default: the primary key). */
  tables: (Pick<SourceTable, 'schema' | 'table' | 'primaryKey'> & { shardKey?: string[] })[];
}

export interface CaptureCheckpoint {
  /** Every change before this position is in the stream. */
  position: BinlogPosition;
  events: number;
}

export interface CaptureResult {
  start: BinlogPosition;
  end: BinlogPosition;
  /** Row changes shipped by the last attempt (earlier attempts' count is carried in the checkpoint). */
  events: number;
  resumedFrom: BinlogPosition;
  largeEvents: number;
  /** Queries the last attempt sent its workflow (where to stop): at most one a second. */
  workflowQueries: number;
}

interface Transaction {
  records: PutRecordsRequestEntry[];
  end: BinlogPosition;
  /** When capture read its commit (ms). */
  at: number;
}

/**
 * How long a shipped change may wait for others to share its PutRecords call.
 * A call costs the stream more than its records do (Kinesis's own producer
 * library buffers 100 ms by default); waiting a little makes few full calls
 * of many small ones, and the stream keeps up at a lower lag.
 */
const LINGER_MS = 50;

/** Whether the source compares table names case-insensitively (lower_case_table_names 1 or 2; 0, exact, is Linux's default). */
async function tableNamesFoldCase(spec: MigrationSpec): Promise<boolean> {
  const db = await connectSource(spec);
  try {
    const [rows] = (await db.query('SELECT @@lower_case_table_names AS fold')) as unknown as [{ fold: number | string }[]];
    return Number(rows[0]?.fold ?? 0) !== 0;
  } finally {
    await db.end();
  }
}

/** The binlog's code for a YEAR column (MySQL's enum_field_types). */
const MYSQL_TYPE_YEAR = 13;

/** A server id no other replica of the source uses: derived from the workflow, away from small ids servers use. */
function replicaServerId(workflowId: string): number {
  let h = 0;
  for (const c of workflowId) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return 100_000 + (h % 1_000_000_000);
}

export async function captureChanges(spec: MigrationSpec, stage: Staging, request: CaptureRequest): Promise<CaptureResult> {
  return failFastOnPermanent('change capture', spec.name, () => captureBinlog(spec, stage, request));
}

async function captureBinlog(spec: MigrationSpec, stage: Staging, request: CaptureRequest): Promise<CaptureResult> {
  const context = Context.current();
  const config = loadConfig();
  const kinesis = kinesisClient(config.aws);
  const s3 = stagingS3(config.aws, stage);
  // Every attempt: a retry after a failover or a RESET MASTER would read another history from the old position.
  const recorded = await getJson<RecordedStart>(s3, stage.bucket, captureStartKey(stage));
  if (recorded) await checkBinlogHistory(spec, recorded);
  const dynamo = dynamoClient(config.aws);
  const checkpoint = (context.info.heartbeatDetails as CaptureCheckpoint | undefined) ?? { position: request.from ?? request.start, events: 0 };
  const resumedFrom = checkpoint.position;
  const captured = new Map(request.tables.map((t) => [`${t.schema}.${t.table}`, t]));
  const includeSchema: Record<string, string[]> = {};
  for (const t of request.tables) (includeSchema[t.schema] ??= []).push(t.table);

  let file = resumedFrom.file;
  /** Position after the last event seen; the end of the last transaction seen. */
  let seen = resumedFrom;
  let shipped = resumedFrom;
  let events = 0;
  let largeEvents = 0;
  let current: PutRecordsRequestEntry[] = [];
  const pending: Transaction[] = [];
  let pendingRecords = 0;
  let failure: Error | undefined;
  // For the cutover's check of the items changed last (src/capture/recentChanges.ts); a run without a cutover keeps none.
  const recent = spec.capture && spec.capture.cutover !== 'none' ? new RecentWindow(spec.capture.checkWindowMs, Date.now()) : undefined;

  const record = async (event: ChangeEvent): Promise<PutRecordsRequestEntry> => {
    const PartitionKey = partitionKeyOf(event.table, shardKeyOf(event.table, (event.after ?? event.before)!));
    let data = Buffer.from(JSON.stringify(event));
    if (data.length + PartitionKey.length > MAX_RECORD_BYTES) {
      // Too large for a Kinesis record: the change goes to S3, the stream carries where.
      const key = `${stage.root}/capture/large/${event.version}.json`;
      await s3.send(new PutObjectCommand({ Bucket: stage.bucket, Key: key, Body: data, ContentType: 'application/json' }));
      data = Buffer.from(JSON.stringify({ table: event.table, op: event.op, key: event.key, version: event.version, ts: event.ts, s3: key }));
      largeEvents++;
    }
    return { PartitionKey, Data: data };
  };

  const keyOf = (table: string, row: EventRow): EventRow => Object.fromEntries(captured.get(table)!.primaryKey.map((c) => [c, row[c] ?? null]));
  const shardKeyOf = (table: string, row: EventRow): EventRow => {
    const t = captured.get(table)!;
    return Object.fromEntries((t.shardKey ?? t.primaryKey).map((c) => [c, row[c] ?? null]));
  };

  // Schema changes a resumed run goes on past (the refusal below names each one's position).
  const skipDdl = new Set(spec.capture?.skipDdl ?? []);
  const foldCase = await tableNamesFoldCase(spec);

  const zongji = new ZongJi({ ...mysqlOptions(sourceUrl(spec)), dateStrings: true, timezone: 'Z' } as ConstructorParameters<typeof ZongJi>[0]);
  // Events are handled one at a time, in binlog order, even though building a record may await S3.
  let chain = Promise.resolve();
  const onEvent = async (e: AnyBinlogEvent) => {
    const name = e.getEventName();
    if (name === 'rotate') {
      file = (e as RotateEvent).binlogName;
      return;
    }
    if (name === 'writerows' || name === 'updaterows' || name === 'deleterows') {
      const rowsEvent = e as WriteRowsEvent | UpdateRowsEvent | DeleteRowsEvent;
      const map = rowsEvent.tableMap[rowsEvent.tableId]!;
      const table = `${map.parentSchema}.${map.tableName}`;
      if (!captured.has(table)) return;
      const eventOffset = e.nextPosition; // unique per event and increasing within a file
      const ts = e.timestamp;
      const yearColumns = (map.columns ?? []).filter((c) => c.type === MYSQL_TYPE_YEAR).map((c) => c.name);
      const encode = (row: Record<string, unknown>) => encodeBinlogRow(row, yearColumns);
      for (let i = 0; i < rowsEvent.rows.length; i++) {
        const version = eventVersion(file, eventOffset, i);
        let change: ChangeEvent;
        if (name === 'updaterows') {
          const row = (rowsEvent as UpdateRowsEvent).rows[i]!;
          const before = encode(row.before);
          const after = encode(row.after);
          change = { table, op: 'update', key: keyOf(table, after), before, after, version, ts };
        } else {
          const image = encode((rowsEvent as WriteRowsEvent).rows[i]!);
          change = name === 'writerows' ? { table, op: 'insert', key: keyOf(table, image), after: image, version, ts } : { table, op: 'delete', key: keyOf(table, image), before: image, version, ts };
        }
        current.push(await record(change));
        recent?.add({ table, before: change.before, after: change.after }, Date.now());
        events++;
      }
      return;
    }
    if (name === 'query') {
      const { query, schema } = e as QueryEvent;
      if (/^\s*BEGIN\b/i.test(query)) return;
      const change = schemaChangeOf(query, schema);
      const changed = migratedTableChanged(change, request.tables, foldCase);
      if (change && changed) {
        const at = `${file}:${e.nextPosition}`;
        if (skipDdl.has(at)) {
          context.log.warn(`capture: passing the schema change at ${at} (${change.statement} ${changed.schema}.${changed.table}), as capture.skipDdl says`);
        } else {
          throw ApplicationFailure.nonRetryable(
            `the schema of migrated table ${changed.schema}.${changed.table} changed during the migration: ${change.statement} at ${at} ` +
              `(${JSON.stringify(query.slice(0, 200))}); ferry does not follow schema changes. Either start a new migration (a new name) after the change, ` +
              `or, if the target may stay as it is (the change alters nothing migrated; after a TRUNCATE or DROP the target keeps the rows), ` +
              `go on past this one statement: \`ferry resume ${spec.name} --skip-ddl ${at}\``,
            'SchemaChanged',
          );
        }
      }
    }
    if (name === 'xid' || name === 'query') {
      const end = { file, position: e.nextPosition };
      if (current.length) {
        pending.push({ records: current, end, at: Date.now() });
        pendingRecords += current.length;
        current = [];
      } else if (pending.length === 0) {
        shipped = end; // a transaction with nothing of ours: nothing to wait for
      }
      seen = end;
    }
  };
  zongji.on('binlog', (e: AnyBinlogEvent) => {
    chain = chain.then(() => onEvent(e)).catch((err: Error) => {
      failure ??= err;
    });
    if (pendingRecords > 50_000) zongji.connection?.pause();
  });
  zongji.on('error', (err: Error) => (failure ??= err));
  zongji.start({
    serverId: replicaServerId(context.info.workflowExecution?.workflowId ?? 'ferry'),
    filename: resumedFrom.file,
    position: resumedFrom.position,
    includeEvents: ['rotate', 'tablemap', 'writerows', 'updaterows', 'deleterows', 'xid', 'query'],
    includeSchema,
  });

  const ship = async (batch: PutRecordsRequestEntry[]) => {
    let todo = batch;
    for (let attempt = 0; todo.length; attempt++) {
      if (attempt > 0) await sleep(fullJitter(attempt));
      try {
        // Aborted on cancellation: a stream that stopped answering must not keep an aborted run waiting. Records this
        // call may still have written are shipped again by whatever run goes on from `shipped` (at least once).
        const response = await kinesis.send(new PutRecordsCommand({ StreamName: request.stream, Records: todo }), { abortSignal: context.cancellationSignal });
        todo = todo.filter((_, i) => response.Records?.[i]?.ErrorCode);
      } catch (err) {
        if (!['ProvisionedThroughputExceededException', 'LimitExceededException', 'ThrottlingException', 'InternalFailure', 'ServiceUnavailable'].includes((err as Error).name)) throw err;
      }
    }
  };

  // On a clock, not per loop: shipping one large transaction can take longer than the heartbeat timeout, and
  // a capture that looked dead would be retried from the same position forever. `shipped` only moves once a
  // transaction is wholly in the stream, so any moment's value is a safe checkpoint.
  const beating = setInterval(() => context.heartbeat({ position: shipped, events: checkpoint.events + events } satisfies CaptureCheckpoint), 1000);
  let lastSaved = 0;
  let lastStopCheck = 0;
  let lastQuery = 0;
  let workflowQueries = 0;
  let asking: Promise<void> | undefined;
  let reading: Promise<void> | undefined;
  const runId = context.info.workflowExecution?.runId ?? '';
  let stopAt: BinlogPosition | undefined;
  try {
    for (;;) {
      if (failure) throw failure;
      if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
      // Ship once the oldest change has waited LINGER_MS, a call is full, or a stop position is known (the drain).
      if (pending.length && (stopAt || pendingRecords >= MAX_BATCH_RECORDS || Date.now() - pending[0]!.at >= LINGER_MS)) {
        // One batch: whole transactions while they fit, splitting only a transaction larger than a batch.
        const batch: PutRecordsRequestEntry[] = [];
        let bytes = 0;
        let done = 0;
        for (const txn of pending) {
          const size = txn.records.reduce((n, r) => n + (r.Data?.length ?? 0) + (r.PartitionKey?.length ?? 0), 0);
          if (batch.length && (batch.length + txn.records.length > MAX_BATCH_RECORDS || bytes + size > MAX_BATCH_BYTES)) break;
          if (txn.records.length > MAX_BATCH_RECORDS || size > MAX_BATCH_BYTES) {
            // A transaction larger than one call: ship it in slices; it counts once all slices are in.
            for (let i = 0; i < txn.records.length; ) {
              const slice: PutRecordsRequestEntry[] = [];
              let sliceBytes = 0;
              while (i < txn.records.length && slice.length < MAX_BATCH_RECORDS && sliceBytes + txn.records[i]!.Data!.length + 256 <= MAX_BATCH_BYTES) {
                sliceBytes += txn.records[i]!.Data!.length + 256;
                slice.push(txn.records[i++]!);
              }
              await ship(slice);
            }
            done++;
            break;
          }
          batch.push(...txn.records);
          bytes += size;
          done++;
        }
        if (batch.length) await ship(batch);
        const finished = pending.splice(0, done);
        pendingRecords -= finished.reduce((n, t) => n + t.records.length, 0);
        // With nothing left pending, everything seen is shipped: transactions with nothing of ours that came in
        // meanwhile count too. Otherwise a last such transaction (a cutover fence's commit) would keep `shipped`
        // behind `seen` until the next change, and capture could not reach its stop position on a quiet source.
        shipped = pending.length ? finished.at(-1)!.end : seen;
        if (pendingRecords < 10_000) zongji.connection?.resume();
      } else {
        await sleep(10);
      }
      const now = Date.now();
      recent?.prune(now);
      if (now - lastSaved > 5000) {
        // For a later run of this migration (ferry resume): heartbeats live only as long as this run.
        lastSaved = now;
        await putJson(s3, stage.bucket, progressKey(stage), { position: shipped, at: new Date(now).toISOString() });
      }
      // In the background: shipping does not wait on the answers. The workflow says where to stop (the end of a
      // run without cutover, or the freeze's position): asked once a second, since each Query is billed as an
      // Action on Temporal Cloud. A cutover's freeze also writes the position to the routing item, read often:
      // the freeze lasts until this loop notices it, and the item answers in milliseconds.
      if (now - lastQuery >= QUERY_EVERY_MS) {
        lastQuery = now;
        if (!asking) {
          workflowQueries++;
          asking = captureStopAt(context)
            .then((answer) => void (stopAt = answer ?? stopAt), () => undefined)
            .finally(() => (asking = undefined));
        }
      }
      if (now - lastStopCheck > 50) {
        lastStopCheck = now;
        reading ??= fenceStopAt(dynamo, spec, runId)
          .then((answer) => void (stopAt ??= answer), () => undefined)
          .finally(() => (reading = undefined));
      }
      if (stopAt && pending.length === 0 && current.length === 0 && comparePositions(seen, stopAt) >= 0 && comparePositions(shipped, seen) >= 0) {
        // Before the markers: a freeze that saw every shard drained finds the list of what changed last.
        if (recent) await putJson(s3, stage.bucket, recentChangesKey(stage, runId), recent.snapshot(Date.now(), stopAt));
        // In band: each shard's reader finishes on reading its marker, without asking the workflow.
        await ship(await endMarkers(request.stream, runId, stopAt, context.cancellationSignal));
        break;
      }
    }
  } finally {
    clearInterval(beating);
    zongji.stop();
    // Also when the run fails or is cancelled: a resumed run goes on from here.
    await putJson(s3, stage.bucket, progressKey(stage), { position: shipped, at: new Date().toISOString() }).catch(() => undefined);
  }
  context.heartbeat({ position: shipped, events: checkpoint.events + events } satisfies CaptureCheckpoint);
  return { start: request.start, end: shipped, events, resumedFrom, largeEvents, workflowQueries };
}

/**
 * One record per open shard, after everything capture shipped to it: the run
 * `runId` captured everything up to `position`. A shard's records stay in
 * order, so its reader has seen every change once it reads the marker.
 */
async function endMarkers(stream: string, runId: string, position: BinlogPosition, abortSignal: AbortSignal): Promise<PutRecordsRequestEntry[]> {
  const marker: CaptureEndMarker = { marker: 'capture-complete', runId, position };
  return (await openShards(stream, abortSignal)).map((shard) => ({ PartitionKey: 'ferry-capture-complete', ExplicitHashKey: shard.HashKeyRange!.StartingHashKey, Data: Buffer.from(JSON.stringify(marker)) }));
}

/** The stop position a cutover's freeze wrote to the routing item for run `runId`, if any. */
async function fenceStopAt(dynamo: DynamoDBClient, spec: MigrationSpec, runId: string): Promise<BinlogPosition | undefined> {
  if (!spec.capture || spec.capture.cutover === 'none') return undefined;
  const { Item } = await dynamo.send(
    new GetItemCommand({ TableName: spec.capture.routingTable, Key: { name: { S: spec.name } }, ConsistentRead: true, ProjectionExpression: 'stopAt' }),
  );
  const stop = Item?.stopAt?.S ? (JSON.parse(Item.stopAt.S) as { runId: string; position: BinlogPosition }) : undefined;
  return stop?.runId === runId ? stop.position : undefined;
}

/** Where the workflow wants capture to stop (once everything before it is shipped); undefined: keep going. */
/** How often capture asks its workflow where to stop. */
const QUERY_EVERY_MS = 1000;

function captureStopAt(context: Context): Promise<BinlogPosition | undefined> {
  return queryOwnWorkflow<BinlogPosition | undefined>(context, 'captureStopAt', undefined);
}

function mysqlOptions(url: string) {
  const u = new URL(url);
  const ssl = driverTls(sourceTls(u));
  return { host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), ...(ssl ? { ssl } : {}) };
}
