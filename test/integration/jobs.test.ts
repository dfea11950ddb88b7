// Jobs and leases (`_ezctl.jobs`, `_ezctl.job_leases`, `ezctl jobs`) with osc as the job, against
// a real two-zone sandbox (no replicas, no DRC: each zone's table is written there): `ezctl jobs`
// shows a change running in another process with its phase and progress; a second change of the
// table is refused (exit 4) naming the first; a job frozen (SIGSTOP) stops renewing and shows as
// dead once its lease expires, and after kill -9 `--resume` takes it over (same id, new holder)
// and completes it in every zone; a job whose lease is taken from it stops itself. The other kinds
// (check-full, repair, migrate-drc-ts, migrate-int2bigint): listed while they run, a conflicting
// run refused naming them, done at their end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { EZCTL, show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { sqlOn } from '../helpers/drc.js';

let sb: TestSandbox;
const MASTERS = ['bj-master', 'sh-master'];
const children: ChildProcess[] = [];

async function onMaster<T>(node: string, sql: string, params: Array<string | number> = []): Promise<T[]> {
  const db = await sb.db(node);
  try {
    return await db.query<any>(sql, params);
  } finally {
    await db.close();
  }
}

/** The same table of ids 1..rows in every zone, written in each zone itself. */
async function numberedTable(table: string, rows: number): Promise<void> {
  for (const node of MASTERS) {
    await sqlOn(sb, node, `CREATE TABLE ezdemo.${table} (id INT PRIMARY KEY, v INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT '2024-01-01 00:00:00.000')`,
      `INSERT INTO ezdemo.${table} (id, v) SELECT seq, seq FROM ezdemo.seq_1_to_${rows}`);
  }
}

function startOsc(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
  children.push(child);
  return child;
}

/**
 * Holds a job's copy with its throttle flag as soon as a zone's ghost has rows: polled on the
 * servers every few ms, not through `ezctl jobs` (a CLI run takes ~0.5 s, and on tmpfs a whole
 * 150,000-row copy can end within a few of them).
 */
async function holdOnceCopying(table: string, flag: string): Promise<void> {
  const dbs = await Promise.all(MASTERS.map((n) => sb.db(n)));
  try {
    for (const deadline = Date.now() + 60_000; ; ) {
      for (const db of dbs) {
        const has = await db.query<any>(`SELECT 1 FROM ezdemo.${table}_ezgho LIMIT 1`).catch(() => []);
        if (has.length) return writeFileSync(flag, '');
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ezdemo.${table}_ezgho to get rows`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    await Promise.all(dbs.map((db) => db.close()));
  }
}

/** A throttle flag file's path (not created: the test creates it to hold a job). */
async function flagPath(name: string): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), 'ezctl-jobs-')), name);
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.on('exit', r));
  child.kill('SIGKILL');
  await gone;
}

async function jobsJson(...args: string[]): Promise<any> {
  const r = await sb.run(['--json', 'jobs', ...args]);
  assert.equal(r.code, 0, show(r));
  return r.json();
}

const columnsOf = async (node: string, table: string) =>
  (await onMaster<{ c: string }>(node, "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'ezdemo' AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", [table])).map((r) => r.c);
const helpersOf = async (node: string, table: string) =>
  (await onMaster<{ t: string }>(node, "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'ezdemo' AND TABLE_NAME LIKE ? ORDER BY 1", [`${table}\\_ez%`])).map((r) => r.t);

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  for (const node of MASTERS) await sqlOn(sb, node, 'CREATE DATABASE IF NOT EXISTS ezdemo');
});

after(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  await sb?.down();
});

test('ezctl jobs shows a change running in another process; a second one is refused naming it; frozen, it shows dead once its lease expires; killed, --resume takes it over and completes it', async () => {
  await numberedTable('boxes', 150_000);
  const alter = 'ADD COLUMN lid TINYINT NULL';
  const args = ['osc', '--table', 'ezdemo.boxes', '--alter', alter, '--instant', 'never', '--execute', '--chunk-time', '1ms', '--lease', '3s'];
  const flag = await flagPath('hold-boxes');
  const child = startOsc([...args, '--throttle-flag-file', flag]);
  let id: string;
  try {
    await holdOnceCopying('boxes', flag);
    // running in the child: its row in both zones, its phase and progress kept current
    const job = await eventually(async () => {
      const j = (await jobsJson()).jobs.find((x: any) => x.target === 'ezdemo.boxes');
      return j && j.state === 'running' && j.phase === 'copy' && j.progress?.rows > 0 ? j : undefined;
    }, 60_000, 'the job running, copying, with progress');
    id = job.id;
    assert.equal(job.kind, 'osc');
    assert.equal(job.host, hostname());
    assert.equal(job.pid, child.pid);
    assert.deepEqual(job.seenIn, ['bj', 'sh']);
    assert.ok(job.lease.leftMs > 0 && job.lease.leftMs <= 3000, JSON.stringify(job.lease));
    assert.ok(job.progress.pct > 0 && job.progress.pct <= 100, JSON.stringify(job.progress));
    // held mid-copy so the rest finds it copying whatever the machine's speed
    const p = await sb.run(['osc', 'pause', '--table', 'ezdemo.boxes']);
    assert.equal(p.code, 0, show(p));
    rmSync(flag);
    const text = await sb.run(['jobs']);
    assert.equal(text.code, 0, show(text));
    assert.match(text.stdout, new RegExp(`${id}.*osc.*ezdemo\\.boxes.*running.*copy.*rows.*${hostname()}:${child.pid}.*left`));

    // a second change of the table: refused before anything, naming the first
    const second = await sb.run(['osc', ...args.slice(1, -2)]);
    assert.equal(second.code, 4, show(second));
    assert.match(second.stderr, new RegExp(`ezdemo\\.boxes is held by osc job ${id} on ezdemo\\.boxes \\(host ${hostname()}, pid ${child.pid}, phase copy, lease left`));
    assert.match(second.stderr, /nothing changed/);

    // frozen: its process lives on but renews nothing; by the servers' clocks its lease runs out
    child.kill('SIGSTOP');
    const dead = await eventually(async () => {
      const j = (await jobsJson()).jobs.find((x: any) => x.id === id);
      return j?.state === 'stopped' ? j : undefined;
    }, 20_000, 'the frozen job to show as dead');
    assert.match(dead.lease.dead, /^lease expired /);
    assert.equal(dead.phase, 'copy');
    const stopped = await sb.run(['jobs']);
    assert.match(stopped.stdout, new RegExp(`${id}.*stopped.*dead: lease expired`));
    assert.match(stopped.stdout, /--resume continues it/);
    // a fresh change (without --resume) is refused, naming the dead job
    const fresh = await sb.run(['osc', ...args.slice(1, -2)]);
    assert.equal(fresh.code, 4, show(fresh));
    assert.match(fresh.stderr, new RegExp(`held by osc job ${id} .*dead: lease expired`));
  } finally {
    await kill9(child);
  }
  for (const node of MASTERS) assert.deepEqual(await helpersOf(node, 'boxes'), ['boxes_ezgho'], `${node}: the ghost left for --resume`);
  assert.equal((await jobsJson()).jobs.find((x: any) => x.id === id)?.state, 'stopped', 'killed: still stopped');

  // --resume takes it over: the same job, a new holder, carried to the end in every zone
  const resumed = await sb.run(['osc', ...args.slice(1), '--resume']);
  assert.equal(resumed.code, 0, show(resumed));
  const all = (await jobsJson('--all')).jobs.filter((x: any) => x.target === 'ezdemo.boxes');
  assert.equal(all.length, 1, JSON.stringify(all));
  assert.equal(all[0].id, id);
  assert.equal(all[0].state, 'done');
  assert.equal(all[0].phase, 'done');
  assert.notEqual(all[0].pid, child.pid);
  assert.ok(all[0].resumedAt, 'resumed at');
  assert.equal(all[0].progress.pct, 100);
  assert.deepEqual((await jobsJson()).jobs.filter((x: any) => x.target === 'ezdemo.boxes'), [], 'done: not listed without --all');
  for (const node of MASTERS) {
    assert.deepEqual(await columnsOf(node, 'boxes'), ['id', 'v', 'drc_ts', 'lid'], node);
    assert.deepEqual(await helpersOf(node, 'boxes'), ['boxes_ezdel'], node);
    assert.equal(Number((await onMaster<any>(node, 'SELECT COUNT(*) AS n FROM _ezctl.job_leases'))[0].n), 0, `${node}: no lease left`);
  }
  const check = await sb.run(['check', 'full', '--tables', 'ezdemo.boxes']);
  assert.equal(check.code, 0, show(check));
  for (const node of MASTERS) await sqlOn(sb, node, 'DROP TABLE ezdemo.boxes_ezdel');
});

test('a job whose lease is taken from it stops itself, keeping its ghost and saved state; --resume then completes it', async () => {
  await numberedTable('bins', 150_000);
  const args = ['osc', '--table', 'ezdemo.bins', '--alter', 'ADD COLUMN lid TINYINT NULL', '--instant', 'never', '--execute', '--chunk-time', '1ms', '--lease', '3s'];
  const flag = await flagPath('hold-bins');
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, ...args, '--throttle-flag-file', flag], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    await holdOnceCopying('bins', flag);
    const job = await eventually(async () => {
      const j = (await jobsJson()).jobs.find((x: any) => x.target === 'ezdemo.bins');
      return j?.phase === 'copy' && j.progress?.rows > 0 ? j : undefined;
    }, 60_000, 'the job copying');
    const p = await sb.run(['osc', 'pause', '--table', 'ezdemo.bins']);
    assert.equal(p.code, 0, show(p));
    rmSync(flag);
    await new Promise((r) => setTimeout(r, 1200)); // a checkpoint written in both zones
    // another holder in one zone (as a takeover after a partition would leave it)
    await sqlOn(sb, 'sh-master', `UPDATE _ezctl.job_leases SET holder = 'elsewhere:1:x' WHERE job_id = '${job.id}'`);
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    assert.equal(code, 3, `exit 3 once its renewal finds the lease gone:\n${stderr}`);
    assert.match(stderr, new RegExp(`the osc job ${job.id} on ezdemo\\.bins lost its lease: zone sh: its lease expired or was taken over`));
    assert.match(stderr, /ezdemo\.bins is untouched, its ghost and saved state are kept/);
  } finally {
    await kill9(child);
  }
  for (const node of MASTERS) {
    assert.deepEqual(await helpersOf(node, 'bins'), ['bins_ezgho'], `${node}: the ghost kept`);
    assert.deepEqual(await columnsOf(node, 'bins'), ['id', 'v', 'drc_ts'], `${node}: the original untouched`);
  }
  // the stolen lease still stands in sh until it expires: then --resume takes the job over
  await sqlOn(sb, 'sh-master', "UPDATE _ezctl.job_leases SET expires_at = NOW(3) WHERE holder = 'elsewhere:1:x'");
  const resumed = await sb.run(['osc', ...args.slice(1), '--resume']);
  assert.equal(resumed.code, 0, show(resumed));
  for (const node of MASTERS) {
    assert.deepEqual(await columnsOf(node, 'bins'), ['id', 'v', 'drc_ts', 'lid'], node);
    assert.equal(Number((await onMaster<any>(node, 'SELECT COUNT(*) AS n FROM ezdemo.bins'))[0].n), 150_000, node);
    await sqlOn(sb, node, 'DROP TABLE ezdemo.bins_ezdel');
  }
});

test('an interrupted job (SIGINT) records its end: aborted, interrupted, no lease left; a change refused before it starts leaves no job', async () => {
  await numberedTable('cups', 100_000);
  const args = ['osc', '--table', 'ezdemo.cups', '--alter', 'ADD COLUMN lid TINYINT NULL', '--instant', 'never', '--execute', '--chunk-time', '1ms'];
  // held by its flag from the start: paused before its first chunk whatever the machine's speed
  const flag = await flagPath('hold-cups');
  writeFileSync(flag, '');
  const child = startOsc([...args, '--throttle-flag-file', flag]);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const job = await eventually(async () => {
    const j = (await jobsJson()).jobs.find((x: any) => x.target === 'ezdemo.cups');
    return j?.phase === 'copy' ? j : undefined;
  }, 60_000, 'the job copying');
  const p = await sb.run(['osc', 'pause', '--table', 'ezdemo.cups']);
  assert.equal(p.code, 0, show(p));
  child.kill('SIGINT');
  assert.equal(await exited, 130);
  const ended = (await jobsJson('--all')).jobs.find((x: any) => x.id === job.id);
  assert.equal(ended.state, 'aborted', JSON.stringify(ended));
  assert.match(ended.lastError, /interrupted/);
  assert.ok(ended.finishedAt);
  assert.deepEqual((await jobsJson()).jobs.filter((x: any) => x.target === 'ezdemo.cups'), [], 'not listed without --all');
  for (const node of MASTERS) {
    assert.deepEqual(await helpersOf(node, 'cups'), [], `${node}: helpers dropped`);
    assert.equal(Number((await onMaster<any>(node, "SELECT COUNT(*) AS n FROM _ezctl.job_leases WHERE target = 'ezdemo.cups'"))[0].n), 0, node);
  }
  // refused by its plan (a rename without --map): nothing changed, so no job is left behind
  const refusedRun = await sb.run(['osc', '--table', 'ezdemo.cups', '--alter', 'CHANGE v w INT NOT NULL', '--execute']);
  assert.equal(refusedRun.code, 4, show(refusedRun));
  const all = (await jobsJson('--all')).jobs.filter((x: any) => x.target === 'ezdemo.cups');
  assert.deepEqual(all.map((x: any) => x.id), [job.id], JSON.stringify(all));
});

/** A command run in a child process: its exit code and stderr when it ends. */
function startJob(args: string[]): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exited, stderr: () => err };
}

const runningJob = (kind: string, target: string, phase: string) =>
  eventually(async () => {
    const j = (await jobsJson()).jobs.find((x: any) => x.kind === kind && x.target === target);
    return j?.state === 'running' && j.phase === phase ? j : undefined;
  }, 60_000, `the ${kind} job on ${target} running, in phase ${phase}`);

const endedJob = async (id: string) => (await jobsJson('--all')).jobs.find((x: any) => x.id === id);

test('check full is a job on the cluster target check-full: listed while it runs; killed, --resume takes it over to done; refused while another host holds it; repair --execute holds the tables it writes: a second repair is refused naming it', async () => {
  await numberedTable('pots', 100_000);
  // three rows differ: sh wrote them last
  await sqlOn(sb, 'sh-master', "UPDATE ezdemo.pots SET v = -v, drc_ts = '2025-01-01 00:00:00.000' WHERE id IN (10, 20, 30)");
  // held by the throttle flag file from its first chunk until the file goes
  const flag = join(await mkdtemp(join(tmpdir(), 'ezctl-jobs-')), 'hold');
  writeFileSync(flag, '');
  const check = startJob(['check', 'full', '--tables', 'ezdemo.pots', '--lease', '5s', '--throttle-flag-file', flag]);
  try {
    const job = await runningJob('check-full', 'check-full', 'compare');
    assert.equal(job.pid, check.child.pid);
    assert.deepEqual(job.seenIn, ['bj', 'sh']);
    // an osc of a table being checked is not held up by it (a check only reads): its lease is not the table's
    const rows = await onMaster<any>('bj-master', 'SELECT target FROM _ezctl.job_leases WHERE job_id = ?', [job.id]);
    assert.deepEqual(rows.map((r) => r.target), ['check-full']);
    // killed: dead at once (its process on this host is gone); listed stopped; the next check takes it over
    await kill9(check.child);
    rmSync(flag);
    assert.equal((await jobsJson()).jobs.find((x: any) => x.id === job.id)?.state, 'stopped');
    const resumed = await sb.run(['check', 'full', '--tables', 'ezdemo.pots', '--resume']);
    assert.equal(resumed.code, 1, show(resumed));
    const ended = await endedJob(job.id);
    assert.equal(ended.state, 'done', JSON.stringify(ended));
    assert.ok(ended.resumedAt, 'resumed at');
    assert.equal(ended.progress.pct, 100);
  } finally {
    await kill9(check.child);
  }

  // a check full running on another host (its lease live; the control socket here cannot see it): refused, naming it
  for (const node of MASTERS) {
    await sqlOn(sb, node,
      "INSERT INTO _ezctl.jobs (id, cluster, kind, target, targets, zones, phase, status, host, pid, user, holder, lease_ms) SELECT 'elsewhere-check', cluster, 'check-full', 'check-full', '[\"check-full\"]', '[\"bj\",\"sh\"]', 'compare', 'running', 'elsewhere', 4242, 'u', 'elsewhere:4242:x', 60000 FROM _ezctl.jobs LIMIT 1",
      "INSERT INTO _ezctl.job_leases (cluster, target, job_id, holder, host, pid, expires_at) SELECT cluster, 'check-full', 'elsewhere-check', 'elsewhere:4242:x', 'elsewhere', 4242, NOW(3) + INTERVAL 60 SECOND FROM _ezctl.jobs LIMIT 1");
  }
  const second = await sb.run(['check', 'full', '--tables', 'ezdemo.pots']);
  assert.equal(second.code, 4, show(second));
  assert.match(second.stderr, /check-full is held by check-full job elsewhere-check on check-full \(host elsewhere, pid 4242, phase compare, lease left/);
  for (const node of MASTERS) await sqlOn(sb, node, "DELETE FROM _ezctl.job_leases WHERE job_id = 'elsewhere-check'", "DELETE FROM _ezctl.jobs WHERE id = 'elsewhere-check'");

  // repair --execute of the run: held on a row lock in every zone, so it is seen writing
  const holders = await Promise.all(MASTERS.map((n) => sb.db(n)));
  try {
    for (const db of holders) {
      await db.exec('START TRANSACTION');
      await db.query('SELECT * FROM ezdemo.pots WHERE id = 10 FOR UPDATE');
    }
    const rep = startJob(['repair', '--execute']);
    try {
      const job = await runningJob('repair', 'ezdemo.pots', 'apply');
      assert.equal(job.pid, rep.child.pid);
      const again = await sb.run(['repair', '--execute']);
      assert.equal(again.code, 4, show(again));
      assert.match(again.stderr, new RegExp(`ezdemo\\.pots is held by repair job ${job.id} on ezdemo\\.pots \\(host ${hostname()}, pid ${rep.child.pid}, phase apply, lease left`));
      for (const db of holders) await db.exec('COMMIT');
      assert.equal(await rep.exited, 0, rep.stderr());
      const ended = await endedJob(job.id);
      assert.equal(ended.state, 'done', JSON.stringify(ended));
      assert.equal(ended.progress.applied, 3, JSON.stringify(ended.progress));
    } finally {
      await kill9(rep.child);
    }
  } finally {
    await Promise.all(holders.map((db) => db.close()));
  }
  const after = await sb.run(['check', 'full', '--tables', 'ezdemo.pots']);
  assert.equal(after.code, 0, show(after));
  for (const node of MASTERS) assert.equal(Number((await onMaster<any>(node, 'SELECT COUNT(*) AS n FROM _ezctl.job_leases'))[0].n), 0, `${node}: no lease left`);
});

test('migrate drc-ts --execute holds its tables (an osc of one is refused naming it) and ends done; migrate int2bigint --execute runs as kind migrate-int2bigint', async () => {
  for (const node of MASTERS) {
    await sqlOn(sb, node, 'CREATE TABLE ezdemo.lamps (id INT PRIMARY KEY, v INT NOT NULL)', 'INSERT INTO ezdemo.lamps SELECT seq, seq FROM ezdemo.seq_1_to_1000');
  }
  // a transaction on the table in every zone: the first ALTER waits for its metadata lock
  const holders = await Promise.all(MASTERS.map((n) => sb.db(n)));
  try {
    for (const db of holders) {
      await db.exec('START TRANSACTION');
      await db.query('SELECT COUNT(*) FROM ezdemo.lamps');
    }
    const mig = startJob(['migrate', 'drc-ts', '--tables', 'ezdemo.lamps', '--lock-wait-timeout', '60s', '--execute']);
    try {
      const job = await runningJob('migrate-drc-ts', 'ezdemo.lamps', 'steps');
      assert.equal(job.pid, mig.child.pid);
      const osc = await sb.run(['osc', '--table', 'ezdemo.lamps', '--alter', 'ADD COLUMN lid TINYINT NULL', '--execute']);
      assert.equal(osc.code, 4, show(osc));
      assert.match(osc.stderr, new RegExp(`ezdemo\\.lamps is held by migrate-drc-ts job ${job.id} on ezdemo\\.lamps \\(host ${hostname()}, pid ${mig.child.pid}, phase steps, lease left`));
      for (const db of holders) await db.exec('COMMIT');
      assert.equal(await mig.exited, 0, mig.stderr());
      const ended = await endedJob(job.id);
      assert.equal(ended.state, 'done', JSON.stringify(ended));
      assert.equal(ended.progress.pct, 100, JSON.stringify(ended.progress));
    } finally {
      await kill9(mig.child);
    }
  } finally {
    await Promise.all(holders.map((db) => db.close()));
  }
  for (const node of MASTERS) assert.deepEqual(await columnsOf(node, 'lamps'), ['id', 'v', 'drc_ts'], node);

  await numberedTable('mugs', 150_000);
  // held by its flag until it is paused: still copying when the osc below asks, whatever the machine's speed
  const flag = await flagPath('hold-mugs');
  writeFileSync(flag, '');
  const mig = startJob(['migrate', 'int2bigint', '--tables', 'ezdemo.mugs', '--threshold', '0', '--execute', '--chunk-time', '1ms', '--drop-old-table', '--throttle-flag-file', flag]);
  try {
    const job = await runningJob('migrate-int2bigint', 'ezdemo.mugs', 'copy');
    assert.equal(job.pid, mig.child.pid);
    const p = await sb.run(['osc', 'pause', '--table', 'ezdemo.mugs']);
    assert.equal(p.code, 0, show(p));
    rmSync(flag);
    const osc = await sb.run(['osc', '--table', 'ezdemo.mugs', '--alter', 'ADD COLUMN lid TINYINT NULL', '--execute']);
    assert.equal(osc.code, 4, show(osc));
    assert.match(osc.stderr, new RegExp(`ezdemo\\.mugs is held by migrate-int2bigint job ${job.id} on ezdemo\\.mugs`));
    const r = await sb.run(['osc', 'resume', '--table', 'ezdemo.mugs']);
    assert.equal(r.code, 0, show(r));
    assert.equal(await mig.exited, 0, mig.stderr());
    const ended = await endedJob(job.id);
    assert.equal(ended.state, 'done', JSON.stringify(ended));
  } finally {
    await kill9(mig.child);
  }
  for (const node of MASTERS) {
    const t = await onMaster<any>(node, "SELECT DATA_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'ezdemo' AND TABLE_NAME = 'mugs' AND COLUMN_NAME = 'id'");
    assert.equal(t[0].t, 'bigint', node);
  }
});
