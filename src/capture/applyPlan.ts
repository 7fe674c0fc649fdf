/**
 * What one change event does to DynamoDB: the transactions that apply it,
 * each guarded by the row's version in the side table, so a change older than
 * (or equal to) what was already applied is dropped whatever order it arrives
 * in, and a deleted row stays deleted (docs/cdc.md). Pure code.
 */
import type { AttributeValue, TransactWriteItem } from '@aws-sdk/client-dynamodb';
import type { SourceTable } from '../bulk/model.js';
import { itemKey, rowToItem, type Row } from '../mapping/item.js';
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

/**
 * The transactions applying one event, in order. A primary-key change is two
 * independent transactions (remove the old row, write the new one), each
 * with its own version check, so neither is lost to the other's staleness.
 */
export function applyTransactions(event: ChangeEvent, source: SourceTable, versionsTable: string, options: ConversionOptions): TransactWriteItem[][] {
  const mapping = source.mapping;
  if (mapping.group) throw new Error(`applying changes through a grouping mapping (${source.table}) is not built yet`);
  const target = mapping.targetTable;
  const remove = (image: EventRow): TransactWriteItem[] => [
    versionWrite(versionsTable, event.table, primaryKeyOf(source, image), event.version, true),
    { Delete: { TableName: target, Key: itemKey(mapping, source.columns, stagedRow(source, image), options) } },
  ];
  const write = (image: EventRow): TransactWriteItem[] => [
    versionWrite(versionsTable, event.table, primaryKeyOf(source, image), event.version, false),
    { Put: { TableName: target, Item: rowToItem(mapping, source.columns, stagedRow(source, image), options) } },
  ];
  switch (event.op) {
    case 'insert':
      return [write(event.after!)];
    case 'delete':
      return [remove(event.before!)];
    case 'update': {
      const before = versionKey(event.table, primaryKeyOf(source, event.before!));
      const after = versionKey(event.table, primaryKeyOf(source, event.after!));
      return before === after ? [write(event.after!)] : [remove(event.before!), write(event.after!)];
    }
  }
}
