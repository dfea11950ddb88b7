// The control of a job that works through a list (tables, steps): status with progress and ETA,
// pause and resume through its throttler (the gate it passes before each unit of work), stop at
// the next unit boundary, its work so far kept. check full and migrate drc-ts answer these.
import type { Server } from 'node:net';
import { controlAlive, sendControl } from './socket.js';
import { command, jobKind, serveJob, type JobKind } from './commands.js';
import { refused } from '../exit.js';
import type { Throttler } from '../throttle/throttler.js';

export interface RunStatus {
  /** "check full", "migrate drc-ts" */
  job: string;
  cluster: string;
  pid: number;
  /** the job's own name for this run (check full: its run id), when it has one */
  runId: string | null;
  startedAt: string;
  elapsedMs: number;
  /** what is counted: tables, steps */
  unit: string;
  done: number;
  total: number;
  /** rows worked through, and the server's estimate of all (0: unknown) */
  rows: number;
  rowsEstimate: number;
  /** what is being worked on now */
  current: string[];
  /** estimated time left (rows when estimated, else units); null when not yet known */
  etaMs: number | null;
  /** paused by the operator (`pause`), until `resume` */
  paused: boolean;
  /** why the job waits now (a pause, a throttle signal), or null */
  throttled: string | null;
  /** `stop` was asked: the work under way finishes, then the job ends */
  stopping: boolean;
}

const runCommands = {
  status: command<RunStatus>()('progress: units done of all, rows, what is under way, ETA'),
  pause: command<RunStatus>()('wait before the next unit of work until resume'),
  resume: command<RunStatus>()('go on after a pause'),
  stop: command<RunStatus>()('end after the unit under way, the work so far kept'),
};
export type RunJobKind = JobKind<typeof runCommands>;

/** The commands of a job that works through a list, named for its messages ("check full"). */
export function runJob(name: string): RunJobKind {
  return jobKind(name, runCommands);
}

/** Where the job stands, as the job sees it at this instant. */
export interface RunProgress {
  runId: string | null;
  done: number;
  total: number;
  rows: number;
  rowsEstimate: number;
  current: string[];
}

/** ETA from rows when the total is estimated, else from units done; null before any progress. */
export function etaMs(p: Pick<RunProgress, 'done' | 'total' | 'rows' | 'rowsEstimate'>, elapsedMs: number): number | null {
  if (p.rowsEstimate > 0 && p.rows > 0) return Math.round((elapsedMs * Math.max(0, p.rowsEstimate - p.rows)) / p.rows);
  if (p.done > 0) return Math.round((elapsedMs * Math.max(0, p.total - p.done)) / p.done);
  return p.total === 0 ? 0 : null;
}

export interface RunControl {
  /** the job's progress from here on (before this, status answers with nothing done) */
  attach(progress: () => RunProgress, throttler: Throttler): void;
  readonly stopping: boolean;
  close(): void;
}

/**
 * Open the job's control socket at path, refused (exit 4, nothing done) while another job
 * answers there: one such job per cluster at a time, as one osc per table. `onStop` is called
 * once, on the first `stop`.
 */
export async function openRunControl(path: string, kind: RunJobKind, o: { cluster: string; unit: string; onStop: () => void; busyHint: string; /** how the operator reaches it: 'ezctl check' */ cli: string }): Promise<RunControl> {
  if (await controlAlive(path)) {
    const other = (await sendControl(path, { cmd: 'status' }, 2000).catch(() => undefined)) as Partial<RunStatus> | undefined;
    throw refused(`a ${kind.name} of cluster ${o.cluster} is already running${other?.pid ? ` (pid ${other.pid}${other.runId ? `, run ${other.runId}` : ''})` : ''}; nothing was started`, { hint: o.busyHint });
  }
  const started = Date.now();
  let progress: () => RunProgress = () => ({ runId: null, done: 0, total: 0, rows: 0, rowsEstimate: 0, current: [] });
  let throttler: Throttler | undefined;
  let stopping = false;
  const status = (): RunStatus => {
    const p = progress();
    const elapsedMs = Date.now() - started;
    const t = throttler?.status();
    return {
      job: kind.name, cluster: o.cluster, pid: process.pid, runId: p.runId, startedAt: new Date(started).toISOString(), elapsedMs,
      unit: o.unit, done: p.done, total: p.total, rows: p.rows, rowsEstimate: p.rowsEstimate, current: [...p.current],
      etaMs: stopping ? null : etaMs(p, elapsedMs), paused: t?.paused ?? false, throttled: t?.reason ?? null, stopping,
    };
  };
  const server: Server = await serveJob(path, kind, {
    status,
    pause() {
      throttler?.pause(`paused by operator (${o.cli} pause)`);
      return status();
    },
    resume() {
      throttler?.resume();
      return status();
    },
    stop() {
      if (!stopping) {
        stopping = true;
        throttler?.resume(); // a paused job must reach its next boundary to stop there
        o.onStop();
      }
      return status();
    },
  });
  return {
    attach(p, t) {
      progress = p;
      throttler = t;
    },
    get stopping() {
      return stopping;
    },
    close() {
      server.close();
    },
  };
}

/** `ezctl check status` and its kin: one screen of a RunStatus. */
export function renderRunStatus(s: RunStatus): string {
  const fmt = (ms: number) => (ms >= 60_000 ? `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s` : `${(ms / 1000).toFixed(1)}s`);
  const pct = s.rowsEstimate > 0 ? ` (~${Math.min(100, Math.round((s.rows / s.rowsEstimate) * 100))}%)` : '';
  const lines = [
    `${s.job} of cluster ${s.cluster}${s.runId ? `, run ${s.runId}` : ''} (pid ${s.pid}): ${s.unit} ${s.done}/${s.total}, rows ${s.rows}${pct}, running ${fmt(s.elapsedMs)}, ETA ${s.etaMs === null ? '?' : fmt(s.etaMs)}`,
  ];
  if (s.current.length) lines.push(`on ${s.current.join(', ')}`);
  if (s.stopping) lines.push('stopping: the work under way finishes, then the job ends');
  else if (s.paused) lines.push(`paused: ${s.throttled ?? 'by operator'}`);
  else if (s.throttled) lines.push(`throttled: ${s.throttled}`);
  return lines.join('\n');
}
