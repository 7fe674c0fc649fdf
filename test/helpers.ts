/**
 * What the tests share: the project's paths, a way to run ferry's CLI and
 * worker as real child processes, free loopback ports, the plainest mapping,
 * and reading a whole DynamoDB table.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { dynamoClient } from '../src/aws.js';
import { FerryClient, type MigrationSpecInput } from '../src/client.js';
import { loadConfig, projectRoot } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { TEMPORAL_CLI_VERSION } from '../src/stack/install.js';

export const ROOT = projectRoot();
export const TSX_LOADER = `file://${path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')}`;

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ferry ARGS` as a user would, from the repository root. */
export function runFerry(args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  return runProcess(path.join(ROOT, 'ferry'), args, env);
}

export function runProcess(command: string, args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Starts a ferry worker in its own Node process (no wrapper in between, so a
 * SIGKILL really kills the worker) and resolves once it polls its task queue.
 */
export async function startWorkerProcess(taskQueue: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, path.join(ROOT, 'worker', 'main.ts')], {
    cwd: ROOT,
    env: { ...process.env, FERRY_TASK_QUEUE: taskQueue, FERRY_LOG_LEVEL: 'INFO', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start within 120 s:\n${output}`)), 120_000);
    const watch = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ferry worker: task queue')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', watch);
    child.stderr!.on('data', watch);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code} before polling:\n${output}`));
    });
  });
  return child;
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}

/** A worker in its own process on `taskQueue` and a client of that queue: what each end-to-end test file starts. */
export async function startFerry(taskQueue: string): Promise<{ worker: ChildProcess; ferry: FerryClient }> {
  const worker = await startWorkerProcess(taskQueue);
  try {
    const config = loadConfig();
    return { worker, ferry: await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } }) };
  } catch (err) {
    await stopProcess(worker);
    throw err;
  }
}

/** Undoes startFerry (either may be missing if it failed) and drops the file's source databases. */
export async function stopFerry(started: { worker?: ChildProcess; ferry?: FerryClient }, databases: string[]): Promise<void> {
  await started.ferry?.close();
  if (started.worker) await stopProcess(started.worker);
  const db = await connectMysql(loadConfig().mysqlUrl);
  try {
    for (const database of databases) await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
  } finally {
    await db.end();
  }
}

/** The Temporal CLI the stack built (or FERRY_TEMPORAL_BIN). */
export function temporalCli(): string {
  return process.env.FERRY_TEMPORAL_BIN ?? path.join(process.env.FERRY_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'ferry'), `temporal-${TEMPORAL_CLI_VERSION}`, 'temporal');
}

/** A loopback port nobody holds right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The mapping rules for one table copied record to record into `target`, keyed by its `id` column. */
export function idMapping(database: string, table: string, target: string): MigrationSpecInput['mapping'] {
  const locator = { 'schema-name': database, 'table-name': table };
  return {
    rules: [
      { 'rule-type': 'selection', 'rule-id': '1', 'rule-name': '1', 'object-locator': locator, 'rule-action': 'include' },
      { 'rule-type': 'object-mapping', 'rule-id': '2', 'rule-name': '2', 'rule-action': 'map-record-to-record', 'object-locator': locator, 'target-table-name': target, 'mapping-parameters': { 'partition-key-name': 'id' } },
    ],
  };
}

/** Every item of `table`, read consistently in parallel segments. */
export async function scanAll(table: string): Promise<Record<string, AttributeValue>[]> {
  const dynamo = dynamoClient(loadConfig().aws);
  const segments = 4;
  const parts = await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      const items: Record<string, AttributeValue>[] = [];
      let start: Record<string, AttributeValue> | undefined;
      do {
        const page = await dynamo.send(new ScanCommand({ TableName: table, Segment: segment, TotalSegments: segments, ExclusiveStartKey: start, ConsistentRead: true }));
        items.push(...(page.Items ?? []));
        start = page.LastEvaluatedKey;
      } while (start);
      return items;
    }),
  );
  return parts.flat();
}

/** The activities a run scheduled that had not ended (completed, failed, cancelled, timed out) when the run did, by type. */
export async function activitiesLeftRunning(ferry: FerryClient, workflowId: string): Promise<string[]> {
  const events = (await ferry.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const open = new Map<string, string>();
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes) open.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    const ended = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskCanceledEventAttributes ?? e.activityTaskTimedOutEventAttributes;
    if (ended) open.delete(String(ended.scheduledEventId));
  }
  return [...open.values()];
}

/**
 * A worker of its own task queue that reaches `service` (Kinesis unless told) through a HoldingProxy, and a client
 * for that queue.
 * `stop` ends it all after a test, passed or not: the run `workflowId` terminated if still going, the proxy
 * closed before the worker stops (a worker stops only once its calls have returned), then the worker and client.
 */
export async function startProxiedWorker(
  prefix: string,
  service: 'kinesis' | 's3' | 'dynamodb' = 'kinesis',
): Promise<{ proxy: HoldingProxy; queue: string; worker: ChildProcess; client: FerryClient; stop: (workflowId?: string) => Promise<void> }> {
  const config = loadConfig();
  const proxy = await HoldingProxy.start(config.aws.endpoints[service]!);
  const queue = uniqueName(prefix);
  const worker = await startWorkerProcess(queue, { [`AWS_ENDPOINT_URL_${service.toUpperCase()}`]: proxy.url });
  const client = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue: queue } });
  const stop = async (workflowId?: string) => {
    if (workflowId) await client.client.workflow.getHandle(workflowId).terminate('the test ended with the run still going').catch(() => undefined);
    await proxy.close();
    await stopProcess(worker);
    await client.close();
  };
  return { proxy, queue, worker, client, stop };
}

/** Resolves once apply's readers have checkpointed: capture and apply both at work. */
export async function applyStarted(migration: { progress(): Promise<{ capture?: { apply?: unknown[] } }> }): Promise<void> {
  await until(async () => Boolean((await migration.progress().catch(() => undefined))?.capture?.apply?.length), 600, 100, 'apply never started');
}

/** Resolves once `check` is true, asked every `everyMs` ms; fails saying `never` after `tries` more asks. */
export async function until(check: () => Promise<boolean>, tries: number, everyMs: number, never: string): Promise<void> {
  for (let i = 0; !(await check()); i++) {
    if (i >= tries) throw new Error(never);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `work`, or a failure saying `what` once `ms` have passed: for waits that must end, so that a test fails instead of hanging. */
export async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A loopback TCP proxy in front of `upstream` (http://host:port) that can stop
 * answering, without touching the service that other tests share. Held, bytes
 * in either direction wait in the proxy, so a call through it hangs the way a
 * call to a stalled service does; released, everything flows again. Stalled,
 * the connections open at that moment (and, if asked, those opened for a while
 * after) drop whatever they carry from then on, as connections cut by a
 * middlebox do, while later ones pass. Slowed, a connection carries bytes at a
 * trickle, as a slow link does: a call through it takes long, yet bytes keep
 * moving.
 */
export class HoldingProxy {
  private held = false;
  /** Set by holdFrom: the client bytes that start a hold. */
  private holdTrigger?: (bytes: string) => boolean;
  private stallNewUntil = 0;
  private readonly waiting: (() => void)[] = [];
  /** Set by slowFrom: the client bytes that slow their connection, and to what rate. */
  private slowTrigger?: { picks: (bytes: string) => boolean; bytesPerSecond: number };
  private readonly links = new Set<{ sockets: net.Socket[]; stalled: boolean; bytesPerSecond?: number }>();
  private readonly server: net.Server;
  /** Where to point the client instead of the service: http://127.0.0.1:PORT. */
  url = '';
  /** Bytes that stalled connections dropped. */
  dropped = 0;
  /** Connections slowFrom has slowed. */
  slowed = 0;

  private constructor(upstream: URL) {
    this.server = net.createServer((client) => {
      const service = net.connect(Number(upstream.port), upstream.hostname);
      const link: { sockets: net.Socket[]; stalled: boolean; bytesPerSecond?: number } = { sockets: [client, service], stalled: Date.now() < this.stallNewUntil };
      this.links.add(link);
      const forward = (from: net.Socket, into: net.Socket): Trickle => {
        const trickle = new Trickle(into);
        from.on('data', (chunk: Buffer) => {
          if (from === client && this.holdTrigger?.(chunk.toString('latin1'))) this.hold();
          if (from === client && this.slowTrigger?.picks(chunk.toString('latin1'))) {
            link.bytesPerSecond = this.slowTrigger.bytesPerSecond;
            this.slowed++;
          }
          if (link.stalled) this.dropped += chunk.length;
          else if (this.held) this.waiting.push(() => into.write(chunk));
          else if (link.bytesPerSecond !== undefined || trickle.busy) trickle.push(chunk, link.bytesPerSecond ?? Infinity);
          else into.write(chunk);
        });
        return trickle;
      };
      forward(client, service);
      const toClient = forward(service, client);
      // A stalled connection's client side hears nothing of the service closing its side either; a slowed one hears
      // of it once the bytes before the close have trickled through.
      service.on('error', () => link.stalled || toClient.drained(() => client.destroy()));
      service.on('close', () => link.stalled || toClient.drained(() => client.destroy()));
      // A stalled connection's service side hears nothing of the client going either, as when its host vanishes:
      // it stays open until the service gives up on it (or the proxy closes).
      client.on('error', () => link.stalled || service.destroy());
      client.on('close', () => {
        if (link.stalled) return;
        this.links.delete(link);
        service.destroy();
      });
    });
  }

  static async start(upstream: string): Promise<HoldingProxy> {
    const proxy = new HoldingProxy(new URL(upstream));
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.url = `http://127.0.0.1:${(proxy.server.address() as net.AddressInfo).port}`;
    return proxy;
  }

  /** From now on nothing passes. */
  hold(): void {
    this.held = true;
  }

  /** Once the client sends bytes that `trigger` picks (a request line, say), those and all else wait, as after hold(). */
  holdFrom(trigger: (bytes: string) => boolean): void {
    this.holdTrigger = trigger;
  }

  /**
   * Once the client sends bytes that `trigger` picks on a connection (a request line, a query), that connection
   * carries at most `bytesPerSecond` each way from then on; other connections pass as before.
   */
  slowFrom(trigger: (bytes: string) => boolean, bytesPerSecond: number): void {
    this.slowTrigger = { picks: trigger, bytesPerSecond };
  }

  /** What waited passes, in order, and so does everything after it. */
  release(): void {
    this.held = false;
    this.holdTrigger = undefined;
    for (const send of this.waiting.splice(0)) send();
  }

  /**
   * The connections open now, and those opened in the next `alsoNewForMs`, carry nothing more and never close from
   * the service's side; later ones pass.
   */
  stallConnections(alsoNewForMs = 0): void {
    for (const link of this.links) link.stalled = true;
    this.stallNewUntil = Date.now() + alsoNewForMs;
  }

  close(): Promise<void> {
    this.release();
    for (const link of this.links) for (const socket of link.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Bytes written on to a socket at a bounded rate, a tenth of a second's worth at a time, in order. */
class Trickle {
  private readonly queue: Buffer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private bytesPerSecond = Infinity;
  private onDrained: (() => void) | undefined;

  constructor(private readonly into: net.Socket) {}

  /** `then` once every byte pushed so far is written. */
  drained(then: () => void): void {
    if (this.queue.length) this.onDrained = then;
    else then();
  }

  get busy(): boolean {
    return this.queue.length > 0;
  }

  push(chunk: Buffer, bytesPerSecond: number): void {
    this.bytesPerSecond = bytesPerSecond;
    this.queue.push(chunk);
    this.timer ??= setTimeout(() => this.pump(), 0);
  }

  private pump(): void {
    let budget = Math.max(1, Math.floor(this.bytesPerSecond / 10));
    const pieces: Buffer[] = [];
    while (budget > 0 && this.queue.length) {
      const head = this.queue[0]!;
      const piece = head.subarray(0, budget);
      pieces.push(piece);
      budget -= piece.length;
      if (piece.length === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(piece.length);
    }
    if (!this.into.destroyed) this.into.write(Buffer.concat(pieces));
    this.timer = this.queue.length ? setTimeout(() => this.pump(), 100) : undefined;
    if (!this.timer) this.onDrained?.();
  }
}
