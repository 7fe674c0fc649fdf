/**
 * `ferry demo`: the whole near-zero-downtime migration on the local stack. It
 * seeds a `purchase` table, starts a load generator writing inserts, updates
 * and deletes through the cutover fence, migrates with the grouping mapping
 * (one item per order, each product an attribute holding its quantity),
 * catches up, cuts over automatically, verifies, and prints the report.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createFence, FerryClient, withSourceWrite, type MigrationReport, type MigrationSpecInput } from '../client.js';
import { loadConfig, projectRoot } from '../config.js';
import { connectMysql } from '../mysql.js';
import { interruptedWhileWatching, interruption, printReport, watch } from './migrate.js';
import { workflowUrl } from './smoke.js';

const DATABASE = 'ferry_demo';

async function seed(rows: number, say: (line: string) => void): Promise<void> {
  const db = await connectMysql(loadConfig().mysqlUrl);
  try {
    await db.query(`CREATE DATABASE IF NOT EXISTS ${DATABASE}`);
    await db.query(`DROP TABLE IF EXISTS ${DATABASE}.purchase`);
    await db.query(`CREATE TABLE ${DATABASE}.purchase (customerid INT NOT NULL, orderid INT NOT NULL, productid INT NOT NULL, quantity INT NOT NULL, PRIMARY KEY (customerid, orderid, productid))`);
    await db.query(`INSERT INTO ${DATABASE}.purchase SELECT seq DIV 60, (seq DIV 6) MOD 10, 1000 + seq MOD 6, 1 + seq MOD 9 FROM seq_0_to_${rows - 1}`);
    say(`demo: seeded ${DATABASE}.purchase with ${rows.toLocaleString('en')} rows`);
  } finally {
    await db.end();
  }
}

/** The application: writes through the fence until the cutover sends it to DynamoDB. */
async function loadGenerator(name: string, customers: number, stop: { now: boolean }): Promise<{ writes: number; fenced: boolean }> {
  const db = await connectMysql(loadConfig().mysqlUrl);
  // The application writes through the fence from before the migration starts: it creates the fence first.
  await createFence(db, name, DATABASE);
  const t = `${DATABASE}.purchase`;
  let writes = 0;
  let seed = 11;
  const random = (n: number) => ((seed = (seed * 48271) % 2147483647) % n) + 0;
  try {
    while (!stop.now) {
      const c = random(customers);
      const o = random(10);
      const op = random(100);
      const wrote = await withSourceWrite(
        db,
        name,
        async (tx) => {
          if (op < 50) await tx.query(`UPDATE ${t} SET quantity = quantity + 1 WHERE customerid = ? AND orderid = ?`, [c, o]);
          else if (op < 80) await tx.query(`INSERT IGNORE INTO ${t} VALUES (?, ?, ?, ?)`, [c, o, 2000 + random(50), 1 + random(9)]);
          else await tx.query(`DELETE FROM ${t} WHERE customerid = ? AND orderid = ? AND productid = ?`, [c, o, 1000 + random(6)]);
        },
        DATABASE,
      );
      if (!wrote) return { writes, fenced: true };
      writes++;
      await new Promise((r) => setTimeout(r, 10));
    }
    return { writes, fenced: false };
  } finally {
    await db.end();
  }
}

export async function runDemo(options: { rows: number; say: (line: string) => void }): Promise<MigrationReport> {
  const { say } = options;
  const config = loadConfig();
  await seed(options.rows, say);
  const stamp = new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14);
  const spec = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'docs', 'examples', 'purchase-grouped.json'), 'utf8')) as MigrationSpecInput & { name: string };
  spec.name = `demo-${stamp}`;
  spec.source = { database: DATABASE };
  for (const rule of spec.mapping.rules as { 'rule-type': string; 'object-locator': { 'schema-name': string }; 'target-table-name'?: string }[]) {
    rule['object-locator']['schema-name'] = DATABASE;
    if (rule['rule-type'] === 'object-mapping') rule['target-table-name'] = `demo_orders_${stamp}`;
  }
  spec.bulk = { partitionRows: Math.max(10_000, Math.ceil(options.rows / 4)), concurrency: 2 };
  spec.capture = { createStream: true, shards: 2, cutover: 'auto', maxLagMs: 1_000 };

  const ferry = await FerryClient.connect(config);
  const { createWorker } = await import('../../worker/main.js');
  const worker = await createWorker(config);
  const stop = { now: false };
  const app = loadGenerator(spec.name, Math.ceil(options.rows / 60), stop);
  const interrupted = interruption();
  let watching = false; // between the start and the end of the run: an interruption leaves it running
  try {
    const report = await worker.runUntil(async () => {
      const migration = await ferry.startMigration(spec);
      watching = true;
      say(`demo: started migration ${spec.name} with a load generator writing to the source; watch it at ${workflowUrl(config.temporal, spec.name)}`);
      const result = await interrupted.race(watch(migration, say, 'demo'));
      watching = false;
      const written = await app;
      say(`demo: the load generator made ${written.writes.toLocaleString('en')} writes to MySQL during the migration${written.fenced ? ', then the fence sent it to DynamoDB' : ''}`);
      const verified = await ferry.verify(spec);
      for (const t of verified.tables) {
        say(`demo: verify ${t.table} → ${t.targetTable}: ${t.sourceItems} source items, ${t.differing} differing, ${t.missing} missing, ${t.extra} extra`);
      }
      say(`demo: verification: ${verified.ok ? 'the target equals the source' : 'the target DIFFERS from the source'}`);
      return result;
    });
    printReport(report, say);
    const capture = report.capture;
    if (capture?.cutover) {
      const { check } = capture.cutover;
      say(`demo: cutover: writes were frozen for ${capture.cutover.freezeMs} ms; ${spec.name} now routes to ${await ferry.resolveBackend(spec.name)}`);
      if (check) say(`demo: cutover: inside the freeze, the ${check.items} items touched by the last ${check.coveredMs} ms of changes (${check.changes}) matched the source`);
    }
    say(`demo: Web UI: ${workflowUrl(config.temporal, spec.name)}`);
    return report;
  } catch (err) {
    if (interrupted.fired() && watching) throw interruptedWhileWatching(spec.name, config.temporal.taskQueue, true);
    throw err;
  } finally {
    interrupted.dispose();
    stop.now = true;
    await app.catch(() => undefined);
    await ferry.close();
  }
}
