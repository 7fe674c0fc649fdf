/**
 * Routing: which backend serves a migrated application (docs/cdc.md,
 * Cutover). Applications read it with resolveBackend(); their write
 * transactions on the source pass the fence with withSourceWrite().
 */
import { GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { quoteIdent } from '../bulk/partitionPlan.js';
import type { MysqlConnection } from '../mysql.js';

/** The source table holding the fence rows; never migrated. */
export const ROUTING_SOURCE_TABLE = 'ferry_routing';

export type Backend = 'mysql' | 'dynamodb';

/** The backend the routing item names for a migration (strongly consistent read); `mysql` until cutover. */
export async function resolveBackend(dynamo: DynamoDBClient, name: string, routingTable = 'ferry-routing'): Promise<Backend> {
  const { Item } = await dynamo.send(new GetItemCommand({ TableName: routingTable, Key: { name: { S: name } }, ConsistentRead: true }));
  return Item?.backend?.S === 'dynamodb' ? 'dynamodb' : 'mysql';
}

/** The fence table in `schema`, quoted; `schema` absent: the connection's default database. */
function fenceTable(schema: string | undefined): string {
  return schema ? `${quoteIdent(schema)}.${ROUTING_SOURCE_TABLE}` : ROUTING_SOURCE_TABLE;
}

/** The fence is missing: a wrong migration name or schema, or a migration not prepared yet. Nothing was written. */
export class FenceMissingError extends Error {
  override name = 'FenceMissingError';
}

/**
 * Creates the fence for migration `name` in `schema` (the source database it
 * migrates), routing to MySQL; leaves an existing one as it is. A migration's
 * preflight does the same. An application that writes through the fence
 * before the migration starts calls this first.
 */
export async function createFence(db: MysqlConnection, name: string, schema?: string): Promise<void> {
  const table = fenceTable(schema);
  await db.query(
    `CREATE TABLE IF NOT EXISTS ${table} (name VARCHAR(100) PRIMARY KEY, backend VARCHAR(20) NOT NULL, changed_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB`,
  );
  await db.query(`INSERT IGNORE INTO ${table} (name, backend) VALUES (?, 'mysql')`, [name]);
}

/**
 * Runs `write` in a source transaction that first passes the cutover fence:
 * it reads the routing row in share mode, so during a cutover's freeze it
 * waits, and afterwards it sees `dynamodb` and does not write to the source.
 * Resolves with true when the write went to the source, false when the
 * caller must write to DynamoDB instead.
 *
 * It fails closed: without the fence row (a wrong `name`, which must be the
 * migration's spec.name, or a wrong `schema`, which must be the source
 * database it migrates; or a migration whose preflight has not run yet and
 * no createFence) it writes nothing and rejects with FenceMissingError,
 * because a write that passes no fence can land after the cutover and be lost.
 */
export async function withSourceWrite(db: MysqlConnection, name: string, write: (db: MysqlConnection) => Promise<void>, schema?: string): Promise<boolean> {
  const table = fenceTable(schema);
  const fix = `pass the migration's spec.name and, as schema, the source database it migrates; before the migration's preflight has run, call createFence(db, name, schema) first`;
  await db.beginTransaction();
  try {
    let backend: string | undefined;
    try {
      const [rows] = (await db.query(`SELECT backend FROM ${table} WHERE name = ? LOCK IN SHARE MODE`, [name])) as unknown as [{ backend: string }[]];
      backend = rows[0]?.backend;
    } catch (err) {
      if ((err as { errno?: number }).errno !== 1146) throw err; // ER_NO_SUCH_TABLE
      throw new FenceMissingError(`no fence table ${table} on this source, so the write was not made: ${fix}`);
    }
    if (backend === undefined) throw new FenceMissingError(`no fence row for migration "${name}" in ${table}, so the write was not made: ${fix}`);
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
