// dbus verify against two real servers (one sandbox: bj-master the source, sh-master the target, no
// replicas): a move of one table and a renamed one (vf.r -> vf2.r2) followed live by `dbus start`;
// 0 differences under a write workload (rows that differ while the apply lags are looked at again
// once it caught up); planted differences at the target (a row changed with sql_log_bin=0, a row
// deleted, a row only there) found with their keys, exit 1; a cut-over refused by them before its
// point of no return (exit 4, nothing flipped).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { writeUntilStopped } from '../helpers/writer.js';
import { EZCTL, ROOT, show } from '../helpers/cli.js';
import type { Db } from '../../src/core/db/connect.js';
import { makeCtx } from '../../src/core/context.js';
import { dbusStatus, dbusVerify, loadMove, waitApplied } from '../../src/core/dbus/index.js';
import { fenceState } from '../../src/core/dbus/fence.js';
import { readRouteAt } from '../../src/core/dbus/route.js';

const MOVE = 'vm';
let sb: TestSandbox;
let src: Db;
let dst: Db;
let job: ChildProcess | undefined;
let jobErr = '';

const ctxOf = () => makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  src = await sb.db('bj-master');
  dst = await sb.db('sh-master');
  const sh = sb.node('sh-master');
  appendFileSync(sb.config, `
dbus:
  moves:
    ${MOVE}:
      sources: [{ label: old, cluster: demo, zone: bj }]
      target: { label: new, dsn: "h=127.0.0.1,P=${sh.port},u=ezctl" }
      tables:
        - { from: "vf.t" }
        - { from: "vf.r", to: "vf2.r2" }
    gone:
      sources: [{ label: old, cluster: demo, zone: bj }]
      target: { label: new, dsn: "h=127.0.0.1,P=1,u=ezctl" }
      tables: [{ from: "vf.t" }]
`);
  await src.exec('CREATE DATABASE vf');
  await src.exec('CREATE TABLE vf.t (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, name VARCHAR(32) CHARACTER SET utf8mb4 NULL, at DATETIME(3) NULL) ENGINE=InnoDB');
  await src.exec("INSERT INTO vf.t SELECT seq, seq, IF(seq % 3, CONCAT('名', seq), NULL), '2026-12-04 10:00:00.123' + INTERVAL seq SECOND FROM seq.seq_1_to_6000");
  // keyed by a composite key of two columns
  await src.exec('CREATE TABLE vf.r (a VARCHAR(8) NOT NULL, b INT NOT NULL, n INT NOT NULL, PRIMARY KEY (a, b)) ENGINE=InnoDB');
  await src.exec("INSERT INTO vf.r SELECT CONCAT('k', seq % 7), seq, 0 FROM seq.seq_1_to_1500");
  job = spawn(process.execPath, [EZCTL, '--config', sb.config, 'dbus', 'start', MOVE, '--execute'], { cwd: ROOT, env: { ...process.env, CI: 'true', NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
  job.stderr!.on('data', (d: Buffer) => (jobErr += d.toString()));
  await eventually(async () => {
    if (job!.exitCode !== null) throw new Error(`dbus start exited ${job!.exitCode}: ${jobErr.slice(-2000)}`);
    return (await dbusStatus(ctxOf(), MOVE).catch(() => undefined))?.state === 'following';
  }, 60_000, `dbus ${MOVE} following`);
});

after(async () => {
  if (job && job.exitCode === null && job.signalCode === null) {
    job.kill('SIGTERM');
    await new Promise((r) => job!.once('exit', r));
  }
  await src?.close();
  await dst?.close();
  await sb?.down();
});

/** Changes at the source all the time: updates (the key range's both ends), inserts, deletes, in both tables; never ids 1-100. */
function workload() {
  let next = 10_001;
  return writeUntilStopped(() => sb.db('bj-master'), async (db, i) => {
    await db.exec('BEGIN');
    await db.exec('UPDATE vf.t SET v = v + 1, at = NOW(3) WHERE id = ?', [101 + ((i * 7919) % 5900)]);
    await db.exec("UPDATE vf.t SET name = CONCAT('x', v) WHERE id = ?", [6000 - (i % 50)]);
    await db.exec('INSERT INTO vf.t (id, v) VALUES (?, ?)', [next, next]);
    next++;
    if (i % 3 === 0) await db.exec('DELETE FROM vf.t WHERE id = ?', [101 + ((i * 31) % 5900)]);
    await db.exec('UPDATE vf.r SET n = n + 1 WHERE a = ? AND b = ?', [`k${(i * 13) % 7 === 0 ? 0 : ((i * 13) % 1500) % 7}`, (i * 13) % 1500]);
    await db.exec('COMMIT');
  });
}

test('0 differences under a live write workload (the renamed table, a composite key); the report names each table', async (t) => {
  const w = workload();
  try {
    await new Promise((r) => setTimeout(r, 500));
    const move = await loadMove(ctxOf(), { name: MOVE });
    const r = await dbusVerify(ctxOf(), move, { settleMs: 300 });
    t.diagnostic(`verify under writes: ${r.ms} ms; ${r.tables.map((x) => `${x.table} ${x.rows} rows ${x.chunks} chunks ${x.ms} ms`).join(', ')}`);
    assert.deepEqual(r.differences, [], JSON.stringify(r.differences.slice(0, 5)));
    assert.equal(r.live, true);
    assert.deepEqual(r.tables.map((t) => [t.table, t.source, t.compared]), [['vf.t', 'old:vf.t', true], ['vf2.r2', 'old:vf.r', true]]);
    assert.ok(r.tables[0]!.rows >= 6000 && r.tables[1]!.rows === 1500, JSON.stringify(r.tables));
  } finally {
    const s = await w.stop();
    assert.deepEqual(s.errors, []);
  }
});

test('a row the apply has not carried yet (its target row locked) is looked at again once the apply caught up: not reported; with settle 0 it is', async (t) => {
  const holder = await sb.db('sh-master');
  try {
    await holder.exec('BEGIN');
    await holder.query('SELECT * FROM vf.t WHERE id = 50 FOR UPDATE');
    await src.exec('UPDATE vf.t SET v = v + 100 WHERE id = 50');
    const move = await loadMove(ctxOf(), { name: MOVE });
    // settle 0 (the writes held): what differs now is reported at once
    const now = await dbusVerify(ctxOf(), move, { tables: ['vf.t'], settleMs: 0 });
    assert.deepEqual(now.differences.map((d) => [d.key, d.kind]), [[[50], 'changed']]);
    // under live writes: the first look finds it, the re-check waits for the apply (held by the
    // lock until it is released below), then finds the row alike
    const release = setTimeout(() => void holder.exec('ROLLBACK'), 3000);
    const r = await dbusVerify(ctxOf(), move, { tables: ['vf.t'], settleMs: 200 });
    clearTimeout(release);
    t.diagnostic(`re-checked ${r.tables[0]!.rechecked} row(s), ${r.ms} ms`);
    assert.deepEqual(r.differences, []);
    assert.equal(r.tables[0]!.rechecked, 1);
  } finally {
    await holder.exec('ROLLBACK').catch(() => undefined);
    await holder.close();
  }
});

test('planted differences at the target (a row changed and one deleted without binlog, a row only there) are found with their keys: exit 1; --tables narrows; bad input exit 2; an unreachable target exit 3', async () => {
  // caught up first, so the verify below compares settled rows
  const pos = String(await src.value('SELECT @@global.gtid_binlog_pos'));
  assert.ok((await waitApplied(ctxOf(), MOVE, { old: pos }, { timeoutMs: 30_000 })).reached);
  await dst.exec('SET SESSION sql_log_bin = 0');
  await dst.exec('UPDATE vf.t SET v = -7 WHERE id = 7');
  await dst.exec('DELETE FROM vf.t WHERE id = 9');
  await dst.exec("INSERT INTO vf2.r2 (a, b, n) VALUES ('zz', 99999, 1)");
  await dst.exec('SET SESSION sql_log_bin = 1');
  const r = await sb.run(['--json', 'dbus', 'verify', MOVE, '--settle', '200ms']);
  assert.equal(r.code, 1, show(r));
  const rep = r.json();
  const found = rep.differences.map((d: { table: string; key: unknown[]; kind: string; columns?: string[] }) => `${d.table} ${JSON.stringify(d.key)} ${d.kind}${d.columns ? ` ${d.columns.join(',')}` : ''}`).sort();
  assert.deepEqual(found, ['vf.t [7] changed v', 'vf.t [9] missing-at-target', 'vf2.r2 ["zz",99999] only-at-target']);
  const changed = rep.differences.find((d: { kind: string }) => d.kind === 'changed');
  assert.deepEqual(changed.values, { source: { v: 7 }, target: { v: -7 } });
  assert.match(changed.why, /differs in v \(source 7, target -7\)/);
  // the text form lists them: table, key, why
  const text = await sb.run(['dbus', 'verify', MOVE, '--settle', '0']);
  assert.equal(text.code, 1, show(text));
  assert.match(text.stdout, /vf\.t id=9: missing at the target/);
  assert.match(text.stdout, /vf2\.r2 a="zz", b=99999: at the target only/);
  // one table, by its source name (the library call: what the CLI's --tables passes)
  const one = await dbusVerify(ctxOf(), await loadMove(ctxOf(), { name: MOVE }), { tables: ['old:vf.r'], settleMs: 0 });
  assert.deepEqual(one.tables.map((t) => t.table), ['vf2.r2']);
  assert.deepEqual(one.differences.map((d) => d.key), [['zz', 99999]]);
  const bad = await sb.run(['dbus', 'verify', MOVE, '--tables', 'vf.nope']);
  assert.equal(bad.code, 2, show(bad));
  assert.match(bad.stderr, /vf\.nope is not moved by vm/);
  const gone = await sb.run(['dbus', 'verify', 'gone']);
  assert.equal(gone.code, 3, show(gone));
});

test('cut-over refuses on a difference before its point of no return: exit 4 naming the row, nothing flipped, the source open', async () => {
  const cut = await sb.run(['--json', 'dbus', 'cutover', MOVE, '--execute']);
  assert.equal(cut.code, 4, show(cut));
  const rep = cut.json();
  assert.match(rep.message ?? '', /differ .*vf\.t \[7\]: differs in v/s, rep.message);
  const route = await readRouteAt(dst, MOVE);
  assert.notEqual(route?.home, 'target', 'the route still names the sources');
  assert.deepEqual((await fenceState(src, MOVE, [{ schema: 'vf', table: 't' }])).open, ['vf.t'], 'the source takes writes again');
  await src.exec('UPDATE vf.t SET v = v WHERE id = 1');
});
