/**
 * A worker SIGKILLed in the middle of a partition's export or transform: a
 * live worker finishes that activity within 30 s of the kill (the load already
 * moves as fast), measured from the run's own activity events. And a healthy
 * worker whose transform spends longer than the heartbeat timeout in one call
 * (its staged rows arriving over a slow link) is not taken for a dead one.
 * A worker is held inside the stage by a proxy that trickles the bytes of that
 * stage's long call: the partition's SELECT for export, the download of its
 * staged rows for transform.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { temporal } from '@temporalio/proto';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { HoldingProxy, idMapping, startProxiedWorker, startWorkerProcess, stopProcess, uniqueName, until } from './helpers.js';

const config = loadConfig();
const database = `failover_${uniqueName('t').replace(/-/g, '_')}`;
const ROWS = 3000;
/** Random bytes do not compress: the partition's SELECT and its staged Parquet carry about ROWS × 200 bytes. */
const ROW_BYTES = 200;
/** A trickle that makes either long call last about 30 s, longer than the 20 s heartbeat timeout. */
const SLOW_BYTES_PER_SECOND = (ROWS * ROW_BYTES) / 30;
/** The bound: the work moves to a live worker within 30 s of the kill; the rest is that worker doing it. */
const MOVE_BOUND_MS = 30_000;
const MARGIN_MS = 5_000;
/** The variable the spec names for the source URL: each worker gets its own value. */
const URL_ENV = 'FERRY_FAILOVER_SOURCE_URL';
const running: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  process.env[URL_ENV] = config.mysqlUrl; // what workers started without their own value inherit
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.t (id INT PRIMARY KEY, payload VARBINARY(255) NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.t SELECT seq, RANDOM_BYTES(${ROW_BYTES}) FROM seq_1_to_${ROWS}`);
  } finally {
    await db.end();
  }
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await Promise.all(running.map((worker) => stopProcess(worker)));
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await db.end();
});

function startCopy(client: FerryClient) {
  return client.startMigration({
    name: uniqueName('failover'),
    source: { database, urlEnv: URL_ENV },
    mapping: idMapping(database, 't', uniqueName('failover')),
    target: { create: true },
    bulk: { partitions: 1, concurrency: 1 },
  });
}

interface Attempts {
  /** The attempt that finished the activity, and the worker (`pid@host`) that ran it. */
  attempt: number;
  identity: string;
  completedAt: number;
}

const eventMs = (e: temporal.api.history.v1.IHistoryEvent) => Number(String(e.eventTime!.seconds ?? 0)) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);

/** How the run's `activity` ended, from its history; undefined while it has not completed. */
async function completion(client: FerryClient, workflowId: string, activity: string): Promise<Attempts | undefined> {
  const events = (await client.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity);
  if (!scheduled) return undefined;
  const id = String(scheduled.eventId);
  const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === id)?.activityTaskStartedEventAttributes;
  const completed = events.find((e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === id);
  if (!completed) return undefined;
  return { attempt: started!.attempt!, identity: started!.identity!, completedAt: eventMs(completed) };
}

/** Resolves once `activity` is running and the proxy is trickling its long call. */
async function heldIn(client: FerryClient, workflowId: string, activity: string, proxy: HoldingProxy): Promise<void> {
  await until(
    async () => {
      const pending = (await client.client.workflow.getHandle(workflowId).describe()).raw.pendingActivities ?? [];
      return proxy.slowed > 0 && pending.some((a) => a.activityType?.name === activity && a.state === 2 /* STARTED */);
    },
    600,
    100,
    `${activity} never reached its slowed call`,
  );
}

/**
 * A worker reaching `service` through a proxy that trickles the call `picks` selects, a second worker on its queue
 * reaching everything directly, and the first SIGKILLed while it is inside `activity`: resolves with when it was
 * killed and how the activity ended.
 */
async function killDuring(activity: string, service: 'mysql' | 's3', picks: (bytes: string) => boolean): Promise<{ killedAt: number; ended: Attempts; replacement: ChildProcess }> {
  let proxy: HoldingProxy;
  let queue: string;
  let doomed: ChildProcess;
  let client: FerryClient;
  if (service === 'mysql') {
    proxy = await HoldingProxy.start(config.mysqlUrl.replace(/^mysql:/, 'http:'));
    cleanups.push(() => proxy.close());
    const url = new URL(config.mysqlUrl);
    url.port = new URL(proxy.url).port;
    queue = uniqueName('failover');
    doomed = await startWorkerProcess(queue, { [URL_ENV]: url.toString() });
    client = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue: queue } });
    cleanups.push(() => client.close());
  } else {
    const proxied = await startProxiedWorker('failover', 's3');
    cleanups.push(() => proxied.stop());
    ({ proxy, queue, worker: doomed, client } = proxied);
  }
  proxy.slowFrom(picks, SLOW_BYTES_PER_SECOND);
  running.push(doomed);
  const migration = await startCopy(client);
  cleanups.push(() => client.client.workflow.getHandle(migration.workflowId).terminate('the test ended').then(() => undefined));

  await heldIn(client, migration.workflowId, activity, proxy);
  // Polling before the kill, so that the bound measures the move, not a worker's start.
  const replacement = await startWorkerProcess(queue, { [URL_ENV]: config.mysqlUrl });
  running.push(replacement);
  assert.equal(await completion(client, migration.workflowId, activity), undefined, `${activity} was still held when the worker died`);
  const killedAt = Date.now();
  await stopProcess(doomed, 'SIGKILL');

  let ended: Attempts | undefined;
  await until(async () => Boolean((ended = await completion(client, migration.workflowId, activity))), 1200, 100, `${activity} never completed after the kill`);
  const report = await migration.result();
  assert.equal(report.rows, ROWS, 'the run finished the copy on the live worker');
  return { killedAt, ended: ended!, replacement };
}

for (const [activity, service, picks] of [
  // The partition's SELECT (planning and preflight never name the column).
  ['exportPartition', 'mysql', (bytes: string) => bytes.includes('payload')],
  // The download of the partition's staged rows.
  ['transformPartition', 's3', (bytes: string) => /^GET \S*\/rows\.parquet/.test(bytes)],
] as const) {
  test(`a worker SIGKILLed inside ${activity}: a live worker finishes that activity within 30 s of the kill`, async (t) => {
    const { killedAt, ended, replacement } = await killDuring(activity, service, picks);
    assert.equal(ended.identity.split('@')[0], String(replacement.pid), `the second worker finished ${activity}`);
    assert.equal(ended.attempt, 2, 'on the attempt after the killed one');
    const tookMs = ended.completedAt - killedAt;
    t.diagnostic(`${activity} completed on the live worker ${tookMs} ms after the kill`);
    assert.ok(tookMs <= MOVE_BOUND_MS + MARGIN_MS, `${activity} completed ${tookMs} ms after the kill; the bound is ${MOVE_BOUND_MS} ms to move, plus ${MARGIN_MS} ms to do the work`);
  });
}

test('a transform that spends longer than the heartbeat timeout downloading its staged rows over a slow link finishes on its first attempt', async () => {
  const { proxy, client, stop } = await startProxiedWorker('failover-slow', 's3');
  cleanups.push(stop);
  proxy.slowFrom((bytes) => /^GET \S*\/rows\.parquet/.test(bytes), SLOW_BYTES_PER_SECOND);
  const migration = await startCopy(client);
  cleanups.push(() => client.client.workflow.getHandle(migration.workflowId).terminate('the test ended').then(() => undefined));
  let ended: Attempts | undefined;
  await until(async () => Boolean((ended = await completion(client, migration.workflowId, 'transformPartition'))), 1200, 200, 'the transform never completed');
  const events = (await client.client.workflow.getHandle(migration.workflowId).fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'transformPartition')!;
  const tookMs = ended!.completedAt - eventMs(scheduled);
  assert.ok(tookMs > 20_000, `the slow link held the transform for longer than its heartbeat timeout (it took ${tookMs} ms)`);
  assert.equal(ended!.attempt, 1, 'the transform was not timed out and retried while it waited on its download');
});
