/**
 * Grouping mapping: an item whose last row went is deleted, and a row another
 * reader sets on it at that moment is not deleted with it (the item-revision
 * guard, src/capture/emptyItems.ts). Against DynamoDB Local, with the change
 * events' writes built by apply's own plan.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateTableCommand, DeleteTableCommand, GetItemCommand, TransactWriteItemsCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import type { SourceTable } from '../src/bulk/model.js';
import { dynamoClient } from '../src/aws.js';
import { applyPlan } from '../src/capture/applyPlan.js';
import { deleteIfEmpty } from '../src/capture/emptyItems.js';
import type { ChangeEvent } from '../src/capture/events.js';
import { loadConfig } from '../src/config.js';
import { DEFAULT_CONVERSION, type SourceColumn } from '../src/mapping/types.js';
import { uniqueName } from './helpers.js';

const config = loadConfig();
const dynamo = dynamoClient(config.aws);
const targetTable = uniqueName('orders');
const versionsTable = uniqueName('versions');
const int = (name: string): SourceColumn => ({ name, family: 'integer', mysqlType: 'int(11)', nullable: false, unsigned: false });
const source: SourceTable = {
  schema: 'shop',
  table: 'purchase',
  columns: ['customerid', 'orderid', 'productid', 'quantity'].map(int),
  primaryKey: ['customerid', 'orderid', 'productid'],
  mapping: {
    schema: 'shop',
    table: 'purchase',
    targetTable,
    action: 'group-records-to-item',
    partitionKey: 'customerid',
    sortKey: 'orderid',
    excludeColumns: [],
    attributes: [],
    group: { nameColumn: 'productid', valueColumn: 'quantity' },
  },
  splitColumns: ['customerid', 'orderid'],
  rowsEstimate: 0,
};
let version = 100;

before(async () => {
  await dynamo.send(
    new CreateTableCommand({
      TableName: targetTable,
      KeySchema: [{ AttributeName: 'customerid', KeyType: 'HASH' }, { AttributeName: 'orderid', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'customerid', AttributeType: 'N' }, { AttributeName: 'orderid', AttributeType: 'N' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await dynamo.send(new CreateTableCommand({ TableName: versionsTable, KeySchema: [{ AttributeName: 'k', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'k', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }));
  for (const TableName of [targetTable, versionsTable]) await waitUntilTableExists({ client: dynamo, maxWaitTime: 60 }, { TableName });
});

after(async () => {
  for (const TableName of [targetTable, versionsTable]) await dynamo.send(new DeleteTableCommand({ TableName })).catch(() => undefined);
});

/** Applies one row change as apply does: its plan's transactions, in order. Returns the items it may have emptied. */
async function change(op: 'insert' | 'delete', row: { customerid: number; orderid: number; productid: number; quantity: number }) {
  const key = { customerid: row.customerid, orderid: row.orderid, productid: row.productid };
  const event: ChangeEvent = { table: 'shop.purchase', op, key, ...(op === 'insert' ? { after: row } : { before: row }), version: String(version++), ts: 0 };
  const plan = applyPlan(event, source, versionsTable, DEFAULT_CONVERSION);
  for (const TransactItems of plan.transactions) await dynamo.send(new TransactWriteItemsCommand({ TransactItems }));
  return plan.maybeEmpty;
}

async function item(customerid: number, orderid: number) {
  const { Item } = await dynamo.send(new GetItemCommand({ TableName: targetTable, Key: { customerid: { N: String(customerid) }, orderid: { N: String(orderid) } }, ConsistentRead: true }));
  return Item;
}

test('an item whose last row was deleted is deleted', async () => {
  await change('insert', { customerid: 1, orderid: 1, productid: 1000, quantity: 3 });
  const emptied = await change('delete', { customerid: 1, orderid: 1, productid: 1000, quantity: 3 });
  assert.equal(emptied.length, 1, 'the delete names the item it may have emptied');
  assert.deepEqual(Object.keys((await item(1, 1))!).sort(), ['customerid', 'orderid'], 'the attribute went, the item stayed');
  assert.equal(await deleteIfEmpty(dynamo, versionsTable, targetTable, emptied[0]!), true);
  assert.equal(await item(1, 1), undefined);
});

test('a row another reader sets on the emptied item between the read and the delete is kept: the delete is refused and the item read again', async () => {
  await change('insert', { customerid: 2, orderid: 1, productid: 1000, quantity: 3 });
  const emptied = await change('delete', { customerid: 2, orderid: 1, productid: 1000, quantity: 3 });
  // A client that, once the item has been read as empty, lets the other reader's change land before the delete.
  const racing = dynamoClient(config.aws);
  let raced = false;
  racing.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName === 'TransactGetItemsCommand' && !raced) {
        raced = true;
        await change('insert', { customerid: 2, orderid: 1, productid: 2000, quantity: 5 });
      }
      return result;
    },
    { step: 'initialize', name: 'otherReader' },
  );
  let retries = 0;
  assert.equal(await deleteIfEmpty(racing, versionsTable, targetTable, emptied[0]!, () => retries++), false);
  assert.ok(raced, 'the other reader wrote between the read and the delete');
  assert.equal(retries, 1, 'the delete was refused once, then the item read again');
  assert.deepEqual(await item(2, 1), { customerid: { N: '2' }, orderid: { N: '1' }, '2000': { N: '5' } });
});
