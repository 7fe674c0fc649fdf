/**
 * Change-capture benchmark, on the local stack, all in one run on one machine:
 *
 * 1. Capture and apply throughput. A migration with capture copies a seeded
 *    table and waits in catch-up; then a burst of row changes (whole-table
 *    UPDATEs, written faster than any capture reads them) hits the table.
 *    Capture events/s: the burst over the time from its start to the last
 *    record's Kinesis arrival. Capture → apply events/s: the burst over the
 *    time until the target holds its final state.
 *    Capture is measured a second time with the same burst while the bulk
 *    copy is held (paused): apply does not read a table's changes before its
 *    load, so the stream has no reader then, as the baseline's has none.
 *    kinesis-mock is restarted before each of these and the baseline.
 * 2. The baseline, the seed's approach on the same binlog range: Python's
 *    mysql-replication reading it, one boto3 put_record per event
 *    (bench/cdc_baseline.py, in a virtualenv this makes).
 * 3. Apply lag at a steady rate (500 changes/s by default) during catch-up,
 *    in windows (3 of 10 s by default), each on a fresh migration and stream:
 *    each probed change's time from its commit to being visible in DynamoDB
 *    (one consistent BatchGetItem of every waiting probe every 10 ms): p50
 *    and p99, and how much of it was capture (commit → Kinesis arrival) and
 *    apply (arrival → visible).
 * 4. The cutover freeze: several migrations (5 by default) of a small table,
 *    each cut over while a writer makes 200 writes/s through the fence: the
 *    freeze in ms as the report gives it, p50 and max.
 *
 *   npm run bench:cdc
 *   npm run bench:cdc -- --burst 5000 --baseline-events 2000 --lag-windows 1 --cutovers 2
 *
 * Options: --rows, --burst, --baseline-events, --shards (capture run),
 * --lag-rate, --lag-seconds (per window), --lag-windows, --lag-shards, --cutovers, --freeze-rate, --cutover-shards, and
 * --parts (a comma list of capture, lag, cutover: the parts to run; capture
 * includes the baseline).
 */
import { BatchGetItemCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, DeleteStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, type _Record as KinesisRecord } from '@aws-sdk/client-kinesis';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { dynamoClient, kinesisClient } from '../src/aws.js';
import { comparePositions, type BinlogPosition } from '../src/capture/events.js';
import { createFence, FerryClient, withSourceWrite, type MigrationHandle, type MigrationSpecInput } from '../src/client.js';
import { LOCAL_REGION, loadConfig } from '../src/config.js';
import { connectMysql, type MysqlConnection } from '../src/mysql.js';
import { runCommand } from '../src/stack/install.js';
import { idMapping, ROOT, runFerry, startWorkerProcess, stopProcess, uniqueName } from '../test/helpers.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '5000' },
    burst: { type: 'string', default: '20000' },
    'baseline-events': { type: 'string', default: '20000' },
    shards: { type: 'string', default: '16' },
    'lag-rate': { type: 'string', default: '500' },
    'lag-seconds': { type: 'string', default: '10' },
    'lag-windows': { type: 'string', default: '3' },
    'lag-shards': { type: 'string', default: '4' },
    cutovers: { type: 'string', default: '5' },
    'freeze-rate': { type: 'string', default: '200' },
    'cutover-shards': { type: 'string', default: '1' },
    'cutover-rows': { type: 'string', default: '2000' },
    parts: { type: 'string', default: 'capture,lag,cutover' },
  },
});
const ROWS = Number(args.rows);
const ROUNDS = Math.max(1, Math.round(Number(args.burst) / ROWS));
const BURST = ROUNDS * ROWS;
const BASELINE_EVENTS = Math.min(Number(args['baseline-events']), BURST);
const SHARDS = Number(args.shards);
const LAG_RATE = Number(args['lag-rate']);
const LAG_SECONDS = Number(args['lag-seconds']);
const LAG_WINDOWS = Number(args['lag-windows']);
/** 500 changes/s fit one shard (1,000 records/s); each shard adds a reader polling the stream five times a second. */
const LAG_SHARDS = Number(args['lag-shards']);
const CUTOVERS = Number(args.cutovers);
const FREEZE_RATE = Number(args['freeze-rate']);
/** Rows of the table cut over; the writer changes the first 2,000 whatever the size, so the freeze's check sees the same changes. */
const CUTOVER_ROWS = Number(args['cutover-rows']);
/** 200 writes/s fit one shard (1,000 records/s); every shard adds a reader the drain waits for. */
const CUTOVER_SHARDS = Number(args['cutover-shards']);
const PARTS = new Set(args.parts.split(',').map((part) => part.trim()));
for (const part of PARTS) if (!['capture', 'lag', 'cutover'].includes(part)) throw new Error(`--parts: unknown part ${part}; the parts are capture, lag and cutover`);
/** Writer connections: commits wait on the binlog's fsync, so one connection makes only ~50 a second. */
const CONNECTIONS = 16;

const config = loadConfig();
const DATABASE = 'ferry_bench';
const say = (line: string) => console.log(`bench: ${line}`);
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const kinesis = kinesisClient(config.aws);
const dynamo = dynamoClient(config.aws);

async function query(sql: string): Promise<unknown> {
  const db = await connectMysql(config.mysqlUrl);
  try {
    return (await db.query(sql))[0];
  } finally {
    await db.end();
  }
}

async function binlogPosition(): Promise<BinlogPosition> {
  const [row] = (await query('SHOW MASTER STATUS')) as { File: string; Position: number }[];
  return { file: row!.File, position: Number(row!.Position) };
}

/** A fresh `ferry_bench.TABLE(id, v, note)` of `rows` rows. */
async function seed(table: string, rows: number): Promise<void> {
  await query(`CREATE DATABASE IF NOT EXISTS ${DATABASE}`);
  await query(`DROP TABLE IF EXISTS ${DATABASE}.${table}`);
  await query(`CREATE TABLE ${DATABASE}.${table} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40))`);
  await query(`INSERT INTO ${DATABASE}.${table} SELECT seq, 0, 'seed' FROM seq_1_to_${rows}`);
}

function spec(name: string, table: string, target: string, cutover: 'manual', shards = SHARDS): MigrationSpecInput {
  return {
    name,
    source: { database: DATABASE },
    mapping: idMapping(DATABASE, table, target),
    target: { create: true },
    bulk: { partitions: 1, concurrency: 1 },
    capture: { createStream: true, shards, cutover, maxLagMs: 1_000, cleanup: true },
  };
}

async function waitForPhase(migration: MigrationHandle, phase: string): Promise<number> {
  for (let i = 0; ; i++) {
    const p = await migration.progress().catch(() => undefined);
    if (p?.phase === phase) return Date.now();
    if (p?.phase === 'failed' || i > 6000) throw new Error(`the migration never reached ${phase} (${p?.phase}: ${p?.error ?? ''})`);
    await sleep(100);
  }
}

/** Every record of the stream, shard after shard from the start, read until each shard is quiet. */
async function streamRecords(stream: string): Promise<KinesisRecord[]> {
  const { Shards = [] } = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  const records: KinesisRecord[] = [];
  for (const shard of Shards) {
    let iterator = (await kinesis.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    for (let empty = 0; iterator && empty < 3; ) {
      const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      records.push(...(page.Records ?? []));
      empty = page.Records?.length ? 0 : empty + 1;
      iterator = page.NextShardIterator;
    }
  }
  return records;
}

/** Every record's Kinesis arrival time (ms), over all shards. */
async function arrivals(stream: string): Promise<number[]> {
  return (await streamRecords(stream)).map((r) => r.ApproximateArrivalTimestamp!.getTime()).sort((a, b) => a - b);
}

/** True once every item of `target` has v = `v`. */
async function allAt(target: string, v: number): Promise<boolean> {
  let start: Record<string, AttributeValue> | undefined;
  let seen = 0;
  do {
    const page = await dynamo.send(new ScanCommand({ TableName: target, ExclusiveStartKey: start, ConsistentRead: true, ProjectionExpression: 'v' }));
    for (const item of page.Items ?? []) {
      if (item.v?.N !== String(v)) return false;
      seen++;
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return seen === ROWS;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Throughput {
  captureRate: number;
  applyRate: number;
  burstStart: BinlogPosition;
}

/**
 * kinesis-mock holds every stream and record it was given in one
 * single-threaded process and its calls slow as they add up: each capture
 * measurement starts it afresh, so no side inherits another's records.
 */
async function freshKinesis(): Promise<void> {
  for (const args of [['stack', 'down', 'kinesis'], ['stack', 'up', 'kinesis']]) {
    const run = await runFerry(args);
    if (run.code !== 0) throw new Error(`ferry ${args.join(' ')} failed:\n${run.stdout}${run.stderr}`);
  }
}

/** The burst: ROUNDS whole-table UPDATEs of the cdc table, as fast as MySQL takes them. */
async function writeBurst(during: string): Promise<{ burstStart: BinlogPosition; burstEnd: BinlogPosition; written: number }> {
  const burstStart = await binlogPosition();
  const written = Date.now();
  for (let round = 0; round < ROUNDS; round++) await query(`UPDATE ${DATABASE}.cdc SET v = v + 1`);
  const writtenSeconds = (Date.now() - written) / 1000;
  say(`burst${during}: ${fmt(BURST)} row changes (${ROUNDS} updates of all ${fmt(ROWS)} rows) written in ${writtenSeconds.toFixed(2)} s from ${burstStart.file}:${burstStart.position}`);
  return { burstStart, burstEnd: await binlogPosition(), written };
}

/** Capture's rate for the burst begun at `written`: from then to the last record's arrival in the run's stream, which holds only the burst. */
async function captureRate(name: string, written: number, during: string): Promise<number> {
  const times = await arrivals(`ferry-${name}`);
  if (times.length !== BURST) throw new Error(`${times.length} records in the stream, not the burst's ${BURST} changes`);
  const captureSeconds = (times.at(-1)! - written) / 1000;
  say(`ferry capture${during}: ${fmt(BURST)} changes into ${SHARDS} shards, the last one in the stream ${captureSeconds.toFixed(2)} s after the burst began = ${fmt(BURST / captureSeconds)} events/s`);
  return BURST / captureSeconds;
}

/**
 * Part 1a: the same burst while the bulk copy is held before its first
 * partition (paused): capture ships it while apply reads nothing yet (it waits
 * for the table's load), as in a migration's bulk phase and as the baseline's
 * stream, which has no reader. Capture's progress is watched through its
 * heartbeat, not by reading the stream, which would load the mock.
 */
async function captureDuringBulk(ferry: FerryClient, name: string, target: string): Promise<{ captureRate: number; burstStart: BinlogPosition; migration: MigrationHandle }> {
  await seed('cdc', ROWS);
  const migration = await ferry.startMigration(spec(name, 'cdc', target, 'manual'));
  await migration.pause();
  await waitForPhase(migration, 'bulk');
  await sleep(2000);
  const { burstStart, burstEnd, written } = await writeBurst(' during the bulk copy');
  const converter = ferry.client.options.loadedDataConverter.payloadConverter;
  for (;;) {
    const description = await ferry.client.workflow.getHandle(name).describe();
    const capture = description.raw.pendingActivities?.find((a) => a.activityType?.name === 'captureChanges')?.heartbeatDetails?.payloads?.[0];
    const shipped = capture ? converter.fromPayload<{ position: BinlogPosition }>(capture).position : undefined;
    if (shipped && comparePositions(shipped, burstEnd) >= 0) break;
    if (Date.now() - written > 600_000) throw new Error('capture did not ship the burst in 10 minutes');
    await sleep(500);
  }
  const progress = await migration.progress();
  if (progress.tables.some((t) => t.partitionsDone > 0) || progress.partitionsRunning.length) throw new Error('the bulk copy was not held: a partition started before the pause');
  return { captureRate: await captureRate(name, written, ' during the bulk copy'), burstStart, migration };
}

/** Part 1: the burst, captured and applied during catch-up; leaves the migration in catch-up for part 3. */
async function throughput(ferry: FerryClient, name: string, target: string): Promise<Throughput & { migration: MigrationHandle }> {
  await seed('cdc', ROWS);
  const migration = await ferry.startMigration(spec(name, 'cdc', target, 'manual'));
  await waitForPhase(migration, 'catch-up');
  await sleep(2000); // apply idle at the stream's (empty) tip

  const { burstStart, written } = await writeBurst('');
  let applied = 0;
  for (;;) {
    if (await allAt(target, ROUNDS)) {
      applied = Date.now();
      break;
    }
    if (Date.now() - written > 600_000) throw new Error('apply did not reach the burst’s final state in 10 minutes');
    await sleep(200);
  }
  // The stream holds only the burst: the table was seeded before the migration started.
  const rate = await captureRate(name, written, '');
  const applySeconds = (applied - written) / 1000;
  say(`ferry capture → apply: the target held the burst's final state ${applySeconds.toFixed(2)} s after it began = ${fmt(BURST / applySeconds)} events/s`);
  return { captureRate: rate, applyRate: BURST / applySeconds, burstStart, migration };
}

/** Part 2: python-mysql-replication + boto3, one put_record per event, on the burst's binlog range. */
async function baseline(burstStart: BinlogPosition): Promise<number> {
  const venv = path.join(config.stackDir, 'bench-python');
  const python = path.join(venv, 'bin', 'python');
  if (!fs.existsSync(python)) {
    say(`baseline: making a Python virtualenv with mysql-replication and boto3 in ${venv}`);
    await runCommand('bench', 'python3', ['-m', 'venv', venv]);
    await runCommand('bench', path.join(venv, 'bin', 'pip'), ['install', '--quiet', 'mysql-replication==1.0.17', 'boto3==1.44.5']);
  }
  const stream = uniqueName('bench-baseline');
  await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: SHARDS }));
  for (let i = 0; (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary?.StreamStatus !== 'ACTIVE'; i++) {
    if (i > 300) throw new Error(`stream ${stream} never became active`);
    await sleep(100);
  }
  try {
    const url = new URL(config.mysqlUrl);
    const output = await runCommand('bench', python, [
      path.join(ROOT, 'bench', 'cdc_baseline.py'),
      '--host', url.hostname, '--port', url.port || '3306', '--user', decodeURIComponent(url.username), '--password', decodeURIComponent(url.password),
      '--schema', DATABASE, '--table', 'cdc', '--file', burstStart.file, '--position', String(burstStart.position),
      '--stream', stream, '--endpoint', config.aws.endpoints.kinesis!, '--region', config.aws.region ?? LOCAL_REGION, '--events', String(BASELINE_EVENTS),
    ]);
    const result = JSON.parse(output.trim().split('\n').at(-1)!) as { events: number; seconds: number };
    say(`baseline (python-mysql-replication, boto3 put_record per event): ${fmt(result.events)} changes in ${result.seconds.toFixed(2)} s = ${fmt(result.events / result.seconds)} events/s`);
    return result.events / result.seconds;
  } finally {
    await kinesis.send(new DeleteStreamCommand({ StreamName: stream })).catch(() => undefined);
  }
}

/**
 * Writes `rate` changes/s (CONNECTIONS connections, each change due at its slot) for
 * `seconds`, each through `write`; returns what each change did when.
 */
async function paced(rate: number, seconds: number, write: (db: MysqlConnection, n: number) => Promise<boolean>, stop?: { now: boolean }): Promise<{ writes: number; fenced: boolean }> {
  const dbs = await Promise.all(Array.from({ length: CONNECTIONS }, () => connectMysql(config.mysqlUrl)));
  const started = Date.now();
  const total = Math.round(rate * seconds);
  let next = 0;
  let writes = 0;
  let fenced = false;
  try {
    await Promise.all(
      dbs.map(async (db) => {
        while (next < total && !fenced && !stop?.now) {
          const n = next++;
          const due = started + (n * 1000) / rate;
          if (due > Date.now()) await sleep(due - Date.now());
          if (!(await write(db, n))) fenced = true;
          else writes++;
        }
      }),
    );
  } finally {
    await Promise.all(dbs.map((db) => db.end()));
  }
  return { writes, fenced };
}

interface Lag {
  p50: number;
  p99: number;
  max: number;
  samples: number;
  achieved: number;
  /** Each probed change: its note, commit time and when it was seen in DynamoDB (ms). */
  probes: { note: string; committed: number; visible: number }[];
}

/** Part 3: apply lag at a steady rate: commit → visible in DynamoDB, for probed changes. */
/** `tag` makes the window's notes its own: a row the bulk copied may hold an earlier window's. */
async function lag(target: string, tag: string): Promise<Lag> {
  const lags: number[] = [];
  const seen: Lag['probes'] = [];
  /** Probed changes not yet visible, by row id. */
  const waiting = new Map<number, { note: string; committed: number }>();
  let lastProbe = 0;
  let writing = true;
  // One reader for every probe, one consistent BatchGetItem every 10 ms: a GetItem loop per probe would load
  // DynamoDB Local (the system measured) with hundreds of reads a second.
  const watching = (async () => {
    while (writing || waiting.size) {
      const ids = [...waiting.keys()].slice(0, 100);
      if (ids.length) {
        const { Responses } = await dynamo.send(
          new BatchGetItemCommand({ RequestItems: { [target]: { Keys: ids.map((id) => ({ id: { N: String(id) } })), ConsistentRead: true, ProjectionExpression: 'id, note' } } }),
        );
        const now = Date.now();
        for (const item of Responses?.[target] ?? []) {
          const id = Number(item.id!.N);
          const probe = waiting.get(id);
          if (probe && item.note?.S === probe.note) {
            waiting.delete(id);
            seen.push({ ...probe, visible: now });
            lags.push(now - probe.committed);
          }
        }
        for (const [id, probe] of waiting) {
          if (now - probe.committed > 30_000) {
            waiting.delete(id);
            lags.push(Infinity);
          }
        }
      }
      await sleep(10);
    }
  })();
  const started = Date.now();
  const result = await paced(LAG_RATE, LAG_SECONDS, async (db, n) => {
    const id = (n % ROWS) + 1;
    const note = `lag ${tag} ${n}`;
    await db.query(`UPDATE ${DATABASE}.cdc SET note = ? WHERE id = ?`, [note, id]);
    const committed = Date.now();
    if (committed - lastProbe >= 100 && !waiting.has(id)) {
      lastProbe = committed;
      waiting.set(id, { note, committed });
    }
    return true;
  });
  const achieved = result.writes / ((Date.now() - started) / 1000);
  writing = false;
  await watching;
  const sorted = lags.sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1)!, samples: sorted.length, achieved, probes: seen };
}

/**
 * Where the probed changes' lag went: commit → Kinesis arrival (capture) and
 * arrival → visible (apply), from each probe's record in the stream.
 */
async function lagSplit(stream: string, probes: Lag['probes']): Promise<{ capture: number[]; apply: number[] }> {
  const byNote = new Map(probes.map((p) => [p.note, p]));
  const capture: number[] = [];
  const apply: number[] = [];
  for (const r of await streamRecords(stream)) {
    const note = (JSON.parse(Buffer.from(r.Data!).toString('utf8')) as { after?: { note?: string } }).after?.note;
    const probe = note === undefined ? undefined : byNote.get(note);
    if (!probe) continue;
    const arrived = r.ApproximateArrivalTimestamp!.getTime();
    capture.push(arrived - probe.committed);
    apply.push(probe.visible - arrived);
  }
  return { capture: capture.sort((a, b) => a - b), apply: apply.sort((a, b) => a - b) };
}

/** Part 4: one cutover of a fresh small migration while a writer makes FREEZE_RATE writes/s through the fence. */
async function cutoverOnce(ferry: FerryClient, index: number): Promise<number> {
  const name = uniqueName('bench-cut');
  const migration = await ferry.startMigration(spec(name, 'cdc_cut', uniqueName('bench_cut'), 'manual', CUTOVER_SHARDS));
  const stop = { now: false };
  let fenced = false;
  const writing = paced(FREEZE_RATE, 600, async (db, n) => {
    // The writer may start before the migration's preflight has made the fence.
    if (!fenced) await createFence(db, name, DATABASE);
    fenced = true;
    return withSourceWrite(db, name, async (tx) => {
      await tx.query(`UPDATE ${DATABASE}.cdc_cut SET v = v + 1, note = ? WHERE id = ?`, [`w${n}`, (n % 2000) + 1]);
    }, DATABASE);
  },
  stop);
  try {
    await waitForPhase(migration, 'catch-up');
    let result: Awaited<ReturnType<MigrationHandle['approveCutover']>> | undefined;
    for (let i = 0; result === undefined; i++) {
      try {
        result = await migration.approveCutover();
      } catch (err) {
        if (!/approve again/.test((err as Error).message) || i > 120) throw err;
        await sleep(500);
      }
    }
    const written = await writing;
    await migration.result();
    const freezeMs = result.freezeMs;
    say(`cutover ${index + 1}: froze writes for ${freezeMs} ms (${Object.entries(result.phases).map(([k, v]) => `${k.replace(/Ms$/, '')} ${v}`).join(', ')} ms; the check compared ${fmt(result.check.items)} items touched by ${fmt(result.check.changes)} changes); the writer made ${fmt(written.writes)} writes to MySQL, then the fence sent it to DynamoDB (${written.fenced})`);
    return freezeMs;
  } finally {
    stop.now = true;
    await writing.catch(() => undefined);
  }
}

async function main(): Promise<void> {
  say(`machine: ${os.cpus().length} cores, ${fmt(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model ?? 'unknown CPU'}; node ${process.version}`);
  say(`settings: ${fmt(ROWS)} rows, burst ${fmt(BURST)} changes, ${SHARDS} shards, lag at ${LAG_RATE} changes/s for ${LAG_WINDOWS} × ${LAG_SECONDS} s on ${LAG_SHARDS} shards, ${CUTOVERS} cutovers of ${fmt(CUTOVER_ROWS)} rows at ${FREEZE_RATE} writes/s on ${CUTOVER_SHARDS} shard(s)`);
  const up = await runFerry(['stack', 'up']);
  if (up.code !== 0) throw new Error(`ferry stack up failed:\n${up.stdout}${up.stderr}`);

  const taskQueue = uniqueName('bench-cdc');
  const worker: ChildProcess = await startWorkerProcess(taskQueue, { FERRY_LOG_LEVEL: 'WARN' });
  const ferry = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } });
  try {
    const stopRun = async (name: string, migration: MigrationHandle) => {
      await ferry.client.workflow.getHandle(name).cancel();
      await migration.result().catch(() => undefined);
      await kinesis.send(new DeleteStreamCommand({ StreamName: `ferry-${name}` })).catch(() => undefined);
    };
    const rows: string[] = [];
    if (PARTS.has('capture')) {
      await freshKinesis();
      const heldName = uniqueName('bench-cdc');
      const held = await captureDuringBulk(ferry, heldName, uniqueName('bench_cdc'));
      await stopRun(heldName, held.migration);
      await freshKinesis();
      const name = uniqueName('bench-cdc');
      const run = await throughput(ferry, name, uniqueName('bench_cdc'));
      await stopRun(name, run.migration);
      await freshKinesis();
      const baselineRate = await baseline(held.burstStart);
      const ratio = (rate: number) => `${(rate / baselineRate).toFixed(1)}×`;
      const against = `mysql-replication + boto3 put_record ${fmt(baselineRate)}`;
      rows.push(`| capture events/s during the bulk copy (binlog → Kinesis, ${SHARDS} shards, apply not reading yet) | ${fmt(held.captureRate)} | ${against} | ${ratio(held.captureRate)} (goal ≥ 5×) |`);
      rows.push(`| capture events/s during catch-up (apply reading the same ${SHARDS} shards on the one mock) | ${fmt(run.captureRate)} | ${against} | ${ratio(run.captureRate)} |`);
      rows.push(`| capture → apply events/s (catch-up) | ${fmt(run.applyRate)} | | |`);
    }

    if (PARTS.has('lag')) {
      // Each window on a fresh migration and stream: kinesis-mock's PutRecords slows with every record a shard holds
      // (docs/benchmarks.md), which real Kinesis does not; one long window would measure that more than ferry.
      await seed('cdc', ROWS);
      const lags: number[] = [];
      const split = { capture: [] as number[], apply: [] as number[] };
      let achieved = 0;
      for (let window = 1; window <= LAG_WINDOWS; window++) {
        const lagName = uniqueName('bench-lag');
        const lagTarget = uniqueName('bench_lag');
        const lagRun = await ferry.startMigration(spec(lagName, 'cdc', lagTarget, 'manual', LAG_SHARDS));
        await waitForPhase(lagRun, 'catch-up');
        await sleep(2000);
        const steady = await lag(lagTarget, `w${window}`);
        const parts = await lagSplit(`ferry-${lagName}`, steady.probes);
        await stopRun(lagName, lagRun);
        say(
          `apply lag, window ${window} of ${LAG_WINDOWS} (${LAG_SECONDS} s at ${LAG_RATE} changes/s, achieved ${fmt(steady.achieved)}/s, ${steady.samples} probes): ` +
            `p50 ${fmt(steady.p50)} ms, p99 ${fmt(steady.p99)} ms, max ${fmt(steady.max)} ms; capture (commit → in Kinesis) p50 ${fmt(percentile(parts.capture, 50))} / p99 ${fmt(percentile(parts.capture, 99))} ms, ` +
            `apply (in Kinesis → visible) p50 ${fmt(percentile(parts.apply, 50))} / p99 ${fmt(percentile(parts.apply, 99))} ms`,
        );
        lags.push(...steady.probes.map((p) => p.visible - p.committed), ...Array<number>(steady.samples - steady.probes.length).fill(Infinity));
        split.capture.push(...parts.capture);
        split.apply.push(...parts.apply);
        achieved += steady.achieved / LAG_WINDOWS;
      }
      const sorted = lags.sort((a, b) => a - b);
      for (const part of [split.capture, split.apply]) part.sort((a, b) => a - b);
      say(
        `apply lag at ${LAG_RATE} changes/s (achieved ${fmt(achieved)}/s), ${LAG_WINDOWS} × ${LAG_SECONDS} s, ${sorted.length} probed changes: p50 ${fmt(percentile(sorted, 50))} ms, p99 ${fmt(percentile(sorted, 99))} ms, max ${fmt(sorted.at(-1)!)} ms; ` +
          `capture p50 ${fmt(percentile(split.capture, 50))} / p99 ${fmt(percentile(split.capture, 99))} ms, apply p50 ${fmt(percentile(split.apply, 50))} / p99 ${fmt(percentile(split.apply, 99))} ms`,
      );
      rows.push(`| apply lag at ${LAG_RATE} changes/s (${LAG_WINDOWS} × ${LAG_SECONDS} s, ${LAG_SHARDS} shards), p50 / p99 | ${fmt(percentile(sorted, 50))} / ${fmt(percentile(sorted, 99))} ms | | p99 < 1,000 ms |`);
    }

    if (PARTS.has('cutover')) {
      await seed('cdc_cut', CUTOVER_ROWS);
      const freezes: number[] = [];
      for (let i = 0; i < CUTOVERS; i++) freezes.push(await cutoverOnce(ferry, i));
      const sortedFreezes = [...freezes].sort((a, b) => a - b);
      rows.push(`| freeze over ${CUTOVERS} cutovers at ${FREEZE_RATE} writes/s (${CUTOVER_SHARDS} shard), p50 / max | ${fmt(percentile(sortedFreezes, 50))} / ${fmt(sortedFreezes.at(-1)!)} ms (${freezes.join(', ')}) | | p50 < 1,000 ms |`);
    }

    console.log(`\n| figure | ferry | baseline | ratio / goal |\n|---|---|---|---|\n${rows.join('\n')}`);
  } finally {
    await ferry.close();
    await stopProcess(worker);
  }
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
