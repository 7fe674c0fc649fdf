/**
 * Cutover, end to end, with each worked mapping of the purchase table: a
 * writer changes the source through the fence (withSourceWrite) from before
 * the migration starts; the cutover is refused
 * outside catch-up, approved during it (by the typed client, or by `ferry
 * cutover` as an operator would), freezes the writer at the fence,
 * drains, flips the routing record and releases. The writer's next
 * transaction is told to use DynamoDB, nothing reaches MySQL after the final
 * position, and the target equals the source's final state.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { DescribeTableCommand, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { defaultPayloadConverter } from '@temporalio/common';
import { dynamoClient, kinesisClient } from '../src/aws.js';
import { createFence, FerryClient, resolveBackend, withSourceWrite, type CutoverResult, type MigrationHandle, type MigrationProgress } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { activitiesLeftRunning, HoldingProxy, runFerry, startFerry, startProxiedWorker, startWorkerProcess, stopFerry, stopProcess, uniqueName, until, within } from './helpers.js';
import { assertSameItems, dmsItems, dmsKey, exampleSpec, groupedItems, groupedKey, readPurchase, scanAll, seedPurchase } from './purchase.js';

const config = loadConfig();
const taskQueue = uniqueName('cutover');
/** Candidate rows for seedPurchase: about 5,700 rows, customers 0..109. */
const CANDIDATES = 10_010;
const CUSTOMERS = CANDIDATES / 91;
const databases: string[] = [];
let worker: ChildProcess;
let ferry: FerryClient;

before(async () => {
  ({ worker, ferry } = await startFerry(taskQueue));
});

after(async () => {
  await stopFerry({ worker, ferry }, databases);
});

/** A fresh database with a seeded purchase table, dropped after the tests. */
async function purchaseDatabase(label: string): Promise<string> {
  const database = `cut_${uniqueName(label).replace(/-/g, '_')}`;
  databases.push(database);
  const db = await connectMysql(config.mysqlUrl);
  try {
    await seedPurchase(db, database, CANDIDATES);
  } finally {
    await db.end();
  }
  return database;
}

/** What the source's fence row says for migration `name`, and the source's purchase rows, after a run. */
async function fenceAndSource(database: string, name: string): Promise<{ fence: string; final: Awaited<ReturnType<typeof readPurchase>> }> {
  const db = await connectMysql(config.mysqlUrl);
  try {
    const [[row]] = (await db.query(`SELECT backend FROM \`${database}\`.ferry_routing WHERE name = ?`, [name])) as unknown as [[{ backend: string }]];
    return { fence: row.backend, final: await readPurchase(db, database) };
  } finally {
    await db.end();
  }
}

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

/** The application's keys: the seeded customers but the last (which the test deletes), orders 0..12 (and 20..24 once moved), seeded products and new ones from 2000. */
const pick = (random: (n: number) => number) => ({ c: random(CUSTOMERS - 1) - 1, o: random(13) - 1, p: 1000 + 11 * (random(7) - 1) });

/**
 * An application writing through the fence until the fence says DynamoDB:
 * quantity updates, new products and orders, deletes of a product or a whole
 * order, and primary-key changes that move a product to another product id or
 * another order.
 */
async function writer(database: string, name: string, stop: { now: boolean }): Promise<{ writes: number; fenced: boolean }> {
  const db = await connectMysql(config.mysqlUrl);
  // It writes from before the migration's preflight: without the fence its writes would be refused.
  await createFence(db, name, database);
  const t = `\`${database}\`.purchase`;
  let writes = 0;
  let seed = 7;
  const random = (n: number) => ((seed = (seed * 48271) % 2147483647) % n) + 1;
  try {
    while (!stop.now) {
      const op = random(100);
      const { c, o, p } = pick(random);
      const where = 'customerid = ? AND orderid = ? AND productid = ?';
      const wrote = await withSourceWrite(
        db,
        name,
        async (tx) => {
          if (op <= 35) await tx.query(`UPDATE ${t} SET quantity = quantity + 1 WHERE ${where}`, [c, o, p]);
          else if (op <= 55) await tx.query(`INSERT IGNORE INTO ${t} VALUES (?, ?, ?, ?)`, [c, op <= 45 ? o : 12 + random(8), 2000 + random(50), random(50)]);
          else if (op <= 78) await tx.query(`DELETE FROM ${t} WHERE ${where}`, [c, o, p]);
          else if (op <= 80) await tx.query(`DELETE FROM ${t} WHERE customerid = ? AND orderid = ?`, [c, o]);
          else if (op <= 90) await tx.query(`UPDATE IGNORE ${t} SET productid = ? WHERE ${where}`, [2000 + random(50), c, o, p]);
          else await tx.query(`UPDATE IGNORE ${t} SET orderid = ? WHERE ${where}`, [19 + random(5), c, o, p]);
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

async function waitForPhase(migration: MigrationHandle, phase: MigrationProgress['phase'], tries: number): Promise<void> {
  for (let i = 0; (await migration.progress().catch(() => undefined))?.phase !== phase; i++) {
    assert.ok(i < tries, `the migration never reached ${phase}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Approves through `ferry cutover NAME`, as an operator would: its output, or its refusal as the error. */
async function approveWithCli(name: string): Promise<{ freezeMs: number }> {
  const result = await runFerry(['cutover', name]);
  if (result.code !== 0) throw new Error(result.stderr);
  const frozen = /cutover: .* writes were frozen for (\d+) ms/.exec(result.stdout);
  assert.ok(frozen, result.stdout);
  assert.match(result.stdout, /inside the freeze, the \d+ items touched by the \d+ changes of the last \d+ ms matched the source/);
  return { freezeMs: Number(frozen[1]) };
}

// One mapping's cutover is approved with the typed client, the other's with ferry's CLI.
const WORKED = [
  { mapping: 'DMS-style', file: 'purchase-dms.json', items: dmsItems, key: dmsKey, itemsPerSecond: 500, approveWith: 'client' },
  { mapping: 'grouping', file: 'purchase-grouped.json', items: groupedItems, key: groupedKey, itemsPerSecond: 150, approveWith: 'cli' },
] as const;

for (const worked of WORKED) {
  test(`${worked.mapping} mapping, approved with the ${worked.approveWith === 'cli' ? 'CLI' : 'typed client'}: a cutover freezes writes at the fence, drains, flips the routing and releases; with the worker SIGKILLed during bulk and during catch-up, the target equals the source`, async () => {
    const database = await purchaseDatabase(worked.file.replace(/\W/g, '_'));
    const name = uniqueName('cutover');
    const target = uniqueName('purchase');
    const spec = exampleSpec(worked.file, name, database, target);
    // Two partitions one after the other at a slow write budget: the second is exported well after the bulk starts.
    spec.bulk = { partitions: 2, concurrency: 1 };
    spec.writeBudget = { itemsPerSecond: worked.itemsPerSecond };
    spec.capture = { createStream: true, shards: 2, cutover: 'manual', maxLagMs: 5_000 };
    const stop = { now: false };
    const writing = writer(database, name, stop); // from before the migration starts
    await new Promise((r) => setTimeout(r, 300));
    const migration = await ferry.startMigration(spec);

    const approve = () => (worked.approveWith === 'cli' ? approveWithCli(name) : migration.approveCutover());

    await waitForPhase(migration, 'bulk', 600);
    await assert.rejects(approve(), /the cutover was not done: a cutover can be approved only during catch-up; the migration is in bulk/);
    // Deletes of rows the last partition has not exported yet (the last customer's), after capture started.
    const early = await connectMysql(config.mysqlUrl);
    const lastCustomer = await withSourceWrite(early, name, async (tx) => {
      await tx.query(`DELETE FROM \`${database}\`.purchase WHERE customerid = ?`, [CUSTOMERS - 1]);
    }, database);
    await early.end();
    assert.ok(lastCustomer, 'the fence let the delete through');
    const deletedAt = Date.now();

    // The worker dies twice: once while a partition loads, once while apply catches up; each time a new one takes over.
    await killWorkerDuring(name, 'loadPartition', () => true);
    await waitForPhase(migration, 'catch-up', 1200);
    await killWorkerDuring(name, 'applyChanges', () => true);
    const flip = { stop: false };
    const atFlip = targetAtFlip(name, target, flip);
    let cutover;
    for (let i = 0; !cutover; i++) {
      try {
        cutover = await approve();
      } catch (err) {
        // Refused while apply catches up: the reason says so, and approving again is the way.
        assert.match((err as Error).message, /approve again/);
        assert.ok(i < 60, (err as Error).message);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    assert.ok(cutover.freezeMs >= 0);
    assert.equal(await ferry.resolveBackend(name), 'dynamodb');
    flip.stop = true;
    const flipped = await atFlip;

    const written = await Promise.race([writing, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the writer was never fenced')), 30_000))]);
    stop.now = true;
    assert.equal(written.fenced, true, 'the writer was sent to DynamoDB by the fence');
    assert.ok(written.writes > 50, `the writer kept writing during the migration (${written.writes} writes)`);

    const report = await migration.result();
    assert.equal(report.capture?.cutover?.freezeMs, cutover.freezeMs);
    const last = report.partitions.find((p) => p.index === 1)!;
    assert.ok(deletedAt < last.exportStartedAt, 'the last customer was deleted before the partition holding it was exported');
    await assertCleanedUp(name, report.capture!.stream);
    const { fence, final } = await fenceAndSource(database, name);
    assert.equal(fence, 'dynamodb');
    assert.ok(!final.some((r) => r.customerid === CUSTOMERS - 1));

    // The source's final state, transformed by this test's own code, item for item: already when the routing
    // flipped (the drain finished inside the freeze), and after the run.
    assert.ok(flipped, 'the routing item was seen flipping');
    assertSameItems(flipped, worked.items(final), worked.key);
    assertSameItems(await scanAll(target), worked.items(final), worked.key);
  });
}

/**
 * The target as it stood when the routing flipped: the routing item is read
 * every few ms and the target scanned the moment it says DynamoDB. The
 * freeze flips before it releases the writers, so the source is at its final
 * state then; a flip before apply had drained shows as a target behind it.
 */
async function targetAtFlip(name: string, target: string, watch: { stop: boolean }): Promise<Awaited<ReturnType<typeof scanAll>> | undefined> {
  const dynamo = dynamoClient(config.aws);
  while (!watch.stop) {
    if ((await resolveBackend(dynamo, name)) === 'dynamodb') return scanAll(target);
    await new Promise((r) => setTimeout(r, 2));
  }
  return undefined;
}

/** The run's own stream and versions table are gone once it completed (spec.capture.cleanup). */
async function assertCleanedUp(name: string, stream: string): Promise<void> {
  const streamState = await kinesisClient(config.aws)
    .send(new DescribeStreamSummaryCommand({ StreamName: stream }))
    .then((r) => r.StreamDescriptionSummary?.StreamStatus, (err: Error) => err.name);
  assert.ok(streamState === 'DELETING' || streamState === 'ResourceNotFoundException', `the stream is being deleted (${streamState})`);
  await assert.rejects(dynamoClient(config.aws).send(new DescribeTableCommand({ TableName: `ferry-${name}-versions` })), { name: 'ResourceNotFoundException' });
}

test('aborting a migration during catch-up stops capture and apply before the run ends, and leaves the routing on MySQL', async () => {
  const database = await purchaseDatabase('abort');
  const name = uniqueName('abort');
  const spec = exampleSpec('purchase-dms.json', name, database, uniqueName('purchase'));
  spec.capture = { createStream: true, shards: 1, cutover: 'manual' };
  const migration = await ferry.startMigration(spec);
  const handle = ferry.client.workflow.getHandle(name);
  for (let i = 0; ; i++) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    if (pending.some((a) => a.activityType?.name === 'applyChanges') && pending.some((a) => a.activityType?.name === 'captureChanges')) break;
    assert.ok(i < 600, 'catch-up never started');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await migration.abort(), 'CANCELLED');
  await assert.rejects(migration.result(), /cancelled/i);
  assert.deepEqual(await activitiesLeftRunning(ferry, name), [], 'no capture or apply is left running');
  assert.equal(await ferry.resolveBackend(name), 'mysql');
  const db = await connectMysql(config.mysqlUrl);
  const [[fence]] = (await db.query(`SELECT backend FROM \`${database}\`.ferry_routing WHERE name = ?`, [name])) as unknown as [[{ backend: string }]];
  await db.end();
  assert.equal(fence.backend, 'mysql', 'the fence lets the application keep writing to MySQL');
});

/** Approves the cutover, again while apply still lags, until the run is in it; returns the approval, pending until the cutover ends. */
async function approvedCutover(migration: MigrationHandle): Promise<{ approval: Promise<CutoverResult> }> {
  for (let i = 0; i < 60; i++) {
    const attempt = migration.approveCutover();
    const refused = attempt.then(() => undefined, (err: Error) => err);
    for (;;) {
      const outcome = await Promise.race([refused, new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 200))]);
      if (outcome instanceof Error) {
        assert.match(outcome.message, /approve again/); // apply still catching up: approve again
        await new Promise((r) => setTimeout(r, 1000));
        break;
      }
      if ((await migration.progress()).phase === 'cutover') return { approval: attempt };
    }
  }
  assert.fail('the cutover was never approved');
}

/**
 * One write to the source through the fence, as an application makes it, to the first purchase row (or the last: two
 * writes that must not wait for each other); resolves with whether it went to MySQL.
 */
async function sourceWrite(database: string, name: string, row: 'first' | 'last', during?: () => Promise<void>): Promise<boolean> {
  const app = await connectMysql(config.mysqlUrl);
  const order = row === 'first' ? 'ASC' : 'DESC';
  try {
    return await withSourceWrite(app, name, async (tx) => {
      await tx.query(`UPDATE \`${database}\`.purchase SET quantity = quantity + 1 ORDER BY customerid ${order}, orderid ${order}, productid ${order} LIMIT 1`);
      await during?.();
    }, database);
  } finally {
    await app.end();
  }
}

/** An application write transaction holding the fence row's shared lock until `release`, which says whether it went to MySQL. */
async function heldFence(database: string, name: string): Promise<{ release: () => Promise<boolean> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const holding = new Promise<void>((resolve) => (locked = resolve));
  const write = sourceWrite(database, name, 'first', async () => {
    locked();
    await released;
  });
  await Promise.race([holding, write.then(() => assert.fail('the write ended before it held the fence'))]);
  return { release: () => (release(), write) };
}

/** Resolves once another connection runs a statement LIKE `pattern`, polled every 20 ms; fails saying `never` after `tries` polls. */
async function untilStatementRuns(pattern: string, tries: number, never: string): Promise<void> {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await until(async () => {
      const [[{ n }]] = (await db.query('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE ?', [pattern])) as unknown as [[{ n: number }]];
      return Number(n) > 0;
    }, tries, 20, never);
  } finally {
    await db.end();
  }
}

/** Resolves once the freeze's UPDATE of the fence row in `database` waits for the row's lock. */
function freezeWaitsAtFence(database: string): Promise<void> {
  return untilStatementRuns(`UPDATE %${database}%ferry_routing%frozen%`, 300, 'the freeze never waited at the fence');
}

test('an abort once the cutover has begun does not interrupt it: the freeze drains and flips, the approval is answered, the run completes, and the target equals the source', async () => {
  const database = await purchaseDatabase('late_abort');
  const name = uniqueName('late-abort');
  const target = uniqueName('purchase');
  const spec = exampleSpec('purchase-dms.json', name, database, target);
  spec.capture = { createStream: true, shards: 1, cutover: 'manual' };
  const migration = await ferry.startMigration(spec);
  await waitForPhase(migration, 'catch-up', 1200);

  // An application write holds the fence row's shared lock: the cutover, once approved, waits for it to commit.
  const held = await heldFence(database, name);

  const { approval } = await approvedCutover(migration);

  // Aborted while the cutover waits at the fence; the write is let through once the workflow has the request.
  const aborting = migration.abort();
  for (let i = 0; ; i++) {
    const events = (await ferry.client.workflow.getHandle(name).fetchHistory()).events ?? [];
    if (events.some((e) => e.workflowExecutionCancelRequestedEventAttributes)) break;
    assert.ok(i < 100, 'the abort never reached the workflow');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await held.release(), true, 'the held write went to MySQL');

  assert.equal(await aborting, 'COMPLETED', 'the cutover begun before the abort completed, and the run with it');
  const cutover = await approval;
  assert.ok(cutover.freezeMs >= 0);
  assert.equal(await ferry.resolveBackend(name), 'dynamodb');
  const report = await migration.result();
  assert.equal(report.capture?.cutover?.freezeMs, cutover.freezeMs);
  await assertCleanedUp(name, report.capture!.stream);
  const { fence, final } = await fenceAndSource(database, name);
  assert.equal(fence, 'dynamodb');
  assertSameItems(await scanAll(target), dmsItems(final), dmsKey);
});

test('a target item that differs from the source after the drain rolls the cutover back: the check names its key, the routing stays on MySQL and the fence lets writes through again', async () => {
  const database = await purchaseDatabase('check');
  const name = uniqueName('check');
  const target = uniqueName('purchase');
  const spec = exampleSpec('purchase-dms.json', name, database, target);
  // A wide window: the planted item changed well inside it however slow the machine.
  spec.capture = { createStream: true, shards: 1, cutover: 'manual', maxLagMs: 5_000, checkWindowMs: 120_000 };
  const migration = await ferry.startMigration(spec);
  await waitForPhase(migration, 'catch-up', 1200);

  // A change ferry applies; then the same item changed in the target behind ferry's back.
  const db = await connectMysql(config.mysqlUrl);
  const [[row]] = (await db.query(`SELECT customerid, orderid, productid, quantity FROM \`${database}\`.purchase ORDER BY customerid, orderid, productid LIMIT 1`)) as unknown as [[{ customerid: number; orderid: number; productid: number; quantity: number }]];
  assert.ok(await withSourceWrite(db, name, async (tx) => void (await tx.query(`UPDATE \`${database}\`.purchase SET quantity = ? WHERE customerid = ? AND orderid = ? AND productid = ?`, [row.quantity + 1, row.customerid, row.orderid, row.productid])), database));
  const dynamo = dynamoClient(config.aws);
  const Key = { customer_orderid: { S: `${row.customerid}|${row.orderid}` }, productid: { N: String(row.productid) } };
  for (let i = 0; (await dynamo.send(new GetItemCommand({ TableName: target, Key, ConsistentRead: true }))).Item?.quantity?.N !== String(row.quantity + 1); i++) {
    assert.ok(i < 300, 'the change was never applied');
    await new Promise((r) => setTimeout(r, 100));
  }
  await dynamo.send(new UpdateItemCommand({ TableName: target, Key, UpdateExpression: 'SET quantity = :q', ExpressionAttributeValues: { ':q': { N: '999' } } }));

  let refusal: Error | undefined;
  for (let i = 0; !refusal; i++) {
    const outcome = await migration.approveCutover().then(() => undefined, (err: Error) => err);
    assert.ok(outcome, 'the cutover went through over a differing item');
    if (/approve again/.test(outcome.message) && !/differ/.test(outcome.message)) {
      assert.ok(i < 60, outcome.message);
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    refusal = outcome;
  }
  assert.match(refusal.message, /items changed in the last \d+ ms differ between the source and the target/);
  assert.ok(refusal.message.includes(`customer_orderid=${row.customerid}|${row.orderid}, productid=${row.productid}`), refusal.message);
  // Keys only: the message lands in Temporal's history (FERRY_FAILURE_VALUES=1 on the workers shows the items).
  assert.doesNotMatch(refusal.message, /"quantity"|"N":"999"/, 'no item contents in the failure message');
  await assert.rejects(migration.result(), /differ between the source and the target|Activity task failed|Workflow execution failed/);

  // Nothing flipped, and the fence lets the application write to MySQL again.
  assert.equal(await ferry.resolveBackend(name), 'mysql');
  const [[fence]] = (await db.query(`SELECT backend FROM \`${database}\`.ferry_routing WHERE name = ?`, [name])) as unknown as [[{ backend: string }]];
  assert.equal(fence.backend, 'mysql');
  assert.ok(await withSourceWrite(db, name, async (tx) => void (await tx.query(`UPDATE \`${database}\`.purchase SET quantity = 1 WHERE customerid = ? AND orderid = ? AND productid = ?`, [row.customerid, row.orderid, row.productid])), database), 'the fence let a write through to MySQL');
  await db.end();
});

/**
 * A migration in catch-up whose worker reaches `service` through a proxy that stops answering just before the cutover
 * is approved. With Kinesis silent the freeze takes the fence, then waits on its first call to the stream, listing the
 * shards to drain; with S3 silent it waits in the drain, since capture writes the changes it saw last to S3 before its
 * end markers. With `from`, the service goes silent only from the first request it picks. The caller calls `stop`
 * (which terminates the run if it still goes on).
 */
async function freezeOnSilentService(label: string, maxFreezeMs: number, service: 'kinesis' | 's3' | 'dynamodb' = 'kinesis', from?: (request: string) => boolean) {
  const database = await purchaseDatabase(label.replace(/-/g, '_'));
  const name = uniqueName(label);
  const spec = exampleSpec('purchase-dms.json', name, database, uniqueName('purchase'));
  // A check window as long as the test may take to approve: the write below is among the changes the freeze checks.
  spec.capture = { createStream: true, shards: 1, cutover: 'manual', maxFreezeMs, checkWindowMs: 120_000 };
  const { proxy, client, stop } = await startProxiedWorker(label, service);
  try {
    const migration = await client.startMigration(spec);
    await waitForPhase(migration, 'catch-up', 1200);
    assert.equal(await sourceWrite(database, name, 'first'), true, 'a write during catch-up went to MySQL');
    // From the freeze's first call on (its listing of the shards, for the stream): holding earlier would stall apply's
    // readers too, whose lag the approval is measured by (a reader retried after a stalled read knows no lag).
    if (from) proxy.holdFrom(from);
    else if (service === 'kinesis') proxy.holdFrom((bytes) => bytes.includes('Kinesis_20131202.ListShards'));
    else proxy.hold();
    const { approval } = await approvedCutover(migration);
    approval.catch(() => undefined); // observed by the caller, or never answered (a terminated run)
    return { database, name, client, approval, stop: () => stop(name) };
  } catch (err) {
    await stop(name);
    throw err;
  }
}

test("a stream that does not answer when the freeze lists its shards cannot hold the application's writes past maxFreezeMs: the cutover rolls back, the routing stays on MySQL", async () => {
  const { database, name, client, approval, stop } = await freezeOnSilentService('freeze-list', 5000);
  try {
    const failed = await within(approval.then(() => undefined, (err: Error) => err), 60_000, 'the freeze outlived maxFreezeMs by a minute: the listing held it');
    assert.match(String(failed?.message), /the freeze did not finish within spec\.capture\.maxFreezeMs \(5000 ms\) while listing the stream's shards.*the freeze was released and the routing left on MySQL/);
    assert.equal(await client.resolveBackend(name), 'mysql');
    assert.equal((await fenceAndSource(database, name)).fence, 'mysql', 'the fence lets writes through again');
  } finally {
    await stop();
  }
});

/**
 * A migration whose freeze waits at the fence: an application transaction holds the fence row's shared lock, the
 * cutover is approved, and a second write arrives once the freeze waits, so it queues behind the freeze's request for
 * the row's exclusive lock, as every write arriving then does. The two writes touch different rows.
 */
async function freezeWaitingAtFence(label: string, maxFreezeMs: number) {
  const database = await purchaseDatabase(label.replace(/-/g, '_'));
  const name = uniqueName(label);
  const spec = exampleSpec('purchase-dms.json', name, database, uniqueName('purchase'));
  spec.capture = { createStream: true, shards: 1, cutover: 'manual', maxFreezeMs };
  const migration = await ferry.startMigration(spec);
  await waitForPhase(migration, 'catch-up', 1200);
  const held = await heldFence(database, name);
  try {
    const { approval } = await approvedCutover(migration);
    approval.catch(() => undefined); // observed by the caller, or never answered (a terminated run)
    await freezeWaitsAtFence(database);
    return { database, name, migration, approval, held, queued: sourceWrite(database, name, 'last') };
  } catch (err) {
    await held.release();
    throw err;
  }
}

test("an application transaction holding the fence's row past maxFreezeMs holds up only itself: the freeze gives up at maxFreezeMs, and a write queued behind the freeze goes to MySQL while that transaction is still open", async () => {
  const { database, name, migration, approval, held, queued } = await freezeWaitingAtFence('fence-held', 8000);
  try {
    const failed = await within(approval.then(() => undefined, (err: Error) => err), 60_000, 'the cutover never ended');
    assert.match(
      String(failed?.message),
      /the freeze did not finish within spec\.capture\.maxFreezeMs \(8000 ms\) while taking the fence, whose row an application write transaction held all that time.*the freeze was released and the routing left on MySQL/,
    );
    // Without the freeze ending its wait, the queued write would wait as long as the held one (or innodb_lock_wait_timeout).
    assert.equal(await within(queued, 30_000, 'the write queued behind the freeze still waits'), true, 'the queued write went to MySQL');
  } finally {
    assert.equal(await held.release(), true, 'the held write went to MySQL');
  }
  await assert.rejects(migration.result(), /did not finish within spec\.capture\.maxFreezeMs|Workflow execution failed/);
  assert.equal(await ferry.resolveBackend(name), 'mysql');
  assert.equal((await fenceAndSource(database, name)).fence, 'mysql', 'the fence lets writes through again');
});

test('a run terminated while its freeze waits at the fence lets go of the fence at once: a write queued behind the freeze goes to MySQL, and the routing stays on MySQL', async () => {
  // maxFreezeMs far longer than the test waits: only the termination can end this freeze in time.
  const { database, name, held, queued } = await freezeWaitingAtFence('fence-terminated', 600_000);
  try {
    await ferry.client.workflow.getHandle(name).terminate('the test terminates the run while its freeze waits at the fence');
    // The freeze learns of it from its next heartbeat's answer (the SDK sends at most one per 8 s here), then ends its wait.
    assert.equal(await within(queued, 30_000, 'the write queued behind the freeze still waits after the run was terminated'), true, 'the queued write went to MySQL');
  } finally {
    assert.equal(await held.release(), true, 'the held write went to MySQL');
  }
  assert.equal(await ferry.resolveBackend(name), 'mysql');
  assert.equal((await fenceAndSource(database, name)).fence, 'mysql', 'the fence lets writes through again');
});

/** Resolves once another transaction holds the lock on `database`'s fence row for `name`: the freeze has taken the fence. */
async function freezeHoldsFence(database: string, name: string): Promise<void> {
  const db = await connectMysql(config.mysqlUrl);
  const locked = async () => {
    await db.beginTransaction();
    try {
      await db.query(`SELECT backend FROM \`${database}\`.ferry_routing WHERE name = ? LOCK IN SHARE MODE NOWAIT`, [name]);
      return false;
    } catch (err) {
      if ((err as { errno?: number }).errno === 1205) return true; // ER_LOCK_WAIT_TIMEOUT: NOWAIT found the row locked
      throw err;
    } finally {
      await db.rollback();
    }
  };
  try {
    await until(locked, 1500, 20, 'the freeze never took the fence');
  } finally {
    await db.end();
  }
}

/**
 * Resolves once an application write asks for the lock on `database`'s fence row. (It waits in PROCESSLIST's state
 * "Statistics", where MariaDB reads the row its whole primary key finds, and its transaction is not in INNODB_TRX.)
 */
function writeWaitsAtFence(database: string): Promise<void> {
  return untilStatementRuns(`SELECT backend FROM \`${database}\`.ferry_routing%LOCK IN SHARE MODE`, 1500, 'the write never reached the fence');
}

test('a run terminated while its freeze waits on a stream that does not answer lets go of the fence at once: a write queued behind the freeze goes to MySQL, and the routing stays on MySQL', async () => {
  // maxFreezeMs far longer than the test waits: only the termination can end this freeze in time.
  const { database, name, client, stop } = await freezeOnSilentService('freeze-terminated', 600_000);
  try {
    await terminateWithWriteQueued(client, database, name);
  } finally {
    await stop();
  }
});

/**
 * Once the freeze holds the fence: a write queued behind it is seen to wait, the run is terminated, and the write must
 * go to MySQL within 30 s with the routing left on MySQL.
 */
async function terminateWithWriteQueued(client: FerryClient, database: string, name: string): Promise<void> {
  await freezeHoldsFence(database, name);
  const queued = sourceWrite(database, name, 'last');
  await writeWaitsAtFence(database);
  const early = await Promise.race([queued.then(() => 'ended'), new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 2000))]);
  assert.equal(early, 'waiting', 'the freeze holds the fence while the service does not answer');

  await client.client.workflow.getHandle(name).terminate('the test terminates the run while its freeze waits');
  // The freeze learns of it from its next heartbeat's answer (the SDK sends at most one per 8 s here), then gives up its wait.
  assert.equal(await within(queued, 30_000, 'the write queued behind the freeze still waits after the run was terminated'), true, 'the queued write went to MySQL');
  assert.equal(await client.resolveBackend(name), 'mysql');
  assert.equal((await fenceAndSource(database, name)).fence, 'mysql', 'the fence lets writes through again');
}

test('a run terminated while its freeze drains, with capture unable to hand over the changes it saw last, lets go of the fence at once: a write queued behind the freeze goes to MySQL, and the routing stays on MySQL', async () => {
  // S3 goes silent at capture's hand-over of the changes it saw last: holding it earlier would stall capture's
  // progress writes, and with them the stream that apply's lag (and so the approval) is measured by.
  const handOver = (request: string) => request.startsWith('PUT ') && request.includes('/recent-changes.json');
  const { database, name, client, stop } = await freezeOnSilentService('drain-terminated', 600_000, 's3', handOver);
  try {
    // The freeze has told capture where to stop (the last step before it lists the shards and drains).
    const dynamo = dynamoClient(config.aws);
    const stopAtRecorded = async () => Boolean((await dynamo.send(new GetItemCommand({ TableName: 'ferry-routing', Key: { name: { S: name } }, ConsistentRead: true }))).Item?.stopAt);
    await until(stopAtRecorded, 300, 100, 'the freeze never recorded where capture stops');
    await terminateWithWriteQueued(client, database, name);
  } finally {
    await stop();
  }
});

// The check's reads, each silent from its first request: the list capture wrote once it reached the final position
// (S3), and the target's items (the freeze's one BatchGetItem).
for (const silent of [
  { service: 's3', name: 'S3', reads: 'the changes capture saw last', from: (request: string) => request.startsWith('GET ') && request.includes('/recent-changes.json') },
  { service: 'dynamodb', name: 'DynamoDB', reads: 'the items changed last', from: (request: string) => request.includes('DynamoDB_20120810.BatchGetItem') },
] as const) {
  test(`${silent.name} that stops answering when the freeze reads ${silent.reads} cannot hold the application's writes past maxFreezeMs: the cutover rolls back, the routing stays on MySQL`, async () => {
    const { database, name, client, approval, stop } = await freezeOnSilentService(`check-silent-${silent.service}`, 5000, silent.service, silent.from);
    try {
      // Past maxFreezeMs by far less than the SDK's own give-up (three attempts of a 20 s socket timeout).
      const failed = await within(approval.then(() => undefined, (err: Error) => err), 30_000, `the freeze outlived maxFreezeMs: the read of ${silent.reads} held it`);
      assert.match(String(failed?.message), /the freeze did not finish within spec\.capture\.maxFreezeMs \(5000 ms\) while checking the items changed last.*the freeze was released and the routing left on MySQL/);
      assert.equal(await client.resolveBackend(name), 'mysql');
      assert.equal((await fenceAndSource(database, name)).fence, 'mysql', 'the fence lets writes through again');
    } finally {
      await stop();
    }
  });
}

test('a worker whose host vanishes inside the freeze (its MySQL connection silent, never closed) holds the application’s writes no longer than maxFreezeMs plus the margin; the routing ends on MySQL', async () => {
  const database = await purchaseDatabase('freeze_vanish');
  const name = uniqueName('freeze-vanish');
  const spec = exampleSpec('purchase-dms.json', name, database, uniqueName('purchase'));
  const maxFreezeMs = 6_000;
  spec.source = { ...spec.source, urlEnv: 'FERRY_TEST_VANISH_URL' };
  spec.capture = { createStream: true, shards: 1, cutover: 'manual', maxFreezeMs, checkWindowMs: 120_000 };
  // The worker reaches MySQL (and the stream) through proxies that can go silent like a vanished host.
  const source = new URL(config.mysqlUrl);
  const mysqlProxy = await HoldingProxy.start(`http://${source.host}`);
  const kinesisProxy = await HoldingProxy.start(config.aws.endpoints.kinesis!);
  const proxied = new URL(config.mysqlUrl);
  proxied.host = new URL(mysqlProxy.url).host;
  const queue = uniqueName('freeze-vanish');
  const doomed = await startWorkerProcess(queue, { FERRY_TEST_VANISH_URL: proxied.toString(), AWS_ENDPOINT_URL_KINESIS: kinesisProxy.url });
  const client = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue: queue } });
  try {
    const migration = await client.startMigration(spec);
    await waitForPhase(migration, 'catch-up', 1200);
    // From the freeze's listing of the shards on, the stream does not answer: the freeze stays open, holding the fence.
    kinesisProxy.holdFrom((bytes) => bytes.includes('Kinesis_20131202.ListShards'));
    const { approval } = await approvedCutover(migration);
    approval.catch(() => undefined);
    const writing = sourceWrite(database, name, 'first');
    writing.catch(() => undefined);
    await writeWaitsAtFence(database);
    // The host vanishes: nothing of it answers, and none of its connections is closed.
    mysqlProxy.stallConnections();
    await stopProcess(doomed, 'SIGKILL');
    const wrote = await within(writing, maxFreezeMs + 5_000 + 10_000, 'the application write waiting at the fence to go through once MySQL dropped the freeze');
    assert.equal(wrote, true, 'the write went to MySQL: the freeze was rolled back');
    assert.equal((await fenceAndSource(database, name)).fence, 'mysql');
    assert.equal(await client.resolveBackend(name), 'mysql', 'the routing item agrees');
  } finally {
    await client.client.workflow.getHandle(name).terminate('the test is done').catch(() => undefined);
    await stopProcess(doomed, 'SIGKILL').catch(() => undefined);
    await mysqlProxy.close();
    await kinesisProxy.close();
    await client.close();
  }
});

test('a worker killed between the flip’s fence commit and the routing item: the fence row is the truth, and ferry resume repairs the item from it and refuses to run again', async () => {
  const database = await purchaseDatabase('flip_death');
  const name = uniqueName('flip-death');
  const spec = exampleSpec('purchase-dms.json', name, database, uniqueName('purchase'));
  spec.capture = { createStream: true, shards: 1, cutover: 'manual' };
  const queue = uniqueName('flip-death');
  const doomed = await startWorkerProcess(queue, { FERRY_FAULT_DIE_AFTER_FLIP: '1' });
  const died = new Promise((resolve) => doomed.once('exit', resolve));
  const client = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue: queue } });
  let rescue: ChildProcess | undefined;
  try {
    const migration = await client.startMigration(spec);
    await waitForPhase(migration, 'catch-up', 1200);
    const { approval } = await approvedCutover(migration);
    approval.catch(() => undefined);
    await within(died, 60_000, 'the worker to die inside the flip (FERRY_FAULT_DIE_AFTER_FLIP)');
    rescue = await startWorkerProcess(queue);
    await assert.rejects(within(migration.result(), 120_000, 'the run to end'));
    // Between the two writes: MySQL's fence has flipped, the routing item has not.
    assert.equal((await fenceAndSource(database, name)).fence, 'dynamodb');
    assert.equal(await client.resolveBackend(name), 'mysql');
    const resumed = await client.resumeMigration(name);
    await assert.rejects(within(resumed.result(), 120_000, 'the resumed run to end'), (err: Error) => {
      let cause: Error | undefined = err;
      while (cause?.cause instanceof Error) cause = cause.cause;
      assert.match(cause!.message, new RegExp(`migration ${name} has already cut over: the fence row .* says dynamodb, and the routing item .* now says so too`));
      return true;
    });
    assert.equal(await client.resolveBackend(name), 'dynamodb', 'the routing item was repaired from the fence row');
  } finally {
    await client.client.workflow.getHandle(name).terminate('the test is done').catch(() => undefined);
    if (rescue) await stopProcess(rescue);
    await client.close();
  }
});
