/**
 * The five parts of the local stack: how each is installed, started, checked
 * and prepared. All of them bind to 127.0.0.1; state lives under the stack
 * folder, binaries in the per-user cache.
 */
import { CreateBucketCommand, HeadBucketCommand, ListBucketsCommand } from '@aws-sdk/client-s3';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { Connection } from '@temporalio/client';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { dynamoClient, kinesisClient, s3Client } from '../aws.js';
import { LOCAL_CREDENTIALS, LOCAL_REGION, LOOPBACK, type FerryConfig, type StackPorts } from '../config.js';
import { FERRY_SEARCH_ATTRIBUTES } from '../searchAttributes.js';
import { ensureDebianPackages, ensureDynamoDbLocal, ensureTemporalCli, ensureVersitygw, runCommand, type Progress } from './install.js';
import { serviceFiles, type ServiceDefinition } from './service.js';

export const PART_NAMES = ['temporal', 'mysql', 'dynamodb', 'kinesis', 's3'] as const;
export type PartName = (typeof PART_NAMES)[number];

export interface StackContext {
  config: FerryConfig;
  ports: StackPorts;
  progress: Progress;
}

export interface Part {
  name: PartName;
  /** Installs what the part runs (idempotent, cached) and describes the service. */
  prepare(ctx: StackContext): Promise<ServiceDefinition>;
  /** One health probe; needs nothing installed beyond what a running part already has. */
  healthy(ctx: StackContext): Promise<boolean>;
  /** Idempotent setup once the service is healthy: users, buckets. */
  afterStart?(ctx: StackContext): Promise<void>;
  /** What an operator needs to reach the part. */
  describe(ctx: StackContext): string;
}

const ASSETS = path.join(path.dirname(new URL(import.meta.url).pathname), 'assets');

function installLog(ctx: StackContext, name: string): string {
  const { logFile } = serviceFiles(ctx.config.stackDir, name);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  return logFile;
}

/** True once the call succeeds; the client is closed either way so no socket keeps the CLI alive. */
async function answers<C extends { destroy(): void }>(client: C, call: (client: C) => Promise<unknown>): Promise<boolean> {
  try {
    await call(client);
    return true;
  } finally {
    client.destroy();
  }
}

const temporal: Part = {
  name: 'temporal',
  async prepare(ctx) {
    const binary = await ensureTemporalCli(ctx.config.cacheDir, ctx.progress, installLog(ctx, 'temporal'));
    const { dir } = serviceFiles(ctx.config.stackDir, 'temporal');
    const attributes = Object.entries(FERRY_SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]);
    return {
      name: 'temporal',
      ports: [
        { port: ctx.ports.temporal, variable: 'FERRY_TEMPORAL_PORT' },
        { port: ctx.ports.temporalUi, variable: 'FERRY_TEMPORAL_UI_PORT' },
      ],
      command: binary,
      args: [
        'server', 'start-dev',
        '--ip', LOOPBACK,
        '--port', String(ctx.ports.temporal),
        '--ui-ip', LOOPBACK,
        '--ui-port', String(ctx.ports.temporalUi),
        '--db-filename', path.join(dir, 'temporal.db'),
        '--log-level', 'warn',
        ...attributes,
      ],
      healthy: () => temporal.healthy(ctx),
      startTimeoutMs: 60_000,
    };
  },
  healthy: (ctx) => temporalHealthy(`${LOOPBACK}:${ctx.ports.temporal}`),
  describe: (ctx) => `gRPC ${LOOPBACK}:${ctx.ports.temporal}, Web UI http://${LOOPBACK}:${ctx.ports.temporalUi}`,
};

async function temporalHealthy(address: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1_000 });
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    return Object.keys(FERRY_SEARCH_ATTRIBUTES).every((name) => customAttributes?.[name] !== undefined);
  } finally {
    await connection.close();
  }
}

function mysqlSocket(ctx: StackContext): string {
  const inStack = path.join(serviceFiles(ctx.config.stackDir, 'mysql').dir, 'mysqld.sock');
  // Unix socket paths are limited to 107 bytes; deep clones fall back to /tmp.
  return inStack.length < 100 ? inStack : `/tmp/ferry-mysql-${ctx.ports.mysql}.sock`;
}

/** Where the stack's MariaDB keeps its TLS files: the CA a client verifies the server with, and the server's pair. */
export function mysqlTlsFiles(stackDir: string): { ca: string; cert: string; key: string } {
  const dir = path.join(serviceFiles(stackDir, 'mysql').dir, 'tls');
  return { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'server-cert.pem'), key: path.join(dir, 'server-key.pem') };
}

/**
 * A throwaway CA and a server certificate for 127.0.0.1 and localhost, made
 * once with openssl, so the local MariaDB also accepts TLS (plaintext still
 * works): what tests of TLS to the source connect with. Without openssl the
 * server starts without TLS, and says so in its install log.
 */
async function ensureMysqlTls(stackDir: string, log: string): Promise<string[]> {
  const files = mysqlTlsFiles(stackDir);
  if (!fs.existsSync(files.key)) {
    const dir = path.dirname(files.ca);
    fs.mkdirSync(dir, { recursive: true });
    const caKey = path.join(dir, 'ca-key.pem');
    const request = path.join(dir, 'server.csr');
    const names = path.join(dir, 'san.cnf');
    fs.writeFileSync(names, 'subjectAltName = IP:127.0.0.1, DNS:localhost\n');
    try {
      await runCommand('mysql', 'openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=ferry local CA', '-keyout', caKey, '-out', files.ca], { logFile: log });
      await runCommand('mysql', 'openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', `${files.key}.new`, '-out', request], { logFile: log });
      await runCommand('mysql', 'openssl', ['x509', '-req', '-in', request, '-CA', files.ca, '-CAkey', caKey, '-CAcreateserial', '-days', '3650', '-extfile', names, '-out', files.cert], { logFile: log });
      fs.renameSync(`${files.key}.new`, files.key);
    } catch (err) {
      fs.appendFileSync(log, `no TLS for the local MariaDB: ${(err as Error).message}\n`);
      return [];
    }
  }
  return [`--ssl-ca=${files.ca}`, `--ssl-cert=${files.cert}`, `--ssl-key=${files.key}`];
}

const mysqlPart: Part = {
  name: 'mysql',
  async prepare(ctx) {
    const log = installLog(ctx, 'mysql');
    await ensureDebianPackages('mysql', ['mariadbd', 'mariadb-install-db', 'mariadb', 'mariadb-admin'], ['mariadb-server', 'mariadb-client'], ctx.progress, log);
    const { dir } = serviceFiles(ctx.config.stackDir, 'mysql');
    const dataDir = path.join(dir, 'data');
    if (!fs.existsSync(path.join(dataDir, 'mysql'))) {
      ctx.progress('mysql: initialising a MariaDB data directory');
      fs.mkdirSync(dataDir, { recursive: true });
      await runCommand('mysql', 'mariadb-install-db', ['--no-defaults', `--datadir=${dataDir}`, '--user=root', '--auth-root-authentication-method=socket', '--skip-test-db'], { logFile: log });
    }
    const socket = mysqlSocket(ctx);
    const tls = await ensureMysqlTls(ctx.config.stackDir, log);
    return {
      name: 'mysql',
      ports: [{ port: ctx.ports.mysql, variable: 'FERRY_MYSQL_PORT' }],
      command: fs.existsSync('/usr/sbin/mariadbd') ? '/usr/sbin/mariadbd' : 'mariadbd',
      args: [
        '--no-defaults',
        `--datadir=${dataDir}`,
        `--port=${ctx.ports.mysql}`,
        `--bind-address=${LOOPBACK}`,
        `--socket=${socket}`,
        `--pid-file=${path.join(dir, 'mariadbd.pid')}`,
        '--user=root',
        '--skip-name-resolve',
        // MariaDB 10.11 still defaults to latin1; ferry moves any UTF-8 text.
        '--character-set-server=utf8mb4',
        '--collation-server=utf8mb4_unicode_ci',
        // What change capture needs: a row-based binlog with full row images.
        `--log-bin=${path.join(dir, 'binlog')}`,
        '--binlog-format=ROW',
        '--binlog-row-image=FULL',
        '--server-id=1',
        '--max-connections=500',
        '--innodb-buffer-pool-size=512M',
        // A throwaway local database: trade crash durability for speed.
        '--innodb-flush-log-at-trx-commit=2',
        '--sync-binlog=0',
        ...tls,
      ],
      healthy: () => mysqlPart.healthy(ctx),
      startTimeoutMs: 60_000,
    };
  },
  async healthy(ctx) {
    await runCommand('mysql', 'mariadb-admin', ['--no-defaults', `--socket=${mysqlSocket(ctx)}`, '-uroot', 'ping']);
    return true;
  },
  async afterStart(ctx) {
    const url = new URL(ctx.config.mysqlUrl);
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    const database = url.pathname.replace(/^\//, '') || 'ferry';
    const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;
    const sql = ['%', 'localhost']
      .flatMap((host) => [
        `CREATE USER IF NOT EXISTS ${quote(user)}@${quote(host)} IDENTIFIED BY ${quote(password)}`,
        // ALL includes what capture needs (REPLICATION SLAVE, BINLOG MONITOR) and what the cutover freeze needs.
        `GRANT ALL PRIVILEGES ON *.* TO ${quote(user)}@${quote(host)} WITH GRANT OPTION`,
      ])
      .concat([`CREATE DATABASE IF NOT EXISTS \`${database.replace(/`/g, '')}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`])
      .join(';\n');
    await runCommand('mysql', 'mariadb', ['--no-defaults', `--socket=${mysqlSocket(ctx)}`, '-uroot', '-e', sql]);
    const connection = await mysql.createConnection(ctx.config.mysqlUrl);
    await connection.end();
  },
  describe: (ctx) => `${LOOPBACK}:${ctx.ports.mysql} (MariaDB, row-based binlog), ${ctx.config.mysqlUrl.replace(/:[^:@/]*@/, ':***@')}`,
};

const dynamodb: Part = {
  name: 'dynamodb',
  async prepare(ctx) {
    const home = await ensureDynamoDbLocal(ctx.config.cacheDir, ctx.progress, installLog(ctx, 'dynamodb'));
    const { dir } = serviceFiles(ctx.config.stackDir, 'dynamodb');
    return {
      name: 'dynamodb',
      ports: [{ port: ctx.ports.dynamodb, variable: 'FERRY_DYNAMODB_PORT' }],
      cwd: dir,
      command: 'java',
      args: [
        '-Xmx2g',
        `-Djava.library.path=${path.join(home, 'lib')}`,
        '-cp', `${home}:${path.join(home, 'lib', '*')}`,
        'LoopbackDynamoDBLocal',
        '-port', String(ctx.ports.dynamodb),
        // In memory: on disk, every BatchWriteItem is an fsync'd SQLite commit and loads crawl
        // at a few hundred items/s. The local stack's DynamoDB starts empty after a restart.
        '-inMemory',
        '-sharedDb',
        '-disableTelemetry',
      ],
      healthy: () => dynamodb.healthy(ctx),
      startTimeoutMs: 60_000,
    };
  },
  async healthy(ctx) {
    return answers(dynamoClient(ctx.config.aws), (c) => c.send(new ListTablesCommand({ Limit: 1 })));
  },
  describe: (ctx) => `http://${LOOPBACK}:${ctx.ports.dynamodb} (DynamoDB Local)`,
};

const kinesis: Part = {
  name: 'kinesis',
  async prepare(ctx) {
    const require = createRequire(import.meta.url);
    const main = require.resolve('kinesis-local/main.js');
    return {
      name: 'kinesis',
      ports: [
        { port: ctx.ports.kinesis, variable: 'FERRY_KINESIS_PORT' },
        { port: ctx.ports.kinesisTls, variable: 'FERRY_KINESIS_TLS_PORT' },
      ],
      command: process.execPath,
      args: ['--require', path.join(ASSETS, 'kinesis-loopback.cjs'), main],
      env: {
        KINESIS_MOCK_PLAIN_PORT: String(ctx.ports.kinesis),
        KINESIS_MOCK_TLS_PORT: String(ctx.ports.kinesisTls),
        KINESIS_MOCK_CERT_PATH: path.join(path.dirname(main), 'server.json'),
        FERRY_BIND_HOST: LOOPBACK,
        AWS_REGION: ctx.config.aws.region ?? LOCAL_REGION,
        // In memory, like DynamoDB Local. Persisting writes the whole state as JSON every 5 s, which grows
        // with every record kept (24 h retention) until PutRecords takes seconds: measured 100 records in
        // 8.4 s after a day of tests, 53 ms on a fresh start. A migration resumed after a restart finds its
        // stream recreated and captures again from its recorded start (docs/cdc.md, "Resume").
        SHOULD_PERSIST_DATA: 'false',
        LOG_LEVEL: 'WARN',
      },
      healthy: () => kinesis.healthy(ctx),
      startTimeoutMs: 60_000,
    };
  },
  async healthy(ctx) {
    return answers(kinesisClient(ctx.config.aws), (c) => c.send(new ListStreamsCommand({ Limit: 1 })));
  },
  describe: (ctx) => `http://${LOOPBACK}:${ctx.ports.kinesis} (kinesis-mock)`,
};

const s3: Part = {
  name: 's3',
  async prepare(ctx) {
    const binary = await ensureVersitygw(ctx.config.cacheDir, ctx.progress, installLog(ctx, 's3'));
    const { dir } = serviceFiles(ctx.config.stackDir, 's3');
    const dataDir = path.join(dir, 'data');
    const metaDir = path.join(dir, 'meta');
    fs.mkdirSync(dataDir, { recursive: true });
    fs.mkdirSync(metaDir, { recursive: true });
    return {
      name: 's3',
      ports: [{ port: ctx.ports.s3, variable: 'FERRY_S3_PORT' }],
      command: binary,
      args: [
        '--port', `${LOOPBACK}:${ctx.ports.s3}`,
        '--access', LOCAL_CREDENTIALS.accessKeyId,
        '--secret', LOCAL_CREDENTIALS.secretAccessKey,
        '--region', ctx.config.aws.region ?? LOCAL_REGION,
        '--quiet',
        // Metadata in a side folder: works on filesystems without user xattrs.
        'posix', '--sidecar', metaDir, dataDir,
      ],
      healthy: () => s3.healthy(ctx),
      startTimeoutMs: 30_000,
    };
  },
  async healthy(ctx) {
    return answers(s3Client(ctx.config.aws), (c) => c.send(new ListBucketsCommand({})));
  },
  async afterStart(ctx) {
    const client = s3Client(ctx.config.aws);
    const Bucket = ctx.config.stagingBucket;
    try {
      await client.send(new HeadBucketCommand({ Bucket }));
    } catch {
      await client.send(new CreateBucketCommand({ Bucket }));
    }
  },
  describe: (ctx) => `http://${LOOPBACK}:${ctx.ports.s3} (versitygw), staging bucket ${ctx.config.stagingBucket}`,
};

export const PARTS: Record<PartName, Part> = { temporal, mysql: mysqlPart, dynamodb, kinesis, s3 };
