// The steps after a zone's new master is chosen, shared by `emha switch` (the old master alive,
// its writes blocked and caught up) and `emha failover` (the old master dead and fenced): promote
// the new master (the point of no return), move the proxy's routes to it, repoint the zone's other
// replicas under it, rewrite the topology file and tell DRC, rewrite MHA's config. Every step is
// idempotent (run again after a crash it does nothing more, or the same thing again), and nodes
// are named by address in the job's parameters: the topology file's names follow roles and move
// when the file is rewritten.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Ctx } from '../context.js';
import { loadTopology, type Topology, type ResolvedNode } from '../config/load.js';
import { editTopologyFile, setZoneMaster } from '../config/editor.js';
import type { Db } from '../db/connect.js';
import { promote, replState, replicateFrom, replicatesFrom, replicationCredentials } from '../db/replication.js';
import { routingTarget, type RouteNode, type RoutingTarget } from '../proxy/index.js';
import type { Step, StepContext } from '../steps/engine.js';
import { DrcClient } from '../drc/client.js';
import { runtimeError } from '../exit.js';
import { sameServer } from '../config/dsn.js';
import { mhaConfig } from './index.js';
import { zoneFileBase } from './mha-config.js';

/** A node of the zone as the job's parameters name it: by address (names move with the file). */
export interface NodeRef {
  /** its name in the topology file when the job was planned (for messages and the proxy) */
  name: string;
  host: string;
  port: number;
}

export interface TakeoverParams {
  cluster: string;
  zone: string;
  /** the topology file the job rewrites */
  topologyPath: string;
  newMaster: NodeRef;
  /** the zone's other replicas, repointed under the new master (not the new master, not the old one) */
  replicas: NodeRef[];
  /** the proxy's read pool afterwards (a switch: the replicas and the demoted old master; a failover: without the fenced node) */
  readPool: NodeRef[];
  /** MHA's config folder (emha mha-config --out); absent: <stateDir>/mha. Rewritten only when the zone's file is there. */
  mhaDir?: string;
  /**
   * The zones whose proxy's write route moves to the new master (global.ts writeRouteZones): a
   * global cluster's write zone, every zone's; another zone of a global cluster, none (its proxy
   * writes to the write zone's master). Absent (a job journaled before it): the zone's own.
   */
  writeRouteZones?: string[];
  /** a global cluster's write zone when the job was planned (messages only) */
  writeZone?: string;
}

export const sameAddr = (a: { host: string; port: number }, b: { host: string; port: number }) => a.host === b.host && a.port === b.port;
export const refOf = (n: ResolvedNode): NodeRef => ({ name: n.name, host: n.host, port: n.port });
export const addrOf = (n: { host: string; port: number }) => `${n.host}:${n.port}`;

/** The topology file as it is on disk now (a step after a rewrite must not use a cached copy). */
export function freshTopology(path: string): Topology {
  return loadTopology(path);
}

/** The zone's node at this address in the file as it is now (its credentials come from there). */
export function nodeAt(topo: Topology, cluster: string, zone: string, ref: NodeRef): ResolvedNode {
  const n = topo.nodes(cluster).find((x) => x.zone === zone && sameAddr(x, ref));
  if (!n) {
    throw runtimeError(`${ref.name} (${addrOf(ref)}) is no longer a node of ${cluster}/${zone} in ${topo.path}`, {
      hint: 'the topology file was edited during the job: put the node back, then resume the job',
    });
  }
  return n;
}

/**
 * Connections kept open across the steps of one run: the application's write-unavailable window
 * runs from the block to the proxy's move, and a fresh connection per step (the file parsed, a
 * handshake) cost tens of ms each in it. One per node; a connection that failed is dropped and the
 * next use opens another. closeAll() at the end of the run.
 */
export class NodeConnections {
  private readonly open = new Map<string, Promise<Db>>();
  constructor(
    private readonly ctx: Ctx,
    private readonly p: Pick<TakeoverParams, 'cluster' | 'zone' | 'topologyPath'>,
  ) {}

  get(ref: NodeRef): Promise<Db> {
    const key = addrOf(ref);
    let db = this.open.get(key);
    if (!db) {
      db = this.ctx.connect(nodeAt(freshTopology(this.p.topologyPath), this.p.cluster, this.p.zone, ref));
      db.catch(() => this.open.delete(key));
      this.open.set(key, db);
    }
    return db;
  }

  /** forget (and close) the node's connection: the next get() opens a new one */
  async drop(ref: NodeRef): Promise<void> {
    const db = this.open.get(addrOf(ref));
    this.open.delete(addrOf(ref));
    await db?.then((d) => d.close()).catch(() => undefined);
  }

  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((d) => d.then((x) => x.close()).catch(() => undefined)));
  }
}

/** Run fn on a connection to the node at ref: the run's kept one (conns), else a fresh one closed after. */
export async function withNode<T>(ctx: Ctx, p: Pick<TakeoverParams, 'cluster' | 'zone' | 'topologyPath'>, ref: NodeRef, fn: (db: Db) => Promise<T>, conns?: NodeConnections): Promise<T> {
  if (conns) {
    const db = await conns.get(ref);
    try {
      return await fn(db);
    } catch (e) {
      await conns.drop(ref);
      throw e;
    }
  }
  const db = await ctx.connect(nodeAt(freshTopology(p.topologyPath), p.cluster, p.zone, ref));
  try {
    return await fn(db);
  } finally {
    await db.close().catch(() => undefined);
  }
}

const routeNode = (r: NodeRef): RouteNode => ({ name: r.name, host: r.host, port: r.port });

/**
 * The point of no return: the new master stops replicating (after what it received is applied:
 * the caller waited for that) and becomes writable. check(): it replicates from nobody and is
 * writable, so a crash inside it is resumed on the right side.
 */
export function promoteStep<P>(ctx: Ctx, p: TakeoverParams, conns?: NodeConnections): Step<P> {
  return {
    name: 'promote',
    pointOfNoReturn: true,
    describe: () => ({ does: `promote ${p.newMaster.name} (${addrOf(p.newMaster)}): stop replicating, forget its master, read_only=0`, sql: ["STOP SLAVE ''", "RESET SLAVE '' ALL", 'SET GLOBAL read_only = 0'] }),
    async do(sc) {
      await withNode(ctx, p, p.newMaster, async (db) => {
        await promote(db);
        sc.note({ at: Date.now() });
      }, conns);
    },
    async check() {
      return withNode(ctx, p, p.newMaster, async (db) => {
        const s = await replState(db);
        return s.replica === null && !s.readOnly;
      });
    },
  };
}

/**
 * Move the proxies: the write route of every zone in `writeRouteZones` (the zone's own, and in a
 * global cluster's write zone every zone's) to the new master, sessions to the old write node
 * closed; the zone's own read pool. Each proxy is moved even when another fails (they are
 * independent; the application of each zone waits on its own), then the failures are thrown
 * together: a resume moves them again (moveWrite is idempotent).
 */
export function routeStep<P>(ctx: Ctx, p: TakeoverParams, prepared?: (zone: string) => RoutingTarget | null | undefined): Step<P> {
  const writeZones = p.writeRouteZones ?? [p.zone];
  const others = writeZones.filter((z) => z !== p.zone);
  const writeSide = !writeZones.includes(p.zone)
    ? `leave the zone's proxy write route where it is (a global cluster: it writes to the write zone ${p.writeZone ?? '?'}'s master)`
    : `move the zone's proxy write route to ${p.newMaster.name} (sessions to the old write node closed)${others.length ? ` and so the write routes of the proxies of ${others.join(', ')} (a global cluster's write zone: every zone writes to its master)` : ''}`;
  return {
    name: 'move-proxy',
    describe: () => ({ does: `${writeSide}; set the zone's read pool to ${p.readPool.map((r) => r.name).join(', ') || '(none: the master serves reads)'}` }),
    async do(sc) {
      // the targets resolved before the write-blocked window (a switch: the file parsed there), else from the file now
      let topo: Topology | undefined;
      const targetOf = (zone: string): RoutingTarget | undefined => {
        const ready = prepared?.(zone);
        if (ready !== undefined) return ready ?? undefined;
        topo ??= freshTopology(p.topologyPath);
        return routingTarget(topo, p.cluster, zone);
      };
      const own = targetOf(p.zone);
      const movers = writeZones.map((z) => ({ zone: z, target: targetOf(z) })).filter((x): x is { zone: string; target: RoutingTarget } => !!x.target);
      if (!own && !movers.length) {
        sc.note({ proxy: 'none' });
        return;
      }
      const moved: Array<{ zone: string; label: string; atMs: number }> = [];
      const failed: string[] = [];
      await Promise.all(movers.map(async ({ zone, target }) => {
        try {
          await target.moveWrite(routeNode(p.newMaster), { killExisting: true });
          const at = Date.now();
          const now = await target.currentWrite();
          if (!now || now.name !== p.newMaster.name || !sameServer(now, p.newMaster)) {
            throw new Error(`still routes writes to ${now ? `${now.name} (${addrOf(now)})` : 'nowhere'} after moving them to ${p.newMaster.name}`);
          }
          moved.push({ zone, label: target.label, atMs: at });
        } catch (e) {
          failed.push(`${target.label}: ${(e as Error).message}`);
        }
      }));
      if (own) {
        try {
          await own.setReadPool(p.readPool.map(routeNode));
        } catch (e) {
          failed.push(`${own.label}: read pool: ${(e as Error).message}`);
        }
      }
      if (failed.length) {
        throw runtimeError(`the write route did not move everywhere: ${failed.join('; ')}${moved.length ? ` (moved: ${moved.map((m) => m.label).join(', ')})` : ''}`, { hint: 'see the proxy (ezctl sandbox status / its runtime API), then resume the job: the proxies already moved are left as they are' });
      }
      moved.sort((a, b) => writeZones.indexOf(a.zone) - writeZones.indexOf(b.zone));
      const labels = [...moved.map((m) => m.label), ...(own && !moved.some((m) => m.zone === p.zone) ? [`${own.label} (read pool only)`] : [])];
      const note: Record<string, unknown> = { proxy: labels.join(', '), proxies: labels };
      // the application's write-unavailable window ends when the last write route moved
      if (moved.length) note.writeMovedAtMs = Math.max(...moved.map((m) => m.atMs));
      sc.note(note);
    },
  };
}

/** Repoint the zone's other replicas under the new master (by GTID; each already there is left as it is). */
export function replicasStep<P>(ctx: Ctx, p: TakeoverParams): Step<P> {
  return {
    name: 'repoint-replicas',
    describe: () => ({ does: p.replicas.length ? `repoint ${p.replicas.map((r) => r.name).join(', ')} under ${p.newMaster.name} (MASTER_USE_GTID=slave_pos, read_only=1)` : 'no other replica to repoint' }),
    async do(sc) {
      const done: string[] = [];
      for (const r of p.replicas) {
        await repointUnder(ctx, p, r, sc);
        done.push(r.name);
      }
      sc.note({ repointed: done });
    },
  };
}

/** Make the node (read_only) a replica of the new master; the replication user: the node's own, else the file's replCredentials. */
export async function repointUnder<P>(ctx: Ctx, p: TakeoverParams, r: NodeRef, sc?: StepContext<P>): Promise<void> {
  await withNode(ctx, p, r, async (db) => {
    const s = await replState(db);
    if (replicatesFrom(s, p.newMaster)) {
      if (!s.readOnly) await db.exec('SET GLOBAL read_only = 1');
      return;
    }
    sc?.waitingFor(`${r.name} to replicate from ${p.newMaster.name}`);
    const o: { user?: string; password?: string } = {};
    if (!s.replica) {
      const creds = await replicationCredentials(freshTopology(p.topologyPath), p.cluster, ctx.secrets());
      if (creds) {
        o.user = creds.user;
        if (creds.password !== undefined) o.password = creds.password;
      }
    }
    await replicateFrom(db, p.newMaster, o);
  });
}

/**
 * The topology file names the new master (the old one takes its place among the replicas), then
 * this host's DRC daemon reloads it and reconnects the zone's directions (both ways) from their
 * checkpoints. No daemon here: said in the report (a daemon elsewhere must be told there).
 */
export function topologyStep<P>(ctx: Ctx, p: TakeoverParams): Step<P> {
  return {
    name: 'topology-drc',
    describe: () => ({ does: `rewrite ${p.topologyPath}: ${p.newMaster.name} master of ${p.cluster}/${p.zone}; drc repoint ${p.zone} (the daemon on this host reconnects both directions of the zone)` }),
    async do(sc) {
      let topo = freshTopology(p.topologyPath);
      let changed = false;
      if (!sameAddr(topo.master(p.cluster, p.zone), p.newMaster)) {
        const e = editTopologyFile(p.topologyPath, (doc) => setZoneMaster(doc, p.cluster, p.zone, p.newMaster));
        topo = e.topology;
        changed = e.changed;
      }
      const drc = new DrcClient(ctx, topo, p.cluster);
      const repointed = await drc.repoint(p.zone);
      sc.note({ file: p.topologyPath, fileChanged: changed, drc: repointed ? 'repointed' : 'no daemon on this host' });
    },
  };
}

/** MHA's config folder of a job (--mha-dir, else where `emha mha-config` puts it by default). */
export function mhaDirOf(topo: Topology, mhaDir?: string): string {
  return resolve(mhaDir ?? join(topo.stateDir(), 'mha'));
}

/** Rewrite MHA's configs when the zone's was written before (emha mha-config --out); none: nothing to do. */
export function mhaStep<P>(ctx: Ctx, p: TakeoverParams): Step<P> {
  return {
    name: 'mha-config',
    describe: () => ({ does: `rewrite MHA's config of ${p.cluster}/${p.zone} when one was written (${p.mhaDir ?? '<stateDir>/mha'})` }),
    async do(sc) {
      const topo = freshTopology(p.topologyPath);
      const dir = mhaDirOf(topo, p.mhaDir);
      const file = join(dir, `${zoneFileBase(p.cluster, p.zone)}.cnf`);
      if (!existsSync(file)) {
        sc.note({ mha: `none at ${file}` });
        return;
      }
      // the command's context caches the file as it was read at the start: MHA's config must come from the rewritten one
      const fresh: Ctx = { ...ctx, topology: () => Promise.resolve(topo) };
      const r = await mhaConfig(fresh, { cluster: p.cluster, out: dir });
      const z = r.zones.find((x) => x.zone === p.zone);
      sc.note({ mha: z ? `${z.config.path}: ${z.config.status}` : dir });
    },
  };
}

/**
 * After the point of no return, in order: the proxy (the application's write-unavailable window
 * ends there), `afterRoute` (failover: DRC's checkpoints set back, before DRC is repointed), the
 * file and DRC, `beforeReplicas` (switch: the old master's demotion), the replicas, MHA.
 * DRC is repointed before a live old master's block is lifted: DRC's applier connects as the admin
 * user, which read_only does not stop, and a retrying session that still took the old master for
 * the zone's master wrote into it once its block was lifted (measured: a DRC-applied row on the
 * demoted master, an errant GTID in the other zone's DRC domain, and its replication from the new
 * master stopped on the duplicate key when DRC applied the row there too).
 */
export function takeoverSteps<P>(ctx: Ctx, p: TakeoverParams, o: { afterRoute?: Step<P>[]; beforeReplicas?: Step<P>[]; routeTarget?: (zone: string) => RoutingTarget | null | undefined } = {}): Step<P>[] {
  return [routeStep<P>(ctx, p, o.routeTarget), ...(o.afterRoute ?? []), topologyStep<P>(ctx, p), ...(o.beforeReplicas ?? []), replicasStep<P>(ctx, p), mhaStep<P>(ctx, p)];
}
