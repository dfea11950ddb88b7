// A source position that advances one GTID at a time: what a reader has processed, in the
// server's own notation, so it can be stored as a checkpoint and handed back to resume.
import { formatMariaPos, formatMysqlSet, parseMariaPos, parseMysqlSet, type Flavor, type MariaPos, type MysqlSet } from '../db/gtid.js';

export interface ParsedGtid {
  /** MariaDB domain id; undefined on MySQL */
  domain?: number;
  /** MariaDB server id; undefined on MySQL */
  serverId?: number;
  /** MySQL source uuid; undefined on MariaDB */
  uuid?: string;
  seq: bigint;
}

export function parseGtid(flavor: Flavor, gtid: string): ParsedGtid {
  if (flavor === 'mariadb') {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(gtid);
    if (!m) throw new Error(`${JSON.stringify(gtid)} is not a MariaDB GTID`);
    return { domain: Number(m[1]), serverId: Number(m[2]), seq: BigInt(m[3]!) };
  }
  const i = gtid.lastIndexOf(':');
  if (i < 0 || !/^\d+$/.test(gtid.slice(i + 1))) throw new Error(`${JSON.stringify(gtid)} is not a MySQL GTID`);
  return { uuid: gtid.slice(0, i).toLowerCase(), seq: BigInt(gtid.slice(i + 1)) };
}

export class SourcePosition {
  private maria: MariaPos | undefined;
  private mysql: MysqlSet | undefined;

  constructor(
    readonly flavor: Flavor,
    text: string,
  ) {
    if (flavor === 'mariadb') this.maria = parseMariaPos(text);
    else this.mysql = parseMysqlSet(text);
  }

  /** Record that the transaction `gtid` has been processed. */
  advance(gtid: string): void {
    const g = parseGtid(this.flavor, gtid);
    if (this.maria) {
      const cur = this.maria.get(g.domain!);
      if (!cur || g.seq > cur.seq || cur.server !== g.serverId) this.maria.set(g.domain!, { domain: g.domain!, server: g.serverId!, seq: g.seq });
      return;
    }
    const list = this.mysql!.get(g.uuid!) ?? [];
    list.push([g.seq, g.seq]);
    // re-normalise through the parser's merge
    this.mysql!.set(g.uuid!, parseMysqlSet(`${g.uuid}:${list.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(':')}`).get(g.uuid!)!);
  }

  /**
   * Has `gtid` been processed already (so a replay of it must be skipped)? On MariaDB only a
   * GTID of the same server counts: after a failover sequence numbers can repeat under the new
   * master's server id, and those transactions are new.
   */
  covers(gtid: string): boolean {
    const g = parseGtid(this.flavor, gtid);
    if (this.maria) {
      const cur = this.maria.get(g.domain!);
      return cur !== undefined && cur.server === g.serverId && cur.seq >= g.seq;
    }
    return (this.mysql!.get(g.uuid!) ?? []).some(([lo, hi]) => lo <= g.seq && g.seq <= hi);
  }

  /** MariaDB: the sequence number reached in a domain (0 when none). */
  seqOf(domain: number): bigint {
    return this.maria?.get(domain)?.seq ?? 0n;
  }

  /** MariaDB: the entry of one domain ("d-s-n"), if any. */
  entry(domain: number): string | undefined {
    const g = this.maria?.get(domain);
    return g ? `${g.domain}-${g.server}-${g.seq}` : undefined;
  }

  /** MariaDB: has this position read every domain of `target` up to its sequence number? */
  reaches(target: SourcePosition): boolean {
    return target.domains().every((d) => this.seqOf(d) >= target.seqOf(d));
  }

  /** MariaDB: every domain listed. */
  domains(): number[] {
    return [...(this.maria?.keys() ?? [])];
  }

  clone(): SourcePosition {
    return new SourcePosition(this.flavor, this.toString());
  }

  toString(): string {
    return this.maria ? formatMariaPos(this.maria) : formatMysqlSet(this.mysql!);
  }
}
