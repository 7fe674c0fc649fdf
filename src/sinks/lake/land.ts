/**
 * Landing one file in the lake: write it in scratch, upload it under the name
 * its first row's stream position gives it, then commit it to the table's
 * manifest. Idempotent: a retry after a crash anywhere in between writes the
 * same name and replaces the same entry, so nothing is listed twice and
 * nothing is lost.
 */
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { ChangeEvent } from '../../capture/events.js';
import type { SourceColumn } from '../../mapping/types.js';
import { writeChangeFile, writeFullLoadFile } from './files.js';
import { changeFileKey, changeSeq, fullLoadKey, type LakeLayoutOptions } from './layout.js';
import { commitFile, type LakeFileEntry } from './manifest.js';
import type { LakeStore } from './store.js';

export interface LandingTable {
  /** `schema.table` of the source. */
  table: string;
  /** The table's folder (layout.ts tableRoot). */
  root: string;
  columns: SourceColumn[];
}

/** A crash point for tests of the landing's exactly-once (FERRY_FAULT_LAKE_DIE_BEFORE_COMMIT=1: the process exits after the upload). */
function dieBeforeCommitIfAsked(): void {
  if (process.env.FERRY_FAULT_LAKE_DIE_BEFORE_COMMIT === '1') process.kill(process.pid, 'SIGKILL');
}

/** Lands `events` (one table's, in stream order, at least one) as one change file, and commits it. */
export async function landChanges(store: LakeStore, layout: LakeLayoutOptions, table: LandingTable, events: ChangeEvent[], scratch: { dir: string; duck: DuckDBConnection }): Promise<LakeFileEntry> {
  if (events.length === 0) throw new Error(`no changes of ${table.table} to land: a change file holds at least one`);
  const first = events[0]!;
  const key = changeFileKey(layout, table.root, { commitMs: first.ts, seq: changeSeq(first.version) });
  const local = path.join(scratch.dir, path.basename(key));
  const written = await writeChangeFile(scratch.duck, events, table.columns, local, layout.format);
  await store.putFile(key, local);
  dieBeforeCommitIfAsked();
  const entry = { key, kind: 'changes' as const, ...written, firstSeq: changeSeq(first.version), lastSeq: changeSeq(events.at(-1)!.version), columns: table.columns.map((c) => c.name) };
  const manifest = await commitFile(store, table.root, table.table, entry);
  return manifest.files.find((f) => f.key === key)!;
}

/** Lands one staged export file as the table's n-th full-load file (n from 1), and commits it. */
export async function landFullLoad(
  store: LakeStore,
  layout: LakeLayoutOptions,
  table: LandingTable,
  n: number,
  staged: { file: string; format: 'parquet' | 'csv' },
  meta: { includeOp: boolean; seq: string; commitMs: number },
  scratch: { dir: string; duck: DuckDBConnection },
): Promise<LakeFileEntry> {
  const key = fullLoadKey(layout, table.root, n);
  const local = path.join(scratch.dir, path.basename(key));
  const written = await writeFullLoadFile(scratch.duck, staged, table.columns, meta, local, layout.format);
  await store.putFile(key, local);
  dieBeforeCommitIfAsked();
  const manifest = await commitFile(store, table.root, table.table, { key, kind: 'full', ...written, firstSeq: meta.seq, lastSeq: meta.seq, columns: table.columns.map((c) => c.name) });
  return manifest.files.find((f) => f.key === key)!;
}
