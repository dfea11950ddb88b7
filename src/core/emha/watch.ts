// `ezctl emha watch`: a long-running monitor of one cluster, one per cluster (a job lease on
// 'monitor:emha-watch', which excludes only another watch: the failover it starts and a planned
// switch are cluster jobs it must not stand in the way of). Every interval it reads the topology
// file anew (its own edits, a failover's, an operator's), asks each zone's master from every
// vantage point (detect.ts), and compares each live zone with the file (drift.ts). A master seen
// dead twice in a row is failed over with --execute (or alerted); drift seen twice in a row is
// repaired with --execute (or reported), never while another job holds the cluster (a switch in
// flight looks like drift for a moment). Each event is one line: a JSON document with --json.
import { join } from 'node:path';
import type { Ctx } from '../context.js';
import { loadTopology, type Topology } from '../config/load.js';
import { acquireJob, liveHolders, describeLive, type JobHandle } from '../job/job.js';
import { CLUSTER_TARGET, MONITOR_PREFIX } from '../job/lease.js';
import { command, jobKind, sendJob, serveJob } from '../control/commands.js';
import { onInterrupt } from '../signals.js';
import { badInput } from '../exit.js';
import { assessMaster, openBounded, DEFAULT_ASSESS_TIMEOUT_MS, type MasterAssessment } from './detect.js';
import { applyDrift, driftKey, observeZone, planDrift, REPAIRABLE, URGENT, type Drift } from './drift.js';
import type { Db } from '../db/connect.js';
import { emhaFailover, failoverError, type FailoverReport } from './failover.js';

export const WATCH_TARGET = `${MONITOR_PREFIX}emha-watch`;
/** consecutive looks that must agree before the watch acts (a dead master, a drift) */
export const CONFIRMATIONS = 2;
export const DEFAULT_DRIFT_GRACE_MS = 5000;
/** after a failover that failed, the zone is left to the operator this long before another try */
const FAILOVER_RETRY_MS = 60_000;

export interface WatchEvent {
  at: string;
  cluster: string;
  zone?: string;
  event:
    | 'started' | 'stopped'
    | 'master-unreachable' | 'master-dead-suspected' | 'master-dead' | 'master-alive'
    | 'failover-alert' | 'failover-started' | 'failover-done' | 'failover-failed'
    | 'drift' | 'drift-repaired' | 'drift-repair-failed' | 'drift-gone' | 'drift-held'
    | 'lease-lost' | 'lease-taken' | 'error';
  message: string;
  [k: string]: unknown;
}

export interface WatchStatus {
  cluster: string;
  pid: number;
  jobId: string | null;
  execute: boolean;
  intervalMs: number;
  startedAt: string;
  ticks: number;
  /** each zone's last assessment */
  zones: Array<{ zone: string; master: string; verdict: MasterAssessment['verdict'] | 'not yet'; deadLooks: number; tookMs: number }>;
  /** drift seen at the last look, not repaired (yet) */
  drift: Drift[];
  events: number;
  stopping: boolean;
}

export interface WatchOptions {
  cluster?: string;
  execute: boolean;
  intervalMs: number;
  /** per connection and query of each look (default 2 s) */
  timeoutMs?: number;
  /** MHA's config folder to keep current (default <stateDir>/mha, when `emha mha-config --out` wrote it there) */
  mhaDir?: string;
  leaseMs?: number;
  /** drift must last this long (and two looks) before it is repaired: an operator's switch by hand takes a few statements (default 5 s) */
  driftGraceMs?: number;
  /** end after this long (drills and tests; default: until stopped) */
  forMs?: number;
  /**
   * The failover of a zone whose master is dead (part M4's `emha failover`, run with --execute).
   * Default: runFailover (part M4's emhaFailover).
   */
  failover?: (ctx: Ctx, o: { cluster: string; zone: string; probeTimeoutMs?: number; antiFlapMs?: number }) => Promise<unknown>;
  /** the failover's --anti-flap (default: emha failover's) */
  antiFlapMs?: number;
}

/** The zone's failover as `emha failover --execute` runs it (its own lease, journal, anti-flap); throws when it did not end done. */
export async function runFailover(ctx: Ctx, o: { cluster: string; zone: string; probeTimeoutMs?: number; antiFlapMs?: number }): Promise<FailoverReport> {
  const r = await emhaFailover(ctx, {
    cluster: o.cluster, zone: o.zone, execute: true,
    ...(o.probeTimeoutMs ? { probeTimeoutMs: o.probeTimeoutMs } : {}), ...(o.antiFlapMs !== undefined ? { antiFlapMs: o.antiFlapMs } : {}),
  });
  const e = failoverError(r);
  if (e) throw e;
  return r;
}

/** A context whose topology is the file as it is now (ctx.topology() is read once per process). */
function freshCtx(ctx: Ctx, path: string): Ctx {
  return { ...ctx, topology: () => Promise.resolve(loadTopology(path)) };
}

export interface WatchReport {
  cluster: string;
  execute: boolean;
  ticks: number;
  events: number;
  failovers: number;
  repaired: number;
  stoppedBy: 'stop' | 'signal' | 'time';
}

export const watchJob = jobKind('emha watch', {
  status: command<WatchStatus>()('each zone\'s last assessment, drift not repaired, events so far'),
  stop: command<WatchStatus>()('end the watch after the look under way'),
});

export function watchSocketPath(topo: Topology, cluster: string): string {
  return join(topo.stateDir(), `emha-watch-${cluster}.sock`);
}

/** `ezctl emha watch-status|watch-stop`: one request to the cluster's running watch on this host. */
export async function watchControl(ctx: Ctx, o: { cluster?: string; cmd: 'status' | 'stop' }): Promise<WatchStatus> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster).name;
  return sendJob({ kind: watchJob, path: watchSocketPath(topo, cluster), job: `emha watch of cluster ${cluster}`, fix: `start one with \`ezctl emha watch --cluster ${cluster}\`` }, o.cmd);
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

interface ZoneState {
  deadLooks: number;
  last: MasterAssessment | undefined;
  /** the verdict last said in an event */
  said: MasterAssessment['verdict'] | undefined;
  failedAt: number;
}

export async function watch(ctx: Ctx, o: WatchOptions, emit: (e: WatchEvent) => void): Promise<WatchReport> {
  if (!(o.intervalMs >= 100)) throw badInput(`--interval ${o.intervalMs} ms is too short: 100 ms at least`);
  const first = await ctx.topology();
  const path = first.path;
  const cluster = first.cluster(o.cluster).name;
  const timeoutMs = o.timeoutMs ?? DEFAULT_ASSESS_TIMEOUT_MS;
  const started = Date.now();
  const stop = new AbortController();
  let stoppedBy = 'stop' as WatchReport['stoppedBy'];
  let events = 0;
  let ticks = 0;
  let failovers = 0;
  let repaired = 0;
  const say = (e: Omit<WatchEvent, 'at' | 'cluster'>) => {
    events++;
    emit({ at: new Date().toISOString(), cluster, ...e } as WatchEvent);
  };
  const zones = new Map<string, ZoneState>();
  const driftLooks = new Map<string, number>();
  const driftSince = new Map<string, number>();
  const graceMs = o.driftGraceMs ?? DEFAULT_DRIFT_GRACE_MS;
  let drifts: Drift[] = [];
  let loadError = '';
  let topo = first;

  // the lease, in every zone whose master answers now (a dead one cannot hold it, and must not
  // keep the watch from starting: finding it is the watch's work)
  let job: JobHandle | undefined;
  /** the masters (zone -> node name) the lease is held on */
  let leaseOn = new Map<string, string>();
  const takeLease = async (t: Topology, first: boolean): Promise<void> => {
    const live: Array<{ zone: string; node: ReturnType<Topology['master']> }> = [];
    await Promise.all(t.zonesOf(cluster).map(async (zone) => {
      const node = t.master(cluster, zone);
      let db: Db | undefined;
      try {
        db = await openBounded(ctx, node, timeoutMs, stop.signal);
        live.push({ zone, node });
      } catch {
        /* not this zone */
      } finally {
        db?.conn.destroy();
      }
    }));
    if (!live.length) {
      // finding a dead master is the watch's work: it starts anyway, held apart from another watch on
      // this host by its control socket only, and takes the lease once a master answers
      if (first) say({ event: 'lease-lost', message: `no master of cluster ${cluster} answers: no lease held (only this host's control socket keeps a second watch out); taken once a master answers` });
      return;
    }
    try {
      job = await acquireJob(ctx, { cluster, kind: 'emha-watch', targets: [WATCH_TARGET], zones: live, resume: true, phase: 'watch', unlogged: true, ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}), controlSocket: watchSocketPath(t, cluster) });
    } catch (e) {
      if (first) throw e;
      return;
    }
    leaseOn = new Map(live.map((l) => [l.zone, l.node.name]));
    say({ event: 'lease-taken', message: `lease ${WATCH_TARGET} held in ${live.map((l) => l.zone).join(', ')} (job ${job.id})`, jobId: job.id, zones: live.map((l) => l.zone) });
    const mine = job;
    mine.signal.addEventListener('abort', () => {
      const lost = mine;
      if (job === mine) job = undefined;
      say({ event: 'lease-lost', message: `${(lost?.signal.reason as Error | undefined)?.message ?? 'lease lost'}; the watch goes on and takes it again where the masters answer`, jobId: lost?.id });
      void lost?.fail(lost.signal.reason, 'failed').catch(() => undefined);
    }, { once: true });
  };
  await takeLease(topo, true);

  const status = (): WatchStatus => ({
    cluster, pid: process.pid, jobId: job?.id ?? null, execute: o.execute, intervalMs: o.intervalMs, startedAt: new Date(started).toISOString(), ticks,
    zones: topo.zonesOf(cluster).map((zone) => {
      const s = zones.get(zone);
      return { zone, master: topo.master(cluster, zone).name, verdict: s?.last?.verdict ?? 'not yet', deadLooks: s?.deadLooks ?? 0, tookMs: s?.last?.tookMs ?? 0 };
    }),
    drift: drifts, events, stopping: stop.signal.aborted,
  });
  let server;
  try {
    server = await serveJob(watchSocketPath(topo, cluster), watchJob, {
      status,
      stop: () => {
        stoppedBy = 'stop';
        stop.abort();
        return status();
      },
    });
  } catch (e) {
    await job?.release().catch(() => undefined);
    throw e;
  }
  const offInt = onInterrupt(async () => {
    stoppedBy = 'signal';
    stop.abort();
    await job?.finish('aborted', 'interrupted (SIGINT/SIGTERM)').catch(() => undefined);
    server?.close();
  });
  const timer = o.forMs ? setTimeout(() => {
    stoppedBy = 'time';
    stop.abort();
  }, o.forMs) : undefined;
  say({ event: 'started', message: `watching cluster ${cluster} (${topo.zonesOf(cluster).join(', ')}) every ${o.intervalMs} ms${o.execute ? ', failing over and repairing drift (--execute)' : ', alerting only (no --execute)'}`, execute: o.execute, jobId: job?.id ?? null });

  try {
    while (!stop.signal.aborted) {
      const t0 = Date.now();
      ticks++;
      try {
        topo = loadTopology(path);
        loadError = '';
      } catch (e) {
        // said once while it lasts, not at every look
        if ((e as Error).message !== loadError) say({ event: 'error', message: `the topology file does not load (${(e as Error).message}); the last good one is used` });
        loadError = (e as Error).message;
      }
      // a zone's master changed (a failover, a switch, a drift repaired), or a zone without the lease
      // (its master was down) has one that answers again: the lease follows, or a second watch asking
      // only the file's masters would find none
      const moved = [...leaseOn].some(([zone, name]) => topo.zonesOf(cluster).includes(zone) && topo.master(cluster, zone).name !== name);
      const back = topo.zonesOf(cluster).some((zone) => !leaseOn.has(zone) && zones.get(zone)?.last?.verdict === 'alive' && zones.get(zone)?.last?.master === topo.master(cluster, zone).name);
      if (job && (moved || back)) {
        const old = job;
        job = undefined;
        await old.finish('done').catch(() => undefined);
      }
      if (!job) await takeLease(topo, false);
      const names = topo.zonesOf(cluster);
      const looks = await Promise.all(names.map((zone) => assessMaster(ctx, topo, cluster, zone, { connectTimeoutMs: timeoutMs, tries: 2, signal: stop.signal })));
      if (stop.signal.aborted) break;
      const alive: string[] = [];
      for (const a of looks) {
        const s = zones.get(a.zone) ?? { deadLooks: 0, last: undefined, said: undefined, failedAt: 0 };
        zones.set(a.zone, s);
        s.last = a;
        s.deadLooks = a.verdict === 'dead' ? s.deadLooks + 1 : 0;
        const base = { zone: a.zone, master: a.master, verdict: a.verdict, vantages: a.vantages, tookMs: a.tookMs };
        if (a.verdict === 'alive') {
          alive.push(a.zone);
          if (s.said && s.said !== 'alive') say({ event: 'master-alive', message: `${a.zone}: master ${a.master} answers again`, ...base });
          s.said = 'alive';
        } else if (a.verdict === 'unreachable') {
          if (s.said !== 'unreachable') say({ event: 'master-unreachable', message: `${a.zone}: master ${a.master} does not answer ezctl, but ${describeOthers(a)}: not dead, no failover`, ...base });
          s.said = 'unreachable';
        } else if (s.deadLooks < CONFIRMATIONS) {
          say({ event: 'master-dead-suspected', message: `${a.zone}: master ${a.master} looks dead (${describeOthers(a)}); look ${s.deadLooks} of ${CONFIRMATIONS}`, ...base, looks: s.deadLooks });
        } else if (s.deadLooks === CONFIRMATIONS || (o.execute && s.failedAt > 0 && Date.now() - s.failedAt >= FAILOVER_RETRY_MS)) {
          s.said = 'dead';
          if (s.deadLooks === CONFIRMATIONS) say({ event: 'master-dead', message: `${a.zone}: master ${a.master} is dead, confirmed by ${CONFIRMATIONS} looks ${o.intervalMs} ms apart from ${a.vantages.length} vantage points`, ...base });
          if (!o.execute) {
            say({ event: 'failover-alert', message: `${a.zone}: no --execute: fail over with \`ezctl emha failover --cluster ${cluster} --zone ${a.zone} --execute\``, zone: a.zone });
          } else {
            say({ event: 'failover-started', message: `${a.zone}: failing over from ${a.master}`, zone: a.zone });
            const t = Date.now();
            try {
              const r = await (o.failover ?? runFailover)(freshCtx(ctx, path), { cluster, zone: a.zone, probeTimeoutMs: timeoutMs, ...(o.antiFlapMs !== undefined ? { antiFlapMs: o.antiFlapMs } : {}) });
              failovers++;
              s.failedAt = 0;
              const f = r as Partial<FailoverReport>;
              say({ event: 'failover-done', message: `${a.zone}: failover done in ${Date.now() - t} ms${f.candidate ? `: ${f.candidate.name} is the master` : ''}`, zone: a.zone, ms: Date.now() - t, jobId: f.jobId, newMaster: f.candidate?.name, lost: f.lost });
            } catch (e) {
              s.failedAt = Date.now();
              say({ event: 'failover-failed', message: `${a.zone}: failover failed (${(e as Error).message}); tried again in ${FAILOVER_RETRY_MS / 1000} s if still dead`, zone: a.zone, hint: (e as { hint?: string }).hint });
            }
          }
        }
      }
      if (stop.signal.aborted) break;
      // drift, in the zones whose master answers
      const seen: Drift[] = [];
      const all = topo.nodes(cluster);
      const obs = await Promise.all(alive.map((zone) => observeZone(ctx, topo, cluster, zone, { timeoutMs, signal: stop.signal })));
      for (const z of obs) seen.push(...planDrift(z, all));
      const keys = new Set(seen.map(driftKey));
      for (const d of drifts) if (!keys.has(driftKey(d))) say({ event: 'drift-gone', message: `${d.zone}: no longer: ${d.detail}`, zone: d.zone, drift: d });
      for (const k of [...driftLooks.keys()]) {
        if (keys.has(k)) continue;
        driftLooks.delete(k);
        driftSince.delete(k);
      }
      const before = new Set(drifts.map(driftKey));
      for (const d of seen) {
        const k = driftKey(d);
        driftLooks.set(k, (driftLooks.get(k) ?? 0) + 1);
        if (!driftSince.has(k)) driftSince.set(k, Date.now());
        if (!before.has(k)) say({ event: 'drift', message: `${d.zone}: ${d.kind}: ${d.detail}${REPAIRABLE.has(d.kind) ? (o.execute ? '' : ' (reported only: no --execute)') : ''}`, zone: d.zone, drift: d });
      }
      drifts = seen;
      if (o.execute && !stop.signal.aborted) {
        const due = seen.filter((d) => REPAIRABLE.has(d.kind) && (driftLooks.get(driftKey(d)) ?? 0) >= CONFIRMATIONS && (URGENT.has(d.kind) || Date.now() - (driftSince.get(driftKey(d)) ?? Date.now()) >= graceMs));
        if (due.length) {
          const holder = await clusterHeld(ctx, topo, cluster, alive, timeoutMs, stop.signal);
          if (holder) {
            for (const d of due) say({ event: 'drift-held', message: `${d.zone}: ${d.kind} not repaired while ${holder}`, zone: d.zone, drift: d });
          } else {
            // one change per zone per look: the next look judges the rest against the file as it is then
            const done = new Set<string>();
            for (const d of due) {
              if (done.has(d.zone) || (d.kind === 'replica-moved' && done.has(d.toZone))) continue;
              done.add(d.zone);
              const r = await applyDrift(ctx, topo, cluster, d, o.mhaDir ? { mhaDir: o.mhaDir } : {});
              topo = r.topology;
              if (r.change.error) say({ event: 'drift-repair-failed', message: `${d.zone}: ${d.kind} not repaired: ${r.change.error}${r.change.done.length ? ` (done before: ${r.change.done.join('; ')})` : ''}`, zone: d.zone, drift: d, done: r.change.done });
              else {
                repaired++;
                say({ event: 'drift-repaired', message: `${d.zone}: ${d.kind} repaired: ${r.change.done.join('; ')}`, zone: d.zone, drift: d, done: r.change.done });
              }
              driftLooks.delete(driftKey(d));
              driftSince.delete(driftKey(d));
            }
          }
        }
      }
      job?.progress({ ticks, events, failovers, repaired, verdicts: Object.fromEntries([...zones].map(([z, s]) => [z, s.last?.verdict])) });
      await sleep(o.intervalMs - (Date.now() - t0), stop.signal);
    }
  } finally {
    if (timer) clearTimeout(timer);
    offInt();
    server?.close();
    if (stoppedBy !== 'signal') await job?.finish('done').catch(() => undefined);
  }
  say({ event: 'stopped', message: `watch of ${cluster} ended (${stoppedBy === 'stop' ? 'asked to stop' : stoppedBy === 'time' ? '--for elapsed' : 'signal'}) after ${ticks} looks`, stoppedBy });
  return { cluster, execute: o.execute, ticks, events, failovers, repaired, stoppedBy };
}

function describeOthers(a: MasterAssessment): string {
  const others = a.vantages.filter((v) => v.from !== 'ezctl');
  if (!others.length) return 'the zone has no replica to ask';
  return others.map((v) => `${v.from} ${v.sees === 'alive' ? 'still reads from it' : v.sees === 'unreachable' ? 'lost it' : 'cannot tell'}`).join(', ');
}

/** Another job holds the cluster (a switch, a failover): its moves are not drift. */
async function clusterHeld(ctx: Ctx, topo: Topology, cluster: string, zones: string[], timeoutMs: number, signal: AbortSignal): Promise<string | undefined> {
  const dbs: Array<{ zone: string; db: Db }> = [];
  try {
    for (const zone of zones) dbs.push({ zone, db: await openBounded(ctx, topo.master(cluster, zone), timeoutMs, signal) });
    const [r] = await liveHolders(dbs, cluster, [CLUSTER_TARGET]);
    return r ? describeLive(r) : undefined;
  } catch (e) {
    return `the cluster's leases could not be read (${(e as Error).message})`;
  } finally {
    for (const { db } of dbs) db.conn.destroy();
  }
}

export function renderWatchEvent(e: WatchEvent): string {
  return `${e.event}: ${e.message}`;
}

export function renderWatchStatus(s: WatchStatus): string {
  const lines = [`emha watch of ${s.cluster}: pid ${s.pid}, job ${s.jobId ?? '(no lease now)'}, ${s.execute ? '--execute' : 'alert only'}, every ${s.intervalMs} ms, ${s.ticks} looks, ${s.events} events${s.stopping ? ', stopping' : ''}`];
  for (const z of s.zones) lines.push(`  ${z.zone.padEnd(8)} ${z.master.padEnd(16)} ${z.verdict}${z.deadLooks ? ` (${z.deadLooks} dead looks)` : ''} ${z.tookMs} ms`);
  for (const d of s.drift) lines.push(`  drift ${d.zone}: ${d.kind}: ${d.detail}`);
  return lines.join('\n');
}

export function renderWatchReport(r: WatchReport): string {
  return `watch of ${r.cluster} ended (${r.stoppedBy}): ${r.ticks} looks, ${r.events} events, ${r.failovers} failovers, ${r.repaired} drifts repaired`;
}
