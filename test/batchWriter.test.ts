/**
 * The load's BatchWriteItem client (src/load/batchWriter.ts) against DynamoDB
 * Local: staged lines of every attribute type arrive as the items they
 * describe, and DynamoDB's refusals keep the names the load's error policy
 * reads. What DynamoDB Local never answers (a 5xx, UnprocessedItems, a
 * signature refused for a wrong clock) is played by a small HTTP server that
 * answers as DynamoDB does.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient, GetItemCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dynamoClient } from '../src/aws.js';
import { loadConfig, LOCAL_CREDENTIALS } from '../src/config.js';
import { BatchWriter, DynamoCallError } from '../src/load/batchWriter.js';
import { comparableLine, itemToLine } from '../src/mapping/itemJson.js';
import type { Item } from '../src/mapping/item.js';
import { uniqueName } from './helpers.js';

const config = loadConfig();
const dynamo = dynamoClient(config.aws);
const table = uniqueName('batch_writer');
const writer = new BatchWriter(dynamoClient(config.aws));

before(async () => {
  await dynamo.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'N' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
    }),
  );
  await waitUntilTableExists({ client: dynamo, maxWaitTime: 60 }, { TableName: table });
});

after(async () => {
  writer.close();
  await dynamo.send(new DeleteTableCommand({ TableName: table })).catch(() => {});
});

function itemOf(i: number): Item {
  return {
    pk: { S: `customer|${i}|ünïcødé ✓ "quoted" \\ back` },
    sk: { N: String(i) },
    decimal: { N: '12345678901234567890123456789012345678' },
    bytes: { B: Uint8Array.from([0, 1, 2, 255, i % 256]) },
    flag: { BOOL: i % 2 === 0 },
    nothing: { NULL: true },
    doc: { M: { nested: { L: [{ S: 'a' }, { N: '-1.5' }, { M: { deep: { S: `${i}` } } }] } } },
    strings: { SS: ['x', 'y'] },
    numbers: { NS: ['1', '2.5'] },
    blobs: { BS: [Uint8Array.from([1]), Uint8Array.from([2, 3])] },
  };
}

test('25 staged lines of every attribute type are written as the items they describe', async () => {
  const items = Array.from({ length: 25 }, (_, i) => itemOf(i));
  const { unprocessed } = await writer.write(table, items.map(itemToLine));
  assert.deepEqual(unprocessed, []);
  for (const [i, item] of items.entries()) {
    const got = await dynamo.send(new GetItemCommand({ TableName: table, Key: { pk: item.pk!, sk: item.sk! }, ConsistentRead: true }));
    assert.ok(got.Item, `item ${i} was written`);
    assert.equal(comparableLine(got.Item as Item), comparableLine(item), `item ${i} as written`);
  }
});

test("a refused item keeps DynamoDB's error name, so the load's policy reads it as before", async () => {
  const wrongKeyType = itemToLine({ pk: { N: '1' }, sk: { N: '1' } });
  await assert.rejects(writer.write(table, [wrongKeyType]), (err: unknown) => {
    assert.ok(err instanceof DynamoCallError);
    assert.equal(err.name, 'ValidationException');
    assert.equal(err.status, 400);
    return true;
  });
});

test('a table that does not exist is named as the SDK names it', async () => {
  await assert.rejects(writer.write(uniqueName('absent'), [itemToLine(itemOf(1))]), { name: 'ResourceNotFoundException' });
});

interface Seen {
  target: string | undefined;
  amzDate: string;
  body: string;
}

/** Answers each BatchWriteItem with `answer(request, n)` (n from 1); returns the writer pointed at it and what it received. */
async function fakeDynamo(answer: (seen: Seen, n: number) => { status: number; body: unknown; date?: Date }) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const request = { target: req.headers['x-amz-target'] as string | undefined, amzDate: String(req.headers['x-amz-date']), body };
      seen.push(request);
      const reply = answer(request, seen.length);
      res.writeHead(reply.status, { 'content-type': 'application/x-amz-json-1.0', date: (reply.date ?? new Date()).toUTCString() });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const fake = new BatchWriter(new DynamoDBClient({ region: config.aws.region, endpoint: `http://127.0.0.1:${port}`, credentials: LOCAL_CREDENTIALS }));
  return {
    writer: fake,
    seen,
    close: async () => {
      fake.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const ok = { status: 200, body: { UnprocessedItems: {} } };
const line = itemToLine({ pk: { S: 'a' }, sk: { N: '1' } });

/** The time a SigV4 X-Amz-Date (20261124T174200Z) names. */
function amzTime(value: string): number {
  const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(value);
  assert.ok(m, `X-Amz-Date ${value}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

test('a call refused as signed by a clock an hour off is signed again with the service\'s clock, once', async () => {
  const serverTime = () => new Date(Date.now() + 3_600_000);
  const fake = await fakeDynamo((request) => {
    const skew = Math.abs(amzTime(request.amzDate) - serverTime().getTime());
    if (skew > 300_000) return { status: 400, date: serverTime(), body: { __type: 'com.amazon.coral.service#InvalidSignatureException', message: 'Signature expired' } };
    return { ...ok, date: serverTime() };
  });
  try {
    assert.deepEqual(await fake.writer.write('t', [line]), { unprocessed: [] });
    assert.equal(fake.seen.length, 2, 'one refusal, one call signed with the corrected clock');
    assert.ok(Math.abs(amzTime(fake.seen[1]!.amzDate) - serverTime().getTime()) < 300_000);
    // The next call is signed with the corrected clock from the start.
    await fake.writer.write('t', [line]);
    assert.equal(fake.seen.length, 3);
  } finally {
    await fake.close();
  }
});

test('a signature refused while the clocks agree is not sent again', async () => {
  const fake = await fakeDynamo(() => ({ status: 400, body: { __type: 'com.amazon.coral.service#InvalidSignatureException', message: 'The request signature we calculated does not match' } }));
  try {
    await assert.rejects(fake.writer.write('t', [line]), { name: 'InvalidSignatureException', message: /does not match/ });
    assert.equal(fake.seen.length, 1);
  } finally {
    await fake.close();
  }
});

test('a 5xx answer is sent again; a 4xx answer is not', async () => {
  const flaky = await fakeDynamo((_, n) => (n === 1 ? { status: 500, body: { __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'try again' } } : ok));
  try {
    assert.deepEqual(await flaky.writer.write('t', [line]), { unprocessed: [] });
    assert.equal(flaky.seen.length, 2);
    assert.equal(flaky.seen[0]!.body, flaky.seen[1]!.body, 'the same items again');
    assert.equal(flaky.seen[0]!.target, 'DynamoDB_20120810.BatchWriteItem');
  } finally {
    await flaky.close();
  }
  const throttled = await fakeDynamo(() => ({ status: 400, body: { __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'slow down' } }));
  try {
    // The load's own policy slows the budget down and retries with backoff; the writer must not hide the throttling.
    await assert.rejects(throttled.writer.write('t', [line]), { name: 'ProvisionedThroughputExceededException', message: 'slow down' });
    assert.equal(throttled.seen.length, 1);
  } finally {
    await throttled.close();
  }
});

test('UnprocessedItems come back as the staged lines to send again', async () => {
  const lines = [line, itemToLine({ pk: { S: 'b' }, sk: { N: '2' }, note: { S: 'é "q"' } })];
  const fake = await fakeDynamo((request) => {
    const sent = JSON.parse(request.body) as { RequestItems: Record<string, { PutRequest: { Item: unknown } }[]> };
    return { status: 200, body: { UnprocessedItems: { t: [sent.RequestItems.t![1]] } } };
  });
  try {
    const { unprocessed } = await fake.writer.write('t', lines);
    assert.deepEqual(unprocessed.map((l) => JSON.parse(l) as unknown), [JSON.parse(lines[1]!) as unknown]);
  } finally {
    await fake.close();
  }
});

test("without an endpoint of its own, the writer calls DynamoDB's regional endpoint, as the SDK would", async () => {
  const regional = new BatchWriter(new DynamoDBClient({ region: 'eu-west-1', credentials: LOCAL_CREDENTIALS }));
  const fips = new BatchWriter(new DynamoDBClient({ region: 'us-east-1', useFipsEndpoint: true, credentials: LOCAL_CREDENTIALS }));
  try {
    assert.equal((await regional.url()).href, 'https://dynamodb.eu-west-1.amazonaws.com/');
    assert.equal((await fips.url()).href, 'https://dynamodb-fips.us-east-1.amazonaws.com/');
  } finally {
    regional.close();
    fips.close();
  }
});
