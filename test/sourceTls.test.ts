/**
 * TLS to the source: a MariaDB user that may only connect over TLS (REQUIRE
 * SSL), reached through a URL with `ssl-mode=VERIFY_IDENTITY&ssl-ca=…` (the
 * stack's MariaDB accepts TLS with a throwaway CA, src/stack/parts.ts). Each
 * of export's three readers stages the table with it, and a migration with
 * change capture copies the table and ships the changes made meanwhile: every
 * connection, the binlog reader's too, honours the URL's TLS settings.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { exportWithClient, exportWithDriver, exportWithScanner, sourceClient, type StagedFile } from '../activities/export.js';
import { scratchFolder } from '../src/bulk/duck.js';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { readColumns, readPrimaryKey } from '../src/source.js';
import { mysqlTlsFiles } from '../src/stack/parts.js';
import { idMapping, scanAll, startWorkerProcess, stopFerry, uniqueName, until, within } from './helpers.js';

const config = loadConfig();
const database = `tls_${uniqueName('t').replace(/-/g, '_')}`;
const user = `tls_${Math.random().toString(36).slice(2, 8)}`;
const password = 'tls-Secret-42';
const URL_ENV = 'FERRY_TLS_SOURCE_URL';
const ca = mysqlTlsFiles(config.stackDir).ca;
let worker: ChildProcess;
let ferry: FerryClient;

/** The stack's MariaDB, as the TLS-only user; `tls` is the URL's query. */
function sourceUrl(tls: string): string {
  const url = new URL(config.mysqlUrl);
  url.username = user;
  url.password = password;
  url.pathname = `/${database}`;
  url.search = tls;
  return url.toString();
}
const TLS_URL = sourceUrl(`?ssl-mode=VERIFY_IDENTITY&ssl-ca=${encodeURIComponent(ca)}`);

before(async () => {
  assert.ok(fs.existsSync(ca), `no CA at ${ca}: restart the stack (./ferry stack down && ./ferry stack up) so that its MariaDB accepts TLS`);
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.t (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.t SELECT seq, CONCAT('row ', seq) FROM seq_1_to_50`);
    for (const host of ['%', 'localhost']) {
      await db.query(`CREATE USER '${user}'@'${host}' IDENTIFIED BY '${password}' REQUIRE SSL`);
      await db.query(`GRANT ALL PRIVILEGES ON *.* TO '${user}'@'${host}'`);
    }
  } finally {
    await db.end();
  }
  const taskQueue = uniqueName('tls');
  worker = await startWorkerProcess(taskQueue, { [URL_ENV]: TLS_URL });
  ferry = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } });
});

after(async () => {
  await stopFerry({ worker, ferry }, [database]);
  const db = await connectMysql(config.mysqlUrl);
  for (const host of ['%', 'localhost']) await db.query(`DROP USER IF EXISTS '${user}'@'${host}'`);
  await db.end();
});

test('a user that requires TLS is refused in plaintext, and each export reader reaches it over TLS as the URL says', async () => {
  await assert.rejects(connectMysql(sourceUrl('')), /Access denied/, 'the user cannot connect without TLS');
  const db = await connectMysql(TLS_URL);
  const [[status]] = (await db.query("SHOW SESSION STATUS LIKE 'Ssl_version'")) as unknown as [{ Value: string }[]];
  const source = { schema: database, table: 't', columns: await readColumns(db, database, 't'), primaryKey: await readPrimaryKey(db, database, 't') };
  await db.end();
  assert.match(status!.Value, /^TLS/, 'the driver connected over TLS');

  const range = { table: 't', index: 0, columns: source.primaryKey, plannedRows: 0 };
  const quiet = { onRows() {} };
  const readers = {
    duckdb: (out: StagedFile) => exportWithScanner(TLS_URL, source, range, out, quiet),
    client: async (out: StagedFile) => exportWithClient(await sourceClient(TLS_URL), source, range, out, quiet),
    driver: (out: StagedFile) => exportWithDriver(TLS_URL, source, range, out, quiet),
  };
  for (const [reader, read] of Object.entries(readers)) {
    const scratch = scratchFolder(`tls-${reader}`);
    try {
      assert.equal(await read({ dir: scratch.dir, file: path.join(scratch.dir, 'rows.parquet'), format: 'parquet' }), 50, `${reader} staged every row`);
    } finally {
      scratch.close();
    }
  }
});

test('a migration with change capture reads the source over TLS: the target equals the source, changes made during the copy included', async () => {
  const target = uniqueName('tls');
  const migration = await ferry.startMigration({
    name: uniqueName('tls'),
    source: { database, urlEnv: URL_ENV },
    mapping: idMapping(database, 't', target),
    target: { create: true },
    capture: { createStream: true, shards: 1, cutover: 'none' },
  });
  // Held before the bulk copy until the changes are in the binlog: a run without a cutover ships what precedes its end.
  await migration.pause();
  await until(async () => Boolean((await migration.progress().catch(() => undefined))?.capture), 600, 200, 'capture never started');
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`INSERT INTO \`${database}\`.t VALUES (51, 'inserted during the copy')`);
  await db.query(`UPDATE \`${database}\`.t SET note = 'updated during the copy' WHERE id = 7`);
  await db.query(`DELETE FROM \`${database}\`.t WHERE id = 9`);
  const [rows] = (await db.query(`SELECT id, note FROM \`${database}\`.t`)) as unknown as [{ id: number; note: string }[]];
  await db.end();
  await migration.resume();
  // A reader that ignored the URL's TLS would be refused and retried without end.
  const report = await within(migration.result(), 180_000, 'the migration did not finish: a connection without TLS is refused for this user');
  assert.equal(report.capture!.apply.reduce((n, a) => n + a.applied, 0), 3, 'the three changes came through the binlog');
  const items = new Map((await scanAll(target)).map((item) => [Number(item.id!.N), item.note!.S]));
  assert.deepEqual(items, new Map(rows.map((r) => [r.id, r.note])));
});
