// `ezctl dbus cutover NAME`: the moved tables' writes go from the sources to the target, as a
// journaled job of steps (steps/engine.ts) like `gz switch`: preflight refusals all at once (exit
// 4, nothing touched), then
//   block-routes -> fence-sources -> final-positions -> wait-applied -> verify -> fence-target
//   -> reverse-stream -> flip (point of no return) -> unfence-target -> routes-everywhere
// The fence (fence.ts: triggers that SIGNAL) stops every client's writes to the moved tables on
// the sources, whatever it follows; the route record (route.ts) tells the clients that follow it
// to wait, then where to write. The target is fenced too until the flip, so at no instant do both
// sides take the tables' writes; a process killed anywhere leaves both fenced at worst (never
// both open), and the same command run again resumes it: rolled back before the flip, forward
// after it. The reverse stream (target -> sources, the move's runner turned around) runs in a
// process of its own from before the flip, so writes taken by the target reach the sources and
// `dbus rollback` loses nothing.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Ctx } from '../context.js';
import type { ResolvedNode, Topology } from '../config/load.js';
import { loadTopology } from '../config/load.js';
import type { Db } from '../db/connect.js';
import { gtidCovers } from '../db/gtid.js';
import { loadApplyState, clearApplyState, ensureApplyCheckpoint } from '../apply/checkpoint.js';
import { ExitCode, badInput, refused, runtimeError } from '../exit.js';
import { formatDuration } from '../throttle/duration.js';
import { pidAlive, isEzctlProcess, stopProcess } from '../process/pids.js';
import { onInterrupt } from '../signals.js';
import { readJob, outcomeOf, type Plan, type Step, type StepsResult, type JobSummary } from '../steps/engine.js';
import { MariaDbJournal } from '../steps/mariadb-journal.js';
import { leaseRows } from '../job/job.js';
import { CLUSTER_TARGET } from '../job/lease.js';
import { driveGz, deadJobOf, spanOf, doneDetails, windowOf, clusterLeases, KeptConnections, type WindowGroups, type GzWindow } from '../gz/index.js';
import { loadMove, type DbusMove, type DbusEndpointRef } from './spec.js';
import { dbusStatus, waitApplied, type DbusStatus } from './status.js';
import { startStream, type StreamHandle } from './run.js';
import { cutoverLeaseCluster, dbusJob, socketFor } from './job.js';
import { sendJob, noJobAnswers } from '../control/commands.js';
import { fenceTables, unfenceTables, fenceState, fenceStatements, type FenceTable } from './fence.js';
import { readRouteAt, writeRouteAt, newestRoute, type DbusRoute } from './route.js';
import { refNode, sourceTables, targetTables, reverseProblems, forwardMappings, reverseStreamName } from './sides.js';
import { reverseMappings } from './plan.js';
import { ezctlBin } from '../self.js';

export const DBUS_CUTOVER_KIND = 'dbus-cutover';
export const DBUS_ROLLBACK_KIND = 'dbus-rollback';
/** the lease of a move's cut-over and rollback: one at a time per move (the `dbus start` job is another) */

export const CUTOVER_DEFAULTS = { timeoutMs: 30_000, lockWaitMs: 3_000, maxLagMs: 1_000 };

export interface DbusCutoverOptions {
  name: string;
  /** a --spec YAML instead of the topology file's dbus.moves */
  spec?: string;
  execute?: boolean;
  /** the bound of wait-applied (the target applying the sources' final positions) */
  timeoutMs?: number;
  /** the bound of each fence's metadata lock */
  lockWaitMs?: number;
  /** refused while the move's apply lags more than this */
  maxLagMs?: number;
  /** flip even when rows differ (named in the report) */
  force?: boolean;
  leaseMs?: number;
}

/** One side of the move as the journal keeps it: its endpoint (no secrets) and its moved tables. */
export interface SideParams {
  ref: DbusEndpointRef;
  host: string;
  port: number;
  tables: FenceTable[];
}

/** What the journal keeps (no secrets): the plan is rebuilt from it on --resume / --rollback. */
export interface CutoverParams {
  move: string;
  topologyPath: string;
  spec?: string;
  sources: SideParams[];
  target: SideParams;
  /** the route version the job was planned from */
  routeVersion: number;
  /** the target's tables carried the fence before the job (left so by an undo) */
  targetFencedBefore: boolean;
  /** the sources' tables carried it before (a rollback: undone to fenced) */
  sourcesFencedBefore: boolean;
  lockWaitMs: number;
  timeoutMs: number;
  force: boolean;
}

export interface DbusCutoverReport {
  command: 'cutover' | 'rollback';
  mode: 'plan' | 'noop' | 'run' | 'resume' | 'rollback';
  move: string;
  jobId: string | null;
  outcome: string;
  exitCode: number;
  message: string | null;
  refusals: string[];
  status: DbusStatus | null;
  route: DbusRoute | null;
  steps: Array<{ name: string; does: string; pointOfNoReturn?: boolean; timeoutMs?: number; sql?: string[] }>;
  /** the moved tables' write-unavailable window, split (fence: block-routes to final-positions) */
  window: GzWindow | null;
  finalPositions: Record<string, string> | null;
  /** the positions the reverse stream starts after (the target's) */
  reverseFrom: string | null;
  verify: { differences: VerifyDifference[] } | null;
  result: StepsResult | null;
  resumedDeadJob?: string;
}

const WINDOW: WindowGroups = {
  block: ['block-routes', 'fence-sources', 'final-positions'],
  drain: ['wait-applied'],
  verify: ['verify', 'fence-target', 'reverse-stream'],
  flip: ['flip', 'end-forward', 'unfence-target'],
};

// ---------------------------------------------------------------- verify (C2's dbusVerify)

export interface VerifyDifference { table: string; key: unknown[]; why: string }
type DbusVerifyFn = (ctx: Ctx, move: DbusMove, o: { tables?: string[]; settleMs?: number; signal?: AbortSignal }) => Promise<{ differences: VerifyDifference[] }>;

/** The rows' verify (dbus/verify.ts), imported when a cut-over or rollback reaches its verify step. */
export async function loadVerify(): Promise<DbusVerifyFn> {
  return (await import('./verify.js')).dbusVerify;
}

// ---------------------------------------------------------------- the servers

export interface Sides {
  topo: Topology;
  node(side: SideParams): ResolvedNode;
  with<T>(side: SideParams, fn: (db: Db) => Promise<T>): Promise<T>;
}

export function sidesOf(ctx: Ctx, p: Pick<CutoverParams, 'topologyPath'>): Sides {
  let topo: Topology | undefined;
  const t = () => (topo ??= loadTopology(p.topologyPath));
  const node = (side: SideParams) => refNode(t(), side.ref);
  return {
    get topo() {
      return t();
    },
    node,
    async with(side, fn) {
      const db = await ctx.connect(node(side));
      try {
        return await fn(db);
      } finally {
        await db.close().catch(() => undefined);
      }
    },
  };
}

const label = (s: SideParams) => s.ref.label;
const allSides = (p: CutoverParams) => [p.target, ...p.sources];

/** Publish the route to every side at once, all required; a higher version anywhere refuses it. */
export async function publishRoute(sides: Sides, order: SideParams[], r: DbusRoute): Promise<{ written: string[] }> {
  // one row per server: a move within one instance (a rename) has its source and target there
  const once = order.filter((s, i) => order.findIndex((x) => x.host === s.host && x.port === s.port) === i);
  const res = await Promise.all(once.map((s) => sides.with(s, (db) => writeRouteAt(db, r)).then((x) => ({ s, x }))));
  const newer = res.find((e) => e.x === 'newer');
  if (newer) throw refused(`the route record of dbus ${r.move} at ${label(newer.s)} holds a version above ${r.version}: another job changed it`, { hint: 'see `ezctl dbus status`' });
  return { written: res.map((e) => label(e.s)) };
}

/** The newest route among the sides (unreachable ones skipped). */
export async function readRoute(sides: Sides, p: CutoverParams): Promise<DbusRoute | undefined> {
  const all = await Promise.all(allSides(p).map((s) => sides.with(s, (db) => readRouteAt(db, p.move)).catch(() => undefined)));
  return newestRoute(all);
}

export function baseRoute(p: CutoverParams): Omit<DbusRoute, 'version' | 'home' | 'state' | 'job' | 'reason'> {
  return { move: p.move, target: { label: label(p.target), host: p.target.host, port: p.target.port }, sources: p.sources.map((s) => ({ label: label(s), host: s.host, port: s.port })) };
}

// ---------------------------------------------------------------- the reverse stream's process

export function reverseDir(topo: Topology, move: string): string {
  return join(topo.stateDir(), 'dbus', move.replace(/[^A-Za-z0-9_.-]/g, '_'));
}

/** reverse.json: the process (ready: prepared, waiting for its start position), then its streams once they run */
interface ReverseInfo { pid: number; host: string; from: string | null; streams: string[]; startedAt: string }

function readReverseInfo(topo: Topology, move: string): ReverseInfo | undefined {
  const f = join(reverseDir(topo, move), 'reverse.json');
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as ReverseInfo;
  } catch {
    return undefined;
  }
}

/** The reverse stream's process on this host, when it runs (streaming, or ready and waiting for its position). */
export function reverseRunning(topo: Topology, move: string): ReverseInfo | undefined {
  const r = readReverseInfo(topo, move);
  return r && r.host === hostname() && pidAlive(r.pid) ? r : undefined;
}

async function waitInfo(topo: Topology, move: string, o: { pid?: number; streaming: boolean; child?: ReturnType<typeof spawn>; signal?: AbortSignal; log: string }): Promise<ReverseInfo> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const info = readReverseInfo(topo, move);
    if (info && (o.pid === undefined || info.pid === o.pid) && (!o.streaming || info.from !== null)) return info;
    const gone = o.child ? o.child.exitCode !== null || o.child.signalCode !== null : o.pid !== undefined && !pidAlive(o.pid);
    if (gone || Date.now() > deadline || o.signal?.aborted) {
      if (!gone && o.pid) process.kill(o.pid, 'SIGTERM');
      const tail = existsSync(o.log) ? readFileSync(o.log, 'utf8').trim().split('\n').slice(-8) : [];
      throw runtimeError(`the reverse stream of dbus ${move} did not ${o.streaming ? 'start streaming' : 'get ready'} (${gone ? 'its process ended' : 'no answer in 30 s'})`, { details: tail, hint: `see ${o.log}` });
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Start `ezctl dbus reverse NAME` in the background (its log and pid under the state dir), ready:
 * the move loaded, the mappings built, waiting for its start position (goReverse). Done before the
 * window (a process start and the catalogs cost a second or more on a loaded host). One already
 * running is kept.
 */
export async function prepareReverse(ctx: Ctx, p: Pick<CutoverParams, 'move' | 'topologyPath' | 'spec'>, signal?: AbortSignal): Promise<ReverseInfo> {
  const topo = loadTopology(p.topologyPath);
  const running = reverseRunning(topo, p.move);
  if (running) return running;
  if (ctx.opts.askPass) throw badInput('--ask-pass cannot start the reverse stream (it runs in the background, without a terminal)', { hint: 'use credentials.passwordEnv or a defaults file' });
  const dir = reverseDir(topo, p.move);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  rmSync(join(dir, 'reverse.json'), { force: true });
  rmSync(join(dir, 'go.json'), { force: true });
  const log = join(dir, 'reverse.log');
  const args = [ezctlBin(), '--config', p.topologyPath, '--connect-timeout', String(ctx.opts.connectTimeout)];
  if (ctx.opts.defaultsFile) args.push('--defaults-file', resolve(ctx.opts.defaultsFile));
  args.push('dbus', 'reverse', p.move);
  if (p.spec) args.push('--spec', p.spec);
  const fd = openSync(log, 'a', 0o600);
  const env: NodeJS.ProcessEnv = { ...process.env, CI: '1' };
  delete env.EZCTL_FAULT_KILL_AT;
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  child.unref();
  return waitInfo(topo, p.move, { ...(child.pid !== undefined ? { pid: child.pid } : {}), streaming: false, child, ...(signal ? { signal } : {}), log });
}

/** Give the ready reverse stream its start position (the target's), and wait until its streams run. */
export async function goReverse(ctx: Ctx, p: Pick<CutoverParams, 'move' | 'topologyPath' | 'spec'>, from: string, signal?: AbortSignal, o: { wait?: boolean } = {}): Promise<ReverseInfo> {
  const topo = loadTopology(p.topologyPath);
  const info = reverseRunning(topo, p.move) ?? (await prepareReverse(ctx, p, signal));
  if (info.from !== null) return info;
  const dir = reverseDir(topo, p.move);
  if (!existsSync(join(dir, 'go.json'))) {
    writeFileSync(join(dir, 'go.json.tmp'), JSON.stringify({ from }), { mode: 0o600 });
    renameSync(join(dir, 'go.json.tmp'), join(dir, 'go.json'));
  }
  if (o.wait === false) return { ...info, from };
  return waitInfo(topo, p.move, { pid: info.pid, streaming: true, ...(signal ? { signal } : {}), log: join(dir, 'reverse.log') });
}

/** prepareReverse then goReverse. */
export async function ensureReverse(ctx: Ctx, p: Pick<CutoverParams, 'move' | 'topologyPath' | 'spec'>, from: string, signal?: AbortSignal): Promise<ReverseInfo> {
  await prepareReverse(ctx, p, signal);
  return goReverse(ctx, p, from, signal);
}

/** Stop the reverse stream's process (on this host); a stream elsewhere is refused, naming it. */
export async function stopReverse(topo: Topology, move: string): Promise<{ stopped: number | null }> {
  const r = readReverseInfo(topo, move);
  if (!r || !pidAlive(r.pid) || r.host !== hostname()) {
    if (r && r.host !== hostname()) throw runtimeError(`the reverse stream of dbus ${move} runs on host ${r.host} (pid ${r.pid}), not here`, { hint: 'run this on that host, or stop it there' });
    rmSync(join(reverseDir(topo, move), 'reverse.json'), { force: true });
    return { stopped: null };
  }
  await stopProcess(r.pid, () => isEzctlProcess(r.pid), { graceMs: 10_000 });
  rmSync(join(reverseDir(topo, move), 'reverse.json'), { force: true });
  return { stopped: r.pid };
}

/**
 * `ezctl dbus reverse NAME --from POS` (started by the cut-over, not by hand): one stream per
 * source, the target's binlog applied to that source's tables (the forward mappings turned around),
 * until SIGTERM/SIGINT or a stream fails (exit 3, why in the log).
 */
export async function runReverse(ctx: Ctx, o: { name: string; spec?: string; from?: string }): Promise<{ streams: string[]; stoppedBy: string }> {
  const topo = await ctx.topology();
  const move = await loadMove(ctx, { name: o.name, ...(o.spec ? { spec: o.spec } : {}) });
  const problems = reverseProblems(move);
  if (problems.length) throw refused(`dbus ${move.name} cannot be streamed back`, { details: problems });
  const targetNode = refNode(topo, move.target);
  const targetEp = await ctx.endpoint(targetNode);
  const srcDbs = new Map<string, Db>();
  const targetDb = await ctx.connect(targetNode);
  let mappings;
  try {
    for (const s of move.sources) srcDbs.set(s.label, await ctx.connect(refNode(topo, s)));
    mappings = await forwardMappings(move, { sources: srcDbs, target: targetDb });
  } finally {
    await targetDb.close().catch(() => undefined);
    await Promise.all([...srcDbs.values()].map((d) => d.close().catch(() => undefined)));
  }
  const ac = new AbortController();
  const handles: StreamHandle[] = [];
  const stopAll = async () => {
    await Promise.all(handles.map((h) => h.stop().catch(() => undefined)));
  };
  let stoppedBy = 'signal';
  const off = onInterrupt(async () => {
    ac.abort(new Error('interrupted'));
    await stopAll();
  });
  const dir = reverseDir(topo, move.name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const writeInfo = (info: ReverseInfo) => {
    writeFileSync(join(dir, 'reverse.json.tmp'), JSON.stringify(info), { mode: 0o600 });
    renameSync(join(dir, 'reverse.json.tmp'), join(dir, 'reverse.json'));
  };
  try {
    // ready: wait for the start position (goReverse), unless given
    let from = o.from;
    if (from === undefined) {
      writeInfo({ pid: process.pid, host: hostname(), from: null, streams: [], startedAt: new Date().toISOString() });
      const go = join(dir, 'go.json');
      while (from === undefined && !ac.signal.aborted) {
        if (existsSync(go)) {
          from = String((JSON.parse(readFileSync(go, 'utf8')) as { from: string }).from);
          rmSync(go, { force: true });
        } else await new Promise((r) => setTimeout(r, 5));
      }
      if (from === undefined) return { streams: [], stoppedBy: 'signal' };
    }
    for (const s of move.sources) {
      const node = refNode(topo, s);
      const name = reverseStreamName(move.name, s.label);
      const h = await startStream(ctx, { name, move, label: move.target.label, source: targetEp, target: await ctx.endpoint(node), mappings: reverseMappings(mappings, move.target.label, s.label), from }, { signal: ac.signal });
      handles.push(h);
    }
    writeInfo({ pid: process.pid, host: hostname(), from, streams: handles.map((h) => h.name), startedAt: new Date().toISOString() });
    ctx.log.info(`dbus ${move.name}: reverse stream running (${handles.map((h) => h.name).join(', ')}) from ${from}`);
    await Promise.race(handles.map((h) => h.done.then(() => undefined)));
    stoppedBy = ac.signal.aborted ? 'signal' : 'stream ended';
  } catch (e) {
    stoppedBy = `failed: ${(e as Error).message}`;
    await stopAll();
    throw e;
  } finally {
    off();
  }
  await stopAll();
  return { streams: handles.map((h) => h.name), stoppedBy };
}

/** Whether every reverse stream's checkpoint at its source covers the target's position `pos`. */
export async function reverseApplied(sides: Sides, p: CutoverParams, pos: string, flavor: 'mariadb' | 'mysql'): Promise<{ behind: string[] }> {
  const behind: string[] = [];
  for (const s of p.sources) {
    const st = await sides.with(s, async (db) => {
      await ensureApplyCheckpoint(db);
      return loadApplyState(db, reverseStreamName(p.move, label(s)));
    });
    if (!st || !gtidCovers(flavor, st.position, pos)) behind.push(`${label(s)} (applied ${st?.position || 'nothing'}, wants ${pos})`);
  }
  return { behind };
}

// ---------------------------------------------------------------- the move's own job

const RUNNING: ReadonlyArray<DbusStatus['state']> = ['planned', 'copying', 'following', 'paused', 'cutting-over'];

/**
 * End the move's `dbus start` job (its `end` control command, on this host) and wait, at most 15 s,
 * until it no longer runs. A job on another host is an error naming it (run the step there).
 */
export async function endMoveJob(ctx: Ctx, move: string, state: 'cut-over' | 'rolled-back'): Promise<{ ended: string; jobId?: string }> {
  const st = await dbusStatus(ctx, move).catch(() => null);
  if (!st || !RUNNING.includes(st.state)) return { ended: `not running (${st?.state ?? 'no job'})` };
  const at = { kind: dbusJob, path: await socketFor(ctx, move), job: `dbus job of move ${move}`, fix: `it runs elsewhere (${st.holder}): end it there with the same command` };
  try {
    await sendJob(at, 'end', { state });
  } catch (e) {
    throw runtimeError(`the dbus job ${st.jobId} of move ${move} could not be ended here: ${(e as Error).message}`, { hint: `it runs as ${st.holder}: resume this job on that host` });
  }
  // the job stops its streams, then closes its control socket: once nothing answers there, no
  // stream of it applies any more (asked over the socket: cheap, unlike its status from the servers)
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await sendJob(at, 'status', undefined, 1000);
    } catch (e) {
      if (noJobAnswers(e) || noJobAnswers((e as { cause?: unknown }).cause)) return { ended: state, jobId: st.jobId };
    }
    if (Date.now() > deadline) throw runtimeError(`the dbus job ${st.jobId} of move ${move} was told to end but still answers after 15 s`, { hint: 'stop it (dbus abort keeps the target), then resume this job' });
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---------------------------------------------------------------- the plan

const posOf = (db: Db) => db.value<string>('SELECT @@global.gtid_binlog_pos').then((x) => String(x ?? ''));

export function cutoverPlan(ctx: Ctx, p: CutoverParams, jobId: string, refusals: string[] = [], kept?: KeptConnections): Plan<CutoverParams> {
  // inside the window: connections opened before it and kept (a fresh one per use cost tens of ms under load)
  const sides = sidesOf(kept?.ctx ?? ctx, p);
  const live: { positions?: Record<string, string>; blockedVersion?: number; reverseFrom?: string } = {};
  const lockWaitS = Math.max(1, Math.ceil(p.lockWaitMs / 1000));
  const base = baseRoute(p);
  const route = (version: number, home: DbusRoute['home'], state: DbusRoute['state'], reason: string, reverse?: DbusRoute['reverse']): DbusRoute => ({ ...base, version, home, state, job: jobId, reason, ...(reverse !== undefined ? { reverse } : {}) });
  const current = async () => (await readRoute(sides, p)) ?? { version: p.routeVersion, home: 'sources' as const, state: 'active' as const };

  const prepare: Step<CutoverParams> = {
    name: 'prepare-reverse',
    describe: () => ({ does: `before the window: start the reverse stream's process (${label(p.target)} -> ${p.sources.map(label).join(', ')}), ready but not streaming until the target's position is known` }),
    async do(sc) {
      const info = await prepareReverse(ctx, p, sc.signal);
      await kept?.prepare(allSides(p).map((x) => sides.node(x)));
      return { pid: info.pid, host: info.host };
    },
    async undo() {
      await stopReverse(loadTopology(p.topologyPath), p.move);
    },
  };

  const blockRoutes: Step<CutoverParams> = {
    name: 'block-routes',
    describe: () => ({ does: `publish the route record of ${p.move} (home: the sources) blocked at ${allSides(p).map(label).join(', ')}: clients following it hold the moved tables' writes` }),
    async do() {
      const t0 = Date.now();
      const r = route(p.routeVersion + 1, 'sources', 'blocked', `dbus cutover ${jobId}: block`);
      const { written } = await publishRoute(sides, [...p.sources, p.target], r);
      live.blockedVersion = r.version;
      return { version: r.version, written, span: spanOf(t0) };
    },
    async undo() {
      const cur = await current();
      if (cur.home === 'sources' && cur.state === 'active') return;
      await publishRoute(sides, [...p.sources, p.target], route(cur.version + 1, 'sources', 'active', `dbus cutover ${jobId}: rolled back`));
    },
  };

  const fenceSources: Step<CutoverParams> = {
    name: 'fence-sources',
    describe: () => ({
      does: `fence the moved tables on every source (${p.sources.map((s) => `${label(s)}: ${s.tables.length} table${s.tables.length === 1 ? '' : 's'}`).join('; ')}): triggers that refuse every client's INSERT/UPDATE/DELETE (root's too), sql_log_bin=0, each waiting at most ${formatDuration(p.lockWaitMs)} for the table's open transactions`,
      sql: p.sources.flatMap((s) => s.tables.slice(0, 2).flatMap((t) => fenceStatements(p.move, t, 'is being cut over').map((x) => x.sql))),
    }),
    async do(sc) {
      const t0 = Date.now();
      const fenced: Record<string, number> = {};
      sc.waitingFor(`the fence of ${p.sources.map(label).join(', ')}'s tables`);
      // every source at once: the window is the slowest one's, not their sum
      await Promise.all(p.sources.map(async (s) => {
        const r = await sides.with(s, (db) => fenceTables(db, p.move, s.tables, { lockWaitS, why: `is being cut over to ${label(p.target)}: wait, then write there` }));
        fenced[label(s)] = r.ms;
      }));
      return { fenceMs: fenced, span: spanOf(t0) };
    },
    async undo() {
      if (p.sourcesFencedBefore) return;
      for (const s of p.sources) await sides.with(s, (db) => unfenceTables(db, p.move, s.tables, { lockWaitS: Math.max(lockWaitS, 10) }));
    },
  };

  const finalPositions: Step<CutoverParams> = {
    name: 'final-positions',
    changesNothing: true,
    describe: () => ({ does: 'read every source\'s @@gtid_binlog_pos with the tables fenced: every write they took is in it', sql: ['SELECT @@global.gtid_binlog_pos'] }),
    async do() {
      const t0 = Date.now();
      const positions: Record<string, string> = {};
      await Promise.all(p.sources.map(async (s) => (positions[label(s)] = await sides.with(s, posOf))));
      live.positions = positions;
      return { positions, span: spanOf(t0) };
    },
  };

  const waitStep: Step<CutoverParams> = {
    name: 'wait-applied',
    changesNothing: true,
    timeoutMs: p.timeoutMs + 5_000,
    waitsFor: `the target to apply every source's final position (at most ${formatDuration(p.timeoutMs)})`,
    describe: () => ({ does: `wait, at most ${formatDuration(p.timeoutMs)}, until the move's job has applied every source's final position at ${label(p.target)}` }),
    async do(sc) {
      const t0 = Date.now();
      const positions = live.positions ?? (await (async () => {
        const x: Record<string, string> = {};
        for (const s of p.sources) x[label(s)] = await sides.with(s, posOf);
        return x;
      })());
      sc.waitingFor(`the target to apply ${Object.entries(positions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      const r = await waitApplied(ctx, p.move, positions, { timeoutMs: p.timeoutMs, signal: sc.signal });
      if (!r.reached) throw refused(`the target did not apply the sources' final positions within ${formatDuration(p.timeoutMs)}: behind on ${r.behind.join(', ')}`, { hint: 'nothing flipped: the fence is lifted, the route restored. See `ezctl dbus status`, raise --timeout, then cut over again' });
      return { positions, span: spanOf(t0) };
    },
  };

  const verify: Step<CutoverParams> = {
    name: 'verify',
    changesNothing: true,
    describe: () => ({ does: `compare every moved table at the sources and the target (settle 0: the writes are fenced and applied, so a difference is real at once); a difference stops the flip${p.force ? ' (--force: reported, not stopped)' : ''}` }),
    async do(sc) {
      const t0 = Date.now();
      const fn = await loadVerify();
      const move = await loadMove(ctx, { name: p.move, ...(p.spec ? { spec: p.spec } : {}) });
      const r = await fn(ctx, move, { settleMs: 0, signal: sc.signal });
      if (r.differences.length && !p.force) {
        throw refused(`${r.differences.length} row${r.differences.length === 1 ? '' : 's'} differ between the sources and the target with the writes fenced and applied: ${r.differences.slice(0, 5).map((d) => `${d.table} ${JSON.stringify(d.key)}: ${d.why}`).join('; ')}`, {
          hint: 'nothing flipped: the fence is lifted, the route restored. Find why (ezctl dbus verify), then cut over again, or pass --force',
        });
      }
      return { differences: r.differences.slice(0, 100), span: spanOf(t0) };
    },
  };

  const fenceTarget: Step<CutoverParams> = {
    name: 'fence-target',
    describe: () => ({ does: `fence the moved tables at the target ${label(p.target)} (${p.target.tables.length}) until the flip: no instant where both sides take writes (the move's own streams pass it)` }),
    async do() {
      const t0 = Date.now();
      const r = await sides.with(p.target, (db) => fenceTables(db, p.move, p.target.tables, { lockWaitS, why: `is not written yet: the move ${p.move} is cutting over` }));
      return { fenceMs: r.ms, span: spanOf(t0) };
    },
    async undo() {
      if (p.targetFencedBefore) return;
      await sides.with(p.target, (db) => unfenceTables(db, p.move, p.target.tables, { lockWaitS: Math.max(lockWaitS, 10) }));
    },
  };

  const reverse: Step<CutoverParams> = {
    name: 'reverse-stream',
    describe: () => ({ does: `give the reverse stream ${label(p.target)} -> ${p.sources.map(label).join(', ')} (its process ready since prepare-reverse) the target's position now, its start: the target's writes reach the sources, so a rollback loses nothing (that it streams is waited for after the window, in routes-everywhere)` }),
    async do(sc) {
      const t0 = Date.now();
      const from = await sides.with(p.target, posOf);
      const info = await goReverse(ctx, p, from, sc.signal, { wait: false });
      live.reverseFrom = from;
      return { reverseFrom: from, reversePid: info.pid, reverseHost: info.host, span: spanOf(t0) };
    },
    async undo() {
      const topo = loadTopology(p.topologyPath);
      await stopReverse(topo, p.move);
      for (const s of p.sources) await sides.with(s, async (db) => {
        await ensureApplyCheckpoint(db);
        await clearApplyState(db, reverseStreamName(p.move, label(s)));
      });
    },
  };

  const flip: Step<CutoverParams> = {
    name: 'flip',
    pointOfNoReturn: true,
    describe: () => ({ does: `publish the route record with the target ${label(p.target)} home and active, at the target first, then at every source (POINT OF NO RETURN: clients write to the target from here)` }),
    async do() {
      const t0 = Date.now();
      const cur = await current();
      if (cur.home === 'target' && cur.version > p.routeVersion) return { version: cur.version, already: true, span: spanOf(t0) };
      if (!(cur.home === 'sources' && cur.state === 'blocked' && cur.job === jobId)) {
        throw refused(`the route record of ${p.move} is not the one this cut-over blocked (version ${cur.version}: ${'reason' in cur ? cur.reason : ''}): another job changed it`, { hint: 'nothing flipped' });
      }
      const rv = readReverseInfo(loadTopology(p.topologyPath), p.move);
      const from = live.reverseFrom ?? rv?.from ?? null;
      const r = route(cur.version + 1, 'target', 'active', `dbus cutover ${jobId}: flip to ${label(p.target)}`, rv && from !== null ? { host: rv.host, pid: rv.pid, from, streams: p.sources.map((s) => reverseStreamName(p.move, label(s))) } : null);
      // the new home first: a client reading the target finds the flip as soon as it exists anywhere
      await publishRoute(sides, [p.target], r);
      const missed: string[] = [];
      await Promise.all(p.sources.map((s) => publishRoute(sides, [s], r).catch((e: Error) => missed.push(`${label(s)}: ${e.message}`))));
      return { version: r.version, missed, span: spanOf(t0) };
    },
    async check() {
      const r = await sides.with(p.target, (db) => readRouteAt(db, p.move));
      return !!r && r.home === 'target' && r.version > p.routeVersion;
    },
  };

  const endForward: Step<CutoverParams> = {
    name: 'end-forward',
    describe: () => ({ does: `end the move's \`dbus start\` job (cut over: its streams stop, its checkpoints stay) before the target takes a write: the reverse stream's writes at the sources must not come back through it` }),
    async do() {
      const t0 = Date.now();
      const ended = await endMoveJob(ctx, p.move, 'cut-over');
      return { ...ended, span: spanOf(t0) };
    },
  };

  const unfenceTarget: Step<CutoverParams> = {
    name: 'unfence-target',
    describe: () => ({ does: `lift the fence at the target ${label(p.target)}: its tables take writes` }),
    async do() {
      const t0 = Date.now();
      const r = await sides.with(p.target, (db) => unfenceTables(db, p.move, p.target.tables, { lockWaitS: Math.max(lockWaitS, 10) }));
      return { unfenced: r.unfenced.length, span: spanOf(t0) };
    },
  };

  const everywhere: Step<CutoverParams> = {
    name: 'routes-everywhere',
    describe: () => ({ does: 'wait until the reverse stream streams (started again from its position when its process is gone); write the newest route record at every side that missed it; the sources stay fenced (only the reverse stream writes there)' }),
    async do() {
      const r = await readRoute(sides, p);
      if (!r || r.home !== 'target') throw runtimeError(`the route record of ${p.move} does not name the target home (version ${r?.version ?? 0})`);
      const from = live.reverseFrom ?? r.reverse?.from;
      if (from === undefined) throw runtimeError(`the reverse stream's start position of ${p.move} is not in its route record`, { hint: 'see the journal of this job (reverse-stream: reverseFrom) and start it with `ezctl dbus reverse NAME --from POS`' });
      const rev = await ensureReverse(ctx, p, from);
      const { written } = await publishRoute(sides, allSides(p), r);
      // the sources' fence stays, and its message now says where the writes go
      for (const s of p.sources) {
        const st = await sides.with(s, (db) => fenceState(db, p.move, s.tables));
        if (st.open.length || st.partial.length) await sides.with(s, (db) => fenceTables(db, p.move, s.tables, { lockWaitS: Math.max(lockWaitS, 10), why: `moved to ${label(p.target)}` }));
      }
      return { version: r.version, written, reverse: { pid: rev.pid, from: rev.from } };
    },
  };

  return {
    kind: DBUS_CUTOVER_KIND,
    params: p,
    cluster: cutoverLeaseCluster(p.move),
    async preflight() {
      return refusals;
    },
    steps: [prepare, blockRoutes, fenceSources, finalPositions, waitStep, verify, fenceTarget, reverse, flip, endForward, unfenceTarget, everywhere],
  };
}

// ---------------------------------------------------------------- assessment

interface Assessed {
  params: CutoverParams | null;
  refusals: string[];
  status: DbusStatus | null;
  route: DbusRoute | null;
  noop: string | null;
  resumeJob?: string;
  move: DbusMove | null;
}

/** The job's home (journal, lease): the target, as the lease rows name it (zone 'target'). */
export function homeNode(p: Pick<CutoverParams, 'topologyPath' | 'target' | 'move'>): ResolvedNode {
  const n = refNode(loadTopology(p.topologyPath), p.target.ref);
  return { ...n, cluster: cutoverLeaseCluster(p.move), zone: 'target' };
}

/** A dead cut-over or rollback of this move holding its lease at the target: a rerun resumes it. */
export async function deadJobAt(ctx: Ctx, target: ResolvedNode, move: string): Promise<{ jobId: string; kind: string } | undefined> {
  const db = await ctx.connect(target);
  try {
    const rows = await leaseRows(db, 'target', cutoverLeaseCluster(move)).catch(() => []);
    const d = deadJobOf(rows, 'dbus-cutover');
    if (!d) return undefined;
    const j = await readJob(await MariaDbJournal.open(db), d.jobId).catch(() => undefined);
    return { jobId: d.jobId, kind: j?.header.kind ?? DBUS_CUTOVER_KIND };
  } finally {
    await db.close().catch(() => undefined);
  }
}

/** What both directions check first: the move, its sides, their fences, the route, other switches. */
export async function assessSides(ctx: Ctx, o: { name: string; spec?: string }, refusals: string[]): Promise<{ move: DbusMove; topo: Topology; sources: SideParams[]; target: SideParams; route: DbusRoute | undefined; dbs: { sources: Map<string, Db>; target: Db } | null }> {
  const topo = await ctx.topology();
  const move = await loadMove(ctx, { name: o.name, ...(o.spec ? { spec: o.spec } : {}) });
  const srcTables = sourceTables(move);
  const sources: SideParams[] = move.sources.map((ref) => {
    const n = refNode(topo, ref);
    return { ref, host: n.host, port: n.port, tables: srcTables.get(ref.label) ?? [] };
  });
  const tn = refNode(topo, move.target);
  const target: SideParams = { ref: move.target, host: tn.host, port: tn.port, tables: targetTables(move) };
  refusals.push(...reverseProblems(move));
  const dbs = { sources: new Map<string, Db>(), target: undefined as Db | undefined };
  const routes: Array<DbusRoute | undefined> = [];
  for (const s of [target, ...sources]) {
    try {
      const db = await ctx.connect(refNode(topo, s.ref));
      if (s === target) dbs.target = db;
      else dbs.sources.set(s.ref.label, db);
      routes.push(await readRouteAt(db, move.name));
      if (Number(await db.value('SELECT @@global.read_only')) === 1) refusals.push(`${s.ref.label} (${s.host}:${s.port}) is read_only: ${s === target ? 'the target cannot take the writes' : 'the reverse stream could not write there'}`);
      const st = await fenceState(db, move.name, s.tables);
      for (const x of st.otherMove) refusals.push(`${x.table} at ${s.ref.label} is fenced by another move (${x.move}): finish or roll back that one first`);
    } catch (e) {
      refusals.push(`${s.ref.label} (${s.host}:${s.port}) cannot be reached: ${(e as Error).message} (a cut-over fences, drains and verifies every side)`);
    }
  }
  // no switch of a cluster the move touches may run meanwhile (it would move the server under the fence)
  const clusters = [...new Set([move.target, ...move.sources].map((r) => r.cluster).filter((c): c is string => !!c && topo.clusterNames.includes(c)))];
  for (const c of clusters) {
    const leases = await clusterLeases(ctx, topo, c).catch(() => ({ rows: [], unreachable: [] }));
    for (const r of leases.rows) if (r.target === CLUSTER_TARGET && r.kind !== 'emha-watch') refusals.push(`cluster ${c} is held by ${r.kind ?? 'a'} job ${r.jobId} (zone ${r.zone}, host ${r.host}): no cut-over while a switch of it runs`);
  }
  return { move, topo, sources, target, route: newestRoute(routes), dbs: dbs.target ? { sources: dbs.sources, target: dbs.target } : null };
}

async function closeDbs(dbs: { sources: Map<string, Db>; target: Db } | null): Promise<void> {
  if (!dbs) return;
  await Promise.all([dbs.target, ...dbs.sources.values()].map((d) => d.close().catch(() => undefined)));
}

export async function assessCutover(ctx: Ctx, o: DbusCutoverOptions): Promise<Assessed> {
  const refusals: string[] = [];
  const s = await assessSides(ctx, o, refusals);
  const out: Assessed = { params: null, refusals, status: null, route: s.route ?? null, noop: null, move: s.move };
  try {
    const dead = await deadJobAt(ctx, { ...refNode(s.topo, s.move.target) }, s.move.name).catch(() => undefined);
    if (dead) return { ...out, resumeJob: dead.jobId };
    if (s.route?.home === 'target' && s.route.state === 'active') {
      out.noop = `dbus ${s.move.name} is cut over already (route record version ${s.route.version}: the target ${s.route.target.label} is home)`;
      return out;
    }
    if (s.route?.state === 'blocked') refusals.push(`the route record of ${s.move.name} is blocked (version ${s.route.version}, ${s.route.reason}): a cut-over or rollback is under way or died (\`ezctl jobs\`)`);
    // the move's job: running, copy done, following within --max-lag
    const maxLagMs = o.maxLagMs ?? CUTOVER_DEFAULTS.maxLagMs;
    try {
      const st = await dbusStatus(ctx, s.move.name);
      out.status = st;
      if (st.state !== 'following') refusals.push(`the move's job ${st.jobId} is ${st.state}${st.error ? ` (${st.error})` : ''}, not following: a cut-over needs the copy done and the sources followed live (\`ezctl dbus start ${s.move.name} --execute\` / \`dbus resume\`)`);
      for (const src of st.sources) {
        if (src.lagMs !== null && src.lagMs > maxLagMs) refusals.push(`the apply of ${src.label} lags ${src.lagMs} ms, more than --max-lag ${formatDuration(maxLagMs)}: the fence would hold the writes that long`);
      }
      const notDone = st.tables.filter((t) => !t.copyDone);
      if (notDone.length) refusals.push(`${notDone.length} table${notDone.length === 1 ? '' : 's'} not copied yet: ${notDone.slice(0, 5).map((t) => t.target).join(', ')}`);
    } catch (e) {
      refusals.push(`the move's job cannot be asked: ${(e as Error).message} (a cut-over needs \`ezctl dbus start ${s.move.name} --execute\` running)`);
    }
    if (s.dbs) {
      const tf = await fenceState(s.dbs.target, s.move.name, s.target.tables);
      const sf = await Promise.all(s.sources.map((x) => fenceState(s.dbs!.sources.get(x.ref.label)!, s.move.name, x.tables)));
      out.params = {
        move: s.move.name,
        topologyPath: s.topo.path,
        ...(o.spec ? { spec: resolve(o.spec) } : {}),
        sources: s.sources,
        target: s.target,
        routeVersion: s.route?.version ?? 0,
        targetFencedBefore: tf.fenced.length === s.target.tables.length && s.target.tables.length > 0,
        sourcesFencedBefore: sf.every((x) => x.fenced.length > 0 && x.open.length === 0 && x.partial.length === 0),
        lockWaitMs: o.lockWaitMs ?? CUTOVER_DEFAULTS.lockWaitMs,
        timeoutMs: o.timeoutMs ?? CUTOVER_DEFAULTS.timeoutMs,
        force: !!o.force,
      };
      if (out.params.sourcesFencedBefore) refusals.push(`the moved tables are fenced at the sources already, outside a cut-over: a job died leaving them so (\`ezctl jobs\`), or the move was cut over by hand`);
    }
    return out;
  } finally {
    await closeDbs(s.dbs);
  }
}

// ---------------------------------------------------------------- running it

export function emptyReport(command: DbusCutoverReport['command'], mode: DbusCutoverReport['mode'], move: string): DbusCutoverReport {
  return { command, mode, move, jobId: null, outcome: mode, exitCode: ExitCode.ok, message: null, refusals: [], status: null, route: null, steps: [], window: null, finalPositions: null, reverseFrom: null, verify: null, result: null };
}

export function stepList<P>(plan: Plan<P>): DbusCutoverReport['steps'] {
  return plan.steps.map((s) => {
    const d = s.describe();
    const e: DbusCutoverReport['steps'][number] = { name: s.name, does: d.does };
    if (d.sql?.length) e.sql = d.sql;
    if (s.pointOfNoReturn) e.pointOfNoReturn = true;
    if (s.timeoutMs) e.timeoutMs = s.timeoutMs;
    return e;
  });
}

export async function finishReport(ctx: Ctx, r: DbusCutoverReport, p: CutoverParams, d: { result: StepsResult; jobId: string; summary: JobSummary | undefined }, windowGroups: WindowGroups = WINDOW): Promise<DbusCutoverReport> {
  Object.assign(r, outcomeOf(d.jobId, d.result));
  r.route = (await readRoute(sidesOf(ctx, p), p).catch(() => undefined)) ?? null;
  if (d.summary) {
    const done = doneDetails(d.summary);
    r.window = windowOf(done, windowGroups);
    const fp = done.get('final-positions') ?? done.get('final-position');
    r.finalPositions = (fp?.positions as Record<string, string> | undefined) ?? null;
    const rv = done.get('reverse-stream');
    r.reverseFrom = typeof rv?.reverseFrom === 'string' ? rv.reverseFrom : null;
    const v = done.get('verify');
    if (v) r.verify = { differences: (v.differences as VerifyDifference[] | undefined) ?? [] };
  }
  return r;
}

/** Drive a plan under the move's cut-over lease at the target (journal there too). */
export async function drive<P>(ctx: Ctx, p: CutoverParams, o: { kind: string; mode: 'run' | 'resume' | 'rollback'; jobId?: string; leaseMs?: number; refusals: string[]; plan: (id: string) => Plan<P>; close?: () => Promise<void> }) {
  return driveGz(ctx, {
    cluster: cutoverLeaseCluster(p.move),
    topologyPath: p.topologyPath,
    kind: 'dbus-cutover',
    home: homeNode(p),
    mode: o.mode,
    ...(o.jobId !== undefined ? { jobId: o.jobId } : {}),
    ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}),
    refusals: o.refusals,
    plan: o.plan,
    ...(o.close ? { close: o.close } : {}),
  });
}

/** A job's journal and parameters, at the move's target. */
export async function findJob(ctx: Ctx, o: { name: string; spec?: string; jobId: string }): Promise<{ params: CutoverParams; summary: JobSummary }> {
  const topo = await ctx.topology();
  const move = await loadMove(ctx, { name: o.name, ...(o.spec ? { spec: o.spec } : {}) });
  const db = await ctx.connect(refNode(topo, move.target));
  try {
    const j = await readJob(await MariaDbJournal.open(db), o.jobId);
    if (!j || (j.header.kind !== DBUS_CUTOVER_KIND && j.header.kind !== DBUS_ROLLBACK_KIND)) throw badInput(`no dbus cut-over or rollback job ${o.jobId} in the journal at the target ${move.target.label}`, { hint: '`ezctl jobs` lists the jobs' });
    return { params: j.header.params as CutoverParams, summary: j };
  } finally {
    await db.close().catch(() => undefined);
  }
}

/** `dbus cutover NAME`: the plan (no --execute), or the cut-over; a dead cut-over/rollback of the move is resumed first. */
export async function dbusCutover(ctx: Ctx, o: DbusCutoverOptions): Promise<DbusCutoverReport> {
  const as = await assessCutover(ctx, o);
  if (as.resumeJob) {
    const r0 = emptyReport('cutover', o.execute ? 'resume' : 'plan', o.name);
    if (!o.execute) {
      r0.message = `job ${as.resumeJob} died holding the cut-over of ${o.name}: with --execute this command resumes it (forward past its flip, else rolled back)`;
      return r0;
    }
    ctx.log.warn(`job ${as.resumeJob} died holding the cut-over of ${o.name}: resuming it (forward past its flip, else rolled back)`);
    const { dbusAgain } = await import('./rollback.js');
    const r = await dbusAgain(ctx, { name: o.name, ...(o.spec ? { spec: o.spec } : {}), jobId: as.resumeJob, mode: 'resume', ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}) });
    r.resumedDeadJob = as.resumeJob;
    return r;
  }
  const r = emptyReport('cutover', o.execute ? 'run' : 'plan', o.name);
  r.status = as.status;
  r.route = as.route;
  if (as.noop) {
    r.mode = 'noop';
    r.outcome = 'noop';
    r.message = as.noop;
    return r;
  }
  if (as.params) r.steps = stepList(cutoverPlan(ctx, as.params, '(plan)'));
  if (as.refusals.length || !as.params) {
    r.refusals = as.refusals;
    r.outcome = 'refused';
    r.exitCode = ExitCode.refused;
    r.message = `dbus cutover ${o.name} refused: ${as.refusals.length === 1 ? as.refusals[0]! : `${as.refusals.length} reasons`}; nothing was changed`;
    return r;
  }
  if (!o.execute) return r;
  const p = as.params;
  const kept = new KeptConnections(ctx);
  const d = await drive(ctx, p, { kind: DBUS_CUTOVER_KIND, mode: 'run', refusals: as.refusals, ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}), plan: (id) => cutoverPlan(ctx, p, id, as.refusals, kept), close: () => kept.closeAll() });
  return finishReport(ctx, r, p, d);
}

