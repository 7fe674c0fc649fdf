/**
 * MySQL → staging (DuckDB/Parquet) → DynamoDB type mapping: one table, one
 * implementation, used by the bulk path and by change events alike.
 * docs/type-mapping.md is the same table in prose; keep them together.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { DYNAMODB_MAX_DIGITS, dynamoNumberProblem } from './dynamoNumber.js';
import { jsonToAttributeValue, JsonSyntaxError } from './exactJson.js';

export { DYNAMODB_MAX_DIGITS, significantDigits } from './dynamoNumber.js';

export type ColumnFamily =
  | 'integer'
  | 'decimal'
  | 'float'
  | 'date'
  | 'datetime'
  | 'timestamp'
  | 'time'
  | 'year'
  | 'text'
  | 'binary'
  | 'json'
  | 'enum'
  | 'set'
  | 'bit';

/** A source column as ferry understands it, read from information_schema.COLUMNS. */
export interface SourceColumn {
  name: string;
  family: ColumnFamily;
  /** MySQL's COLUMN_TYPE, e.g. `bigint(20) unsigned`, `decimal(38,10)`. */
  mysqlType: string;
  nullable: boolean;
  unsigned: boolean;
  /** DECIMAL precision and scale; BIT width; integer storage bytes. */
  precision?: number;
  scale?: number;
}

/** The information_schema.COLUMNS fields ferry reads. */
export interface ColumnInfo {
  COLUMN_NAME: string;
  DATA_TYPE: string;
  COLUMN_TYPE: string;
  IS_NULLABLE: string;
  NUMERIC_PRECISION: number | string | null;
  NUMERIC_SCALE: number | string | null;
  /** MariaDB: the column has a `CHECK (json_valid(col))` constraint, which is how MariaDB declares JSON. */
  JSON_CHECKED?: boolean;
}

export class UnsupportedColumnError extends Error {}

const FAMILIES: Record<string, ColumnFamily> = {
  tinyint: 'integer', smallint: 'integer', mediumint: 'integer', int: 'integer', integer: 'integer', bigint: 'integer',
  decimal: 'decimal', numeric: 'decimal',
  float: 'float', double: 'float', real: 'float',
  date: 'date', datetime: 'datetime', timestamp: 'timestamp', time: 'time', year: 'year',
  char: 'text', varchar: 'text', tinytext: 'text', text: 'text', mediumtext: 'text', longtext: 'text',
  binary: 'binary', varbinary: 'binary', tinyblob: 'binary', blob: 'binary', mediumblob: 'binary', longblob: 'binary',
  json: 'json', enum: 'enum', set: 'set', bit: 'bit',
};

export function classifyColumn(table: string, info: ColumnInfo): SourceColumn {
  const dataType = info.DATA_TYPE.toLowerCase();
  let family = FAMILIES[dataType];
  // MariaDB stores JSON as LONGTEXT with a json_valid() check (information_schema.CHECK_CONSTRAINTS).
  if (family === 'text' && info.JSON_CHECKED) family = 'json';
  if (!family) {
    throw new UnsupportedColumnError(
      `column ${table}.${info.COLUMN_NAME} has type ${info.COLUMN_TYPE}, which ferry cannot map to DynamoDB; ` +
        `exclude it with "exclude-columns", or convert it in the source with a view`,
    );
  }
  const number = (v: number | string | null) => (v === null ? undefined : Number(v));
  return {
    name: info.COLUMN_NAME,
    family,
    mysqlType: info.COLUMN_TYPE.toLowerCase(),
    nullable: info.IS_NULLABLE === 'YES',
    unsigned: /unsigned/i.test(info.COLUMN_TYPE),
    precision: family === 'bit' ? Number(/\((\d+)\)/.exec(info.COLUMN_TYPE)?.[1] ?? 1) : number(info.NUMERIC_PRECISION),
    scale: number(info.NUMERIC_SCALE),
  };
}

/** DynamoDB numbers carry at most 38 significant digits. */

/**
 * The DuckDB type a column is staged as in Parquet/CSV. Exact by construction:
 * integers keep their width and sign, DECIMAL up to 38 digits stays DECIMAL
 * (wider ones travel as text), and temporal values keep MySQL's own text so
 * zero dates, TIME past 24 h and microseconds survive untouched.
 */
export function stagingType(column: SourceColumn): string {
  switch (column.family) {
    case 'integer': {
      const base = /^(tinyint|smallint|mediumint|int|integer|bigint)/.exec(column.mysqlType)?.[1] ?? 'bigint';
      const signed = { tinyint: 'TINYINT', smallint: 'SMALLINT', mediumint: 'INTEGER', int: 'INTEGER', integer: 'INTEGER', bigint: 'BIGINT' }[base]!;
      return column.unsigned ? `U${signed}` : signed;
    }
    case 'decimal':
      return (column.precision ?? 10) <= DYNAMODB_MAX_DIGITS ? `DECIMAL(${column.precision ?? 10},${column.scale ?? 0})` : 'VARCHAR';
    case 'float':
      return /^float/.test(column.mysqlType) ? 'FLOAT' : 'DOUBLE';
    case 'year':
      return 'SMALLINT';
    case 'binary':
      return 'BLOB';
    case 'bit':
      return 'UBIGINT';
    default:
      return 'VARCHAR';
  }
}

/** A value as staged: what the exporter appends and the transformer reads back. */
export type StagedValue = null | boolean | number | bigint | string | Uint8Array;

export interface ConversionOptions {
  /** `iso` (default): ISO-8601 strings; `epoch`: numbers of seconds since 1970-01-01 UTC. */
  temporal: 'iso' | 'epoch';
  /** `omit` (default): a NULL column becomes no attribute; `null`: the NULL attribute type. */
  nulls: 'omit' | 'null';
}

export const DEFAULT_CONVERSION: ConversionOptions = { temporal: 'iso', nulls: 'omit' };

/** A value DynamoDB cannot hold as mapped; the message names the column and the fix. */
export class ConversionError extends Error {
  /** The message without the row's value: what failure messages (Temporal's history) carry by default. */
  readonly redacted: string;

  /** `value`: the row's value the reason quotes, hidden in `redacted` (as is all of `hiddenReason`'s place when given). */
  constructor(
    readonly column: string,
    reason: string,
    value?: string,
    hiddenReason?: string,
  ) {
    super(`column ${column}: ${reason}`);
    this.name = 'ConversionError';
    const hidden = hiddenReason ?? (value ? reason.split(value).join('‹value›') : reason);
    this.redacted = `column ${column}: ${hidden}`;
  }
}

/**
 * What a failure message says of a bad value: the reason without the row's value, unless the workers run
 * with FERRY_FAILURE_VALUES=1. Failure messages land in Temporal's history; dead letters (in staging) keep it all.
 */
export function failureReason(err: Error): string {
  return err instanceof ConversionError && process.env.FERRY_FAILURE_VALUES !== '1' ? err.redacted : err.message;
}

/** Normalises what the mysql2 driver returns (bigNumberStrings, dateStrings, jsonStrings) into a staged value. */
export function fromMysql(column: SourceColumn, value: unknown): StagedValue {
  if (value === null || value === undefined) return null;
  switch (column.family) {
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value) ? value : BigInt(value as string | number);
    case 'bit':
      return bitsToBigInt(value as Uint8Array);
    case 'year':
    case 'float':
      return Number(value);
    case 'binary':
      return value as Uint8Array;
    default:
      return typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
  }
}

function bitsToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const byte of bytes) n = (n << 8n) | BigInt(byte);
  return n;
}

const isSinglePrecision = (column: SourceColumn) => /^float/.test(column.mysqlType);

/**
 * The shortest decimal that reads back as the same 32-bit float: FLOAT 0.1 is
 * stored as 0.100000001490116…, which this writes as 0.1, and 1.2345678 stays
 * 1.2345678 (MySQL's own text for FLOAT keeps only 6 digits: 1.23457).
 */
export function float32Text(n: number): string {
  const single = Math.fround(n);
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(single.toPrecision(digits));
    if (Math.fround(candidate) === single) return String(candidate);
  }
  return String(single);
}

/**
 * The expression export selects for a column: FLOAT as a DOUBLE, because the
 * text protocol rounds FLOAT to 6 significant digits; everything else as is.
 */
export function selectExpression(column: SourceColumn, quote: (name: string) => string): string {
  return column.family === 'float' && isSinglePrecision(column) ? `(${quote(column.name)} + 0E0)` : quote(column.name);
}

/** A number DynamoDB cannot hold, said without the value (dynamoNumberProblem quotes it normalised). */
export const NUMBER_HIDDEN = 'the value is not a number DynamoDB can hold (more than 38 significant digits, or out of its range). Map the column to a string ("attribute-sub-type": "string") or change the value in the source';

function numberValue(column: SourceColumn, text: string): AttributeValue {
  const problem = dynamoNumberProblem(text);
  if (problem) {
    throw new ConversionError(column.name, `${problem}. Map the column to a string ("attribute-sub-type": "string") or change the value in the source`, text, NUMBER_HIDDEN);
  }
  return { N: text };
}

/** MySQL's DATETIME/TIMESTAMP text → ISO-8601; TIMESTAMP is read in UTC, so it gets a Z. */
function isoDateTime(text: string, utc: boolean): string {
  return text.replace(' ', 'T') + (utc ? 'Z' : '');
}

/** A DATE, DATETIME or TIMESTAMP as MySQL writes it, in its parts. */
interface CalendarValue {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** The fraction's digits as written ('' for none). */
  fraction: string;
}

const daysInMonth = (year: number, month: number) =>
  month === 2 ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;

/**
 * The parts of a temporal value, or a ConversionError when it names no day of
 * the calendar. MySQL stores zero dates (`0000-00-00`), a zero month or day
 * (`2024-00-15`, `2024-01-00`) and, under ALLOW_INVALID_DATES, days past a
 * month's end (`2024-02-30`); none has a faithful DynamoDB form (as epoch
 * seconds they would silently become another day), so each is a bad record in
 * either `temporal` mode.
 */
function calendarValue(column: SourceColumn, text: string): CalendarValue {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$/.exec(text);
  const fix = 'fix the row in the source, or set such rows aside with spec.errors.policy "dead-letter"';
  if (!m) throw new ConversionError(column.name, `value ${text} is not a date ferry can read (expected YYYY-MM-DD[ hh:mm:ss[.ffffff]]); ${fix}`, text);
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month === 0 || day === 0) {
    const zero = month === 0 && day === 0 ? (year === 0 ? 'a zero date' : 'a zero month and day') : month === 0 ? 'a zero month' : 'a zero day';
    throw new ConversionError(column.name, `value ${text} is ${zero}, which names no day of the calendar and has no DynamoDB form; ${fix}`, text);
  }
  if (month > 12 || day > daysInMonth(year, month)) {
    throw new ConversionError(column.name, `value ${text} names no day of the calendar (${m[1]}-${m[2]} has no day ${m[3]}); ${fix}`, text, `the value names no day of the calendar; ${fix}`);
  }
  return { year, month, day, hour: Number(m[4] ?? 0), minute: Number(m[5] ?? 0), second: Number(m[6] ?? 0), fraction: m[7] ?? '' };
}

/** Seconds since 1970-01-01 UTC on the proleptic Gregorian calendar, years 0000–9999 alike (Date.UTC reads 0–99 as 1900–1999). */
function epochSeconds(value: CalendarValue): AttributeValue {
  const date = new Date(0);
  date.setUTCFullYear(value.year, value.month - 1, value.day);
  date.setUTCHours(value.hour, value.minute, value.second, 0);
  // In microseconds, so that a fraction before 1970 counts forward from its second: 1969-12-31 23:59:59.25 is -0.75.
  const micros = BigInt(date.getTime()) * 1000n + BigInt(value.fraction.padEnd(6, '0'));
  const magnitude = micros < 0n ? -micros : micros;
  const fraction = String(magnitude % 1_000_000n).padStart(6, '0').replace(/0+$/, '');
  return { N: `${micros < 0n ? '-' : ''}${magnitude / 1_000_000n}${fraction ? `.${fraction}` : ''}` };
}

/**
 * One staged value → one DynamoDB attribute value, or undefined for "no
 * attribute" (NULL under the omit policy, an empty SET).
 */
export function toAttributeValue(column: SourceColumn, value: StagedValue, options: ConversionOptions = DEFAULT_CONVERSION): AttributeValue | undefined {
  if (value === null) return options.nulls === 'null' ? { NULL: true } : undefined;
  switch (column.family) {
    case 'integer':
    case 'year':
      return { N: String(value) };
    case 'decimal':
      return numberValue(column, String(value));
    case 'float': {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new ConversionError(column.name, `value ${value} is not a finite number; DynamoDB numbers must be finite`, String(value));
      return numberValue(column, isSinglePrecision(column) ? float32Text(n) : String(n));
    }
    case 'bit':
      return column.precision === 1 ? { BOOL: BigInt(value as bigint | number) === 1n } : { N: String(value) };
    case 'date':
    case 'datetime':
    case 'timestamp': {
      const text = String(value);
      const parts = calendarValue(column, text);
      if (options.temporal === 'epoch') return epochSeconds(parts);
      return { S: column.family === 'date' ? text : isoDateTime(text, column.family === 'timestamp') };
    }
    case 'time':
      return { S: String(value) };
    case 'binary':
      return { B: value instanceof Uint8Array ? value : new TextEncoder().encode(String(value)) };
    case 'json':
      try {
        return jsonToAttributeValue(String(value));
      } catch (err) {
        if (err instanceof JsonSyntaxError) throw new ConversionError(column.name, err.message, String(value), 'the value is not valid JSON');
        throw err;
      }
    case 'set': {
      const members = String(value) === '' ? [] : String(value).split(',');
      if (members.length === 0) return options.nulls === 'null' ? { NULL: true } : undefined;
      return { SS: members };
    }
    case 'text':
    case 'enum':
      return { S: String(value) };
  }
}

/**
 * The text of a staged value as `${column}` templates see it: integers and
 * decimals in full, dates as MySQL writes them, bytes as base64.
 */
export function templateText(value: StagedValue): string {
  if (value === null) return '';
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return String(value);
}
