/**
 * Connections to Temporal, from configuration: the local dev server by default,
 * a real cluster or Temporal Cloud through TEMPORAL_* variables.
 */
import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/client';
import { dataConverterFromEnv } from './codec.js';
import type { TemporalConfig } from './config.js';

export function tlsOptions(temporal: TemporalConfig): TLSConfig | undefined {
  if (!temporal.tls) return undefined;
  if (temporal.tlsCertPath && temporal.tlsKeyPath) {
    return { clientCertPair: { crt: fs.readFileSync(temporal.tlsCertPath), key: fs.readFileSync(temporal.tlsKeyPath) } };
  }
  return {};
}

export function connectionOptions(temporal: TemporalConfig) {
  return { address: temporal.address, tls: tlsOptions(temporal), apiKey: temporal.apiKey };
}

export async function connectClient(temporal: TemporalConfig): Promise<Client> {
  try {
    const connection = await Connection.connect({ ...connectionOptions(temporal), connectTimeout: 10_000 });
    const dataConverter = dataConverterFromEnv();
    return new Client({ connection, namespace: temporal.namespace, ...(dataConverter ? { dataConverter } : {}) });
  } catch (err) {
    throw new Error(
      `cannot reach Temporal at ${temporal.address} (namespace ${temporal.namespace}): ${(err as Error).message}. ` +
        'Start the local stack with `ferry stack up`, or set TEMPORAL_ADDRESS for a real cluster.',
    );
  }
}

/**
 * The whole cause chain of a failed workflow or activity, one line per link,
 * so an operator sees "table purchase has no primary key", not just
 * "Workflow execution failed".
 */
export function describeFailure(err: unknown): string {
  const lines: string[] = [];
  for (let e: unknown = err; e instanceof Error && lines.length < 10; e = (e as Error & { cause?: unknown }).cause) {
    if (e.message && !lines.includes(e.message)) lines.push(e.message);
  }
  return lines.length ? lines.join('\n  caused by: ') : String(err);
}
