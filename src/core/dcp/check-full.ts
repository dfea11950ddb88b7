// `ezctl check full`: compare every selected table across zones. Per table: structure first
// (the data compare uses the columns every zone has alike), then the key range walked in chunks
// whose bounds come from the reference zone; each chunk's count and 64-bit checksum computed by
// every zone in parallel; a chunk that differs is narrowed by bisection to rows; differing rows
// are re-checked after DRC has had time to carry what was in flight, and only what persists is
// reported. Progress is checkpointed in `_ezctl` so --run-time / --resume cover a table once.
// The run is here; one table's check is table-check.ts, the run's storage in `_ezctl` runs.ts.
import pLimit from 'p-limit';
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { serverInfo, type ServerInfo } from '../db/server.js';
import { badInput, runtimeError, EzError, ExitCode } from '../exit.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { commonRowKey, readShapes, type TableShape } from '../db/introspect.js';
import { tableFilter } from './structure.js';
import type { HashFunction } from '../compare/checksum.js';
import { throttlerFor, logThrottleChanges, type ThrottleOptions } from '../throttle/index.js';
import { measureDrcLagMs } from '../throttle/signals.js';
import { onInterrupt } from '../signals.js';
import type { RunControl } from '../control/run.js';
import { checkSocketPath, openCheckControl } from './control.js';
import { lostConnectionError, watchPace, watchZones } from './lost.js';
import { abandonRun, closeRun, openRun, splitName, storedReport, tablesDone, type StoredTable } from './runs.js';
import { TableCheck, WalkRate, type KeyBounds, type ZoneConn } from './table-check.js';
import { farZones, secondsByZone } from './pipeline.js';
import { acquireJob, type JobHandle } from '../job/job.js';
import { progressOf } from '../job/lease.js';

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
  /**
   * a zone whose round trip to this host is at least this many ms (default FAR_ZONE_MS) gets a
   * second walk connection per table, so its next chunk is at the server while the previous one's
   * answer travels (dcp/pipeline.ts); 0: every zone
   */
  farZoneMs?: number;
  /** answer on the cluster's check control socket (status, pause, resume, stop: dcp/control.ts) */
  control?: boolean;
  /**
   * run as a leased job (`ezctl jobs`, kind check-full, target CHECK_FULL_TARGET): a second
   * check full of the cluster, on any host, is refused while it runs; --resume takes over a dead one
   */
  job?: { leaseMs?: number };
}

/**
 * What a check full holds: the cluster's checks, not its tables. A check only reads, for hours:
 * holding its tables would refuse every osc, migrate and repair of them meanwhile. It conflicts
 * with another check full of the cluster (as the control socket does on one host) and with a
 * cluster-wide switch (which holds the target `cluster`, overlapping every target).
 */
export const CHECK_FULL_TARGET = 'check-full';

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

const DEFAULT_MARGIN_MS = 1000;
/** the first tables whose integer key bounds are read together before the walk, and for how long those stand */
const KEY_BOUNDS_TABLES = 64;
const KEY_BOUNDS_FRESH_MS = 5000;

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

  // one control connection per zone; each worker gets its own set, and a second one its far zones use (pipeline.ts)
  const control: ZoneConn[] = [];
  const workers: ZoneConn[][] = [];
  const seconds: ZoneConn[][] = [];
  const closeAll = async () => {
    await Promise.all([...control, ...workers.flat(), ...seconds.flat()].map((c) => c.db.close().catch(() => undefined)));
  };
  let runId: string | undefined;
  let stopWatch: (() => void) | undefined;
  let ctl: RunControl | undefined;
  let job: JobHandle | undefined;
  let jobEnd: unknown;
  /** the control socket and lease being taken (settled, never rejecting): awaited before they are let go */
  let claiming: Promise<void> | undefined;
  let onStop = () => {};
  try {
    // The control socket and the job's lease are taken while the run's connections are opened and
    // its setup read (the lease takes ~10 round trips to every zone, one zone after the other:
    // 0.3 s at 30 ms between zones). A connection that fails and what the setup refuses (bad
    // input) are still reported first, as when they came first, and a lease taken meanwhile is
    // released untouched (a job taken over is left as found).
    const claim = (async () => {
      if (opts.control) ctl = await openCheckControl(topo, cluster.name, () => onStop());
      if (opts.job) {
        job = await acquireJob(ctx, {
          cluster: cluster.name, kind: 'check-full', targets: [CHECK_FULL_TARGET], zones: zones.map((z) => ({ zone: z, node: topo.master(cluster.name, z) })), phase: 'plan',
          // a check only reads: a dead check-full job is taken over by the next check, --resume or not
          // (--resume decides whether the run continues), so a nightly cron is never stuck behind one
          ...(opts.control ? { controlSocket: checkSocketPath(topo, cluster.name) } : {}), resume: true, ...(opts.job.leaseMs ? { leaseMs: opts.job.leaseMs } : {}),
        });
      }
    })();
    claiming = claim.catch(() => undefined);
    // every connection at once, the walk's too (a handshake is mostly waiting on the server)
    const sets = await connectSets(ctx, zones, (z) => topo.master(cluster.name, z), 1 + concurrency);
    control.push(...sets[0]!);
    workers.push(...sets.slice(1));
    // a master that stops answering (hung, not closed) fails the run's queries on it instead of holding them for good
    stopWatch = watchZones(control.map((c, i) => ({ label: c.db.ep.label, connect: () => ctx.connect(topo.master(cluster.name, c.zone)), conns: () => [c.db, ...workers.map((w) => w[i]!.db), ...seconds.flat().filter((w) => w.zone === c.zone).map((w) => w.db)] })), watchPace(ctx.opts.connectTimeout));
    // The setup's reads, each zone's spread over its connections (each runs its queries in order,
    // one round trip each): the structure of every selected table (a few bulk queries) on one,
    // the server's version on another, DRC's lag and the round trip on the third.
    const infoConns = workers[0] ?? control;
    const lagConns = workers[1] ?? control;
    // how long a difference may be DRC still in flight: measured lag + margin, at least --delay
    const lagP = measureDrcLagMs(lagConns.map((c) => ({ zone: c.zone, db: c.db }))).catch(() => ({ maxLagMs: null }));
    // a far zone's second walk connections, opened once its round trip is known (pipeline.ts)
    const farP = (async () => {
      const far = farZones(await Promise.all(lagConns.map((c) => pingMs(c.db, 2))), opts.farZoneMs ?? farZoneMsFromEnv());
      const farNames = zones.filter((_, zi) => far[zi]);
      if (farNames.length) seconds.push(...(await connectSets(ctx, farNames, (z) => topo.master(cluster.name, z), concurrency)));
      return far;
    })();
    const setup = (async () => {
      const [infos, shapes, far] = await Promise.all([
        Promise.all(infoConns.map((c) => serverInfo(c.db))),
        Promise.all(control.map((c) => readShapes(c.db, matcher))),
        farP,
      ]);
      const hash = await hashFunction(control, opts.hash, infos);
      // DRC's heartbeat table (the one _ezctl table checked) exists where DRC or a check created
      // _ezctl: a zone without it yet is no difference in the application's data
      const names = [...new Set(shapes.flatMap((m) => [...m.keys()]))].filter((n) => !stateTableNotEverywhere(n, shapes));
      checkNamedTablesExist(opts.tables, names, zones);
      // the largest tables walked first: one left for last would leave the other walks idle
      const rowsOf = (n: string) => Math.max(0, ...shapes.map((m) => m.get(n)?.rowsEstimate ?? 0));
      names.sort((a, b) => rowsOf(b) - rowsOf(a) || a.localeCompare(b));
      if (names.length === 0) throw badInput(`no tables match${opts.tables ? ` ${opts.tables}` : ''} in cluster ${cluster.name}`, { hint: 'check --tables/--exclude and the cluster\'s databases' });
      await validateWheres(control, names, shapes, opts.where);
      for (const [table, cols] of Object.entries(opts.ignoreColumns ?? {})) {
        if (table === '*') continue;
        if (!names.includes(table)) throw badInput(`--ignore-columns names table ${table}, which is not among the tables checked`);
        const shape = shapes.map((m) => m.get(table)).find(Boolean)!;
        for (const c of cols) if (!shape.columns.some((x) => x.name === c)) throw badInput(`--ignore-columns: ${table} has no column ${c}`);
      }
      return { hash, shapes, names, far };
    })();
    // the setup's refusal first (as when the lease was taken after it), then the socket's or the lease's
    const { hash, shapes, names, far } = await setup.catch(async (e) => {
      await claiming;
      await farP.catch(() => undefined); // its connections in `seconds` before they are closed
      throw e;
    });
    // the integer keys' bounds of the first tables, one query per zone, while the lease is taken
    // (each table's walk read its own, a round trip to every zone before its first chunk)
    const boundsAt = Date.now();
    const boundsP = keyBoundsOf(infoConns, names.slice(0, KEY_BOUNDS_TABLES), shapes).catch(() => new Map<string, KeyBounds>());
    // the lease before the run is opened: --resume must not continue a run a live check on another host is walking
    try {
      await claim;
    } finally {
      await boundsP;
    }
    const bounds = await boundsP;

    const state = control[0]!.db;
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
    // a lost lease stops every table at its next chunk boundary; the run stays resumable
    const offLost = job ? onAbort(job.signal, () => stop.abort()) : undefined;
    job?.setPhase('compare');

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
      job?.progress({ ...progressOf(progress.rowsDone, progress.rowsEstimate, Date.now() - started), tables: progress.tablesDone, tablesTotal: progress.tablesTotal });
    }, 500);
    tick.unref();

    const reports: TableReport[] = [];
    const settles: Promise<void>[] = [];
    // each walk: its set, and its second connection to each far zone
    const free = workers.map((conns, w) => ({ conns, ahead: seconds[w] ? secondsByZone(far, seconds[w]) : undefined }));
    const limit = pLimit(concurrency);
    const rate = new WalkRate();
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
            const walker = free.pop()!;
            const conns = walker.conns;
            progress.current.push(name);
            let settling = false;
            try {
              const job = new TableCheck(ctx, {
                // bounds read long ago are read again: rows since then would all fall in the last chunk
                ...(Date.now() - boundsAt < KEY_BOUNDS_FRESH_MS ? { keyBounds: bounds.get(name) } : {}),
                name, zones, conns, ahead: walker.ahead, shapes: shapes.map((m) => m.get(name)), mode, hash, tsColumn,
                where: forTable(opts.where, name), ignore: forTable(opts.ignoreColumns, name), ignoreNamed: !!opts.ignoreColumns?.[name],
                chunkTimeMs: opts.chunkTimeMs ?? 500, settleDelayMs, rechecks: opts.rechecks ?? 5,
                keylessMaxRows: opts.keylessMaxRows ?? 100_000, maxDiffs: opts.maxDiffsPerTable ?? 1000,
                throttler: throttle?.throttler, stopRequested, stopSignal: stop.signal, state, runId: run.runId,
                resumeAfter: prior?.lastKey, resumed: prior ? await storedReport(state, run.runId, name, prior) : undefined, onRows: (n) => (progress.rowsDone += n), rate,
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
              free.push(walker);
            }
          }),
        ),
      );
      await Promise.all(settles);
    } finally {
      clearInterval(tick);
      clearTimeout(deadlineTimer);
      offInterrupt();
      offLost?.();
      offThrottleLog?.();
      await throttle?.close();
    }
    onProgress?.(progress);
    job?.assertHeld();

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
    job?.progress({ ...progressOf(rows, Math.max(progress.rowsEstimate, rows), ms), tables: progress.tablesDone, tablesTotal: progress.tablesTotal });
    jobEnd = stoppedBy ? `stopped (${stoppedBy}) after ${progress.tablesDone} of ${progress.tablesTotal} tables; --resume continues run ${run.runId}` : null;
    return report;
  } catch (e) {
    jobEnd = e;
    // the run stays resumable: its tables keep their checkpoints, the run is marked unfinished
    const stateAlive = runId !== undefined && control[0] && (await abandonRun(control[0].db, runId));
    const lost = lostConnectionError(e, [...control, ...workers.flat(), ...seconds.flat()], 'check full', (node) =>
      !runId
        ? `run the check again once ${node ?? 'it'} answers`
        : stateAlive
          ? `--resume continues run ${runId} from its last checkpoint`
          : `run the check again once ${node ?? 'it'} answers (${zones[0]}'s master keeps the run's checkpoints and could not be told: run ${runId} cannot be resumed)`,
    (node) => (stateAlive ? `start ${node ?? 'the server'} again (or restore the network to it), then: ezctl check full --resume, with the same options` : `start ${node ?? 'the server'} again (or restore the network to it), then run the check again`));
    throw lost ?? e;
  } finally {
    await claiming;
    await endCheckJob(job, jobEnd);
    ctl?.close();
    stopWatch?.();
    await closeAll();
  }
}

/**
 * The job's end: done; stopped (--run-time, `check stop`, Ctrl-C): aborted, the run kept for
 * --resume; refused before the run was opened: no trace; anything else: failed (--resume takes it over).
 */
async function endCheckJob(job: JobHandle | undefined, end: unknown): Promise<void> {
  if (!job) return;
  if (end === null || end === undefined) return job.finish('done');
  if (typeof end === 'string') return job.finish('aborted', end);
  if (job.phase === 'plan') return job.release();
  const interrupted = end instanceof EzError && end.exitCode === ExitCode.interrupted;
  return job.fail(end, interrupted ? 'aborted' : 'failed');
}

function onAbort(signal: AbortSignal, f: () => void): () => void {
  if (signal.aborted) {
    f();
    return () => undefined;
  }
  signal.addEventListener('abort', f, { once: true });
  return () => signal.removeEventListener('abort', f);
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

/** An `_ezctl` table (DRC's heartbeat) missing in some zone: ezctl's own, left out of the check there. */
export function stateTableNotEverywhere(name: string, shapes: Map<string, TableShape>[]): boolean {
  return name.startsWith(`${STATE_SCHEMA}.`) && shapes.some((m) => !m.has(name));
}

/**
 * For tests: EZCTL_CHECK_FAR_ZONE_MS=<ms> sets the round trip from which a zone is walked with two
 * connections (0: every zone, so a loopback sandbox takes the far zones' path); unset: FAR_ZONE_MS.
 */
function farZoneMsFromEnv(): number | undefined {
  const v = process.env.EZCTL_CHECK_FAR_ZONE_MS;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw badInput(`EZCTL_CHECK_FAR_ZONE_MS must be a number of milliseconds (got ${v})`);
  return n;
}

/**
 * The one query (the same for every zone) giving the MIN and MAX of each table's single-column
 * integer row key (the key its walk uses: the same in every zone), row i for keyed[i]; undefined
 * when no table has such a key.
 */
export function keyBoundsQuery(names: string[], shapes: Map<string, TableShape>[]): { sql: string; keyed: { name: string; column: string }[] } | undefined {
  const keyed: { name: string; shape: TableShape; column: string }[] = [];
  for (const name of names) {
    const per = shapes.map((m) => m.get(name));
    if (per.some((s) => !s)) continue;
    const key = commonRowKey(per as TableShape[]);
    const column = key?.columns.length === 1 ? key.columns[0]! : undefined;
    const type = column ? per[0]!.columns.find((c) => c.name === column)?.dataType : undefined;
    if (column && type && /int$/.test(type)) keyed.push({ name, shape: per[0]!, column });
  }
  if (!keyed.length) return undefined;
  const sql = keyed.map((k, i) => `SELECT ${i} AS i, CAST(MIN(${quoteId(k.column)}) AS CHAR) AS lo, CAST(MAX(${quoteId(k.column)}) AS CHAR) AS hi FROM ${quoteTable(k.shape.schema, k.shape.table)}`).join(' UNION ALL ');
  return { sql, keyed: keyed.map(({ name, column }) => ({ name, column })) };
}

/** Those bounds read in every zone (one query each), instead of one round trip per table at its start. */
async function keyBoundsOf(conns: ZoneConn[], names: string[], shapes: Map<string, TableShape>[]): Promise<Map<string, KeyBounds>> {
  const out = new Map<string, KeyBounds>();
  const q = keyBoundsQuery(names, shapes);
  if (!q) return out;
  const perZone = await Promise.all(conns.map((c) => c.db.query<{ i: number | string; lo: string | null; hi: string | null }>(q.sql)));
  q.keyed.forEach((k, i) => {
    const rows = perZone.map((rs) => rs.find((r) => Number(r.i) === i));
    if (rows.every(Boolean)) out.set(k.name, { column: k.column, perZone: rows.map((r) => ({ lo: r!.lo ?? null, hi: r!.hi ?? null })) });
  });
  return out;
}

/** `n` round trips of a trivial query on one connection, each in ms. */
async function pingMs(db: Db, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await db.value('SELECT 1');
    out.push(performance.now() - t0);
  }
  return out;
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

export async function hashFunction(conns: ZoneConn[], wanted?: HashFunction, known?: ServerInfo[]): Promise<HashFunction> {
  // one expression for all zones: the one asked for, else the strongest fast one every zone has
  const infos = known ?? (await Promise.all(conns.map((c) => serverInfo(c.db))));
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
export function checkNamedTablesExist(tables: string | undefined, names: string[], zones: string[]): void {
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
