/**
 * Change versions assume one binlog history: a version is the binlog file's
 * sequence and the event's offset (src/capture/events.ts eventVersion), so
 * after a failover to another server or a `RESET MASTER` new changes would
 * compare as older than those already applied and be dropped as stale. The
 * source's identity and GTID state are recorded when capture starts and
 * compared whenever capture (re)connects; a different history stops capture
 * with what happened, instead of dropping changes.
 */
import type { MysqlConnection } from '../mysql.js';

export interface BinlogHistory {
  /** @@server_id of the server whose binlog capture reads. */
  serverId: string;
  /** MySQL's @@server_uuid (MariaDB has none). */
  serverUuid?: string;
  /** The GTIDs in the binlog: MariaDB's @@gtid_binlog_pos, MySQL's @@gtid_executed; empty without GTIDs. */
  gtid: string;
}

export async function readBinlogHistory(db: MysqlConnection): Promise<BinlogHistory> {
  const [rows] = (await db.query(
    "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('server_id', 'server_uuid', 'gtid_binlog_pos', 'gtid_executed')",
  )) as unknown as [{ Variable_name: string; Value: string }[]];
  const v = new Map(rows.map((r) => [r.Variable_name.toLowerCase(), String(r.Value ?? '')]));
  return { serverId: v.get('server_id') ?? '', ...(v.get('server_uuid') ? { serverUuid: v.get('server_uuid') } : {}), gtid: v.get('gtid_binlog_pos') ?? v.get('gtid_executed') ?? '' };
}

/**
 * The highest transaction number per GTID source: MariaDB `domain-server-seq` (per domain: its sequence
 * runs on across server ids) or MySQL `uuid:1-100:102-200` (per uuid: the end of its last interval).
 */
export function gtidHighWater(gtid: string): Map<string, bigint> {
  const high = new Map<string, bigint>();
  for (const part of gtid.replace(/\s+/g, '').split(',').filter(Boolean)) {
    const maria = /^(\d+)-(\d+)-(\d+)$/.exec(part);
    if (maria) {
      const seq = BigInt(maria[3]!);
      if (seq > (high.get(`domain ${maria[1]}`) ?? -1n)) high.set(`domain ${maria[1]}`, seq);
      continue;
    }
    const [uuid, ...intervals] = part.split(':');
    const ends = intervals.map((i) => BigInt(i.split('-').at(-1)!));
    if (uuid && ends.length) high.set(uuid.toLowerCase(), ends.reduce((a, b) => (b > a ? b : a)));
  }
  return high;
}

/** Why `current` is not the history capture started on (`recorded`), or undefined when it is. */
export function historyProblem(recorded: BinlogHistory, current: BinlogHistory): string | undefined {
  if (recorded.serverId !== current.serverId || (recorded.serverUuid && current.serverUuid && recorded.serverUuid !== current.serverUuid)) {
    const who = (h: BinlogHistory) => `server_id ${h.serverId}${h.serverUuid ? ` (server_uuid ${h.serverUuid})` : ''}`;
    return `the source is now ${who(current)}, but capture started on ${who(recorded)}: a failover or another server, whose binlog is another history`;
  }
  const now = gtidHighWater(current.gtid);
  for (const [source, seq] of gtidHighWater(recorded.gtid)) {
    const at = now.get(source);
    if (at === undefined || at < seq) {
      return `the source's binlog went back: GTID ${source} was at ${seq} when capture started and is now at ${at ?? 'nothing'} (RESET MASTER, or a restore)`;
    }
  }
  return undefined;
}
