// The signals a Throttler polls. Each returns a verdict with a reason a DBA can act on; a signal
// that cannot tell (a replica unreachable, a query failing) throws, and the Throttler counts
// that as throttling: a job must not race ahead blind.
import { access } from 'node:fs/promises';
import type { Db } from '../db/connect.js';
import { QueryError } from '../db/connect.js';
import type { Flavor } from '../db/gtid.js';
import { quoteTable } from '../db/quote.js';
import { globalStatus, replicaStatus, serverInfo } from '../db/server.js';
import { HEARTBEAT_TABLE } from '../cluster/tables.js';
import { badInput } from '../exit.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { formatDuration } from './duration.js';
import { inWindow, parseWindows } from './specs.js';

// the parsers moved to specs.ts (commands load them for --help without the server layer)
export { inWindow, parseLoadSpec, parseWindows, type PauseWindow } from './specs.js';
import type { ThrottleSignal, Verdict } from './throttler.js';

/** A node a signal reads. With reopen, a connection that failed is replaced at the next check. */
export interface Probe {
  label: string;
  db: Db;
  reopen?: () => Promise<Db>;
}

/** A zone's master, for the DRC lag between zones. */
export interface ZoneMaster {
  zone: string;
  db: Db;
  label?: string;
  reopen?: () => Promise<Db>;
}

type Reopenable = { db: Db; reopen?: () => Promise<Db> };

interface ProbeState {
  broken: boolean;
  reopening: Promise<void> | null;
}
const probeStates = new WeakMap<Reopenable, ProbeState>();

/**
 * Run fn on the probe's connection. After a failure (a server restart kills the connection, and
 * mysql2 never revives it) the next use opens a fresh one, so the signal recovers by itself
 * instead of throttling forever. Probes shared by several signals reopen once.
 */
async function onProbe<T>(p: Reopenable, fn: (db: Db) => Promise<T>): Promise<T> {
  let st = probeStates.get(p);
  if (!st) {
    st = { broken: false, reopening: null };
    probeStates.set(p, st);
  }
  const state = st;
  if (state.broken && p.reopen) {
    const reopen = p.reopen;
    state.reopening ??= (async () => {
      const fresh = await reopen();
      const old = p.db;
      p.db = fresh;
      state.broken = false;
      old.conn.destroy();
    })().finally(() => {
      state.reopening = null;
    });
    await state.reopening;
  }
  try {
    return await fn(p.db);
  } catch (e) {
    state.broken = true;
    throw e;
  }
}

function verdictOf(problems: string[]): Verdict {
  return problems.length > 0 ? { throttle: true, reason: problems.join('; ') } : { throttle: false };
}

// ---------------------------------------------------------------------------------------------
// Replica lag inside a zone

/**
 * Throttles while any replica lags more than maxLagMs (Seconds_Behind_Master, so whole seconds),
 * and while replication there is not running or not configured: its lag is then unknown and
 * growing, which is exactly when a job must not add more.
 */
export function replicaLagSignal(replicas: Probe[], maxLagMs: number): ThrottleSignal {
  const flavors = new Map<Probe, Flavor>();
  const one = (r: Probe): Promise<string[]> =>
    onProbe(r, async (db) => {
      let flavor = flavors.get(r);
      if (!flavor) {
        flavor = (await serverInfo(db)).flavor;
        flavors.set(r, flavor);
      }
      const channels = await replicaStatus(db, flavor);
      if (channels.length === 0) return [`replication not configured at ${r.label} (lag unknown)`];
      const problems: string[] = [];
      for (const ch of channels) {
        const where = ch.channel ? `${r.label} (channel ${ch.channel})` : r.label;
        if (ch.ioState !== 'Yes' || ch.sqlState !== 'Yes') {
          const err = (ch.lastSqlError || ch.lastIoError).slice(0, 200);
          problems.push(`replication not running at ${where}: IO thread ${ch.ioState}, SQL thread ${ch.sqlState}${err ? ` (${err})` : ''}`);
        } else if (ch.lagSeconds === null) {
          problems.push(`replica lag unknown at ${where} (Seconds_Behind_Master is NULL)`);
        } else if (ch.lagSeconds * 1000 > maxLagMs) {
          problems.push(`replica lag ${where} ${formatDuration(ch.lagSeconds * 1000)} > ${formatDuration(maxLagMs)}`);
        }
      }
      return problems;
    });
  return {
    name: 'replica-lag',
    async check() {
      return verdictOf((await Promise.all(replicas.map(one))).flat());
    },
  };
}

// ---------------------------------------------------------------------------------------------
// DRC lag between zones

/** The DRC daemon's default heartbeat interval (drc.heartbeatIntervalMs in the topology file). */
export const DEFAULT_DRC_HEARTBEAT_MS = 250;

export interface DrcLagPair {
  from: string;
  to: string;
  /**
   * Age of the newest heartbeat of `from` at `to`'s master: everything `from` wrote before that
   * long ago has arrived. An upper bound of the lag (it includes up to one heartbeat interval of
   * staleness). null: no heartbeat of `from` there (DRC never ran that way).
   */
  lagMs: number | null;
}

const NO_STATE_TABLE = new Set(['ER_NO_SUCH_TABLE', 'ER_BAD_DB_ERROR']);

async function readDrcPairs(masters: ZoneMaster[]): Promise<DrcLagPair[]> {
  const zones = masters.map((m) => m.zone);
  const perTarget = await Promise.all(
    masters.map((m) =>
      onProbe(m, async (db) => {
        // Both timestamps compared on one clock per query: the server's now against the
        // written_at_ms that traveled with the row. SIGNED, because a heartbeat stamped by a clock
        // running ahead would make an UNSIGNED difference an out-of-range error.
        let rows: { zone: string; lag_ms: unknown }[] = [];
        try {
          rows = await db.query<{ zone: string; lag_ms: unknown }>(
            `SELECT zone, CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) - CAST(written_at_ms AS SIGNED) AS lag_ms FROM ${quoteTable(STATE_SCHEMA, HEARTBEAT_TABLE)}`,
          );
        } catch (e) {
          if (!(e instanceof QueryError && e.code !== undefined && NO_STATE_TABLE.has(e.code))) throw e;
        }
        const lagOf = new Map(rows.map((r) => [String(r.zone), Number(r.lag_ms)]));
        return zones
          .filter((from) => from !== m.zone)
          .map((from): DrcLagPair => {
            const lag = lagOf.get(from);
            // a negative age is clock skew between the heartbeat writer and this server
            return { from, to: m.zone, lagMs: lag === undefined || !Number.isFinite(lag) ? null : Math.max(0, lag) };
          });
      }),
    ),
  );
  return perTarget.flat();
}

/**
 * DRC lag for every ordered zone pair, as the heartbeats show it now. maxLagMs is the largest
 * known pair (null when no pair has a heartbeat): waiting that long lets in-flight writes land.
 */
export async function measureDrcLagMs(masters: ZoneMaster[]): Promise<{ maxLagMs: number | null; pairs: DrcLagPair[] }> {
  const pairs = await readDrcPairs(masters);
  const known = pairs.map((p) => p.lagMs).filter((l): l is number => l !== null);
  return { maxLagMs: known.length > 0 ? Math.max(...known) : null, pairs };
}

export interface DrcLagOptions {
  /**
   * Throttle when a zone pair has no heartbeat at all. Default false: a job on a cluster where
   * DRC never ran must still run; the gap is reported in status().notes and through warn, once.
   */
  requireHeartbeat?: boolean;
  /** the DRC heartbeat interval: a heartbeat up to this old is on time, not lag */
  heartbeatIntervalMs?: number;
  /** told once per zone pair whose heartbeat is missing (e.g. ctx.log.warn) */
  warn?: (message: string) => void;
}

/**
 * Throttles while DRC from any zone to any other lags more than maxLagMs. The lag is the age of
 * the newest heartbeat that arrived minus one heartbeat interval (a heartbeat is written only
 * that often), so a healthy DRC does not trip a tight limit. When DRC stops, heartbeat ages grow
 * and the signal throttles. The ages are measured on each target master's clock against the
 * writer's clock (the DRC daemon host): skew between them adds to or hides lag.
 */
export function drcLagSignal(masters: ZoneMaster[], maxLagMs: number, opts: DrcLagOptions = {}): ThrottleSignal {
  const staleness = opts.heartbeatIntervalMs ?? DEFAULT_DRC_HEARTBEAT_MS;
  const warned = new Set<string>();
  return {
    name: 'drc-lag',
    async check() {
      const pairs = await readDrcPairs(masters);
      const over: string[] = [];
      const unknown: string[] = [];
      for (const p of pairs) {
        if (p.lagMs === null) {
          const text = `DRC lag unknown (no heartbeat from ${p.from} at ${p.to})`;
          unknown.push(text);
          const key = `${p.from}->${p.to}`;
          if (!warned.has(key) && opts.warn) {
            warned.add(key);
            opts.warn(`${text}: ${opts.requireHeartbeat ? 'throttling until it appears (is DRC running?)' : 'DRC seems never to have run that way; not throttling on its lag'}`);
          }
          continue;
        }
        const lag = Math.max(0, p.lagMs - staleness);
        if (lag > maxLagMs) over.push(`DRC lag ${p.from}->${p.to} ${formatDuration(lag)} > ${formatDuration(maxLagMs)}`);
      }
      if (opts.requireHeartbeat) return verdictOf([...over, ...unknown]);
      if (over.length > 0) return verdictOf(over);
      return unknown.length > 0 ? { throttle: false, reason: unknown.join('; ') } : { throttle: false };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Server load: --max-load / --critical-load

/** SHOW GLOBAL STATUS matches names case-insensitively; look them up the same way. */
async function statusOf(db: Db, names: string[]): Promise<Map<string, string>> {
  const found = await globalStatus(db, names);
  return new Map(Object.entries(found).map(([k, v]) => [k.toLowerCase(), v]));
}

/**
 * Refuse (exit 2) a limit on a status variable a node does not have: a misspelled name would
 * otherwise throttle forever. Run once, before the job starts.
 */
export async function verifyStatusVariables(nodes: Probe[], limits: Record<string, number>, flag = '--max-load'): Promise<void> {
  const names = Object.keys(limits);
  for (const n of nodes) {
    const found = await statusOf(n.db, names);
    const missing = names.filter((x) => !found.has(x.toLowerCase()));
    if (missing.length > 0) {
      throw badInput(`${flag}: ${missing.map((x) => JSON.stringify(x)).join(', ')} ${missing.length === 1 ? 'is not a status variable' : 'are not status variables'} at ${n.label}`, {
        hint: 'names come from SHOW GLOBAL STATUS, e.g. Threads_running, Threads_connected',
      });
    }
  }
}

/**
 * Throttles while any node's status variable is above its limit (`Threads_running=40 > 25 at
 * bj-master`). With critical, crossing a limit stops the job instead (gate() rejects). The
 * polling session itself counts in Threads_running, so a limit of 1 means "anyone else".
 */
export function loadSignal(nodes: Probe[], limits: Record<string, number>, critical = false): ThrottleSignal {
  const names = Object.keys(limits);
  const one = (n: Probe) =>
    onProbe(n, async (db) => {
      const found = await statusOf(db, names);
      const crossed: string[] = [];
      const unreadable: string[] = [];
      for (const name of names) {
        const raw = found.get(name.toLowerCase());
        const value = Number(raw);
        if (raw === undefined || raw === '' || !Number.isFinite(value)) unreadable.push(`status ${name} at ${n.label} is ${raw === undefined ? 'missing' : JSON.stringify(raw)}`);
        else if (value > limits[name]!) crossed.push(`${critical ? 'critical load ' : ''}${name}=${value} > ${limits[name]} at ${n.label}`);
      }
      return { crossed, unreadable };
    });
  return {
    name: critical ? 'critical-load' : 'max-load',
    async check() {
      const all = await Promise.all(nodes.map(one));
      const crossed = all.flatMap((x) => x.crossed);
      const unreadable = all.flatMap((x) => x.unreadable);
      // an unreadable value is not load: it pauses, but never stops the job as critical
      if (crossed.length > 0) return { throttle: true, critical, reason: [...crossed, ...unreadable].join('; ') };
      return verdictOf(unreadable);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Flag file

/** Throttles while the file exists (touch it to pause a job from a shell, remove it to go on). */
export function flagFileSignal(path: string): ThrottleSignal {
  return {
    name: 'flag-file',
    async check() {
      const exists = await access(path).then(
        () => true,
        () => false,
      );
      return exists ? { throttle: true, reason: `flag file ${path} exists` } : { throttle: false };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Pause windows: --pause-window 10:30-13:30,23:00-01:00 (local time)

/** Throttles inside any window, in local time: "pause window 10:30-13:30". */
export function windowSignal(spec: string, now: () => Date = () => new Date()): ThrottleSignal {
  const windows = parseWindows(spec);
  return {
    name: 'pause-window',
    async check() {
      const d = now();
      const minute = d.getHours() * 60 + d.getMinutes();
      const w = windows.find((x) => inWindow(x, minute));
      return w ? { throttle: true, reason: `pause window ${w.text}` } : { throttle: false };
    },
  };
}
