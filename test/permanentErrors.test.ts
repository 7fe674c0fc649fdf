/**
 * Capture and apply run for days and retry what may pass (a dropped
 * connection, throttling) without end; what no retry can fix fails the run at
 * once, naming the cause, the fix and the resume command. While an activity
 * retries, `ferry status` says which, its attempt and its last failure.
 *
 * The source user here is the migration's own: the test kills its binlog
 * connection (transient: capture comes back on attempt 2, and status says
 * so), then revokes its REPLICATION SLAVE grant and kills it again
 * (permanent: the run fails with SourceAccessDenied instead of retrying).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql, type MysqlConnection } from '../src/mysql.js';
import { permanentCause } from '../src/errors.js';
import { SpecSqlError } from '../src/bulk/duck.js';
import { idMapping, runFerry, startWorkerProcess, stopFerry, uniqueName, until, within } from './helpers.js';

const config = loadConfig();
const database = `perm_${uniqueName('t').replace(/-/g, '_')}`;
const user = `fc_${Date.now().toString(36)}`;
const taskQueue = uniqueName('permanent');
let worker: ChildProcess | undefined;
let ferry: FerryClient | undefined;

/** The source URL with this test's user instead of the stack's. */
function userUrl(): string {
  const url = new URL(config.mysqlUrl);
  url.username = user;
  url.password = 'pw';
  url.pathname = `/${database}`;
  return url.toString();
}

async function killUserConnections(db: MysqlConnection): Promise<number> {
  const [rows] = await db.query('SELECT id FROM information_schema.processlist WHERE user = ?', [user]);
  for (const { id } of rows as { id: number }[]) await db.query(`KILL CONNECTION ${Number(id)}`).catch(() => undefined);
  return (rows as unknown[]).length;
}

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.acct (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.acct SELECT seq, CONCAT('n', seq) FROM seq_1_to_3000`);
    await db.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'`);
    await db.query(`GRANT SELECT ON \`${database}\`.* TO '${user}'@'%'`);
    await db.query(`GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '${user}'@'%'`);
  } finally {
    await db.end();
  }
  worker = await startWorkerProcess(taskQueue, { FERRY_TEST_SOURCE_URL: userUrl() });
  ferry = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } });
});

after(async () => {
  await stopFerry({ worker, ferry }, [database]);
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`DROP USER IF EXISTS '${user}'@'%'`);
  await db.end();
});

test('errors no retry can fix are told apart from those worth retrying', () => {
  const mysql = (code: string, message: string) => Object.assign(new Error(message), { code });
  const aws = (name: string) => Object.assign(new Error(name), { name });
  const cases: [Error, string | undefined][] = [
    [mysql('ER_SPECIFIC_ACCESS_DENIED_ERROR', 'Access denied; you need (at least one of) the REPLICATION SLAVE privilege(s)'), 'SourceAccessDenied'],
    [mysql('ER_ACCESS_DENIED_ERROR', "Access denied for user 'x'"), 'SourceAccessDenied'],
    [mysql('ER_MASTER_FATAL_ERROR_READING_BINLOG', 'Could not find first log file name in binary log index file'), 'BinlogUnreadable'],
    [mysql('ER_SECURE_TRANSPORT_REQUIRED', 'Connections using insecure transport are prohibited while --require_secure_transport=ON.'), 'SourceRequiresTls'],
    [mysql('ER_UNKNOWN_ERROR', 'Connections using insecure transport are prohibited while --require_secure_transport=ON.'), 'SourceRequiresTls'],
    [aws('AccessDeniedException'), 'AwsAccessDenied'],
    [aws('ValidationException'), 'AwsRequestInvalid'],
    [aws('ResourceNotFoundException'), 'AwsResourceMissing'],
    [aws('UnrecognizedClientException'), 'AwsAccessDenied'],
    [new SpecSqlError('spec.sql.acct must be one SELECT'), 'InvalidSpecSql'],
    // Worth retrying.
    [mysql('PROTOCOL_CONNECTION_LOST', 'Connection lost: The server closed the connection.'), undefined],
    [mysql('ER_CONNECTION_KILLED', 'Connection was killed'), undefined],
    [mysql('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:3306'), undefined],
    [aws('ProvisionedThroughputExceededException'), undefined],
    [aws('ThrottlingException'), undefined],
    [aws('ExpiredTokenException'), undefined],
    [aws('TimeoutError'), undefined],
    [aws('InternalServerError'), undefined],
  ];
  for (const [err, type] of cases) assert.equal(permanentCause(err)?.type, type, `${(err as { code?: string }).code ?? err.name}: ${err.message}`);
});

test('a dropped binlog connection is retried and shown by ferry status; a revoked grant fails the run at once with the fix and the resume command', async () => {
  const name = uniqueName('perm');
  const migration = await ferry!.startMigration({
    name,
    source: { database, urlEnv: 'FERRY_TEST_SOURCE_URL' },
    mapping: idMapping(database, 'acct', uniqueName('acct')),
    target: { create: true },
    // Slow: capture must still be running when the grant goes.
    bulk: { partitions: 6, concurrency: 1 },
    writeBudget: { itemsPerSecond: 20 },
    capture: { stream: uniqueName('perm-stream'), createStream: true, shards: 1, cutover: 'none' },
  });
  const db = await connectMysql(config.mysqlUrl);
  try {
    // Capture is reading the binlog once its user holds a binlog dump connection.
    await until(async () => {
      const [rows] = await db.query("SELECT id FROM information_schema.processlist WHERE user = ? AND command LIKE 'Binlog Dump%'", [user]);
      return (rows as unknown[]).length > 0;
    }, 300, 200, 'capture never opened its binlog connection');
    await killUserConnections(db);

    // Transient: retried, and status names the activity, its attempt and the failure.
    let status = '';
    await until(async () => {
      status = (await runFerry(['status', name])).stdout;
      return /retrying captureChanges \(attempt [2-9]\)/.test(status) && !/apply not running/.test(status);
    }, 120, 500, 'ferry status never showed capture retrying');
    assert.match(status, /retrying captureChanges \(attempt \d+\): .+/);
    // Apply waits for the table's bulk load: its lag is not a figure yet (it used to read "0 ms behind the stream").
    assert.match(status, /apply lag not known yet: 1 table\(s\) still wait for their bulk load/);
    assert.doesNotMatch(status, /ms behind the stream/);
    assert.equal((await migration.progress()).phase !== undefined, true);

    // Permanent: no retry can fix a missing grant.
    await db.query(`REVOKE REPLICATION SLAVE ON *.* FROM '${user}'@'%'`);
    await killUserConnections(db);
    const failure = await within(
      migration.result().then(
        () => undefined,
        (err: unknown) => err,
      ),
      120_000,
      'the run to fail after the grant was revoked (it would retry forever)',
    );
    assert.ok(failure instanceof WorkflowFailedError, `the run failed: ${String(failure)}`);
    let cause: unknown = failure.cause;
    while (cause instanceof Error && cause.cause && !(cause instanceof ApplicationFailure && cause.type === 'SourceAccessDenied')) cause = cause.cause;
    assert.ok(cause instanceof ApplicationFailure, `an ApplicationFailure: ${String(cause)}`);
    assert.equal(cause.type, 'SourceAccessDenied');
    assert.match(cause.message, /REPLICATION SLAVE/);
    assert.match(cause.message, new RegExp(`ferry resume ${name}`));
    const after = await runFerry(['status', name]);
    assert.match(after.stdout, /failed/);
    assert.match(after.stdout, /REPLICATION SLAVE/);
  } finally {
    await db.end();
  }
});
