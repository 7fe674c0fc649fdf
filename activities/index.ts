/** Every activity the worker registers, grouped by stage. */
export * from './smoke.js';
export { preflight } from './preflight.js';
export { planPartitions } from './plan.js';
export { exportPartition } from './export.js';
export { transformPartition } from './transform.js';
export { loadPartition, readManifest } from './load.js';
export { captureChanges, captureStart, cleanUpCapture, currentBinlogPosition } from './capture.js';
export { applyChanges, listShards } from './apply.js';
export { countItems, verifyPartition } from './verify.js';
export { awaitLag, freezeAndFlip, measureLag } from './cutover.js';
