/**
 * Export's three readers stage the same thing: DuckDB's MySQL extension (rows
 * written straight to the file), the MariaDB command-line client
 * (tab-separated text read by DuckDB) and the mysql2 driver (rows appended
 * one by one) run on the same partitions of real MariaDB tables — every type
 * family, NULLs next to empty strings and the text 'NULL', tabs, newlines,
 * NUL bytes, string keys bounded under a case-insensitive collation, a key
 * full of quotes and backslashes — and their staged files must have the same
 * columns, the same types and the same rows.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLIENT_SESSION, exportWithClient, exportWithDriver, exportWithScanner, sourceClient, type ExportedTable, type StagedFile } from '../activities/export.js';
import { fromDuckValue, scratchFolder } from '../src/bulk/duck.js';
import { attachSource, scannerEngine } from '../src/bulk/scannerExport.js';
import type { KeyTuple, PartitionRange } from '../src/bulk/partitionPlan.js';
import { ValueTooLongForText } from '../src/bulk/textExport.js';
import { loadConfig } from '../src/config.js';
import { connectMysql, type MysqlConnection } from '../src/mysql.js';
import { dumpQuery, sourceEndpoint } from '../src/mysqlCli.js';
import { readColumns, readPrimaryKey } from '../src/source.js';
import { uniqueName } from './helpers.js';

const config = loadConfig();
const database = `export_${uniqueName('t').replace(/-/g, '_')}`;
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-export-test-'));
let db: MysqlConnection;

const TRICKY = 'naïve 日本語 🚀 "q" \'s\' \\ \\\\ tab\tnewline\nCR\r NUL\0 ^Z\x1a ; -- # /* \\G NULL';

before(async () => {
  db = await connectMysql(config.mysqlUrl);
  await db.query(`CREATE DATABASE \`${database}\``);
  await db.query(`USE \`${database}\``);
  // Zero dates and an ENUM's '' need a lax session; the readers see whatever is stored.
  await db.query("SET SESSION sql_mode = ''");
  await db.query(`CREATE TABLE everything (
    id INT PRIMARY KEY,
    ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, zf INT(6) ZEROFILL,
    d38 DECIMAL(38,10), d5 DECIMAL(5,2), d65 DECIMAL(65,30),
    f FLOAT, dbl DOUBLE, f72 FLOAT(7,2),
    dt DATE, dtm DATETIME(6), dt0 DATETIME, ts TIMESTAMP(3) NULL, tm TIME(6), yr YEAR,
    txt TEXT, vc VARCHAR(40), ch CHAR(10), lat VARCHAR(20) CHARACTER SET latin1, bn VARCHAR(20) COLLATE utf8mb4_bin,
    en ENUM('a','b'), st SET('x','y','z'),
    bin BINARY(4), vb VARBINARY(16), bl LONGBLOB, js JSON, lt LONGTEXT,
    b1 BIT(1), b9 BIT(9), b64 BIT(64))`);
  const row = (id: number, values: string) => `(${id}, ${values})`;
  await db.query(
    `INSERT INTO everything VALUES
      ${row(1, `-128, 0, -32768, 0, -9223372036854775808, 0, 42,
        -9999999999999999999999999999.9999999999, -0.5, -12345678901234567890123456789012345.123456789012345678901234567890,
        1.2345678, 2.2250738585072014e-308, -12345.67,
        '1000-01-01', '2024-02-29 23:59:59.123456', '0000-00-00 00:00:00', '2024-02-29 23:59:59.125', '-838:59:59.000000', 1901,
        ?, '', 'padded   ', 'Ünïcödé', 'Case',
        'a', 'x,z',
        x'00', x'00FF10090A5C4E554C4C', ?, '{"n": 12345678901234567890.5, "s": "a\\\\tb"}', '',
        b'1', b'100000001', b'1111111111111111111111111111111111111111111111111111111111111111'`)},
      ${row(2, `127, 255, 32767, 16777215, 9223372036854775807, 18446744073709551615, 0,
        9999999999999999999999999999.9999999999, 999.99, 0,
        0.1, 1.7976931348623157e308, 0,
        '0000-00-00', '1000-01-01 00:00:00', '9999-12-31 23:59:59', '1970-01-01 00:00:01', '838:59:59.999999', 0,
        'NULL', 'NULL', '', '', '',
        '', '',
        x'', x'', x'', '[]', 'NULL',
        b'0', b'0', b'0'`)},
      ${row(3, Array(34).fill('NULL').join(', '))},
      ${row(4, `1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -3.4028234e38, -2.5e-120, 1, '2000-01-01', '2000-01-01', '2000-01-01', '2000-01-01', '00:00:00', 2000,
        ?, ?, ?, ?, ?, 'b', 'x,y,z', 'abcd', ?, ?, ?, ?, b'1', b'0', b'1'`)}`,
    [TRICKY, Buffer.from([0, 9, 10, 13, 92, 39, 255]), 'tab\there', 'a\\b', 'trailing ', 'café', '\0', Buffer.from('NULL'), Buffer.alloc(1_500_000, 0xab), '{"big": "' + 'x'.repeat(100) + '"}', 'x'.repeat(1_100_000)],
  );
  // String keys under a case-insensitive collation, and bytes keys: the partition bounds are literals on the client path.
  await db.query('CREATE TABLE named (name VARCHAR(60) COLLATE utf8mb4_unicode_ci PRIMARY KEY, n INT)');
  const names = ['a', 'B', 'c', 'Z', 'zz', "o'brien", 'back\\slash', 'x;y', 'new\nline', 'ß', 'straße', '🚀', ''];
  await db.query(`INSERT INTO named VALUES ${names.map(() => '(?, 1)').join(', ')}`, names);
  await db.query('CREATE TABLE bytes (k VARBINARY(8) PRIMARY KEY)');
  await db.query(`INSERT INTO bytes VALUES ${Array.from({ length: 12 }, () => '(?)').join(', ')}`, Array.from({ length: 12 }, (_, i) => Buffer.from([i * 20, 39, 92, 0])));
  await db.query('CREATE TABLE lonely (k VARCHAR(10) PRIMARY KEY)');
  await db.query("INSERT INTO lonely VALUES (''), ('a'), ('NULL')");
});

after(async () => {
  await db?.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await db?.end();
  fs.rmSync(outDir, { recursive: true, force: true });
});

async function table(name: string): Promise<ExportedTable> {
  return { schema: database, table: name, columns: await readColumns(db, database, name), primaryKey: await readPrimaryKey(db, database, name) };
}

function range(source: ExportedTable, index: number, after?: KeyTuple, upTo?: KeyTuple): PartitionRange {
  return { table: source.table, index, columns: source.primaryKey, after, upTo, plannedRows: 0 };
}

const quiet = { onRows() {} };

type Reader = 'duckdb' | 'client' | 'driver';

function read(reader: Reader, url: string, source: ExportedTable, part: PartitionRange, out: StagedFile): Promise<number> {
  if (reader === 'duckdb') return exportWithScanner(url, source, part, out, quiet);
  if (reader === 'client') return sourceClient(url).then((client) => exportWithClient(client, source, part, out, quiet));
  return exportWithDriver(url, source, part, out, quiet);
}

/** Stages one partition with one reader and returns the file, kept after the scratch folder goes. */
async function staged(reader: Reader, source: ExportedTable, part: PartitionRange, format: 'parquet' | 'csv'): Promise<{ file: string; rows: number }> {
  const scratch = scratchFolder(`test-${reader}`);
  try {
    const out: StagedFile = { dir: scratch.dir, file: path.join(scratch.dir, `rows.${format}`), format };
    const rows = await read(reader, config.mysqlUrl, source, part, out);
    const file = path.join(outDir, `${reader}-${source.table}-${part.index}.${format}`);
    fs.copyFileSync(out.file, file);
    return { file, rows };
  } finally {
    scratch.close();
  }
}

/** The three readers on one partition: DuckDB's and the client's files each have the driver's columns, types and multiset of rows. */
async function assertSameStaging(source: ExportedTable, part: PartitionRange, format: 'parquet' | 'csv' = 'parquet'): Promise<unknown[][]> {
  const driver = await staged('driver', source, part, format);
  let rows: unknown[][] = [];
  for (const reader of ['duckdb', 'client'] as const) {
    const other = await staged(reader, source, part, format);
    rows = await assertSameFile(other, driver, format);
  }
  return rows;
}

async function assertSameFile(other: { file: string; rows: number }, driver: { file: string; rows: number }, format: 'parquet' | 'csv'): Promise<unknown[][]> {
  const who = path.basename(other.file);
  assert.equal(other.rows, driver.rows, `row counts of ${who}`);
  const duck = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    if (format === 'csv') {
      const lines = (file: string) => fs.readFileSync(file, 'utf8').split('\n');
      assert.equal(lines(other.file)[0], lines(driver.file)[0], `CSV header of ${who}`);
      assert.deepEqual(lines(other.file).slice(1).sort(), lines(driver.file).slice(1).sort(), `CSV rows of ${who}`);
      return [];
    }
    const describe = async (file: string) => (await duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).getRows().map((r) => `${r[0]} ${r[1]}`);
    assert.deepEqual(await describe(other.file), await describe(driver.file), `column names and types of ${who}`);
    for (const [a, b] of [[other.file, driver.file], [driver.file, other.file]] as const) {
      const extra = await duck.runAndReadAll(`SELECT * FROM read_parquet('${a}') EXCEPT ALL SELECT * FROM read_parquet('${b}')`);
      assert.deepEqual(extra.getRows().map((r) => r.map(fromDuckValue)), [], `rows in ${path.basename(a)} missing from ${path.basename(b)}`);
    }
    return (await duck.runAndReadAll(`SELECT * FROM read_parquet('${other.file}') ORDER BY ALL`)).getRows().map((r) => r.map(fromDuckValue));
  } finally {
    duck.closeSync();
  }
}

test('the client reads in the driver\'s session: UTC time zone, utf8mb4 with the driver\'s collation', async () => {
  const settings = '@@time_zone, @@character_set_client, @@character_set_connection, @@character_set_results, @@collation_connection, @@sql_mode';
  const driver = await connectMysql(config.mysqlUrl);
  const [[expected]] = (await driver.query({ sql: `SELECT ${settings}`, rowsAsArray: true })) as unknown as [string[][]];
  await driver.end();
  const file = path.join(outDir, 'session.tsv');
  const client = await sourceClient(config.mysqlUrl);
  await dumpQuery(client.cli, client.connection, { session: CLIENT_SESSION, select: `SELECT ${settings}` }, file);
  assert.deepEqual(fs.readFileSync(file, 'utf8').trimEnd().split('\t'), expected!.map(String));
});

test('DuckDB\'s reader connects as the driver does: UTC time zone, utf8mb4, no compression, no TLS', async () => {
  const settings = "@@time_zone, @@character_set_client, @@character_set_connection, @@character_set_results";
  const driver = await connectMysql(config.mysqlUrl);
  const [[expected]] = (await driver.query({ sql: `SELECT ${settings}`, rowsAsArray: true })) as unknown as [string[][]];
  await driver.end();
  const engine = await scannerEngine();
  const alias = await attachSource(engine, sourceEndpoint(config.mysqlUrl, Error, 'the test'));
  const duck = await engine.instance.connect();
  try {
    const status = "(SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = ''Compression'')";
    const tls = "(SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = ''Ssl_cipher'')";
    const [row] = (await duck.runAndReadAll(`SELECT * FROM mysql_query('${alias}', 'SELECT ${settings}, ${status}, ${tls}')`)).getRows();
    assert.deepEqual(row!.map(String), [...expected!.map(String), 'OFF', '']);
  } finally {
    duck.closeSync();
  }
});

test('a reader that cannot connect fails the export naming the table and partition, without the password', async () => {
  const wrong = new URL(config.mysqlUrl);
  wrong.password = 'not-the-Secret-42';
  const named = await table('named');
  const scratch = scratchFolder('test-fail');
  try {
    const out: StagedFile = { dir: scratch.dir, file: path.join(scratch.dir, 'rows.parquet'), format: 'parquet' };
    const said = { duckdb: "DuckDB's MySQL extension: .*Access denied", client: 'mariadb exited with code 1: .*Access denied' };
    for (const reader of ['duckdb', 'client'] as const) {
      await assert.rejects(read(reader, wrong.href, named, range(named, 3), out), (err: Error) => {
        assert.match(err.message, new RegExp(`^export of ${database}\\.named/part-00003: ${said[reader]}`, 's'));
        assert.doesNotMatch(err.message, /not-the-Secret-42/);
        return true;
      });
    }
  } finally {
    scratch.close();
  }
});

test('every type family, NULL, empty and the text NULL: DuckDB and the client stage exactly what the driver stages', async () => {
  const everything = await table('everything');
  const rows = await assertSameStaging(everything, range(everything, 0));
  assert.equal(rows.length, 4);
  const txt = everything.columns.findIndex((c) => c.name === 'txt');
  assert.deepEqual(rows.map((r) => r[txt]), [TRICKY, 'NULL', null, 'tab\there'], 'text survives tabs, newlines, NUL and the word NULL');
  await assertSameStaging(everything, range(everything, 1), 'csv');
});

test('partition bounds compare as the driver compares them: case-insensitive string keys, quotes and backslashes, bytes', async () => {
  const named = await table('named');
  // Ascending in utf8mb4_unicode_ci, where 'B' > 'a', 'ß' = 'ss' and 'straße' = 'STRASSE'; in binary order they are not.
  const bounds = ['a', 'back\\slash', 'new\nline', "o'brien", 'STRASSE', 'z'];
  const sizes: number[] = [];
  for (let i = 0; i <= bounds.length; i++) {
    const after = i === 0 ? undefined : [bounds[i - 1]!];
    const upTo = i === bounds.length ? undefined : [bounds[i]!];
    sizes.push((await assertSameStaging(named, range(named, i, after, upTo))).length);
  }
  assert.deepEqual(sizes, [2, 2, 2, 1, 2, 2, 2], 'every row in exactly one partition, by the column\'s collation');

  const bytes = await table('bytes');
  const low = { $b64: Buffer.from([60, 39, 92, 0]).toString('base64') };
  const high = { $b64: Buffer.from([160, 39]).toString('base64') };
  const middle = await assertSameStaging(bytes, range(bytes, 1, [low], [high]));
  assert.equal(middle.length, 4);
});

test('a one-column table whose key is the empty string loses no row', async () => {
  const lonely = await table('lonely');
  assert.deepEqual((await assertSameStaging(lonely, range(lonely, 0))).map((r) => r[0]), ['', 'NULL', 'a']);
});

test('a value too long for the server to hex-encode is refused by the client path, not staged as NULL; DuckDB and the driver read it', async () => {
  await db.query('CREATE TABLE huge (id INT PRIMARY KEY, body LONGTEXT)');
  await db.query("INSERT INTO huge VALUES (1, REPEAT('x', 9000000)), (2, NULL)");
  const huge = await table('huge');
  const part = range(huge, 0);
  await assert.rejects(staged('client', huge, part, 'parquet'), ValueTooLongForText);
  const driver = await staged('driver', huge, part, 'parquet');
  assert.equal(driver.rows, 2);
  const rows = await assertSameFile(await staged('duckdb', huge, part, 'parquet'), driver, 'parquet');
  assert.deepEqual(rows.map((r) => [r[0], typeof r[1] === 'string' ? r[1].length : r[1]]), [[1, 9_000_000], [2, null]]);
});
