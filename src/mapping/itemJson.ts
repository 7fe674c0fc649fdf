/**
 * Items as lines of text: DynamoDB JSON with sorted attribute names and bytes
 * in base64. One canonical form, so the staged items file, the checksum and
 * the verifier all agree on what an item is.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { createHash } from 'node:crypto';
import type { Item } from './item.js';

function canonicalValue(value: AttributeValue): unknown {
  if (value.B !== undefined) return { B: Buffer.from(value.B).toString('base64') };
  if (value.BS !== undefined) return { BS: value.BS.map((b) => Buffer.from(b).toString('base64')).sort() };
  if (value.SS !== undefined) return { SS: [...value.SS].sort() };
  if (value.NS !== undefined) return { NS: [...value.NS].sort() };
  if (value.L !== undefined) return { L: value.L.map(canonicalValue) };
  if (value.M !== undefined) return { M: canonicalMap(value.M) };
  return value;
}

function canonicalMap(map: Record<string, AttributeValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(map).sort()) out[name] = canonicalValue(map[name]!);
  return out;
}

export function itemToLine(item: Item): string {
  return JSON.stringify(canonicalMap(item));
}

/** A number by its value, not its spelling: DynamoDB returns 9.5e+125 as 95 followed by 124 zeros, 1.50 as 1.5. */
export function numberByValue(text: string): string {
  const m = /^([-+]?)(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/.exec(text.trim());
  if (!m) return text;
  const digits = `${m[2] ?? ''}${m[3] ?? ''}`;
  const lead = /^0*/.exec(digits)![0].length;
  if (lead === digits.length) return '0';
  const exponent = (m[2] ?? '').length - lead - 1 + Number(m[4] ?? 0);
  return `${m[1] === '-' ? '-' : ''}${digits.slice(lead).replace(/0+$/, '')}e${exponent}`;
}

function byValue(value: AttributeValue): AttributeValue {
  if (value.N !== undefined) return { N: numberByValue(value.N) };
  if (value.NS !== undefined) return { NS: value.NS.map(numberByValue) };
  if (value.L !== undefined) return { L: value.L.map(byValue) };
  if (value.M !== undefined) return { M: Object.fromEntries(Object.entries(value.M).map(([k, v]) => [k, byValue(v)])) };
  return value;
}

/** The canonical line with numbers compared by value: what the verifier compares and checksums on both sides. */
export function comparableLine(item: Item): string {
  return itemToLine(Object.fromEntries(Object.entries(item).map(([k, v]) => [k, byValue(v)])));
}

function revive(value: Record<string, unknown>): AttributeValue {
  if (typeof value.B === 'string') return { B: Buffer.from(value.B, 'base64') };
  if (Array.isArray(value.BS)) return { BS: (value.BS as string[]).map((b) => Buffer.from(b, 'base64')) };
  if (Array.isArray(value.L)) return { L: (value.L as Record<string, unknown>[]).map(revive) };
  if (value.M && typeof value.M === 'object') return { M: reviveMap(value.M as Record<string, Record<string, unknown>>) };
  return value as unknown as AttributeValue;
}

function reviveMap(map: Record<string, Record<string, unknown>>): Item {
  const out: Item = {};
  for (const [name, value] of Object.entries(map)) out[name] = revive(value);
  return out;
}

export function lineToItem(line: string): Item {
  return reviveMap(JSON.parse(line) as Record<string, Record<string, unknown>>);
}

/**
 * Order-independent checksum of a set of items: the sum, mod 2^64, of the first
 * 8 bytes of each canonical line's SHA-256. Equal sets give equal sums.
 */
export class ItemChecksum {
  private sum = 0n;
  count = 0;

  addLine(line: string): void {
    this.sum = (this.sum + createHash('sha256').update(line).digest().readBigUInt64BE(0)) & 0xffffffffffffffffn;
    this.count++;
  }

  add(item: Item): void {
    this.addLine(itemToLine(item));
  }

  hex(): string {
    return this.sum.toString(16).padStart(16, '0');
  }
}
