/**
 * The lake's merged current/ table: landed change files (written here by the
 * test's own DuckDB, as the lake sink lands them) are merged into snapshots
 * in a folder store, and every assertion reads the Parquet files a snapshot
 * lists straight from disk, with the test's own DuckDB, not ferry's merge.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { mergeIntoCurrent, readCurrentSnapshot, readSnapshotVersion, type CurrentSnapshot } from '../src/sinks/lake/current.js';
import { folderStore, type LakeStore } from '../src/sinks/lake/store.js';

let instance: DuckDBInstance;
let duck: DuckDBConnection;
const lakes: string[] = [];

before(async () => {
  instance = await DuckDBInstance.create(':memory:', { autoload_known_extensions: 'false', autoinstall_known_extensions: 'false' });
  duck = await instance.connect();
});

after(() => {
  duck.closeSync();
  instance.closeSync();
  for (const dir of lakes) fs.rmSync(dir, { recursive: true, force: true });
});

const TABLE = 'lake/shop/orders/';

interface Lake {
  dir: string;
  store: LakeStore;
}

function newLake(): Lake {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-lake-current-'));
  lakes.push(dir);
  return { dir, store: folderStore(dir) };
}

/** A change's `_ferry_seq` and `_ferry_ts`: change n of the stream. */
const change = (op: string, n: number, values: string) => `('${op}', '2026-12-07 10:00:00.${String(n).padStart(6, '0')}', '1${String(n).padStart(9, '0')}', ${values})`;
/** A full-load row: a shorter seq, before every change. */
const loaded = (n: number, values: string) => `('I', '2026-12-07 09:00:00.000000', '0${String(n).padStart(5, '0')}', ${values})`;

const ORDERS = { id: 'BIGINT', name: 'VARCHAR', region: 'VARCHAR' };

/** Lands rows (Op, _ferry_ts, _ferry_seq, then `columns`) as the zstd Parquet file `<TABLE>changes/<name>.parquet`; returns its key. */
async function land(lake: Lake, name: string, rows: string[], columns: Record<string, string> = ORDERS): Promise<string> {
  const key = `${TABLE}changes/${name}.parquet`;
  const file = lake.store.url(key);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const names = Object.keys(columns);
  const typed = names.map((c) => `CAST(${c} AS ${columns[c]}) AS ${c}`).join(', ');
  await duck.run(`COPY (SELECT Op, _ferry_ts, _ferry_seq, ${typed} FROM (VALUES ${rows.join(', ')}) AS t(Op, _ferry_ts, _ferry_seq, ${names.join(', ')})) TO '${file}' (FORMAT parquet, COMPRESSION zstd)`);
  return key;
}

const fileList = (lake: Lake, snapshot: CurrentSnapshot) => `[${snapshot.files.map((f) => `'${lake.store.url(f.key)}'`).join(', ')}]`;

/** The rows of a snapshot, read from its files, ordered by id. */
async function rowsOf(lake: Lake, snapshot: CurrentSnapshot, select = '* EXCLUDE (_ferry_ts, _ferry_seq)'): Promise<Record<string, unknown>[]> {
  if (snapshot.files.length === 0) return [];
  return (await duck.runAndReadAll(`SELECT ${select} FROM read_parquet(${fileList(lake, snapshot)}, union_by_name = true) ORDER BY id`)).getRowObjectsJson() as Record<string, unknown>[];
}

const order = (id: number, name: string, region: string | null = 'eu') => ({ id: String(id), name, region });

test('a key inserted, updated twice and deleted is absent from current; the other keys hold their latest values', async () => {
  const lake = newLake();
  const full = await land(lake, 'full-0001', [loaded(1, "1, 'ann', 'eu'"), loaded(2, "2, 'bob', 'eu'")]);
  const v1 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full], keyColumns: ['id'] });
  assert.deepEqual(await rowsOf(lake, v1), [order(1, 'ann'), order(2, 'bob')]);

  const first = await land(lake, 'cdc-0001', [change('I', 1, "3, 'cy', 'eu'"), change('U', 2, "3, 'cyd', 'eu'"), change('U', 3, "1, 'anna', 'eu'")]);
  const second = await land(lake, 'cdc-0002', [change('U', 4, "3, 'cydney', 'eu'"), change('D', 5, "3, 'cydney', 'eu'")]);
  const v2 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [first, second], keyColumns: ['id'] });

  assert.deepEqual(await rowsOf(lake, v2), [order(1, 'anna'), order(2, 'bob')]);
  assert.deepEqual(await rowsOf(lake, v2, 'id, _ferry_ts, _ferry_seq'), [
    { id: '1', _ferry_ts: '2026-12-07 10:00:00.000003', _ferry_seq: '1000000003' },
    { id: '2', _ferry_ts: '2026-12-07 09:00:00.000000', _ferry_seq: '000002' },
  ]);
  assert.equal(v2.version, 2);
  assert.equal(v2.previous, 1);
  assert.equal(v2.mergedThrough, '1000000005');
  assert.deepEqual(v2.columns, ['id', 'name', 'region', '_ferry_ts', '_ferry_seq']);
  assert.ok(v2.files.every((f) => f.key.startsWith(`${TABLE}current/v00000002/`) && f.bytes === fs.statSync(lake.store.url(f.key)).size));
  assert.equal(v2.files.reduce((n, f) => n + f.rows, 0), 2);

  assert.deepEqual(await readCurrentSnapshot(lake.store, TABLE), v2, 'the pointer is the snapshot');
  assert.deepEqual(await readSnapshotVersion(lake.store, TABLE, 1), v1, 'the previous snapshot stays readable');
  assert.deepEqual(await rowsOf(lake, v1), [order(1, 'ann'), order(2, 'bob')], 'and its files are untouched');
  const manifest = fs.readFileSync(lake.store.url(`${TABLE}current/_symlink_format_manifest/manifest`), 'utf8');
  assert.equal(manifest, v2.files.map((f) => `${lake.store.url(f.key)}\n`).join(''));
});

test('two updates of one key in one transaction end with the later one, whatever their order in the file', async () => {
  const lake = newLake();
  const full = await land(lake, 'full-0001', [loaded(1, "1, 'ann', 'eu'")]);
  await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full], keyColumns: ['id'] });
  const cdc = await land(lake, 'cdc-0001', [change('U', 8, "1, 'second', 'eu'"), change('U', 7, "1, 'first', 'eu'")]);
  const v2 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [cdc], keyColumns: ['id'] });
  assert.deepEqual(await rowsOf(lake, v2), [order(1, 'second')]);
});

test('a delete then a reinsert of one key ends present with the reinserted values', async () => {
  const lake = newLake();
  const full = await land(lake, 'full-0001', [loaded(1, "1, 'ann', 'eu'")]);
  const first = await land(lake, 'cdc-0001', [change('D', 1, "1, 'ann', 'eu'")]);
  const second = await land(lake, 'cdc-0002', [change('I', 2, "1, 'again', 'us'")]);
  const v1 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full, first, second], keyColumns: ['id'] });
  assert.deepEqual(await rowsOf(lake, v1), [order(1, 'again', 'us')]);
});

test('merging changes already merged (a retry after the pointer) leaves current as it was', async () => {
  const lake = newLake();
  const full = await land(lake, 'full-0001', [loaded(1, "1, 'ann', 'eu'"), loaded(2, "2, 'bob', 'eu'")]);
  const cdc = await land(lake, 'cdc-0001', [change('U', 1, "1, 'anna', 'eu'"), change('D', 2, "2, 'bob', 'eu'")]);
  const v1 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full, cdc], keyColumns: ['id'] });
  const v2 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [cdc], keyColumns: ['id'] });
  assert.deepEqual(await rowsOf(lake, v2, '*'), await rowsOf(lake, v1, '*'));
  assert.deepEqual(await rowsOf(lake, v2), [order(1, 'anna')]);
});

test('a partitioned table rewrites only the partitions a change touches, and a key that moves partition leaves its old one', async () => {
  const lake = newLake();
  const input = { keyColumns: ['id'], partitionBy: 'region' };
  const full = await land(lake, 'full-0001', [
    loaded(1, "1, 'ann', 'eu'"),
    loaded(2, "2, 'bob', 'us'"),
    loaded(3, "3, 'cy', 'us'"),
    loaded(4, "4, 'di', 'sa/east'"),
    loaded(5, "5, 'ed', NULL"),
  ]);
  const v1 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full], ...input });
  const filesOf = (s: CurrentSnapshot) => Object.fromEntries(s.files.map((f) => [f.partition, f.key]));
  assert.deepEqual(filesOf(v1), {
    'region=eu': `${TABLE}current/v00000001/region=eu/part-00000.parquet`,
    'region=us': `${TABLE}current/v00000001/region=us/part-00000.parquet`,
    'region=sa%2Feast': `${TABLE}current/v00000001/region=sa%2Feast/part-00000.parquet`,
    'region=__HIVE_DEFAULT_PARTITION__': `${TABLE}current/v00000001/region=__HIVE_DEFAULT_PARTITION__/part-00000.parquet`,
  });
  const [eu] = (await duck.runAndReadAll(`SELECT list(id ORDER BY id)::VARCHAR AS ids FROM read_parquet('${lake.store.url(filesOf(v1)['region=eu']!)}')`)).getRowObjectsJson();
  assert.deepEqual(eu, { ids: '[1]' }, 'each partition folder holds its own rows, partition column included');

  const update = await land(lake, 'cdc-0001', [change('U', 1, "1, 'anna', 'eu'")]);
  const v2 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [update], ...input });
  assert.deepEqual(filesOf(v2), { ...filesOf(v1), 'region=eu': `${TABLE}current/v00000002/region=eu/part-00000.parquet` });

  // Key 2 moves from us to the NULL partition; nothing lands in us, yet us is rewritten without it.
  const move = await land(lake, 'cdc-0002', [change('U', 2, "2, 'bob', NULL")]);
  const v3 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [move], ...input });
  assert.deepEqual(filesOf(v3), {
    ...filesOf(v2),
    'region=us': `${TABLE}current/v00000003/region=us/part-00000.parquet`,
    'region=__HIVE_DEFAULT_PARTITION__': `${TABLE}current/v00000003/region=__HIVE_DEFAULT_PARTITION__/part-00000.parquet`,
  });
  assert.deepEqual(await rowsOf(lake, v3), [order(1, 'anna'), order(2, 'bob', null), order(3, 'cy', 'us'), order(4, 'di', 'sa/east'), order(5, 'ed', null)]);

  // The last key of a partition moves out: the partition has no file any more.
  const empty = await land(lake, 'cdc-0003', [change('U', 3, "4, 'di', 'eu'")]);
  const v4 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [empty], ...input });
  assert.equal(filesOf(v4)['region=sa%2Feast'], undefined);
  assert.deepEqual((await rowsOf(lake, v4)).map((r) => r.region), ['eu', null, 'us', 'eu', null]);
});

test('ADD COLUMN on the source: later rows carry the new column, older rows read NULL', async () => {
  const lake = newLake();
  const full = await land(lake, 'full-0001', [loaded(1, "1, 'ann', 'eu'"), loaded(2, "2, 'bob', 'eu'")]);
  await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full], keyColumns: ['id'] });
  const wider = { ...ORDERS, note: 'VARCHAR' };
  const cdc = await land(lake, 'cdc-0001', [change('U', 1, "1, 'ann', 'eu', 'vip'"), change('I', 2, "3, 'cy', 'us', NULL")], wider);
  const v2 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [cdc], keyColumns: ['id'] });
  assert.deepEqual(v2.columns, ['id', 'name', 'region', 'note', '_ferry_ts', '_ferry_seq']);
  assert.deepEqual(await rowsOf(lake, v2), [{ ...order(1, 'ann'), note: 'vip' }, { ...order(2, 'bob'), note: null }, { ...order(3, 'cy', 'us'), note: null }]);
  for (const file of v2.files) {
    const columns = (await duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${lake.store.url(file.key)}')`)).getRows().map((r) => String(r[0]));
    assert.deepEqual(columns, v2.columns, 'every file holds the snapshot\'s columns in order');
  }
});

test('expiry keeps the last snapshots readable, a file carried over from an expired version included', async () => {
  const lake = newLake();
  const input = { keyColumns: ['id'], partitionBy: 'region', keepSnapshots: 2 };
  const full = await land(lake, 'full-0001', [loaded(1, "1, 'ann', 'eu'"), loaded(2, "2, 'bob', 'us'")]);
  const v1 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full], ...input });
  const usFile = v1.files.find((f) => f.partition === 'region=us')!.key;
  const snapshots = [v1];
  for (let n = 1; n <= 3; n++) {
    const cdc = await land(lake, `cdc-000${n}`, [change('U', n, `1, 'ann ${n}', 'eu'`)]);
    snapshots.push(await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [cdc], ...input }));
  }
  const [, , v3, v4] = snapshots;
  assert.ok(v4!.files.some((f) => f.key === usFile), 'v4 still carries v1\'s us file');

  const left = await lake.store.list(`${TABLE}current/`);
  assert.deepEqual(left, [
    `${TABLE}current/_ferry_current.json`,
    `${TABLE}current/_symlink_format_manifest/manifest`,
    usFile,
    `${TABLE}current/v00000003/_ferry_snapshot.json`,
    `${TABLE}current/v00000003/region=eu/part-00000.parquet`,
    `${TABLE}current/v00000004/_ferry_snapshot.json`,
    `${TABLE}current/v00000004/region=eu/part-00000.parquet`,
  ]);
  assert.equal(await readSnapshotVersion(lake.store, TABLE, 2), undefined);
  assert.deepEqual(await rowsOf(lake, v3!), [order(1, 'ann 2'), order(2, 'bob', 'us')], 'the retained previous snapshot still reads whole');
  assert.deepEqual(await rowsOf(lake, v4!), [order(1, 'ann 3'), order(2, 'bob', 'us')]);
  await assert.rejects(mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full], ...input, keepSnapshots: 1 }), /keep at least 2 snapshots/);
});

test('a merge that dies before its pointer is redone by a rerun in the same version folder', async () => {
  const lake = newLake();
  const full = await land(lake, 'full-0001', [loaded(1, "1, 'ann', 'eu'"), loaded(2, "2, 'bob', 'eu'"), loaded(3, "3, 'cy', 'eu'")]);
  const v1 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full], keyColumns: ['id'] });
  const cdc = await land(lake, 'cdc-0001', [change('U', 1, "1, 'anna', 'eu'"), change('D', 2, "2, 'bob', 'eu'")]);

  const dying: LakeStore = {
    ...lake.store,
    async putJson(key, value) {
      if (key.endsWith('/_ferry_current.json')) throw new Error('worker killed');
      return lake.store.putJson(key, value);
    },
  };
  await assert.rejects(mergeIntoCurrent(dying, TABLE, { changeFiles: [cdc], keyColumns: ['id'], rowsPerFile: 1 }), /worker killed/);
  assert.deepEqual(await readCurrentSnapshot(lake.store, TABLE), v1, 'readers still see v1');
  assert.deepEqual(await rowsOf(lake, v1), [order(1, 'ann'), order(2, 'bob'), order(3, 'cy')]);
  assert.equal((await lake.store.list(`${TABLE}current/v00000002/`)).length, 3, 'the dead attempt left two files and its snapshot copy');

  const v2 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [cdc], keyColumns: ['id'] });
  assert.equal(v2.version, 2);
  assert.deepEqual(await rowsOf(lake, v2), [order(1, 'anna'), order(3, 'cy')]);
  assert.deepEqual(await lake.store.list(`${TABLE}current/v00000002/`), [`${TABLE}current/v00000002/_ferry_snapshot.json`, ...v2.files.map((f) => f.key)], 'nothing of the dead attempt is left');
});

test('a change file with an Op other than I, U or D, or without a key column, is refused by name and nothing is published', async () => {
  const lake = newLake();
  const full = await land(lake, 'full-0001', [loaded(1, "1, 'ann', 'eu'")]);
  const v1 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full], keyColumns: ['id'] });
  const bad = await land(lake, 'cdc-bad', [change('U', 1, "1, 'anna', 'eu'"), change('X', 2, "1, 'x', 'eu'")]);
  await assert.rejects(mergeIntoCurrent(lake.store, TABLE, { changeFiles: [bad], keyColumns: ['id'] }), (err: Error) => {
    assert.match(err.message, /changes\/cdc-bad\.parquet holds 1 row\(s\) with Op 'X'/);
    assert.match(err.message, /I, U or D/);
    return true;
  });
  const keyless = await land(lake, 'cdc-keyless', [change('U', 3, "'anna', 'eu'")], { name: 'VARCHAR', region: 'VARCHAR' });
  await assert.rejects(mergeIntoCurrent(lake.store, TABLE, { changeFiles: [keyless], keyColumns: ['id'] }), /changes\/cdc-keyless\.parquet has no key column "id".*fix keyColumns/);
  assert.deepEqual(await readCurrentSnapshot(lake.store, TABLE), v1);
});

test('DECIMAL(20,4) and TIMESTAMP columns keep their Parquet types and exact values in current/', async () => {
  const lake = newLake();
  const columns = { id: 'BIGINT', amount: 'DECIMAL(20,4)', paid_at: 'TIMESTAMP', receipt: 'BLOB' };
  const full = await land(lake, 'full-0001', [loaded(1, "1, '1234567890123456.7891', '2026-01-02 03:04:05.123456', '\\x00\\xFF'")], columns);
  const cdc = await land(lake, 'cdc-0001', [change('I', 1, "2, '-0.0001', '1999-12-31 23:59:59.999999', NULL")], columns);
  const v1 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full, cdc], keyColumns: ['id'] });
  const file = lake.store.url(v1.files[0]!.key);
  const types = (await duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).getRows().map((r) => `${r[0]} ${r[1]}`);
  assert.deepEqual(types, ['id BIGINT', 'amount DECIMAL(20,4)', 'paid_at TIMESTAMP', 'receipt BLOB', '_ferry_ts VARCHAR', '_ferry_seq VARCHAR']);
  const logical = (await duck.runAndReadAll(`SELECT name, logical_type::VARCHAR AS t FROM parquet_schema('${file}') WHERE name IN ('amount', 'paid_at')`)).getRowObjectsJson();
  assert.match(JSON.stringify(logical), /DecimalType\(scale=4, precision=20\).*TimestampType/);
  assert.deepEqual(await rowsOf(lake, v1, 'id, amount::VARCHAR AS amount, paid_at::VARCHAR AS paid_at, hex(receipt) AS receipt'), [
    { id: '1', amount: '1234567890123456.7891', paid_at: '2026-01-02 03:04:05.123456', receipt: '00FF' },
    { id: '2', amount: '-0.0001', paid_at: '1999-12-31 23:59:59.999999', receipt: null },
  ]);
});

test('a composite key merges per whole key: a change to one line of an order leaves its other lines alone', async () => {
  const lake = newLake();
  const lines = { order_id: 'BIGINT', line: 'INTEGER', qty: 'INTEGER' };
  const full = await land(lake, 'full-0001', [loaded(1, '7, 1, 10'), loaded(2, '7, 2, 20'), loaded(3, '8, 1, 30')], lines);
  const cdc = await land(lake, 'cdc-0001', [change('U', 1, '7, 2, 21'), change('D', 2, '8, 1, 30'), change('I', 3, '8, 2, 40')], lines);
  const v1 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full, cdc], keyColumns: ['order_id', 'line'] });
  const rows = await duck.runAndReadAll(`SELECT order_id, line, qty FROM read_parquet(${fileList(lake, v1)}) ORDER BY ALL`);
  assert.deepEqual(rows.getRowsJson(), [['7', 1, 10], ['7', 2, 21], ['8', 2, 40]]);
});

test('a table whose every row is deleted publishes a snapshot with no files and its columns', async () => {
  const lake = newLake();
  const full = await land(lake, 'full-0001', [loaded(1, "1, 'ann', 'eu'")]);
  await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [full], keyColumns: ['id'] });
  const cdc = await land(lake, 'cdc-0001', [change('D', 1, "1, 'ann', 'eu'")]);
  const v2 = await mergeIntoCurrent(lake.store, TABLE, { changeFiles: [cdc], keyColumns: ['id'] });
  assert.deepEqual(v2.files, []);
  assert.deepEqual(v2.columns, ['id', 'name', 'region', '_ferry_ts', '_ferry_seq']);
  assert.equal(fs.readFileSync(lake.store.url(`${TABLE}current/_symlink_format_manifest/manifest`), 'utf8'), '');
});
