/**
 * replayChanges: apply a migration's whole change stream again, from its
 * start, to a target that already holds it. Versions make every change a
 * no-op (counted as stale), so the target does not move: the operational proof
 * that re-delivery is harmless, and the way to re-run apply after an incident.
 *
 * Workflow code: deterministic, no I/O.
 */
import { ApplicationFailure, defineQuery, proxyActivities, setHandler } from '@temporalio/workflow';
import type * as activities from '../activities/index.js';
import type { ApplyResult } from '../activities/apply.js';
import { staging } from '../src/bulk/model.js';
import { parseSpec, type MigrationSpecInput } from '../src/spec.js';

const retry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 };
const { preflight } = proxyActivities<typeof activities>({ startToCloseTimeout: '10 minutes', retry: { ...retry, maximumAttempts: 3 } });
const { listShards } = proxyActivities<typeof activities>({ startToCloseTimeout: '1 minute', retry });
const { applyChanges } = proxyActivities<typeof activities>({ startToCloseTimeout: '30 days', heartbeatTimeout: '20 seconds', retry });

/** Apply reads each shard to its end and stops: nothing is being captured into the stream now. */
export const captureCompleteQuery = defineQuery<boolean>('captureComplete');

/**
 * `options.force`: replay even though the routing says the application writes to DynamoDB, or the versions
 * table is gone (both refused otherwise: the replay would overwrite the target's newer items).
 */
export async function replayChanges(input: MigrationSpecInput, options: { force?: boolean } = {}): Promise<ApplyResult[]> {
  setHandler(captureCompleteQuery, () => true);
  const spec = parseSpec(input);
  if (!spec.capture) throw ApplicationFailure.nonRetryable(`migration ${spec.name} has no spec.capture: there is no change stream to replay`, 'NoCapture');
  // Read-only against a migrated target: the staging folder is the migration's own (resume), tables and stream exist.
  const checked = await preflight(spec, { replay: true, force: options.force === true });
  const stage = staging(spec, checked.bucket);
  const capture = checked.capture!;
  const shards = await listShards(capture.stream);
  // Versions make order irrelevant here: every change is already applied, so shards run side by side.
  return Promise.all(shards.map((s) => applyChanges(spec, stage, { stream: capture.stream, shardId: s.ShardId!, tables: checked.tables, versionsTable: capture.versionsTable })));
}
