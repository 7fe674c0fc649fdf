/**
 * Changes apply cannot write go under spec.errors.policy, as bad rows do in
 * the bulk copy: an UPDATE that grows an item past DynamoDB's 400 KB, both
 * record to record (ferry sees the size) and under grouping (only DynamoDB
 * sees the whole item). With `dead-letter` the run goes on, each such change
 * is in staging at apply/dead-letters/VERSION.json with its reason and is
 * counted, and later changes of the same rows apply.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { s3Client } from '../src/aws.js';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { getJson } from '../src/s3.js';
import { scanAll, startFerry, stopFerry, uniqueName, until } from './helpers.js';

const config = loadConfig();
const database = `bad_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('badchanges');
let worker: ChildProcess | undefined;
let ferry: FerryClient | undefined;
const KB = 1024;

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.doc (id INT PRIMARY KEY, body MEDIUMTEXT NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.doc SELECT seq, CONCAT('d', seq) FROM seq_1_to_400`);
    await db.query(`CREATE TABLE \`${database}\`.part (g INT NOT NULL, p INT NOT NULL, val MEDIUMTEXT NOT NULL, PRIMARY KEY (g, p))`);
    await db.query(`INSERT INTO \`${database}\`.part SELECT seq DIV 4, seq MOD 4, 'small' FROM seq_0_to_399`);
  } finally {
    await db.end();
  }
  ({ worker, ferry } = await startFerry(taskQueue));
});

after(async () => {
  await stopFerry({ worker, ferry }, [database]);
});

test('under dead-letter, changes that would grow an item past 400 KB are set aside with their reason and counted; the run completes and later changes apply', async () => {
  const docs = uniqueName('docs');
  const parts = uniqueName('parts');
  const name = uniqueName('bad');
  const locator = (table: string) => ({ 'schema-name': database, 'table-name': table });
  const migration = await ferry!.startMigration({
    name,
    source: { database },
    mapping: {
      rules: [
        { 'rule-type': 'selection', 'rule-id': '1', 'rule-name': '1', 'object-locator': locator('%'), 'rule-action': 'include' },
        { 'rule-type': 'object-mapping', 'rule-id': '2', 'rule-name': '2', 'rule-action': 'map-record-to-record', 'object-locator': locator('doc'), 'target-table-name': docs, 'mapping-parameters': { 'partition-key-name': 'id' } },
        {
          'rule-type': 'object-mapping', 'rule-id': '3', 'rule-name': '3', 'rule-action': 'group-records-to-item', 'object-locator': locator('part'), 'target-table-name': parts,
          'mapping-parameters': { 'partition-key-name': 'g', 'attribute-name-column': 'p', 'attribute-value-column': 'val' },
        },
      ],
    },
    target: { create: true },
    errors: { policy: 'dead-letter' },
    bulk: { partitions: 2, concurrency: 1 },
    // Slow enough that every change below is made while the bulk copy runs.
    writeBudget: { itemsPerSecond: 40 },
    capture: { stream: uniqueName('bad-stream'), createStream: true, shards: 1, cutover: 'none' },
  });
  await until(async () => Boolean((await migration.progress().catch(() => undefined))?.capture), 300, 200, 'capture never started');
  const db = await connectMysql(config.mysqlUrl);
  try {
    const t = (table: string) => `\`${database}\`.${table}`;
    // Record to record: 450 KB in one row.
    await db.query(`UPDATE ${t('doc')} SET body = REPEAT('x', ${450 * KB}) WHERE id = 7`);
    // Grouped: four attributes of 150 KB each on item g=5; each fits, the item cannot hold the fourth (nor the third).
    for (let p = 0; p < 4; p++) await db.query(`UPDATE ${t('part')} SET val = REPEAT('y', ${150 * KB}) WHERE g = 5 AND p = ?`, [p]);
    // Later changes of the same rows and items, which fit: the source ends at a state DynamoDB can hold.
    await db.query(`UPDATE ${t('doc')} SET body = 'after' WHERE id = 7`);
    await db.query(`UPDATE ${t('part')} SET val = 'after' WHERE g = 5 AND p IN (2, 3)`);
  } finally {
    await db.end();
  }
  const report = await migration.result();
  const deadLetters = report.capture!.apply.reduce((n, a) => n + a.deadLetters, 0);

  const s3 = s3Client(config.aws);
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: config.stagingBucket, Prefix: `ferry/${name}/apply/dead-letters/` }));
  const letters = await Promise.all((listed.Contents ?? []).map((o) => getJson<{ table: string; key: Record<string, unknown>; reason: string }>(s3, config.stagingBucket, o.Key!)));
  const described = letters.map((l) => `${l!.table.split('.')[1]} ${JSON.stringify(l!.key)}`).sort();
  assert.deepEqual(described, ['doc {"id":7}', 'part {"g":5,"p":2}', 'part {"g":5,"p":3}'], `dead letters: ${letters.map((l) => l?.reason).join(' | ')}`);
  assert.equal(deadLetters, 3, 'the report counts them');
  for (const l of letters) assert.match(l!.reason, /400|size/i);

  // Whether the bulk copy read these rows before or after their changes (it then set the too-large ones aside
  // itself), the changes that fit are applied and the target ends equal to the source.
  const docItems = new Map((await scanAll(docs)).map((i) => [i.id!.N!, i.body!.S!]));
  assert.equal(docItems.size, 400);
  assert.equal(docItems.get('7'), 'after');
  assert.equal(docItems.get('8'), 'd8');
  const partItems = new Map((await scanAll(parts)).map((i) => [i.g!.N!, i]));
  assert.equal(partItems.size, 100);
  const g5 = partItems.get('5')!;
  assert.deepEqual([g5['0']!.S!.length, g5['1']!.S!.length, g5['2']!.S, g5['3']!.S], [150 * KB, 150 * KB, 'after', 'after']);
  assert.equal(partItems.get('6')!['0']!.S, 'small');
});
