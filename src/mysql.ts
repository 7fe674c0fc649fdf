/**
 * MySQL/MariaDB connections. Values come back as strings for big numbers,
 * decimals and dates so no precision is lost on the way to the type mapping.
 */
import mysql from 'mysql2/promise';

export type MysqlConnection = mysql.Connection;

export async function connectMysql(url: string): Promise<MysqlConnection> {
  try {
    return await mysql.createConnection({
      uri: url,
      supportBigNumbers: true,
      bigNumberStrings: true,
      decimalNumbers: false,
      dateStrings: true,
      timezone: 'Z',
      connectTimeout: 10_000,
    });
  } catch (err) {
    const where = new URL(url);
    throw new Error(
      `cannot connect to MySQL at ${where.hostname}:${where.port || 3306} as ${decodeURIComponent(where.username)}: ${(err as Error).message}. ` +
        'Check the connection URL (FERRY_MYSQL_URL or the spec\'s source), or start the local stack with `ferry stack up`.',
    );
  }
}
