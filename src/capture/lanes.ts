/**
 * Ordered-per-key parallelism for apply: changes to one row (one partition
 * key) stay in order, different keys run at once. Pure code.
 */

/**
 * Runs `work` on every element: those sharing a lane key one after another in
 * order, up to `lanes` lanes at once. The first failure stops every lane from
 * taking more work and is what this rejects with, once the lanes are idle.
 */
export async function inLanes<T>(elements: T[], laneOf: (element: T) => string, lanes: number, work: (element: T) => Promise<void>): Promise<void> {
  const byLane = new Map<string, T[]>();
  for (const element of elements) {
    const lane = laneOf(element);
    const queue = byLane.get(lane);
    if (queue) queue.push(element);
    else byLane.set(lane, [element]);
  }
  const queues = [...byLane.values()];
  let next = 0;
  let failure: { error: unknown } | undefined;
  const runner = async () => {
    while (next < queues.length && !failure) {
      for (const element of queues[next++]!) {
        if (failure) return;
        try {
          await work(element);
        } catch (error) {
          failure ??= { error };
          return;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, queues.length) }, runner));
  if (failure) throw failure.error;
}

