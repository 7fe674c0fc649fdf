/**
 * Apply's lag as a cutover's gate and the progress line read it
 * (src/capture/lag.ts): a page being applied counts from its oldest record,
 * measured when asked, and so do the unread records behind a page. Pure logic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterPage, readerLag } from '../src/capture/lag.js';

test('between pages the lag is the last page’s MillisBehindLatest', () => {
  assert.equal(readerLag({ millisBehind: 0 }, 10_000), 0);
  assert.equal(readerLag({ millisBehind: 1_500 }, 10_000), 1_500);
});

test('a page that reached the tip still counts while it is applied: its oldest record’s age, growing until it is done', () => {
  // The page's records arrived from 4 s ago; the tip says 0 behind.
  const reader = { millisBehind: 0, oldestUnappliedAt: 6_000 };
  assert.equal(readerLag(reader, 10_000), 4_000);
  assert.equal(readerLag(reader, 12_500), 6_500, 'a heartbeat seen later is read against the clock then');
});

test('the larger of the page’s age and what trails it', () => {
  assert.equal(readerLag({ millisBehind: 9_000, oldestUnappliedAt: 9_500 }, 10_000), 9_000);
});

test('a stream clock ahead of ours gives no negative lag', () => {
  assert.equal(readerLag({ millisBehind: 0, oldestUnappliedAt: 10_050 }, 10_000), 0);
});

test('after a full page, or one that trails the tip, the unread records count from the last one applied', () => {
  // A backlog whose records came in one PutRecords call share an arrival time: the page says 0 behind.
  const full = afterPage({ millisBehind: 0, records: 1_000, lastArrivalAt: 3_000 }, 1_000);
  assert.equal(readerLag(full, 10_000), 7_000);
  const trailing = afterPage({ millisBehind: 200, records: 40, lastArrivalAt: 9_000 }, 1_000);
  assert.equal(readerLag(trailing, 10_000), 1_000);
});

test('a page that reached the tip leaves nothing behind it', () => {
  assert.deepEqual(afterPage({ millisBehind: 0, records: 40, lastArrivalAt: 9_000 }, 1_000), { millisBehind: 0, oldestUnappliedAt: undefined });
  assert.equal(readerLag(afterPage({ millisBehind: 0, records: 0 }, 1_000), 10_000), 0);
});
