/**
 * Heartbeats on a clock while an activity's work runs. A stage's activities
 * have a heartbeat timeout of 20 s so that a killed worker's work moves to a
 * live one within seconds (workflows/migrateToDynamo.ts); their long calls (a
 * DuckDB COPY, a MySQL export query, an S3 transfer of a large file) give no
 * chance to heartbeat between rows, and without a clock one call longer than
 * the timeout would have a healthy worker's attempt timed out and retried,
 * each retry redoing the same long call. The worker sends at most one
 * heartbeat a second (worker/main.ts, maxHeartbeatThrottleInterval), so this
 * clock adds no calls to the server beyond that.
 */
import { Context } from '@temporalio/activity';

const EVERY_MS = 1000;

/** `work`, heartbeating `details()` (the activity's checkpoint, read at each beat) until it settles. */
export async function heartbeatWhile<T>(details: () => unknown, work: () => Promise<T>): Promise<T> {
  const context = Context.current();
  const beat = () => context.heartbeat(details());
  beat();
  const timer = setInterval(beat, EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
