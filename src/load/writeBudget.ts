/**
 * The write budget: a token bucket of items per second, adjustable while
 * running, that halves itself when DynamoDB throttles and recovers gradually
 * once it stops.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export class WriteBudget {
  private tokens = 0;
  private last = performance.now();
  /** 1 = the full budget; throttling halves it, quiet seconds grow it back. */
  private factor = 1;
  private lastThrottle = 0;
  private lastHalving = -Infinity;
  throttles = 0;

  constructor(private itemsPerSecond: number | undefined) {}

  setRate(itemsPerSecond: number | undefined): void {
    this.itemsPerSecond = itemsPerSecond;
  }

  get rate(): number | undefined {
    return this.itemsPerSecond === undefined ? undefined : Math.max(1, this.itemsPerSecond * this.factor);
  }

  /**
   * Called on a throttling error: halve the pace (an unlimited budget becomes
   * the rate just observed). The writers in flight all see the same burst of
   * throttling, so one halving per second answers it; more would collapse the
   * pace to the floor at the first burst.
   */
  throttled(observedItemsPerSecond: number): void {
    this.throttles++;
    const now = performance.now();
    this.lastThrottle = now;
    if (now - this.lastHalving < 1000) return;
    this.lastHalving = now;
    if (this.itemsPerSecond === undefined) this.itemsPerSecond = Math.max(25, observedItemsPerSecond);
    this.factor = Math.max(0.05, this.factor / 2);
  }

  /** Waits until `n` items may be written. */
  async take(n: number): Promise<void> {
    for (;;) {
      const now = performance.now();
      if (this.factor < 1 && now - this.lastThrottle > 1000) {
        this.factor = Math.min(1, this.factor + 0.1);
        this.lastThrottle = now;
      }
      const rate = this.rate;
      if (rate === undefined) return;
      this.tokens = Math.min(rate, this.tokens + ((now - this.last) / 1000) * rate);
      this.last = now;
      if (this.tokens >= n || (this.tokens >= 0 && n > rate)) {
        this.tokens -= n;
        return;
      }
      await sleep(Math.max(5, ((n - this.tokens) / rate) * 1000));
    }
  }
}

/** Full-jitter exponential backoff: a random wait in [0, min(cap, base·2^attempt)). */
export function fullJitter(attempt: number, baseMs = 50, capMs = 5_000): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}
