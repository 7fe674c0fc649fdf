/**
 * The bulk copy, end to end on the local stack: a seeded purchase table goes
 * through a real worker process into DynamoDB with each worked mapping, and
 * the test compares every target item with the source transformed by the
 * test's own code, not ferry's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { defaultPayloadConverter } from '@temporalio/common';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { startFerry, startWorkerProcess, stopFerry, stopProcess, uniqueName } from './helpers.js';
import { assertSameItems, dmsItems, dmsKey, exampleSpec as workedSpec, groupedItems, groupedKey, readPurchase, scanAll, seedPurchase, type PurchaseRow } from './purchase.js';

const config = loadConfig();
const database = `bulk_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('bulk-test');
/** Candidate rows; about 4/7 of them are kept, so the table holds ~114,000 rows. */
const CANDIDATES = 200_000;
let worker: ChildProcess;
let ferry: FerryClient;
let source: PurchaseRow[] = [];

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await seedPurchase(db, database, CANDIDATES);
    source = await readPurchase(db, database);
  } finally {
    await db.end();
  }
  ({ worker, ferry } = await startFerry(taskQueue));
});

after(async () => {
  await stopFerry({ worker, ferry }, [database]);
});

function exampleSpec(file: 'purchase-dms.json' | 'purchase-grouped.json', name: string, targetTable: string) {
  const spec = workedSpec(file, name, database, targetTable);
  // Several partitions, several in flight: exercises planning and the fan-out.
  spec.bulk = { partitions: 6, concurrency: 3 };
  return spec;
}

/** Worked example (a), computed by the test itself: one item per row, keyed customer_orderid|productid. */
async function assertDmsTargetEqualsSource(target: string): Promise<void> {
  assertSameItems(await scanAll(target), dmsItems(source), dmsKey);
}

test('DMS-style mapping: every purchase row becomes one item keyed customer_orderid|productid, equal to the source', async () => {
  assert.ok(source.length >= 100_000, `seeded ${source.length} rows`);
  const target = uniqueName('purchase_dms');
  const migration = await ferry.startMigration(exampleSpec('purchase-dms.json', uniqueName('bulk-dms'), target));
  const report = await migration.result();

  await assertDmsTargetEqualsSource(target);
  assert.equal(report.rows, source.length);
  assert.equal(report.items, source.length);
  assert.equal(report.partitions.length, 6);
  assert.equal(report.deadLetters, 0);
});

test('grouping mapping: rows sharing (customerid, orderid) fold into one item with each productid holding its quantity', async () => {
  const target = uniqueName('purchase_grouped');
  const migration = await ferry.startMigration(exampleSpec('purchase-grouped.json', uniqueName('bulk-grouped'), target));
  const report = await migration.result();

  const expected = groupedItems(source);
  assertSameItems(await scanAll(target), expected, groupedKey);
  assert.equal(report.rows, source.length, 'every row was read once: no group was split or duplicated across partitions');
  assert.equal(report.items, expected.size);
  assert.ok(report.partitions.length > 1, 'the table was split into several partitions');
});

test('a worker killed (SIGKILL) while a partition loads: a new worker finishes the run from the checkpoint, target equals source', async () => {
  const target = uniqueName('purchase_kill');
  const spec = exampleSpec('purchase-dms.json', uniqueName('bulk-kill'), target);
  spec.bulk = { partitions: 1, concurrency: 1 };
  // A budget slow enough that the load is surely still running when the worker dies.
  spec.writeBudget = { itemsPerSecond: 2500 };
  const migration = await ferry.startMigration(spec);
  const handle = ferry.client.workflow.getHandle(migration.workflowId);
  for (let i = 0; ; i++) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    const load = pending.find((a) => a.activityType?.name === 'loadPartition');
    const payload = load?.heartbeatDetails?.payloads?.[0];
    if (payload && defaultPayloadConverter.fromPayload<{ done: number }>(payload).done > 0) break;
    assert.ok(i < 600, 'the load never heartbeat a checkpoint');
    await new Promise((r) => setTimeout(r, 200));
  }
  const live = await migration.progress();
  assert.equal(live.rowsDone, 0, 'no partition has finished yet');
  assert.ok(live.rowsInFlight > 0 && live.percent > 0, `progress moves while the only partition loads: ${JSON.stringify(live)}`);
  await stopProcess(worker, 'SIGKILL');
  worker = await startWorkerProcess(taskQueue);
  const report = await migration.result();

  const resumed = report.partitions.find((p) => p.loadResumedFrom > 0);
  assert.ok(resumed, `a partition resumed its load from a non-zero checkpoint: ${JSON.stringify(report.partitions.map((p) => p.loadResumedFrom))}`);
  await assertDmsTargetEqualsSource(target);
});
