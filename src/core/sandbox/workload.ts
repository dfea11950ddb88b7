// ezctl sandbox workload: inserts, updates and deletes in each zone's master, for the shards
// that zone owns; at --conflict-ratio R, into shards another zone owns (conflicts and illegal
// writes for DRC to handle). Writes as the application user, as a real service would, and through
// the zone's proxy when the topology file names one: a switch's write-unavailable window is then
// what an application would see.
import type { Ctx } from '../context.js';
import { badInput } from '../exit.js';
import { onInterrupt } from '../signals.js';
import { formatDuration } from '../throttle/duration.js';
import { quoteId } from '../db/quote.js';
import { connect, endpointFrom, type Db, type Param } from '../db/connect.js';
import { prng } from './load.js';
import type { ResolvedNode } from '../config/load.js';
import { zoneProxy } from '../proxy/index.js';

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
}

export interface ZoneWorkloadReport {
  zone: string;
  /** where it wrote: "proxy 127.0.0.1:31001" (the zone's proxy) or "bj-master 127.0.0.1:3306" */
  through: string;
  transactions: number;
  inserts: number;
  updates: number;
  deletes: number;
  /** transactions that wrote into shards another zone owns */
  foreign: number;
  /** transactions retried after a deadlock or lock wait timeout */
  retries: number;
  errors: number;
  /** errors by kind: the server's error code, connect failures, or 'no connection' (a slot while reconnecting) */
  errorsByKind: Record<string, number>;
  /** connections opened again after they broke (a master restarted, say) */
  reconnects: number;
  lastError: string | null;
  ms: number;
  tps: number;
}

export interface WorkloadReport { cluster: string; database: string; interrupted: boolean; zones: ZoneWorkloadReport[] }

/** Reconnect attempts of a worker back off from this to RECONNECT_MAX_MS. */
const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 5_000;
export const DEFAULT_PROGRESS_MS = 5_000;

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ZonePlan { zone: string; own: number[]; others: number[] }

export async function sandboxWorkload(ctx: Ctx, o: WorkloadOptions): Promise<WorkloadReport> {
  const topo = await ctx.topology();
  const { name: cluster, config } = topo.cluster(o.cluster);
  if (!config.shards) throw badInput(`cluster ${cluster} has no shard map (shards.zones) in ${topo.path}`, { hint: 'the workload writes each zone\'s own shards; add a shards: section' });
  const zones = o.zones ?? topo.zonesOf(cluster);
  for (const z of zones) if (!topo.zonesOf(cluster).includes(z)) throw badInput(`zone ${JSON.stringify(z)} is not in cluster ${cluster}`, { hint: `zones: ${topo.zonesOf(cluster).join(', ')}` });
  const all = Object.values(config.shards.zones).flat();
  const shards = Math.max(...all) + 1;
  const plans: ZonePlan[] = zones.map((zone) => {
    const own = config.shards!.zones[zone] ?? [];
    return { zone, own, others: all.filter((s) => !own.includes(s)) };
  });
  for (const p of plans) if (p.own.length === 0) throw badInput(`zone ${p.zone} owns no shards in cluster ${cluster}`);
  const creds = topo.file.appCredentials ?? topo.file.credentials;
  // SIGINT/SIGTERM: the workers stop taking slots, finish the transaction they are in, and the
  // report (the summary) is printed before the process exits 130.
  const run: RunState = { stopped: false };
  const counters = plans.map((p) => newCounters(p.zone));
  const targets = plans.map((plan) => {
    const master = topo.master(cluster, plan.zone);
    const proxy = zoneProxy(topo, cluster, plan.zone);
    if (!proxy) return { ...master, label: `${master.name} (${master.host}:${master.port})`, through: `${master.name} ${master.host}:${master.port}` };
    const { socket: _s, ...viaProxy } = master;
    const at = `${proxy.write.host}:${proxy.write.port}`;
    ctx.log.info(`workload ${plan.zone}: writing through the zone's proxy at ${at} (it routes to the master)`);
    return { ...viaProxy, host: proxy.write.host, port: proxy.write.port, label: `the proxy of ${plan.zone} (${at})`, through: `proxy ${at}` };
  });
  const work = Promise.all(plans.map(async (plan, zi) => {
    return runZone(ctx, targets[zi]!, creds, topo.dir, plan, shards, o, (o.seed ?? Date.now()) + zi * 7919, counters[zi]!, run);
  }));
  const offInterrupt = onInterrupt(async () => {
    run.stopped = true;
    await work.catch(() => undefined);
    // let the command print the summary (a few microtasks after `work`) before the process exits
    await new Promise((r) => setTimeout(r, 50));
  });
  const progressMs = o.progressMs ?? DEFAULT_PROGRESS_MS;
  const last = counters.map((c) => ({ transactions: 0, errors: 0, kinds: {} as Record<string, number> }));
  let lastAt = Date.now();
  const tick = progressMs > 0 ? setInterval(() => {
    const now = Date.now();
    const secs = Math.max(0.001, (now - lastAt) / 1000);
    counters.forEach((c, i) => {
      const prev = last[i]!;
      const tx = c.transactions - prev.transactions;
      const errs = c.errors - prev.errors;
      const kinds: Record<string, number> = {};
      for (const [k, n] of Object.entries(c.errorsByKind)) if (n - (prev.kinds[k] ?? 0) > 0) kinds[k] = n - (prev.kinds[k] ?? 0);
      const line = `workload ${c.zone}: ${(tx / secs).toFixed(0)} tx/s over the last ${formatDuration(now - lastAt)}, ${c.transactions} tx in all; ${errs} error${errs === 1 ? '' : 's'}${errs ? ` (${kindsText(kinds)})` : ''}${c.errors ? `, ${c.errors} in all` : ''}${c.connected ? '' : '; reconnecting'}`;
      if (errs > 0 || !c.connected) ctx.log.warn(line);
      else ctx.log.info(line);
      last[i] = { transactions: c.transactions, errors: c.errors, kinds: { ...c.errorsByKind } };
    });
    lastAt = now;
  }, progressMs) : undefined;
  try {
    const reports = await work;
    return { cluster, database: o.database, interrupted: run.stopped, zones: reports };
  } finally {
    if (tick) clearInterval(tick);
    offInterrupt();
  }
}

interface RunState { stopped: boolean }

/** a zone's report as it builds up (ms and tps come at the end), and whether it is connected now */
type Counters = Omit<ZoneWorkloadReport, 'ms' | 'tps' | 'through'> & { connected: boolean };

function newCounters(zone: string): Counters {
  return { zone, transactions: 0, inserts: 0, updates: 0, deletes: 0, foreign: 0, retries: 0, errors: 0, errorsByKind: {}, reconnects: 0, lastError: null, connected: true };
}

/** where a zone's workers connect: its master, or its proxy's write listener */
type Target = ResolvedNode & { label: string; through: string };

async function runZone(ctx: Ctx, master: Target, creds: ResolvedNode['credentials'], baseDir: string, plan: ZonePlan, shards: number, o: WorkloadOptions, seed: number, r: Counters, run: RunState): Promise<ZoneWorkloadReport> {
  const ep = await endpointFrom({ host: master.host, port: master.port, socket: master.socket, tls: master.tls, label: master.through }, creds, baseDir, ctx.secrets());
  const workers = Math.min(16, Math.max(1, Math.ceil(o.tps / 150)));
  const open = async () => {
    const db = await connect(ep, { timeoutMs: ctx.opts.connectTimeout * 1000 });
    try {
      await db.exec(`USE ${quoteId(o.database)}`);
    } catch (e) {
      await db.close();
      throw e;
    }
    return db;
  };
  // Each worker's connection; undefined while it is being opened again after it broke.
  const conns: Array<Db | undefined> = [];
  try {
    for (let i = 0; i < workers; i++) conns.push(await open());
    const q = (t: string) => quoteId(t);
    const maxId = Number((await conns[0]!.value<string>(`SELECT COALESCE(MAX(id), 0) FROM ${q('orders')}`)) ?? 0);
    const rand = prng(seed);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    const t0 = Date.now();
    const total = Math.max(1, Math.round((o.tps * o.durationMs) / 1000));
    let next = 0;
    const fail = (e: unknown, kind = errorKind(e)) => {
      r.errors++;
      r.errorsByKind[kind] = (r.errorsByKind[kind] ?? 0) + 1;
      r.lastError = (e as Error).message;
      ctx.log.debug(`${plan.zone}: ${(e as Error).message}`);
    };
    // A loaded order id whose shard is `shard`: loaded rows have shard_id = id % shards.
    const idInShard = (shard: number) => {
      const base = Math.floor(rand() * Math.max(1, Math.floor(maxId / shards))) * shards + shard;
      return base >= 1 && base <= maxId ? base : shard === 0 ? shards : shard;
    };
    /** One transaction; false when the connection broke (the worker then opens a new one). */
    const one = async (db: Db): Promise<boolean> => {
      const foreign = plan.others.length > 0 && rand() < o.conflictRatio;
      const shard = foreign ? pick(plan.others) : pick(plan.own);
      const kind = rand();
      const stmts: Array<[string, Param[]]> = [];
      let counter: 'inserts' | 'updates' | 'deletes';
      if (kind < 0.4) {
        counter = 'inserts';
        stmts.push([
          `INSERT INTO ${q('orders')} (shard_id, user_id, merchant_id, rider_id, amount, tip, status, items, note, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, NOW(3))`,
          [shard, 1 + Math.floor(rand() * 1000), 1 + Math.floor(rand() * 100), rand() > 0.5 ? 1 + Math.floor(rand() * 100) : null, (1 + rand() * 300).toFixed(2), rand() > 0.7 ? (rand() * 10).toFixed(2) : null, JSON.stringify({ lines: 1, sku: ['tea'] }), rand() > 0.9 ? '' : null],
        ]);
        stmts.push([`INSERT INTO ${q('order_items')} (order_id, line_no, shard_id, sku, qty, price) VALUES (LAST_INSERT_ID(), 1, ?, 'tea', ?, ?)`, [shard, 1 + Math.floor(rand() * 3), (1 + rand() * 40).toFixed(2)]]);
      } else if (kind < 0.85) {
        counter = 'updates';
        const id = idInShard(shard);
        if (rand() < 0.7) {
          stmts.push([`UPDATE ${q('orders')} SET status = ?, amount = amount + ?, note = ? WHERE id = ?`, [1 + Math.floor(rand() * 4), (rand() * 5).toFixed(2), rand() > 0.5 ? `updated in ${plan.zone}` : null, id]]);
        } else {
          stmts.push([`UPDATE ${q('users')} SET balance = balance + ?, email = ? WHERE id = ?`, [(rand() * 20 - 10).toFixed(2), rand() > 0.5 ? `u${id}@${plan.zone}.example.com` : null, id]]);
        }
      } else {
        counter = 'deletes';
        const id = idInShard(shard);
        stmts.push([`DELETE FROM ${q('order_items')} WHERE order_id = ?`, [id]]);
        stmts.push([`DELETE FROM ${q('orders')} WHERE id = ?`, [id]]);
      }
      // A deadlock or lock wait (with DRC's locking reads, say), or a table changed under an open
      // transaction (an online schema change's cut-over), is retried, as an application does;
      // anything else is an error.
      for (let attempt = 1; ; attempt++) {
        try {
          await db.exec('BEGIN');
          for (const [sql, params] of stmts) await db.exec(sql, params);
          await db.exec('COMMIT');
          r.transactions++;
          r[counter]++;
          if (foreign) r.foreign++;
          return true;
        } catch (e) {
          if (connectionBroken(e)) {
            fail(e);
            return false;
          }
          await db.exec('ROLLBACK').catch(() => undefined);
          const code = (e as { code?: string }).code;
          if ((code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_TABLE_DEF_CHANGED') && attempt < 5) {
            r.retries++;
            continue;
          }
          fail(e);
          return true;
        }
      }
    };
    // Each worker takes the next slot of a fixed schedule (slot k at t0 + k/tps): a steady rate,
    // catching up without bursts beyond the worker count when a slot ran late. A worker whose
    // connection broke opens a new one, backing off from RECONNECT_MIN_MS to RECONNECT_MAX_MS;
    // the slots that pass meanwhile are errors of kind 'no connection' (not written, not queued).
    const broken = new Set<number>();
    await Promise.all(conns.map(async (_c, w) => {
      let backoff = RECONNECT_MIN_MS;
      let retryAt = 0;
      for (;;) {
        if (run.stopped) return;
        const k = next++;
        if (k >= total) return;
        const due = t0 + (k * 1000) / o.tps;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        if (run.stopped) return;
        let db = conns[w];
        if (!db && Date.now() >= retryAt) {
          try {
            db = conns[w] = await open();
            r.reconnects++;
            broken.delete(w);
            r.connected = broken.size === 0;
            ctx.log.info(`workload ${plan.zone}: connected again to ${master.label}`);
            backoff = RECONNECT_MIN_MS;
          } catch (e) {
            fail(e, `connect ${errorKind(e)}`);
            retryAt = Date.now() + backoff;
            backoff = Math.min(RECONNECT_MAX_MS, backoff * 2);
            continue;
          }
        }
        if (!db) {
          fail(new Error(`no connection to ${master.label}: reconnecting`), 'no connection');
          continue;
        }
        if (!(await one(db))) {
          if (!broken.size) ctx.log.warn(`workload ${plan.zone}: lost the connection to ${master.label} (${r.lastError}); reconnecting`);
          broken.add(w);
          r.connected = false;
          conns[w] = undefined;
          db.conn.destroy();
          retryAt = Date.now() + backoff;
        }
      }
    }));
    const ms = Date.now() - t0;
    const { zone: _z, connected: _c, ...counts } = r;
    return { zone: plan.zone, through: master.through, ...counts, errorsByKind: { ...r.errorsByKind }, ms, tps: (r.transactions * 1000) / Math.max(1, ms) };
  } finally {
    await Promise.all(conns.map((c) => c?.close()));
  }
}
