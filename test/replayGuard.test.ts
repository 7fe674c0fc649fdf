/**
 * replayChanges onto a live target: after a completed run with
 * `capture.cleanup` (its versions table gone) and a stream the user owns, a
 * replay would apply every change again over items the application has
 * changed since. It is refused while the routing says DynamoDB serves the
 * application, and while the versions table is gone; `{"force": true}`
 * replays anyway. The versions table is never re-created silently.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { CreateTableCommand, DeleteTableCommand, DescribeTableCommand, PutItemCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, DeleteStreamCommand, waitUntilStreamExists } from '@aws-sdk/client-kinesis';
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplyResult } from '../activities/apply.js';
import { dynamoClient, kinesisClient } from '../src/aws.js';
import { FerryClient, type MigrationSpecInput } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { idMapping, scanAll, startFerry, stopFerry, uniqueName, until } from './helpers.js';

const config = loadConfig();
const database = `replay_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('replayguard');
const stream = uniqueName('user-stream');
const routingTable = uniqueName('routing');
const dynamo = dynamoClient(config.aws);
const kinesis = kinesisClient(config.aws);
let worker: ChildProcess | undefined;
let ferry: FerryClient | undefined;

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.acct (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.acct SELECT seq, CONCAT('n', seq) FROM seq_1_to_200`);
  } finally {
    await db.end();
  }
  await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  await waitUntilStreamExists({ client: kinesis, maxWaitTime: 60 }, { StreamName: stream });
  await dynamo.send(new CreateTableCommand({ TableName: routingTable, KeySchema: [{ AttributeName: 'name', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'name', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }));
  await waitUntilTableExists({ client: dynamo, maxWaitTime: 60 }, { TableName: routingTable });
  ({ worker, ferry } = await startFerry(taskQueue));
});

after(async () => {
  await stopFerry({ worker, ferry }, [database]);
  await kinesis.send(new DeleteStreamCommand({ StreamName: stream })).catch(() => undefined);
  await dynamo.send(new DeleteTableCommand({ TableName: routingTable })).catch(() => undefined);
});

async function replay(spec: MigrationSpecInput, options?: { force: boolean }): Promise<ApplyResult[]> {
  return (await ferry!.client.workflow.execute('replayChanges', { taskQueue, workflowId: uniqueName('replay'), args: options ? [spec, options] : [spec] })) as ApplyResult[];
}

async function refusal(spec: MigrationSpecInput): Promise<string> {
  const err = await replay(spec).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof WorkflowFailedError, `the replay was refused: ${String(err)}`);
  let cause: Error | undefined = err.cause;
  while (cause?.cause instanceof Error) cause = cause.cause;
  return cause?.message ?? '';
}

test('a replay onto a target the routing says is live, or without its versions table, is refused; force replays', async () => {
  const target = uniqueName('acct');
  const spec: MigrationSpecInput = {
    name: uniqueName('replayguard'),
    source: { database },
    mapping: idMapping(database, 'acct', target),
    target: { create: true },
    bulk: { partitions: 2, concurrency: 1 },
    writeBudget: { itemsPerSecond: 100 },
    // The user's stream (kept after the run); cleanup deletes the versions table.
    capture: { stream, shards: 1, cutover: 'none', routingTable },
  };
  const migration = await ferry!.startMigration(spec);
  await until(async () => Boolean((await migration.progress().catch(() => undefined))?.capture), 300, 200, 'capture never started');
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`UPDATE \`${database}\`.acct SET note = 'changed during the copy' WHERE id BETWEEN 1 AND 20`);
  await db.end();
  const report = await migration.result();
  assert.ok(report.capture!.apply.reduce((n, a) => n + a.applied, 0) >= 20, 'the changes were applied');
  const versionsTable = `ferry-${spec.name}-versions`;
  await assert.rejects(dynamo.send(new DescribeTableCommand({ TableName: versionsTable })), { name: 'ResourceNotFoundException' }, 'cleanup deleted the versions table');

  // After the cutover, the application writes to DynamoDB.
  await dynamo.send(new PutItemCommand({ TableName: routingTable, Item: { name: { S: spec.name }, backend: { S: 'dynamodb' } } }));
  await dynamo.send(new PutItemCommand({ TableName: target, Item: { id: { N: '5' }, note: { S: 'written by the application after the cutover' } } }));

  assert.match(await refusal(spec), /has cut over: its routing .* sends the application's writes to DynamoDB.*\{"force": true\}/);
  await dynamo.send(new PutItemCommand({ TableName: routingTable, Item: { name: { S: spec.name }, backend: { S: 'mysql' } } }));
  assert.match(await refusal(spec), new RegExp(`the versions table ${versionsTable} of migration ${spec.name} is gone`));
  await assert.rejects(dynamo.send(new DescribeTableCommand({ TableName: versionsTable })), { name: 'ResourceNotFoundException' }, 'the refused replay did not re-create it');
  const item5 = (await scanAll(target)).find((i) => i.id!.N === '5');
  assert.equal(item5?.note?.S, 'written by the application after the cutover', 'the refused replays wrote nothing');

  // Forced: the operator decided; every change is applied again.
  const forced = await replay(spec, { force: true });
  assert.ok(forced.reduce((n, a) => n + a.applied, 0) >= 20, 'the forced replay applied the stream');
  await dynamo.send(new DeleteTableCommand({ TableName: versionsTable })).catch(() => undefined);
});
