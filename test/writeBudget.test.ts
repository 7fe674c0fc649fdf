import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fullJitter, WriteBudget } from '../src/load/writeBudget.js';

test('a burst of throttling halves the pace once; an unlimited budget starts from the observed rate', () => {
  const budget = new WriteBudget(1000);
  for (let i = 0; i < 8; i++) budget.throttled(900); // eight writers hit by the same burst
  assert.equal(budget.rate, 500);
  assert.equal(budget.throttles, 8);

  const unlimited = new WriteBudget(undefined);
  assert.equal(unlimited.rate, undefined);
  unlimited.throttled(4000);
  assert.equal(unlimited.rate, 2000);
});

test('full-jitter backoff stays within [0, min(cap, base * 2^attempt))', () => {
  for (let attempt = 0; attempt < 12; attempt++) {
    for (let i = 0; i < 50; i++) {
      const wait = fullJitter(attempt, 50, 5000);
      assert.ok(wait >= 0 && wait < Math.min(5000, 50 * 2 ** attempt), `attempt ${attempt}: ${wait}`);
    }
  }
});
