/**
 * The statements that read the source's binlog position and files differ by
 * server: MySQL 8.2 renamed `SHOW MASTER STATUS` to `SHOW BINARY LOG STATUS`
 * and 8.4 removed the old name; MariaDB 10.5.2 renamed it `SHOW BINLOG STATUS`
 * (keeping the old name as an alias) and never accepts MySQL's new one.
 * `SHOW BINARY LOGS` is accepted by all (`SHOW MASTER LOGS`, its old synonym,
 * is gone from MySQL 8.4). Chosen once per connection from `SELECT VERSION()`;
 * docs/cdc.md says which choices run against a real server here.
 */
import type { MysqlConnection } from '../mysql.js';
import type { BinlogPosition } from './events.js';

export interface SourceServer {
  flavour: 'mysql' | 'mariadb';
  /** major, minor, patch */
  version: [number, number, number];
  /** VERSION() as the server said it, for messages. */
  text: string;
}

export interface BinlogStatements {
  server: SourceServer;
  /** The binlog's current file and position (columns File, Position). */
  status: string;
  /** The binlog files the server still has (column Log_name). */
  logs: string;
}

/** What `SELECT VERSION()` says about the server: `10.11.19-MariaDB-0+deb12u1-log`, `8.4.3`, `8.0.36-28` (Percona). */
export function sourceServer(version: string): SourceServer {
  const flavour = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
  // A MariaDB behind a replication-compatible handshake may say 5.5.5-<its version>.
  const bare = flavour === 'mariadb' ? version.replace(/^5\.5\.5-/, '') : version;
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(bare.trim());
  if (!m) throw new Error(`cannot tell the source server's version from VERSION() = '${version}': it should start with major.minor.patch, as MySQL's and MariaDB's do`);
  return { flavour, version: [Number(m[1]), Number(m[2]), Number(m[3])], text: version };
}

const atLeast = (v: [number, number, number], major: number, minor: number, patch = 0) =>
  v[0] !== major ? v[0] > major : v[1] !== minor ? v[1] > minor : v[2] >= patch;

/** The statements for the server whose `SELECT VERSION()` is `version`. */
export function binlogStatements(version: string): BinlogStatements {
  const server = sourceServer(version);
  let status: string;
  if (server.flavour === 'mariadb') status = atLeast(server.version, 10, 5, 2) ? 'SHOW BINLOG STATUS' : 'SHOW MASTER STATUS';
  else status = atLeast(server.version, 8, 2) ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS';
  return { server, status, logs: 'SHOW BINARY LOGS' };
}

/** Asks the server on `db` which it is, once, and returns its statements. */
export async function binlogStatementsOf(db: MysqlConnection): Promise<BinlogStatements> {
  const [[row]] = (await db.query('SELECT VERSION() AS version')) as unknown as [[{ version: string }]];
  return binlogStatements(row.version);
}

/** The binlog's current end, read with `statements`; undefined when the server writes no binlog (log_bin off). */
export async function readBinlogStatus(db: MysqlConnection, statements: BinlogStatements): Promise<BinlogPosition | undefined> {
  const [rows] = (await db.query(statements.status)) as unknown as [{ File: string; Position: number | string }[]];
  const row = rows[0];
  return row ? { file: row.File, position: Number(row.Position) } : undefined;
}
