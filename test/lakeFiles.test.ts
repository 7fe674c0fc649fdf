/**
 * One lake file as a DMS consumer reads it (src/sinks/lake/files.ts): Op first, the commit time, _ferry_seq, then
 * the source's columns in types that keep their meaning. The test reads the files with a DuckDB of its own.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { openScratch, type Scratch } from '../src/bulk/duck.js';
import { eventVersion, type ChangeEvent } from '../src/capture/events.js';
import type { SourceColumn } from '../src/mapping/types.js';
import { writeChangeFile, writeFullLoadFile } from '../src/sinks/lake/files.js';
import { fullLoadSeq } from '../src/sinks/lake/layout.js';

const column = (name: string, family: SourceColumn['family'], mysqlType: string, extra: Partial<SourceColumn> = {}): SourceColumn => ({ name, family, mysqlType, nullable: true, unsigned: false, ...extra });
const columns: SourceColumn[] = [
  column('id', 'integer', 'int(11)', { nullable: false }),
  column('price', 'decimal', 'decimal(20,4)', { precision: 20, scale: 4 }),
  column('placed', 'datetime', 'datetime(6)'),
  column('seen', 'timestamp', 'timestamp'),
  column('day', 'date', 'date'),
  column('note', 'text', 'varchar(40)'),
  column('raw', 'binary', 'varbinary(8)'),
];
const ts = Date.UTC(2026, 11, 7, 18, 0, 0, 250);
const change = (op: ChangeEvent['op'], offset: number, row: number, image: Record<string, string | number | null | { $b64: string }>): ChangeEvent => ({
  table: 'shop.purchase',
  op,
  key: { id: image.id! as number },
  ...(op === 'delete' ? { before: image } : { after: image }),
  version: eventVersion('binlog.000003', offset, row),
  ts,
});

let scratch: Scratch;
let reader: DuckDBConnection;
before(async () => {
  scratch = await openScratch('lake-files-test');
  reader = await (await DuckDBInstance.create(':memory:')).connect();
});
after(() => scratch.close());

const rowsOf = async (sql: string) => (await reader.runAndReadAll(sql)).getRowObjectsJson();

test('an insert, two updates and a delete land as I, U, U, D rows in DMS’s column order, with the types of the source', async () => {
  const full = { id: 7, price: '12345678901234.5678', placed: '2026-12-07 17:59:59.123456', seen: '2026-12-07 17:00:00', day: '2026-12-07', note: 'first', raw: { $b64: Buffer.from([0, 255]).toString('base64') } };
  const events = [
    change('insert', 100, 0, full),
    change('update', 200, 0, { ...full, note: 'second' }),
    change('update', 200, 1, { ...full, note: 'third', price: null }),
    change('delete', 300, 0, { ...full, note: 'third', price: null }),
  ];
  const out = path.join(scratch.dir, 'changes.parquet');
  const written = await writeChangeFile(scratch.duck, events, columns, out, 'parquet');
  assert.equal(written.rows, 4);
  assert.equal(written.bytes, fs.statSync(out).size);
  assert.match(written.md5, /^[0-9a-f]{32}$/);

  const schema = await rowsOf(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${out}'))`);
  assert.deepEqual(
    schema.map((r) => `${r.column_name} ${r.column_type}`),
    ['Op VARCHAR', '_ferry_ts VARCHAR', '_ferry_seq VARCHAR', 'id INTEGER', 'price DECIMAL(20,4)', 'placed TIMESTAMP', 'seen TIMESTAMP WITH TIME ZONE', 'day DATE', 'note VARCHAR', 'raw BLOB'],
  );
  await reader.run(`SET TimeZone = 'UTC'`);
  const rows = await rowsOf(`SELECT Op, _ferry_ts, _ferry_seq, note, CAST(price AS VARCHAR) AS price, CAST(placed AS VARCHAR) AS placed, CAST(seen AS VARCHAR) AS seen, hex(raw) AS raw FROM read_parquet('${out}')`);
  assert.deepEqual(rows.map((r) => r.Op), ['I', 'U', 'U', 'D']);
  assert.deepEqual(rows.map((r) => r.note), ['first', 'second', 'third', 'third'], 'a U carries the row after, a D the row before');
  assert.deepEqual(rows.map((r) => r._ferry_seq), ['00000003.000000000100.00000', '00000003.000000000200.00000', '00000003.000000000200.00001', '00000003.000000000300.00000']);
  assert.equal(rows[0]!._ferry_ts, '2026-12-07 18:00:00.250000');
  assert.equal(rows[0]!.price, '12345678901234.5678', 'DECIMAL keeps every digit');
  assert.equal(rows[2]!.price, null);
  assert.equal(rows[0]!.placed, '2026-12-07 17:59:59.123456');
  assert.equal(rows[0]!.seen, '2026-12-07 17:00:00+00');
  assert.equal(rows[0]!.raw, '00FF');
});

test('the CSV variant has a header in the same column order and the same values', async () => {
  const out = path.join(scratch.dir, 'changes.csv');
  await writeChangeFile(scratch.duck, [change('insert', 100, 0, { id: 1, price: '1.5000', placed: null, seen: null, day: '2026-01-02', note: 'a,b "q"', raw: null })], columns, out, 'csv');
  const [header, line] = fs.readFileSync(out, 'utf8').trim().split('\n');
  assert.equal(header, 'Op,_ferry_ts,_ferry_seq,id,price,placed,seen,day,note,raw');
  assert.match(line!, /^I,2026-12-07 18:00:00\.250000,00000003\.000000000100\.00000,1,1\.5000,,,2026-01-02,"a,b ""q""",$/);
});

test('a zero date fails the file, naming the columns it may be in and hiding the value', async () => {
  const out = path.join(scratch.dir, 'zero.parquet');
  const bad = change('insert', 100, 0, { id: 1, price: null, placed: null, seen: null, day: '2024-00-15', note: null, raw: null });
  await assert.rejects(writeChangeFile(scratch.duck, [bad], columns, out, 'parquet'), (err: Error) => {
    assert.match(err.message, /cannot land in its lake type.*day \(date as DATE\).*fix the row in the source/);
    assert.doesNotMatch(err.message, /2024-00-15/);
    return true;
  });
});

test('a full-load file from a staged export carries Op I when asked (no Op column otherwise), the capture start as its seq, and the same types', async () => {
  const staged = path.join(scratch.dir, 'staged.parquet');
  await scratch.duck.run(
    `COPY (SELECT 5::INTEGER AS id, 2.5000::DECIMAL(20,4) AS price, '2026-01-01 00:00:00' AS placed, '2026-01-01 00:00:00' AS seen, '2026-01-01' AS day, 'x' AS note, NULL::BLOB AS raw) TO '${staged}' (FORMAT parquet)`,
  );
  const seq = fullLoadSeq({ file: 'binlog.000003', position: 4 });
  for (const includeOp of [true, false]) {
    const out = path.join(scratch.dir, `LOAD0000000${includeOp ? 1 : 2}.parquet`);
    const written = await writeFullLoadFile(scratch.duck, { file: staged, format: 'parquet' }, columns, { includeOp, seq, commitMs: ts }, out, 'parquet');
    assert.equal(written.rows, 1);
    const [row] = await rowsOf(`SELECT _ferry_seq, typeof(placed) AS t, typeof(price) AS p FROM read_parquet('${out}')`);
    assert.deepEqual(row, { _ferry_seq: '00000003.000000000004', t: 'TIMESTAMP', p: 'DECIMAL(20,4)' });
    const names = (await rowsOf(`SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet('${out}'))`)).map((r) => r.column_name);
    assert.deepEqual(names.slice(0, 3), includeOp ? ['Op', '_ferry_ts', '_ferry_seq'] : ['_ferry_ts', '_ferry_seq', 'id'], 'Op first with includeOpForFullLoad, absent without, as DMS writes them');
    if (includeOp) assert.deepEqual(await rowsOf(`SELECT DISTINCT Op FROM read_parquet('${out}')`), [{ Op: 'I' }]);
  }
});
