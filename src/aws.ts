/**
 * The AWS clients ferry uses, built from configuration. Against the local stack
 * they get its endpoints and static credentials; against AWS they use the
 * region and the SDK's default credential chain.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { LOCAL_CREDENTIALS, type AwsConfig } from './config.js';

function common(aws: AwsConfig, endpoint: string | undefined) {
  return {
    region: aws.region,
    ...(endpoint ? { endpoint } : {}),
    ...(aws.local ? { credentials: LOCAL_CREDENTIALS } : {}),
  };
}

export function s3Client(aws: AwsConfig): S3Client {
  return new S3Client({
    ...common(aws, aws.endpoints.s3),
    // S3-compatible servers route by path, not by bucket subdomain.
    forcePathStyle: aws.endpoints.s3 !== undefined,
    // Many S3-compatible servers reject the SDK's default CRC trailers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export function dynamoClient(aws: AwsConfig): DynamoDBClient {
  return new DynamoDBClient(common(aws, aws.endpoints.dynamodb));
}

/**
 * Kinesis over HTTP/1.1: the SDK defaults to HTTP/2 for this client (for
 * SubscribeToShard, which ferry does not use), and kinesis-mock's HTTP/2 resets
 * large GetRecords answers ("Protocol error"). Real Kinesis speaks both.
 */
export function kinesisClient(aws: AwsConfig): KinesisClient {
  return new KinesisClient({ ...common(aws, aws.endpoints.kinesis), requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000 }) });
}
