// The verify a zone switch runs (gz switch, gz move): are two zones alike in what a window of
// their binlogs changed, or in whole tables, now? Built on check incr's window (the keys each
// zone's own clients wrote between two positions) and check full's table walk; the rows are
// compared by the one comparer (table-check.ts). With settleMs 0 the caller has blocked and
// drained the writes: a difference is real at once, not re-checked after a wait.
//
// A verify only reads: no run is recorded and check incr's stored positions (the cron's last
// verified point) stay as they are, unless saveAsVerified asks to move them. That matters: the
// source of a switch is write-blocked (BACKUP STAGE BLOCK_COMMIT holds every commit there).
import pLimit from 'p-limit';
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { serverInfo, type ServerInfo } from '../db/server.js';
import { badInput, EzError, ExitCode } from '../exit.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { gtidCovers } from '../db/gtid.js';
import { readShapes, type TableShape } from '../db/introspect.js';
import { measureDrcLagMs } from '../throttle/signals.js';
import type { HashFunction } from '../compare/checksum.js';
import { tableFilter } from './structure.js';
import { checkNamedTablesExist, connectSets, hashFunction, verdict, type RowDiff, type TableReport } from './check-full.js';
import { classifyTables, collectWindowKeys, savePosition, storedPosition, WindowFollower } from './check-incr.js';
import { lostConnectionError, watchPace, watchZones } from './lost.js';
import { TableCheck, type ZoneConn } from './table-check.js';

export interface VerifyOptions {
  cluster?: string;
  zones: [string, string];
  /** compare the rows whose keys changed in either zone's binlog in (from, to]; positions as binlogPositions() returns them */
  window?: { from: Record<string, string>; to?: Record<string, string> };
  /** or compare these tables in full (check full's walk), e.g. "ezdemo.orders,ezdemo.users"; with a window: only these tables' changes */
  tables?: string;
  /** only these shards' rows of the shard tables ("db.t" -> column): a move verifies its shards only (other tables are left out) */
  shards?: { ranges: Array<[number, number]>; tables: Record<string, string> };
  /** 0: writes are blocked and drained, a difference is real at once (no settle, no re-check wait); default: DRC's lag + 1 s, re-checked as check incr does */
  settleMs?: number;
  signal?: AbortSignal;
  /** re-checks of a difference before it is reported (default 5; none with settleMs 0) */
  rechecks?: number;
  /** the row hash (default as check full: crc64 where every zone has CRC32C, else md5) */
  hash?: HashFunction;
  /**
   * a consistent window verify of every table of a two-zone cluster moves check incr's stored
   * positions to the window's end (the next `check incr` starts there). Written at the cluster's
   * first zone's master (where check incr keeps them): not while that master is write-blocked.
   * Refused for a shard or table restriction, or a pair that is not all of the cluster's zones
   * (check incr compares every zone: the others' comparison would be skipped).
   */
  saveAsVerified?: boolean;
}

export interface VerifyDifference {
  table: string;
  /** the row's key ({} for a table missing in a zone) */
  key: Record<string, unknown>;
  /** the columns that differ (a row in both zones) */
  columns: string[];
  /** the zone that lacks the row (or the table) */
  missingIn?: string;
  /** the differing columns' values per zone (a row in both zones) */
  values?: Record<string, Record<string, unknown>>;
}

export interface VerifyReport {
  consistent: boolean;
  differences: VerifyDifference[];
  keysCompared: number;
  tablesCompared: number;
  ms: number;
  /** where the window ended (the next verified point); in table mode, the positions when the walk began */
  positions: Record<string, string>;
  mode: 'window' | 'tables';
  cluster: string;
  zones: [string, string];
  /** the settle delay used (0: none) */
  settleMs: number;
  /** differences counted (the list holds up to 1000 per table) */
  differencesTotal: number;
  /** tables not compared, with the reason (the verify is then not consistent) */
  skipped: Array<{ table: string; reason: string }>;
  /** tables whose structure differs between the zones (not consistent) */
  structureDiffers: string[];
  /** window mode: per zone, the window read and the row changes of its own clients kept */
  window?: Record<string, { from: string; to: string; changes: number; followed?: boolean }>;
  /** saveAsVerified: whether check incr's positions were moved, and why not */
  savedAsVerified?: { saved: boolean; reason?: string };
}

const DEFAULT_MARGIN_MS = 1000;
const MAX_DIFFS = 1000;

/** Each zone master's binlog position now (MariaDB gtid_binlog_pos), the form a window takes. */
export async function binlogPositions(ctx: Ctx, cluster: string, zones: string[]): Promise<Record<string, string>> {
  const topo = await ctx.topology();
  const name = topo.cluster(cluster).name;
  topo.zonesChosen(name, zones);
  const out: Record<string, string> = {};
  await Promise.all(
    zones.map(async (z) => {
      const db = await ctx.connect(topo.master(name, z));
      try {
        out[z] = (await serverInfo(db)).gtidBinlogPos;
      } finally {
        await db.close().catch(() => undefined);
      }
    }),
  );
  return Object.fromEntries(zones.map((z) => [z, out[z]!]));
}

/**
 * Where the last `check incr` run of the cluster ended (the last verified point), or null when
 * no run recorded every one of these zones. check incr keeps them at the first zone it was run
 * with: every reachable master of the cluster is asked; the most recent complete set wins.
 */
export async function lastVerifiedPositions(ctx: Ctx, cluster: string, zones: string[]): Promise<Record<string, string> | null> {
  const topo = await ctx.topology();
  const name = topo.cluster(cluster).name;
  topo.zonesChosen(name, zones);
  if (zones.length === 0) return null;
  const candidates = await Promise.all(
    topo.zonesOf(name).map(async (z) => {
      let db: Db | undefined;
      try {
        db = await ctx.connect(topo.master(name, z));
        const rows = await db.query<{ zone: string; position: string; at: string }>(
          `SELECT zone, position, CAST(updated_at AS CHAR) AS at FROM ${quoteTable(STATE_SCHEMA, 'check_incr_position')} WHERE cluster = ? AND zone IN (${zones.map(() => '?').join(', ')})`,
          [name, ...zones],
        );
        if (!zones.every((zone) => rows.some((r) => r.zone === zone))) return undefined;
        return { positions: Object.fromEntries(zones.map((zone) => [zone, rows.find((r) => r.zone === zone)!.position])), at: rows.map((r) => String(r.at)).sort()[0]! };
      } catch {
        // unreachable (a dead source), or no `_ezctl` there: another master may have them
        return undefined;
      } finally {
        await db?.close().catch(() => undefined);
      }
    }),
  );
  const found = candidates.filter((c): c is NonNullable<typeof c> => !!c).sort((a, b) => b.at.localeCompare(a.at));
  return found[0]?.positions ?? null;
}

/** Compare two zones: the rows a binlog window changed, or whole tables; see VerifyOptions. */
export async function verifyRows(ctx: Ctx, o: VerifyOptions): Promise<VerifyReport> {
  validate(o);
  const v = await openVerifier(ctx, { cluster: o.cluster, zones: o.zones, ...(o.hash ? { hash: o.hash } : {}), ...(o.signal ? { signal: o.signal } : {}) });
  try {
    return await v.verify(o);
  } finally {
    await v.close();
  }
}

/**
 * Verifies of two zones, one after another, on connections, server facts and table shapes read
 * once: a switch opens it before it blocks writes, so the verify inside the write-unavailable
 * window pays only its binlog read and its compare. The shapes are those at open (a table changed
 * by a schema change meanwhile is compared on the columns it had then).
 */
export interface Verifier {
  readonly cluster: string;
  readonly zones: [string, string];
  /** one verify (cluster, zones and hash are the verifier's; not two at once) */
  verify(o: Omit<VerifyOptions, 'cluster' | 'zones' | 'hash'>): Promise<VerifyReport>;
  /**
   * Start reading each zone's binlog from these positions now and keep reading: the next window
   * verify from exactly them takes what was read instead of opening its readers (a switch calls it
   * after its pre-verify, outside the window). MariaDB only (nothing done on MySQL); a reader that
   * fails is replaced by the verify's own.
   */
  follow(from: Record<string, string>): void;
  close(): Promise<void>;
}

export async function openVerifier(ctx: Ctx, o: { cluster?: string; zones: [string, string]; hash?: HashFunction; signal?: AbortSignal; sets?: number }): Promise<Verifier> {
  const openedAt = Date.now();
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster);
  const zones = o.zones;
  const P = (what: string, t0 = openedAt) => ctx.log.debug(`verify ${String(zones)}: ${what} after ${Date.now() - t0} ms`);
  if (!Array.isArray(zones) || zones.length !== 2 || zones[0] === zones[1]) throw badInput(`a verify compares two different zones (got ${JSON.stringify(zones)})`);
  topo.zonesChosen(cluster.name, [...zones]);
  // never `_ezctl`: DRC's heartbeat row changes all the time and is never alike at one instant
  const replicated = tableFilter(cluster.config, {});
  const during = 'verify';
  const sets: ZoneConn[][] = [];
  let stopWatch: (() => void) | undefined;
  const closeAll = async () => {
    stopWatch?.();
    await Promise.all(sets.flat().map((c) => c.db.close().catch(() => undefined)));
  };
  let infos: ServerInfo[];
  let hash: HashFunction;
  let shapesAll: Promise<Map<string, TableShape>[]>;
  try {
    o.signal?.throwIfAborted();
    // two sets (or o.sets, at least two): the control one (shapes, then the compare of one table)
    // and more (positions, another table at a time each: tables compared at once cost one round
    // trip to the far zone, not one each)
    sets.push(...(await connectSets(ctx, [...zones], (z) => topo.master(cluster.name, z), Math.max(2, Math.floor(o.sets ?? 2)))));
    stopWatch = watchZones(sets[0]!.map((c, i) => ({ label: c.db.ep.label, connect: () => ctx.connect(topo.master(cluster.name, c.zone)), conns: () => sets.map((s) => s[i]!.db) })), watchPace(ctx.opts.connectTimeout));
    infos = await Promise.all(sets[0]!.map((c) => serverInfo(c.db)));
    hash = await hashFunction(sets[0]!, o.hash, infos);
    // read while the first verify reads its binlogs
    shapesAll = Promise.all(sets[0]!.map((c) => readShapes(c.db, (s, t) => s !== STATE_SCHEMA && replicated(s, t))));
    shapesAll.then(() => P('shapes'), () => undefined);
    P('opened');
  } catch (e) {
    await closeAll();
    throw lostConnectionError(e, sets.flat(), during, () => 'run it again once the server answers') ?? e;
  }
  const control = sets[0]!;
  const workers = sets.slice(1);
  let busy = false;
  let closed = false;
  let followers = new Map<string, WindowFollower>();
  let stopping: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  const stopFollowers = async () => {
    const all = [...followers.values()];
    followers = new Map();
    await Promise.all(all.map((f) => f.stop()));
  };

  const verify = async (v: Omit<VerifyOptions, 'cluster' | 'zones' | 'hash'>): Promise<VerifyReport> => {
    const started = Date.now();
    const opts: VerifyOptions = { ...v, cluster: cluster.name, zones };
    validate(opts, topo);
    if (closed) throw new Error('this verifier is closed');
    if (busy) throw new Error('a verifier runs one verify at a time');
    busy = true;
    const signal = v.signal;
    try {
      const shardIn = v.shards ? shardMatcher(v.shards) : undefined;
      if (v.window && infos.some((i) => i.flavor !== 'mariadb')) throw badInput('a window verify reads MariaDB GTID positions; this cluster has MySQL masters', { hint: 'verify whole tables instead (tables)' });
      const base = tableFilter(cluster.config, { tables: v.tables });
      const matcher = (s: string, t: string) => s !== STATE_SCHEMA && base(s, t) && (!v.shards || `${s}.${t}` in v.shards.tables);
      const shapesRead = shapesAll.then((all) => {
        const shapes = all.map((m) => new Map([...m].filter(([, sh]) => matcher(sh.schema, sh.table))));
        const names = [...new Set(shapes.flatMap((m) => [...m.keys()]))].sort();
        checkNamedTablesExist(v.tables, names, [...zones]);
        if (v.shards) {
          for (const t of Object.keys(v.shards.tables)) {
            if (!names.includes(t) && base(...splitName(t))) throw badInput(`shard table ${t} does not exist in zone ${zones.join(' or ')}`, { hint: 'shards.tables of the topology file names the shard tables and their shard-key column' });
          }
        }
        return { shapes, names };
      });
      shapesRead.catch(() => undefined); // awaited below (or by the window's reader)
      if (!v.window) await shapesRead;
      // the positions now, on the second set (the first may still be reading shapes)
      const now = async () => Object.fromEntries(await Promise.all(workers[0]!.map(async (c) => [c.zone, String((await c.db.value('SELECT @@global.gtid_binlog_pos')) ?? '')] as const)));
      const settleMs = v.settleMs ?? Math.max(0, ((await measureDrcLagMs(control.map((c) => ({ zone: c.zone, db: c.db }))).catch(() => ({ maxLagMs: null }))).maxLagMs ?? 0) + DEFAULT_MARGIN_MS);
      const rechecks = v.settleMs === 0 ? 0 : v.rechecks ?? 5;
      const tsColumn = topo.drcTimestampColumn(cluster.name);
      let shapes: Map<string, TableShape>[] = [];
      const table = (name: string, conns: ZoneConn[], where?: string) =>
        new TableCheck(ctx, {
          name, zones: [...zones], conns, shapes: shapes.map((m) => m.get(name)), mode: 'checksum', hash, tsColumn, where,
          chunkTimeMs: 500, settleDelayMs: settleMs, rechecks, keylessMaxRows: 100_000, maxDiffs: MAX_DIFFS,
          stopRequested: () => signal?.aborted ?? false, stopSignal: signal ?? new AbortController().signal, onRows: () => undefined,
        });
      const free = [...sets];
      const limit = pLimit(free.length);
      const onConns = <T>(f: (conns: ZoneConn[]) => Promise<T>) =>
        limit(async () => {
          signal?.throwIfAborted();
          const conns = free.pop()!;
          try {
            return await f(conns);
          } finally {
            free.push(conns);
          }
        });

      const reports: TableReport[] = [];
      let positions: Record<string, string>;
      let window: VerifyReport['window'];
      if (v.window) {
        const asked = v.window.to ?? {};
        const current = zones.every((z) => asked[z] !== undefined) ? {} : await now();
        const to = Object.fromEntries(zones.map((z) => [z, asked[z] ?? current[z]!]));
        const tablesRead = shapesRead.then((r) => classifyTables(r.shapes, [...zones]));
        const collected = await collectWindowKeys(
          control.map((c, i) => ({ zone: c.zone, info: infos[i]!, endpoint: c.db.ep, from: v.window!.from[c.zone]!, to: to[c.zone]! })),
          matcher, tablesRead, { ...(shardIn ? { row: shardIn } : {}), ...(signal ? { signal } : {}), during, followers },
        ).finally(() => {
          // stopped behind the verify's back (zongji's stop is a KILL of its dump thread and a wait):
          // close() waits for it
          stopping = stopFollowers();
        });
        shapes = (await shapesRead).shapes;
        const tables = await tablesRead;
        P('binlogs read', started);
        window = collected.positions;
        positions = to;
        await Promise.all([...collected.keys.keys()].sort().map((name) => onConns((conns) => table(name, conns).checkKeys([...collected.keys.get(name)!.values()])).then((r) => reports.push(r))));
        for (const [name, r] of tables.unchecked) {
          const count = collected.changedUnchecked.get(name);
          if (!r.missingIn && !count) continue;
          reports.push(count && !r.missingIn ? { ...r, reason: `${r.reason}: ${count} changed row${count === 1 ? '' : 's'} not compared` } : r);
        }
      } else {
        positions = await now();
        const read = await shapesRead;
        shapes = read.shapes;
        await Promise.all(
          read.names.map((name) =>
            onConns(async (conns) => {
              const where = v.shards && shardIn ? shardWhere(v.shards.tables[name]!, v.shards.ranges) : undefined;
              const job = table(name, conns, where);
              const walked = await job.walkOnly();
              return walked ?? (await job.settleOn(conns));
            }).then((r) => reports.push(r)),
          ),
        );
      }
      P('compared', started);
      signal?.throwIfAborted();
      if (reports.some((r) => r.status === 'incomplete')) throw new EzError(ExitCode.interrupted, 'verify interrupted before every table was compared');
      reports.sort((a, b) => a.table.localeCompare(b.table));
      const verdictOf = verdict(reports);
      const report: VerifyReport = {
        consistent: verdictOf.consistent,
        differences: reports.flatMap((r) => differencesOf(r, zones)),
        differencesTotal: reports.reduce((n, r) => n + r.missing + r.changed + (r.missingIn?.length ? 1 : 0), 0),
        keysCompared: reports.reduce((n, r) => n + r.rows, 0),
        tablesCompared: reports.filter((r) => r.status === 'done').length,
        ms: Date.now() - started,
        positions,
        mode: v.window ? 'window' : 'tables',
        cluster: cluster.name,
        zones: [zones[0], zones[1]],
        settleMs,
        skipped: verdictOf.skipped,
        structureDiffers: verdictOf.structureDiffers,
      };
      if (window) report.window = window;
      if (v.saveAsVerified) report.savedAsVerified = await saveVerified(ctx, topo, cluster.name, report, v.window!.from);
      report.ms = Date.now() - started;
      return report;
    } catch (e) {
      throw lostConnectionError(e, sets.flat(), during, () => 'run it again once the server answers') ?? e;
    } finally {
      busy = false;
    }
  };
  const follow = (from: Record<string, string>) => {
    if (closed || infos.some((i) => i.flavor !== 'mariadb')) return;
    void stopFollowers();
    // a zone without a position is read by the verify itself (an empty one would be the oldest binlog)
    followers = new Map(control.flatMap((c, i) => (from[c.zone] ? [[c.zone, new WindowFollower({ zone: c.zone, endpoint: c.db.ep, domain: infos[i]!.gtidDomainId ?? 0 }, from[c.zone]!, (s, t) => s !== STATE_SCHEMA && replicated(s, t))] as const] : [])));
  };
  return {
    cluster: cluster.name,
    zones: [zones[0], zones[1]],
    verify,
    follow,
    close() {
      closed = true;
      closing ??= (async () => {
        await Promise.all([stopFollowers(), stopping]);
        await shapesAll.catch(() => undefined);
        await closeAll();
      })();
      return closing;
    },
  };
}

/** What a verify is asked, checked before anything is read. */
function validate(o: VerifyOptions, topo?: Awaited<ReturnType<Ctx['topology']>>): void {
  const zones = o.zones;
  if (!Array.isArray(zones) || zones.length !== 2 || zones[0] === zones[1]) throw badInput(`a verify compares two different zones (got ${JSON.stringify(zones)})`);
  if (o.settleMs !== undefined && (!Number.isFinite(o.settleMs) || o.settleMs < 0)) throw badInput(`settleMs must be 0 or more (got ${o.settleMs})`);
  if (o.shards) shardMatcher(o.shards);
  if (o.window) {
    for (const z of zones) if (typeof o.window.from?.[z] !== 'string') throw badInput(`the verify window has no start position for zone ${z}`, { hint: 'give window.from as binlogPositions() or lastVerifiedPositions() returned it' });
  }
  if (o.saveAsVerified && topo) {
    const cluster = topo.cluster(o.cluster);
    const all = topo.zonesOf(cluster.name);
    if (!o.window || o.shards || o.tables) throw badInput('saveAsVerified needs a window verify of every table (no shard or table restriction): check incr would skip what was not compared');
    if (all.length !== 2 || !all.every((z) => zones.includes(z))) throw badInput(`saveAsVerified needs the verify to cover every zone of cluster ${cluster.name} (${all.join(', ')}): check incr compares all of them`);
  }
}

/** "db.t" -> whether a row image of it is in one of the ranges. */
function shardMatcher(s: NonNullable<VerifyOptions['shards']>): (table: string, row: Record<string, unknown>) => boolean {
  if (!Array.isArray(s.ranges) || s.ranges.length === 0) throw badInput('a shard verify needs at least one shard range');
  for (const r of s.ranges) {
    if (!Array.isArray(r) || r.length !== 2 || !r.every((x) => Number.isSafeInteger(x) && x >= 0) || r[1] < r[0]) throw badInput(`${JSON.stringify(r)} is not a shard range [from, to]`);
  }
  if (!s.tables || Object.keys(s.tables).length === 0) throw badInput('a shard verify needs the shard tables ("db.table" -> shard-key column)', { hint: 'shards.tables of the topology file' });
  return (table, row) => {
    const col = s.tables[table];
    if (!col) return false;
    const v = row[col];
    if (v === null || v === undefined) return false;
    const id = Number(typeof v === 'bigint' ? v : String(v));
    return Number.isFinite(id) && s.ranges.some(([a, b]) => id >= a && id <= b);
  };
}

/** The condition on a shard table's key column for these ranges (validated integers: no placeholders in a --where string). */
export function shardWhere(column: string, ranges: Array<[number, number]>): string {
  const c = quoteId(column);
  return ranges.map(([a, b]) => (a === b ? `${c} = ${BigInt(a)}` : `${c} BETWEEN ${BigInt(a)} AND ${BigInt(b)}`)).join(' OR ');
}

function differencesOf(r: TableReport, zones: readonly string[]): VerifyDifference[] {
  if (r.missingIn?.length) return r.missingIn.map((z) => ({ table: r.table, key: {}, columns: [], missingIn: z }));
  return r.diffs.map((d: RowDiff) => {
    const out: VerifyDifference = { table: r.table, key: d.key, columns: d.columns };
    const absent = zones.find((z) => d.zones[z] && !d.zones[z]!.present);
    if (d.kind === 'missing' && absent) out.missingIn = absent;
    if (d.kind === 'changed') {
      const values = Object.fromEntries(zones.filter((z) => d.zones[z]?.values).map((z) => [z, d.zones[z]!.values!]));
      if (Object.keys(values).length) out.values = values;
    }
    return out;
  });
}

/**
 * Move check incr's positions to the window's end: only after a consistent verify whose window
 * began at or before them (else the stretch between them and the window's start was never compared).
 */
async function saveVerified(ctx: Ctx, topo: Awaited<ReturnType<Ctx['topology']>>, cluster: string, r: VerifyReport, from: Record<string, string>): Promise<{ saved: boolean; reason?: string }> {
  if (!r.consistent) return { saved: false, reason: 'the zones differ' };
  const zones = topo.zonesOf(cluster);
  const db = await ctx.connect(topo.master(cluster, zones[0]!));
  try {
    await ensureStateSchema(db);
    for (const z of zones) {
      const stored = await storedPosition(db, cluster, z);
      if (stored !== undefined && !gtidCovers('mariadb', stored, from[z]!)) return { saved: false, reason: `the window began at ${from[z]} in zone ${z}, after check incr's position ${stored}` };
    }
    for (const z of zones) await savePosition(db, cluster, z, r.positions[z]!);
    return { saved: true };
  } finally {
    await db.close().catch(() => undefined);
  }
}

function splitName(name: string): [string, string] {
  const i = name.indexOf('.');
  return [name.slice(0, i), name.slice(i + 1)];
}

