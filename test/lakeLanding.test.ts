/**
 * Landing and merging a table's lake, as a DMS consumer and an analyst read it (issue 26): the documented
 * I/U/U/D example gives the documented files and current/ rows; changes to one key inside one file merge in
 * _ferry_seq order; a process killed between a file's upload and its commit leaves, after the retry, one file
 * listed once and nothing lost. The test reads the files with a DuckDB of its own and the JSON documents by
 * parsing them; it uses ferry's code only to land and merge.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { openScratch, type Scratch } from '../src/bulk/duck.js';
import { eventVersion, type ChangeEvent } from '../src/capture/events.js';
import type { SourceColumn } from '../src/mapping/types.js';
import { mergeIntoCurrent } from '../src/sinks/lake/current.js';
import { landChanges, landFullLoad, type LandingTable } from '../src/sinks/lake/land.js';
import { fullLoadSeq, tableRoot, type LakeLayoutOptions } from '../src/sinks/lake/layout.js';
import { folderStore } from '../src/sinks/lake/store.js';

const layout: LakeLayoutOptions = { prefix: 'lake', format: 'parquet', folders: 'separate', datePartitions: false };
const columns: SourceColumn[] = [
  { name: 'id', family: 'integer', mysqlType: 'int(11)', nullable: false, unsigned: false },
  { name: 'note', family: 'text', mysqlType: 'varchar(20)', nullable: true, unsigned: false },
  { name: 'price', family: 'decimal', mysqlType: 'decimal(10,2)', nullable: true, unsigned: false, precision: 10, scale: 2 },
];
const commitMs = Date.UTC(2026, 11, 7, 12, 0, 0, 0);
let n = 0;
/** One row change at binlog.000002, each a new event. */
const change = (op: ChangeEvent['op'], id: number, note: string, price = '1.00', row = 0): ChangeEvent => {
  const image = { id, note, price };
  n++;
  return { table: 'shop.purchase', op, key: { id }, ...(op === 'delete' ? { before: image } : { after: image }), version: eventVersion('binlog.000002', 1000 + n * 100, row), ts: commitMs + n };
};

let scratch: Scratch;
let reader: DuckDBConnection;
let lakeDir: string;
before(async () => {
  scratch = await openScratch('lake-landing-test');
  reader = await (await DuckDBInstance.create(':memory:')).connect();
});
after(() => scratch.close());

/** A fresh lake folder and the table's landing description. */
function freshLake(): { store: ReturnType<typeof folderStore>; table: LandingTable } {
  lakeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-lake-'));
  return { store: folderStore(lakeDir), table: { table: 'shop.purchase', root: tableRoot(layout, 'shop', 'purchase'), columns } };
}

const files = (dir: string, under: string) => (fs.existsSync(path.join(dir, under)) ? fs.readdirSync(path.join(dir, under)).sort() : []);
const manifestOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'lake/shop/purchase/_ferry/manifest.json'), 'utf8')) as { files: { key: string; rows: number; kind: string }[] };
/** current/ as a reader finds it: the pointer names the snapshot's files. */
async function currentRows(dir: string): Promise<Record<string, unknown>[]> {
  const pointer = JSON.parse(fs.readFileSync(path.join(dir, 'lake/shop/purchase/current/_ferry_current.json'), 'utf8')) as { files: { key: string }[] };
  if (pointer.files.length === 0) return [];
  const list = pointer.files.map((f) => `'${path.join(dir, f.key)}'`).join(', ');
  return (await reader.runAndReadAll(`SELECT id, note, CAST(price AS VARCHAR) AS price FROM read_parquet([${list}], union_by_name = true) ORDER BY id`)).getRowObjectsJson();
}

async function stagedExport(rows: [number, string, string][]): Promise<string> {
  const file = path.join(scratch.dir, `staged-${rows.length}-${Date.now()}.parquet`);
  const values = rows.map(([id, note, price]) => `(${id}, '${note}', ${price})`).join(', ');
  await scratch.duck.run(`COPY (SELECT id::INTEGER AS id, note, price::DECIMAL(10,2) AS price FROM (VALUES ${values}) AS t(id, note, price)) TO '${file}' (FORMAT parquet)`);
  return file;
}

test('the documented example: a full load, then I, U, U, D, lands as LOAD00000001 and one change file, and current/ holds the documented rows', async () => {
  const { store, table } = freshLake();
  const staged = await stagedExport([[1, 'one', '10.00'], [2, 'two', '20.00']]);
  await landFullLoad(store, layout, table, 1, { file: staged, format: 'parquet' }, { includeOp: true, seq: fullLoadSeq({ file: 'binlog.000002', position: 4 }), commitMs }, scratch);
  const entry = await landChanges(store, layout, table, [change('insert', 3, 'three', '30.00'), change('update', 3, 'three!', '31.00'), change('update', 1, 'one!', '11.00'), change('delete', 2, 'two', '20.00')], scratch);

  assert.deepEqual(files(lakeDir, 'lake/shop/purchase/full'), ['LOAD00000001.parquet']);
  const changeFiles = files(lakeDir, 'lake/shop/purchase/changes');
  assert.equal(changeFiles.length, 1);
  assert.match(changeFiles[0]!, /^20261207-120000001-\d{25}\.parquet$/, 'named by the first change’s commit time (to the ms) and position');
  const landed = (await reader.runAndReadAll(`SELECT Op, id, note FROM read_parquet('${path.join(lakeDir, entry.key)}')`)).getRowObjectsJson();
  assert.deepEqual(landed, [{ Op: 'I', id: 3, note: 'three' }, { Op: 'U', id: 3, note: 'three!' }, { Op: 'U', id: 1, note: 'one!' }, { Op: 'D', id: 2, note: 'two' }]);
  assert.deepEqual(manifestOf(lakeDir).files.map((f) => [f.kind, f.rows]), [['full', 2], ['changes', 4]]);

  await mergeIntoCurrent(store, table.root, { changeFiles: manifestOf(lakeDir).files.map((f) => f.key), keyColumns: ['id'] });
  assert.deepEqual(await currentRows(lakeDir), [{ id: 1, note: 'one!', price: '11.00' }, { id: 3, note: 'three!', price: '31.00' }]);
});

test('two updates of one key in one transaction end with the later one; a delete and a re-insert inside one file end present', async () => {
  const { store, table } = freshLake();
  // One transaction's event: two rows of one key, the later row index the later change.
  const first = change('insert', 5, 'a');
  const inOneEvent = [change('update', 5, 'b'), { ...change('update', 5, 'c'), version: '' }];
  inOneEvent[1]!.version = (BigInt(inOneEvent[0]!.version) + 1n).toString();
  await landChanges(store, layout, table, [first, ...inOneEvent, change('insert', 6, 'x'), change('delete', 6, 'x'), change('insert', 6, 'y')], scratch);
  await mergeIntoCurrent(store, table.root, { changeFiles: manifestOf(lakeDir).files.map((f) => f.key), keyColumns: ['id'] });
  assert.deepEqual(await currentRows(lakeDir), [{ id: 5, note: 'c', price: '1.00' }, { id: 6, note: 'y', price: '1.00' }]);
});

test('a process killed between a change file’s upload and its commit leaves, after the retry, the file listed once and every change merged', async () => {
  const { store, table } = freshLake();
  const events = [change('insert', 7, 'p'), change('update', 7, 'q')];
  const eventsFile = path.join(scratch.dir, 'events.json');
  fs.writeFileSync(eventsFile, JSON.stringify(events));
  const root = path.resolve(import.meta.dirname, '..');
  const script = `
    import fs from 'node:fs';
    import { openScratch } from '${root}/src/bulk/duck.ts';
    import { landChanges } from '${root}/src/sinks/lake/land.ts';
    import { folderStore } from '${root}/src/sinks/lake/store.ts';
    const scratch = await openScratch('lake-crash');
    await landChanges(folderStore(${JSON.stringify(lakeDir)}), ${JSON.stringify(layout)}, ${JSON.stringify(table)}, JSON.parse(fs.readFileSync(${JSON.stringify(eventsFile)}, 'utf8')), scratch);`;
  const killed = spawnSync(process.execPath, ['--import', `file://${root}/node_modules/tsx/dist/loader.mjs`, '--input-type=module', '-e', script], { env: { ...process.env, FERRY_FAULT_LAKE_DIE_BEFORE_COMMIT: '1' }, encoding: 'utf8' });
  assert.equal(killed.signal, 'SIGKILL', `the landing process was killed at the fault point: ${killed.stderr}`);
  assert.equal(files(lakeDir, 'lake/shop/purchase/changes').length, 1, 'the file was uploaded');
  assert.equal(fs.existsSync(path.join(lakeDir, 'lake/shop/purchase/_ferry/manifest.json')), false, 'and not committed');

  // The retry lands the same changes again (landing resumes after the last committed change: none).
  await landChanges(store, layout, table, events, scratch);
  await landChanges(store, layout, table, [change('update', 7, 'r')], scratch);
  assert.equal(files(lakeDir, 'lake/shop/purchase/changes').length, 2, 'the retry rewrote its own file, adding none');
  const listed = manifestOf(lakeDir).files.map((f) => f.key);
  assert.equal(new Set(listed).size, listed.length, 'no file listed twice');
  const pairs = (await reader.runAndReadAll(`SELECT id, _ferry_seq, count(*) AS n FROM read_parquet([${listed.map((k) => `'${path.join(lakeDir, k)}'`).join(', ')}]) GROUP BY ALL HAVING count(*) > 1`)).getRowObjectsJson();
  assert.deepEqual(pairs, [], 'no (key, _ferry_seq) pair appears twice');
  await mergeIntoCurrent(store, table.root, { changeFiles: listed, keyColumns: ['id'] });
  assert.deepEqual(await currentRows(lakeDir), [{ id: 7, note: 'r', price: '1.00' }]);
});
