/** The per-table manifest (src/sinks/lake/manifest.ts): committed files only, each once, and where landing resumes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { commitFile, landedThrough, readManifest } from '../src/sinks/lake/manifest.js';
import { folderStore } from '../src/sinks/lake/store.js';

const root = 'lake/shop/purchase/';
const file = (key: string, kind: 'full' | 'changes', firstSeq: string, lastSeq: string, rows = 3) => ({ key, kind, firstSeq, lastSeq, rows, bytes: 100, md5: '0'.repeat(32), columns: ['id', 'note'] });

test('a file rewritten by a retry is listed once, with the retry’s rows; landing resumes after the last committed change', async () => {
  const store = folderStore(fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-manifest-')));
  assert.equal(landedThrough(await readManifest(store, root)), undefined);
  await commitFile(store, root, 'shop.purchase', file(`${root}full/LOAD00000001.parquet`, 'full', '00000003.000000000004', '00000003.000000000004', 1000));
  await commitFile(store, root, 'shop.purchase', file(`${root}changes/a.parquet`, 'changes', '00000003.000000000100.00000', '00000003.000000000200.00000'));
  // The activity died after writing b but before committing it; its retry wrote b again, cut at another point.
  await commitFile(store, root, 'shop.purchase', file(`${root}changes/b.parquet`, 'changes', '00000003.000000000300.00000', '00000003.000000000500.00000', 9));
  const manifest = await commitFile(store, root, 'shop.purchase', file(`${root}changes/b.parquet`, 'changes', '00000003.000000000300.00000', '00000003.000000000400.00000', 5));
  assert.deepEqual(manifest.files.map((f) => [f.key, f.rows]), [[`${root}full/LOAD00000001.parquet`, 1000], [`${root}changes/a.parquet`, 3], [`${root}changes/b.parquet`, 5]]);
  assert.equal(manifest.revision, 4);
  assert.equal(landedThrough(await readManifest(store, root)), '00000003.000000000400.00000');
});

test('a change file overlapping a committed one under another name is refused, and the manifest is left as it was', async () => {
  const store = folderStore(fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-manifest-')));
  await commitFile(store, root, 'shop.purchase', file(`${root}changes/a.parquet`, 'changes', '00000003.000000000100.00000', '00000003.000000000200.00000'));
  await assert.rejects(commitFile(store, root, 'shop.purchase', file(`${root}changes/c.parquet`, 'changes', '00000003.000000000200.00000', '00000003.000000000300.00000')), /overlaps the committed .*a\.parquet.*nothing was committed/);
  assert.equal((await readManifest(store, root))!.files.length, 1);
  await assert.rejects(commitFile(store, root, 'shop.other', file(`${root}changes/d.parquet`, 'changes', '1', '2')), /belongs to shop\.purchase, not shop\.other/);
});
