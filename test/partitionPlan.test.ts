import { test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2';
import { BoundaryPicker, MAX_PARTITIONS_PER_MIGRATION, partitionLimitProblem, rangePredicate, sqlLiteral, type KeyTuple } from '../src/bulk/partitionPlan.js';

function plan(keys: KeyTuple[], partitions: number) {
  const picker = new BoundaryPicker(keys.length, partitions);
  for (const k of keys) picker.add(k);
  return picker.ranges('t', ['a', 'b']);
}

test('partitions of a composite key hold about equal row counts and cover every row exactly once', () => {
  const keys: KeyTuple[] = [];
  for (let a = 0; a < 100; a++) for (let b = 0; b < 10; b++) keys.push([a, `k${b}`]);
  const ranges = plan(keys, 4);
  assert.equal(ranges.length, 4);
  assert.deepEqual(ranges.map((r) => r.plannedRows), [250, 250, 250, 250]);
  assert.equal(ranges[0]!.after, undefined);
  assert.equal(ranges.at(-1)!.upTo, undefined, 'the last partition is open-ended: rows inserted after planning land in it');
  for (let i = 1; i < ranges.length; i++) assert.deepEqual(ranges[i]!.after, ranges[i - 1]!.upTo);
});

test('a bound never splits rows that share a split key (one item of a grouping mapping)', () => {
  // Split on the group prefix: 10 groups of 30 rows each.
  const keys: KeyTuple[] = [];
  for (let g = 0; g < 10; g++) for (let i = 0; i < 30; i++) keys.push([g]);
  const picker = new BoundaryPicker(keys.length, 7);
  for (const k of keys) picker.add(k);
  const ranges = picker.ranges('t', ['g']);
  for (const r of ranges) assert.equal(r.plannedRows % 30, 0, `partition ${r.index} holds whole groups (${r.plannedRows} rows)`);
  assert.equal(ranges.reduce((n, r) => n + r.plannedRows, 0), 300);
});

test('one partition when asked for one, or when the table is empty', () => {
  assert.equal(plan([[1, 'a']], 1).length, 1);
  const empty = new BoundaryPicker(0, 8).ranges('t', ['a']);
  assert.deepEqual(empty.map((r) => [r.after, r.upTo, r.plannedRows]), [[undefined, undefined, 0]]);
});

test('range predicates spell out tuple comparison; integers inline, other values as parameters', () => {
  const range = { table: 't', index: 1, columns: ['a', 'b'], after: [5, 'x'], upTo: ['9223372036854775807', 'y'], plannedRows: 0 };
  const { sql, params } = rangePredicate(range, new Set(['a']));
  assert.equal(sql, '(`a` > 5 OR (`a` = 5 AND `b` > ?)) AND (`a` < 9223372036854775807 OR (`a` = 9223372036854775807 AND `b` <= ?))');
  assert.deepEqual(params, ['x', 'y']);
  assert.throws(() => rangePredicate({ ...range, after: ['1 OR 1=1', 'x'] }, new Set(['a'])), /is not an integer/);
});

test('a bound inlined as a literal is spelled exactly as the mysql2 driver spells the parameter it replaces', () => {
  assert.equal(sqlLiteral("o'brien \\ \n"), "'o\\'brien \\\\ \\n'");
  assert.equal(sqlLiteral('NUL\0 ^Z\x1a \b\t\r "'), `'NUL\\0 ^Z\\Z \\b\\t\\r \\"'`);
  assert.equal(sqlLiteral(Buffer.from([0, 39, 92, 255])), "X'00275cff'");
  assert.equal(sqlLiteral(-12.5), '-12.5');
  assert.throws(() => sqlLiteral(Number.NaN), /not a finite number/);
  const values: (string | number | Buffer)[] = ['', 'plain', '日本語 🚀', "'; DROP TABLE t; --", '\\\'', '?', '\u0000\u0008\u0009\u000a\u000d\u001a\u0022\u0027\u005c', 1e21, 0.1, Buffer.alloc(0), Buffer.from('ab\'\\')];
  for (let code = 0; code < 128; code++) values.push(`a${String.fromCharCode(code)}b`);
  for (const value of values) assert.equal(sqlLiteral(value), mysql.format('?', [value]), JSON.stringify(value));

  const range = { table: 't', index: 1, columns: ['a', 'b', 'c'], after: [5, "x'y", { $b64: 'AP8=' }], upTo: ['9', 'z\\', { $b64: '' }], plannedRows: 0 };
  const bound = rangePredicate(range, new Set(['a']));
  const inline = rangePredicate(range, new Set(['a']), { inline: true });
  assert.deepEqual(inline.params, []);
  assert.equal(inline.sql, mysql.format(bound.sql, bound.params as (string | Buffer)[]), 'the statement the driver sends, byte for byte');
});

test('a plan larger than one run can track is refused with the partitionRows that fits', () => {
  assert.equal(partitionLimitProblem('table s.t', 1_000_000, 4), undefined);
  assert.equal(partitionLimitProblem('table s.t', 375_000_000, MAX_PARTITIONS_PER_MIGRATION), undefined);
  const problem = partitionLimitProblem('table s.t (400,000,000 rows)', 400_000_000, 1_600);
  assert.match(problem ?? '', /table s\.t \(400,000,000 rows\) would be split into 1,600 partitions, more than the 1,500 one migration run tracks/);
  assert.match(problem ?? '', /set spec\.bulk\.partitionRows to at least 266667 /);
});
