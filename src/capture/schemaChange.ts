/**
 * Which tables a statement in the binlog changes the schema of. Capture stops
 * on a schema change of a migrated table (docs/cdc.md): a substring match on
 * the statement's text stops on `ALTER TABLE purchase_archive` and misses
 * `TRUNCATE purchase`, so the statement's target is parsed instead, the way
 * MySQL reads it: leading comments skipped, keywords in any case, names
 * backquoted or bare, schema-qualified or in the event's default database.
 */

export interface TableName {
  schema: string;
  /** Absent: every table of the schema (DROP DATABASE). */
  table?: string;
}

export interface SchemaChange {
  /** What the statement does, e.g. `ALTER TABLE`, `TRUNCATE TABLE`. */
  statement: string;
  tables: TableName[];
}

type Token = { kind: 'word'; text: string } | { kind: 'quoted'; text: string } | { kind: 'symbol'; text: string };

/**
 * The statement's tokens up to the point a target can be read from: words,
 * quoted identifiers (backquotes, or double quotes under ANSI_QUOTES) and
 * symbols. Comments are skipped, except that the contents of an executable
 * comment (`/*!50100 … *\/`, MariaDB's `/*M!… *\/`) are read, as MySQL runs them.
 */
function tokens(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (sql.startsWith('/*!', i) || sql.startsWith('/*M!', i)) {
      i += sql[i + 2] === 'M' ? 4 : 3;
      while (/\d/.test(sql[i] ?? '')) i++;
    } else if (sql.startsWith('*/', i)) {
      i += 2; // the end of an executable comment
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === '#' || (sql.startsWith('--', i) && /\s/.test(sql[i + 2] ?? ' '))) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === '`' || c === '"') {
      let text = '';
      let j = i + 1;
      for (; j < sql.length; j++) {
        if (sql[j] === c) {
          if (sql[j + 1] === c) {
            text += c; // a doubled quote inside the name
            j++;
          } else break;
        } else text += sql[j];
      }
      out.push({ kind: 'quoted', text });
      i = j + 1;
    } else if (/[\p{L}\p{N}_$]/u.test(c)) {
      let j = i;
      while (j < sql.length && /[\p{L}\p{N}_$]/u.test(sql[j]!)) j++;
      out.push({ kind: 'word', text: sql.slice(i, j) });
      i = j;
    } else {
      out.push({ kind: 'symbol', text: c });
      i++;
    }
  }
  return out;
}

/** A cursor over a statement's tokens. */
class Reader {
  private at = 0;
  constructor(private readonly list: Token[]) {}

  /** Consumes the keyword (case-insensitive, as MySQL reads keywords) when it comes next. */
  keyword(...words: string[]): boolean {
    const t = this.list[this.at];
    if (t?.kind === 'word' && words.some((w) => w.toUpperCase() === t.text.toUpperCase())) {
      this.at++;
      return true;
    }
    return false;
  }

  symbol(text: string): boolean {
    if (this.list[this.at]?.kind === 'symbol' && this.list[this.at]!.text === text) {
      this.at++;
      return true;
    }
    return false;
  }

  identifier(): string | undefined {
    const t = this.list[this.at];
    if (t?.kind === 'word' || t?.kind === 'quoted') {
      this.at++;
      return t.text;
    }
    return undefined;
  }

  /** `name` or `schema.name`; an unqualified name is in the event's default database. */
  tableName(defaultSchema: string): TableName | undefined {
    const first = this.identifier();
    if (first === undefined) return undefined;
    if (!this.symbol('.')) return { schema: defaultSchema, table: first };
    const second = this.identifier();
    return second === undefined ? undefined : { schema: first, table: second };
  }

  /** `a, b, c` */
  tableNames(defaultSchema: string): TableName[] {
    const names: TableName[] = [];
    do {
      const name = this.tableName(defaultSchema);
      if (!name) break;
      names.push(name);
    } while (this.symbol(','));
    return names;
  }
}

/**
 * The tables a statement changes the schema of (or empties), or undefined for
 * any other statement. `defaultSchema` is the database the statement ran in
 * (the QUERY event's schema), which an unqualified name refers to. Read:
 * `ALTER [ONLINE|OFFLINE] [IGNORE] TABLE [IF EXISTS] t`,
 * `DROP [TEMPORARY] TABLE[S] [IF EXISTS] a, b`, `RENAME TABLE[S] [IF EXISTS] a TO b, c TO d`
 * (both sides: a table renamed onto a migrated name replaces it),
 * `TRUNCATE [TABLE] t`, `CREATE OR REPLACE [TEMPORARY] TABLE t` and
 * `DROP {DATABASE|SCHEMA} [IF EXISTS] db`.
 */
export function schemaChangeOf(sql: string, defaultSchema: string): SchemaChange | undefined {
  const r = new Reader(tokens(sql));
  const ifExists = () => r.keyword('IF') && r.keyword('EXISTS');
  if (r.keyword('ALTER')) {
    r.keyword('ONLINE', 'OFFLINE');
    r.keyword('IGNORE');
    if (!r.keyword('TABLE')) return undefined;
    ifExists();
    const name = r.tableName(defaultSchema);
    return name ? { statement: 'ALTER TABLE', tables: [name] } : undefined;
  }
  if (r.keyword('DROP')) {
    if (r.keyword('DATABASE', 'SCHEMA')) {
      ifExists();
      const schema = r.identifier();
      return schema === undefined ? undefined : { statement: 'DROP DATABASE', tables: [{ schema }] };
    }
    r.keyword('TEMPORARY');
    if (!r.keyword('TABLE', 'TABLES')) return undefined;
    ifExists();
    const tables = r.tableNames(defaultSchema);
    return tables.length ? { statement: 'DROP TABLE', tables } : undefined;
  }
  if (r.keyword('RENAME')) {
    if (!r.keyword('TABLE', 'TABLES')) return undefined;
    ifExists();
    const tables: TableName[] = [];
    do {
      const from = r.tableName(defaultSchema);
      if (!from) break;
      tables.push(from);
      if (r.keyword('WAIT')) r.identifier();
      else r.keyword('NOWAIT');
      if (!r.keyword('TO')) break;
      const to = r.tableName(defaultSchema);
      if (!to) break;
      tables.push(to);
    } while (r.symbol(','));
    return tables.length ? { statement: 'RENAME TABLE', tables } : undefined;
  }
  if (r.keyword('TRUNCATE')) {
    r.keyword('TABLE');
    const name = r.tableName(defaultSchema);
    return name ? { statement: 'TRUNCATE TABLE', tables: [name] } : undefined;
  }
  if (r.keyword('CREATE') && r.keyword('OR') && r.keyword('REPLACE')) {
    r.keyword('TEMPORARY');
    if (!r.keyword('TABLE')) return undefined;
    const name = r.tableName(defaultSchema);
    return name ? { statement: 'CREATE OR REPLACE TABLE', tables: [name] } : undefined;
  }
  return undefined;
}

/**
 * The first of `migrated` a statement changes, or undefined. Names compare
 * exactly, as MySQL compares database and table names on Linux
 * (lower_case_table_names=0); `foldCase` compares them case-insensitively, as
 * a server with lower_case_table_names 1 or 2 does.
 */
export function migratedTableChanged(change: SchemaChange | undefined, migrated: readonly TableName[], foldCase = false): TableName | undefined {
  if (!change) return undefined;
  const same = (a: string, b: string) => (foldCase ? a.toLowerCase() === b.toLowerCase() : a === b);
  for (const target of change.tables) {
    const hit = migrated.find((m) => same(m.schema, target.schema) && (target.table === undefined || same(m.table!, target.table)));
    if (hit) return hit;
  }
  return undefined;
}
