/**
 * A zod object that refuses keys it does not know, naming each one and the
 * nearest valid key: a typo such as `"exclude-column"` must not be dropped
 * silently (the column would be migrated), it must be refused with the fix.
 */
import { z } from 'zod';

/** Edit distance (insertions, deletions, substitutions) between two keys. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The valid key an unknown one most likely meant, when it is close enough to be a typo. */
export function nearestKey(unknown: string, valid: readonly string[]): string | undefined {
  const folded = unknown.toLowerCase();
  let best: { key: string; distance: number } | undefined;
  for (const key of valid) {
    const distance = editDistance(folded, key.toLowerCase());
    if (!best || distance < best.distance) best = { key, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(best.key.length / 3)) ? best.key : undefined;
}

/** What to say about keys an object does not have: each one with its likely fix. */
export function unknownKeysMessage(keys: readonly string[], valid: readonly string[]): string {
  return keys
    .map((key) => {
      const near = nearestKey(key, valid);
      return near ? `unknown key "${key}"; did you mean "${near}"?` : `unknown key "${key}"; expected one of ${valid.map((v) => `"${v}"`).join(', ')}`;
    })
    .join('; ');
}

/** `z.strictObject` whose unknown-key error names each key and the nearest valid one. */
export function closedObject<Shape extends z.ZodRawShape>(shape: Shape) {
  const valid = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys, valid) : undefined),
  });
}
