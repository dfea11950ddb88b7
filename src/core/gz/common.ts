// What the zone switches (`gz switch`, `gz move`) share: where a job lives (its journal and lease at
// the target zone's master: the source is blocked, or dead), finding a job again (a rerun of the
// same command resumes a dead one), driving a plan under the cluster's lease, the write-unavailable
// window split (block, drain, verify, flip) from the journal, and the report every gz job gives.
import type { Ctx } from '../context.js';
import { loadTopology, type Topology, type ResolvedNode } from '../config/load.js';
import { sameServer, describeAddress } from '../config/dsn.js';
import { Db, connect } from '../db/connect.js';
import { parseMariaPos } from '../db/gtid.js';
import { quoteTable } from '../db/quote.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { readJob, type Plan, type StepsResult, type JobSummary, type StepContext } from '../steps/engine.js';
import { acquirePlanJob, runPlanUnderJob } from '../steps/under-job.js';
import { MariaDbJournal } from '../steps/mariadb-journal.js';
import { hookRunner, hooksFromTopology } from '../steps/hooks.js';
import { leaseRows, here } from '../job/job.js';
import { CLUSTER_TARGET, liveness, describeHolder, overlaps, type JobKind, type LeaseRow } from '../job/lease.js';
import { badInput, refused, runtimeError } from '../exit.js';
import { waitAcks } from '../routes/index.js';
import { DrcClient } from '../drc/client.js';
import { DEFAULT_DRC_HEARTBEAT_MS } from '../throttle/signals.js';
import { formatDuration } from '../throttle/duration.js';

/** A node as a job's parameters name it: by address (names move with the file), with its zone. */
export interface GzNodeRef {
  name: string;
  host: string;
  port: number;
  zone: string;
}

export const refOf = (n: ResolvedNode): GzNodeRef => ({ name: n.name, host: n.host, port: n.port, zone: n.zone });
export const addrOf = (n: { host: string; port: number }) => describeAddress(n);

/** The topology file as it is on disk now (a step after publishRoutes mirrored it must not use a cached copy). */
export const freshTopology = (path: string): Topology => loadTopology(path);

/** The cluster's node at this address in the file as it is now (its credentials come from there). */
export function nodeAt(topo: Topology, cluster: string, ref: GzNodeRef): ResolvedNode {
  const n = topo.nodes(cluster).find((x) => sameServer(x, ref));
  if (!n) {
    throw runtimeError(`${ref.name} (${addrOf(ref)}) is no longer a node of cluster ${cluster} in ${topo.path}`, {
      hint: 'the topology file was edited during the job: put the node back, then resume the job',
    });
  }
  return n;
}

/** Run fn on a fresh connection to the node at ref (closed after). */
export async function withNode<T>(ctx: Ctx, topologyPath: string, cluster: string, ref: GzNodeRef, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await ctx.connect(nodeAt(freshTopology(topologyPath), cluster, ref));
  try {
    return await fn(db);
  } finally {
    await db.close().catch(() => undefined);
  }
}

/** The zone's own GTID of a MariaDB position (domain `domain`), '' when it has none. */
export function ownGtid(pos: string | null | undefined, domain: number | null): string {
  if (domain === null) return '';
  const g = parseMariaPos(pos ?? '').get(domain);
  return g ? `${g.domain}-${g.server}-${g.seq}` : '';
}

/** A kept connection: its close() leaves it open for the next step (KeptConnections closes it). */
class KeptDb extends Db {
  override async close(): Promise<void> {}
  shut(): Promise<void> {
    return Db.prototype.close.call(this);
  }
  get broken(): boolean {
    const c = this.conn as unknown as { _fatalError?: unknown; _closing?: boolean };
    return Boolean(c._fatalError || c._closing);
  }
}

/**
 * Connections kept across the steps inside a switch's write-unavailable window: a fresh one per
 * use (the file parsed, a handshake) cost tens of ms each under load, and publishRoutes opens two
 * per zone. `ctx` hands them out (one per server; close() leaves them open); open() before the
 * window; closeAll() at the end of the run. A broken one is replaced at the next use. Only for
 * callers that run one statement or transaction at a time per server (routes, DRC's wait, our own
 * reads): a session setting one of them makes would be seen by the next. They are opened with
 * multipleStatements (routes' publishAt batches its transaction into one round trip); every value
 * still goes through a placeholder.
 */
export class KeptConnections {
  private readonly open = new Map<string, Promise<KeptDb>>();
  readonly ctx: Ctx;
  constructor(private readonly base: Ctx) {
    this.ctx = { ...base, connect: (n: ResolvedNode) => this.get(n) };
  }

  async get(n: ResolvedNode): Promise<Db> {
    const key = addrOf(n);
    const cur = this.open.get(key);
    if (cur) {
      const db = await cur.catch(() => undefined);
      if (db && !db.broken) return db;
      this.open.delete(key);
    }
    // multipleStatements: publishAt sends its conditional write as one query (one round trip)
    const next = this.base.endpoint(n).then((ep) => connect(ep, { timeoutMs: this.base.opts.connectTimeout * 1000, multipleStatements: true })).then((db) => new KeptDb(db.conn, db.ep));
    next.catch(() => this.open.delete(key));
    this.open.set(key, next);
    return next;
  }

  /** open the connections to these servers now (before the window) */
  async prepare(nodes: ResolvedNode[]): Promise<void> {
    await Promise.all(nodes.map((n) => this.get(n).catch(() => undefined)));
  }

  private readonly closers: Array<() => Promise<void>> = [];
  /** something else of the run to close with the connections (a verifier left open by a failed step) */
  onClose(fn: () => Promise<void>): void {
    this.closers.push(fn);
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.closers.splice(0).map((fn) => fn().catch(() => undefined)));
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((d) => d.then((x) => x.shut()).catch(() => undefined)));
  }
}

// ---------------------------------------------------------------- the write-unavailable window

/** Each step of the window journals `span: [startMs, endMs]` (epoch ms) in its done detail. */
/**
 * DRC from -> to's lag when a window opens: the floor of its drain (nothing can flip before the
 * last write has arrived). The daemon's own measure when it answers on this host (the last
 * heartbeat's trip, or the time since it when they stop); else the age of the newest heartbeat at
 * the target, an upper bound (up to one heartbeat interval more). null when neither is known.
 */
export async function drcLagNow(ctx: Ctx, topo: Topology, cluster: string, from: string, to: string): Promise<number | null> {
  const drc = new DrcClient(ctx, topo, cluster);
  const st = await drc.daemonStatus().catch(() => null);
  const d = st?.directions.find((x) => x.from === from && x.to === to);
  if (d) return d.lagMs;
  return drc.lag().then((l) => l.find((x) => x.from === from && x.to === to)?.lagMs ?? null, () => null);
}

/**
 * Before a window opens: wait, at most `timeoutMs`, until DRC from -> to on this host's daemon is
 * `running` (not `retrying` or `starting`). A direction restarting its session (the previous
 * switch killed the sessions of its source, say) drains nothing until it has reconnected and read
 * its binlog again: measured, a 989 ms drain with 32 ms of lag at the block, every other switch's
 * 2-4 ms. Waiting outside the window costs the application nothing. A daemon elsewhere is not
 * seen: nothing is waited for. Returns what it waited for (ms) and the state it saw last.
 */
export async function drcRunningBeforeWindow(ctx: Ctx, topo: Topology, cluster: string, from: string, to: string, timeoutMs = 5_000, signal?: AbortSignal): Promise<{ waitedMs: number; state: string | null }> {
  const drc = new DrcClient(ctx, topo, cluster);
  const t0 = Date.now();
  let state: string | null = null;
  for (;;) {
    const st = await drc.daemonStatus().catch(() => null);
    const d = st?.directions.find((x) => x.from === from && x.to === to);
    state = d?.state ?? null;
    if (!d || d.state === 'running' || d.state === 'paused' || d.state === 'error' || d.state === 'stopped') break;
    if (Date.now() - t0 >= timeoutMs || signal?.aborted) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { waitedMs: Date.now() - t0, state };
}

/**
 * The job of this kind that left the routing table blocked and is not running any more (no lease
 * holds it): a rerun resumes it, so routes are never left blocked. undefined when the blocking job
 * is alive, another kind's, or unknown.
 */
export async function leftBlockedBy(ctx: Ctx, topo: Topology, cluster: string, kind: JobKind, leases: readonly LeaseRow[], job: string | null): Promise<string | undefined> {
  if (!job || leases.some((l) => l.jobId === job)) return undefined;
  const ours = await findGzJob(ctx, topo, cluster, kind, job).then(() => true, () => false);
  return ours ? job : undefined;
}

export interface DrcDirectionView { direction: string; state: string; lagMs: number | null; lastError: string | null }

/**
 * A zone switch's DRC preflight, both directions between `from` and `to`: running (the drain
 * waits on from -> to; to -> from carries the new zone's writes back), from -> to within
 * `maxLagMs`. The daemon on this host says state and lag; without one, the newest heartbeat of
 * each zone at the other (its age less one interval) says whether DRC runs and how far behind.
 */
export async function drcPreflight(ctx: Ctx, topo: Topology, cluster: string, from: string, to: string, maxLagMs: number, what: { job: string; holds: string }): Promise<{ views: DrcDirectionView[]; refusals: string[]; daemonHere: boolean }> {
  const drc = new DrcClient(ctx, topo, cluster);
  const daemonHere = await drc.daemonHere().catch(() => false);
  const st = daemonHere ? await drc.daemonStatus().catch(() => null) : null;
  const lags = await drc.lag().catch(() => []);
  const views: DrcDirectionView[] = [];
  const refusals: string[] = [];
  for (const [f, t] of [[from, to], [to, from]] as const) {
    const d = st?.directions.find((x) => x.from === f && x.to === t);
    const hb = lags.find((x) => x.from === f && x.to === t)?.lagMs ?? null;
    const hbLag = hb === null ? null : Math.max(0, hb - DEFAULT_DRC_HEARTBEAT_MS);
    const lagMs = d?.lagMs ?? hbLag;
    views.push({ direction: `${f}->${t}`, state: d?.state ?? (hb === null ? 'unknown' : 'no daemon here'), lagMs, lastError: d?.lastError ?? null });
    if (d) {
      if (d.state === 'error') refusals.push(`DRC ${f}->${t} is stopped on an error: ${d.lastError ?? d.stoppedOn?.reason ?? 'unknown'} (fix it first: the ${what.job} needs it)`);
      else if (d.state === 'paused' || d.state === 'stopped') refusals.push(`DRC ${f}->${t} is ${d.state} (resume it: \`ezctl drc resume\`): ${f === from ? 'the drain waits on it' : `it carries ${to}'s writes back to ${from}`}`);
    } else if (daemonHere) refusals.push(`DRC ${f}->${t} is not a direction of the daemon on this host`);
    else if (hb === null) refusals.push(`no DRC heartbeat of ${f} at ${t}: DRC ${f}->${t} is not running (start it: \`ezctl drc start --detach\`)`);
    if (f === from && lagMs !== null && lagMs > maxLagMs) refusals.push(`DRC ${f}->${t} lags ${lagMs} ms, more than --max-lag ${formatDuration(maxLagMs)}: the drain would keep ${what.holds} blocked that long`);
    if (f === from && d && hbLag !== null && hbLag > maxLagMs && (d.lagMs ?? 0) <= maxLagMs) refusals.push(`the newest DRC heartbeat of ${f} at ${t} is ${hbLag} ms old, more than --max-lag ${formatDuration(maxLagMs)}`);
  }
  return { views, refusals, daemonHere };
}

export type Span = [number, number];
export const spanOf = (t0: number): Span => [t0, Date.now()];

export interface GzWindow {
  /** the block: routes blocked until the source's final position is known (switch: and its writes blocked) */
  blockMs: number | null;
  /** DRC source->target applying the final position (move: and the clients' acks) */
  drainMs: number | null;
  /** the rows verified (and the reverse direction checked) */
  verifyMs: number | null;
  /** the flip: the routes (and the proxies) on the target */
  flipMs: number | null;
  /** from the block's start to the flip's end: writes of the cluster (switch) or of the shards (move) wait or fail meanwhile */
  totalMs: number | null;
  /** when the block began and when the flip began (ISO, this machine's clock): a write that landed
   *  at the target before flippedAt, or at the source after blockedAt, would be one in the wrong place */
  blockedAt: string | null;
  flippedAt: string | null;
}

export type WindowGroups = Record<'block' | 'drain' | 'verify' | 'flip', string[]>;

/** The done details of each step, later events over earlier ones (a resumed step keeps its first span unless it ran again). */
export function doneDetails(j: JobSummary): Map<string, Record<string, unknown>> {
  const done = new Map<string, Record<string, unknown>>();
  for (const e of j.events) if (e.state === 'done') done.set(e.step, { ...(done.get(e.step) ?? {}), ...e.detail });
  return done;
}

/** The window split from the steps' spans: each group from its first step's start to its last step's end. */
export function windowOf(done: Map<string, Record<string, unknown>>, groups: WindowGroups): GzWindow {
  const spans = (names: string[]) => names.map((n) => done.get(n)?.span).filter((s): s is Span => Array.isArray(s) && s.length === 2 && s.every((x) => typeof x === 'number'));
  const ms = (names: string[]) => {
    const s = spans(names);
    if (!s.length) return null;
    return Math.max(...s.map((x) => x[1])) - Math.min(...s.map((x) => x[0]));
  };
  const all = spans([...groups.block, ...groups.drain, ...groups.verify, ...groups.flip]);
  const first = spans(groups.block)[0];
  const lastFlip = spans(groups.flip);
  return {
    blockMs: ms(groups.block),
    drainMs: ms(groups.drain),
    verifyMs: ms(groups.verify),
    flipMs: ms(groups.flip),
    totalMs: first && lastFlip.length && all.length ? Math.max(...lastFlip.map((x) => x[1])) - first[0] : null,
    blockedAt: first ? new Date(first[0]).toISOString() : null,
    flippedAt: lastFlip.length ? new Date(Math.min(...lastFlip.map((x) => x[0]))).toISOString() : null,
  };
}

// ---------------------------------------------------------------- the clients' drain

/**
 * A switch's or move's drain-clients: wait, at most timeoutMs, until every live client following
 * the routing table has acknowledged `version` (it holds its writes, none begun under an older
 * version in flight). Past the bound refused, naming who is behind (the step before is undone);
 * clients not heard from for staleMs are logged as stale, not waited for.
 */
export async function awaitClientAcks(
  ctx: Ctx,
  t: Topology,
  cluster: string,
  version: number,
  sc: Pick<StepContext<unknown>, 'signal' | 'waitingFor' | 'log'>,
  o: { timeoutMs: number; staleMs: number; intervalMs?: number; blocked?: string; hint: string },
): Promise<{ acked: string[]; stale: string[] }> {
  const plural = (n: number) => `${n} client${n === 1 ? '' : 's'}`;
  const w = await waitAcks(ctx, t, cluster, version, {
    timeoutMs: o.timeoutMs,
    staleMs: o.staleMs,
    ...(o.intervalMs !== undefined ? { intervalMs: o.intervalMs } : {}),
    signal: sc.signal,
    onProgress: (x) => sc.waitingFor(`${plural(x.behind.length)} behind version ${version}: ${x.behind.map((b) => `${b.client}@${b.zone} at v${b.version}`).join(', ')}`),
  });
  if (!w.reached) {
    throw refused(`${plural(w.behind.length)} did not acknowledge routing table version ${version}${o.blocked ? ` (${o.blocked} blocked)` : ''} within --client-timeout ${formatDuration(o.timeoutMs)}: ${w.behind.map((b) => `${b.client} (zone ${b.zone}) at version ${b.version}, heard from ${b.ageMs} ms ago`).join('; ')}`, { hint: o.hint });
  }
  if (w.stale.length) sc.log(`stale clients (not heard from for ${formatDuration(o.staleMs)}), not waited for: ${w.stale.join(', ')}`);
  return { acked: w.acked, stale: w.stale };
}

// ---------------------------------------------------------------- the report of a gz job

export interface GzJobReport {
  command: 'switch' | 'move';
  /** plan: no --execute; noop: nothing to do (e.g. --to is the write zone already) */
  mode: 'plan' | 'noop' | 'run' | 'resume' | 'rollback';
  cluster: string;
  from: string | null;
  to: string | null;
  jobId: string | null;
  /** the engine's outcome; 'plan' / 'noop' / 'refused' (preflight) when no job ran */
  outcome: string;
  exitCode: number;
  /** why, in one line, when it did not end done */
  message: string | null;
  refusals: string[];
  window: GzWindow | null;
  /** DRC source->target lag when the block began: the floor of the drain */
  drcLagAtBlockMs: number | null;
  /** the source's GTID position at the block */
  finalPosition: string | null;
  /** the routing table version after the run */
  routesVersion: number;
  steps: Array<{ name: string; does: string; pointOfNoReturn?: boolean; timeoutMs?: number }>;
  result: StepsResult | null;
}

export function stepList<P>(plan: Plan<P>): GzJobReport['steps'] {
  return plan.steps.map((s) => {
    const e: GzJobReport['steps'][number] = { name: s.name, does: s.describe().does };
    if (s.pointOfNoReturn) e.pointOfNoReturn = true;
    if (s.timeoutMs) e.timeoutMs = s.timeoutMs;
    return e;
  });
}

/**
 * What the text reports of gz switch and gz move share after their preflight: nothing to do; when no
 * job ran, the plan's steps and the refusals (`ended`: nothing more to say); else the timeline, the
 * write-unavailable window and the source's final position.
 */
export function renderJobCore(r: GzJobReport, verb: string): { lines: string[]; ended: boolean } {
  const out: string[] = [];
  if (r.mode === 'noop') return { lines: [r.message ?? 'nothing to do'], ended: true };
  if (!r.result) {
    if (r.steps.length) {
      out.push('steps:');
      r.steps.forEach((s, i) => out.push(`  ${i + 1}. ${s.name}${s.pointOfNoReturn ? ' (POINT OF NO RETURN)' : ''}: ${s.does}`));
    }
    if (r.refusals.length) {
      out.push(`refused (${r.refusals.length}):`);
      for (const x of r.refusals) out.push(`  - ${x}`);
    } else if (r.message) out.push(r.message);
    else if (r.mode === 'plan') out.push(`preflight passed; nothing was changed (add --execute to ${verb})`);
    return { lines: out, ended: true };
  }
  out.push(...renderTimelineOf(r.result));
  out.push(...renderWindow(r.window, r.drcLagAtBlockMs));
  if (r.finalPosition !== null) out.push(`final GTID position at the source: ${r.finalPosition || '(empty: nothing written yet)'}`);
  return { lines: out, ended: false };
}

export function renderWindow(w: GzWindow | null, lag: number | null): string[] {
  if (!w) return [];
  const f = (x: number | null) => (x === null ? '-' : `${x} ms`);
  return [`write-unavailable window: ${f(w.totalMs)} (block ${f(w.blockMs)}, drain ${f(w.drainMs)}, verify ${f(w.verifyMs)}, flip ${f(w.flipMs)}); DRC lag at the block ${lag === null ? 'unknown' : `${lag} ms`} (the floor)`];
}

export function renderTimelineOf(r: StepsResult): string[] {
  const out = [`job ${r.jobId} (${r.kind}${r.resumed ? ', resumed' : ''}): ${r.outcome} in ${r.totalMs} ms${r.ponrPassed ? ' (past the point of no return)' : ''}`, 'timeline:'];
  for (const t of r.timeline) out.push(`  +${String(t.startMs).padStart(6)} ms ${String(t.durationMs).padStart(6)} ms  ${t.step}${t.action !== 'do' ? ` (${t.action})` : ''}: ${t.outcome}${t.error ? `: ${t.error}` : ''}`);
  for (const h of r.hooks) out.push(`  hook ${h.hook} (${h.event}): ${h.ok ? 'ok' : `failed: ${h.error}`} ${h.ms} ms`);
  if (r.error && r.outcome !== 'done') {
    out.push(`error: ${r.error.step ? `${r.error.step}: ` : ''}${r.error.message}`);
    if (r.error.hint) out.push(`hint: ${r.error.hint}`);
  }
  return out;
}

// ---------------------------------------------------------------- jobs: leases, journals, driving

/** The lease rows of the cluster in every zone reachable (the unreachable zones named). */
export async function clusterLeases(ctx: Ctx, topo: Topology, cluster: string): Promise<{ rows: LeaseRow[]; unreachable: string[] }> {
  const rows: LeaseRow[] = [];
  const unreachable: string[] = [];
  for (const z of topo.zonesOf(cluster)) {
    const db = await ctx.connect(topo.master(cluster, z)).catch(() => undefined);
    if (!db) {
      unreachable.push(z);
      continue;
    }
    try {
      rows.push(...(await leaseRows(db, z, cluster).catch(() => [])));
    } finally {
      await db.close().catch(() => undefined);
    }
  }
  return { rows, unreachable };
}

/** A dead job of this kind holding the cluster (its lease expired, or its process on this host gone): a rerun resumes it. */
export function deadJobOf(rows: readonly LeaseRow[], kind: JobKind): LeaseRow | undefined {
  const h = here();
  return rows.find((r) => r.target === CLUSTER_TARGET && r.kind === kind && !liveness(r, h).live);
}

/**
 * Every lease in the way of a new gz job, as refusals (a dead job of the same kind is resumed
 * instead, by the caller). A monitor's lease (`emha watch`) is in no switch's way: it excludes only
 * another monitor (seen in a drill: a zone switch refused while the watch ran, and refused for good
 * by the dead watch row left on a master killed under it).
 */
export function leaseRefusals(rows: readonly LeaseRow[]): string[] {
  const h = here();
  return rows.filter((r) => overlaps(r.target, [CLUSTER_TARGET])).map((r) => {
    const l = liveness(r, h);
    return `another job holds the cluster: zone ${r.zone}: ${describeHolder(r)}, ${l.live ? `lease left ${Math.round(l.leftMs / 100) / 10} s` : `dead: ${l.why}; resume or abort it first`})`;
  });
}

/** A gz job's journal and parameters, from any zone's master that has it. */
export async function findGzJob<P>(ctx: Ctx, topo: Topology, cluster: string, kind: JobKind, jobId: string): Promise<{ params: P; summary: JobSummary; node: ResolvedNode }> {
  const tried: string[] = [];
  for (const z of topo.zonesOf(cluster)) {
    const n = topo.master(cluster, z);
    const db = await ctx.connect(n).catch(() => undefined);
    if (!db) {
      tried.push(`${n.name} (unreachable)`);
      continue;
    }
    try {
      const row = await db.value<string | null>(`SELECT detail FROM ${quoteTable(STATE_SCHEMA, 'job_steps')} WHERE job_id = ? AND seq = 1`, [jobId]).catch(() => null);
      if (row) {
        const j = await readJob(await MariaDbJournal.open(db), jobId);
        if (j && j.header.kind === kind) return { params: j.header.params as P, summary: j, node: n };
      }
      tried.push(n.name);
    } finally {
      await db.close().catch(() => undefined);
    }
  }
  throw badInput(`no ${kind} job ${jobId} in the journal of any zone master of cluster ${cluster} (looked at ${tried.join(', ')})`, { hint: '`ezctl jobs` lists the jobs' });
}

export interface Driven {
  result: StepsResult;
  jobId: string;
  summary: JobSummary | undefined;
}

/**
 * Run (or resume, or roll back) a gz plan under the cluster's lease, its journal and lease at
 * `home` (the target zone's master). SIGINT/SIGTERM or a lost lease interrupts it: rolled back
 * before the point of no return, stopped after it; the process waits for that (bounded) before
 * it exits, so a block is never left to die with it when it can be undone.
 */
export async function driveGz<P>(ctx: Ctx, o: { cluster: string; topologyPath: string; kind: JobKind; home: ResolvedNode; mode: 'run' | 'resume' | 'rollback'; jobId?: string; leaseMs?: number; refusals: string[]; plan: (jobId: string) => Plan<P>; close?: () => Promise<void> }): Promise<Driven> {
  const job = await acquirePlanJob(ctx, { cluster: o.cluster, kind: o.kind, node: o.home, mode: o.mode, runPhase: o.kind, ...(o.jobId !== undefined ? { jobId: o.jobId } : {}), ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}), refusals: o.refusals });
  const journalDb = await ctx.connect(o.home);
  try {
    const journal = await MariaDbJournal.open(journalDb);
    const topo = freshTopology(o.topologyPath);
    const hooks = hookRunner(hooksFromTopology(topo.file, topo.dir, o.cluster));
    const plan = o.plan(job.id);
    const result = await runPlanUnderJob(job, plan, o.mode, { journal, hooks, log: (m: string) => ctx.log.info(m) });
    const summary = await readJob(journal, job.id).catch(() => undefined);
    return { result, jobId: job.id, summary };
  } finally {
    await o.close?.().catch(() => undefined);
    await journalDb.close().catch(() => undefined);
  }
}
