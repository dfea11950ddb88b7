// The routing table (GZS) of a cluster: a global cluster's write zone, a sharding cluster's shard
// ranges with their owner zone and state (active, blocked). One versioned row per cluster in
// `_ezctl.gz_routes` at every zone master, written by ezctl in every zone (never replicated by DRC:
// `_ezctl` is not), a higher version always winning; the topology file mirrors the owners
// (writerZone, shards.zones) so a fresh reader agrees. Version 0 is the table derived from the file,
// never published. A shared layer: switches (gz), DRC's illegal-write report, the workload and
// `gz serve` all read it from here.
import { hostname } from 'node:os';
import type { Document } from 'yaml';
import type { Ctx } from '../context.js';
import type { Topology } from '../config/load.js';
import type { Db, Param } from '../db/connect.js';
import { quoteTable } from '../db/quote.js';
import { editTopologyFile } from '../config/editor.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { EzError, badInput, refused, runtimeError } from '../exit.js';

export type RouteState = 'active' | 'blocked';
/** shard ids from..to (inclusive), owned by `zone` */
export interface ShardRange { from: number; to: number; zone: string; state: RouteState }
export interface Routes {
  cluster: string;
  model: 'global' | 'sharding';
  /** 0: derived from the topology file, never published */
  version: number;
  /** global: the zone taking writes; null for sharding */
  writeZone: string | null;
  /** global: 'blocked' between a switch's block and its flip; sharding: always 'active' */
  state: RouteState;
  /** sharding: sorted, non-overlapping, adjacent equal ranges merged; [] for global */
  shards: ShardRange[];
  /** sharding: "db.table" -> shard-key column (from the file); {} for global */
  tables: Record<string, string>;
  /** zones this version could not be written to when published (down) */
  missedBy: string[];
  /** the job that published it */
  job: string | null;
  /** e.g. "initial", "gz switch ...: block bj", "gz move ...: flip 0-31 to sh" */
  reason: string;
  /** ISO, ms */
  publishedAt: string;
}

export const ROUTES_TABLE = 'gz_routes';
export const ROUTES_LOG_TABLE = 'gz_routes_log';
export const CLIENTS_TABLE = 'gz_clients';

const T_ROUTES = quoteTable(STATE_SCHEMA, ROUTES_TABLE);
const T_LOG = quoteTable(STATE_SCHEMA, ROUTES_LOG_TABLE);
const T_CLIENTS = quoteTable(STATE_SCHEMA, CLIENTS_TABLE);

// ---------------------------------------------------------------- pure parts

/** The route a write takes: the global cluster's write zone, or the owner of shard `shardId`. */
export function routeOf(r: Routes, shardId?: number): { zone: string; state: RouteState } | undefined {
  if (r.model === 'global') return r.writeZone === null ? undefined : { zone: r.writeZone, state: r.state };
  if (shardId === undefined) return undefined;
  const s = r.shards.find((x) => x.from <= shardId && shardId <= x.to);
  return s ? { zone: s.zone, state: s.state } : undefined;
}

/** "0-31,40" -> [[0,31],[40,40]]: sorted, overlapping and adjacent ranges merged; bad input -> EzError badInput. */
export function parseShardList(s: string): Array<[number, number]> {
  const parts = String(s).split(',').map((p) => p.trim());
  if (parts.every((p) => p === '')) throw badInput(`${JSON.stringify(s)} names no shards (expected ids and ranges like 0-31,40)`);
  const out: Array<[number, number]> = [];
  for (const part of parts) {
    if (part === '') throw badInput(`${JSON.stringify(s)} has an empty item (expected ids and ranges like 0-31,40)`);
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) throw badInput(`${JSON.stringify(part)} is not a shard id or range like 0-31 (in ${JSON.stringify(s)})`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi)) throw badInput(`${JSON.stringify(part)} is out of range`);
    if (hi < lo) throw badInput(`${JSON.stringify(part)} is not a shard range (it ends before it starts)`);
    out.push([lo, hi]);
  }
  return mergeIds(out);
}

function mergeIds(ranges: Array<[number, number]>): Array<[number, number]> {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: Array<[number, number]> = [];
  for (const [lo, hi] of sorted) {
    const last = out.at(-1);
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** "0-31,40" from [[0,31],[40,40]] */
export function formatShardList(ranges: ReadonlyArray<readonly [number, number]>): string {
  return ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)).join(',');
}

/** Sorted, adjacent ranges of the same zone and state merged. */
export function normalizeShards(shards: readonly ShardRange[]): ShardRange[] {
  const sorted = [...shards].sort((a, b) => a.from - b.from);
  const out: ShardRange[] = [];
  for (const s of sorted) {
    const last = out.at(-1);
    if (last && s.from <= last.to) throw badInput(`shard ranges overlap: ${last.from}-${last.to} (${last.zone}) and ${s.from}-${s.to} (${s.zone})`);
    if (last && last.to + 1 === s.from && last.zone === s.zone && last.state === s.state) last.to = s.to;
    else out.push({ ...s });
  }
  return out;
}

/**
 * The table with shards `ranges` changed: their owner (`zone`) and/or state. The version is left as
 * it is (publishRoutes sets it). A shard of `ranges` no zone owns needs `zone` (badInput otherwise).
 */
export function withShards(r: Routes, ranges: Array<[number, number]>, change: { zone?: string; state?: RouteState }): Routes {
  if (r.model !== 'sharding') throw badInput(`cluster ${r.cluster} is a ${r.model} cluster: it has no shard ranges`);
  const wanted = mergeIds(ranges);
  const bounds = new Set<number>();
  for (const s of r.shards) bounds.add(s.from).add(s.to + 1);
  for (const [a, b] of wanted) bounds.add(a).add(b + 1);
  const points = [...bounds].sort((a, b) => a - b);
  const pieces: ShardRange[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const from = points[i]!;
    const to = points[i + 1]! - 1;
    const owner = r.shards.find((s) => s.from <= from && from <= s.to);
    const changed = wanted.some(([a, b]) => a <= from && from <= b);
    if (!changed) {
      if (owner) pieces.push({ from, to, zone: owner.zone, state: owner.state });
      continue;
    }
    const zone = change.zone ?? owner?.zone;
    if (!zone) throw badInput(`shards ${from === to ? from : `${from}-${to}`} of cluster ${r.cluster} have no owner zone; name the zone that takes them`);
    pieces.push({ from, to, zone, state: change.state ?? owner?.state ?? 'active' });
  }
  return { ...r, shards: normalizeShards(pieces), missedBy: [...r.missedBy], tables: { ...r.tables } };
}

/** The shard ranges zone `zone` owns, as [from, to] pairs. */
export function shardsOf(r: Routes, zone: string): Array<[number, number]> {
  return r.shards.filter((s) => s.zone === zone).map((s) => [s.from, s.to]);
}

/** The file's view as a table: version 0, never published. */
export function routesFromTopology(topo: Topology, cluster: string): Routes {
  const c = topo.cluster(cluster).config;
  const base = { cluster, version: 0, missedBy: [], job: null, reason: 'initial', publishedAt: new Date(0).toISOString() };
  if (c.model === 'global') {
    return { ...base, model: 'global', writeZone: c.writerZone ?? null, state: 'active', shards: [], tables: {} };
  }
  const pieces: ShardRange[] = [];
  for (const [zone, ids] of Object.entries(c.shards?.zones ?? {})) {
    for (const [from, to] of mergeIds(ids.map((i) => [i, i] as [number, number]))) pieces.push({ from, to, zone, state: 'active' });
  }
  return { ...base, model: 'sharding', writeZone: null, state: 'active', shards: normalizeShards(pieces), tables: { ...(c.shards?.tables ?? {}) } };
}

/** A stored document, checked: a row written by another tool or version must not crash a reader. */
export function parseRoutesDoc(text: string, version: number, where = 'the routing table'): Routes {
  let d: Partial<Routes>;
  try {
    d = JSON.parse(text) as Partial<Routes>;
  } catch (e) {
    throw runtimeError(`${where}: the stored document of version ${version} is not JSON (${(e as Error).message})`);
  }
  if (!d || typeof d !== 'object' || (d.model !== 'global' && d.model !== 'sharding') || typeof d.cluster !== 'string') {
    throw runtimeError(`${where}: the stored document of version ${version} is not a routing table`);
  }
  const shards = Array.isArray(d.shards) ? d.shards.filter((s) => s && Number.isInteger(s.from) && Number.isInteger(s.to) && typeof s.zone === 'string').map((s) => ({ from: s.from, to: s.to, zone: s.zone, state: s.state === 'blocked' ? 'blocked' : 'active' }) as ShardRange) : [];
  return {
    cluster: d.cluster,
    model: d.model,
    version,
    writeZone: typeof d.writeZone === 'string' ? d.writeZone : null,
    state: d.state === 'blocked' ? 'blocked' : 'active',
    shards,
    tables: d.tables && typeof d.tables === 'object' ? { ...d.tables } : {},
    missedBy: Array.isArray(d.missedBy) ? d.missedBy.map(String) : [],
    job: typeof d.job === 'string' ? d.job : null,
    reason: typeof d.reason === 'string' ? d.reason : '',
    publishedAt: typeof d.publishedAt === 'string' ? d.publishedAt : '',
  };
}

/** One line: "v7 global: writes to sh (active)" / "v3 sharding: 0-31 bj, 32-63 sh (blocked)". */
export function describeRoutes(r: Routes): string {
  if (r.model === 'global') return `v${r.version} global: writes to ${r.writeZone ?? '(none)'}${r.state === 'blocked' ? ' (blocked)' : ''}`;
  const parts = r.shards.map((s) => `${s.from === s.to ? s.from : `${s.from}-${s.to}`} ${s.zone}${s.state === 'blocked' ? ' (blocked)' : ''}`);
  return `v${r.version} sharding: ${parts.join(', ') || '(no shards)'}`;
}

/** Two tables route the same (owners and states, write zone), whatever their versions. */
export function sameRouting(a: Routes, b: Routes): boolean {
  return a.model === b.model && a.writeZone === b.writeZone && a.state === b.state && JSON.stringify(a.shards) === JSON.stringify(b.shards);
}

/**
 * The version conflict rule of a publish, pure: given each reachable zone's stored version, the
 * version the caller planned from may be published (as expectVersion + 1) only if no zone holds a
 * higher one. Returns the zones holding a higher version (empty: go ahead).
 */
export function newerThan(expectVersion: number, zones: Record<string, number | null>): Array<{ zone: string; version: number }> {
  return Object.entries(zones)
    .filter(([, v]) => v !== null && v > expectVersion)
    .map(([zone, v]) => ({ zone, version: v as number }));
}

// ---------------------------------------------------------------- one zone

function isMissingTable(e: unknown): boolean {
  const errno = (e as { errno?: number }).errno;
  return errno === 1146 || errno === 1049;
}

/** The table stored at one zone master, or null when it has none (no row, no table). */
export async function readRoutesAt(db: Db, cluster: string): Promise<Routes | null> {
  let row: { version: number | string | bigint; doc: string } | undefined;
  try {
    row = await db.one<{ version: number; doc: string }>(`SELECT version, doc FROM ${T_ROUTES} WHERE cluster = ?`, [cluster]);
  } catch (e) {
    if (isMissingTable(e)) return null;
    throw e;
  }
  if (!row) return null;
  return parseRoutesDoc(String(row.doc), Number(row.version), `${db.ep.label}: ${STATE_SCHEMA}.${ROUTES_TABLE}`);
}

/** written; already this very document; a higher version there; this version number there with another document */
export type PublishAtOutcome = 'written' | 'same' | 'higher' | 'conflict';

/**
 * Write `routes` at one zone master where the stored version is lower: one statement (a higher
 * version always wins), with the audit row in the same transaction, binlogged (the zone's replicas
 * get it; DRC's reader sees it in the zone's binlog, in commit order). Tells apart written, already
 * this version, and a higher version there (`stored`).
 */
export async function publishAtOutcome(db: Db, routes: Routes): Promise<{ outcome: PublishAtOutcome; stored: number }> {
  await ensureStateSchema(db);
  const doc = JSON.stringify(routes);
  const at = routes.publishedAt ? new Date(routes.publishedAt) : new Date();
  const params: Param[] = [routes.cluster, routes.version, doc, Number.isNaN(at.getTime()) ? new Date() : at];
  if (db.multipleStatements) {
    const r = await writeRoutesBatch(db, routes, doc, params);
    if (r) return r;
    // the session's binlog is off: nothing was written; the statements one at a time below
  }
  // binlogged whatever the caller's session says (a journal's or a lease's session may have the
  // binlog off): DRC's illegal-write report reads the table from the zone's binlog
  const binlogOff = Number(await db.value('SELECT @@SESSION.sql_log_bin')) === 0;
  if (binlogOff) await db.exec('SET SESSION sql_log_bin = 1');
  try {
    return await writeRoutesRow(db, routes, doc, params);
  } finally {
    if (binlogOff) await db.exec('SET SESSION sql_log_bin = 0').catch(() => {});
  }
}

async function writeRoutesRow(db: Db, routes: Routes, doc: string, params: Param[]): Promise<{ outcome: PublishAtOutcome; stored: number }> {
  await db.exec('BEGIN');
  try {
    await db.exec('SET @ezctl_gz_prev = NULL');
    // the assignments run left to right and see the columns already assigned: version goes last
    await db.exec(
      `INSERT INTO ${T_ROUTES} (cluster, version, doc, published_at) VALUES (?, ?, ?, ?)
       ON DUPLICATE KEY UPDATE
         doc = IF((@ezctl_gz_prev := version) < VALUES(version), VALUES(doc), doc),
         published_at = IF(version < VALUES(version), VALUES(published_at), published_at),
         version = IF(version < VALUES(version), VALUES(version), version)`,
      params,
    );
    const prev = await db.value<number | string | null>('SELECT @ezctl_gz_prev');
    const stored = prev === null || prev === undefined ? null : Number(prev);
    let outcome: PublishAtOutcome;
    if (stored === null || stored < routes.version) outcome = 'written';
    else if (stored === routes.version) {
      // the same version number with another document: a second writer that planned from the
      // same version got here first (two publishers racing past their checks)
      const there = await db.value<string>(`SELECT doc FROM ${T_ROUTES} WHERE cluster = ?`, [routes.cluster]);
      outcome = String(there) === doc ? 'same' : 'conflict';
    } else outcome = 'higher';
    if (outcome === 'written') {
      await db.exec(`INSERT IGNORE INTO ${T_LOG} (cluster, version, doc, job, reason, published_at) VALUES (?, ?, ?, ?, ?, ?)`, [routes.cluster, routes.version, doc, routes.job, routes.reason.slice(0, 1000), params[3]!]);
    }
    await db.exec('COMMIT');
    return { outcome, stored: outcome === 'written' ? routes.version : (stored as number) };
  } catch (e) {
    await db.exec('ROLLBACK').catch(() => {});
    throw e;
  }
}

/**
 * The conditional write of writeRoutesRow as one query of several statements (a connection opened
 * with multipleStatements): one round trip instead of seven, which across 30 ms between zones is
 * ~180 ms of a switch's window per publish. The same transaction: the row where the stored
 * version is lower, the audit row when it was written, the outcome read before COMMIT. Writes
 * nothing and returns undefined when the session's binlog is off (the caller then turns it on
 * around the statement-at-a-time write): DRC's illegal-write report reads the table from the binlog.
 */
async function writeRoutesBatch(db: Db, routes: Routes, doc: string, params: Param[]): Promise<{ outcome: PublishAtOutcome; stored: number } | undefined> {
  const sql = [
    'SET @ezctl_gz_prev = NULL, @ezctl_gz_binlog = @@SESSION.sql_log_bin',
    'BEGIN',
    // the assignments run left to right and see the columns already assigned: version goes last
    `INSERT INTO ${T_ROUTES} (cluster, version, doc, published_at) SELECT ?, ?, ?, ? FROM DUAL WHERE @ezctl_gz_binlog = 1
       ON DUPLICATE KEY UPDATE
         doc = IF((@ezctl_gz_prev := version) < VALUES(version), VALUES(doc), doc),
         published_at = IF(version < VALUES(version), VALUES(published_at), published_at),
         version = IF(version < VALUES(version), VALUES(version), version)`,
    `INSERT IGNORE INTO ${T_LOG} (cluster, version, doc, job, reason, published_at) SELECT ?, ?, ?, ?, ?, ? FROM DUAL
       WHERE @ezctl_gz_binlog = 1 AND (@ezctl_gz_prev IS NULL OR @ezctl_gz_prev < ?)`,
    `SELECT @ezctl_gz_binlog AS binlog, @ezctl_gz_prev AS prev, (SELECT doc = ? FROM ${T_ROUTES} WHERE cluster = ?) AS same`,
    'COMMIT',
  ].join(';\n');
  const values: Param[] = [...params, routes.cluster, routes.version, doc, routes.job, routes.reason.slice(0, 1000), params[3]!, routes.version, doc, routes.cluster];
  let results: unknown;
  try {
    results = await db.query(sql, values);
  } catch (e) {
    // the server stopped at the failing statement: the transaction may be open
    await db.exec('ROLLBACK').catch(() => {});
    throw e;
  }
  const row = ((results as unknown[])[4] as Array<{ binlog: unknown; prev: unknown; same: unknown }> | undefined)?.[0];
  if (!row) throw runtimeError(`${db.ep.label}: the routing table write returned no outcome`);
  if (Number(row.binlog) !== 1) return undefined;
  const stored = row.prev === null || row.prev === undefined ? null : Number(row.prev);
  let outcome: PublishAtOutcome;
  if (stored === null || stored < routes.version) outcome = 'written';
  else if (stored === routes.version) outcome = Number(row.same) === 1 ? 'same' : 'conflict';
  else outcome = 'higher';
  return { outcome, stored: outcome === 'written' ? routes.version : (stored as number) };
}

/** One zone, the same conditional write; false if it held a higher version, or this version with another document (true: written or already there). */
export async function publishAt(db: Db, routes: Routes): Promise<boolean> {
  const o = (await publishAtOutcome(db, routes)).outcome;
  return o === 'written' || o === 'same';
}

/** Every published version at one zone, newest first (`gz routes --history`). */
export async function routesHistoryAt(db: Db, cluster: string, limit = 50): Promise<Routes[]> {
  try {
    const rows = await db.query<{ version: number; doc: string }>(`SELECT version, doc FROM ${T_LOG} WHERE cluster = ? ORDER BY version DESC LIMIT ${Math.max(1, Math.floor(limit))}`, [cluster]);
    return rows.map((r) => parseRoutesDoc(String(r.doc), Number(r.version), `${db.ep.label}: ${STATE_SCHEMA}.${ROUTES_LOG_TABLE}`));
  } catch (e) {
    if (isMissingTable(e)) return [];
    throw e;
  }
}

// ---------------------------------------------------------------- every zone

function timeoutOf(ctx: Ctx, ms?: number): number {
  return ms ?? Math.max(1000, ctx.opts.connectTimeout * 1000);
}

function bounded<T>(p: Promise<T>, ms: number, what: string, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(runtimeError(`${what}: no answer within ${ms} ms`)), ms);
    const onAbort = () => reject(new EzError(130, `${what}: interrupted`));
    signal?.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => {
      clearTimeout(t);
      signal?.removeEventListener('abort', onAbort);
    });
  });
}

/** Run fn against each zone master of the cluster in parallel, bounded; errors are per zone. */
async function eachZone<T>(ctx: Ctx, topo: Topology, cluster: string, zones: string[], fn: (db: Db, zone: string) => Promise<T>, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Record<string, { ok: true; value: T } | { ok: false; error: string }>> {
  const ms = timeoutOf(ctx, o.timeoutMs);
  const out: Record<string, { ok: true; value: T } | { ok: false; error: string }> = {};
  await Promise.all(
    zones.map(async (zone) => {
      let db: Db | undefined;
      const work = (async () => {
        db = await ctx.connect(topo.master(cluster, zone));
        return fn(db, zone);
      })();
      try {
        out[zone] = { ok: true, value: await bounded(work, ms, `zone ${zone} (${topo.master(cluster, zone).name})`, o.signal) };
      } catch (e) {
        out[zone] = { ok: false, error: (e as Error).message };
        // a late connection is closed when it arrives
        work.then(() => db?.close(), () => db?.close()).catch(() => {});
        return;
      }
      await db?.close();
    }),
  );
  return out;
}

export interface RoutesRead {
  /** the highest version any zone has (version 0 from the file when none) */
  routes: Routes;
  /** null: no row there */
  zones: Record<string, { version: number | null; error?: string }>;
  /** reachable zones holding a lower version */
  stale: string[];
  unreachable: string[];
}

/** The table as the zones hold it: each zone master's row, the highest version winning. */
export async function readRoutes(ctx: Ctx, topo: Topology, cluster: string, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<RoutesRead> {
  const zones = topo.zonesOf(cluster);
  const got = await eachZone(ctx, topo, cluster, zones, (db) => readRoutesAt(db, cluster), o);
  return foldReads(topo, cluster, zones, got);
}

function foldReads(topo: Topology, cluster: string, zones: string[], got: Record<string, { ok: true; value: Routes | null } | { ok: false; error: string }>): RoutesRead {
  let best: Routes | null = null;
  const out: RoutesRead['zones'] = {};
  const unreachable: string[] = [];
  for (const z of zones) {
    const g = got[z]!;
    if (!g.ok) {
      out[z] = { version: null, error: g.error };
      unreachable.push(z);
      continue;
    }
    out[z] = { version: g.value?.version ?? null };
    if (g.value && (!best || g.value.version > best.version)) best = g.value;
  }
  const routes = best ?? routesFromTopology(topo, cluster);
  const stale = routes.version === 0 ? [] : zones.filter((z) => !unreachable.includes(z) && (out[z]!.version ?? 0) < routes.version);
  return { routes, zones: out, stale, unreachable };
}

export interface PublishOptions {
  /** the version the caller planned from; another writer's higher version -> refused (EzError refused), nothing written */
  expectVersion: number;
  /** zones that must take it; a required zone failing -> throws after trying all (what was written stays: the caller re-publishes) */
  required: string[];
  jobId?: string;
  reason: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** zones not to write now (e.g. the blocked source; the caller writes it later with publishAt) */
  skip?: string[];
  /** do not mirror the owners into the topology file (default: mirror) */
  noFileMirror?: boolean;
}
export interface PublishResult {
  routes: Routes;
  written: string[];
  missed: Array<{ zone: string; error: string }>;
  /** the topology file as it loads after the mirror (undefined when not mirrored) */
  topology?: Topology;
  /** the file was rewritten (false: it said the same already, or the mirror failed: see mirrorError) */
  fileChanged?: boolean;
  mirrorError?: string;
}

/**
 * Publish `next` as version expectVersion + 1: every reachable zone's version is read first (a
 * version above expectVersion anywhere: refused, nothing written), then each zone but `skip` is
 * written in parallel (the conditional write). missedBy names the zones not written (skipped ones
 * excluded). Then the owners are mirrored into the topology file.
 */
export async function publishRoutes(ctx: Ctx, topo: Topology, cluster: string, next: Routes, o: PublishOptions): Promise<PublishResult> {
  const zones = topo.zonesOf(cluster);
  const skip = new Set(o.skip ?? []);
  for (const z of [...o.required, ...skip]) if (!zones.includes(z)) throw badInput(`cluster ${cluster} has no zone ${JSON.stringify(z)}`, { hint: `zones: ${zones.join(', ')}` });
  const requiredSkipped = o.required.filter((z) => skip.has(z));
  if (requiredSkipped.length) throw badInput(`zone ${requiredSkipped.join(', ')} is both required and skipped`);
  if (next.cluster !== cluster) throw badInput(`the table is cluster ${next.cluster}'s, not ${cluster}'s`);
  const read = await eachZone(ctx, topo, cluster, zones, (db) => readRoutesAt(db, cluster), o);
  if (o.signal?.aborted) throw new EzError(130, 'publish interrupted before anything was written');
  const versions: Record<string, number | null> = {};
  const down: Array<{ zone: string; error: string }> = [];
  for (const z of zones) {
    const g = read[z]!;
    if (g.ok) versions[z] = g.value?.version ?? null;
    else down.push({ zone: z, error: g.error });
  }
  const newer = newerThan(o.expectVersion, versions);
  if (newer.length) {
    throw refused(`the routing table of ${cluster} changed meanwhile: ${newer.map((n) => `zone ${n.zone} holds version ${n.version}`).join(', ')}, this change was planned from version ${o.expectVersion}; nothing was written`, {
      hint: 'another job or operator published a newer table: read it (ezctl gz routes) and plan again',
    });
  }
  const downRequired = down.filter((d) => o.required.includes(d.zone));
  if (downRequired.length) {
    throw runtimeError(`cannot publish the routing table of ${cluster}: required zone ${downRequired.map((d) => `${d.zone} (${d.error})`).join(', ')} unreachable; nothing was written`, { hint: 'bring the zone back, or leave it out of the required zones' });
  }
  const version = o.expectVersion + 1;
  const targets = zones.filter((z) => !skip.has(z) && !down.some((d) => d.zone === z));
  const routes: Routes = {
    ...next,
    cluster,
    version,
    shards: next.model === 'sharding' ? normalizeShards(next.shards) : [],
    missedBy: down.filter((d) => !skip.has(d.zone)).map((d) => d.zone),
    job: o.jobId ?? null,
    reason: o.reason,
    publishedAt: new Date().toISOString(),
  };
  const wrote = await eachZone(ctx, topo, cluster, targets, (db) => publishAtOutcome(db, routes), o);
  const written: string[] = [];
  const missed = down.filter((d) => !skip.has(d.zone));
  const higher: string[] = [];
  for (const z of targets) {
    const g = wrote[z]!;
    if (!g.ok) missed.push({ zone: z, error: g.error });
    else if (g.value.outcome === 'higher') {
      higher.push(`zone ${z} holds version ${g.value.stored}`);
      missed.push({ zone: z, error: `holds version ${g.value.stored}, higher than ${version}` });
    } else if (g.value.outcome === 'conflict') {
      higher.push(`zone ${z} holds another writer's version ${version}`);
      missed.push({ zone: z, error: `holds another writer's version ${version}` });
    } else written.push(z);
  }
  const result: PublishResult = { routes: { ...routes, missedBy: missed.map((m) => m.zone) }, written, missed };
  ctx.log.debug(`routes ${cluster}: published ${describeRoutes(routes)} to ${written.join(', ') || 'no zone'}${missed.length ? `; missed ${missed.map((m) => m.zone).join(', ')}` : ''}`);
  if (written.length && !o.noFileMirror) {
    try {
      const edit = mirrorToFile(topo, cluster, routes);
      result.topology = edit.topology;
      result.fileChanged = edit.changed;
    } catch (e) {
      result.mirrorError = (e as Error).message;
      result.fileChanged = false;
      ctx.log.warn(`routing table ${cluster} v${version} published, but the topology file was not updated: ${(e as Error).message}`);
    }
  }
  if (higher.length) {
    // another publisher got past its check at the same time: whatever this one wrote must be
    // planned again from the table as it is now (a lease around every publisher prevents this)
    throw refused(`the routing table of ${cluster} was published by another writer meanwhile: ${higher.join(', ')}${written.length ? `; this change's version ${version} was written to ${written.join(', ')}` : '; nothing was written'}`, {
      hint: 'read it (ezctl gz routes) and plan again: a new version from the highest one wins everywhere',
    });
  }
  const failedRequired = missed.filter((m) => o.required.includes(m.zone));
  if (failedRequired.length) {
    throw runtimeError(`routing table ${cluster} version ${version} did not reach required zone ${failedRequired.map((m) => `${m.zone} (${m.error})`).join(', ')}${written.length ? `; it was written to ${written.join(', ')}` : '; nothing was written'}`, {
      hint: higher.length ? 'another writer published a newer table meanwhile: read it and plan again' : 'publish again once the zone answers (a higher version wins everywhere)',
    });
  }
  return result;
}

/**
 * The owners of `routes` in the topology file: writerZone (global) or shards.zones (sharding; the
 * file names each range's owner, blocked or not). Comments and layout stay (config/editor.ts).
 */
export function mirrorToFile(topo: Topology, cluster: string, routes: Routes): { topology: Topology; changed: boolean } {
  const attempt = () =>
    editTopologyFile(topo.path, (doc) => {
      applyOwners(doc, cluster, routes);
    });
  try {
    return attempt();
  } catch (e) {
    // another editor wrote the file between our read and rename: read it anew once
    if (e instanceof EzError && e.exitCode === 4) return attempt();
    throw e;
  }
}

function applyOwners(doc: Document, cluster: string, routes: Routes): void {
  const base = ['clusters', cluster];
  if (routes.model === 'global') {
    if (routes.writeZone && doc.getIn([...base, 'writerZone']) !== routes.writeZone) doc.setIn([...base, 'writerZone'], routes.writeZone);
    return;
  }
  const want = new Map<string, string>();
  const byZone = new Map<string, Array<[number, number]>>();
  for (const s of routes.shards) byZone.set(s.zone, [...(byZone.get(s.zone) ?? []), [s.from, s.to]]);
  for (const [z, r] of byZone) want.set(z, formatShardList(mergeIds(r)));
  const path = [...base, 'shards', 'zones'];
  const cur = (doc.getIn(path) as { toJSON?: () => unknown } | undefined)?.toJSON?.() as Record<string, unknown> | undefined;
  const same = (v: unknown, s: string) => {
    try {
      const ids = typeof v === 'string' ? parseShardList(v) : Array.isArray(v) ? mergeIds(v.map((i) => [Number(i), Number(i)] as [number, number])) : typeof v === 'number' ? [[v, v]] : null;
      return ids !== null && formatShardList(ids as Array<[number, number]>) === s;
    } catch {
      return false;
    }
  };
  for (const z of Object.keys(cur ?? {})) if (!want.has(z)) doc.deleteIn([...path, z]);
  for (const [z, s] of want) if (!cur || !same(cur[z], s)) doc.setIn([...path, z], s);
}

// ---------------------------------------------------------------- clients and their acknowledgements

const noBinlogOff = new WeakSet<Db>();

/** A client acknowledges a version once no write it began under an older version is still in flight. */
export async function ackRoutes(db: Db, a: { cluster: string; client: string; zone: string; version: number; inFlight: number }): Promise<void> {
  if (!noBinlogOff.has(db)) {
    try {
      await db.exec('SET SESSION sql_log_bin = 0');
    } catch (e) {
      // a client user without BINLOG ADMIN (ERROR 1227): the ack goes to the zone's replicas too,
      // which is harmless (DRC never carries _ezctl); refusing to ack would stall every drain
      if ((e as { errno?: number }).errno !== 1227) throw e;
      noBinlogOff.add(db);
    }
  }
  await db.exec(
    `INSERT INTO ${T_CLIENTS} (cluster, client, zone, version, in_flight, host, pid, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, NOW(3))
     ON DUPLICATE KEY UPDATE zone = VALUES(zone), version = VALUES(version), in_flight = VALUES(in_flight), host = VALUES(host), pid = VALUES(pid), seen_at = NOW(3)`,
    [a.cluster, a.client.slice(0, 191), a.zone, a.version, a.inFlight, hostname().slice(0, 255), process.pid],
  );
}

export interface ClientAck { client: string; zone: string; version: number; inFlight: number; ageMs: number; host: string; pid: number }

/** The clients of a cluster as the zones know them (the freshest row of each client). */
export async function readClients(ctx: Ctx, topo: Topology, cluster: string, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<{ clients: ClientAck[]; unreachable: string[] }> {
  const got = await eachZone(
    ctx,
    topo,
    cluster,
    topo.zonesOf(cluster),
    async (db) => {
      try {
        return await db.query<{ client: string; zone: string; version: number; in_flight: number; age_ms: number; host: string; pid: number }>(
          `SELECT client, zone, version, in_flight, TIMESTAMPDIFF(MICROSECOND, seen_at, NOW(3)) DIV 1000 AS age_ms, host, pid FROM ${T_CLIENTS} WHERE cluster = ?`,
          [cluster],
        );
      } catch (e) {
        if (isMissingTable(e)) return [];
        throw e;
      }
    },
    o,
  );
  const by = new Map<string, ClientAck>();
  const unreachable: string[] = [];
  for (const [zone, g] of Object.entries(got)) {
    if (!g.ok) {
      unreachable.push(zone);
      continue;
    }
    for (const r of g.value) {
      const c: ClientAck = { client: r.client, zone: r.zone, version: Number(r.version), inFlight: Number(r.in_flight), ageMs: Number(r.age_ms), host: r.host, pid: Number(r.pid) };
      const prev = by.get(c.client);
      if (!prev || c.ageMs < prev.ageMs) by.set(c.client, c);
    }
  }
  return { clients: [...by.values()].sort((a, b) => a.client.localeCompare(b.client)), unreachable };
}

export interface AckWait {
  reached: boolean;
  acked: string[];
  behind: Array<{ client: string; zone: string; version: number; ageMs: number }>;
  /** clients not heard from for staleMs: not waited for, but named */
  stale: string[];
}

/** Where the clients stand against `version`, pure. */
export function ackState(clients: readonly ClientAck[], version: number, staleMs: number): AckWait {
  const acked: string[] = [];
  const behind: AckWait['behind'] = [];
  const stale: string[] = [];
  for (const c of clients) {
    if (c.version >= version) acked.push(c.client);
    else if (c.ageMs > staleMs) stale.push(c.client);
    else behind.push({ client: c.client, zone: c.zone, version: c.version, ageMs: c.ageMs });
  }
  return { reached: behind.length === 0, acked, behind, stale };
}

/**
 * Wait until every live client of the cluster acknowledged `version` (no write begun under an older
 * version in flight), or timeoutMs (then reached: false, naming who is behind). A client not heard
 * from for staleMs (default 5 s) is stale: not waited for, but named.
 */
export async function waitAcks(ctx: Ctx, topo: Topology, cluster: string, version: number, o: { timeoutMs: number; staleMs?: number; signal?: AbortSignal; onProgress?: (w: AckWait) => void; intervalMs?: number }): Promise<AckWait> {
  const staleMs = o.staleMs ?? 5000;
  const deadline = Date.now() + o.timeoutMs;
  let last: AckWait = { reached: false, acked: [], behind: [], stale: [] };
  for (;;) {
    if (o.signal?.aborted) throw new EzError(130, `waiting for the clients of ${cluster} to acknowledge version ${version}: interrupted`);
    const { clients } = await readClients(ctx, topo, cluster, { timeoutMs: Math.min(timeoutOf(ctx), Math.max(500, deadline - Date.now())), ...(o.signal ? { signal: o.signal } : {}) });
    last = ackState(clients, version, staleMs);
    o.onProgress?.(last);
    if (last.reached || Date.now() >= deadline) return last;
    await sleep(Math.min(o.intervalMs ?? 100, Math.max(1, deadline - Date.now())), o.signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export { RoutesFollower, RouteBlockedError, isRouteBlocked, type FollowerOptions } from './follower.js';
