/**
 * The bulk copy, end to end on the local stack: a seeded purchase table goes
 * through a real worker process into DynamoDB with each worked mapping, and
 * the test compares every target item with the source transformed by the
 * test's own code, not ferry's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { defaultPayloadConverter } from '@temporalio/common';
import { dynamoClient } from '../src/aws.js';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { ROOT, startWorkerProcess, stopProcess, uniqueName } from './helpers.js';

const config = loadConfig();
const database = `bulk_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('bulk-test');
/** Candidate rows; about 4/7 of them are kept, so the table holds ~114,000 rows. */
const CANDIDATES = 200_000;
let worker: ChildProcess;
let ferry: FerryClient;

interface PurchaseRow {
  customerid: number;
  orderid: number;
  productid: number;
  quantity: number;
}
let source: PurchaseRow[] = [];

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.purchase (customerid INT NOT NULL, orderid INT NOT NULL, productid INT NOT NULL, quantity INT NOT NULL, PRIMARY KEY (customerid, orderid, productid))`);
    // Orders of 1 to 7 products, uneven on purpose, so groups straddle naive partition bounds.
    await db.query(
      `INSERT INTO \`${database}\`.purchase
         SELECT seq DIV 91, (seq DIV 7) MOD 13, 1000 + (seq MOD 7) * 11, 1 + (seq * 7919) MOD 50
         FROM seq_0_to_${CANDIDATES - 1} WHERE (seq * 31) MOD 7 <= (seq DIV 7) MOD 7`,
    );
    const [rows] = await db.query(`SELECT customerid, orderid, productid, quantity FROM \`${database}\`.purchase`);
    source = (rows as PurchaseRow[]).map((r) => ({ customerid: Number(r.customerid), orderid: Number(r.orderid), productid: Number(r.productid), quantity: Number(r.quantity) }));
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

function exampleSpec(file: string, name: string, targetTable: string) {
  const spec = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs', 'examples', file), 'utf8'));
  spec.name = name;
  spec.source.database = database;
  for (const rule of spec.mapping.rules) {
    rule['object-locator']['schema-name'] = database;
    if (rule['rule-type'] === 'object-mapping') rule['target-table-name'] = targetTable;
  }
  // Several partitions, several in flight: exercises planning and the fan-out.
  spec.bulk = { partitions: 6, concurrency: 3 };
  return spec;
}

async function scanAll(table: string): Promise<Record<string, AttributeValue>[]> {
  const dynamo = dynamoClient(config.aws);
  const segments = 4;
  const parts = await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      const items: Record<string, AttributeValue>[] = [];
      let start: Record<string, AttributeValue> | undefined;
      do {
        const page = await dynamo.send(new ScanCommand({ TableName: table, Segment: segment, TotalSegments: segments, ExclusiveStartKey: start, ConsistentRead: true }));
        items.push(...(page.Items ?? []));
        start = page.LastEvaluatedKey;
      } while (start);
      return items;
    }),
  );
  return parts.flat();
}

/** Compares target items with expected ones by key: all equal, none missing, none extra. */
function assertSameItems(actual: Record<string, AttributeValue>[], expected: Map<string, Record<string, AttributeValue>>, keyOf: (item: Record<string, AttributeValue>) => string) {
  const seen = new Set<string>();
  const mismatches: string[] = [];
  for (const item of actual) {
    const key = keyOf(item);
    if (seen.has(key)) mismatches.push(`duplicate ${key}`);
    seen.add(key);
    const want = expected.get(key);
    if (!want) mismatches.push(`extra item ${key}: ${JSON.stringify(item)}`);
    else if (JSON.stringify(sortKeys(item)) !== JSON.stringify(sortKeys(want))) mismatches.push(`item ${key}: got ${JSON.stringify(sortKeys(item))}, want ${JSON.stringify(sortKeys(want))}`);
  }
  for (const key of expected.keys()) if (!seen.has(key)) mismatches.push(`missing item ${key}`);
  assert.deepEqual(mismatches.slice(0, 10), [], `${mismatches.length} mismatches`);
  assert.equal(actual.length, expected.size);
}

function sortKeys(item: Record<string, AttributeValue>) {
  return Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Worked example (a), computed by the test itself: one item per row, keyed customer_orderid|productid. */
async function assertDmsTargetEqualsSource(target: string): Promise<void> {
  const expected = new Map<string, Record<string, AttributeValue>>();
  for (const r of source) {
    expected.set(`${r.customerid}|${r.orderid}#${r.productid}`, {
      customer_orderid: { S: `${r.customerid}|${r.orderid}` },
      productid: { N: String(r.productid) },
      quantity: { N: String(r.quantity) },
    });
  }
  assertSameItems(await scanAll(target), expected, (i) => `${i.customer_orderid!.S}#${i.productid!.N}`);
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

  const expected = new Map<string, Record<string, AttributeValue>>();
  for (const r of source) {
    const key = `${r.customerid}#${r.orderid}`;
    const item = expected.get(key) ?? { customerid: { N: String(r.customerid) }, orderid: { N: String(r.orderid) } };
    item[String(r.productid)] = { N: String(r.quantity) };
    expected.set(key, item);
  }
  assertSameItems(await scanAll(target), expected, (i) => `${i.customerid!.N}#${i.orderid!.N}`);
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
