/**
 * Every type family of docs/type-mapping.md through the change-capture path
 * (binlog → Kinesis → apply), compared with the bulk path: rows copied by the
 * bulk copy, and rows with the same values under another key written after
 * capture started (inserts, and updates that end on those values), must give
 * the same DynamoDB items but for the key. Once with the plain mapping, once
 * through `spec.sql`, whose change path stages each image in DuckDB.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { idMapping, scanAll, startFerry, stopFerry, uniqueName, until } from './helpers.js';

const config = loadConfig();
const database = `cdct_${uniqueName('t').replace(/-/g, '_')}`;
let worker: ChildProcess;
let ferry: FerryClient;

/** One column of each family, some twice at different widths. */
const COLUMNS: [string, string][] = [
  ['js', 'JSON'], ['bin', 'VARBINARY(8)'], ['bfix', 'BINARY(4)'], ['bl', 'BLOB'],
  ['b1', 'BIT(1)'], ['b9', 'BIT(9)'], ['b64', 'BIT(64)'],
  ['st', "SET('x','y','z')"], ['st40', `SET(${Array.from({ length: 40 }, (_, i) => `'m${i}'`).join(',')})`], ['en', "ENUM('a','b')"],
  ['dt', 'DATE'], ['dtm', 'DATETIME(6)'], ['dt0', 'DATETIME'], ['ts', 'TIMESTAMP(6) NULL'], ['ts3', 'TIMESTAMP(3) NULL'], ['tm', 'TIME'], ['tm6', 'TIME(6)'], ['yr', 'YEAR'], ['yr2', 'YEAR'],
  ['txt', 'TEXT'], ['vc', 'VARCHAR(20)'], ['ch', 'CHAR(5)'], ['latin', 'VARCHAR(10) CHARACTER SET latin1'],
  ['d38', 'DECIMAL(38,10)'], ['d65', 'DECIMAL(65,2)'], ['dsmall', 'DECIMAL(5,2)'],
  ['f', 'FLOAT'], ['dbl', 'DOUBLE'],
  ['iu', 'INT UNSIGNED'], ['bi', 'BIGINT'], ['biu', 'BIGINT UNSIGNED'], ['ti', 'TINYINT'], ['mi', 'MEDIUMINT'], ['siu', 'SMALLINT UNSIGNED'],
  ['nul', 'INT NULL'],
];
const NAMES = COLUMNS.map(([name]) => name);

const TEXT = 'naïve 日本語 🚀👩‍👩‍👧 "quotes" \\ tab\tnewline\n';
const BLOB = Buffer.from([0, 255, 16, 9, 10, 92, 78, 85, 76, 76]);
/** Row 1: the high ends and rich values; row 2: the low ends and empty values; row 3: NULL everywhere. */
const ROWS = `
  (1, '{"n": 12345678901234567890.5, "a": [1, true, null, "s"], "o": {"e": "🚀", "f": -1.5e-7}}', x'00FF10', x'0100', ?,
   b'1', b'100000001', b'1111111111111111111111111111111111111111111111111111111111111111',
   'x,z', 'm0,m31,m32,m39', 'b',
   '2024-02-29', '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59', '2038-01-19 03:14:07.999999', '2024-02-29 23:59:59.125', '-838:59:59', '-12:34:56.000001', 2155, 1901,
   ?, '🚀 up  ', 'ab', 'café €',
   -9999999999999999999999999999.9999999999, 12345678901234567890123456789012345.67, -999.99,
   1.2345678, -2.5e-120,
   4294967295, -9223372036854775808, 18446744073709551615, -128, -8388608, 65535,
   NULL),
  (2, '[]', x'', x'', x'',
   b'0', b'0', b'0',
   '', '', 'a',
   '1000-01-01', '1000-01-01 00:00:00', '9999-12-31 23:59:59', '1970-01-01 00:00:01', '1970-01-01 00:00:01', '838:59:59', '00:00:00', 0, 2000,
   '', '', '', '',
   0, 0, 0.5,
   0.1, 9.5e125,
   0, 9223372036854775807, 0, 127, 8388607, 0,
   0),
  (3, ${NAMES.map(() => 'NULL').join(', ')})`;

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    for (const table of ['plain', 'shaped']) {
      await db.query(`CREATE TABLE \`${database}\`.${table} (id INT PRIMARY KEY, ${COLUMNS.map(([n, type]) => `${n} ${type}`).join(', ')})`);
      await db.query(`INSERT INTO \`${database}\`.${table} VALUES ${ROWS}`, [BLOB, TEXT]);
    }
  } finally {
    await db.end();
  }
  ({ worker, ferry } = await startFerry(uniqueName('cdc-types')));
});

after(async () => {
  await stopFerry({ worker, ferry }, [database]);
});

/**
 * The changes made once capture runs: rows 101–103 inserted as copies of 1–3, row 104 inserted as row 3 (all NULL)
 * and updated to row 1's values, row 105 inserted as row 1 and updated to row 2's. Each ends equal to a bulk row.
 */
async function writeChanges(table: string): Promise<Map<string, string>> {
  const t = `\`${database}\`.${table}`;
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`INSERT INTO ${t} SELECT id + 100, ${NAMES.join(', ')} FROM ${t} WHERE id IN (1, 2, 3)`);
    await db.query(`INSERT INTO ${t} SELECT 104, ${NAMES.join(', ')} FROM ${t} WHERE id = 3`);
    await db.query(`INSERT INTO ${t} SELECT 105, ${NAMES.join(', ')} FROM ${t} WHERE id = 1`);
    const copy = (to: number, from: number) => db.query(`UPDATE ${t} AS dst JOIN ${t} AS src ON src.id = ? SET ${NAMES.map((n) => `dst.${n} = src.${n}`).join(', ')} WHERE dst.id = ?`, [from, to]);
    await copy(104, 1);
    await copy(105, 2);
  } finally {
    await db.end();
  }
  return new Map([['101', '1'], ['102', '2'], ['103', '3'], ['104', '1'], ['105', '2']]);
}

/** Comparable form: bytes as hex, string sets sorted, map keys sorted, the key left out. */
function canonical(value: unknown): unknown {
  if (value instanceof Uint8Array) return `hex:${Buffer.from(value).toString('hex')}`;
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== 'id')
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, k === 'SS' ? [...(v as string[])].sort() : canonical(v)]),
    );
  }
  return value;
}

async function bothPathsAgree(table: 'plain' | 'shaped'): Promise<void> {
  const target = uniqueName(`cdc-types-${table}`);
  const migration = await ferry.startMigration({
    name: uniqueName('cdc-types'),
    source: { database },
    mapping: idMapping(database, table, target),
    ...(table === 'shaped' ? { sql: { shaped: 'SELECT * FROM source' } } : {}),
    target: { create: true },
    capture: { createStream: true, shards: 1, cutover: 'none' },
  });
  // Held before its bulk copy until the changes are in the binlog: a run without a cutover ships only what precedes
  // the end of its bulk copy.
  await migration.pause();
  await until(async () => Boolean((await migration.progress().catch(() => undefined))?.capture), 600, 200, 'capture never started');
  const copies = await writeChanges(table);
  await migration.resume();
  const report = await migration.result();
  assert.equal(report.deadLetters, 0);
  const applied = report.capture!.apply.reduce((n, a) => n + a.applied, 0);
  assert.equal(applied, 7, 'every change (five inserts, two updates) was applied by the change path, none set aside');

  const items = new Map((await scanAll(target)).map((item) => [item.id!.N!, item]));
  assert.equal(items.size, 8);
  assert.ok(Object.keys(items.get('1')!).length > 25 && Object.keys(items.get('3')!).length === 1, 'the bulk items hold every column, and no NULL one');
  for (const [changed, bulk] of copies) {
    const want = canonical(items.get(bulk)) as Record<string, AttributeValue>;
    const have = canonical(items.get(changed)) as Record<string, AttributeValue>;
    const differ = [...new Set([...Object.keys(want), ...Object.keys(have)])].filter((k) => JSON.stringify(want[k]) !== JSON.stringify(have[k]));
    assert.deepEqual(
      differ.map((k) => `${k}: change path ${JSON.stringify(have[k])}, bulk path ${JSON.stringify(want[k])}`),
      [],
      `${table}: item ${changed} (written through the binlog) equals item ${bulk} (bulk copy) but for its key`,
    );
  }
}

test('every type family arrives through the binlog path exactly as the bulk copy maps it', async () => {
  await bothPathsAgree('plain');
});

test('through spec.sql, the binlog path stages each type as the bulk copy does', async () => {
  await bothPathsAgree('shaped');
});
