/**
 * The worked example the tests share: a seeded `purchase` table, ferry's two
 * example specs pointed at it, and the two worked mappings computed by the
 * tests' own code (never ferry's), compared with what DynamoDB holds.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { MigrationSpecInput } from '../src/client.js';
import type { MysqlConnection } from '../src/mysql.js';
import { ROOT } from './helpers.js';

export { scanAll } from './helpers.js';

export interface PurchaseRow {
  customerid: number;
  orderid: number;
  productid: number;
  quantity: number;
}

export type Item = Record<string, AttributeValue>;

/**
 * Creates `database`.purchase and fills it from `candidates` candidate rows, of
 * which about 4/7 are kept: orders of 1 to 7 products, uneven on purpose, so
 * groups straddle naive partition bounds. Customers are numbered from 0 up to
 * candidates / 91, orders 0..12, products 1000, 1011, … 1066.
 */
export async function seedPurchase(db: MysqlConnection, database: string, candidates: number): Promise<void> {
  await db.query(`CREATE DATABASE IF NOT EXISTS \`${database}\``);
  await db.query(
    `CREATE TABLE \`${database}\`.purchase (customerid INT NOT NULL, orderid INT NOT NULL, productid INT NOT NULL, quantity INT NOT NULL, PRIMARY KEY (customerid, orderid, productid))`,
  );
  await db.query(
    `INSERT INTO \`${database}\`.purchase
       SELECT seq DIV 91, (seq DIV 7) MOD 13, 1000 + (seq MOD 7) * 11, 1 + (seq * 7919) MOD 50
       FROM seq_0_to_${candidates - 1} WHERE (seq * 31) MOD 7 <= (seq DIV 7) MOD 7`,
  );
}

export async function readPurchase(db: MysqlConnection, database: string): Promise<PurchaseRow[]> {
  const [rows] = await db.query(`SELECT customerid, orderid, productid, quantity FROM \`${database}\`.purchase`);
  return (rows as PurchaseRow[]).map((r) => ({ customerid: Number(r.customerid), orderid: Number(r.orderid), productid: Number(r.productid), quantity: Number(r.quantity) }));
}

/** docs/examples/FILE, pointed at `database`.purchase and written to `target`. */
export function exampleSpec(file: 'purchase-dms.json' | 'purchase-grouped.json', name: string, database: string, target: string): MigrationSpecInput {
  const spec = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs', 'examples', file), 'utf8'));
  spec.name = name;
  spec.source.database = database;
  for (const rule of spec.mapping.rules) {
    rule['object-locator']['schema-name'] = database;
    if (rule['rule-type'] === 'object-mapping') rule['target-table-name'] = target;
  }
  return spec;
}

/** Worked example (a): one item per row, partition key customer_orderid = customerid|orderid, sort key productid. */
export function dmsItems(rows: PurchaseRow[]): Map<string, Item> {
  const items = new Map<string, Item>();
  for (const r of rows) {
    items.set(`${r.customerid}|${r.orderid}#${r.productid}`, {
      customer_orderid: { S: `${r.customerid}|${r.orderid}` },
      productid: { N: String(r.productid) },
      quantity: { N: String(r.quantity) },
    });
  }
  return items;
}
export const dmsKey = (item: Item) => `${item.customer_orderid!.S}#${item.productid!.N}`;

/** Worked example (b): one item per (customerid, orderid); each productid an attribute holding its quantity. */
export function groupedItems(rows: PurchaseRow[]): Map<string, Item> {
  const items = new Map<string, Item>();
  for (const r of rows) {
    const key = `${r.customerid}#${r.orderid}`;
    const item = items.get(key) ?? { customerid: { N: String(r.customerid) }, orderid: { N: String(r.orderid) } };
    item[String(r.productid)] = { N: String(r.quantity) };
    items.set(key, item);
  }
  return items;
}
export const groupedKey = (item: Item) => `${item.customerid!.N}#${item.orderid!.N}`;

/** Compares target items with expected ones by key: all equal, none missing, none extra, no duplicates. */
export function assertSameItems(actual: Item[], expected: Map<string, Item>, keyOf: (item: Item) => string): void {
  const seen = new Set<string>();
  const mismatches: string[] = [];
  for (const item of actual) {
    const key = keyOf(item);
    if (seen.has(key)) mismatches.push(`duplicate ${key}`);
    seen.add(key);
    const want = expected.get(key);
    if (!want) mismatches.push(`extra item ${key}: ${JSON.stringify(item)}`);
    else if (JSON.stringify(sortKeys(item)) !== JSON.stringify(sortKeys(want))) mismatches.push(`item ${key}: got ${JSON.stringify(sortKeys(item))}, want ${JSON.stringify(sortKeys(want))}`);
  }
  for (const key of expected.keys()) if (!seen.has(key)) mismatches.push(`missing item ${key}`);
  assert.deepEqual(mismatches.slice(0, 10), [], `${mismatches.length} mismatches`);
  assert.equal(actual.length, expected.size);
}

function sortKeys(item: Item) {
  return Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : 1)));
}
