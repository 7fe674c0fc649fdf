/**
 * JSON → DynamoDB AttributeValue without going through JavaScript numbers, so
 * a JSON column holding 12345678901234567890 or 0.1000000000000000055511151231257827
 * arrives in DynamoDB digit for digit. JSON.parse would round both.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { dynamoNumberProblem } from './dynamoNumber.js';

/** The JSON text is invalid, or holds a number DynamoDB cannot. */
export class JsonSyntaxError extends Error {}

export function jsonToAttributeValue(text: string): AttributeValue {
  const parser = new Parser(text);
  parser.skipSpace();
  const value = parser.value();
  parser.skipSpace();
  if (parser.pos !== text.length) parser.fail('unexpected text after the JSON value');
  return value;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class Parser {
  pos = 0;
  constructor(private readonly text: string) {}

  fail(why: string): never {
    throw new JsonSyntaxError(`invalid JSON at offset ${this.pos}: ${why}`);
  }

  skipSpace(): void {
    while (this.pos < this.text.length && ' \t\n\r'.includes(this.text[this.pos]!)) this.pos++;
  }

  value(): AttributeValue {
    const c = this.text[this.pos];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return { S: this.string() };
    if (this.text.startsWith('true', this.pos)) return (this.pos += 4), { BOOL: true };
    if (this.text.startsWith('false', this.pos)) return (this.pos += 5), { BOOL: false };
    if (this.text.startsWith('null', this.pos)) return (this.pos += 4), { NULL: true };
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (!match) this.fail(c === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(c)}`);
    const problem = dynamoNumberProblem(match[0]);
    if (problem) throw new JsonSyntaxError(`JSON number at offset ${this.pos}: ${problem}`);
    this.pos += match[0].length;
    return { N: match[0] };
  }

  object(): AttributeValue {
    const M: Record<string, AttributeValue> = {};
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === '}') return this.pos++, { M };
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== '"') this.fail('expected a string key');
      const key = this.string();
      this.skipSpace();
      if (this.text[this.pos++] !== ':') this.fail('expected ":"');
      this.skipSpace();
      M[key] = this.value();
      this.skipSpace();
      const next = this.text[this.pos++];
      if (next === '}') return { M };
      if (next !== ',') this.fail('expected "," or "}"');
    }
  }

  array(): AttributeValue {
    const L: AttributeValue[] = [];
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === ']') return this.pos++, { L };
    for (;;) {
      this.skipSpace();
      L.push(this.value());
      this.skipSpace();
      const next = this.text[this.pos++];
      if (next === ']') return { L };
      if (next !== ',') this.fail('expected "," or "]"');
    }
  }

  string(): string {
    const start = this.pos;
    this.pos++;
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail('unterminated string');
      if (c === '\\') this.pos += 2;
      else if (c === '"') break;
      else this.pos++;
    }
    this.pos++;
    return JSON.parse(this.text.slice(start, this.pos)) as string;
  }
}
