/**
 * Routing: which backend serves a migrated application (docs/cdc.md,
 * Cutover). Applications read it with resolveBackend(); their write
 * transactions on the source pass the fence with withSourceWrite().
 */
import { GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { MysqlConnection } from '../mysql.js';

/** The source table holding the fence rows; never migrated. */
export const ROUTING_SOURCE_TABLE = 'ferry_routing';

export type Backend = 'mysql' | 'dynamodb';

/** The backend the routing item names for a migration (strongly consistent read); `mysql` until cutover. */
export async function resolveBackend(dynamo: DynamoDBClient, name: string, routingTable = 'ferry-routing'): Promise<Backend> {
  const { Item } = await dynamo.send(new GetItemCommand({ TableName: routingTable, Key: { name: { S: name } }, ConsistentRead: true }));
  return Item?.backend?.S === 'dynamodb' ? 'dynamodb' : 'mysql';
}

/**
 * Runs `write` in a source transaction that first passes the cutover fence:
 * it reads the routing row in share mode, so during a cutover's freeze it
 * waits, and afterwards it sees `dynamodb` and does not write to the source.
 * Resolves with true when the write went to the source, false when the
 * caller must write to DynamoDB instead. Without a fence row (no migration
 * started yet) the write goes to the source.
 */
export async function withSourceWrite(db: MysqlConnection, name: string, write: (db: MysqlConnection) => Promise<void>, schema?: string): Promise<boolean> {
  const table = schema ? `\`${schema.replace(/`/g, '``')}\`.${ROUTING_SOURCE_TABLE}` : ROUTING_SOURCE_TABLE;
  await db.beginTransaction();
  try {
    let backend = 'mysql'; // no fence row (yet): no migration has claimed these tables
    try {
      const [rows] = (await db.query(`SELECT backend FROM ${table} WHERE name = ? LOCK IN SHARE MODE`, [name])) as unknown as [{ backend: string }[]];
      backend = rows[0]?.backend ?? 'mysql';
    } catch (err) {
      if ((err as { errno?: number }).errno !== 1146) throw err; // ER_NO_SUCH_TABLE: no fence table yet
    }
    if (backend !== 'mysql') {
      await db.rollback();
      return false;
    }
    await write(db);
    await db.commit();
    return true;
  } catch (err) {
    await db.rollback().catch(() => {});
    throw err;
  }
}
