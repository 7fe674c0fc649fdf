/**
 * Apply's lag as a cutover's gate and the progress line read it
 * (src/capture/lag.ts): a page being applied counts from its oldest record,
 * measured when asked, and so do the unread records behind a page. Pure logic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterPage, applyLag, readerLag } from '../src/capture/lag.js';
import { describeLag } from '../src/cli/migrate.js';

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

/** A reader's checkpoint as applyLag reads it. */
const reader = (shardId: string, over: Record<string, unknown> = {}) => ({ shardId, applied: 0, stale: 0, deadLetters: 0, retried: 0, millisBehind: 0, waitingTables: 0, measured: true, ...over });

test('applyLag: every shard read and applying every table is ready, at the largest lag', () => {
  assert.deepEqual(applyLag([reader('a', { millisBehind: 200 }), reader('b', { oldestUnappliedAt: 9_000 })], 2, 10_000), { ready: true, maxMillisBehind: 1_000 });
});

test('applyLag: a reader retried after its worker died knows nothing until its first page, and counts from what its dead attempt left unapplied', () => {
  // The dead attempt's checkpoint said 0 behind at its last page: the retry, which has read nothing, must not repeat it.
  const retried = reader('a', { measured: false, applied: 5_000, oldestUnappliedAt: 1_000 });
  const lag = applyLag([retried, reader('b')], 2, 188_683);
  assert.equal(lag.ready, false);
  assert.equal(lag.maxMillisBehind, 187_683);
  assert.match(lag.notReady ?? '', /the reader of a has read nothing since it \(re\)started/);
});

test('applyLag: shards without a reader, or tables still waiting for their bulk load, are not ready', () => {
  assert.match(applyLag([reader('a')], 2, 0).notReady ?? '', /1 of 2 shards/);
  assert.match(applyLag([reader('a', { waitingTables: 1 })], 1, 0).notReady ?? '', /1 table\(s\) still wait/);
  assert.equal(applyLag([], 1, 0).maxMillisBehind, Number.MAX_SAFE_INTEGER);
});

test('the status line says the lag is not known rather than a figure the cutover would refuse to act on', () => {
  assert.equal(describeLag({ ready: true, maxMillisBehind: 1_234 }), 'apply 1,234 ms behind the stream');
  assert.equal(
    describeLag({ ready: false, maxMillisBehind: 187_683, notReady: 'the reader of a has read nothing since it (re)started, so its lag is not known yet' }),
    'apply lag not known yet: the reader of a has read nothing since it (re)started, so its lag is not known yet (at least 187,683 ms so far)',
  );
});
