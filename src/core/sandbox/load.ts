// ezctl sandbox load: the demo schema with deterministic rows, identical in every zone (the
// same ids, values and DRC timestamps), written to each zone's master.
import type { Ctx } from '../context.js';
import { badInput } from '../exit.js';
import { quoteId } from '../db/quote.js';
import type { Db, Param } from '../db/connect.js';
import { DEMO_TABLES, demoDdl, type DemoTable } from './demo-schema.js';

export interface LoadOptions { rows: number; database: string; cluster?: string }
export interface LoadReport { cluster: string; database: string; zones: string[]; rows: Record<string, number>; ms: number }

/** A small deterministic PRNG (mulberry32): the same seed gives the same rows everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Loaded rows carry fixed timestamps so every zone holds the same values; workload writes later
// are newer than all of them.
const EPOCH_MS = Date.UTC(2026, 0, 1);
export function fixedTimestamp(offsetMs: number): string {
  return new Date(EPOCH_MS + offsetMs).toISOString().replace('T', ' ').replace('Z', '');
}

const FIRST = ['Li', 'Wang', 'Zhang', 'Liu', 'Chen', 'Yang', 'Zhao', 'Huang', 'Zhou', 'Wu', "O'Neil", 'Zoë'];
const SKUS = ['rice-bowl', 'noodles', 'dumplings', 'tea', 'bao', 'congee', 'hotpot', 'skewers'];

export function rowCounts(rows: number): Record<DemoTable, number> {
  const tenth = rows === 0 ? 0 : Math.max(10, Math.floor(rows / 10));
  return { users: rows, merchants: tenth, riders: tenth, orders: rows, order_items: 2 * rows };
}

/** Column names and the value generator of each demo table; `shards` is the shard count. */
export function demoRows(table: DemoTable, shards: number, counts: Record<DemoTable, number>): { columns: string[]; row: (i: number) => Param[][] } {
  const shardOf = (id: number) => id % shards;
  switch (table) {
    case 'users':
      return {
        columns: ['id', 'shard_id', 'name', 'email', 'phone', 'balance', 'profile', 'avatar_hash', 'created_at', 'drc_ts'],
        row: (id) => {
          const r = prng(id * 31 + 1);
          const name = `${FIRST[Math.floor(r() * FIRST.length)]} ${id}`;
          const hasEmail = r() > 0.2;
          return [[
            id, shardOf(id), name, hasEmail ? `user${id}@example.com` : null, r() > 0.5 ? `13${String(Math.floor(r() * 1e9)).padStart(9, '0')}` : null,
            (Math.floor(r() * 1_000_000) / 100).toFixed(2),
            r() > 0.3 ? JSON.stringify({ vip: r() > 0.8, tags: ['lunch', 'night'].slice(0, 1 + Math.floor(r() * 2)), city: shardOf(id) < shards / 2 ? 'Beijing' : 'Shanghai' }) : null,
            r() > 0.4 ? Buffer.from(Array.from({ length: 16 }, () => Math.floor(r() * 256))) : null,
            fixedTimestamp(id * 1000), fixedTimestamp(id * 1000 + 1),
          ]];
        },
      };
    case 'merchants':
      return {
        columns: ['id', 'shard_id', 'name', 'rating', 'lat', 'lng', 'description', 'opened_on', 'drc_ts'],
        row: (id) => {
          const r = prng(id * 37 + 2);
          return [[
            id, shardOf(id), `Merchant ${id}`, r() > 0.1 ? Math.round(r() * 50) / 10 : null,
            39 + r() * 2, 116 + r() * 6, r() > 0.5 ? `Family kitchen #${id}, since ${1990 + Math.floor(r() * 30)}\ttrailing ` : null,
            r() > 0.2 ? `20${String(10 + Math.floor(r() * 15))}-0${1 + Math.floor(r() * 9)}-1${Math.floor(r() * 9)}` : null,
            fixedTimestamp(id * 1000 + 2),
          ]];
        },
      };
    case 'riders':
      return {
        columns: ['id', 'shard_id', 'name', 'status', 'vehicle', 'last_seen', 'drc_ts'],
        row: (id) => {
          const r = prng(id * 41 + 3);
          return [[id, shardOf(id), `Rider ${id}`, ['idle', 'busy', 'off'][Math.floor(r() * 3)]!, r() > 0.3 ? ['bike', 'scooter', 'car'][Math.floor(r() * 3)]! : null, r() > 0.2 ? fixedTimestamp(id * 777) : null, fixedTimestamp(id * 1000 + 3)]];
        },
      };
    case 'orders':
      return {
        columns: ['id', 'shard_id', 'user_id', 'merchant_id', 'rider_id', 'amount', 'tip', 'status', 'items', 'note', 'created_at', 'drc_ts'],
        row: (id) => {
          const r = prng(id * 43 + 4);
          const lines = 1 + Math.floor(r() * 3);
          return [[
            id, shardOf(id), 1 + Math.floor(r() * Math.max(1, counts.users)), 1 + Math.floor(r() * Math.max(1, counts.merchants)),
            r() > 0.3 ? 1 + Math.floor(r() * Math.max(1, counts.riders)) : null,
            (Math.floor(r() * 30_000) / 100 + 1).toFixed(2), r() > 0.7 ? (Math.floor(r() * 1000) / 100).toFixed(2) : null,
            Math.floor(r() * 5),
            JSON.stringify({ lines, sku: SKUS.slice(0, lines) }), r() > 0.8 ? (r() > 0.5 ? '' : 'no chilli, please') : null,
            fixedTimestamp(id * 1000 + 500), fixedTimestamp(id * 1000 + 501),
          ]];
        },
      };
    case 'order_items':
      return {
        columns: ['order_id', 'line_no', 'shard_id', 'sku', 'qty', 'price', 'drc_ts'],
        // two lines per order: i-th pair belongs to order ceil(i/2)
        row: (i) => {
          const orderId = Math.ceil(i / 2);
          const line = ((i - 1) % 2) + 1;
          const r = prng(i * 47 + 5);
          return [[orderId, line, shardOf(orderId), SKUS[Math.floor(r() * SKUS.length)]!, 1 + Math.floor(r() * 4), (Math.floor(r() * 5000) / 100 + 0.5).toFixed(2), fixedTimestamp(orderId * 1000 + 502)]];
        },
      };
  }
}

const BATCH = 500;

async function loadTable(db: Db, schema: string, table: DemoTable, count: number, shards: number, counts: Record<DemoTable, number>, ts: string): Promise<void> {
  const { columns, row } = demoRows(table, shards, counts);
  const cols = columns.map((c) => (c === 'drc_ts' ? ts : c));
  const head = `INSERT INTO ${quoteId(schema)}.${quoteId(table)} (${cols.map(quoteId).join(', ')}) VALUES `;
  const one = `(${cols.map(() => '?').join(', ')})`;
  for (let start = 1; start <= count; start += BATCH) {
    const end = Math.min(count, start + BATCH - 1);
    const params: Param[] = [];
    for (let i = start; i <= end; i++) for (const r of row(i)) params.push(...r);
    await db.exec(head + Array.from({ length: end - start + 1 }, () => one).join(', '), params);
  }
}

/** Shard ids the demo rows of a global cluster (no shard map) carry: `sandbox up --shards`' default. */
export const GLOBAL_SHARDS = 64;

export async function sandboxLoad(ctx: Ctx, o: LoadOptions): Promise<LoadReport> {
  const t0 = Date.now();
  const topo = await ctx.topology();
  const { name: cluster, config } = topo.cluster(o.cluster);
  // a global cluster has no shard map: its demo rows still carry ids of the sandbox's 64 shards
  const shardIds = config.shards ? Object.values(config.shards.zones).flat() : config.model === 'global' ? [GLOBAL_SHARDS - 1] : [];
  if (shardIds.length === 0) throw badInput(`cluster ${cluster} has no shard map (shards.zones) in ${topo.path}`, { hint: 'the demo rows need shard ids; add a shards: section' });
  const shards = Math.max(...shardIds) + 1;
  const ts = topo.drcTimestampColumn(cluster);
  const zones = topo.zonesOf(cluster);
  const counts = rowCounts(o.rows);
  const ddl = demoDdl(quoteId, ts);
  await Promise.all(zones.map(async (zone) => {
    const db = await ctx.connect(topo.master(cluster, zone));
    try {
      await db.exec(`CREATE DATABASE IF NOT EXISTS ${quoteId(o.database)} DEFAULT CHARACTER SET utf8mb4`);
      await db.exec(`USE ${quoteId(o.database)}`);
      for (const t of DEMO_TABLES) {
        await db.exec(`DROP TABLE IF EXISTS ${quoteId(t)}`);
        await db.exec(ddl[t]);
      }
      // Smaller tables first: orders refer to users, merchants and riders.
      for (const t of ['merchants', 'riders', 'users', 'orders', 'order_items'] as const) {
        await loadTable(db, o.database, t, counts[t], shards, counts, ts);
        ctx.log.debug(`${zone}: ${o.database}.${t} ${counts[t]} rows`);
      }
    } finally {
      await db.close();
    }
  }));
  return { cluster, database: o.database, zones, rows: counts, ms: Date.now() - t0 };
}
