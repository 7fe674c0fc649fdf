/**
 * Where a lake's objects live, as the lake code sees them: keys under one
 * root, written whole. S3 in production (`s3Store`), a local folder in unit
 * tests (`folderStore`). Every write is a whole-object PUT, so a reader never
 * sees half an object; the lake's manifests decide which objects count.
 */
import { DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import fs from 'node:fs';
import path from 'node:path';
import { downloadFile, getJson, putJson, uploadFile } from '../../s3.js';

export interface LakeStore {
  /** A human-readable name of `key`, for messages and for readers (`s3://bucket/key`). */
  url(key: string): string;
  /** Uploads the local file `file` as `key` (replacing what is there: names are chosen so a rewrite is the same file). */
  putFile(key: string, file: string): Promise<{ bytes: number }>;
  /** Downloads `key` to the local file `file`. */
  getFile(key: string, file: string): Promise<void>;
  putJson(key: string, value: unknown): Promise<void>;
  /** The JSON document at `key`, or undefined when there is none. */
  getJson<T>(key: string): Promise<T | undefined>;
  /** Every key that starts with `prefix`, sorted. */
  list(prefix: string): Promise<string[]>;
  delete(keys: string[]): Promise<void>;
}

export function s3Store(s3: S3Client, bucket: string): LakeStore {
  return {
    url: (key) => `s3://${bucket}/${key}`,
    putFile: async (key, file) => ({ bytes: (await uploadFile(s3, bucket, key, file)).bytes }),
    getFile: async (key, file) => void (await downloadFile(s3, bucket, key, file)),
    putJson: (key, value) => putJson(s3, bucket, key, value),
    getJson: (key) => getJson(s3, bucket, key),
    async list(prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async delete(keys) {
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      }
    },
  };
}

/** A local folder as a store: for unit tests of the lake's logic, and nothing else. */
export function folderStore(root: string): LakeStore {
  const at = (key: string) => path.join(root, ...key.split('/'));
  const write = (key: string, body: Buffer | string) => {
    fs.mkdirSync(path.dirname(at(key)), { recursive: true });
    const temp = `${at(key)}.${process.pid}.tmp`;
    fs.writeFileSync(temp, body);
    fs.renameSync(temp, at(key)); // whole or not at all, as a PUT
  };
  const walk = (dir: string, prefix: string): string[] =>
    fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name), `${prefix}${e.name}/`) : e.name.endsWith('.tmp') ? [] : [`${prefix}${e.name}`])) : [];
  return {
    url: (key) => at(key),
    async putFile(key, file) {
      write(key, fs.readFileSync(file));
      return { bytes: fs.statSync(at(key)).size };
    },
    getFile: async (key, file) => fs.copyFileSync(at(key), file),
    putJson: async (key, value) => write(key, JSON.stringify(value, null, 2)),
    getJson: async <T>(key: string) => (fs.existsSync(at(key)) ? (JSON.parse(fs.readFileSync(at(key), 'utf8')) as T) : undefined),
    list: async (prefix) => walk(root, '').filter((k) => k.startsWith(prefix)).sort(),
    delete: async (keys) => keys.forEach((k) => fs.rmSync(at(k), { force: true })),
  };
}
