/**
 * The smoke check: one small round trip through every part ferry depends on,
 * run as real activities on a real worker. If this passes, the stack (or the
 * real services the environment points at) can carry a migration.
 */
import { CreateTableCommand, DescribeTableCommand, GetItemCommand, PutItemCommand, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  PutRecordCommand,
  ResourceNotFoundException as StreamNotFound,
} from '@aws-sdk/client-kinesis';
import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamoClient, kinesisClient, s3Client } from '../src/aws.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { downloadFile, uploadFile } from '../src/s3.js';

export interface SmokeRow {
  id: string;
  payload: string;
}

export async function smokeMysql(runId: string): Promise<SmokeRow> {
  const db = await connectMysql(loadConfig().mysqlUrl);
  try {
    await db.query('CREATE TABLE IF NOT EXISTS ferry_smoke (id VARCHAR(64) PRIMARY KEY, payload VARCHAR(255) NOT NULL, written_at DATETIME(6) NOT NULL)');
    const payload = `smoke ✓ ${runId}`;
    await db.query('REPLACE INTO ferry_smoke (id, payload, written_at) VALUES (?, ?, NOW(6))', [runId, payload]);
    const [rows] = await db.query('SELECT id, payload FROM ferry_smoke WHERE id = ?', [runId]);
    const row = (rows as SmokeRow[])[0];
    if (!row || row.payload !== payload) throw new Error(`MariaDB returned ${JSON.stringify(row)} for the row just written`);
    return { id: row.id, payload: row.payload };
  } finally {
    await db.end();
  }
}

export interface ParquetRoundTrip {
  key: string;
  bytes: number;
  parts: number;
  rows: number;
}

/** Filler rows make the file large enough that the upload really is multipart. */
const FILLER_ROWS = 400_000;

export async function smokeParquetRoundTrip(row: SmokeRow): Promise<ParquetRoundTrip> {
  const config = loadConfig();
  const s3 = s3Client(config.aws);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-smoke-'));
  const instance = await DuckDBInstance.create(':memory:');
  const duck = await instance.connect();
  try {
    await duck.run('CREATE TABLE smoke (id VARCHAR, payload VARCHAR)');
    const appender = await duck.createAppender('smoke');
    appender.appendVarchar(row.id);
    appender.appendVarchar(row.payload);
    appender.endRow();
    appender.closeSync();
    await duck.run(`INSERT INTO smoke SELECT 'filler-' || i, md5(i::VARCHAR) || md5((i * 7)::VARCHAR) FROM range(${FILLER_ROWS}) t(i)`);
    const local = path.join(dir, 'smoke.parquet');
    await duck.run(`COPY smoke TO '${local}' (FORMAT parquet, COMPRESSION uncompressed)`);

    const key = `smoke/${row.id}/smoke.parquet`;
    const uploaded = await uploadFile(s3, config.stagingBucket, key, local, 5 * 1024 * 1024);
    const back = path.join(dir, 'back.parquet');
    await downloadFile(s3, config.stagingBucket, key, back);
    const reader = await duck.runAndReadAll(
      `SELECT count(*)::INTEGER AS n, max(payload) FILTER (WHERE id = $id) AS payload FROM read_parquet('${back}')`,
      { id: row.id },
    );
    const [n, payload] = reader.getRows()[0] as [number, string | null];
    if (n !== FILLER_ROWS + 1 || payload !== row.payload) {
      throw new Error(`Parquet read back from s3://${config.stagingBucket}/${key} has ${n} rows and payload ${payload}`);
    }
    return { key, bytes: uploaded.bytes, parts: uploaded.parts, rows: n };
  } finally {
    duck.closeSync();
    instance.closeSync();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const SMOKE_TABLE = 'ferry_smoke';

/** Creation that tolerates a concurrent smoke run having created the same thing first. */
async function createIfAbsent(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if ((err as Error).name !== 'ResourceInUseException') throw err;
  }
}

export async function smokeDynamo(row: SmokeRow): Promise<SmokeRow> {
  const dynamo = dynamoClient(loadConfig().aws);
  try {
    await dynamo.send(new DescribeTableCommand({ TableName: SMOKE_TABLE }));
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
    await createIfAbsent(() => dynamo.send(
      new CreateTableCommand({
        TableName: SMOKE_TABLE,
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    ));
  }
  await dynamo.send(new PutItemCommand({ TableName: SMOKE_TABLE, Item: { id: { S: row.id }, payload: { S: row.payload } } }));
  const got = await dynamo.send(new GetItemCommand({ TableName: SMOKE_TABLE, Key: { id: { S: row.id } }, ConsistentRead: true }));
  if (got.Item?.payload?.S !== row.payload) throw new Error(`DynamoDB returned ${JSON.stringify(got.Item)} for the item just written`);
  return { id: row.id, payload: got.Item.payload.S };
}

const SMOKE_STREAM = 'ferry-smoke';

export async function smokeKinesis(row: SmokeRow): Promise<{ sequenceNumber: string; shardId: string }> {
  const kinesis = kinesisClient(loadConfig().aws);
  try {
    await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: SMOKE_STREAM }));
  } catch (err) {
    if (!(err instanceof StreamNotFound)) throw err;
    await createIfAbsent(() => kinesis.send(new CreateStreamCommand({ StreamName: SMOKE_STREAM, ShardCount: 1 })));
  }
  for (let i = 0; ; i++) {
    const { StreamDescriptionSummary } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: SMOKE_STREAM }));
    if (StreamDescriptionSummary?.StreamStatus === 'ACTIVE') break;
    if (i > 100) throw new Error(`Kinesis stream ${SMOKE_STREAM} did not become ACTIVE`);
    await sleep(200);
  }
  const data = new TextEncoder().encode(JSON.stringify(row));
  const put = await kinesis.send(new PutRecordCommand({ StreamName: SMOKE_STREAM, PartitionKey: row.id, Data: data }));
  const iterator = await kinesis.send(
    new GetShardIteratorCommand({
      StreamName: SMOKE_STREAM,
      ShardId: put.ShardId,
      ShardIteratorType: 'AT_SEQUENCE_NUMBER',
      StartingSequenceNumber: put.SequenceNumber,
    }),
  );
  const records = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator.ShardIterator, Limit: 1 }));
  const first = records.Records?.[0];
  if (!first || new TextDecoder().decode(first.Data) !== JSON.stringify(row)) {
    throw new Error(`Kinesis returned ${first ? new TextDecoder().decode(first.Data) : 'no record'} for the record just put`);
  }
  return { sequenceNumber: put.SequenceNumber!, shardId: put.ShardId! };
}
