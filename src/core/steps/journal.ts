// The journal of a multi-step job: one append-only list of events per job id, written BEFORE and
// AFTER every step runs, so a process killed at any point leaves enough behind for another one, on
// any host, to resume it forward or roll it back. Event 1 of a job is its header: the kind, the
// parameters the caller rebuilds the plan from, the step names and the point of no return.
// Two implementations: in memory (unit tests of the engine) and in `_ezctl.job_steps` (steps/mariadb-journal.ts).
import { hostname } from 'node:os';

/** A step's states, in the order they happen. */
export type StepState = 'started' | 'done' | 'failed' | 'undo-started' | 'undone' | 'undo-failed';
/** The job's own events (journaled under the step name JOB_EVENT). */
export type JobState = 'planned' | 'resumed' | 'done' | 'rolled-back' | 'stopped' | 'rollback-failed';

/** The step name of the job's own events; no step may be called this. */
export const JOB_EVENT = '@job';

export interface JobHeader {
  id: string;
  kind: string;
  /** what the caller rebuilds the plan from (no secrets: hooks and the journal show them) */
  params: unknown;
  steps: string[];
  /** the name of the point-of-no-return step (null: the plan can always be rolled back) */
  ponr: string | null;
  cluster?: string;
}

export interface JournalEvent {
  seq: number;
  step: string;
  state: StepState | JobState;
  /** the writer's clock, ms since the epoch */
  atMs: number;
  host: string;
  pid: number;
  detail: Record<string, unknown>;
}

export interface JournalEntry {
  step: string;
  state: StepState | JobState;
  atMs: number;
  detail?: Record<string, unknown>;
}

export interface Journal {
  /** where the journal is, for messages ("_ezctl.job_steps at bj-master 127.0.0.1:3307") */
  readonly where: string;
  /** Record a new job's header; false (nothing written) when the id is taken. */
  create(header: JobHeader, atMs: number): Promise<boolean>;
  /** The job's header and events in order; undefined when there is no such job. */
  load(jobId: string): Promise<{ header: JobHeader; events: JournalEvent[] } | undefined>;
  /** Add one event; fails when another writer added one at the same time. */
  append(jobId: string, entry: JournalEntry): Promise<void>;
}

export const whoAmI = (): { host: string; pid: number } => ({ host: hostname(), pid: process.pid });

/** The header event's detail, and back. */
export function headerDetail(h: JobHeader): Record<string, unknown> {
  const d: Record<string, unknown> = { kind: h.kind, params: h.params, steps: h.steps, ponr: h.ponr };
  if (h.cluster !== undefined) d.cluster = h.cluster;
  return d;
}

export function headerFrom(id: string, detail: Record<string, unknown>): JobHeader {
  const h: JobHeader = {
    id,
    kind: String(detail.kind),
    params: detail.params,
    steps: Array.isArray(detail.steps) ? detail.steps.map(String) : [],
    ponr: typeof detail.ponr === 'string' ? detail.ponr : null,
  };
  if (typeof detail.cluster === 'string') h.cluster = detail.cluster;
  return h;
}

/** For unit tests of the engine: the same contract, kept in this process. */
export class MemoryJournal implements Journal {
  readonly where = 'memory';
  readonly jobs = new Map<string, JournalEvent[]>();

  async create(header: JobHeader, atMs: number): Promise<boolean> {
    if (this.jobs.has(header.id)) return false;
    const me = whoAmI();
    this.jobs.set(header.id, [{ seq: 1, step: JOB_EVENT, state: 'planned', atMs, ...me, detail: structuredClone(headerDetail(header)) }]);
    return true;
  }

  async load(jobId: string): Promise<{ header: JobHeader; events: JournalEvent[] } | undefined> {
    const events = this.jobs.get(jobId);
    if (!events?.length) return undefined;
    return { header: headerFrom(jobId, events[0]!.detail), events: structuredClone(events) };
  }

  async append(jobId: string, e: JournalEntry): Promise<void> {
    const events = this.jobs.get(jobId);
    if (!events) throw new Error(`no job ${jobId} in the journal`);
    events.push({ seq: events.length + 1, step: e.step, state: e.state, atMs: e.atMs, ...whoAmI(), detail: structuredClone(e.detail ?? {}) });
  }
}
