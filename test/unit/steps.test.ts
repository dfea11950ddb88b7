// The step engine's rules on the in-memory journal: rollback in reverse order before the point of
// no return, forward after it, resume and rollback through the journal, check() against running a
// step twice, hooks' policy, bounds that name what blocks them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, chmodSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPlan, resumePlan, rollbackPlan, readJob, validatePlan, resultError, type Plan, type Step } from '../../src/core/steps/engine.js';
import { MemoryJournal } from '../../src/core/steps/journal.js';
import { hookRunner, hooksFromTopology, type HookDocument, type HookRunner } from '../../src/core/steps/hooks.js';
import { describePlan, renderPlan, renderTimeline } from '../../src/core/steps/render.js';
import { refused } from '../../src/core/exit.js';
import { topologySchema, formatIssues } from '../../src/core/config/schema.js';

interface World {
  have: Set<string>;
  /** every do/undo/check call, in order */
  calls: string[];
}

type StepOpts = { fail?: 'before' | 'after' | 'refuse'; hang?: 'before' | 'after'; noCheck?: boolean; ponr?: boolean; noUndo?: boolean };

/** A step that adds its name to the world; undo removes it; check asks whether it is there. */
function step(w: World, name: string, o: StepOpts = {}, hang?: { started: () => void; gate: Promise<void> }): Step<{ n: number }> {
  const s: Step<{ n: number }> = {
    name,
    describe: () => ({ does: `add ${name}`, sql: [`INSERT INTO world VALUES ('${name}')`] }),
    async do() {
      w.calls.push(`do ${name}`);
      if (o.hang === 'before' && hang) {
        hang.started();
        await hang.gate;
      }
      if (o.fail === 'before') throw new Error(`${name} broke`);
      if (o.fail === 'refuse') throw refused(`${name} refused: replica too far behind`);
      w.have.add(name);
      if (o.hang === 'after' && hang) {
        hang.started();
        await hang.gate;
      }
      if (o.fail === 'after') throw new Error(`${name} broke after its change`);
    },
  };
  if (!o.noUndo) {
    s.undo = async () => {
      w.calls.push(`undo ${name}`);
      w.have.delete(name);
    };
  }
  if (!o.noCheck) {
    s.check = async () => {
      w.calls.push(`check ${name}`);
      return w.have.has(name);
    };
  }
  if (o.ponr) s.pointOfNoReturn = true;
  return s;
}

const NAMES = ['a', 'b', 'c', 'd', 'e'];
/** a b c(PONR) d e, with per-step options */
function plan(w: World, opts: Record<string, StepOpts> = {}, hang?: { started: () => void; gate: Promise<void> }): Plan<{ n: number }> {
  return { kind: 'demo', params: { n: 1 }, steps: NAMES.map((n) => step(w, n, { ...(n === 'c' ? { ponr: true } : {}), ...opts[n] }, hang)) };
}

const world = (): World => ({ have: new Set(), calls: [] });

/** hooks recorded in memory; fail names events whose hooks fail */
function memoryHooks(fail: string[] = []): HookRunner & { docs: HookDocument[] } {
  const docs: HookDocument[] = [];
  return {
    docs,
    async fire(doc) {
      docs.push(doc);
      const ok = !fail.includes(doc.event);
      return [{ event: doc.event, hook: 'mem', ok, ms: 0, ...(ok ? {} : { error: 'no' }) }];
    },
  };
}

/**
 * Start a job whose step hangs, and abandon it once the step runs (as a SIGKILL would leave it):
 * the journal says "started" and nothing more will be written by that process.
 */
async function killedInside(w: World, journal: MemoryJournal, jobId: string, opts: Record<string, StepOpts>): Promise<void> {
  let started!: () => void;
  const inside = new Promise<void>((r) => (started = r));
  const never = new Promise<void>(() => {});
  void runPlan(plan(w, opts, { started, gate: never }), { jobId, journal });
  await inside;
}

test('a run does every step in order, journals each before and after, and reports a timeline', async () => {
  const w = world();
  const journal = new MemoryJournal();
  const r = await runPlan(plan(w), { jobId: 'j1', journal });
  assert.equal(r.outcome, 'done');
  assert.equal(r.exitCode, 0);
  assert.equal(r.ponr, 'c');
  assert.equal(r.ponrPassed, true);
  assert.deepEqual(w.calls, NAMES.map((n) => `do ${n}`));
  assert.deepEqual(r.timeline.map((e) => [e.step, e.action, e.outcome]), NAMES.map((n) => [n, 'do', 'done']));
  for (const e of r.timeline) assert.ok(e.startMs >= 0 && e.durationMs >= 0);
  const events = journal.jobs.get('j1')!.map((e) => `${e.step}:${e.state}`);
  assert.deepEqual(events, ['@job:planned', ...NAMES.flatMap((n) => [`${n}:started`, `${n}:done`]), '@job:done']);
  assert.deepEqual((await readJob(journal, 'j1'))!.header.params, { n: 1 });
  assert.equal(resultError(r), undefined);
  assert.match(renderTimeline(r), /demo j1: done .*point of no return c passed/);
  // the same id again is refused: the journal has it
  const again = await runPlan(plan(world()), { jobId: 'j1', journal });
  assert.equal(again.outcome, 'refused');
  assert.equal(again.exitCode, 4);
});

test('a failing step before the point of no return undoes every done step in reverse order, and the half-done one', async () => {
  const w = world();
  const journal = new MemoryJournal();
  const r = await runPlan(plan(w, { b: { fail: 'after' } }), { jobId: 'j', journal });
  assert.equal(r.outcome, 'rolled-back');
  assert.equal(r.exitCode, 3, 'a runtime failure');
  assert.equal(r.error?.step, 'b');
  assert.match(r.error!.message, /b broke after its change/);
  assert.deepEqual(w.calls, ['do a', 'do b', 'undo b', 'undo a']);
  assert.deepEqual([...w.have], []);
  assert.deepEqual(r.timeline.map((e) => `${e.step} ${e.action} ${e.outcome}`), ['a do done', 'b do failed', 'b undo undone', 'a undo undone']);
  const states = journal.jobs.get('j')!.map((e) => `${e.step}:${e.state}`);
  assert.deepEqual(states.slice(-5), ['b:undo-started', 'b:undone', 'a:undo-started', 'a:undone', '@job:rolled-back']);
  // a safety refusal in a step: rolled back too, exit 4
  const w2 = world();
  const r2 = await runPlan(plan(w2, { b: { fail: 'refuse' } }), { jobId: 'j2', journal });
  assert.equal(r2.outcome, 'rolled-back');
  assert.equal(r2.exitCode, 4);
  assert.deepEqual([...w2.have], []);
  assert.equal(resultError(r2)!.exitCode, 4);
});

test('a failure after the point of no return never goes back: it stops, and resume continues forward', async () => {
  const w = world();
  const journal = new MemoryJournal();
  const hooks = memoryHooks();
  const r = await runPlan(plan(w, { d: { fail: 'before' } }), { jobId: 'j', journal, hooks });
  assert.equal(r.outcome, 'stopped');
  assert.equal(r.exitCode, 3);
  assert.match(r.error!.hint!, /resume job j .*forward from d/);
  assert.ok(!w.calls.some((c) => c.startsWith('undo')), 'nothing undone');
  assert.deepEqual([...w.have].sort(), ['a', 'b', 'c']);
  assert.equal(hooks.docs[hooks.docs.length - 1]!.event, 'failure');
  assert.equal(hooks.docs[hooks.docs.length - 1]!.outcome, 'stopped');
  // rollback is refused past the point of no return
  const rb = await rollbackPlan(plan(w), { jobId: 'j', journal });
  assert.equal(rb.outcome, 'refused');
  assert.equal(rb.exitCode, 4);
  assert.match(rb.error!.message, /past its point of no return \(c/);
  assert.deepEqual([...w.have].sort(), ['a', 'b', 'c']);
  // fixed: resume goes forward from d
  w.calls.length = 0;
  const rs = await resumePlan(plan(w), { jobId: 'j', journal });
  assert.equal(rs.outcome, 'done');
  assert.equal(rs.exitCode, 0);
  assert.deepEqual(w.calls, ['check d', 'do d', 'do e']);
  assert.deepEqual([...w.have].sort(), NAMES);
  // resuming a finished job runs nothing
  w.calls.length = 0;
  const again = await resumePlan(plan(w), { jobId: 'j', journal });
  assert.equal(again.outcome, 'done');
  assert.equal(again.alreadyEnded, true);
  assert.deepEqual(w.calls, []);
});

test('a failing hook before the point of no return rolls back; after it, it is reported and the job goes on', async () => {
  for (const event of ['preflight-done', 'step-done', 'before-ponr'] as const) {
    const w = world();
    const hooks = memoryHooks([event]);
    const r = await runPlan(plan(w), { jobId: 'j', journal: new MemoryJournal(), hooks });
    assert.equal(r.outcome, 'rolled-back', event);
    assert.equal(r.exitCode, 4, event);
    assert.match(r.error!.message, new RegExp(`hook mem refused at ${event}`));
    assert.deepEqual([...w.have], [], event);
    assert.ok(r.hooks.some((h) => h.event === event && !h.ok && h.aborted), event);
    assert.ok(!w.calls.includes('do c'), `${event}: the point of no return never ran`);
    const events = hooks.docs.map((d) => d.event);
    assert.deepEqual(events.slice(-2), ['rollback-done', 'failure'], event);
  }
  // undone in reverse order when the hook after b failed
  const w = world();
  let n = 0;
  const hooks: HookRunner = { fire: async (doc) => [{ event: doc.event, hook: 'h', ok: !(doc.event === 'step-done' && ++n === 2), ms: 0 }] };
  const r = await runPlan(plan(w), { jobId: 'j', journal: new MemoryJournal(), hooks });
  assert.equal(r.outcome, 'rolled-back');
  assert.deepEqual(w.calls, ['do a', 'do b', 'undo b', 'undo a']);
  // after the PONR: failing hooks are reported, the job completes
  const w2 = world();
  const late = memoryHooks(['after-ponr', 'success']);
  const r2 = await runPlan(plan(w2), { jobId: 'j', journal: new MemoryJournal(), hooks: late });
  assert.equal(r2.outcome, 'done');
  assert.equal(r2.exitCode, 0);
  assert.deepEqual(r2.hooks.filter((h) => !h.ok).map((h) => [h.event, !!h.aborted]), [['after-ponr', false], ['success', false]]);
  const seq = late.docs.map((d) => d.event + (d.step ? `:${d.step.name}` : ''));
  assert.deepEqual(seq, ['start', 'preflight-done', 'step-done:a', 'step-done:b', 'before-ponr:c', 'after-ponr:c', 'step-done:c', 'step-done:d', 'step-done:e', 'success']);
  assert.equal(late.docs.find((d) => d.event === 'before-ponr')!.ponr.passed, false);
  assert.equal(late.docs.find((d) => d.event === 'after-ponr')!.ponr.passed, true);
});

test('a process killed after the point of no return is resumed forward, not back', async () => {
  const w = world();
  const journal = new MemoryJournal();
  await killedInside(w, journal, 'k', { d: { hang: 'before', noCheck: true } });
  assert.deepEqual((await readJob(journal, 'k'))!.steps.map((s) => s.state ?? '-'), ['done', 'done', 'done', 'started', '-']);
  assert.equal((await readJob(journal, 'k'))!.ponrPassed, true);
  w.calls.length = 0;
  const r = await resumePlan(plan(w), { jobId: 'k', journal });
  assert.equal(r.outcome, 'done');
  assert.equal(r.resumed, true);
  assert.deepEqual(w.calls, ['check d', 'do d', 'do e']);
  assert.deepEqual([...w.have].sort(), NAMES);
});

test('a process killed before the point of no return is rolled back by resume (the half-done step too)', async () => {
  const w = world();
  const journal = new MemoryJournal();
  await killedInside(w, journal, 'k', { b: { hang: 'after' } });
  assert.deepEqual([...w.have].sort(), ['a', 'b']);
  w.calls.length = 0;
  const r = await resumePlan(plan(w), { jobId: 'k', journal });
  assert.equal(r.outcome, 'rolled-back');
  assert.equal(r.exitCode, 4);
  assert.deepEqual(w.calls, ['undo b', 'undo a']);
  assert.deepEqual([...w.have], []);
  // and explicitly with rollback: same rule
  const w2 = world();
  const j2 = new MemoryJournal();
  await killedInside(w2, j2, 'k', { b: { hang: 'before' } });
  w2.calls.length = 0;
  const rb = await rollbackPlan(plan(w2), { jobId: 'k', journal: j2 });
  assert.equal(rb.outcome, 'rolled-back');
  assert.deepEqual(w2.calls, ['undo b', 'undo a']);
  assert.deepEqual([...w2.have], []);
});

test('check() keeps a resumed step that had in fact completed from running twice', async () => {
  const w = world();
  const journal = new MemoryJournal();
  let appends = 0;
  await killedInside(w, journal, 'k', { d: { hang: 'after' } });
  assert.ok(w.have.has('d'), 'd did its work before the kill');
  w.calls.length = 0;
  const orig = journal.append.bind(journal);
  journal.append = async (id, e) => {
    appends++;
    return orig(id, e);
  };
  const r = await resumePlan(plan(w), { jobId: 'k', journal });
  assert.equal(r.outcome, 'done');
  assert.deepEqual(w.calls, ['check d', 'do e'], 'd was not run again');
  assert.deepEqual(r.timeline.map((e) => `${e.step} ${e.action} ${e.outcome}`), ['d check already done', 'e do done']);
  assert.ok(appends > 0);
  const d = journal.jobs.get('k')!.filter((e) => e.step === 'd').map((e) => [e.state, e.detail.by ?? '']);
  assert.deepEqual(d, [['started', ''], ['done', 'check']]);
});

test('killed inside the point of no return: its check decides forward or back', async () => {
  // the change took place: forward
  const w = world();
  const j = new MemoryJournal();
  await killedInside(w, j, 'k', { c: { hang: 'after', ponr: true } });
  w.calls.length = 0;
  const hooks = memoryHooks();
  const r = await resumePlan(plan(w), { jobId: 'k', journal: j, hooks });
  assert.equal(r.outcome, 'done');
  assert.deepEqual(w.calls, ['check c', 'do d', 'do e']);
  assert.ok(hooks.docs.some((d) => d.event === 'after-ponr' && d.job.resumed));
  // it did not: back
  const w2 = world();
  const j2 = new MemoryJournal();
  await killedInside(w2, j2, 'k', { c: { hang: 'before', ponr: true } });
  w2.calls.length = 0;
  const r2 = await resumePlan(plan(w2), { jobId: 'k', journal: j2 });
  assert.equal(r2.outcome, 'rolled-back');
  assert.deepEqual(w2.calls, ['check c', 'undo c', 'undo b', 'undo a']);
  assert.deepEqual([...w2.have], []);
  // the PONR step failing in-process after its change took place (an answer lost): forward
  const w3 = world();
  const r3 = await runPlan(plan(w3, { c: { fail: 'after', ponr: true } }), { jobId: 'x', journal: new MemoryJournal() });
  assert.equal(r3.outcome, 'done');
  assert.deepEqual(w3.calls, ['do a', 'do b', 'do c', 'check c', 'do d', 'do e']);
});

test('an undo that fails stops the rollback, and a second rollback continues it', async () => {
  const w = world();
  const journal = new MemoryJournal();
  const p = plan(w, { b: { fail: 'before' } });
  let broken = true;
  const undoA = p.steps[0]!.undo!;
  p.steps[0]!.undo = async (ctx) => {
    if (broken) throw new Error('server gone');
    return undoA(ctx);
  };
  const r = await runPlan(p, { jobId: 'j', journal });
  assert.equal(r.outcome, 'rollback-failed');
  assert.equal(r.exitCode, 3);
  assert.match(r.error!.hint!, /continues the rollback from a/);
  assert.ok(w.have.has('a'));
  broken = false;
  const r2 = await rollbackPlan(p, { jobId: 'j', journal });
  assert.equal(r2.outcome, 'rolled-back');
  assert.deepEqual([...w.have], []);
});

test('preflight collects every refusal and touches nothing, the journal included', async () => {
  const w = world();
  const journal = new MemoryJournal();
  const p = plan(w);
  p.preflight = async () => ['bj-replica1 is 12 s behind', 'sh-master is read-only'];
  const r = await runPlan(p, { jobId: 'p', journal });
  assert.equal(r.outcome, 'refused');
  assert.equal(r.exitCode, 4);
  assert.deepEqual(r.refusals, ['bj-replica1 is 12 s behind', 'sh-master is read-only']);
  assert.deepEqual(w.calls, []);
  assert.equal(journal.jobs.size, 0);
  assert.deepEqual(resultError(r)!.details, r.refusals);
});

test('a bounded wait that runs out names what blocks it, and the job rolls back (a refusal)', async () => {
  const w = world();
  const p = plan(w);
  const wait: Step<{ n: number }> = {
    name: 'wait-caught-up',
    changesNothing: true,
    timeoutMs: 150,
    waitsFor: 'replicas to catch up',
    describe: () => ({ does: 'wait until every replica has applied the master position' }),
    async do(ctx) {
      ctx.waitingFor('bj-replica1: 3.2 s behind');
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      throw ctx.signal.reason;
    },
  };
  p.steps.splice(2, 0, wait);
  const r = await runPlan(p, { jobId: 'w', journal: new MemoryJournal() });
  assert.equal(r.outcome, 'rolled-back');
  assert.equal(r.exitCode, 4);
  assert.match(r.error!.message, /wait-caught-up did not finish within 150ms: waiting for bj-replica1: 3.2 s behind/);
  assert.deepEqual(w.calls, ['do a', 'do b', 'undo b', 'undo a']);
});

test('an interrupt before the point of no return rolls back with exit 130', async () => {
  const w = world();
  const ac = new AbortController();
  const p = plan(w);
  p.steps[1]!.do = async (ctx) => {
    w.calls.push('do b');
    w.have.add('b');
    ac.abort();
    await new Promise((r) => setTimeout(r, 0));
    if (ctx.signal.aborted) throw new Error('stopped');
  };
  const r = await runPlan(p, { jobId: 'i', journal: new MemoryJournal(), signal: ac.signal });
  assert.equal(r.outcome, 'rolled-back');
  assert.equal(r.exitCode, 130);
  assert.deepEqual([...w.have], []);
});

test('the guard is asked before every step; lost, the job stops and touches nothing more', async () => {
  const w = world();
  let held = 3;
  const r = await runPlan(plan(w), {
    jobId: 'g',
    journal: new MemoryJournal(),
    guard: {
      assertHeld() {
        if (held-- <= 0) throw new Error('lease of job g is held by host2 pid 7');
      },
    },
  });
  assert.equal(r.outcome, 'stopped');
  assert.match(r.error!.message, /no longer held by this process \(lease of job g is held by host2 pid 7\): stopped before c/);
  assert.deepEqual(w.calls, ['do a', 'do b'], 'nothing undone either: another process may drive it');
});

test('resume refuses a plan that differs from the journaled one', async () => {
  const journal = new MemoryJournal();
  await killedInside(world(), journal, 'k', { b: { hang: 'before' } });
  const other = plan(world());
  other.steps.pop();
  await assert.rejects(resumePlan(other, { jobId: 'k', journal }), (e: Error & { exitCode?: number }) => e.exitCode === 2 && /was journaled as demo \[a, b, c, d, e\]/.test(e.message));
  await assert.rejects(resumePlan(plan(world()), { jobId: 'nope', journal }), /no job nope in the journal/);
});

test('a plan is checked first: undo before the point of no return, check on it, one of it', () => {
  const w = world();
  assert.throws(() => validatePlan({ kind: 'x', params: { n: 0 }, steps: [step(w, 'a', { noUndo: true }), step(w, 'b', { ponr: true })] }), /step a comes before the point of no return but has no undo/);
  assert.throws(() => validatePlan({ kind: 'x', params: { n: 0 }, steps: [step(w, 'a'), step(w, 'b', { ponr: true, noCheck: true })] }), /b is the point of no return but has no check/);
  assert.throws(() => validatePlan({ kind: 'x', params: { n: 0 }, steps: [step(w, 'a', { ponr: true }), step(w, 'b', { ponr: true })] }), /more than one point of no return/);
  assert.throws(() => validatePlan({ kind: 'x', params: { n: 0 }, steps: [step(w, 'a'), step(w, 'a')] }), /two steps are named a/);
  // after the PONR a step needs no undo; a wait that changes nothing needs none anywhere
  validatePlan({ kind: 'x', params: { n: 0 }, steps: [{ ...step(w, 'w', { noUndo: true }), changesNothing: true }, step(w, 'b', { ponr: true }), step(w, 'c', { noUndo: true })] });
});

test('the dry run lists every step, its SQL and bound, and where the point of no return is', () => {
  const p = plan(world());
  p.steps[0]!.timeoutMs = 30_000;
  p.steps[0]!.waitsFor = 'replicas to catch up';
  const text = renderPlan(p);
  assert.match(text, /demo: 5 steps, point of no return: c/);
  assert.match(text, / 1\. a: add a \(at most 30s, waiting for replicas to catch up\)\n {6}INSERT INTO world VALUES \('a'\)/);
  assert.match(text, /3\. c: add c\n.*\n {4}--- point of no return/);
  assert.match(text, /Nothing was changed/);
  const d = describePlan(p);
  assert.equal(d.pointOfNoReturn, 'c');
  assert.deepEqual(d.steps[0], { n: 1, name: 'a', does: 'add a', sql: ["INSERT INTO world VALUES ('a')"], undo: true, changesNothing: false, pointOfNoReturn: false, timeoutMs: 30000, waitsFor: 'replicas to catch up' });
});

const docOf = (event: HookDocument['event']): HookDocument => ({
  version: 1, event, at: new Date().toISOString(), atMs: Date.now(), host: 'h', pid: 1,
  job: { id: 'j1', kind: 'demo', cluster: 'c1', params: { a: 1 }, resumed: false },
  ponr: { step: 'c', passed: false },
  step: { name: 'b', index: 2, outcome: 'done', durationMs: 5 },
});

test('an executable hook gets the document on stdin and EZCTL_* variables, no shell; a failure and a timeout are reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-hooks-'));
  try {
    const out = join(dir, 'out.json');
    const ok = join(dir, 'ok.sh');
    writeFileSync(ok, `#!/bin/sh\n{ printf '{"env":"%s %s %s %s %s","arg":"%s","doc":' "$EZCTL_HOOK_EVENT" "$EZCTL_JOB_ID" "$EZCTL_STEP" "$EZCTL_PONR_PASSED" "$EZCTL_CLUSTER" "$1"; cat; printf '}'; } > ${JSON.stringify(out)}\n`);
    const bad = join(dir, 'bad.sh');
    writeFileSync(bad, '#!/bin/sh\necho "switch window closed" >&2\nexit 3\n');
    const slow = join(dir, 'slow.sh');
    writeFileSync(slow, '#!/bin/sh\nsleep 30\n');
    for (const f of [ok, bad, slow]) chmodSync(f, 0o755);
    const r = await hookRunner([{ label: ok, run: ok, args: ['$HOME;x'], timeoutMs: 5000 }]).fire(docOf('step-done'), { stopOnFailure: true });
    assert.deepEqual(r.map((x) => x.ok), [true]);
    const got = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(got.env, 'step-done j1 b 0 c1');
    assert.equal(got.arg, '$HOME;x', 'arguments reach the hook as they are (no shell)');
    assert.equal(got.doc.job.id, 'j1');
    assert.deepEqual(got.doc.job.params, { a: 1 });
    assert.equal(got.doc.step.name, 'b');
    // a failure stops the event's hooks when asked to, and names the hook's stderr
    const r2 = await hookRunner([
      { label: bad, run: bad, timeoutMs: 5000 },
      { label: ok, run: ok, timeoutMs: 5000, events: ['success'] },
      { label: ok, run: ok, timeoutMs: 5000 },
    ]).fire(docOf('before-ponr'), { stopOnFailure: true });
    assert.equal(r2.length, 1);
    assert.match(r2[0]!.error!, /bad\.sh exited with 3: switch window closed/);
    const t0 = Date.now();
    const r3 = await hookRunner([{ label: slow, run: slow, timeoutMs: 300 }]).fire(docOf('start'), { stopOnFailure: false });
    assert.match(r3[0]!.error!, /did not finish within 300 ms \(killed\)/);
    assert.ok(Date.now() - t0 < 20_000);
    const r4 = await hookRunner([{ label: 'x', run: join(dir, 'missing'), timeoutMs: 300 }]).fire(docOf('start'), { stopOnFailure: false });
    assert.match(r4[0]!.error!, /cannot run .*missing: .*ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a URL hook gets the document POSTed; a non-2xx answer is a failure', async () => {
  const got: unknown[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ method: req.method, type: req.headers['content-type'], doc: JSON.parse(body) });
      res.statusCode = req.url === '/no' ? 409 : 204;
      res.end(req.url === '/no' ? 'cluster frozen' : undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const r = await hookRunner([
      { label: 'ok', url: `http://127.0.0.1:${port}/ok`, timeoutMs: 5000 },
      { label: 'no', url: `http://127.0.0.1:${port}/no`, timeoutMs: 5000 },
    ]).fire(docOf('failure'), { stopOnFailure: false });
    assert.deepEqual(r.map((x) => x.ok), [true, false]);
    assert.match(r[1]!.error!, /answered 409: cluster frozen/);
    assert.equal((got[0] as { method: string }).method, 'POST');
    assert.equal((got[0] as { type: string }).type, 'application/json');
    assert.equal((got[0] as { doc: HookDocument }).doc.event, 'failure');
  } finally {
    server.close();
  }
});

test('the topology file takes hooks globally and per cluster, and says what is wrong with one', () => {
  const base = { zones: ['bj'], clusters: { c1: { zones: { bj: { master: 'mysql://root@127.0.0.1:3306' } } } } };
  const good = topologySchema.safeParse({ ...base, hooks: [{ run: './notify.sh', events: ['failure', 'success'], timeout: '5s' }], clusters: { c1: { ...base.clusters.c1, hooks: [{ url: 'https://hooks.example/ezctl' }] } } });
  assert.ok(good.success, good.success ? '' : formatIssues(good.error.issues).join('\n'));
  const bad = topologySchema.safeParse({ ...base, hooks: [{ run: 'a', url: 'http://x' }, {}, { run: 'b', events: ['sometimes'] }, { url: 'ftp://x' }, { url: 'http://y', args: ['z'] }] });
  assert.ok(!bad.success);
  const lines = formatIssues(bad.error.issues);
  assert.ok(lines.includes('hooks.0.run: a hook is run or url, not both'), lines.join('\n'));
  assert.ok(lines.includes('hooks.1.run: missing (a hook needs run: an executable, or url:)'), lines.join('\n'));
  assert.ok(lines.some((l) => /^hooks\.2\.events\.0: "sometimes" is not a hook event \(start, preflight-done/.test(l)), lines.join('\n'));
  assert.ok(lines.includes('hooks.3.url: "ftp://x" is not an http(s) URL'), lines.join('\n'));
  assert.ok(lines.includes('hooks.4.args: args belong to a run: hook'), lines.join('\n'));
});

test('a cluster gets the global hooks first, then its own; run paths resolve from the topology file, timeouts parse', () => {
  const file = topologySchema.parse({
    zones: ['bj'],
    hooks: [{ run: 'hooks/notify.sh', args: ['-v'], events: ['failure'] }],
    clusters: {
      c1: { zones: { bj: { master: 'mysql://root@127.0.0.1:3306' } }, hooks: [{ url: 'http://127.0.0.1:9/h', timeout: '1.5s' }] },
      c2: { zones: { bj: { master: 'mysql://root@127.0.0.1:3307' } } },
    },
  });
  assert.deepEqual(hooksFromTopology(file, '/etc/ezctl', 'c1'), [
    { label: '/etc/ezctl/hooks/notify.sh', run: '/etc/ezctl/hooks/notify.sh', args: ['-v'], events: ['failure'], timeoutMs: 10_000 },
    { label: 'http://127.0.0.1:9/h', url: 'http://127.0.0.1:9/h', timeoutMs: 1500 },
  ]);
  assert.deepEqual(hooksFromTopology(file, '/etc/ezctl', 'c2').map((h) => h.label), ['/etc/ezctl/hooks/notify.sh']);
});

test('killed inside the point of no return and its check cannot run: resume neither rolls back nor goes on', async () => {
  const w = world();
  const journal = new MemoryJournal();
  await killedInside(w, journal, 'k', { c: { hang: 'after', ponr: true } });
  w.calls.length = 0;
  const p = plan(w);
  p.steps[2]!.check = async () => {
    throw new Error('sh-master unreachable');
  };
  const r = await resumePlan(p, { jobId: 'k', journal });
  assert.equal(r.outcome, 'stopped');
  assert.equal(r.exitCode, 3);
  assert.match(r.error!.message, /cannot tell whether the point of no return \(c\) took place: its check failed: sh-master unreachable/);
  assert.match(r.error!.hint!, /resume job k: it goes forward if c took place, back if not/);
  assert.deepEqual(w.calls, [], 'nothing undone, nothing run');
  // once the check runs, resume resolves it
  const r2 = await resumePlan(plan(w), { jobId: 'k', journal });
  assert.equal(r2.outcome, 'done');
  assert.deepEqual([...w.have].sort(), NAMES);
});
