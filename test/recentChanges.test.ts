/**
 * The window of last changes capture keeps for the cutover's check
 * (src/capture/recentChanges.ts): what falls out of it, and how far back the
 * list it hands over reaches. Pure logic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecentWindow } from '../src/capture/recentChanges.js';

const stopAt = { file: 'binlog.000001', position: 4 };
const change = (id: number) => ({ table: 's.t', after: { id } });

test('changes older than the window fall out; the list covers the whole window once capture has run that long', () => {
  const window = new RecentWindow(1_000, 0);
  for (let at = 0; at <= 5_000; at += 100) window.add(change(at), at);
  const list = window.snapshot(5_000, stopAt);
  assert.deepEqual(list.changes.map((c) => c.after!.id), [4_000, 4_100, 4_200, 4_300, 4_400, 4_500, 4_600, 4_700, 4_800, 4_900, 5_000]);
  assert.equal(list.coveredMs, 1_000);
  assert.equal(list.windowMs, 1_000);
});

test('a capture that (re)started inside the window covers only the time since it started', () => {
  const window = new RecentWindow(5_000, 2_000);
  window.add(change(1), 2_500);
  assert.equal(window.snapshot(3_000, stopAt).coveredMs, 1_000);
});

test('past its cap the list keeps the newest changes and says how far back they reach', () => {
  const window = new RecentWindow(10_000, 0, 3);
  for (let at = 1; at <= 5; at++) window.add(change(at), at * 100);
  const list = window.snapshot(600, stopAt);
  assert.deepEqual(list.changes.map((c) => c.after!.id), [3, 4, 5]);
  // The change seen at 200 ms fell out: the list reaches back to just after it.
  assert.equal(list.coveredMs, 600 - 201);
});
