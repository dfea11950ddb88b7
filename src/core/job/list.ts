// `ezctl jobs`: the jobs of the topology's clusters, read from every zone master and merged by
// id (each zone keeps its own row: DRC does not carry `_ezctl`). Works from any host.
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import type { ResolvedNode } from '../config/load.js';
import { quoteTable } from '../db/quote.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { here, leaseRows } from './job.js';
import { liveness, type Here, type JobProgress, type LeaseRow } from './lease.js';

/** One zone's row of a job, as stored. */
export interface JobRow {
  id: string;
  cluster: string;
  kind: string;
  target: string;
  targets: string[];
  zones: string[];
  phase: string;
  status: string;
  host: string;
  pid: number;
  user: string;
  leaseMs: number;
  startedAt: string;
  resumedAt: string | null;
  updatedAt: string;
  finishedAt: string | null;
  progress: JobProgress | null;
  lastError: string | null;
  controlSocket: string | null;
}

/** running: a live lease; stopped: unfinished with no live lease (its process died: --resume or abort). */
export type JobState = 'running' | 'stopped' | 'done' | 'failed' | 'aborted';

export interface JobView extends Omit<JobRow, 'status'> {
  state: JobState;
  /** the least time left on its leases (running), or why it is dead (stopped) */
  lease: { leftMs: number } | { dead: string } | null;
  /** zones whose master has its row */
  seenIn: string[];
  /** zones it touches whose row is missing (or whose master could not be read) */
  missingIn: string[];
}

export interface JobsReport {
  clusters: string[];
  all: boolean;
  jobs: JobView[];
  /** zones that could not be read (exit 3) */
  errors: Array<{ cluster: string; zone: string; error: string }>;
}

export interface ZoneRead {
  cluster: string;
  zone: string;
  jobs: JobRow[];
  leases: LeaseRow[];
}

/**
 * Merge what every zone says: one view per job id, its fields from the row updated last, its lease
 * state from every zone's lease rows (the least time left; dead as soon as any is dead).
 * Without `all`: running and stopped jobs, and a failed one while it is the last job on its target.
 */
export function mergeJobs(reads: readonly ZoneRead[], o: { all: boolean; here: Here; unreadable?: ReadonlyArray<{ cluster: string; zone: string }> }): JobView[] {
  const byId = new Map<string, { rows: Array<{ zone: string; row: JobRow }>; leases: LeaseRow[] }>();
  for (const r of reads) {
    for (const row of r.jobs) {
      const e = byId.get(row.id) ?? { rows: [], leases: [] };
      e.rows.push({ zone: r.zone, row });
      byId.set(row.id, e);
    }
  }
  for (const r of reads) for (const l of r.leases) byId.get(l.jobId)?.leases.push(l);
  const views: JobView[] = [];
  for (const [, e] of byId) {
    const latest = e.rows.reduce((a, b) => (b.row.updatedAt > a.row.updatedAt ? b : a)).row;
    const seenIn = e.rows.map((x) => x.zone).sort((a, b) => zoneOrder(latest.zones, a) - zoneOrder(latest.zones, b) || (a < b ? -1 : 1));
    const missingIn = latest.zones.filter((z) => !seenIn.includes(z));
    let state: JobState;
    let lease: JobView['lease'] = null;
    if (latest.status === 'running') {
      const judged = e.leases.map((l) => liveness(l, o.here));
      const dead = judged.find((j) => !j.live) as { why: string } | undefined;
      if (!judged.length) {
        state = 'stopped';
        lease = { dead: 'it holds no lease (ended without recording how)' };
      } else if (dead) {
        state = 'stopped';
        lease = { dead: dead.why };
      } else {
        state = 'running';
        lease = { leftMs: Math.min(...judged.map((j) => (j as { leftMs: number }).leftMs)) };
      }
    } else {
      state = (['done', 'failed', 'aborted'] as const).find((s) => s === latest.status) ?? 'failed';
    }
    const { status: _status, ...rest } = latest;
    views.push({ ...rest, state, lease, seenIn, missingIn });
  }
  // the last job on each target: a failure stays listed until a later job on its target
  const lastOn = new Map<string, string>();
  for (const v of views) {
    const k = `${v.cluster}\0${v.target}`;
    const cur = lastOn.get(k);
    if (!cur || views.find((x) => x.id === cur)!.startedAt < v.startedAt) lastOn.set(k, v.id);
  }
  const shown = o.all ? views : views.filter((v) => v.state === 'running' || v.state === 'stopped' || (v.state === 'failed' && lastOn.get(`${v.cluster}\0${v.target}`) === v.id));
  const rank: Record<JobState, number> = { running: 0, stopped: 1, failed: 2, aborted: 3, done: 4 };
  return shown.sort((a, b) => rank[a.state] - rank[b.state] || (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
}

const zoneOrder = (zones: string[], z: string) => (zones.includes(z) ? zones.indexOf(z) : zones.length);

/**
 * A place jobs keep their rows besides the clusters' zone masters: a D-Bus move's target instance
 * (any server, not a cluster's), holding the jobs whose `cluster` column is `cluster` there.
 */
export interface JobPlace {
  /** the `cluster` column its jobs have there ('dbus', 'dbus-cut:<move>') */
  cluster: string;
  /** the `zone` its lease rows name (the move's target label) */
  zone: string;
  node: ResolvedNode;
}

export async function listJobs(ctx: Ctx, o: { cluster?: string; all?: boolean; places?: JobPlace[] }): Promise<JobsReport> {
  const topo = await ctx.topology();
  const places = (o.places ?? []).filter((p) => !o.cluster || p.cluster === o.cluster);
  const clusters = o.cluster && places.length ? [] : o.cluster ? [topo.cluster(o.cluster).name] : topo.clusterNames;
  const reads: ZoneRead[] = [];
  const errors: JobsReport['errors'] = [];
  const read = async (cluster: string, zone: string, node: () => ResolvedNode) => {
    let db: Db | undefined;
    try {
      db = await ctx.connect(node());
      reads.push(await readZone(db, cluster, zone));
    } catch (e) {
      errors.push({ cluster, zone, error: (e as Error).message });
    } finally {
      await db?.close().catch(() => undefined);
    }
  };
  await Promise.all([
    ...clusters.flatMap((cluster) => topo.zonesOf(cluster).map((zone) => read(cluster, zone, () => topo.master(cluster, zone)))),
    ...places.map((p) => read(p.cluster, p.zone, () => p.node)),
  ]);
  const named = [...clusters, ...new Set(places.map((p) => p.cluster))];
  return { clusters: named, all: !!o.all, jobs: mergeJobs(reads, { all: !!o.all, here: here() }), errors };
}

export async function readZone(db: Db, cluster: string, zone: string): Promise<ZoneRead> {
  const there = Number(await db.value('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?)', [STATE_SCHEMA, 'jobs', 'job_leases']));
  if (there < 2) return { cluster, zone, jobs: [], leases: [] };
  // every job, finished ones too: a failure is listed only while no later job on its target ran (the merge decides)
  const rows = await db.query<Record<string, unknown>>(
    `SELECT id, cluster, kind, target, targets, zones, phase, status, host, pid, user, lease_ms AS leaseMs,
            CAST(started_at AS CHAR) AS startedAt, CAST(resumed_at AS CHAR) AS resumedAt, CAST(updated_at AS CHAR) AS updatedAt,
            CAST(finished_at AS CHAR) AS finishedAt, progress, last_error AS lastError, control_socket AS controlSocket
       FROM ${quoteTable(STATE_SCHEMA, 'jobs')} WHERE cluster = ? ORDER BY started_at DESC LIMIT 1000`,
    [cluster],
  );
  const jobs = rows.map((r): JobRow => ({
    id: String(r.id), cluster: String(r.cluster), kind: String(r.kind), target: String(r.target), targets: jsonList(r.targets), zones: jsonList(r.zones),
    phase: String(r.phase), status: String(r.status), host: String(r.host), pid: Number(r.pid), user: String(r.user), leaseMs: Number(r.leaseMs),
    startedAt: String(r.startedAt), resumedAt: (r.resumedAt as string | null) ?? null, updatedAt: String(r.updatedAt), finishedAt: (r.finishedAt as string | null) ?? null,
    progress: jsonObject(r.progress), lastError: (r.lastError as string | null) ?? null, controlSocket: (r.controlSocket as string | null) ?? null,
  }));
  return { cluster, zone, jobs, leases: await leaseRows(db, zone, cluster) };
}

function jsonList(v: unknown): string[] {
  try {
    const x = JSON.parse(String(v)) as unknown;
    return Array.isArray(x) ? x.map(String) : [];
  } catch {
    return [];
  }
}

function jsonObject(v: unknown): JobProgress | null {
  if (typeof v !== 'string' || !v) return null;
  try {
    const x = JSON.parse(v) as unknown;
    return x && typeof x === 'object' && !Array.isArray(x) ? (x as JobProgress) : null;
  } catch {
    return null;
  }
}
