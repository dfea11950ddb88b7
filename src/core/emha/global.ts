// emha in a global cluster (`model: global`): one zone takes every write, and every zone's proxy
// routes its write listener to that zone's master (the other zones' proxies through a cross-zone
// slot). A master switch or failover of the write zone therefore moves the write route of every
// zone's proxy, not only its own zone's; one of another zone moves only that zone's read pool (its
// proxy keeps writing to the write zone's master). The write zone is the routing table's (GZS) when
// one was published, else the topology file's writerZone.
import type { Ctx } from '../context.js';
import type { Topology } from '../config/load.js';
import { readRoutes, type RouteState } from '../routes/index.js';

export interface GlobalWriteZone {
  /** the zone taking every write */
  writeZone: string;
  /** where it was read: the routing table (a published version) or the topology file (writerZone) */
  from: 'routes' | 'file';
  /** the routing table's version (0: none published, the file's) */
  version: number;
  /** 'blocked': a gz switch is between its block and its flip (or died there) */
  state: RouteState;
  /** zones whose routing table could not be read */
  unreachable: string[];
}

/**
 * The write zone of a global cluster, or null for a sharding cluster. The routing table's highest
 * version wins over the file (a gz switch writes the table first, the file after it); zones that
 * do not answer (a dead master) are left out and named.
 */
export async function globalWriteZone(ctx: Ctx, topo: Topology, cluster: string, o: { timeoutMs?: number } = {}): Promise<GlobalWriteZone | null> {
  if (topo.cluster(cluster).config.model !== 'global') return null;
  const r = await readRoutes(ctx, topo, cluster, { timeoutMs: o.timeoutMs ?? 3000 });
  const writeZone = r.routes.model === 'global' ? r.routes.writeZone : null;
  const fileZone = topo.cluster(cluster).config.writerZone ?? null;
  const zone = writeZone ?? fileZone;
  if (zone === null) return null;
  return { writeZone: zone, from: r.routes.version > 0 && writeZone !== null ? 'routes' : 'file', version: r.routes.version, state: r.routes.state, unreachable: r.unreachable };
}

/**
 * The zones whose proxy routes writes to `zone`'s master, so follows it when it changes: the zone
 * itself in a sharding cluster; in a global cluster every zone with a proxy when `zone` is the
 * write zone, none when it is not (its proxy writes to the write zone's master). Pure.
 */
export function writeRouteZones(topo: Topology, cluster: string, zone: string, g: Pick<GlobalWriteZone, 'writeZone'> | null): string[] {
  if (!g) return [zone];
  if (g.writeZone !== zone) return [];
  const zones = topo.zonesOf(cluster).filter((z) => topo.cluster(cluster).config.zones[z]?.proxy);
  // the zone's own proxy first: most of the write traffic is local to the write zone
  return [zone, ...zones.filter((z) => z !== zone)];
}

/** "write zone bj (routing table v3)" / "write zone bj (the topology file's writerZone)" */
export function describeWriteZone(g: GlobalWriteZone): string {
  return `write zone ${g.writeZone} (${g.from === 'routes' ? `routing table v${g.version}` : "the topology file's writerZone"})`;
}
