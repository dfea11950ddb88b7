// The throttle of a long job on one cluster, built from the job's options: which signals, which
// nodes they read. Connects only to the nodes the asked-for signals need.
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import type { Db } from '../db/connect.js';
import {
  DEFAULT_DRC_HEARTBEAT_MS,
  drcLagSignal,
  flagFileSignal,
  loadSignal,
  parseLoadSpec,
  replicaLagSignal,
  verifyStatusVariables,
  windowSignal,
  type Probe,
  type ZoneMaster,
} from './signals.js';
import { Throttler, type ThrottleSignal } from './throttler.js';

export * from './throttler.js';
export * from './signals.js';
export * from './duration.js';
export * from './options.js';

export interface ThrottleOptions {
  /** replica lag inside each zone (Seconds_Behind_Master) */
  maxLagMs?: number;
  /** DRC lag between the zones (heartbeats); only with two zones or more */
  maxDrcLagMs?: number;
  /** "Threads_running=25,Threads_connected=500", at each zone master */
  maxLoad?: string;
  /** same shape as maxLoad; crossing it stops the job */
  criticalLoad?: string;
  throttleFlagFile?: string;
  /** "10:30-13:30,23:00-01:00", local time */
  pauseWindows?: string;
  intervalMs?: number;
  /** throttle when DRC has never written heartbeats between the zones (default: only warn) */
  requireHeartbeat?: boolean;
}

export interface ClusterThrottle {
  throttler: Throttler;
  /** stop polling and close the connections the throttle opened */
  close(): Promise<void>;
}

type NodeProbe = Probe & ZoneMaster;

/**
 * A started Throttler for a job on `cluster` in `zones`: replica lag over the zones' replicas,
 * DRC lag and load over the zones' masters (where the jobs read and write). Bad specs are
 * refused (exit 2) before any connection; an unreachable node fails it (exit 3).
 */
export async function throttlerFor(ctx: Ctx, cluster: string, zones: string[], opts: ThrottleOptions): Promise<ClusterThrottle> {
  // Pure validation first: nothing is connected for a typo.
  const maxLoad = opts.maxLoad ? parseLoadSpec(opts.maxLoad) : null;
  const criticalLoad = opts.criticalLoad ? parseLoadSpec(opts.criticalLoad) : null;
  const windows = opts.pauseWindows ? windowSignal(opts.pauseWindows) : null;

  const wantsReplicas = opts.maxLagMs !== undefined;
  const wantsDrc = opts.maxDrcLagMs !== undefined && zones.length > 1;
  const wantsMasters = wantsDrc || maxLoad !== null || criticalLoad !== null;

  const probes = new Map<string, NodeProbe>();
  const closeAll = async () => {
    await Promise.all([...probes.values()].map((p) => closeSoon(p.db)));
  };
  const signals: ThrottleSignal[] = [];
  try {
    if (wantsReplicas || wantsMasters) {
      const topo = await ctx.topology();
      topo.zonesChosen(cluster, zones);
      const inZones = topo.nodes(cluster).filter((n) => zones.includes(n.zone));
      const masters = inZones.filter((n) => n.role === 'master');
      const replicas = inZones.filter((n) => n.role === 'replica');
      const needed = [...(wantsMasters ? masters : []), ...(wantsReplicas ? replicas : [])];
      await openProbes(ctx, needed, probes);
      const probeOf = (n: ResolvedNode) => probes.get(n.name)!;

      if (wantsReplicas && replicas.length > 0) signals.push(replicaLagSignal(replicas.map(probeOf), opts.maxLagMs!));
      if (wantsDrc) {
        const heartbeatIntervalMs = topo.cluster(cluster).config.drc?.heartbeatIntervalMs ?? DEFAULT_DRC_HEARTBEAT_MS;
        signals.push(
          drcLagSignal(masters.map(probeOf), opts.maxDrcLagMs!, {
            heartbeatIntervalMs,
            requireHeartbeat: opts.requireHeartbeat ?? false,
            warn: (m) => ctx.log.warn(m),
          }),
        );
      }
      if (maxLoad) {
        await verifyStatusVariables(masters.map(probeOf), maxLoad, '--max-load');
        signals.push(loadSignal(masters.map(probeOf), maxLoad));
      }
      if (criticalLoad) {
        await verifyStatusVariables(masters.map(probeOf), criticalLoad, '--critical-load');
        signals.push(loadSignal(masters.map(probeOf), criticalLoad, true));
      }
    }
  } catch (e) {
    await closeAll();
    throw e;
  }
  if (opts.throttleFlagFile) signals.push(flagFileSignal(opts.throttleFlagFile));
  if (windows) signals.push(windows);

  const throttler = new Throttler(signals, opts.intervalMs === undefined ? {} : { intervalMs: opts.intervalMs });
  throttler.start();
  return {
    throttler,
    async close() {
      await throttler.stop();
      await closeAll();
    },
  };
}

/** Connect to every node in parallel; on any failure close the ones that opened and rethrow. */
async function openProbes(ctx: Ctx, nodes: ResolvedNode[], into: Map<string, NodeProbe>): Promise<void> {
  const unique = [...new Map(nodes.map((n) => [n.name, n])).values()];
  const opened = await Promise.allSettled(unique.map((n) => ctx.connect(n)));
  const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  opened.forEach((r, i) => {
    if (r.status !== 'fulfilled') return;
    const node = unique[i]!;
    if (failed) void closeSoon(r.value);
    else into.set(node.name, { label: node.name, zone: node.zone, db: r.value, reopen: () => ctx.connect(node) });
  });
  if (failed) throw failed.reason;
}

/** Close politely, but do not hang on a connection whose server stopped answering. */
async function closeSoon(db: Db, waitMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => {
    timer = setTimeout(() => r('late'), waitMs);
    timer.unref();
  });
  const r = await Promise.race([db.close().then(() => 'closed' as const), late]);
  clearTimeout(timer);
  if (r === 'late') db.conn.destroy();
}
