/** Packing change events' transactions into calls (src/capture/applyBatch.ts): order per lane, item limits, no item twice. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { itemIdentity, packRound, type KeyNames, type Step } from '../src/capture/applyBatch.js';

const keyNames: KeyNames = new Map([['versions', ['k']], ['target', ['id']]]);
const version = (row: string): TransactWriteItem => ({ Put: { TableName: 'versions', Item: { k: { S: row }, v: { N: '1' } } } });
const put = (id: string): TransactWriteItem => ({ Put: { TableName: 'target', Item: { id: { S: id }, x: { S: 'value' } } } });
const remove = (id: string): TransactWriteItem => ({ Delete: { TableName: 'target', Key: { id: { S: id } } } });
const step = (...items: TransactWriteItem[]): Step<string> => ({ items, tag: '' });

test('a Put and a Delete of the same key are the same item; other attributes and key order do not matter', () => {
  assert.equal(itemIdentity(put('a'), keyNames), itemIdentity(remove('a'), keyNames));
  assert.notEqual(itemIdentity(put('a'), keyNames), itemIdentity(put('b'), keyNames));
  assert.notEqual(itemIdentity(version('a'), keyNames), itemIdentity(put('a'), keyNames), 'same key value, other table');
  assert.throws(() => itemIdentity({ Put: { TableName: 'unknown', Item: {} } }, keyNames), /no key attribute names known for table unknown/);
});

test('a round takes only the head step of each lane and fills calls up to the item limit', () => {
  const lanes = Array.from({ length: 120 }, (_, i) => [step(version(`r${i}`), put(`r${i}`)), step(version(`r${i}`), put(`r${i}`))]);
  const calls = packRound(lanes, keyNames);
  assert.deepEqual(calls.map((c) => c.length), [50, 50, 20], 'two items per step, 100 items per call');
  assert.deepEqual(calls.flat(), Array.from({ length: 120 }, (_, i) => i), 'each lane once: its head step only');
});

test('a step touching an item another lane touches this round waits for the next round', () => {
  // Lane 1 moves row b to row a's key (a PK change delivered on b's lane) while lane 0 writes a.
  const lanes = [[step(version('a'), put('a'))], [step(version('b'), remove('b')), step(version('a2'), put('a'))], [step(version('c'), put('c'))]];
  assert.deepEqual(packRound(lanes, keyNames), [[0, 1, 2]], 'no head steps collide');
  lanes[1]!.shift();
  assert.deepEqual(packRound(lanes, keyNames), [[0, 2]], 'lane 1 now writes item a, which lane 0 writes: it waits');
});

test('lanes to be tried alone get calls of their own', () => {
  const lanes = [[step(version('a'), put('a'))], [step(version('b'), put('b'))], [step(version('c'), put('c'))]];
  assert.deepEqual(packRound(lanes, keyNames, 100, new Set([1])), [[0, 2], [1]]);
});
