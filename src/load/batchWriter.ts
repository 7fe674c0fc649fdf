/**
 * BatchWriteItem of staged item lines, without the SDK's per-call machinery.
 *
 * The items file already holds each item as DynamoDB JSON, the wire form, so
 * the request body is the lines joined: nothing is parsed or re-serialized.
 * The request is signed with the SDK's own SigV4 signer and the client's own
 * credentials and endpoint, and sent over a keep-alive agent. Measured on two
 * cores shared with DynamoDB Local, the SDK spent 38-65 µs of CPU per item on
 * its middleware, signing and HTTP, this path 12.5-29; the CPU it gives back
 * goes to DynamoDB Local, which wrote 10.0-12.6 k items/s through it against
 * 8.9-10.6 k through the SDK, taken in turn (docs/benchmarks.md).
 *
 * Errors keep the SDK's names (`ProvisionedThroughputExceededException`,
 * `ValidationException`, ...) so the caller's policy is unchanged. Network
 * errors and 5xx answers are retried here, as the SDK retries them: a
 * BatchWriteItem of puts writes the same items again, so retrying is safe.
 * Like the SDK, the writer corrects for a worker clock that is off: it signs
 * with the client's clock offset, keeps the offset to each answer's `Date`,
 * and sends again a call refused as signed at the wrong time once the offset
 * has moved.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

/** Attempts for a call the network or the service failed (5xx); the SDK's standard mode makes 3. */
const ATTEMPTS = 3;
/** What AWS answers a request signed too far from its own clock (the SDK's list). */
const CLOCK_SKEW_ERRORS = new Set(['AuthFailure', 'InvalidSignatureException', 'RequestExpired', 'RequestInTheFuture', 'RequestTimeTooSkewed', 'SignatureDoesNotMatch']);
/** An offset this large is a wrong clock, not latency; AWS refuses signatures 5 minutes off. */
const SKEW_MS = 240_000;
/** A call that has not answered in this long is abandoned and retried. */
const TIMEOUT_MS = 60_000;

export interface BatchWriteResult {
  /** The lines DynamoDB did not write this time (UnprocessedItems), to send again. */
  unprocessed: string[];
}

/** An error DynamoDB answered with, named as the SDK names it: `name` is the error's type, `status` the HTTP status. */
export class DynamoCallError extends Error {
  constructor(
    override name: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class BatchWriter {
  private readonly signer: SignatureV4;
  private readonly agent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly endpoint: Promise<URL>;
  /** Milliseconds the service's clock is ahead of this worker's, from the last answer's `Date`. */
  private clockOffset: number;

  constructor(client: DynamoDBClient) {
    const config = client.config;
    this.clockOffset = config.systemClockOffset ?? 0;
    this.signer = new SignatureV4({ credentials: config.credentials, region: config.region, service: 'dynamodb', sha256: config.sha256 });
    this.endpoint = (async () => {
      const custom = config.endpoint ? await config.endpoint() : undefined;
      if (custom) return new URL(`${custom.protocol}//${custom.hostname}${custom.port ? `:${custom.port}` : ''}${custom.path}`);
      const region = await config.region();
      return new URL(config.endpointProvider({ Region: region, UseFIPS: await config.useFipsEndpoint(), UseDualStack: await config.useDualstackEndpoint() }).url.href);
    })();
    const options = { keepAlive: true, maxSockets: 256 };
    this.agent = new http.Agent(options);
    this.httpsAgent = new https.Agent(options);
  }

  /** Writes `lines` (at most 25 items, one DynamoDB JSON item each) into `table` as puts. */
  async write(table: string, lines: string[]): Promise<BatchWriteResult> {
    const body = `{"RequestItems":{${JSON.stringify(table)}:[${lines.map((line) => `{"PutRequest":{"Item":${line}}}`).join(',')}]}}`;
    for (let attempt = 1; ; attempt++) {
      const offset = this.clockOffset;
      try {
        const answer = await this.call(body);
        const unprocessed = (answer.UnprocessedItems?.[table] ?? []) as { PutRequest?: { Item?: unknown } }[];
        return { unprocessed: unprocessed.map((request) => JSON.stringify(request.PutRequest?.Item)) };
      } catch (err) {
        if (attempt >= ATTEMPTS) throw err;
        if (err instanceof DynamoCallError && CLOCK_SKEW_ERRORS.has(err.name)) {
          // Signed with a clock the answer has since corrected: sign again at once.
          if (Math.abs(this.clockOffset) >= SKEW_MS && this.clockOffset !== offset) continue;
          throw err;
        }
        if (err instanceof DynamoCallError && err.status < 500) throw err;
        await sleep(Math.random() * 100 * 2 ** attempt);
      }
    }
  }

  /** The offset to the service's clock that an answer's `Date` (and `Age`, from a cache) gives. */
  private sampleClock(date: string | undefined, age: string | undefined): void {
    if (date === undefined || age !== undefined) return;
    const serverTime = Date.parse(date);
    if (!Number.isNaN(serverTime)) this.clockOffset = serverTime - Date.now();
  }

  /** Where the calls go: the client's endpoint, or DynamoDB's for its region (FIPS, dual-stack) as the SDK resolves it. */
  url(): Promise<URL> {
    return this.endpoint;
  }

  /** Drops the kept-alive connections. */
  close(): void {
    this.agent.destroy();
    this.httpsAgent.destroy();
  }

  private async call(body: string): Promise<{ UnprocessedItems?: Record<string, unknown[]> }> {
    const url = await this.url();
    const signed = await this.signer.sign({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname || '/',
      query: {},
      headers: {
        host: url.host,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.BatchWriteItem',
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    }, { signingDate: new Date(Date.now() + this.clockOffset) });
    const transport = url.protocol === 'https:' ? https : http;
    const agent = url.protocol === 'https:' ? this.httpsAgent : this.agent;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = transport.request({ hostname: url.hostname, port: url.port || undefined, path: signed.path, method: 'POST', agent, headers: signed.headers, timeout: TIMEOUT_MS }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          this.sampleClock(response.headers.date, response.headers.age);
          resolve({ status: response.statusCode ?? 0, text });
        });
        response.on('error', reject);
      });
      request.on('timeout', () => request.destroy(new Error(`DynamoDB did not answer a BatchWriteItem within ${TIMEOUT_MS / 1000} s`)));
      request.on('error', reject);
      request.end(body);
    });
    if (status === 200) return JSON.parse(text) as { UnprocessedItems?: Record<string, unknown[]> };
    let type = `HTTP${status}`;
    let message = text;
    try {
      const parsed = JSON.parse(text) as { __type?: string; message?: string; Message?: string };
      if (parsed.__type) type = parsed.__type.slice(parsed.__type.lastIndexOf('#') + 1);
      message = parsed.message ?? parsed.Message ?? text;
    } catch {
      // Not JSON (a proxy's page): keep the text.
    }
    throw new DynamoCallError(type, message, status);
  }
}
