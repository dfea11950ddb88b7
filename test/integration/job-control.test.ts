// The control socket of check full and of migrate drc-ts --execute, on real servers: status with
// progress, pause holds the work (sampled twice), resume continues it, a second run of the same
// cluster is refused while the first answers (exit 4), and stop ends the run at its next boundary
// with exit 130 (as Ctrl-C), its work kept: check full --resume continues the same run, the same
// drc-ts command with its --value finishes the migration.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { show } from '../helpers/cli.js';
import { eventually, startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { sqlOn } from '../helpers/drc.js';
import type { Db } from '../../src/core/db/connect.js';

let sb: TestSandbox;
let flagDir: string;
const MASTERS = ['bj-master', 'sh-master'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  flagDir = mkdtempSync(join(tmpdir(), 'ezctl-jobctl-'));
  for (const m of MASTERS) {
    await sqlOn(sb, m,
      'CREATE DATABASE ezck',
      'USE ezck',
      'CREATE TABLE ezck.big1 (id INT PRIMARY KEY, v INT NOT NULL)',
      'INSERT INTO ezck.big1 SELECT seq, seq FROM seq_1_to_200000',
      'CREATE TABLE ezck.big2 (id INT PRIMARY KEY, v INT NOT NULL)',
      'INSERT INTO ezck.big2 SELECT seq, seq FROM seq_1_to_200000',
      'CREATE DATABASE ezdts',
      'USE ezdts',
      ...[1, 2, 3, 4, 5, 6].flatMap((i) => [`CREATE TABLE ezdts.t${i} (id INT PRIMARY KEY, v INT)`, `INSERT INTO ezdts.t${i} SELECT seq, seq FROM seq_1_to_20`]),
    );
  }
});

after(async () => {
  await sb?.down();
  if (flagDir) rmSync(flagDir, { recursive: true, force: true });
});

/** A session that holds a table's metadata lock (an open transaction that read it) until released. */
async function holdTable(node: string, table: string): Promise<{ release(): Promise<void> }> {
  const db: Db = await sb.db(node);
  await db.exec('BEGIN');
  await db.query(`SELECT COUNT(*) FROM ${table}`);
  return {
    async release() {
      await db.exec('ROLLBACK').catch(() => undefined);
      await db.close();
    },
  };
}

test('check full: status with progress, pause holds it, resume continues, a second run is refused, stop ends it (exit 130) and --resume continues the run', async () => {
  const flag = join(flagDir, 'hold');
  writeFileSync(flag, '');
  const args = ['--json', 'check', 'full', '--tables', 'ezck.*', '--chunk-time', '1ms', '--concurrency', '1', '--delay', '200ms', '--rechecks', '1'];
  // held at its first chunk by the flag file, so every step below meets it running
  const job = sb.run([...args, '--throttle-flag-file', flag]);
  const ctl = (cmd: string) => sb.run(['--json', 'check', cmd]);
  const first = await eventually<any>(async () => {
    const r = await ctl('status');
    return r.code === 0 && r.json().total === 2 ? r.json() : undefined;
  }, 30_000, 'the check to answer');
  assert.equal(first.job, 'check full');
  assert.equal(typeof first.pid, 'number');
  assert.match(first.runId, /^\d{8}T\d{6}-[0-9a-f]{6}$/);
  assert.equal(first.unit, 'tables');
  assert.equal(first.done, 0);
  assert.match(first.throttled, /flag file/);

  const second = await sb.run(['check', 'full', '--tables', 'ezck.*']);
  assert.equal(second.code, 4, show(second));
  assert.match(second.stderr, new RegExp(`a check full of cluster \\S+ is already running \\(pid ${first.pid}, run ${first.runId}\\)`));

  let r = await ctl('pause');
  assert.equal(r.code, 0, show(r));
  assert.equal(r.json().paused, true);
  rmSync(flag); // the flag no longer holds it: the pause does
  await sleep(800);
  const a = (await ctl('status')).json();
  await sleep(800);
  const b = (await ctl('status')).json();
  assert.equal(b.paused, true);
  assert.match(b.throttled, /paused by operator \(ezctl check pause\)/);
  assert.equal(b.rows, a.rows, 'no rows checked while paused');

  r = await ctl('resume');
  assert.equal(r.code, 0, show(r));
  const moving = await eventually<any>(async () => {
    const s = (await ctl('status')).json();
    return s.rows > b.rows ? s : undefined;
  }, 30_000, 'rows checked after resume');
  assert.equal(moving.paused, false);
  assert.ok(moving.current.length === 1 && /^ezck\.big[12]$/.test(moving.current[0]), JSON.stringify(moving));
  assert.ok(moving.etaMs === null || moving.etaMs >= 0);

  r = await ctl('stop');
  assert.equal(r.code, 0, show(r));
  assert.equal(r.json().stopping, true);
  const stopped = await job;
  assert.equal(stopped.code, 130, show(stopped));
  const rep = stopped.json();
  assert.equal(rep.stoppedBy, 'operator');
  assert.equal(rep.complete, false);
  assert.equal(rep.runId, first.runId);
  assert.ok(rep.rows > 0 && rep.rows < 400_000, `checked ${rep.rows} rows before the stop`);

  const none = await ctl('status');
  assert.equal(none.code, 3, show(none));
  assert.match(none.stderr, /no check full of cluster \S+ answers on this host/);

  const rest = await sb.run([...args, '--resume']);
  assert.equal(rest.code, 0, show(rest));
  const done = rest.json();
  assert.equal(done.runId, first.runId, 'the stopped run continued');
  assert.equal(done.complete, true);
  assert.equal(done.consistent, true);
  assert.equal(done.rows, 400_000, 'every row checked once over the two parts');
});

test('migrate drc-ts --execute: status names the step under way, pause holds before the next step, a second run is refused, stop ends it after the step under way (exit 130), the same command finishes it', async () => {
  const FIXED = '2026-12-01 00:00:00';
  const args = ['--json', 'migrate', 'drc-ts', '--tables', 'ezdts.*', '--value', FIXED, '--lock-wait-timeout', '3s'];
  // step 1 (t1 at bj) waits for this session's metadata lock
  const a = await holdTable('bj-master', 'ezdts.t1');
  const job = sb.run([...args, '--execute']);
  const ctl = (cmd: string) => sb.run(['--json', 'migrate', 'drc-ts', cmd]);
  let b: Awaited<ReturnType<typeof holdTable>> | undefined;
  try {
    const first = await eventually<any>(async () => {
      const r = await ctl('status');
      return r.code === 0 && r.json().current.length ? r.json() : undefined;
    }, 30_000, 'the migration to answer');
    assert.equal(first.job, 'migrate drc-ts');
    assert.equal(first.unit, 'steps');
    assert.equal(first.done, 0);
    assert.ok(first.total >= 12, `${first.total} steps`);
    assert.match(first.current[0], /^step 1 at bj: ezdts\.t1: /);

    const second = await sb.run([...args, '--execute']);
    assert.equal(second.code, 4, show(second));
    assert.match(second.stderr, /a migrate drc-ts of cluster \S+ is already running \(pid \d+\)/);

    let r = await ctl('pause');
    assert.equal(r.code, 0, show(r));
    b = await holdTable('bj-master', 'ezdts.t4'); // where the run will wait after resume
    await a.release(); // step 1 ends; the pause holds step 2
    const p1 = await eventually<any>(async () => {
      const s = (await ctl('status')).json();
      return s.done === 1 && s.current.length === 0 ? s : undefined;
    }, 30_000, 'step 1 done, held before step 2');
    await sleep(800);
    const p2 = (await ctl('status')).json();
    assert.equal(p2.paused, true);
    assert.equal(p2.done, p1.done, 'no step while paused');
    assert.deepEqual(p2.current, []);

    r = await ctl('resume');
    assert.equal(r.code, 0, show(r));
    const held = await eventually<any>(async () => {
      const s = (await ctl('status')).json();
      return s.current.length && /ezdts\.t4/.test(s.current[0]) ? s : undefined;
    }, 30_000, 'the run to reach t4');
    assert.ok(held.done > p2.done);

    r = await ctl('stop');
    assert.equal(r.code, 0, show(r));
    assert.equal(r.json().stopping, true);
    await b.release();
    b = undefined;
    const stopped = await job;
    assert.equal(stopped.code, 130, show(stopped));
    const rep = stopped.json();
    assert.equal(rep.stopped.stepsDone, held.done + 1, 'the step under way finished, no other began');
    assert.ok(rep.stopped.stepsDone < rep.stopped.stepsTotal);
    assert.equal(rep.verification, undefined);
    assert.match(stopped.stderr, /stopped by `ezctl migrate drc-ts stop` after step \d+ of \d+/);
  } finally {
    await a.release().catch(() => undefined);
    await b?.release().catch(() => undefined);
  }
  const none = await ctl('status');
  assert.equal(none.code, 3, show(none));

  const rest = await sb.run([...args, '--execute']);
  assert.equal(rest.code, 0, show(rest));
  assert.equal(rest.json().verification.ok, true);
});
