/**
 * Verify: one partition of the source, read again and transformed by the bulk
 * path's own export and transform into a separate staging folder, against the
 * target items of the same keys: counts, order-independent checksums, and the
 * first differing keys with both sides. Numbers compare by value (DynamoDB
 * respells them).
 */
import { BatchGetItemCommand, ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Context } from '@temporalio/activity';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamoClient, stagingS3 } from '../src/aws.js';
import type { SourceTable, Staging } from '../src/bulk/model.js';
import { partitionId, type PartitionRange } from '../src/bulk/partitionPlan.js';
import { loadConfig } from '../src/config.js';
import { comparableLine, ItemChecksum, itemToLine, lineToItem } from '../src/mapping/itemJson.js';
import type { Item } from '../src/mapping/item.js';
import { keyAttributes } from '../src/mapping/tableMapping.js';
import { objectStream } from '../src/s3.js';
import type { MigrationSpec } from '../src/spec.js';
import { exportPartition } from './export.js';
import { transformPartition } from './transform.js';

/** One differing key; items are shown as DynamoDB JSON (compared by value, shown as stored). */
export interface Mismatch {
  key: string;
  /** The source row transformed, or "absent". */
  source: string;
  /** The target item, or "absent". */
  target: string;
}

export interface VerifyPartitionResult {
  partition: string;
  sourceItems: number;
  targetItems: number;
  sourceChecksum: string;
  targetChecksum: string;
  differing: number;
  missing: number;
  /** The first mismatches, both sides shown. */
  mismatches: Mismatch[];
}

export async function verifyPartition(spec: MigrationSpec, stage: Staging, source: SourceTable, range: PartitionRange, maxMismatches: number): Promise<VerifyPartitionResult> {
  const context = Context.current();
  const config = loadConfig();
  // A fresh read of the source, staged apart from the migration's own files.
  const verifyStage: Staging = { ...stage, root: `${stage.root}/verify/${context.info.workflowExecution?.runId ?? 'run'}` };
  await exportPartition(spec, verifyStage, source, range);
  const transformed = await transformPartition(spec, verifyStage, source, range);

  const dynamo = dynamoClient(config.aws);
  const mapping = source.mapping;
  const keyNames = keyAttributes(mapping);
  // Lookups compare key values by value; messages show them as the source spells them.
  const keyText = (item: Item) => keyLine(item, keyNames);
  const shownKey = (item: Item) => showKey(item, keyNames);
  const sourceSum = new ItemChecksum();
  const targetSum = new ItemChecksum();
  const result: VerifyPartitionResult = { partition: partitionId(range), sourceItems: 0, targetItems: 0, sourceChecksum: '', targetChecksum: '', differing: 0, missing: 0, mismatches: [] };

  const compare = async (batch: Item[]) => {
    const found = new Map<string, Item>();
    for (const item of await getItems(dynamo, mapping.targetTable, batch.map((item) => Object.fromEntries(keyNames.map((k) => [k, item[k]!]))))) found.set(keyText(item), item);
    for (const item of batch) {
      const want = comparableLine(item);
      sourceSum.addLine(want);
      result.sourceItems++;
      const target = found.get(keyText(item));
      if (target) {
        const have = comparableLine(target);
        targetSum.addLine(have);
        result.targetItems++;
        if (have === want) continue;
        result.differing++;
        if (result.mismatches.length < maxMismatches) result.mismatches.push({ key: shownKey(item), source: itemToLine(item), target: itemToLine(target) });
      } else {
        result.missing++;
        if (result.mismatches.length < maxMismatches) result.mismatches.push({ key: shownKey(item), source: itemToLine(item), target: 'absent' });
      }
    }
  };

  const lines = readline.createInterface({ input: await objectStream(stagingS3(config.aws, stage), stage.bucket, transformed.key), crlfDelay: Infinity });
  let batch: Item[] = [];
  for await (const line of lines) {
    if (line === '') continue;
    batch.push(lineToItem(line));
    if (batch.length === 100) {
      await compare(batch);
      batch = [];
      context.heartbeat({ compared: result.sourceItems });
    }
  }
  if (batch.length) await compare(batch);
  result.sourceChecksum = sourceSum.hex();
  result.targetChecksum = targetSum.hex();
  return result;
}

/** An item's key as text that compares by value: for looking items up by key. */
export function keyLine(item: Item, keyNames: string[]): string {
  return comparableLine(Object.fromEntries(keyNames.map((k) => [k, item[k]!])));
}

/** A key as messages show it: `name=value, …`, values as the source spells them. */
export function showKey(item: Item, keyNames: string[]): string {
  return keyNames
    .map((k) => {
      const v = item[k]!;
      return `${k}=${v.N ?? v.S ?? (v.B ? `base64:${Buffer.from(v.B).toString('base64')}` : JSON.stringify(v))}`;
    })
    .join(', ');
}

/** The items of `keys` (at most 100) that exist, read consistently; unprocessed keys are asked again with backoff. */
export async function getItems(dynamo: DynamoDBClient, table: string, keys: Record<string, AttributeValue>[], signal?: AbortSignal): Promise<Item[]> {
  const found: Item[] = [];
  for (let attempt = 0; keys.length; attempt++) {
    if (attempt) await sleep(Math.random() * Math.min(2000, 50 * 2 ** attempt), undefined, { signal });
    const response = await dynamo.send(new BatchGetItemCommand({ RequestItems: { [table]: { Keys: keys, ConsistentRead: true } } }), { abortSignal: signal });
    found.push(...(response.Responses?.[table] ?? []));
    keys = (response.UnprocessedKeys?.[table]?.Keys as Record<string, AttributeValue>[] | undefined) ?? [];
  }
  return found;
}

/** Items in a target table (a parallel COUNT scan): with the per-key comparison, what is left over is extra. */
export async function countItems(table: string): Promise<number> {
  const dynamo = dynamoClient(loadConfig().aws);
  const segments = 4;
  const counts = await Promise.all(
    Array.from({ length: segments }, async (_, Segment) => {
      let n = 0;
      let start: Record<string, AttributeValue> | undefined;
      do {
        const page = await dynamo.send(new ScanCommand({ TableName: table, Select: 'COUNT', Segment, TotalSegments: segments, ExclusiveStartKey: start, ConsistentRead: true }));
        n += page.Count ?? 0;
        start = page.LastEvaluatedKey;
      } while (start);
      return n;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}
