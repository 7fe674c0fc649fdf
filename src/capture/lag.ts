/**
 * Apply lag: how long ago the oldest change a shard's reader has not applied
 * yet reached the stream. Pure code.
 *
 * Kinesis's `MillisBehindLatest` alone understates it: a page that reaches the
 * tip says 0, yet its records can be seconds old, and applying a page of
 * 1,000 changes can take seconds more. A cutover gated on that figure froze
 * writes while the page was still being applied, and the freeze waited for
 * it (1.3–2.3 s of drain on the demo's first run, against 0.24–0.47 s once
 * apply had really caught up). So a reader also reports when the oldest
 * record of the page it is applying arrived, and the lag is read against the
 * clock at the moment it is asked, not when the reader last heartbeated:
 * heartbeats reach the server at most every second, and an unapplied page
 * keeps ageing in between. Between two pages of a backlog the next page's
 * records are unread, so their arrival is unknown; they arrived no earlier
 * than the last record applied, which is what the reader counts from then.
 */
import type { WorkflowExecutionDescription } from '@temporalio/client';
import type { PayloadConverter } from '@temporalio/common';
import type { ApplyResult } from '../../activities/apply.js';

export interface ReaderPosition {
  /** `MillisBehindLatest` of the reader's last GetRecords page: how far the records after it trail the tip. */
  millisBehind: number;
  /** When the oldest record read but not yet applied arrived (ms since the epoch, the stream's clock); absent when none is. */
  oldestUnappliedAt?: number;
}

/**
 * The reader's lag in ms at `now` (ms since the epoch). The stream's clock and
 * ours differ by the hosts' skew: a negative age counts as none.
 */
export function readerLag(reader: ReaderPosition, now: number): number {
  const pending = reader.oldestUnappliedAt === undefined ? 0 : now - reader.oldestUnappliedAt;
  return Math.max(reader.millisBehind, pending, 0);
}

/**
 * Where a reader stands once it has applied a page of `records` records
 * (`limit` at most) whose last arrived at `lastArrivalAt`: more records wait
 * if the page was full or trailed the tip, and none of them arrived before
 * that last one.
 */
export function afterPage(page: { millisBehind: number; records: number; lastArrivalAt?: number }, limit: number): ReaderPosition {
  const more = page.records >= limit || page.millisBehind > 0;
  return { millisBehind: page.millisBehind, oldestUnappliedAt: more ? page.lastArrivalAt : undefined };
}

/**
 * What apply's readers last heartbeated, one checkpoint per shard being read,
 * from a description of their workflow (its pending `applyChanges` activities).
 * The lag gate of a cutover and the client's progress both read them.
 */
export function readerCheckpoints(description: WorkflowExecutionDescription | undefined, converter: PayloadConverter): ApplyResult[] {
  return (description?.raw.pendingActivities ?? []).flatMap((activity) => {
    const payload = activity.activityType?.name === 'applyChanges' ? activity.heartbeatDetails?.payloads?.[0] : undefined;
    return payload ? [converter.fromPayload<ApplyResult>(payload)] : [];
  });
}

/** Apply's lag as the cutover gate reads it; `ferry status`, `watch` and the typed client show the same. */
export interface ApplyLag {
  /** Every shard has a reader that has read the stream since it (re)started and applies every table. */
  ready: boolean;
  /** The largest lag of the readers that reported (MAX_SAFE_INTEGER when none has). */
  maxMillisBehind: number;
  /** When not ready, why, in words. */
  notReady?: string;
}

/**
 * The one measure of apply's lag at `now`, over the readers' checkpoints of a
 * stream of `shards` shards. A reader that has not read a page since it
 * started (a fresh reader, or one retried after its worker died) does not
 * know how far behind it is: it is not ready, and its lag counts from the
 * oldest change its dead attempt had not applied, if any.
 */
export function applyLag(readers: (ApplyResult & { measured?: boolean })[], shards: number, now: number): ApplyLag {
  const lags = readers.map((r) => readerLag(r, now));
  const maxMillisBehind = lags.length ? Math.max(...lags) : Number.MAX_SAFE_INTEGER;
  const unmeasured = readers.filter((r) => r.measured === false).map((r) => r.shardId);
  const waiting = readers.reduce((n, r) => n + (r.waitingTables ?? 0), 0);
  const notReady =
    readers.length < shards
      ? `${readers.length} of ${shards} shards have an apply reader that reported`
      : waiting
        ? `${waiting} table(s) still wait for their bulk load or catch-up pass before their changes are applied`
        : unmeasured.length
          ? `the reader of ${unmeasured.join(', ')} has read nothing since it (re)started, so its lag is not known yet`
          : undefined;
  return { ready: notReady === undefined, maxMillisBehind, ...(notReady ? { notReady } : {}) };
}
