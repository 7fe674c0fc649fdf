export { smoke } from './smoke.js';
export { migrateToDynamo } from './migrateToDynamo.js';
export { replayChanges } from './replayChanges.js';
export { verifyMigration } from './verifyMigration.js';
