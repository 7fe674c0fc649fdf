/**
 * The AWS clients ferry uses, built from configuration. Against the local stack
 * they get its endpoints and static credentials; against AWS they use the
 * region and the SDK's default credential chain.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Staging } from './bulk/model.js';
import { LOCAL_CREDENTIALS, type AwsConfig } from './config.js';

/**
 * How long a call to S3, DynamoDB or Kinesis may go without a byte moving on
 * its connection before the SDK gives up on the connection and retries on a
 * fresh one (a TimeoutError is transient to its retry strategy). Capture,
 * apply and export heartbeat on a clock, so without it a connection that
 * stopped answering (dropped by a middlebox, a stalled server) would stall
 * them for good while Temporal sees them alive. No connection may sit idle
 * for that long by design: the load, which reads its staged items at the
 * write budget's pace, fetches them in ranges read whole (src/s3.ts
 * objectStream).
 */
export const SOCKET_TIMEOUT_MS = 20_000;

function common(aws: AwsConfig, endpoint: string | undefined) {
  return {
    // Unset: the SDK's default region chain (AWS_REGION, then the profile's region in the shared config file).
    ...(aws.region ? { region: aws.region } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(aws.local ? { credentials: LOCAL_CREDENTIALS } : {}),
  };
}

/** `socketTimeoutMs` other than the default is for tests that make a connection's silence short. */
export function s3Client(aws: AwsConfig, socketTimeoutMs = SOCKET_TIMEOUT_MS): S3Client {
  return new S3Client({
    ...common(aws, aws.endpoints.s3),
    // S3-compatible servers route by path, not by bucket subdomain.
    forcePathStyle: aws.endpoints.s3 !== undefined,
    // Many S3-compatible servers reject the SDK's default CRC trailers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({ socketTimeout: socketTimeoutMs }),
  });
}

/** The S3 calls that create an object: each carries the staging's server-side encryption. */
const CREATES_OBJECT = new Set(['PutObjectCommand', 'CreateMultipartUploadCommand', 'CopyObjectCommand']);

/**
 * The S3 client for a migration's staging: every object it creates (single
 * PUT, multipart upload, copy) asks S3 to encrypt it at rest as
 * `spec.staging.sse` says. One place, so no writer can forget it.
 */
export function stagingS3(aws: AwsConfig, stage: Pick<Staging, 'sse'>): S3Client {
  const client = s3Client(aws);
  const sse = stage.sse;
  if (!sse) return client;
  client.middlewareStack.add(
    (next, context) => (args) => {
      if (CREATES_OBJECT.has(context.commandName ?? '')) {
        const input = args.input as { ServerSideEncryption?: string; SSEKMSKeyId?: string };
        input.ServerSideEncryption = sse.algorithm;
        if (sse.kmsKeyId) input.SSEKMSKeyId = sse.kmsKeyId;
      }
      return next(args);
    },
    { step: 'initialize', name: 'ferryStagingSse' },
  );
  return client;
}

export function dynamoClient(aws: AwsConfig): DynamoDBClient {
  return new DynamoDBClient({ ...common(aws, aws.endpoints.dynamodb), requestHandler: new NodeHttpHandler({ socketTimeout: SOCKET_TIMEOUT_MS }) });
}

/**
 * Kinesis over HTTP/1.1: the SDK defaults to HTTP/2 for this client (for
 * SubscribeToShard, which ferry does not use), and kinesis-mock's HTTP/2 resets
 * large GetRecords answers ("Protocol error"). Real Kinesis speaks both.
 */
export function kinesisClient(aws: AwsConfig): KinesisClient {
  return new KinesisClient({ ...common(aws, aws.endpoints.kinesis), requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000, socketTimeout: SOCKET_TIMEOUT_MS }) });
}

/**
 * The region the AWS clients will use: the configured one, or what the SDK's
 * default chain finds. Fails with the ways to set one when there is none, so a
 * worker pointed at real AWS stops at start instead of in its first activity.
 */
export async function resolveRegion(aws: AwsConfig): Promise<string> {
  if (aws.region) return aws.region;
  const probe = new S3Client({});
  try {
    return await probe.config.region();
  } catch (err) {
    const profile = process.env.AWS_PROFILE ? `profile ${process.env.AWS_PROFILE}` : 'the default profile';
    throw new Error(
      `no AWS region found (${(err as Error).message}): set AWS_REGION, or give ${profile} a region (region = ... in ` +
        `${process.env.AWS_CONFIG_FILE ?? '~/.aws/config'}; AWS_PROFILE picks the profile, AWS_CONFIG_FILE the file)`,
    );
  } finally {
    probe.destroy();
  }
}
