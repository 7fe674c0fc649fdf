/**
 * The spec's row-local DuckDB SQL (`spec.sql`) for change events: each row
 * image goes through the same query the bulk transform runs over a partition,
 * with `source` holding that one row, so a change maps exactly as the bulk
 * copy mapped the row. One DuckDB call per batch of images: a LATERAL join
 * runs the query once per staged row.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { checkOneSelect, confineToSource, duckIdent, fromDuckValue, NO_EXTENSION_AUTOLOAD, outputColumns, rowAppender, specSqlFailure } from '../bulk/duck.js';
import type { Row } from '../mapping/item.js';
import { stagingType, type SourceColumn } from '../mapping/types.js';

/** One image through the SQL: the row it returned, none (filtered out), or why it could not run. */
export type ShapedImage = { row: Row } | { row: undefined } | { error: string };

/** A row the spec's SQL fails on or returns twice: a bad record, under the spec's error policy. */
export class RowSqlError extends Error {}

const INDEX = '__ferry_image';
const INDEX_COLUMN: SourceColumn = { name: INDEX, family: 'integer', mysqlType: 'int', nullable: false, unsigned: false };

export class RowSql {
  /** The query's columns, known after the first batch. */
  columns: SourceColumn[] | undefined;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly duck: DuckDBConnection,
    private readonly table: string,
    private readonly sql: string,
    private readonly sourceColumns: SourceColumn[],
  ) {}

  /**
   * `table` names the source table in messages (`spec.sql.<table>`).
   * Refuses (SpecSqlError) SQL that is not one SELECT, or that does not bind
   * over the table's columns: reading a file, say, which the confined DuckDB
   * refuses. Such SQL fails every row alike, so it is the spec's error, not
   * the rows'.
   */
  static async open(table: string, sql: string, columns: SourceColumn[]): Promise<RowSql> {
    const instance = await DuckDBInstance.create(':memory:', { ...NO_EXTENSION_AUTOLOAD, threads: '1', memory_limit: '64MB' });
    const duck = await instance.connect();
    try {
      const all = [INDEX_COLUMN, ...columns];
      await duck.run(`CREATE TABLE staged (${all.map((c) => `${duckIdent(c.name)} ${stagingType(c)}`).join(', ')})`);
      // The images arrive through the appender: the SQL needs no file at all.
      await confineToSource(duck);
      await checkOneSelect(duck, table, sql);
      const rowSql = new RowSql(instance, duck, table, sql, columns);
      try {
        (await duck.prepare(rowSql.query())).destroySync();
      } catch (err) {
        throw specSqlFailure(table, err);
      }
      return rowSql;
    } catch (err) {
      duck.closeSync();
      instance.closeSync();
      throw err;
    }
  }

  private query(only?: number): string {
    const images = `SELECT ${INDEX} FROM staged${only === undefined ? '' : ` WHERE ${INDEX} = ${only}`}`;
    const one = `SELECT * EXCLUDE (${INDEX}) FROM staged WHERE staged.${INDEX} = images.${INDEX}`;
    return `SELECT images.${INDEX}, shaped.* FROM (${images}) AS images, LATERAL (WITH source AS (${one}) SELECT * FROM (\n${this.sql}\n)) AS shaped`;
  }

  /** The images' rows through the SQL, in the order given. */
  async shape(rows: Row[]): Promise<ShapedImage[]> {
    await this.duck.run('DELETE FROM staged');
    const appender = await rowAppender(this.duck, 'staged', [INDEX_COLUMN, ...this.sourceColumns]);
    rows.forEach((row, i) => appender.appendRow([i, ...this.sourceColumns.map((c) => row[c.name] ?? null)]));
    appender.close();

    const out: ShapedImage[] = rows.map(() => ({ row: undefined }));
    const seen = new Set<number>();
    const collect = async (only?: number) => {
      const result = await this.duck.runAndReadAll(this.query(only));
      const names = result.columnNames().slice(1);
      this.columns ??= outputColumns(this.sourceColumns, names, result.columnTypes().slice(1));
      for (const values of result.getRows()) {
        const i = Number(values[0]);
        if (seen.has(i)) {
          out[i] = { error: `spec.sql.${this.table} returned more than one row for one source row; for change capture the SQL must be row-local: one row in, at most one out` };
          continue;
        }
        seen.add(i);
        const row: Row = {};
        names.forEach((name, c) => (row[name] = fromDuckValue(values[c + 1]!)));
        out[i] = { row };
      }
    };
    try {
      await collect();
    } catch {
      // One image the SQL fails on fails the whole call: run them one by one to name it and keep the others.
      seen.clear();
      for (let i = 0; i < rows.length; i++) {
        try {
          await collect(i);
        } catch (err) {
          out[i] = { error: `spec.sql.${this.table} failed on this row: ${(err as Error).message.split('\n')[0]}` };
        }
      }
    }
    return out;
  }

  close(): void {
    this.duck.closeSync();
    this.instance.closeSync();
  }
}
