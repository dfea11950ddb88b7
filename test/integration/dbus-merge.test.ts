// ezctl dbus merging shard tables (issue 15), against two real servers (the sandbox's two zone
// masters, no replicas, no DRC): four shard tables, two on each instance, with colliding
// AUTO_INCREMENT ids and a UNIQUE email, merged into one table on the second instance under
// writes. Without a key rule the move is refused (exit 4); with a shard column in the target's key
// every row is there once, while the writer updates rows, moves them between key ranges and
// deletes them during the copy. The email two shards share is recorded as a conflict (both rows),
// in the copy and in the binlog apply, never replaced. An ALTER TABLE on one shard holds its stream
// until every shard has it, then the target changes once; a different change stops the move,
// naming both statements.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { writeUntilStopped } from '../helpers/writer.js';
import { EZCTL, ROOT } from '../helpers/cli.js';
import type { Db } from '../../src/core/db/connect.js';
import { makeCtx } from '../../src/core/context.js';
import { dbusStatus, dbusVerify, loadMove, startMove, waitApplied } from '../../src/core/dbus/index.js';
import type { EzError } from '../../src/core/exit.js';
import { splitCollisions } from '../../src/core/apply/collisions.js';

let sb: TestSandbox;
let bj: Db;
let sh: Db;
const children: ChildProcess[] = [];
const ROWS = 400;
/** shard -> its instance and number */
const SHARDS = [['bj', 0], ['bj', 1], ['sh', 2], ['sh', 3]] as const;
const dbOf = (label: string) => (label === 'bj' ? bj : sh);

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  bj = await sb.db('bj-master');
  sh = await sb.db('sh-master');
  const values = SHARDS.map(([l, s]) => `"${l}:s.o_${s}": ${s}`).join(', ');
  appendFileSync(sb.config, `
dbus:
  moves:
    nokey:
      sources: [{ label: bj, cluster: demo, zone: bj }, { label: sh, cluster: demo, zone: sh }]
      target: { label: new, cluster: demo, zone: sh }
      tables:
        - { from: "s.o_[0-9]+", to: "m.nk" }
    mg:
      sources: [{ label: bj, cluster: demo, zone: bj }, { label: sh, cluster: demo, zone: sh }]
      target: { label: new, cluster: demo, zone: sh }
      tables:
        - { from: "s.o_[0-9]+", to: "m.o", merge: { kind: shard-column, column: shard_id, values: { ${values} } } }
        - { from: "bj:f.w", to: "m.w", where: "v % 2 = 0" }
    hq:
      sources: [{ label: bj, cluster: demo, zone: bj }, { label: sh, cluster: demo, zone: sh }]
      target: { label: new, cluster: demo, zone: sh }
      tables:
        - { from: "t.q_[0-9]+", to: "m.q", merge: { kind: shard-column, column: shard_id, values: { "bj:t.q_0": 0, "sh:t.q_1": 1 } } }
    off:
      sources: [{ label: bj, cluster: demo, zone: bj }, { label: sh, cluster: demo, zone: sh }]
      target: { label: new, cluster: demo, zone: sh }
      tables:
        - { from: "t.p_[0-9]+", to: "m.p", merge: { kind: offset, column: id, offsets: { "bj:t.p_0": 0, "sh:t.p_1": 1000000 } } }
`);
  for (const db of [bj, sh]) await db.exec('CREATE DATABASE s');
  for (const [label, s] of SHARDS) {
    const db = dbOf(label);
    await db.exec(`CREATE TABLE s.o_${s} (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL DEFAULT 0, email VARCHAR(64) NULL, UNIQUE KEY email (email)) ENGINE=InnoDB`);
    // ids 1..ROWS in every shard: they collide in one table keyed by id alone
    await db.exec(`INSERT INTO s.o_${s} (id, v, email) SELECT seq, seq, CONCAT('u', ${s}, '_', seq, '@x') FROM seq.seq_1_to_${ROWS}`);
  }
  // two shards, one email: o_1 (copied first) keeps it, o_3's row is a conflict
  await bj.exec("UPDATE s.o_1 SET email = 'dup@x' WHERE id = 3");
  await sh.exec("UPDATE s.o_3 SET email = 'dup@x' WHERE id = 5");
  // a filtered table: only the rows with an even v go
  await bj.exec('CREATE DATABASE f');
  await bj.exec('CREATE TABLE f.w (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
  await bj.exec('INSERT INTO f.w SELECT seq, seq FROM seq.seq_1_to_100');
  // an offset merge: ids 1..50 in both shards, apart in the target
  for (const [db, n] of [[bj, 0], [sh, 1]] as const) {
    await db.exec('CREATE DATABASE t');
    await db.exec(`CREATE TABLE t.p_${n} (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB`);
    await db.exec(`INSERT INTO t.p_${n} SELECT seq, seq * 10 + ${n} FROM seq.seq_1_to_50`);
    await db.exec(`CREATE TABLE t.q_${n} (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB`);
    await db.exec(`INSERT INTO t.q_${n} SELECT seq, seq FROM seq.seq_1_to_20`);
  }
  await sh.exec('CREATE DATABASE m');
  await sh.exec('CREATE TABLE m.p (id BIGINT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
  await sh.exec('CREATE TABLE m.q (shard_id INT NOT NULL, id INT NOT NULL, v INT NOT NULL, PRIMARY KEY (shard_id, id)) ENGINE=InnoDB');
  await sh.exec('CREATE TABLE m.o (shard_id INT NOT NULL, id INT NOT NULL, v INT NOT NULL DEFAULT 0, email VARCHAR(64) NULL, PRIMARY KEY (shard_id, id), UNIQUE KEY email (email)) ENGINE=InnoDB');
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await bj?.close();
  await sh?.close();
  await sb?.down();
});

function startJob(name: string, extra: string[] = []): { child: ChildProcess; out: () => string; exited: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, 'dbus', 'start', name, '--execute', ...extra], { cwd: ROOT, env: { ...process.env, CI: 'true', NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; stderr: string }>((res) => child.on('exit', (code) => setTimeout(() => res({ code, stderr }), 50)));
  return { child, out: () => stderr, exited };
}

/** startJob, then wait until the move follows, its job still running. */
async function startFollowingJob(name: string, extra: string[] = [], what = `${name} to follow`): Promise<ReturnType<typeof startJob>> {
  const job = startJob(name, extra);
  await eventually(async () => (await status(name).catch(() => undefined))?.state === 'following' || job.child.exitCode !== null, 60_000, what);
  assert.equal(job.child.exitCode, null, job.out());
  return job;
}

const ctx = () => makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
const status = async (name: string) => dbusStatus(ctx(), name);

/** Every source's position now applied by the move. */
async function caughtUp(name: string): Promise<void> {
  const positions = { bj: String(await bj.value('SELECT @@global.gtid_binlog_pos')), sh: String(await sh.value('SELECT @@global.gtid_binlog_pos')) };
  assert.deepEqual(await waitApplied(ctx(), name, positions, { timeoutMs: 30_000 }), { reached: true, behind: [] });
}

/** The shards' rows as the target should hold them (shard_id first), less the rows recorded as conflicts. */
async function expected(columns: string, skip: Set<string>): Promise<string[]> {
  const out: string[] = [];
  for (const [label, s] of SHARDS) {
    for (const r of await dbOf(label).query(`SELECT ${s} AS shard_id, ${columns} FROM s.o_${s} ORDER BY id`)) {
      if (!skip.has(`${label}:s.o_${s}:${String(r.id)}`)) out.push(JSON.stringify(Object.values(r).map(String)));
    }
  }
  return out.sort();
}
const actual = async (columns: string) => (await sh.query(`SELECT shard_id, ${columns} FROM m.o`)).map((r) => JSON.stringify(Object.values(r).map(String))).sort();
const conflictRows = async () => sh.query<{ source: string; source_row: string; existing_source: string | null; existing_row: string }>('SELECT source, source_row, existing_source, existing_row FROM _ezctl.dbus_conflicts WHERE move = ? ORDER BY id', ['mg']);

test('shards with colliding AUTO_INCREMENT ids into one table keyed by id alone: refused (exit 4), naming the tables and the two rules', async () => {
  // through the library (what `dbus start nokey --execute` runs: exit 4 with these lines)
  const e = await startMove(ctx(), { name: 'nokey', execute: true, resume: false, throttle: {} }).then(() => undefined, (x: EzError) => x);
  assert.equal(e?.exitCode, 4, String(e));
  const r = { stderr: `${e.message}\n${e.details.join('\n')}` };
  assert.match(r.stderr, /m\.nk \(dbus\.moves\.nokey\.tables\.0\): rows of the merged tables can collide on the target key \(id\)/);
  assert.match(r.stderr, /bj:s\.o_0, bj:s\.o_1, sh:s\.o_2, sh:s\.o_3 have AUTO_INCREMENT key/);
  assert.match(r.stderr, /kind: shard-column/);
  assert.match(r.stderr, /kind: offset/);
  assert.equal(Number(await sh.value("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'm' AND TABLE_NAME = 'nk'")), 0, 'nothing created');
});

test('with the shard column in the key: every row once under updates, key moves and deletes during the copy; a shared email recorded, never replaced; DDL held until every shard has it, then made once', async () => {
  const flag = join(sb.dir, 'merge-throttle');
  writeFileSync(flag, ''); // the copy waits until the writer has changed rows of every range
  const job = startJob('mg', ['--chunk-time', '5ms', '--throttle-flag-file', flag]);
  let step = 0;
  const write = (label: 'bj' | 'sh') => writeUntilStopped(() => sb.db(`${label}-master`), async (db, i) => {
    for (const [, s] of SHARDS.filter(([l]) => l === label)) {
      const id = 20 + ((i * 37 + s) % (ROWS - 20));
      await db.exec('BEGIN');
      await db.exec(`UPDATE s.o_${s} SET v = v + 1 WHERE id = ?`, [id]);
      // a row moved into another key range (another chunk), and one deleted, while the copy runs
      if (i % 3 === 0) await db.exec(`UPDATE s.o_${s} SET id = -id WHERE id = ?`, [20 + ((i * 53 + s) % (ROWS - 20))]);
      if (i % 4 === 0) await db.exec(`DELETE FROM s.o_${s} WHERE id = ?`, [20 + ((i * 71 + s) % (ROWS - 20))]);
      if (i % 5 === 0) await db.exec(`INSERT INTO s.o_${s} (v, email) VALUES (?, CONCAT('n', ?, '_', ?, '@x'))`, [i, s, i]);
      await db.exec('COMMIT');
    }
    step++;
  });
  const writers = [write('bj'), write('sh')];
  try {
    await eventually(async () => step > 30 || job.child.exitCode !== null, 30_000, 'the writers to change rows before the copy');
    assert.equal(job.child.exitCode, null, job.out());
    rmSync(flag);
    await eventually(async () => (await status('mg')).state === 'following' || job.child.exitCode !== null, 60_000, 'the merge to finish its copy');
    assert.equal(job.child.exitCode, null, job.out());
    const more = step;
    await eventually(async () => step > more + 10, 30_000, 'writes while following');
    // verify of the merge under the live writes: each shard against the target rows of its
    // shard_id; the one difference is o_3's row the shared email kept out, named as that conflict
    const live = await dbusVerify(ctx(), await loadMove(ctx(), { name: 'mg' }), { settleMs: 300 });
    assert.equal(live.live, true);
    assert.deepEqual(live.differences.map((d) => [d.source, d.key.map(String), d.kind, d.shard, d.conflict?.existingSource]), [['sh:s.o_3', ['5'], 'missing-at-target', 'shard_id = 3', 'bj:s.o_1']], JSON.stringify(live.differences));
    assert.match(live.differences[0]!.why, /recorded cross-shard UNIQUE conflict on \(email\)/);
    assert.deepEqual(live.tables.map((t) => t.source).sort(), ['(rows of no shard)', 'bj:f.w', 'bj:s.o_0', 'bj:s.o_1', 'sh:s.o_2', 'sh:s.o_3']);
    assert.ok(live.tables.filter((t) => t.source !== '(rows of no shard)').every((t) => t.compared && t.rows > 0), JSON.stringify(live.tables));
    for (const w of writers) assert.deepEqual((await w.stop()).errors, []);

    // the filter on binlog rows: updates moving rows into and out of it, a delete, an insert
    await bj.exec('UPDATE f.w SET v = v + 1 WHERE id <= 30');
    await bj.exec('DELETE FROM f.w WHERE id IN (40, 41)');
    await bj.exec('INSERT INTO f.w VALUES (200, 2), (201, 3)');
    await bj.exec('UPDATE f.w SET id = id + 1000 WHERE id IN (50, 51)');

    // a change in the binlog apply that would take another shard's email: recorded, not applied
    await bj.exec("UPDATE s.o_0 SET email = 'u2_7@x', v = v + 1000 WHERE id = 7");
    await caughtUp('mg');
    const rowsOf = async (db: Db, sql: string) => (await db.query(sql)).map((r) => JSON.stringify(r));
    assert.deepEqual(await rowsOf(sh, 'SELECT * FROM m.w ORDER BY id'), await rowsOf(bj, 'SELECT * FROM f.w WHERE v % 2 = 0 ORDER BY id'));
    assert.equal(Number(await sh.value('SELECT COUNT(*) FROM m.w WHERE id <= 30')), 15);
    const conflicts = await conflictRows();
    assert.equal(conflicts.length, 2, JSON.stringify(conflicts));
    assert.equal(conflicts[0]!.source, 'sh:s.o_3');
    assert.equal(JSON.parse(conflicts[0]!.source_row).email, 'dup@x');
    assert.equal(conflicts[0]!.existing_source, 'bj:s.o_1');
    assert.equal(JSON.parse(conflicts[0]!.existing_row).id, 3);
    assert.equal(conflicts[1]!.source, 'bj:s.o_0');
    assert.equal(conflicts[1]!.existing_source, 'sh:s.o_2');
    const st = await status('mg');
    assert.equal(st.conflicts, 2);
    assert.equal(st.lastConflict?.source, 'bj:s.o_0');
    const cli = await sb.run(['dbus', 'status', 'mg']);
    assert.match(cli.stdout, /2 unique-key conflicts of merged rows/);
    assert.match(cli.stdout, /collides with the row kept from sh:s\.o_2/);
    // every other row once, as the shards hold it; the two conflicting rows: the target's kept one, and o_0's old row 7 untouched
    assert.equal(String(await sh.value("SELECT email FROM m.o WHERE email = 'dup@x'") ), 'dup@x');
    assert.equal(String(await sh.value('SELECT email FROM m.o WHERE shard_id = 0 AND id = 7')), 'u0_7@x');
    assert.deepEqual(await actual('id, v, email').then((a) => a.filter((r) => !/^\["0","7",|^\["3","5",/.test(r))), await expected('id, v, email', new Set(['bj:s.o_0:7', 'sh:s.o_3:5'])));
    assert.equal(Number(await sh.value('SELECT COUNT(*) FROM m.o WHERE shard_id = 3 AND id = 5')), 0, 'the conflicting row of o_3 is not in the target');

    // planted at the target without the binlog: a shard's row changed, another's deleted, a row of no shard
    const deleted = (await sh.query<{ v: number; email: string | null }>('SELECT v, email FROM m.o WHERE shard_id = 1 AND id = 12'))[0]!;
    await sh.exec('SET sql_log_bin = 0');
    await sh.exec('UPDATE m.o SET v = v + 7 WHERE shard_id = 2 AND id = 11');
    await sh.exec('DELETE FROM m.o WHERE shard_id = 1 AND id = 12');
    await sh.exec('INSERT INTO m.o (shard_id, id, v) VALUES (9, 1, 0)');
    try {
      const cli = await sb.run(['dbus', 'verify', 'mg', '--json']);
      assert.equal(cli.code, 1, cli.stderr);
      const r = JSON.parse(cli.stdout) as { differences: Array<{ source: string; key: unknown[]; kind: string; columns?: string[]; conflict?: unknown }> };
      const got = r.differences.map((d) => `${d.source} ${d.key.map(String).join(',')} ${d.kind}${d.columns ? ` ${d.columns.join(',')}` : ''}${d.conflict ? ' conflict' : ''}`).sort();
      assert.deepEqual(got, ['(no shard) 9,1 only-at-target', 'bj:s.o_0 7 changed v,email conflict', 'bj:s.o_1 12 missing-at-target', 'sh:s.o_2 11 changed v', 'sh:s.o_3 5 missing-at-target conflict'], cli.stdout);
    } finally {
      await sh.exec('DELETE FROM m.o WHERE shard_id = 9');
      await sh.exec('UPDATE m.o SET v = v - 7 WHERE shard_id = 2 AND id = 11');
      await sh.exec('INSERT INTO m.o (shard_id, id, v, email) VALUES (1, 12, ?, ?)', [deleted.v, deleted.email]);
      await sh.exec('SET sql_log_bin = 1');
    }

    // DDL on one shard: its stream holds (the other source's rows still arrive), the target keeps its shape
    await bj.exec('ALTER TABLE s.o_0 ADD COLUMN note INT NOT NULL DEFAULT 0');
    await bj.exec('INSERT INTO s.o_0 (id, v, email, note) VALUES (900001, 1, NULL, 5)');
    await sh.exec('INSERT INTO s.o_2 (id, v) VALUES (900002, 1)');
    await eventually(async () => Number(await sh.value('SELECT COUNT(*) FROM m.o WHERE shard_id = 2 AND id = 900002')) === 1, 30_000, 'the other source to go on');
    assert.equal(Number(await sh.value("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'm' AND TABLE_NAME = 'o' AND COLUMN_NAME = 'note'")), 0, 'the target not changed yet');
    assert.equal(Number(await sh.value('SELECT COUNT(*) FROM m.o WHERE shard_id = 0 AND id = 900001')), 0, 'the held source applies nothing after the statement');
    assert.equal((await status('mg')).state, 'following');
    // the same change on the other shards (one of them on the same instance, logged after it): made once
    await bj.exec('INSERT INTO s.o_1 (id, v) VALUES (900003, 1)');
    await bj.exec('ALTER TABLE s.o_1 ADD COLUMN note INT NOT NULL DEFAULT 0');
    for (const s of [2, 3]) await sh.exec(`ALTER TABLE s.o_${s} ADD COLUMN note INT NOT NULL DEFAULT 0`);
    await sh.exec('INSERT INTO s.o_3 (id, v, note) VALUES (900004, 1, 9)');
    await caughtUp('mg');
    assert.equal(job.child.exitCode, null, job.out());
    assert.match(job.out(), /made once on the target: ALTER TABLE `m`.`o` ADD COLUMN note INT NOT NULL DEFAULT 0/);
    assert.equal(job.out().match(/made once on the target/g)?.length, 1);
    assert.deepEqual(await actual('id, v, email, note').then((a) => a.filter((r) => !/^\["0","7",|^\["3","5",/.test(r))), await expected('id, v, email, note', new Set(['bj:s.o_0:7', 'sh:s.o_3:5'])));
    assert.equal(Number(await sh.value('SELECT note FROM m.o WHERE shard_id = 0 AND id = 900001')), 5);

    // a different change on two shards: the move stops, naming both statements
    await bj.exec('ALTER TABLE s.o_0 ADD COLUMN a INT NULL');
    await sh.exec('ALTER TABLE s.o_2 ADD COLUMN b INT NULL');
    const ended = await job.exited;
    assert.equal(ended.code, 3, ended.stderr);
    assert.match(ended.stderr, /logged different changes/);
    assert.match(ended.stderr, /ALTER TABLE s\.o_0 ADD COLUMN a INT NULL/);
    assert.match(ended.stderr, /ALTER TABLE s\.o_2 ADD COLUMN b INT NULL/);
    assert.equal(Number(await sh.value("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'm' AND TABLE_NAME = 'o' AND COLUMN_NAME IN ('a', 'b')")), 0);
  } finally {
    for (const w of writers) await w.stop().catch(() => undefined);
  }
});

test('an offset merge verified shard by shard, the keys shifted back: 0 differences, then a changed, a deleted and a stray row found with their shard and source key', async () => {
  const job = await startFollowingJob('off', [], 'the offset merge to copy');
  await bj.exec('UPDATE t.p_0 SET v = v + 1 WHERE id = 4');
  await sh.exec('INSERT INTO t.p_1 (v) VALUES (7)');
  await caughtUp('off');
  assert.equal(Number(await sh.value('SELECT COUNT(*) FROM m.p')), 101);
  const move = await loadMove(ctx(), { name: 'off' });
  const clean = await dbusVerify(ctx(), move, { settleMs: 0 });
  assert.deepEqual(clean.differences, []);
  assert.deepEqual(clean.tables.map((t) => [t.source, t.rows]), [['bj:t.p_0', 50], ['sh:t.p_1', 51]]);
  await sh.exec('SET sql_log_bin = 0');
  await sh.exec('UPDATE m.p SET v = 0 WHERE id = 1000005');
  await sh.exec('DELETE FROM m.p WHERE id = 3');
  await sh.exec('INSERT INTO m.p VALUES (500, 1)');
  await sh.exec('SET sql_log_bin = 1');
  const r = await dbusVerify(ctx(), move, { settleMs: 0 });
  assert.deepEqual(r.differences.map((d) => `${d.source} ${d.key.map(String).join(',')} ${d.kind}${d.columns ? ` ${d.columns.join(',')}` : ''}`).sort(), ['bj:t.p_0 3 missing-at-target', 'bj:t.p_0 500 only-at-target', 'sh:t.p_1 5 changed v']);
  assert.match(r.differences.find((d) => d.kind === 'changed')!.why, /v \(source 51, target 0\)/);
  job.child.kill('SIGKILL');
  await job.exited;

  // a UNIQUE value met again in its own shard's older row (the copy read a newer state than the
  // target has applied) is no collision; met in another shard's range it is
  await sh.exec('CREATE TABLE m.pu (id BIGINT NOT NULL PRIMARY KEY, email VARCHAR(20) NOT NULL, UNIQUE KEY email (email)) ENGINE=InnoDB');
  await sh.exec("INSERT INTO m.pu VALUES (5, 'a@x'), (1000007, 'b@x')");
  const mapping = { source: { schema: 't', table: 'pu_1' }, target: { schema: 'm', table: 'pu' }, columns: [{ from: 'id', to: 'id' }, { from: 'email', to: 'email' }], key: ['id'], offsets: { id: 1000000 }, uniqueKeys: [['email']], ownedKeys: { column: 'id', from: 1000000n, below: null } };
  await sh.exec('BEGIN');
  try {
    const split = await splitCollisions(sh, mapping, [{ id: 8, email: 'b@x' }, { id: 9, email: 'a@x' }], 'skip');
    assert.deepEqual(split.write, []);
    assert.deepEqual(split.collisions.map((c) => [c.sourceRow.id, String(c.existing.id)]), [[9, '5']]);
    const apply = await splitCollisions(sh, mapping, [{ id: 8, email: 'b@x' }], 'write');
    assert.deepEqual([apply.write.length, apply.collisions.length], [1, 0]);
  } finally {
    await sh.exec('ROLLBACK');
  }
});

test('kill -9 while a shard\'s ALTER is held: the others ALTERed meanwhile, --resume holds it again and makes the change once, rows of every shard in their shape', async () => {
  const first = await startFollowingJob('hq', [], 'the merge to copy');
  await bj.exec('ALTER TABLE t.q_0 ADD COLUMN note INT NOT NULL DEFAULT 0');
  await bj.exec('INSERT INTO t.q_0 (id, v, note) VALUES (100, 1, 5)');
  await eventually(async () => /held until every shard has it/.test(first.out()) || first.child.exitCode !== null, 30_000, 'the ALTER to be held');
  first.child.kill('SIGKILL');
  await first.exited;
  await sh.exec('ALTER TABLE t.q_1 ADD COLUMN note INT NOT NULL DEFAULT 0');
  await sh.exec('INSERT INTO t.q_1 (id, v, note) VALUES (101, 1, 6)');
  const again = startJob('hq', ['--resume']);
  try {
    await eventually(async () => Number(await sh.value('SELECT COUNT(*) FROM m.q WHERE id >= 100')) === 2 || again.child.exitCode !== null, 30_000, 'the resumed merge to make the change and carry both rows');
    assert.equal(again.child.exitCode, null, again.out());
    await caughtUp('hq');
    assert.match(again.out(), /bj:t\.q_0 \(dbus\.moves\.hq\.tables\.0\): has column note, which the target table m\.q has not yet/);
    assert.equal(again.out().match(/made once on the target/g)?.length, 1, again.out());
    const rows = async (db: Db, shard: number, table: string) => (await db.query(`SELECT ${shard} AS shard_id, id, v, note FROM ${table} ORDER BY id`)).map((r) => JSON.stringify(Object.values(r).map(String)));
    const want = [...(await rows(bj, 0, 't.q_0')), ...(await rows(sh, 1, 't.q_1'))].sort();
    assert.deepEqual((await sh.query('SELECT shard_id, id, v, note FROM m.q')).map((r) => JSON.stringify(Object.values(r).map(String))).sort(), want);
    assert.equal(Number(await sh.value('SELECT note FROM m.q WHERE shard_id = 0 AND id = 100')), 5);
  } finally {
    again.child.kill('SIGKILL');
    await again.exited;
  }
});

test('kill -9 while the change is being made on the target, before the streams passed the shards\' statements: --resume does not make it a second time', async () => {
  const run = await startFollowingJob('hq', ['--resume'], 'the merge to follow');
  // a reader of the target table holds its metadata lock: the job's ALTER waits there, after the
  // change was recorded and before any stream goes past the shards' statements
  const reader = await sb.db('sh-master');
  await reader.exec('BEGIN');
  await reader.query('SELECT * FROM m.q LIMIT 1');
  const alterOnTarget = "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE 'ALTER TABLE `m`.`q` ADD COLUMN note2%'";
  try {
    await bj.exec('ALTER TABLE t.q_0 ADD COLUMN note2 INT NULL');
    await sh.exec('ALTER TABLE t.q_1 ADD COLUMN note2 INT NULL');
    await eventually(async () => (await sh.query(alterOnTarget)).length > 0 || run.child.exitCode !== null, 30_000, 'the change to wait for the reader on the target');
    run.child.kill('SIGKILL');
    await run.exited;
  } finally {
    await reader.exec('ROLLBACK');
    await reader.close();
  }
  // the server finishes the ALTER of the dead session: the target has the change, the streams never passed it
  await eventually(async () => (await sh.query(alterOnTarget)).length === 0, 30_000, 'the orphaned ALTER to end');
  assert.equal(Number(await sh.value("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'm' AND TABLE_NAME = 'q' AND COLUMN_NAME = 'note2'")), 1, 'the change is on the target');
  const again = startJob('hq', ['--resume']);
  try {
    await bj.exec('INSERT INTO t.q_0 (id, v, note, note2) VALUES (200, 1, 0, 7)');
    await sh.exec('INSERT INTO t.q_1 (id, v, note, note2) VALUES (201, 1, 0, 8)');
    await eventually(async () => Number(await sh.value('SELECT COUNT(*) FROM m.q WHERE id >= 200 AND note2 IS NOT NULL')) === 2 || again.child.exitCode !== null, 30_000, 'the resumed merge to carry both rows');
    assert.equal(again.child.exitCode, null, again.out());
    assert.match(again.out(), /an earlier run made on the target: not made again \(ALTER TABLE `m`.`q` ADD COLUMN note2 INT NULL\)/);
    assert.doesNotMatch(again.out(), /made once on the target/);
    assert.deepEqual((await sh.query('SELECT shard_id, id, note2 FROM m.q WHERE id >= 200 ORDER BY id')).map((r) => Object.values(r).map(String).join(',')), ['0,200,7', '1,201,8']);
  } finally {
    again.child.kill('SIGKILL');
    await again.exited;
  }
});
