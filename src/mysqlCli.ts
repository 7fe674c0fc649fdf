/**
 * The MariaDB command-line client as a fast reader: it runs one SELECT and
 * writes the rows as tab-separated text (`--batch --raw`), in C, several times
 * faster than decoding rows in JavaScript. Connection settings come from the
 * same mysql://user:password@host:port/database URL the mysql2 driver uses;
 * the password travels in the child's environment (MYSQL_PWD), never on its
 * command line.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { sourceTls, TLS_URL_OPTIONS, type SourceTls } from './mysql.js';

export interface MysqlCli {
  binary: string;
  version: string;
}

/** Why the command-line client cannot stand in for the driver on this worker or for this URL. */
export class CliUnavailable extends Error {
  override name = 'CliUnavailable';
}

let lookup: Promise<MysqlCli | null> | undefined;

/**
 * MariaDB's client on PATH: `mariadb`, else `mysql` when that is MariaDB's.
 * Oracle's `mysql` is not used: its TLS and option defaults differ.
 */
export function findMysqlCli(): Promise<MysqlCli | null> {
  lookup ??= (async () => {
    for (const name of ['mariadb', 'mysql']) {
      for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
        const binary = path.join(dir, name);
        try {
          fs.accessSync(binary, fs.constants.X_OK);
          const { stdout } = await promisify(execFile)(binary, ['--version'], { timeout: 10_000 });
          if (/MariaDB/i.test(stdout)) return { binary, version: stdout.trim() };
        } catch {
          // not here, or not runnable: keep looking
        }
      }
    }
    return null;
  })();
  return lookup;
}

export interface CliConnection {
  /** Client options for the connection (never the password). */
  args: string[];
  /** The child's whole environment: PATH, and MYSQL_PWD when there is a password. */
  env: NodeJS.ProcessEnv;
  password: string;
}

/** URL options the fast readers reproduce; any other (ssl, charset, …) keeps the export on the driver. */
const FAST_URL_OPTIONS = new Set(['socketPath', ...TLS_URL_OPTIONS]);

/** A source URL's parts, read the way mysql2 reads it (ConnectionConfig.parseUrl). */
export interface SourceEndpoint {
  /** Host name or address (default localhost), for TCP. */
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** `?socketPath=`: a Unix socket instead of TCP. */
  socket?: string;
  tls: SourceTls;
}

/**
 * The parts of a source URL; `Unavailable` is thrown when the URL does not
 * parse or sets a driver option the fast readers do not reproduce.
 */
export function sourceEndpoint(url: string, Unavailable: new (message: string) => Error, reader: string): SourceEndpoint {
  let where: URL;
  try {
    where = new URL(url);
  } catch {
    throw new Unavailable('the source URL does not parse as a URL');
  }
  for (const key of where.searchParams.keys()) {
    if (!FAST_URL_OPTIONS.has(key)) throw new Unavailable(`the source URL sets the driver option "${key}", which ${reader} does not reproduce`);
  }
  return {
    host: decodeURIComponent(where.hostname.startsWith('[') ? where.hostname.slice(1, -1) : where.hostname) || 'localhost',
    port: Number(where.port || 3306),
    user: decodeURIComponent(where.username),
    password: decodeURIComponent(where.password),
    database: decodeURIComponent(where.pathname.replace(/^\//, '')),
    socket: where.searchParams.get('socketPath') ?? undefined,
    tls: sourceTls(where),
  };
}

/**
 * The client options for a source URL: host and port over TCP, or
 * `?socketPath=` for a Unix socket; TLS as the URL's `ssl-mode` says (none
 * without it, as mysql2 without an `ssl` option). MariaDB's client checks a
 * certificate only together with the host name, so VERIFY_CA is left to the
 * driver.
 */
export function cliConnection(url: string): CliConnection {
  const { host, port, user, password, database, socket, tls } = sourceEndpoint(url, CliUnavailable, 'the command-line export');
  if (tls.mode === 'VERIFY_CA') throw new CliUnavailable('the source URL sets ssl-mode=VERIFY_CA, which MariaDB\'s client cannot check without the host name');
  const tlsArgs = tls.mode === 'DISABLED' ? ['--skip-ssl'] : tls.mode === 'REQUIRED' ? ['--ssl'] : ['--ssl', `--ssl-ca=${tls.ca}`, '--ssl-verify-server-cert'];
  const args = ['--no-defaults', ...tlsArgs, '--connect-timeout=10', '--max-allowed-packet=1073741824', '--default-character-set=utf8mb4'];
  if (socket) args.push('--protocol=SOCKET', `--socket=${socket}`);
  else args.push('--protocol=TCP', `--host=${host}`, `--port=${port}`);
  if (user) args.push(`--user=${user}`);
  if (database) args.push(`--database=${database}`);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (password) env.MYSQL_PWD = password;
  return { args, env, password };
}

export interface DumpResult {
  /** Lines written: one per row. */
  rows: number;
  /** The longest line, in bytes, without its newline. */
  longestLine: number;
  bytes: number;
}

/** Counts lines as they pass, so rows are known without reading the file again. */
class LineCounter extends Transform {
  rows = 0;
  longestLine = 0;
  bytes = 0;
  private partial = 0;

  constructor(private readonly onRows: (rows: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    const before = this.rows;
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      this.longestLine = Math.max(this.longestLine, this.partial + newline - start);
      this.partial = 0;
      this.rows++;
      start = newline + 1;
    }
    this.partial += chunk.length - start;
    if (this.rows !== before) this.onRows(this.rows);
    done(null, chunk);
  }

  /** Bytes after the last newline: the output stopped mid-row. */
  get unterminated(): number {
    return this.partial;
  }
}

/**
 * Runs one SELECT with the client in batch mode and writes its output, one
 * line per row, to `file`. `session` is run first on the connection (and on
 * no other: the client does not reconnect). Rejects with the client's error
 * output when it exits non-zero; `signal` kills it.
 */
export async function dumpQuery(
  cli: MysqlCli,
  connection: CliConnection,
  query: { session: string; select: string },
  file: string,
  options: { signal?: AbortSignal; onRows?: (rows: number) => void } = {},
): Promise<DumpResult> {
  const args = [
    ...connection.args,
    // A reconnect would run the SELECT without the session's settings.
    '--skip-reconnect',
    `--init-command=${query.session}`,
    // mysql2 connects with CLIENT_IGNORE_SPACE, which adds IGNORE_SPACE to sql_mode: the same parser here.
    '--ignore-spaces',
    // Send the statement as written: no comment stripping, no client commands.
    '--comments',
    '--binary-mode',
    '--batch',
    '--raw',
    '--skip-column-names',
    '--quick',
  ];
  const child = spawn(cli.binary, args, { env: connection.env, stdio: ['pipe', 'pipe', 'pipe'], signal: options.signal });
  // The SELECT goes in on stdin, not the command line, where any user's `ps` would show the key bounds.
  child.stdin.on('error', () => {}); // a client that died early: its exit code and stderr say why
  child.stdin.end(`${query.select};\n`);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    if (stderr.length < 16_384) stderr += text;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const counter = new LineCounter(options.onRows ?? (() => {}));
  const copied = pipeline(child.stdout, counter, fs.createWriteStream(file)).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  const [{ code, signal }] = await Promise.all([exited, copied]);
  const name = path.basename(cli.binary);
  if (code !== 0) {
    const said = scrub(stderr.trim(), connection.password) || '(no error output)';
    throw new Error(`${name} exited with ${code === null ? `signal ${signal}` : `code ${code}`}: ${said}`);
  }
  if (counter.unterminated) throw new Error(`${name} output ends in the middle of a row (${counter.unterminated} bytes after the last newline)`);
  return { rows: counter.rows, longestLine: counter.longestLine, bytes: counter.bytes };
}

/** `text` with every occurrence of `password` replaced by ***. */
export function scrub(text: string, password: string): string {
  return password ? text.split(password).join('***') : text;
}
