/**
 * What one change event does to DynamoDB: the transactions that apply it,
 * each guarded by the row's version in the side table, so a change older than
 * (or equal to) what was already applied is dropped whatever order it arrives
 * in, and a deleted row stays deleted (docs/cdc.md). Pure code.
 */
import type { AttributeValue, TransactWriteItem } from '@aws-sdk/client-dynamodb';
import type { SourceTable } from '../bulk/model.js';
import { checkItemSize, groupAttribute, groupAttributeName, itemKey, rowToItem, type Row } from '../mapping/item.js';
import { ConversionError, fromMysql, type ConversionOptions, type SourceColumn } from '../mapping/types.js';
import { decodeValue, type ChangeEvent, type EventRow } from './events.js';

/** The side table's key for one source row. */
export function versionKey(table: string, key: EventRow): string {
  return `${table}|${JSON.stringify(key)}`;
}

/** A row image from an event, as the staged values the mapping takes (the bulk path's representation). */
export function stagedRow(source: Pick<SourceTable, 'columns'>, image: EventRow): Row {
  const row: Row = {};
  for (const column of source.columns) row[column.name] = fromMysql(column, decodeValue(image[column.name] ?? null));
  return row;
}

function primaryKeyOf(source: Pick<SourceTable, 'primaryKey'>, image: EventRow): EventRow {
  return Object.fromEntries(source.primaryKey.map((c) => [c, image[c] ?? null]));
}

function versionWrite(versionsTable: string, table: string, key: EventRow, version: string, deleted: boolean): TransactWriteItem {
  const Item: Record<string, AttributeValue> = { k: { S: versionKey(table, key) }, v: { N: version } };
  if (deleted) Item.deleted = { BOOL: true };
  return {
    Put: {
      TableName: versionsTable,
      Item,
      ConditionExpression: 'attribute_not_exists(v) OR v < :v',
      ExpressionAttributeValues: { ':v': { N: version } },
    },
  };
}

/** The side table's key for one target item's revision (grouping mapping): bumped by every change to the item. */
export function revisionKey(targetTable: string, key: Record<string, AttributeValue>): string {
  return `item|${targetTable}|${JSON.stringify(key)}`;
}

function revisionBump(versionsTable: string, targetTable: string, key: Record<string, AttributeValue>): TransactWriteItem {
  return {
    Update: {
      TableName: versionsTable,
      Key: { k: { S: revisionKey(targetTable, key) } },
      UpdateExpression: 'ADD r :one',
      ExpressionAttributeValues: { ':one': { N: '1' } },
    },
  };
}

export interface ApplyPlan {
  /** Applied in order, each on its own: one's staleness does not drop another. */
  transactions: TransactWriteItem[][];
  /**
   * Grouping mapping: items an attribute was removed from, to delete if only
   * their key is left (as the bulk path would never make them). Every change to
   * such an item bumps its revision in the side table, so the delete can be
   * made conditional on nothing having changed the item since it was read.
   */
  maybeEmpty: Record<string, AttributeValue>[];
}

/** A row image as the mapping takes it: its columns and staged values. */
export interface ShapedRow {
  columns: SourceColumn[];
  row: Row;
}

/**
 * How an image becomes a shaped row. Without spec.sql: its own columns and
 * values. With it: the SQL's output (src/capture/rowSql.ts), or undefined when
 * the SQL filtered the row out, as the bulk path would not have copied it.
 */
export type Shape = (image: EventRow) => ShapedRow | undefined;

export function plainShape(source: Pick<SourceTable, 'columns'>): Shape {
  return (image) => ({ columns: source.columns, row: stagedRow(source, image) });
}

/**
 * What applying one event takes. Record-to-record and document mappings: put
 * or delete the row's item. Grouping mapping: set or remove the row's own
 * attribute of its group's item (never the whole item). A primary-key change
 * removes the old row and writes the new one as two transactions, each with
 * its own version check, so neither is lost to the other's staleness. An
 * update that moves the row's item (its key comes out different) or that the
 * spec's SQL now filters out takes the old item or attribute away in the same
 * transaction.
 */
export function applyPlan(event: ChangeEvent, source: SourceTable, versionsTable: string, options: ConversionOptions, shape: Shape = plainShape(source)): ApplyPlan {
  const mapping = source.mapping;
  const target = mapping.targetTable;
  const maybeEmpty: Record<string, AttributeValue>[] = [];
  const version = (image: EventRow, deleted: boolean) => versionWrite(versionsTable, event.table, primaryKeyOf(source, image), event.version, deleted);
  const keyOf = (s: ShapedRow) => itemKey(mapping, s.columns, s.row, options);

  /** The old image of an update, unless it could never have made an item or attribute (its key or name does not convert). */
  const madeItem = (s: ShapedRow | undefined): ShapedRow | undefined => {
    if (!s) return undefined;
    try {
      keyOf(s);
      if (mapping.group) groupAttributeName(mapping, s.row);
      return s;
    } catch (err) {
      if (err instanceof ConversionError) return undefined;
      throw err;
    }
  };
  /** The target operations that take a row out: delete its item, or remove its attribute from its group's item. */
  const takeOut = (s: ShapedRow): TransactWriteItem[] => {
    const Key = keyOf(s);
    if (!mapping.group) return [{ Delete: { TableName: target, Key } }];
    const name = groupAttributeName(mapping, s.row);
    maybeEmpty.push(Key);
    return [{ Update: { TableName: target, Key, UpdateExpression: 'REMOVE #a', ExpressionAttributeNames: { '#a': name } } }, revisionBump(versionsTable, target, Key)];
  };
  const remove = (image: EventRow): TransactWriteItem[] => {
    const s = shape(image);
    return [version(image, true), ...(s ? takeOut(s) : [])];
  };
  const write = (image: EventRow, replacing?: EventRow): TransactWriteItem[] => {
    const s = shape(image);
    const old = replacing ? madeItem(shape(replacing)) : undefined;
    if (!s) return [version(image, false), ...(old ? takeOut(old) : [])];
    const Key = keyOf(s);
    const moved = old !== undefined && JSON.stringify(keyOf(old)) !== JSON.stringify(Key);
    if (!mapping.group) {
      const Item = rowToItem(mapping, s.columns, s.row, options);
      // The bulk copy's check: an item DynamoDB cannot hold is a bad record, under spec.errors.policy.
      checkItemSize(Item, target);
      return [version(image, false), ...(moved ? takeOut(old) : []), { Put: { TableName: target, Item } }];
    }
    const { name, value } = groupAttribute(mapping, s.columns, s.row, options);
    const names: Record<string, string> = { '#a': name };
    const set = value === undefined ? [] : ['#a = :v'];
    const removes = value === undefined ? ['#a'] : [];
    if (moved) {
      // The same row in another item: its old attribute goes.
      return [
        version(image, false),
        ...takeOut(old),
        { Update: { TableName: target, Key, UpdateExpression: set.length ? 'SET #a = :v' : 'REMOVE #a', ExpressionAttributeNames: { '#a': name }, ...(set.length ? { ExpressionAttributeValues: { ':v': value! } } : {}) } },
        revisionBump(versionsTable, target, Key),
      ];
    }
    if (old) {
      // The same row under another attribute name: its old attribute goes.
      const oldName = groupAttributeName(mapping, old.row);
      if (oldName !== name) {
        removes.push('#old');
        names['#old'] = oldName;
      }
    }
    if (removes.length && !set.length) maybeEmpty.push(Key);
    const expression = [set.length ? `SET ${set.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' ');
    return [
      version(image, false),
      { Update: { TableName: target, Key, UpdateExpression: expression, ExpressionAttributeNames: names, ...(set.length ? { ExpressionAttributeValues: { ':v': value! } } : {}) } },
      revisionBump(versionsTable, target, Key),
    ];
  };

  switch (event.op) {
    case 'insert':
      return { transactions: [write(event.after!)], maybeEmpty };
    case 'delete':
      return { transactions: [remove(event.before!)], maybeEmpty };
    case 'update': {
      const before = versionKey(event.table, primaryKeyOf(source, event.before!));
      const after = versionKey(event.table, primaryKeyOf(source, event.after!));
      if (before !== after) return { transactions: [remove(event.before!), write(event.after!)], maybeEmpty };
      return { transactions: [write(event.after!, event.before!)], maybeEmpty };
    }
  }
}
