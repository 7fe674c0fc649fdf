/**
 * Operating a running migration from ferry's CLI, however it was started
 * (`ferry migrate`, the Temporal CLI or Web UI, the typed client): `ferry
 * status`, `watch`, `pause`, `continue`, `throttle`, `cutover` and `abort`;
 * `ferry list` names them.
 * Each names the migration by its workflow id (the spec's name) and refuses,
 * saying why, a run that does not exist, is not a migration or has ended.
 */
import { WorkflowFailedError, type WorkflowExecutionDescription } from '@temporalio/client';
import { FerryClient, type MigrationHandle, type MigrationProgress } from '../client.js';
import { loadConfig } from '../config.js';
import { describeFailure } from '../temporal.js';
import { describeLag, printReport, watch } from './migrate.js';
import { workflowUrl } from './smoke.js';

type Say = (line: string) => void;

/** Queries are answered by workers: with none polling, Temporal holds the query rather than failing it. */
const QUERY_TIMEOUT_MS = 10_000;

interface Migration {
  handle: MigrationHandle;
  description: WorkflowExecutionDescription;
  /** RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT, CONTINUED_AS_NEW, in lower case. */
  status: string;
}

async function findMigration(ferry: FerryClient, workflowId: string): Promise<Migration> {
  const description = await ferry.describeMigration(workflowId);
  return { handle: ferry.getMigration(workflowId), description, status: description.status.name.toLowerCase() };
}

async function progressOf(migration: Migration): Promise<MigrationProgress> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no worker answered ${migration.handle.workflowId}'s progress query in ${QUERY_TIMEOUT_MS / 1000} s: is a worker polling task queue ${migration.description.taskQueue}? (\`FERRY_TASK_QUEUE=${migration.description.taskQueue} ferry worker\` runs one)`)),
      QUERY_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([migration.handle.progress(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `work` with a client connected for it, closed afterwards. */
async function withClient<T>(work: (ferry: FerryClient) => Promise<T>): Promise<T> {
  const ferry = await FerryClient.connect(loadConfig());
  try {
    return await work(ferry);
  } finally {
    await ferry.close();
  }
}

/** Runs an operation on the migration `workflowId`, with a client connected for it. */
function withMigration<T>(workflowId: string, operate: (migration: Migration, ferry: FerryClient) => Promise<T>): Promise<T> {
  return withClient(async (ferry) => operate(await findMigration(ferry, workflowId), ferry));
}

/** Runs an operation on a migration that must still be running; `verb` names it in the refusal. */
function withRunningMigration<T>(workflowId: string, verb: string, operate: (migration: Migration) => Promise<T>): Promise<T> {
  return withMigration(workflowId, async (migration) => {
    if (migration.status !== 'running') throw new Error(`migration ${workflowId} is not running (it is ${migration.status}): nothing to ${verb}`);
    return operate(migration);
  });
}

/** The bulk copy's partitions over all tables: planned, and finished. */
function partitionCounts(p: MigrationProgress): { partitions: number; partitionsDone: number } {
  return { partitions: p.tables.reduce((n, t) => n + t.partitions, 0), partitionsDone: p.tables.reduce((n, t) => n + t.partitionsDone, 0) };
}

/** The state of the bulk copy and of capture, in one line each. */
function describeProgress(p: MigrationProgress): string[] {
  const { partitions, partitionsDone } = partitionCounts(p);
  const budget = p.writeBudget === undefined ? 'no write budget' : `write budget ${p.writeBudget.toLocaleString('en')} items/s`;
  const paused = p.paused ? 'PAUSED (`ferry continue` starts partitions again)' : 'not paused';
  const bulk = p.tables.length
    ? `${(p.rowsDone + p.rowsInFlight).toLocaleString('en')} of ${p.plannedRows.toLocaleString('en')} rows (${p.percent.toFixed(1)}%); ` +
      `${partitionsDone} of ${partitions} partitions done${p.partitionsRunning.length ? `, running: ${p.partitionsRunning.join(', ')}` : ''}`
    : 'no partition planned yet';
  const lines = [`phase ${p.phase}; ${bulk}; ${paused}; ${budget}`];
  if (p.capture) {
    const apply = p.capture.apply ?? [];
    const lag = apply.length ? `${describeLag(p.capture.lag)}, ${apply.reduce((n, a) => n + a.applied, 0).toLocaleString('en')} changes applied` : 'apply not running';
    lines.push(`capture into ${p.capture.stream} from ${p.capture.start.file}:${p.capture.start.position}; ${lag}`);
  }
  for (const r of p.retrying ?? []) lines.push(`retrying ${r.activity} (attempt ${r.attempt}): ${r.lastFailure}`);
  if (p.error) lines.push(`error: ${p.error}`);
  return lines;
}

/** `ferry status ID`: one snapshot; an ended run shows its report or its failure. */
export async function runStatus(workflowId: string, say: Say): Promise<void> {
  await withMigration(workflowId, async (migration, ferry) => {
    say(`status: ${workflowId}: ${migration.status}; ${workflowUrl(ferry.config.temporal, workflowId)}`);
    if (migration.status === 'running') {
      for (const line of describeProgress(await progressOf(migration))) say(`status: ${line}`);
    } else if (migration.status === 'completed') {
      printReport(await migration.handle.result(), say);
    } else if (migration.status === 'cancelled') {
      say(`status: it was aborted (cancelled); \`ferry resume ${workflowId}\` starts a new run that reuses every finished partition`);
    } else {
      const cause = await migration.handle.result().then(
        () => 'no failure recorded',
        (err: unknown) => describeFailure(err instanceof WorkflowFailedError && err.cause ? err.cause : err),
      );
      say(`status: ${cause}`);
      say(`status: fix the cause, then \`ferry resume ${workflowId}\` starts a new run that reuses every finished partition`);
    }
  });
}

/** `ferry watch ID`: the progress bar of `ferry migrate`, for a run started anywhere; ends with its report. */
export async function runWatch(workflowId: string, say: Say): Promise<void> {
  await withMigration(workflowId, async (migration, ferry) => {
    say(`watch: ${workflowId} (${migration.status}); also at ${workflowUrl(ferry.config.temporal, workflowId)}`);
    printReport(await watch(migration.handle, say, 'watch'), say);
  });
}

const PAUSABLE_PHASES: ReadonlySet<MigrationProgress['phase']> = new Set(['preflight', 'planning', 'bulk']);

/** `ferry pause ID`: no new partition starts; those in flight finish. */
export async function runPause(workflowId: string, say: Say): Promise<void> {
  await withRunningMigration(workflowId, 'pause', async (migration) => {
    const before = await progressOf(migration);
    if (!PAUSABLE_PHASES.has(before.phase)) {
      throw new Error(`pause holds back the bulk copy's partitions, and ${workflowId} is past them (phase ${before.phase}): nothing to pause. To hold a migration before its cutover, give its spec capture.cutover "manual"`);
    }
    await migration.handle.pause();
    const after = await progressOf(migration);
    const inFlight = after.partitionsRunning.length ? `; partitions in flight finish: ${after.partitionsRunning.join(', ')}` : '';
    say(`pause: ${workflowId} starts no new partition${inFlight}. \`ferry continue ${workflowId}\` goes on`);
  });
}

/** `ferry continue ID`: partitions start again after `ferry pause`. */
export async function runContinue(workflowId: string, say: Say): Promise<void> {
  await withRunningMigration(workflowId, 'continue', async (migration) => {
    const before = await progressOf(migration);
    await migration.handle.resume();
    say(before.paused ? `continue: ${workflowId} starts partitions again` : `continue: ${workflowId} was not paused; nothing changed`);
  });
}

/** Parses `ferry throttle`'s budget: items per second, or `off` for none. */
export function parseWriteBudget(value: string): number | null {
  if (value === 'off') return null;
  const itemsPerSecond = Number(value);
  if (value.trim() === '' || !Number.isFinite(itemsPerSecond) || itemsPerSecond <= 0) {
    throw new Error(`the write budget must be a positive number of items per second, or "off" for no limit; got "${value}"`);
  }
  return itemsPerSecond;
}

/** `ferry throttle ID BUDGET`: the setWriteBudget Update, validated by the workflow and answered. */
export async function runThrottle(workflowId: string, value: string, say: Say): Promise<void> {
  const itemsPerSecond = parseWriteBudget(value);
  await withRunningMigration(workflowId, 'throttle', async (migration) => {
    await migration.handle.setWriteBudget(itemsPerSecond);
    const { phase } = await progressOf(migration);
    const budget = itemsPerSecond === null ? 'no write budget: the load writes as fast as DynamoDB takes it' : `a write budget of ${itemsPerSecond.toLocaleString('en')} items/s, shared by the partitions loading`;
    const when = PAUSABLE_PHASES.has(phase) ? 'loading partitions take it up within about 3 s' : `it paces the bulk load only, and ${workflowId} is past it (phase ${phase})`;
    say(`throttle: ${workflowId} has ${budget}; ${when}`);
  });
}

/** `ferry cutover ID`: the approveCutover Update, answered with the freeze and what it checked. */
export async function runCutover(workflowId: string, say: Say): Promise<void> {
  await withRunningMigration(workflowId, 'cut over', async (migration) => {
    const result = await migration.handle.approveCutover();
    say(`cutover: ${workflowId} now routes to DynamoDB; writes were frozen for ${result.freezeMs} ms; final binlog position ${result.position.file}:${result.position.position}`);
    say(`cutover: inside the freeze, the ${result.check.items} items touched by the ${result.check.changes} changes of the last ${result.check.coveredMs} ms matched the source`);
  });
}

/** `ferry abort ID`: cancels the migration and waits until nothing of it runs; says how it ended and what is kept. */
export async function runAbort(workflowId: string, say: Say): Promise<void> {
  await withRunningMigration(workflowId, 'abort', async (migration) => {
    // Also proves a worker polls: the run stops only when one handles the cancellation.
    const before = await progressOf(migration);
    say(
      before.phase === 'cutover'
        ? `abort: ${workflowId} is in its cutover, which an abort does not interrupt: it flips or rolls back within spec.capture.maxFreezeMs, and the run ends with it`
        : `abort: stopping ${workflowId} (phase ${before.phase}): ${[PAUSABLE_PHASES.has(before.phase) ? 'partitions in flight stop at their next checkpoint' : '', before.capture ? 'capture and apply stop' : ''].filter(Boolean).join(', ')}…`,
    );
    const status = (await migration.handle.abort()).toLowerCase();
    if (status === 'completed') {
      printReport(await migration.handle.result(), say);
      throw new Error(`${workflowId} was not aborted: its cutover had begun and completed, and the application now routes to DynamoDB`);
    }
    // The ended run's last state, replayed by a worker.
    const after = await progressOf(migration).catch(() => before);
    const { partitions, partitionsDone } = partitionCounts(after);
    const ended = status === 'cancelled' ? 'is cancelled' : `ended ${status} before the abort took effect (${after.error ?? 'no cause recorded'})`;
    say(`abort: ${workflowId} ${ended}; nothing of it runs any more${after.capture ? ', and the application stays routed to MySQL' : ''}`);
    const kept = after.capture ? 'its finished partitions, its stream and the changes captured in it' : 'its finished partitions';
    say(`abort: ${partitionsDone} of ${partitions} partitions had finished. The target keeps what was loaded, and staging keeps ${kept}: \`ferry resume ${workflowId}\` goes on from them`);
  });
}

/** Parses `ferry list --limit`: a whole number of at least 1. */
export function parseListLimit(value: string): number {
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit must be a whole number of at least 1; got "${value}"`);
  return limit;
}

/** `ferry list`: the namespace's migrations, running ones first, one line each: the names the other commands take. */
export async function runList(options: { running: boolean; limit: number }, say: Say): Promise<void> {
  await withClient(async (ferry) => {
    const migrations = await ferry.listMigrations(options);
    const { namespace, address } = ferry.config.temporal;
    if (migrations.length === 0) {
      say(`list: no ${options.running ? 'running ' : ''}migrations in namespace ${namespace} at ${address}`);
      return;
    }
    const utc = (at: Date | undefined) => (at ? at.toISOString().slice(0, 19).replace('T', ' ') : '-');
    const rows = migrations.map((m) => [m.workflowId, m.status.toLowerCase(), m.phase ?? '-', m.percent === undefined ? '-' : `${m.percent.toFixed(1)}%`, utc(m.startTime), utc(m.closeTime)]);
    const header = ['NAME', 'STATUS', 'PHASE', 'BULK', 'STARTED (UTC)', 'ENDED (UTC)'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const row of [header, ...rows]) say(`list: ${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}`);
    if (migrations.length === options.limit) say(`list: the first ${options.limit}; --limit N shows more`);
  });
}
