/**
 * The typed client, as docs/client.md describes it: start a migration, give
 * its bulk load a write budget, follow its progress, approve its cutover when
 * the spec asks for a manual one, and print its report.
 *
 *   ./ferry worker &    # a worker on FERRY_TASK_QUEUE does the work
 *   node --import tsx docs/examples/client.ts SPEC.json
 *
 * test/operate.test.ts runs this file against the local stack.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryClient, type MigrationSpecInput } from '../../src/client.js';

const spec = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as MigrationSpecInput;
const manualCutover = spec.capture?.cutover === 'manual';

const ferry = await FerryClient.connect(); // Temporal and AWS from the environment (docs/configuration.md)
try {
  const migration = await ferry.startMigration(spec); // refuses an invalid spec, naming each bad path
  console.log(`started ${migration.workflowId}`);
  await migration.setWriteBudget(5_000); // items/s for the whole bulk load; null lifts it

  // The bulk copy's rows, then catch-up's lag, until the run ends or waits for its cutover.
  for (;;) {
    const progress = await migration.progress();
    const lag = progress.capture?.apply?.length ? `, apply ${Math.max(...progress.capture.apply.map((a) => a.millisBehind))} ms behind` : '';
    console.log(`${progress.phase}: ${progress.rowsDone + progress.rowsInFlight} of ${progress.plannedRows} rows (${progress.percent}%)${lag}`);
    if (manualCutover && progress.phase === 'catch-up') break;
    if ((await migration.status()) !== 'RUNNING') break;
    await sleep(2_000);
  }

  if (manualCutover) {
    // Refused while apply lags more than spec.capture.maxLagMs; the reason then says to approve again.
    for (;;) {
      try {
        const cutover = await migration.approveCutover();
        console.log(`cut over: writes were frozen for ${cutover.freezeMs} ms; ${migration.workflowId} routes to ${await ferry.resolveBackend(migration.workflowId)}`);
        break;
      } catch (err) {
        if (!/approve again/.test((err as Error).message)) throw err;
        await sleep(1_000);
      }
    }
  }

  const report = await migration.result(); // a failed run throws WorkflowFailedError, its cause inside
  console.log(`report: ${report.rows} rows, ${report.items} items in ${report.durationMs} ms`);
} finally {
  await ferry.close();
}
