/**
 * The fence fails closed: an application write through withSourceWrite with a
 * wrong migration name or source database is refused and makes no write
 * (before, it went to MySQL with no fence at all, and could land after the
 * cutover and be lost). And the changes the binlog never carries: a migrated
 * child table whose foreign key cascades is refused by preflight.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createFence, FenceMissingError, FerryClient, withSourceWrite } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql, type MysqlConnection } from '../src/mysql.js';
import { idMapping, startFerry, stopFerry, uniqueName } from './helpers.js';

const config = loadConfig();
const database = `fence_${uniqueName('t').replace(/-/g, '_')}`;
const other = `${database}_other`;
const taskQueue = uniqueName('fence');
let worker: ChildProcess | undefined;
let ferry: FerryClient | undefined;
let db: MysqlConnection;

before(async () => {
  db = await connectMysql(config.mysqlUrl);
  await db.query(`CREATE DATABASE \`${database}\``);
  await db.query(`CREATE DATABASE \`${other}\``);
  await db.query(`CREATE TABLE \`${database}\`.ledger (id INT PRIMARY KEY, note VARCHAR(40))`);
  await db.query(`CREATE TABLE \`${database}\`.customer (id INT PRIMARY KEY) ENGINE=InnoDB`);
  await db.query(`CREATE TABLE \`${database}\`.orders (id INT PRIMARY KEY, customer INT NOT NULL, FOREIGN KEY fk_customer (customer) REFERENCES customer (id) ON DELETE CASCADE) ENGINE=InnoDB`);
  await db.query(`INSERT INTO \`${database}\`.customer VALUES (1)`);
  await db.query(`INSERT INTO \`${database}\`.orders VALUES (1, 1)`);
  ({ worker, ferry } = await startFerry(taskQueue));
});

after(async () => {
  await db.end();
  await stopFerry({ worker, ferry }, [database, other]);
});

async function ledgerRows(): Promise<number> {
  const [[row]] = (await db.query(`SELECT COUNT(*) AS n FROM \`${database}\`.ledger`)) as unknown as [[{ n: number }]];
  return Number(row.n);
}

test('withSourceWrite refuses, writing nothing, without the fence of the migration it names; with it, writes', async () => {
  const name = uniqueName('fence');
  const insert = (id: number) => (tx: MysqlConnection) => tx.query(`INSERT INTO \`${database}\`.ledger VALUES (?, 'x')`, [id]).then(() => undefined);
  // No fence table in the schema named (a wrong database).
  await assert.rejects(withSourceWrite(db, name, insert(1), other), (err: Error) => err instanceof FenceMissingError && /no fence table `.*_other`\.ferry_routing/.test(err.message) && /createFence/.test(err.message));
  await createFence(db, name, database);
  // A fence table, but no row for this name (a wrong migration name).
  await assert.rejects(withSourceWrite(db, `${name}-typo`, insert(2), database), (err: Error) => err instanceof FenceMissingError && err.message.includes(`no fence row for migration "${name}-typo"`));
  assert.equal(await ledgerRows(), 0, 'the refused writes made nothing');
  assert.equal(await withSourceWrite(db, name, insert(3), database), true);
  assert.equal(await ledgerRows(), 1);
  // The fence says DynamoDB: the write is not made in MySQL, the caller writes to DynamoDB.
  await db.query(`UPDATE \`${database}\`.ferry_routing SET backend = 'dynamodb' WHERE name = ?`, [name]);
  assert.equal(await withSourceWrite(db, name, insert(4), database), false);
  assert.equal(await ledgerRows(), 1);
});

test('preflight refuses change capture of a table a foreign key cascades into: those changes never reach the binlog', async () => {
  const migration = await ferry!.startMigration({
    name: uniqueName('cascade'),
    source: { database },
    mapping: idMapping(database, 'orders', uniqueName('orders')),
    target: { create: true },
    capture: { stream: uniqueName('cascade-stream'), createStream: true, shards: 1, cutover: 'none' },
  });
  await assert.rejects(migration.result(), (err: Error) => {
    let cause: Error | undefined = err;
    while (cause?.cause instanceof Error) cause = cause.cause;
    assert.match(cause!.message, /foreign key cascades into a migrated table.*orders \(foreign key fk_customer to customer: ON DELETE CASCADE/);
    assert.match(cause!.message, /RESTRICT/);
    return true;
  });
});
