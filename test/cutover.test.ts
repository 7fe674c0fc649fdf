/**
 * Cutover, end to end: a writer changes the source through the fence
 * (withSourceWrite) from before the migration starts; the cutover is refused
 * outside catch-up, approved during it, freezes the writer at the fence,
 * drains, flips the routing record and releases. The writer's next
 * transaction is told to use DynamoDB, nothing reaches MySQL after the final
 * position, and the target equals the source's final state.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { DescribeTableCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { defaultPayloadConverter } from '@temporalio/common';
import { dynamoClient, kinesisClient } from '../src/aws.js';
import { FerryClient, withSourceWrite, type MigrationSpecInput } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { startWorkerProcess, stopProcess, uniqueName } from './helpers.js';

const config = loadConfig();
const database = `cut_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('cutover');
const ROWS = 4_000;
let worker: ChildProcess;
let ferry: FerryClient;

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.acct (id INT PRIMARY KEY, balance DECIMAL(12,2) NOT NULL, note VARCHAR(50))`);
    await db.query(`INSERT INTO \`${database}\`.acct SELECT seq, seq * 1.5, CONCAT('n', seq) FROM seq_1_to_${ROWS}`);
  } finally {
    await db.end();
  }
  worker = await startWorkerProcess(taskQueue);
  ferry = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } });
});

after(async () => {
  await ferry?.close();
  if (worker) await stopProcess(worker);
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await db.end();
});

/** SIGKILLs the worker while the named activity runs (and its heartbeat details, if any, pass `ready`), then starts another. */
async function killWorkerDuring(workflowId: string, activity: string, ready: (details: unknown) => boolean): Promise<void> {
  const handle = ferry.client.workflow.getHandle(workflowId);
  for (let i = 0; ; i++) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    const running = pending.find((a) => a.activityType?.name === activity && a.state === 2 /* STARTED */);
    const payload = running?.heartbeatDetails?.payloads?.[0];
    if (running && ready(payload ? defaultPayloadConverter.fromPayload(payload) : undefined)) break;
    assert.ok(i < 1200, `${activity} never ran`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await stopProcess(worker, 'SIGKILL');
  worker = await startWorkerProcess(taskQueue);
}

/** An application: random inserts, updates, deletes and key changes through the fence, until the fence says DynamoDB. */
async function writer(name: string, stop: { now: boolean }): Promise<{ writes: number; fenced: boolean }> {
  const db = await connectMysql(config.mysqlUrl);
  const t = `\`${database}\`.acct`;
  let writes = 0;
  let next = 100_000;
  let seed = 7;
  const random = (n: number) => ((seed = (seed * 48271) % 2147483647) % n) + 1;
  try {
    while (!stop.now) {
      const op = random(100);
      const wrote = await withSourceWrite(
        db,
        name,
        async (tx) => {
          if (op <= 40) await tx.query(`UPDATE ${t} SET balance = balance + 1, note = ? WHERE id = ?`, [`w${writes}`, random(ROWS)]);
          else if (op <= 65) await tx.query(`INSERT INTO ${t} VALUES (?, ?, ?)`, [next++, `${random(999)}.25`, `new ${writes}`]);
          else if (op <= 90) await tx.query(`DELETE FROM ${t} WHERE id = ?`, [random(ROWS)]);
          else await tx.query(`UPDATE ${t} SET id = id + 500000 WHERE id = ?`, [random(ROWS)]);
        },
        database,
      );
      if (!wrote) return { writes, fenced: true };
      writes++;
      await new Promise((r) => setTimeout(r, 5));
    }
    return { writes, fenced: false };
  } finally {
    await db.end();
  }
}

test('a cutover freezes writes at the fence, drains, flips the routing and releases; with the worker SIGKILLed during bulk and during catch-up, the target equals the source', async () => {
  const name = uniqueName('cutover');
  const target = uniqueName('acct');
  const locator = { 'schema-name': database, 'table-name': 'acct' };
  const spec: MigrationSpecInput = {
    name,
    source: { database },
    mapping: {
      rules: [
        { 'rule-type': 'selection', 'rule-id': '1', 'rule-name': '1', 'object-locator': locator, 'rule-action': 'include' },
        { 'rule-type': 'object-mapping', 'rule-id': '2', 'rule-name': '2', 'rule-action': 'map-record-to-record', 'object-locator': locator, 'target-table-name': target, 'mapping-parameters': { 'partition-key-name': 'id' } },
      ],
    },
    target: { create: true },
    bulk: { partitions: 2, concurrency: 1 },
    writeBudget: { itemsPerSecond: 500 },
    capture: { createStream: true, shards: 2, cutover: 'manual', maxLagMs: 5_000 },
  };
  const stop = { now: false };
  const writing = writer(name, stop); // from before the migration starts
  await new Promise((r) => setTimeout(r, 300));
  const migration = await ferry.startMigration(spec);

  for (let i = 0; (await migration.progress().catch(() => undefined))?.phase !== 'bulk'; i++) {
    assert.ok(i < 600, 'the bulk copy never started');
    await new Promise((r) => setTimeout(r, 100));
  }
  await assert.rejects(migration.approveCutover(), /a cutover can be approved only during catch-up; the migration is in bulk/);

  // The worker dies twice: once while a partition loads, once while apply catches up; each time a new one takes over.
  await killWorkerDuring(name, 'loadPartition', () => true);
  for (let i = 0; (await migration.progress().catch(() => undefined))?.phase !== 'catch-up'; i++) {
    assert.ok(i < 1200, 'catch-up never started');
    await new Promise((r) => setTimeout(r, 100));
  }
  await killWorkerDuring(name, 'applyChanges', () => true);
  let cutover;
  for (let i = 0; !cutover; i++) {
    try {
      cutover = await migration.approveCutover();
    } catch (err) {
      // Refused while apply catches up: the reason says so, and approving again is the way.
      assert.match((err as Error).message, /approve again/);
      assert.ok(i < 60, (err as Error).message);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  assert.ok(cutover.freezeMs >= 0);
  assert.equal(await ferry.resolveBackend(name), 'dynamodb');

  const written = await Promise.race([writing, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the writer was never fenced')), 30_000))]);
  stop.now = true;
  assert.equal(written.fenced, true, 'the writer was sent to DynamoDB by the fence');
  assert.ok(written.writes > 50, `the writer kept writing during the migration (${written.writes} writes)`);

  const report = await migration.result();
  assert.equal(report.capture?.cutover?.freezeMs, cutover.freezeMs);
  // The run's own stream and versions table are gone once it completed (spec.capture.cleanup).
  const streamState = await kinesisClient(config.aws)
    .send(new DescribeStreamSummaryCommand({ StreamName: report.capture!.stream }))
    .then((r) => r.StreamDescriptionSummary?.StreamStatus, (err: Error) => err.name);
  assert.ok(streamState === 'DELETING' || streamState === 'ResourceNotFoundException', `the stream is being deleted (${streamState})`);
  await assert.rejects(dynamoClient(config.aws).send(new DescribeTableCommand({ TableName: `ferry-${name}-versions` })), { name: 'ResourceNotFoundException' });
  const db = await connectMysql(config.mysqlUrl);
  const [[fence]] = (await db.query(`SELECT backend FROM \`${database}\`.ferry_routing WHERE name = ?`, [name])) as unknown as [[{ backend: string }]];
  const [rows] = await db.query(`SELECT id, balance, note FROM \`${database}\`.acct`);
  await db.end();
  assert.equal(fence.backend, 'dynamodb');

  const want = new Map((rows as { id: number; balance: string; note: string | null }[]).map((r) => [String(r.id), `${Number(r.balance)} ${r.note}`]));
  const items: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await dynamoClient(config.aws).send(new ScanCommand({ TableName: target, ExclusiveStartKey: start, ConsistentRead: true }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  const have = new Map(items.map((i) => [i.id!.N!, `${Number(i.balance!.N)} ${i.note?.S ?? null}`]));
  const wrong = [...new Set([...want.keys(), ...have.keys()])].filter((id) => want.get(id) !== have.get(id)).map((id) => `id ${id}: target ${have.get(id)}, source ${want.get(id)}`);
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} rows differ`);
});

test('cancelling a migration during catch-up stops capture and apply and leaves the routing on MySQL', async () => {
  const name = uniqueName('abort');
  const locator = { 'schema-name': database, 'table-name': 'acct' };
  const migration = await ferry.startMigration({
    name,
    source: { database },
    mapping: {
      rules: [
        { 'rule-type': 'selection', 'rule-id': '1', 'rule-name': '1', 'object-locator': locator, 'rule-action': 'include' },
        { 'rule-type': 'object-mapping', 'rule-id': '2', 'rule-name': '2', 'rule-action': 'map-record-to-record', 'object-locator': locator, 'target-table-name': uniqueName('acct'), 'mapping-parameters': { 'partition-key-name': 'id' } },
      ],
    },
    target: { create: true },
    capture: { createStream: true, shards: 1, cutover: 'manual' },
  });
  const handle = ferry.client.workflow.getHandle(name);
  for (let i = 0; ; i++) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    if (pending.some((a) => a.activityType?.name === 'applyChanges') && pending.some((a) => a.activityType?.name === 'captureChanges')) break;
    assert.ok(i < 600, 'catch-up never started');
    await new Promise((r) => setTimeout(r, 100));
  }
  await handle.cancel();
  await assert.rejects(migration.result(), /cancelled/i);

  const description = await handle.describe();
  assert.equal(description.status.name, 'CANCELLED');
  assert.deepEqual(description.raw.pendingActivities ?? [], [], 'no capture or apply is left running');
  assert.equal(await ferry.resolveBackend(name), 'mysql');
  const db = await connectMysql(config.mysqlUrl);
  const [[fence]] = (await db.query(`SELECT backend FROM \`${database}\`.ferry_routing WHERE name = ?`, [name])) as unknown as [[{ backend: string }]];
  await db.end();
  assert.equal(fence.backend, 'mysql', 'the fence lets the application keep writing to MySQL');
});
