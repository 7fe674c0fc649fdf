/**
 * ferry's command line. `ferry --help` lists the commands; docs/cli.md
 * describes each one.
 */
import { Command } from 'commander';
import { loadConfig } from '../config.js';
import { parsePartNames, stackDown, stackStatus, stackUp, StackError } from '../stack/stack.js';
import { RESUMABLE_SETTINGS } from '../spec.js';
import { describeFailure } from '../temporal.js';
import { runMigrate, runResume, runVerify } from './migrate.js';
import { runDemo } from './demo.js';
import { parseListLimit, runAbort, runContinue, runCutover, runList, runPause, runStatus, runThrottle, runWatch } from './operate.js';
import { runSmoke } from './smoke.js';

const say = (line: string) => console.log(`ferry ${line}`);

// `ferry stack status | head`: a reader that stops reading is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

async function up(parts: string[]): Promise<void> {
  const started = Date.now();
  await stackUp(parsePartNames(parts), (line) => say(`stack: ${line}`));
  say(`stack: ready in ${((Date.now() - started) / 1000).toFixed(1)} s; Temporal Web UI at ${loadConfig().temporal.uiUrl}`);
}

export function buildProgram(): Command {
  const program = new Command('ferry')
    .description('Near-zero-downtime migrations from MySQL to DynamoDB, orchestrated by Temporal.')
    .showHelpAfterError();

  const stack = program.command('stack').description('the local stand-ins for Temporal, MySQL, DynamoDB, Kinesis and S3, on 127.0.0.1');
  stack
    .command('up')
    .argument('[parts...]', 'parts to start: temporal, mysql, dynamodb, kinesis, s3 (default: all)')
    .description('install (first run only, cached) and start the local stack; reuses parts already running')
    .action(up);
  stack
    .command('down')
    .argument('[parts...]', 'parts to stop (default: all)')
    .description('stop the local stack; its data stays under .stack/ for the next `up`')
    .action(async (parts: string[]) => stackDown(parsePartNames(parts), (line) => say(`stack: ${line}`)));
  stack
    .command('status')
    .description('show which parts run, whether they answer, and where their logs are')
    .action(async () => {
      const states = await stackStatus();
      for (const s of states) {
        const state = s.healthy ? 'healthy' : s.running ? 'running, not answering' : 'stopped';
        console.log(`${s.name.padEnd(9)} ${state.padEnd(23)} ${s.pid ? `pid ${s.pid}`.padEnd(11) : ''.padEnd(11)} ${s.address}\n${''.padEnd(9)} log: ${s.logFile}`);
      }
      if (!states.every((s) => s.healthy)) process.exitCode = 3;
    });

  program
    .command('worker')
    .description('run a ferry worker on the task queue (FERRY_TASK_QUEUE) until interrupted')
    .action(async () => {
      const { createWorker, installRuntime } = await import('../../worker/main.js');
      installRuntime('INFO');
      const config = loadConfig();
      const worker = await createWorker(config);
      say(`worker: task queue ${config.temporal.taskQueue} on ${config.temporal.address}`);
      await worker.run();
    });

  program
    .command('smoke')
    .description('run the smoke workflow: one round trip through MySQL, DuckDB + S3, DynamoDB and Kinesis')
    .option('--no-embedded-worker', 'rely on workers already polling the task queue instead of starting one in this process')
    .action(async (options: { embeddedWorker: boolean }) => {
      await runSmoke({ embeddedWorker: options.embeddedWorker, say });
    });

  program
    .command('migrate')
    .argument('<spec>', 'migration spec, a JSON file, or YAML when it ends in .yaml/.yml (docs/spec.md)')
    .description('copy MySQL tables into DynamoDB as the spec says, with a live progress bar, then print the report')
    .option('--no-embedded-worker', 'rely on workers already polling the task queue instead of starting one in this process')
    .action(async (specFile: string, options: { embeddedWorker: boolean }) => {
      await runMigrate(specFile, { embeddedWorker: options.embeddedWorker, say });
    });

  program
    .command('resume')
    .argument('<workflow-id>', 'the failed migration (its spec name)')
    .description('start a new run of a failed migration with its original spec; finished partitions are not redone')
    .option('--spec <file>', `a revised spec: may change only ${RESUMABLE_SETTINGS.join(', ')}`)
    .option(
      '--skip-ddl <file:position>',
      'go on past the schema change a SchemaChanged failure names at FILE:POSITION (added to capture.skipDdl); repeat for several',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--no-embedded-worker', 'rely on workers already polling the task queue instead of starting one in this process')
    .action(async (workflowId: string, options: { embeddedWorker: boolean; spec?: string; skipDdl: string[] }) => {
      await runResume(workflowId, { embeddedWorker: options.embeddedWorker, specFile: options.spec, skipDdl: options.skipDdl, say });
    });

  program
    .command('list')
    .option('--running', 'only the migrations still running')
    .option('--limit <n>', 'how many, running ones first, then the latest ended', parseListLimit, 20)
    .description('list the migrations in the namespace, running ones first, then the latest ended, one line each (its latest run): name, status, phase, bulk copy done, started, ended')
    .action(async (options: { running?: boolean; limit: number }) => runList({ running: options.running === true, limit: options.limit }, say));

  const operations: [name: string, description: string, run: (workflowId: string, say: (line: string) => void) => Promise<void>][] = [
    ['status', "show a migration's state once: phase, rows, partitions, paused or not, write budget, apply lag; an ended run's report or failure", runStatus],
    ['watch', 'draw the progress bar of a migration started anywhere (ferry, Temporal CLI or Web UI, the typed client) until it ends, then print its report', runWatch],
    ['pause', "stop starting the bulk copy's partitions; those in flight finish", runPause],
    ['continue', 'start partitions again after `ferry pause`', runContinue],
  ];
  const migrationId = '<workflow-id>';
  const migrationIdHelp = 'the migration: its workflow id, which is its spec name';
  for (const [name, description, run] of operations) {
    program
      .command(name)
      .argument(migrationId, migrationIdHelp)
      .description(description)
      .action(async (workflowId: string) => run(workflowId, say));
  }
  program
    .command('throttle')
    .argument(migrationId, migrationIdHelp)
    .argument('<items-per-second>', 'the whole migration\'s write budget for the bulk load, or "off" for none')
    .description("change a running migration's write budget (the setWriteBudget Update)")
    .action(async (workflowId: string, value: string) => runThrottle(workflowId, value, say));

  program
    .command('cutover')
    .argument('<workflow-id>', 'the migration (its spec name), in catch-up, with spec.capture.cutover "manual"')
    .description('approve the cutover: freeze writes at the fence, drain, flip the routing record, release; prints the freeze in ms')
    .action(async (workflowId: string) => runCutover(workflowId, say));

  program
    .command('abort')
    .argument('<workflow-id>', 'the migration (its spec name), still running')
    .description('stop a migration and wait until nothing of it runs: partitions in flight stop at a checkpoint, capture and apply stop, the routing stays on MySQL; a cutover already begun is not interrupted. `ferry resume` goes on from what was kept')
    .action(async (workflowId: string) => runAbort(workflowId, say));

  program
    .command('verify')
    .argument('<spec>', 'the migration spec (JSON, or YAML for .yaml/.yml)')
    .description('compare the source, read again and transformed as the bulk copy does, with the target: counts, checksums, first differing keys; exit 1 when they differ')
    .option('--max-mismatches <n>', 'differing keys to show per table', (v) => Number(v), 10)
    .option('--no-embedded-worker', 'rely on workers already polling the task queue instead of starting one in this process')
    .action(async (specFile: string, options: { embeddedWorker: boolean; maxMismatches: number }) => {
      const ok = await runVerify(specFile, { embeddedWorker: options.embeddedWorker, maxMismatches: options.maxMismatches, say });
      if (!ok) process.exitCode = 1;
    });

  program
    .command('demo')
    .description('bring the local stack up and run the near-zero-downtime demo: seed purchase, write to it while migrating with the grouping mapping, catch up, cut over, verify, report')
    .option('--rows <n>', 'rows to seed the purchase table with', (v) => Number(v), 200_000)
    .action(async (options: { rows: number }) => {
      if (!Number.isInteger(options.rows) || options.rows < 100) throw new Error(`--rows must be a whole number of at least 100; got ${options.rows}`);
      await up([]);
      await runDemo({ rows: options.rows, say });
    });

  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    if (err instanceof StackError) console.error(`ferry ${err.message}`);
    else console.error(`ferry: ${describeFailure(err)}`);
    process.exit(1);
  });
