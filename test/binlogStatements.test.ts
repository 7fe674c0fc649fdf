/**
 * Which statements read the binlog's position and files, by server (pure
 * logic; src/capture/binlogStatements.ts). The local stack runs MariaDB 10.11
 * only, so its row is the one the end-to-end tests also run; the MySQL rows
 * are covered here alone (docs/cdc.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binlogStatements, sourceServer } from '../src/capture/binlogStatements.js';

test('each server version gets the binlog status statement it accepts, and SHOW BINARY LOGS for its files', () => {
  const cases: [version: string, status: string][] = [
    // MySQL: SHOW BINARY LOG STATUS from 8.2.0; SHOW MASTER STATUS deprecated there and gone in 8.4.
    ['5.7.44-log', 'SHOW MASTER STATUS'],
    ['8.0.36', 'SHOW MASTER STATUS'],
    ['8.0.36-28', 'SHOW MASTER STATUS'], // Percona Server
    ['8.1.0', 'SHOW MASTER STATUS'],
    ['8.2.0', 'SHOW BINARY LOG STATUS'],
    ['8.3.0', 'SHOW BINARY LOG STATUS'],
    ['8.4.0', 'SHOW BINARY LOG STATUS'],
    ['8.4.3-commercial', 'SHOW BINARY LOG STATUS'],
    ['9.1.0', 'SHOW BINARY LOG STATUS'],
    ['10.0.0', 'SHOW BINARY LOG STATUS'], // a MySQL past 9, not a MariaDB: VERSION() says which
    // MariaDB: SHOW BINLOG STATUS from 10.5.2 (the old name stays an alias); it never accepts MySQL's new name.
    ['10.3.39-MariaDB', 'SHOW MASTER STATUS'],
    ['5.5.5-10.4.34-MariaDB-log', 'SHOW MASTER STATUS'],
    ['10.5.1-MariaDB', 'SHOW MASTER STATUS'],
    ['10.5.2-MariaDB', 'SHOW BINLOG STATUS'],
    ['10.11.19-MariaDB-0+deb12u1-log', 'SHOW BINLOG STATUS'], // the local stack's
    ['11.8.8-MariaDB-ubu2404-log', 'SHOW BINLOG STATUS'],
  ];
  for (const [version, status] of cases) {
    assert.deepEqual({ version, ...binlogStatements(version), server: undefined }, { version, status, logs: 'SHOW BINARY LOGS', server: undefined });
  }
});

test('the server is told apart by VERSION(): flavour and version numbers; an unreadable version is refused by name', () => {
  assert.deepEqual(sourceServer('10.11.19-MariaDB-0+deb12u1-log'), { flavour: 'mariadb', version: [10, 11, 19], text: '10.11.19-MariaDB-0+deb12u1-log' });
  assert.deepEqual(sourceServer('5.5.5-10.4.34-MariaDB-log').version, [10, 4, 34]);
  assert.deepEqual(sourceServer('8.4.3'), { flavour: 'mysql', version: [8, 4, 3], text: '8.4.3' });
  assert.throws(() => binlogStatements('unknown'), /cannot tell the source server's version from VERSION\(\) = 'unknown'/);
});
