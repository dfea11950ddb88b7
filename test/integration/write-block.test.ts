// db/write-block.ts against a real MariaDB 10.11 server: every write blocked, the application
// user's and root's (READ_ONLY ADMIN ignores read_only) on fresh sessions and on sessions opened
// before the block; the bound (a writer killed past the grace period, or the block given up with
// nothing left changed); the block going with its holder's connection (ezctl killed -9).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { ROOT } from '../helpers/cli.js';
import { connect, type Db, type Endpoint } from '../../src/core/db/connect.js';
import { readDefaultsFile } from '../../src/core/config/defaults-file.js';
import { blockWrites, runningWrites, type WriteBlock } from '../../src/core/db/write-block.js';
import { EzError } from '../../src/core/exit.js';

let sb: TestSandbox;
let admin: Endpoint;
let app: Endpoint;
let ctl: Db;
const opened: Db[] = [];

async function open(ep: Endpoint): Promise<Db> {
  const d = await connect(ep);
  opened.push(d);
  return d;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a statement did within ms: 'ok', 'ERROR <errno>' / the client's code, or 'waiting'. */
function watch(p: Promise<unknown>): { now(ms?: number): Promise<string>; done: Promise<string> } {
  const done = p.then(
    () => 'ok',
    (e: { cause?: { errno?: number; code?: string }; code?: string }) => (e.cause?.errno ? `ERROR ${e.cause.errno}` : String(e.cause?.code ?? e.code)),
  );
  return { done, now: (ms = 400) => Promise.race([done, sleep(ms).then(() => 'waiting')]) };
}

async function count(tag: string): Promise<number> {
  return Number(await ctl.value('SELECT COUNT(*) FROM wb.t WHERE tag = ?', [tag]));
}
async function readOnly(): Promise<number> {
  return Number(await ctl.value('SELECT @@GLOBAL.read_only'));
}

before(async () => {
  sb = await startSandbox({ zones: ['bj'], replicas: 0 });
  const n = sb.node('bj-master');
  admin = { label: 'bj-master', host: n.host, port: n.port, user: 'ezctl', password: sb.adminPassword, passwordSource: 'test' };
  app = { ...admin, user: 'app', password: readDefaultsFile(join(sb.dir, 'app.cnf')).password! };
  ctl = await open(admin);
  await ctl.exec('CREATE DATABASE wb');
  await ctl.exec('CREATE TABLE wb.t (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) NOT NULL, v INT NOT NULL DEFAULT 0)');
  await ctl.exec("INSERT INTO wb.t (tag) SELECT 'seed' FROM wb.seq_1_to_200");
});

after(async () => {
  for (const d of opened) await d.close();
  await sb?.down();
});

test('held: no write commits, app user, root on a fresh session or one opened before, an open transaction; killClients ends them; read_only stays ON', async () => {
  // sessions opened before the block: root idle, root in a write transaction (as DRC's applier is between batches)
  const rootBefore = await open(admin);
  const rootTrx = await open(admin);
  await rootTrx.exec('BEGIN');
  await rootTrx.exec("INSERT INTO wb.t (tag) VALUES ('held-trx')");
  const appBefore = await open(app);

  const block = await blockWrites(admin, { lockWaitMs: 5000, graceMs: 2000 });
  assert.equal(block.mechanism, 'read_only=1 + BACKUP STAGE BLOCK_COMMIT');
  assert.equal(block.readOnlyBefore, false);
  assert.deepEqual(block.killed, [], 'an idle open write transaction does not hold the block back');
  assert.equal(await block.held(), true);
  assert.equal(await readOnly(), 1);

  const pos1 = await block.finalPosition();
  const appIns = watch(appBefore.exec("INSERT INTO wb.t (tag) VALUES ('held-app')"));
  const rootFresh = await open(admin);
  const freshIns = watch(rootFresh.exec("INSERT INTO wb.t (tag) VALUES ('held-root-fresh')"));
  const beforeIns = watch(rootBefore.exec("INSERT INTO wb.t (tag) VALUES ('held-root-before')"));
  const trxCommit = watch(rootTrx.exec('COMMIT'));
  const ddl = watch((await open(admin)).exec('CREATE TABLE wb.held_ddl (id INT PRIMARY KEY)'));
  // the application user is refused at once (ERROR 1290, read-only); root's statements wait
  assert.equal(await appIns.now(), 'ERROR 1290');
  assert.equal(await freshIns.now(), 'waiting');
  assert.equal(await beforeIns.now(), 'waiting');
  assert.equal(await trxCommit.now(), 'waiting');
  assert.equal(await ddl.now(), 'waiting');
  // nothing reaches the binlog while it is held
  await sleep(300);
  assert.equal(await block.finalPosition(), pos1);
  assert.equal(String(await ctl.value('SELECT @@GLOBAL.gtid_binlog_pos')), pos1);

  // a demoted master: what waits behind the block must not commit once it is lifted
  const killed = await block.killClients();
  const ids = killed.map((s) => s.id).sort((a, b) => a - b);
  for (const d of [rootFresh, rootBefore, rootTrx, appBefore]) {
    assert.ok(ids.includes(Number(d.conn.threadId)), `session ${d.conn.threadId} killed (killed: ${ids.join(', ')})`);
  }
  // ctl is a client too, and was killed: reconnect
  ctl = await open(admin);
  for (const w of [freshIns, beforeIns, trxCommit]) assert.notEqual(await w.done, 'ok');
  assert.ok(!killed.some((s) => s.user === 'system user'), 'no system thread killed');

  await block.release({ restoreReadOnly: false });
  assert.equal(await block.held(), false);
  assert.equal(await readOnly(), 1, 'read_only stays ON on a demoted master');
  for (const tag of ['held-app', 'held-root-fresh', 'held-root-before', 'held-trx']) assert.equal(await count(tag), 0, `${tag} absent`);
  assert.equal(Number(await ctl.value("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'wb' AND TABLE_NAME = 'held_ddl'")), 0);
  // root is not stopped by read_only alone once the block is lifted: that is why the block exists
  await ctl.exec("INSERT INTO wb.t (tag) VALUES ('after-release')");
  assert.equal(await count('after-release'), 1);
  await ctl.exec('SET GLOBAL read_only = 0');
});

test('release({restoreReadOnly: true}): writable again, the waiting root write commits, the application writes again', async () => {
  const app1 = await open(app);
  const root = await open(admin);
  const block = await blockWrites(admin, { lockWaitMs: 5000 });
  const pos = await block.finalPosition();
  const rootIns = watch(root.exec("INSERT INTO wb.t (tag) VALUES ('rb-root')"));
  assert.equal(await rootIns.now(), 'waiting');
  assert.equal(await watch(app1.exec("INSERT INTO wb.t (tag) VALUES ('rb-app-held')")).now(), 'ERROR 1290');
  await block.release({ restoreReadOnly: true });
  assert.equal(await rootIns.done, 'ok', 'a rollback loses no write that waited');
  assert.equal(await readOnly(), 0);
  await app1.exec("INSERT INTO wb.t (tag) VALUES ('rb-app')");
  assert.equal(await count('rb-root'), 1);
  assert.equal(await count('rb-app'), 1);
  assert.equal(await count('rb-app-held'), 0);
  assert.notEqual(String(await ctl.value('SELECT @@GLOBAL.gtid_binlog_pos')), pos);
});

test('past graceMs a transaction running a write is killed and the block succeeds; a long SELECT is neither killed nor waited for', async () => {
  const writer = await open(app);
  const writerId = Number(writer.conn.threadId);
  await writer.exec('BEGIN');
  await writer.exec("INSERT INTO wb.t (tag) VALUES ('grace-trx')");
  const update = watch(writer.exec("UPDATE wb.t SET v = v + SLEEP(0.1) WHERE tag = 'seed'")); // 20 s
  const reader = await open(app);
  const select = watch(reader.query('SELECT SLEEP(3) FROM wb.t LIMIT 1'));
  await sleep(200);
  const logs: string[] = [];
  const block = await blockWrites(admin, { lockWaitMs: 10_000, graceMs: 500, log: (m) => logs.push(m) });
  try {
    assert.deepEqual(block.killed.map((s) => s.id), [writerId]);
    assert.equal(block.killed[0]!.user, 'app');
    assert.match(block.killed[0]!.info ?? '', /^UPDATE wb\.t/);
    assert.ok(block.tookMs >= 500, `took ${block.tookMs} ms: nothing killed before the grace period`);
    assert.ok(logs.some((l) => l.includes(`killed session ${writerId}`)), logs.join('\n'));
    assert.notEqual(await update.done, 'ok');
  } finally {
    await block.release({ restoreReadOnly: true });
  }
  assert.equal(await select.done, 'ok', 'the reader ran to its end');
  assert.equal(await count('grace-trx'), 0, 'the killed transaction rolled back');
  assert.equal(await readOnly(), 0);
});

test('a running write, no grace: the block is given up at lockWaitMs (exit 4) naming it, the server left as it was', async () => {
  const writer = await open(admin);
  const writerId = Number(writer.conn.threadId);
  const update = watch(writer.exec("UPDATE wb.t SET v = v + SLEEP(0.02) WHERE tag = 'seed'")); // 4 s
  await sleep(200);
  const t0 = Date.now();
  const err = await blockWrites(admin, { lockWaitMs: 1000 }).then(
    (b: WriteBlock) => b.release({ restoreReadOnly: true }).then(() => assert.fail('blocked')),
    (e: unknown) => e,
  );
  const stillRunning = await update.now(0);
  assert.ok(err instanceof EzError, String(err));
  assert.equal(err.exitCode, 4);
  assert.match(err.message, /writes not blocked within 1000 ms \(SET GLOBAL read_only = 1 still waiting\)/);
  assert.match(err.message, new RegExp(`held back by session ${writerId} \\(ezctl@[^,]+, Query, \\d+ s, "UPDATE wb\\.t SET v`));
  assert.match(err.message, /nothing left changed \(read_only OFF as before\)/);
  assert.match(err.hint ?? '', new RegExp(`raise --lock-wait, or end those sessions \\(KILL ${writerId}\\)`));
  assert.equal(stillRunning, 'waiting', `gave up before the writer ended (${Date.now() - t0} ms)`);
  assert.equal(await readOnly(), 0, 'read_only OFF as before');
  assert.equal(await update.done, 'ok', 'the writer was not killed');
  // no lock left, writable: the application writes
  await (await open(app)).exec("INSERT INTO wb.t (tag) VALUES ('after-refusal-app')");
  assert.equal(await count('after-refusal-app'), 1);
});

test('read_only already ON and a LOCK TABLES ... WRITE holder: given up, read_only left ON, no lock left', async () => {
  await ctl.exec('SET GLOBAL read_only = 1');
  const locker = await open(admin);
  try {
    await locker.exec('LOCK TABLES wb.t WRITE');
    const err = await blockWrites(admin, { lockWaitMs: 800 }).then(
      (b: WriteBlock) => b.release({ restoreReadOnly: true }).then(() => assert.fail('blocked')),
      (e: unknown) => e,
    );
    assert.ok(err instanceof EzError, String(err));
    assert.equal(err.exitCode, 4);
    assert.match(err.message, /BACKUP STAGE START still waiting/);
    // without the plugin a LOCK TABLES holder looks idle: the message says how to have it named
    assert.match(err.message, /metadata_lock_info/);
    assert.match(err.message, /read_only ON as before/);
    assert.equal(await readOnly(), 1);
  } finally {
    await locker.exec('UNLOCK TABLES');
    await ctl.exec('SET GLOBAL read_only = 0');
  }
  await ctl.exec("INSERT INTO wb.t (tag) VALUES ('after-refusal-ro')");
});

test('with the metadata_lock_info plugin a LOCK TABLES ... WRITE holder is named, and killed past the grace period', async () => {
  await ctl.exec("INSTALL SONAME 'metadata_lock_info'");
  try {
    const locker = await open(admin);
    const lockerId = Number(locker.conn.threadId);
    await locker.exec('LOCK TABLES wb.t WRITE');
    const err = await blockWrites(admin, { lockWaitMs: 800 }).then(
      async (b: WriteBlock) => {
        await b.release({ restoreReadOnly: true });
        await locker.exec('UNLOCK TABLES');
        return assert.fail('blocked');
      },
      (e: unknown) => e as EzError,
    );
    assert.equal(err.exitCode, 4);
    assert.match(err.message, new RegExp(`held back by session ${lockerId} \\(ezctl@`));
    assert.equal(await readOnly(), 0);
    const block = await blockWrites(admin, { lockWaitMs: 5000, graceMs: 0 });
    assert.deepEqual(block.killed.map((s) => s.id), [lockerId]);
    await block.release({ restoreReadOnly: true });
    assert.equal(await readOnly(), 0);
  } finally {
    await ctl.exec("UNINSTALL SONAME 'metadata_lock_info'");
  }
});

test('interrupted (signal) while waiting: exit 130, read_only put back', async () => {
  const writer = await open(admin);
  const update = watch(writer.exec("UPDATE wb.t SET v = v + SLEEP(0.01) WHERE tag = 'seed'")); // 2 s
  await sleep(200);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 300);
  const err = await blockWrites(admin, { lockWaitMs: 10_000, signal: ac.signal }).then(() => assert.fail('blocked'), (e: unknown) => e as EzError);
  assert.equal(err.exitCode, 130);
  assert.equal(await readOnly(), 0);
  assert.equal(await update.done, 'ok');
});

test('runningWrites: write transactions open for at least N seconds, not readers', async () => {
  const w = await open(app);
  await w.exec('BEGIN');
  await w.exec("INSERT INTO wb.t (tag) VALUES ('rw')");
  const r = await open(app);
  await r.exec('BEGIN');
  await r.query('SELECT COUNT(*) FROM wb.t');
  await sleep(1100);
  const found = await runningWrites(ctl, 1);
  assert.deepEqual(found.map((s) => s.id), [Number(w.conn.threadId)]);
  assert.equal(found[0]!.rowsModified, 1);
  assert.ok(found[0]!.timeS >= 1);
  assert.deepEqual(await runningWrites(ctl, 60), []);
  // INNODB_TRX.trx_started is in the server's system time zone, whatever the session's: a server
  // in Asia/Shanghai (measured with TZ=CST-8: an age of -28798 s) is the same as asking from a
  // session 5 h east of this UTC server; the age must not move with it
  const east = await open(admin);
  await east.exec("SET SESSION time_zone = '+05:00'");
  assert.deepEqual((await runningWrites(east, 1)).map((s) => s.id), [Number(w.conn.threadId)]);
  assert.deepEqual(await runningWrites(east, 60), [], 'a 1 s old transaction is not 5 hours old');
  await w.exec('ROLLBACK');
  await r.exec('COMMIT');
});

test('the holder dying (ezctl killed -9) takes the block with it; read_only=1 is what stays', async () => {
  const script = `
    import { blockWrites } from ${JSON.stringify(join(ROOT, 'dist/core/db/write-block.js'))};
    const ep = JSON.parse(process.env.EP);
    const b = await blockWrites(ep, { lockWaitMs: 5000 });
    process.stdout.write('held ' + b.holderId + '\\n');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, EP: JSON.stringify(admin) }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  try {
    await eventually(async () => out.includes('held'), 15_000, 'the child to hold the block');
    const root = await open(admin);
    const ins = watch(root.exec("INSERT INTO wb.t (tag) VALUES ('after-kill9')"));
    assert.equal(await ins.now(), 'waiting');
    child.kill('SIGKILL');
    assert.equal(await ins.done, 'ok', 'the block went with its session');
    assert.equal(await readOnly(), 1, 'read_only=1 stays: the application user is still stopped');
    assert.equal(await watch((await open(app)).exec("INSERT INTO wb.t (tag) VALUES ('after-kill9-app')")).now(), 'ERROR 1290');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await ctl.exec('SET GLOBAL read_only = 0');
  }
});

test('held() says false once the holder session is killed by someone else', async () => {
  const block = await blockWrites(admin, { lockWaitMs: 5000 });
  await ctl.exec('KILL CONNECTION ?', [block.holderId]);
  assert.equal(await block.held(), false);
  await assert.rejects(block.finalPosition(), /no longer held/);
  await ctl.exec("INSERT INTO wb.t (tag) VALUES ('after-holder-killed')");
  await block.release({ restoreReadOnly: true });
  assert.equal(await readOnly(), 0);
});

test('release keeps its promise about read_only when someone changed it meanwhile or its second session was killed', async () => {
  // a demoted master: read_only ends ON even if someone turned it off while the block was held
  let block = await blockWrites(admin, { lockWaitMs: 5000 });
  await ctl.exec('SET GLOBAL read_only = 0');
  await block.release({ restoreReadOnly: false });
  assert.equal(await readOnly(), 1);
  await ctl.exec('SET GLOBAL read_only = 0');

  // a rollback whose watching session was killed: read_only is put back through a new session
  const ids = async () => new Set((await ctl.query<{ id: number }>('SELECT ID AS id FROM information_schema.PROCESSLIST')).map((r) => Number(r.id)));
  const before = await ids();
  block = await blockWrites(admin, { lockWaitMs: 5000 });
  const watcher = [...(await ids())].filter((id) => !before.has(id) && id !== block.holderId);
  assert.equal(watcher.length, 1, `one new session besides the holder: ${watcher.join(', ')}`);
  await ctl.exec('KILL CONNECTION ?', [watcher[0]!]);
  assert.equal(await block.held(), true, 'the block is the holder session, not the watcher');
  await block.release({ restoreReadOnly: true });
  assert.equal(await readOnly(), 0);
  await ctl.exec("INSERT INTO wb.t (tag) VALUES ('after-watcher-killed')");
});
