/**
 * `ferry migrate SPEC` and `ferry resume WORKFLOW_ID`: start (or restart) a
 * migration, draw its progress until it ends, print the report.
 */
import { CancelledFailure } from '@temporalio/common';
import { FerryClient, WorkflowFailedError, type MigrationHandle, type MigrationProgress, type MigrationReport } from '../client.js';
import type { ApplyLag } from '../capture/lag.js';
import { loadConfig } from '../config.js';
import { readSpecFile } from '../specFile.js';
import { workflowUrl } from './smoke.js';

export interface RunOptions {
  embeddedWorker: boolean;
  say: (line: string) => void;
}

function bar(percent: number, width = 30): string {
  const full = Math.round((percent / 100) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

/** Apply's lag in words, by the measure approveCutover uses: a lag it would not act on is not shown as a figure alone. */
export function describeLag(lag: ApplyLag | undefined): string {
  if (!lag) return 'apply lag not known yet';
  const figure = lag.maxMillisBehind === Number.MAX_SAFE_INTEGER ? '' : ` (at least ${lag.maxMillisBehind.toLocaleString('en')} ms so far)`;
  return lag.ready ? `apply ${lag.maxMillisBehind.toLocaleString('en')} ms behind the stream` : `apply lag not known yet: ${lag.notReady}${figure}`;
}

/** `rowsPerSecond`: measured by the watcher since it first saw the bulk phase, so rows done before (reused partitions, or before `ferry watch` attached) do not inflate it. */
function progressLine(p: MigrationProgress, rowsPerSecond: number): string {
  if (p.phase === 'catch-up' && p.capture?.apply?.length) {
    const applied = p.capture.apply.reduce((n, a) => n + a.applied, 0);
    return `catch-up… ${applied.toLocaleString('en')} changes applied, ${describeLag(p.capture.lag)}`;
  }
  if (p.phase !== 'bulk') return `${p.phase}…`;
  const rows = p.rowsDone + p.rowsInFlight;
  const eta = rowsPerSecond > 0 ? Math.max(0, Math.round((p.plannedRows - rows) / rowsPerSecond)) : undefined;
  return `${bar(p.percent)} ${p.percent.toFixed(1)}% ${rows.toLocaleString('en')}/${p.plannedRows.toLocaleString('en')} rows ${Math.round(rowsPerSecond).toLocaleString('en')} rows/s ETA ${eta === undefined ? '?' : `${eta}s`}${p.paused ? ' (paused)' : ''}`;
}

/** Draws the run's progress until it ends; without a terminal, a line every 5 s, labelled with the command's name. */
export async function watch(migration: MigrationHandle, say: (line: string) => void, label = 'migrate'): Promise<MigrationReport> {
  let baseline: { rows: number; at: number } | undefined;
  let done = false;
  const tty = process.stdout.isTTY;
  let lastPrinted = 0;
  let noted = false;
  const retriesSeen = new Set<string>();
  const draw = async () => {
    while (!done) {
      try {
        const progress = await migration.progress();
        if (progress.capture?.resumeNote && !noted) {
          noted = true;
          if (tty) process.stdout.write('\r\x1b[2K');
          say(`${label}: ${progress.capture.resumeNote}`);
        }
        for (const r of progress.retrying ?? []) {
          // Once per failed attempt: a transient failure shows, and one that keeps coming back shows each time.
          const seen = `${r.activity} ${r.attempt}`;
          if (retriesSeen.has(seen)) continue;
          retriesSeen.add(seen);
          if (tty) process.stdout.write('\r\x1b[2K');
          say(`${label}: retrying ${r.activity} (attempt ${r.attempt}): ${r.lastFailure}`);
        }
        const rows = progress.rowsDone + progress.rowsInFlight;
        const now = Date.now();
        if (progress.phase === 'bulk' && !baseline) baseline = { rows, at: now };
        const rowsPerSecond = baseline && now > baseline.at ? (rows - baseline.rows) / ((now - baseline.at) / 1000) : 0;
        const line = progressLine(progress, rowsPerSecond);
        if (tty) process.stdout.write(`\r\x1b[2K${line}`);
        else if (now - lastPrinted > 5000) {
          say(`${label}: ${line}`);
          lastPrinted = now;
        }
      } catch {
        /* no worker has picked the run up yet */
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  const drawing = draw();
  try {
    return await migration.result();
  } catch (err) {
    if (err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure) {
      const id = migration.workflowId;
      throw new Error(`${id} was aborted (\`ferry abort\`, or cancelled in Temporal) and nothing of it runs any more; \`ferry resume ${id}\` goes on from its finished partitions`);
    }
    throw err;
  } finally {
    done = true;
    await drawing;
    if (tty) process.stdout.write('\n');
  }
}

export function printReport(report: MigrationReport, say: (line: string) => void): void {
  for (const t of report.tables) {
    say(
      `report: ${t.table} → ${t.targetTable}: ${t.rows} rows → ${t.items} items in ${t.partitions} partitions, ${t.deadLetters} dead letters; ` +
        `export ${t.exportRowsPerSecond} rows/s, transform ${t.transformRowsPerSecond} rows/s, load ${t.loadItemsPerSecond} items/s`,
    );
  }
  const reused = report.partitions.filter((p) => p.reused).length;
  const resumed = report.partitions.filter((p) => p.loadResumedFrom > 0).length;
  const capture = report.capture;
  if (capture) {
    say(
      `report: capture: ${capture.events} changes shipped to ${capture.stream} from ${capture.resumedFrom.file}:${capture.resumedFrom.position} to ${capture.end.file}:${capture.end.position}` +
        `${capture.resumeNote ? ` (${capture.resumeNote})` : ''}; applied ${capture.apply.reduce((n, a) => n + a.applied, 0)}, dropped as stale ${capture.apply.reduce((n, a) => n + a.stale, 0)}` +
        `${capture.cutover ? `; cutover froze writes for ${capture.cutover.freezeMs} ms` : ''}`,
    );
  }
  say(`report: ${report.rows} rows, ${report.items} items in ${(report.durationMs / 1000).toFixed(1)} s (${report.rowsPerSecond} rows/s end to end); ${reused} partitions reused from an earlier run, ${resumed} loads resumed from a checkpoint`);
}

async function withWorker<T>(embedded: boolean, work: () => Promise<T>): Promise<T> {
  if (!embedded) return work();
  const { createWorker } = await import('../../worker/main.js');
  const worker = await createWorker(loadConfig());
  return worker.runUntil(work());
}

/**
 * Ctrl-C or SIGTERM while a command watches a run. Listening takes over Node's default exit on the
 * signal; an embedded worker's runtime also shuts that worker down on it.
 */
export function interruption(): { fired: () => boolean; race: <T>(work: Promise<T>) => Promise<T>; dispose: () => void } {
  let fired = false;
  let handler: (signal: NodeJS.Signals) => void = () => {};
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    handler = (signal) => {
      fired = true;
      resolve(signal);
    };
  });
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    fired: () => fired,
    /** `work`, or an error as soon as the signal comes. */
    race: <T>(work: Promise<T>) => Promise.race([work, signalled.then((signal) => Promise.reject(new Error(`${signal} while watching`)))]),
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** A run is durable: stopping the command that watched it stops neither it nor the workers polling its task queue. */
export function interruptedWhileWatching(workflowId: string, queue: string, embeddedWorker: boolean): Error {
  const where = embeddedWorker
    ? `this command's worker has stopped, so it waits for a worker on task queue ${queue} (\`FERRY_TASK_QUEUE=${queue} ferry worker\`), which goes on from its checkpoints`
    : `the workers on task queue ${queue} go on with it`;
  return new Error(`interrupted: ${workflowId} is still running in Temporal; ${where}. \`ferry watch ${workflowId}\` shows it again, \`ferry abort ${workflowId}\` stops it`);
}

/** Starts a run with a worker (unless told otherwise), draws its progress and prints its report. */
async function runWatched(
  start: (ferry: FerryClient, config: ReturnType<typeof loadConfig>) => Promise<{ migration: MigrationHandle; announce: string }>,
  options: RunOptions,
): Promise<MigrationReport> {
  const config = loadConfig();
  const ferry = await FerryClient.connect(config);
  const interrupted = interruption();
  let workflowId: string | undefined;
  try {
    return await withWorker(options.embeddedWorker, async () => {
      const { migration, announce } = await start(ferry, config);
      workflowId = migration.workflowId;
      options.say(`${announce}; watch it at ${workflowUrl(config.temporal, migration.workflowId)}`);
      const report = await interrupted.race(watch(migration, options.say));
      printReport(report, options.say);
      return report;
    });
  } catch (err) {
    if (!interrupted.fired() || workflowId === undefined) throw err;
    throw interruptedWhileWatching(workflowId, config.temporal.taskQueue, options.embeddedWorker);
  } finally {
    interrupted.dispose();
    await ferry.close();
  }
}

export async function runMigrate(specFile: string, options: RunOptions): Promise<MigrationReport> {
  const spec = readSpecFile(specFile);
  return runWatched(async (ferry) => {
    const migration = await ferry.startMigration(spec);
    return { migration, announce: `migrate: started ${migration.workflowId}` };
  }, options);
}

/** `ferry verify SPEC`: prints each table's comparison and the first mismatches; false when anything differs. */
export async function runVerify(specFile: string, options: RunOptions & { maxMismatches: number }): Promise<boolean> {
  const spec = readSpecFile(specFile);
  const config = loadConfig();
  const ferry = await FerryClient.connect(config);
  try {
    const report = await withWorker(options.embeddedWorker, async () => {
      options.say(`verify: comparing the source of ${spec.name} with its target`);
      return ferry.verify(spec, { maxMismatches: options.maxMismatches });
    });
    for (const t of report.tables) {
      const verdict = t.extra === 0 && t.differing === 0 && t.missing === 0 ? 'match' : 'DIFFER';
      options.say(
        `verify: ${t.table} → ${t.targetTable}: ${verdict}: ${t.sourceItems} source items in ${t.partitions} partitions, ${t.targetItems} found in the target, ` +
          `${t.differing} differing, ${t.missing} missing, ${t.extra} extra; checksums ${t.sourceChecksum} (source) ${t.targetChecksum} (target)`,
      );
      for (const m of t.mismatches) options.say(`verify:   ${m.key}\n    source: ${m.source}\n    target: ${m.target}`);
    }
    options.say(`verify: ${report.ok ? 'the target equals the source' : 'the target differs from the source'}`);
    return report.ok;
  } finally {
    await ferry.close();
  }
}

export async function runResume(workflowId: string, options: RunOptions & { specFile?: string; skipDdl?: string[] }): Promise<MigrationReport> {
  const spec = options.specFile === undefined ? undefined : readSpecFile(options.specFile);
  const skipDdl = options.skipDdl ?? [];
  return runWatched(async (ferry, config) => {
    const migration = await ferry.resumeMigration(workflowId, { taskQueue: config.temporal.taskQueue, spec, skipDdl });
    const passing = skipDdl.length ? `, capture going on past the schema change at ${skipDdl.join(', ')}` : '';
    return { migration, announce: `resume: started a new run of ${workflowId}${spec ? ' with the revised spec' : ''}, reusing finished partitions${passing}` };
  }, options);
}
