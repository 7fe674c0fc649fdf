/**
 * The changes capture saw last, kept for the cutover's check: inside the
 * freeze, after the drain, every item they touched is compared between the
 * source and the target (activities/cutover.ts). Capture writes the list to
 * the staging folder when it reaches the freeze's stop position, before its
 * end markers, so a drained freeze always finds it. Pure code.
 */
import type { Staging } from '../bulk/model.js';
import type { BinlogPosition, EventRow } from './events.js';

export interface RecentChange {
  /** `schema.table` */
  table: string;
  before?: EventRow;
  after?: EventRow;
}

export interface RecentChanges {
  stopAt: BinlogPosition;
  windowMs: number;
  /**
   * How far back before the stop the list reaches, in ms: the window, or less when capture (re)started inside
   * it or the list reached its cap; what lies before it was not checked.
   */
  coveredMs: number;
  changes: RecentChange[];
}

/** Where a run's list goes: one per workflow run, beside its staged files. */
export function recentChangesKey(stage: Staging, runId: string): string {
  return `${stage.root}/cutover/${runId}/recent-changes.json`;
}

/** Changes seen in the last `windowMs`, at most `cap` of them: older ones fall out as new ones come in. */
export class RecentWindow {
  private entries: { at: number; change: RecentChange }[] = [];
  private head = 0;
  /** When the oldest change the cap pushed out was seen. */
  private cappedAt: number | undefined;

  constructor(
    readonly windowMs: number,
    private readonly startedAt: number,
    private readonly cap = 200_000,
  ) {}

  add(change: RecentChange, at: number): void {
    this.entries.push({ at, change });
    if (this.entries.length - this.head > this.cap) this.cappedAt = this.entries[this.head++]!.at;
    if (this.head > 10_000 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Forgets what is older than the window at `now`. */
  prune(now: number): void {
    while (this.head < this.entries.length && this.entries[this.head]!.at < now - this.windowMs) this.head++;
  }

  snapshot(now: number, stopAt: BinlogPosition): RecentChanges {
    this.prune(now);
    const from = Math.max(this.startedAt, now - this.windowMs, this.cappedAt !== undefined && this.cappedAt >= now - this.windowMs ? this.cappedAt + 1 : -Infinity);
    return { stopAt, windowMs: this.windowMs, coveredMs: Math.max(0, now - from), changes: this.entries.slice(this.head).map((e) => e.change) };
  }
}
