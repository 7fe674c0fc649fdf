/**
 * The cutover fence (docs/cdc.md, Cutover) in a source database whose name
 * needs quoting, against the stack's MariaDB and DynamoDB Local: preflight's
 * setup creates the fence table and row in that database, and an application
 * write passes the fence.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { prepareRouting } from '../activities/preflight.js';
import { dynamoClient } from '../src/aws.js';
import { quoteIdent } from '../src/bulk/partitionPlan.js';
import { resolveBackend, ROUTING_SOURCE_TABLE, withSourceWrite } from '../src/capture/routing.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { parseSpec } from '../src/spec.js';
import { idMapping, uniqueName } from './helpers.js';

const config = loadConfig();
/** A dash and a backquote: valid in a MariaDB database name, fatal to SQL that does not quote it. */
const database = `fence-db\`${Date.now().toString(36)}`;
const routingTable = uniqueName('fence-routing');
const dynamo = dynamoClient(config.aws);

after(async () => {
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)}`).finally(() => db.end());
  await dynamo.send(new DeleteTableCommand({ TableName: routingTable })).catch(() => undefined);
  dynamo.destroy();
});

test('preflight sets up the fence in a source database named with a dash and a backquote, and an application write passes it', async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE ${quoteIdent(database)}`);
    await db.query(`CREATE TABLE ${quoteIdent(database)}.ledger (id INT PRIMARY KEY, note VARCHAR(20))`);
    const spec = parseSpec({ name: uniqueName('fence'), source: { database }, mapping: idMapping(database, 'ledger', 'ledger'), capture: { routingTable } });

    await prepareRouting(spec);
    await prepareRouting(spec); // a resumed run's preflight leaves the fence as it is

    const [rows] = (await db.query(`SELECT name, backend FROM ${quoteIdent(database)}.${ROUTING_SOURCE_TABLE}`)) as unknown as [{ name: string; backend: string }[]];
    assert.deepEqual(rows.map((r) => ({ ...r })), [{ name: spec.name, backend: 'mysql' }]);
    assert.equal(await resolveBackend(dynamo, spec.name, routingTable), 'mysql');

    const wrote = await withSourceWrite(db, spec.name, (tx) => tx.query(`INSERT INTO ${quoteIdent(database)}.ledger VALUES (1, 'through the fence')`).then(() => undefined), database);
    assert.equal(wrote, true);
    const [ledger] = (await db.query(`SELECT note FROM ${quoteIdent(database)}.ledger`)) as unknown as [{ note: string }[]];
    assert.deepEqual(ledger.map((r) => r.note), ['through the fence']);
  } finally {
    await db.end();
  }
});
