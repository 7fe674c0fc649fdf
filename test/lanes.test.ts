/** Ordered-per-key parallelism (src/capture/lanes.ts): order within a key, concurrency across keys, a bound, and failures. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { inLanes } from '../src/capture/lanes.js';

test('changes to one key run in order, one at a time; different keys run together, at most `lanes` at once', async () => {
  const events = Array.from({ length: 60 }, (_, i) => ({ key: `k${i % 6}`, n: i }));
  const done: { key: string; n: number }[] = [];
  const running = new Set<string>();
  let busiest = 0;
  let inFlight = 0;
  await inLanes(events, (e) => e.key, 4, async (e) => {
    assert.ok(!running.has(e.key), `two changes of ${e.key} at once`);
    running.add(e.key);
    busiest = Math.max(busiest, ++inFlight);
    await sleep(1 + (e.n % 3));
    done.push(e);
    inFlight--;
    running.delete(e.key);
  });
  assert.equal(done.length, 60);
  for (const key of ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']) {
    const order = done.filter((e) => e.key === key).map((e) => e.n);
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `${key} applied in order`);
  }
  assert.equal(busiest, 4, 'four lanes ran at once, no more');
});

test('the first failure stops the lanes taking more work and is what inLanes rejects with', async () => {
  const events = Array.from({ length: 40 }, (_, i) => ({ key: `k${i % 4}`, n: i }));
  const started: number[] = [];
  await assert.rejects(
    inLanes(events, (e) => e.key, 2, async (e) => {
      started.push(e.n);
      await sleep(1);
      if (e.n === 4) throw new Error('boom at 4');
    }),
    /boom at 4/,
  );
  assert.ok(!started.includes(8), `no change of the failed key after the failure (${started.join(',')})`);
  assert.ok(started.length < 40, 'work stopped early');
});
