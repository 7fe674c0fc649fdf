export { smoke } from './smoke.js';
export { migrateToDynamo } from './migrateToDynamo.js';
