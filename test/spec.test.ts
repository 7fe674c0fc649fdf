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
