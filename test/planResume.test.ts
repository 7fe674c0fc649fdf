/**
 * Planning never restarts from zero (issue 26 item 1): it checkpoints the count and its progress through the keys
 * to staging, and an attempt that finds a checkpoint scans on after it and plans the same partitions as one
 * uninterrupted pass. Against the stack's MariaDB and S3, with the activity run as the worker runs it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { asyncLocalStorage, type Context } from '@temporalio/activity';
import { planPartitions, type PlanCheckpoint, type PlanProgress } from '../activities/plan.js';
import { s3Client } from '../src/aws.js';
import { migrationKeys, staging, type SourceTable } from '../src/bulk/model.js';
import { BoundaryPicker } from '../src/bulk/partitionPlan.js';
import { loadConfig } from '../src/config.js';
import { compileTableMapping, tableMappingDocument } from '../src/mapping/tableMapping.js';
import { connectMysql } from '../src/mysql.js';
import { getJson, putJson } from '../src/s3.js';
import { parseSpec } from '../src/spec.js';
import { idMapping, uniqueName } from './helpers.js';

const config = loadConfig();
const s3 = s3Client(config.aws);
const database = uniqueName('plan_resume').replace(/-/g, '_');
const ROWS = 5000;
const SMALL = 200;

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    // Ids with gaps, so a bound is a key the table holds and not a count.
    await db.query(`CREATE TABLE \`${database}\`.ledger (id INT PRIMARY KEY, note VARCHAR(20) NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.ledger SELECT seq * 3, CONCAT('n', seq) FROM seq_1_to_${ROWS}`);
    // A small one for a checkpoint at every key change (each one a PUT to S3).
    await db.query(`CREATE TABLE \`${database}\`.small LIKE \`${database}\`.ledger`);
    await db.query(`INSERT INTO \`${database}\`.small SELECT seq * 3, CONCAT('n', seq) FROM seq_1_to_${SMALL}`);
  } finally {
    await db.end();
  }
});

after(async () => {
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`DROP DATABASE IF EXISTS \`${database}\``).finally(() => db.end());
  s3.destroy();
});

function planner(table = 'ledger', rows = ROWS) {
  const mapping = idMapping(database, table, table);
  const spec = parseSpec({ name: uniqueName('plan-resume'), source: { database }, mapping, bulk: { partitions: 10 } });
  const source: SourceTable = {
    schema: database,
    table,
    columns: [
      { name: 'id', family: 'integer', mysqlType: 'int(11)', nullable: false, unsigned: false },
      { name: 'note', family: 'text', mysqlType: 'varchar(20)', nullable: false, unsigned: false },
    ],
    primaryKey: ['id'],
    mapping: compileTableMapping(tableMappingDocument.parse(mapping), database, table, ['id']),
    splitColumns: ['id'],
    rowsEstimate: rows,
  };
  const stage = staging(spec, config.stagingBucket);
  const beats: PlanProgress[] = [];
  const context = { heartbeat: (details: PlanProgress) => beats.push({ ...details }), cancellationSignal: new AbortController().signal } as unknown as Context;
  return { stage, beats, plan: () => asyncLocalStorage.run(context, () => planPartitions(spec, stage, source)), progressKey: migrationKeys(stage).planProgress(table) };
}

test('an attempt that finds a checkpoint scans on after its last key and plans what one uninterrupted pass plans', async () => {
  const whole = planner();
  const expected = await whole.plan();
  assert.equal(expected.length, 10);

  // An earlier attempt died after checkpointing the first 2,000 keys (ids 3 … 6000), at the change to id 6003.
  const resumed = planner();
  const picker = new BoundaryPicker(ROWS, 10);
  for (let seq = 1; seq <= 2000; seq++) picker.add([seq * 3]);
  await putJson(s3, config.stagingBucket, resumed.progressKey, { rows: ROWS, partitions: 10, picker: picker.snapshot(), savedAt: new Date().toISOString() } satisfies PlanCheckpoint);
  const plan = await resumed.plan();
  assert.deepEqual(plan, expected, 'the same bounds and planned rows');
  const last = resumed.beats.at(-1)!;
  assert.equal(last.resumedFrom, 2000);
  assert.equal(last.seen, ROWS, 'the scan read the 3,000 keys after the checkpoint, and only those');
});

test('planning saves its checkpoint at a key change as it scans', async () => {
  process.env.FERRY_PLAN_CHECKPOINT_MS = '0';
  try {
    const run = planner('small', SMALL);
    await run.plan();
    const checkpoint = (await getJson<PlanCheckpoint>(s3, config.stagingBucket, run.progressKey))!;
    assert.equal(checkpoint.rows, SMALL);
    assert.equal(checkpoint.partitions, 10);
    assert.equal(checkpoint.picker.seen, SMALL - 1, 'saved at the last key change, before the last key');
    assert.deepEqual(checkpoint.picker.previous, [checkpoint.picker.seen * 3], 'its last key is the last one it had fed');
  } finally {
    delete process.env.FERRY_PLAN_CHECKPOINT_MS;
  }
});
