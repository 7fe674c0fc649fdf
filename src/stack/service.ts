/**
 * Starting, checking and stopping one background service of the local stack.
 * Each service runs detached in its own process group, writes to its own log
 * file, and is tracked by a pid file, so `ferry stack up` run twice reuses what
 * already runs and `ferry stack down` stops exactly what `up` started.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOOPBACK } from '../config.js';

export class StackError extends Error {
  constructor(
    readonly part: string,
    reason: string,
    readonly logFile?: string,
  ) {
    super(`${part}: ${reason}${logFile ? `\n  log: ${logFile}${logTail(logFile)}` : ''}`);
    this.name = 'StackError';
  }
}

function logTail(logFile: string, lines = 15): string {
  try {
    const tail = fs.readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines);
    return tail.some((l) => l.trim() !== '') ? `\n  last lines of the log:\n${tail.map((l) => `    | ${l}`).join('\n')}` : '';
  } catch {
    return '';
  }
}

export interface ServiceDefinition {
  /** The part's name as the operator knows it: temporal, mysql, dynamodb, kinesis, s3. */
  name: string;
  /** Ports the service must own on 127.0.0.1, each with the variable that moves it. */
  ports: { port: number; variable: string }[];
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Resolves true once the service answers real requests. */
  healthy: () => Promise<boolean>;
  startTimeoutMs: number;
}

export interface ServiceState {
  name: string;
  pid?: number;
  running: boolean;
  healthy: boolean;
  logFile: string;
}

export function serviceFiles(stackDir: string, name: string) {
  const dir = path.join(stackDir, name);
  return { dir, pidFile: path.join(dir, `${name}.pid`), logFile: path.join(stackDir, 'logs', `${name}.log`) };
}

function readPid(pidFile: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid file's process, if it is still this part's: alive, and working in
 * the part's folder (every part is started there, and MariaDB and versitygw
 * move into its data folder below it). A pid file outlives a reboot or a
 * killed stack, and its number may since belong to an unrelated process,
 * which must never be signalled. Without /proc (not Linux) only liveness is known.
 */
function partPid(pidFile: string, dir: string): number | undefined {
  const pid = readPid(pidFile);
  if (pid === undefined || !alive(pid)) return undefined;
  let cwd: string;
  try {
    cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    if (!fs.existsSync('/proc/self')) return pid;
    return undefined; // another user's process (EACCES), or gone
  }
  const rel = path.relative(path.resolve(dir), cwd);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel)) ? pid : undefined;
}

/** True when something already accepts or holds the port on the loopback address. */
export function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(true));
    probe.listen({ port, host: LOOPBACK, exclusive: true }, () => probe.close(() => resolve(false)));
  });
}

async function healthyNow(def: Pick<ServiceDefinition, 'healthy'>): Promise<boolean> {
  try {
    return await def.healthy();
  } catch {
    return false;
  }
}

/** Starts the service unless it already runs; resolves once it is healthy. */
export async function startService(stackDir: string, def: ServiceDefinition): Promise<'started' | 'reused'> {
  const { dir, pidFile, logFile } = serviceFiles(stackDir, def.name);
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(path.dirname(logFile), { recursive: true });

  const existing = partPid(pidFile, dir);
  if (existing !== undefined) {
    await waitHealthy(def, existing, logFile);
    return 'reused';
  }
  fs.rmSync(pidFile, { force: true });

  for (const { port, variable } of def.ports) {
    if (await portTaken(port)) {
      throw new StackError(
        def.name,
        `port ${LOOPBACK}:${port} is already in use by another process. ` +
          `Stop that process (\`ss -ltnp 'sport = :${port}'\` shows it) or move ${def.name} to a free port with ${variable}=<port> (docs/configuration.md).`,
        logFile,
      );
    }
  }

  const log = fs.openSync(logFile, 'a');
  fs.writeSync(log, `\n--- ferry stack: starting ${def.name} at ${new Date().toISOString()}: ${def.command} ${def.args.join(' ')}\n`);
  const child = spawn(def.command, def.args, {
    cwd: def.cwd ?? dir,
    env: { ...process.env, ...def.env },
    detached: true,
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  child.unref();
  if (child.pid === undefined) {
    throw new StackError(def.name, `could not run ${def.command}: ${(await spawnError).message}`, logFile);
  }
  fs.writeFileSync(pidFile, String(child.pid));
  await waitHealthy(def, child.pid, logFile);
  return 'started';
}

async function waitHealthy(def: ServiceDefinition, pid: number, logFile: string): Promise<void> {
  const deadline = Date.now() + def.startTimeoutMs;
  while (Date.now() < deadline) {
    if (await healthyNow(def)) return;
    if (!alive(pid)) {
      throw new StackError(def.name, `the process (pid ${pid}) exited before it became healthy`, logFile);
    }
    await sleep(300);
  }
  await stopPid(pid);
  throw new StackError(def.name, `not healthy after ${Math.round(def.startTimeoutMs / 1000)} s; stopped it`, logFile);
}

async function stopPid(pid: number): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig); // the whole process group: wrappers and their children
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  signal('SIGTERM');
  for (let i = 0; i < 50 && alive(pid); i++) await sleep(200);
  if (alive(pid)) signal('SIGKILL');
}

export async function stopService(stackDir: string, name: string): Promise<boolean> {
  const { dir, pidFile } = serviceFiles(stackDir, name);
  const pid = partPid(pidFile, dir);
  fs.rmSync(pidFile, { force: true });
  if (pid === undefined) return false;
  await stopPid(pid);
  return true;
}

/**
 * A running part that does not answer one probe is probed again for a few
 * seconds: a busy machine (a garbage collection, a load test) can delay a single
 * answer, and "not answering" should mean the part is really stuck.
 */
export async function serviceState(stackDir: string, name: string, healthy: () => Promise<boolean>): Promise<ServiceState> {
  const { dir, pidFile, logFile } = serviceFiles(stackDir, name);
  const pid = partPid(pidFile, dir);
  const running = pid !== undefined;
  let answering = false;
  for (let attempt = 0; running && !answering && attempt < STATUS_PROBES; attempt++) {
    if (attempt > 0) await sleep(STATUS_PROBE_GAP_MS);
    answering = await healthyNow({ healthy });
  }
  return { name, pid: running ? pid : undefined, running, healthy: answering, logFile };
}

const STATUS_PROBES = 10;
const STATUS_PROBE_GAP_MS = 500;
