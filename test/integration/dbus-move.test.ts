// ezctl dbus against two real servers (the sandbox's two zone masters, no replicas, no DRC): a
// database moved to the other instance by `dbus start` under a write workload, paused and resumed
// over its control socket, killed with -9 half-way through the copy and resumed from the
// checkpoints on the target; at the end both sides are equal row for row and a counter every write
// increments says no change was lost or applied twice. Then: a kept position whose binlog was
// purged is refused at resume (exit 4), and DDL on a moved source table stops the stream with a
// message naming the table and the statement.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { writeUntilStopped } from '../helpers/writer.js';
import { EZCTL, ROOT, show } from '../helpers/cli.js';
import type { Db } from '../../src/core/db/connect.js';
import { makeCtx } from '../../src/core/context.js';
import { dbusStatus, dbusVerify, loadMove, waitApplied } from '../../src/core/dbus/index.js';

let sb: TestSandbox;
let src: Db;
let dst: Db;
const children: ChildProcess[] = [];

const master = (zone: string) => sb.nodes.find((n) => n.zone === zone && n.role === 'master')!.name;

const ROWS = 20_000;

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  src = await sb.db(master('bj'));
  dst = await sb.db(master('sh'));
  const sh = sb.node(master('sh'));
  // the moves: mv.* to sh by DSN (the file's credentials), renamed into mv2; pg and dd for the refusals
  appendFileSync(sb.config, `
dbus:
  moves:
    mv-out:
      sources: [{ label: old, cluster: demo, zone: bj }]
      target: { label: new, dsn: "h=127.0.0.1,P=${sh.port},u=ezctl" }
      tables:
        - { from: "mv.*", to: "mv2.*" }
    pg-out:
      sources: [{ label: old, cluster: demo, zone: bj }]
      target: { label: new, cluster: demo, zone: sh }
      tables: [{ from: "pg.t" }]
    same-out:
      sources: [{ label: old, cluster: demo, zone: bj }]
      target: { label: new, dsn: "h=127.0.0.1,P=${sb.node(master('bj')).port},u=ezctl" }
      tables: [{ from: "sm.t", to: "sm2.t" }]
    dd-out:
      sources: [{ label: old, cluster: demo, zone: bj }]
      target: { label: new, cluster: demo, zone: sh }
      tables: [{ from: "dd.x", to: "dd.y" }]
`);
  await src.exec('CREATE DATABASE mv');
  await src.exec(`CREATE TABLE mv.t (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    n INT NOT NULL DEFAULT 0,
    amount DECIMAL(30,8) NULL,
    at DATETIME(6) NULL,
    name VARCHAR(64) CHARACTER SET utf8mb4 NULL,
    data VARBINARY(16) NULL,
    KEY by_n_at (n, at)
  ) ENGINE=InnoDB`);
  // a table keyed by a composite UNIQUE NOT NULL key (no primary key)
  await src.exec('CREATE TABLE mv.u (k VARCHAR(16) NOT NULL, u INT NOT NULL, n INT NOT NULL DEFAULT 0, UNIQUE KEY ku (k, u)) ENGINE=InnoDB');
  await src.exec(`INSERT INTO mv.t (id, amount, at, name, data) SELECT seq, CONCAT(seq, '.12345678'), TIMESTAMP('2026-12-04 10:00:00.123456') + INTERVAL seq SECOND, CONCAT('名', seq, '😀'), UNHEX(LPAD(HEX(seq), 8, '0')) FROM seq.seq_1_to_${ROWS}`);
  await src.exec("INSERT INTO mv.u (k, u) SELECT CONCAT('k', seq % 13), seq FROM seq.seq_1_to_2000");
  for (const db of ['pg', 'dd', 'sm']) await src.exec(`CREATE DATABASE ${db}`);
  await src.exec('CREATE TABLE sm.t (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
  await src.exec('INSERT INTO sm.t SELECT seq, 0 FROM seq.seq_1_to_30000');
  await src.exec('CREATE TABLE pg.t (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
  await src.exec('INSERT INTO pg.t SELECT seq, seq FROM seq.seq_1_to_100');
  await src.exec('CREATE TABLE dd.x (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
  await src.exec('INSERT INTO dd.x SELECT seq, seq FROM seq.seq_1_to_100');
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await src?.close();
  await dst?.close();
  await sb?.down();
});

/** `ezctl dbus start NAME --execute ...` as a child process (to be killed), with its output. */
function startJob(name: string, extra: string[] = []): { child: ChildProcess; out: () => string; exited: Promise<{ code: number | null; signal: string | null; stderr: string; stdout: string }> } {
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, 'dbus', 'start', name, '--execute', ...extra], { cwd: ROOT, env: { ...process.env, CI: 'true', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string; stdout: string }>((res) => child.on('exit', (code, signal) => setTimeout(() => res({ code, signal, stderr, stdout }), 50)));
  return { child, out: () => stderr, exited };
}

/** The move's status through the library (what `dbus status --json` prints): polled, so no process per poll. */
const status = async (name: string): Promise<Record<string, any>> => {
  const ctx = makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
  return (await dbusStatus(ctx, name)) as unknown as Record<string, any>;
};

const frontier = async (name: string, part: string) =>
  (await dst.query<{ position: string }>("SELECT position FROM _ezctl.apply_checkpoint WHERE name = ? AND part = ?", [`dbus:${name}:old`, part]).catch(() => []))[0]?.position;

const rowsOf = async (db: Db, sql: string) => (await db.query(sql)).map((r) => JSON.stringify(Object.values(r).map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v))));

async function assertSameRows(what: string, target: string, source: string): Promise<void> {
  const [a, b] = await Promise.all([rowsOf(dst, target), rowsOf(src, source)]);
  const sa = new Set(a);
  const sb2 = new Set(b);
  const onlyTarget = a.filter((r) => !sb2.has(r));
  const onlySource = b.filter((r) => !sa.has(r));
  assert.deepEqual({ onlyTarget: onlyTarget.slice(0, 3), onlySource: onlySource.slice(0, 3) }, { onlyTarget: [], onlySource: [] }, `${what}: ${onlyTarget.length} rows only in the target, ${onlySource.length} only in the source`);
  assert.equal(a.length, b.length, `${what}: row counts`);
}

test('plan: the tables, the target DDL (renamed into mv2), nothing changed', async () => {
  const r = await sb.run(['--json', 'dbus', 'plan', 'mv-out']);
  assert.equal(r.code, 0, show(r));
  const p = r.json();
  assert.deepEqual(p.tables.map((t: { target: string }) => t.target), ['mv2.t', 'mv2.u']);
  assert.deepEqual(p.tables.map((t: { key: string[] }) => t.key), [['id'], ['k', 'u']]);
  assert.ok(p.ddl.some((d: string) => d.startsWith('CREATE TABLE IF NOT EXISTS `mv2`.`t`')), p.ddl.join('\n'));
  // the plain secondary index is left out of the copy and built after it
  assert.ok(p.ddl.includes('ALTER TABLE `mv2`.`t` DROP INDEX `by_n_at`'), p.ddl.join('\n'));
  assert.deepEqual(p.laterIndexes, [{ target: 'mv2.t', schema: 'mv2', table: 't', indexes: [{ name: 'by_n_at', definition: 'KEY `by_n_at` (`n`,`at`)' }] }]);
  assert.deepEqual(p.refusals, []);
  assert.equal(Number(await dst.value("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'mv2'")), 0, 'plan created nothing');
});

test('a database moved under writes: paused and resumed, killed with -9 mid-copy, resumed from the target\'s checkpoints: equal row for row, every increment once', async () => {
  let nextId = ROWS + 1;
  const writer = writeUntilStopped(() => sb.db(master('bj')), async (db, i) => {
    const id = 1 + ((i * 7919) % ROWS);
    await db.exec('BEGIN');
    await db.exec('UPDATE mv.t SET n = n + 1 WHERE id = ?', [id]);
    await db.exec('UPDATE mv.t SET n = n + 1, amount = amount + 1 WHERE id = ?', [ROWS + 1 - id]);
    const u = 1 + ((i * 31) % 2000);
    await db.exec('UPDATE mv.u SET n = n + 1 WHERE k = ? AND u = ?', [`k${u % 13}`, u]);
    if (i % 5 === 0) await db.exec("INSERT INTO mv.t (id, n, name) VALUES (?, 1, 'new')", [nextId++]);
    if (i % 7 === 0) await db.exec('DELETE FROM mv.t WHERE id = ?', [1 + ((i * 31) % ROWS)]);
    await db.exec('COMMIT');
  });
  try {
    // first run: the flag file holds the copy where the test wants. Held from the start and let go
    // until its first checkpoint (one thread, the smallest chunks): idle on tmpfs with 4 threads the
    // whole of mv.t was copied before a flag written after the first checkpoint was seen
    const flag = join(sb.dir, 'dbus-throttle');
    writeFileSync(flag, '');
    // a few source rows locked (record locks only: the writer's inserts go on) stop the copy there,
    // a chunk in flight, however fast chunks are: at a quarter now, at three quarters for the kill
    const holdRows = async (at: number) => {
      const db = await sb.db(master('bj'));
      await db.exec('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await db.exec('BEGIN');
      await db.query('SELECT id FROM mv.t WHERE id BETWEEN ? AND ? FOR UPDATE', [at, at + 10]);
      return { release: async () => (await db.exec('ROLLBACK'), await db.close()) };
    };
    const quarter = await holdRows(ROWS / 4);
    const first = startJob('mv-out', ['--chunk-time', '1ms', '--copy-threads', '1', '--throttle-flag-file', flag]);
    await eventually(async () => (await status('mv-out')).state === 'copying' || first.child.exitCode !== null, 60_000, 'the first run to start copying');
    rmSync(flag);
    await eventually(async () => (await frontier('mv-out', 'mv.t')) || first.child.exitCode !== null, 60_000, 'the first run to copy part of mv.t');
    writeFileSync(flag, '');
    assert.equal(first.child.exitCode, null, first.out());
    const stable = async () => {
      const a = await frontier('mv-out', 'mv.t');
      await new Promise((r) => setTimeout(r, 700));
      return a === (await frontier('mv-out', 'mv.t')) && a;
    };
    await eventually(stable, 30_000, 'the throttled copy to stop');
    // a chunk waiting for the quarter's rows goes on, and the flag stops the next
    await quarter.release();
    await eventually(stable, 30_000, 'the throttled copy to stop');
    // pause over the control socket: copy and apply stop, positions kept; resume goes on
    // binlogs kept an hour: a pause warns that the kept position may be purged within it
    await src.exec('SET GLOBAL binlog_expire_logs_seconds = 3600');
    const paused = await sb.run(['--json', 'dbus', 'pause', 'mv-out']);
    await src.exec('SET GLOBAL binlog_expire_logs_seconds = 0');
    assert.equal(paused.code, 0, `${show(paused)}\n--- the job:\n${first.out().slice(-3000)}`);
    assert.equal(paused.json().state, 'paused');
    assert.equal(paused.json().sources[0].lagMs, null);
    assert.match(paused.json().sources[0].retentionWarning ?? '', /binlogs are kept 1h0m .*may be purged in about/);
    assert.match(paused.stderr, /source old: binlogs are kept/);
    const resumed = await sb.run(['--json', 'dbus', 'resume', 'mv-out']);
    assert.equal(resumed.code, 0, show(resumed));
    assert.equal(resumed.json().state, 'copying');
    const at = await frontier('mv-out', 'mv.t');
    const threeQuarters = await holdRows((ROWS * 3) / 4);
    rmSync(flag);
    // killed with -9 while it copies and applies: the copy went on after resume up to the locked rows
    const waiting = "SELECT 1 FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE '%LOCK IN SHARE MODE%'";
    await eventually(async () => (await src.query(waiting)).length > 0 || first.child.exitCode !== null, 30_000, 'the copy to go on after resume and wait for the locked rows');
    assert.notEqual(await frontier('mv-out', 'mv.t'), at, 'chunks were copied after resume');
    first.child.kill('SIGKILL');
    const died = await first.exited;
    await threeQuarters.release();
    assert.equal(died.signal, 'SIGKILL', `the first run ended before it was killed: ${died.stderr}`);
    const indexesOf = async (db: Db, schema: string) => (await db.query<{ n: string }>("SELECT DISTINCT INDEX_NAME AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 't' ORDER BY 1", [schema])).map((r) => r.n);
    assert.deepEqual(await indexesOf(dst, 'mv2'), ['PRIMARY'], 'killed mid-copy: the target still goes without its secondary index');
    const copied = Number(await dst.value('SELECT COUNT(*) FROM mv2.t'));
    assert.ok(copied > 0 && copied < ROWS, `killed half-way: ${copied} rows of mv2.t in the target`);
    assert.notEqual(await frontier('mv-out', 'mv.t'), 'done');

    // from the job row (its process is dead): stopped, with the kept position
    const cli = await sb.run(['--json', 'dbus', 'status', 'mv-out']);
    assert.equal(cli.code, 0, show(cli));
    const s = cli.json();
    assert.equal(s.state, 'stopped', JSON.stringify(s));
    assert.match(s.sources[0].appliedGtid, /^\d+-\d+-\d+/);
    // `ezctl jobs` reads the declared moves' targets too: the move is listed, stopped, --resume to go on
    const jobs = await sb.run(['--json', 'jobs']);
    assert.equal(jobs.code, 0, show(jobs));
    const listed = jobs.json().jobs.find((j: any) => j.kind === 'dbus' && j.target === 'mv-out');
    assert.equal(listed?.state, 'stopped', JSON.stringify(jobs.json()));
    assert.ok(jobs.json().clusters.includes('dbus'), JSON.stringify(jobs.json().clusters));
    // a new start without --resume is refused: the kept positions are named
    const again = await sb.run(['dbus', 'start', 'mv-out', '--execute']);
    assert.equal(again.code, 4, show(again));
    assert.match(again.stderr, /--resume/);

    // second run: resumes from those checkpoints, then follows live
    const second = startJob('mv-out', ['--resume']);
    await eventually(async () => (await status('mv-out')).state === 'following' || second.child.exitCode !== null, 120_000, 'the second run to finish the copy');
    assert.equal(second.child.exitCode, null, second.out());
    assert.match(second.out(), /resuming the copy after key/);
    // between two servers the copy ran on its default threads (the kill -9 above hit them mid-copy)
    assert.match(second.out(), /mv\.t -> mv2\.t: copied \(\d+ rows this run, 4 threads\)/);
    // the resumed run (which found the table made) built the index the first run left out, before following
    assert.match(second.out(), /mv2\.t: index by_n_at built in/);
    assert.deepEqual(await indexesOf(dst, 'mv2'), await indexesOf(src, 'mv'));
    assert.equal(String((await dst.one<Record<string, string>>('SHOW CREATE TABLE mv2.t'))!['Create Table']), String((await src.one<Record<string, string>>('SHOW CREATE TABLE mv.t'))!['Create Table']));
    const w = await writer.stop();
    assert.deepEqual(w.errors, []);
    assert.ok(w.n > 20, `the writer wrote (${w.n} transactions)`);
    // the contract C3 waits on: every change up to the source's position applied
    const end = String(await src.value('SELECT @@global.gtid_binlog_pos'));
    const ctx = makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
    const waited = await waitApplied(ctx, 'mv-out', { old: end }, { timeoutMs: 30_000 });
    assert.deepEqual(waited, { reached: true, behind: [] });

    await assertSameRows('mv2.t', 'SELECT * FROM mv2.t ORDER BY id', 'SELECT * FROM mv.t ORDER BY id');
    await assertSameRows('mv2.u', 'SELECT * FROM mv2.u ORDER BY k, u', 'SELECT * FROM mv.u ORDER BY k, u');
    // the ledger: every increment is there once
    const sum = async (db: Db, sql: string) => String(await db.value(sql));
    assert.equal(await sum(dst, 'SELECT SUM(n) FROM mv2.t'), await sum(src, 'SELECT SUM(n) FROM mv.t'));
    assert.ok(Number(await sum(src, 'SELECT SUM(n) FROM mv.u')) > 0);
    assert.equal(await sum(dst, 'SELECT SUM(n) FROM mv2.u'), await sum(src, 'SELECT SUM(n) FROM mv.u'));
    // dbus verify agrees: 0 differences in both tables (the renamed database, the composite key)
    const verified = await dbusVerify(ctx, await loadMove(ctx, { name: 'mv-out' }), { settleMs: 0 });
    assert.deepEqual(verified.differences, []);
    assert.deepEqual(verified.tables.map((t) => [t.table, t.compared]), [['mv2.t', true], ['mv2.u', true]]);

    // abort: the job ends (exit 0), its checkpoints go, the target tables stay (said so)
    const ab = await sb.run(['--json', 'dbus', 'abort', 'mv-out']);
    assert.equal(ab.code, 0, show(ab));
    assert.deepEqual(ab.json().kept, ['mv2.t', 'mv2.u']);
    const ended = await second.exited;
    assert.equal(ended.code, 0, ended.stderr);
    assert.equal(await frontier('mv-out', ''), undefined, 'checkpoints removed');
    assert.equal(Number(await dst.value('SELECT COUNT(*) FROM mv2.t')) > 0, true, 'target kept');
  } finally {
    await writer.stop().catch(() => undefined);
  }
});

test('a kept position whose binlog was purged: the resume is refused (exit 4), nothing skipped', async () => {
  const run = startJob('pg-out');
  await eventually(async () => (await status('pg-out')).state === 'following' || run.child.exitCode !== null, 60_000, 'pg-out to follow');
  run.child.kill('SIGKILL');
  await run.exited;
  // changes after the kept position, then their binlog purged
  await src.exec('UPDATE pg.t SET v = v + 1 WHERE id <= 10');
  await src.exec('FLUSH BINARY LOGS');
  const last = (await src.query<{ Log_name: string }>('SHOW BINARY LOGS')).at(-1)!.Log_name;
  // a binlog a dump thread still reads is skipped silently: the killed reader's thread goes within moments
  await eventually(async () => {
    await src.exec(`PURGE BINARY LOGS TO '${last}'`);
    return (await src.query<{ Log_name: string }>('SHOW BINARY LOGS'))[0]!.Log_name === last;
  }, 30_000, 'the old binlogs to be purged');
  const r = await sb.run(['dbus', 'start', 'pg-out', '--execute', '--resume'], { timeoutMs: 60_000 });
  assert.equal(r.code, 4, show(r));
  assert.match(r.stderr, /no longer in its binary logs/);
  assert.match(r.stderr, /purged/);
  const ab = await sb.run(['dbus', 'abort', 'pg-out', '--drop-target']);
  assert.equal(ab.code, 0, show(ab));
  assert.equal(Number(await dst.value("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'pg' AND TABLE_NAME = 't'")), 0, 'dropped');
});

test('DDL on a moved source table stops the stream, naming the table and the statement; the target keeps the old shape', async () => {
  const run = startJob('dd-out');
  await eventually(async () => (await status('dd-out')).state === 'following' || run.child.exitCode !== null, 60_000, 'dd-out to follow');
  await src.exec('INSERT INTO dd.x VALUES (1000, 1)');
  await src.exec('ALTER TABLE dd.x ADD COLUMN z INT NULL');
  await src.exec('INSERT INTO dd.x VALUES (1001, 1, 7)');
  const ended = await run.exited;
  assert.equal(ended.code, 3, ended.stderr);
  assert.match(ended.stderr, /DDL on dd\.x/);
  assert.match(ended.stderr, /ALTER TABLE dd\.x ADD COLUMN z INT NULL/);
  // the row before the statement is there, none after it
  assert.equal(Number(await dst.value('SELECT COUNT(*) FROM dd.y WHERE id = 1000')), 1);
  assert.equal(Number(await dst.value('SELECT COUNT(*) FROM dd.y WHERE id = 1001')), 0);
  const s = await status('dd-out');
  assert.equal(s.state, 'failed');
  assert.match(s.error, /ALTER TABLE dd\.x/);
  // the operator makes the change on the target too and resumes past the statement
  const gtid = /at GTID (\d+-\d+-\d+)/.exec(ended.stderr)![1]!;
  await dst.exec('ALTER TABLE dd.y ADD COLUMN z INT NULL');
  const again = startJob('dd-out', ['--resume', '--ddl-done', gtid]);
  await eventually(async () => Number(await dst.value('SELECT COUNT(*) FROM dd.y WHERE id = 1001 AND z = 7')) === 1 || again.child.exitCode !== null, 60_000, 'the row after the DDL');
  assert.equal(again.child.exitCode, null, again.out());
  const ab = await sb.run(['dbus', 'abort', 'dd-out']);
  assert.equal(ab.code, 0, show(ab));
  assert.equal((await again.exited).code, 0);
});

test('source and target one server: chunks copied with INSERT ... SELECT under writes, the stream beside them, its connection killed with a chunk in flight and started again only once the chunk is done: equal rows', async () => {
  const plan = await sb.run(['--json', 'dbus', 'plan', 'same-out']);
  assert.equal(plan.code, 0, show(plan));
  assert.deepEqual(plan.json().sameServer, ['old']);
  const writer = writeUntilStopped(() => sb.db(master('bj')), async (db, i) => {
    await db.exec('BEGIN');
    await db.exec('UPDATE sm.t SET v = v + 1 WHERE id = ?', [1 + ((i * 7919) % 5000)]);
    if (i % 3 === 0) await db.exec('DELETE FROM sm.t WHERE id = ?', [1 + ((i * 31) % 5000)]);
    if (i % 4 === 0) await db.exec('INSERT INTO sm.t VALUES (?, 1)', [100_000 + i]);
    await db.exec('COMMIT');
  });
  // a source row locked by a test session: the copy chunk that reaches it (INSERT ... SELECT ...
  // LOCK IN SHARE MODE) waits for it, in flight, holding its turn
  const locker = await sb.db(master('bj'));
  await locker.exec('BEGIN');
  await locker.query('SELECT * FROM sm.t WHERE id = 29000 FOR UPDATE');
  const run = startJob('same-out', ['--chunk-time', '20ms']);
  try {
    const inFlight = "SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT%sm2%' AND ID <> CONNECTION_ID()";
    await eventually(async () => (await src.query(inFlight)).length > 0 || run.child.exitCode !== null, 30_000, 'a copy chunk to wait for the locked row');
    assert.equal(run.child.exitCode, null, run.out());
    // the stream's connection lost (its dump thread killed on the source) while the chunk runs
    const dumps = await src.query<{ Id: number | string }>("SELECT ID AS Id FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'");
    assert.equal(dumps.length, 1, JSON.stringify(dumps));
    await src.exec(`KILL ${Number(dumps[0]!.Id)}`);
    await eventually(async () => /lost its connection/.test(run.out()) || run.child.exitCode !== null, 30_000, 'the stream to notice');
    // not started again while a chunk that took its turn on the old stream runs (its batches would
    // be applied beside it): 1.5 s is several times the retry pause (200 ms)
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await src.query(inFlight)).length, 1, 'the chunk still waits');
    assert.equal((await src.query("SELECT 1 FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")).length, 0, `the stream started again beside a chunk in flight: ${run.out().slice(-3000)}`);
    await locker.exec('ROLLBACK');
    await eventually(async () => (await src.query("SELECT 1 FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")).length === 1 || run.child.exitCode !== null, 30_000, 'the stream to start again');
    assert.equal(run.child.exitCode, null, run.out());
    await eventually(async () => (await status('same-out')).state === 'following' || run.child.exitCode !== null, 60_000, 'same-out to follow');
    assert.equal(run.child.exitCode, null, run.out());
    const w = await writer.stop();
    assert.deepEqual(w.errors, []);
    const ctx = makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
    const end = String(await src.value('SELECT @@global.gtid_binlog_pos'));
    assert.deepEqual(await waitApplied(ctx, 'same-out', { old: end }, { timeoutMs: 30_000 }), { reached: true, behind: [] });
    assert.deepEqual(await rowsOf(src, 'SELECT * FROM sm2.t ORDER BY id'), await rowsOf(src, 'SELECT * FROM sm.t ORDER BY id'));
  } finally {
    await locker.exec('ROLLBACK').catch(() => undefined);
    await locker.close();
    await writer.stop().catch(() => undefined);
    const ab = await sb.run(['dbus', 'abort', 'same-out', '--drop-target']);
    assert.equal(ab.code, 0, show(ab));
    assert.equal((await run.exited).code, 0);
  }
});
