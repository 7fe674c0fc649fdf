/**
 * Change capture, end to end: a migration with spec.capture records the binlog
 * position before its bulk copy, ships every row change made after it to
 * Kinesis (inserts, updates, multi-row updates, primary-key changes, deletes of
 * rows not yet exported), survives a SIGKILLed worker without a gap, and stops
 * once everything up to the end of the bulk copy is in the stream. The test
 * reads the stream itself and compares it with what its writer did. Apply:
 * per table, through catch-up passes, past a SIGKILL and past connections to
 * the stream that stop answering.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { DeleteStreamCommand, GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { defaultPayloadConverter } from '@temporalio/common';
import { kinesisClient } from '../src/aws.js';
import type { ApplyResult } from '../activities/apply.js';
import { isEndMarker, type ChangeEvent } from '../src/capture/events.js';
import { FerryClient, type MigrationSpecInput } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql, type MysqlConnection } from '../src/mysql.js';
import { applyStarted, idMapping, scanAll, startFerry, startProxiedWorker, startWorkerProcess, stopFerry, stopProcess, uniqueName, within } from './helpers.js';

const config = loadConfig();
const database = `cap_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('capture');
const ROWS = 6_000;
let worker: ChildProcess;
let ferry: FerryClient;

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.acct (id INT PRIMARY KEY, balance DECIMAL(12,2) NOT NULL, note VARCHAR(50))`);
    await db.query(`INSERT INTO \`${database}\`.acct SELECT seq, seq * 1.5, CONCAT('n', seq) FROM seq_1_to_${ROWS}`);
    // Before the migration starts: must not be in the stream.
    await db.query(`UPDATE \`${database}\`.acct SET note = 'before the start' WHERE id = 1`);
  } finally {
    await db.end();
  }
  ({ worker, ferry } = await startFerry(taskQueue));
});

after(async () => {
  await stopFerry({ worker, ferry }, [database]);
});

/** What the writer did, as the change events it expects: `op key` → after image's balance/note (or 'deleted'). */
async function writeChanges(db: MysqlConnection): Promise<string[]> {
  const t = `\`${database}\`.acct`;
  const expected: string[] = [];
  for (let i = 0; i < 40; i++) {
    const id = ROWS + 1 + i;
    await db.query(`INSERT INTO ${t} VALUES (?, ?, ?)`, [id, `${i}.25`, `new ${i}`]);
    expected.push(`insert id=${id} ${i}.25 new ${i}`);
  }
  for (let i = 0; i < 40; i++) {
    const id = 100 + i * 7;
    await db.query(`UPDATE ${t} SET balance = ?, note = ? WHERE id = ?`, [`${i}.50`, `upd ${i}`, id]);
    expected.push(`update id=${id} ${i}.50 upd ${i}`);
  }
  // One statement, ten rows: ten events sharing a binlog event.
  await db.query(`UPDATE ${t} SET note = 'bulk' WHERE id BETWEEN 2000 AND 2009`);
  for (let id = 2000; id <= 2009; id++) expected.push(`update id=${id} ${(id * 1.5).toFixed(2)} bulk`);
  // Primary-key changes, in one transaction.
  await db.beginTransaction();
  for (let i = 0; i < 5; i++) {
    const id = 3000 + i;
    await db.query(`UPDATE ${t} SET id = ? WHERE id = ?`, [id + 100_000, id]);
    expected.push(`update id=${id + 100_000} ${(id * 1.5).toFixed(2)} n${id} from id=${id}`);
  }
  await db.commit();
  // Deletes, including rows at the end of the table, not exported yet (the last partition is copied last).
  for (const id of [5, 6, 5990, 5991, 5992, 5999, 6000]) {
    await db.query(`DELETE FROM ${t} WHERE id = ?`, [id]);
    expected.push(`delete id=${id}`);
  }
  return expected;
}

/** Resolves once the migration's capture has recorded its start position: every change after this counts. */
async function captureStarted(migration: { progress(): Promise<{ capture?: unknown }> }): Promise<void> {
  for (let i = 0; !(await migration.progress().catch(() => undefined))?.capture; i++) {
    assert.ok(i < 300, 'capture never started');
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function readStream(stream: string): Promise<ChangeEvent[]> {
  const kinesis = kinesisClient(config.aws);
  const { Shards = [] } = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  const events: ChangeEvent[] = [];
  for (const shard of Shards) {
    let iterator = (await kinesis.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    while (iterator) {
      const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      for (const r of page.Records ?? []) {
        const record = JSON.parse(Buffer.from(r.Data!).toString('utf8')) as ChangeEvent;
        if (!isEndMarker(record)) events.push(record);
      }
      if (!page.Records?.length && (page.MillisBehindLatest ?? 0) === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return events;
}

function describe(e: ChangeEvent): string {
  if (e.op === 'delete') return `delete id=${e.key.id}`;
  const moved = e.op === 'update' && e.before!.id !== e.after!.id ? ` from id=${e.before!.id}` : '';
  return `${e.op} id=${e.key.id} ${e.after!.balance} ${e.after!.note}${moved}`;
}

test('every change after the start position reaches the stream despite a worker SIGKILLed mid-capture, none before it; applied, the target equals the source; re-delivering the whole stream changes nothing', async () => {
  const stream = uniqueName('capture-stream');
  const target = uniqueName('acct');
  const spec: MigrationSpecInput = {
    name: uniqueName('capture'),
    source: { database },
    mapping: idMapping(database, 'acct', target),
    target: { create: true },
    bulk: { partitions: 3, concurrency: 1 },
    // Slow enough that the writer is done long before the bulk copy is.
    writeBudget: { itemsPerSecond: 400 },
    // Kept after the run: the test reads the stream and replays it.
    capture: { stream, createStream: true, shards: 2, cutover: 'none', cleanup: false },
  };
  const startedAt = Date.now();
  const migration = await ferry.startMigration(spec);
  const handle = ferry.client.workflow.getHandle(migration.workflowId);

  // Capture has recorded its start position: from here on, every change counts.
  await captureStarted(migration);
  const db = await connectMysql(config.mysqlUrl);
  const expected = await writeChanges(db);
  await db.end();

  // Kill the worker once capture has shipped some of it; a new worker resumes from the checkpoint.
  for (let i = 0; ; i++) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    const capture = pending.find((a) => a.activityType?.name === 'captureChanges');
    const payload = capture?.heartbeatDetails?.payloads?.[0];
    if (payload && defaultPayloadConverter.fromPayload<{ events: number }>(payload).events > 0) break;
    assert.ok(i < 600, 'capture never heartbeat a checkpoint');
    await new Promise((r) => setTimeout(r, 200));
  }
  await stopProcess(worker, 'SIGKILL');
  worker = await startWorkerProcess(taskQueue);

  const report = await migration.result();
  assert.ok(report.capture, 'the report describes the capture');
  // Each Query is billed as an Action on Temporal Cloud: capture asks where to stop once a second, not every 50 ms.
  const seconds = (Date.now() - startedAt) / 1000;
  assert.ok(report.capture.workflowQueries <= seconds + 5, `capture's last attempt sent ${report.capture.workflowQueries} queries in ${seconds.toFixed(0)} s`);
  assert.ok(report.capture.workflowQueries > 0);
  assert.ok(report.rows > 0, 'the bulk copy ran alongside');
  const events = await readStream(stream);
  const byVersion = new Map(events.map((e) => [e.version, e]));
  const got = [...byVersion.values()].map(describe).sort();
  assert.deepEqual(got, [...expected].sort(), `stream holds exactly the writer's ${expected.length} changes (${events.length} records, ${events.length - byVersion.size} re-shipped after the kill)`);
  assert.ok(!events.some((e) => e.after?.note === 'before the start'), 'a change made before the start position is not in the stream');

  // Bulk copy + applied changes = the source's final state, item for item.
  const final = await connectMysql(config.mysqlUrl);
  const [rows] = await final.query(`SELECT id, balance, note FROM \`${database}\`.acct`);
  await final.end();
  const want = new Map((rows as { id: number; balance: string; note: string | null }[]).map((r) => [String(r.id), `${Number(r.balance)} ${r.note}`]));
  const items = await scanAll(target);
  const have = new Map(items.map((i) => [i.id!.N!, `${Number(i.balance!.N)} ${i.note?.S ?? null}`]));
  const wrong = [...new Set([...want.keys(), ...have.keys()])].filter((id) => want.get(id) !== have.get(id)).map((id) => `id ${id}: target ${have.get(id)}, source ${want.get(id)}`);
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} rows differ`);
  assert.equal(items.length, want.size);
  const applied = report.capture.apply.reduce((n, a) => n + a.applied, 0);
  assert.ok(applied >= expected.length, `apply wrote ${applied} changes`);

  // Re-deliver the whole stream to the caught-up target: every change is stale, nothing moves.
  const replay = (await ferry.client.workflow.execute('replayChanges', { taskQueue, workflowId: uniqueName('replay'), args: [spec] })) as ApplyResult[];
  assert.equal(replay.reduce((n, a) => n + a.applied, 0), 0, 'no change was applied twice');
  assert.ok(replay.reduce((n, a) => n + a.stale, 0) >= byVersion.size, 'every change was seen and dropped as stale');
  const again = new Map((await scanAll(target)).map((i) => [i.id!.N!, JSON.stringify(i)]));
  assert.deepEqual(again, new Map(items.map((i) => [i.id!.N!, JSON.stringify(i)])), 'the target is unchanged, item for item');
  await kinesisClient(config.aws).send(new DeleteStreamCommand({ StreamName: stream }));
});

test('grouping mapping: changes set or remove only their own attribute; an order whose last product goes disappears; the target equals the source grouped', async () => {
  const t = `\`${database}\`.purchase`;
  const setup = await connectMysql(config.mysqlUrl);
  await setup.query(`CREATE TABLE ${t} (customerid INT NOT NULL, orderid INT NOT NULL, productid INT NOT NULL, quantity INT NOT NULL, PRIMARY KEY (customerid, orderid, productid))`);
  await setup.query(`INSERT INTO ${t} SELECT seq DIV 60, (seq DIV 6) MOD 10, 1000 + seq MOD 6, 1 + seq MOD 9 FROM seq_0_to_2999`);
  await setup.query(`CREATE TABLE \`${database}\`.visits (id INT PRIMARY KEY AUTO_INCREMENT, at DATETIME)`); // not migrated
  await setup.end();

  const target = uniqueName('orders');
  const locator = { 'schema-name': database, 'table-name': 'purchase' };
  const migration = await ferry.startMigration({
    name: uniqueName('capture-grouped'),
    source: { database },
    mapping: {
      rules: [
        { 'rule-type': 'selection', 'rule-id': '1', 'rule-name': '1', 'object-locator': locator, 'rule-action': 'include' },
        {
          'rule-type': 'object-mapping', 'rule-id': '2', 'rule-name': '2', 'rule-action': 'group-records-to-item', 'object-locator': locator, 'target-table-name': target,
          'mapping-parameters': { 'partition-key-name': 'customerid', 'sort-key-name': 'orderid', 'attribute-name-column': 'productid', 'attribute-value-column': 'quantity' },
        },
      ],
    },
    target: { create: true },
    bulk: { partitions: 3, concurrency: 1 },
    writeBudget: { itemsPerSecond: 40 },
    capture: { createStream: true, shards: 2, cutover: 'none' },
  });
  await captureStarted(migration);
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`INSERT INTO ${t} VALUES (1, 1, 2000, 5), (1, 1, 2001, 6)`); // new products in an existing order
  await db.query(`UPDATE ${t} SET quantity = 42 WHERE customerid = 2 AND orderid = 3 AND productid = 1001`);
  await db.query(`DELETE FROM ${t} WHERE customerid = 3 AND orderid = 3 AND productid = 1002`); // one product of an order
  await db.query(`DELETE FROM ${t} WHERE customerid = 4 AND orderid = 4`); // a whole order: its item must go
  await db.query(`UPDATE ${t} SET orderid = 20 WHERE customerid = 5 AND orderid = 5 AND productid = 1003`); // a product moves to a new order
  await db.query(`INSERT INTO ${t} VALUES (7, 30, 1000, 1), (7, 30, 1001, 2)`); // a new order
  await db.query(`UPDATE ${t} SET quantity = quantity + 100 WHERE customerid = 48`); // many rows, one statement
  await db.query(`DELETE FROM ${t} WHERE customerid = 49 AND orderid < 5`); // rows the last partition has not exported yet
  // Then, while that change is still being shipped, a commit to a table not migrated, and nothing more: capture must
  // count it as shipped, or it never reaches its stop position (read after it) and the run never ends.
  await db.query(`INSERT INTO \`${database}\`.visits (at) VALUES (NOW())`);
  const [rows] = await db.query(`SELECT customerid, orderid, productid, quantity FROM ${t}`);
  await db.end();

  const report = await migration.result();
  assert.ok(report.capture);
  const want = new Map<string, Record<string, string>>();
  for (const r of rows as { customerid: number; orderid: number; productid: number; quantity: number }[]) {
    const key = `${r.customerid}#${r.orderid}`;
    const item = want.get(key) ?? {};
    item[String(r.productid)] = String(r.quantity);
    want.set(key, item);
  }
  const have = new Map<string, Record<string, string>>();
  for (const item of await scanAll(target)) {
    const attributes: Record<string, string> = {};
    for (const [name, value] of Object.entries(item)) if (name !== 'customerid' && name !== 'orderid') attributes[name] = value.N!;
    have.set(`${item.customerid!.N}#${item.orderid!.N}`, attributes);
  }
  const sorted = (o: Record<string, string> | undefined) => (o ? JSON.stringify(Object.entries(o).sort()) : 'absent');
  const wrong = [...new Set([...want.keys(), ...have.keys()])].filter((k) => sorted(want.get(k)) !== sorted(have.get(k))).map((k) => `item ${k}: target ${sorted(have.get(k))}, source ${sorted(want.get(k))}`);
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} items differ`);
  assert.ok(!have.has('4#4'), 'the order whose products were all deleted is gone');
  assert.deepEqual(have.get('5#20'), { '1003': String(1 + ((5 * 60 + 5 * 6 + 3) % 9)) }, 'the moved product is in its new order');
});

test("spec.sql shapes change events as it shapes bulk rows: a row the SQL filters out leaves the target when an update makes it so, and enters when an update lets it through", async () => {
  const t = `\`${database}\`.ledger`;
  const setup = await connectMysql(config.mysqlUrl);
  await setup.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, balance DECIMAL(12,2) NOT NULL, note VARCHAR(50))`);
  // Every tenth row is one the SQL filters out.
  await setup.query(`INSERT INTO ${t} SELECT seq, seq * 1.25, IF(seq MOD 10 = 0, CONCAT('skip ', seq), CONCAT('n', seq)) FROM seq_1_to_2000`);
  await setup.end();

  const target = uniqueName('ledger');
  const migration = await ferry.startMigration({
    name: uniqueName('capture-sql'),
    source: { database },
    mapping: idMapping(database, 'ledger', target),
    sql: { ledger: "SELECT id, balance * 2 AS doubled, upper(note) AS note FROM source WHERE note NOT LIKE 'skip%'" },
    target: { create: true },
    bulk: { partitions: 3, concurrency: 1 },
    writeBudget: { itemsPerSecond: 300 },
    capture: { createStream: true, shards: 2, cutover: 'none' },
  });
  await captureStarted(migration);
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`INSERT INTO ${t} VALUES (2001, 1.5, 'new'), (2002, 2.5, 'skip new')`); // one in, one filtered out
  await db.query(`UPDATE ${t} SET note = 'back' WHERE id = 10`); // filtered out → through: the item appears
  await db.query(`UPDATE ${t} SET note = 'skip now' WHERE id = 11`); // through → filtered out: the item goes
  await db.query(`UPDATE ${t} SET balance = 99.99 WHERE id = 12`);
  await db.query(`UPDATE ${t} SET note = NULL WHERE id = 13`); // NULL NOT LIKE … is NULL: filtered out, as in bulk
  await db.query(`DELETE FROM ${t} WHERE id IN (14, 20, 1995)`); // through, filtered out, not exported yet
  await db.query(`UPDATE ${t} SET id = 5015 WHERE id = 15`); // primary-key change
  await db.query(`UPDATE ${t} SET balance = balance + 1 WHERE id BETWEEN 100 AND 150`);
  const [rows] = await db.query(`SELECT id, balance, note FROM ${t}`);
  await db.end();

  const report = await migration.result();
  assert.ok(report.capture);
  // The SQL's meaning, computed here: rows whose note is set and does not start with "skip", balance doubled, note upper-cased.
  const want = new Map(
    (rows as { id: number; balance: string; note: string | null }[])
      .filter((r) => r.note !== null && !r.note.startsWith('skip'))
      .map((r) => [String(r.id), `${Number(r.balance) * 2} ${r.note!.toUpperCase()}`]),
  );
  const items = await scanAll(target);
  const have = new Map(items.map((i) => [i.id!.N!, `${Number(i.doubled?.N)} ${i.note?.S}${i.balance ? ' +balance' : ''}`]));
  const wrong = [...new Set([...want.keys(), ...have.keys()])].filter((id) => want.get(id) !== have.get(id)).map((id) => `id ${id}: target ${have.get(id)}, source ${want.get(id)}`);
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} rows differ`);
  assert.equal(have.get('10'), '25 BACK', 'the row the update let through is in the target');
  assert.ok(!have.has('11') && !have.has('13'), 'the rows the updates filtered out are gone');
});

/** Tables `(id INT PRIMARY KEY, v INT)` seeded with v = id, the mapping of each to its own target (record to record), and the targets. */
async function idValueTables<T extends string>(sizes: Record<T, number>): Promise<{ mapping: MigrationSpecInput['mapping']; targets: Record<T, string> }> {
  const setup = await connectMysql(config.mysqlUrl);
  const targets = {} as Record<T, string>;
  const rules: unknown[] = [];
  for (const [table, rows] of Object.entries(sizes) as [T, number][]) {
    await setup.query(`CREATE TABLE \`${database}\`.${table} (id INT PRIMARY KEY, v INT NOT NULL)`);
    await setup.query(`INSERT INTO \`${database}\`.${table} SELECT seq, seq FROM seq_1_to_${rows}`);
    targets[table] = uniqueName(table.replace(/_/g, '-'));
    // Rule ids are unique across the document.
    for (const rule of idMapping(database, table, targets[table]).rules) rules.push({ ...(rule as object), 'rule-id': String(rules.length + 1), 'rule-name': String(rules.length + 1) });
  }
  await setup.end();
  return { mapping: { rules } as MigrationSpecInput['mapping'], targets };
}

/** Each table's rows as the source has them now: id → v. */
async function sourceRows(db: MysqlConnection, tables: string[]): Promise<Record<string, Map<string, string>>> {
  const source: Record<string, Map<string, string>> = {};
  for (const table of tables) {
    const [rows] = await db.query(`SELECT id, v FROM \`${database}\`.${table}`);
    source[table] = new Map((rows as { id: number; v: number }[]).map((r) => [String(r.id), String(r.v)]));
  }
  return source;
}

/** Asserts each table's target holds exactly `source`'s rows, none missing, none extra. */
async function assertTargetsEqual(source: Record<string, Map<string, string>>, targets: Record<string, string>): Promise<void> {
  for (const [table, want] of Object.entries(source)) {
    const have = new Map((await scanAll(targets[table]!)).map((item) => [item.id!.N!, item.v!.N!]));
    const wrong = [...new Set([...want.keys(), ...have.keys()])].filter((id) => want.get(id) !== have.get(id)).map((id) => `id ${id}: target ${have.get(id)}, source ${want.get(id)}`);
    assert.deepEqual(wrong.slice(0, 10), [], `${table}: ${wrong.length} rows differ`);
  }
}

/**
 * Starts a copy of the tables in `mapping` one partition at a time at `itemsPerSecond`, with capture and no
 * cutover, so each table's load ends well after the one before; resolves once capture has started. `client`:
 * another task queue's.
 */
async function startOneTableAtATime(name: string, mapping: MigrationSpecInput['mapping'], itemsPerSecond: number, client = ferry) {
  const migration = await client.startMigration({
    name: uniqueName(name),
    source: { database },
    mapping,
    target: { create: true },
    bulk: { partitions: 1, concurrency: 1 },
    writeBudget: { itemsPerSecond },
    capture: { createStream: true, shards: 2, cutover: 'none' },
  });
  await captureStarted(migration);
  return migration;
}

test("a table's changes are applied once its own bulk load is done, while another table is still loading; the other's follow once it is", async () => {
  const { mapping, targets } = await idValueTables({ early: 200, late: 4_000 });
  // At 150 items/s the late table loads for about 27 s after the early one.
  const migration = await startOneTableAtATime('capture-per-table', mapping, 150);
  const db = await connectMysql(config.mysqlUrl);
  // Before either load is done: applied only after each table's own load.
  await db.query(`UPDATE \`${database}\`.early SET v = -1 WHERE id <= 20`);
  await db.query(`UPDATE \`${database}\`.late SET v = -1 WHERE id <= 20`);
  await db.query(`DELETE FROM \`${database}\`.late WHERE id IN (3990, 3991)`);

  // Whichever table is copied first: once it is loaded and the other is not, its next change must reach the target.
  let first: string | undefined;
  for (let i = 0; !first; i++) {
    assert.ok(i < 600, 'no table finished its bulk load');
    const { tables } = await migration.progress();
    const done = tables.filter((t) => t.partitions > 0 && t.partitionsDone === t.partitions);
    if (done.length === 2) assert.fail('both tables finished loading before the test could look: the late one loads too fast');
    first = done[0]?.table;
    if (!first) await new Promise((r) => setTimeout(r, 100));
  }
  const other = first === 'early' ? 'late' : 'early';
  await db.query(`UPDATE \`${database}\`.${first} SET v = 4242 WHERE id = 7`);
  const firstTarget = targets[first as keyof typeof targets];
  for (let i = 0; ; i++) {
    const items = await scanAll(firstTarget);
    if (items.find((item) => item.id!.N === '7')?.v?.N === '4242') break;
    const { tables } = await migration.progress();
    const loading = tables.find((t) => t.table === other)!;
    assert.ok(loading.partitionsDone < loading.partitions, `${first}'s change reached its target only after ${other}'s bulk load was done too`);
    assert.ok(i < 300, `${first}'s change never reached its target`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const { tables } = await migration.progress();
  const loading = tables.find((t) => t.table === other)!;
  assert.ok(loading.partitionsDone < loading.partitions, `${other} finished loading before ${first}'s change was seen`);

  // Made after the other table's export, and read past by apply before that table's load is done (the budget keeps
  // it loading for seconds more): only the catch-up pass from the shard's start applies it.
  await db.query(`UPDATE \`${database}\`.${other} SET v = 4343 WHERE id = 8`);
  await new Promise((r) => setTimeout(r, 1500));
  await migration.setWriteBudget(null);
  const source = await sourceRows(db, ['early', 'late']);
  await db.end();
  await migration.result();
  await assertTargetsEqual(source, targets);
});

test('a reader SIGKILLed in the middle of a catch-up pass finishes the pass on the new worker: the target equals the source', async () => {
  const { mapping, targets } = await idValueTables({ pass_a: 100, pass_b: 3_000 });
  // At 200 items/s pass_b loads for about 15 s after pass_a: the readers apply pass_a and skip pass_b's 12,000 changes meanwhile.
  const migration = await startOneTableAtATime('capture-pass-kill', mapping, 200);
  const db = await connectMysql(config.mysqlUrl);
  for (let round = 0; round < 4; round++) await db.query(`UPDATE \`${database}\`.pass_b SET v = v + 1000`);
  await db.query(`UPDATE \`${database}\`.pass_a SET v = -v WHERE id <= 10`);

  // Once pass_b is loaded, each reader makes a pass over its shard's start for it: kill the worker inside one.
  const handle = ferry.client.workflow.getHandle(migration.workflowId);
  for (let i = 0; ; i++) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    const inPass = pending.some((a) => {
      const payload = a.activityType?.name === 'applyChanges' ? a.heartbeatDetails?.payloads?.[0] : undefined;
      return payload !== undefined && defaultPayloadConverter.fromPayload<ApplyResult>(payload).catchUp?.sequence !== undefined;
    });
    if (inPass) break;
    assert.ok(i < 1500, 'no reader was seen inside a catch-up pass');
    await new Promise((r) => setTimeout(r, 100));
  }
  await stopProcess(worker, 'SIGKILL');
  worker = await startWorkerProcess(taskQueue);

  const source = await sourceRows(db, ['pass_a', 'pass_b']);
  await db.end();
  await migration.result();
  await assertTargetsEqual(source, targets);
});

/**
 * A migration whose worker reaches `service` through a proxy that, once capture and apply are at work, makes the
 * connections open at that moment go silent, as ones a middlebox dropped do: their next calls get no answer. Capture
 * and apply heartbeat on a clock, so a call that hangs does not look like a dead worker: only giving up on the
 * connection gets them going again. The run must still finish with every change in the target.
 */
async function survivesSilentConnections(service: 'kinesis' | 's3', table: string): Promise<void> {
  const { proxy, client, stop } = await startProxiedWorker(`capture-${table}`, service);
  let workflowId: string | undefined;
  try {
    const { mapping, targets } = await idValueTables({ [table]: 2_000 });
    // At 125 items/s the copy takes about 16 s: apply reads its shards all along, capture ships what the writes below make
    // and saves its position every 5 s.
    const migration = await startOneTableAtATime(`capture-${table}`, mapping, 125, client);
    workflowId = migration.workflowId;
    await applyStarted(migration);
    // For S3 also the connections opened in the next 6 s: the SDK sends a write with `Expect: 100-continue`, on a
    // connection it does not keep, so capture's next progress write (every 5 s) is on a new one.
    proxy.stallConnections(service === 's3' ? 6_000 : 0);
    const db = await connectMysql(config.mysqlUrl);
    await db.query(`UPDATE \`${database}\`.${table} SET v = v + 1000 WHERE id <= 500`);
    await db.query(`DELETE FROM \`${database}\`.${table} WHERE id BETWEEN 600 AND 610`);
    await db.query(`INSERT INTO \`${database}\`.${table} VALUES (9001, 1)`);
    const source = await sourceRows(db, [table]);
    await db.end();
    await within(migration.result(), 180_000, `the migration never finished: a silent connection to ${service} stopped capture or apply for good`);
    assert.ok(proxy.dropped > 0, 'a call went out on a silent connection');
    await assertTargetsEqual(source, targets);
  } finally {
    await stop(workflowId);
  }
}

test('a connection to the stream that stops answering in the middle of a call costs capture and apply a timeout, not the migration: every change arrives', async () => {
  await survivesSilentConnections('kinesis', 'stall');
});

test('a connection to S3 that stops answering costs capture a timeout, not the migration: its progress is saved and every change arrives', async () => {
  // Capture saves its position to S3 every 5 s, the load its manifest: a write that hangs would hold the run for good.
  await survivesSilentConnections('s3', 's3stall');
});
