/**
 * MySQL/MariaDB connections. Values come back as strings for big numbers,
 * decimals and dates so no precision is lost on the way to the type mapping.
 */
import fs from 'node:fs';
import mysql from 'mysql2/promise';

export type MysqlConnection = mysql.Connection;

/** TLS to the source, in the names MySQL's own clients use (`--ssl-mode`), from the URL's `ssl-mode` and `ssl-ca`. */
export type TlsMode = 'DISABLED' | 'REQUIRED' | 'VERIFY_CA' | 'VERIFY_IDENTITY';
export interface SourceTls {
  mode: TlsMode;
  /** The CA certificate file that signed the server's certificate (VERIFY_CA, VERIFY_IDENTITY). */
  ca?: string;
}

/** The URL options sourceTls reads; every reader of the source honours them (docs/configuration.md). */
export const TLS_URL_OPTIONS = ['ssl-mode', 'ssl-ca'];
const TLS_MODES: TlsMode[] = ['DISABLED', 'REQUIRED', 'VERIFY_CA', 'VERIFY_IDENTITY'];

/**
 * A source URL's TLS settings. Without `ssl-mode`, DISABLED (plaintext, as
 * before), or VERIFY_IDENTITY when `ssl-ca` is given.
 */
export function sourceTls(url: string | URL): SourceTls {
  const where = typeof url === 'string' ? new URL(url) : url;
  const given = where.searchParams.get('ssl-mode');
  const ca = where.searchParams.get('ssl-ca') ?? undefined;
  const mode = (given ?? (ca ? 'VERIFY_IDENTITY' : 'DISABLED')).toUpperCase() as TlsMode;
  if (!TLS_MODES.includes(mode)) throw new Error(`the source URL sets ssl-mode=${given}: expected one of ${TLS_MODES.join(', ')}`);
  if ((mode === 'VERIFY_CA' || mode === 'VERIFY_IDENTITY') && !ca) {
    throw new Error(`the source URL sets ssl-mode=${mode}, which needs ssl-ca=/path/to/ca.pem: the CA certificate that signed the server's`);
  }
  return { mode, ca };
}

/** mysql2's `ssl` option for `tls` (the binlog reader connects with mysql2 too); undefined: plaintext. */
export function driverTls(tls: SourceTls): { ca?: string; rejectUnauthorized: boolean; verifyIdentity?: boolean } | undefined {
  if (tls.mode === 'DISABLED') return undefined;
  if (tls.mode === 'REQUIRED') return { rejectUnauthorized: false };
  let ca: string;
  try {
    ca = fs.readFileSync(tls.ca!, 'utf8');
  } catch (err) {
    throw new Error(`the source URL's ssl-ca=${tls.ca} cannot be read on this worker: ${(err as Error).message}`);
  }
  return { ca, rejectUnauthorized: true, verifyIdentity: tls.mode === 'VERIFY_IDENTITY' };
}

/** The URL without the options sourceTls reads, which mysql2 does not know. */
export function withoutTlsOptions(url: string): string {
  const where = new URL(url);
  for (const option of TLS_URL_OPTIONS) where.searchParams.delete(option);
  return where.toString();
}

export async function connectMysql(url: string): Promise<MysqlConnection> {
  let connection: MysqlConnection;
  try {
    const ssl = driverTls(sourceTls(url));
    connection = await mysql.createConnection({
      uri: withoutTlsOptions(url),
      ...(ssl ? { ssl } : {}),
      supportBigNumbers: true,
      bigNumberStrings: true,
      decimalNumbers: false,
      dateStrings: true,
      timezone: 'Z',
      // JSON as its text: the type mapping parses it without rounding numbers.
      jsonStrings: true,
      connectTimeout: 10_000,
    });
  } catch (err) {
    const where = new URL(url);
    throw new Error(
      `cannot connect to MySQL at ${where.hostname}:${where.port || 3306} as ${decodeURIComponent(where.username)}: ${(err as Error).message}. ` +
        'Check the connection URL (FERRY_MYSQL_URL or the spec\'s source), or start the local stack with `ferry stack up`.',
    );
  }
  // TIMESTAMP values are read in UTC, so they map to ISO-8601 with a Z.
  await connection.query("SET time_zone = '+00:00'");
  return connection;
}

/**
 * Streams a query's rows as arrays, with backpressure, so memory stays flat
 * however large the result. (The promise wrapper keeps the callback
 * connection, which can stream, as `.connection`.)
 */
export function streamRows(db: MysqlConnection, sql: string, params: unknown[] = [], highWaterMark = 5_000): AsyncIterable<unknown[]> {
  const core = (db as unknown as { connection: { query(options: object, values: unknown[]): { stream(o: { highWaterMark: number }): AsyncIterable<unknown[]> } } }).connection;
  return core.query({ sql, rowsAsArray: true }, params).stream({ highWaterMark });
}
