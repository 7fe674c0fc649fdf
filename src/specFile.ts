/** Reading a spec from disk (kept out of src/spec.ts, which workflow code imports). */
import fs from 'node:fs';
import { parseSpec, SpecError, type MigrationSpec } from './spec.js';

export function readSpecFile(file: string): MigrationSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new SpecError([`cannot read ${file}: ${(err as Error).message}`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SpecError([`${file} is not valid JSON: ${(err as Error).message}`]);
  }
  return parseSpec(json);
}
