/**
 * Everything ferry reads from the environment, in one place, with defaults that
 * point at the local stack (`ferry stack up`). Pointing ferry at real AWS and a
 * real Temporal cluster is a matter of environment variables only; docs/configuration.md
 * lists every variable.
 */
import os from 'node:os';
import path from 'node:path';

type Env = Record<string, string | undefined>;

function text(env: Env, name: string, fallback: string): string {
  const value = env[name];
  return value === undefined || value === '' ? fallback : value;
}

function port(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new Error(`${name}=${raw} is not a TCP port: set it to an integer between 1 and 65535, or unset it`);
  }
  return value;
}

/** Where the local stack listens. Every part binds to 127.0.0.1 only. */
export interface StackPorts {
  temporal: number;
  temporalUi: number;
  mysql: number;
  dynamodb: number;
  kinesis: number;
  kinesisTls: number;
  s3: number;
}

export function stackPorts(env: Env = process.env): StackPorts {
  const temporal = port(env, 'FERRY_TEMPORAL_PORT', 7233);
  return {
    temporal,
    temporalUi: port(env, 'FERRY_TEMPORAL_UI_PORT', 8233),
    mysql: port(env, 'FERRY_MYSQL_PORT', 3307),
    dynamodb: port(env, 'FERRY_DYNAMODB_PORT', 8000),
    kinesis: port(env, 'FERRY_KINESIS_PORT', 4568),
    kinesisTls: port(env, 'FERRY_KINESIS_TLS_PORT', 4567),
    s3: port(env, 'FERRY_S3_PORT', 7070),
  };
}

export const LOOPBACK = '127.0.0.1';

/** The region the local stack's servers are started with, unless AWS_REGION says otherwise. */
export const LOCAL_REGION = 'us-east-1';

/** The credentials the local S3 server is started with; the other local parts accept any. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'ferrylocal', secretAccessKey: 'ferrylocalsecret' } as const;

export interface TemporalConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Set for Temporal Cloud API-key auth; implies TLS. */
  apiKey?: string;
  tls: boolean;
  tlsCertPath?: string;
  tlsKeyPath?: string;
  /** Where an operator watches runs: the local Web UI, or TEMPORAL_UI_URL. */
  uiUrl: string;
}

export interface AwsConfig {
  /**
   * AWS_REGION or AWS_DEFAULT_REGION; unset against real AWS, where the SDK's
   * default region chain finds it (the profile's region in the shared config
   * file): check it with resolveRegion (src/aws.ts). The local stack's default
   * is us-east-1.
   */
  region: string | undefined;
  /** True when ferry talks to the local stack, false for real AWS (default credential chain). */
  local: boolean;
  endpoints: { s3?: string; dynamodb?: string; kinesis?: string };
}

export interface FerryConfig {
  temporal: TemporalConfig;
  aws: AwsConfig;
  /** MySQL connection used by the smoke check and as the default source. */
  mysqlUrl: string;
  /** Bucket for staging files (created on the local stack if missing). */
  stagingBucket: string;
  /** Folder for the local stack's state and logs. */
  stackDir: string;
  /** Per-user cache for built or fetched binaries, shared by every clone. */
  cacheDir: string;
}

export function loadConfig(env: Env = process.env): FerryConfig {
  const ports = stackPorts(env);
  const local = text(env, 'FERRY_AWS', 'local') !== 'aws';
  const localEndpoint = (p: number) => (local ? `http://${LOOPBACK}:${p}` : undefined);
  const apiKey = env.TEMPORAL_API_KEY || undefined;
  return {
    temporal: {
      address: text(env, 'TEMPORAL_ADDRESS', `${LOOPBACK}:${ports.temporal}`),
      namespace: text(env, 'TEMPORAL_NAMESPACE', 'default'),
      taskQueue: text(env, 'FERRY_TASK_QUEUE', 'ferry'),
      apiKey,
      tls: apiKey !== undefined || text(env, 'TEMPORAL_TLS', 'false') === 'true' || !!env.TEMPORAL_TLS_CERT_PATH,
      tlsCertPath: env.TEMPORAL_TLS_CERT_PATH || undefined,
      tlsKeyPath: env.TEMPORAL_TLS_KEY_PATH || undefined,
      uiUrl: text(env, 'TEMPORAL_UI_URL', `http://${LOOPBACK}:${ports.temporalUi}`),
    },
    aws: {
      region: env.AWS_REGION || env.AWS_DEFAULT_REGION || (local ? LOCAL_REGION : undefined),
      local,
      endpoints: {
        s3: env.AWS_ENDPOINT_URL_S3 || localEndpoint(ports.s3),
        dynamodb: env.AWS_ENDPOINT_URL_DYNAMODB || localEndpoint(ports.dynamodb),
        kinesis: env.AWS_ENDPOINT_URL_KINESIS || localEndpoint(ports.kinesis),
      },
    },
    mysqlUrl: text(env, 'FERRY_MYSQL_URL', `mysql://ferry:ferry@${LOOPBACK}:${ports.mysql}/ferry`),
    stagingBucket: text(env, 'FERRY_STAGING_BUCKET', 'ferry-staging'),
    stackDir: path.resolve(text(env, 'FERRY_STACK_DIR', path.join(projectRoot(), '.stack'))),
    cacheDir: path.resolve(text(env, 'FERRY_CACHE_DIR', path.join(os.homedir(), '.cache', 'ferry'))),
  };
}

/** The repository root, found from this file's location (src/config.ts). */
export function projectRoot(): string {
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
}
