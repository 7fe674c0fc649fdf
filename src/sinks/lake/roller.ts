/**
 * When a table's open change file closes: after an interval since its first
 * change arrived (default 60 s) or at a size (default 32 MB), whichever comes
 * first, as DMS's CdcMaxBatchInterval and CdcMinFileSize do, so a busy table
 * does not make one tiny file per second and a quiet one still lands its
 * changes within the interval. Sizes are of the changes' JSON, a stand-in for
 * the file's bytes (Parquet compresses them several times over). Pure code.
 */
import type { ChangeEvent } from '../../capture/events.js';

export interface RollPolicy {
  intervalMs: number;
  maxBytes: number;
}

export const DEFAULT_ROLL: RollPolicy = { intervalMs: 60_000, maxBytes: 32 * 1024 * 1024 };

interface OpenFile {
  events: ChangeEvent[];
  bytes: number;
  /** When its first change arrived (the landing's clock, ms). */
  openedAt: number;
}

/** Open change files per table; `due` says which to close now. */
export class FileRoller {
  private readonly open = new Map<string, OpenFile>();

  constructor(private readonly policy: RollPolicy = DEFAULT_ROLL) {
    if (!(policy.intervalMs > 0) || !(policy.maxBytes > 0)) throw new Error(`a file interval and size must be positive; got ${policy.intervalMs} ms and ${policy.maxBytes} bytes`);
  }

  /** Adds a change to its table's open file, opening one at `now` if there is none. */
  add(event: ChangeEvent, now: number): void {
    let file = this.open.get(event.table);
    if (!file) this.open.set(event.table, (file = { events: [], bytes: 0, openedAt: now }));
    file.events.push(event);
    file.bytes += JSON.stringify(event).length;
  }

  /** The tables whose file is due at `now` (the interval passed, or the size reached), oldest first. */
  due(now: number): string[] {
    return [...this.open.entries()]
      .filter(([, f]) => now - f.openedAt >= this.policy.intervalMs || f.bytes >= this.policy.maxBytes)
      .sort((a, b) => a[1].openedAt - b[1].openedAt)
      .map(([table]) => table);
  }

  /** Every table with an open file (a stop or a pause lands them all). */
  tables(): string[] {
    return [...this.open.keys()];
  }

  /** Closes `table`'s file and returns its changes, in arrival order. */
  take(table: string): ChangeEvent[] {
    const file = this.open.get(table);
    this.open.delete(table);
    return file?.events ?? [];
  }

  /** When the next file falls due by the interval, or undefined with none open: how long the landing may wait. */
  nextDueAt(): number | undefined {
    const opened = [...this.open.values()].map((f) => f.openedAt);
    return opened.length ? Math.min(...opened) + this.policy.intervalMs : undefined;
  }
}
