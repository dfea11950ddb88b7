// A plan run as a leased job (job/job.ts): the one way emha switch and the gz jobs drive their
// plans. SIGINT/SIGTERM or a lost lease interrupts it: rolled back before the point of no return,
// stopped after it; the process waits for that (bounded) before it exits, since exiting at once
// would drop a write block's session and leave a master read_only with no writable master. The
// job ends as the plan did: released when nothing ran, finished when done or rolled back, failed
// otherwise.
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import { refused } from '../exit.js';
import { onInterrupt } from '../signals.js';
import { acquireJob, type JobHandle } from '../job/job.js';
import { CLUSTER_TARGET, type JobKind } from '../job/lease.js';
import type { HookRunner } from './hooks.js';
import type { Journal } from './journal.js';
import { runPlan, resumePlan, rollbackPlan, type Plan, type StepsResult } from './engine.js';

export type PlanMode = 'run' | 'resume' | 'rollback';

/**
 * The cluster's lease for a plan's job, at `node` (where its journal is): a new job for 'run', the
 * dead one taken over for 'resume'/'rollback' (`jobId`: that one, or refused naming the one there
 * is). A run that cannot take the lease is refused with the preflight's refusals, if it had any.
 */
export async function acquirePlanJob(ctx: Ctx, o: { cluster: string; kind: JobKind; node: ResolvedNode; mode: PlanMode; runPhase: string; jobId?: string; leaseMs?: number; refusals: readonly string[] }): Promise<JobHandle> {
  const ao: Parameters<typeof acquireJob>[1] = { cluster: o.cluster, kind: o.kind, targets: [CLUSTER_TARGET], zones: [{ zone: o.node.zone, node: o.node }], phase: o.mode === 'run' ? o.runPhase : o.mode };
  if (o.mode !== 'run') ao.resume = true;
  if (o.leaseMs !== undefined) ao.leaseMs = o.leaseMs;
  let job: JobHandle;
  try {
    job = await acquireJob(ctx, ao);
  } catch (e) {
    if (o.mode === 'run' && o.refusals.length) throw refused(`refused: ${o.refusals.length} reason${o.refusals.length === 1 ? '' : 's'}`, { details: [...o.refusals, (e as Error).message] });
    throw e;
  }
  if (o.jobId !== undefined && job.id !== o.jobId) {
    await job.release();
    throw refused(job.tookOver ? `the dead ${o.kind} job of cluster ${o.cluster} is ${job.id}, not ${o.jobId}` : `${o.kind} job ${o.jobId} of cluster ${o.cluster} is neither dead nor unfinished (it ended, or its lease is gone)`, {
      hint: job.tookOver ? `--resume/--rollback ${job.id}` : '`ezctl jobs` lists the jobs; the journal says how it ended',
    });
  }
  return job;
}

/** How long an interrupted process waits for the plan to roll back or stop before it exits. */
const INTERRUPT_WAIT_MS = 60_000;

export async function runPlanUnderJob<P>(job: JobHandle, plan: Plan<P>, mode: PlanMode, o: { journal: Journal; hooks?: HookRunner; log: (m: string) => void }): Promise<StepsResult> {
  const ac = new AbortController();
  const onLost = () => ac.abort(job.signal.reason);
  job.signal.addEventListener('abort', onLost, { once: true });
  let running: Promise<StepsResult> | undefined;
  const offInterrupt = onInterrupt(async () => {
    ac.abort(new Error('interrupted'));
    if (running) await Promise.race([running.catch(() => undefined), new Promise((r) => setTimeout(r, INTERRUPT_WAIT_MS))]);
  });
  const opts = { jobId: job.id, journal: o.journal, guard: { assertHeld: () => job.assertHeld() }, ...(o.hooks ? { hooks: o.hooks } : {}), signal: ac.signal, log: o.log };
  let result: StepsResult;
  try {
    running = mode === 'run' ? runPlan(plan, opts) : mode === 'resume' ? resumePlan(plan, opts) : rollbackPlan(plan, opts);
    result = await running;
  } catch (e) {
    await job.fail(e).catch(() => undefined);
    throw e;
  } finally {
    offInterrupt();
    job.signal.removeEventListener('abort', onLost);
  }
  if (result.outcome === 'refused' || result.outcome === 'not-started') await job.release();
  else if (result.outcome === 'done' || result.outcome === 'rolled-back') await job.finish();
  else await job.fail(new Error(result.error?.message ?? result.outcome));
  return result;
}
