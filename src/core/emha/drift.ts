// Topology drift: what the servers say against what the topology file says, per zone. A replica
// added (the master's SHOW SLAVE HOSTS names a server the file does not), moved (it replicates from
// another zone's node), removed (it replicates from nobody, or from a server outside the file), a
// master changed by someone else (a node the file calls replica is writable and replicates from
// nobody while the file's master is read_only). `planDrift` is pure (unit-tested); `observeZone`
// reads the servers (every wait bounded, as detect.ts does); `applyDrift` brings the file, the
// proxy, DRC and MHA's configuration in line, one change at a time, each one logged.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Document } from 'yaml';
import type { Ctx } from '../context.js';
import type { ResolvedNode, Topology } from '../config/load.js';
import { editTopologyFile, setZoneMaster } from '../config/editor.js';
import { parseConnectionString, sameServer } from '../config/dsn.js';
import { flavorOf, replicaStatus } from '../db/server.js';
import type { Db } from '../db/connect.js';
import { routingTarget, type RouteNode } from '../proxy/index.js';
import { globalWriteZone, writeRouteZones } from './global.js';
import { DrcClient } from '../drc/client.js';
import { boundedQuery, openBounded } from './detect.js';
import { mhaConfig } from './index.js';

export interface Source { host: string; port: number; io: string; sql: string }

export interface NodeObs {
  name: string;
  zone: string;
  role: 'master' | 'replica';
  host: string;
  port: number;
  reachable: boolean;
  error?: string;
  readOnly?: boolean;
  /** the servers it replicates from (one per channel); empty: from nobody */
  sources: Source[];
  /** in its zone's `fenced` list (an old master after a failover): out of every route until `emha rejoin`, never drift */
  fenced?: boolean;
}

export interface SlaveHost { serverId: number; host: string; port: number }

export interface ZoneObs {
  zone: string;
  /** the file's master of the zone */
  master: string;
  nodes: NodeObs[];
  /** SHOW SLAVE HOSTS on the file's master; null when it was not read */
  slaveHosts: SlaveHost[] | null;
}

export type Drift =
  | { kind: 'replica-added'; zone: string; host: string; port: number; serverId: number; name: string; detail: string }
  | { kind: 'replica-removed'; zone: string; node: string; detail: string }
  | { kind: 'replica-moved'; zone: string; node: string; toZone: string; detail: string }
  | { kind: 'master-changed'; zone: string; from: string; to: string; detail: string }
  /** alerts only: nothing in the file can be made true by the watch */
  | { kind: 'two-writable'; zone: string; nodes: string[]; detail: string }
  | { kind: 'replica-unreachable'; zone: string; node: string; detail: string }
  /** a fenced node (an old master failed over while hung, then back: SIGCONT) that is writable: set read_only */
  | { kind: 'fenced-writable'; zone: string; node: string; detail: string };

/** Drifts the watch repairs (the others only alert). */
export const REPAIRABLE: ReadonlySet<Drift['kind']> = new Set(['replica-added', 'replica-removed', 'replica-moved', 'master-changed', 'fenced-writable']);
/** Drifts repaired at once (two looks, no --drift-grace): a fenced node taking writes is never an operator's step. */
export const URGENT: ReadonlySet<Drift['kind']> = new Set(['fenced-writable']);

/** A key that stays the same while the same drift lasts (to say it once, not every interval). */
export function driftKey(d: Drift): string {
  switch (d.kind) {
    case 'replica-added':
      return `${d.kind}:${d.zone}:${d.host}:${d.port}`;
    case 'master-changed':
      return `${d.kind}:${d.zone}:${d.from}>${d.to}`;
    case 'two-writable':
      return `${d.kind}:${d.zone}:${d.nodes.join(',')}`;
    case 'replica-moved':
      return `${d.kind}:${d.zone}:${d.node}>${d.toZone}`;
    default:
      return `${d.kind}:${d.zone}:${d.node}`;
  }
}

const addr = (n: { host: string; port: number }) => `${n.host}:${n.port}`;

/** A name for a new replica of the zone: zone-replicaN, N the smallest not taken in the cluster. */
export function newReplicaName(zone: string, taken: ReadonlySet<string>): string {
  for (let i = 1; ; i++) if (!taken.has(`${zone}-replica${i}`)) return `${zone}-replica${i}`;
}

/**
 * The drift of one zone. `all`: every node of the cluster in the file (a replica's source is named
 * through it). A zone whose master changed reports only that: the rest is judged again against the
 * file once it names the new master.
 */
export function planDrift(z: ZoneObs, all: ReadonlyArray<Pick<ResolvedNode, 'name' | 'zone' | 'role' | 'host' | 'port'>>): Drift[] {
  const out: Drift[] = [];
  const master = z.nodes.find((n) => n.name === z.master);
  // a fenced node is out on purpose (emha failover put it there, emha rejoin takes it back)
  const replicas = z.nodes.filter((n) => n.role === 'replica' && !n.fenced);
  for (const f of z.nodes) {
    if (f.fenced && f.reachable && f.readOnly === false) out.push({ kind: 'fenced-writable', zone: z.zone, node: f.name, detail: `${f.name} (${addr(f)}) is fenced (it must never take writes again) but writable (read_only=OFF): it came back without restarting (a hung master failed over, then SIGCONT)` });
  }
  for (const r of replicas) if (!r.reachable) out.push({ kind: 'replica-unreachable', zone: z.zone, node: r.name, detail: `${r.name} (${addr(r)}) not reached: ${r.error ?? 'no answer'}; left in the file` });
  if (!master?.reachable || master.readOnly === undefined) return out;
  const writable = z.nodes.filter((n) => n.reachable && n.readOnly === false && !n.fenced);
  if (writable.length > 1) {
    out.push({ kind: 'two-writable', zone: z.zone, nodes: writable.map((n) => n.name), detail: `${writable.map((n) => `${n.name} (${addr(n)})`).join(' and ')} are all writable (read_only=OFF): the watch changes nothing until one is read_only` });
    return out;
  }
  if (master.readOnly === true) {
    const promoted = replicas.filter((r) => r.reachable && r.readOnly === false && r.sources.length === 0);
    if (promoted.length === 1) {
      const to = promoted[0]!;
      out.push({ kind: 'master-changed', zone: z.zone, from: master.name, to: to.name, detail: `${to.name} (${addr(to)}) is writable and replicates from nobody, while the file's master ${master.name} is read_only${master.sources.some((s) => sameServer(to, s)) ? ` and replicates from it` : ''}` });
      return out;
    }
  }
  const byAddr = (s: { host: string; port: number }) => all.find((n) => sameServer(n, s));
  for (const r of replicas) {
    if (!r.reachable) continue;
    if (r.sources.length === 0) {
      // the head of a chain (an old master left detached mid-switch, others still reading from it) stays
      const fed = z.nodes.filter((o) => o.name !== r.name && o.sources.some((s) => sameServer(r, s)));
      if (fed.length) continue;
      out.push({ kind: 'replica-removed', zone: z.zone, node: r.name, detail: `${r.name} (${addr(r)}) replicates from nobody${r.readOnly === false ? ' (and is writable)' : ''}` });
      continue;
    }
    const known = r.sources.map(byAddr);
    // a source in this zone (its master, or a replica of it: a chain) keeps it in the zone
    if (known.some((k) => k?.zone === z.zone)) continue;
    const other = known.find((k) => k !== undefined);
    if (other) {
      out.push({ kind: 'replica-moved', zone: z.zone, node: r.name, toZone: other.zone, detail: `${r.name} (${addr(r)}) replicates from ${other.name} (${addr(other)}) of zone ${other.zone}` });
    } else {
      out.push({ kind: 'replica-removed', zone: z.zone, node: r.name, detail: `${r.name} (${addr(r)}) replicates from ${r.sources.map(addr).join(', ')}, no node of the topology file` });
    }
  }
  if (z.slaveHosts) {
    const taken = new Set(all.map((n) => n.name));
    for (const h of z.slaveHosts) {
      // a binlog reader that registers without a port (DRC, a CDC tool) is not a replica
      if (!h.port || byAddr(h)) continue;
      const name = newReplicaName(z.zone, taken);
      taken.add(name);
      out.push({ kind: 'replica-added', zone: z.zone, host: h.host, port: h.port, serverId: h.serverId, name, detail: `${master.name}'s SHOW SLAVE HOSTS names server ${h.serverId} at ${addr(h)}, not in the topology file` });
    }
  }
  return out;
}

async function observeNode(ctx: Ctx, n: ResolvedNode, ms: number, signal: AbortSignal | undefined, withSlaveHosts: boolean): Promise<{ obs: NodeObs; slaveHosts: SlaveHost[] | null }> {
  const obs: NodeObs = { name: n.name, zone: n.zone, role: n.role, host: n.host, port: n.port, reachable: false, sources: [], ...(n.fenced ? { fenced: true } : {}) };
  let db: Db | undefined;
  try {
    db = await openBounded(ctx, n, ms, signal);
    const d = db;
    return await boundedQuery(d, ms, `the state of ${n.name}`, signal, async () => {
      const v = await d.one<{ version: string; ro: unknown }>('SELECT @@version AS version, @@read_only AS ro');
      obs.readOnly = Number(v?.ro) === 1;
      const st = await replicaStatus(d, flavorOf(String(v?.version ?? '')));
      obs.sources = st.map((c) => ({ host: c.sourceHost, port: c.sourcePort, io: c.ioState, sql: c.sqlState }));
      obs.reachable = true;
      let slaveHosts: SlaveHost[] | null = null;
      if (withSlaveHosts) {
        const rows = await d.query('SHOW SLAVE HOSTS');
        slaveHosts = rows.map((r) => ({ serverId: Number(r.Server_id ?? 0), host: String(r.Host ?? ''), port: Number(r.Port ?? 0) }));
      }
      return { obs, slaveHosts };
    });
  } catch (e) {
    obs.reachable = false;
    obs.error = (e as Error).message;
    return { obs, slaveHosts: null };
  } finally {
    db?.conn.destroy();
  }
}

/** Read every node of the zone (at once, each bounded). */
export async function observeZone(ctx: Ctx, topo: Topology, cluster: string, zone: string, o: { timeoutMs: number; signal?: AbortSignal }): Promise<ZoneObs> {
  const nodes = topo.nodes(cluster).filter((n) => n.zone === zone);
  const master = topo.master(cluster, zone);
  const seen = await Promise.all(nodes.map((n) => observeNode(ctx, n, o.timeoutMs, o.signal, n.name === master.name)));
  return { zone, master: master.name, nodes: seen.map((s) => s.obs), slaveHosts: seen.find((s) => s.obs.name === master.name)?.slaveHosts ?? null };
}

// ---- bringing the file, the proxy, DRC and MHA in line ----

type YamlSeq = { items: unknown[] };

function replicaIndex(doc: Document, cluster: string, zone: string, n: { host: string; port: number }): number {
  const seq = doc.getIn(['clusters', cluster, 'zones', zone, 'replicas']) as YamlSeq | undefined;
  return (seq?.items ?? []).findIndex((r) => {
    const js = (r as { toJSON?: () => unknown }).toJSON?.() ?? r;
    try {
      const a = typeof js === 'string' ? parseConnectionString(js) : (js as { host?: string; port?: number });
      return a.host !== undefined && sameServer({ host: a.host, port: a.port ?? 3306 }, n);
    } catch {
      return false;
    }
  });
}

/** Take a replica out of a zone in the document; its entry (comments and all) is returned. */
export function removeReplica(doc: Document, cluster: string, zone: string, n: { host: string; port: number }): unknown {
  const i = replicaIndex(doc, cluster, zone, n);
  if (i < 0) return undefined;
  const seq = doc.getIn(['clusters', cluster, 'zones', zone, 'replicas']) as YamlSeq;
  const [entry] = seq.items.splice(i, 1);
  return entry;
}

/** Add a replica to a zone in the document (an entry taken from another zone, or a new one). */
export function addReplica(doc: Document, cluster: string, zone: string, entry: unknown): void {
  const path = ['clusters', cluster, 'zones', zone, 'replicas'];
  const seq = doc.getIn(path) as (YamlSeq & { flow?: boolean }) | undefined;
  if (!seq) {
    doc.setIn(path, doc.createNode([entry]));
    return;
  }
  // `replicas: []` is a flow sequence: an entry in it would print as a flow map
  if (seq.items.length === 0) seq.flow = false;
  seq.items.push(doc.createNode(entry));
}

export interface AppliedChange {
  drift: Drift;
  /** what was done, in order: "topology file: ...", "proxy demo/bj: ...", "DRC: ...", "MHA: ..." */
  done: string[];
  error?: string;
}

export interface ApplyOptions {
  /** MHA's config folder to keep current (default: <stateDir>/mha when it holds files) */
  mhaDir?: string;
  log?: (line: string) => void;
}

const routeNode = (n: ResolvedNode): RouteNode => ({ name: n.name, host: n.host, port: n.port });

async function proxyInLine(topo: Topology, cluster: string, zone: string, writeMoved: boolean, log: (s: string) => void): Promise<void> {
  const target = routingTarget(topo, cluster, zone);
  if (!target) return;
  const zoneNodes = topo.nodes(cluster).filter((n) => n.zone === zone);
  const master = zoneNodes.find((n) => n.role === 'master')!;
  if (writeMoved) {
    await target.moveWrite(routeNode(master));
    log(`${target.label}: writes to ${master.name}`);
  }
  const pool = zoneNodes.filter((n) => n.role === 'replica' && !n.fenced).map(routeNode);
  await target.setReadPool(pool);
  log(`${target.label}: read pool ${pool.map((n) => n.name).join(', ') || '(none: the master serves reads)'}`);
}

/** The MHA folder to keep current: the one given, or the default one once `emha mha-config --out` wrote it. */
export function mhaDirOf(topo: Topology, given?: string): string | undefined {
  if (given) return given;
  const d = join(topo.stateDir(), 'mha');
  try {
    return existsSync(d) && readdirSync(d).some((f) => f.endsWith('.cnf')) ? d : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Make one drift true everywhere: the topology file first (every later step reads it), then the
 * proxy of each zone touched, DRC (a zone's master changed), MHA's config. Returns the new topology.
 */
export async function applyDrift(ctx: Ctx, topo: Topology, cluster: string, d: Drift, o: ApplyOptions = {}): Promise<{ change: AppliedChange; topology: Topology }> {
  const change: AppliedChange = { drift: d, done: [] };
  const log = (s: string) => {
    change.done.push(s);
    o.log?.(s);
  };
  const node = (name: string) => topo.nodes(cluster).find((n) => n.name === name)!;
  let edited: Topology = topo;
  try {
    const zones = new Set<string>([d.zone]);
    switch (d.kind) {
      case 'master-changed': {
        const to = node(d.to);
        edited = editTopologyFile(topo.path, (doc) => setZoneMaster(doc, cluster, d.zone, to)).topology;
        log(`topology file: ${d.to} is the master of ${cluster}/${d.zone}, ${d.from} one of its replicas`);
        break;
      }
      case 'replica-added':
        edited = editTopologyFile(topo.path, (doc) => addReplica(doc, cluster, d.zone, { name: d.name, host: d.host, port: d.port })).topology;
        log(`topology file: ${d.name} (${d.host}:${d.port}) added to the replicas of ${cluster}/${d.zone}`);
        break;
      case 'replica-removed': {
        const n = node(d.node);
        edited = editTopologyFile(topo.path, (doc) => removeReplica(doc, cluster, d.zone, n)).topology;
        log(`topology file: ${d.node} taken out of the replicas of ${cluster}/${d.zone}`);
        break;
      }
      case 'replica-moved': {
        const n = node(d.node);
        edited = editTopologyFile(topo.path, (doc) => {
          const entry = removeReplica(doc, cluster, d.zone, n);
          addReplica(doc, cluster, d.toZone, entry);
        }).topology;
        zones.add(d.toZone);
        log(`topology file: ${d.node} moved from the replicas of ${cluster}/${d.zone} to those of ${cluster}/${d.toZone}`);
        break;
      }
      case 'fenced-writable': {
        const n = node(d.node);
        const db = await openBounded(ctx, n, 5000, undefined);
        try {
          await boundedQuery(db, 5000, `SET GLOBAL read_only on ${n.name}`, undefined, () => db.exec('SET GLOBAL read_only = 1'));
        } finally {
          db.conn.destroy();
        }
        log(`${d.node}: read_only=ON (fenced: the proxy and DRC already refuse it)`);
        return { change, topology: topo };
      }
      default:
        return { change, topology: topo };
    }
    // a master changed: the proxies whose writes follow it (the zone's own; in a global cluster's
    // write zone every zone's, in its other zones none: they write to the write zone's master)
    const follow = d.kind === 'master-changed' ? writeRouteZones(edited, cluster, d.zone, await globalWriteZone(ctx, edited, cluster)) : [];
    for (const z of zones) await proxyInLine(edited, cluster, z, follow.includes(z), log);
    const master = edited.master(cluster, d.zone);
    for (const z of follow.filter((x) => !zones.has(x))) {
      const target = routingTarget(edited, cluster, z);
      if (!target) continue;
      await target.moveWrite(routeNode(master));
      log(`${target.label}: writes to ${master.name} (the global cluster's write zone ${d.zone})`);
    }
    if (d.kind === 'master-changed') {
      const drc = new DrcClient(ctx, edited, cluster);
      if (await drc.repoint(d.zone)) log(`DRC: the daemon of ${cluster} repointed both directions of zone ${d.zone} at ${d.to}`);
      else log(`DRC: no daemon of ${cluster} runs on this host; the next one started reads the file`);
    }
    const mhaDir = mhaDirOf(edited, o.mhaDir);
    if (mhaDir) {
      const fresh: Ctx = { ...ctx, topology: () => Promise.resolve(edited) };
      const r = await mhaConfig(fresh, { cluster, out: mhaDir });
      const changed = r.zones.filter((z) => z.config.status !== 'unchanged' && z.config.status !== 'preview').map((z) => z.config.path);
      log(`MHA: ${changed.length ? `rewrote ${changed.join(', ')}` : `configs in ${mhaDir} already current`}`);
    }
  } catch (e) {
    change.error = (e as Error).message;
  }
  return { change, topology: edited };
}
