import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { loadConfig } from '../src/config.js';
import { connectClient } from '../src/temporal.js';
import type { SmokeReport } from '../workflows/smoke.js';
import { runFerry, runProcess, startWorkerProcess, stopProcess, temporalCli, uniqueName } from './helpers.js';

const config = loadConfig();
const taskQueue = uniqueName('smoke-test');
let worker: ChildProcess;

before(async () => {
  worker = await startWorkerProcess(taskQueue);
});

after(async () => {
  if (worker) await stopProcess(worker);
});

test('the smoke workflow, run by a real worker process on the stack\'s Temporal, touches every part and completes', async () => {
  const client = await connectClient(config.temporal);
  try {
    const workflowId = uniqueName('smoke');
    const handle = await client.workflow.start('smoke', { taskQueue, workflowId, args: [] });
    const report = (await handle.result()) as SmokeReport;

    assert.equal(report.mysql.id, report.runId, 'the MariaDB row read back is keyed by this run');
    assert.ok(report.mysql.payload.includes(report.runId), 'the row read back carries this run');
    assert.equal(report.s3.rows, 400_001, 'every Parquet row came back from S3');
    assert.ok(report.s3.parts >= 2, `the Parquet upload used multipart (${report.s3.parts} parts)`);
    assert.equal(report.dynamodb.payload, report.mysql.payload, 'the DynamoDB item read back equals what was written');
    assert.match(report.kinesis.shardId, /^shardId-/);
    assert.match(report.kinesis.sequenceNumber, /^\d+$/);

    const description = await handle.describe();
    assert.equal(description.status.name, 'COMPLETED');
    assert.deepEqual(description.searchAttributes.FerryPhase, ['done']);
    assert.deepEqual(description.searchAttributes.FerryKind, ['smoke']);
  } finally {
    await client.connection.close();
  }
});

test('`ferry smoke` completes and `temporal workflow list` shows the run as Completed', async () => {
  const result = await runFerry(['smoke'], { FERRY_TASK_QUEUE: uniqueName('smoke-cli') });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const workflowId = /smoke: started (ferry-smoke-\S+);/.exec(result.stdout)?.[1];
  assert.ok(workflowId, result.stdout);
  assert.match(result.stdout, /Web UI: http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/ferry-smoke-/);

  const list = await runProcess(temporalCli(), ['workflow', 'list', '--address', config.temporal.address, '--query', `WorkflowId = '${workflowId}'`]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`Completed\\s+${workflowId}\\s+smoke`), list.stdout);
});
