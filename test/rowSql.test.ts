/**
 * spec.sql for change events (src/capture/rowSql.ts) and what apply's plan
 * makes of its output (src/capture/applyPlan.ts): pure logic, DuckDB in
 * process. The end-to-end test is in test/capture.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import type { SourceTable } from '../src/bulk/model.js';
import { applyPlan, stagedRow, type Shape } from '../src/capture/applyPlan.js';
import type { ChangeEvent, EventRow } from '../src/capture/events.js';
import { RowSql, type ShapedImage } from '../src/capture/rowSql.js';
import { DEFAULT_CONVERSION, type SourceColumn } from '../src/mapping/types.js';

const columns: SourceColumn[] = [
  { name: 'id', family: 'integer', mysqlType: 'int(11)', nullable: false, unsigned: false },
  { name: 'note', family: 'text', mysqlType: 'varchar(50)', nullable: true, unsigned: false },
];
const source: SourceTable = {
  schema: 'shop',
  table: 'ledger',
  columns,
  primaryKey: ['id'],
  mapping: { schema: 'shop', table: 'ledger', targetTable: 'ledger', action: 'map-record-to-record', partitionKey: 'key', excludeColumns: [], attributes: [{ name: 'key', subType: 'string', template: '${note}' }] },
  splitColumns: ['id'],
  rowsEstimate: 0,
};

test('each image goes through the SQL on its own: filtered rows come back empty, a failing row names itself and spares the others, a row returned twice is refused', async () => {
  const sql = await RowSql.open('ledger', "SELECT id, upper(note) AS note, CAST(note AS INTEGER) * 0 + id AS n FROM source WHERE note <> 'skip' UNION ALL SELECT id, note, id FROM source WHERE note = 'twice'", columns);
  try {
    const out = await sql.shape([
      { id: 1, note: '7' },
      { id: 2, note: 'skip' },
      { id: 3, note: 'not a number' },
      { id: 4, note: '8' },
    ]);
    assert.deepEqual(out[0], { row: { id: 1, note: '7', n: 1 } });
    assert.deepEqual(out[1], { row: undefined });
    assert.match((out[2] as { error: string }).error, /^spec\.sql\.ledger failed on this row: .*not a number/);
    assert.deepEqual(out[3], { row: { id: 4, note: '8', n: 4 } });
    assert.deepEqual(sql.columns?.map((c) => `${c.name}:${c.family}`), ['id:integer', 'note:text', 'n:integer']);
  } finally {
    sql.close();
  }
  const twice = await RowSql.open('ledger', 'SELECT * FROM source UNION ALL SELECT * FROM source', columns);
  try {
    const [out] = await twice.shape([{ id: 1, note: 'x' }]);
    assert.match((out as { error: string }).error, /returned more than one row for one source row/);
  } finally {
    twice.close();
  }
});

/** A shape as apply builds it from RowSql's output: here, the SQL filters out notes starting with "skip". */
async function shapeOf(events: ChangeEvent[]): Promise<Shape> {
  const sql = await RowSql.open('ledger', "SELECT * FROM source WHERE note NOT LIKE 'skip%'", columns);
  try {
    const images = events.flatMap((e) => [e.before, e.after].filter((i): i is EventRow => !!i));
    const out = await sql.shape(images.map((i) => stagedRow(source, i)));
    const byImage = new Map<EventRow, ShapedImage>(images.map((i, n) => [i, out[n]!]));
    return (image) => {
      const s = byImage.get(image)!;
      return 'row' in s && s.row ? { columns: sql.columns!, row: s.row } : undefined;
    };
  } finally {
    sql.close();
  }
}

test("an update the SQL now filters out deletes the row's item; one it now lets through writes it; one that changes the item's key moves it; the version is written either way", async () => {
  const update = (before: EventRow, after: EventRow): ChangeEvent => ({ table: 'shop.ledger', op: 'update', key: { id: after.id! }, before, after, version: '100', ts: 0 });
  const events = [update({ id: 1, note: 'a' }, { id: 1, note: 'skip a' }), update({ id: 2, note: 'skip b' }, { id: 2, note: 'b' }), update({ id: 3, note: 'c' }, { id: 3, note: 'd' }), update({ id: 4, note: 'skip' }, { id: 4, note: 'skip too' })];
  const shape = await shapeOf(events);
  const label = (op: TransactWriteItem) => (op.Put?.TableName === 'versions' ? 'version' : op.Put ? `Put ${op.Put.Item!.key!.S}` : op.Delete ? `Delete ${op.Delete.Key!.key!.S}` : Object.keys(op)[0]);
  const ops = events.map((e) => applyPlan(e, source, 'versions', DEFAULT_CONVERSION, shape).transactions.map((t) => t.map(label)));
  assert.deepEqual(ops, [
    [['version', 'Delete a']], // the item of the note the SQL let through goes
    [['version', 'Put b']],
    [['version', 'Delete c', 'Put d']], // the key comes from the note: the item moves
    [['version']], // filtered out before and after: only the version
  ]);
});
