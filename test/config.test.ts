import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveRegion, s3Client } from '../src/aws.js';
import { loadConfig, stackPorts } from '../src/config.js';

test('with nothing set, ferry points at the local stack on loopback', () => {
  const config = loadConfig({});
  assert.equal(config.temporal.address, '127.0.0.1:7233');
  assert.equal(config.temporal.namespace, 'default');
  assert.equal(config.temporal.taskQueue, 'ferry');
  assert.equal(config.temporal.tls, false);
  assert.equal(config.temporal.uiUrl, 'http://127.0.0.1:8233');
  assert.equal(config.aws.local, true);
  assert.deepEqual(config.aws.endpoints, {
    s3: 'http://127.0.0.1:7070',
    dynamodb: 'http://127.0.0.1:8000',
    kinesis: 'http://127.0.0.1:4568',
  });
  assert.equal(config.mysqlUrl, 'mysql://ferry:ferry@127.0.0.1:3307/ferry');
});

test('FERRY_AWS=aws drops every local endpoint so the SDK uses real AWS and its default credential chain', () => {
  const config = loadConfig({ FERRY_AWS: 'aws', AWS_REGION: 'eu-west-1' });
  assert.equal(config.aws.local, false);
  assert.equal(config.aws.region, 'eu-west-1');
  assert.deepEqual(config.aws.endpoints, { s3: undefined, dynamodb: undefined, kinesis: undefined });
});

test('a per-service endpoint override wins, for real AWS as for the local stack', () => {
  const config = loadConfig({ FERRY_AWS: 'aws', AWS_ENDPOINT_URL_DYNAMODB: 'http://dynamo.internal:8000' });
  assert.equal(config.aws.endpoints.dynamodb, 'http://dynamo.internal:8000');
  assert.equal(config.aws.endpoints.s3, undefined);
});

test('a Temporal Cloud API key turns TLS on; the address and namespace come from the environment', () => {
  const config = loadConfig({ TEMPORAL_ADDRESS: 'acme.a1b2c.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'acme.a1b2c', TEMPORAL_API_KEY: 'k' });
  assert.equal(config.temporal.address, 'acme.a1b2c.tmprl.cloud:7233');
  assert.equal(config.temporal.namespace, 'acme.a1b2c');
  assert.equal(config.temporal.tls, true);
});

test('moving a stack port moves the endpoint ferry uses for that part', () => {
  const config = loadConfig({ FERRY_S3_PORT: '9100', FERRY_TEMPORAL_PORT: '7300' });
  assert.equal(config.aws.endpoints.s3, 'http://127.0.0.1:9100');
  assert.equal(config.temporal.address, '127.0.0.1:7300');
});

test('a port that is not a port is refused with the variable name and the fix', () => {
  assert.throws(() => stackPorts({ FERRY_MYSQL_PORT: 'three' }), /FERRY_MYSQL_PORT=three is not a TCP port: set it to an integer between 1 and 65535/);
  assert.throws(() => stackPorts({ FERRY_DYNAMODB_PORT: '70000' }), /FERRY_DYNAMODB_PORT=70000/);
});

test('against real AWS with no AWS_REGION, the region is the profile\'s (the SDK\'s chain), not us-east-1', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-region-'));
  const saved = { ...process.env };
  try {
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    delete process.env.AWS_PROFILE;
    const file = path.join(dir, 'config');
    fs.writeFileSync(file, '[default]\nregion = ap-south-1\n\n[profile eu]\nregion = eu-central-1\n');
    process.env.AWS_CONFIG_FILE = file;
    process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(dir, 'credentials');
    const config = loadConfig({ FERRY_AWS: 'aws' });
    assert.equal(config.aws.region, undefined);
    assert.equal(await resolveRegion(config.aws), 'ap-south-1');
    process.env.AWS_PROFILE = 'eu';
    assert.equal(await resolveRegion(loadConfig({ FERRY_AWS: 'aws' }).aws), 'eu-central-1');
    assert.equal(await s3Client(config.aws).config.region(), 'eu-central-1');
    assert.equal(loadConfig({ FERRY_AWS: 'aws', AWS_DEFAULT_REGION: 'sa-east-1' }).aws.region, 'sa-east-1');
  } finally {
    process.env = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('against real AWS with no region anywhere, the worker is refused with the ways to set one', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-region-'));
  const saved = { ...process.env };
  try {
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    delete process.env.AWS_PROFILE;
    process.env.AWS_CONFIG_FILE = path.join(dir, 'no-region-config');
    fs.writeFileSync(process.env.AWS_CONFIG_FILE, '[default]\noutput = json\n');
    process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(dir, 'credentials');
    await assert.rejects(resolveRegion(loadConfig({ FERRY_AWS: 'aws' }).aws), /no AWS region found .*set AWS_REGION, or give the default profile a region/);
    // The local stack needs none: its servers run in us-east-1.
    assert.equal(loadConfig({}).aws.region, 'us-east-1');
  } finally {
    process.env = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
