// The throttle's signals against real servers: replica lag (stopped and blocked SQL thread),
// server load (sessions running), DRC lag from heartbeat rows, connection recovery, and the
// cluster throttle built from options (which nodes it connects to, flag file, bad limits).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import type { Db } from '../../src/core/db/connect.js';
import { makeCtx, type Ctx } from '../../src/core/context.js';
import { EzError } from '../../src/core/exit.js';
import { ensureStateSchema } from '../../src/core/state/schema.js';
import { globalStatus } from '../../src/core/db/server.js';
import {
  Throttler,
  replicaLagSignal,
  loadSignal,
  drcLagSignal,
  measureDrcLagMs,
  verifyStatusVariables,
  throttlerFor,
  type Probe,
} from '../../src/core/throttle/index.js';

let sb: TestSandbox;
let scratch: string;
/** connections a test opened; closed after each use or at the end */
const opened: Db[] = [];

async function db(name: string): Promise<Db> {
  const d = await sb.db(name);
  opened.push(d);
  return d;
}

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 1 });
  scratch = mkdtempSync(join(tmpdir(), 'ezctl-throttle-'));
  const m = await db('bj-master');
  await m.exec('CREATE DATABASE tt');
  await m.exec('CREATE TABLE tt.k (id INT PRIMARY KEY, v INT NOT NULL)');
  await m.exec('INSERT INTO tt.k VALUES (1, 0)');
});

after(async () => {
  await Promise.all(opened.map((d) => d.close().catch(() => {})));
  rmSync(scratch, { recursive: true, force: true });
  await sb?.down();
});

/** A gate that never opens must fail the test, not hang the file (and leave its sandbox running). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** every test gets a bound, so a hang fails one test and after() still stops the sandbox */
const bounded = { timeout: 30_000 };

const replicaCaughtUp = async (replica: Db, v: number) => Number(await replica.value('SELECT v FROM tt.k WHERE id = 1')) === v;

test('replica lag: a stopped SQL thread throttles, naming it; the gate goes on once it runs again', bounded, async () => {
  const probe: Probe = { label: 'bj-replica1', db: await db('bj-replica1') };
  const admin = await db('bj-replica1');
  const t = new Throttler([replicaLagSignal([probe], 1000)], { intervalMs: 100 });
  await within(t.gate(), 5000, 'the first gate'); // healthy replica: no wait
  assert.equal(t.status().throttled, false);

  await admin.exec('STOP SLAVE SQL_THREAD');
  try {
    await t.refresh();
    const st = t.status();
    assert.equal(st.throttled, true);
    assert.match(st.reason!, /^replication not running at bj-replica1: IO thread Yes, SQL thread No$/);
    let passed = false;
    const g = t.gate().then(() => (passed = true));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(passed, false, 'the gate waits while replication is stopped');
    await admin.exec('START SLAVE SQL_THREAD');
    await within(g, 5000, 'the gate after START SLAVE SQL_THREAD');
    assert.equal(t.status().throttled, false);
    assert.ok(t.status().throttledMs >= 250);
  } finally {
    await admin.exec('START SLAVE SQL_THREAD');
  }
});

test('replica lag: a replica whose SQL thread is blocked falls behind past the limit, then recovers', bounded, async () => {
  const master = await db('bj-master');
  const replica = await db('bj-replica1');
  const blocker = await db('bj-replica1');
  const signal = replicaLagSignal([{ label: 'bj-replica1', db: replica }], 1000);
  await eventually(async () => !(await signal.check()).throttle, 10_000, 'replica to be clear');
  // a row lock on the replica holds the replicated update: the SQL thread runs but falls behind
  await blocker.exec('BEGIN');
  await blocker.query('SELECT * FROM tt.k WHERE id = 1 FOR UPDATE');
  try {
    await master.exec('UPDATE tt.k SET v = 1 WHERE id = 1');
    const v = await eventually(async () => {
      const x = await signal.check();
      return x.throttle ? x : null;
    }, 10_000, 'the lag to exceed 1s');
    assert.match(v.reason!, /^replica lag bj-replica1 [2-9]s > 1s$/);
  } finally {
    await blocker.exec('ROLLBACK');
  }
  await eventually(() => replicaCaughtUp(replica, 1), 10_000, 'the replica to apply the update');
  await eventually(async () => !(await signal.check()).throttle, 10_000, 'the lag signal to clear');
});

test('replica lag: a killed connection throttles once, then the probe reconnects by itself', bounded, async () => {
  const killer = await db('bj-replica1');
  const probe: Probe = { label: 'bj-replica1', db: await db('bj-replica1'), reopen: () => db('bj-replica1') };
  const signal = replicaLagSignal([probe], 1000);
  assert.equal((await signal.check()).throttle, false);
  const first = probe.db;
  const id = await first.value('SELECT CONNECTION_ID()');
  await killer.exec(`KILL CONNECTION ${Number(id)}`);
  const t = new Throttler([signal], { intervalMs: 20 });
  await t.refresh();
  assert.equal(t.status().throttled, true, 'an unreadable replica is no green light');
  assert.match(t.status().reason!, /^replica-lag: /);
  await within(t.gate(), 5000, 'the gate after the reconnect'); // the next check reconnects and finds the replica healthy
  assert.notEqual(probe.db, first);
  assert.equal(t.status().throttled, false);
});

test('load: Threads_running above the limit throttles while other sessions run, and critical load stops the job', bounded, async () => {
  const probe: Probe = { label: 'bj-master', db: await db('bj-master') };
  // the polling session itself is running; whatever runs besides it is the baseline
  const baseline = Number((await globalStatus(probe.db, ['Threads_running'])).Threads_running);
  const limits = { Threads_running: baseline };
  const max = loadSignal([probe], limits);
  const critical = loadSignal([probe], { Threads_running: baseline + 1 }, true);
  assert.deepEqual(await max.check(), { throttle: false });
  await verifyStatusVariables([probe], limits);
  await assert.rejects(verifyStatusVariables([probe], { Threads_runing: 5 }), (e: unknown) => e instanceof EzError && e.exitCode === 2 && /"Threads_runing" is not a status variable at bj-master/.test(e.message));

  const sleepers = await Promise.all([db('bj-master'), db('bj-master'), db('bj-master')]);
  const running = sleepers.map((s) => s.query('SELECT SLEEP(2)'));
  try {
    const v = await eventually(async () => {
      const x = await max.check();
      return x.throttle ? x : null;
    }, 2000, 'Threads_running to rise');
    assert.match(v.reason!, new RegExp(`^Threads_running=\\d+ > ${baseline} at bj-master$`));
    assert.notEqual(v.critical, true);
    const t = new Throttler([max, critical], { intervalMs: 50 });
    await assert.rejects(within(t.gate(), 5000, 'the critical stop'), (e: unknown) => {
      assert.ok(e instanceof EzError);
      assert.equal(e.exitCode, 4);
      assert.match(e.message, new RegExp(`^stopped: critical load Threads_running=\\d+ > ${baseline + 1} at bj-master`));
      return true;
    });
  } finally {
    await Promise.all(running);
  }
  await eventually(async () => !(await max.check()).throttle, 5000, 'the load to drop');
});

test('DRC lag: no heartbeat is reported, not throttled (unless required); old heartbeats throttle, fresh ones release', bounded, async () => {
  const bj = await db('bj-master');
  const sh = await db('sh-master');
  const masters = [
    { zone: 'bj', db: bj },
    { zone: 'sh', db: sh },
  ];
  const warnings: string[] = [];
  const signal = drcLagSignal(masters, 1000, { warn: (m) => warnings.push(m) });

  // DRC never ran: no _ezctl schema at all
  const none = await signal.check();
  assert.deepEqual(none, { throttle: false, reason: 'DRC lag unknown (no heartbeat from sh at bj); DRC lag unknown (no heartbeat from bj at sh)' });
  await signal.check();
  assert.equal(warnings.length, 2, 'one warning per zone pair, not per poll');
  assert.match(warnings[0]!, /^DRC lag unknown \(no heartbeat from sh at bj\): .*not throttling/);
  const strict = await drcLagSignal(masters, 1000, { requireHeartbeat: true }).check();
  assert.equal(strict.throttle, true);
  assert.match(strict.reason!, /no heartbeat from bj at sh/);
  assert.deepEqual(await measureDrcLagMs(masters), {
    maxLagMs: null,
    pairs: [
      { from: 'sh', to: 'bj', lagMs: null },
      { from: 'bj', to: 'sh', lagMs: null },
    ],
  });

  // heartbeats as DRC would leave them: at sh, bj's heartbeat is 10 s old; at bj, sh's is fresh
  for (const m of [bj, sh]) await ensureStateSchema(m);
  const beat = (at: Db, zone: string, writtenAtMs: number) =>
    at.exec('INSERT INTO _ezctl.drc_heartbeat (zone, seq, written_at_ms) VALUES (?, 1, ?) ON DUPLICATE KEY UPDATE written_at_ms = VALUES(written_at_ms)', [zone, writtenAtMs]);
  await beat(sh, 'bj', Date.now() - 10_000);
  await beat(bj, 'sh', Date.now());
  await beat(bj, 'bj', Date.now() - 60_000); // a zone's own row at its own master is no lag
  await beat(sh, 'sh', Date.now() - 60_000);

  const stale = await signal.check();
  assert.equal(stale.throttle, true);
  assert.match(stale.reason!, /^DRC lag bj->sh (9\.\d|10(\.\d)?)s > 1s$/);
  const measured = await measureDrcLagMs(masters);
  const pair = (from: string, to: string) => measured.pairs.find((p) => p.from === from && p.to === to)!.lagMs!;
  assert.ok(pair('bj', 'sh') >= 9900 && pair('bj', 'sh') < 13_000, `bj->sh ${pair('bj', 'sh')}`);
  assert.ok(pair('sh', 'bj') >= 0 && pair('sh', 'bj') < 2000, `sh->bj ${pair('sh', 'bj')}`);
  assert.equal(measured.maxLagMs, pair('bj', 'sh'));

  // DRC catches up: a fresh heartbeat arrives
  await beat(sh, 'bj', Date.now());
  assert.deepEqual(await signal.check(), { throttle: false });
  // a heartbeat from a writer whose clock runs ahead is no error, and no lag
  await beat(sh, 'bj', Date.now() + 5000);
  assert.deepEqual(await signal.check(), { throttle: false });
  assert.equal((await measureDrcLagMs(masters)).pairs.find((p) => p.from === 'bj')!.lagMs, 0);
});

function ctxFor(counting: { connects: string[] }): Ctx {
  const ctx = makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
  const connect = ctx.connect.bind(ctx);
  ctx.connect = async (node) => {
    counting.connects.push(node.name);
    const d = await connect(node);
    opened.push(d);
    return d;
  };
  return ctx;
}

test('throttlerFor: opens no connection for signals that need none', bounded, async () => {
  const seen = { connects: [] as string[] };
  const ctx = ctxFor(seen);
  const cluster = (await ctx.topology()).clusterNames[0]!;
  const flag = join(scratch, 'pause-flag');
  const { throttler, close } = await throttlerFor(ctx, cluster, ['bj', 'sh'], { throttleFlagFile: flag, pauseWindows: '00:00-00:01', intervalMs: 50 });
  try {
    assert.deepEqual(seen.connects, []);
    assert.deepEqual(throttler.signals.map((s) => s.name), ['flag-file', 'pause-window']);
  } finally {
    await close();
  }
});

test('throttlerFor: connects once per node the signals need, gates, pauses on the flag file, closes all', bounded, async () => {
  const seen = { connects: [] as string[] };
  const ctx = ctxFor(seen);
  const cluster = (await ctx.topology()).clusterNames[0]!;
  const flag = join(scratch, 'pause-flag');
  const { throttler, close } = await throttlerFor(ctx, cluster, ['bj', 'sh'], {
    maxLagMs: 5000,
    maxDrcLagMs: 60_000,
    maxLoad: 'Threads_running=1000',
    criticalLoad: 'Threads_running=5000',
    throttleFlagFile: flag,
    intervalMs: 50,
  });
  const mine = opened.slice(-seen.connects.length);
  try {
    assert.deepEqual([...seen.connects].sort(), ['bj-master', 'bj-replica1', 'sh-master', 'sh-replica1']);
    assert.deepEqual(throttler.signals.map((s) => s.name), ['replica-lag', 'drc-lag', 'max-load', 'critical-load', 'flag-file']);
    await within(throttler.gate(), 5000, 'the first gate');
    writeFileSync(flag, '');
    await throttler.refresh();
    assert.equal(throttler.status().reason, `flag file ${flag} exists`);
    let passed = false;
    const g = throttler.gate().then(() => (passed = true));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(passed, false);
    rmSync(flag);
    await within(g, 5000, 'the gate after removing the flag file');
  } finally {
    rmSync(flag, { force: true });
    await close();
  }
  for (const d of mine) await assert.rejects(d.query('SELECT 1'), 'closed by close()');

  // only one zone: no DRC signal, and only that zone's nodes
  const one = { connects: [] as string[] };
  const t1 = await throttlerFor(ctxFor(one), cluster, ['sh'], { maxLagMs: 5000, maxDrcLagMs: 1000 });
  await t1.close();
  assert.deepEqual(one.connects, ['sh-replica1']);
  assert.deepEqual(t1.throttler.signals.map((s) => s.name), ['replica-lag']);
});

test('throttlerFor: bad limits are refused (exit 2) before or right after connecting, leaving nothing open', bounded, async () => {
  const seen = { connects: [] as string[] };
  const ctx = ctxFor(seen);
  const cluster = (await ctx.topology()).clusterNames[0]!;
  await assert.rejects(throttlerFor(ctx, cluster, ['bj'], { maxLoad: 'Threads_running', pauseWindows: '10:00-11:00' }), (e: unknown) => e instanceof EzError && e.exitCode === 2);
  await assert.rejects(throttlerFor(ctx, cluster, ['bj'], { pauseWindows: '25:00-01:00' }), (e: unknown) => e instanceof EzError && e.exitCode === 2);
  assert.deepEqual(seen.connects, [], 'spec errors need no server');
  await assert.rejects(throttlerFor(ctx, cluster, ['bj', 'xx'], { maxLagMs: 1000 }), (e: unknown) => e instanceof EzError && e.exitCode === 2 && /no zone "xx"/.test(e.message));
  const before = opened.length;
  await assert.rejects(throttlerFor(ctx, cluster, ['bj'], { maxLoad: 'Threads_runing=5' }), (e: unknown) => e instanceof EzError && e.exitCode === 2 && /Threads_runing/.test(e.message));
  for (const d of opened.slice(before)) await assert.rejects(d.query('SELECT 1'), 'closed after the refusal');
});
