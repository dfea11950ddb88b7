// The client side of the routing table: polls every zone master (the highest version wins), keeps
// working while a zone is down, runs each write under the current route (waiting while it is
// blocked), and acknowledges a version once no write begun under an older one is in flight (the
// drain a shard move waits for). The workload uses it; an SDK would do the same over `gz serve`.
import type { Ctx } from '../context.js';
import type { Topology } from '../config/load.js';
import type { Db } from '../db/connect.js';
import { quoteTable } from '../db/quote.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { EzError, ExitCode, badInput } from '../exit.js';
import { ackRoutes, CLIENTS_TABLE, readRoutes, readRoutesAt, routeOf, type Routes } from './index.js';

/** A write refused because its route stayed blocked longer than the caller would wait. */
export class RouteBlockedError extends EzError {
  readonly reason = 'blocked' as const;
  constructor(
    message: string,
    readonly version: number,
    readonly zone: string,
  ) {
    super(ExitCode.refused, message, { hint: 'a zone switch or shard move holds the route; the write can be retried once it flips or rolls back' });
  }
}

export function isRouteBlocked(e: unknown): e is RouteBlockedError {
  return e instanceof RouteBlockedError || (e instanceof EzError && (e as { reason?: string }).reason === 'blocked');
}

export interface FollowerOptions {
  /** how often each zone master is asked (default 100 ms) */
  intervalMs?: number;
  /** who this client is, for acknowledgements (none without it) */
  client?: { id: string; zone: string };
  /** how often an acknowledgement is repeated as a heartbeat (default 1 s) */
  heartbeatMs?: number;
}

interface ZoneState { version: number | null; error?: string; db?: Db }

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export class RoutesFollower {
  private current: Routes;
  private readonly zones = new Map<string, ZoneState>();
  private readonly listeners = new Set<(r: Routes) => void>();
  private readonly waiters = new Set<() => void>();
  private readonly inFlight = new Map<number, number>();
  private readonly stopper = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private ackDb: Db | undefined;
  private lastAcked = -1;
  private ackPending = false;
  private ackKick: (() => void) | undefined;
  private readonly intervalMs: number;

  private constructor(
    private readonly ctx: Ctx,
    private readonly topo: Topology,
    readonly cluster: string,
    initial: Routes,
    private readonly o: FollowerOptions,
  ) {
    this.current = initial;
    this.intervalMs = Math.max(10, o.intervalMs ?? 100);
  }

  static async start(ctx: Ctx, topo: Topology, cluster: string, o: FollowerOptions = {}): Promise<RoutesFollower> {
    if (o.client && !topo.zonesOf(cluster).includes(o.client.zone)) throw badInput(`cluster ${cluster} has no zone ${JSON.stringify(o.client.zone)} (the client's zone)`, { hint: `zones: ${topo.zonesOf(cluster).join(', ')}` });
    const first = await readRoutes(ctx, topo, cluster);
    const f = new RoutesFollower(ctx, topo, cluster, first.routes, o);
    for (const [z, s] of Object.entries(first.zones)) f.zones.set(z, { version: s.version, ...(s.error ? { error: s.error } : {}) });
    for (const z of topo.zonesOf(cluster)) f.loops.push(f.pollZone(z));
    if (o.client) f.loops.push(f.ackLoop());
    return f;
  }

  /** The current table (the highest version seen at any zone). */
  get routes(): Routes {
    return this.current;
  }

  /** Each zone's version as last read (null: none there, or unreachable: see error). */
  get zoneVersions(): Record<string, { version: number | null; error?: string }> {
    const out: Record<string, { version: number | null; error?: string }> = {};
    for (const [z, s] of this.zones) out[z] = { version: s.version, ...(s.error ? { error: s.error } : {}) };
    return out;
  }

  onChange(cb: (r: Routes) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Resolves at the next version change, or after ms (false). */
  waitChange(ms: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      let t: NodeJS.Timeout | undefined;
      const done = (changed: boolean) => {
        if (t) clearTimeout(t);
        this.waiters.delete(onChange);
        signal?.removeEventListener('abort', onAbort);
        this.stopper.signal.removeEventListener('abort', onAbort);
        resolve(changed);
      };
      const onChange = () => done(true);
      const onAbort = () => done(false);
      this.waiters.add(onChange);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.stopper.signal.addEventListener('abort', onAbort, { once: true });
      t = setTimeout(() => done(false), Math.max(0, ms));
    });
  }

  /**
   * Run a write for `shardId` (undefined: a global cluster) under the current route: waits while
   * the route is blocked (up to waitMs, default 30 s, then throws RouteBlockedError, an EzError
   * refused); the write is in flight under the version it began with until fn settles.
   */
  async write<T>(shardId: number | undefined, fn: (route: { zone: string; version: number }) => Promise<T>, o: { waitMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const waitMs = o.waitMs ?? 30_000;
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (o.signal?.aborted) throw new EzError(ExitCode.interrupted, 'write interrupted while its route was blocked');
      if (this.stopper.signal.aborted) throw new EzError(ExitCode.runtime, `the routing table follower of ${this.cluster} is stopped`);
      const r = this.current;
      const route = routeOf(r, shardId);
      if (!route) {
        throw badInput(
          r.model === 'global' ? `cluster ${this.cluster} has no write zone in its routing table (version ${r.version})` : shardId === undefined ? `cluster ${this.cluster} is a sharding cluster: a write needs its shard id` : `shard ${shardId} of cluster ${this.cluster} has no owner zone in the routing table (version ${r.version})`,
        );
      }
      if (route.state === 'active') {
        const version = r.version;
        this.inFlight.set(version, (this.inFlight.get(version) ?? 0) + 1);
        try {
          return await fn({ zone: route.zone, version });
        } finally {
          const n = (this.inFlight.get(version) ?? 1) - 1;
          if (n <= 0) this.inFlight.delete(version);
          else this.inFlight.set(version, n);
          if (this.ackedVersion() > this.lastAcked) this.kickAck();
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const what = shardId === undefined ? `the write route of cluster ${this.cluster} (zone ${route.zone})` : `shard ${shardId} of cluster ${this.cluster} (zone ${route.zone})`;
        throw new RouteBlockedError(`${what} is blocked in routing table version ${r.version} (${r.reason}); waited ${waitMs} ms`, r.version, route.zone);
      }
      await this.waitChange(Math.min(left, 1000), o.signal);
    }
  }

  /** The version this client can acknowledge: the oldest version a write in flight began under, else the current one. */
  ackedVersion(): number {
    let v = this.current.version;
    for (const [ver, n] of this.inFlight) if (n > 0 && ver < v) v = ver;
    return v;
  }

  /** Writes in flight now (all versions). */
  get inFlightCount(): number {
    let n = 0;
    for (const c of this.inFlight.values()) n += c;
    return n;
  }

  async stop(): Promise<void> {
    if (this.stopper.signal.aborted) return;
    this.stopper.abort();
    for (const w of [...this.waiters]) w();
    await Promise.allSettled(this.loops);
    // a stopped client is no longer one to wait for
    if (this.o.client && this.ackDb) {
      await this.ackDb.exec(`DELETE FROM ${quoteTable(STATE_SCHEMA, CLIENTS_TABLE)} WHERE cluster = ? AND client = ?`, [this.cluster, this.o.client.id]).catch(() => {});
    }
    await this.ackDb?.close();
    this.ackDb = undefined;
    for (const s of this.zones.values()) {
      await s.db?.close();
      delete s.db;
    }
  }

  private adopt(r: Routes): void {
    if (r.version <= this.current.version) return;
    this.current = r;
    for (const w of [...this.waiters]) w();
    for (const cb of [...this.listeners]) {
      try {
        cb(r);
      } catch (e) {
        this.ctx.log.warn(`routes ${this.cluster}: a change listener failed: ${(e as Error).message}`);
      }
    }
    this.kickAck();
  }

  private async pollZone(zone: string): Promise<void> {
    const signal = this.stopper.signal;
    const s = this.zones.get(zone) ?? { version: null };
    this.zones.set(zone, s);
    while (!signal.aborted) {
      let failed = false;
      try {
        // a client follows the table from its own zone (other zones' masters across the distance)
        if (!s.db) s.db = await this.ctx.connect(this.topo.master(this.cluster, zone), this.o.client ? { fromZone: this.o.client.zone } : undefined);
        if (signal.aborted) break;
        const r = await readRoutesAt(s.db, this.cluster);
        s.version = r?.version ?? null;
        delete s.error;
        if (r) this.adopt(r);
      } catch (e) {
        failed = true;
        if (!s.error) this.ctx.log.debug(`routes ${this.cluster}: zone ${zone} unreachable: ${(e as Error).message}`);
        s.error = (e as Error).message;
        const db = s.db;
        delete s.db;
        await db?.close();
      }
      // a zone that is down is asked again less often; the others go on meanwhile
      await sleep(failed ? Math.max(this.intervalMs, 1000) : this.intervalMs, signal);
    }
  }

  private kickAck(): void {
    this.ackPending = true;
    this.ackKick?.();
  }

  private async ackLoop(): Promise<void> {
    const client = this.o.client!;
    const signal = this.stopper.signal;
    const heartbeat = Math.max(50, this.o.heartbeatMs ?? 1000);
    this.ackPending = true;
    while (!signal.aborted) {
      this.ackPending = false;
      const version = this.ackedVersion();
      let failed = false;
      try {
        if (!this.ackDb) {
          const db = await this.ctx.connect(this.topo.master(this.cluster, client.zone), { fromZone: client.zone });
          // a client user may not create tables (the publishes made them); the ack itself says if they are missing
          await ensureStateSchema(db).catch((e: Error) => this.ctx.log.debug(`routes ${this.cluster}: ${e.message}`));
          this.ackDb = db;
        }
        if (signal.aborted) break;
        await ackRoutes(this.ackDb, { cluster: this.cluster, client: client.id, zone: client.zone, version, inFlight: this.inFlightCount });
        this.lastAcked = version;
      } catch (e) {
        failed = true;
        this.ctx.log.debug(`routes ${this.cluster}: acknowledgement at zone ${client.zone} failed: ${(e as Error).message}`);
        const db = this.ackDb;
        this.ackDb = undefined;
        await db?.close();
      }
      if (this.ackPending && !failed) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, heartbeat);
        function done() {
          clearTimeout(t);
          signal.removeEventListener('abort', done);
          resolve();
        }
        this.ackKick = done;
        signal.addEventListener('abort', done, { once: true });
      });
      this.ackKick = undefined;
    }
  }
}
