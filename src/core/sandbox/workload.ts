// ezctl sandbox workload: inserts, updates and deletes in each zone's master, for the shards
// that zone owns; at --conflict-ratio R, into shards another zone owns (conflicts and illegal
// writes for DRC to handle). Writes as the application user, as a real service would.
import type { Ctx } from '../context.js';
import { badInput } from '../exit.js';
import { quoteId } from '../db/quote.js';
import { connect, endpointFrom, type Db, type Param } from '../db/connect.js';
import { prng } from './load.js';
import type { ResolvedNode } from '../config/load.js';

export interface WorkloadOptions {
  tps: number;
  seconds: number;
  conflictRatio: number;
  database: string;
  cluster?: string;
  zones?: string[];
  seed?: number;
}

export interface ZoneWorkloadReport {
  zone: string;
  transactions: number;
  inserts: number;
  updates: number;
  deletes: number;
  /** transactions that wrote into shards another zone owns */
  foreign: number;
  /** transactions retried after a deadlock or lock wait timeout */
  retries: number;
  errors: number;
  lastError: string | null;
  ms: number;
  tps: number;
}

export interface WorkloadReport { cluster: string; database: string; zones: ZoneWorkloadReport[] }

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
  const reports = await Promise.all(plans.map(async (plan, zi) => {
    const master = topo.master(cluster, plan.zone);
    return runZone(ctx, master, creds, topo.dir, plan, shards, o, (o.seed ?? Date.now()) + zi * 7919);
  }));
  return { cluster, database: o.database, zones: reports };
}

async function runZone(ctx: Ctx, master: ResolvedNode, creds: ResolvedNode['credentials'], baseDir: string, plan: ZonePlan, shards: number, o: WorkloadOptions, seed: number): Promise<ZoneWorkloadReport> {
  const ep = await endpointFrom({ host: master.host, port: master.port, socket: master.socket, tls: master.tls, label: `${master.name} ${master.host}:${master.port}` }, creds, baseDir, ctx.secrets());
  const workers = Math.min(16, Math.max(1, Math.ceil(o.tps / 150)));
  const conns: Db[] = [];
  try {
    for (let i = 0; i < workers; i++) conns.push(await connect(ep, { timeoutMs: ctx.opts.connectTimeout * 1000 }));
    for (const c of conns) await c.exec(`USE ${quoteId(o.database)}`);
    const q = (t: string) => quoteId(t);
    const maxId = Number((await conns[0]!.value<string>(`SELECT COALESCE(MAX(id), 0) FROM ${q('orders')}`)) ?? 0);
    const r = { transactions: 0, inserts: 0, updates: 0, deletes: 0, foreign: 0, retries: 0, errors: 0, lastError: null as string | null };
    const rand = prng(seed);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    const t0 = Date.now();
    const total = Math.max(1, Math.round(o.tps * o.seconds));
    let next = 0;
    // A loaded order id whose shard is `shard`: loaded rows have shard_id = id % shards.
    const idInShard = (shard: number) => {
      const base = Math.floor(rand() * Math.max(1, Math.floor(maxId / shards))) * shards + shard;
      return base >= 1 && base <= maxId ? base : shard === 0 ? shards : shard;
    };
    const one = async (db: Db) => {
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
          return;
        } catch (e) {
          await db.exec('ROLLBACK').catch(() => undefined);
          const code = (e as { code?: string }).code;
          if ((code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_TABLE_DEF_CHANGED') && attempt < 5) {
            r.retries++;
            continue;
          }
          r.errors++;
          r.lastError = (e as Error).message;
          ctx.log.debug(`${plan.zone}: ${(e as Error).message}`);
          return;
        }
      }
    };
    // Each worker takes the next slot of a fixed schedule (slot k at t0 + k/tps): a steady rate,
    // catching up without bursts beyond the worker count when a slot ran late.
    await Promise.all(conns.map(async (db) => {
      for (;;) {
        const k = next++;
        if (k >= total) return;
        const due = t0 + (k * 1000) / o.tps;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        await one(db);
      }
    }));
    const ms = Date.now() - t0;
    return { zone: plan.zone, ...r, ms, tps: (r.transactions * 1000) / Math.max(1, ms) };
  } finally {
    await Promise.all(conns.map((c) => c.close()));
  }
}
