/**
 * The README, the package description and `ferry --help` promise only what
 * works today. The data lake and DynamoDB as a source are issues still open:
 * until they land, no user-facing text may describe them as present.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runFerry } from './helpers.js';

const NOT_YET = /data[- ]lake|lake feeds?|copies DynamoDB|DynamoDB (tables? )?(as a )?source|schedule/i;

test('ferry --help names no feature that is not built', async () => {
  const help = await runFerry(['--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /MySQL to DynamoDB/);
  assert.doesNotMatch(help.stdout, NOT_YET);
});

test('the package description names no feature that is not built', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { description: string };
  assert.doesNotMatch(pkg.description, NOT_YET);
});

test('the README mentions the lake and DynamoDB sources only as planned', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  // One sentence per match: every sentence that names a future feature also says it is not built.
  const sentences = readme.replace(/\n/g, ' ').split(/(?<=[.!?])\s+/);
  const claims = sentences.filter((s) => NOT_YET.test(s));
  for (const s of claims) assert.match(s, /planned|not built|not yet/i, `README claims a feature that does not exist: "${s}"`);
});
