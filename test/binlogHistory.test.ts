/**
 * Change versions order one binlog history. A source that is now another
 * server (failover) or whose binlog went back (RESET MASTER, a restore) stops
 * capture with what happened, instead of its new changes being dropped as
 * stale. The comparison as a table; then end to end, the server's identity
 * changed under a running capture.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { gtidHighWater, historyProblem, type BinlogHistory } from '../src/capture/history.js';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { idMapping, startFerry, stopFerry, uniqueName, until, within } from './helpers.js';

test('GTID high-water marks: MariaDB per domain, MySQL per server uuid', () => {
  assert.deepEqual(gtidHighWater('0-1-123,1-7-9'), new Map([['domain 0', 123n], ['domain 1', 9n]]));
  assert.deepEqual(gtidHighWater('3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7-23,\n4e11fa47-71ca-11e1-9e33-c80aa9429562:1-2'), new Map([
    ['3e11fa47-71ca-11e1-9e33-c80aa9429562', 23n],
    ['4e11fa47-71ca-11e1-9e33-c80aa9429562', 2n],
  ]));
  assert.deepEqual(gtidHighWater(''), new Map());
});

test('a changed server or a binlog that went back is another history; one that moved on is the same', () => {
  const start: BinlogHistory = { serverId: '1', gtid: '0-1-123' };
  const mysql: BinlogHistory = { serverId: '1', serverUuid: 'aaaa', gtid: 'aaaa:1-100' };
  const cases: [string, BinlogHistory, BinlogHistory, RegExp | undefined][] = [
    ['moved on', start, { serverId: '1', gtid: '0-1-200' }, undefined],
    ['moved on under another server id in the domain', start, { serverId: '1', gtid: '0-2-130' }, undefined],
    ['no GTIDs, same server', { serverId: '1', gtid: '' }, { serverId: '1', gtid: '' }, undefined],
    ['MySQL moved on', mysql, { ...mysql, gtid: 'aaaa:1-150,bbbb:1-3' }, undefined],
    ['failover: another server id', start, { serverId: '2', gtid: '0-1-123' }, /server_id 2, but capture started on server_id 1/],
    ['failover: another server uuid', mysql, { ...mysql, serverUuid: 'cccc' }, /server_uuid cccc/],
    ['RESET MASTER (MariaDB)', start, { serverId: '1', gtid: '' }, /binlog went back: GTID domain 0 was at 123 when capture started and is now at nothing/],
    ['restore to an older point', start, { serverId: '1', gtid: '0-1-100' }, /was at 123 .* now at 100/],
    ['RESET MASTER (MySQL)', mysql, { ...mysql, gtid: '' }, /GTID aaaa was at 100/],
  ];
  for (const [what, recorded, current, problem] of cases) {
    const got = historyProblem(recorded, current);
    if (problem) assert.match(got ?? '', problem, what);
    else assert.equal(got, undefined, what);
  }
});

const config = loadConfig();
const database = `hist_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('history');
let worker: ChildProcess | undefined;
let ferry: FerryClient | undefined;
let serverId = '1';

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    const [[row]] = (await db.query('SELECT @@server_id AS id')) as unknown as [[{ id: number }]];
    serverId = String(row.id);
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.acct (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.acct SELECT seq, CONCAT('n', seq) FROM seq_1_to_1000`);
  } finally {
    await db.end();
  }
  ({ worker, ferry } = await startFerry(taskQueue));
});

after(async () => {
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`SET GLOBAL server_id = ${Number(serverId)}`);
  await db.end();
  await stopFerry({ worker, ferry }, [database]);
});

test('a source that became another server under a running capture stops the run with BinlogHistoryChanged, nothing dropped silently', async () => {
  const name = uniqueName('hist');
  const migration = await ferry!.startMigration({
    name,
    source: { database },
    mapping: idMapping(database, 'acct', uniqueName('acct')),
    target: { create: true },
    bulk: { partitions: 4, concurrency: 1 },
    writeBudget: { itemsPerSecond: 40 },
    capture: { stream: uniqueName('hist-stream'), createStream: true, shards: 1, cutover: 'none' },
  });
  const db = await connectMysql(config.mysqlUrl);
  try {
    const dumps = async () => {
      const [rows] = await db.query("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'");
      return (rows as { id: number }[]).map((r) => Number(r.id));
    };
    await until(async () => (await dumps()).length > 0, 300, 200, 'capture never opened its binlog connection');
    // What a failover looks like from here: the same address answers as another server. Capture reconnects.
    await db.query(`SET GLOBAL server_id = ${Number(serverId) + 4242}`);
    for (const id of await dumps()) await db.query(`KILL CONNECTION ${id}`).catch(() => undefined);
    const failure = await within(migration.result().then(() => undefined, (err: unknown) => err), 120_000, 'the run to stop on the changed binlog history');
    await db.query(`SET GLOBAL server_id = ${Number(serverId)}`);
    assert.ok(failure instanceof WorkflowFailedError, `the run failed: ${String(failure)}`);
    let cause: unknown = failure.cause;
    while (cause instanceof Error && cause.cause && !(cause instanceof ApplicationFailure && cause.type === 'BinlogHistoryChanged')) cause = cause.cause;
    assert.ok(cause instanceof ApplicationFailure && cause.type === 'BinlogHistoryChanged', `stopped on the history: ${String(cause)}`);
    assert.match(cause.message, new RegExp(`server_id ${Number(serverId) + 4242}, but capture started on server_id ${serverId}`));
    assert.match(cause.message, /dropped as stale; capture stops instead/);
  } finally {
    await db.query(`SET GLOBAL server_id = ${Number(serverId)}`);
    await db.end();
  }
});
