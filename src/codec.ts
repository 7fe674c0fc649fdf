/**
 * Encryption of everything ferry's workflows put in Temporal's history:
 * specs, key ranges, reports, failure messages. With FERRY_PAYLOAD_KEY set (the
 * same on every worker and client), payloads are AES-256-GCM encrypted before
 * they leave the process, so the Temporal server, its database, the Web UI and
 * `temporal workflow show` see ciphertext only (docs/configuration.md).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM over each payload; the key's id (a hash prefix) travels in the metadata so a wrong key is named. */
export class AesGcmCodec implements PayloadCodec {
  private readonly keyId: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error(`FERRY_PAYLOAD_KEY must be 32 bytes, base64-encoded (44 characters; \`openssl rand -base64 32\` makes one); got ${key.length} bytes`);
    this.keyId = createHash('sha256').update(key).digest('hex').slice(0, 12);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', this.key, iv);
      const plain = Buffer.from(JSON.stringify({ metadata: b64Map(payload.metadata), data: Buffer.from(payload.data ?? []).toString('base64') }));
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), 'encryption-key-id': Buffer.from(this.keyId) }, data: sealed };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (Buffer.from(payload.metadata?.encoding ?? []).toString() !== ENCRYPTED_ENCODING) return payload;
      const keyId = Buffer.from(payload.metadata?.['encryption-key-id'] ?? []).toString();
      if (keyId !== this.keyId) throw new Error(`a payload encrypted with key ${keyId} cannot be read with FERRY_PAYLOAD_KEY ${this.keyId}: give this process the key its workers use`);
      const sealed = Buffer.from(payload.data ?? []);
      const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(0, IV_BYTES));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const plain = JSON.parse(Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]).toString()) as { metadata: Record<string, string>; data: string };
      return { metadata: Object.fromEntries(Object.entries(plain.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])), data: Buffer.from(plain.data, 'base64') };
    });
  }
}

function b64Map(metadata: Payload['metadata']): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')]));
}

/**
 * The data converter for FERRY_PAYLOAD_KEY, or undefined without it. Failure messages and stack traces are
 * moved into the encrypted attributes too (they may name keys and values).
 */
export function dataConverterFromEnv(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  const value = env.FERRY_PAYLOAD_KEY;
  if (!value) return undefined;
  const key = Buffer.from(value, 'base64');
  return {
    payloadCodecs: [new AesGcmCodec(key)],
    failureConverterPath: path.join(path.dirname(fileURLToPath(import.meta.url)), 'failureConverter.ts'),
  };
}
