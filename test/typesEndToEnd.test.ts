/**
 * The type mapping through the real pipeline: a MariaDB table with a column of
 * every family, at its extremes, exported, staged as Parquet, transformed and
 * loaded by a worker process; each DynamoDB item is compared with one written
 * out by hand here from docs/type-mapping.md, not computed by ferry's code.
 * A value DynamoDB cannot hold is a dead letter, not a failed batch. Each of
 * export's three readers runs it, forced on its own worker (FERRY_EXPORT):
 * DuckDB's MySQL extension, the default, the MariaDB command-line client and
 * the mysql2 driver; and a worker whose cache holds no extension falls back to
 * the client by itself, or, told to use the extension, fails saying how to
 * install it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { dynamoClient } from '../src/aws.js';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { idMapping, startWorkerProcess, stopProcess, uniqueName } from './helpers.js';

const config = loadConfig();
const database = `types_${uniqueName('t').replace(/-/g, '_')}`;
const READERS = ['duckdb', 'client', 'driver'] as const;
type Reader = (typeof READERS)[number];
/** A cache folder without DuckDB's MySQL extension in it. */
const noExtension = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-no-extension-'));
/** Each worker's environment and the reader it must export with. */
const WORKERS = {
  duckdb: { env: { FERRY_EXPORT: 'duckdb' }, reader: 'duckdb' },
  client: { env: { FERRY_EXPORT: 'client' }, reader: 'client' },
  driver: { env: { FERRY_EXPORT: 'driver' }, reader: 'driver' },
  'no extension': { env: { FERRY_EXPORT: '', FERRY_CACHE_DIR: noExtension }, reader: 'client' },
  'no extension, duckdb forced': { env: { FERRY_EXPORT: 'duckdb', FERRY_CACHE_DIR: noExtension }, reader: 'duckdb' },
} satisfies Record<string, { env: Record<string, string>; reader: Reader }>;
type WorkerName = keyof typeof WORKERS;
const workers: ChildProcess[] = [];
const clients = new Map<WorkerName, FerryClient>();

const COLUMNS = `
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d38 DECIMAL(38,10), d65 DECIMAL(65,0),
  f FLOAT, f2 FLOAT, dbl DOUBLE,
  dt DATE, dtm DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME, yr YEAR,
  txt TEXT, vc VARCHAR(20), en ENUM('a','b'), st SET('x','y','z'),
  bin VARBINARY(8), bl BLOB, js JSON,
  b1 BIT(1), b9 BIT(9),
  nul INT NULL`;

const TEXT = 'naïve 日本語 🚀 "quotes" \\ tab\tnewline\n';
const BLOB = Buffer.from([0, 255, 16, 9, 10, 92, 78, 85, 76, 76]);

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.everything (${COLUMNS})`);
    // A valid DOUBLE that DynamoDB cannot hold (beyond 9.99E+125): a bad record, set aside below.
    await db.query(`INSERT INTO \`${database}\`.everything (id, dbl) VALUES (3, 1.7976931348623157e308)`);
    await db.query(
      `INSERT INTO \`${database}\`.everything VALUES
        (1, -128, 0, -9223372036854775808, 0,
         -9999999999999999999999999999.9999999999, 12345678901234567890123456789012345678,
         1.5, 1.2345678, -2.5e-120,
         '1000-01-01', '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59.125', '-838:59:59', 1901,
         ?, '', 'a', 'x,z',
         x'00FF10', ?, '{"n": 12345678901234567890.5, "a": [1, true, null, "s"]}',
         b'1', b'100000001', NULL),
        (2, 127, 255, 9223372036854775807, 18446744073709551615,
         9999999999999999999999999999.9999999999, 0,
         -0.25, 0.1, 9.5e125,
         '9999-12-31', '1000-01-01 00:00:00', '1970-01-01 00:00:01.000', '838:59:59', 2155,
         'NULL', 'x', 'b', '',
         x'', x'', '[]',
         b'0', b'111111111', NULL)`,
      [TEXT, BLOB],
    );
  } finally {
    await db.end();
  }
  await Promise.all(
    (Object.keys(WORKERS) as WorkerName[]).map(async (name) => {
      const taskQueue = uniqueName('types');
      workers.push(await startWorkerProcess(taskQueue, WORKERS[name].env));
      clients.set(name, await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } }));
    }),
  );
});

after(async () => {
  for (const client of clients.values()) await client.close();
  await Promise.all(workers.map((worker) => stopProcess(worker)));
  fs.rmSync(noExtension, { recursive: true, force: true });
  const db = await connectMysql(config.mysqlUrl);
  await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await db.end();
});

const N = (n: string): AttributeValue => ({ N: n });
const S = (s: string): AttributeValue => ({ S: s });

const EXPECTED: Record<string, Record<string, AttributeValue>> = {
  '1': {
    id: N('1'), ti: N('-128'), tiu: N('0'), bi: N('-9223372036854775808'), biu: N('0'),
    d38: N('-9999999999999999999999999999.9999999999'), d65: N('12345678901234567890123456789012345678'),
    f: N('1.5'), f2: N('1.2345678'), dbl: N('-2.5e-120'),
    dt: S('1000-01-01'), dtm: S('2024-02-29T23:59:59.123456'), ts: S('2024-02-29T23:59:59.125Z'), tm: S('-838:59:59'), yr: N('1901'),
    txt: S(TEXT), vc: S(''), en: S('a'), st: { SS: ['x', 'z'] },
    bin: { B: Uint8Array.from([0, 255, 16]) }, bl: { B: Uint8Array.from(BLOB) },
    js: { M: { n: N('12345678901234567890.5'), a: { L: [N('1'), { BOOL: true }, { NULL: true }, S('s')] } } },
    b1: { BOOL: true }, b9: N('257'),
  },
  '2': {
    id: N('2'), ti: N('127'), tiu: N('255'), bi: N('9223372036854775807'), biu: N('18446744073709551615'),
    d38: N('9999999999999999999999999999.9999999999'), d65: N('0'),
    f: N('-0.25'), f2: N('0.1'), dbl: N('9.5e+125'),
    dt: S('9999-12-31'), dtm: S('1000-01-01T00:00:00.000000'), ts: S('1970-01-01T00:00:01.000Z'), tm: S('838:59:59'), yr: N('2155'),
    txt: S('NULL'), vc: S('x'), en: S('b'),
    bin: { B: new Uint8Array() }, bl: { B: new Uint8Array() }, js: { L: [] },
    b1: { BOOL: false }, b9: N('511'),
  },
};

/** A number's value, whatever its spelling: DynamoDB returns 9.5e+125 as 95 followed by 124 zeros. */
function numberValue(text: string): string {
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/.exec(text)!;
  const digits = `${m[2] ?? ''}${m[3] ?? ''}`;
  const lead = /^0*/.exec(digits)![0].length;
  if (lead === digits.length) return '0';
  const exponent = (m[2] ?? '').length - lead - 1 + Number(m[4] ?? 0);
  return `${m[1]}${digits.slice(lead).replace(/0+$/, '')}e${exponent}`;
}

/** Comparable form: bytes as hex, string sets sorted, numbers by value. */
function canonical(value: unknown): unknown {
  if (value instanceof Uint8Array) return `hex:${Buffer.from(value).toString('hex')}`;
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, k === 'SS' ? [...(v as string[])].sort() : k === 'N' ? numberValue(v as string) : canonical(v)]),
    );
  }
  return value;
}

function startEverything(worker: WorkerName, target: string) {
  return clients.get(worker)!.startMigration({
    name: uniqueName('types'),
    source: { database },
    mapping: idMapping(database, 'everything', target),
    target: { create: true },
    errors: { policy: 'dead-letter' },
  });
}

async function migrateEverything(worker: WorkerName): Promise<void> {
  const { reader } = WORKERS[worker];
  const target = uniqueName('everything');
  const report = await (await startEverything(worker, target)).result();
  assert.equal(report.rows, 3);
  assert.equal(report.items, 2);
  assert.equal(report.deadLetters, 1, 'the DOUBLE beyond DynamoDB\'s range was set aside, not sent to fail the whole batch');
  assert.deepEqual(report.partitions.map((p) => p.exportReader), report.partitions.map(() => reader), 'the forced reader staged every partition');

  const { Items = [] } = await dynamoClient(config.aws).send(new ScanCommand({ TableName: target, ConsistentRead: true }));
  assert.equal(Items.length, 2);
  for (const item of Items) {
    const id = item.id!.N!;
    assert.deepEqual(canonical(item), canonical(EXPECTED[id]), `worker "${worker}", ${reader} export, item ${id}`);
  }
}

test('every MySQL type family arrives in DynamoDB as docs/type-mapping.md says, extremes included, with each export reader', async () => {
  await Promise.all(READERS.map(migrateEverything));
});

test('a worker without DuckDB\'s MySQL extension exports with the client by itself, and fails, saying how to install it, when told to use the extension', async () => {
  await migrateEverything('no extension');
  const migration = await startEverything('no extension, duckdb forced', uniqueName('everything'));
  const failure = await migration.result().then(
    () => assert.fail('the migration finished without the extension it was told to use'),
    (err: unknown) => err,
  );
  const messages: string[] = [];
  for (let cause = failure; cause instanceof Error; cause = cause.cause) messages.push(cause.message);
  assert.match(messages.join('\n'), /FERRY_EXPORT=duckdb, but DuckDB's MySQL extension v[\d.]+ is not installed at .*ferry-no-extension-.*: run scripts\/ensure-duckdb-mysql on this worker, or unset FERRY_EXPORT/);
});
