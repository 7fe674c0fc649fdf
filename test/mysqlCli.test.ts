import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cliConnection, CliUnavailable } from '../src/mysqlCli.js';

test('the command-line client connects where the driver would, with the password only in its environment', () => {
  const tcp = cliConnection('mysql://app%40eu:p%40ss%3Aw0rd@db.example.com:3307/shop%2D1');
  assert.ok(tcp.args.includes('--protocol=TCP') && tcp.args.includes('--host=db.example.com') && tcp.args.includes('--port=3307'));
  assert.ok(tcp.args.includes('--user=app@eu') && tcp.args.includes('--database=shop-1'));
  assert.equal(tcp.env.MYSQL_PWD, 'p@ss:w0rd');
  assert.ok(!tcp.args.some((a) => a.includes('p@ss')), 'no password on the command line');
  assert.equal(tcp.args[0], '--no-defaults', 'no option file can add to or override the URL');

  const defaults = cliConnection('mysql://root@[::1]/');
  assert.ok(defaults.args.includes('--host=::1') && defaults.args.includes('--port=3306'));
  assert.equal(defaults.env.MYSQL_PWD, undefined);
  assert.ok(!defaults.args.some((a) => a.startsWith('--database')));

  const socket = cliConnection('mysql://app:pw@localhost/shop?socketPath=%2Frun%2Fmysqld%2Fmysqld.sock');
  assert.ok(socket.args.includes('--protocol=SOCKET') && socket.args.includes('--socket=/run/mysqld/mysqld.sock'));
  assert.ok(!socket.args.some((a) => a.startsWith('--host')));
});

test('a source URL with driver options the client does not reproduce (TLS, charset) keeps export on the driver', () => {
  assert.throws(() => cliConnection('mysql://app:pw@db/shop?ssl=%7B%22rejectUnauthorized%22%3Atrue%7D'), (err: unknown) => err instanceof CliUnavailable && /"ssl"/.test(err.message));
  assert.throws(() => cliConnection('mysql://app:pw@db/shop?charset=latin1'), CliUnavailable);
});

test("a source URL's ssl-mode and ssl-ca become the client's TLS options; a bad mode or a verifying one without a CA is refused by name", () => {
  const tlsArgs = (query: string) => cliConnection(`mysql://app:pw@db/shop${query}`).args.filter((a) => a.includes('ssl'));
  assert.deepEqual(tlsArgs(''), ['--skip-ssl']);
  assert.deepEqual(tlsArgs('?ssl-mode=disabled'), ['--skip-ssl']);
  assert.deepEqual(tlsArgs('?ssl-mode=REQUIRED'), ['--ssl']);
  assert.deepEqual(tlsArgs('?ssl-mode=VERIFY_IDENTITY&ssl-ca=%2Fetc%2Fca.pem'), ['--ssl', '--ssl-ca=/etc/ca.pem', '--ssl-verify-server-cert']);
  assert.deepEqual(tlsArgs('?ssl-ca=%2Fetc%2Fca.pem'), ['--ssl', '--ssl-ca=/etc/ca.pem', '--ssl-verify-server-cert'], 'a CA alone means VERIFY_IDENTITY');
  assert.throws(() => cliConnection('mysql://app:pw@db/shop?ssl-mode=VERIFY_CA&ssl-ca=%2Fetc%2Fca.pem'), (err: unknown) => err instanceof CliUnavailable && /VERIFY_CA/.test(err.message));
  assert.throws(() => cliConnection('mysql://app:pw@db/shop?ssl-mode=sometimes'), /ssl-mode=sometimes: expected one of DISABLED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY/);
  assert.throws(() => cliConnection('mysql://app:pw@db/shop?ssl-mode=VERIFY_IDENTITY'), /needs ssl-ca=/);
});
