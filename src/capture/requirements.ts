/**
 * What change capture needs from the source and the stream, checked before
 * anything moves. Pure functions over what preflight reads, so each refusal is
 * unit-testable and names the setting and the fix.
 */

export interface BinlogSettings {
  /** @@log_bin: 1/ON when the server writes a binlog. */
  logBin: string | number;
  binlogFormat: string;
  binlogRowImage: string;
  /** SHOW GRANTS lines of the connecting user. */
  grants: string[];
  /** The user as the server sees it, for the GRANT statement in the message. */
  user: string;
}

const on = (value: string | number) => value === 1 || value === '1' || String(value).toUpperCase() === 'ON';

/** Privileges granted on *.* (global), upper-cased; ALL PRIVILEGES counts as every one. */
function globalPrivileges(grants: string[]): Set<string> | 'all' {
  const privileges = new Set<string>();
  for (const line of grants) {
    const m = /^GRANT\s+(.+?)\s+ON\s+\*\.\*\s+TO\s/i.exec(line.trim());
    if (!m) continue;
    if (/^ALL( PRIVILEGES)?$/i.test(m[1]!.trim())) return 'all';
    for (const p of m[1]!.split(',')) privileges.add(p.trim().toUpperCase());
  }
  return privileges;
}

/** Every reason the binlog cannot feed change capture; empty when it can. */
export function binlogProblems(s: BinlogSettings): string[] {
  const problems: string[] = [];
  if (!on(s.logBin)) {
    problems.push('log_bin is OFF: the server writes no binlog to capture changes from. Start it with --log-bin (a restart is needed)');
  }
  if (String(s.binlogFormat).toUpperCase() !== 'ROW') {
    problems.push(`binlog_format is ${s.binlogFormat}, not ROW: statements cannot be turned into row changes. Set binlog_format=ROW (SET GLOBAL binlog_format = 'ROW' and in the server's configuration)`);
  }
  if (String(s.binlogRowImage).toUpperCase() !== 'FULL') {
    problems.push(`binlog_row_image is ${s.binlogRowImage}, not FULL: updates would lack whole before/after rows. Set binlog_row_image=FULL (SET GLOBAL binlog_row_image = 'FULL' and in the server's configuration)`);
  }
  const granted = globalPrivileges(s.grants);
  if (granted !== 'all') {
    const missing: string[] = [];
    if (!granted.has('REPLICATION SLAVE') && !granted.has('REPLICATION REPLICA')) missing.push('REPLICATION SLAVE');
    if (!['BINLOG MONITOR', 'REPLICATION CLIENT', 'SUPER'].some((p) => granted.has(p))) missing.push('BINLOG MONITOR');
    if (missing.length) {
      problems.push(
        `user ${s.user} lacks ${missing.join(' and ')} (to read the binlog and its position): ` +
          `GRANT ${missing.join(', ')} ON *.* TO ${s.user} (on MySQL: REPLICATION SLAVE, REPLICATION CLIENT)`,
      );
    }
  }
  return problems;
}

/** Hours a stream's retention is raised to when the spec allows it: twice the expected bulk duration, at least a day. */
export function retentionTarget(expectedBulkHours: number): number {
  return Math.min(8760, Math.max(24, Math.ceil(expectedBulkHours * 2)));
}

/**
 * Captured changes wait in the stream until the bulk copy of their table ends;
 * a retention shorter than the bulk would drop them before they are applied.
 */
export function retentionProblem(stream: string, retentionHours: number, expectedBulkHours: number): string | undefined {
  if (retentionHours >= expectedBulkHours) return undefined;
  const target = retentionTarget(expectedBulkHours);
  return (
    `Kinesis stream ${stream} keeps records for ${retentionHours} h, less than the ${expectedBulkHours} h the bulk copy is expected to take (spec.capture.expectedBulkHours): ` +
    `changes captured early would expire before they are applied. Set spec.capture.raiseRetention to true and ferry raises it to ${target} h, ` +
    `or run: aws kinesis increase-stream-retention-period --stream-name ${stream} --retention-period-hours ${target}`
  );
}
