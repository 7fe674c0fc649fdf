/**
 * The typed TypeScript client: start, watch, throttle, pause and resume
 * migrations from an application or a script.
 *
 *   const ferry = await FerryClient.connect();
 *   const migration = await ferry.startMigration(spec);
 *   console.log(await migration.progress());
 *   const report = await migration.result();
 */
import { Client, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowExecutionDescription } from '@temporalio/client';
import { loadConfig, type FerryConfig } from './config.js';
import { parseSpec, revisedSpecForResume, type MigrationSpecInput } from './spec.js';
import { connectClient } from './temporal.js';
import type { CutoverResult } from '../activities/cutover.js';
import type { LoadCheckpoint } from '../activities/load.js';
import { dynamoClient } from './aws.js';
import { createFence, FenceMissingError, resolveBackend, withSourceWrite, type Backend } from './capture/routing.js';
import { applyLag, readerCheckpoints, readerLag } from './capture/lag.js';
import { FerryPhase, FerryPercent } from './searchAttributes.js';
import type { MigrationProgress, MigrationReport } from '../workflows/migrateToDynamo.js';
import type { VerifyReport } from '../workflows/verifyMigration.js';

export type { Backend, CutoverResult, MigrationProgress, MigrationReport, MigrationSpecInput, VerifyReport };
export { createFence, FenceMissingError, resolveBackend, withSourceWrite };

/** A pending activity's last failure, as its innermost cause says it (the one that names the reason). */
function innermostMessage(failure: { message?: string | null; cause?: unknown } | null | undefined): string {
  let f = failure;
  while (f?.cause && (f.cause as { message?: string }).message) f = f.cause as typeof f;
  return f?.message ?? 'no failure recorded yet (timed out or the worker died)';
}

export class MigrationHandle {
  constructor(
    private readonly client: Client,
    readonly workflowId: string,
  ) {}

  private get handle() {
    return this.client.workflow.getHandle(this.workflowId);
  }

  /**
   * The `progress` Query, with the partitions still loading counted from their
   * load checkpoints (heartbeat details), so the figure moves during a long
   * partition and not only when one finishes.
   */
  async progress(): Promise<MigrationProgress> {
    const [state, description] = await Promise.all([
      this.handle.query<MigrationProgress>('progress'),
      this.handle.describe().catch(() => undefined),
    ]);
    const converter = this.client.options.loadedDataConverter.payloadConverter;
    const now = Date.now();
    const readers = readerCheckpoints(description, converter);
    const apply = readers.map((checkpoint) => {
      const { shardId, applied, stale } = checkpoint;
      return { shardId, millisBehind: readerLag(checkpoint, now), applied, stale };
    });
    let inFlight = 0;
    for (const activity of description?.raw.pendingActivities ?? []) {
      const payload = activity.activityType?.name === 'loadPartition' ? activity.heartbeatDetails?.payloads?.[0] : undefined;
      if (!payload) continue;
      const checkpoint = converter.fromPayload<LoadCheckpoint>(payload);
      if (checkpoint.of && checkpoint.partitionRows) inFlight += Math.min(1, checkpoint.done / checkpoint.of) * checkpoint.partitionRows;
    }
    const retrying = (description?.raw.pendingActivities ?? [])
      .filter((a) => (a.attempt ?? 1) > 1 || a.lastFailure)
      .map((a) => ({ activity: a.activityType?.name ?? '?', attempt: a.attempt ?? 1, lastFailure: innermostMessage(a.lastFailure) }));
    const rowsInFlight = Math.round(inFlight);
    const percent = state.plannedRows ? Math.min(100, Math.round(((state.rowsDone + rowsInFlight) / state.plannedRows) * 1000) / 10) : state.percent;
    // The measure approveCutover uses, on the same checkpoints at the same moment.
    const capture =
      state.capture && apply.length
        ? { ...state.capture, apply: apply.sort((a, b) => (a.shardId < b.shardId ? -1 : 1)), lag: applyLag(readers, state.capture.shards ?? readers.length, now) }
        : state.capture;
    return { ...state, rowsInFlight, percent, capture, ...(retrying.length ? { retrying } : {}) };
  }

  /** Changes the bulk load's write budget (items/s across all its partitions) while it runs; null lifts it. */
  async setWriteBudget(itemsPerSecond: number | null): Promise<void> {
    try {
      await this.handle.executeUpdate('setWriteBudget', { args: [itemsPerSecond] });
    } catch (err) {
      // The SDK's message is only "Workflow Update failed"; the reason is in the cause.
      if (err instanceof WorkflowUpdateFailedError && err.cause) throw new Error(`the write budget was not changed: ${err.cause.message}`, { cause: err });
      throw err;
    }
  }

  /**
   * Approves the cutover of a migration with spec.capture.cutover "manual" and
   * resolves when it is done, with the freeze in ms. Refused, with the reason,
   * outside catch-up or while apply lags more than spec.capture.maxLagMs.
   */
  async approveCutover(): Promise<CutoverResult> {
    try {
      return (await this.handle.executeUpdate('approveCutover', { args: [] })) as CutoverResult;
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError && err.cause) {
        // The reason is the innermost cause: an activity's failure wraps the ApplicationFailure that says why.
        let cause: Error = err.cause;
        while (cause.cause instanceof Error) cause = cause.cause;
        throw new Error(`the cutover was not done: ${cause.message}`, { cause: err });
      }
      throw err;
    }
  }

  /** Stops launching partitions; those in flight finish. */
  pause(): Promise<void> {
    return this.handle.signal('pause');
  }

  resume(): Promise<void> {
    return this.handle.signal('resume');
  }

  /**
   * Aborts the migration (cancels its workflow) and resolves once it has ended, with how it ended:
   * - "CANCELLED": nothing of it runs any more. Partitions in flight stopped at their next checkpoint, capture and
   *   apply stopped, the routing stays on MySQL; finished partitions and captured changes are kept for `ferry resume`.
   * - "COMPLETED": its cutover had already begun, and an abort does not interrupt a cutover; it flipped.
   * - "FAILED" (or another closed status): it ended otherwise first, e.g. a cutover that rolled back.
   * A worker must be polling the migration's task queue for it to stop.
   */
  async abort(): Promise<string> {
    await this.handle.cancel();
    await this.handle.result().catch(() => undefined);
    return this.status();
  }

  result(): Promise<MigrationReport> {
    return this.handle.result() as Promise<MigrationReport>;
  }

  async status(): Promise<string> {
    return (await this.handle.describe()).status.name;
  }
}

/** One migration as the namespace's visibility lists it: its latest run. */
export interface MigrationSummary {
  workflowId: string;
  /** RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT. */
  status: string;
  /** The FerryPhase and FerryPercent search attributes, once the run has set them. */
  phase?: string;
  percent?: number;
  startTime: Date;
  closeTime?: Date;
  taskQueue: string;
}

export class FerryClient {
  private constructor(
    readonly client: Client,
    readonly config: FerryConfig,
  ) {}

  static async connect(config: FerryConfig = loadConfig()): Promise<FerryClient> {
    return new FerryClient(await connectClient(config.temporal), config);
  }

  /** Validates the spec (throws SpecError naming each bad path) and starts the migration; its workflow id is the spec's name. */
  async startMigration(spec: MigrationSpecInput, options: { taskQueue?: string } = {}): Promise<MigrationHandle> {
    const parsed = parseSpec(spec);
    try {
      await this.client.workflow.start('migrateToDynamo', {
        taskQueue: options.taskQueue ?? this.config.temporal.taskQueue,
        workflowId: parsed.name,
        args: [spec],
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        const { address, namespace } = this.config.temporal;
        throw new Error(
          `a migration named ${parsed.name} is already running in namespace ${namespace} at ${address}: \`ferry watch ${parsed.name}\` follows it ` +
            `and \`ferry status ${parsed.name}\` shows it; to start another migration, give its spec another name`,
          { cause: err },
        );
      }
      throw err;
    }
    return new MigrationHandle(this.client, parsed.name);
  }

  getMigration(workflowId: string): MigrationHandle {
    return new MigrationHandle(this.client, workflowId);
  }

  /** The latest run of the migration `workflowId`; refuses, naming the namespace, a workflow id no migration has. */
  async describeMigration(workflowId: string): Promise<WorkflowExecutionDescription> {
    const { address, namespace } = this.config.temporal;
    let description: WorkflowExecutionDescription;
    try {
      description = await this.client.workflow.getHandle(workflowId).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        throw new Error(`no migration named ${workflowId} in namespace ${namespace} at ${address}: a migration's workflow id is its spec's name (\`ferry list\` lists them)`, { cause: err });
      }
      throw err;
    }
    if (description.type !== 'migrateToDynamo') throw new Error(`${workflowId} is a ${description.type} workflow, not a migration (migrateToDynamo)`);
    return description;
  }

  /**
   * The migrations in the namespace in Temporal's list order (running ones first, by start, then the rest by
   * end, latest first), one per workflow id: its latest run, a resumed migration's earlier runs left out.
   * `running` keeps only those still running. Visibility is eventually consistent: a run started or ended a
   * moment ago may show its previous state.
   */
  async listMigrations(options: { running?: boolean; limit?: number } = {}): Promise<MigrationSummary[]> {
    const limit = options.limit ?? 20;
    const query = `WorkflowType = 'migrateToDynamo'${options.running ? " AND ExecutionStatus = 'Running'" : ''}`;
    const found = new Map<string, MigrationSummary>();
    for await (const run of this.client.workflow.list({ query })) {
      if (found.has(run.workflowId)) continue;
      const phase = run.typedSearchAttributes.get(FerryPhase);
      const percent = run.typedSearchAttributes.get(FerryPercent);
      found.set(run.workflowId, { workflowId: run.workflowId, status: run.status.name, phase, percent, startTime: run.startTime, closeTime: run.closeTime, taskQueue: run.taskQueue });
      if (found.size >= limit) break;
    }
    return [...found.values()];
  }

  /**
   * Starts a new run of a failed, cancelled or terminated migration under the
   * same workflow id; partitions with a manifest are not redone, staged exports
   * are reused. `spec` may revise the settings in RESUMABLE_SETTINGS (error
   * policy, write budget, concurrency, the cutover's timing); any other change is refused.
   * `skipDdl` adds to `capture.skipDdl` the positions (`FILE:POSITION`) of schema
   * changes that stopped capture, which the operator decided the run may go on past.
   */
  async resumeMigration(workflowId: string, options: { taskQueue?: string; spec?: MigrationSpecInput; skipDdl?: string[] } = {}): Promise<MigrationHandle> {
    const handle = this.client.workflow.getHandle(workflowId);
    const description = await this.describeMigration(workflowId);
    if (description.status.name === 'RUNNING') throw new Error(`migration ${workflowId} is still running; only a failed, cancelled or terminated migration can be resumed`);
    if (description.status.name === 'COMPLETED') throw new Error(`migration ${workflowId} already completed; nothing to resume`);
    const history = await handle.fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const payload = started?.input?.payloads?.[0];
    if (!payload) throw new Error(`cannot read the original spec of ${workflowId} from its history`);
    const original = this.client.options.loadedDataConverter.payloadConverter.fromPayload<MigrationSpecInput>(payload);
    let spec = options.spec ?? original;
    if (options.skipDdl?.length) {
      if (!spec.capture) throw new Error(`migration ${workflowId} has no change capture; --skip-ddl applies only to a capture's SchemaChanged failure`);
      spec = { ...spec, capture: { ...spec.capture, skipDdl: [...new Set([...(spec.capture.skipDdl ?? []), ...options.skipDdl])] } };
    }
    if (spec !== original) revisedSpecForResume(parseSpec(original), spec);
    await this.client.workflow.start('migrateToDynamo', {
      taskQueue: options.taskQueue ?? description.taskQueue,
      workflowId,
      args: [spec, { resume: true }],
    });
    return new MigrationHandle(this.client, workflowId);
  }

  /**
   * Compares the source (read again, transformed as the bulk copy does) with
   * the target; resolves with counts, checksums and the first differing keys.
   * Read-only. Its workflow id is `NAME-verify-<time>`.
   */
  async verify(spec: MigrationSpecInput, options: { maxMismatches?: number; taskQueue?: string } = {}): Promise<VerifyReport> {
    const parsed = parseSpec(spec);
    return this.client.workflow.execute('verifyMigration', {
      taskQueue: options.taskQueue ?? this.config.temporal.taskQueue,
      workflowId: `${parsed.name}-verify-${new Date().toISOString().replace(/[:.]/g, '-')}`,
      args: [spec, { maxMismatches: options.maxMismatches }],
    }) as Promise<VerifyReport>;
  }

  /** Which backend serves a migrated application: `mysql` until its cutover flipped the routing record, then `dynamodb`. */
  resolveBackend(name: string, routingTable = 'ferry-routing'): Promise<Backend> {
    return resolveBackend(dynamoClient(this.config.aws), name, routingTable);
  }

  async close(): Promise<void> {
    await this.client.connection.close();
  }
}

export { WorkflowFailedError };
