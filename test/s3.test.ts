/**
 * Reading staged objects from the stack's S3: `objectStream` returns every
 * byte across its ranges, keeps working when its reader pauses for longer than
 * the client allows a connection to stay silent, and says so when the object
 * is replaced under it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { s3Client } from '../src/aws.js';
import { loadConfig } from '../src/config.js';
import { deleteObject, objectStream } from '../src/s3.js';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { uniqueName } from './helpers.js';

const config = loadConfig();
const bucket = config.stagingBucket;
const s3 = s3Client(config.aws);
const keys: string[] = [];

after(async () => {
  for (const key of keys) await deleteObject(s3, bucket, key).catch(() => undefined);
  s3.destroy();
});

async function put(body: Buffer): Promise<string> {
  const key = `test/${uniqueName('object-stream')}`;
  keys.push(key);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  return key;
}

async function readAll(stream: AsyncIterable<Buffer>, pauseAfterFirstMs = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    if (chunks.length === 0 && pauseAfterFirstMs) await new Promise((r) => setTimeout(r, pauseAfterFirstMs));
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

test('objectStream returns every byte of an object read in ranges, whether the size is a multiple of the range or not, and an empty object as nothing', async () => {
  const body = crypto.randomBytes(10_000 + 123);
  const key = await put(body);
  for (const rangeBytes of [1_000, 10_123, 4_096, 1_000_000]) {
    const read = await readAll(await objectStream(s3, bucket, key, rangeBytes));
    assert.ok(read.equals(body), `ranges of ${rangeBytes} bytes: read ${read.length} bytes, ${read.equals(body) ? 'equal' : 'different'}`);
  }
  const empty = await put(Buffer.alloc(0));
  assert.equal((await readAll(await objectStream(s3, bucket, empty, 1_000))).length, 0);
});

test('a reader that pauses longer than a connection may stay silent still reads the whole object', async () => {
  // A client that gives up on a connection after 1 s without a byte: the object is far larger than what the
  // connection's buffers hold, so a single GET left waiting on its reader would time out during the pause.
  const impatient = s3Client(config.aws, 1_000);
  try {
    const body = crypto.randomBytes(24 * 1024 * 1024);
    const key = await put(body);
    const read = await readAll(await objectStream(impatient, bucket, key, 1024 * 1024), 2_500);
    assert.ok(read.equals(body), `read ${read.length} of ${body.length} bytes, ${read.equals(body) ? 'equal' : 'different'}`);
  } finally {
    impatient.destroy();
  }
});

test('an object replaced while it is being read fails the read, naming the object, instead of mixing two versions', async () => {
  const key = await put(crypto.randomBytes(5_000));
  const stream = await objectStream(s3, bucket, key, 1_000);
  const reading = stream[Symbol.asyncIterator]();
  assert.equal(((await reading.next()).value as Buffer).length, 1_000);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: crypto.randomBytes(5_000) }));
  await assert.rejects(
    async () => {
      for (let next = await reading.next(); !next.done; next = await reading.next());
    },
    (err: Error) => err.message.includes(`s3://${bucket}/${key} was replaced while it was being read`),
  );
});
