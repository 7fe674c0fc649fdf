/** Every workflow the worker registers. Deterministic code only: see STYLE.md. */
export { smoke } from './smoke.js';
