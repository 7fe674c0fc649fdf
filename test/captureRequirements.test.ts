import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binlogProblems, retentionProblem, retentionTarget } from '../src/capture/requirements.js';

const ready = { logBin: 1, binlogFormat: 'ROW', binlogRowImage: 'FULL', grants: ['GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `cdc`@`%`'], user: "'cdc'@'%'" };

test('a binlog ready for capture has no problems; ALL PRIVILEGES and MySQL\'s privilege names count', () => {
  assert.deepEqual(binlogProblems(ready), []);
  assert.deepEqual(binlogProblems({ ...ready, logBin: 'ON', grants: ['GRANT ALL PRIVILEGES ON *.* TO `ferry`@`%` WITH GRANT OPTION'] }), []);
  assert.deepEqual(binlogProblems({ ...ready, grants: ['GRANT SELECT, REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO `cdc`@`%`'] }), []);
});

test('each binlog setting and missing privilege is refused by name, with the fix', () => {
  const problems = binlogProblems({ ...ready, logBin: 0, binlogFormat: 'MIXED', binlogRowImage: 'MINIMAL', grants: ['GRANT SELECT ON *.* TO `cdc`@`%`', 'GRANT ALL PRIVILEGES ON `shop`.* TO `cdc`@`%`'] });
  assert.equal(problems.length, 4);
  assert.match(problems[0]!, /^log_bin is OFF: .*--log-bin/);
  assert.match(problems[1]!, /^binlog_format is MIXED, not ROW: .*SET GLOBAL binlog_format = 'ROW'/);
  assert.match(problems[2]!, /^binlog_row_image is MINIMAL, not FULL: .*SET GLOBAL binlog_row_image = 'FULL'/);
  assert.match(problems[3]!, /^user 'cdc'@'%' lacks REPLICATION SLAVE and BINLOG MONITOR .*GRANT REPLICATION SLAVE, BINLOG MONITOR ON \*\.\* TO 'cdc'@'%'/);
});

test('a stream that keeps records for less than the expected bulk duration is refused, offering the raise', () => {
  assert.equal(retentionProblem('s', 24, 6), undefined);
  assert.equal(retentionProblem('s', 48, 48), undefined);
  assert.match(retentionProblem('cdc-stream', 24, 36) ?? '', /cdc-stream keeps records for 24 h, less than the 36 h .*raiseRetention to true and ferry raises it to 72 h.*--retention-period-hours 72/);
  assert.equal(retentionTarget(1), 24);
  assert.equal(retentionTarget(10_000), 8760);
});
