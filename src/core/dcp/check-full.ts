// `ezctl check full`: compare every selected table across zones. Per table: structure first
// (the data compare uses the columns every zone has alike), then the key range walked in chunks
// whose bounds come from the reference zone; each chunk's count and 64-bit checksum computed by
// every zone in parallel; a chunk that differs is narrowed by bisection to rows; differing rows
// are re-checked after DRC has had time to carry what was in flight, and only what persists is
// reported. Progress is checkpointed in `_ezctl` so --run-time / --resume cover a table once.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import type { Ctx } from '../context.js';
import type { Db, Param } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { serverInfo } from '../db/server.js';
import { badInput, runtimeError, EzError, ExitCode } from '../exit.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { Chunker, chunkRange, type Chunk, type ChunkKey } from '../chunk/chunker.js';
import { decodeKey, encodeKey, keyRange, keyText, type KeyValue, type SqlPart } from '../chunk/keys.js';
import { readShapes, compareShapes, commonColumns, tableFilter, describeDiff, type TableShape } from './structure.js';
import {
  bucketChecksumSql, bucketKeys, chunkChecksumSql, multisetSql, rowHashesSql, rowHashesByKeySql, rowValuesSql, rowsByHashSql, splitKeySql,
  type CompareColumn, type HashFunction, type TableTarget,
} from './checksum.js';
import { throttlerFor, logThrottleChanges, type ThrottleOptions } from '../throttle/index.js';
import { measureDrcLagMs } from '../throttle/signals.js';
import type { Throttler } from '../throttle/throttler.js';
import { onInterrupt } from '../signals.js';
import type { RunControl } from '../control/run.js';
import { openCheckControl } from './control.js';
import { lostConnectionError, watchZones } from './lost.js';

export type CheckMode = 'count' | 'checksum' | 'rows';

export interface CheckFullOptions {
  cluster?: string;
  zones?: string[];
  tables?: string;
  exclude?: string;
  /** per table ("db.t" → condition) or for every table ("*") */
  where?: Record<string, string>;
  /** per table ("db.t" → columns) or for every table ("*") */
  ignoreColumns?: Record<string, string[]>;
  mode?: CheckMode;
  /** the row hash; default the strongest fast one every zone has (crc64, else md5) */
  hash?: HashFunction;
  concurrency?: number;
  chunkTimeMs?: number;
  throttle?: ThrottleOptions;
  runTimeMs?: number;
  resume?: boolean;
  /** floor of the settle delay before a difference is re-checked */
  delayMs?: number;
  /** how many times a difference is re-checked before it is reported */
  rechecks?: number;
  /** keyless tables up to this many rows are compared as a multiset of rows */
  keylessMaxRows?: number;
  /** most differences listed per table (all are counted) */
  maxDiffsPerTable?: number;
  /** answer on the cluster's check control socket (status, pause, resume, stop: dcp/control.ts) */
  control?: boolean;
}

export interface ZoneState {
  present: boolean;
  drcTs?: string | null;
  /** values of the differing columns (changed rows) */
  values?: Record<string, unknown>;
  /** copies of this row (keyless tables) */
  count?: number;
}

export interface RowDiff {
  kind: 'missing' | 'changed';
  key: Record<string, unknown>;
  zones: Record<string, ZoneState>;
  columns: string[];
  /** still changing when the re-checks ran out */
  unstable?: boolean;
}

export interface TableReport {
  table: string;
  status: 'done' | 'skipped' | 'incomplete';
  rows: number;
  chunks: number;
  missing: number;
  changed: number;
  diffs: RowDiff[];
  /** why skipped, or what was left out (columns not compared, structure differences) */
  reason?: string;
  structure?: string[];
  columnsExcluded?: { column: string; why: string }[];
  keyless?: boolean;
  /** a table not in every zone: where it is missing and where it exists (a difference) */
  missingIn?: string[];
  presentIn?: string[];
  ms: number;
}

/** A table that could not be compared, and why (the run is then not consistent). */
export interface SkippedTable {
  table: string;
  reason: string;
}

/** A table that exists in some zones and not in others (a difference). */
export interface MissingTable {
  table: string;
  missingIn: string[];
  presentIn: string[];
}

export interface CheckReport {
  /** true only when every table was compared and nothing differs: no rows, no table missing, no structure difference, nothing skipped */
  consistent: boolean;
  /** tables missing in some zone (differences) */
  missingTables: MissingTable[];
  /** tables not compared, with the reason */
  skipped: SkippedTable[];
  /** tables whose structure differs between zones */
  structureDiffers: string[];
  runId: string;
  cluster: string;
  zones: string[];
  mode: CheckMode;
  hash: HashFunction;
  complete: boolean;
  resumed: boolean;
  /** operator: `ezctl check stop` */
  stoppedBy?: 'run-time' | 'interrupt' | 'operator';
  tables: TableReport[];
  rows: number;
  ms: number;
  rowsPerSecond: number;
  throttledMs: number;
  settleDelayMs: number;
}

export interface Progress {
  tablesDone: number;
  tablesTotal: number;
  rowsDone: number;
  rowsEstimate: number;
  current: string[];
  throttled: string | null;
  startedAt: number;
}

const LEAF_ROWS = 2000;
/**
 * rows per bucket aimed at when an integer-keyed chunk is narrowed (well under LEAF_ROWS: the
 * chunker's density estimate can be off by 2x); at most MAX_BUCKETS per scan
 */
const BUCKET_ROWS = 500;
const MAX_BUCKETS = 1024;
const RECHECK_BATCH = 500;
const DEFAULT_MARGIN_MS = 1000;

interface ZoneConn {
  zone: string;
  db: Db;
}

type RunRow = {
  run_id: string;
  status: string;
  options: string;
};

/** Where a --where or --ignore-columns entry for "db.t" (or "*" for every table) applies. */
function forTable<T>(m: Record<string, T> | undefined, table: string): T | undefined {
  return m?.[table] ?? m?.['*'];
}

export async function checkFull(ctx: Ctx, opts: CheckFullOptions, onProgress?: (p: Progress) => void): Promise<CheckReport> {
  const started = Date.now();
  const topo = await ctx.topology();
  const cluster = topo.cluster(opts.cluster);
  const zones = topo.zonesChosen(cluster.name, opts.zones);
  if (zones.length < 2) throw badInput(`a consistency check needs at least two zones (got ${zones.join(', ') || 'none'})`);
  const mode = opts.mode ?? 'checksum';
  const concurrency = opts.concurrency ?? 2;
  const tsColumn = topo.drcTimestampColumn(cluster.name);
  const matcher = tableFilter(cluster.config, { tables: opts.tables, exclude: opts.exclude });

  // one control connection per zone; each worker gets its own set
  const control: ZoneConn[] = [];
  const workers: ZoneConn[][] = [];
  const closeAll = async () => {
    await Promise.all([...control, ...workers.flat()].map((c) => c.db.close().catch(() => undefined)));
  };
  let runId: string | undefined;
  let stopWatch: (() => void) | undefined;
  let ctl: RunControl | undefined;
  let onStop = () => {};
  try {
    // every connection at once, the walk's too (a handshake is mostly waiting on the server)
    const sets = await connectSets(ctx, zones, (z) => topo.master(cluster.name, z), 1 + concurrency);
    control.push(...sets[0]!);
    workers.push(...sets.slice(1));
    // a master that stops answering (hung, not closed) fails the run's queries on it instead of holding them for good
    stopWatch = watchZones(control.map((c, i) => ({ label: c.db.ep.label, connect: () => ctx.connect(topo.master(cluster.name, c.zone)), conns: () => [c.db, ...workers.map((w) => w[i]!.db)] })));
    // the row hash every zone has, and the structure of every selected table in every zone (a
    // few bulk queries per zone), asked together
    const [hash, shapes] = await Promise.all([hashFunction(control, opts.hash), Promise.all(control.map((c) => readShapes(c.db, matcher)))]);
    // DRC's heartbeat table (the one _ezctl table checked) exists where DRC or a check created
    // _ezctl: a zone without it yet is no difference in the application's data
    const names = [...new Set(shapes.flatMap((m) => [...m.keys()]))].filter((n) => !stateTableNotEverywhere(n, shapes)).sort();
    checkNamedTablesExist(opts.tables, names, zones);
    if (names.length === 0) throw badInput(`no tables match${opts.tables ? ` ${opts.tables}` : ''} in cluster ${cluster.name}`, { hint: 'check --tables/--exclude and the cluster\'s databases' });
    await validateWheres(control, names, shapes, opts.where);
    for (const [table, cols] of Object.entries(opts.ignoreColumns ?? {})) {
      if (table === '*') continue;
      if (!names.includes(table)) throw badInput(`--ignore-columns names table ${table}, which is not among the tables checked`);
      const shape = shapes.map((m) => m.get(table)).find(Boolean)!;
      for (const c of cols) if (!shape.columns.some((x) => x.name === c)) throw badInput(`--ignore-columns: ${table} has no column ${c}`);
    }

    const state = control[0]!.db;
    // how long a difference may be DRC still in flight: measured lag + margin, at least --delay;
    // read while the run is opened (each connection runs its queries in order)
    const lagP = measureDrcLagMs(control.map((c) => ({ zone: c.zone, db: c.db }))).catch(() => ({ maxLagMs: null }));
    if (opts.control) ctl = await openCheckControl(topo, cluster.name, () => onStop());
    await ensureStateSchema(state);
    const run = await openRun(state, cluster.name, opts);
    runId = run.runId;
    const doneBefore = run.resumed ? await tablesDone(state, run.runId) : new Map<string, StoredTable>();
    const lag = await lagP;
    const settleDelayMs = Math.max(opts.delayMs ?? 0, (lag.maxLagMs ?? 0) + DEFAULT_MARGIN_MS);

    // with a control socket always a throttler: `check pause` needs one
    const throttle = opts.control || (opts.throttle && Object.values(opts.throttle).some((v) => v !== undefined)) ? await throttlerFor(ctx, cluster.name, zones, opts.throttle ?? {}) : undefined;
    // one log line per transition: "throttled: <why>" / "throttle released after 3.1s"
    const offThrottleLog = throttle ? logThrottleChanges(throttle.throttler, ctx.log, 'check: ') : undefined;
    // --run-time and Ctrl-C stop every table at its next chunk boundary, also one waiting on the throttle
    const deadline = opts.runTimeMs ? started + opts.runTimeMs : undefined;
    const stop = new AbortController();
    let stoppedBy: CheckReport['stoppedBy'];
    const stopRequested = () => {
      if (!stoppedBy && deadline && Date.now() >= deadline) stoppedBy = 'run-time';
      if (stoppedBy && !stop.signal.aborted) stop.abort();
      return stoppedBy !== undefined;
    };
    // The timer's firing is the deadline: Node can run it a few ms before Date.now() reaches it
    // (the loop's cached clock), and a re-test of the clock then would let a walk waiting on the
    // throttle wait on for good.
    const deadlineTimer = deadline
      ? setTimeout(() => {
          stoppedBy ??= 'run-time';
          stopRequested();
        }, Math.max(0, deadline - Date.now()))
      : undefined;
    deadlineTimer?.unref();
    const offInterrupt = onInterrupt(async () => {
      stoppedBy = 'interrupt';
      stop.abort();
    });
    onStop = () => {
      stoppedBy ??= 'operator';
      stopRequested();
    };
    if (ctl?.stopping) onStop();

    const progress: Progress = {
      tablesDone: 0,
      tablesTotal: names.length,
      rowsDone: 0,
      rowsEstimate: 0,
      current: [],
      throttled: null,
      startedAt: started,
    };
    // for progress and ETA only: the walk need not wait for it
    rowsEstimate(control[0]!.db, names).then((n) => (progress.rowsEstimate = n), () => undefined);
    ctl?.attach(() => ({ runId: run.runId, done: progress.tablesDone, total: progress.tablesTotal, rows: progress.rowsDone, rowsEstimate: progress.rowsEstimate, current: progress.current }), throttle!.throttler);
    const tick = setInterval(() => {
      progress.throttled = throttle?.throttler.status().reason ?? null;
      onProgress?.(progress);
    }, 500);
    tick.unref();

    const reports: TableReport[] = [];
    const settles: Promise<void>[] = [];
    const free = [...workers];
    const limit = pLimit(concurrency);
    try {
      await Promise.all(
        names.map((name) =>
          limit(async () => {
            const prior = doneBefore.get(name);
            if (prior && prior.status !== 'running') {
              reports.push(await storedReport(state, run.runId, name, prior));
              progress.tablesDone++;
              return;
            }
            if (stopRequested()) return;
            const conns = free.pop()!;
            progress.current.push(name);
            let settling = false;
            try {
              const job = new TableCheck(ctx, {
                name, zones, conns, shapes: shapes.map((m) => m.get(name)), mode, hash, tsColumn,
                where: forTable(opts.where, name), ignore: forTable(opts.ignoreColumns, name), ignoreNamed: !!opts.ignoreColumns?.[name],
                chunkTimeMs: opts.chunkTimeMs ?? 500, settleDelayMs, rechecks: opts.rechecks ?? 5,
                keylessMaxRows: opts.keylessMaxRows ?? 100_000, maxDiffs: opts.maxDiffsPerTable ?? 1000,
                throttler: throttle?.throttler, stopRequested, stopSignal: stop.signal, state, runId: run.runId,
                resumeAfter: prior?.lastKey, resumed: prior ? await storedReport(state, run.runId, name, prior) : undefined, onRows: (n) => (progress.rowsDone += n),
              });
              const walked = await job.walkOnly();
              const finished = (r: TableReport) => {
                reports.push(r);
                if (r.status !== 'incomplete') progress.tablesDone++;
                progress.current.splice(progress.current.indexOf(name), 1);
              };
              if (walked) finished(walked);
              else {
                // re-checks mostly wait for DRC: they run on the control connections, all tables
                // together, while the walk's connections go on to the next table
                settling = true;
                const settled = job.settleOn(control).then(finished);
                settled.catch(() => undefined); // awaited below; not unhandled if a walk fails first
                settles.push(settled);
              }
            } finally {
              if (!settling && progress.current.includes(name)) progress.current.splice(progress.current.indexOf(name), 1);
              free.push(conns);
            }
          }),
        ),
      );
      await Promise.all(settles);
    } finally {
      clearInterval(tick);
      clearTimeout(deadlineTimer);
      offInterrupt();
      offThrottleLog?.();
      await throttle?.close();
    }
    onProgress?.(progress);

    reports.sort((a, b) => a.table.localeCompare(b.table));
    const checked = new Set(reports.map((r) => r.table));
    const complete = names.every((n) => checked.has(n)) && reports.every((r) => r.status !== 'incomplete');
    const rows = reports.reduce((s, r) => s + r.rows, 0);
    const ms = Date.now() - started;
    const report: CheckReport = {
      ...verdict(reports),
      runId: run.runId,
      cluster: cluster.name,
      zones,
      mode,
      hash,
      complete,
      resumed: run.resumed,
      tables: reports,
      rows,
      ms,
      rowsPerSecond: ms > 0 ? Math.round((rows / ms) * 1000) : 0,
      throttledMs: throttle?.throttler.status().throttledMs ?? 0,
      settleDelayMs,
    };
    if (stoppedBy) report.stoppedBy = stoppedBy;
    await closeRun(state, report);
    return report;
  } catch (e) {
    // the run stays resumable: its tables keep their checkpoints, the run is marked unfinished
    const stateAlive = runId !== undefined && control[0] && (await abandonRun(control[0].db, runId));
    const lost = lostConnectionError(e, [...control, ...workers.flat()], 'check full', (node) =>
      !runId
        ? `run the check again once ${node ?? 'it'} answers`
        : stateAlive
          ? `--resume continues run ${runId} from its last checkpoint`
          : `run the check again once ${node ?? 'it'} answers (${zones[0]}'s master keeps the run's checkpoints and could not be told: run ${runId} cannot be resumed)`,
    (node) => (stateAlive ? `start ${node ?? 'the server'} again (or restore the network to it), then: ezctl check full --resume, with the same options` : `start ${node ?? 'the server'} again (or restore the network to it), then run the check again`));
    throw lost ?? e;
  } finally {
    ctl?.close();
    stopWatch?.();
    await closeAll();
  }
}

/**
 * `count` sets of connections, one per zone master in zone order, all opened at once. When one
 * fails, those made are closed and the first failure in order (set, then zone) is thrown, the
 * same error connecting one by one would have stopped at.
 */
export async function connectSets(ctx: Ctx, zones: string[], master: (zone: string) => Parameters<Ctx['connect']>[0], count: number): Promise<ZoneConn[][]> {
  const tries = await Promise.all(
    Array.from({ length: count }, () => Promise.allSettled(zones.map(async (zone): Promise<ZoneConn> => ({ zone, db: await ctx.connect(master(zone)) })))),
  );
  const failed = tries.flat().find((t): t is PromiseRejectedResult => t.status === 'rejected');
  if (failed) {
    await Promise.all(tries.flat().map((t) => (t.status === 'fulfilled' ? t.value.db.close().catch(() => undefined) : undefined)));
    throw failed.reason;
  }
  return tries.map((set) => set.map((t) => (t as PromiseFulfilledResult<ZoneConn>).value));
}

/** A run that failed: marked unfinished (so --resume continues it); false when its state server cannot be reached. */
export async function abandonRun(db: Db, runId: string): Promise<boolean> {
  try {
    await db.exec(`UPDATE ${quoteTable(STATE_SCHEMA, 'check_runs')} SET status = 'incomplete' WHERE run_id = ? AND status = 'running'`, [runId]);
    return true;
  } catch {
    return false;
  }
}

/** An `_ezctl` table (DRC's heartbeat) missing in some zone: ezctl's own, left out of the check there. */
export function stateTableNotEverywhere(name: string, shapes: Map<string, TableShape>[]): boolean {
  return name.startsWith(`${STATE_SCHEMA}.`) && shapes.some((m) => !m.has(name));
}

/** The server's row-count estimates (InnoDB statistics), for progress and ETA only. */
async function rowsEstimate(db: Db, names: string[]): Promise<number> {
  const schemas = [...new Set(names.map((n) => splitName(n)[0]))];
  const rows = await db.query<{ s: string; t: string; n: string | number | null }>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (${schemas.map(() => '?').join(', ')})`,
    schemas,
  );
  const wanted = new Set(names);
  return rows.filter((r) => wanted.has(`${r.s}.${r.t}`)).reduce((sum, r) => sum + Number(r.n ?? 0), 0);
}

export async function hashFunction(conns: ZoneConn[], wanted?: HashFunction): Promise<HashFunction> {
  // one expression for all zones: the one asked for, else the strongest fast one every zone has
  const infos = await Promise.all(conns.map((c) => serverInfo(c.db)));
  const lacking = infos.map((i, n) => ({ i, zone: conns[n]!.zone })).filter(({ i }) => !(i.flavor === 'mariadb' && versionAtLeast(i.version, [10, 8])));
  if (wanted === 'crc64' && lacking.length) {
    throw badInput(`--hash crc64 needs CRC32C (MariaDB 10.8 or later); ${lacking.map((l) => `${l.zone} runs ${l.i.flavor} ${l.i.version}`).join(', ')}`, { hint: 'use --hash md5 (any server) or crc32 (faster, 32 bits)' });
  }
  return wanted ?? (lacking.length ? 'md5' : 'crc64');
}

function versionAtLeast(v: string, want: number[]): boolean {
  const parts = v.split(/[.-]/).map((x) => Number(x));
  for (let i = 0; i < want.length; i++) {
    if ((parts[i] ?? 0) > want[i]!) return true;
    if ((parts[i] ?? 0) < want[i]!) return false;
  }
  return true;
}

/** A --tables entry without wildcards names one table: it must exist somewhere. */
function checkNamedTablesExist(tables: string | undefined, names: string[], zones: string[]): void {
  if (!tables) return;
  for (const p of tables.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (/[*?/]/.test(p)) continue;
    if (!names.includes(p)) throw badInput(`table ${p} does not exist in any zone checked (${zones.join(', ')}), or is not replicated by DRC`, { hint: 'ezctl check schema lists the tables of each zone' });
  }
}

/** Every --where must parse and name real columns on every zone, before anything is checked. */
async function validateWheres(conns: ZoneConn[], names: string[], shapes: Map<string, TableShape>[], where: Record<string, string> | undefined): Promise<void> {
  if (!where) return;
  for (const key of Object.keys(where)) {
    if (key !== '*' && !names.includes(key)) throw badInput(`--where names table ${key}, which is not among the tables checked`);
  }
  for (const name of names) {
    const w = forTable(where, name);
    if (!w) continue;
    for (const [i, c] of conns.entries()) {
      const s = shapes[i]!.get(name);
      if (!s) continue;
      try {
        await c.db.query(`EXPLAIN SELECT 1 FROM ${quoteTable(s.schema, s.table)} WHERE (${w}\n)`);
      } catch (e) {
        throw badInput(`--where for ${name} is not valid on ${c.zone}: ${(e as Error).message.replace(/ in: .*/, '')}`, { hint: 'give a plain SQL condition on the table\'s columns, e.g. --where "ezdemo.orders:created_at >= \'2024-01-01\'"' });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// one table

export interface TableJob {
  name: string;
  zones: string[];
  /** the walk's connections, one per zone in zone order */
  conns: ZoneConn[];
  shapes: (TableShape | undefined)[];
  mode: CheckMode;
  hash: HashFunction;
  tsColumn: string;
  where?: string | undefined;
  ignore?: string[] | undefined;
  /** the ignore list names this table (not every table): its columns must exist */
  ignoreNamed?: boolean;
  chunkTimeMs: number;
  settleDelayMs: number;
  rechecks: number;
  keylessMaxRows: number;
  maxDiffs: number;
  throttler?: Throttler | undefined;
  stopRequested: () => boolean;
  stopSignal: AbortSignal;
  state: Db;
  runId: string;
  resumeAfter?: KeyValue | undefined;
  resumed?: { rows: number; chunks: number; diffs: RowDiff[] } | undefined;
  onRows: (n: number) => void;
}

/** A chunk being computed on every zone. */
interface InFlight {
  chunk: Chunk;
  result: Promise<{ n: number; sums?: { cnt: number; crc: string }[]; buckets?: Buckets }>;
  /** the longest time any zone spent on it, not counting its wait behind the chunk before */
  busyMs: () => number;
}

type Tracker = <T>(zone: number, p: Promise<T>) => Promise<T>;
const untracked: Tracker = (_zone, p) => p;

/** A range's per-stretch sums (key DIV step), per zone, and the range's totals per zone. */
interface Buckets {
  lower: KeyValue | undefined;
  upper: KeyValue | undefined;
  lo: bigint;
  hi: bigint;
  step: bigint;
  byBucket: Map<string, { cnt: number; crc: string }[]>;
  sums: { cnt: number; crc: string }[];
}

interface Seen {
  key: KeyValue;
  /** per zone: row hash and DRC timestamp, or undefined when absent */
  zones: ({ h: string; ts: string | null } | undefined)[];
}

export class TableCheck {
  private readonly report: TableReport;
  private target!: TableTarget;
  private key!: ChunkKey;
  private candidates = new Map<string, KeyValue>();
  /** what the walk saw of each differing row (per zone hash and timestamp), to tell whether it changes */
  private firstSeen = new Map<string, string>();
  private hasTs = false;
  /** a one-column integer key's smallest and largest value in any zone, read before the walk */
  private keySpan: { min: bigint; max: bigint } | undefined;
  /** per zone: when the last chunk issued ended there (filled in as it ends; for chunk timing) */
  private lastEnds: number[] | undefined;
  /** chunks of this table that differed so far */
  private differingChunks = 0;
  /** when the last differing row was found: its re-check waits the settle delay from then */
  private lastFoundAt = 0;
  private readonly started = Date.now();
  /** differences stored by an earlier part of a resumed run (not stored again) */
  private priorDiffs = 0;
  /** where a stopped walk ended, saved once its differences are stored */
  private stopAt: KeyValue | undefined;

  constructor(
    private readonly ctx: Ctx,
    private readonly job: TableJob,
  ) {
    this.report = { table: job.name, status: 'done', rows: 0, chunks: 0, missing: 0, changed: 0, diffs: [], ms: 0 };
  }

  /**
   * The walk alone: a report when the table is already finished (skipped, keyless), else
   * undefined and settle() is due. The caller can let the walk's connections go meanwhile.
   */
  async walkOnly(): Promise<TableReport | undefined> {
    const j = this.job;
    if (j.resumed) {
      this.report.rows = j.resumed.rows;
      this.report.chunks = j.resumed.chunks;
      this.priorDiffs = j.resumed.diffs.length;
      for (const d of j.resumed.diffs) {
        this.report.diffs.push(d);
        if (d.kind === 'missing') this.report.missing++;
        else this.report.changed++;
      }
    }
    // the table's row in the run, written on the state connection while this table's own
    // connections start on it (that connection runs its statements in order: later checkpoints
    // land after it)
    const registered = j.resumed ? undefined : this.saveTable('running');
    registered?.catch(() => undefined); // awaited below; not unhandled if the walk fails first
    const prepared = await this.prepare();
    if (!prepared) await this.walk();
    await registered;
    return prepared;
  }

  /** After walkOnly: re-check what differed, on these connections (one per zone, in zone order), and finish. */
  async settleOn(conns: ZoneConn[]): Promise<TableReport> {
    this.job.conns = conns;
    await this.settle();
    return this.finish(this.report.status);
  }

  /** The incremental check: just these keys, compared and re-checked like a chunk's differing rows. */
  async checkKeys(keys: KeyValue[]): Promise<TableReport> {
    const prepared = await this.prepare(true);
    if (prepared) return prepared;
    for (const k of keys) this.candidates.set(keyText(k), k);
    this.lastFoundAt = Date.now();
    this.report.rows = keys.length;
    this.report.chunks = Math.ceil(keys.length / RECHECK_BATCH);
    this.job.onRows(keys.length);
    await this.settle();
    return this.finish('done');
  }

  /** Structure, columns and key; a report when the table cannot be walked (skipped, or keyless and done). */
  private async prepare(keysOnly = false): Promise<TableReport | undefined> {
    const j = this.job;
    const absent = j.zones.filter((_, i) => !j.shapes[i]);
    if (absent.length) {
      const present = j.zones.filter((_, i) => j.shapes[i]);
      this.report.missingIn = absent;
      this.report.presentIn = present;
      return this.skip(`table missing in ${absent.join(', ')} (exists in ${present.join(', ')})`, []);
    }
    const shapes = j.shapes as TableShape[];
    const structure = shapes.slice(1).flatMap((s, i) => compareShapes(shapes[0]!, s).map((d) => `${j.zones[i + 1]}: ${describeDiff(d, j.zones[0])}`));
    if (structure.length) this.report.structure = structure;
    const common = commonColumns(shapes, j.zones);
    const ignored = new Set(j.ignore ?? []);
    if (j.ignoreNamed) for (const c of ignored) if (!shapes[0]!.columns.some((x) => x.name === c)) throw badInput(`--ignore-columns: ${j.name} has no column ${c}`);
    const excluded = [...common.excluded, ...[...ignored].map((column) => ({ column, why: 'ignored (--ignore-columns)' }))];
    if (excluded.length) this.report.columnsExcluded = excluded;

    const identity = keyOf(shapes);
    const keyCols = identity?.columns ?? [];
    const compared = common.columns.filter((c) => !ignored.has(c) || keyCols.includes(c));
    if (compared.length === 0) return this.skip('no column is alike in every zone', structure);
    const ref = shapes[0]!;
    const columns: CompareColumn[] = compared.map((name) => {
      const cs = shapes.map((s) => s.columns.find((c) => c.name === name)!);
      const c0 = cs[0]!;
      return { name, dataType: c0.dataType, nullable: cs.some((c) => c.nullable), convertCharset: new Set(cs.map((c) => c.charset ?? '')).size > 1 };
    });
    this.hasTs = compared.includes(j.tsColumn);
    this.target = { schema: ref.schema, table: ref.table, index: identity?.index ?? null, keyColumns: keyCols, columns, hash: j.hash };
    if (j.where) this.target.where = j.where;

    if (!identity) return keysOnly ? this.skip('no primary or unique NOT NULL key to look rows up by', structure) : this.keyless(structure);
    if (!keyCols.every((k) => compared.includes(k))) return this.skip(`its key (${keyCols.join(', ')}) is not alike in every zone`, structure);
    const kc = ref.columns.find((c) => c.name === keyCols[0]);
    this.key = { index: identity.index, columns: keyCols, integer: keyCols.length === 1 && !!kc && /int$/.test(kc.dataType) };

    return undefined;
  }

  private async walk(): Promise<void> {
    const j = this.job;
    const opts: ConstructorParameters<typeof Chunker>[4] = { targetMs: j.chunkTimeMs };
    if (j.where) opts.where = { sql: `(${j.where}\n)`, params: [] };
    if (j.resumeAfter) opts.after = j.resumeAfter;
    if (this.key.integer) {
      const col = quoteId(this.key.columns[0]!);
      const bounds = await Promise.all(j.conns.map((c) => c.db.one<{ lo: string | null; hi: string | null }>(`SELECT CAST(MIN(${col}) AS CHAR) AS lo, CAST(MAX(${col}) AS CHAR) AS hi FROM ${quoteTable(this.target.schema, this.target.table)}`)));
      const los = bounds.map((b) => b?.lo).filter((x): x is string => x !== null && x !== undefined).map(BigInt);
      const his = bounds.map((b) => b?.hi).filter((x): x is string => x !== null && x !== undefined).map(BigInt);
      opts.numericMax = his.length ? his.reduce((a, b) => (b > a ? b : a)) : null;
      opts.numericMin = los.length ? los.reduce((a, b) => (b < a ? b : a)) : null;
      if (opts.numericMin !== null && opts.numericMax !== null) this.keySpan = { min: opts.numericMin, max: opts.numericMax };
      if (j.resumeAfter) opts.after = [BigInt(String(j.resumeAfter[0]))];
    }
    const chunker = new Chunker(j.conns[0]!.db, this.target.schema, this.target.table, this.key, opts);
    let lastSave = Date.now();
    // One chunk is computed ahead: each zone's server starts the next chunk as soon as it has
    // finished this one, instead of waiting for the slowest zone (every connection runs its
    // queries in order, so queueing the next chunk is enough).
    let ahead: InFlight | undefined;
    const finish = async (f: InFlight) => {
      const { sums, buckets, n } = await f.result;
      chunker.record(n, f.busyMs());
      if (sums && !sameSums(sums)) {
        this.differingChunks++;
        if (buckets) await this.narrowFrom(buckets);
        else await this.narrow(f.chunk.lower, f.chunk.upper, sums);
      }
      this.report.rows += n;
      this.report.chunks++;
      j.onRows(n);
      // the checkpoint is the end of the last chunk finished, not of the one still in flight;
      // and never past a difference not yet re-checked and stored: a run that dies (a server
      // lost) resumes from before it, instead of past a difference it never reported
      if (Date.now() - lastSave > 2000 && f.chunk.upper && this.candidates.size === 0) {
        lastSave = Date.now();
        await this.saveTable('running', f.chunk.upper);
      }
    };
    try {
      for (;;) {
        if (j.stopRequested()) {
          if (ahead) await finish(ahead);
          ahead = undefined;
          this.report.status = 'incomplete';
          // with differences pending, the position is saved once they are stored (finish)
          if (this.candidates.size === 0) await this.saveTable('running', chunker.position);
          else this.stopAt = chunker.position;
          return;
        }
        try {
          await j.throttler?.gate(j.stopSignal);
        } catch (e) {
          if (!j.stopSignal.aborted) throw e;
          continue; // stopping: the check at the top of the loop saves the checkpoint
        }
        const chunk = await chunker.next();
        if (!chunk) break;
        const current = this.issue(chunk);
        const previous = ahead;
        ahead = current;
        if (previous) await finish(previous);
      }
      if (ahead) await finish(ahead);
      ahead = undefined;
    } finally {
      // a failure with a chunk in flight: let it settle before the connections are reused
      await ahead?.result.catch(() => undefined);
    }
  }

  /** Start computing a chunk on every zone; busyMs() is the longest any zone spent on it. */
  private issue(chunk: Chunk): InFlight {
    const j = this.job;
    const issuedAt = Date.now();
    const range = chunkRange(this.key, chunk);
    // a zone starts on this chunk when it is done with the one before (filled in as they end)
    const before = this.lastEnds;
    const ends: number[] = [];
    this.lastEnds = ends;
    const track = <T>(zi: number, p: Promise<T>) =>
      p.then((v) => {
        ends[zi] = Date.now();
        return v;
      });
    // Once a chunk of this table has differed, more are likely to: sums per key stretch cost
    // ~15% more than one sum per chunk, where narrowing a differing chunk reads it all again.
    const bucketed = j.mode !== 'rows' && this.keySpan !== undefined && this.differingChunks > 0;
    const result = (async () => {
      if (j.mode === 'rows') {
        const n = await this.compareRows(range, track);
        return { n };
      }
      if (bucketed) {
        const buckets = await this.bucketSums(chunk.lower, chunk.upper, chunk.plannedRows, track);
        return { sums: buckets.sums, buckets, n: Math.max(...buckets.sums.map((s) => s.cnt)) };
      }
      const sums = await this.checksums(range, track);
      return { sums, n: Math.max(...sums.map((s) => s.cnt)) };
    })();
    result.catch(() => undefined); // awaited by the walk; not unhandled meanwhile
    return { chunk, result, busyMs: () => Math.max(1, ...ends.map((e, zi) => e - Math.max(issuedAt, before?.[zi] ?? 0))) };
  }

  private async checksums(range: SqlPart, track: Tracker = untracked): Promise<{ cnt: number; crc: string }[]> {
    const q = chunkChecksumSql(this.target, range, this.job.mode === 'count');
    return Promise.all(
      this.job.conns.map(async (c, zi) => {
        const r = await track(zi, c.db.one<{ cnt: number | string; crc?: string | number | null }>(q.sql, q.params));
        return { cnt: Number(r?.cnt ?? 0), crc: String(r?.crc ?? '') };
      }),
    );
  }

  /** Narrow a differing range until it is small, then compare it row by row. */
  private async narrow(lower: KeyValue | undefined, upper: KeyValue | undefined, sums: { cnt: number; crc: string }[]): Promise<void> {
    const n = Math.max(...sums.map((s) => s.cnt));
    if (n > LEAF_ROWS && this.keySpan) return this.narrowByBuckets(lower, upper, n);
    return this.bisect(lower, upper, sums);
  }

  /**
   * An integer key: one query per zone gives the count and checksum of up to MAX_BUCKETS
   * stretches of the key; only the stretches that differ are compared row by row (or split the
   * same way again when they are still large).
   */
  private async narrowByBuckets(lower: KeyValue | undefined, upper: KeyValue | undefined, rows: number): Promise<void> {
    await this.narrowFrom(await this.bucketSums(lower, upper, rows));
  }

  /** Count and checksum per stretch of an integer key range (lower, upper], about `rows` rows in all. */
  private async bucketSums(lower: KeyValue | undefined, upper: KeyValue | undefined, rows: number, track: Tracker = untracked): Promise<Buckets> {
    const lo = lower ? BigInt(String(lower[0])) : this.keySpan!.min - 1n;
    const hi = upper ? BigInt(String(upper[0])) : this.keySpan!.max;
    const buckets = BigInt(Math.max(2, Math.min(MAX_BUCKETS, Math.ceil(rows / BUCKET_ROWS))));
    const span = hi > lo ? hi - lo : 1n;
    const step = span / buckets + 1n;
    const q = bucketChecksumSql(this.target, keyRange(this.key.columns, lower, upper), step, this.job.mode === 'count');
    const perZone = await Promise.all(this.job.conns.map((c, zi) => track(zi, c.db.query<{ b: string; cnt: number | string; crc?: string | number | null }>(q.sql, q.params))));
    const byBucket = new Map<string, { cnt: number; crc: string }[]>();
    const totals = perZone.map(() => ({ cnt: 0, crc: 0n }));
    perZone.forEach((rs, zi) => {
      for (const r of rs) {
        const list = byBucket.get(r.b) ?? perZone.map(() => ({ cnt: 0, crc: '' }));
        list[zi] = { cnt: Number(r.cnt), crc: String(r.crc ?? '') };
        byBucket.set(r.b, list);
        totals[zi]!.cnt += Number(r.cnt);
        if (r.crc !== undefined && r.crc !== null) totals[zi]!.crc ^= BigInt(r.crc);
      }
    });
    return { lower, upper, lo, hi, step, byBucket, sums: totals.map((t) => ({ cnt: t.cnt, crc: this.job.mode === 'count' ? '' : String(t.crc) })) };
  }

  private async narrowFrom(b: Buckets): Promise<void> {
    const { lower, upper, lo, hi, step } = b;
    const differing = [...b.byBucket].filter(([, s]) => !sameSums(s)).map(([k, s]) => ({ b: BigInt(k), n: Math.max(...s.map((x) => x.cnt)) })).sort((x, y) => (x.b < y.b ? -1 : x.b > y.b ? 1 : 0));
    for (const d of differing) {
      const [first, last] = bucketKeys(d.b, step);
      // the bucket within the range: (max(lo, first - 1), min(hi, last)], the top left open when the range is
      const bLower: KeyValue | undefined = lower || first - 1n > lo ? [first - 1n > lo ? first - 1n : lo] : undefined;
      const bUpper: KeyValue | undefined = upper || last < hi ? [last < hi ? last : hi] : undefined;
      if (d.n <= LEAF_ROWS || step === 1n) await this.compareRows(keyRange(this.key.columns, bLower, bUpper));
      else await this.narrowByBuckets(bLower, bUpper, d.n);
    }
  }

  /** Any other key: bisect by row offset until the range is small, then compare it row by row. */
  private async bisect(lower: KeyValue | undefined, upper: KeyValue | undefined, sums: { cnt: number; crc: string }[]): Promise<void> {
    const n = Math.max(...sums.map((s) => s.cnt));
    if (n <= LEAF_ROWS) {
      await this.compareRows(keyRange(this.key.columns, lower, upper));
      return;
    }
    const fullest = sums.findIndex((s) => s.cnt === n);
    const q = splitKeySql(this.target, keyRange(this.key.columns, lower, upper), Math.floor(n / 2) - 1);
    const row = await this.job.conns[fullest]!.db.one(q.sql, q.params);
    if (!row) {
      await this.compareRows(keyRange(this.key.columns, lower, upper));
      return;
    }
    const mid = this.key.columns.map((c) => row[c] as Param);
    for (const [lo, hi] of [[lower, mid], [mid, upper]] as const) {
      const s = await this.checksums(keyRange(this.key.columns, lo, hi));
      if (!sameSums(s)) await this.bisect(lo, hi, s);
    }
  }

  /** Fetch each row's key and hash from every zone and note the keys that differ; returns the most rows any zone had. */
  private async compareRows(range: SqlPart, track: Tracker = untracked): Promise<number> {
    const q = rowHashesSql(this.target, range, this.hasTs ? this.job.tsColumn : undefined, this.job.mode === 'count');
    const perZone = await Promise.all(this.job.conns.map((c, zi) => track(zi, c.db.query(q.sql, q.params))));
    const seen = this.collect(perZone);
    for (const [id, s] of seen) {
      if (!differs(s)) continue;
      this.candidates.set(id, s.key);
      this.firstSeen.set(id, JSON.stringify(s.zones));
      this.lastFoundAt = Date.now();
    }
    return Math.max(...perZone.map((r) => r.length));
  }

  private collect(perZone: Record<string, unknown>[][]): Map<string, Seen> {
    const seen = new Map<string, Seen>();
    const zn = this.job.conns.length;
    perZone.forEach((rows, zi) => {
      for (const r of rows) {
        const key = this.key.columns.map((c) => r[c] as Param);
        const id = keyText(key);
        let s = seen.get(id);
        if (!s) {
          s = { key, zones: new Array(zn).fill(undefined) };
          seen.set(id, s);
        }
        s.zones[zi] = { h: String(r.h ?? ''), ts: r.ts === undefined || r.ts === null ? null : String(r.ts) };
      }
    });
    return seen;
  }

  /**
   * Re-check the differing keys after the settle delay, with backoff, while they are recent or
   * still changing; report what persists. A row DRC was still carrying converges meanwhile.
   */
  private async settle(): Promise<void> {
    if (this.candidates.size === 0) return;
    const j = this.job;
    let pending = new Map(this.candidates);
    // the walk's view is the first observation: a row unchanged since then, with no recent
    // timestamp, is settled at the first re-check (the incremental check has no such view and
    // always looks twice)
    const previous = new Map(this.firstSeen);
    const confirmed = new Map<string, Seen>();
    // the first look once the settle delay has passed since the last difference was found (a
    // long walk has often waited it already), the next one a delay later, then backing off
    let wait = Math.max(0, this.lastFoundAt + j.settleDelayMs - Date.now());
    for (let attempt = 0; attempt <= j.rechecks && pending.size; attempt++) {
      await sleep(wait);
      wait = Math.min(j.settleDelayMs * 2 ** attempt, 30_000);
      const nowMs = await serverNowMs(j.conns[0]!.db);
      const current = await this.fetchByKeys([...pending.values()]);
      const next = new Map<string, KeyValue>();
      for (const [id, key] of pending) {
        const s = current.get(id) ?? { key, zones: new Array(j.conns.length).fill(undefined) };
        if (!differs(s)) continue;
        const fingerprint = JSON.stringify(s.zones);
        const recent = s.zones.some((z) => z?.ts && nowMs - tsMs(z.ts) < j.settleDelayMs);
        const seenBefore = previous.has(id);
        const moving = seenBefore && previous.get(id) !== fingerprint;
        previous.set(id, fingerprint);
        if ((recent || moving || !seenBefore) && attempt < j.rechecks) next.set(id, key);
        else confirmed.set(id, { ...s, ...(recent || moving ? { unstable: true } : {}) } as Seen);
      }
      pending = next;
    }
    await this.classify([...confirmed.values()]);
  }

  private async fetchByKeys(keys: KeyValue[]): Promise<Map<string, Seen>> {
    const out = new Map<string, Seen>();
    for (let i = 0; i < keys.length; i += RECHECK_BATCH) {
      const q = rowHashesByKeySql(this.target, keys.slice(i, i + RECHECK_BATCH), this.hasTs ? this.job.tsColumn : undefined);
      const perZone = await Promise.all(this.job.conns.map((c) => c.db.query(q.sql, q.params)));
      for (const [id, s] of this.collect(perZone)) {
        // count mode compares presence only
        if (this.job.mode === 'count') s.zones = s.zones.map((z) => (z ? { ...z, h: '' } : z));
        out.set(id, s);
      }
    }
    return out;
  }

  /** Missing where some zone lacks the row; changed (with the columns) where all have it. */
  private async classify(rows: (Seen & { unstable?: boolean })[]): Promise<void> {
    const j = this.job;
    const changed = rows.filter((s) => s.zones.every(Boolean));
    const values = new Map<string, Record<string, unknown>[]>();
    for (let i = 0; i < changed.length && i < j.maxDiffs; i += RECHECK_BATCH) {
      const q = rowValuesSql(this.target, changed.slice(i, Math.min(i + RECHECK_BATCH, j.maxDiffs)).map((s) => s.key));
      const perZone = await Promise.all(j.conns.map((c) => c.db.query(q.sql, q.params)));
      perZone.forEach((rs, zi) => {
        for (const r of rs) {
          const id = keyText(this.key.columns.map((c) => r[c] as Param));
          const list = values.get(id) ?? new Array(j.conns.length).fill(undefined);
          list[zi] = r;
          values.set(id, list);
        }
      });
    }
    for (const s of rows) {
      const kind: RowDiff['kind'] = s.zones.every(Boolean) ? 'changed' : 'missing';
      if (kind === 'missing') this.report.missing++;
      else this.report.changed++;
      if (this.report.diffs.length >= j.maxDiffs) continue;
      const diff: RowDiff = { kind, key: Object.fromEntries(this.key.columns.map((c, i) => [c, s.key[i]])), zones: {}, columns: [] };
      const vals = values.get(keyText(s.key));
      if (kind === 'changed' && vals) {
        this.target.columns.forEach((c, ci) => {
          const vs = vals.map((r) => r?.[`c${ci}`]);
          if (!allEqual(vs)) diff.columns.push(c.name);
        });
      }
      j.zones.forEach((z, zi) => {
        const zs = s.zones[zi];
        const st: ZoneState = { present: !!zs };
        if (zs && this.hasTs) st.drcTs = zs.ts;
        if (zs && vals && diff.columns.length) {
          st.values = Object.fromEntries(diff.columns.map((col) => [col, vals[zi]?.[`c${this.target.columns.findIndex((c) => c.name === col)}`]]));
        }
        diff.zones[z] = st;
      });
      if (s.unstable) diff.unstable = true;
      this.report.diffs.push(diff);
    }
  }

  /** A table without a usable key: compared as a multiset of whole rows when small enough. */
  private async keyless(structure: string[]): Promise<TableReport> {
    const j = this.job;
    this.report.keyless = true;
    const counts = await Promise.all(j.conns.map((c) => c.db.value<number | string>(`SELECT COUNT(*) FROM ${quoteTable(this.target.schema, this.target.table)}${this.target.where ? ` WHERE (${this.target.where}\n)` : ''}`)));
    const n = Math.max(...counts.map(Number));
    if (n > j.keylessMaxRows) return this.skip(`no primary or unique NOT NULL key, and ${n} rows is more than --keyless-max-rows ${j.keylessMaxRows}`, structure);
    const pass = async () => {
      const q = multisetSql(this.target);
      const perZone = await Promise.all(j.conns.map((c) => c.db.query<{ h: string; n: number | string }>(q.sql, q.params)));
      const byHash = new Map<string, number[]>();
      perZone.forEach((rows, zi) => {
        for (const r of rows) {
          const list = byHash.get(String(r.h)) ?? new Array(j.conns.length).fill(0);
          list[zi] = Number(r.n);
          byHash.set(String(r.h), list);
        }
      });
      return new Map([...byHash].filter(([, c]) => !allEqual(c)));
    };
    let diff = await pass();
    for (let attempt = 0; attempt < j.rechecks && diff.size; attempt++) {
      await sleep(j.settleDelayMs * 2 ** attempt);
      const again = await pass();
      const stable = new Map([...again].filter(([h, c]) => diff.get(h) && JSON.stringify(diff.get(h)) === JSON.stringify(c)));
      if (stable.size === again.size) {
        diff = again;
        break;
      }
      diff = again;
    }
    this.report.rows = n;
    this.report.chunks = 1;
    j.onRows(n);
    for (const [h, c] of diff) {
      this.report.missing++;
      if (this.report.diffs.length >= j.maxDiffs) continue;
      const fullest = c.indexOf(Math.max(...c));
      const q = rowsByHashSql(this.target, h, 1);
      const row = (await j.conns[fullest]!.db.one(q.sql, q.params)) ?? {};
      this.report.diffs.push({ kind: 'missing', key: row, zones: Object.fromEntries(j.zones.map((z, zi) => [z, { present: c[zi]! > 0, count: c[zi]! }])), columns: [] });
    }
    return this.finish('done');
  }

  private async skip(reason: string, structure: string[]): Promise<TableReport> {
    this.report.status = 'skipped';
    this.report.reason = reason;
    if (structure.length) this.report.structure = structure;
    return this.finish('skipped');
  }

  private async finish(status: TableReport['status']): Promise<TableReport> {
    this.report.status = status;
    this.report.ms = Date.now() - this.started;
    await this.saveDiffs();
    await this.saveTable(status === 'incomplete' ? 'running' : status, status === 'incomplete' ? this.stopAt : undefined);
    return this.report;
  }

  private async saveTable(status: string, lastKey?: KeyValue): Promise<void> {
    await storeTable(this.job.state, this.job.runId, this.report, status, lastKey, Date.now() - this.started);
  }

  private async saveDiffs(): Promise<void> {
    const [db, tbl] = splitName(this.job.name);
    for (let i = this.priorDiffs; i < this.report.diffs.length; i += 200) {
      const part = this.report.diffs.slice(i, i + 200);
      await this.job.state.exec(
        `INSERT INTO ${quoteTable(STATE_SCHEMA, 'check_diffs')} (run_id, db, tbl, kind, row_key, zones, columns_differing) VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
        part.flatMap((d) => [this.job.runId, db, tbl, d.kind, JSON.stringify({ columns: Object.keys(d.key), values: JSON.parse(encodeKey(Object.values(d.key) as KeyValue)) }), JSON.stringify(d.zones, bufferHex), JSON.stringify(d.columns)]),
      );
    }
  }
}

/** A table's figures in `_ezctl.check_tables` (its checkpoint too, when lastKey is given). */
export async function storeTable(state: Db, runId: string, r: TableReport, status: string, lastKey?: KeyValue, elapsedMs = r.ms): Promise<void> {
  const [db, tbl] = splitName(r.table);
  const detail = JSON.stringify({ structure: r.structure, columnsExcluded: r.columnsExcluded, keyless: r.keyless, missingIn: r.missingIn, presentIn: r.presentIn });
  await state.exec(
    `INSERT INTO ${quoteTable(STATE_SCHEMA, 'check_tables')} (run_id, db, tbl, status, last_key, rows_checked, chunks, missing, changed, reason, detail, elapsed_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE status = VALUES(status), last_key = COALESCE(VALUES(last_key), last_key), rows_checked = VALUES(rows_checked),
       chunks = VALUES(chunks), missing = VALUES(missing), changed = VALUES(changed), reason = VALUES(reason), detail = VALUES(detail), elapsed_ms = VALUES(elapsed_ms)`,
    [runId, db, tbl, status, lastKey ? encodeKey(lastKey) : null, r.rows, r.chunks, r.missing, r.changed, r.reason ?? null, detail, elapsedMs],
  );
}

function bufferHex(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) return Buffer.from((v as { data: number[] }).data).toString('hex');
  if (typeof v === 'bigint') return v.toString();
  return v;
}

export function keyOf(shapes: TableShape[]): { index: string; columns: string[] } | undefined {
  // the same identity in every zone: the primary key, else a unique index on NOT NULL columns
  const ids = shapes.map((s) => {
    if (s.primaryKey.length) return { index: 'PRIMARY', columns: s.primaryKey };
    const u = s.indexes.find((ix) => ix.unique && ix.name !== 'PRIMARY' && ix.parts.every((p) => p.subPart === null && s.columns.find((c) => c.name === p.column)?.nullable === false));
    return u ? { index: u.name, columns: u.parts.map((p) => p.column) } : undefined;
  });
  const first = ids[0];
  if (!first || ids.some((i) => !i || i.columns.join('\0') !== first.columns.join('\0'))) return undefined;
  return first;
}

function sameSums(s: { cnt: number; crc: string }[]): boolean {
  return s.every((x) => x.cnt === s[0]!.cnt && x.crc === s[0]!.crc);
}

function differs(s: Seen): boolean {
  const first = s.zones[0];
  return s.zones.some((z) => (z === undefined) !== (first === undefined) || (z && first && z.h !== first.h));
}

function allEqual(vs: unknown[]): boolean {
  const norm = vs.map((v) => (Buffer.isBuffer(v) ? 'b:' + v.toString('hex') : v === null || v === undefined ? 'null' : 's:' + String(v)));
  return norm.every((x) => x === norm[0]);
}

function tsMs(ts: string): number {
  return Date.parse(ts.replace(' ', 'T') + 'Z');
}

async function serverNowMs(db: Db): Promise<number> {
  const v = await db.value<string>('SELECT CAST(NOW(3) AS CHAR)');
  return v ? tsMs(String(v)) : Date.now();
}

function splitName(name: string): [string, string] {
  const i = name.indexOf('.');
  return [name.slice(0, i), name.slice(i + 1)];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// runs: stored in `_ezctl` at the first zone's master

interface StoredTable {
  status: string;
  lastKey?: KeyValue;
  rows: number;
}

export async function openRun(db: Db, cluster: string, opts: CheckFullOptions, kind: 'full' | 'incr' = 'full'): Promise<{ runId: string; resumed: boolean }> {
  const options = JSON.stringify({ zones: opts.zones, tables: opts.tables, exclude: opts.exclude, where: opts.where, ignoreColumns: opts.ignoreColumns, mode: opts.mode ?? 'checksum' });
  if (opts.resume) {
    const last = await db.one<RunRow>(`SELECT run_id, status, options FROM ${quoteTable(STATE_SCHEMA, 'check_runs')} WHERE cluster = ? AND kind = 'full' ORDER BY started_at DESC, run_id DESC LIMIT 1`, [cluster]);
    if (last && last.status === 'incomplete') {
      if (last.options !== options) {
        throw badInput(`the unfinished run ${last.run_id} was started with other options`, { details: [`then: ${last.options}`, `now:  ${options}`], hint: 'run with the same options, or without --resume to start a new run' });
      }
      await db.exec(`UPDATE ${quoteTable(STATE_SCHEMA, 'check_runs')} SET status = 'running', host = ? WHERE run_id = ?`, [hostname(), last.run_id]);
      return { runId: last.run_id, resumed: true };
    }
  }
  const runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
  await db.exec(`INSERT INTO ${quoteTable(STATE_SCHEMA, 'check_runs')} (run_id, cluster, kind, status, host, options) VALUES (?, ?, ?, 'running', ?, ?)`, [runId, cluster, kind, hostname(), options]);
  return { runId, resumed: false };
}

async function tablesDone(db: Db, runId: string): Promise<Map<string, StoredTable>> {
  const rows = await db.query<{ db: string; tbl: string; status: string; last_key: string | null; rows_checked: string | number }>(
    `SELECT db, tbl, status, last_key, rows_checked FROM ${quoteTable(STATE_SCHEMA, 'check_tables')} WHERE run_id = ?`,
    [runId],
  );
  const out = new Map<string, StoredTable>();
  for (const r of rows) {
    const t: StoredTable = { status: r.status, rows: Number(r.rows_checked) };
    if (r.last_key) t.lastKey = decodeKey(r.last_key);
    out.set(`${r.db}.${r.tbl}`, t);
  }
  return out;
}

/** A table an earlier part of a resumed run finished: its stored figures and differences. */
async function storedReport(db: Db, runId: string, name: string, t: StoredTable): Promise<TableReport> {
  const [schema, tbl] = splitName(name);
  const row = await db.one<any>(`SELECT * FROM ${quoteTable(STATE_SCHEMA, 'check_tables')} WHERE run_id = ? AND db = ? AND tbl = ?`, [runId, schema, tbl]);
  const diffs = await loadDiffs(db, runId, name);
  const detail = row?.detail ? JSON.parse(row.detail) : {};
  const r: TableReport = { table: name, status: t.status === 'skipped' ? 'skipped' : 'done', rows: t.rows, chunks: Number(row?.chunks ?? 0), missing: Number(row?.missing ?? 0), changed: Number(row?.changed ?? 0), diffs, ms: Number(row?.elapsed_ms ?? 0) };
  if (row?.reason) r.reason = row.reason;
  if (detail.structure) r.structure = detail.structure;
  if (detail.columnsExcluded) r.columnsExcluded = detail.columnsExcluded;
  if (detail.keyless) r.keyless = true;
  if (detail.missingIn) r.missingIn = detail.missingIn;
  if (detail.presentIn) r.presentIn = detail.presentIn;
  return r;
}

export async function loadDiffs(db: Db, runId: string, name?: string): Promise<(RowDiff & { table: string; id: number; keyValues: KeyValue; keyColumns: string[] })[]> {
  const params: Param[] = [runId];
  let where = 'run_id = ?';
  if (name) {
    const [schema, tbl] = splitName(name);
    where += ' AND db = ? AND tbl = ?';
    params.push(schema, tbl);
  }
  const rows = await db.query<any>(`SELECT id, db, tbl, kind, row_key, zones, columns_differing FROM ${quoteTable(STATE_SCHEMA, 'check_diffs')} WHERE ${where} ORDER BY id`, params);
  return rows.map((r) => {
    const k = JSON.parse(r.row_key) as { columns: string[]; values: unknown[] };
    const values = decodeKey(JSON.stringify(k.values));
    return {
      id: Number(r.id),
      table: `${r.db}.${r.tbl}`,
      kind: r.kind,
      key: Object.fromEntries(k.columns.map((c, i) => [c, values[i]])),
      keyValues: values,
      keyColumns: k.columns,
      zones: JSON.parse(r.zones),
      columns: r.columns_differing ? JSON.parse(r.columns_differing) : [],
    };
  });
}

export async function closeRun(db: Db, r: CheckReport): Promise<void> {
  const status = r.complete ? 'done' : 'incomplete';
  const summary = JSON.stringify({ rows: r.rows, ms: r.ms, tables: r.tables.length, missing: r.tables.reduce((s, t) => s + t.missing, 0), changed: r.tables.reduce((s, t) => s + t.changed, 0) });
  await db.exec(
    `UPDATE ${quoteTable(STATE_SCHEMA, 'check_runs')} SET status = ?, finished_at = IF(? = 'done', NOW(3), NULL), consistent = ?, summary = ? WHERE run_id = ?`,
    [status, status, r.consistent ? 1 : 0, summary, r.runId],
  );
}

/**
 * What the tables add up to. Consistent only when nothing differs and nothing was left
 * uncompared: a table missing in a zone and a structure difference are differences; a table
 * skipped (no usable key and too many rows, a key not alike in every zone, ...) is named with
 * its reason and keeps the run from being consistent.
 */
export function verdict(reports: TableReport[]): Pick<CheckReport, 'consistent' | 'missingTables' | 'skipped' | 'structureDiffers'> {
  const missingTables = reports.filter((r) => r.missingIn?.length).map((r) => ({ table: r.table, missingIn: r.missingIn!, presentIn: r.presentIn ?? [] }));
  const skipped = reports.filter((r) => r.status === 'skipped' && !r.missingIn?.length).map((r) => ({ table: r.table, reason: r.reason ?? 'not compared' }));
  const structureDiffers = reports.filter((r) => !r.missingIn?.length && r.structure?.length).map((r) => r.table);
  const rowsDiffer = reports.some((r) => r.missing > 0 || r.changed > 0);
  return { consistent: !rowsDiffer && missingTables.length === 0 && skipped.length === 0 && structureDiffers.length === 0, missingTables, skipped, structureDiffers };
}

/**
 * 0 consistent; 1 differences (rows, a table missing in a zone, structure), even when some
 * tables were also skipped; 4 nothing found different but some tables were not compared (each
 * named with its reason in the report): add a key, raise --keyless-max-rows, or --exclude them.
 */
export function checkExitCode(r: Pick<CheckReport, 'consistent' | 'missingTables' | 'skipped' | 'structureDiffers' | 'tables'>): ExitCode {
  if (r.consistent) return ExitCode.ok;
  const differs = r.missingTables.length > 0 || r.structureDiffers.length > 0 || r.tables.some((t) => t.missing > 0 || t.changed > 0);
  if (differs) return ExitCode.differences;
  return r.skipped.length ? ExitCode.refused : ExitCode.differences;
}

export { EzError, runtimeError };
