/**
 * verifyMigration: the source, read again and transformed as the bulk copy
 * does, against the target: per partition counts and order-independent
 * checksums, extra target items per table, and the first differing keys with
 * both sides shown. Read-only for source and target.
 *
 * Workflow code: deterministic, no I/O.
 */
import { condition, proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities/index.js';
import type { Mismatch, VerifyPartitionResult } from '../activities/verify.js';
import { staging } from '../src/bulk/model.js';
import { parseSpec, type MigrationSpecInput } from '../src/spec.js';

const retry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 };
const { preflight } = proxyActivities<typeof activities>({ startToCloseTimeout: '10 minutes', retry: { ...retry, maximumAttempts: 3 } });
const { planPartitions } = proxyActivities<typeof activities>({ startToCloseTimeout: '1 hour', heartbeatTimeout: '2 minutes', retry });
const { verifyPartition, countItems } = proxyActivities<typeof activities>({ startToCloseTimeout: '4 hours', heartbeatTimeout: '2 minutes', retry });

export interface VerifyTableReport {
  table: string;
  targetTable: string;
  partitions: number;
  /** Items the source makes, and how many of them the target holds. */
  sourceItems: number;
  targetItems: number;
  /** Items in the target table that no source row makes. */
  extra: number;
  differing: number;
  missing: number;
  /** Sums (mod 2^64) of the partitions' checksums: equal when the item sets are equal. */
  sourceChecksum: string;
  targetChecksum: string;
  mismatches: Mismatch[];
}

export interface VerifyReport {
  name: string;
  ok: boolean;
  tables: VerifyTableReport[];
}

const addHex = (a: string, b: string) => ((BigInt(`0x${a || '0'}`) + BigInt(`0x${b || '0'}`)) & 0xffffffffffffffffn).toString(16).padStart(16, '0');

export async function verifyMigration(input: MigrationSpecInput, options: { maxMismatches?: number } = {}): Promise<VerifyReport> {
  const spec = parseSpec(input);
  const maxMismatches = options.maxMismatches ?? 10;
  // Read-only against a migrated target: its staging folder is the migration's own, and capture is left alone.
  const checked = await preflight(spec, { verify: true });
  const stage = staging(spec, checked.bucket);
  const tables: VerifyTableReport[] = [];
  for (const source of checked.tables) {
    const ranges = await planPartitions(spec, stage, source);
    const results: VerifyPartitionResult[] = [];
    let running = 0;
    await Promise.all(
      ranges.map(async (range) => {
        await condition(() => running < spec.bulk.concurrency);
        running++;
        try {
          results.push(await verifyPartition(spec, stage, source, range, maxMismatches));
        } finally {
          running--;
        }
      }),
    );
    results.sort((a, b) => (a.partition < b.partition ? -1 : 1));
    const sum = (f: (r: VerifyPartitionResult) => number) => results.reduce((n, r) => n + f(r), 0);
    const targetTotal = await countItems(source.mapping.targetTable);
    tables.push({
      table: `${source.schema}.${source.table}`,
      targetTable: source.mapping.targetTable,
      partitions: ranges.length,
      sourceItems: sum((r) => r.sourceItems),
      targetItems: sum((r) => r.targetItems),
      extra: Math.max(0, targetTotal - sum((r) => r.targetItems)),
      differing: sum((r) => r.differing),
      missing: sum((r) => r.missing),
      sourceChecksum: results.reduce((s, r) => addHex(s, r.sourceChecksum), ''),
      targetChecksum: results.reduce((s, r) => addHex(s, r.targetChecksum), ''),
      mismatches: results.flatMap((r) => r.mismatches).slice(0, maxMismatches),
    });
  }
  const ok = tables.every((t) => t.extra === 0 && t.differing === 0 && t.missing === 0);
  return { name: spec.name, ok, tables };
}
