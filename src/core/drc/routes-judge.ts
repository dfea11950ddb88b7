// DRC's illegal-write report judged by the routing table (GZS, `_ezctl.gz_routes`), as it was at
// each point of the source's binlog. publishRoutes writes the cluster's row with sql_log_bin ON,
// so the reader of a zone sees every version that zone took, in commit order among its writes: a
// transaction committed at the source before a version is judged by the one before (legal even
// when applied after), one committed after it by it. The row itself is never applied at the
// target (`_ezctl` is not replicated).
//
// Where a direction starts: the version stored with its checkpoint (the source's binlog there),
// its document from the source's gz_routes_log, until the reader reaches the position the source's
// current row was read at; without one (a checkpoint set by hand, or older), the current row: the
// transactions between the checkpoint and the session start are then judged by the current version.
// Without any row: version 0, from the topology file (writerZone, shards).
//
// A version whose missedBy names a zone (published while it was down, `gz move
// --force-dead-source`) never reaches that zone's binlog: it applies to that zone's writes from
// the moment the daemon sees it in any zone (another direction's stream, or the target's row at a
// session start): the board below.
import { STATE_SCHEMA } from '../state/schema.js';
import { parseRoutesDoc, routeOf, ROUTES_TABLE, type Routes } from '../routes/index.js';

/** The cluster's routes in a binlog change of `_ezctl.gz_routes` (its version column is the authority), if it is one; a document that does not parse is none. */
export function routesFromChange(c: { schema: string; table: string; after?: Record<string, unknown> | null }, cluster: string): Routes | undefined {
  if (c.schema !== STATE_SCHEMA || c.table !== ROUTES_TABLE || !c.after) return undefined;
  const text = (v: unknown) => (Buffer.isBuffer(v) ? v.toString('utf8') : v === null || v === undefined ? '' : String(v));
  if (text(c.after.cluster) !== cluster) return undefined;
  const version = Number(text(c.after.version));
  if (!Number.isSafeInteger(version)) return undefined;
  try {
    const r = parseRoutesDoc(text(c.after.doc), version);
    return r.cluster === cluster ? r : undefined;
  } catch {
    return undefined;
  }
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
 * blocked one. Global: a write at a zone other than the write zone. A global route's 'blocked'
 * does not make the write zone's own commits illegal: a switch blocks them at the server (the DB
 * block is the fence); the commits of clients that do not follow the table, made between the
 * blocked version and that block, are drained and acknowledged, not strays.
 * `_ezctl` (DRC's heartbeat) is never judged. A sharding document without tables falls back to
 * the topology file's shard tables.
 */
export function judgeWrite(r: Routes, sourceZone: string, schema: string, table: string, row: Record<string, unknown>, fileTables: Record<string, string>): Judgement | undefined {
  if (schema === STATE_SCHEMA) return undefined;
  if (r.model === 'global') {
    if (r.writeZone !== sourceZone) return { shardId: null, ownerZone: r.writeZone, why: 'not-write-zone' };
    return undefined;
  }
  const tables = Object.keys(r.tables).length ? r.tables : fileTables;
  const column = tables[`${schema}.${table}`];
  if (!column) return undefined;
  const raw = row[column];
  const shardId = raw === null || raw === undefined ? null : Number(raw);
  const route = shardId === null || !Number.isFinite(shardId) ? undefined : routeOf(r, shardId);
  if (!route) return { shardId, ownerZone: null, why: 'no-owner' };
  if (route.zone !== sourceZone) return { shardId, ownerZone: route.zone, why: 'owner' };
  if (route.state === 'blocked') return { shardId, ownerZone: route.zone, why: 'blocked' };
  return undefined;
}

/**
 * What the daemon has seen of the cluster's routes in any zone: per zone, the highest version
 * whose missedBy names it (it judges that zone's writes from now on, though its binlog never has it).
 */
export class RoutesBoard {
  private readonly missed = new Map<string, Routes>();
  private highest: Routes | undefined;

  seen(doc: Routes): void {
    if (!this.highest || doc.version > this.highest.version) this.highest = doc;
    for (const z of doc.missedBy) {
      const had = this.missed.get(z);
      if (!had || doc.version > had.version) this.missed.set(z, doc);
    }
  }

  /** The newest version published while `zone` was down, if any. */
  missedFor(zone: string): Routes | undefined {
    return this.missed.get(zone);
  }

  /** The highest version seen anywhere (status). */
  get newest(): Routes | undefined {
    return this.highest;
  }
}

/** The routes a direction judges by: its stream's, or a newer one its source missed. */
export function effectiveRoutes(stream: Routes, board: RoutesBoard | undefined, sourceZone: string): { routes: Routes; missed: boolean } {
  const m = board?.missedFor(sourceZone);
  return m && m.version > stream.version ? { routes: m, missed: true } : { routes: stream, missed: false };
}
