/**
 * MySQL/MariaDB connections. Values come back as strings for big numbers,
 * decimals and dates so no precision is lost on the way to the type mapping.
 */
import mysql from 'mysql2/promise';

export type MysqlConnection = mysql.Connection;

export async function connectMysql(url: string): Promise<MysqlConnection> {
  let connection: MysqlConnection;
  try {
    connection = await mysql.createConnection({
      uri: url,
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
