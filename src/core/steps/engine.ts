// The step engine: runs a plan of steps as one journaled job. Preflight refusals first (all of
// them, exit 4, nothing touched); then each step, journaled before and after it runs; one named
// point of no return (PONR). A failure before the PONR undoes every done step in reverse order (and
// the failed one, which may have half-done its work); a failure after it never goes back: the job
// stops and is resumed forward. A process killed at any point is resumed (forward past the PONR,
// otherwise rolled back) or rolled back (only before the PONR) from any host, through the journal.
import { EzError, ExitCode, badInput, refused as refusedError, runtimeError } from '../exit.js';
import { formatDuration } from '../throttle/duration.js';
import type { HookDocument, HookEvent, HookReport, HookRunner } from './hooks.js';
import { JOB_EVENT, whoAmI, type Journal, type JournalEvent, type JobHeader, type StepState } from './journal.js';

export interface StepContext<P> {
  params: P;
  jobId: string;
  /** aborted when the step's bound is reached or the job is interrupted: a wait must stop then */
  signal: AbortSignal;
  /** say what the step is waiting for now (e.g. "bj-replica1: 3.2 s behind"): a timeout names it */
  waitingFor(what: string): void;
  /** add to the detail journaled with the step's outcome */
  note(detail: Record<string, unknown>): void;
  log(message: string): void;
}

export interface StepDescription {
  /** one line: what the step does */
  does: string;
  /** the SQL it would run, for the dry run */
  sql?: string[];
}

export interface Step<P> {
  /** unique in the plan; journaled */
  name: string;
  describe(): StepDescription;
  /** may return a detail to journal with "done" */
  do(ctx: StepContext<P>): Promise<Record<string, unknown> | void>;
  /**
   * Put back what do() changed. Also called on a step that failed or was killed half-way, so it
   * must work whatever part of do() happened (DROP ... IF EXISTS, not DROP). Required before the
   * PONR unless the step changes nothing.
   */
  undo?(ctx: StepContext<P>): Promise<void>;
  /**
   * Is the step's work already done? Asked on resume for a step that had started, so a step that
   * in fact completed before the process died is not run twice; and for the PONR step when it
   * fails or dies, to know which side of the PONR the job is on.
   */
  check?(ctx: StepContext<P>): Promise<boolean>;
  /** a wait or a check: nothing to undo */
  changesNothing?: boolean;
  /** the bound: past it the step is aborted (a refusal: the job rolls back before the PONR) */
  timeoutMs?: number;
  /** what a wait waits for, for the dry run and a timeout's message until waitingFor() says more */
  waitsFor?: string;
  /** the one point of no return */
  pointOfNoReturn?: boolean;
}

export interface Plan<P> {
  kind: string;
  /** what the plan is rebuilt from on resume: journaled, and shown to hooks (no secrets) */
  params: P;
  cluster?: string;
  steps: Step<P>[];
  /** every reason to refuse, all at once; nothing may be changed here */
  preflight?(ctx: { params: P; signal: AbortSignal }): Promise<string[]>;
}

/** Exclusivity: called before every step and undo; throws when this process no longer holds the job. */
export interface Guard {
  assertHeld(): Promise<void> | void;
}

export interface EngineOptions {
  jobId: string;
  journal: Journal;
  guard?: Guard;
  hooks?: HookRunner;
  /** aborting it interrupts the job (exit 130): rolled back before the PONR, stopped after */
  signal?: AbortSignal;
  log?: (message: string) => void;
  /** how long a step that missed its bound gets to stop after its signal is aborted */
  abortGraceMs?: number;
}

export type Outcome = 'done' | 'refused' | 'not-started' | 'rolled-back' | 'stopped' | 'rollback-failed';

export interface TimelineEntry {
  step: string;
  action: 'do' | 'check' | 'undo';
  /** ms since this run started */
  startMs: number;
  durationMs: number;
  outcome: 'done' | 'already done' | 'not done' | 'failed' | 'undone' | 'undo failed';
  error?: string;
}

export interface StepsResult {
  jobId: string;
  kind: string;
  outcome: Outcome;
  exitCode: ExitCode;
  ponr: string | null;
  ponrPassed: boolean;
  resumed: boolean;
  /** resume or rollback of a job that had already ended: nothing was run */
  alreadyEnded?: boolean;
  refusals?: string[];
  error?: { step?: string; message: string; hint?: string };
  timeline: TimelineEntry[];
  hooks: HookReport[];
  totalMs: number;
  journal: string;
}

/** What a job's report takes from its run: the result, outcome, exit code, one line (the failing step first) and the refusals, when there are any. */
export function outcomeOf(jobId: string, result: StepsResult): { jobId: string; result: StepsResult; outcome: Outcome; exitCode: ExitCode; message: string | null; refusals?: string[] } {
  const message = result.error ? `${result.error.step ? `${result.error.step}: ` : ''}${result.error.message}` : null;
  return { jobId, result, outcome: result.outcome, exitCode: result.exitCode, message, ...(result.refusals?.length ? { refusals: result.refusals } : {}) };
}

/** The plan's own mistakes (a programming error, caught before anything runs). */
export function validatePlan<P>(plan: Plan<P>): void {
  const problems: string[] = [];
  const names = new Set<string>();
  const ponrs = plan.steps.filter((s) => s.pointOfNoReturn);
  if (ponrs.length > 1) problems.push(`more than one point of no return: ${ponrs.map((s) => s.name).join(', ')}`);
  const ponrAt = plan.steps.findIndex((s) => s.pointOfNoReturn);
  plan.steps.forEach((s, i) => {
    if (!s.name || s.name === JOB_EVENT || s.name.length > 191) problems.push(`step ${i + 1} has no usable name`);
    if (names.has(s.name)) problems.push(`two steps are named ${s.name}`);
    names.add(s.name);
    const beforePonr = ponrAt < 0 || i < ponrAt;
    if (beforePonr && !s.undo && !s.changesNothing) problems.push(`step ${s.name} comes before the point of no return but has no undo (and changes something)`);
    if (s.pointOfNoReturn && !s.check) problems.push(`step ${s.name} is the point of no return but has no check (after a crash inside it, only its check tells which side of it the job is on)`);
  });
  if (plan.steps.length === 0) problems.push('no steps');
  if (problems.length) throw new Error(`plan ${plan.kind}: ${problems.join('; ')}`);
}

/** Run a new job. The caller renders the result and exits with result.exitCode. */
export async function runPlan<P>(plan: Plan<P>, opts: EngineOptions): Promise<StepsResult> {
  validatePlan(plan);
  const run = new Run(plan, opts, false);
  return run.unlessJournalFails(() => run.start());
}

/**
 * Continue a job from the journal with the plan rebuilt from its saved parameters (see readJob):
 * past the point of no return forward, from the first step not done; before it, back, undoing
 * every step done.
 */
export async function resumePlan<P>(plan: Plan<P>, opts: EngineOptions): Promise<StepsResult> {
  validatePlan(plan);
  const run = new Run(plan, opts, true);
  return run.unlessJournalFails(() => run.resume('resume'));
}

/** Roll a job back through the journal: refused once the point of no return is passed. */
export async function rollbackPlan<P>(plan: Plan<P>, opts: EngineOptions): Promise<StepsResult> {
  validatePlan(plan);
  const run = new Run(plan, opts, true);
  return run.unlessJournalFails(() => run.resume('rollback'));
}

export interface JobSummary {
  header: JobHeader;
  /** each step's last state (absent: never started) */
  steps: Array<{ name: string; state?: StepState; atMs?: number; host?: string; pid?: number }>;
  ponrPassed: boolean;
  /** the job's last own event: done, rolled-back, stopped, rollback-failed, or planned/resumed while running or killed */
  state: string;
  events: JournalEvent[];
}

/** What the journal says of a job: the parameters to rebuild its plan from, and where it is. */
export async function readJob(journal: Journal, jobId: string): Promise<JobSummary | undefined> {
  const j = await journal.load(jobId);
  if (!j) return undefined;
  const last = lastStates(j.events);
  const jobEvents = j.events.filter((e) => e.step === JOB_EVENT);
  return {
    header: j.header,
    steps: j.header.steps.map((name) => {
      const e = last.get(name);
      return e ? { name, state: e.state as StepState, atMs: e.atMs, host: e.host, pid: e.pid } : { name };
    }),
    ponrPassed: j.header.ponr !== null && last.get(j.header.ponr)?.state === 'done',
    state: jobEvents[jobEvents.length - 1]!.state,
    events: j.events,
  };
}

function lastStates(events: JournalEvent[]): Map<string, JournalEvent> {
  const m = new Map<string, JournalEvent>();
  for (const e of events) if (e.step !== JOB_EVENT) m.set(e.step, e);
  return m;
}

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Fault injection for tests and drills: EZCTL_FAULT_KILL_AT=<kind>:<step>:<before|after> makes the
 * process SIGKILL itself right after the step's "started" is journaled (before; a changesNothing step,
 * whose start is not journaled: right before its work) or right after its
 * work returned, before "done" is journaled (after): the two instants a crash is hardest to resume
 * from, hit exactly rather than by a racing outside kill.
 */
function faultPoint(kind: string, step: string, at: 'before' | 'after'): void {
  const want = process.env.EZCTL_FAULT_KILL_AT;
  if (want && want === `${kind}:${step}:${at}`) process.kill(process.pid, 'SIGKILL');
}

/** Why the job ended, and the exit code that says so. */
interface Cause {
  exitCode: ExitCode;
  step?: string;
  message: string;
  hint?: string;
}

function causeOf(e: unknown, step: string | undefined, interrupted: boolean): Cause {
  const c: Cause = { exitCode: interrupted ? ExitCode.interrupted : e instanceof EzError && e.exitCode === ExitCode.refused ? ExitCode.refused : ExitCode.runtime, message: interrupted ? 'interrupted' : msg(e) };
  if (step !== undefined) c.step = step;
  if (!interrupted && e instanceof EzError && e.hint) c.hint = e.hint;
  return c;
}

class Run<P> {
  private readonly t0 = Date.now();
  private readonly timeline: TimelineEntry[] = [];
  private readonly hookReports: HookReport[] = [];
  private readonly state = new Map<string, StepState>();
  private readonly ponrAt: number;
  private ponrPassed = false;
  /** the job is in the journal (created by this run, or found there) */
  private journaled = false;
  private readonly log: (m: string) => void;

  constructor(
    private readonly plan: Plan<P>,
    private readonly opts: EngineOptions,
    private readonly resumed: boolean,
  ) {
    this.ponrAt = plan.steps.findIndex((s) => s.pointOfNoReturn);
    this.log = opts.log ?? (() => {});
  }

  private get ponrName(): string | null {
    return this.ponrAt < 0 ? null : this.plan.steps[this.ponrAt]!.name;
  }

  private get interrupted(): boolean {
    return this.opts.signal?.aborted ?? false;
  }

  private header(): JobHeader {
    const h: JobHeader = { id: this.opts.jobId, kind: this.plan.kind, params: this.plan.params, steps: this.plan.steps.map((s) => s.name), ponr: this.ponrName };
    if (this.plan.cluster !== undefined) h.cluster = this.plan.cluster;
    return h;
  }

  /**
   * A journal that cannot be written (its server gone), or a guard that cannot be asked, stops the
   * job where it is: nothing further is run or undone without its record. Usage errors go through.
   */
  async unlessJournalFails(fn: () => Promise<StepsResult>): Promise<StepsResult> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof EzError && e.exitCode === ExitCode.badInput) throw e;
      if (!this.journaled) {
        const c = causeOf(e, undefined, this.interrupted);
        await this.endHooks('failure', 'not-started', c).catch(() => {});
        return this.result('not-started', c);
      }
      const cause: Cause = {
        exitCode: ExitCode.runtime,
        message: msg(e),
        hint: `nothing further was run or undone; once the journal (${this.opts.journal.where}) can be written, resume job ${this.opts.jobId}`,
      };
      await this.endHooks('failure', 'stopped', cause).catch(() => {});
      return this.result('stopped', cause);
    }
  }

  // ---- a new job ----

  async start(): Promise<StepsResult> {
    const { journal } = this.opts;
    if (await this.hook('start', {})) return this.finish('refused', this.hookCause('start'));
    const signal = this.opts.signal ?? new AbortController().signal;
    const refusals: string[] = [];
    try {
      if (this.plan.preflight) refusals.push(...(await this.plan.preflight({ params: this.plan.params, signal })));
    } catch (e) {
      const cause = causeOf(e, undefined, this.interrupted);
      await this.endHooks('failure', 'not-started', cause);
      return this.result('not-started', cause);
    }
    if (refusals.length) {
      const cause: Cause = { exitCode: ExitCode.refused, message: `refused: ${refusals.length === 1 ? refusals[0]! : `${refusals.length} reasons`}` };
      await this.endHooks('failure', 'refused', cause);
      const r = this.result('refused', cause);
      r.refusals = refusals;
      return r;
    }
    await this.opts.guard?.assertHeld();
    const created = await journal.create(this.header(), Date.now());
    if (!created) {
      const cause: Cause = { exitCode: ExitCode.refused, message: `job ${this.opts.jobId} is already in the journal (${journal.where})`, hint: 'resume or roll back that job, or start this one under another id' };
      return this.result('refused', cause);
    }
    this.journaled = true;
    if (await this.hook('preflight-done', {})) return this.rollback(-1, this.hookCause('preflight-done'));
    return this.forward(0);
  }

  // ---- resume and rollback through the journal ----

  async resume(mode: 'resume' | 'rollback'): Promise<StepsResult> {
    const { journal, jobId } = this.opts;
    const j = await journal.load(jobId);
    if (!j) throw badInput(`no job ${jobId} in the journal (${journal.where})`, { hint: 'check the job id and the server the journal is on' });
    this.journaled = true;
    const want = this.header();
    if (j.header.kind !== want.kind || j.header.steps.join('\0') !== want.steps.join('\0') || j.header.ponr !== want.ponr) {
      throw badInput(`job ${jobId} was journaled as ${j.header.kind} [${j.header.steps.join(', ')}] with point of no return ${j.header.ponr ?? '(none)'}; the plan rebuilt from its parameters is ${want.kind} [${want.steps.join(', ')}] with ${want.ponr ?? '(none)'}`, {
        hint: 'resume it with the same ezctl version and parameters that started it (the parameters are in the journal: readJob)',
      });
    }
    for (const [name, e] of lastStates(j.events)) this.state.set(name, e.state as StepState);
    const jobStates = j.events.filter((e) => e.step === JOB_EVENT).map((e) => e.state);
    const ended = jobStates[jobStates.length - 1];
    this.ponrPassed = this.ponrName !== null && this.state.get(this.ponrName) === 'done';
    if (ended === 'done' || ended === 'rolled-back') {
      const r = this.result(ended, ended === 'done' ? { exitCode: ExitCode.ok, message: '' } : { exitCode: ExitCode.refused, message: `job ${jobId} was rolled back already` });
      if (ended === 'done') delete r.error;
      r.alreadyEnded = true;
      return r;
    }
    await this.opts.guard?.assertHeld();
    await journal.append(jobId, { step: JOB_EVENT, state: 'resumed', atMs: Date.now(), detail: { mode } });
    // killed inside the PONR step (or it failed and was not undone): which side are we on? (known
    // before anything else runs, hooks included: a rollback must never follow a PONR that took place)
    let ponrFound = false;
    if (!this.ponrPassed && this.ponrAt >= 0 && this.started(this.ponrAt)) {
      const step = this.plan.steps[this.ponrAt]!;
      const took = await this.checkPonr(step);
      if (took === undefined) return this.stoppedUnknown(step);
      if (took) {
        await this.markDone(this.ponrAt, { by: 'check' });
        this.ponrPassed = true;
        ponrFound = true;
      }
    }
    if ((await this.hook('start', {})) && !this.ponrPassed) return this.rollback(this.lastStarted(), this.hookCause('start'));
    if (ponrFound) await this.hook('after-ponr', { step: this.stepInfo(this.ponrAt, 'already done', 0) });
    if (mode === 'rollback' && this.ponrPassed) {
      const e = this.eventOf(j.events, this.ponrName!);
      return this.finish('refused', {
        exitCode: ExitCode.refused,
        message: `job ${jobId} is past its point of no return (${this.ponrName}${e ? `, done at ${new Date(e.atMs).toISOString()} on ${e.host}` : ''}): it cannot be rolled back`,
        hint: 'resume it forward instead',
      });
    }
    if (this.ponrPassed) {
      const from = this.plan.steps.findIndex((s) => this.state.get(s.name) !== 'done');
      if (from < 0) return this.succeed();
      return this.forward(from);
    }
    return this.rollback(this.lastStarted(), {
      exitCode: ExitCode.refused,
      message: mode === 'rollback' ? `job ${jobId} rolled back on request` : `job ${jobId} had not passed its point of no return${this.ponrName ? ` (${this.ponrName})` : ''}: resumed by rolling back`,
    });
  }

  private eventOf(events: JournalEvent[], step: string): JournalEvent | undefined {
    return lastStates(events).get(step);
  }

  private started(i: number): boolean {
    const s = this.state.get(this.plan.steps[i]!.name);
    return s !== undefined && s !== 'undone';
  }

  private lastStarted(): number {
    for (let i = this.plan.steps.length - 1; i >= 0; i--) if (this.state.has(this.plan.steps[i]!.name)) return i;
    return -1;
  }

  // ---- forward ----

  private async forward(from: number): Promise<StepsResult> {
    const { steps } = this.plan;
    for (let i = from; i < steps.length; i++) {
      const step = steps[i]!;
      if (this.interrupted) return this.fail(i, causeOf(undefined, step.name, true), false);
      try {
        await this.opts.guard?.assertHeld();
      } catch (e) {
        return this.lostGuard(step.name, e);
      }
      if (i === this.ponrAt && !this.ponrPassed) {
        if (await this.hook('before-ponr', { step: this.stepInfo(i, 'next', 0) })) return this.rollback(i - 1, this.hookCause('before-ponr'));
      }
      // a step that had started in an earlier process: maybe it in fact completed
      if (this.resumed && this.state.has(step.name) && step.check) {
        const t = Date.now();
        let done: boolean;
        try {
          done = await step.check(this.stepCtx(step, new AbortController().signal, {}));
        } catch (e) {
          this.entry(step.name, 'check', t, 'failed', msg(e));
          await this.opts.journal.append(this.opts.jobId, { step: step.name, state: 'failed', atMs: Date.now(), detail: { check: msg(e) } });
          return this.fail(i, causeOf(e, step.name, this.interrupted), false);
        }
        this.entry(step.name, 'check', t, done ? 'already done' : 'not done');
        if (done) {
          await this.markDone(i, { by: 'check' });
          if (await this.afterStep(i, 'already done', Date.now() - t)) return this.rollback(i, this.hookCause('step-done'));
          continue;
        }
      }
      const t = Date.now();
      // a step that changes nothing (a wait, a read) has its start not journaled: after a crash
      // inside it there is nothing to check or undo, so "started" would tell recovery nothing,
      // and each event is an fsync'd write (inside a master switch's write-blocked window)
      if (!step.changesNothing) await this.opts.journal.append(this.opts.jobId, { step: step.name, state: 'started', atMs: t, detail: {} });
      this.state.set(step.name, 'started');
      faultPoint(this.plan.kind, step.name, 'before');
      const notes: Record<string, unknown> = {};
      let detail: Record<string, unknown> | void;
      try {
        detail = await this.bounded(step, (ctx) => step.do(ctx), notes);
        faultPoint(this.plan.kind, step.name, 'after');
      } catch (e) {
        this.entry(step.name, 'do', t, 'failed', msg(e));
        await this.opts.journal.append(this.opts.jobId, { step: step.name, state: 'failed', atMs: Date.now(), detail: { ...notes, error: msg(e) } });
        this.state.set(step.name, 'failed');
        return this.fail(i, causeOf(e, step.name, this.interrupted), true);
      }
      this.entry(step.name, 'do', t, 'done');
      await this.markDone(i, { ...notes, ...(detail ?? {}) });
      if (await this.afterStep(i, 'done', Date.now() - t)) return this.rollback(i, this.hookCause('step-done'));
    }
    return this.succeed();
  }

  /** journal done; past the PONR step: after-ponr. */
  private async markDone(i: number, detail: Record<string, unknown>): Promise<void> {
    const step = this.plan.steps[i]!;
    await this.opts.journal.append(this.opts.jobId, { step: step.name, state: 'done', atMs: Date.now(), detail });
    this.state.set(step.name, 'done');
  }

  /** hooks after a step; true when a hook before the PONR failed (the caller rolls back) */
  private async afterStep(i: number, outcome: string, durationMs: number): Promise<boolean> {
    if (i === this.ponrAt && !this.ponrPassed) {
      this.ponrPassed = true;
      await this.hook('after-ponr', { step: this.stepInfo(i, outcome, durationMs) });
    }
    return this.hook('step-done', { step: this.stepInfo(i, outcome, durationMs) });
  }

  private async fail(i: number, cause: Cause, ran: boolean): Promise<StepsResult> {
    const step = this.plan.steps[i]!;
    if (this.ponrPassed) return this.stop(cause);
    // the PONR step itself failed: did its change take place anyway (an answer lost with the connection)?
    if (i === this.ponrAt && ran && step.check) {
      const took = await this.checkPonr(step);
      if (took === undefined) return this.stoppedUnknown(step);
      if (took) {
        await this.markDone(i, { by: 'check', error: cause.message });
        this.ponrPassed = true;
        await this.hook('after-ponr', { step: this.stepInfo(i, 'already done', 0) });
        await this.hook('step-done', { step: this.stepInfo(i, 'already done', 0) });
        return this.forward(i + 1);
      }
    }
    return this.rollback(this.state.has(step.name) ? i : i - 1, cause);
  }

  private async checkPonr(step: Step<P>): Promise<boolean | undefined> {
    if (!step.check) return false;
    const t = Date.now();
    try {
      const took = await step.check(this.stepCtx(step, new AbortController().signal, {}));
      this.entry(step.name, 'check', t, took ? 'already done' : 'not done');
      return took;
    } catch (e) {
      this.entry(step.name, 'check', t, 'failed', msg(e));
      return undefined;
    }
  }

  private async stoppedUnknown(step: Step<P>): Promise<StepsResult> {
    const last = this.timeline[this.timeline.length - 1];
    return this.stop({
      exitCode: ExitCode.runtime,
      step: step.name,
      message: `cannot tell whether the point of no return (${step.name}) took place: its check failed${last?.error ? `: ${last.error}` : ''}`,
      hint: `nothing was rolled back or run further; once the check can run, resume job ${this.opts.jobId}: it goes forward if ${step.name} took place, back if not`,
    }, true);
  }

  // ---- ends ----

  private async succeed(): Promise<StepsResult> {
    await this.opts.journal.append(this.opts.jobId, { step: JOB_EVENT, state: 'done', atMs: Date.now(), detail: { ms: Date.now() - this.t0 } });
    const ok: Cause = { exitCode: ExitCode.ok, message: '' };
    await this.endHooks('success', 'done', ok);
    const r = this.result('done', ok);
    delete r.error;
    return r;
  }

  /** End stopped where it is; the hint says how to go on (resume forward, unless the caller's hint says more). */
  private async stop(cause: Cause, ownHint = false): Promise<StepsResult> {
    const forward = `the job is past its point of no return (${this.ponrName}) and is never rolled back: fix the cause, then resume job ${this.opts.jobId} (from any host) to continue forward${cause.step ? ` from ${cause.step}` : ''}`;
    const c: Cause = { ...cause, hint: ownHint ? cause.hint! : `${cause.hint ? `${cause.hint}; ` : ''}${forward}` };
    await this.opts.journal.append(this.opts.jobId, { step: JOB_EVENT, state: 'stopped', atMs: Date.now(), detail: { error: c.message, ...(c.step ? { step: c.step } : {}) } });
    await this.endHooks('failure', 'stopped', c);
    return this.result('stopped', c);
  }

  private async lostGuard(step: string, e: unknown): Promise<StepsResult> {
    // another process may be driving the job now: touch nothing, not even the journal
    const cause: Cause = { exitCode: ExitCode.runtime, step, message: `job ${this.opts.jobId} is no longer held by this process (${msg(e)}): stopped before ${step}, nothing undone`, hint: 'see who holds the job; resume it from there or once its lease has expired' };
    await this.endHooks('failure', 'stopped', cause);
    return this.result('stopped', cause);
  }

  /** Undo steps from..0 that ran (in reverse order), then end rolled back. */
  private async rollback(from: number, cause: Cause): Promise<StepsResult> {
    const { journal, jobId } = this.opts;
    for (let i = from; i >= 0; i--) {
      const step = this.plan.steps[i]!;
      const s = this.state.get(step.name);
      if (s === undefined || s === 'undone') continue;
      if (!step.undo) continue; // changes nothing
      try {
        await this.opts.guard?.assertHeld();
      } catch (e) {
        return this.lostGuard(step.name, e);
      }
      const t = Date.now();
      await journal.append(jobId, { step: step.name, state: 'undo-started', atMs: t, detail: {} });
      this.state.set(step.name, 'undo-started');
      const notes: Record<string, unknown> = {};
      try {
        await this.bounded(step, (ctx) => step.undo!(ctx), notes, true);
      } catch (e) {
        this.entry(step.name, 'undo', t, 'undo failed', msg(e));
        await journal.append(jobId, { step: step.name, state: 'undo-failed', atMs: Date.now(), detail: { ...notes, error: msg(e) } });
        this.state.set(step.name, 'undo-failed');
        const c: Cause = {
          exitCode: ExitCode.runtime,
          step: step.name,
          message: `rollback failed at ${step.name}: ${msg(e)} (the job had failed: ${cause.step ? `${cause.step}: ` : ''}${cause.message})`,
          hint: `fix the cause, then roll back job ${jobId} again (or resume it): it continues the rollback from ${step.name}`,
        };
        await journal.append(jobId, { step: JOB_EVENT, state: 'rollback-failed', atMs: Date.now(), detail: { error: c.message, step: step.name } });
        await this.endHooks('failure', 'rollback-failed', c);
        return this.result('rollback-failed', c);
      }
      this.entry(step.name, 'undo', t, 'undone');
      await journal.append(jobId, { step: step.name, state: 'undone', atMs: Date.now(), detail: notes });
      this.state.set(step.name, 'undone');
    }
    await journal.append(jobId, { step: JOB_EVENT, state: 'rolled-back', atMs: Date.now(), detail: { error: cause.message, ...(cause.step ? { step: cause.step } : {}) } });
    await this.endHooks('rollback-done', 'rolled-back', cause);
    await this.endHooks('failure', 'rolled-back', cause);
    return this.result('rolled-back', cause);
  }

  private async finish(outcome: Outcome, cause: Cause): Promise<StepsResult> {
    await this.endHooks('failure', outcome, cause);
    return this.result(outcome, cause);
  }

  private result(outcome: Outcome, cause: Cause): StepsResult {
    const r: StepsResult = {
      jobId: this.opts.jobId,
      kind: this.plan.kind,
      outcome,
      exitCode: cause.exitCode,
      ponr: this.ponrName,
      ponrPassed: this.ponrPassed,
      resumed: this.resumed,
      error: { message: cause.message },
      timeline: this.timeline,
      hooks: this.hookReports,
      totalMs: Date.now() - this.t0,
      journal: this.opts.journal.where,
    };
    if (cause.step !== undefined) r.error!.step = cause.step;
    if (cause.hint !== undefined) r.error!.hint = cause.hint;
    return r;
  }

  // ---- steps under a bound ----

  private stepCtx(step: Step<P>, signal: AbortSignal, notes: Record<string, unknown>, onWait?: (w: string) => void): StepContext<P> {
    return {
      params: this.plan.params,
      jobId: this.opts.jobId,
      signal,
      waitingFor: (w) => onWait?.(w),
      note: (d) => Object.assign(notes, d),
      log: (m) => this.log(`${step.name}: ${m}`),
    };
  }

  /** Run fn with the step's bound and the job's interrupt; a timeout names what the step waited for. */
  private async bounded<T>(step: Step<P>, fn: (ctx: StepContext<P>) => Promise<T>, notes: Record<string, unknown>, undo = false): Promise<T> {
    const ac = new AbortController();
    // an interrupt stops the steps, not the rollback it starts (an undo is bounded by its timeout only)
    const outer = undo ? undefined : this.opts.signal;
    const onOuter = () => ac.abort(new Error('interrupted'));
    if (outer?.aborted) throw new Error('interrupted');
    outer?.addEventListener('abort', onOuter, { once: true });
    let waiting = step.waitsFor;
    const p = fn(this.stepCtx(step, ac.signal, notes, (w) => (waiting = w)));
    let timer: NodeJS.Timeout | undefined;
    try {
      if (!step.timeoutMs) return await p;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const what = `${undo ? 'undo of ' : ''}${step.name} did not finish within ${formatDuration(step.timeoutMs!)}${waiting ? `: waiting for ${waiting}` : ''}`;
          ac.abort(new Error(what));
          reject(refusedError(what));
        }, step.timeoutMs);
      });
      try {
        return await Promise.race([p, timeout]);
      } catch (e) {
        // give the step its grace to stop before anything else runs (an undo must not race its do)
        if (ac.signal.aborted) await settle(p, this.opts.abortGraceMs ?? 10_000, () => this.log(`${step.name}: still running ${this.opts.abortGraceMs ?? 10_000} ms after its abort`));
        throw e;
      }
    } finally {
      if (timer) clearTimeout(timer);
      outer?.removeEventListener('abort', onOuter);
    }
  }

  private entry(step: string, action: TimelineEntry['action'], t: number, outcome: TimelineEntry['outcome'], error?: string): void {
    const e: TimelineEntry = { step, action, startMs: t - this.t0, durationMs: Date.now() - t, outcome };
    if (error !== undefined) e.error = error;
    this.timeline.push(e);
  }

  // ---- hooks ----

  private stepInfo(i: number, outcome: string, durationMs: number): NonNullable<HookDocument['step']> {
    return { name: this.plan.steps[i]!.name, index: i + 1, outcome, durationMs };
  }

  private doc(event: HookEvent, extra: Partial<HookDocument>): HookDocument {
    const now = Date.now();
    const job: HookDocument['job'] = { id: this.opts.jobId, kind: this.plan.kind, params: this.plan.params, resumed: this.resumed };
    if (this.plan.cluster !== undefined) job.cluster = this.plan.cluster;
    return { version: 1, event, at: new Date(now).toISOString(), atMs: now, ...whoAmI(), job, ponr: { step: this.ponrName, passed: this.ponrPassed }, ...extra };
  }

  /** Fire an event's hooks; true when one failed before the point of no return (the job must abort). */
  private async hook(event: HookEvent, extra: Partial<HookDocument>): Promise<boolean> {
    if (!this.opts.hooks) return false;
    const blocking = !this.ponrPassed;
    const reports = await this.opts.hooks.fire(this.doc(event, extra), { stopOnFailure: blocking });
    let failed = false;
    for (const r of reports) {
      if (!r.ok) {
        failed = true;
        if (blocking) r.aborted = true;
        this.log(`hook ${r.hook} (${event}) failed: ${r.error}${blocking ? '' : ' (past the point of no return: going on)'}`);
      }
      this.hookReports.push(r);
    }
    return failed && blocking;
  }

  private hookCause(event: HookEvent): Cause {
    const r = [...this.hookReports].reverse().find((x) => x.event === event && !x.ok);
    return { exitCode: ExitCode.refused, message: `hook ${r?.hook ?? '?'} refused at ${event}: ${r?.error ?? 'failed'}`, hint: 'a hook that fails before the point of no return aborts the job; see what the hook said' };
  }

  /** Hooks at the end: reported, never blocking (the job has ended). */
  private async endHooks(event: HookEvent, outcome: Outcome, cause: Cause): Promise<void> {
    if (!this.opts.hooks) return;
    const extra: Partial<HookDocument> = { outcome, timeline: this.timeline };
    if (cause.message) {
      const error: NonNullable<HookDocument['error']> = { message: cause.message };
      if (cause.step !== undefined) error.step = cause.step;
      if (cause.hint !== undefined) error.hint = cause.hint;
      extra.error = error;
    }
    const reports = await this.opts.hooks.fire(this.doc(event, extra), { stopOnFailure: false });
    for (const r of reports) {
      if (!r.ok) this.log(`hook ${r.hook} (${event}) failed: ${r.error}`);
      this.hookReports.push(r);
    }
  }
}

async function settle(p: Promise<unknown>, ms: number, onLate: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      onLate();
      resolve();
    }, ms);
  });
  await Promise.race([p.then(() => {}, () => {}), late]);
  clearTimeout(timer);
}

/** The EzError a command throws for a result that did not end done (its exit code, message and hint). */
export function resultError(r: StepsResult): EzError | undefined {
  if (r.outcome === 'done') return undefined;
  const details = r.refusals ?? [];
  const message = r.error?.step && !r.error.message.includes(r.error.step) ? `${r.kind} ${r.jobId}: ${r.error.step}: ${r.error.message}` : `${r.kind} ${r.jobId}: ${r.error?.message ?? r.outcome}`;
  const opts: { hint?: string; details?: string[] } = { details };
  if (r.error?.hint) opts.hint = r.error.hint;
  return r.exitCode === ExitCode.runtime ? runtimeError(message, opts) : new EzError(r.exitCode, message, opts);
}
