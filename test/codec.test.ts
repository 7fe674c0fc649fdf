/**
 * FERRY_PAYLOAD_KEY: what ferry puts in Temporal's history is encrypted. The
 * codec as a unit (round trip, a wrong key named, no plaintext in the
 * ciphertext), then end to end: a migration run by a worker and client with
 * the key leaves no spec, table or row value readable in its history, read
 * raw from the server by a client without it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { AesGcmCodec, dataConverterFromEnv, ENCRYPTED_ENCODING } from '../src/codec.js';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { idMapping, startWorkerProcess, stopFerry, uniqueName } from './helpers.js';

const KEY = randomBytes(32).toString('base64');

/**
 * Every payload of a history, as the server stores it, but search attributes (the phase and percent the
 * server indexes, which must stay readable to it) and the SDK's version markers (patch ids), neither of
 * which carries data.
 */
function payloadsIn(value: unknown, found: Payload[] = []): Payload[] {
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return found;
  if ('metadata' in value && 'data' in value && (value as Payload).data instanceof Uint8Array) found.push(value as Payload);
  else for (const [key, inner] of Object.entries(value)) if (key !== 'searchAttributes' && key !== 'markerRecordedEventAttributes') payloadsIn(inner, found);
  return found;
}

test('AES-GCM round trip; the ciphertext holds no plaintext; another key is refused by name; a bad key is refused with how to make one', async () => {
  const codec = new AesGcmCodec(Buffer.from(KEY, 'base64'));
  const plain = defaultPayloadConverter.toPayload({ secret: 'ssn 078-05-1120' });
  const [sealed] = await codec.encode([plain]);
  assert.equal(Buffer.from(sealed!.metadata!.encoding!).toString(), ENCRYPTED_ENCODING);
  assert.ok(!Buffer.from(sealed!.data!).toString('latin1').includes('078-05-1120'));
  assert.deepEqual(defaultPayloadConverter.fromPayload((await codec.decode([sealed!]))[0]!), { secret: 'ssn 078-05-1120' });
  const other = new AesGcmCodec(randomBytes(32));
  await assert.rejects(other.decode([sealed!]), /cannot be read with FERRY_PAYLOAD_KEY/);
  assert.throws(() => dataConverterFromEnv({ FERRY_PAYLOAD_KEY: 'c2hvcnQ=' }), /must be 32 bytes, base64-encoded .*openssl rand -base64 32/);
  assert.equal(dataConverterFromEnv({}), undefined);
});

const config = loadConfig();
const database = `codec_${uniqueName('t').replace(/-/g, '_')}`;
const taskQueue = uniqueName('codec');
let worker: ChildProcess | undefined;
let ferry: FerryClient | undefined;

before(async () => {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.secrets (id INT PRIMARY KEY, ssn VARCHAR(20) NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.secrets SELECT seq, CONCAT('ssn-', seq) FROM seq_1_to_50`);
  } finally {
    await db.end();
  }
  worker = await startWorkerProcess(taskQueue, { FERRY_PAYLOAD_KEY: KEY });
  process.env.FERRY_PAYLOAD_KEY = KEY;
  try {
    ferry = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } });
  } finally {
    delete process.env.FERRY_PAYLOAD_KEY;
  }
});

after(async () => {
  await stopFerry({ worker, ferry }, [database]);
});

test('with FERRY_PAYLOAD_KEY, a migration’s history holds ciphertext only: no spec, no table name, no key range, no report', async () => {
  const name = uniqueName('codec');
  const target = uniqueName('secrets');
  const migration = await ferry!.startMigration({ name, source: { database }, mapping: idMapping(database, 'secrets', target), target: { create: true }, bulk: { partitions: 2 } });
  const report = await migration.result();
  assert.equal(report.rows, 50, 'the client with the key reads the report');

  // Raw, as the server, its database and the Web UI hold it.
  const connection = await Connection.connect({ address: config.temporal.address });
  try {
    const raw = new Client({ connection, namespace: config.temporal.namespace });
    const history = await raw.workflow.getHandle(name).fetchHistory();
    const payloads = payloadsIn(history);
    assert.ok(payloads.length > 10, `the history has payloads (${payloads.length})`);
    for (const payload of payloads) {
      assert.equal(Buffer.from(payload.metadata?.encoding ?? []).toString(), ENCRYPTED_ENCODING, `every payload is encrypted: ${Buffer.from(payload.data ?? []).toString().slice(0, 80)}`);
      const bytes = Buffer.from(payload.data ?? []).toString('latin1');
      for (const secret of [database, target, 'secrets', 'plannedRows']) assert.ok(!bytes.includes(secret), `a payload shows ${secret} in plain text`);
    }
  } finally {
    await connection.close();
  }
});
