/**
 * The lake's merged `current/` table of one source table: copy-on-write
 * snapshots, Hudi-style, built by DuckDB (merge.ts) and published through a
 * pointer document.
 *
 *   <tableRoot>current/_ferry_current.json              the pointer: the published snapshot
 *   <tableRoot>current/_symlink_format_manifest/manifest the published files, one URL a line
 *   <tableRoot>current/v00000007/_ferry_snapshot.json   version 7's own copy of its snapshot
 *   <tableRoot>current/v00000007/<col=value/>part-00000.parquet
 *
 * Invariants: a version's files are written before anything references
 * them, the pointer last; nothing a retained snapshot references is ever
 * overwritten or deleted (a file carried over unchanged keeps its key in
 * its first version's folder); version N+1 is the only folder a merge after
 * version N writes, so a merge that died before its pointer is redone in
 * the same folder by a rerun. One merger per table at a time: the caller
 * (one activity per table) guarantees it.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import fs from 'node:fs';
import path from 'node:path';
import { openScratch, type Scratch } from '../../bulk/duck.js';
import { changedPartitionValues, checkChangeFiles, filesHoldingChangedKeys, FRESHNESS_COLUMNS, loadChanges, mergedPartitions, mergeLatest, writeMerged, type LocalFile } from './merge.js';
import type { LakeStore } from './store.js';

export interface CurrentFile {
  key: string;
  /** The Hive-style folder of the file's partition (`col=value`); absent for an unpartitioned table. */
  partition?: string;
  rows: number;
  bytes: number;
}

/** One published state of `current/`: JSON at `<tableRoot>current/_ferry_current.json` and at `v<N>/_ferry_snapshot.json`. */
export interface CurrentSnapshot {
  version: number;
  publishedAt: string;
  keyColumns: string[];
  partitionBy?: string;
  /** The columns of every file, in order: the source's (a column added later comes after), then `_ferry_ts` and `_ferry_seq`. No `Op`. */
  columns: string[];
  /** Every Parquet file of the snapshot. */
  files: CurrentFile[];
  /** The highest `_ferry_seq` merged in so far: the caller's checkpoint. */
  mergedThrough?: string;
  previous?: number;
}

export interface MergeInput {
  /** Keys of the change (or full-load) files to merge, in landing order. */
  changeFiles: string[];
  keyColumns: string[];
  partitionBy?: string;
  /** Snapshots kept readable, the new one included; at least 2, so the previous one's readers are never cut off. */
  keepSnapshots?: number;
  /** The most rows a written file holds. */
  rowsPerFile?: number;
}

export const DEFAULT_KEEP_SNAPSHOTS = 3;
export const DEFAULT_ROWS_PER_FILE = 1_000_000;
/** Hive's (and Athena's) folder for a NULL partition value. */
export const HIVE_DEFAULT_PARTITION = '__HIVE_DEFAULT_PARTITION__';

const currentRoot = (tableRoot: string) => `${tableRoot}current/`;
const pointerKey = (tableRoot: string) => `${currentRoot(tableRoot)}_ferry_current.json`;
/** Glue/Athena tables over `current/` read it with SymlinkTextInputFormat: a text file of the data files' URLs, so they see one snapshot's files and never a half-written version or an expired one. */
const symlinkManifestKey = (tableRoot: string) => `${currentRoot(tableRoot)}_symlink_format_manifest/manifest`;
const versionFolder = (tableRoot: string, version: number) => `${currentRoot(tableRoot)}v${String(version).padStart(8, '0')}/`;
const snapshotKey = (tableRoot: string, version: number) => `${versionFolder(tableRoot, version)}_ferry_snapshot.json`;

/** Hive's escaping of a path segment (`%XX` for `/`, `=`, `:`, `%`, space, …), applied to every ASCII character but letters, digits, `.`, `_` and `-`, so keys stay URL-safe and Hive unescapes them back. */
function escapePathName(text: string): string {
  return text.replace(/[\x00-\x7f]/g, (c) => (/[A-Za-z0-9._-]/.test(c) ? c : `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`));
}

/** The Hive-style folder of a partition value (as text); NULL and '' are Hive's default partition. */
export function partitionFolder(column: string, value: string | null): string {
  return `${escapePathName(column)}=${value === null || value === '' ? HIVE_DEFAULT_PARTITION : escapePathName(value)}`;
}

function withSlash(tableRoot: string): string {
  return tableRoot === '' || tableRoot.endsWith('/') ? tableRoot : `${tableRoot}/`;
}

/** The published snapshot of the table at `tableRoot`, or undefined before the first merge. */
export async function readCurrentSnapshot(store: LakeStore, tableRoot: string): Promise<CurrentSnapshot | undefined> {
  return store.getJson<CurrentSnapshot>(pointerKey(withSlash(tableRoot)));
}

/** Snapshot `version` of the table, while it is retained. */
export async function readSnapshotVersion(store: LakeStore, tableRoot: string, version: number): Promise<CurrentSnapshot | undefined> {
  return store.getJson<CurrentSnapshot>(snapshotKey(withSlash(tableRoot), version));
}

function checkInput(input: MergeInput, previous: CurrentSnapshot | undefined, keep: number): void {
  if (input.keyColumns.length === 0) throw new Error('mergeIntoCurrent needs the table\'s key columns (keyColumns): the merge keeps the latest change per key');
  if (!Number.isInteger(keep) || keep < 2) throw new Error(`keepSnapshots is ${keep}: keep at least 2 snapshots, so readers of the previous one are not cut off by a merge`);
  if (!previous) return;
  if (previous.keyColumns.join(',') !== input.keyColumns.join(',') || (previous.partitionBy ?? '') !== (input.partitionBy ?? '')) {
    throw new Error(
      `current/ of this table is keyed on ${previous.keyColumns.join(', ')}${previous.partitionBy ? ` and partitioned by ${previous.partitionBy}` : ''}, the merge asks for ${input.keyColumns.join(', ')}` +
        `${input.partitionBy ? ` partitioned by ${input.partitionBy}` : ''}: merge with the table's keys and partitioning, or rebuild current/ from a full load under a new table root`,
    );
  }
}

/** The current file's columns: the ones already in current/ in their order, then new source columns, then the freshness columns. */
function currentColumns(previous: CurrentSnapshot | undefined, sourceColumns: string[]): string[] {
  const freshness = FRESHNESS_COLUMNS as readonly string[];
  const columns = (previous?.columns ?? []).filter((c) => !freshness.includes(c));
  for (const c of sourceColumns) if (!freshness.includes(c) && !columns.includes(c)) columns.push(c);
  return [...columns, ...freshness];
}

/** Downloads the change files and every current file of `previous` into `dir`; returns the local files, the current ones with their snapshot entries. */
async function download(store: LakeStore, dir: string, changeFiles: string[], previous: CurrentFile[]) {
  const local = (group: string, i: number) => path.join(dir, group, `${String(i).padStart(6, '0')}.parquet`);
  fs.mkdirSync(path.join(dir, 'changes'));
  fs.mkdirSync(path.join(dir, 'current'));
  const changes: LocalFile[] = [];
  for (const [i, key] of changeFiles.entries()) {
    changes.push({ file: local('changes', i), name: store.url(key) });
    await store.getFile(key, local('changes', i));
  }
  const current = new Map<string, CurrentFile>();
  for (const [i, file] of previous.entries()) {
    current.set(local('current', i), file);
    await store.getFile(file.key, local('current', i));
  }
  return { changes, current };
}

/**
 * Which current files the merge rewrites: all of an unpartitioned table's;
 * of a partitioned table's, those of the partitions the changes land in and
 * of the partitions that hold a changed key now (it may be moving out).
 */
async function rewrittenFiles(duck: DuckDBConnection, input: MergeInput, current: Map<string, CurrentFile>): Promise<(file: CurrentFile) => boolean> {
  const partitionBy = input.partitionBy;
  if (!partitionBy) return () => true;
  const touched = new Set((await changedPartitionValues(duck, partitionBy)).map((v) => partitionFolder(partitionBy, v)));
  for (const file of await filesHoldingChangedKeys(duck, [...current.keys()], input.keyColumns)) touched.add(current.get(file)!.partition!);
  return (file) => touched.has(file.partition!);
}

/** Writes the table `merged` as the version folder `folder`'s Parquet files, one folder per partition; returns their snapshot entries. */
async function uploadMerged(store: LakeStore, scratch: Scratch, folder: string, input: MergeInput, columns: string[]): Promise<CurrentFile[]> {
  const byFolder = new Map<string, (string | null)[]>();
  for (const { value } of await mergedPartitions(scratch.duck)) {
    const partition = input.partitionBy ? partitionFolder(input.partitionBy, value) : '';
    byFolder.set(partition, [...(byFolder.get(partition) ?? []), value]);
  }
  const files: CurrentFile[] = [];
  for (const [partition, values] of [...byFolder].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const out = path.join(scratch.dir, 'out', partition || '_');
    for (const written of await writeMerged(scratch.duck, values, columns, input.keyColumns, out, input.rowsPerFile ?? DEFAULT_ROWS_PER_FILE)) {
      const key = `${folder}${partition ? `${partition}/` : ''}${path.basename(written.file)}`;
      const { bytes } = await store.putFile(key, written.file);
      files.push({ key, ...(partition ? { partition } : {}), rows: written.rows, bytes });
    }
  }
  return files;
}

/** Publishes `snapshot`, whose files are all written: its own copy, the symlink manifest, then the pointer, the one write that makes it current. */
async function publish(store: LakeStore, root: string, dir: string, snapshot: CurrentSnapshot): Promise<void> {
  await store.putJson(snapshotKey(root, snapshot.version), snapshot);
  const manifest = path.join(dir, 'manifest');
  fs.writeFileSync(manifest, snapshot.files.map((f) => `${store.url(f.key)}\n`).join(''));
  await store.putFile(symlinkManifestKey(root), manifest);
  await store.putJson(pointerKey(root), snapshot);
}

/**
 * Merges `input.changeFiles` into the table's `current/` and publishes the
 * result as the next snapshot; returns it. Only the partitions the changes
 * touch are rewritten, the others' files carried over by key. Idempotent: a
 * rerun after a failure rewrites the same version; merging changes already
 * merged changes no row. Expires snapshots past `keepSnapshots`.
 */
export async function mergeIntoCurrent(store: LakeStore, tableRoot: string, input: MergeInput): Promise<CurrentSnapshot> {
  const root = withSlash(tableRoot);
  const keep = input.keepSnapshots ?? DEFAULT_KEEP_SNAPSHOTS;
  const previous = await readCurrentSnapshot(store, root);
  checkInput(input, previous, keep);
  if (input.changeFiles.length === 0) {
    if (previous) return previous;
    throw new Error(`nothing to merge into ${store.url(currentRoot(root))}: the first merge of a table needs its full-load files (an empty table lands an empty full-load file)`);
  }
  const version = (previous?.version ?? 0) + 1;
  const folder = versionFolder(root, version);
  const scratch = await openScratch('lake-merge');
  try {
    const { changes, current } = await download(store, scratch.dir, input.changeFiles, previous?.files ?? []);
    const shape = { keyColumns: input.keyColumns, partitionBy: input.partitionBy };
    const columns = currentColumns(previous, await checkChangeFiles(scratch.duck, changes, shape));
    const seq = await loadChanges(scratch.duck, changes.map((c) => c.file));
    const rewritten = await rewrittenFiles(scratch.duck, input, current);
    await mergeLatest(scratch.duck, [...current].filter(([, file]) => rewritten(file)).map(([file]) => file), columns, shape);

    // Whatever a failed earlier attempt left in this version's folder: no snapshot references it.
    await store.delete(await store.list(folder));
    const files = [...(previous?.files ?? []).filter((file) => !rewritten(file)), ...(await uploadMerged(store, scratch, folder, input, columns))];
    const snapshot: CurrentSnapshot = {
      version,
      publishedAt: new Date().toISOString(),
      keyColumns: input.keyColumns,
      ...(input.partitionBy ? { partitionBy: input.partitionBy } : {}),
      columns,
      files,
      mergedThrough: previous?.mergedThrough !== undefined && previous.mergedThrough > seq ? previous.mergedThrough : seq,
      ...(previous ? { previous: previous.version } : {}),
    };
    await publish(store, root, scratch.dir, snapshot);
    await expireSnapshots(store, root, snapshot, keep);
    return snapshot;
  } finally {
    scratch.close();
  }
}

/**
 * Deletes what only snapshots older than the last `keep` reference: the
 * files in expired versions' folders that no retained snapshot carries
 * over, and those versions' own snapshot copies. Deletes nothing when a
 * retained snapshot's copy cannot be read: its files are unknown.
 */
async function expireSnapshots(store: LakeStore, root: string, latest: CurrentSnapshot, keep: number): Promise<void> {
  const oldest = latest.version - keep + 1;
  const retained = [latest];
  for (let v = latest.version - 1; v >= Math.max(oldest, 1); v--) {
    const snapshot = await readSnapshotVersion(store, root, v);
    if (!snapshot) return;
    retained.push(snapshot);
  }
  const referenced = new Set(retained.flatMap((s) => s.files.map((f) => f.key)));
  const versionOf = (key: string) => /^v(\d{8})\//.exec(key.slice(currentRoot(root).length))?.[1];
  const expired = (await store.list(`${currentRoot(root)}v`)).filter((key) => {
    const v = versionOf(key);
    return v !== undefined && Number(v) < oldest && !referenced.has(key);
  });
  await store.delete(expired);
}
