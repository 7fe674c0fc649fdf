/**
 * `capture.json` in a migration's staging folder: where its change capture
 * started, on which binlog history, and since when the stream holds every
 * change from that start. Written by captureStart, read by capture (history
 * check) and apply (retention check).
 */
import type { Staging } from '../bulk/model.js';
import type { BinlogPosition } from './events.js';
import type { BinlogHistory } from './history.js';

export const captureStartKey = (stage: Pick<Staging, 'root'>): string => `${stage.root}/capture.json`;

/** `capture.json` in the staging folder: where and on which binlog history this migration's capture started. */
export interface RecordedStart {
  start: BinlogPosition;
  recordedAt: string;
  /** Absent in a start recorded before ferry kept it: then there is nothing to compare with. */
  history?: BinlogHistory;
  /** When capture last began shipping every change from `start` (absent: `recordedAt`); the stream holds them all from then on, within its retention. */
  shippingSince?: string;
}

