/** When a change file closes (src/sinks/lake/roller.ts): on the interval or the size, whichever comes first, per table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeEvent } from '../src/capture/events.js';
import { FileRoller } from '../src/sinks/lake/roller.js';

const event = (table: string, id: number, note = ''): ChangeEvent => ({ table, op: 'insert', key: { id }, after: { id, note }, version: String(id), ts: 0 });

test('a quiet table’s file closes once the interval has passed since its first change, and not before', () => {
  const roller = new FileRoller({ intervalMs: 60_000, maxBytes: 1_000_000 });
  roller.add(event('shop.a', 1), 1_000);
  roller.add(event('shop.a', 2), 50_000);
  assert.deepEqual(roller.due(60_999), []);
  assert.equal(roller.nextDueAt(), 61_000);
  assert.deepEqual(roller.due(61_000), ['shop.a']);
  assert.deepEqual(roller.take('shop.a').map((e) => e.key.id), [1, 2], 'in arrival order');
  assert.deepEqual(roller.due(1_000_000), [], 'nothing open, nothing due');
  assert.equal(roller.nextDueAt(), undefined);
});

test('a busy table’s file closes at the size, whatever the interval; tables roll apart, oldest first', () => {
  const roller = new FileRoller({ intervalMs: 60_000, maxBytes: 2_000 });
  roller.add(event('shop.quiet', 1), 0);
  for (let i = 0; i < 40; i++) roller.add(event('shop.busy', i, 'x'.repeat(40)), 10);
  assert.deepEqual(roller.due(20), ['shop.busy']);
  assert.deepEqual(roller.due(60_000), ['shop.quiet', 'shop.busy']);
  assert.equal(roller.take('shop.busy').length, 40);
  assert.deepEqual(roller.tables(), ['shop.quiet']);
  assert.throws(() => new FileRoller({ intervalMs: 0, maxBytes: 1 }), /must be positive/);
});
