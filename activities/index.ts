/** Every activity the worker registers, grouped by stage. */
export * from './smoke.js';
