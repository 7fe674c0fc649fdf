/**
 * The cutover's check, inside the freeze after the drain: every item the last
 * changes touched (src/capture/recentChanges.ts) read from the source, as the
 * bulk path transforms it, and from the target, and compared. Its cost grows
 * with the changes in the window, not with the table, so the freeze stays in
 * milliseconds for any table size; the whole table is `ferry verify`'s job.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SourceTable } from '../src/bulk/model.js';
import { quoteIdent } from '../src/bulk/partitionPlan.js';
import { stagedRow, type ShapedRow } from '../src/capture/applyPlan.js';
import { decodeValue, type EventRow } from '../src/capture/events.js';
import type { RecentChanges } from '../src/capture/recentChanges.js';
import { RowSql } from '../src/capture/rowSql.js';
import { groupToItem, itemKey, rowToItem, type Item, type Row } from '../src/mapping/item.js';
import { comparableLine, itemToLine } from '../src/mapping/itemJson.js';
import { keyAttributes, keyColumns } from '../src/mapping/tableMapping.js';
import { ConversionError, fromMysql, selectExpression } from '../src/mapping/types.js';
import type { MysqlConnection } from '../src/mysql.js';
import type { MigrationSpec } from '../src/spec.js';
import { getItems, keyLine, showKey, type Mismatch } from './verify.js';

export interface ChangedItemsCheck {
  /** Changes in the list, and the distinct target items they touched (before and after each change). */
  changes: number;
  items: number;
  windowMs: number;
  /** How far back the list reached (src/capture/recentChanges.ts). */
  coveredMs: number;
  differing: number;
  /** The first differences, both sides shown. */
  mismatches: (Mismatch & { table: string })[];
}

/** Source lookups per statement: an IN list of this many keys. */
const LOOKUP_CHUNK = 500;

export async function checkChangedItems(db: MysqlConnection, dynamo: DynamoDBClient, spec: MigrationSpec, tables: SourceTable[], recent: RecentChanges, signal?: AbortSignal, maxMismatches = 5): Promise<ChangedItemsCheck> {
  const result: ChangedItemsCheck = { changes: recent.changes.length, items: 0, windowMs: recent.windowMs, coveredMs: recent.coveredMs, differing: 0, mismatches: [] };
  for (const source of tables) {
    const name = `${source.schema}.${source.table}`;
    const images = recent.changes.filter((c) => c.table === name).flatMap((c) => [c.before, c.after].filter((i): i is EventRow => i !== undefined));
    if (images.length === 0) continue;
    const sql = spec.sql[source.table] === undefined ? undefined : await RowSql.open(source.table, spec.sql[source.table]!, source.columns);
    try {
      await checkTable(db, dynamo, spec, source, images, sql, result, maxMismatches, signal);
    } finally {
      sql?.close();
    }
  }
  return result;
}

async function checkTable(db: MysqlConnection, dynamo: DynamoDBClient, spec: MigrationSpec, source: SourceTable, images: EventRow[], sql: RowSql | undefined, result: ChangedItemsCheck, maxMismatches: number, signal: AbortSignal | undefined): Promise<void> {
  const mapping = source.mapping;
  const keyNames = keyAttributes(mapping);
  const keyText = (key: Item) => keyLine(key, keyNames);
  /** Rows as the mapping takes them: through spec.sql when there is one; filtered-out and failing rows drop out. */
  const shape = async (rows: Row[]): Promise<ShapedRow[]> => {
    if (!sql) return rows.map((row) => ({ columns: source.columns, row }));
    const out = await sql.shape(rows);
    return out.flatMap((s) => ('row' in s && s.row ? [{ columns: sql.columns!, row: s.row }] : []));
  };
  const options = spec.conversion;
  const keyOf = (s: ShapedRow): Item | undefined => {
    try {
      return itemKey(mapping, s.columns, s.row, options);
    } catch (err) {
      if (err instanceof ConversionError) return undefined; // a dead letter: never an item
      throw err;
    }
  };

  // Every item the changes touched, before and after.
  const keys = new Map<string, Item>();
  for (const s of await shape(images.map((image) => stagedRow(source, image)))) {
    const key = keyOf(s);
    if (key) keys.set(keyText(key), key);
  }

  // The source rows behind them now: by primary key, or under grouping every row of each touched item.
  const lookupColumns = mapping.group ? keyColumns(mapping) : source.primaryKey;
  const lookups = new Map(images.map((image) => {
    const values = lookupColumns.map((c) => decodeValue(image[c] ?? null));
    return [JSON.stringify(values), values] as const;
  }));
  const table = `${quoteIdent(source.schema)}.${quoteIdent(source.table)}`;
  const tuple = lookupColumns.length === 1 ? '?' : `(${lookupColumns.map(() => '?').join(', ')})`;
  const rows: Row[] = [];
  const all = [...lookups.values()];
  for (let i = 0; i < all.length; i += LOOKUP_CHUNK) {
    const chunk = all.slice(i, i + LOOKUP_CHUNK);
    const [found] = (await db.query({
      sql: `SELECT ${source.columns.map((c) => selectExpression(c, quoteIdent)).join(', ')} FROM ${table} WHERE ${lookupColumns.length === 1 ? quoteIdent(lookupColumns[0]!) : `(${lookupColumns.map(quoteIdent).join(', ')})`} IN (${chunk.map(() => tuple).join(', ')})`,
      rowsAsArray: true,
      values: chunk.flat(),
    })) as unknown as [unknown[][]];
    for (const values of found) rows.push(Object.fromEntries(source.columns.map((c, n) => [c.name, fromMysql(c, values[n])])));
  }

  // What the target should hold for them, built as the bulk transform builds items.
  const expected = new Map<string, Item>();
  const rowsOf = new Map<string, ShapedRow[]>();
  for (const s of await shape(rows)) {
    const key = keyOf(s);
    if (!key) continue;
    const text = keyText(key);
    keys.set(text, key);
    const ofItem = rowsOf.get(text);
    if (ofItem) ofItem.push(s);
    else rowsOf.set(text, [s]);
  }
  for (const [text, shaped] of rowsOf) {
    try {
      expected.set(text, mapping.group ? groupToItem(mapping, shaped[0]!.columns, shaped.map((s) => s.row), options) : rowToItem(mapping, shaped[0]!.columns, shaped[0]!.row, options));
    } catch (err) {
      if (!(err instanceof ConversionError)) throw err;
      keys.delete(text); // a dead letter: the error policy accounted for it
    }
  }

  const wanted = [...keys.values()];
  result.items += wanted.length;
  const have = new Map<string, Item>();
  for (let i = 0; i < wanted.length; i += 100) {
    for (const item of await getItems(dynamo, mapping.targetTable, wanted.slice(i, i + 100), signal)) have.set(keyText(item), item);
  }
  for (const [text, key] of keys) {
    const want = expected.get(text);
    const got = have.get(text);
    if ((want ? comparableLine(want) : 'absent') === (got ? comparableLine(got) : 'absent')) continue;
    result.differing++;
    const shown = (item: Item | undefined) => (item ? itemToLine(item) : 'absent');
    if (result.mismatches.length < maxMismatches) result.mismatches.push({ table: `${source.schema}.${source.table}`, key: showKey(key, keyNames), source: shown(want), target: shown(got) });
  }
}
