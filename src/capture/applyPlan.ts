/**
 * What one change event does to DynamoDB: the transactions that apply it,
 * each guarded by the row's version in the side table, so a change older than
 * (or equal to) what was already applied is dropped whatever order it arrives
 * in, and a deleted row stays deleted (docs/cdc.md). Pure code.
 */
import type { AttributeValue, TransactWriteItem } from '@aws-sdk/client-dynamodb';
import type { SourceTable } from '../bulk/model.js';
import { groupAttribute, itemKey, rowToItem, type Row } from '../mapping/item.js';
import { fromMysql, type ConversionOptions } from '../mapping/types.js';
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

/**
 * What applying one event takes. Record-to-record and document mappings: put
 * or delete the row's item. Grouping mapping: set or remove the row's own
 * attribute of its group's item (never the whole item). A primary-key change
 * removes the old row and writes the new one as two transactions, each with
 * its own version check, so neither is lost to the other's staleness.
 */
export function applyPlan(event: ChangeEvent, source: SourceTable, versionsTable: string, options: ConversionOptions): ApplyPlan {
  const mapping = source.mapping;
  const target = mapping.targetTable;
  const maybeEmpty: Record<string, AttributeValue>[] = [];
  const version = (image: EventRow, deleted: boolean) => versionWrite(versionsTable, event.table, primaryKeyOf(source, image), event.version, deleted);

  const remove = (image: EventRow): TransactWriteItem[] => {
    const row = stagedRow(source, image);
    const Key = itemKey(mapping, source.columns, row, options);
    if (!mapping.group) return [version(image, true), { Delete: { TableName: target, Key } }];
    const { name } = groupAttribute(mapping, source.columns, row, options);
    maybeEmpty.push(Key);
    return [version(image, true), { Update: { TableName: target, Key, UpdateExpression: 'REMOVE #a', ExpressionAttributeNames: { '#a': name } } }, revisionBump(versionsTable, target, Key)];
  };
  const write = (image: EventRow, replacing?: EventRow): TransactWriteItem[] => {
    const row = stagedRow(source, image);
    if (!mapping.group) return [version(image, false), { Put: { TableName: target, Item: rowToItem(mapping, source.columns, row, options) } }];
    const Key = itemKey(mapping, source.columns, row, options);
    const { name, value } = groupAttribute(mapping, source.columns, row, options);
    const names: Record<string, string> = { '#a': name };
    const set = value === undefined ? [] : ['#a = :v'];
    const removes = value === undefined ? ['#a'] : [];
    if (replacing) {
      // The same row under another attribute name or in another item: its old attribute goes.
      const old = stagedRow(source, replacing);
      const oldKey = itemKey(mapping, source.columns, old, options);
      const oldName = groupAttribute(mapping, source.columns, old, options).name;
      if (JSON.stringify(oldKey) === JSON.stringify(Key)) {
        if (oldName !== name) removes.push('#old');
        names['#old'] = oldName;
      } else {
        maybeEmpty.push(oldKey);
        return [
          version(image, false),
          { Update: { TableName: target, Key: oldKey, UpdateExpression: 'REMOVE #a', ExpressionAttributeNames: { '#a': oldName } } },
          revisionBump(versionsTable, target, oldKey),
          { Update: { TableName: target, Key, UpdateExpression: set.length ? 'SET #a = :v' : 'REMOVE #a', ExpressionAttributeNames: { '#a': name }, ...(set.length ? { ExpressionAttributeValues: { ':v': value! } } : {}) } },
          revisionBump(versionsTable, target, Key),
        ];
      }
    }
    if (removes.length && !set.length) maybeEmpty.push(Key);
    if (!names['#old'] || !removes.includes('#old')) delete names['#old'];
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
      return { transactions: [write(event.after!, mapping.group ? event.before! : undefined)], maybeEmpty };
    }
  }
}
