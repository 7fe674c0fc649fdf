/**
 * `ferry verify`, end to end: after a migration the source and target match;
 * after a target item is changed, one deleted and one added behind ferry's
 * back, verify exits 1 and names each key with both sides.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { DeleteItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { dynamoClient } from '../src/aws.js';
import { FerryClient, type MigrationSpecInput } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { idMapping, runFerry, startFerry, stopFerry, uniqueName } from './helpers.js';

const config = loadConfig();
const database = `verify_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('verify');
const specDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-verify-'));
let worker: ChildProcess;
let ferry: FerryClient;

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.acct (id INT PRIMARY KEY, balance DECIMAL(12,2) NOT NULL, note VARCHAR(20))`);
    await db.query(`INSERT INTO \`${database}\`.acct SELECT seq, seq * 1.5, CONCAT('n', seq) FROM seq_1_to_3000`);
  } finally {
    await db.end();
  }
  ({ worker, ferry } = await startFerry(taskQueue));
});

after(async () => {
  fs.rmSync(specDir, { recursive: true, force: true });
  await stopFerry({ worker, ferry }, [database]);
});

test('verify matches after a migration, then finds a changed, a missing and an extra item and names their keys', async () => {
  const target = uniqueName('acct');
  const spec: MigrationSpecInput = {
    name: uniqueName('verify'),
    source: { database },
    mapping: idMapping(database, 'acct', target),
    target: { create: true },
    bulk: { partitions: 3, concurrency: 2 },
  };
  await (await ferry.startMigration(spec)).result();
  const specFile = path.join(specDir, 'spec.json');
  fs.writeFileSync(specFile, JSON.stringify(spec));
  const verify = () => runFerry(['verify', specFile, '--no-embedded-worker'], { FERRY_TASK_QUEUE: taskQueue });

  const clean = await verify();
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  assert.match(clean.stdout, new RegExp(`verify: ${database}\\.acct → ${target}: match: 3000 source items in 3 partitions, 3000 found in the target, 0 differing, 0 missing, 0 extra`));
  assert.match(clean.stdout, /the target equals the source/);

  const dynamo = dynamoClient(config.aws);
  await dynamo.send(new UpdateItemCommand({ TableName: target, Key: { id: { N: '1234' } }, UpdateExpression: 'SET note = :n', ExpressionAttributeValues: { ':n': { S: 'tampered' } } }));
  await dynamo.send(new DeleteItemCommand({ TableName: target, Key: { id: { N: '77' } } }));
  await dynamo.send(new PutItemCommand({ TableName: target, Item: { id: { N: '999999' }, note: { S: 'nobody wrote me' } } }));

  const planted = await verify();
  assert.equal(planted.code, 1, planted.stdout + planted.stderr);
  assert.match(planted.stdout, /DIFFER: 3000 source items in 3 partitions, 2999 found in the target, 1 differing, 1 missing, 1 extra/);
  assert.match(planted.stdout, /id=1234\n\s+source: .*"note":\{"S":"n1234"\}.*\n\s+target: .*"note":\{"S":"tampered"\}/);
  assert.match(planted.stdout, /id=77\n\s+source: .*"note":\{"S":"n77"\}.*\n\s+target: absent/);
  assert.match(planted.stdout, /the target differs from the source/);
});
