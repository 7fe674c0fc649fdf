/** The lake's names and sequence column (src/sinks/lake/layout.ts): DMS's layout, and an order that text sorting keeps. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventVersion } from '../src/capture/events.js';
import { changeFileKey, changeSeq, commitTimestamp, fullLoadKey, fullLoadSeq, manifestKey, tableRoot, type LakeLayoutOptions } from '../src/sinks/lake/layout.js';

const separate: LakeLayoutOptions = { prefix: 'lake', format: 'parquet', folders: 'separate', datePartitions: false };

test('full-load files count in 8-digit upper-case hex, in full/ or in the flat folder DMS uses', () => {
  const root = tableRoot(separate, 'shop', 'purchase');
  assert.equal(root, 'lake/shop/purchase/');
  assert.equal(fullLoadKey(separate, root, 1), 'lake/shop/purchase/full/LOAD00000001.parquet');
  assert.equal(fullLoadKey(separate, root, 10), 'lake/shop/purchase/full/LOAD0000000A.parquet');
  assert.equal(fullLoadKey(separate, root, 16), 'lake/shop/purchase/full/LOAD00000010.parquet');
  assert.equal(fullLoadKey({ ...separate, format: 'csv', folders: 'flat' }, root, 255), 'lake/shop/purchase/LOAD000000FF.csv');
  assert.throws(() => fullLoadKey(separate, root, 0), /between 1 and/);
  assert.equal(tableRoot({ prefix: '' }, 'shop', 'purchase'), 'shop/purchase/');
  assert.throws(() => tableRoot(separate, 'shop', 'a/b'), /table name "a\/b" cannot be a lake folder/);
  assert.equal(manifestKey(root), 'lake/shop/purchase/_ferry/manifest.json');
});

test('a change file is named by its first change’s commit time (UTC, to the ms) and sequence, in date folders when asked', () => {
  const root = 'lake/shop/purchase/';
  const commitMs = Date.UTC(2026, 11, 7, 18, 1, 2, 345);
  const seq = changeSeq(eventVersion('binlog.000042', 12345, 3));
  assert.equal(changeFileKey(separate, root, { commitMs, seq }), 'lake/shop/purchase/changes/20261207-180102345-0000004200000001234500003.parquet');
  assert.equal(
    changeFileKey({ ...separate, folders: 'flat', datePartitions: true, format: 'csv' }, root, { commitMs, seq }),
    'lake/shop/purchase/2026/12/07/20261207-180102345-0000004200000001234500003.csv',
  );
});

test('_ferry_seq sorts as text in binlog order, rows of one event included, and full-load rows sort before every change from the start', () => {
  const versions = [
    eventVersion('binlog.000009', 999_999, 0),
    eventVersion('binlog.000010', 4, 0),
    eventVersion('binlog.000010', 4, 1),
    eventVersion('binlog.000010', 4, 10),
    eventVersion('binlog.000010', 40, 0),
    eventVersion('binlog.000100', 4, 0),
  ];
  const seqs = versions.map(changeSeq);
  assert.equal(seqs[2], '00000010.000000000004.00001');
  assert.deepEqual([...seqs].sort(), seqs, 'text order is binlog order');
  const start = fullLoadSeq({ file: 'binlog.000010', position: 4 });
  assert.equal(start, '00000010.000000000004');
  assert.ok(start > seqs[0]! && start < seqs[1]!, 'the start sorts after earlier changes and before the change at its own position');
});

test('the commit-time column is DMS’s yyyy-MM-dd HH:mm:ss.SSSSSS in UTC', () => {
  assert.equal(commitTimestamp(Date.UTC(2026, 0, 2, 3, 4, 5, 67)), '2026-01-02 03:04:05.067000');
});
