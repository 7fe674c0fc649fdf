/**
 * What apply's plan converts of a change: only the images' keys and the new
 * values. An update that fixes a value DynamoDB cannot hold (a 39-digit
 * DECIMAL), or a delete of such a row, must apply: its before image still
 * holds the value. Pure logic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SourceTable } from '../src/bulk/model.js';
import { applyPlan } from '../src/capture/applyPlan.js';
import type { ChangeEvent } from '../src/capture/events.js';
import { DEFAULT_CONVERSION, type SourceColumn } from '../src/mapping/types.js';

const BAD = '1'.repeat(39);
const int = (name: string): SourceColumn => ({ name, family: 'integer', mysqlType: 'int(11)', nullable: false, unsigned: false });
const amount: SourceColumn = { name: 'amount', family: 'decimal', mysqlType: 'decimal(65,0)', nullable: false, unsigned: false, precision: 65, scale: 0 };
const table = (group: boolean): SourceTable => ({
  schema: 's',
  table: 't',
  columns: [int('id'), int('k'), amount],
  primaryKey: ['id'],
  mapping: group
    ? { schema: 's', table: 't', targetTable: 't', action: 'group-records-to-item', partitionKey: 'k', excludeColumns: [], attributes: [], group: { nameColumn: 'id', valueColumn: 'amount' } }
    : { schema: 's', table: 't', targetTable: 't', action: 'map-record-to-record', partitionKey: 'id', excludeColumns: [], attributes: [] },
  splitColumns: ['id'],
  rowsEstimate: 0,
});
const ops = (event: ChangeEvent, group: boolean) =>
  applyPlan(event, table(group), 'versions', DEFAULT_CONVERSION).transactions.map((t) => t.map((op) => (op.Put?.TableName === 'versions' ? 'version' : Object.keys(op)[0])));

test('an update that fixes a value DynamoDB cannot hold applies: the before image is not converted', () => {
  const event: ChangeEvent = { table: 's.t', op: 'update', key: { id: 1 }, before: { id: 1, k: 5, amount: BAD }, after: { id: 1, k: 5, amount: '7' }, version: '10', ts: 0 };
  assert.deepEqual(ops(event, false), [['version', 'Put']]);
  assert.deepEqual(ops(event, true), [['version', 'Update', 'Update']]);
});

test('a delete of a row holding such a value removes its item or attribute', () => {
  const event: ChangeEvent = { table: 's.t', op: 'delete', key: { id: 1 }, before: { id: 1, k: 5, amount: BAD }, version: '10', ts: 0 };
  assert.deepEqual(ops(event, false), [['version', 'Delete']]);
  assert.deepEqual(ops(event, true), [['version', 'Update', 'Update']]);
});

test('the new value itself is still converted, and refused past 38 digits', () => {
  const event: ChangeEvent = { table: 's.t', op: 'update', key: { id: 1 }, before: { id: 1, k: 5, amount: '7' }, after: { id: 1, k: 5, amount: BAD }, version: '10', ts: 0 };
  assert.throws(() => ops(event, false), /column amount: value 1{39} has 39 significant digits/);
});
