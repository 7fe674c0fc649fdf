/**
 * The ferry worker: registers every workflow and activity on the task queue.
 * Configured from the environment (docs/configuration.md); run as many as you
 * like on as many machines as you like: they share the task queue.
 */
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import path from 'node:path';
import * as activities from '../activities/index.js';
import { resolveRegion } from '../src/aws.js';
import { scannerEngine } from '../src/bulk/scannerExport.js';
import { loadConfig, projectRoot } from '../src/config.js';
import { dataConverterFromEnv } from '../src/codec.js';
import { connectionOptions } from '../src/temporal.js';

const LOG_LEVELS: LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
let runtimeInstalled = false;

/**
 * Sets the worker's log level (FERRY_LOG_LEVEL, default `fallback`) once per
 * process, before the first worker or connection exists.
 */
export function installRuntime(fallback: LogLevel): void {
  if (runtimeInstalled) return;
  const wanted = (process.env.FERRY_LOG_LEVEL ?? fallback).toUpperCase() as LogLevel;
  if (!LOG_LEVELS.includes(wanted)) {
    throw new Error(`FERRY_LOG_LEVEL=${process.env.FERRY_LOG_LEVEL} is not a log level: use one of ${LOG_LEVELS.join(', ')}`);
  }
  Runtime.install({ logger: new DefaultLogger(wanted) });
  runtimeInstalled = true;
}

export async function createWorker(config = loadConfig()): Promise<Worker> {
  installRuntime('WARN');
  await resolveRegion(config.aws);
  // Loading DuckDB's MySQL extension takes a few hundred milliseconds of CPU: do it now, not in the first export.
  // A failure is remembered and reported by the exports, which then use another reader.
  scannerEngine().catch(() => {});
  const connection = await NativeConnection.connect(connectionOptions(config.temporal));
  const dataConverter = dataConverterFromEnv();
  return Worker.create({
    connection,
    // FERRY_PAYLOAD_KEY: what the workflows put in history is encrypted (src/codec.ts).
    ...(dataConverter ? { dataConverter } : {}),
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: path.join(projectRoot(), 'workflows', 'index.ts'),
    activities,
    // Heartbeats are how a killed worker is noticed, and apply's lag reaches a cutover's gate and the progress
    // line as heartbeat details (src/capture/lag.ts): at 5 s the gate read details up to 5 s old, missing a page
    // just read or still counting one applied seconds before.
    maxHeartbeatThrottleInterval: '1 second',
  });
}

async function main(): Promise<void> {
  installRuntime('INFO');
  const config = loadConfig();
  const worker = await createWorker(config);
  console.log(`ferry worker: task queue ${config.temporal.taskQueue} on ${config.temporal.address} (namespace ${config.temporal.namespace})`);
  await worker.run();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
