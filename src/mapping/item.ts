/**
 * Rows → DynamoDB items, through a compiled TableMapping. The one row-to-item
 * converter: the bulk path and change events both come through here.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { dynamoNumberProblem } from './dynamoNumber.js';
import { keyAttributes, keyColumns, templateColumns, type ComputedAttribute, type TableMapping } from './tableMapping.js';
import { ConversionError, NUMBER_HIDDEN, templateText, toAttributeValue, type ConversionOptions, type SourceColumn, type StagedValue } from './types.js';

export type Item = Record<string, AttributeValue>;
export type Row = Record<string, StagedValue>;

/** DynamoDB's item size limit. */
export const MAX_ITEM_BYTES = 400 * 1024;

function fillTemplate(template: string, row: Row, attribute: string): string {
  return template.replace(/\$\{([^}]+)\}/g, (_, column: string) => {
    const value = row[column];
    if (value === undefined) throw new ConversionError(column, `attribute-mappings "${attribute}" refers to \${${column}}, which the row does not have`);
    return templateText(value);
  });
}

function fillDocument(node: unknown, row: Row, attribute: string): unknown {
  if (typeof node === 'string') return fillTemplate(node, row, attribute);
  if (Array.isArray(node)) return node.map((n) => fillDocument(n, row, attribute));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, fillDocument(v, row, attribute)]));
  return node;
}

function computedValue(attribute: ComputedAttribute, row: Row): AttributeValue | undefined {
  if (attribute.subType === 'dynamodb-map') {
    const filled = fillDocument(attribute.template, row, attribute.name) as Record<string, unknown>;
    return ('M' in filled ? filled : { M: filled }) as unknown as AttributeValue;
  }
  const template = attribute.template as string;
  // A template that is one column and nothing else keeps NULL meaning "no attribute".
  const only = /^\$\{([^}]+)\}$/.exec(template)?.[1];
  if (only !== undefined && row[only] === null) return undefined;
  const text = fillTemplate(template, row, attribute.name);
  switch (attribute.subType) {
    case 'number':
      if (!/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text)) throw new ConversionError(attribute.name, `"${text}" is not a number, but attribute-sub-type is "number"`, text);
      const problem = dynamoNumberProblem(text);
      if (problem) throw new ConversionError(attribute.name, problem, text, NUMBER_HIDDEN);
      return { N: text };
    case 'binary':
      return { B: Buffer.from(text, 'base64') };
    case 'boolean':
      return { BOOL: text === '1' || text.toLowerCase() === 'true' };
    default:
      return { S: text };
  }
}

/** Values of a row's columns under a mapping, excluding excluded columns. */
function columnAttributes(mapping: TableMapping, columns: SourceColumn[], row: Row, options: ConversionOptions, skip: Set<string>): Item {
  const item: Item = {};
  for (const column of columns) {
    if (skip.has(column.name) || mapping.excludeColumns.includes(column.name)) continue;
    const value = toAttributeValue(column, row[column.name] ?? null, options);
    if (value !== undefined) item[column.name] = value;
  }
  return item;
}

function requireKey(item: Item, name: string | undefined, mapping: TableMapping): void {
  if (!name) return;
  const value = item[name];
  if (!value) throw new ConversionError(name, `key attribute "${name}" of ${mapping.targetTable} is empty (NULL source value)`);
  if (('S' in value && value.S === '') || ('B' in value && value.B?.length === 0)) {
    throw new ConversionError(name, `key attribute "${name}" of ${mapping.targetTable} would be an empty string; DynamoDB keys cannot be empty`);
  }
}

/** The item key attributes of a row (for a grouping mapping: the group's item). */
export function itemKey(mapping: TableMapping, columns: SourceColumn[], row: Row, options: ConversionOptions): Item {
  // Only what the key is made of: a value elsewhere in the row that DynamoDB cannot take does not matter here
  // (an update that fixes such a value has it in its before image).
  const keyNames = keyAttributes(mapping);
  const needed = new Set(keyColumns(mapping));
  const keyMapping = { ...mapping, group: undefined, action: 'map-record-to-record' as const, excludeColumns: [], attributes: mapping.attributes.filter((a) => keyNames.includes(a.name)) };
  const full = rowToItem(keyMapping, columns.filter((c) => needed.has(c.name)), row, options);
  const key: Item = { [mapping.partitionKey]: full[mapping.partitionKey]! };
  if (mapping.sortKey) key[mapping.sortKey] = full[mapping.sortKey]!;
  return key;
}

/**
 * One row → one item, for map-record-to-record and map-record-to-document.
 * Computed attributes win over same-named columns, as in DMS.
 */
export function rowToItem(mapping: TableMapping, columns: SourceColumn[], row: Row, options: ConversionOptions): Item {
  const computed = new Set(mapping.attributes.map((a) => a.name));
  let item: Item;
  if (mapping.action === 'map-record-to-document') {
    // DMS: key columns stay top-level; every other column goes into the `_doc` map.
    const keyNames = new Set([mapping.partitionKey, mapping.sortKey].filter((k): k is string => !!k));
    const top = columns.filter((c) => keyNames.has(c.name));
    const rest = columns.filter((c) => !keyNames.has(c.name));
    item = columnAttributes(mapping, top, row, options, computed);
    const doc = columnAttributes(mapping, rest, row, options, computed);
    item._doc = { M: doc };
  } else {
    item = columnAttributes(mapping, columns, row, options, computed);
  }
  for (const attribute of mapping.attributes) {
    const value = computedValue(attribute, row);
    if (value !== undefined) item[attribute.name] = value;
    else delete item[attribute.name];
  }
  requireKey(item, mapping.partitionKey, mapping);
  requireKey(item, mapping.sortKey, mapping);
  return item;
}

/** The attribute one row contributes to its group's item under group-records-to-item. */
export function groupAttribute(mapping: TableMapping, columns: SourceColumn[], row: Row, options: ConversionOptions): { name: string; value: AttributeValue | undefined } {
  const { valueColumn } = mapping.group!;
  const name = groupAttributeName(mapping, row);
  const column = columns.find((c) => c.name === valueColumn);
  if (!column) throw new ConversionError(valueColumn, 'attribute-value-column is not a column of the rows');
  return { name, value: toAttributeValue(column, row[valueColumn] ?? null, options) };
}

/** The name of the attribute a row holds in its group's item (its value not converted). */
export function groupAttributeName(mapping: TableMapping, row: Row): string {
  const { nameColumn } = mapping.group!;
  const nameValue = row[nameColumn];
  if (nameValue === null || nameValue === undefined) throw new ConversionError(nameColumn, 'attribute-name-column is NULL; each row needs an attribute name');
  const name = templateText(nameValue);
  if (name === mapping.partitionKey || name === mapping.sortKey) {
    throw new ConversionError(nameColumn, `value "${name}" would overwrite the key attribute of the same name`, String(name));
  }
  return name;
}

/** Rows sharing one item key → that item: the key, plus one attribute per row. */
export function groupToItem(mapping: TableMapping, columns: SourceColumn[], rows: Row[], options: ConversionOptions): Item {
  const item = itemKey(mapping, columns, rows[0]!, options);
  for (const row of rows) {
    const { name, value } = groupAttribute(mapping, columns, row, options);
    if (value !== undefined) item[name] = value;
  }
  return item;
}

/** DynamoDB's size accounting: attribute names plus values, in UTF-8 bytes. */
export function itemSize(item: Item): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name) + valueSize(value);
  return size;
}

function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return value.B.length;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS) return value.SS.reduce((s, v) => s + Buffer.byteLength(v), 0);
  if (value.NS) return value.NS.reduce((s, v) => s + numberSize(v), 0);
  if (value.BS) return value.BS.reduce((s, v) => s + v.length, 0);
  if (value.L) return 3 + value.L.reduce((s, v) => s + 1 + valueSize(v), 0);
  if (value.M) return 3 + Object.entries(value.M).reduce((s, [k, v]) => s + 1 + Buffer.byteLength(k) + valueSize(v), 0);
  return 0;
}

function numberSize(n: string): number {
  const digits = n.replace(/^-/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').length;
  return Math.ceil(digits / 2) + 1;
}

export function checkItemSize(item: Item, table: string): void {
  const size = itemSize(item);
  if (size > MAX_ITEM_BYTES) {
    throw new ConversionError(
      Object.entries(item).sort((a, b) => valueSize(b[1]) - valueSize(a[1]))[0]![0],
      `the item for ${table} is ${size} bytes; DynamoDB items hold at most ${MAX_ITEM_BYTES} bytes (400 KB). Exclude or shorten the largest attribute, or store it in S3`,
    );
  }
}

export { templateColumns };
