/**
 * `ferry stack up | down | status`: the local stand-ins for Temporal, MySQL,
 * DynamoDB, Kinesis and S3, started and stopped as one.
 */
import { loadConfig, stackPorts, type FerryConfig } from '../config.js';
import { PART_NAMES, PARTS, type PartName, type StackContext } from './parts.js';
import { serviceState, startService, StackError, stopService, type ServiceState } from './service.js';
import type { Progress } from './install.js';

export { PART_NAMES, type PartName, StackError };

export function parsePartNames(names: string[]): PartName[] {
  if (names.length === 0) return [...PART_NAMES];
  for (const name of names) {
    if (!(PART_NAMES as readonly string[]).includes(name)) {
      throw new StackError('stack', `${name} is not a part of the stack; the parts are ${PART_NAMES.join(', ')}`);
    }
  }
  return names as PartName[];
}

function context(config: FerryConfig, progress: Progress): StackContext {
  return { config, ports: stackPorts(), progress };
}

export interface PartStatus extends ServiceState {
  address: string;
}

/**
 * Installs (cached), starts (or reuses) and health-checks each part; parts start
 * side by side. Every part that fails is reported, each with its log file.
 */
export async function stackUp(names: PartName[] = [...PART_NAMES], progress: Progress = () => {}, config = loadConfig()): Promise<PartStatus[]> {
  const ctx = context(config, progress);
  const results = await Promise.allSettled(
    names.map(async (name) => {
      const part = PARTS[name];
      const definition = await part.prepare(ctx);
      const how = await startService(config.stackDir, definition);
      await part.afterStart?.(ctx);
      progress(`${name}: ${how === 'reused' ? 'already running' : 'started'}, ${part.describe(ctx)}`);
      return { ...(await serviceState(config.stackDir, name, definition.healthy)), address: part.describe(ctx) };
    }),
  );
  const failures = results.flatMap((r, i) =>
    r.status === 'rejected' ? [r.reason instanceof StackError ? r.reason.message : `${names[i]}: ${(r.reason as Error)?.stack ?? r.reason}`] : [],
  );
  if (failures.length) {
    throw new StackError('stack up', `${failures.length} of ${names.length} part(s) could not start:\n${failures.map((f) => `- ${f}`).join('\n')}`);
  }
  return results.map((r) => (r as PromiseFulfilledResult<PartStatus>).value);
}

export async function stackDown(names: PartName[] = [...PART_NAMES], progress: Progress = () => {}, config = loadConfig()): Promise<void> {
  await Promise.all(
    names.map(async (name) => progress(`${name}: ${(await stopService(config.stackDir, name)) ? 'stopped' : 'was not running'}`)),
  );
}

/** Reports each part without installing anything: pid file, process, health probe. */
export async function stackStatus(names: PartName[] = [...PART_NAMES], config = loadConfig()): Promise<PartStatus[]> {
  const ctx = context(config, () => {});
  return Promise.all(
    names.map(async (name) => {
      const part = PARTS[name];
      return { ...(await serviceState(config.stackDir, name, () => part.healthy(ctx))), address: part.describe(ctx) };
    }),
  );
}
