// dbus cutover / rollback against real MariaDB servers (one sandbox: two instances, bj-master the
// source, sh-master the target). The fence (triggers) against every client; the route record; a
// cut-over under the writes of a client following the route record (no write reaches the source
// after the flip, none acknowledged is lost); rollback bringing the target's writes back; kill -9
// at the steps, then the same command again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { RouteClient, startFollowing, stopDbusProcesses } from '../helpers/dbus.js';
import { show } from '../helpers/cli.js';
import type { Db } from '../../src/core/db/connect.js';
import { fenceTables, unfenceTables, fenceState, admitApplier, isFenceError } from '../../src/core/dbus/fence.js';
import { writeRouteAt, readRouteAt, type DbusRoute } from '../../src/core/dbus/route.js';
import { LockWaitError } from '../../src/core/db/lockwait.js';

let sb: TestSandbox;
const opened: Db[] = [];
async function db(name: string, app = false): Promise<Db> {
  const d = app ? await sb.appDb(name) : await sb.db(name);
  opened.push(d);
  return d;
}
const errno = (e: unknown) => (e as { cause?: { errno?: number } }).cause?.errno ?? (e as { errno?: number }).errno;
async function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(() => 'ok', (e) => `ERROR ${errno(e)}`);
}

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  const a = await db('bj-master');
  await a.exec('CREATE DATABASE fz');
  await a.exec('CREATE TABLE fz.t (id INT PRIMARY KEY, v INT NOT NULL)');
  await a.exec('INSERT INTO fz.t VALUES (1, 1), (2, 2)');
  await a.exec("GRANT SELECT, INSERT, UPDATE, DELETE ON fz.* TO 'app'@'%'").catch(() => a.exec("GRANT SELECT, INSERT, UPDATE, DELETE ON fz.* TO 'app'@'localhost'")).catch(() => undefined);
});

after(async () => {
  await stopDbusProcesses(sb, MOVE, startJobs);
  await Promise.all(opened.map((d) => d.close().catch(() => undefined)));
  await sb?.down();
});

test('the fence refuses every client (ezctl with ALL PRIVILEGES, the app user, a statement prepared before it), admits only the move\'s own stream, and never reaches the binlog', async () => {
  const admin = await db('bj-master');
  const app = await db('bj-master', true);
  const early = await db('bj-master');
  // prepared before the fence: the server re-prepares it when the table's triggers change
  await early.exec("PREPARE up FROM 'UPDATE fz.t SET v = v + 1 WHERE id = 1'");
  const pos0 = await admin.value<string>('SELECT @@global.gtid_binlog_pos');
  const t = [{ schema: 'fz', table: 't' }];
  await fenceTables(admin, 'mv', t, { lockWaitS: 2, why: 'is fenced' });
  assert.equal(await admin.value<string>('SELECT @@global.gtid_binlog_pos'), pos0, 'the trigger DDL is not in the binlog');
  assert.deepEqual((await fenceState(admin, 'mv', t)).fenced, ['fz.t']);
  assert.deepEqual((await fenceState(admin, 'other', t)).otherMove, [{ table: 'fz.t', move: 'mv' }]);
  for (const [who, d] of [['ezctl', admin], ['app', app]] as const) {
    assert.equal(await outcome(d.exec('INSERT INTO fz.t VALUES (10, 10)')), 'ERROR 1644', `${who} INSERT`);
    assert.equal(await outcome(d.exec('UPDATE fz.t SET v = 5 WHERE id = 2')), 'ERROR 1644', `${who} UPDATE`);
    assert.equal(await outcome(d.exec('DELETE FROM fz.t WHERE id = 2')), 'ERROR 1644', `${who} DELETE`);
    assert.equal(await outcome(d.exec('REPLACE INTO fz.t VALUES (1, 9)')), 'ERROR 1644', `${who} REPLACE`);
  }
  assert.equal(await outcome(early.exec('EXECUTE up')), 'ERROR 1644', 'a statement prepared before the fence');
  const e = await admin.exec('INSERT INTO fz.t VALUES (11, 11)').catch((x: unknown) => x);
  assert.ok(isFenceError(e), 'the application can tell the fence from other errors');
  assert.match((e as Error).message, /ezctl dbus mv: fz\.t is fenced/);
  // the move's own stream passes; another move's does not
  const stream = await db('bj-master');
  await admitApplier(stream, 'mv');
  await stream.exec('UPDATE fz.t SET v = 20 WHERE id = 2');
  await admitApplier(stream, 'other');
  assert.equal(await outcome(stream.exec('UPDATE fz.t SET v = 21 WHERE id = 2')), 'ERROR 1644');
  assert.deepEqual(await admin.query('SELECT id, v FROM fz.t ORDER BY id'), [{ id: 1, v: 1 }, { id: 2, v: 20 }]);
  const pos1 = await admin.value<string>('SELECT @@global.gtid_binlog_pos');
  await unfenceTables(admin, 'mv', t, { lockWaitS: 2 });
  assert.equal(await admin.value<string>('SELECT @@global.gtid_binlog_pos'), pos1, 'nor is dropping it');
  assert.equal(await outcome(app.exec('UPDATE fz.t SET v = 3 WHERE id = 2')), 'ok');
  assert.deepEqual((await fenceState(admin, 'mv', t)).open, ['fz.t']);
});

test('fencing waits for the transactions that wrote the table: they commit before it (their rows in the position read after it), and past --lock-wait it gives up naming the session', async () => {
  const admin = await db('bj-master');
  const writer = await db('bj-master', true);
  const t = [{ schema: 'fz', table: 't' }];
  await writer.exec('START TRANSACTION');
  await writer.exec('INSERT INTO fz.t VALUES (30, 30)');
  const wid = Number(await writer.value('SELECT CONNECTION_ID()'));
  const e = await fenceTables(admin, 'mv', t, { lockWaitS: 1, why: 'x' }).catch((x: unknown) => x);
  assert.ok(e instanceof LockWaitError, `a LockWaitError, got ${String(e)}`);
  assert.ok(e.holders.some((h) => h.id === wid), `names session ${wid}: ${e.message}`);
  await unfenceTables(admin, 'mv', t, { lockWaitS: 2 });
  // the writer commits while a fence waits: the fence goes in after it, and the row is in the position
  const fencing = fenceTables(admin, 'mv', t, { lockWaitS: 5, why: 'x' });
  await new Promise((r) => setTimeout(r, 200));
  await writer.exec('COMMIT');
  await fencing;
  const pos = await admin.value<string>('SELECT @@global.gtid_binlog_pos');
  const rows = await admin.query<{ n: number }>('SELECT COUNT(*) AS n FROM fz.t WHERE id = 30');
  assert.equal(Number(rows[0]!.n), 1);
  assert.ok(pos);
  assert.equal(await outcome(writer.exec('INSERT INTO fz.t VALUES (31, 31)')), 'ERROR 1644');
  await unfenceTables(admin, 'mv', t, { lockWaitS: 2 });
});

test('the route record: a higher version always wins, an equal one is "same", a lower one is refused as "newer"', async () => {
  const d = await db('sh-master');
  const r = (version: number, home: DbusRoute['home']): DbusRoute => ({ move: 'rt', version, home, state: 'active', target: { label: 'new', host: '127.0.0.1', port: 1 }, sources: [{ label: 'old', host: '127.0.0.1', port: 2 }], job: null, reason: 'test' });
  const pos0 = await d.value<string>('SELECT @@global.gtid_binlog_pos');
  assert.equal(await writeRouteAt(d, r(1, 'sources')), 'written');
  assert.equal(await writeRouteAt(d, r(3, 'target')), 'written');
  assert.equal(await writeRouteAt(d, r(3, 'sources')), 'same');
  assert.equal(await writeRouteAt(d, r(2, 'sources')), 'newer');
  const got = await readRouteAt(d, 'rt');
  assert.equal(got?.version, 3);
  assert.equal(got?.home, 'target');
  assert.equal(await d.value<string>('SELECT @@global.gtid_binlog_pos'), pos0, 'the route record is written unbinlogged');
});

// ---------------------------------------------------------------- the cut-over itself

const MOVE = 'mv';

/** Declare the move in the sandbox's topology file: bj-master's database cz to sh-master. */
function declareMove(): void {
  const bj = sb.node('bj-master');
  const sh = sb.node('sh-master');
  appendFileSync(sb.config, `dbus:\n  moves:\n    ${MOVE}:\n      sources: [{ label: old, dsn: "h=127.0.0.1,P=${bj.port},u=ezctl" }]\n      target: { label: new, dsn: "h=127.0.0.1,P=${sh.port},u=ezctl" }\n      tables:\n        - { from: "cz.*" }\n`);
}

const startJobs: ChildProcess[] = [];
const startMoveJob = (resume = false) => startFollowing(sb, MOVE, startJobs, resume);

/** The move follows its source again (after a cut-over ended its job, and a rollback). */
async function ensureFollowing(): Promise<void> {
  const r = await sb.run(['--json', 'dbus', 'status', MOVE]);
  if (r.code === 0 && r.json().state === 'following') return;
  await startMoveJob(true);
}

async function ids(d: Db): Promise<Set<number>> {
  return new Set((await d.query<{ id: number }>('SELECT id FROM cz.acct')).map((r) => Number(r.id)));
}

/** The rows of cz.acct the source's binlog carries after `pos` (the client's writes would be there). */
async function binlogRowsAfter(pos: string): Promise<number[]> {
  const bj = sb.node('bj-master');
  const out: number[] = [];
  const { BinlogStream } = await import('../../src/core/binlog/stream.js');
  const end = String(await (await db('bj-master')).value('SELECT @@global.gtid_binlog_pos'));
  if (end === pos) return out;
  await new Promise<void>((resolve, reject) => {
    const s = new BinlogStream({
      endpoint: { label: 'bj', host: bj.host, port: bj.port, user: 'ezctl', password: sb.adminPassword, passwordSource: 'test' },
      flavor: 'mariadb', from: pos, serverId: 4242,
      onTx: (tx) => {
        for (const c of tx.changes) if (c.schema === 'cz' && c.table === 'acct') out.push(Number((c.after ?? c.before)!.id));
        if (tx.gtid === end.split(',').find((g) => g.startsWith(`${tx.domain}-`))) void s.stop().then(resolve);
      },
      onError: reject,
    });
    void s.start().catch(reject);
  });
  return out;
}

test('cut-over under the writes of a client following the route record: no write reaches the source after the flip, none acknowledged is lost; rollback brings the target\'s writes back', { timeout: 240_000 }, async (t) => {
  const old = await db('bj-master');
  await old.exec('CREATE DATABASE cz');
  await old.exec('CREATE TABLE cz.acct (id INT PRIMARY KEY, v INT NOT NULL, at VARCHAR(8) NOT NULL)');
  await old.exec('INSERT INTO cz.acct SELECT seq, seq, "seed" FROM cz.seq_1_to_2000');
  declareMove();
  // refused while no job follows the move: nothing fenced, the route untouched
  const early = await sb.run(['--json', 'dbus', 'cutover', MOVE, '--execute']);
  assert.equal(early.code, 4, show(early));
  assert.match(early.json().refusals.join('\n'), /dbus start mv --execute/);
  assert.deepEqual((await fenceState(old, MOVE, [{ schema: 'cz', table: 'acct' }])).open, ['cz.acct']);
  await startMoveJob();
  const client = new RouteClient(MOVE, { old: await db('bj-master'), new: await db('sh-master'), readOld: await db('bj-master'), readNew: await db('sh-master') }, 100_000, (d, at, id) => d.exec('INSERT INTO cz.acct (id, v, at) VALUES (?, ?, ?)', [id, id, at]));
  client.start();
  await eventually(async () => client.acked.length >= 20, 10_000, 'the client writing');

  const cut = await sb.run(['--json', 'dbus', 'cutover', MOVE, '--execute']);
  assert.equal(cut.code, 0, show(cut));
  const rep = cut.json();
  assert.equal(rep.outcome, 'done');
  await eventually(async () => client.acked.some((a) => a.at === 'new'), 10_000, 'the client writing at the target');
  await new Promise((r) => setTimeout(r, 300));

  // nothing of the client's reached the source after its final position, but what the reverse
  // stream carried back from the target (rows the client wrote there)
  const finalPos = rep.finalPositions.old as string;
  const after = await binlogRowsAfter(finalPos);
  const atNew = new Set(client.acked.filter((a) => a.at === 'new').map((a) => a.id));
  assert.deepEqual(after.filter((id) => !atNew.has(id)), [], 'client rows in the source binlog after the final position');
  // every acknowledged write is at the target
  const tgt = await ids(await db('sh-master'));
  assert.deepEqual(client.acked.filter((a) => !tgt.has(a.id)).map((a) => a.id), [], 'acknowledged writes missing at the target');

  // rollback under the same writes: everything written at the target is at the source
  const back = await sb.run(['--json', 'dbus', 'rollback', MOVE, '--execute']);
  assert.equal(back.code, 0, show(back));
  t.diagnostic(`cut-over window ${JSON.stringify(rep.window)}, rollback window ${JSON.stringify(back.json().window)}; steps ${rep.result.timeline.map((x: { step: string; durationMs: number }) => `${x.step} ${x.durationMs}`).join(', ')}`);
  await eventually(async () => client.acked.at(-1)?.at === 'old', 10_000, 'the client writing at the source again');
  await client.finish();
  t.diagnostic(`client: ${client.acked.length} acked (${client.acked.filter((a) => a.at === 'new').length} at the target), ${client.fenced} refused by the fence`);
  const src = await ids(old);
  assert.deepEqual(client.acked.filter((a) => !src.has(a.id)).map((a) => a.id), [], 'acknowledged writes missing at the source after the rollback');
  assert.ok(client.acked.some((a) => a.at === 'new'), 'some writes went to the target meanwhile');
  // one side open: the source takes writes, the target is fenced
  assert.deepEqual((await fenceState(old, MOVE, [{ schema: 'cz', table: 'acct' }])).open, ['cz.acct']);
  assert.deepEqual((await fenceState(await db('sh-master'), MOVE, [{ schema: 'cz', table: 'acct' }])).fenced, ['cz.acct']);
});

test('kill -9 at each step of a cut-over, then the same command again: never open at both sides, never fenced for good', { timeout: 300_000 }, async () => {
  const t = [{ schema: 'cz', table: 'acct' }];
  const old = await db('bj-master');
  const neu = await db('sh-master');
  const open = async () => ({ old: (await fenceState(old, MOVE, t)).open.length > 0, new: (await fenceState(neu, MOVE, t)).open.length > 0 });
  // before the flip with the most left behind (both sides fenced, the reverse process ready), and past it
  for (const [step, at] of [['reverse-stream', 'after'], ['flip', 'after']] as const) {
    // the move follows the source again after the last run (a cut-over past its flip is rolled back first)
    const cur = await readRouteAt(neu, MOVE);
    if (cur?.home === 'target') {
      const b = await sb.run(['--json', 'dbus', 'rollback', MOVE, '--execute']);
      assert.equal(b.code, 0, show(b));
    }
    await ensureFollowing();
    const killed = await sb.run(['--json', 'dbus', 'cutover', MOVE, '--execute'], { env: { ...process.env, EZCTL_FAULT_KILL_AT: `dbus-cutover:${step}:${at}` } });
    assert.equal(killed.code, null, `killed at ${step}:${at}: ${show(killed)}`);
    const o = await open();
    assert.ok(!(o.old && o.new), `${step}:${at}: both sides open after the kill`);
    const again = await sb.run(['--json', 'dbus', 'cutover', MOVE, '--execute']);
    assert.ok(again.code === 0 || again.code === 4, `${step}:${at}: ${show(again)}`);
    const r = again.json();
    assert.ok(r.resumedDeadJob, `${step}:${at}: the rerun resumed the dead job`);
    const o2 = await open();
    assert.ok(o2.old !== o2.new, `${step}:${at}: exactly one side open after the rerun (${JSON.stringify(o2)})`);
    const route = await readRouteAt(neu, MOVE);
    assert.equal(route?.state, 'active');
    assert.equal(route?.home === 'target', o2.new, `${step}:${at}: the route names the open side`);
  }
});
