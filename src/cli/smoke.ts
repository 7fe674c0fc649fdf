import { loadConfig, type TemporalConfig } from '../config.js';
import { connectClient } from '../temporal.js';
import type { SmokeReport } from '../../workflows/smoke.js';

/** The run's page in the Temporal Web UI that `temporal` points at. */
export function workflowUrl(temporal: Pick<TemporalConfig, 'uiUrl' | 'namespace'>, workflowId: string): string {
  return `${temporal.uiUrl}/namespaces/${encodeURIComponent(temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** Runs the smoke workflow to completion, with an in-process worker unless told otherwise. */
export async function runSmoke(options: { embeddedWorker: boolean; say: (line: string) => void }): Promise<SmokeReport> {
  const config = loadConfig();
  const client = await connectClient(config.temporal);
  const workflowId = `ferry-smoke-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const execute = async () => {
    const handle = await client.workflow.start('smoke', { taskQueue: config.temporal.taskQueue, workflowId, args: [] });
    options.say(`smoke: started ${workflowId}; watch it at ${workflowUrl(config.temporal, workflowId)}`);
    return (await handle.result()) as SmokeReport;
  };
  let report: SmokeReport;
  if (options.embeddedWorker) {
    const { createWorker } = await import('../../worker/main.js');
    const worker = await createWorker(config);
    report = await worker.runUntil(execute());
  } else {
    report = await execute();
  }
  options.say(`smoke: MariaDB row ${report.mysql.id} written and read back`);
  options.say(`smoke: Parquet (${report.s3.rows} rows, ${(report.s3.bytes / 1048576).toFixed(1)} MiB) uploaded to S3 in ${report.s3.parts} parts and read back`);
  options.say(`smoke: DynamoDB item written and read back`);
  options.say(`smoke: Kinesis record ${report.kinesis.sequenceNumber} on ${report.kinesis.shardId} put and read back`);
  options.say(`smoke: Completed. Web UI: ${workflowUrl(config.temporal, workflowId)}`);
  await client.connection.close();
  return report;
}
