// `ezctl jobs` for a terminal: one line per job, then the errors and zones that could not be read.
import { formatDuration } from '../throttle/duration.js';
import { table } from '../ui/table.js';
import type { JobProgress } from './lease.js';
import type { JobsReport, JobView } from './list.js';

/** "12345 rows 41.5% eta 1m2s" (what is known of it). */
export function renderProgress(p: JobProgress | null, running = true): string {
  if (!p) return '-';
  const parts: string[] = [];
  if (p.rows !== undefined) parts.push(`${p.rows} rows`);
  if (p.pct !== undefined) parts.push(`${p.pct}%`);
  // an eta is of a job that runs: a stopped one's was of when it stopped
  if (p.etaS !== undefined && running) parts.push(`eta ${formatDuration(p.etaS * 1000)}`);
  return parts.join(' ') || '-';
}

/** "12.3s left", "dead: lease expired 4s ago", or "-" for an ended job. */
export function renderLease(v: Pick<JobView, 'lease'>): string {
  if (!v.lease) return '-';
  return 'leftMs' in v.lease ? `${formatDuration(v.lease.leftMs)} left` : `dead: ${v.lease.dead}`;
}

export function renderJobs(r: JobsReport): string {
  const out: string[] = [];
  if (!r.jobs.length) out.push(`no ${r.all ? '' : 'running, stopped or failed '}jobs in ${r.clusters.join(', ')}`);
  else {
    out.push(table(
      ['id', 'cluster', 'kind', 'target', 'state', 'phase', 'progress', 'holder', 'lease', 'last error'],
      r.jobs.map((j) => [
        j.id, j.cluster, j.kind, j.targets.length > 1 ? `${j.target} (+${j.targets.length - 1})` : j.target, j.state, j.phase, renderProgress(j.progress, j.state === 'running'),
        `${j.host}:${j.pid}`, j.state === 'running' || j.state === 'stopped' ? renderLease(j) : `${j.state} ${j.finishedAt ?? ''}`.trim(), oneLine(j.lastError),
      ]),
    ));
    const stopped = r.jobs.filter((j) => j.state === 'stopped');
    if (stopped.length) out.push(`stopped: no live lease (its process died, or lost its servers and stopped itself); the same command with --resume continues it from any host, or abort it (${stopped.map((j) => j.id).join(', ')})`);
    for (const j of r.jobs.filter((x) => x.missingIn.length)) out.push(`note: job ${j.id} has no row in ${j.missingIn.join(', ')}`);
  }
  for (const e of r.errors) out.push(`error: cluster ${e.cluster} zone ${e.zone}: ${e.error}`);
  return out.join('\n');
}

function oneLine(s: string | null): string {
  if (!s) return '-';
  const t = s.replace(/\s+/g, ' ');
  return t.length > 80 ? `${t.slice(0, 77)}...` : t;
}
