/**
 * staging.sse: every object ferry stages is written with server-side
 * encryption. The local S3 server accepts the headers but does not report
 * them back, so the test stands between the worker and S3 and reads every
 * request that creates an object (PUT, multipart create, copy) itself.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { stagingS3 } from '../src/aws.js';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { uploadFile } from '../src/s3.js';
import { parseSpec } from '../src/spec.js';
import { idMapping, scanAll, startWorkerProcess, stopFerry, uniqueName } from './helpers.js';

const config = loadConfig();
const database = `sse_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('sse');

interface Creation {
  what: string;
  sse?: string;
  kmsKey?: string;
}

/** Forwards to S3 unchanged and keeps the requests that create an object. */
class RecordingS3Proxy {
  readonly creations: Creation[] = [];
  url = '';
  private readonly server: http.Server;

  constructor(upstream: URL) {
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const creates = (req.method === 'PUT' && !url.searchParams.has('partNumber')) || (req.method === 'POST' && url.searchParams.has('uploads'));
      if (creates) {
        this.creations.push({
          what: `${req.method} ${url.pathname}${url.search}`,
          sse: req.headers['x-amz-server-side-encryption'] as string | undefined,
          kmsKey: req.headers['x-amz-server-side-encryption-aws-kms-key-id'] as string | undefined,
        });
      }
      const forward = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.destroy());
      req.pipe(forward);
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const proxy = new RecordingS3Proxy(new URL(config.aws.endpoints.s3!));
let worker: ChildProcess | undefined;
let ferry: FerryClient | undefined;

before(async () => {
  await proxy.start();
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.acct (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.acct SELECT seq, CONCAT('n', seq) FROM seq_1_to_300`);
  } finally {
    await db.end();
  }
  worker = await startWorkerProcess(taskQueue, { AWS_ENDPOINT_URL_S3: proxy.url });
  ferry = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } });
});

after(async () => {
  await stopFerry({ worker, ferry }, [database]);
  await proxy.stop();
});

test('a migration with capture and staging.sse AES256 writes every staged object with SSE-S3', async () => {
  const target = uniqueName('acct');
  const name = uniqueName('sse');
  const migration = await ferry!.startMigration({
    name,
    source: { database },
    mapping: idMapping(database, 'acct', target),
    target: { create: true },
    staging: { sse: 'AES256' },
    bulk: { partitions: 2, concurrency: 1 },
    capture: { stream: uniqueName('sse-stream'), createStream: true, shards: 1, cutover: 'none' },
  });
  const report = await migration.result();
  assert.equal(report.rows, 300);
  assert.equal((await scanAll(target)).length, 300);

  const mine = proxy.creations.filter((c) => c.what.includes(`/${name}/`));
  // The claim, the plan, each partition's export, transform and manifest, capture's checkpoints: all staged by this run.
  for (const part of ['migration.json', 'capture.json', 'plan.json', 'rows.', 'export.json', 'items.jsonl', 'manifest.json']) {
    assert.ok(mine.some((c) => c.what.includes(part)), `a ${part} was staged: ${mine.map((c) => c.what).join(', ')}`);
  }
  const plain = mine.filter((c) => c.sse !== 'AES256');
  assert.deepEqual(plain, [], `${plain.length} of ${mine.length} staged objects were written without SSE-S3`);
});

test('aws:kms with a key id: single PUTs and multipart uploads ask for SSE-KMS with that key', async () => {
  const spec = parseSpec({ name: 'kms', source: { database: 'd' }, mapping: idMapping('d', 't', 'ttt'), staging: { sse: 'aws:kms', kmsKeyId: 'alias/ferry-staging' } });
  assert.equal(spec.staging.sse, 'aws:kms');
  const s3 = stagingS3({ ...config.aws, endpoints: { ...config.aws.endpoints, s3: proxy.url } }, { sse: { algorithm: 'aws:kms', kmsKeyId: 'alias/ferry-staging' } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-sse-'));
  try {
    const small = path.join(dir, 'small');
    const large = path.join(dir, 'large');
    fs.writeFileSync(small, 'x');
    fs.writeFileSync(large, Buffer.alloc(12 * 1024 * 1024));
    const key = uniqueName('kms-probe');
    await uploadFile(s3, config.stagingBucket, `${key}/small`, small);
    assert.equal((await uploadFile(s3, config.stagingBucket, `${key}/large`, large)).parts, 2);
    const mine = proxy.creations.filter((c) => c.what.includes(key));
    assert.deepEqual(
      mine.map((c) => [c.what.replace(/\?x-id=PutObject$/, '').replace(/uploads=?.*/, 'uploads'), c.sse, c.kmsKey]),
      [
        [`PUT /${config.stagingBucket}/${key}/small`, 'aws:kms', 'alias/ferry-staging'],
        [`POST /${config.stagingBucket}/${key}/large?uploads`, 'aws:kms', 'alias/ferry-staging'],
      ],
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('kmsKeyId without sse aws:kms is refused, naming the field', () => {
  assert.throws(
    () => parseSpec({ name: 'kms', source: { database: 'd' }, mapping: idMapping('d', 't', 'ttt'), staging: { sse: 'AES256', kmsKeyId: 'k' } }),
    /spec\.staging\.kmsKeyId: kmsKeyId needs sse: "aws:kms"/,
  );
});
