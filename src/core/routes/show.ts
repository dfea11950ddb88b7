// `ezctl gz routes`: the routing table as the zones hold it (each zone's version, the stale and the
// unreachable ones, whether the topology file agrees, the clients and the version they acknowledged),
// its history, `--sync` (the highest version written to the stale zones, and the owners to the
// file) and `--watch` (a line per version change until interrupted).
import type { Ctx } from '../context.js';
import type { Topology } from '../config/load.js';
import { onInterrupt } from '../signals.js';
import { ExitCode } from '../exit.js';
import { readRoutes, readClients, routesFromTopology, routesHistoryAt, publishAtOutcome, sameRouting, mirrorToFile, describeRoutes, type Routes, type ClientAck, type PublishAtOutcome } from './index.js';
import { RoutesFollower } from './follower.js';

export interface RoutesReport {
  cluster: string;
  routes: Routes;
  zones: Record<string, { version: number | null; error?: string }>;
  stale: string[];
  unreachable: string[];
  /** the topology file names the same owners (write zone, shard ranges) as the table */
  fileAgrees: boolean;
  /** the table as the file describes it (version 0) */
  file: Routes;
  clients: ClientAck[];
}

function clusterOf(topo: Topology, cluster?: string): string {
  return topo.cluster(cluster).name;
}

/** Owners only: the file keeps no blocked state. */
function sameOwners(a: Routes, b: Routes): boolean {
  const owners = (r: Routes) => ({ ...r, state: 'active' as const, shards: r.shards.map((s) => ({ ...s, state: 'active' as const })) });
  const norm = (r: Routes) => {
    const o = owners(r);
    const merged: Routes['shards'] = [];
    for (const s of o.shards) {
      const last = merged.at(-1);
      if (last && last.to + 1 === s.from && last.zone === s.zone) last.to = s.to;
      else merged.push({ ...s });
    }
    return { ...o, shards: merged };
  };
  return sameRouting(norm(a), norm(b));
}

export async function showRoutes(ctx: Ctx, o: { cluster?: string }): Promise<RoutesReport> {
  const topo = await ctx.topology();
  const cluster = clusterOf(topo, o.cluster);
  const [read, clients] = await Promise.all([readRoutes(ctx, topo, cluster), readClients(ctx, topo, cluster)]);
  const file = routesFromTopology(topo, cluster);
  return { cluster, routes: read.routes, zones: read.zones, stale: read.stale, unreachable: read.unreachable, fileAgrees: sameOwners(read.routes, file), file, clients: clients.clients };
}

export interface HistoryReport {
  cluster: string;
  /** newest first, merged over the zones (each version once, with the zones that hold it in their log) */
  versions: Array<Routes & { zones: string[] }>;
  unreachable: string[];
}

export async function routesHistory(ctx: Ctx, o: { cluster?: string; limit?: number }): Promise<HistoryReport> {
  const topo = await ctx.topology();
  const cluster = clusterOf(topo, o.cluster);
  const by = new Map<number, Routes & { zones: string[] }>();
  const unreachable: string[] = [];
  await Promise.all(
    topo.zonesOf(cluster).map(async (zone) => {
      let db;
      try {
        db = await ctx.connect(topo.master(cluster, zone));
        for (const r of await routesHistoryAt(db, cluster, o.limit ?? 50)) {
          const have = by.get(r.version);
          if (have) have.zones.push(zone);
          else by.set(r.version, { ...r, zones: [zone] });
        }
      } catch (e) {
        ctx.log.warn(`zone ${zone}: ${(e as Error).message}`);
        unreachable.push(zone);
      } finally {
        await db?.close();
      }
    }),
  );
  const versions = [...by.values()].sort((a, b) => b.version - a.version).slice(0, o.limit ?? 50);
  for (const v of versions) v.zones.sort((a, b) => topo.zonesOf(cluster).indexOf(a) - topo.zonesOf(cluster).indexOf(b));
  return { cluster, versions, unreachable };
}

export interface SyncReport {
  cluster: string;
  execute: boolean;
  routes: Routes;
  /** zones that held a lower version (or none): to be written / written */
  zones: Array<{ zone: string; before: number | null; outcome?: PublishAtOutcome | 'failed'; error?: string }>;
  unreachable: string[];
  /** the topology file named other owners: rewritten (execute) or to be */
  file: { agrees: boolean; changed?: boolean; error?: string };
  /** the statement each zone runs */
  sql: string;
  exitCode: ExitCode;
}

const SYNC_SQL = 'INSERT INTO `_ezctl`.`gz_routes` (cluster, version, doc, published_at) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE doc = IF(version < VALUES(version), VALUES(doc), doc), published_at = IF(...), version = IF(version < VALUES(version), VALUES(version), version)';

/** Write the highest version to the zones holding a lower one (and the owners to the file). Plan only without execute. */
export async function syncRoutes(ctx: Ctx, o: { cluster?: string; execute: boolean }): Promise<SyncReport> {
  const topo = await ctx.topology();
  const cluster = clusterOf(topo, o.cluster);
  const read = await readRoutes(ctx, topo, cluster);
  const file = routesFromTopology(topo, cluster);
  const agrees = read.routes.version === 0 || sameOwners(read.routes, file);
  const report: SyncReport = {
    cluster,
    execute: o.execute,
    routes: read.routes,
    zones: read.stale.map((zone) => ({ zone, before: read.zones[zone]!.version })),
    unreachable: read.unreachable,
    file: { agrees },
    sql: SYNC_SQL,
    exitCode: ExitCode.ok,
  };
  if (!o.execute) return report;
  await Promise.all(
    report.zones.map(async (z) => {
      let db;
      try {
        db = await ctx.connect(topo.master(cluster, z.zone));
        z.outcome = (await publishAtOutcome(db, read.routes)).outcome;
      } catch (e) {
        z.outcome = 'failed';
        z.error = (e as Error).message;
      } finally {
        await db?.close();
      }
    }),
  );
  if (!agrees) {
    try {
      report.file.changed = mirrorToFile(topo, cluster, read.routes).changed;
    } catch (e) {
      report.file.error = (e as Error).message;
    }
  }
  if (report.zones.some((z) => z.outcome === 'failed') || report.file.error) report.exitCode = ExitCode.runtime;
  return report;
}

export interface WatchLine {
  cluster: string;
  version: number;
  routes: Routes;
  /** when this process saw it (ISO, ms) */
  seenAt: string;
}

/**
 * Follow the table and call `emit` with the current version and then with every change, until
 * SIGINT/SIGTERM (the shared handler exits 130) or `signal`.
 */
export async function watchRoutes(ctx: Ctx, o: { cluster?: string; intervalMs?: number; signal?: AbortSignal }, emit: (l: WatchLine) => void): Promise<void> {
  const topo = await ctx.topology();
  const cluster = clusterOf(topo, o.cluster);
  const f = await RoutesFollower.start(ctx, topo, cluster, { intervalMs: o.intervalMs ?? 100 });
  const line = (r: Routes): WatchLine => ({ cluster, version: r.version, routes: r, seenAt: new Date().toISOString() });
  let last = f.routes.version;
  emit(line(f.routes));
  f.onChange((r) => {
    if (r.version === last) return;
    last = r.version;
    emit(line(r));
  });
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const off = onInterrupt(async () => {
    await f.stop();
    stop();
  });
  o.signal?.addEventListener('abort', () => stop(), { once: true });
  await stopped;
  off();
  await f.stop();
}

export { describeRoutes };
