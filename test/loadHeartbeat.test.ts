/**
 * A load that backs off under throttling keeps heartbeating: while DynamoDB
 * refuses every batch (FERRY_FAULT_WRITE_CAPACITY below one batch), no batch
 * completes for longer than the load's 20 s heartbeat timeout, yet the same
 * attempt stays alive, its heartbeats fresh (it used to heartbeat only when a
 * batch was submitted, and was timed out and retried, or deaf to a cancel).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { idMapping, startWorkerProcess, stopFerry, uniqueName, until } from './helpers.js';

const config = loadConfig();
const database = `hb_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('loadbeat');
let worker: ChildProcess | undefined;
let ferry: FerryClient | undefined;

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.acct (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.acct SELECT seq, CONCAT('n', seq) FROM seq_1_to_200`);
  } finally {
    await db.end();
  }
  // 20 items/s: a batch of 25 never fits, so every write is throttled.
  worker = await startWorkerProcess(taskQueue, { FERRY_FAULT_WRITE_CAPACITY: '20' });
  ferry = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } });
});

after(async () => {
  await stopFerry({ worker, ferry }, [database]);
});

test('a load throttled for longer than its heartbeat timeout keeps its attempt alive by heartbeating', async () => {
  const name = uniqueName('loadbeat');
  await ferry!.startMigration({ name, source: { database }, mapping: idMapping(database, 'acct', uniqueName('acct')), target: { create: true }, bulk: { partitions: 1, writersPerPartition: 1 } });
  const handle = ferry!.client.workflow.getHandle(name);
  const load = async () => ((await handle.describe()).raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'loadPartition');
  try {
    await until(async () => Boolean(await load()), 300, 200, 'the load never started');
    const startedAt = Date.now();
    // Past the 20 s heartbeat timeout, with nothing written.
    while (Date.now() - startedAt < 30_000) {
      await new Promise((r) => setTimeout(r, 2_000));
      const pending = (await load())!;
      assert.equal(pending.attempt, 1, `the load's first attempt is still the one running (after ${Math.round((Date.now() - startedAt) / 1000)} s)`);
      const beatAt = Number(pending.lastHeartbeatTime?.seconds ?? 0) * 1000;
      assert.ok(Date.now() - beatAt < 5_000, `its last heartbeat is ${Date.now() - beatAt} ms old`);
    }
  } finally {
    await handle.terminate('the test is done').catch(() => undefined);
  }
});
