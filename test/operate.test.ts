/**
 * Operating a running migration, end to end: started from the Temporal CLI
 * with a plain JSON spec, paused and resumed by Signal, its write budget
 * changed by Update (and a bad budget refused), its progress read by Query and
 * its phase by search attribute, while DynamoDB throttles writes beyond
 * 2,000 items/s (the worker's FERRY_FAULT_WRITE_CAPACITY hook: DynamoDB Local
 * never throttles on its own). Nothing is lost. The same again through
 * ferry's own CLI: status, pause, throttle, continue, watch; an abort while
 * a partition loads, then `ferry resume`; and `ferry migrate` interrupted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { activitiesLeftRunning, idMapping, ROOT, runFerry, runProcess, TSX_LOADER, scanAll, startWorkerProcess, stopProcess, temporalCli, uniqueName } from './helpers.js';

const config = loadConfig();
const database = `operate_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('operate');
const ROWS = 30_000;
let worker: ChildProcess;
let ferry: FerryClient;
const specDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-operate-'));

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.orders (id BIGINT PRIMARY KEY, total DECIMAL(10,2) NOT NULL, placed DATETIME NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.orders SELECT seq, seq / 4, '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_${ROWS}`);
  } finally {
    await db.end();
  }
  worker = await startWorkerProcess(taskQueue, { FERRY_FAULT_WRITE_CAPACITY: '2000' });
  ferry = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } });
});

after(async () => {
  await ferry?.close();
  if (worker) await stopProcess(worker);
  fs.rmSync(specDir, { recursive: true, force: true });
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await db.end();
});

/** Three partitions loaded one at a time under a write budget: slow enough to operate while it runs. */
function slowSpec(name: string, target: string) {
  return {
    name,
    source: { database },
    mapping: idMapping(database, 'orders', target),
    target: { create: true },
    bulk: { partitions: 3, concurrency: 1 },
    writeBudget: { itemsPerSecond: 3000 },
  };
}

/** Every one of the ROWS orders has its item in `target`; returns the items. */
async function assertEveryRowArrived(target: string): Promise<Record<string, AttributeValue>[]> {
  const items = await scanAll(target);
  const ids = new Set(items.map((i) => Number(i.id!.N)));
  assert.equal(ids.size, ROWS, 'every row arrived once');
  return items;
}

const temporal = (args: string[]) => runProcess(temporalCli(), [...args, '--address', config.temporal.address]);

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('started from the Temporal CLI, paused, re-budgeted by Update, resumed, throttled: it completes with every row', async () => {
  const name = uniqueName('operate');
  const target = uniqueName('orders');
  const spec = slowSpec(name, target);
  const specFile = path.join(specDir, 'spec.json');
  fs.writeFileSync(specFile, JSON.stringify(spec));

  const started = await temporal(['workflow', 'start', '--type', 'migrateToDynamo', '--task-queue', taskQueue, '--workflow-id', name, '--input-file', specFile]);
  assert.equal(started.code, 0, started.stdout + started.stderr);
  const migration = ferry.getMigration(name);
  await migration.pause();

  // Paused before the fan-out: it plans, then launches nothing.
  await until('the bulk phase', async () => ((await migration.progress()).phase === 'bulk' ? true : undefined));
  await new Promise((r) => setTimeout(r, 2000)); // room for a partition a broken pause would launch
  const paused = await migration.progress();
  assert.equal(paused.paused, true);
  assert.deepEqual(paused.partitionsRunning, []);
  assert.equal(paused.tables[0]!.partitionsDone, 0);
  assert.equal(paused.tables[0]!.partitions, 3);

  const queried = await temporal(['workflow', 'query', '--type', 'progress', '--workflow-id', name, '--output', 'json']);
  assert.equal(queried.code, 0, queried.stderr);
  assert.match(queried.stdout, /"paused":\s*true/);
  const listed = await until('the search attribute FerryPhase = bulk', async () => {
    const list = await temporal(['workflow', 'list', '--query', `WorkflowId = '${name}' AND FerryPhase = 'bulk'`]);
    return list.stdout.includes(name) ? list.stdout : undefined;
  });
  assert.match(listed, /Running/);

  await assert.rejects(migration.setWriteBudget(-5), /write budget must be a positive number of items per second, or null for no limit; got -5/);
  assert.equal((await migration.progress()).writeBudget, 3000, 'a refused update changes nothing');
  await migration.setWriteBudget(null);
  assert.equal((await migration.progress()).writeBudget, undefined);

  await migration.resume();
  const report = await migration.result();

  assert.equal(report.rows, ROWS);
  assert.equal(report.items, ROWS);
  const throttled = report.partitions.reduce((n, p) => n + p.throttled, 0);
  assert.ok(throttled > 0, `DynamoDB throttled some write calls (${throttled}) and each was retried`);
  const description = await ferry.client.workflow.getHandle(name).describe();
  assert.deepEqual(description.searchAttributes.FerryPhase, ['done']);
  assert.deepEqual(description.searchAttributes.FerryPercent, [100]);

  const items = await assertEveryRowArrived(target);
  for (const item of items) assert.equal(Number(item.total!.N), Number(item.id!.N) / 4, `total of id ${item.id!.N}`);
});

test("operated from ferry's CLI: paused, shown, re-budgeted, continued and watched to the end; every row arrives, and bad requests are refused by name", async () => {
  const name = uniqueName('operate-cli');
  const target = uniqueName('orders');
  const migration = await ferry.startMigration(slowSpec(name, target));

  const paused = await runFerry(['pause', name]);
  assert.equal(paused.code, 0, paused.stderr);
  assert.match(paused.stdout, new RegExp(`pause: ${name} starts no new partition`));
  // The partition in flight when the pause arrived (if any) finishes; then nothing starts.
  const held = await until('the partitions in flight to finish', async () => {
    const p = await migration.progress();
    return p.phase === 'bulk' && p.partitionsRunning.length === 0 ? p : undefined;
  });
  await new Promise((r) => setTimeout(r, 2000)); // room for a partition a broken pause would launch
  const stillHeld = await migration.progress();
  assert.deepEqual(stillHeld.partitionsRunning, []);
  assert.equal(stillHeld.tables[0]!.partitionsDone, held.tables[0]!.partitionsDone);
  assert.ok(stillHeld.tables[0]!.partitionsDone < 3, 'the pause held back at least one partition');

  const status = await runFerry(['status', name]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`status: ${name}: running`));
  assert.match(status.stdout, /phase bulk; [\d,]+ of 30,000 rows .*PAUSED .*write budget 3,000 items\/s/);

  const refused = await runFerry(['throttle', name, '0']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /the write budget must be a positive number of items per second, or "off" for no limit; got "0"/);
  const throttled = await runFerry(['throttle', name, '2500']);
  assert.equal(throttled.code, 0, throttled.stderr);
  assert.match(throttled.stdout, new RegExp(`throttle: ${name} has a write budget of 2,500 items/s`));
  assert.equal((await migration.progress()).writeBudget, 2500);

  const continued = await runFerry(['continue', name]);
  assert.equal(continued.code, 0, continued.stderr);
  assert.match(continued.stdout, new RegExp(`continue: ${name} starts partitions again`));

  const watched = await runFerry(['watch', name]);
  assert.equal(watched.code, 0, watched.stderr);
  assert.match(watched.stdout, new RegExp(`report: ${ROWS} rows, ${ROWS} items in `));

  const late = await runFerry(['pause', name]);
  assert.equal(late.code, 1);
  assert.match(late.stderr, new RegExp(`migration ${name} is not running \\(it is completed\\): nothing to pause`));
  const done = await runFerry(['status', name]);
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stdout, new RegExp(`status: ${name}: completed[\\s\\S]*report: ${ROWS} rows, ${ROWS} items`));
  for (const command of [['status'], ['cutover'], ['resume', '--no-embedded-worker']]) {
    const unknown = await runFerry([...command, `${name}-nope`]);
    assert.equal(unknown.code, 1, `ferry ${command[0]} of an unknown name fails`);
    assert.match(unknown.stderr, new RegExp(`no migration named ${name}-nope in namespace `), `ferry ${command[0]}`);
  }

  await assertEveryRowArrived(target);
});

test("aborted from ferry's CLI while a partition loads: the run ends only after every activity it started, nothing writes after it, and ferry resume goes on from the finished partitions", async () => {
  const name = uniqueName('operate-abort');
  const target = uniqueName('orders');
  const migration = await ferry.startMigration(slowSpec(name, target));
  await until('a partition loading after one has finished', async () => {
    const p = await migration.progress();
    return p.tables[0] && p.tables[0].partitionsDone >= 1 && p.rowsInFlight > 0 ? p : undefined;
  });

  const aborted = await runFerry(['abort', name]);
  assert.equal(aborted.code, 0, aborted.stdout + aborted.stderr);
  assert.match(aborted.stdout, new RegExp(`abort: stopping ${name} \\(phase bulk\\): partitions in flight stop at their next checkpoint`));
  assert.match(aborted.stdout, new RegExp(`abort: ${name} is cancelled; nothing of it runs any more`));
  const finished = Number(/abort: (\d) of 3 partitions had finished\. .*`ferry resume /.exec(aborted.stdout)?.[1]);
  assert.ok(finished >= 1 && finished < 3, aborted.stdout);
  assert.equal(await migration.status(), 'CANCELLED');
  const description = await ferry.client.workflow.getHandle(name).describe();
  assert.deepEqual(description.searchAttributes.FerryPhase, ['aborted'], 'an aborted run is told apart from a failed one');

  // The loading partition stopped before the run ended: nothing it started can still write to the target.
  assert.deepEqual(await activitiesLeftRunning(ferry, name), []);
  const loaded = (await scanAll(target)).length;
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal((await scanAll(target)).length, loaded, 'nothing wrote to the target after the abort');
  assert.ok(loaded < ROWS, `the abort stopped the copy short (${loaded} items)`);

  const watched = await runFerry(['watch', name]);
  assert.equal(watched.code, 1);
  assert.match(watched.stderr, new RegExp(`${name} was aborted \\(\`ferry abort\`, or cancelled in Temporal\\) and nothing of it runs any more; \`ferry resume ${name}\` goes on`));
  const late = await runFerry(['abort', name]);
  assert.equal(late.code, 1);
  assert.match(late.stderr, new RegExp(`migration ${name} is not running \\(it is cancelled\\): nothing to abort`));
  const status = await runFerry(['status', name]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`status: ${name}: cancelled[\\s\\S]*it was aborted \\(cancelled\\); \`ferry resume ${name}\``));

  const resumed = await runFerry(['resume', name, '--no-embedded-worker'], { FERRY_TASK_QUEUE: taskQueue });
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  assert.match(resumed.stdout, new RegExp(`${finished} partitions reused from an earlier run`));
  const report = await migration.result();
  assert.equal(report.partitions.filter((p) => p.reused).length, finished);
  // One line for the migration, its latest run, though it has two (the aborted one and the resumed one).
  await until('ferry list to show the resumed run', async () => {
    const listed = await runFerry(['list', '--limit', '1000']);
    const lines = listed.stdout.split('\n').filter((line) => line.includes(name));
    return lines.length === 1 && /completed\s+done\s+100\.0%/.test(lines[0]!) ? true : undefined;
  });
  await assertEveryRowArrived(target);
});

test('`ferry migrate` interrupted (Ctrl-C) leaves its migration running, says how to reach it, and another worker finishes it with every row', async () => {
  const name = uniqueName('operate-ctrlc');
  const target = uniqueName('orders');
  const specFile = path.join(specDir, `${name}.json`);
  fs.writeFileSync(specFile, JSON.stringify(slowSpec(name, target)));
  // The command's own worker shares the task queue with this file's worker, which is left to finish the run.
  const child = spawn(path.join(ROOT, 'ferry'), ['migrate', specFile], { cwd: ROOT, env: { ...process.env, FERRY_TASK_QUEUE: taskQueue }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const migration = ferry.getMigration(name);
  await until('the bulk phase', async () => (stdout.includes(`started ${name}`) && (await migration.progress()).phase === 'bulk' ? true : undefined));

  child.kill('SIGINT');
  assert.equal(await exited, 1, stdout + stderr);
  assert.match(stderr, new RegExp(`interrupted: ${name} is still running in Temporal; this command's worker has stopped, so it waits for a worker on task queue ${taskQueue} .*\`ferry watch ${name}\` shows it again, \`ferry abort ${name}\` stops it`));
  assert.equal(await migration.status(), 'RUNNING');
  // The same spec again while it runs: named, and pointed to the run (the SDK says only "Workflow execution already started").
  const again = await runFerry(['migrate', specFile], { FERRY_TASK_QUEUE: uniqueName('operate-again') });
  assert.equal(again.code, 1, again.stdout + again.stderr);
  assert.match(again.stderr, new RegExp(`a migration named ${name} is already running in namespace \\S+ at \\S+: \`ferry watch ${name}\` follows it and \`ferry status ${name}\` shows it`));
  await until('ferry list --running to show it', async () => {
    const listed = await runFerry(['list', '--running', '--limit', '1000']);
    return new RegExp(`list: ${name}\\s+running\\s+bulk\\s`).test(listed.stdout) ? true : undefined;
  });
  const badLimit = await runFerry(['list', '--limit', '0']);
  assert.equal(badLimit.code, 1);
  assert.match(badLimit.stderr, /--limit must be a whole number of at least 1; got "0"/);

  const report = await migration.result();
  assert.equal(report.rows, ROWS);
  await assertEveryRowArrived(target);
});

test('the typed client example (docs/examples/client.ts) runs as docs/client.md says: started, budgeted, followed, cut over by hand, reported', async () => {
  const name = uniqueName('operate-client');
  const target = uniqueName('orders');
  const specFile = path.join(specDir, `${name}.json`);
  const spec = { name, source: { database }, mapping: idMapping(database, 'orders', target), target: { create: true }, capture: { createStream: true, shards: 1, cutover: 'manual' } };
  fs.writeFileSync(specFile, JSON.stringify(spec));

  const ran = await runProcess(process.execPath, ['--import', TSX_LOADER, path.join(ROOT, 'docs', 'examples', 'client.ts'), specFile], { FERRY_TASK_QUEUE: taskQueue });
  assert.equal(ran.code, 0, ran.stdout + ran.stderr);
  assert.match(ran.stdout, new RegExp(`^started ${name}$`, 'm'));
  assert.match(ran.stdout, /^bulk: \d+ of 30000 rows/m);
  assert.match(ran.stdout, new RegExp(`^cut over: writes were frozen for \\d+ ms; ${name} routes to dynamodb$`, 'm'));
  assert.match(ran.stdout, new RegExp(`^report: ${ROWS} rows, ${ROWS} items in \\d+ ms$`, 'm'));
  assert.equal((await ferry.getMigration(name).progress()).writeBudget, 5000, 'the budget the example set');
  await assertEveryRowArrived(target);
});
