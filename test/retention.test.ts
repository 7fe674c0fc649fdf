/**
 * A bulk copy that outlasts the stream's retention: apply's readers start at
 * each shard's oldest record once their table is loaded, and records older
 * than the retention may be gone by then. The reader fails the table loudly
 * instead of applying the rest. Kinesis keeps records at least 24 h, so the
 * test moves the clock of ferry's own record of when capture began shipping
 * (capture.json) 25 h back while the bulk copy is still running.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { s3Client } from '../src/aws.js';
import type { RecordedStart } from '../src/capture/startRecord.js';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { getJson, putJson } from '../src/s3.js';
import { ApplicationFailure } from '@temporalio/common';
import { idMapping, startFerry, stopFerry, uniqueName, until, within } from './helpers.js';

const config = loadConfig();
const database = `ret_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('retention');
let worker: ChildProcess | undefined;
let ferry: FerryClient | undefined;

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.acct (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.acct SELECT seq, CONCAT('n', seq) FROM seq_1_to_400`);
  } finally {
    await db.end();
  }
  ({ worker, ferry } = await startFerry(taskQueue));
});

after(async () => {
  await stopFerry({ worker, ferry }, [database]);
});

test('a table loaded after the stream’s retention has passed since capture began fails with ChangesExpired and the fix, instead of applying what is left', async () => {
  const name = uniqueName('ret');
  const migration = await ferry!.startMigration({
    name,
    source: { database },
    mapping: idMapping(database, 'acct', uniqueName('acct')),
    target: { create: true },
    bulk: { partitions: 2, concurrency: 1 },
    writeBudget: { itemsPerSecond: 40 },
    capture: { stream: uniqueName('ret-stream'), createStream: true, shards: 1, cutover: 'none' },
  });
  await until(async () => Boolean((await migration.progress().catch(() => undefined))?.capture), 300, 200, 'capture never started');
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`UPDATE \`${database}\`.acct SET note = 'changed' WHERE id <= 10`);
  await db.end();

  // The bulk copy is still loading its first partition (10 s at this budget): make it 25 h since capture began shipping.
  const s3 = s3Client(config.aws);
  const key = `ferry/${name}/capture.json`;
  // Once the copy loads (capture recorded its start before the export began).
  await until(async () => (await migration.progress()).phase === 'bulk', 300, 100, 'the bulk copy never began');
  const recorded = (await getJson<RecordedStart>(s3, config.stagingBucket, key))!;
  const longAgo = new Date(Date.now() - 25 * 3_600_000).toISOString();
  await putJson(s3, config.stagingBucket, key, { ...recorded, recordedAt: longAgo, shippingSince: longAgo });
  assert.equal((await migration.progress()).phase, 'bulk', 'the table was not loaded yet when the clock moved');

  const failure = await within(migration.result().then(() => undefined, (err: unknown) => err), 120_000, 'the run to fail on the expired changes');
  let cause: unknown = failure;
  while (cause instanceof Error && cause.cause && !(cause instanceof ApplicationFailure && cause.type === 'ChangesExpired')) cause = cause.cause;
  assert.ok(cause instanceof ApplicationFailure && cause.type === 'ChangesExpired', `failed with ChangesExpired: ${String(failure)}`);
  assert.match(cause.message, /from its oldest record 25\.\d h after capture began shipping changes into it .* keeps records only 24 h/);
  assert.match(cause.message, new RegExp(`ferry resume ${name}\`: capture ships every change again from the binlog`));
});
