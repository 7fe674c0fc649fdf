/**
 * Resuming a migration with change capture (`ferry resume`): the new run keeps
 * the original start position; it goes on from where the failed run had
 * shipped to when the stream still holds every change since the start, ships
 * everything again when the stream may have lost some (the start is older
 * than the stream's retention), and refuses, naming the file and what to do,
 * when the source's binlog no longer holds the position. Time passing and a
 * purged binlog are simulated by rewriting the start record in staging.
 * And an abort during the final drain of a run without cutover, while the
 * stream does not answer (a proxy holds its traffic): the run ends cancelled
 * with nothing left running, and `ferry resume` delivers every change.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { s3Client } from '../src/aws.js';
import type { BinlogPosition } from '../src/capture/events.js';
import { FerryClient, type MigrationSpecInput } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { getJson, putJson } from '../src/s3.js';
import { activitiesLeftRunning, applyStarted, idMapping, runFerry, scanAll, startFerry, startProxiedWorker, stopFerry, uniqueName, within } from './helpers.js';

const config = loadConfig();
const s3 = s3Client(config.aws);
const database = `capres_${uniqueName('t').replace(/-/g, '_')}`;
const otherDatabase = `${database}_other`;
const taskQueue = uniqueName('capture-resume');
const specDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-capres-'));
const ROWS = 2_000;
const BAD_ID = 1_900;
const TOO_MANY_DIGITS = '1'.repeat(39);
let worker: ChildProcess;
let ferry: FerryClient;

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.ledger (id INT PRIMARY KEY, amount DECIMAL(65,0) NOT NULL, note VARCHAR(40))`);
    await db.query(`INSERT INTO \`${database}\`.ledger SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_${ROWS}`);
    // A value DynamoDB cannot hold, in the last partition: the first runs fail there.
    await db.query(`UPDATE \`${database}\`.ledger SET amount = ${TOO_MANY_DIGITS} WHERE id = ${BAD_ID}`);
    await db.query(`CREATE TABLE \`${database}\`.drained (id INT PRIMARY KEY, amount DECIMAL(65,0) NOT NULL, note VARCHAR(40))`);
    await db.query(`INSERT INTO \`${database}\`.drained SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_${ROWS}`);
    // For the schema-change test: a migrated table, and two tables whose names a substring match would take for it.
    await db.query(`CREATE TABLE \`${database}\`.emptied (id INT PRIMARY KEY, amount DECIMAL(65,0) NOT NULL, note VARCHAR(40))`);
    await db.query(`INSERT INTO \`${database}\`.emptied SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_400`);
    await db.query(`CREATE TABLE \`${database}\`.emptied_archive (id INT PRIMARY KEY)`);
    await db.query(`CREATE TABLE \`${database}\`.dated (id INT PRIMARY KEY, day DATE NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.dated SELECT seq, '2024-01-15' FROM seq_1_to_20`);
    await db.query(`CREATE DATABASE \`${otherDatabase}\``);
    await db.query(`CREATE TABLE \`${otherDatabase}\`.emptied (id INT PRIMARY KEY)`);
  } finally {
    await db.end();
  }
  ({ worker, ferry } = await startFerry(taskQueue));
});

after(async () => {
  await stopFerry({ worker, ferry }, [database, otherDatabase]);
  fs.rmSync(specDir, { recursive: true, force: true });
});

/** `ferry ARGS` against this file's worker, the way an operator runs it. */
function ferryCli(args: string[]) {
  return runFerry([...args, '--no-embedded-worker'], { FERRY_TASK_QUEUE: taskQueue });
}

async function sql(statement: string): Promise<void> {
  const db = await connectMysql(config.mysqlUrl);
  await db.query(statement);
  await db.end();
}

/** `target` holds exactly `table`'s rows (id, amount, note); returns its items as `amount note` by id. */
async function assertTargetEqualsSource(table: string, target: string): Promise<Map<string, string>> {
  const db = await connectMysql(config.mysqlUrl);
  const [rows] = await db.query(`SELECT id, amount, note FROM ${table}`);
  await db.end();
  const want = new Map((rows as { id: number; amount: string; note: string | null }[]).map((r) => [String(r.id), `${r.amount} ${r.note}`]));
  const have = new Map((await scanAll(target)).map((i) => [i.id!.N!, `${i.amount!.N} ${i.note?.S ?? null}`]));
  const wrong = [...new Set([...want.keys(), ...have.keys()])].filter((id) => want.get(id) !== have.get(id)).map((id) => `id ${id}: target ${have.get(id)}, source ${want.get(id)}`);
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} rows differ`);
  return have;
}

test('ferry resume of a capture run goes on from where it had shipped while the stream holds every change, ships everything again when it may not, and refuses when the binlog lost the position', async () => {
  const name = uniqueName('capres');
  const target = uniqueName('ledger');
  const spec: MigrationSpecInput = {
    name,
    source: { database },
    mapping: idMapping(database, 'ledger', target),
    target: { create: true },
    bulk: { partitions: 4, concurrency: 1 },
    writeBudget: { itemsPerSecond: 250 },
    errors: { policy: 'fail' },
    capture: { createStream: true, shards: 1, cutover: 'none' },
  };
  const file = path.join(specDir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(spec));
  const t = `\`${database}\`.ledger`;

  // Run 1: changes made while it copies are captured; then it fails on the bad row.
  const run1 = ferryCli(['migrate', file]);
  const migration = ferry.getMigration(name);
  for (let i = 0; (await migration.progress().catch(() => undefined))?.phase !== 'bulk'; i++) {
    assert.ok(i < 600, 'the first run never reached the bulk copy');
    await new Promise((r) => setTimeout(r, 100));
  }
  await sql(`UPDATE ${t} SET note = 'run 1' WHERE id <= 50`);
  await sql(`DELETE FROM ${t} WHERE id BETWEEN 51 AND 60 OR id BETWEEN 1950 AND 1960`);
  await sql(`INSERT INTO ${t} VALUES (5001, 1, 'new in run 1'), (5002, 2, 'new in run 1')`);
  const failed = await run1;
  assert.equal(failed.code, 1, failed.stdout + failed.stderr);
  assert.match(failed.stderr, new RegExp(`${database}\\.ledger row \\(id=${BAD_ID}\\)`));

  const startKey = `ferry/${name}/capture.json`;
  const progressKey = `ferry/${name}/capture-progress.json`;
  const recorded = (await getJson<{ start: BinlogPosition; recordedAt: string }>(s3, config.stagingBucket, startKey))!;
  const shipped1 = (await getJson<{ position: BinlogPosition }>(s3, config.stagingBucket, progressKey))!.position;
  assert.ok(shipped1.file > recorded.start.file || shipped1.position > recorded.start.position, 'the failed run had shipped past its start');
  await sql(`UPDATE ${t} SET note = 'between runs' WHERE id BETWEEN 61 AND 80`);

  // As if 30 hours had passed: the stream (24 h retention) may have lost the first changes, so capture ships them all again.
  await putJson(s3, config.stagingBucket, startKey, { ...recorded, recordedAt: new Date(Date.now() - 30 * 3_600_000).toISOString() });
  const run2 = await ferryCli(['resume', name]);
  assert.equal(run2.code, 1, run2.stdout + run2.stderr);
  assert.match(
    run2.stdout,
    new RegExp(`capture started at ${recorded.start.file}:${recorded.start.position} on .*, 30\\.0 h ago; stream \\S+ keeps records 24 h, so the oldest changes may be gone from it: capture ships every change again from the start`),
  );
  assert.match(run2.stderr, new RegExp(`row \\(id=${BAD_ID}\\)`), 'the bad row still fails the run');

  // As if the binlog had been purged: the position cannot be read any more, and the resume is refused before anything runs.
  await putJson(s3, config.stagingBucket, startKey, { ...recorded, start: { file: 'purged-bin.000001', position: 4 }, recordedAt: new Date(Date.now() - 30 * 3_600_000).toISOString() });
  const run3 = await ferryCli(['resume', name]);
  assert.equal(run3.code, 1, run3.stdout + run3.stderr);
  assert.match(run3.stderr, /the source's binlog no longer has purged-bin\.000001 \(it has \S+ to \S+; binlog_expire_logs_seconds purged it\), so the changes made since then cannot be read any more and this migration cannot be resumed\. Start it again under a new name/);

  // The real start back, the bad row fixed: capture goes on from where the last run had shipped to.
  await putJson(s3, config.stagingBucket, startKey, recorded);
  await sql(`UPDATE ${t} SET amount = 7 WHERE id = ${BAD_ID}`);
  await sql(`UPDATE ${t} SET id = id + 10000 WHERE id = 90`);
  const shipped = (await getJson<{ position: BinlogPosition }>(s3, config.stagingBucket, progressKey))!.position;
  const run4 = await ferryCli(['resume', name]);
  assert.equal(run4.code, 0, run4.stdout + run4.stderr);
  assert.match(run4.stdout, new RegExp(`still holds every change since then \\(it keeps records 24 h\\), so capture goes on from ${shipped.file}:${shipped.position}, where the earlier run had shipped to`));
  assert.match(run4.stdout, new RegExp(`report: capture: \\d+ changes shipped to \\S+ from ${shipped.file}:${shipped.position} to `));
  // Rows deleted since the first run planned the copy: the finished copy still reads 100%, not the share of planned rows it found.
  const { searchAttributes } = await ferry.client.workflow.getHandle(name).describe();
  assert.deepEqual([searchAttributes.FerryPhase, searchAttributes.FerryPercent], [['done'], [100]]);

  const have = await assertTargetEqualsSource(t, target);
  assert.equal(have.get('5001'), '1 new in run 1');
  assert.ok(!have.has('55') && !have.has('1955') && !have.has('90') && have.has('10090'));
});

test('an abort while a run without cutover drains, with the stream not answering, ends the run with nothing of it left running; ferry resume then delivers every change', async () => {
  // This run's worker reaches Kinesis through a proxy that can stop answering, as a stalled stream does.
  const { proxy, queue, stop } = await startProxiedWorker('capture-drain');
  const cli = (args: string[]) => runFerry([...args, '--no-embedded-worker'], { FERRY_TASK_QUEUE: queue });
  const name = uniqueName('capdrain');
  const target = uniqueName('drained');
  try {
    const file = path.join(specDir, `${name}.json`);
    const spec: MigrationSpecInput = {
      name,
      source: { database },
      mapping: idMapping(database, 'drained', target),
      target: { create: true },
      bulk: { partitions: 2, concurrency: 1 },
      writeBudget: { itemsPerSecond: 250 },
      capture: { createStream: true, shards: 1, cutover: 'none' },
    };
    fs.writeFileSync(file, JSON.stringify(spec));
    const t = `\`${database}\`.drained`;
    const migrating = cli(['migrate', file]);
    const migration = ferry.getMigration(name);
    const handle = ferry.client.workflow.getHandle(name);
    // Capture and apply both at work, the copy still going.
    await applyStarted(migration);

    // The stream stops answering during the copy; the source changes meanwhile, so capture has records it cannot ship.
    proxy.hold();
    await sql(`UPDATE ${t} SET note = 'held' WHERE id <= 100`);
    await sql(`DELETE FROM ${t} WHERE id BETWEEN 101 AND 110`);
    await sql(`INSERT INTO ${t} VALUES (9001, 1, 'new while held')`);
    assert.equal((await migration.progress()).phase, 'bulk', 'the changes were made before the drain began');
    // The copy ends and the run drains: it has read where capture is to stop, and waits for capture and apply to get there.
    for (let i = 0; (await handle.query<BinlogPosition | undefined>('captureStopAt')) === undefined; i++) {
      assert.ok(i < 1200, 'the run never began its drain');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await migration.progress()).phase, 'catch-up');

    // Capture and apply are out of the abort's reach until the run stops them, and both wait on the stream: the abort
    // must not wait for a drain that cannot end.
    const aborted = await within(runFerry(['abort', name]), 120_000, 'the abort did not end the run while the stream was not answering');
    assert.equal(aborted.code, 0, aborted.stdout + aborted.stderr);
    assert.match(aborted.stdout, new RegExp(`abort: ${name} is cancelled; nothing of it runs any more`));
    assert.match(aborted.stdout, new RegExp(`abort: 2 of 2 partitions had finished\\. .*\`ferry resume ${name}\``));
    const migrated = await migrating;
    assert.equal(migrated.code, 1, migrated.stdout + migrated.stderr);
    assert.match(migrated.stderr, new RegExp(`${name} was aborted`));
    assert.equal(await migration.status(), 'CANCELLED', 'aborted, not completed once the stream answered');
    assert.deepEqual((await handle.describe()).searchAttributes.FerryPhase, ['aborted']);
    assert.deepEqual(await activitiesLeftRunning(ferry, name), [], 'capture and apply stopped before the run ended');

    // The stream answers again: the resumed run reuses both partitions, ships what capture could not, and applies it.
    proxy.release();
    const resumed = await cli(['resume', name]);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    assert.match(resumed.stdout, /2 partitions reused from an earlier run/);
    const have = await assertTargetEqualsSource(`\`${database}\`.drained`, target);
    assert.equal(have.get('9001'), '1 new while held');
    assert.equal(have.get('50'), '50 held');
    assert.ok(!have.has('105'));
  } finally {
    await stop(name);
  }
});

test('a TRUNCATE of a migrated table stops the run naming its binlog position; schema changes of other tables do not; `ferry resume --skip-ddl` goes on past it', async () => {
  const name = uniqueName('capddl');
  const target = uniqueName('emptied');
  const spec: MigrationSpecInput = {
    name,
    source: { database },
    mapping: idMapping(database, 'emptied', target),
    target: { create: true },
    bulk: { partitions: 2, concurrency: 1 },
    writeBudget: { itemsPerSecond: 100 },
    capture: { createStream: true, shards: 1, cutover: 'none' },
  };
  const file = path.join(specDir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(spec));
  const t = `\`${database}\`.emptied`;

  const run1 = ferryCli(['migrate', file]);
  await applyStarted(ferry.getMigration(name));
  // Names that contain the migrated one, or are it in another database: not its schema change.
  await sql(`ALTER TABLE \`${database}\`.emptied_archive ADD COLUMN x INT`);
  await sql(`ALTER TABLE \`${otherDatabase}\`.emptied ADD COLUMN x INT`);
  await sql(`INSERT INTO ${t} VALUES (9001, 1, 'before the truncate')`);
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`USE \`${database}\``);
  await db.query('TRUNCATE emptied'); // unqualified: the event's default database names it
  await db.end();
  await sql(`INSERT INTO ${t} VALUES (9002, 2, 'after the truncate')`);

  const failed = await within(run1, 300_000, 'the run did not stop on the TRUNCATE');
  assert.equal(failed.code, 1, failed.stdout + failed.stderr);
  const refusal = new RegExp(
    `the schema of migrated table ${database}\\.emptied changed during the migration: TRUNCATE TABLE at (\\S+:\\d+) \\("TRUNCATE emptied"\\); ferry does not follow schema changes\\. ` +
      `Either start a new migration .* \`ferry resume ${name} --skip-ddl \\1\``,
  );
  const at = refusal.exec(failed.stderr)?.[1];
  assert.ok(at, `the failure names the TRUNCATE and how to go on past it:\n${failed.stderr}`);

  // The operator decided the target may keep its rows: the resumed run passes that one statement and ships what follows.
  const resumed = await within(ferryCli(['resume', name, '--skip-ddl', at]), 300_000, 'the resumed run did not end');
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  assert.match(resumed.stdout, new RegExp(`capture going on past the schema change at ${at.replace(/\./g, '\\.')}`));
  const items = new Map((await scanAll(target)).map((i) => [i.id!.N!, i.note?.S]));
  assert.equal(items.get('9001'), 'before the truncate');
  assert.equal(items.get('9002'), 'after the truncate', 'a change after the skipped statement arrived');
});

test('a change that writes a zero month fails the run as a bad record in catch-up, naming the column, as the bulk copy does', async () => {
  const name = uniqueName('capdate');
  const spec: MigrationSpecInput = {
    name,
    source: { database },
    mapping: idMapping(database, 'dated', uniqueName('dated')),
    target: { create: true },
    errors: { policy: 'fail' },
    conversion: { temporal: 'epoch' },
    capture: { createStream: true, shards: 1, cutover: 'manual' },
  };
  const file = path.join(specDir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(spec));
  const run = ferryCli(['migrate', file]);
  const migration = ferry.getMigration(name);
  // The bulk copy is done (its rows were good); only change capture sees the bad value.
  for (let i = 0; (await migration.progress().catch(() => undefined))?.phase !== 'catch-up'; i++) {
    assert.ok(i < 1200, 'the run never reached catch-up');
    await new Promise((r) => setTimeout(r, 100));
  }
  const db = await connectMysql(config.mysqlUrl);
  await db.query("SET SESSION sql_mode = ''");
  await db.query(`UPDATE \`${database}\`.dated SET day = '2024-00-15' WHERE id = 7`);
  await db.end();
  const failed = await within(run, 120_000, 'the run did not fail on the bad change').catch(async (err: unknown) => {
    await ferry.client.workflow.getHandle(name).terminate('the bad change did not fail the run'); // it waits for its cutover: end it
    await run;
    throw err;
  });
  assert.equal(failed.code, 1, failed.stdout + failed.stderr);
  // Named without the value, which would land in Temporal's history (the dead-letter reason keeps it).
  assert.match(failed.stderr, /column day: value ‹value› is a zero month, which names no day of the calendar/);
  assert.ok(!failed.stderr.includes('2024-00-15'), 'the bad value stays out of the failure message');
});
