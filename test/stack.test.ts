import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, runFerry } from './helpers.js';

test('`ferry stack up` fails with a message naming the part, the taken port, the fix and the log file', async () => {
  const stackDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-stack-'));
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  const takenPort = (squatter.address() as net.AddressInfo).port;
  try {
    const result = await runFerry(['stack', 'up', 'kinesis'], {
      FERRY_STACK_DIR: stackDir,
      FERRY_KINESIS_PORT: String(takenPort),
      FERRY_KINESIS_TLS_PORT: String(await freePort()),
    });
    assert.equal(result.code, 1, `expected exit 1, got ${result.code}\n${result.stdout}\n${result.stderr}`);
    assert.match(result.stderr, /kinesis: port 127\.0\.0\.1:\d+ is already in use by another process/);
    assert.ok(result.stderr.includes(`127.0.0.1:${takenPort}`), result.stderr);
    assert.ok(result.stderr.includes('FERRY_KINESIS_PORT=<port>'), result.stderr);
    assert.ok(result.stderr.includes(path.join(stackDir, 'logs', 'kinesis.log')), result.stderr);
    assert.equal(fs.existsSync(path.join(stackDir, 'kinesis', 'kinesis.pid')), false, 'no pid file is left for a part that never started');
  } finally {
    squatter.close();
    fs.rmSync(stackDir, { recursive: true, force: true });
  }
});

test('a part whose process dies before it is healthy is reported with its log tail', async () => {
  const stackDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-stack-'));
  try {
    // A Temporal "binary" that exits at once stands in for a server that cannot start.
    const fakeTemporal = path.join(stackDir, 'temporal-that-fails');
    fs.writeFileSync(fakeTemporal, '#!/bin/sh\necho "cannot open database: disk full" >&2\nexit 3\n', { mode: 0o755 });
    const result = await runFerry(['stack', 'up', 'temporal'], {
      FERRY_STACK_DIR: stackDir,
      FERRY_TEMPORAL_BIN: fakeTemporal,
      FERRY_TEMPORAL_PORT: String(await freePort()),
      FERRY_TEMPORAL_UI_PORT: String(await freePort()),
    });
    assert.equal(result.code, 1, `expected exit 1, got ${result.code}\n${result.stdout}\n${result.stderr}`);
    assert.match(result.stderr, /temporal: the process \(pid \d+\) exited before it became healthy/);
    assert.ok(result.stderr.includes(path.join(stackDir, 'logs', 'temporal.log')), result.stderr);
    assert.ok(result.stderr.includes('cannot open database: disk full'), 'the log tail is shown');
  } finally {
    fs.rmSync(stackDir, { recursive: true, force: true });
  }
});

test('a second `ferry stack up` reuses every running part instead of starting another', async () => {
  const result = await runFerry(['stack', 'up']);
  assert.equal(result.code, 0, result.stderr);
  for (const part of ['temporal', 'mysql', 'dynamodb', 'kinesis', 's3']) {
    assert.match(result.stdout, new RegExp(`stack: ${part}: already running`), result.stdout);
  }
  const status = await runFerry(['stack', 'status']);
  assert.equal(status.code, 0, status.stdout + status.stderr);
  assert.equal((status.stdout.match(/ healthy /g) ?? []).length, 5, status.stdout);
});

test('an unknown part name is refused with the list of parts', async () => {
  const result = await runFerry(['stack', 'up', 'postgres']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /ferry stack: postgres is not a part of the stack; the parts are temporal, mysql, dynamodb, kinesis, s3/);
});
