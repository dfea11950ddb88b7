// `ezctl check incr`: check only what changed. Each zone master's binlog is read from the
// position the previous run stopped at (kept per zone in `_ezctl.check_incr_position`), keeping
// the keys of rows the zone's own clients wrote (what DRC applied there came from another zone
// and is counted at its origin). After a settle delay of at least DRC's measured lag plus a
// margin, those keys are compared across zones in batches, differences re-checked with backoff,
// and what persists is reported and stored like a full check's results (so repair can use it).
// --until-now: up to each binlog's end when the run began, then exit (cron). --follow: in
// windows until interrupted.
import pLimit from 'p-limit';
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import { quoteTable } from '../db/quote.js';
import { serverInfo, type ServerInfo } from '../db/server.js';
import { badInput, runtimeError, EzError, ExitCode } from '../exit.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { BinlogStream, type BinlogTx } from '../binlog/stream.js';
import { SourcePosition } from '../binlog/position.js';
import { gtidCovers } from '../db/gtid.js';
import { keyText, type KeyValue } from '../chunk/keys.js';
import { measureDrcLagMs } from '../throttle/signals.js';
import { onInterrupt } from '../signals.js';
import { lostConnectionError, watchPace, watchZones } from './lost.js';
import { isLostConnection } from '../db/lost.js';
import { commonRowKey, readShapes, type TableShape } from '../db/introspect.js';
import { tableFilter } from './structure.js';
import type { HashFunction } from '../compare/checksum.js';
import { hashFunction, stateTableNotEverywhere, verdict, type CheckReport, type TableReport } from './check-full.js';
import { abandonRun, closeRun, openRun, storeTable } from './runs.js';
import { TableCheck } from './table-check.js';

export interface CheckIncrOptions {
  cluster?: string;
  zones?: string[];
  tables?: string;
  exclude?: string;
  delayMs?: number;
  rechecks?: number;
  /** the row hash (default as check full: crc64 where every zone has CRC32C, else md5) */
  hash?: HashFunction;
  /** --follow: window length */
  windowMs?: number;
  follow?: boolean;
  /** called after each window in --follow mode */
  onWindow?: (r: IncrReport) => void;
}

export interface IncrReport extends CheckReport {
  /** per zone: where this run started and stopped in its binlog */
  positions: Record<string, { from: string; to: string; changes: number }>;
  keys: number;
  keysPerSecond: number;
  firstRun: boolean;
}

const DEFAULT_MARGIN_MS = 1000;
const INCR_AGAIN = 'run it again: the binlog positions are saved only after a comparison, so the next run checks the same changes';

interface ZoneCtl {
  zone: string;
  db: Db;
  info: ServerInfo;
  endpoint: Awaited<ReturnType<Ctx['endpoint']>>;
}

export async function checkIncr(ctx: Ctx, opts: CheckIncrOptions): Promise<IncrReport> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(opts.cluster);
  const zones = topo.zonesChosen(cluster.name, opts.zones);
  if (zones.length < 2) throw badInput('a consistency check needs at least two zones');
  const matcher = tableFilter(cluster.config, { tables: opts.tables, exclude: opts.exclude });
  const tsColumn = topo.drcTimestampColumn(cluster.name);

  const ctl: ZoneCtl[] = [];
  const workers: { zone: string; db: Db }[][] = [];
  let stopWatch: (() => void) | undefined;
  try {
    for (const z of zones) {
      const node = topo.master(cluster.name, z);
      const db = await ctx.connect(node);
      ctl.push({ zone: z, db, info: await serverInfo(db), endpoint: await ctx.endpoint(node) });
    }
    // a master that stops answering fails the queries waiting on it (the binlog readers are not watched)
    stopWatch = watchZones(ctl.map((c, i) => ({ label: c.db.ep.label, connect: () => ctx.connect(topo.master(cluster.name, c.zone)), conns: () => [c.db, ...workers.map((w) => w[i]!.db)] })), watchPace(ctx.opts.connectTimeout));
    if (ctl.some((c) => c.info.flavor !== 'mariadb')) throw badInput('check incr reads MariaDB GTID positions; this cluster has MySQL masters', { hint: 'use check full' });
    const hash = await hashFunction(ctl, opts.hash);
    const state = ctl[0]!.db;
    await ensureStateSchema(state);
    for (let i = 0; i < 2; i++) workers.push(await Promise.all(zones.map(async (z) => ({ zone: z, db: await ctx.connect(topo.master(cluster.name, z)) }))));

    let stopped = false;
    const off = onInterrupt(() => {
      stopped = true;
    });
    try {
      let last: IncrReport;
      do {
        last = await oneWindow(ctx, { ...opts, cluster: cluster.name }, ctl, workers, state, matcher, tsColumn, hash, opts.follow ? opts.windowMs ?? 5000 : undefined, () => stopped);
        if (opts.follow) opts.onWindow?.(last);
      } while (opts.follow && !stopped);
      if (stopped) last.stoppedBy = 'interrupt';
      return last;
    } finally {
      off();
    }
  } catch (e) {
    throw lostConnectionError(e, [...ctl, ...workers.flat()], 'check incr', () => INCR_AGAIN) ?? e;
  } finally {
    stopWatch?.();
    await Promise.all([...ctl, ...workers.flat()].map((c) => c.db.close().catch(() => undefined)));
  }
}

export async function storedPosition(state: Db, cluster: string, zone: string): Promise<string | undefined> {
  const r = await state.one<{ position: string }>(`SELECT position FROM ${quoteTable(STATE_SCHEMA, 'check_incr_position')} WHERE cluster = ? AND zone = ?`, [cluster, zone]);
  return r?.position;
}

export async function savePosition(state: Db, cluster: string, zone: string, position: string): Promise<void> {
  await state.exec(`INSERT INTO ${quoteTable(STATE_SCHEMA, 'check_incr_position')} (cluster, zone, position) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE position = VALUES(position)`, [cluster, zone, position]);
}

async function oneWindow(
  ctx: Ctx,
  opts: CheckIncrOptions & { cluster: string },
  ctl: ZoneCtl[],
  workers: { zone: string; db: Db }[][],
  state: Db,
  matcher: (s: string, t: string) => boolean,
  tsColumn: string,
  hash: Awaited<ReturnType<typeof hashFunction>>,
  windowMs: number | undefined,
  stopped: () => boolean,
): Promise<IncrReport> {
  const started = Date.now();
  if (windowMs) await sleepUnless(windowMs, stopped);
  // each zone: from the stored position (first run: from now, nothing to check yet) to its end now
  const spans = await Promise.all(
    ctl.map(async (c) => {
      const end = String((await c.db.value('SELECT @@global.gtid_binlog_pos')) ?? '');
      const from = (await storedPosition(state, opts.cluster, c.zone)) ?? null;
      return { c, from, end };
    }),
  );
  const firstRun = spans.some((s) => s.from === null);
  const shapes = await Promise.all(ctl.map((c) => readShapes(c.db, matcher)));
  const zoneNames = ctl.map((c) => c.zone);
  const { identities, unchecked } = classifyTables(shapes, zoneNames);
  const { keys, changedUnchecked, positions } = await collectWindowKeys(spans.map((s) => ({ ...s.c, from: s.from, to: s.end })), matcher, { identities, unchecked });

  const run = await openRun(state, opts.cluster, { cluster: opts.cluster, zones: ctl.map((c) => c.zone), tables: opts.tables, exclude: opts.exclude }, 'incr');
  try {
    return await compareWindow();
  } catch (e) {
    await abandonRun(state, run.runId);
    throw e;
  }

  async function compareWindow(): Promise<IncrReport> {
    const lag = await measureDrcLagMs(ctl.map((c) => ({ zone: c.zone, db: c.db }))).catch(() => ({ maxLagMs: null }));
    const settleDelayMs = Math.max(opts.delayMs ?? 0, (lag.maxLagMs ?? 0) + DEFAULT_MARGIN_MS);
    const verifyStart = Date.now();
    const names = [...keys.keys()].sort();
    const free = [...workers];
    const limit = pLimit(workers.length);
    const reports: TableReport[] = [];
    await Promise.all(
      names.map((name) =>
        limit(async () => {
          const conns = free.pop()!;
          try {
            const job = new TableCheck(ctx, {
              name, zones: ctl.map((c) => c.zone), conns, shapes: shapes.map((m) => m.get(name)), mode: 'checksum', hash, tsColumn,
              chunkTimeMs: 500, settleDelayMs, rechecks: opts.rechecks ?? 5, keylessMaxRows: 0, maxDiffs: 1000,
              stopRequested: () => false, stopSignal: new AbortController().signal, state, runId: run.runId, onRows: () => undefined,
            });
            reports.push(await job.checkKeys([...keys.get(name)!.values()]));
          } finally {
            free.push(conns);
          }
        }),
      ),
    );
    for (const [name, r] of unchecked) {
      const count = changedUnchecked.get(name);
      if (!r.missingIn && !count) continue;
      const report = count && !r.missingIn ? { ...r, reason: `${r.reason}: ${count} changed row${count === 1 ? '' : 's'} not compared` } : r;
      await storeTable(state, run.runId, report, 'skipped');
      reports.push(report);
    }
    reports.sort((a, b) => a.table.localeCompare(b.table));
    const keyCount = reports.reduce((n, r) => n + r.rows, 0);
    const ms = Date.now() - started;
    const verifyMs = Date.now() - verifyStart;
    const report: IncrReport = {
      ...verdict(reports),
      runId: run.runId,
      cluster: opts.cluster,
      zones: ctl.map((c) => c.zone),
      mode: 'checksum',
      hash,
      complete: true,
      resumed: false,
      tables: reports,
      rows: keyCount,
      ms,
      rowsPerSecond: ms > 0 ? Math.round((keyCount / ms) * 1000) : 0,
      throttledMs: 0,
      settleDelayMs,
      positions,
      keys: keyCount,
      // the settle wait is time DRC is given, not verification work
      keysPerSecond: verifyMs > settleDelayMs ? Math.round((keyCount / (verifyMs - settleDelayMs)) * 1000) : keyCount,
      firstRun,
    };
    await closeRun(state, report);
    // only now: a run that dies before this point checks the same changes again next time
    for (const s of spans) await savePosition(state, opts.cluster, s.c.zone, s.end);
    return report;
  }
}

/** A window's tables: those looked up by a key every zone shares, and those that cannot be (with the report to give when they changed). */
export interface WindowTables {
  identities: Map<string, { columns: string[] }>;
  unchecked: Map<string, TableReport>;
}

/**
 * Tables the binlog keys cannot be checked for: missing in a zone (a difference, reported every
 * run), or without a key every zone shares (reported when the window changed them).
 */
export function classifyTables(shapes: Map<string, TableShape>[], zoneNames: string[]): WindowTables {
  const identities = new Map<string, { columns: string[] }>();
  const unchecked = new Map<string, TableReport>();
  const uncheckable = (name: string, reason: string, extra: Partial<TableReport> = {}): TableReport => ({ table: name, status: 'skipped', rows: 0, chunks: 0, missing: 0, changed: 0, diffs: [], reason, ms: 0, ...extra });
  for (const name of new Set(shapes.flatMap((m) => [...m.keys()]))) {
    if (stateTableNotEverywhere(name, shapes)) continue;
    const all = shapes.map((m) => m.get(name));
    if (all.some((s) => !s)) {
      const missingIn = zoneNames.filter((_, i) => !all[i]);
      const presentIn = zoneNames.filter((_, i) => all[i]);
      unchecked.set(name, uncheckable(name, `table missing in ${missingIn.join(', ')} (exists in ${presentIn.join(', ')})`, { missingIn, presentIn }));
      continue;
    }
    const id = commonRowKey(all as TableShape[]);
    if (id) identities.set(name, id);
    else unchecked.set(name, uncheckable(name, 'no primary or unique NOT NULL key alike in every zone to look its changed rows up by (check full compares such a table as a multiset of rows)'));
  }
  return { identities, unchecked };
}

/** One zone's binlog window: its master, and the positions (from null: nothing to read yet). */
export interface ZoneWindow {
  zone: string;
  info: ServerInfo;
  endpoint: Awaited<ReturnType<Ctx['endpoint']>>;
  from: string | null;
  to: string;
}

export interface WindowKeys {
  /** per table: the keys of the rows the zones' own clients changed in the window */
  keys: Map<string, Map<string, KeyValue>>;
  /** per table not checkable by key: how many changed rows it had */
  changedUnchecked: Map<string, number>;
  /** followed: read by a reader started before (WindowFollower), not opened for this window */
  positions: Record<string, { from: string; to: string; changes: number; followed?: boolean }>;
}

/**
 * Read each zone's binlog over its window and keep the keys of the rows its own clients wrote
 * (its GTID domain: what DRC applied there came from another zone and is counted at its origin).
 * `row` narrows further: a change is kept when one of its images passes (a move's shards).
 */
export async function collectWindowKeys(
  windows: ZoneWindow[],
  matcher: (s: string, t: string) => boolean,
  tablesIn: WindowTables | Promise<WindowTables>,
  o: { row?: (table: string, row: Record<string, unknown>) => boolean; signal?: AbortSignal; during?: string; followers?: Map<string, WindowFollower> } = {},
): Promise<WindowKeys> {
  // the tables may still be being read (a verify reads them while the binlogs are read): the
  // transactions read meanwhile wait in `early`, then go through in order
  let tables: WindowTables | undefined = tablesIn instanceof Promise ? undefined : tablesIn;
  const early: Array<{ w: ZoneWindow; tx: BinlogTx }> = [];
  const changedUnchecked = new Map<string, number>();
  const keys = new Map<string, Map<string, KeyValue>>();
  const positions: WindowKeys['positions'] = {};
  // rows of tables not checked are skipped undecoded (a schema change's copy, other schemas)
  const checked = (schema: string, table: string) => matcher(schema, table) && (!tables || tables.identities.has(`${schema}.${table}`) || tables.unchecked.has(`${schema}.${table}`));
  for (const w of windows) positions[w.zone] = { from: w.from ?? w.to, to: w.to, changes: 0 };
  // a failure to read the tables (or the caller's abort) stops the readers too
  const stop = new AbortController();
  const onOuter = () => stop.abort(o.signal!.reason);
  if (o.signal?.aborted) onOuter();
  o.signal?.addEventListener('abort', onOuter, { once: true });
  const offOuter = () => o.signal?.removeEventListener('abort', onOuter);
  const ready = Promise.resolve(tablesIn).then((t) => {
    tables = t;
    for (const e of early.splice(0)) positions[e.w.zone]!.changes += take(e.w, e.tx);
  });
  ready.catch((e) => stop.abort(e));
  // every zone's binlog at once: a switch verifies with writes blocked, each reader's start (a
  // connection, the server finding the GTID in its binlog) is time the clients wait
  try {
    await Promise.all([ready, ...windows.map(async (w) => {
      if (w.from === null) return;
      const onTx = (tx: BinlogTx) => {
        if (tx.domain !== (w.info.gtidDomainId ?? 0)) return 0;
        if (!tables) early.push({ w, tx });
        else positions[w.zone]!.changes += take(w, tx);
        return 0;
      };
      // a reader started before (a switch's, from its pre-verify): what it has read, once it has
      // read up to the window's end; else (it failed, or from elsewhere) a reader of our own
      const f = o.followers?.get(w.zone);
      if (f && (await f.take(w.from, w.to, onTx, stop.signal))) {
        positions[w.zone]!.followed = true;
        return;
      }
      await readChanges(w, w.from, w.to, checked, onTx, stop.signal, o.during);
    })]);
  } finally {
    offOuter();
  }
  return { keys, changedUnchecked, positions };

  function take(w: ZoneWindow, tx: BinlogTx): number {
    const { identities, unchecked } = tables!;
    let n = 0;
    for (const ch of tx.changes) {
      const name = `${ch.schema}.${ch.table}`;
      if (!matcher(ch.schema, ch.table)) continue;
      if (o.row && ![ch.before, ch.after].some((r) => r && o.row!(name, r))) continue;
      const id = identities.get(name);
      if (!id) {
        if (unchecked.has(name)) changedUnchecked.set(name, (changedUnchecked.get(name) ?? 0) + 1);
        continue;
      }
      for (const row of [ch.before, ch.after]) {
        if (!row) continue;
        const k = id.columns.map((col) => normalizeKeyPart(row[col]));
        let m = keys.get(name);
        if (!m) keys.set(name, (m = new Map()));
        m.set(keyText(k), k);
        n++;
      }
    }
    return n;
  }
}

/** Strings from the binlog decoder for big integers, numbers otherwise: one form per key. */
function normalizeKeyPart(v: unknown): KeyValue[number] {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString().replace('T', ' ').replace('Z', '');
  return v as KeyValue[number];
}

/**
 * One zone's binlog read from a position on, kept open: a switch starts it when its pre-verify
 * ends, so the verify inside the write-unavailable window finds the window's transactions read
 * already instead of opening a reader there (zongji's two connections, their handshakes, five
 * statements one after another and the dump request: about ten round trips to the far zone).
 * Keeps the transactions of the zone's own domain.
 */
export class WindowFollower {
  private readonly txs: BinlogTx[] = [];
  private readonly seen: SourcePosition;
  private stream: BinlogStream | undefined;
  private error: Error | undefined;
  private waiters: Array<() => void> = [];
  private stopped = false;

  constructor(
    private readonly w: { zone: string; endpoint: ZoneWindow['endpoint']; domain: number },
    readonly from: string,
    decodeTable: (schema: string, table: string) => boolean,
  ) {
    this.seen = new SourcePosition('mariadb', from);
    this.stream = new BinlogStream({
      endpoint: w.endpoint,
      flavor: 'mariadb',
      from,
      serverId: 800_000 + Math.floor(Math.random() * 100_000),
      decodeTable,
      onTx: (tx) => {
        if (this.stopped) return;
        this.seen.advance(tx.gtid);
        if (tx.domain === w.domain) this.txs.push(tx);
        this.wake();
      },
      onError: (e) => this.fail(e),
    });
    this.stream.start().catch((e: Error) => this.fail(e));
  }

  private fail(e: Error): void {
    this.error ??= e;
    this.wake();
    void this.stop();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private covers(end: string): boolean {
    const target = new SourcePosition('mariadb', end);
    return this.seen.reaches(target);
  }

  /**
   * The transactions of (from, end] to onTx, once read: false (nothing given) when this reader
   * started elsewhere or failed; the caller reads the window itself then.
   */
  async take(from: string, end: string, onTx: (tx: BinlogTx) => number, signal?: AbortSignal): Promise<boolean> {
    if (from !== this.from) return false;
    while (!this.error && !this.stopped && !this.covers(end)) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 200);
        function done() {
          clearTimeout(t);
          signal?.removeEventListener('abort', done);
          resolve();
        }
        this.waiters.push(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
    if (this.error || !this.covers(end)) return false;
    const target = new SourcePosition('mariadb', end);
    for (const tx of this.txs) if (tx.domain === undefined || tx.seq <= target.seqOf(tx.domain)) onTx(tx);
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    const s = this.stream;
    this.stream = undefined;
    await s?.stop().catch(() => undefined);
  }
}

/** Read one zone's binlog from `from` until `end` is covered; returns what onTx counted. */
async function readChanges(
  c: { zone: string; endpoint: ZoneWindow['endpoint'] },
  from: string,
  end: string,
  decodeTable: (schema: string, table: string) => boolean,
  onTx: (tx: BinlogTx) => number,
  signal?: AbortSignal,
  during = 'check incr',
): Promise<number> {
  if (!end || gtidCovers('mariadb', from, end)) return 0;
  signal?.throwIfAborted();
  const seen = new SourcePosition('mariadb', from);
  const target = new SourcePosition('mariadb', end);
  let counted = 0;
  let offAbort: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let started = false;
      let stopping = false;
      const done = () => seen.reaches(target);
      const finish = () => {
        if (stopping || !started || !done()) return;
        stopping = true;
        void stream.stop().then(resolve, reject);
      };
      const fail = (e: unknown) => {
        if (stopping) return;
        stopping = true;
        void stream.stop().then(() => reject(e), () => reject(e));
      };
      const stream: BinlogStream = new BinlogStream({
        endpoint: c.endpoint,
        flavor: 'mariadb',
        from,
        serverId: 800_000 + Math.floor(Math.random() * 100_000),
        decodeTable,
        onTx: (tx) => {
          if (stopping) return;
          seen.advance(tx.gtid);
          // past the window's end (read in the same burst before the reader stops): the next window's
          if (tx.domain === undefined || tx.seq <= target.seqOf(tx.domain)) counted += onTx(tx);
          setImmediate(finish);
        },
        onError: (e) =>
          fail(
            isLostConnection(e)
              ? runtimeError(`lost connection to ${c.endpoint.label} during ${during} (reading its binlog); ${during === 'check incr' ? INCR_AGAIN : 'run it again once the server answers'}`, { details: [`cause: ${e.message}`], cause: e })
              : runtimeError(`reading the binlog of zone ${c.zone} (${c.endpoint.label}): ${e.message}`, { cause: e }),
          ),
      });
      if (signal) {
        const onAbort = () => fail(signal.reason instanceof Error ? signal.reason : new EzError(ExitCode.interrupted, `${during} interrupted`));
        signal.addEventListener('abort', onAbort, { once: true });
        offAbort = () => signal.removeEventListener('abort', onAbort);
      }
      stream.start().then(() => {
        started = true;
        finish();
      }, fail);
    });
  } finally {
    offAbort?.();
  }
  return counted;
}

async function sleepUnless(ms: number, stop: () => boolean): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until && !stop()) await new Promise((r) => setTimeout(r, Math.min(200, until - Date.now())));
}
