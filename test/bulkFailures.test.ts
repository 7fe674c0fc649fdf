/**
 * The bulk copy on bad input, end to end on the local stack: what preflight
 * refuses, what each error policy does with a bad record, and a failed run
 * that is fixed and resumed with `ferry resume` without redoing the
 * partitions it had finished.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { dynamoClient, s3Client } from '../src/aws.js';
import { FerryClient, type MigrationSpecInput } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { getJson } from '../src/s3.js';
import { describeFailure } from '../src/temporal.js';
import { idMapping, runFerry, scanAll, startFerry, stopFerry, uniqueName } from './helpers.js';

const config = loadConfig();
const database = `bulkf_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('bulk-failures');
const s3 = s3Client(config.aws);
const specDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-specs-'));
let worker: ChildProcess;
let ferry: FerryClient;

const LEDGER_ROWS = 20_000;
/** In the last of four partitions: 39 significant digits, one more than a DynamoDB number holds. */
const BAD_LEDGER_ID = 19_990;
const TOO_MANY_DIGITS = '123456789012345678901234567890123456789';
const ledgerAmount = (id: number) => String(BigInt(id) * 1_000_003n);

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`USE \`${database}\``);
    await db.query('CREATE TABLE ledger (id BIGINT PRIMARY KEY, amount DECIMAL(65,0) NOT NULL, note VARCHAR(40) NOT NULL)');
    await db.query(`INSERT INTO ledger SELECT seq, seq * 1000003, CONCAT('entry ', seq) FROM seq_1_to_${LEDGER_ROWS}`);
    await db.query(`UPDATE ledger SET amount = ${TOO_MANY_DIGITS} WHERE id = ${BAD_LEDGER_ID}`);
    // Two bad records among good ones: a 39-digit DECIMAL and a 500 KB text (DynamoDB items hold 400 KB).
    await db.query('CREATE TABLE odd (id INT PRIMARY KEY, amount DECIMAL(65,0) NOT NULL, body LONGTEXT NOT NULL)');
    await db.query("INSERT INTO odd SELECT seq, seq, CONCAT('body ', seq) FROM seq_1_to_300");
    await db.query(`UPDATE odd SET amount = ${TOO_MANY_DIGITS} WHERE id = 100`);
    await db.query("UPDATE odd SET body = REPEAT('x', 500000) WHERE id = 200");
    await db.query('CREATE TABLE big (id INT PRIMARY KEY, body LONGTEXT NOT NULL)');
    await db.query("INSERT INTO big SELECT seq, IF(seq = 20, REPEAT('y', 500000), 'small') FROM seq_1_to_50");
    // MySQL's zero dates (stored when sql_mode lacks NO_ZERO_DATE / NO_ZERO_IN_DATE): as epoch seconds they would become other days.
    await db.query("SET SESSION sql_mode = ''");
    await db.query('CREATE TABLE dated (id INT PRIMARY KEY, day DATE NOT NULL, at DATETIME(3) NOT NULL)');
    await db.query(`INSERT INTO dated VALUES
      (1, '2024-01-15', '2024-01-15 10:00:00.250'), (2, '2024-00-15', '2024-01-15 10:00:00'), (3, '2024-01-00', '2024-01-15 10:00:00'),
      (4, '0000-00-00', '2024-01-15 10:00:00'), (5, '2024-01-15', '2024-00-15 10:00:00'), (6, '1969-12-31', '1969-12-31 23:59:59.250')`);
    await db.query('CREATE TABLE x (id INT PRIMARY KEY)');
    await db.query('CREATE TABLE nokey (a INT, b INT)');
    await db.query('INSERT INTO nokey VALUES (1, 2)');
  } finally {
    await db.end();
  }
  ({ worker, ferry } = await startFerry(taskQueue));
});

after(async () => {
  fs.rmSync(specDir, { recursive: true, force: true });
  await stopFerry({ worker, ferry }, [database]);
});

/** One table, record to record, keyed by `id`, into a fresh target table. */
function tableSpec(table: string, extra: Partial<MigrationSpecInput> = {}): MigrationSpecInput & { name: string } {
  return {
    name: uniqueName(`fail-${table}`),
    source: { database },
    mapping: idMapping(database, table, uniqueName(table)),
    target: { create: true },
    ...extra,
  } as MigrationSpecInput & { name: string };
}

function targetOf(spec: MigrationSpecInput): string {
  return (spec.mapping.rules[1] as { 'target-table-name': string })['target-table-name'];
}

/** `ferry ARGS` against this file's worker, the way an operator runs it. */
function ferryCli(args: string[]) {
  return runFerry([...args, '--no-embedded-worker'], { FERRY_TASK_QUEUE: taskQueue });
}

function writeSpec(spec: MigrationSpecInput & { name: string }): string {
  const file = path.join(specDir, `${spec.name}.json`);
  fs.writeFileSync(file, JSON.stringify(spec, null, 2));
  return file;
}

async function failureOf(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (err) {
    return describeFailure(err);
  }
  assert.fail('the migration was expected to fail');
}

test('preflight refuses a selected table that does not exist, naming it and the fix; nothing is created', async () => {
  const spec = tableSpec('absent');
  const result = await ferryCli(['migrate', writeSpec(spec)]);
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.match(result.stderr, new RegExp(`table ${database}\\.absent, selected by the mapping, does not exist in the source \\(tables there: big, dated, ledger, nokey, odd, x\\); fix the selection rule`));
  await assert.rejects(dynamoClient(config.aws).send(new ScanCommand({ TableName: targetOf(spec), Limit: 1 })), { name: 'ResourceNotFoundException' });
});

test('preflight refuses a target table name DynamoDB would refuse (a source table `x` and no object-mapping rule)', async () => {
  const locator = { 'schema-name': database, 'table-name': 'x' };
  const spec = { name: uniqueName('fail-x'), source: { database }, mapping: { rules: [{ 'rule-type': 'selection', 'rule-id': '1', 'rule-name': '1', 'object-locator': locator, 'rule-action': 'include' }] }, target: { create: true } };
  const message = await failureOf((await ferry.startMigration(spec as MigrationSpecInput)).result());
  assert.match(message, new RegExp(`target table name "x" \\(for ${database}\\.x\\) is not a valid DynamoDB table name: 3–255 letters.*"target-table-name"`));
});

test('preflight refuses a table without a primary key, naming it and the fix', async () => {
  const result = await ferryCli(['migrate', writeSpec(tableSpec('nokey'))]);
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.match(result.stderr, new RegExp(`table ${database}\\.nokey has no primary key; .*add one \\(ALTER TABLE nokey ADD PRIMARY KEY`));
});

test("preflight refuses spec.sql that reads a worker's file or writes one, naming spec.sql; nothing is read, written or created", async () => {
  const secret = path.join(specDir, 'credentials');
  fs.writeFileSync(secret, 'aws_secret_access_key = wJalrXUtnFEMI-never-leaves-the-worker\n');
  const written = path.join(specDir, 'written.csv');
  const statements = [`SELECT id, (SELECT content FROM read_text('${secret}')) AS note FROM source`, `COPY (SELECT 1 AS one) TO '${written}'`];
  for (const sql of statements) {
    const spec = tableSpec('x', { sql: { x: sql } });
    const message = await failureOf((await ferry.startMigration(spec)).result());
    assert.match(message, /spec\.sql\.x (cannot run \(the SQL may read only `source`|is not a SELECT statement)/);
    assert.ok(!message.includes('wJalrXUtnFEMI'), message);
    await assert.rejects(dynamoClient(config.aws).send(new ScanCommand({ TableName: targetOf(spec), Limit: 1 })), { name: 'ResourceNotFoundException' });
  }
  assert.equal(fs.existsSync(written), false, `${written} was written`);
});

test('policy "fail": an item over 400 KB fails the migration, naming the table, the key and the limit', async () => {
  const spec = tableSpec('big', { errors: { policy: 'fail' } });
  const message = await failureOf((await ferry.startMigration(spec)).result());
  assert.match(message, new RegExp(`${database}\\.big row \\(id=20\\): column body: the item for .* is \\d+ bytes; DynamoDB items hold at most 409600 bytes \\(400 KB\\)`));
  assert.match(message, /ferry resume/);
});

test('policy "dead-letter": the oversized item and the 39-digit DECIMAL go to dead-letters.jsonl in S3, are counted, and everything else loads', async () => {
  const spec = tableSpec('odd', { errors: { policy: 'dead-letter' } });
  const report = await (await ferry.startMigration(spec)).result();

  assert.equal(report.rows, 300);
  assert.equal(report.items, 298);
  assert.equal(report.deadLetters, 2);
  assert.equal(report.tables[0]!.deadLetters, 2);
  const items = await scanAll(targetOf(spec));
  assert.deepEqual(items.map((i) => Number(i.id!.N)).sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i + 1).filter((id) => id !== 100 && id !== 200));
  for (const item of items) assert.equal(item.amount!.N, item.id!.N);

  const key = `ferry/${spec.name}/odd/part-00000/dead-letters.jsonl`;
  const body = await (await s3.send(new GetObjectCommand({ Bucket: config.stagingBucket, Key: key }))).Body!.transformToString();
  const letters = body.trim().split('\n').map((l) => JSON.parse(l) as { table: string; key: string; reason: string; row: Record<string, unknown> });
  assert.deepEqual(letters.map((l) => l.key).sort(), ['id=100', 'id=200']);
  const decimal = letters.find((l) => l.key === 'id=100')!;
  assert.equal(decimal.table, `${database}.odd`);
  assert.match(decimal.reason, /39 significant digits; DynamoDB numbers hold at most 38/);
  assert.equal(decimal.row.amount, TOO_MANY_DIGITS, 'the dead letter keeps the row as it was, digit for digit');
  assert.match(letters.find((l) => l.key === 'id=200')!.reason, /DynamoDB items hold at most 409600 bytes/);
});

test('temporal "epoch": a zero date, month or day is a dead letter, never another day; the other rows load as exact epoch seconds', async () => {
  const spec = tableSpec('dated', { errors: { policy: 'dead-letter' }, conversion: { temporal: 'epoch' } });
  const report = await (await ferry.startMigration(spec)).result();
  assert.equal(report.rows, 6);
  assert.equal(report.deadLetters, 4);
  const items = await scanAll(targetOf(spec));
  assert.deepEqual(
    items.map((i) => [i.id!.N, i.day!.N, i.at!.N]).sort(),
    [['1', '1705276800', '1705312800.25'], ['6', '-86400', '-0.75']],
  );
  const key = `ferry/${spec.name}/dated/part-00000/dead-letters.jsonl`;
  const body = await (await s3.send(new GetObjectCommand({ Bucket: config.stagingBucket, Key: key }))).Body!.transformToString();
  const reasons = Object.fromEntries(body.trim().split('\n').map((l) => JSON.parse(l) as { key: string; reason: string }).map((l) => [l.key, l.reason]));
  assert.deepEqual(Object.keys(reasons).sort(), ['id=2', 'id=3', 'id=4', 'id=5']);
  assert.match(reasons['id=2']!, /column day: value 2024-00-15 is a zero month/);
  assert.match(reasons['id=3']!, /column day: value 2024-01-00 is a zero day/);
  assert.match(reasons['id=4']!, /column day: value 0000-00-00 is a zero date/);
  assert.match(reasons['id=5']!, /column at: value 2024-00-15 10:00:00(\.000)? is a zero month/);
});

test('a run failed by a bad row is fixed in the source and resumed with `ferry resume`: finished partitions are not exported again', async () => {
  const spec = tableSpec('ledger', { bulk: { partitions: 4, concurrency: 1 }, errors: { policy: 'fail' } });
  const failed = await ferryCli(['migrate', writeSpec(spec)]);
  assert.equal(failed.code, 1, failed.stdout + failed.stderr);
  assert.match(failed.stderr, new RegExp(`${database}\\.ledger row \\(id=${BAD_LEDGER_ID}\\): column \\w+: the value is not a number DynamoDB can hold \\(more than 38 significant digits`));
  // The failure message lands in Temporal's history: the row's key, not its value (FERRY_FAILURE_VALUES=1 shows it).
  assert.ok(!failed.stderr.includes(TOO_MANY_DIGITS), 'the bad value stays out of the failure message');

  const partKey = (index: number, file: string) => `ferry/${spec.name}/ledger/part-${String(index).padStart(5, '0')}/${file}`;
  const stamp = async (key: string) => {
    const head = await s3.send(new HeadObjectCommand({ Bucket: config.stagingBucket, Key: key }));
    return `${head.LastModified?.toISOString()} ${head.ETag}`;
  };
  const before: Record<string, string> = {};
  for (const index of [0, 1, 2]) {
    assert.ok(await getJson(s3, config.stagingBucket, partKey(index, 'manifest.json')), `partition ${index} finished before the failure`);
    for (const file of ['export.json', 'rows.parquet']) before[partKey(index, file)] = await stamp(partKey(index, file));
  }
  assert.equal(await getJson(s3, config.stagingBucket, partKey(3, 'manifest.json')), undefined);
  assert.equal(await getJson(s3, config.stagingBucket, partKey(3, 'export.json')), undefined, 'the failed partition dropped its export, so a resume reads the fixed row');

  // The fix: correct the row in the source. A fresh start under the same name is refused; resume is the way.
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`UPDATE \`${database}\`.ledger SET amount = 12345 WHERE id = ${BAD_LEDGER_ID}`);
  await db.end();
  const restarted = await failureOf((await ferry.startMigration(spec)).result());
  assert.match(restarted, new RegExp(`already holds migration ${spec.name}.*ferry resume ${spec.name}`));

  await new Promise((r) => setTimeout(r, 1100)); // S3 times have 1 s resolution: a rewrite would now show.
  const resumed = await ferryCli(['resume', spec.name]);
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  assert.match(resumed.stdout, /3 partitions reused from an earlier run/);

  const report = await ferry.getMigration(spec.name).result();
  assert.deepEqual(report.partitions.map((p) => [p.index, p.reused]).sort(), [[0, true], [1, true], [2, true], [3, false]]);
  assert.equal(report.partitions.find((p) => p.index === 3)!.exportReused, false);
  for (const [key, was] of Object.entries(before)) assert.equal(await stamp(key), was, `${key} was not written again`);

  const items = await scanAll(targetOf(spec));
  assert.equal(items.length, LEDGER_ROWS);
  const wrong = items.filter((i) => i.amount!.N !== (Number(i.id!.N) === BAD_LEDGER_ID ? '12345' : ledgerAmount(Number(i.id!.N))) || i.note!.S !== `entry ${i.id!.N}`);
  assert.deepEqual(wrong.slice(0, 5), []);
});
