/**
 * smoke: proves a worker can reach every part ferry depends on: MariaDB, DuckDB
 * with S3 multipart staging, DynamoDB and Kinesis, each through a real activity.
 */
import { proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type * as activities from '../activities/index.js';
import { FerryKind, FerryPercent, FerryPhase } from '../src/searchAttributes.js';

const { smokeMysql, smokeParquetRoundTrip, smokeDynamo, smokeKinesis } = proxyActivities<typeof activities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 3, initialInterval: '1 second' },
});

export interface SmokeReport {
  runId: string;
  mysql: { id: string; payload: string };
  s3: { key: string; bytes: number; parts: number; rows: number };
  dynamodb: { id: string; payload: string };
  kinesis: { shardId: string; sequenceNumber: string };
}

export async function smoke(): Promise<SmokeReport> {
  const { runId } = workflowInfo();
  upsertSearchAttributes([
    { key: FerryKind, value: 'smoke' },
    { key: FerryPhase, value: 'running' },
    { key: FerryPercent, value: 0 },
  ]);
  const row = await smokeMysql(runId);
  const s3 = await smokeParquetRoundTrip(row);
  const dynamodb = await smokeDynamo(row);
  const kinesis = await smokeKinesis(row);
  upsertSearchAttributes([
    { key: FerryPhase, value: 'done' },
    { key: FerryPercent, value: 100 },
  ]);
  return { runId, mysql: row, s3, dynamodb, kinesis };
}
