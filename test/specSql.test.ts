/**
 * spec.sql comes from whoever may start a workflow, so it must not reach the
 * worker's files: the transform (through the stack's S3, as the activity runs
 * it) and the row-at-a-time path of change capture refuse SQL that reads a
 * file or is not one SELECT, naming spec.sql, and nothing is read or written.
 * The preflight's refusal, end to end, is in test/bulkFailures.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { asyncLocalStorage, type Context } from '@temporalio/activity';
import { transformPartition } from '../activities/transform.js';
import { s3Client } from '../src/aws.js';
import { copyFormat } from '../src/bulk/duck.js';
import { partitionKeys, staging, type SourceTable } from '../src/bulk/model.js';
import type { PartitionRange } from '../src/bulk/partitionPlan.js';
import { RowSql } from '../src/capture/rowSql.js';
import { loadConfig } from '../src/config.js';
import { compileTableMapping, tableMappingDocument } from '../src/mapping/tableMapping.js';
import type { SourceColumn } from '../src/mapping/types.js';
import { deleteObject, downloadFile, uploadFile } from '../src/s3.js';
import { parseSpec } from '../src/spec.js';
import { describeFailure } from '../src/temporal.js';
import { idMapping, uniqueName } from './helpers.js';

const config = loadConfig();
const s3 = s3Client(config.aws);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-spec-sql-'));
/** What a worker must never hand out: a credentials file on its disk. */
const SECRET = 'aws_secret_access_key = wJalrXUtnFEMI-never-leaves-the-worker';
const secretFile = path.join(dir, 'credentials');
const written = path.join(dir, 'written.csv');

const columns: SourceColumn[] = [
  { name: 'id', family: 'integer', mysqlType: 'int(11)', nullable: false, unsigned: false },
  { name: 'note', family: 'text', mysqlType: 'varchar(50)', nullable: true, unsigned: false },
];
const mapping = idMapping('shop', 'ledger', 'ledger');
const source: SourceTable = {
  schema: 'shop',
  table: 'ledger',
  columns,
  primaryKey: ['id'],
  mapping: compileTableMapping(tableMappingDocument.parse(mapping), 'shop', 'ledger', ['id']),
  splitColumns: ['id'],
  rowsEstimate: 2,
};
const range: PartitionRange = { table: 'ledger', index: 0, columns: ['id'], plannedRows: 2 };

/** Each statement and why it must not run. */
const hostile: [string, string][] = [
  ['reads a worker file into a column', `SELECT id, (SELECT content FROM read_text('${secretFile}')) AS note FROM source`],
  ['reads a worker file as CSV', `SELECT s.* FROM source, read_csv('${secretFile}', header = false, columns = {'note': 'VARCHAR'}) AS s`],
  ['writes a file', `COPY (SELECT 1 AS one) TO '${written}'`],
  ['writes a file after a SELECT', `SELECT * FROM source; COPY (SELECT 1 AS one) TO '${written}'`],
];

const names: string[] = [];
before(() => fs.writeFileSync(secretFile, `[default]\n${SECRET}\n`));
after(async () => {
  for (const name of names) {
    const keys = partitionKeys(staging(parseSpec({ name, mapping }), config.stagingBucket), range);
    for (const key of [keys.rows, keys.rows.replace(/parquet$/, 'csv'), keys.items, keys.deadLetters]) await deleteObject(s3, config.stagingBucket, key).catch(() => undefined);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  s3.destroy();
});

/** The partition's staged rows in S3 (two rows, Parquet), as the export leaves them, under a fresh migration name. */
async function stagedPartition(sql: string, format: 'parquet' | 'csv' = 'parquet') {
  const name = uniqueName('spec-sql');
  names.push(name);
  const spec = parseSpec({ name, mapping, sql: { ledger: sql }, staging: { format } });
  const stage = staging(spec, config.stagingBucket);
  const file = path.join(dir, `${name}.${format}`);
  const instance = await DuckDBInstance.create(':memory:');
  const duck = await instance.connect();
  await duck.run(`COPY (SELECT * FROM (VALUES (1, 'first'), (2, 'second')) AS t(id, note)) TO '${file}' (${copyFormat(format)})`);
  duck.closeSync();
  instance.closeSync();
  await uploadFile(s3, stage.bucket, partitionKeys(stage, range).rows, file);
  return { spec, stage };
}

/** transformPartition as the worker runs it; heartbeats go nowhere. */
function transform(spec: ReturnType<typeof parseSpec>, stage: ReturnType<typeof staging>) {
  const context = { heartbeat: () => undefined, cancellationSignal: new AbortController().signal } as unknown as Context;
  return asyncLocalStorage.run(context, () => transformPartition(spec, stage, source, range));
}

async function itemsOf(stage: ReturnType<typeof staging>): Promise<string> {
  const file = path.join(dir, `${uniqueName('items')}.jsonl`);
  await downloadFile(s3, stage.bucket, partitionKeys(stage, range).items, file);
  return fs.readFileSync(file, 'utf8');
}

for (const format of ['parquet', 'csv'] as const) {
  test(`the transform still runs ordinary SQL over rows staged as ${format} once DuckDB is confined`, async () => {
    const { spec, stage } = await stagedPartition('SELECT id, upper(note) AS note FROM source', format);
    const result = await transform(spec, stage);
    assert.equal(result.items, 2);
    assert.match(await itemsOf(stage), /FIRST[\s\S]*SECOND/);
  });
}

for (const [what, sql] of hostile) {
  test(`the transform refuses spec.sql that ${what}, naming spec.sql; nothing is read, written or staged`, async () => {
    const { spec, stage } = await stagedPartition(sql);
    let message = '';
    await assert.rejects(transform(spec, stage), (err: Error & { type?: string; nonRetryable?: boolean }) => {
      message = describeFailure(err);
      assert.equal(err.type, 'InvalidSpecSql');
      assert.equal(err.nonRetryable, true);
      return true;
    });
    assert.match(message, /^spec\.sql\.ledger (is not a SELECT statement|holds 2 statements|cannot run \(the SQL may read only `source`)/);
    assert.ok(!message.includes('wJalrXUtnFEMI'), message);
    assert.equal(fs.existsSync(written), false, `${written} was written`);
    await assert.rejects(itemsOf(stage), 'no items were staged');
  });

  test(`change capture's row-at-a-time SQL refuses spec.sql that ${what}, naming spec.sql; nothing is read or written`, async () => {
    let message = '';
    await assert.rejects(RowSql.open('ledger', sql, columns), (err: Error) => ((message = err.message), true));
    assert.match(message, /^spec\.sql\.ledger (is not a SELECT statement|holds 2 statements|cannot run \(the SQL may read only `source`)/);
    assert.ok(!message.includes('wJalrXUtnFEMI'), message);
    assert.equal(fs.existsSync(written), false, `${written} was written`);
  });
}
