// The step engine with its journal in `_ezctl.job_steps` on a real server: a job (test/fixtures/
// steps-job.ts) is killed with SIGKILL inside each of its steps in turn, before and after the
// step's SQL, and a second process resumes it from the journal: the data ends fully forward when
// the point of no return (a RENAME) had taken place, fully rolled back when not. A hook executable
// records the documents it is given.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { ROOT } from '../helpers/cli.js';
import type { Db } from '../../src/core/db/connect.js';

let sb: TestSandbox;
let db: Db;
let tmp: string;
let hookPath: string;
const STEPS = ['create-new', 'alter-new', 'copy', 'swap', 'mark', 'drop-old'];
const ROWS = 50;

before(async () => {
  sb = await startSandbox({ zones: ['bj'], replicas: 0 });
  db = await sb.db('bj-master');
  await db.exec('CREATE DATABASE stepsdemo');
  await db.exec('CREATE TABLE stepsdemo.marks (job VARCHAR(64) NOT NULL PRIMARY KEY, tbl VARCHAR(64) NOT NULL)');
  tmp = mkdtempSync(join(tmpdir(), 'ezctl-steps-'));
  // a hook that appends what it got (its EZCTL_* variables and the document) as one JSON line
  hookPath = join(tmp, 'hook.mjs');
  writeFileSync(
    hookPath,
    `#!${process.execPath}
import { appendFileSync } from 'node:fs';
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('EZCTL_')));
  appendFileSync(process.env.HOOK_LOG, JSON.stringify({ env, doc: JSON.parse(input) }) + '\\n');
});
`,
  );
  chmodSync(hookPath, 0o755);
});

after(async () => {
  await db?.close();
  await sb?.down();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Job {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function job(args: string[], env: Record<string, string> = {}): Job {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'fixtures', 'steps-job.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, STEPS_PORT: String(sb.node('bj-master').port), STEPS_PASSWORD: sb.adminPassword, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

async function finished(j: Job): Promise<{ code: number | null; result: any; stderr: string }> {
  const r = await j.done;
  let result: any;
  try {
    result = JSON.parse(r.stdout.trim().split('\n').pop()!);
  } catch {
    throw new Error(`no JSON result (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, result, stderr: r.stderr };
}

async function setUp(table: string): Promise<void> {
  await db.exec(`CREATE TABLE stepsdemo.${table} (id INT NOT NULL PRIMARY KEY, v INT NOT NULL)`);
  await db.exec(`INSERT INTO stepsdemo.${table} (id, v) SELECT seq, seq * 7 FROM stepsdemo.seq_1_to_${ROWS}`);
}

/** The data: 'forward', 'back', or a description of the mixed state it is in. */
async function where(table: string, jobId: string): Promise<string> {
  const tables = (await db.query<{ t: string }>("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'stepsdemo' AND TABLE_NAME LIKE ?", [`${table}%`])).map((r) => r.t).sort();
  const note = Number(await db.value("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'stepsdemo' AND TABLE_NAME = ? AND COLUMN_NAME = 'note'", [table]));
  const rows = tables.includes(table) ? Number(await db.value(`SELECT COUNT(*) FROM stepsdemo.${table}`)) : -1;
  const sum = tables.includes(table) ? Number(await db.value(`SELECT SUM(v) FROM stepsdemo.${table}`)) : -1;
  const marked = Number(await db.value('SELECT COUNT(*) FROM stepsdemo.marks WHERE job = ?', [jobId]));
  const whole = tables.length === 1 && tables[0] === table && rows === ROWS && sum === (7 * ROWS * (ROWS + 1)) / 2;
  if (whole && note === 1 && marked === 1) return 'forward';
  if (whole && note === 0 && marked === 0) return 'back';
  return `mixed: tables ${tables.join(',')}, note ${note}, rows ${rows}, sum ${sum}, marked ${marked}`;
}

/** Kill every connection still waiting on the gate (the killed process's, which the server has not noticed gone). */
async function killGateWaiters(lock: string): Promise<void> {
  const ids = await db.query<{ id: string | number }>("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT GET_LOCK(%' AND ID <> CONNECTION_ID() AND STATE = 'User lock'");
  for (const { id } of ids) await db.exec(`KILL ${Number(id)}`).catch(() => {});
  void lock;
}

async function journalStates(jobId: string): Promise<string[]> {
  return (await db.query<{ s: string }>("SELECT CONCAT(step, ':', state) AS s FROM _ezctl.job_steps WHERE job_id = ? ORDER BY seq", [jobId])).map((r) => r.s);
}

/** Run a job until it is inside `step` (before or after its SQL), SIGKILL it, and resume it from a second process. */
async function killInsideAndResume(step: string, at: 'before' | 'after', opts: { hookLog?: string; secondDriver?: boolean } = {}) {
  const i = STEPS.indexOf(step);
  const table = `t${i}${at[0]}`;
  const jobId = `kill-${step}-${at}`;
  const lock = `gate-${jobId}`;
  await setUp(table);
  assert.equal(Number(await db.value('SELECT GET_LOCK(?, 0)', [lock])), 1);
  const hookEnv: Record<string, string> = opts.hookLog ? { STEPS_HOOK: hookPath, HOOK_LOG: opts.hookLog } : {};
  const first = job(['run', jobId, table], { STEPS_GATE: `${step}:${at}`, STEPS_GATE_LOCK: lock, ...hookEnv });
  try {
    await eventually(async () => {
      const waiting = Number(await db.value("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE = 'User lock' AND INFO LIKE 'SELECT GET_LOCK(%'"));
      const states = await journalStates(jobId).catch(() => []);
      return waiting > 0 && states[states.length - 1] === `${step}:started`;
    }, 60_000, `job ${jobId} inside ${step} (${at} its SQL)`);
    if (opts.secondDriver) {
      // while it holds the job, a second process is refused
      const second = await finished(job(['resume', jobId]));
      assert.equal(second.code, 4, `a second driver is refused while the first holds the job: ${second.stderr}`);
      assert.match(second.result.error.message, /is driven by connection/);
    }
    first.child.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.signal, 'SIGKILL');
  } finally {
    first.child.kill('SIGKILL');
    await killGateWaiters(lock);
    await db.value('SELECT RELEASE_LOCK(?)', [lock]);
  }
  const before = await journalStates(jobId);
  assert.equal(before[before.length - 1], `${step}:started`, 'killed inside the step: the journal says started, nothing after');
  const r = await finished(job(['resume', jobId], hookEnv));
  return { r, table, jobId, journal: await journalStates(jobId) };
}

const PONR = STEPS.indexOf('swap');

for (const step of STEPS) {
  for (const at of ['before', 'after'] as const) {
    // the rule: past the point of no return (the RENAME took place) forward, otherwise back
    const forward = STEPS.indexOf(step) > PONR || (step === 'swap' && at === 'after');
    test(`killed inside ${step} (${at} its SQL): resume from another process ends ${forward ? 'fully forward' : 'fully rolled back'}`, async () => {
      const { r, table, jobId, journal } = await killInsideAndResume(step, at, { secondDriver: step === 'copy' && at === 'after' });
      assert.equal(r.result.outcome, forward ? 'done' : 'rolled-back', r.stderr);
      assert.equal(r.code, forward ? 0 : 4);
      assert.equal(r.result.resumed, true);
      assert.equal(await where(table, jobId), forward ? 'forward' : 'back');
      if (forward) {
        assert.equal(journal[journal.length - 1], '@job:done');
        // a step that had in fact completed is checked, not run twice (mark and drop-old would fail)
        if (at === 'after') assert.deepEqual(r.result.timeline[0], { ...r.result.timeline[0], step, action: 'check', outcome: 'already done' });
      } else {
        assert.equal(journal[journal.length - 1], '@job:rolled-back');
        const undone = r.result.timeline.filter((e: any) => e.action === 'undo').map((e: any) => e.step);
        const ran = STEPS.slice(0, Math.min(STEPS.indexOf(step), PONR - 1) + 1).filter((s) => s !== 'swap');
        assert.deepEqual(undone, ran.reverse(), 'every step that ran is undone, last first');
        if (step === 'copy' && at === 'after') {
          // and rollback again is a no-op: the job has ended rolled back
          const again = await finished(job(['rollback', jobId]));
          assert.equal(again.result.alreadyEnded, true);
          assert.equal(await where(table, jobId), 'back');
        }
      }
    });
  }
}

test('past the point of no return, rollback is refused and the data is left as it is; the hook gets every phase', async () => {
  const hookLog = join(tmp, 'hooks.jsonl');
  const step = 'mark';
  const table = 'th';
  const jobId = 'hooked';
  const lock = 'gate-hooked';
  await setUp(table);
  assert.equal(Number(await db.value('SELECT GET_LOCK(?, 0)', [lock])), 1);
  const first = job(['run', jobId, table], { STEPS_GATE: `${step}:before`, STEPS_GATE_LOCK: lock, STEPS_HOOK: hookPath, HOOK_LOG: hookLog });
  try {
    await eventually(async () => (await journalStates(jobId).catch(() => [])).at(-1) === 'mark:started', 60_000, 'job inside mark');
    await eventually(async () => Number(await db.value("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE = 'User lock'")) > 0, 30_000, 'gate wait');
    first.child.kill('SIGKILL');
    await first.done;
  } finally {
    first.child.kill('SIGKILL');
    await killGateWaiters(lock);
    await db.value('SELECT RELEASE_LOCK(?)', [lock]);
  }
  const rb = await finished(job(['rollback', jobId], { STEPS_HOOK: hookPath, HOOK_LOG: hookLog }));
  assert.equal(rb.code, 4);
  assert.equal(rb.result.outcome, 'refused');
  assert.match(rb.result.error.message, /past its point of no return \(swap, done at .* on /);
  assert.match(rb.result.error.hint, /resume it forward/);
  const mid = await where(table, jobId);
  assert.match(mid, /^mixed: tables th,th_old, note 1/, 'rollback touched nothing');
  const rs = await finished(job(['resume', jobId], { STEPS_HOOK: hookPath, HOOK_LOG: hookLog }));
  assert.equal(rs.code, 0, rs.stderr);
  assert.equal(await where(table, jobId), 'forward');

  assert.ok(existsSync(hookLog));
  const got = readFileSync(hookLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const seen = got.map((g) => `${g.doc.event}${g.doc.step ? `:${g.doc.step.name}` : ''}${g.doc.job.resumed ? ' (resumed)' : ''}`);
  assert.deepEqual(seen, [
    // the killed run
    'start', 'preflight-done', 'step-done:create-new', 'step-done:alter-new', 'step-done:copy', 'before-ponr:swap', 'after-ponr:swap', 'step-done:swap',
    // rollback, refused: a failure
    'start (resumed)', 'failure (resumed)',
    // resume forward
    'start (resumed)', 'step-done:mark (resumed)', 'step-done:drop-old (resumed)', 'success (resumed)',
  ]);
  for (const g of got) {
    assert.equal(g.doc.version, 1);
    assert.equal(g.doc.job.id, 'hooked');
    assert.equal(g.doc.job.kind, 'demo-swap');
    assert.deepEqual(g.doc.job.params, { table: 'th' });
    assert.equal(g.doc.ponr.step, 'swap');
    assert.equal(g.env.EZCTL_HOOK_EVENT, g.doc.event);
    assert.equal(g.env.EZCTL_JOB_ID, 'hooked');
    assert.equal(g.env.EZCTL_JOB_KIND, 'demo-swap');
    assert.equal(g.env.EZCTL_PONR, 'swap');
    assert.equal(g.env.EZCTL_PONR_PASSED, g.doc.ponr.passed ? '1' : '0');
    assert.ok(Number.isInteger(g.doc.atMs) && g.doc.pid > 0 && g.doc.host);
    if (g.doc.step) assert.equal(g.env.EZCTL_STEP, g.doc.step.name);
  }
  assert.equal(got.find((g) => g.doc.event === 'before-ponr').doc.ponr.passed, false);
  assert.equal(got.find((g) => g.doc.event === 'after-ponr').doc.ponr.passed, true);
  const success = got.at(-1);
  assert.equal(success.env.EZCTL_OUTCOME, 'done');
  assert.deepEqual(success.doc.timeline.map((e: any) => `${e.step} ${e.action} ${e.outcome}`), ['mark check not done', 'mark do done', 'drop-old do done']);
  const failure = got.find((g) => g.doc.event === 'failure');
  assert.equal(failure.doc.outcome, 'refused');
  assert.match(failure.env.EZCTL_ERROR, /past its point of no return/);
});

test('a preflight refusal touches nothing, the journal included; the same job id cannot start twice', async () => {
  const r = await finished(job(['run', 'nothing', 'no_such_table']));
  assert.equal(r.code, 4);
  assert.equal(r.result.outcome, 'refused');
  assert.deepEqual(r.result.refusals, ['stepsdemo.no_such_table does not exist']);
  assert.deepEqual(await journalStates('nothing'), []);
  await setUp('tw');
  const ok = await finished(job(['run', 'twice', 'tw']));
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(ok.result.timeline.map((e: any) => e.step), STEPS);
  const again = await finished(job(['run', 'twice', 'tw']));
  assert.equal(again.code, 4);
  assert.match(again.result.error.message, /job twice is already in the journal \(_ezctl\.job_steps at bj-master/);
});
