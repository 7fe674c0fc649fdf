/**
 * Moving staged files between local disk and S3, streamed in both directions so
 * memory does not grow with file size. The one upload path: multipart through
 * @aws-sdk/lib-storage.
 */
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Parts smaller than 5 MiB are rejected by S3 (except the last one). */
export const PART_SIZE_BYTES = 8 * 1024 * 1024;

export interface UploadedObject {
  bucket: string;
  key: string;
  bytes: number;
  /** How many parts the multipart upload used (1 means a single PUT). */
  parts: number;
}

export async function uploadFile(s3: S3Client, bucket: string, key: string, file: string, partSize = PART_SIZE_BYTES): Promise<UploadedObject> {
  const bytes = fs.statSync(file).size;
  const upload = new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: fs.createReadStream(file) },
    partSize,
    queueSize: 4,
    leavePartsOnError: false,
  });
  const partNumbers = new Set<number>();
  upload.on('httpUploadProgress', (p) => {
    if (p.part !== undefined) partNumbers.add(p.part);
  });
  await upload.done();
  return { bucket, key, bytes, parts: Math.max(1, partNumbers.size) };
}

export async function downloadFile(s3: S3Client, bucket: string, key: string, file: string): Promise<number> {
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!response.Body) throw new Error(`s3://${bucket}/${key} has no body`);
  await pipeline(response.Body as Readable, fs.createWriteStream(file));
  return fs.statSync(file).size;
}

/** A small JSON document (manifest, marker) from S3, or undefined when there is none; `signal` ends the request. */
export async function getJson<T>(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<T | undefined> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    return JSON.parse(await response.Body!.transformToString()) as T;
  } catch (err) {
    if (err instanceof NoSuchKey || (err as Error).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

export async function putJson(s3: S3Client, bucket: string, key: string, value: unknown): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(value, null, 2), ContentType: 'application/json' }));
}

export async function deleteObject(s3: S3Client, bucket: string, key: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** How much of an object `objectStream` fetches per request. */
export const RANGE_BYTES = 4 * 1024 * 1024;

/**
 * An object's bytes as a stream (for line-by-line reading) without staging it
 * on disk. Fetched in ranges of `rangeBytes`, each read whole as soon as it is
 * asked for, so a reader that takes its time (the load, at the write budget's
 * pace) never leaves a connection idle: the S3 client gives up on a connection
 * that goes silent (src/aws.ts SOCKET_TIMEOUT_MS), and one paused by its reader
 * looks the same. At most two ranges are in memory at once. Every range must
 * come from the version of the object the first one did.
 */
export async function objectStream(s3: S3Client, bucket: string, key: string, rangeBytes = RANGE_BYTES): Promise<Readable> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  const size = head.ContentLength ?? 0;
  async function* ranges(): AsyncGenerator<Buffer> {
    for (let start = 0; start < size; start += rangeBytes) {
      const end = Math.min(size, start + rangeBytes) - 1;
      let bytes: Uint8Array;
      try {
        const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end}`, IfMatch: head.ETag }));
        bytes = await response.Body!.transformToByteArray();
      } catch (err) {
        if ((err as Error).name !== 'PreconditionFailed') throw err;
        throw new Error(`s3://${bucket}/${key} was replaced while it was being read (at byte ${start} of ${size}); run the step again to read the new object`);
      }
      if (bytes.length !== end - start + 1) throw new Error(`s3://${bucket}/${key}: asked for bytes ${start}-${end}, got ${bytes.length} bytes`);
      yield Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    }
  }
  // Not in object mode, with the smallest buffer: the next range is fetched only once the reader has taken this one.
  return Readable.from(ranges(), { objectMode: false, highWaterMark: 1 });
}
