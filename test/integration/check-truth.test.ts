// check and repair never report fine for what they did not do (issue 11): a table missing in a
// zone is a difference; a table not compared is named with its reason and the run is not
// consistent; repair refuses to pick a winner without the DRC timestamp column, and names what it
// cannot fix; a zone master lost in the middle of a check or a repair is named, with the fix.
// No DRC runs here: nothing repairs what the tests write.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { show } from '../helpers/cli.js';
import { eventually, startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { sqlOn } from '../helpers/drc.js';
import { pidAlive } from '../../src/core/process/pids.js';

let sb: TestSandbox;
const OLD_TS = '2024-01-01 00:00:00.000';
const NEW_TS = '2025-06-01 00:00:00.000';

const both = async (...stmts: string[]) => {
  for (const m of ['bj-master', 'sh-master']) await sqlOn(sb, m, ...stmts);
};

async function value(node: string, sql: string): Promise<unknown> {
  const db = await sb.db(node);
  try {
    return await db.value(sql);
  } finally {
    await db.close();
  }
}

/** Kill a node's mariadbd (SIGKILL, by its pid) and wait until it is gone. */
async function killNode(name: string): Promise<void> {
  const pid: number = JSON.parse(readFileSync(join(sb.dir, 'sandbox.json'), 'utf8')).nodes.find((n: any) => n.name === name).pid;
  process.kill(pid, 'SIGKILL');
  await eventually(async () => !pidAlive(pid), 10_000, `${name} to die`);
}

async function restartNodes(): Promise<void> {
  const up = await sb.run(['sandbox', 'up', '--dir', sb.dir]);
  assert.equal(up.code, 0, show(up));
}

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0, load: 200 });
  await both(
    'CREATE DATABASE ezt',
    // no DRC timestamp column: nothing says which zone wrote last
    'CREATE TABLE ezt.nots (id INT PRIMARY KEY, v INT NOT NULL)',
    'INSERT INTO ezt.nots VALUES (1, 1), (2, 2), (3, 3)',
    // no key: compared as a multiset up to --keyless-max-rows
    'CREATE TABLE ezt.nokey (x INT, y VARCHAR(10))',
    "INSERT INTO ezt.nokey VALUES (1, 'a'), (2, 'b'), (2, 'b')",
    'CREATE TABLE ezt.big (id INT PRIMARY KEY, v INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))',
    `INSERT INTO ezt.big SELECT seq, seq, '${OLD_TS}' FROM ezt.seq_1_to_30000`,
    'CREATE TABLE ezt.rep (id INT PRIMARY KEY, v INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))',
    `INSERT INTO ezt.rep SELECT seq, seq, '${OLD_TS}' FROM ezt.seq_1_to_10`,
  );
  // a table only bj has
  await sqlOn(sb, 'bj-master', 'CREATE TABLE ezt.only_bj (id INT PRIMARY KEY, v INT, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))', `INSERT INTO ezt.only_bj VALUES (1, 1, '${OLD_TS}')`);
});

after(async () => {
  await sb?.down();
});

test('repair refuses (exit 4) to pick a winner for a table without the DRC timestamp column; --prefer-zone names it', async () => {
  // sh wrote last; without the column nothing can tell
  await sqlOn(sb, 'sh-master', 'UPDATE ezt.nots SET v = 20 WHERE id = 2');
  for (const args of [['repair', '--tables', 'ezt.nots'], ['repair', '--tables', 'ezt.nots', '--execute']]) {
    const r = await sb.run(args);
    assert.equal(r.code, 4, show(r));
    assert.match(r.stderr, /will not pick a winner without the DRC timestamp column/);
    assert.match(r.stderr, /ezt\.nots: no drc_ts column in bj, sh; 1 key differs/);
    assert.match(r.stderr, /--prefer-zone/);
    assert.doesNotMatch(r.stdout, /has the newest drc_ts/);
  }
  assert.equal(Number(await value('sh-master', 'SELECT v FROM ezt.nots WHERE id = 2')), 20, "sh's newer row is untouched");
  assert.equal(Number(await value('bj-master', 'SELECT v FROM ezt.nots WHERE id = 2')), 2, 'nothing changed in bj either');
  const json = await sb.run(['--json', 'repair', '--tables', 'ezt.nots']);
  assert.equal(json.code, 4, show(json));
  assert.equal(json.json().error.exitCode, 4);
  // the zone named wins
  const fix = await sb.run(['--json', 'repair', '--tables', 'ezt.nots', '--prefer-zone', 'sh', '--execute']);
  assert.equal(fix.code, 0, show(fix));
  assert.equal(fix.json().verified, 1);
  assert.deepEqual(fix.json().fixes.map((f: any) => [f.key.id, f.winner, f.actions]), [[2, 'sh', { bj: 'upsert' }]]);
  assert.equal(Number(await value('bj-master', 'SELECT v FROM ezt.nots WHERE id = 2')), 20);
  const clean = await sb.run(['check', 'full', '--tables', 'ezt.nots']);
  assert.equal(clean.code, 0, show(clean));
});

test('check full: a table missing in one zone is a difference (exit 1), named with where it is missing and where it exists', async () => {
  const r = await sb.run(['--json', 'check', 'full', '--tables', 'ezt.only_bj,ezt.rep']);
  assert.equal(r.code, 1, show(r));
  const rep = r.json();
  assert.equal(rep.consistent, false);
  assert.deepEqual(rep.missingTables, [{ table: 'ezt.only_bj', missingIn: ['sh'], presentIn: ['bj'] }]);
  assert.deepEqual(rep.skipped, []);
  const text = await sb.run(['check', 'full', '--tables', 'ezt.only_bj']);
  assert.equal(text.code, 1, show(text));
  assert.match(text.stdout, /ezt\.only_bj: table missing in sh \(exists in bj\)/);
  assert.match(text.stdout, /NOT consistent: 1 table missing in a zone/);
  assert.doesNotMatch(text.stdout, /^consistent/m);
  // _ezctl (with DRC's heartbeat table) in one zone only (a check's job creates it in every zone it
  // touches, so here it is dropped in sh, as before any job ran there): ezctl's own, no difference
  // in the application's data
  await sqlOn(sb, 'sh-master', 'DROP DATABASE _ezctl');
  const rest = await sb.run(['--json', 'check', 'full', '--exclude', 'ezt.*']);
  assert.equal(rest.code, 0, show(rest));
  assert.deepEqual(rest.json().missingTables, []);
  // check schema says the same
  const schema = await sb.run(['check', 'schema', '--tables', 'ezt.only_bj']);
  assert.equal(schema.code, 1, show(schema));
  assert.match(schema.stdout, /sh-master vs bj-master: table missing \(bj-master has it\)/);
});

test('check full: a table not compared (no key, more rows than --keyless-max-rows) is named with its reason; not consistent, exit 4', async () => {
  const r = await sb.run(['--json', 'check', 'full', '--tables', 'ezt.nokey,ezt.rep', '--keyless-max-rows', '2']);
  assert.equal(r.code, 4, show(r));
  const rep = r.json();
  assert.equal(rep.consistent, false);
  assert.equal(rep.skipped.length, 1, JSON.stringify(rep.skipped));
  assert.equal(rep.skipped[0].table, 'ezt.nokey');
  assert.match(rep.skipped[0].reason, /no primary or unique NOT NULL key, and 3 rows is more than --keyless-max-rows 2/);
  const text = await sb.run(['check', 'full', '--tables', 'ezt.nokey', '--keyless-max-rows', '2']);
  assert.equal(text.code, 4, show(text));
  assert.match(text.stdout, /ezt\.nokey: not compared: no primary or unique NOT NULL key/);
  assert.match(text.stdout, /NOT consistent: 1 table not compared/);
  // within the limit it is compared, and alike
  const compared = await sb.run(['--json', 'check', 'full', '--tables', 'ezt.nokey']);
  assert.equal(compared.code, 0, show(compared));
  assert.equal(compared.json().consistent, true);
});

test('repair names each difference it cannot fix (a keyless table, a table missing in a zone) and exits 1', async () => {
  await sqlOn(sb, 'sh-master', "DELETE FROM ezt.nokey WHERE x = 2 LIMIT 1");
  const found = await sb.run(['--json', 'check', 'full', '--tables', 'ezt.nokey,ezt.only_bj', '--delay', '200ms', '--rechecks', '1']);
  assert.equal(found.code, 1, show(found));
  const report = join(mkdtempSync(join(tmpdir(), 'ezctl-truth-')), 'report.json');
  writeFileSync(report, found.stdout);
  try {
    // from the stored run, from a report file, from a fresh check; planned and executed
    for (const args of [['repair'], ['repair', '--execute'], ['repair', '--report', report], ['repair', '--tables', 'ezt.nokey,ezt.only_bj']]) {
      const r = await sb.run(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${show(r)}`);
      assert.match(r.stdout, /cannot repair ezt\.nokey: 1 row differs, but the table has no primary or unique NOT NULL key/, args.join(' '));
      assert.match(r.stdout, /cannot repair ezt\.only_bj: table missing in sh \(exists in bj\)/, args.join(' '));
    }
    const json = await sb.run(['--json', 'repair']);
    assert.equal(json.code, 1, show(json));
    assert.deepEqual(json.json().unfixable.map((u: any) => u.table), ['ezt.nokey', 'ezt.only_bj']);
    assert.equal(json.json().planned, 0);
  } finally {
    rmSync(join(report, '..'), { recursive: true, force: true });
    await sqlOn(sb, 'sh-master', "INSERT INTO ezt.nokey VALUES (2, 'b')");
  }
});

test('check incr: a table missing in a zone is a difference; changes to a table it cannot look rows up in are named, not passed', async () => {
  const first = await sb.run(['--json', 'check', 'incr', '--tables', 'ezt.nokey']);
  assert.equal(first.code, 0, show(first));
  await sqlOn(sb, 'bj-master', "UPDATE ezt.nokey SET y = 'c' WHERE x = 1");
  const keyless = await sb.run(['--json', 'check', 'incr', '--tables', 'ezt.nokey', '--delay', '200ms', '--rechecks', '1']);
  assert.equal(keyless.code, 4, show(keyless));
  assert.equal(keyless.json().consistent, false);
  assert.equal(keyless.json().skipped[0].table, 'ezt.nokey');
  assert.match(keyless.json().skipped[0].reason, /no primary or unique NOT NULL key .*: 1 changed row not compared/);
  await sqlOn(sb, 'bj-master', 'UPDATE ezt.only_bj SET v = 2 WHERE id = 1');
  const missing = await sb.run(['check', 'incr', '--tables', 'ezt.only_bj', '--delay', '200ms', '--rechecks', '1']);
  assert.equal(missing.code, 1, show(missing));
  assert.match(missing.stdout, /ezt\.only_bj: table missing in sh \(exists in bj\)/);
  await sqlOn(sb, 'bj-master', "UPDATE ezt.nokey SET y = 'a' WHERE x = 1");
  await sb.run(['check', 'incr', '--tables', 'ezt.nokey']);
});

test('a --json report larger than a pipe holds (64 KiB) arrives whole', async () => {
  await sqlOn(sb, 'sh-master', 'UPDATE ezt.big SET v = -v WHERE id <= 1000');
  try {
    const r = await sb.run(['--json', 'check', 'full', '--tables', 'ezt.big', '--delay', '200ms', '--rechecks', '0']);
    assert.equal(r.code, 1, `exit ${r.code}, ${r.stdout.length} bytes`);
    assert.ok(r.stdout.length > 100_000, `${r.stdout.length} bytes`);
    assert.equal(r.json().tables[0].changed, 1000);
  } finally {
    await sqlOn(sb, 'sh-master', 'UPDATE ezt.big SET v = -v WHERE id <= 1000');
  }
});

test('a zone master lost in the middle of check full: the node is named, exit 3, and --resume continues the run', async () => {
  // held by a throttle flag file at its first chunk, every connection open
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-truth-'));
  const flag = join(dir, 'hold');
  writeFileSync(flag, '');
  try {
    const args = ['check', 'full', '--tables', 'ezt.big', '--throttle-flag-file', flag];
    const running = sb.run(args);
    const runId = await eventually(async () => {
      const r = await value('bj-master', "SELECT MAX(run_id) FROM _ezctl.check_tables WHERE db = 'ezt' AND tbl = 'big' AND status = 'running'").catch(() => undefined);
      return r ? String(r) : undefined;
    }, 30_000, 'the check to start on ezt.big');
    await killNode('sh-master');
    rmSync(flag);
    try {
      const r = await running;
      assert.equal(r.code, 3, show(r));
      assert.match(r.stderr, new RegExp(`^ezctl: lost connection to sh-master 127\\.0\\.0\\.1:\\d+ during check full; --resume continues run ${runId}`, 'm'));
      assert.match(r.stderr, /hint: start sh-master again .*ezctl check full --resume/);
    } finally {
      await restartNodes();
    }
    const resumed = await sb.run(['--json', ...args, '--resume']);
    assert.equal(resumed.code, 0, show(resumed));
    assert.equal(resumed.json().runId, runId, 'the same run continued');
    assert.equal(resumed.json().resumed, true);
    assert.equal(resumed.json().rows, 30000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a zone master that stops answering (SIGSTOP) in the middle of check full is named too, instead of a check that waits for good', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-truth-'));
  const flag = join(dir, 'hold');
  writeFileSync(flag, '');
  const pid: number = JSON.parse(readFileSync(join(sb.dir, 'sandbox.json'), 'utf8')).nodes.find((n: any) => n.name === 'sh-master').pid;
  try {
    const args = ['check', 'full', '--tables', 'ezt.big', '--throttle-flag-file', flag];
    const before = String(await value('bj-master', "SELECT COALESCE(MAX(run_id), '') FROM _ezctl.check_runs").catch(() => ''));
    // --connect-timeout 1: the watchdog probes every 2 s (its pace follows the connect timeout)
    const running = sb.run(['--connect-timeout', '1', ...args], { timeoutMs: 180_000 });
    const runId = await eventually(async () => {
      const r = await value('bj-master', "SELECT MAX(run_id) FROM _ezctl.check_tables WHERE db = 'ezt' AND tbl = 'big' AND status = 'running' AND run_id > ?".replace('?', `'${before}'`)).catch(() => undefined);
      return r ? String(r) : undefined;
    }, 30_000, 'the check to start on ezt.big');
    process.kill(pid, 'SIGSTOP');
    rmSync(flag);
    const r = await running;
    process.kill(pid, 'SIGCONT');
    assert.equal(r.code, 3, show(r));
    assert.match(r.stderr, new RegExp(`^ezctl: lost connection to sh-master 127\\.0\\.0\\.1:\\d+ during check full; --resume continues run ${runId}`, 'm'));
    assert.match(r.stderr, /cause: no answer from sh-master/);
    const resumed = await sb.run(['--json', ...args, '--resume']);
    assert.equal(resumed.code, 0, show(resumed));
    assert.equal(resumed.json().runId, runId);
  } finally {
    process.kill(pid, 'SIGCONT');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a zone master lost in the middle of check incr: the node is named, exit 3', async () => {
  // lost while the check waits out the settle delay before comparing
  const first = await sb.run(['check', 'incr', '--tables', 'ezt.rep']);
  assert.equal(first.code, 0, show(first));
  await sqlOn(sb, 'bj-master', 'UPDATE ezt.rep SET v = v + 1 WHERE id = 1');
  const runs = async () => Number(await value('bj-master', "SELECT COUNT(*) FROM _ezctl.check_runs WHERE kind = 'incr'"));
  const before = await runs();
  const incr = sb.run(['check', 'incr', '--tables', 'ezt.rep', '--delay', '10s']);
  // its run is recorded once the binlogs are read, just before the settle delay
  await eventually(async () => (await runs()) > before, 30_000, 'check incr to compare');
  await killNode('sh-master');
  try {
    const ri = await incr;
    assert.equal(ri.code, 3, show(ri));
    assert.match(ri.stderr, /^ezctl: lost connection to sh-master 127\.0\.0\.1:\d+ during check incr; run it again: the binlog positions are saved only after a comparison/m);
  } finally {
    await restartNodes();
  }
  await sqlOn(sb, 'bj-master', 'UPDATE ezt.rep SET v = v - 1 WHERE id = 1');
});

test('a zone master lost in the middle of repair --execute: the node is named with what was committed, exit 3', async () => {
  // lost while the fix at sh waits for a row lock there
  await sqlOn(sb, 'bj-master', `UPDATE ezt.rep SET v = -5, drc_ts = '${NEW_TS}' WHERE id = 5`);
  const holder = await sb.db('sh-master');
  try {
    await holder.exec('START TRANSACTION');
    await holder.exec('SELECT * FROM ezt.rep WHERE id = 5 FOR UPDATE');
    const fixing = sb.run(['repair', '--tables', 'ezt.rep', '--execute']);
    let ended: string | undefined;
    void fixing.then((r) => (ended = show(r)));
    await eventually(async () => {
      if (ended) throw new Error(`the repair ended before it waited for the lock: ${ended}`);
      return (await holder.query<{ Info: string | null }>('SHOW FULL PROCESSLIST')).some((p) => p.Info && /FROM `ezt`\.`rep` WHERE .* FOR UPDATE/.test(p.Info));
    }, 30_000, 'the repair to wait for the row lock at sh');
    await killNode('sh-master');
    const rr = await fixing;
    assert.equal(rr.code, 3, show(rr));
    assert.match(rr.stderr, /^ezctl: lost connection to sh-master 127\.0\.0\.1:\d+ during repair --execute; 0 fixes committed before it/m);
    // neither the error nor the job's own end (its lease row at the lost zone) speaks the driver's words
    assert.doesNotMatch(rr.stderr, /closed state/);
  } finally {
    await holder.close();
    await restartNodes();
  }
  const fixed = await sb.run(['repair', '--tables', 'ezt.rep', '--execute']);
  assert.equal(fixed.code, 0, show(fixed));
  assert.equal(Number(await value('sh-master', 'SELECT v FROM ezt.rep WHERE id = 5')), -5);
});
