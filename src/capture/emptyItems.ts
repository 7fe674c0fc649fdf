/**
 * Grouping mapping: deleting a target item whose last row went, so apply
 * leaves what the bulk path would have made (no item for a key with no rows).
 * Another shard's reader may set a row on the same item at the same moment (a
 * row moved into it by a primary-key change travels on the new key's shard),
 * so the delete is guarded by the item's revision in the versions table,
 * which every grouped write bumps (src/capture/applyPlan.ts).
 */
import { TransactGetItemsCommand, TransactWriteItemsCommand, TransactionCanceledException, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { revisionKey } from './applyPlan.js';

const RETRYABLE = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'TransactionConflictException']);

/**
 * Deletes item `Key` of `TableName` if it holds nothing but its key. The item
 * and its revision are read together; the delete holds only if the revision
 * is unchanged, so a row another reader set meanwhile is never deleted with
 * it (the item is read again instead). Resolves true when it deleted the item.
 */
export async function deleteIfEmpty(
  dynamo: DynamoDBClient,
  versionsTable: string,
  TableName: string,
  Key: Record<string, AttributeValue>,
  onRetry: () => void = () => {},
): Promise<boolean> {
  const revision = { TableName: versionsTable, Key: { k: { S: revisionKey(TableName, Key) } } };
  for (let attempt = 0; ; attempt++) {
    const read = await dynamo.send(new TransactGetItemsCommand({ TransactItems: [{ Get: { TableName, Key } }, { Get: revision }] }));
    const item = read.Responses?.[0]?.Item;
    if (!item || !Object.keys(item).every((name) => name in Key)) return false;
    const seen = read.Responses?.[1]?.Item?.r;
    try {
      await dynamo.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Delete: { TableName, Key } },
            { ConditionCheck: { ...revision, ...(seen ? { ConditionExpression: 'r = :r', ExpressionAttributeValues: { ':r': seen } } : { ConditionExpression: 'attribute_not_exists(r)' }) } },
          ],
        }),
      );
      return true;
    } catch (err) {
      // Changed since the read (or a concurrent transaction): look again.
      const retryable = err instanceof TransactionCanceledException || RETRYABLE.has((err as Error).name);
      if (!retryable || attempt > 20) throw err;
      onRetry();
      await sleep(Math.random() * Math.min(2000, 25 * 2 ** attempt));
    }
  }
}
