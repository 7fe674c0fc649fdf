/** Reading a spec from disk (kept out of src/spec.ts, which workflow code imports). JSON or YAML. */
import fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseSpec, SpecError, type MigrationSpec } from './spec.js';

/** Reads a spec file: `.yaml`/`.yml` as YAML (1.2 core schema), anything else as JSON. */
export function readSpecInput(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new SpecError([`cannot read ${file}: ${(err as Error).message}`]);
  }
  const yaml = /\.ya?ml$/i.test(file);
  try {
    return yaml ? parseYaml(text, { schema: 'core', prettyErrors: true }) : JSON.parse(text);
  } catch (err) {
    throw new SpecError([`${file} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(err as Error).message}`]);
  }
}

export function readSpecFile(file: string): MigrationSpec {
  return parseSpec(readSpecInput(file));
}
