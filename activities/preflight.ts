/**
 * Preflight: everything that can be checked before any row moves. Each refusal
 * is non-retryable and names the thing and the fix.
 */
import { ConditionalCheckFailedException, CreateTableCommand, DescribeTableCommand, PutItemCommand, ResourceNotFoundException, waitUntilTableExists, type KeyType as DynamoKeyType } from '@aws-sdk/client-dynamodb';
import { createFence, resolveBackend, ROUTING_SOURCE_TABLE } from '../src/capture/routing.js';
import { quoteIdent } from '../src/bulk/partitionPlan.js';
import { routingFollowsFence } from './cutover.js';
import { CreateStreamCommand, DescribeStreamSummaryCommand, IncreaseStreamRetentionPeriodCommand, waitUntilStreamExists } from '@aws-sdk/client-kinesis';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { dynamoClient, kinesisClient, stagingS3 } from '../src/aws.js';
import { checkSpecSql, SpecSqlError } from '../src/bulk/duck.js';
import { RowSql } from '../src/capture/rowSql.js';
import { binlogStatementsOf } from '../src/capture/binlogStatements.js';
import { binlogProblems, retentionProblem, retentionTarget } from '../src/capture/requirements.js';
import { migrationKeys, staging, type PreflightReport, type SourceTable, type StagingClaim } from '../src/bulk/model.js';
import { loadConfig } from '../src/config.js';
import { compileTableMapping, keyColumns, mappingProblems, selectTables, tableMappingDocument, type KeyType, type TableMapping } from '../src/mapping/tableMapping.js';
import { UnsupportedColumnError, type SourceColumn } from '../src/mapping/types.js';
import { connectSource, estimateRows, listTables, readColumns, readPrimaryKey, sourceDatabase, sourceUrl } from '../src/source.js';
import { getJson, putJson } from '../src/s3.js';
import type { MigrationSpec } from '../src/spec.js';

function refuse(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'PreflightFailed');
}

/** The DynamoDB type of a key attribute: from its attribute-sub-type, or from the column it copies. */
export function keyAttributeType(mapping: TableMapping, columns: SourceColumn[], name: string): KeyType {
  const computed = mapping.attributes.find((a) => a.name === name);
  if (computed) return computed.subType === 'number' ? 'N' : computed.subType === 'binary' ? 'B' : 'S';
  const column = columns.find((c) => c.name === name);
  if (!column) return 'S';
  if (['integer', 'decimal', 'float', 'year'].includes(column.family) || (column.family === 'bit' && column.precision !== 1)) return 'N';
  return column.family === 'binary' ? 'B' : 'S';
}

function splitColumns(mapping: TableMapping, primaryKey: string[]): string[] {
  if (!mapping.group) return primaryKey;
  return primaryKey.slice(0, keyColumns(mapping).length);
}

async function describeSource(spec: MigrationSpec): Promise<SourceTable[]> {
  const mapping = tableMappingDocument.parse(spec.mapping);
  let db;
  try {
    db = await connectSource(spec);
  } catch (err) {
    refuse((err as Error).message);
  }
  try {
    const schema = sourceDatabase(spec);
    const available = await listTables(db, schema);
    // A selection rule without wildcards names one table: it must exist.
    for (const rule of mapping.rules) {
      if (rule['rule-type'] !== 'selection' || rule['rule-action'] === 'exclude') continue;
      const name = (rule as { 'object-locator': { 'table-name': string } })['object-locator']['table-name'];
      if (!name.includes('%') && !available.some((t) => t.toLowerCase() === name.toLowerCase())) {
        refuse(`table ${schema}.${name}, selected by the mapping, does not exist in the source (tables there: ${available.join(', ') || 'none'}); fix the selection rule or spec.source.database`);
      }
    }
    // ferry's own fence table (docs/cdc.md) is never migrated, even under a `%` selection.
    const selected = selectTables(mapping, available.filter((table) => table !== ROUTING_SOURCE_TABLE).map((table) => ({ schema, table })));
    if (selected.length === 0) refuse(`the mapping's selection rules select no table of ${schema} (tables there: ${available.join(', ') || 'none'})`);
    const tables: SourceTable[] = [];
    for (const { table } of selected) {
      const primaryKey = await readPrimaryKey(db, schema, table);
      if (primaryKey.length === 0) {
        refuse(`table ${schema}.${table} has no primary key; ferry partitions and applies changes by primary key: add one (ALTER TABLE ${table} ADD PRIMARY KEY (...)) or exclude the table with a selection rule`);
      }
      const compiled = compileTableMapping(mapping, schema, table, primaryKey);
      let columns: SourceColumn[];
      try {
        columns = await readColumns(db, schema, table, compiled.excludeColumns.filter((c) => !primaryKey.includes(c) && !keyColumns(compiled).includes(c)));
      } catch (err) {
        if (err instanceof UnsupportedColumnError) refuse(err.message);
        throw err;
      }
      const allColumns = [...columns.map((c) => c.name), ...compiled.excludeColumns];
      const problems = mappingProblems(compiled, allColumns, primaryKey);
      if (problems.length) refuse(problems.join('\n'));
      tables.push({ schema, table, columns, primaryKey, mapping: compiled, splitColumns: splitColumns(compiled, primaryKey), rowsEstimate: await estimateRows(db, schema, table) });
    }
    return tables;
  } finally {
    await db.end();
  }
}

/**
 * spec.sql of each table: one SELECT that binds over the table's columns and
 * reads nothing but `source`, as the transform runs it and, with capture, as
 * apply runs it one change at a time (src/capture/rowSql.ts).
 */
async function checkSql(spec: MigrationSpec, tables: SourceTable[]): Promise<void> {
  for (const source of tables) {
    const sql = spec.sql[source.table];
    if (sql === undefined) continue;
    try {
      await checkSpecSql(source.table, sql, source.columns);
      if (spec.capture) (await RowSql.open(source.table, sql, source.columns)).close();
    } catch (err) {
      if (err instanceof SpecSqlError) refuse(err.message);
      throw err;
    }
  }
}

/**
 * With spec.capture: the binlog can feed change capture (log_bin, ROW format,
 * FULL row images, replication privileges) and the stream exists (or is
 * created) and keeps records longer than the bulk copy is expected to take.
 */
/** How a run relates to the migration's earlier ones: preflight checks more when it continues or replays one. */
export interface PreflightOptions {
  /** A resumed run: the staging folder may hold this migration's claim. */
  resume?: boolean;
  /** replayChanges: applies the whole stream again onto a target that holds it. */
  replay?: boolean;
  /** replayChanges only: replay even onto a target the routing says is live, or without the versions table. */
  force?: boolean;
  /** verifyMigration: compares source and target, and touches nothing of change capture (stream, versions, routing). */
  verify?: boolean;
}

async function checkCapture(spec: MigrationSpec, options: PreflightOptions, claimed: boolean): Promise<PreflightReport['capture']> {
  const capture = spec.capture;
  if (!capture) return undefined;
  const db = await connectSource(spec);
  try {
    const [[vars]] = (await db.query(
      'SELECT @@log_bin AS logBin, @@binlog_format AS binlogFormat, @@binlog_row_image AS binlogRowImage, CURRENT_USER() AS user',
    )) as unknown as [[{ logBin: number | string; binlogFormat: string; binlogRowImage: string; user: string }]];
    const [grantRows] = (await db.query('SHOW GRANTS')) as unknown as [Record<string, string>[]];
    const at = vars.user.lastIndexOf('@');
    const user = `'${vars.user.slice(0, at)}'@'${vars.user.slice(at + 1)}'`;
    const problems = binlogProblems({ ...vars, user, grants: grantRows.map((r) => String(Object.values(r)[0])) });
    const where = new URL(sourceUrl(spec));
    if (problems.length) {
      refuse(`change capture cannot read the binlog of ${where.hostname}:${where.port || 3306} (spec.capture):\n${problems.map((p) => `- ${p}`).join('\n')}`);
    }
    // The statements capture and the cutover will run, run now: a server that refuses one fails here, not mid-run.
    const statements = await binlogStatementsOf(db);
    for (const statement of [statements.status, statements.logs]) {
      try {
        const [rows] = (await db.query(statement)) as unknown as [unknown[]];
        if (rows.length === 0) throw new Error('it returned no row');
      } catch (err) {
        refuse(
          `change capture cannot read the binlog of ${where.hostname}:${where.port || 3306} (spec.capture): ${statement}, the statement for ${statements.server.text}, failed: ${(err as Error).message}. ` +
            'Grant the migration\'s user REPLICATION CLIENT (MariaDB: BINLOG MONITOR), and check that the server writes a binlog',
        );
      }
    }
  } finally {
    await db.end();
  }

  const kinesis = kinesisClient(loadConfig().aws);
  const stream = capture.stream ?? `ferry-${spec.name}`;
  let retentionHours: number;
  let createdStream = false;
  try {
    const { StreamDescriptionSummary } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
    retentionHours = StreamDescriptionSummary?.RetentionPeriodHours ?? 24;
  } catch (err) {
    if ((err as Error).name !== 'ResourceNotFoundException') throw err;
    if (!capture.createStream) {
      refuse(`Kinesis stream ${stream} does not exist; create it, or set spec.capture.createStream to true and ferry creates it with spec.capture.shards (${capture.shards}) shards`);
    }
    try {
      await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: capture.shards }));
    } catch (err) {
      if ((err as Error).name !== 'LimitExceededException') throw err;
      refuse(
        `cannot create Kinesis stream ${stream} with ${capture.shards} shards: ${(err as Error).message}. ` +
          'Delete streams no migration uses any more (ferry deletes its own after a completed run unless spec.capture.cleanup is false), ask for a higher shard limit, or lower spec.capture.shards',
      );
    }
    await waitUntilStreamExists({ client: kinesis, maxWaitTime: 120 }, { StreamName: stream });
    retentionHours = 24;
    createdStream = true;
  }
  const problem = retentionProblem(stream, retentionHours, capture.expectedBulkHours);
  if (problem && !capture.raiseRetention) refuse(problem);
  if (problem) {
    retentionHours = retentionTarget(capture.expectedBulkHours);
    await kinesis.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: stream, RetentionPeriodHours: retentionHours }));
  }
  // The side table of applied versions (docs/cdc.md): ferry's own bookkeeping, created by a migration's first run.
  const versionsTable = `ferry-${spec.name}-versions`;
  const dynamo = dynamoClient(loadConfig().aws);
  if (options.replay && !options.force) {
    // After the cutover the application writes to DynamoDB: changes from the stream would overwrite its writes.
    const backend = await resolveBackend(dynamo, spec.name, capture.routingTable).catch((err: Error) => {
      if (err instanceof ResourceNotFoundException) return 'mysql';
      throw err;
    });
    if (backend === 'dynamodb') {
      refuse(
        `migration ${spec.name} has cut over: its routing (${capture.routingTable}) sends the application's writes to DynamoDB, and replaying the stream ` +
          'would overwrite every item changed there since. Replay only onto a target nothing else writes to; to replay anyway, start replayChanges with {"force": true}',
      );
    }
  }
  try {
    await dynamo.send(new DescribeTableCommand({ TableName: versionsTable }));
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
    // Versions guard every apply: an empty table would let old changes overwrite newer items. A migration that
    // passed preflight before had one; its absence now (capture.cleanup after a completed run, or deleted) is refused.
    if ((options.replay || (options.resume && claimed)) && !options.force) {
      refuse(
        `the versions table ${versionsTable} of migration ${spec.name} is gone (capture.cleanup deletes it after a completed run): without it every change ` +
          `would be applied again over the target's items, newer or not. ${options.replay ? 'To replay anyway onto a target nothing else writes to, start replayChanges with {"force": true}' : 'Start a new migration under a new name'}`,
      );
    }
    await dynamo.send(
      new CreateTableCommand({ TableName: versionsTable, KeySchema: [{ AttributeName: 'k', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'k', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }),
    );
    await waitUntilTableExists({ client: dynamo, maxWaitTime: 120 }, { TableName: versionsTable });
  }
  if (capture.cutover !== 'none') await prepareRouting(spec, options);
  return { stream, retentionHours, createdStream, versionsTable };
}

/**
 * Changes the binlog never carries: InnoDB applies a foreign key's ON DELETE /
 * ON UPDATE CASCADE (or SET NULL / SET DEFAULT) to the child rows inside the
 * engine, and row-based logging records only the statement's own rows. A
 * migrated child table would keep in DynamoDB rows that MySQL deleted or
 * changed, so change capture refuses it.
 */
async function checkCascades(spec: MigrationSpec, tables: SourceTable[]): Promise<void> {
  const db = await connectSource(spec);
  try {
    const schema = sourceDatabase(spec);
    const [rows] = (await db.query(
      `SELECT TABLE_NAME AS child, REFERENCED_TABLE_NAME AS parent, CONSTRAINT_NAME AS name, DELETE_RULE AS onDelete, UPDATE_RULE AS onUpdate
         FROM information_schema.REFERENTIAL_CONSTRAINTS
        WHERE CONSTRAINT_SCHEMA = ? AND (DELETE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') OR UPDATE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT'))`,
      [schema],
    )) as unknown as [{ child: string; parent: string; name: string; onDelete: string; onUpdate: string }[]];
    const migrated = new Set(tables.map((t) => t.table));
    const cascading = rows.filter((r) => migrated.has(r.child));
    if (!cascading.length) return;
    const list = cascading.map((r) => `${schema}.${r.child} (foreign key ${r.name} to ${r.parent}: ON DELETE ${r.onDelete}, ON UPDATE ${r.onUpdate})`).join('; ');
    refuse(
      `change capture cannot see the changes a foreign key cascades into a migrated table, because InnoDB makes them without writing them to the binlog: ${list}. ` +
        'Change the foreign key to ON DELETE/ON UPDATE RESTRICT and have the application change the child rows itself (docs/cdc.md), or leave the child table out of the mapping',
    );
  } finally {
    await db.end();
  }
}

/**
 * The routing record in both places (docs/cdc.md, Cutover): a row in the
 * source's `ferry_routing` table that application write transactions lock in
 * share mode (the fence), and the item in DynamoDB that resolveBackend() reads.
 * Both start at `mysql`; existing records are left as they are.
 */
export async function prepareRouting(spec: MigrationSpec, options: PreflightOptions = {}): Promise<void> {
  const capture = spec.capture!;
  const db = await connectSource(spec);
  const schema = sourceDatabase(spec);
  let fenceSays: string | undefined;
  try {
    await createFence(db, spec.name, schema);
    const [rows] = (await db.query(`SELECT backend FROM ${quoteIdent(schema)}.${ROUTING_SOURCE_TABLE} WHERE name = ?`, [spec.name])) as unknown as [{ backend: string }[]];
    fenceSays = rows[0]?.backend;
  } catch (err) {
    refuse(
      `cannot prepare the cutover fence table ${schema}.${ROUTING_SOURCE_TABLE} (${(err as Error).message}): grant CREATE, INSERT, UPDATE on it to the migration's user, ` +
        `or set spec.capture.cutover to "none"`,
    );
  } finally {
    await db.end();
  }
  const dynamo = dynamoClient(loadConfig().aws);
  try {
    await dynamo.send(new DescribeTableCommand({ TableName: capture.routingTable }));
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
    await dynamo.send(
      new CreateTableCommand({ TableName: capture.routingTable, KeySchema: [{ AttributeName: 'name', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'name', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }),
    );
    await waitUntilTableExists({ client: dynamo, maxWaitTime: 120 }, { TableName: capture.routingTable });
  }
  try {
    await dynamo.send(
      new PutItemCommand({ TableName: capture.routingTable, Item: { name: { S: spec.name }, backend: { S: 'mysql' } }, ConditionExpression: 'attribute_not_exists(#n)', ExpressionAttributeNames: { '#n': 'name' } }),
    );
  } catch (err) {
    if (!(err instanceof ConditionalCheckFailedException)) throw err;
  }
  if (fenceSays === 'dynamodb') {
    // The fence row is the flip's source of truth: a run that died between committing it and updating the
    // routing item left the item behind. Repaired here, and nothing is run again over the live target.
    await routingFollowsFence(dynamo, capture.routingTable, spec.name, new Date().toISOString());
    if (!(options.replay && options.force)) {
      refuse(
        `migration ${spec.name} has already cut over: the fence row in ${schema}.${ROUTING_SOURCE_TABLE} says dynamodb, and the routing item in ${capture.routingTable} ` +
          'now says so too (repaired if it lagged). The application writes to DynamoDB; there is nothing to resume',
      );
    }
  }
}

async function checkTarget(spec: MigrationSpec, tables: SourceTable[]): Promise<string[]> {
  const dynamo = dynamoClient(loadConfig().aws);
  const created: string[] = [];
  const byTarget = new Map<string, SourceTable>();
  for (const t of tables) if (!byTarget.has(t.mapping.targetTable)) byTarget.set(t.mapping.targetTable, t);
  for (const [targetTable, source] of byTarget) {
    if (!/^[A-Za-z0-9_.-]{3,255}$/.test(targetTable)) {
      refuse(
        `target table name "${targetTable}" (for ${source.schema}.${source.table}) is not a valid DynamoDB table name: 3–255 letters, digits, "_", "-", "."; ` +
          'set "target-table-name" in an object-mapping rule for the table',
      );
    }
    const keys: { name: string; keyType: DynamoKeyType }[] = [{ name: source.mapping.partitionKey, keyType: 'HASH' }];
    if (source.mapping.sortKey) keys.push({ name: source.mapping.sortKey, keyType: 'RANGE' });
    try {
      const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: targetTable }));
      const actual = (Table?.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(', ');
      const wanted = keys.map((k) => `${k.name}:${k.keyType}`).join(', ');
      if (actual !== wanted) {
        refuse(`target table ${targetTable} has key schema (${actual}) but the mapping for ${source.table} writes (${wanted}); fix the mapping's partition-key-name/sort-key-name or use another target table`);
      }
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException)) throw err;
      if (!spec.target.create) {
        refuse(`target table ${targetTable} does not exist in DynamoDB; create it, or set spec.target.create to true and ferry will create it (on-demand billing)`);
      }
      await dynamo.send(
        new CreateTableCommand({
          TableName: targetTable,
          KeySchema: keys.map((k) => ({ AttributeName: k.name, KeyType: k.keyType })),
          AttributeDefinitions: keys.map((k) => ({ AttributeName: k.name, AttributeType: keyAttributeType(source.mapping, source.columns, k.name) })),
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      await waitUntilTableExists({ client: dynamo, maxWaitTime: 120 }, { TableName: targetTable });
      created.push(targetTable);
    }
  }
  return created;
}

export async function preflight(spec: MigrationSpec, options: PreflightOptions = {}): Promise<PreflightReport> {
  const config = loadConfig();
  const bucket = spec.staging.bucket ?? config.stagingBucket;
  const stage = staging(spec, bucket);
  const s3 = stagingS3(config.aws, stage);
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (err) {
    refuse(`staging bucket ${bucket} is not reachable (${(err as Error).name}): create it or set spec.staging.bucket / FERRY_STAGING_BUCKET`);
  }
  const claimKey = migrationKeys(stage).claim;
  const runId = Context.current().info.workflowExecution?.runId ?? '';
  const claim = await getJson<StagingClaim>(s3, bucket, claimKey);
  // A fresh start must not pick up another run's manifests: it would skip partitions its target never received.
  if (claim && !options.resume && !options.replay && !options.verify && claim.runId !== runId) {
    refuse(
      `staging s3://${bucket}/${stage.root}/ already holds migration ${claim.name} (claimed ${claim.claimedAt}): ` +
        `resume it with \`ferry resume ${spec.name}\`, give this migration a new name, or delete that folder to start over`,
    );
  }
  const tables = await describeSource(spec);
  await checkSql(spec, tables);
  if (spec.capture && !options.verify) await checkCascades(spec, tables);
  const capture = options.verify ? undefined : await checkCapture(spec, options, Boolean(claim));
  const createdTables = await checkTarget(spec, tables);
  if (!claim && !options.verify) await putJson(s3, bucket, claimKey, { name: spec.name, runId, claimedAt: new Date().toISOString() } satisfies StagingClaim);
  return { tables, createdTables, bucket, capture };
}
