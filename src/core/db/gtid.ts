// GTID positions for both flavors.
//  MariaDB: "domain-server-seq" per domain, comma separated ("0-1-100,1-2-5"). Within a domain
//           sequence numbers grow monotonically, so a position covers another when, for every
//           domain of the other, its seq is at least as large (the server id does not matter).
//  MySQL:   "uuid:1-5:7,uuid2:1-3": sets of intervals per source uuid; covering is set inclusion.
export type Flavor = 'mariadb' | 'mysql';

export interface MariaGtid { domain: number; server: number; seq: bigint }
export type MariaPos = Map<number, MariaGtid>;
export type MysqlSet = Map<string, Array<[bigint, bigint]>>;

export function parseMariaPos(s: string | null | undefined): MariaPos {
  const out: MariaPos = new Map();
  for (const part of (s ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(part);
    if (!m) throw new Error(`${JSON.stringify(part)} is not a MariaDB GTID (domain-server-seq)`);
    const g: MariaGtid = { domain: Number(m[1]), server: Number(m[2]), seq: BigInt(m[3]!) };
    const prev = out.get(g.domain);
    if (prev && prev.seq >= g.seq) continue;
    out.set(g.domain, g);
  }
  return out;
}

export function formatMariaPos(p: MariaPos): string {
  return [...p.values()].sort((a, b) => a.domain - b.domain).map((g) => `${g.domain}-${g.server}-${g.seq}`).join(',');
}

/** a has everything b has. */
export function mariaCovers(a: MariaPos, b: MariaPos): boolean {
  for (const [d, g] of b) {
    const x = a.get(d);
    if (!x || x.seq < g.seq) return false;
  }
  return true;
}

/** How many transactions b is ahead of a, summed over domains (0 when a covers b). */
export function mariaBehind(a: MariaPos, b: MariaPos): bigint {
  let n = 0n;
  for (const [d, g] of b) {
    const x = a.get(d)?.seq ?? 0n;
    if (g.seq > x) n += g.seq - x;
  }
  return n;
}

function normalizeIntervals(list: Array<[bigint, bigint]>): Array<[bigint, bigint]> {
  const sorted = [...list].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Array<[bigint, bigint]> = [];
  for (const [lo, hi] of sorted) {
    const last = out.at(-1);
    if (last && lo <= last[1] + 1n) last[1] = hi > last[1] ? hi : last[1];
    else out.push([lo, hi]);
  }
  return out;
}

export function parseMysqlSet(s: string | null | undefined): MysqlSet {
  const out: MysqlSet = new Map();
  const text = (s ?? '').replace(/\s+/g, '');
  for (const part of text.split(',').filter(Boolean)) {
    const [uuidRaw, ...ranges] = part.split(':');
    const uuid = (uuidRaw ?? '').toLowerCase();
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid) || ranges.length === 0) {
      throw new Error(`${JSON.stringify(part)} is not a MySQL GTID set element (uuid:1-5)`);
    }
    const list = out.get(uuid) ?? [];
    for (const r of ranges) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(r);
      if (!m) throw new Error(`${JSON.stringify(r)} is not an interval in ${JSON.stringify(part)}`);
      const lo = BigInt(m[1]!);
      const hi = m[2] ? BigInt(m[2]) : lo;
      if (hi < lo) throw new Error(`interval ${r} ends before it starts`);
      // Transaction numbers start at 1: the server itself refuses "uuid:0".
      if (lo < 1n) throw new Error(`interval ${r} starts at 0 (transaction numbers start at 1)`);
      list.push([lo, hi]);
    }
    out.set(uuid, normalizeIntervals(list));
  }
  return out;
}

export function formatMysqlSet(s: MysqlSet): string {
  return [...s.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([u, iv]) => `${u}:${iv.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(':')}`)
    .join(',');
}

export function mysqlCovers(a: MysqlSet, b: MysqlSet): boolean {
  for (const [u, ivs] of b) {
    const have = a.get(u) ?? [];
    for (const [lo, hi] of ivs) {
      if (!have.some(([x, y]) => x <= lo && hi <= y)) return false;
    }
  }
  return true;
}

export function mysqlBehind(a: MysqlSet, b: MysqlSet): bigint {
  let n = 0n;
  for (const [u, ivs] of b) {
    const have = a.get(u) ?? [];
    for (const [lo, hi] of ivs) {
      let missing = hi - lo + 1n;
      for (const [x, y] of have) {
        const l = x > lo ? x : lo;
        const h = y < hi ? y : hi;
        if (h >= l) missing -= h - l + 1n;
      }
      n += missing;
    }
  }
  return n;
}

/** Flavor-neutral: does position `a` include everything in `b`? */
export function gtidCovers(flavor: Flavor, a: string, b: string): boolean {
  return flavor === 'mariadb' ? mariaCovers(parseMariaPos(a), parseMariaPos(b)) : mysqlCovers(parseMysqlSet(a), parseMysqlSet(b));
}

export function gtidBehind(flavor: Flavor, a: string, b: string): bigint {
  return flavor === 'mariadb' ? mariaBehind(parseMariaPos(a), parseMariaPos(b)) : mysqlBehind(parseMysqlSet(a), parseMysqlSet(b));
}
