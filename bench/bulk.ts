/**
 * Bulk-copy benchmark: a seeded `purchase` table (1,000,000 rows by default)
 * through ferry's migrateToDynamo with the DMS worked mapping, and, on the same
 * machine in the same run, the two baselines the issue names: mydumper dumping
 * the same table, and a naive loader writing one PutItem per row. Then the same
 * migration on a larger table, to show the worker's peak RSS does not grow with
 * the table.
 *
 *   npm run bench:bulk                     # 1 M rows, RSS check at 3 M
 *   npm run bench:bulk -- --rows 200000 --rss-rows 0 --naive-rows 5000
 *
 * Starts the local stack itself (and installs mydumper from Debian's packages
 * when it is missing). Prints one figure per line and a summary table.
 */
import { CreateTableCommand, DeleteTableCommand, PutItemCommand, waitUntilTableExists, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { dynamoClient, s3Client } from '../src/aws.js';
import { migrationKeys, partitionKeys, staging, type ExportResult } from '../src/bulk/model.js';
import type { PartitionRange } from '../src/bulk/partitionPlan.js';
import { FerryClient, type MigrationReport } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { connectMysql } from '../src/mysql.js';
import { getJson } from '../src/s3.js';
import { parseSpec } from '../src/spec.js';
import { ensureDebianPackages, runCommand } from '../src/stack/install.js';
import { runFerry, startWorkerProcess, stopProcess, uniqueName } from '../test/helpers.js';
import { stageThroughput } from '../workflows/migrateToDynamo.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    'rss-rows': { type: 'string', default: '3000000' },
    'naive-rows': { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '4' },
    'partition-rows': { type: 'string', default: '250000' },
    writers: { type: 'string', default: '8' },
    'export-samples': { type: 'string', default: '5' },
    'export-streams': { type: 'string', default: '1,2,4' },
    'mydumper-threads': { type: 'string', default: '1,2,4,8' },
    'export-only': { type: 'boolean', default: false },
  },
});
const ROWS = Number(args.rows);
const RSS_ROWS = Number(args['rss-rows']);
const NAIVE_ROWS = Number(args['naive-rows']);
const CONCURRENCY = Number(args.concurrency);
const PARTITION_ROWS = Number(args['partition-rows']);
const WRITERS = Number(args.writers);
const EXPORT_SAMPLES = Number(args['export-samples']);
const EXPORT_ONLY = args['export-only'];
const EXPORT_STREAMS = settingList('--export-streams', args['export-streams']);
const MYDUMPER_THREADS = settingList('--mydumper-threads', args['mydumper-threads']);

const config = loadConfig();
const DATABASE = 'ferry_bench';
const say = (line: string) => console.log(`bench: ${line}`);
const fmt = (n: number) => Math.round(n).toLocaleString('en');

/** A comma-separated list of positive whole numbers, such as `1,2,4`. */
function settingList(option: string, text: string | undefined): number[] {
  const values = (text ?? '').split(',').map((v) => Number(v.trim()));
  if (!values.length || values.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`${option} ${text}: expected whole numbers of 1 or more separated by commas, such as 1,2,4`);
  return values;
}

/** purchase(customerid, orderid, productid, quantity): orders of 6 products, ~60 rows per customer. */
async function seed(table: string, rows: number): Promise<void> {
  const db = await connectMysql(config.mysqlUrl);
  try {
    await db.query(`CREATE DATABASE IF NOT EXISTS ${DATABASE}`);
    const [existing] = (await db.query(
      `SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
      [DATABASE, table],
    )) as unknown as [{ TABLE_ROWS: number }[]];
    if (existing.length) {
      const [[{ n }]] = (await db.query(`SELECT COUNT(*) AS n FROM ${DATABASE}.${table}`)) as unknown as [[{ n: string }]];
      if (Number(n) === rows) return say(`${DATABASE}.${table} already holds ${fmt(rows)} rows; reusing it`);
      await db.query(`DROP TABLE ${DATABASE}.${table}`);
    }
    const started = Date.now();
    await db.query(`CREATE TABLE ${DATABASE}.${table} (customerid INT NOT NULL, orderid INT NOT NULL, productid INT NOT NULL, quantity INT NOT NULL, PRIMARY KEY (customerid, orderid, productid))`);
    await db.query(
      `INSERT INTO ${DATABASE}.${table} SELECT seq DIV 60, (seq DIV 6) MOD 10, 1000 + (seq MOD 6) * 7, 1 + (seq * 7919) MOD 50 FROM seq_0_to_${rows - 1}`,
    );
    say(`seeded ${DATABASE}.${table} with ${fmt(rows)} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await db.end();
  }
}

type BulkSettings = { partitionRows: number; concurrency: number; writersPerPartition: number } | { partitions: number; concurrency: number; writersPerPartition: number };

function spec(table: string, target: string, bulk: BulkSettings = { partitionRows: PARTITION_ROWS, concurrency: CONCURRENCY, writersPerPartition: WRITERS }) {
  const locator = { 'schema-name': DATABASE, 'table-name': table };
  return {
    name: uniqueName(`bench-${table}`),
    source: { database: DATABASE },
    mapping: {
      rules: [
        { 'rule-type': 'selection' as const, 'rule-id': '1', 'rule-name': '1', 'object-locator': locator, 'rule-action': 'include' as const },
        {
          'rule-type': 'object-mapping' as const, 'rule-id': '2', 'rule-name': '2', 'rule-action': 'map-record-to-record' as const, 'object-locator': locator,
          'target-table-name': target,
          'mapping-parameters': {
            'partition-key-name': 'customer_orderid', 'sort-key-name': 'productid', 'exclude-columns': ['customerid', 'orderid'],
            'attribute-mappings': [{ 'target-attribute-name': 'customer_orderid', 'attribute-type': 'scalar' as const, 'attribute-sub-type': 'string' as const, value: '${customerid}|${orderid}' }],
          },
        },
      ],
    },
    target: { create: true },
    bulk,
  };
}

/** Peak resident set of a process (VmHWM) and its current one, in MiB. */
function memoryOf(pid: number): { peakMiB: number; rssMiB: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { peakMiB: kib('VmHWM') / 1024, rssMiB: kib('VmRSS') / 1024 };
}

interface FerryRun {
  report: MigrationReport;
  wallSeconds: number;
  peakRssMiB: number;
  /** Worker RSS right after start, before any partition: what the runtime itself takes. */
  idleRssMiB: number;
  /**
   * The highest RSS sampled (once a second) in each third of the run. VmHWM is
   * one moment's spike; memory that grew with the table would show as a last
   * third above the first.
   */
  rssByThirdMiB: [number, number, number];
}

/** The highest of each third of `samples`, taken at equal intervals over a run. */
function maxByThird(samples: number[]): [number, number, number] {
  const third = (i: number) => Math.max(0, ...samples.slice(Math.floor((i * samples.length) / 3), Math.floor(((i + 1) * samples.length) / 3)));
  return [third(0), third(1), third(2)];
}

async function runFerryMigration(table: string): Promise<FerryRun> {
  const taskQueue = uniqueName('bench');
  const worker: ChildProcess = await startWorkerProcess(taskQueue, { FERRY_LOG_LEVEL: 'WARN' });
  const target = uniqueName(`bench_${table}`);
  const ferry = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } });
  try {
    const idleRssMiB = memoryOf(worker.pid!).rssMiB;
    const started = Date.now();
    const migration = await ferry.startMigration(spec(table, target));
    let lastLine = 0;
    const rssSamples: number[] = [];
    const report = await new Promise<MigrationReport>((resolve, reject) => {
      const timer = setInterval(() => {
        const rssMiB = memoryOf(worker.pid!).rssMiB;
        rssSamples.push(rssMiB);
        if (Date.now() - lastLine < 15_000) return;
        lastLine = Date.now();
        migration.progress().then((p) => say(`  ${p.phase} ${p.percent}% (${fmt(p.rowsDone + p.rowsInFlight)} rows), worker RSS ${fmt(rssMiB)} MiB`), () => {});
      }, 1000);
      migration.result().then(resolve, reject).finally(() => clearInterval(timer));
    });
    const wallSeconds = (Date.now() - started) / 1000;
    const { peakMiB } = memoryOf(worker.pid!);
    return { report, wallSeconds, peakRssMiB: peakMiB, idleRssMiB, rssByThirdMiB: maxByThird(rssSamples) };
  } finally {
    await ferry.close();
    await stopProcess(worker);
    // DynamoDB Local keeps tables in memory: drop the copy before the next run.
    await dynamoClient(config.aws).send(new DeleteTableCommand({ TableName: target })).catch(() => {});
  }
}

function ensureMydumper(): Promise<void> {
  return ensureDebianPackages('bench', ['mydumper'], ['mydumper'], say, path.join(os.tmpdir(), 'ferry-bench-apt.log'));
}

/** mydumper's chunks for `threads` threads: about two per thread, none for one thread. */
function mydumperChunkRows(threads: number): number | undefined {
  return threads === 1 ? undefined : Math.ceil(ROWS / (2 * threads));
}

/** How a mydumper setting is named in the bench's output: `4 threads, 125,000-row chunks`. */
function mydumperSetting(threads: number): string {
  const chunkRows = mydumperChunkRows(threads);
  return `${threads} thread${threads === 1 ? '' : 's'}, ${chunkRows ? `${fmt(chunkRows)}-row chunks` : 'no chunks'}`;
}

/** mydumper dumping `table` with `threads` threads, chunked as mydumperChunkRows says; returns its rows/s. */
async function runMydumper(table: string, rows: number, threads: number, quiet = false): Promise<number> {
  await ensureMydumper();
  const chunkRows = mydumperChunkRows(threads);
  const url = new URL(config.mysqlUrl);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-mydumper-'));
  try {
    const started = Date.now();
    await runCommand('bench', 'mydumper', [
      '--host', url.hostname, '--port', url.port, '--user', decodeURIComponent(url.username), '--password', decodeURIComponent(url.password),
      '--database', DATABASE, '--tables-list', table,
      '--threads', String(threads), ...(chunkRows ? ['--rows', String(chunkRows)] : []), '--outputdir', out,
    ]);
    const seconds = (Date.now() - started) / 1000;
    const dataFiles = fs.readdirSync(out).filter((f) => f.startsWith(`${DATABASE}.${table}.`) && f.endsWith('.sql'));
    const bytes = dataFiles.reduce((n, f) => n + fs.statSync(path.join(out, f)).size, 0);
    if (bytes < rows * 10) throw new Error(`mydumper wrote only ${bytes} bytes of ${table} data (${dataFiles.join(', ') || 'no data files'}); see its options in bench/bulk.ts`);
    if (!quiet) say(`mydumper: ${fmt(rows)} rows in ${seconds.toFixed(2)} s, ${(bytes / 2 ** 20).toFixed(1)} MiB of SQL in ${dataFiles.length} files, ${mydumperSetting(threads)}`);
    return rows / seconds;
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/**
 * One sample of ferry's export stage with `streams` partitions, all in
 * flight, taken as the migration takes it: a fresh worker, migrateToDynamo
 * started with the bench's spec at that setting, and the stage's rate
 * computed from the partitions' export markers in staging, as the report
 * computes it. Once every partition is staged the worker is killed and the
 * run terminated, so the load (minutes, and measured once above) is not
 * repeated.
 */
async function sampleExport(table: string, streams: number): Promise<number> {
  const taskQueue = uniqueName('bench');
  // The killed worker cannot remove its scratch folders; give it its own temporary folder to remove after it.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-sample-'));
  const worker = await startWorkerProcess(taskQueue, { FERRY_LOG_LEVEL: 'WARN', TMPDIR: tmp });
  const ferry = await FerryClient.connect({ ...config, temporal: { ...config.temporal, taskQueue } });
  const s3 = s3Client(config.aws);
  const target = uniqueName(`bench_${table}`);
  const sample = spec(table, target, { partitions: streams, concurrency: streams, writersPerPartition: WRITERS });
  try {
    await ferry.startMigration(sample);
    const stage = staging(parseSpec(sample), config.stagingBucket);
    const planKey = migrationKeys(stage).plan(table);
    const deadline = Date.now() + 120_000;
    let markers: string[] | undefined;
    for (;;) {
      // One listing every 250 ms: nothing else is asked of the machine while the exports run.
      await new Promise((resolve) => setTimeout(resolve, 250));
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: stage.bucket, Prefix: `${stage.root}/` }));
      const keys = new Set((listed.Contents ?? []).map((o) => o.Key!));
      if (!markers && keys.has(planKey)) markers = (await getJson<PartitionRange[]>(s3, stage.bucket, planKey))!.map((range) => partitionKeys(stage, range).exported);
      const staged = markers?.filter((key) => keys.has(key)) ?? [];
      if (markers && staged.length === markers.length) {
        const exported = await Promise.all(markers.map((key) => getJson<ExportResult>(s3, stage.bucket, key)));
        return stageThroughput(exported.map((e) => e!), (e) => e.rows, (e) => [e.startedAt, e.ms]);
      }
      if (Date.now() > deadline) throw new Error(`export sample ${sample.name}: ${staged.length} partitions staged after 120 s, of ${markers ? markers.length : 'a plan not yet written'}`);
    }
  } finally {
    await stopProcess(worker, 'SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
    await ferry.client.workflow.getHandle(sample.name).terminate('bench: export sample taken').catch(() => {});
    await ferry.close();
    await dynamoClient(config.aws).send(new DeleteTableCommand({ TableName: target })).catch(() => {});
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** What a first script does: read rows, PutItem each one, wait for it, next. */
async function runNaiveLoader(table: string, rows: number): Promise<number> {
  const dynamo = dynamoClient(config.aws);
  const target = uniqueName('bench_naive');
  await dynamo.send(
    new CreateTableCommand({
      TableName: target,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'customer_orderid', AttributeType: 'S' }, { AttributeName: 'productid', AttributeType: 'N' }],
      KeySchema: [{ AttributeName: 'customer_orderid', KeyType: 'HASH' }, { AttributeName: 'productid', KeyType: 'RANGE' }],
    }),
  );
  await waitUntilTableExists({ client: dynamo, maxWaitTime: 60 }, { TableName: target });
  const db = await connectMysql(config.mysqlUrl);
  try {
    const started = Date.now();
    const [result] = await db.query(`SELECT customerid, orderid, productid, quantity FROM ${DATABASE}.${table} ORDER BY customerid, orderid, productid LIMIT ${rows}`);
    for (const r of result as { customerid: number; orderid: number; productid: number; quantity: number }[]) {
      const item: Record<string, AttributeValue> = {
        customer_orderid: { S: `${r.customerid}|${r.orderid}` },
        productid: { N: String(r.productid) },
        quantity: { N: String(r.quantity) },
      };
      await dynamo.send(new PutItemCommand({ TableName: target, Item: item }));
    }
    const seconds = (Date.now() - started) / 1000;
    say(`naive loader: ${fmt(rows)} rows, one PutItem each, in ${seconds.toFixed(1)} s`);
    return rows / seconds;
  } finally {
    await db.end();
    await dynamo.send(new DeleteTableCommand({ TableName: target })).catch(() => {});
  }
}

function describeRun(label: string, run: FerryRun): void {
  const t = run.report.tables[0]!;
  const readers = new Map<string, number>();
  for (const p of run.report.partitions) readers.set(p.exportReader ?? 'unrecorded', (readers.get(p.exportReader ?? 'unrecorded') ?? 0) + 1);
  say(
    `${label}: ${fmt(run.report.rows)} rows → ${fmt(run.report.items)} items in ${run.wallSeconds.toFixed(1)} s = ${fmt(run.report.rows / run.wallSeconds)} rows/s end to end; ` +
      `export ${fmt(t.exportRowsPerSecond)} rows/s, transform ${fmt(t.transformRowsPerSecond)} rows/s, load ${fmt(t.loadItemsPerSecond)} items/s; ` +
      `${t.partitions} partitions (export reader: ${[...readers].map(([reader, n]) => `${reader} ×${n}`).join(', ')}); worker RSS idle ${fmt(run.idleRssMiB)} MiB, peak ${fmt(run.peakRssMiB)} MiB, ` +
      `highest sample by third of the run ${run.rssByThirdMiB.map(fmt).join(' / ')} MiB`,
  );
  const first = Math.min(...run.report.partitions.map((p) => p.exportStartedAt));
  const windows = run.report.partitions.slice(0, 8).map((p) => `${p.index}: +${p.exportStartedAt - first}–${p.exportStartedAt - first + p.exportMs}`);
  say(`${label}: export windows (ms from the first export's start): ${windows.join(', ')}${run.report.partitions.length > 8 ? ', …' : ''}`);
}

/**
 * Ferry's export stage against mydumper, each at every setting asked for:
 * ferry with N partitions of ROWS/N rows, all N in flight (N streams from
 * the database); mydumper with T threads and about two chunks per thread.
 * One export of 1 M rows takes about 0.2 s and moves by a fifth from one run
 * to the next on a shared machine, so each setting's figure is the median of
 * EXPORT_SAMPLES samples, taken in turn across all the settings. The goal
 * compares the two tools each at its fastest setting; the two at the
 * migration's concurrency are printed too. Returns the summary table's rows.
 */
async function compareExport(): Promise<[string, string, string, string][]> {
  const ferryRates = new Map(EXPORT_STREAMS.map((n) => [n, [] as number[]]));
  const mydumperRates = new Map(MYDUMPER_THREADS.map((t) => [t, [] as number[]]));
  for (let round = 0; round < EXPORT_SAMPLES; round++) {
    for (let i = 0; i < Math.max(EXPORT_STREAMS.length, MYDUMPER_THREADS.length); i++) {
      const threads = MYDUMPER_THREADS[i];
      // Each setting's first dump prints its line (files written, time), the rest only their rate.
      if (threads !== undefined) mydumperRates.get(threads)!.push(await runMydumper('purchase', ROWS, threads, round > 0));
      const streams = EXPORT_STREAMS[i];
      if (streams !== undefined) ferryRates.get(streams)!.push(await sampleExport('purchase', streams));
    }
  }
  const list = (rates: number[]) => rates.map((r) => fmt(r / 1000)).join(', ');
  console.log('\n| export setting | samples, thousand rows/s, in the order taken | median rows/s |\n|---|---|---|');
  for (const [n, rates] of ferryRates) console.log(`| ferry, ${n} partition${n === 1 ? '' : 's'} of ${fmt(ROWS / n)} rows, ${n} at once | ${list(rates)} | ${fmt(median(rates))} |`);
  for (const [t, rates] of mydumperRates) console.log(`| mydumper, ${mydumperSetting(t)} | ${list(rates)} | ${fmt(median(rates))} |`);
  const best = <K>(rates: Map<K, number[]>) => [...rates].map(([k, r]) => [k, median(r)] as const).reduce((a, b) => (b[1] > a[1] ? b : a));
  const [bestStreams, ferry] = best(ferryRates);
  const [bestThreads, mydumper] = best(mydumperRates);
  const rows: [string, string, string, string][] = [
    [`export rows/s, each at its fastest setting (medians of ${EXPORT_SAMPLES})`, `${fmt(ferry)} (${bestStreams} at once)`, `mydumper ${fmt(mydumper)} (${bestThreads} threads)`, `${(ferry / mydumper).toFixed(2)}× (goal ≥ 1×)`],
  ];
  const ownFerry = ferryRates.get(CONCURRENCY);
  const ownMydumper = mydumperRates.get(CONCURRENCY);
  if (ownFerry && ownMydumper) {
    rows.push([`export rows/s, both ${CONCURRENCY} at once (the migration's concurrency)`, fmt(median(ownFerry)), `mydumper ${fmt(median(ownMydumper))}`, `${(median(ownFerry) / median(ownMydumper)).toFixed(2)}×`]);
  }
  return rows;
}

function printTable(rows: [string, string, string, string][]): void {
  console.log('\n| figure | ferry | baseline | ratio |\n|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}

async function main(): Promise<void> {
  say(`machine: ${os.cpus().length} cores, ${fmt(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model ?? 'unknown CPU'}; node ${process.version}`);
  say(`settings: ${fmt(ROWS)} rows, concurrency ${CONCURRENCY}, ${fmt(PARTITION_ROWS)} rows per partition, ${WRITERS} writers per partition`);
  const up = await runFerry(['stack', 'up']);
  if (up.code !== 0) throw new Error(`ferry stack up failed:\n${up.stdout}${up.stderr}`);

  await seed('purchase', ROWS);
  if (EXPORT_ONLY) {
    printTable(await compareExport());
    return;
  }
  // Install mydumper now, not after the migrations, if it is missing.
  await ensureMydumper();
  // The naive loader runs half its rows before the migration and half after: this machine's speed
  // drifts over minutes, and the load's ratio is taken against both sides of it.
  const naiveRows = Math.max(1, Math.floor(Math.min(NAIVE_ROWS, ROWS) / 2));
  const naiveBefore = await runNaiveLoader('purchase', naiveRows);
  const base = await runFerryMigration('purchase');
  describeRun(`ferry ${fmt(ROWS)}`, base);
  const naiveAfter = await runNaiveLoader('purchase', naiveRows);
  // Rows over both halves' time: with equal halves, the harmonic mean of the two rates.
  const naiveRate = 2 / (1 / naiveBefore + 1 / naiveAfter);
  say(`naive loader: ${fmt(naiveBefore)} items/s before the migration, ${fmt(naiveAfter)} after; ${fmt(naiveRate)} over both`);

  let large: FerryRun | undefined;
  if (RSS_ROWS > 0) {
    await seed('purchase_large', RSS_ROWS);
    large = await runFerryMigration('purchase_large');
    describeRun(`ferry ${fmt(RSS_ROWS)}`, large);
  }

  const t = base.report.tables[0]!;
  const exported = await compareExport();

  const rows: [string, string, string, string][] = [
    ...exported,
    [`export rows/s in this migration (${t.partitions} partitions, ${CONCURRENCY} at once)`, fmt(t.exportRowsPerSecond), '', ''],
    ['transform rows/s', fmt(t.transformRowsPerSecond), '', ''],
    ['load items/s', fmt(t.loadItemsPerSecond), `naive PutItem ${fmt(naiveRate)} (before ${fmt(naiveBefore)}, after ${fmt(naiveAfter)})`, `${(t.loadItemsPerSecond / naiveRate).toFixed(1)}× (goal ≥ 10×)`],
    ['end to end rows/s', fmt(base.report.rows / base.wallSeconds), `naive PutItem ${fmt(naiveRate)}`, `${(base.report.rows / base.wallSeconds / naiveRate).toFixed(1)}×`],
    [`worker peak RSS, ${fmt(ROWS)} rows`, `${fmt(base.peakRssMiB)} MiB`, '', 'goal < 1024 MiB'],
  ];
  if (large) {
    const [first, , last] = large.rssByThirdMiB;
    rows.push(
      [`worker peak RSS, ${fmt(RSS_ROWS)} rows`, `${fmt(large.peakRssMiB)} MiB`, `${fmt(ROWS)} rows: ${fmt(base.peakRssMiB)} MiB`, `${(large.peakRssMiB / base.peakRssMiB).toFixed(2)}× for ${(RSS_ROWS / ROWS).toFixed(0)}× the rows`],
      [`worker RSS sampled each second, ${fmt(RSS_ROWS)} rows: highest in the run's last third`, `${fmt(last)} MiB`, `first third: ${fmt(first)} MiB`, `${(last / first).toFixed(2)}× (flat: ~1×)`],
    );
  }
  printTable(rows);
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
