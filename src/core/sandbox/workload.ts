// ezctl sandbox workload: inserts, updates and deletes at a fixed rate per zone, routed by the
// cluster's routing table (GZS, core/routes) as a real client of it would be: the reference
// client. Sharding: each zone's traffic is the shards it owned when the workload started, every
// write goes to the shard's *current* owner zone (its proxy, or its master), and at
// --conflict-ratio R deliberately into a zone that does not own the shard (conflicts and illegal
// writes for DRC to handle). Global: every write goes through the zone's proxy (which routes to the
// write zone's master) or straight to the write zone's master. A write whose route is blocked
// waits; one refused by a blocked master (read_only, 1290) or cut by a switch (session killed)
// is retried until it commits or --max-wait passes. A write whose COMMIT answer was lost is looked
// up by its token before it is retried, so it is never written twice. Writes as the application
// user, as a real service would.
import { closeSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Ctx } from '../context.js';
import { badInput, EzError } from '../exit.js';
import { onInterrupt } from '../signals.js';
import { formatDuration } from '../throttle/duration.js';
import { quoteId } from '../db/quote.js';
import { connect, endpointFrom, type Db, type Endpoint, type Param } from '../db/connect.js';
import { prng, GLOBAL_SHARDS } from './load.js';
import type { ResolvedNode, Topology } from '../config/load.js';
import { zoneProxy } from '../proxy/index.js';
import { addressFrom, proxyAddressFrom } from '../config/via.js';
import { RoutesFollower, isRouteBlocked, routeOf, type Routes } from '../routes/index.js';

export interface WorkloadOptions {
  tps: number;
  /** how long to run (ms) */
  durationMs: number;
  /** a progress line per zone on stderr this often (ms); 0: none */
  progressMs?: number;
  conflictRatio: number;
  database: string;
  cluster?: string;
  zones?: string[];
  seed?: number;
  /** how long one write may wait for a blocked route and retry a refused one (ms, default 30 s) */
  maxWaitMs?: number;
  /** one JSON line per acknowledged write (a COMMIT that returned OK) */
  ackLog?: string;
  /** how often the routing table is read from every zone master (ms, default 100) */
  routesIntervalMs?: number;
  /** stop early, as an interrupt does (the writes in flight finish; the report is returned): a drill ends its workload once the fault is undone */
  signal?: AbortSignal;
}

/** The longest stretch without a commit, and when it was. */
export interface Window { ms: number; from: string | null; to: string | null }

export interface ZoneWorkloadReport {
  zone: string;
  /** where it wrote: "proxy 127.0.0.1:31001" (the zone's proxy) or "bj-master 127.0.0.1:3306" */
  through: string;
  /** acknowledged transactions (COMMIT returned OK) */
  transactions: number;
  inserts: number;
  updates: number;
  deletes: number;
  /** transactions that wrote into shards another zone owns (deliberately: --conflict-ratio) */
  foreign: number;
  /** acknowledged transactions by the zone whose master took them (from the server's server_id) */
  landed: Record<string, number>;
  /** attempts made again: a deadlock or lock wait, a master refusing writes (read_only), a session cut by a switch */
  retries: number;
  /** writes that waited for a blocked route, and how long in all (ms) */
  blockedWaits: number;
  blockedMs: number;
  /** writes whose COMMIT answer was lost, looked up by their token: found committed (acknowledged), or not (retried) */
  lostCommits: { found: number; notFound: number };
  /** writes whose COMMIT answer was lost and whose outcome could not be looked up (neither acknowledged nor retried) */
  unknown: number;
  errors: number;
  /** errors by kind: the server's error code, connect failures, 'no connection' (a slot while reconnecting), 'max-wait' */
  errorsByKind: Record<string, number>;
  /** connections opened again after they broke (a master restarted, a route moved) */
  reconnects: number;
  lastError: string | null;
  /** the write-unavailable window: the longest stretch without a commit of this zone's traffic */
  window: Window;
  /** latency of acknowledged writes, from the slot they were due in to their COMMIT (ms) */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** sharding: per shard whose writes waited or were retried, the longest a write of it took (ms) */
  shardWaits: Array<{ shard: number; maxMs: number; writes: number }>;
  ms: number;
  tps: number;
}

export interface WorkloadReport {
  cluster: string;
  database: string;
  model: 'global' | 'sharding';
  /** the routing table version when it started and when it ended (0: from the file, never published) */
  routesVersion: { start: number; end: number };
  ackLog: string | null;
  interrupted: boolean;
  zones: ZoneWorkloadReport[];
}

/** Reconnect attempts of a target back off from this to RECONNECT_MAX_MS. */
const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 5_000;
export const DEFAULT_PROGRESS_MS = 5_000;
export const DEFAULT_MAX_WAIT_MS = 30_000;
/** writes of one zone in flight at once (waiting for a route, a connection, or the server) */
const MAX_IN_FLIGHT = 512;
/** connections of one zone to one target */
const MAX_CONNECTIONS = 16;

/** Errors after which the connection is gone: open a new one rather than use it again. */
export function connectionBroken(e: unknown): boolean {
  const err = e as { code?: string; fatal?: boolean; cause?: { fatal?: boolean; code?: string }; message?: string };
  const code = err.code ?? err.cause?.code;
  return Boolean(err.fatal || err.cause?.fatal)
    || ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'PROTOCOL_CONNECTION_LOST', 'ER_SERVER_SHUTDOWN', 'ER_CONNECTION_KILLED', 'ER_NET_READ_ERROR', 'ER_NET_WRITE_INTERRUPTED'].includes(code ?? '')
    || /closed state|connection lost|server has gone away/i.test(err.message ?? '');
}

/** The kind an error is counted under: its code (ER_LOCK_WAIT_TIMEOUT, ECONNREFUSED...). */
export function errorKind(e: unknown): string {
  const err = e as { code?: string; cause?: { code?: string } };
  return err.code ?? err.cause?.code ?? (connectionBroken(e) ? 'connection closed' : 'other');
}

/** "ECONNREFUSED 12, no connection 30" */
export function kindsText(kinds: Record<string, number>): string {
  return Object.entries(kinds).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
}

/**
 * What to do after an attempt failed (not at COMMIT: see the lost-commit rule): 'retry' the same
 * write (a deadlock or lock wait; a master refusing writes because a switch made it read_only;
 * a table changed under the transaction by an online schema change's cut-over), 'reconnect' and
 * retry (the session was killed or closed: nothing of the transaction committed), or 'fail'.
 */
export function onAttemptError(e: unknown): 'retry' | 'reconnect' | 'fail' {
  if (connectionBroken(e)) return 'reconnect';
  const err = e as { code?: string; errno?: number };
  if (err.errno === 1290 || err.code === 'ER_OPTION_PREVENTS_STATEMENT') return 'reconnect';
  if (['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'ER_TABLE_DEF_CHANGED'].includes(err.code ?? '')) return 'retry';
  return 'fail';
}

/** The p-th percentile (0-100) of values, nearest rank; 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (!values.length) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** The longest stretch between commits (the first one measured from the start). */
export class WindowTracker {
  private last: number;
  readonly window: Window = { ms: 0, from: null, to: null };
  constructor(start: number) {
    this.last = start;
  }
  commit(at: number): void {
    const gap = at - this.last;
    if (gap > this.window.ms) Object.assign(this.window, { ms: gap, from: new Date(this.last).toISOString(), to: new Date(at).toISOString() });
    if (at > this.last) this.last = at;
  }
}

/** Shard ids of a table's ranges that `zone` owns (own) or does not (others). */
export function shardsBy(routes: Routes, zone: string): { own: number[]; others: number[] } {
  const own: number[] = [];
  const others: number[] = [];
  for (const r of routes.shards) for (let s = r.from; s <= r.to; s++) (r.zone === zone ? own : others).push(s);
  return { own, others };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One write, decided once (its retries are the same write): which shard, which statements. */
interface WriteOp {
  token: string;
  shard: number;
  foreign: boolean;
  counter: 'inserts' | 'updates' | 'deletes';
  op: 'insert' | 'update' | 'delete';
  table: 'orders' | 'users';
  /** the row's id (an insert: known after it) */
  id: number | null;
  stmts: Array<[string, Param[]]>;
  /** looks the write up by its token: did it commit? (an insert: the id it got, else true/false) */
  lookup: ((db: Db) => Promise<number | boolean>) | null;
  dueAt: number;
}

interface Conn { db: Db; serverId: number; threadId: number; landing: string }

/** Where a zone's writes connect: a proxy's write listener or a master, with a small pool. */
interface Target {
  key: string;
  label: string;
  through: string;
  addr: { host: string; port: number; socket?: string | undefined; tls?: ResolvedNode['tls'] };
  ep?: Endpoint;
  idle: Conn[];
  open: number;
  waiting: Array<() => void>;
  downUntil: number;
  backoff: number;
  broken: boolean;
  lastError?: unknown;
}

interface ZoneRun {
  zone: string;
  follower: RoutesFollower;
  own: number[];
  targets: Map<string, Target>;
  r: Counters;
  latencies: number[];
  window: WindowTracker;
  shardWaits: Map<number, { maxMs: number; writes: number }>;
  inFlight: number;
  blockedNow: number;
}

type Counters = Omit<ZoneWorkloadReport, 'ms' | 'tps' | 'through' | 'window' | 'p50Ms' | 'p99Ms' | 'maxMs' | 'shardWaits'> & { connected: boolean };

function newCounters(zone: string): Counters {
  return { zone, transactions: 0, inserts: 0, updates: 0, deletes: 0, foreign: 0, landed: {}, retries: 0, blockedWaits: 0, blockedMs: 0, lostCommits: { found: 0, notFound: 0 }, unknown: 0, errors: 0, errorsByKind: {}, reconnects: 0, lastError: null, connected: true };
}

export async function sandboxWorkload(ctx: Ctx, o: WorkloadOptions): Promise<WorkloadReport> {
  const topo = await ctx.topology();
  const { name: cluster, config } = topo.cluster(o.cluster);
  const model = config.model;
  if (model !== 'global' && !config.shards) throw badInput(`cluster ${cluster} has no shard map (shards.zones) in ${topo.path}`, { hint: 'the workload writes each zone\'s own shards; add a shards: section (or make it model: global with a writerZone)' });
  const zones = o.zones ?? topo.zonesOf(cluster);
  for (const z of zones) if (!topo.zonesOf(cluster).includes(z)) throw badInput(`zone ${JSON.stringify(z)} is not in cluster ${cluster}`, { hint: `zones: ${topo.zonesOf(cluster).join(', ')}` });
  const maxWaitMs = o.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
  const creds = topo.file.appCredentials ?? topo.file.credentials;
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

  // One client of the routing table per zone, as an application in each zone would be: it
  // acknowledges the versions it has seen once its writes begun under older ones are done.
  const followers: RoutesFollower[] = [];
  const stopFollowers = () => Promise.all(followers.map((f) => f.stop().catch(() => undefined)));
  // resolved once everything is stopped and closed: an interrupt waits for it before the exit
  let markFinished: () => void = () => undefined;
  const finished = new Promise<void>((r) => (markFinished = r));
  // written synchronously, one line per acknowledged write: a line is in the file before the
  // next write is decided, and nothing is lost when SIGINT ends the process after the summary
  let ackFd: number | undefined;
  try {
    for (const zone of zones) {
      followers.push(await RoutesFollower.start(ctx, topo, cluster, { intervalMs: o.routesIntervalMs ?? 100, client: { id: `workload:${hostname()}:${process.pid}:${zone}`, zone } }));
    }
    const start = followers[0]!.routes;
    const shardCount = model === 'global' ? GLOBAL_SHARDS : Math.max(...start.shards.map((s) => s.to)) + 1;
    const runs: ZoneRun[] = zones.map((zone, i) => {
      const own = model === 'global' ? [] : shardsBy(start, zone).own;
      if (model !== 'global' && own.length === 0) throw badInput(`zone ${zone} owns no shards in cluster ${cluster} (routing table version ${start.version})`);
      return { zone, follower: followers[i]!, own, targets: new Map(), r: newCounters(zone), latencies: [], window: new WindowTracker(Date.now()), shardWaits: new Map(), inFlight: 0, blockedNow: 0 };
    });
    if (o.ackLog) {
      try {
        ackFd = openSync(o.ackLog, 'a', 0o600);
      } catch (e) {
        throw badInput(`--ack-log ${o.ackLog}: ${(e as Error).message}`);
      }
    }
    const landing = await serverZones(ctx, topo, cluster);
    const run = { stopped: false, abort: new AbortController() };
    const stopBySignal = () => {
      run.stopped = true;
      run.abort.abort();
    };
    if (o.signal?.aborted) stopBySignal();
    else o.signal?.addEventListener('abort', stopBySignal, { once: true });
    const w = new Workload(ctx, topo, cluster, model, creds, o, maxWaitMs, runId, shardCount, landing, ackFd, run);
    for (const z of runs) {
      const t = w.ownTarget(z);
      if (t.key.startsWith('proxy:')) ctx.log.info(`workload ${z.zone}: writing through the zone's proxy at ${t.through.replace(/^proxy /, '')} (it routes to ${model === 'global' ? 'the write zone\'s master' : 'the master'})`);
    }
    const t0 = Date.now();
    for (const z of runs) z.window = new WindowTracker(t0);
    const work = Promise.all(runs.map((z, zi) => w.runZone(z, (o.seed ?? Date.now()) + zi * 7919, t0)));
    const offInterrupt = onInterrupt(async () => {
      run.stopped = true;
      run.abort.abort();
      // until the followers have stopped (their client rows deleted: a round trip each, past
      // 50 ms under load, when the process used to exit before the summary was printed), bounded
      await Promise.race([finished, new Promise((r) => setTimeout(r, 10_000))]);
      // let the command print the summary (a few microtasks after the return) before the process exits
      await new Promise((r) => setTimeout(r, 50));
    });
    const progressMs = o.progressMs ?? DEFAULT_PROGRESS_MS;
    const last = runs.map(() => ({ transactions: 0, errors: 0, kinds: {} as Record<string, number> }));
    let lastAt = Date.now();
    const tick = progressMs > 0 ? setInterval(() => {
      const now = Date.now();
      const secs = Math.max(0.001, (now - lastAt) / 1000);
      runs.forEach((z, i) => {
        const c = z.r;
        const prev = last[i]!;
        const tx = c.transactions - prev.transactions;
        const errs = c.errors - prev.errors;
        const kinds: Record<string, number> = {};
        for (const [k, n] of Object.entries(c.errorsByKind)) if (n - (prev.kinds[k] ?? 0) > 0) kinds[k] = n - (prev.kinds[k] ?? 0);
        const line = `workload ${c.zone}: ${(tx / secs).toFixed(0)} tx/s over the last ${formatDuration(now - lastAt)}, ${c.transactions} tx in all; ${errs} error${errs === 1 ? '' : 's'}${errs ? ` (${kindsText(kinds)})` : ''}${c.errors ? `, ${c.errors} in all` : ''}${z.blockedNow ? `; ${z.blockedNow} waiting for a blocked route (version ${z.follower.routes.version})` : ''}${c.connected ? '' : '; reconnecting'}`;
        if (errs > 0 || !c.connected) ctx.log.warn(line);
        else ctx.log.info(line);
        last[i] = { transactions: c.transactions, errors: c.errors, kinds: { ...c.errorsByKind } };
      });
      lastAt = now;
    }, progressMs) : undefined;
    try {
      const reports = await work;
      return { cluster, database: o.database, model, routesVersion: { start: start.version, end: Math.max(...followers.map((f) => f.routes.version)) }, ackLog: o.ackLog ?? null, interrupted: run.stopped, zones: reports };
    } finally {
      if (tick) clearInterval(tick);
      offInterrupt();
    }
  } finally {
    await stopFollowers();
    if (ackFd !== undefined) closeSync(ackFd);
    markFinished();
  }
}

/** server_id -> zone of every node of the cluster that answers (where a write landed). */
async function serverZones(ctx: Ctx, topo: Topology, cluster: string): Promise<Map<number, { zone: string; node: ResolvedNode }>> {
  const out = new Map<number, { zone: string; node: ResolvedNode }>();
  await Promise.all(topo.nodes(cluster).map(async (n) => {
    try {
      const db = await ctx.connect(n);
      try {
        out.set(Number(await db.value('SELECT @@server_id')), { zone: n.zone, node: n });
      } finally {
        await db.close();
      }
    } catch (e) {
      ctx.log.debug(`workload: ${n.name} does not answer (${(e as Error).message}): writes landing there are counted under "?"`);
    }
  }));
  return out;
}

class Workload {
  private readonly q = (t: string) => quoteId(t);
  private seq = 0;

  constructor(
    private readonly ctx: Ctx,
    private readonly topo: Topology,
    private readonly cluster: string,
    private readonly model: 'global' | 'sharding',
    private readonly creds: ResolvedNode['credentials'],
    private readonly o: WorkloadOptions,
    private readonly maxWaitMs: number,
    private readonly runId: string,
    private readonly shardCount: number,
    private readonly landing: Map<number, { zone: string; node: ResolvedNode }>,
    private readonly ackFd: number | undefined,
    private readonly run: { stopped: boolean; abort: AbortController },
  ) {}

  /**
   * Where a write of zone z's traffic goes for route zone `to` (undefined: z's own target):
   * global: z's proxy (it routes to the write zone's master), or the write zone's master;
   * sharding: the owner zone's proxy, or its master.
   */
  target(z: ZoneRun, to: string): Target {
    const proxyZone = this.model === 'global' ? z.zone : to;
    const proxy = zoneProxy(this.topo, this.cluster, proxyZone);
    const masterZone = to;
    const key = proxy ? `proxy:${proxyZone}` : `master:${masterZone}`;
    let t = z.targets.get(key);
    if (t) return t;
    const master = this.topo.master(this.cluster, proxy ? proxyZone : masterZone);
    // zone z's clients are in zone z: another zone's proxy or master as seen from there (config/via.ts)
    const pa = proxy ? proxyAddressFrom(proxy, 'write', z.zone)! : undefined;
    const ma = addressFrom(master, z.zone);
    const at = pa ? `${pa.host}:${pa.port}` : `${ma.host}:${ma.port}`;
    t = {
      key,
      label: proxy ? `the proxy of ${proxyZone} (${at})` : `${master.name} (${at})`,
      through: proxy ? `proxy ${at}` : `${master.name} ${at}`,
      addr: pa ? { host: pa.host, port: pa.port, tls: master.tls } : { host: ma.host, port: ma.port, socket: ma.socket, tls: master.tls },
      idle: [], open: 0, waiting: [], downUntil: 0, backoff: RECONNECT_MIN_MS, broken: false,
    };
    z.targets.set(key, t);
    return t;
  }

  /** zone z's own target: its proxy, or its master (a global cluster without proxies: the write zone's master) */
  ownTarget(z: ZoneRun): Target {
    return this.target(z, this.model === 'global' ? z.follower.routes.writeZone ?? z.zone : z.zone);
  }

  private async openConn(z: ZoneRun, t: Target): Promise<Conn> {
    t.ep ??= await endpointFrom({ ...t.addr, label: t.through }, this.creds, this.topo.dir, this.ctx.secrets());
    const db = await connect(t.ep, { timeoutMs: this.ctx.opts.connectTimeout * 1000 });
    try {
      await db.exec(`USE ${this.q(this.o.database)}`);
      const row = (await db.query<{ sid: number | string; tid: number | string }>('SELECT @@server_id AS sid, CONNECTION_ID() AS tid'))[0]!;
      const sid = Number(row.sid);
      return { db, serverId: sid, threadId: Number(row.tid), landing: this.landing.get(sid)?.zone ?? '?' };
    } catch (e) {
      await db.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * A connection to t: an idle one or a new one. While t is down (its last connect failed) the
   * write waits for t's next try, backing off from 0.2 s to 5 s, but not past its deadline.
   */
  private async acquire(z: ZoneRun, t: Target, deadline: number): Promise<Conn | { error: unknown }> {
    for (;;) {
      const idle = t.idle.pop();
      if (idle) return idle;
      if (t.open >= MAX_CONNECTIONS) {
        await new Promise<void>((res) => t.waiting.push(res));
        continue;
      }
      const wait = t.downUntil - Date.now();
      if (wait > 0) {
        if (Date.now() + wait > deadline || this.run.stopped) return { error: t.lastError ?? new Error(`no connection to ${t.label}`) };
        await sleep(wait);
        continue;
      }
      t.open++;
      try {
        const c = await this.openConn(z, t);
        if (t.broken) {
          t.broken = false;
          z.r.reconnects++;
          this.ctx.log.info(`workload ${z.zone}: connected again to ${t.label}`);
        }
        t.backoff = RECONNECT_MIN_MS;
        z.r.connected = [...z.targets.values()].every((x) => !x.broken);
        return c;
      } catch (e) {
        this.release(t, undefined);
        if (!t.broken) this.ctx.log.warn(`workload ${z.zone}: cannot connect to ${t.label} (${(e as Error).message}); reconnecting`);
        t.broken = true;
        t.lastError = e;
        z.r.connected = false;
        if (t.downUntil <= Date.now()) {
          t.downUntil = Date.now() + t.backoff;
          t.backoff = Math.min(RECONNECT_MAX_MS, t.backoff * 2);
        }
        return { error: e };
      }
    }
  }

  /** Give a connection back (undefined: it was closed; its slot is free). */
  private release(t: Target, c: Conn | undefined): void {
    if (c) t.idle.push(c);
    else t.open--;
    t.waiting.shift()?.();
  }

  private drop(z: ZoneRun, t: Target, c: Conn, why: unknown): void {
    c.db.conn.destroy();
    this.release(t, undefined);
    if (!t.broken) this.ctx.log.warn(`workload ${z.zone}: lost the connection to ${t.label} (${(why as Error).message}); reconnecting`);
    t.broken = true;
    z.r.connected = false;
  }

  /** zone z's schedule: slot k at t0 + k/tps, each slot one write, run concurrently (a blocked write holds no connection). */
  async runZone(z: ZoneRun, seed: number, t0: number): Promise<ZoneWorkloadReport> {
    const own = this.ownTarget(z);
    const rand = prng(seed);
    let maxId = 0;
    {
      const c = await this.acquire(z, own, Date.now() + (this.o.maxWaitMs ?? DEFAULT_MAX_WAIT_MS));
      if ('error' in c) throw c.error;
      try {
        maxId = Number((await c.db.value<string>(`SELECT COALESCE(MAX(id), 0) FROM ${this.q('orders')}`)) ?? 0);
        this.release(own, c);
      } catch (e) {
        this.drop(z, own, c, e);
        throw e;
      }
    }
    const total = Math.max(1, Math.round((this.o.tps * this.o.durationMs) / 1000));
    const pending = new Set<Promise<void>>();
    let othersAt = -1;
    let others: number[] = [];
    try {
      for (let k = 0; k < total; k++) {
        if (this.run.stopped) break;
        const due = t0 + (k * 1000) / this.o.tps;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        if (this.run.stopped) break;
        while (z.inFlight >= MAX_IN_FLIGHT) await Promise.race(pending);
        if (this.model !== 'global' && othersAt !== z.follower.routes.version) {
          othersAt = z.follower.routes.version;
          others = shardsBy(z.follower.routes, z.zone).others;
        }
        const op = this.decide(z, rand, maxId, others, due);
        z.inFlight++;
        const p: Promise<void> = this.write(z, op).catch((e) => this.fail(z, e)).finally(() => {
          z.inFlight--;
          pending.delete(p);
        });
        pending.add(p);
      }
      await Promise.all(pending);
    } finally {
      for (const t of z.targets.values()) {
        await Promise.all(t.idle.splice(0).map((c) => c.db.close().catch(() => undefined)));
      }
    }
    const ms = Date.now() - t0;
    const { zone: _z, connected: _c, ...counts } = z.r;
    return {
      zone: z.zone,
      through: own.through,
      ...counts,
      landed: { ...z.r.landed },
      lostCommits: { ...z.r.lostCommits },
      errorsByKind: { ...z.r.errorsByKind },
      window: { ...z.window.window },
      p50Ms: percentile(z.latencies, 50),
      p99Ms: percentile(z.latencies, 99),
      maxMs: z.latencies.reduce((a, b) => Math.max(a, b), 0),
      shardWaits: [...z.shardWaits].sort((a, b) => a[0] - b[0]).map(([shard, s]) => ({ shard, ...s })),
      ms,
      tps: (z.r.transactions * 1000) / Math.max(1, ms),
    };
  }

  private fail(z: ZoneRun, e: unknown, kind = errorKind(e)): void {
    z.r.errors++;
    z.r.errorsByKind[kind] = (z.r.errorsByKind[kind] ?? 0) + 1;
    z.r.lastError = (e as Error).message;
    this.ctx.log.debug(`${z.zone}: ${(e as Error).message}`);
  }

  /** The next write of zone z: its shard, kind and statements (decided once: retries repeat it). */
  private decide(z: ZoneRun, rand: () => number, maxId: number, others: number[], dueAt: number): WriteOp {
    const q = this.q;
    const token = `${this.runId}.${z.zone}.${++this.seq}`;
    const global = this.model === 'global';
    const foreign = !global && others.length > 0 && rand() < this.o.conflictRatio;
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    const shard = global ? Math.floor(rand() * this.shardCount) : foreign ? pick(others) : pick(z.own);
    // A loaded order id: loaded rows have shard_id = id % shards (a global cluster: any loaded id).
    const idInShard = (s: number) => {
      if (global) return 1 + Math.floor(rand() * Math.max(1, maxId));
      const base = Math.floor(rand() * Math.max(1, Math.floor(maxId / this.shardCount))) * this.shardCount + s;
      return base >= 1 && base <= maxId ? base : s === 0 ? this.shardCount : s;
    };
    const kind = rand();
    if (kind < 0.4) {
      return {
        token, shard, foreign, counter: 'inserts', op: 'insert', table: 'orders', id: null, dueAt,
        stmts: [
          [`INSERT INTO ${q('orders')} (shard_id, user_id, merchant_id, rider_id, amount, tip, status, items, note, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, NOW(3))`,
            [shard, 1 + Math.floor(rand() * 1000), 1 + Math.floor(rand() * 100), rand() > 0.5 ? 1 + Math.floor(rand() * 100) : null, (1 + rand() * 300).toFixed(2), rand() > 0.7 ? (rand() * 10).toFixed(2) : null, JSON.stringify({ lines: 1, sku: ['tea'] }), token]],
          [`INSERT INTO ${q('order_items')} (order_id, line_no, shard_id, sku, qty, price) VALUES (LAST_INSERT_ID(), 1, ?, 'tea', ?, ?)`, [shard, 1 + Math.floor(rand() * 3), (1 + rand() * 40).toFixed(2)]],
        ],
        lookup: async (db) => Number((await db.value(`SELECT id FROM ${q('orders')} WHERE note = ? LIMIT 1`, [token])) ?? 0) || false,
      };
    }
    if (kind < 0.85) {
      const id = idInShard(shard);
      if (rand() < 0.7) {
        return {
          token, shard, foreign, counter: 'updates', op: 'update', table: 'orders', id, dueAt,
          stmts: [[`UPDATE ${q('orders')} SET status = ?, amount = amount + ?, note = ? WHERE id = ?`, [1 + Math.floor(rand() * 4), (rand() * 5).toFixed(2), token, id]]],
          lookup: async (db) => Number(await db.value(`SELECT COUNT(*) FROM ${q('orders')} WHERE id = ? AND note = ?`, [id, token])) > 0,
        };
      }
      const email = `${token}@${z.zone}.example.com`;
      return {
        token, shard, foreign, counter: 'updates', op: 'update', table: 'users', id, dueAt,
        stmts: [[`UPDATE ${q('users')} SET balance = balance + ?, email = ? WHERE id = ?`, [(rand() * 20 - 10).toFixed(2), email, id]]],
        lookup: async (db) => Number(await db.value(`SELECT COUNT(*) FROM ${q('users')} WHERE id = ? AND email = ?`, [id, email])) > 0,
      };
    }
    const id = idInShard(shard);
    return {
      token, shard, foreign, counter: 'deletes', op: 'delete', table: 'orders', id, dueAt,
      // deleting again is harmless: a delete whose COMMIT answer was lost is simply retried
      stmts: [[`DELETE FROM ${q('order_items')} WHERE order_id = ?`, [id]], [`DELETE FROM ${q('orders')} WHERE id = ?`, [id]]],
      lookup: null,
    };
  }

  /** One write until it is acknowledged, fails, or --max-wait passes. */
  private async write(z: ZoneRun, op: WriteOp): Promise<void> {
    const deadline = op.dueAt + this.maxWaitMs;
    const global = this.model === 'global';
    let retried = false;
    for (let attempt = 1; ; attempt++) {
      let outcome: Outcome;
      try {
        if (op.foreign) {
          // deliberately into a zone that does not own the shard: the traffic zone's own master
          outcome = await this.attempt(z, this.ownTarget(z), op, null, deadline);
        } else {
          const shardId = global ? undefined : op.shard;
          const calledAt = Date.now();
          const blocked = routeOf(z.follower.routes, shardId)?.state === 'blocked';
          if (blocked) z.blockedNow++;
          let counted = false;
          const uncount = () => {
            if (blocked && !counted) {
              counted = true;
              z.blockedNow--;
              z.r.blockedWaits++;
              z.r.blockedMs += Date.now() - calledAt;
            }
          };
          try {
            outcome = await z.follower.write(shardId, async (route) => {
              uncount();
              return this.attempt(z, this.target(z, route.zone), op, route.version, deadline);
            }, { waitMs: Math.max(0, deadline - Date.now()), signal: this.run.abort.signal });
          } finally {
            uncount();
          }
        }
      } catch (e) {
        if (isRouteBlocked(e)) {
          this.fail(z, e, 'blocked route');
          return;
        }
        if (e instanceof EzError && this.run.abort.signal.aborted) {
          this.fail(z, new Error(`interrupted while write ${op.token} waited for its blocked route`), 'interrupted');
          return;
        }
        throw e;
      }
      if (outcome.kind === 'ok') {
        this.acknowledge(z, op, outcome, retried);
        return;
      }
      if (outcome.kind === 'unknown') {
        z.r.unknown++;
        z.r.lastError = (outcome.error as Error).message;
        this.ctx.log.warn(`workload ${z.zone}: the COMMIT of write ${op.token} lost its answer and it could not be looked up (${(outcome.error as Error).message}): counted as unknown, not retried`);
        return;
      }
      if (outcome.kind === 'fail') {
        this.fail(z, outcome.error, outcome.errorKind);
        return;
      }
      // retry: the same write, after a short pause, while --max-wait allows
      if (this.run.stopped) {
        this.fail(z, new Error(`interrupted while write ${op.token} was retried: ${(outcome.error as Error).message}`), 'interrupted');
        return;
      }
      if (Date.now() >= deadline) {
        this.fail(z, new Error(`gave up after --max-wait ${formatDuration(this.maxWaitMs)}: ${(outcome.error as Error).message}`), outcome.errorKind);
        return;
      }
      z.r.retries++;
      retried = true;
      await sleep(Math.min(200, 10 * attempt));
    }
  }

  private acknowledge(z: ZoneRun, op: WriteOp, ok: { landing: string; id: number | null; version: number | null }, retried: boolean): void {
    const now = Date.now();
    const ms = now - op.dueAt;
    z.r.transactions++;
    z.r[op.counter]++;
    if (op.foreign) z.r.foreign++;
    z.r.landed[ok.landing] = (z.r.landed[ok.landing] ?? 0) + 1;
    z.latencies.push(ms);
    z.window.commit(now);
    if (this.model !== 'global' && (retried || ms >= 100)) {
      const s = z.shardWaits.get(op.shard) ?? { maxMs: 0, writes: 0 };
      s.maxMs = Math.max(s.maxMs, ms);
      s.writes++;
      z.shardWaits.set(op.shard, s);
    }
    if (this.ackFd !== undefined) writeSync(this.ackFd, JSON.stringify({
      zone: ok.landing, from: z.zone, table: `${this.o.database}.${op.table}`, key: { id: ok.id ?? op.id }, op: op.op, token: op.token,
      shard: op.shard, foreign: op.foreign, version: ok.version, ms, at: new Date(now).toISOString(),
    }) + '\n');
  }

  /** One attempt of a write on a connection to t. */
  private async attempt(z: ZoneRun, t: Target, op: WriteOp, version: number | null, deadline: number): Promise<Outcome> {
    const c = await this.acquire(z, t, deadline);
    if ('error' in c) return { kind: 'retry', error: c.error, errorKind: `connect ${errorKind(c.error)}` };
    let committing = false;
    try {
      await c.db.exec('BEGIN');
      let id = op.id;
      for (const [i, [sql, params]] of op.stmts.entries()) {
        const res = await c.db.exec(sql, params);
        if (i === 0 && op.op === 'insert') id = Number(res.insertId);
      }
      committing = true;
      await c.db.exec('COMMIT');
      this.release(t, c);
      return { kind: 'ok', landing: c.landing, id, version };
    } catch (e) {
      if (committing && connectionBroken(e)) {
        // the COMMIT was sent and its answer lost: it may have committed. Look it up by its token
        // (once the old session is gone at the server) rather than write it twice.
        this.drop(z, t, c, e);
        return this.afterLostCommit(z, c, op, e, version, deadline);
      }
      const next = onAttemptError(e);
      if (next === 'reconnect') this.drop(z, t, c, e);
      else {
        await c.db.exec('ROLLBACK').catch(() => undefined);
        this.release(t, c);
      }
      if (next === 'fail') return { kind: 'fail', error: e, errorKind: errorKind(e) };
      return { kind: 'retry', error: e, errorKind: errorKind(e) };
    }
  }

  /**
   * The COMMIT of op was sent on c and its answer lost. Wait until the server has let the old
   * session go (it may still be committing), then look the write up by its token: found, it is
   * acknowledged; not found, it is retried. A lookup that cannot be made (the server unreachable
   * for 10 s, or past the write's deadline if that is later) leaves it unknown.
   */
  private async afterLostCommit(z: ZoneRun, c: Conn, op: WriteOp, lost: unknown, version: number | null, deadline: number): Promise<Outcome> {
    if (!op.lookup) return { kind: 'retry', error: lost, errorKind: errorKind(lost) };
    const where = this.landing.get(c.serverId);
    if (!where) return { kind: 'unknown', error: new Error(`the server (server_id ${c.serverId}) is not a node of the topology file`) };
    const until = Math.max(deadline, Date.now() + 10_000);
    let last: unknown = lost;
    while (Date.now() < until) {
      try {
        const a = addressFrom(where.node, z.zone);
        const ep = await endpointFrom({ host: a.host, port: a.port, socket: a.socket, tls: where.node.tls, label: `${where.node.name} (looking up write ${op.token})` }, this.creds, this.topo.dir, this.ctx.secrets());
        const db = await connect(ep, { timeoutMs: this.ctx.opts.connectTimeout * 1000 });
        try {
          while (Number(await db.value('SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?', [c.threadId])) > 0) {
            if (Date.now() > until) return { kind: 'unknown', error: new Error(`session ${c.threadId} at ${where.node.name} was still there long after its COMMIT lost its answer`) };
            await sleep(20);
          }
          await db.exec(`USE ${this.q(this.o.database)}`);
          const found = await op.lookup(db);
          if (found === false) {
            z.r.lostCommits.notFound++;
            return { kind: 'retry', error: lost, errorKind: errorKind(lost) };
          }
          z.r.lostCommits.found++;
          return { kind: 'ok', landing: where.zone, id: typeof found === 'number' ? found : op.id, version };
        } finally {
          await db.close().catch(() => undefined);
        }
      } catch (e) {
        last = e;
        if (!connectionBroken(e)) break;
        await sleep(100);
      }
    }
    return { kind: 'unknown', error: last };
  }
}

type Outcome =
  | { kind: 'ok'; landing: string; id: number | null; version: number | null }
  | { kind: 'retry'; error: unknown; errorKind: string }
  | { kind: 'fail'; error: unknown; errorKind: string }
  | { kind: 'unknown'; error: unknown };
