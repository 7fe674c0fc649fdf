/**
 * Preflight for change capture, end to end: each thing capture needs from the
 * source and the stream is checked before anything moves, and a refusal names
 * the setting and the fix. A throwaway MariaDB without a binlog (statement
 * format, minimal row images) stands in for a misconfigured server; a user
 * without replication privileges on the stack's MariaDB for a missing grant.
 * (Without an object-mapping rule the target is a table named like the source:
 * `items`, shared by the runs here.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateStreamCommand, DeleteStreamCommand, DescribeStreamSummaryCommand, waitUntilStreamExists } from '@aws-sdk/client-kinesis';
import { kinesisClient } from '../src/aws.js';
import { FerryClient, type MigrationSpecInput } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { runCommand } from '../src/stack/install.js';
import { describeFailure } from '../src/temporal.js';
import { freePort, startWorkerProcess, stopProcess, uniqueName } from './helpers.js';

const config = loadConfig();
const database = `capture_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('capture-preflight');
const noReplUser = `norepl_${Date.now().toString(36)}`;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cap-'));
let misconfigured: ChildProcess;
let worker: ChildProcess;
let ferry: FerryClient;

/** A MariaDB with no binlog, statement format and minimal row images, and a database `shop` with a table `items`. */
async function startMisconfiguredMariaDb(): Promise<string> {
  const dataDir = path.join(scratch, 'data');
  const socket = path.join(scratch, 's.sock');
  const port = await freePort();
  await runCommand('test', 'mariadb-install-db', ['--no-defaults', `--datadir=${dataDir}`, '--user=root', '--auth-root-authentication-method=socket', '--skip-test-db']);
  misconfigured = spawn(
    fs.existsSync('/usr/sbin/mariadbd') ? '/usr/sbin/mariadbd' : 'mariadbd',
    ['--no-defaults', `--datadir=${dataDir}`, `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${socket}`, '--user=root', '--skip-log-bin', '--binlog-format=STATEMENT', '--binlog-row-image=MINIMAL'],
    { stdio: 'ignore' },
  );
  for (let i = 0; ; i++) {
    try {
      await runCommand('test', 'mariadb', ['--no-defaults', `--socket=${socket}`, '-uroot', '-e', "CREATE USER 'ferry'@'%' IDENTIFIED BY 'ferry'; GRANT ALL PRIVILEGES ON *.* TO 'ferry'@'%'; CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY)"]);
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return `mysql://ferry:ferry@127.0.0.1:${port}/shop`;
}

before(async () => {
  const noBinlogUrl = await startMisconfiguredMariaDb();
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.items (id INT PRIMARY KEY, v VARCHAR(10))`);
    await db.query(`INSERT INTO \`${database}\`.items VALUES (1, 'a'), (2, 'b')`);
    await db.query(`CREATE USER '${noReplUser}'@'%' IDENTIFIED BY 'pw'`);
    await db.query(`GRANT SELECT ON \`${database}\`.* TO '${noReplUser}'@'%'`);
  } finally {
    await db.end();
  }
  const url = new URL(config.mysqlUrl);
  worker = await startWorkerProcess(taskQueue, {
    FERRY_TEST_NOBINLOG_URL: noBinlogUrl,
    FERRY_TEST_NOREPL_URL: `mysql://${noReplUser}:pw@${url.host}/${database}`,
  });
  ferry = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } });
});

after(async () => {
  await ferry?.close();
  if (worker) await stopProcess(worker);
  if (misconfigured) await stopProcess(misconfigured);
  fs.rmSync(scratch, { recursive: true, force: true });
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await db.query(`DROP USER IF EXISTS '${noReplUser}'@'%'`);
  await db.end();
});

function captureSpec(schema: string, capture: MigrationSpecInput['capture'], urlEnv = 'FERRY_MYSQL_URL'): MigrationSpecInput {
  return {
    name: uniqueName('capture'),
    source: { urlEnv, database: schema },
    mapping: { rules: [{ 'rule-type': 'selection', 'rule-id': '1', 'rule-name': '1', 'object-locator': { 'schema-name': schema, 'table-name': 'items' }, 'rule-action': 'include' }] },
    target: { create: true },
    capture,
  };
}

async function refusal(spec: MigrationSpecInput): Promise<string> {
  try {
    await (await ferry.startMigration(spec)).result();
  } catch (err) {
    return describeFailure(err);
  }
  return assert.fail('the preflight was expected to refuse');
}

test('a server without a binlog, in statement format, with minimal row images: each is refused by name with its fix', async () => {
  const message = await refusal(captureSpec('shop', { createStream: true }, 'FERRY_TEST_NOBINLOG_URL'));
  assert.match(message, /change capture cannot read the binlog of 127\.0\.0\.1:\d+ \(spec\.capture\)/);
  assert.match(message, /- log_bin is OFF: .*--log-bin/);
  assert.match(message, /- binlog_format is STATEMENT, not ROW: .*binlog_format = 'ROW'/);
  assert.match(message, /- binlog_row_image is MINIMAL, not FULL: .*binlog_row_image = 'FULL'/);
});

test('a user without replication privileges is refused with the GRANT that fixes it', async () => {
  const message = await refusal(captureSpec(database, { createStream: true }, 'FERRY_TEST_NOREPL_URL'));
  assert.match(message, new RegExp(`user '${noReplUser}'@'%' lacks REPLICATION SLAVE and BINLOG MONITOR .*GRANT REPLICATION SLAVE, BINLOG MONITOR ON \\*\\.\\* TO '${noReplUser}'@'%'`));
});

test('a missing stream is refused unless the spec lets ferry create it', async () => {
  const stream = uniqueName('absent-stream');
  const message = await refusal(captureSpec(database, { stream }));
  assert.match(message, new RegExp(`Kinesis stream ${stream} does not exist; create it, or set spec.capture.createStream to true`));
});

test('a stream retaining records for less than the expected bulk duration is refused, and raised when the spec allows', async () => {
  const kinesis = kinesisClient(config.aws);
  const stream = uniqueName('short-stream');
  await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  await waitUntilStreamExists({ client: kinesis, maxWaitTime: 60 }, { StreamName: stream });

  const message = await refusal(captureSpec(database, { stream, expectedBulkHours: 36 }));
  assert.match(message, new RegExp(`Kinesis stream ${stream} keeps records for 24 h, less than the 36 h .*raiseRetention to true and ferry raises it to 72 h`));

  const report = await (await ferry.startMigration(captureSpec(database, { stream, expectedBulkHours: 36, raiseRetention: true, cutover: 'none' }))).result();
  assert.equal(report.rows, 2);
  const { StreamDescriptionSummary } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
  assert.equal(StreamDescriptionSummary?.RetentionPeriodHours, 72);
  // Not ferry's stream (the test made it): ferry leaves it; the test cleans up.
  await kinesis.send(new DeleteStreamCommand({ StreamName: stream }));
});
