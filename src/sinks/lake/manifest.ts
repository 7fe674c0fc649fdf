/**
 * The per-table manifest (`_ferry/manifest.json`): the files of a table that
 * count, with their rows and checksums, written after each file. A reader that
 * follows it never sees a half-written or a superseded file; a writer resumes
 * after the last change it lists.
 *
 * Exactly once: a file's name comes from its first row's stream position
 * (layout.ts), so a retried write replaces its own file and its entry, never
 * adding a second. One writer per table (the table's workflow runs its landing
 * one file after another), so a read-modify-write of the manifest is safe.
 */
import type { LakeStore } from './store.js';
import { manifestKey } from './layout.js';
import type { WrittenFile } from './files.js';

export interface LakeFileEntry extends WrittenFile {
  key: string;
  kind: 'full' | 'changes';
  /** The lowest and highest _ferry_seq in the file. */
  firstSeq: string;
  lastSeq: string;
  /** The source columns the file carries, in order (ADD COLUMN shows here first). */
  columns: string[];
  committedAt: string;
}

export interface TableManifest {
  /** `schema.table` of the source. */
  table: string;
  /** Bumped on every commit: a reader can tell it saw a newer manifest. */
  revision: number;
  files: LakeFileEntry[];
}

export async function readManifest(store: LakeStore, root: string): Promise<TableManifest | undefined> {
  return store.getJson<TableManifest>(manifestKey(root));
}

/**
 * Lists `entry` as committed, after its file was written. The same key again replaces its entry (a retried
 * write); a change file whose rows overlap another's, under another name, is refused: it would list changes twice.
 */
export async function commitFile(store: LakeStore, root: string, table: string, entry: Omit<LakeFileEntry, 'committedAt'>, now = new Date()): Promise<TableManifest> {
  const manifest = (await readManifest(store, root)) ?? { table, revision: 0, files: [] };
  if (manifest.table !== table) throw new Error(`${store.url(manifestKey(root))} belongs to ${manifest.table}, not ${table}: two tables land in one folder; give them separate lake prefixes`);
  const files = manifest.files.filter((f) => f.key !== entry.key);
  if (entry.kind === 'changes') {
    const overlapping = files.find((f) => f.kind === 'changes' && f.firstSeq <= entry.lastSeq && entry.firstSeq <= f.lastSeq);
    if (overlapping) {
      throw new Error(
        `change file ${entry.key} (${entry.firstSeq} to ${entry.lastSeq}) overlaps the committed ${overlapping.key} (${overlapping.firstSeq} to ${overlapping.lastSeq}): ` +
          'landing must resume after the last committed change (landedThrough); this is a bug in the writer, and nothing was committed',
      );
    }
  }
  files.push({ ...entry, committedAt: now.toISOString() });
  files.sort((a, b) => (a.kind === b.kind ? (a.firstSeq < b.firstSeq ? -1 : a.firstSeq > b.firstSeq ? 1 : a.key < b.key ? -1 : 1) : a.kind === 'full' ? -1 : 1));
  const next: TableManifest = { table, revision: manifest.revision + 1, files };
  await store.putJson(manifestKey(root), next);
  return next;
}

/** The highest _ferry_seq of the committed change files: landing resumes after it. */
export function landedThrough(manifest: TableManifest | undefined): string | undefined {
  return manifest?.files.filter((f) => f.kind === 'changes').reduce<string | undefined>((max, f) => (max === undefined || f.lastSeq > max ? f.lastSeq : max), undefined);
}
