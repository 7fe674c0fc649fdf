/**
 * The encoding of export's command-line path: the SELECT list that makes the
 * client's tab-separated text unambiguous, and the DuckDB read that turns the
 * text into exactly what the driver path stages — the same column names, the
 * same types (stagingType) and the same values (fromMysql).
 *
 * In `--batch --raw` mode the client writes NULL as the word NULL and every
 * other value unescaped, tabs and newlines included. So:
 * - text, ENUM, SET and JSON travel as HEX(CONVERT(col USING utf8mb4)), the
 *   bytes the driver receives with utf8mb4 results, decoded in DuckDB; BINARY
 *   and BLOB as HEX(col). Hex holds no tab, newline or word NULL, and an empty
 *   string is an empty field, distinct from NULL.
 * - integers, DECIMAL, YEAR, dates, DATETIME, TIMESTAMP and TIME travel as
 *   MySQL's own text, the text the driver parses: digits, signs, '-', ':',
 *   '.', ' ' — never a tab, a newline or the word NULL.
 * - FLOAT is selected as (col + 0E0), as the driver path selects it, read as a
 *   DOUBLE and cast to FLOAT: the driver's parseFloat then the appender's
 *   rounding to single precision. DOUBLE is read as DOUBLE.
 * - BIT as (col + 0): the unsigned integer bitsToBigInt makes of its bytes.
 * - a constant last column, so no row is an empty line (read_csv skips those).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { selectExpression, stagingType, type SourceColumn } from '../mapping/types.js';
import { copyFormat, duckIdent, sqlString } from './duck.js';
import type { Staging } from './model.js';
import { quoteIdent } from './partitionPlan.js';

/**
 * HEX() returns NULL, with only a warning, when its result would be longer
 * than the server's max_allowed_packet; this marks that case, which no hex
 * string can be, so it is caught instead of staged as NULL.
 */
const HEX_FAILED = '-';
const HEX_TOO_LONG = 'ferry: a value is too long for HEX() under the source server max_allowed_packet';

/** A value the text path cannot carry (see HEX_FAILED); the driver path can. */
export class ValueTooLongForText extends Error {
  override name = 'ValueTooLongForText';
}

interface Transport {
  /** The MySQL expression selected. */
  select: string;
  /** The DuckDB type read_csv parses the field as. */
  read: string;
  /** The DuckDB expression from the field to the staged value. */
  stage: (field: string) => string;
}

function hexed(expression: string, column: string): string {
  return `IF(${column} IS NULL, NULL, COALESCE(HEX(${expression}), '${HEX_FAILED}'))`;
}

function unhexed(field: string): string {
  return `CASE WHEN ${field} = '${HEX_FAILED}' THEN error(${sqlString(HEX_TOO_LONG)}) ELSE unhex(${field}) END`;
}

/** How one column travels; keep in step with fromMysql (src/mapping/types.ts). */
function transport(column: SourceColumn): Transport {
  const name = quoteIdent(column.name);
  const staged = stagingType(column);
  switch (column.family) {
    case 'text':
    case 'enum':
    case 'set':
    case 'json':
      return { select: hexed(`CONVERT(${name} USING utf8mb4)`, name), read: 'VARCHAR', stage: (f) => `decode(${unhexed(f)})` };
    case 'binary':
      return { select: hexed(name, name), read: 'VARCHAR', stage: unhexed };
    case 'bit':
      return { select: `(${name} + 0)`, read: staged, stage: (f) => f };
    case 'float':
      return { select: selectExpression(column, quoteIdent), read: 'DOUBLE', stage: (f) => f };
    case 'integer':
    case 'decimal':
    case 'year':
    case 'date':
    case 'datetime':
    case 'timestamp':
    case 'time':
      return { select: name, read: staged, stage: (f) => f };
  }
}

/** The SELECT list for the client: one expression per column, then the row's end marker. */
export function textSelectList(columns: SourceColumn[]): string {
  return [...columns.map((c) => transport(c).select), '1'].join(', ');
}

/** read_csv's own limit; a longer line needs a larger limit and a buffer that holds it. */
const DEFAULT_MAX_LINE = 2_097_152;

/**
 * Reads the client's output (`text`, `longestLine` bytes at most) into the
 * staged file `out`; returns the rows written. Every read_csv option is set:
 * nothing is sniffed.
 */
export async function stageText(duck: DuckDBConnection, text: string, columns: SourceColumn[], out: string, format: Staging['format'], longestLine: number): Promise<number> {
  const fields = columns.map((_, i) => `c${i}`);
  const types = columns.map((c, i) => `${sqlString(fields[i]!)}: ${sqlString(transport(c).read)}`);
  types.push(`'row_end': 'UTINYINT'`);
  const options = [
    "delim = '\t'", // a tab character
    "new_line = '\\n'",
    "quote = ''",
    "escape = ''",
    "comment = ''",
    "nullstr = 'NULL'",
    'header = false',
    'skip = 0',
    'auto_detect = false',
    'strict_mode = true',
    'null_padding = false',
    'ignore_errors = false',
    `columns = {${types.join(', ')}}`,
  ];
  if (longestLine + 2 > DEFAULT_MAX_LINE) {
    const maxLine = longestLine + 1024;
    options.push(`max_line_size = ${maxLine}`, `buffer_size = ${Math.max(2 * maxLine, 32 * 1024 * 1024)}`);
  }
  const select = columns.map((c, i) => `CAST(${transport(c).stage(fields[i]!)} AS ${stagingType(c)}) AS ${duckIdent(c.name)}`).join(', ');
  try {
    const result = await duck.runAndReadAll(`COPY (SELECT ${select} FROM read_csv(${sqlString(text)}, ${options.join(', ')})) TO ${sqlString(out)} (${copyFormat(format)})`);
    return Number(result.getRows()[0]![0]);
  } catch (err) {
    if (err instanceof Error && err.message.includes(HEX_TOO_LONG)) throw new ValueTooLongForText(HEX_TOO_LONG);
    throw err;
  }
}
