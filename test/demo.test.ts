/**
 * The README's main command, `npm run demo` = `ferry demo`, on a smaller
 * table: a live migration with a load generator, an automatic cutover,
 * verification, and the report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { runFerry } from './helpers.js';

test('`ferry demo` migrates a table under live writes, cuts over, verifies and reports the freeze', async () => {
  const result = await runFerry(['demo', '--rows', '12000']);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /demo: seeded ferry_demo\.purchase with 12,000 rows/);
  assert.match(result.stdout, /demo: the load generator made [\d,]+ writes to MySQL during the migration, then the fence sent it to DynamoDB/);
  assert.match(result.stdout, /demo: verification: the target equals the source/);
  assert.match(result.stdout, /demo: cutover: writes were frozen for \d+ ms; demo-\d+ now routes to dynamodb/);
  assert.match(result.stdout, /demo: Web UI: http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/demo-\d+/);

  // The automatic cutover waited for apply in one activity, not in a loop of the workflow's own that would add
  // events to its history every 2 s for as long as catch-up lasts.
  const workflowId = /workflows\/(demo-\d+)/.exec(result.stdout)![1]!;
  const ferry = await FerryClient.connect(loadConfig());
  try {
    const history = await ferry.client.workflow.getHandle(workflowId).fetchHistory();
    const waits = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter((name) => name === 'awaitLag' || name === 'measureLag');
    assert.deepEqual(waits, ['awaitLag']);
  } finally {
    await ferry.close();
  }
});

test('`ferry demo --rows` refuses a count that is not a whole number of at least 100', async () => {
  const result = await runFerry(['demo', '--rows', 'many']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /--rows must be a whole number of at least 100; got NaN/);
});
