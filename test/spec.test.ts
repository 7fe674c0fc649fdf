import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSpec, revisedSpecForResume, SpecError } from '../src/spec.js';
import { readSpecFile } from '../src/specFile.js';
import { ROOT } from './helpers.js';

const example = () => JSON.parse(fs.readFileSync(path.join(ROOT, 'docs', 'examples', 'purchase-dms.json'), 'utf8'));

test('the documented examples are valid specs, and defaults are filled in', () => {
  // The spec files among them; client.ts is a program (run by test/operate.test.ts).
  const specFiles = fs.readdirSync(path.join(ROOT, 'docs', 'examples')).filter((file) => /\.(json|ya?ml)$/.test(file));
  assert.deepEqual(specFiles.sort(), ['purchase-dms.json', 'purchase-dms.yaml', 'purchase-grouped.json']);
  for (const file of specFiles) {
    const spec = readSpecFile(path.join(ROOT, 'docs', 'examples', file));
    assert.ok(spec.bulk.concurrency > 0, file);
  }
  assert.deepEqual(readSpecFile(path.join(ROOT, 'docs', 'examples', 'purchase-dms.yaml')), parseSpec(example()), 'the YAML example is the JSON one');
  const minimal = parseSpec({ name: 'm', mapping: { rules: [{ 'rule-type': 'selection', 'object-locator': { 'schema-name': 's', 'table-name': '%' }, 'rule-action': 'include' }] } });
  assert.equal(minimal.source.urlEnv, 'FERRY_MYSQL_URL');
  assert.equal(minimal.errors.policy, 'fail');
  assert.equal(minimal.staging.format, 'parquet');
});

test('an invalid spec is refused with every offending path and what is expected there', () => {
  const spec = example();
  spec.bulk.concurrency = 'four';
  spec.errors.policy = 'ignore';
  spec.mapping.rules[1]['mapping-parameters']['partition-key-name'] = '';
  spec.stagingg = {};
  try {
    parseSpec(spec);
    assert.fail('expected a SpecError');
  } catch (err) {
    assert.ok(err instanceof SpecError);
    const text = err.message;
    assert.match(text, /spec\.bulk\.concurrency: .*expected number/i);
    assert.match(text, /spec\.errors\.policy: .*"fail"|"dead-letter"/);
    assert.match(text, /spec\.mapping\.rules\[1\]/);
    assert.match(text, /stagingg/);
  }
});

test('a name that cannot be a workflow id and staging folder is refused', () => {
  assert.throws(() => parseSpec({ ...example(), name: '../etc' }), /spec\.name: expected 1–100 letters, digits/);
});

test('a resume may revise the error policy, budget and concurrency, and nothing that changes finished partitions', () => {
  const original = parseSpec(example());
  const operational = { ...example(), errors: { policy: 'dead-letter' }, writeBudget: { itemsPerSecond: 500 }, bulk: { ...example().bulk, concurrency: 1 } };
  assert.equal(revisedSpecForResume(original, operational).errors.policy, 'dead-letter');

  const remapped = example();
  remapped.mapping.rules[1]['mapping-parameters']['exclude-columns'] = ['customerid'];
  remapped.bulk.partitionRows = 1000;
  assert.throws(
    () => revisedSpecForResume(original, remapped),
    (err: Error) =>
      err instanceof SpecError &&
      /spec\.mapping\.rules\[1\]\.mapping-parameters\.exclude-columns: differs from the run being resumed/.test(err.message) &&
      /spec\.bulk\.partitionRows: differs/.test(err.message) &&
      /start a new migration/.test(err.message),
  );
  assert.throws(() => revisedSpecForResume(original, { ...example(), name: 'other' }), /spec\.name: differs/);

  // The cutover's timing may change too; what the capture writes and where may not.
  const captured = parseSpec({ ...example(), capture: { createStream: true } });
  assert.equal(revisedSpecForResume(captured, { ...example(), capture: { createStream: true, maxLagMs: 2_000, maxFreezeMs: 60_000, checkWindowMs: 20_000 } }).capture?.maxFreezeMs, 60_000);
  assert.throws(() => revisedSpecForResume(captured, { ...example(), capture: { createStream: true, shards: 4 } }), /spec\.capture\.shards: differs from the run being resumed/);
  // So may the schema changes capture goes on past, added or replaced.
  const skipping = revisedSpecForResume(captured, { ...example(), capture: { createStream: true, skipDdl: ['binlog.000002:4379'] } });
  assert.deepEqual(skipping.capture?.skipDdl, ['binlog.000002:4379']);
  assert.equal(revisedSpecForResume(skipping, { ...example(), capture: { createStream: true, skipDdl: ['binlog.000002:5000'] } }).capture?.skipDdl[0], 'binlog.000002:5000');
  assert.throws(() => parseSpec({ ...example(), capture: { skipDdl: ['binlog.000002'] } }), /spec\.capture\.skipDdl\[0\]: expected FILE:POSITION, as the SchemaChanged failure names it/);
});

test('a spec file that is not valid JSON or YAML is refused naming the file and the place', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-spec-'));
  try {
    fs.writeFileSync(path.join(dir, 'bad.yaml'), 'name: x\nmapping: [unclosed\n');
    assert.throws(() => readSpecFile(path.join(dir, 'bad.yaml')), /bad\.yaml is not valid YAML: .*line/);
    fs.writeFileSync(path.join(dir, 'bad.json'), '{"name": "x",}');
    assert.throws(() => readSpecFile(path.join(dir, 'bad.json')), /bad\.json is not valid JSON/);
    fs.writeFileSync(path.join(dir, 'typo.yml'), 'name: x\nmapping: {rules: []}\nbulk: {concurrency: four}\n');
    assert.throws(() => readSpecFile(path.join(dir, 'typo.yml')), /spec\.bulk\.concurrency: .*expected number/i);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a mapping rule with an unknown key, a wrong rule type or an unsupported feature is refused with its own message', () => {
  type Spec = ReturnType<typeof example>;
  const cases: { what: string; change: (spec: Spec) => void; message: string }[] = [
    {
      what: 'a typo in mapping-parameters (the column would be migrated)',
      change: (s) => (s.mapping.rules[1]['mapping-parameters']['exclude-column'] = ['ssn']),
      message: 'spec.mapping.rules[1].mapping-parameters: unknown key "exclude-column"; did you mean "exclude-columns"?',
    },
    { what: 'a typo in a rule', change: (s) => (s.mapping.rules[0]['rule-actoin'] = 'include'), message: 'spec.mapping.rules[0]: unknown key "rule-actoin"; did you mean "rule-action"?' },
    {
      what: 'a typo in an object locator',
      change: (s) => (s.mapping.rules[0]['object-locator']['tabel-name'] = 'x'),
      message: 'spec.mapping.rules[0].object-locator: unknown key "tabel-name"; did you mean "table-name"?',
    },
    {
      what: 'a typo in an attribute mapping',
      change: (s) => (s.mapping.rules[1]['mapping-parameters']['attribute-mappings'][0]['attribute-subtype'] = 'string'),
      message: 'spec.mapping.rules[1].mapping-parameters.attribute-mappings[0]: unknown key "attribute-subtype"; did you mean "attribute-sub-type"?',
    },
    {
      what: 'a key nothing resembles',
      change: (s) => (s.mapping.rules[0].colour = 'blue'),
      message: 'spec.mapping.rules[0]: unknown key "colour"; expected one of "rule-type", "rule-id", "rule-name", "object-locator", "rule-action", "filters"',
    },
    { what: 'a typo in the spec itself', change: (s) => (s.bulk.concurency = 2), message: 'spec.bulk: unknown key "concurency"; did you mean "concurrency"?' },
    {
      what: 'selection filters',
      change: (s) => (s.mapping.rules[0].filters = [{ 'filter-type': 'source', 'column-name': 'customerid' }]),
      message: 'spec.mapping.rules[0].filters: selection filters are not supported by ferry: filter with a view in the source',
    },
    {
      what: 'an unknown rule type',
      change: (s) => (s.mapping.rules[0]['rule-type'] = 'selections'),
      message: 'spec.mapping.rules[0].rule-type: expected one of "selection", "object-mapping", "transformation", "table-settings"',
    },
    {
      what: 'an unknown object-mapping action',
      change: (s) => (s.mapping.rules[1]['rule-action'] = 'map-record'),
      message: 'spec.mapping.rules[1].rule-action: expected, for an object-mapping rule, one of "group-records-to-item", "map-record-to-record", "map-record-to-document"',
    },
    {
      what: 'a DMS transformation rule',
      change: (s) => (s.mapping.rules[0] = { 'rule-type': 'transformation', 'rule-id': '1', 'rule-action': 'rename', 'rule-target': 'column' }),
      message: 'spec.mapping.rules[0]: transformation and table-settings rules are not supported by ferry: use the spec\'s "sql"',
    },
    { what: 'a rule that is not an object', change: (s) => (s.mapping.rules[0] = 'include shop.purchase'), message: 'spec.mapping.rules[0]: expected a rule: an object with "rule-type"' },
    {
      what: 'a grouping rule without its columns',
      change: (s) => (s.mapping.rules[1]['rule-action'] = 'group-records-to-item'),
      message: 'spec.mapping.rules[1].mapping-parameters.attribute-name-column: required: the column whose value names each row\'s attribute',
    },
  ];
  for (const { what, change, message } of cases) {
    const spec = example();
    change(spec);
    assert.throws(
      () => parseSpec(spec),
      (err: Error) => {
        assert.ok(err instanceof SpecError, what);
        assert.ok(err.message.includes(message), `${what}: expected "${message}" in:\n${err.message}`);
        assert.doesNotMatch(err.message, /Invalid input/, what);
        return true;
      },
      what,
    );
  }
});
