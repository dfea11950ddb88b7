// DRC's illegal-write report judged by the routing table (GZS, `_ezctl.gz_routes`), as it was at
// each point of the source's binlog. publishRoutes writes the cluster's row with sql_log_bin ON,
// so the reader of a zone sees every version that zone took, in commit order among its writes: a
// transaction committed at the source before a version is judged by the one before (legal even
// when applied after), one committed after it by it. The row itself is never applied at the
// target (`_ezctl` is not replicated).
//
// Where a direction starts: the source master's current row (its row at the checkpoint position
// is not known): transactions between the checkpoint and the session start are judged by the
// current version, a limit of a restart across a publish. Without any row: version 0, from the
// topology file (writerZone, shards).
//
// A version whose missedBy names a zone (published while it was down, `gz move
// --force-dead-source`) never reaches that zone's binlog: it applies to that zone's writes from
// the moment the daemon sees it in any zone (another direction's stream, or the target's row at a
// session start): the board below.
import type { Topology } from '../config/load.js';
import { STATE_SCHEMA } from '../state/schema.js';

/** The routing table's document (contract R1 `Routes`): the fields DRC judges by. */
export interface RoutesDoc {
  cluster: string;
  model: 'global' | 'sharding';
  version: number;
  writeZone: string | null;
  state: 'active' | 'blocked';
  shards: Array<{ from: number; to: number; zone: string; state: 'active' | 'blocked' }>;
  tables: Record<string, string>;
  missedBy: string[];
}

export const ROUTES_TABLE = 'gz_routes';

/** Version 0: what the topology file says (never published). */
export function fileRoutes(topo: Topology, cluster: string): RoutesDoc {
  const c = topo.cluster(cluster).config;
  const shards: RoutesDoc['shards'] = [];
  if (c.model !== 'global' && c.shards) {
    const owner = new Map<number, string>();
    for (const [zone, ids] of Object.entries(c.shards.zones)) for (const id of ids) owner.set(id, zone);
    for (const id of [...owner.keys()].sort((a, b) => a - b)) {
      const zone = owner.get(id)!;
      const last = shards.at(-1);
      if (last && last.zone === zone && last.to === id - 1) last.to = id;
      else shards.push({ from: id, to: id, zone, state: 'active' });
    }
  }
  return {
    cluster,
    model: c.model === 'global' ? 'global' : 'sharding',
    version: 0,
    writeZone: c.model === 'global' ? c.writerZone ?? null : null,
    state: 'active',
    shards,
    tables: c.model === 'global' ? {} : { ...(c.shards?.tables ?? {}) },
    missedBy: [],
  };
}

/** A routes document from a row's `doc` (a binlog image or a SELECT), or undefined when it is not one. */
export function parseRoutesDoc(doc: unknown, cluster: string): RoutesDoc | undefined {
  let v: unknown = doc;
  try {
    if (Buffer.isBuffer(v)) v = v.toString('utf8');
    if (typeof v === 'string') v = JSON.parse(v);
  } catch {
    return undefined;
  }
  const d = v as Partial<RoutesDoc> | null;
  if (!d || typeof d !== 'object' || d.cluster !== cluster || typeof d.version !== 'number' || (d.model !== 'global' && d.model !== 'sharding')) return undefined;
  return {
    cluster,
    model: d.model,
    version: d.version,
    writeZone: typeof d.writeZone === 'string' ? d.writeZone : null,
    state: d.state === 'blocked' ? 'blocked' : 'active',
    shards: Array.isArray(d.shards) ? d.shards.filter((s) => s && Number.isFinite(s.from) && Number.isFinite(s.to) && typeof s.zone === 'string').map((s) => ({ from: s.from, to: s.to, zone: s.zone, state: s.state === 'blocked' ? 'blocked' : 'active' })) : [],
    tables: d.tables && typeof d.tables === 'object' ? { ...d.tables } : {},
    missedBy: Array.isArray(d.missedBy) ? d.missedBy.filter((z): z is string => typeof z === 'string') : [],
  };
}

/** The routes of the cluster's row in a binlog change of `_ezctl.gz_routes`, if it is one. */
export function routesFromChange(c: { schema: string; table: string; after?: Record<string, unknown> | null }, cluster: string): RoutesDoc | undefined {
  if (c.schema !== STATE_SCHEMA || c.table !== ROUTES_TABLE || !c.after) return undefined;
  const name = c.after.cluster;
  if ((Buffer.isBuffer(name) ? name.toString('utf8') : name) !== cluster) return undefined;
  return parseRoutesDoc(c.after.doc, cluster);
}

export type IllegalWhy = 'owner' | 'blocked' | 'not-write-zone' | 'no-owner';

export interface Judgement {
  shardId: number | null;
  /** the zone the write belonged to (a global cluster's write zone) */
  ownerZone: string | null;
  why: IllegalWhy;
}

/**
 * Whether a row change committed at `sourceZone` under these routes is illegal (undefined: legal,
 * or a table the routes do not cover). Sharding: a write to a shard another zone owns, or a
 * blocked one. Global: a write at a zone other than the write zone, or while it is blocked.
 * `_ezctl` (DRC's heartbeat) is never judged. A sharding document without tables falls back to
 * the topology file's shard tables.
 */
export function judgeWrite(r: RoutesDoc, sourceZone: string, schema: string, table: string, row: Record<string, unknown>, fileTables: Record<string, string>): Judgement | undefined {
  if (schema === STATE_SCHEMA) return undefined;
  if (r.model === 'global') {
    if (r.writeZone !== sourceZone) return { shardId: null, ownerZone: r.writeZone, why: 'not-write-zone' };
    if (r.state === 'blocked') return { shardId: null, ownerZone: r.writeZone, why: 'blocked' };
    return undefined;
  }
  const tables = Object.keys(r.tables).length ? r.tables : fileTables;
  const column = tables[`${schema}.${table}`];
  if (!column) return undefined;
  const raw = row[column];
  const shardId = raw === null || raw === undefined ? null : Number(raw);
  const range = shardId === null ? undefined : r.shards.find((s) => shardId >= s.from && shardId <= s.to);
  if (!range) return { shardId, ownerZone: null, why: 'no-owner' };
  if (range.zone !== sourceZone) return { shardId, ownerZone: range.zone, why: 'owner' };
  if (range.state === 'blocked') return { shardId, ownerZone: range.zone, why: 'blocked' };
  return undefined;
}

/**
 * What the daemon has seen of the cluster's routes in any zone: per zone, the highest version
 * whose missedBy names it (it judges that zone's writes from now on, though its binlog never has it).
 */
export class RoutesBoard {
  private readonly missed = new Map<string, RoutesDoc>();
  private highest: RoutesDoc | undefined;

  seen(doc: RoutesDoc): void {
    if (!this.highest || doc.version > this.highest.version) this.highest = doc;
    for (const z of doc.missedBy) {
      const had = this.missed.get(z);
      if (!had || doc.version > had.version) this.missed.set(z, doc);
    }
  }

  /** The newest version published while `zone` was down, if any. */
  missedFor(zone: string): RoutesDoc | undefined {
    return this.missed.get(zone);
  }

  /** The highest version seen anywhere (status). */
  get newest(): RoutesDoc | undefined {
    return this.highest;
  }
}

/** The routes a direction judges by: its stream's, or a newer one its source missed. */
export function effectiveRoutes(stream: RoutesDoc, board: RoutesBoard | undefined, sourceZone: string): { routes: RoutesDoc; missed: boolean } {
  const m = board?.missedFor(sourceZone);
  return m && m.version > stream.version ? { routes: m, missed: true } : { routes: stream, missed: false };
}
