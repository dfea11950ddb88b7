// What a plan would do (the dry run: every step, its SQL, its bound, where the point of no return
// is) and what a run did (the timeline in ms), as text and as --json-friendly values.
import { formatDuration } from '../throttle/duration.js';
import { table } from '../ui/table.js';
import type { Plan, StepsResult } from './engine.js';

export interface PlanStepDescription {
  n: number;
  name: string;
  does: string;
  sql: string[];
  timeoutMs?: number;
  waitsFor?: string;
  undo: boolean;
  changesNothing: boolean;
  pointOfNoReturn: boolean;
}

export interface PlanDescription {
  kind: string;
  cluster?: string;
  params: unknown;
  pointOfNoReturn: string | null;
  steps: PlanStepDescription[];
}

export function describePlan<P>(plan: Plan<P>): PlanDescription {
  const d: PlanDescription = {
    kind: plan.kind,
    params: plan.params,
    pointOfNoReturn: plan.steps.find((s) => s.pointOfNoReturn)?.name ?? null,
    steps: plan.steps.map((s, i) => {
      const desc = s.describe();
      const out: PlanStepDescription = { n: i + 1, name: s.name, does: desc.does, sql: desc.sql ?? [], undo: !!s.undo, changesNothing: !!s.changesNothing, pointOfNoReturn: !!s.pointOfNoReturn };
      if (s.timeoutMs !== undefined) out.timeoutMs = s.timeoutMs;
      if (s.waitsFor !== undefined) out.waitsFor = s.waitsFor;
      return out;
    }),
  };
  if (plan.cluster !== undefined) d.cluster = plan.cluster;
  return d;
}

/** The dry run as text: numbered steps, their SQL indented, the PONR line between. */
export function renderPlan<P>(plan: Plan<P>): string {
  const d = describePlan(plan);
  const lines = [`${d.kind}${d.cluster ? ` on cluster ${d.cluster}` : ''}: ${d.steps.length} steps${d.pointOfNoReturn ? `, point of no return: ${d.pointOfNoReturn}` : ', no point of no return (it can always be rolled back)'}`];
  for (const s of d.steps) {
    const bound = s.timeoutMs !== undefined ? ` (at most ${formatDuration(s.timeoutMs)}${s.waitsFor ? `, waiting for ${s.waitsFor}` : ''})` : s.waitsFor ? ` (waiting for ${s.waitsFor})` : '';
    const back = s.pointOfNoReturn ? '' : s.undo ? '' : s.changesNothing ? ' [changes nothing]' : d.pointOfNoReturn && d.steps.findIndex((x) => x.pointOfNoReturn) < s.n - 1 ? ' [not undone: after the point of no return]' : '';
    lines.push(`${String(s.n).padStart(2)}. ${s.name}: ${s.does}${bound}${back}`);
    for (const q of s.sql) lines.push(`      ${q}`);
    if (s.pointOfNoReturn) lines.push('    --- point of no return: a failure above rolls back, a failure below is resumed forward ---');
  }
  lines.push('Nothing was changed: add --execute to run it.');
  return lines.join('\n');
}

/** The timeline of a run (steps, start offset and duration in ms, outcome) and how it ended. */
export function renderTimeline(r: StepsResult): string {
  const rows = r.timeline.map((e) => [e.step, e.action, String(e.startMs), String(e.durationMs), e.outcome + (e.error ? `: ${e.error}` : '')]);
  const out: string[] = [];
  if (rows.length) out.push(table(['step', 'action', 'at ms', 'ms', 'outcome'], rows));
  const failedHooks = r.hooks.filter((h) => !h.ok);
  for (const h of failedHooks) out.push(`hook ${h.hook} (${h.event}) failed${h.aborted ? ' and aborted the job' : ''}: ${h.error}`);
  const head = `${r.kind} ${r.jobId}: ${r.outcome}${r.alreadyEnded ? ' (already; nothing run)' : ''} in ${r.totalMs} ms`;
  const ponr = r.ponr ? `; point of no return ${r.ponr} ${r.ponrPassed ? 'passed' : 'not passed'}` : '';
  out.push(head + ponr);
  if (r.error?.message && r.outcome !== 'done') out.push(`${r.error.step ? `${r.error.step}: ` : ''}${r.error.message}`);
  for (const x of r.refusals ?? []) out.push(`  - ${x}`);
  return out.join('\n');
}
