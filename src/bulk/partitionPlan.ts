/**
 * Key-range partitions of a table: the unit of bulk work. A partition is the
 * rows whose split key is greater than `after` and at most `upTo` (either
 * bound may be open). Bounds are JSON (they travel in workflow payloads):
 * integers as strings, bytes as {"$b64": …}.
 */

export type KeyPart = string | number | { $b64: string };
export type KeyTuple = KeyPart[];

export interface PartitionRange {
  table: string;
  /** 0-based position in the table's plan; names the partition's staging folder. */
  index: number;
  /** Columns the range is over: the primary key, or for a grouping mapping its leading item-key columns. */
  columns: string[];
  /** Exclusive lower bound; absent for the first partition. */
  after?: KeyTuple;
  /** Inclusive upper bound; absent for the last partition, which also takes rows inserted after planning. */
  upTo?: KeyTuple;
  /** Rows counted in the range when it was planned. */
  plannedRows: number;
}

export function partitionId(range: Pick<PartitionRange, 'table' | 'index'>): string {
  return `${range.table}/part-${String(range.index).padStart(5, '0')}`;
}

/** A key value as the MySQL driver returned it → JSON. */
export function toKeyPart(value: unknown): KeyPart {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return { $b64: Buffer.from(value).toString('base64') };
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' || typeof value === 'string') return value;
  throw new Error(`primary-key value ${String(value)} of type ${typeof value} cannot bound a partition`);
}

export function fromKeyPart(part: KeyPart): string | number | Buffer {
  return typeof part === 'object' ? Buffer.from(part.$b64, 'base64') : part;
}

/** Whether two split keys are the same key (a bound never falls between them). */
export function sameKey(a: KeyTuple | undefined, b: KeyTuple): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

/** A BoundaryPicker's progress (planning's checkpoint). */
export interface PickerState {
  seen: number;
  previous?: KeyTuple;
  bounds: { key: KeyTuple; rowsBefore: number }[];
}

/**
 * Picks partition bounds from split keys streamed in key order, so the
 * partitions hold about `rows / partitions` rows each. Equal consecutive keys
 * (rows of one group) never straddle a bound: a bound is a key, and every row
 * with that key falls at or below it.
 */
export class BoundaryPicker {
  private seen = 0;
  private previous: KeyTuple | undefined;
  private bounds: { key: KeyTuple; rowsBefore: number }[] = [];
  private readonly perPartition: number;

  constructor(
    private readonly totalRows: number,
    partitions: number,
  ) {
    this.perPartition = Math.max(1, Math.ceil(totalRows / Math.max(1, partitions)));
  }

  /** The last key fed, undefined before the first. */
  get lastKey(): KeyTuple | undefined {
    return this.previous;
  }

  /** Rows fed so far. */
  get rowsSeen(): number {
    return this.seen;
  }

  /** JSON of everything fed so far: a picker restored from it goes on as this one would. */
  snapshot(): PickerState {
    return { seen: this.seen, previous: this.previous, bounds: this.bounds };
  }

  static restore(totalRows: number, partitions: number, state: PickerState): BoundaryPicker {
    const picker = new BoundaryPicker(totalRows, partitions);
    picker.seen = state.seen;
    picker.previous = state.previous;
    picker.bounds = [...state.bounds];
    return picker;
  }

  /** Feed the next key in ascending order. */
  add(key: KeyTuple): void {
    // Close a partition once it is full, but only where the key changes.
    const lastBoundRows = this.bounds.at(-1)?.rowsBefore ?? 0;
    if (this.previous !== undefined && this.seen - lastBoundRows >= this.perPartition && !sameKey(this.previous, key)) {
      this.bounds.push({ key: this.previous, rowsBefore: this.seen });
    }
    this.previous = key;
    this.seen++;
  }

  ranges(table: string, columns: string[]): PartitionRange[] {
    const ranges: PartitionRange[] = [];
    let after: KeyTuple | undefined;
    let rowsBefore = 0;
    for (const bound of this.bounds) {
      ranges.push({ table, index: ranges.length, columns, after, upTo: bound.key, plannedRows: bound.rowsBefore - rowsBefore });
      after = bound.key;
      rowsBefore = bound.rowsBefore;
    }
    ranges.push({ table, index: ranges.length, columns, after, plannedRows: Math.max(this.seen, this.totalRows) - rowsBefore });
    return ranges;
  }
}

const quoteIdent = (name: string) => `\`${name.replace(/`/g, '``')}\``;

const ESCAPES: Record<string, string> = { '\0': '\\0', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\x1a': '\\Z', '"': '\\"', "'": "\\'", '\\': '\\\\' };

/**
 * The SQL literal for a bound value, spelled exactly as the mysql2 driver
 * spells a `?` parameter of `query()`: mysql2 does not bind server-side there,
 * it writes the value into the statement text (sql-escaper). Strings become
 * '…' with backslash escapes, bytes X'…', numbers their digits. So a
 * statement with these literals inlined is, byte for byte, the statement the
 * driver sends: in a session with the driver's character set and collation
 * (utf8mb4, utf8mb4_unicode_ci) the server compares it with the column in the
 * same way — a string literal is coercible, the column's own collation
 * decides, case-insensitive or not; a binary bound is a binary string in
 * both.
 */
export function sqlLiteral(value: string | number | Uint8Array): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`partition bound ${value} is not a finite number`);
    return String(value);
  }
  if (typeof value === 'string') return `'${value.replace(/[\0\b\t\n\r\x1a"'\\]/g, (c) => ESCAPES[c]!)}'`;
  return `X'${Buffer.from(value).toString('hex')}'`;
}

/**
 * Integers are inlined (validated) so MySQL compares them as integers, not as
 * doubles; other values become parameters, or with `params` null literals.
 */
function literal(part: KeyPart, integer: boolean, params: unknown[] | null): string {
  if (integer) {
    const text = String(part);
    if (!/^-?\d+$/.test(text)) throw new Error(`partition bound ${text} is not an integer`);
    return text;
  }
  if (params === null) return sqlLiteral(fromKeyPart(part));
  params.push(fromKeyPart(part));
  return '?';
}

/**
 * `(a, b) > (x, y)` spelled out as `a > x OR (a = x AND b > y)`, a form
 * MariaDB's range optimizer turns into index ranges.
 */
function tupleCompare(columns: string[], key: KeyTuple, strict: '>' | '<', inclusive: boolean, integerColumns: Set<string>, params: unknown[] | null): string {
  const terms: string[] = [];
  for (let i = 0; i < columns.length; i++) {
    const last = i === columns.length - 1;
    const op = last && inclusive ? `${strict}=` : strict;
    const parts = columns.slice(0, i).map((c, j) => `${quoteIdent(c)} = ${literal(key[j]!, integerColumns.has(c), params)}`);
    parts.push(`${quoteIdent(columns[i]!)} ${op} ${literal(key[i]!, integerColumns.has(columns[i]!), params)}`);
    terms.push(parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`);
  }
  return `(${terms.join(' OR ')})`;
}

/**
 * The WHERE clause (and its parameters) that selects exactly one partition's
 * rows. With `inline`, no parameters: every bound is a literal (sqlLiteral),
 * for clients that take no parameters, such as the mariadb command line.
 */
export function rangePredicate(range: PartitionRange, integerColumns: Set<string>, options: { inline?: boolean } = {}): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const collect = options.inline ? null : params;
  const clauses: string[] = [];
  if (range.after) clauses.push(tupleCompare(range.columns, range.after, '>', false, integerColumns, collect));
  if (range.upTo) clauses.push(tupleCompare(range.columns, range.upTo, '<', true, integerColumns, collect));
  return { sql: clauses.length ? clauses.join(' AND ') : 'TRUE', params };
}

export { quoteIdent };

/**
 * Partitions one run of migrateToDynamo tracks. Each costs about 25 history
 * events (four activities, their workflow tasks, a search-attribute update);
 * Temporal caps a history at 50,000. Larger tables need larger partitions.
 */
export const MAX_PARTITIONS_PER_MIGRATION = 1_500;

/** Why a plan of `partitions` is too large, and the partitionRows that fixes it; undefined when it fits. */
export function partitionLimitProblem(what: string, rows: number, partitions: number): string | undefined {
  if (partitions <= MAX_PARTITIONS_PER_MIGRATION) return undefined;
  const rowsPerPartition = Math.ceil(rows / MAX_PARTITIONS_PER_MIGRATION);
  return (
    `${what} would be split into ${partitions.toLocaleString('en')} partitions, more than the ${MAX_PARTITIONS_PER_MIGRATION.toLocaleString('en')} one migration run tracks in its history; ` +
    `set spec.bulk.partitionRows to at least ${rowsPerPartition.toLocaleString('en').replace(/,/g, '')} (and leave spec.bulk.partitions unset), or migrate the tables in several migrations`
  );
}
