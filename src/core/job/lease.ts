// The lease arithmetic and the rules of who may hold what, kept pure (no server) so they are
// unit-tested: how often a lease is renewed, when a job that cannot renew stops itself, whether a
// holder is alive, and whether a new job may take a target.
import { formatDuration } from '../throttle/duration.js';

/**
 * 30 s: a job that died on another host is found (and can be resumed) within 30 s, while a live
 * one rides out about 20 s without its server (two missed renewals, every 10 s) before it stops
 * itself; a renewal is one UPDATE per zone every 10 s. orchestrator's and Consul's session
 * defaults are of the same order (tens of seconds).
 */
export const DEFAULT_LEASE_MS = 30_000;
export const MIN_LEASE_MS = 3_000;
export const MAX_LEASE_MS = 600_000;

/** The target of a job that holds the whole cluster (a master or zone switch). */
export const CLUSTER_TARGET = 'cluster';

/**
 * A monitor's target (`emha watch` holds 'monitor:emha-watch'): it excludes only another monitor
 * on the very same target, never a job on the cluster or a table. The monitor itself starts the
 * failover (a cluster job) it exists for, and a planned switch must not wait for it to end.
 */
export const MONITOR_PREFIX = 'monitor:';
/**
 * A change feed's target (`drc feed` holds 'feed:<name>'): a reader like a monitor, it excludes
 * only another feed of that name. A master switch in its zone is what it must follow, not wait for.
 */
export const FEED_PREFIX = 'feed:';
export const isMonitorTarget = (t: string) => t.startsWith(MONITOR_PREFIX) || t.startsWith(FEED_PREFIX);

export const JOB_KINDS = ['osc', 'migrate-int2bigint', 'migrate-drc-ts', 'check-full', 'repair', 'emha-switch', 'emha-failover', 'emha-watch', 'gz-switch', 'gz-move', 'dbus', 'dbus-cutover', 'drc-feed'] as const;
export type JobKind = (typeof JOB_KINDS)[number];
export type JobStatus = 'running' | 'done' | 'failed' | 'aborted';

export interface LeaseTimings {
  /** a renewal is sent this often */
  renewEveryMs: number;
  /** the job checks its own deadline this often (renewals may hang: it must not wait for them) */
  checkEveryMs: number;
  /**
   * a job whose last successful renewal was SENT this long ago stops itself: the server counts
   * the lease from when it ran the renewal, later than it was sent, so the lease still holds for
   * a third of its length, time to stop the job's work before anyone may take it over
   */
  stopAfterMs: number;
}

export function leaseTimings(leaseMs: number): LeaseTimings {
  return { renewEveryMs: Math.floor(leaseMs / 3), checkEveryMs: Math.floor(leaseMs / 6), stopAfterMs: Math.floor((leaseMs * 2) / 3) };
}

/** Whether a job that last renewed (the request sent at `lastSentAt`) must stop itself at `now` (both local monotonic ms). */
export function mustStop(lastSentAt: number, now: number, leaseMs: number): boolean {
  return now - lastSentAt >= leaseTimings(leaseMs).stopAfterMs;
}

/** A lease row as read from one zone, with the server's view of time. */
export interface LeaseRow {
  zone: string;
  cluster: string;
  target: string;
  jobId: string;
  holder: string;
  host: string;
  pid: number;
  /** expires_at - NOW(3) on that server, in ms (negative: expired that long ago) */
  leftMs: number;
  /** of the job, for messages (from its row, when there) */
  kind?: string;
  phase?: string;
}

export interface Here {
  host: string;
  pidAlive: (pid: number) => boolean;
}

export type Liveness = { live: true; leftMs: number } | { live: false; why: string };

/**
 * A holder is alive while its lease has time left by its server's clock, unless it ran on this
 * very host and its process is gone (then it is dead at once: a kill -9 here need not wait for
 * the lease, as `osc cleanup` judges a plan probe's process).
 */
export function liveness(row: Pick<LeaseRow, 'leftMs' | 'host' | 'pid'>, here: Here): Liveness {
  if (row.leftMs <= 0) return { live: false, why: `lease expired ${formatDuration(-row.leftMs)} ago` };
  if (row.host === here.host && !here.pidAlive(row.pid)) return { live: false, why: `its process ${row.pid} on this host is gone` };
  return { live: true, leftMs: row.leftMs };
}

/** Whether a lease on `held` stands in the way of a job wanting `wanted`: the same target, or either of them the whole cluster (a monitor's: only the same target). */
export function overlaps(held: string, wanted: readonly string[]): boolean {
  if (isMonitorTarget(held) || wanted.some(isMonitorTarget)) return wanted.includes(held);
  return held === CLUSTER_TARGET || wanted.includes(CLUSTER_TARGET) || wanted.includes(held);
}

export function describeHolder(r: LeaseRow): string {
  return `${r.kind ?? 'job'} job ${r.jobId} on ${r.target} (host ${r.host}, pid ${r.pid}${r.phase ? `, phase ${r.phase}` : ''}`;
}

export type AcquireDecision =
  | { ok: true; takeOver?: string }
  | { ok: false; live: boolean; reason: string; holder: LeaseRow };

/**
 * May a job take `targets` given the leases read (every zone, locked)? A live holder refuses it;
 * a dead one too, unless the job resumes (takes over) that very job: then its id is returned. A
 * job's own rows (resumeOf) never stand in its way.
 */
export function decideAcquire(rows: readonly LeaseRow[], req: { targets: readonly string[]; resume: boolean; kind?: string }, here: Here): AcquireDecision {
  const inWay = rows.filter((r) => overlaps(r.target, req.targets));
  for (const r of inWay) {
    const l = liveness(r, here);
    if (l.live) {
      return { ok: false, live: true, holder: r, reason: `zone ${r.zone}: ${r.target} is held by ${describeHolder(r)}, lease left ${formatDuration(l.leftMs)})` };
    }
  }
  const dead = inWay.map((r) => ({ r, why: (liveness(r, here) as { why: string }).why }));
  if (!dead.length) return { ok: true };
  const ids = [...new Set(dead.map((d) => d.r.jobId))];
  const first = dead[0]!;
  const name = `${describeHolder(first.r)}, dead: ${first.why})`;
  if (!req.resume) return { ok: false, live: false, holder: first.r, reason: `zone ${first.r.zone}: ${first.r.target} is held by ${name}` };
  if (ids.length > 1) return { ok: false, live: false, holder: first.r, reason: `zone ${first.r.zone}: the targets are held by several dead jobs (${ids.join(', ')}); abort all but one first` };
  // a dead job of another kind is a different job: a repair never takes over a dead osc
  const other = dead.find((d) => req.kind !== undefined && d.r.kind !== undefined && d.r.kind !== req.kind);
  if (other) return { ok: false, live: false, holder: other.r, reason: `zone ${other.r.zone}: ${other.r.target} is held by ${describeHolder(other.r)}, dead: ${other.why}), not a ${req.kind} job` };
  // a dead job on something else (the whole cluster, for a job on one table) is a different job
  if (dead.some((d) => !req.targets.includes(d.r.target))) {
    return { ok: false, live: false, holder: first.r, reason: `zone ${first.r.zone}: ${first.r.target} is held by ${name}, not a job on ${req.targets.join(', ')}` };
  }
  return { ok: true, takeOver: ids[0]! };
}

/** A job's progress as stored (JSON): what every kind reports; a kind may add its own fields. */
export interface JobProgress {
  rows?: number;
  /** 0..100 */
  pct?: number;
  /** seconds left, estimated */
  etaS?: number;
  [k: string]: unknown;
}

/** rows done of a total estimate, over elapsed ms: pct and eta (none while nothing is known). */
export function progressOf(rows: number, total: number, elapsedMs: number): JobProgress {
  const out: JobProgress = { rows };
  if (total > 0) {
    out.pct = Math.min(100, Math.round((rows / total) * 1000) / 10);
    if (rows > 0 && rows < total && elapsedMs > 0) out.etaS = Math.round(((total - rows) * elapsedMs) / rows / 1000);
  }
  return out;
}
