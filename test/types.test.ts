import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decimalExponent } from '../src/mapping/dynamoNumber.js';
import { classifyColumn, ConversionError, failureReason, fromMysql, significantDigits, stagingType, toAttributeValue, type ColumnInfo, type SourceColumn } from '../src/mapping/types.js';

function column(columnType: string, dataType = columnType.replace(/\(.*$/, '').replace(/ .*$/, ''), precision: number | null = null, scale: number | null = null): SourceColumn {
  const info: ColumnInfo = { COLUMN_NAME: 'c', DATA_TYPE: dataType, COLUMN_TYPE: columnType, IS_NULLABLE: 'YES', NUMERIC_PRECISION: precision, NUMERIC_SCALE: scale };
  return classifyColumn('t', info);
}

const convert = (col: SourceColumn, raw: unknown, options?: Parameters<typeof toAttributeValue>[2]) => toAttributeValue(col, fromMysql(col, raw), options);

test('integers of every width keep their extremes exactly, signed and unsigned', () => {
  const cases: [string, string, string][] = [
    ['tinyint(4)', '-128', 'TINYINT'],
    ['tinyint(3) unsigned', '255', 'UTINYINT'],
    ['smallint(6)', '-32768', 'SMALLINT'],
    ['smallint(5) unsigned', '65535', 'USMALLINT'],
    ['mediumint(9)', '-8388608', 'INTEGER'],
    ['mediumint(8) unsigned', '16777215', 'UINTEGER'],
    ['int(11)', '-2147483648', 'INTEGER'],
    ['int(10) unsigned', '4294967295', 'UINTEGER'],
    ['bigint(20)', '-9223372036854775808', 'BIGINT'],
    ['bigint(20)', '9223372036854775807', 'BIGINT'],
    ['bigint(20) unsigned', '18446744073709551615', 'UBIGINT'],
  ];
  for (const [type, value, staging] of cases) {
    const col = column(type);
    assert.equal(col.family, 'integer');
    assert.equal(stagingType(col), staging, type);
    // mysql2 hands back big numbers as strings and small ones as numbers: both are exact.
    const raw = Number.isSafeInteger(Number(value)) ? Number(value) : value;
    assert.deepEqual(convert(col, raw), { N: value }, type);
  }
});

test('DECIMAL up to 38 digits arrives digit for digit; 39 significant digits is a clear error', () => {
  const d38 = column('decimal(38,10)', 'decimal', 38, 10);
  assert.equal(stagingType(d38), 'DECIMAL(38,10)');
  assert.deepEqual(convert(d38, '9999999999999999999999999999.9999999999'), { N: '9999999999999999999999999999.9999999999' });
  assert.deepEqual(convert(d38, '-0.0000000001'), { N: '-0.0000000001' });
  const d65 = column('decimal(65,0)', 'decimal', 65, 0);
  assert.equal(stagingType(d65), 'VARCHAR', 'wider than DuckDB DECIMAL: staged as exact text');
  assert.deepEqual(convert(d65, '12345678901234567890123456789012345678'), { N: '12345678901234567890123456789012345678' });
  assert.deepEqual(convert(d65, '1000000000000000000000000000000000000000000000000000000000000'), { N: '1000000000000000000000000000000000000000000000000000000000000' }, 'trailing zeros are not significant');
  assert.throws(
    () => convert(d65, '123456789012345678901234567890123456789'),
    (err: unknown) => err instanceof ConversionError && /column c: value 123456789012345678901234567890123456789 has 39 significant digits; DynamoDB numbers hold at most 38/.test(err.message),
  );
  assert.equal(significantDigits('-000123.4500'), 5);
});

test('FLOAT and DOUBLE become numbers', () => {
  assert.equal(stagingType(column('float')), 'FLOAT');
  assert.equal(stagingType(column('double')), 'DOUBLE');
  assert.deepEqual(convert(column('double'), 9.5e125), { N: '9.5e+125' });
  assert.deepEqual(convert(column('double'), -1e-130), { N: '-1e-130' });
  assert.deepEqual(convert(column('float'), -0.5), { N: '-0.5' });
  // A FLOAT holds a 32-bit value: written as the shortest decimal that reads back as it.
  assert.deepEqual(convert(column('float'), 0.10000000149011612), { N: '0.1' });
  assert.deepEqual(convert(column('float'), 1.2345677614212036), { N: '1.2345678' });
  assert.deepEqual(convert(column('float'), 3.4028234663852886e38), { N: '3.4028235e+38' });
  assert.deepEqual(convert(column('double'), 0.1), { N: '0.1' });
});

test('a number outside DynamoDB\'s range (1E-130 … 9.99E+125) is a bad record naming the column, wherever it comes from', () => {
  assert.throws(() => convert(column('double'), 1.7976931348623157e308), /column c: value 1\.7976931348623157e\+308 is outside DynamoDB's number range/);
  assert.throws(() => convert(column('double'), -2.5e-300), /value -2\.5e-300 is outside DynamoDB's number range/);
  assert.deepEqual(convert(column('double'), 0), { N: '0' });
  assert.throws(() => convert(column('json'), '{"tiny": 1e-131}'), /column c: JSON number at offset 9: value 1e-131 is outside DynamoDB's number range/);
  assert.throws(() => convert(column('json'), '[123456789012345678901234567890123456789]'), /39 significant digits/);
  assert.equal(decimalExponent('123.4'), 2);
  assert.equal(decimalExponent('-0.05'), -2);
  assert.equal(decimalExponent('0.000'), undefined);
  assert.equal(decimalExponent('9.99E+125'), 125);
});

test('dates and times: ISO-8601 strings by default, epoch seconds when asked; TIME and YEAR keep their meaning', () => {
  assert.deepEqual(convert(column('date'), '2024-02-29'), { S: '2024-02-29' });
  assert.deepEqual(convert(column('datetime(6)', 'datetime'), '2024-02-29 23:59:59.123456'), { S: '2024-02-29T23:59:59.123456' });
  assert.deepEqual(convert(column('timestamp'), '2024-02-29 23:59:59'), { S: '2024-02-29T23:59:59Z' });
  assert.deepEqual(convert(column('time'), '-838:59:59'), { S: '-838:59:59' });
  assert.deepEqual(convert(column('year'), 2155), { N: '2155' });
  const epoch = { temporal: 'epoch', nulls: 'omit' } as const;
  assert.deepEqual(convert(column('date'), '1970-01-02', epoch), { N: '86400' });
  assert.deepEqual(convert(column('datetime(6)', 'datetime'), '2001-09-09 01:46:40.250000', epoch), { N: '1000000000.25' });
  for (const t of ['date', 'datetime', 'timestamp', 'time']) assert.equal(stagingType(column(t)), 'VARCHAR', `${t} is staged as MySQL's exact text`);
});

test('epoch seconds are exact on the whole calendar: years before 100 and fractions before 1970', () => {
  const epoch = { temporal: 'epoch', nulls: 'omit' } as const;
  const cases: [string, string, string][] = [
    ['date', '0001-01-01', '-62135596800'],
    ['date', '0099-12-31', '-59011545600'],
    ['date', '0000-01-01', '-62167219200'],
    ['datetime(6)', '1969-12-31 23:59:59.250000', '-0.75'],
    ['datetime(6)', '1969-12-31 23:59:58.500000', '-1.5'],
    ['timestamp(3)', '1970-01-01 00:00:00.000', '0'],
    ['datetime', '9999-12-31 23:59:59', '253402300799'],
  ];
  for (const [type, text, seconds] of cases) assert.deepEqual(convert(column(type), text, epoch), { N: seconds }, `${type} ${text}`);
});

test('a zero date, a zero month or day, or a day past its month is a bad record in both temporal modes, never another day', () => {
  const cases: [string, string, RegExp][] = [
    ['date', '0000-00-00', /column c: value 0000-00-00 is a zero date, which names no day of the calendar/],
    ['date', '2024-00-15', /column c: value 2024-00-15 is a zero month, which names no day of the calendar/],
    ['date', '2024-01-00', /column c: value 2024-01-00 is a zero day, which names no day of the calendar/],
    ['date', '2024-00-00', /column c: value 2024-00-00 is a zero month and day/],
    ['datetime', '0000-00-00 00:00:00', /column c: value 0000-00-00 00:00:00 is a zero date/],
    ['datetime(6)', '2024-01-00 12:00:00.000000', /column c: value 2024-01-00 12:00:00.000000 is a zero day/],
    ['timestamp', '0000-00-00 00:00:00', /column c: value 0000-00-00 00:00:00 is a zero date/],
    ['date', '2023-02-29', /column c: value 2023-02-29 names no day of the calendar \(2023-02 has no day 29\)/],
    ['date', '2024-04-31', /2024-04 has no day 31/],
  ];
  for (const temporal of ['iso', 'epoch'] as const) {
    for (const [type, text, message] of cases) {
      assert.throws(
        () => convert(column(type), text, { temporal, nulls: 'omit' }),
        (err: Error) => err instanceof ConversionError && message.test(err.message) && /spec\.errors\.policy "dead-letter"/.test(err.message),
        `${temporal}: ${type} ${text}`,
      );
    }
  }
  assert.deepEqual(convert(column('date'), '2024-02-29', { temporal: 'epoch', nulls: 'omit' }), { N: '1709164800' }, 'a leap day is a day');
});

test('text of any UTF-8 width, ENUM and SET', () => {
  for (const t of ['char(10)', 'varchar(255)', 'text', 'mediumtext', 'longtext']) {
    assert.deepEqual(convert(column(t), 'naïve 日本語 🚢'), { S: 'naïve 日本語 🚢' }, t);
  }
  assert.deepEqual(convert(column("enum('small','large')", 'enum'), 'large'), { S: 'large' });
  assert.deepEqual(convert(column("set('a','b','c')", 'set'), 'a,c'), { SS: ['a', 'c'] });
  assert.equal(convert(column("set('a','b')", 'set'), ''), undefined, 'an empty SET is no attribute: DynamoDB sets cannot be empty');
});

test('BINARY, VARBINARY and BLOB become B, byte for byte', () => {
  for (const t of ['binary(4)', 'varbinary(16)', 'blob', 'longblob']) {
    const bytes = Buffer.from([0, 255, 10, 13]);
    assert.equal(stagingType(column(t)), 'BLOB');
    assert.deepEqual(convert(column(t), bytes), { B: bytes }, t);
  }
});

test('JSON becomes M/L with numbers kept exactly; MariaDB\'s LONGTEXT-with-json_valid is JSON too', () => {
  const col = column('json');
  assert.deepEqual(convert(col, '{"a": [1, 12345678901234567890.5, "x", true, null], "b": {}}'), {
    M: { a: { L: [{ N: '1' }, { N: '12345678901234567890.5' }, { S: 'x' }, { BOOL: true }, { NULL: true }] }, b: { M: {} } },
  });
  const mariaJson = classifyColumn('t', { COLUMN_NAME: 'doc', DATA_TYPE: 'longtext', COLUMN_TYPE: 'longtext', IS_NULLABLE: 'YES', NUMERIC_PRECISION: null, NUMERIC_SCALE: null, JSON_CHECKED: true });
  assert.equal(mariaJson.family, 'json');
  assert.throws(() => convert(col, '{"a": }'), /column c: invalid JSON at offset/);
});

test('BIT(1) is a boolean, wider BIT a number', () => {
  assert.deepEqual(convert(column('bit(1)', 'bit'), Buffer.from([1])), { BOOL: true });
  assert.deepEqual(convert(column('bit(1)', 'bit'), Buffer.from([0])), { BOOL: false });
  assert.deepEqual(convert(column('bit(64)', 'bit'), Buffer.from([255, 255, 255, 255, 255, 255, 255, 255])), { N: '18446744073709551615' });
});

test('NULL is no attribute by default, or the NULL type when asked', () => {
  assert.equal(convert(column('int(11)'), null), undefined);
  assert.deepEqual(convert(column('varchar(3)'), null, { temporal: 'iso', nulls: 'null' }), { NULL: true });
});

test('a type ferry cannot map is refused at classification, naming the column and the fix', () => {
  assert.throws(
    () => classifyColumn('shop.places', { COLUMN_NAME: 'area', DATA_TYPE: 'geometry', COLUMN_TYPE: 'geometry', IS_NULLABLE: 'NO', NUMERIC_PRECISION: null, NUMERIC_SCALE: null }),
    /column shop\.places\.area has type geometry, which ferry cannot map to DynamoDB; exclude it with "exclude-columns"/,
  );
});

test('a bad value’s failure text hides the value (it lands in Temporal’s history) unless FERRY_FAILURE_VALUES=1; the full reason stays for dead letters', () => {
  const err = (() => {
    try {
      convert(column('date'), '2024-00-15');
    } catch (e) {
      return e as ConversionError;
    }
    throw new Error('no error');
  })();
  assert.match(err.message, /value 2024-00-15 is a zero month/);
  assert.equal(failureReason(err), 'column c: value ‹value› is a zero month, which names no day of the calendar and has no DynamoDB form; fix the row in the source, or set such rows aside with spec.errors.policy "dead-letter"');
  process.env.FERRY_FAILURE_VALUES = '1';
  try {
    assert.equal(failureReason(err), err.message);
  } finally {
    delete process.env.FERRY_FAILURE_VALUES;
  }
  assert.throws(() => convert(column('decimal'), '1'.repeat(39)), (e: unknown) => e instanceof ConversionError && !failureReason(e).includes('1'.repeat(39)) && /not a number DynamoDB can hold/.test(failureReason(e)));
});
