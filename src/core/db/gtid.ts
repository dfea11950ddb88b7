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

// ---- differences: what one side has that the other lacks ------------------------------------

/**
 * GTIDs named by a difference, for people and for counting.
 *  text:  MariaDB "domain-server-seq" for one transaction, "domain-server-lo..hi" for a run
 *         (the server is the one of the last GTID of the run: a position keeps no other);
 *         MySQL "uuid:lo-hi:n" (the usual GTID set notation), one element per source uuid.
 *  count: how many transactions (for MariaDB state entries, see mariaStateExtra: at least that many).
 */
export interface GtidDifference { text: string[]; count: bigint; empty: boolean }

/** Every GTID of a MariaDB list as written, one per (domain, server) when it is a gtid_binlog_state. */
export function parseMariaList(s: string | null | undefined): MariaGtid[] {
  const out: MariaGtid[] = [];
  for (const part of (s ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(part);
    if (!m) throw new Error(`${JSON.stringify(part)} is not a MariaDB GTID (domain-server-seq)`);
    out.push({ domain: Number(m[1]), server: Number(m[2]), seq: BigInt(m[3]!) });
  }
  return out;
}

/** Per domain the higher of two positions (what a server holds across gtid_slave_pos and gtid_binlog_pos). */
export function mariaMerge(...positions: Array<string | null | undefined>): string {
  const out: MariaPos = new Map();
  for (const p of positions) {
    for (const g of parseMariaPos(p).values()) {
      const prev = out.get(g.domain);
      if (!prev || prev.seq < g.seq) out.set(g.domain, g);
    }
  }
  return formatMariaPos(out);
}

/** MariaDB: per domain, the seqs of a past b's (the whole domain from 1 when b has none of it). */
export function mariaDifference(a: MariaPos, b: MariaPos): GtidDifference {
  const text: string[] = [];
  let count = 0n;
  for (const g of [...a.values()].sort((x, y) => x.domain - y.domain)) {
    const from = (b.get(g.domain)?.seq ?? 0n) + 1n;
    if (g.seq < from) continue;
    text.push(from === g.seq ? `${g.domain}-${g.server}-${g.seq}` : `${g.domain}-${g.server}-${from}..${g.seq}`);
    count += g.seq - from + 1n;
  }
  return { text, count, empty: count === 0n };
}

/** MySQL: the set difference a − b. */
export function mysqlDifference(a: MysqlSet, b: MysqlSet): GtidDifference {
  const out: MysqlSet = new Map();
  let count = 0n;
  for (const [u, ivs] of a) {
    let rest: Array<[bigint, bigint]> = ivs.map(([lo, hi]) => [lo, hi]);
    for (const [x, y] of b.get(u) ?? []) {
      const next: Array<[bigint, bigint]> = [];
      for (const [lo, hi] of rest) {
        if (y < lo || x > hi) {
          next.push([lo, hi]);
          continue;
        }
        if (lo < x) next.push([lo, x - 1n]);
        if (hi > y) next.push([y + 1n, hi]);
      }
      rest = next;
    }
    if (rest.length) {
      out.set(u, rest);
      for (const [lo, hi] of rest) count += hi - lo + 1n;
    }
  }
  const formatted = formatMysqlSet(out);
  return { text: formatted ? formatted.split(',') : [], count, empty: count === 0n };
}

/** Flavor-neutral difference of two positions (MariaDB) or GTID sets (MySQL): what `a` has that `b` lacks. */
export function gtidDifference(flavor: Flavor, a: string, b: string): GtidDifference {
  return flavor === 'mariadb' ? mariaDifference(parseMariaPos(a), parseMariaPos(b)) : mysqlDifference(parseMysqlSet(a), parseMysqlSet(b));
}

/**
 * MariaDB gtid_binlog_state entries (one per domain and server) of `a` that `b`'s state shows it
 * never had: b's last GTID of that server in that domain is older, or b has none. Catches a
 * transaction a wrote in a domain whose position b has since passed with other transactions (a
 * position-only comparison no longer sees it). Skips entries past `bPos` in their domain: the
 * position difference names those already. Each entry stands for at least one transaction.
 */
export function mariaStateExtra(aState: string, bState: string, bPos: string): GtidDifference {
  const bHas = new Map<string, bigint>();
  for (const g of parseMariaList(bState)) {
    const k = `${g.domain}-${g.server}`;
    const prev = bHas.get(k);
    if (prev === undefined || prev < g.seq) bHas.set(k, g.seq);
  }
  const reach = parseMariaPos(bPos);
  const text: string[] = [];
  for (const g of parseMariaList(aState).sort((x, y) => x.domain - y.domain || x.server - y.server)) {
    const top = reach.get(g.domain)?.seq ?? 0n;
    if (g.seq > top) continue;
    const had = bHas.get(`${g.domain}-${g.server}`);
    if (had === undefined || had < g.seq) text.push(`${g.domain}-${g.server}-${g.seq}`);
  }
  return { text, count: BigInt(text.length), empty: text.length === 0 };
}
