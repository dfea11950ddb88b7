// `emha watch` and dead-master detection against a real sandbox (one zone, a master and two
// replicas, HAProxy in front): a SIGSTOPped master is 'unreachable', never 'dead', while its
// replicas still read from it; a killed one is 'dead' within seconds; the watch without --execute
// reports a switch done by hand and changes nothing; a second watch is refused naming the first;
// with --execute the topology file and the proxy follow the switch, and a replica detached by hand.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { EZCTL, show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { readDefaultsFile } from '../../src/core/config/defaults-file.js';
import { loadTopology } from '../../src/core/config/load.js';
import { makeCtx } from '../../src/core/context.js';
import { pidAlive } from '../../src/core/process/pids.js';
import { routingTarget } from '../../src/core/proxy/index.js';
import { assessMaster } from '../../src/core/emha/detect.js';
import { drcStart, drcStatus, drcStop, drcWaitAll } from '../helpers/drc.js';

let sb: TestSandbox;
const children = new Set<ChildProcess>();
const stoppedPids = new Set<number>();

before(async () => {
  sb = await startSandbox({ zones: ['bj'], replicas: 2, proxy: true });
});

after(async () => {
  for (const pid of stoppedPids) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  }
  for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  await sb?.down();
});

const ctx = () => makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
const pidOf = (name: string): number => JSON.parse(readFileSync(join(sb.dir, 'sandbox.json'), 'utf8')).nodes.find((n: { name: string }) => n.name === name).pid;
const fileMaster = () => loadTopology(sb.config).master('demo', 'bj').name;
const fileReplicas = () => loadTopology(sb.config).nodes('demo').filter((n) => n.role === 'replica').map((n) => n.name).sort();

function replPassword(): string {
  const raw = join(sb.dir, '.repl');
  if (existsSync(raw)) return readFileSync(raw, 'utf8').trim();
  return readDefaultsFile(join(sb.dir, 'repl.cnf')).password!;
}

async function sql(node: string, ...stmts: Array<string | [string, unknown[]]>): Promise<void> {
  const db = await sb.db(node);
  try {
    for (const s of stmts) {
      if (typeof s === 'string') await db.exec(s);
      else await db.exec(s[0], s[1] as never[]);
    }
  } finally {
    await db.close();
  }
}
async function value(node: string, q: string): Promise<unknown> {
  const db = await sb.db(node);
  try {
    return await db.value(q);
  } finally {
    await db.close();
  }
}

interface Watch {
  child: ChildProcess;
  events: Array<Record<string, any>>;
  stderr: () => string;
  waitFor(pred: (e: Record<string, any>) => boolean, ms: number, what: string): Promise<Record<string, any>>;
  exited: Promise<number | null>;
}

/** `emha watch --json ...` in the background; its events parsed as they come. */
function startWatch(args: string[]): Watch {
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, '--json', 'emha', 'watch', '--cluster', 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const events: Array<Record<string, any>> = [];
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      if (line.trim()) events.push(JSON.parse(line));
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child, events, stderr: () => err, exited,
    waitFor: (pred, ms, what) => eventually(async () => events.find(pred), ms, what).catch((e: Error) => {
      throw new Error(`${e.message} (events: ${events.map((x) => x.event).join(', ')}; stderr: ${err})`);
    }),
  };
}

async function stopWatch(w: Watch): Promise<number | null> {
  const r = await sb.run(['emha', 'watch-stop', '--cluster', 'demo']);
  assert.equal(r.code, 0, show(r));
  return w.exited;
}

test('a SIGSTOPped master is unreachable, never dead, while its replicas still read from it (the watch --execute does not fail it over); alive again after SIGCONT', async () => {
  const c = ctx();
  const topo = await c.topology();
  const alive = await assessMaster(c, topo, 'demo', 'bj', { connectTimeoutMs: 1000 });
  assert.equal(alive.verdict, 'alive', JSON.stringify(alive));
  const w = startWatch(['--execute', '--interval', '300ms', '--lease', '5s']);
  await w.waitFor((e) => e.event === 'started', 20_000, 'started');
  const pid = pidOf('bj-master');
  process.kill(pid, 'SIGSTOP');
  stoppedPids.add(pid);
  try {
    // several looks over a few seconds (well under slave_net_timeout, 60 s): always unreachable
    for (let i = 0; i < 3; i++) {
      const a = await assessMaster(c, topo, 'demo', 'bj', { connectTimeoutMs: 1000, tries: 2 });
      assert.equal(a.verdict, 'unreachable', JSON.stringify(a));
      assert.equal(a.vantages.find((v) => v.from === 'ezctl')!.sees, 'unreachable');
      assert.deepEqual(a.vantages.filter((v) => v.from !== 'ezctl').map((v) => v.sees), ['alive', 'alive']);
    }
    const u = await w.waitFor((e) => e.event === 'master-unreachable', 15_000, 'the watch saw it unreachable');
    assert.match(u.message, /bj-replica1 still reads from it, bj-replica2 still reads from it: not dead, no failover/);
  } finally {
    process.kill(pid, 'SIGCONT');
    stoppedPids.delete(pid);
  }
  await eventually(async () => (await assessMaster(c, topo, 'demo', 'bj', { connectTimeoutMs: 1000 })).verdict === 'alive', 10_000, 'the master alive again');
  await w.waitFor((e) => e.event === 'master-alive', 15_000, 'the watch saw it alive again');
  assert.equal(await stopWatch(w), 0, w.stderr());
  assert.deepEqual(w.events.filter((e) => /master-dead|failover/.test(e.event)), [], 'never dead, no failover');
  assert.equal(fileMaster(), 'bj-master');
});

test('a switch done by hand: the watch without --execute reports it and changes nothing; a second watch is refused naming the first', async () => {
  // bj-replica1 becomes the master by hand: the old master read_only and under it, bj-replica2 too
  await sql('bj-master', 'SET GLOBAL read_only = 1');
  await eventually(async () => {
    const a = String(await value('bj-master', 'SELECT @@gtid_binlog_pos'));
    const b = String(await value('bj-replica1', 'SELECT @@gtid_slave_pos'));
    return a === b;
  }, 10_000, 'bj-replica1 caught up');
  await sql('bj-replica1', 'STOP SLAVE', 'RESET SLAVE ALL', 'SET GLOBAL read_only = 0');
  const r1 = sb.node('bj-replica1');
  await sql('bj-replica2', 'STOP SLAVE', ['CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?', [r1.host, r1.port]], 'START SLAVE');
  await sql('bj-master', ['CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1', [r1.host, r1.port, 'repl', replPassword()]], 'START SLAVE');
  const fileBefore = readFileSync(sb.config, 'utf8');

  const w = startWatch(['--interval', '300ms', '--drift-grace', '0s', '--lease', '5s']);
  const ev = await w.waitFor((e) => e.event === 'drift' && e.drift.kind === 'master-changed', 20_000, 'the switch reported');
  assert.equal(ev.drift.from, 'bj-master');
  assert.equal(ev.drift.to, 'bj-replica1');
  await w.waitFor((e) => e.event === 'started', 1000, 'started');

  const second = await sb.run(['emha', 'watch', '--cluster', 'demo', '--for', '3s']);
  assert.equal(second.code, 4, show(second));
  const jobId = w.events.find((e) => e.event === 'lease-taken')!.jobId;
  assert.match(second.stderr, new RegExp(`emha-watch job ${jobId}`));

  const st = await sb.run(['--json', 'emha', 'watch-status', '--cluster', 'demo']);
  assert.equal(st.code, 0, show(st));
  assert.equal(st.json().drift[0].kind, 'master-changed');
  // a few more looks: still nothing changed
  const ticks = st.json().ticks;
  await eventually(async () => (await sb.run(['--json', 'emha', 'watch-status', '--cluster', 'demo'])).json().ticks >= ticks + 3, 10_000, 'three more looks');
  assert.equal(await stopWatch(w), 0, w.stderr());
  assert.ok(!w.events.some((e) => e.event === 'drift-repaired'), JSON.stringify(w.events));
  assert.equal(readFileSync(sb.config, 'utf8'), fileBefore);
  const proxy = routingTarget(loadTopology(sb.config), 'demo', 'bj')!;
  assert.equal((await proxy.currentWrite())!.name, 'bj-master');
});

test('watch --execute brings the topology file and the proxy in line with the switch done by hand, then with a replica detached by hand', async () => {
  const w = startWatch(['--execute', '--interval', '300ms', '--drift-grace', '1s', '--lease', '5s']);
  const done = await w.waitFor((e) => e.event === 'drift-repaired' && e.drift.kind === 'master-changed', 30_000, 'the switch followed');
  assert.ok(done.done.some((d: string) => /topology file/.test(d)), JSON.stringify(done));
  assert.equal(fileMaster(), 'bj-replica1');
  assert.deepEqual(fileReplicas(), ['bj-master', 'bj-replica2']);
  const proxy = routingTarget(loadTopology(sb.config), 'demo', 'bj')!;
  const h = await proxy.health();
  assert.equal(h.write!.name, 'bj-replica1');
  assert.deepEqual(h.read.map((n) => n.name).sort(), ['bj-master', 'bj-replica2']);
  // the watch judges the zone by the new file now: no drift left
  await eventually(async () => (await sb.run(['--json', 'emha', 'watch-status', '--cluster', 'demo'])).json().drift.length === 0, 10_000, 'no drift left');
  // the lease followed the master: a second watch (which asks the file's masters) is still refused
  await w.waitFor((e) => e.event === 'lease-taken' && w.events.filter((x) => x.event === 'lease-taken').length >= 2, 10_000, 'the lease taken on the new master');
  const second = await sb.run(['emha', 'watch', '--cluster', 'demo', '--for', '2s']);
  assert.equal(second.code, 4, show(second));

  // bj-replica2 detached by hand: out of the file and the read pool
  await sql('bj-replica2', 'STOP SLAVE', 'RESET SLAVE ALL');
  await w.waitFor((e) => e.event === 'drift-repaired' && e.drift.kind === 'replica-removed' && e.drift.node === 'bj-replica2', 30_000, 'the detached replica taken out');
  assert.deepEqual(fileReplicas(), ['bj-master']);
  assert.deepEqual((await proxy.health()).read.map((n) => n.name), ['bj-master']);

  // attached again by hand under the master: the master's SHOW SLAVE HOSTS names it, not the file
  const m = sb.node('bj-replica1');
  await sql('bj-replica2', ['CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1', [m.host, m.port, 'repl', replPassword()]], 'START SLAVE');
  const added = await w.waitFor((e) => e.event === 'drift-repaired' && e.drift.kind === 'replica-added', 30_000, 'the attached replica added');
  assert.equal(added.drift.port, sb.node('bj-replica2').port);
  assert.deepEqual(fileReplicas(), ['bj-master', 'bj-replica2']);
  assert.equal(loadTopology(sb.config).nodes('demo').find((n) => n.name === 'bj-replica2')!.port, sb.node('bj-replica2').port);
  assert.deepEqual((await proxy.health()).read.map((n) => n.name).sort(), ['bj-master', 'bj-replica2']);
  assert.equal(await stopWatch(w), 0, w.stderr());
});

test('a killed master is dead within seconds; the watch without --execute alerts with the failover to run', async () => {
  const w = startWatch(['--interval', '300ms', '--lease', '5s']);
  await w.waitFor((e) => e.event === 'started', 20_000, 'started');
  const master = fileMaster(); // bj-replica1 since the switch
  const pid = pidOf(master);
  process.kill(pid, 'SIGKILL');
  await eventually(async () => !pidAlive(pid), 10_000, `${master} gone`);
  const c = ctx();
  const a = await eventually(async () => {
    const x = await assessMaster(c, await c.topology(), 'demo', 'bj', { connectTimeoutMs: 1000 });
    return x.verdict === 'dead' && x;
  }, 10_000, 'the master dead');
  assert.equal(a.master, master);
  assert.ok(a.vantages.filter((v) => v.from !== 'ezctl').some((v) => v.sees === 'unreachable'), JSON.stringify(a));
  const dead = await w.waitFor((e) => e.event === 'master-dead', 15_000, 'the watch confirmed it dead');
  assert.equal(dead.master, master);
  const alert = await w.waitFor((e) => e.event === 'failover-alert', 5000, 'the failover alert');
  assert.match(alert.message, /emha failover --cluster demo --zone bj --execute/);
  assert.equal(await stopWatch(w), 0, w.stderr());
  assert.equal(fileMaster(), master, 'nothing changed without --execute');
});

test('watch --execute fails the dead master over (emha failover): the file and the proxy name the new master, the old one is fenced', async () => {
  const dead = fileMaster(); // killed by the test before
  const w = startWatch(['--execute', '--interval', '300ms', '--lease', '5s']);
  const confirmed = await w.waitFor((e) => e.event === 'master-dead', 20_000, 'the master confirmed dead');
  const started = w.events.find((e) => e.event === 'started')!;
  const done = await w.waitFor((e) => e.event === 'failover-done' || e.event === 'failover-failed', 90_000, 'the failover');
  assert.equal(done.event, 'failover-done', JSON.stringify(done));
  const topo = loadTopology(sb.config);
  assert.equal(topo.master('demo', 'bj').name, done.newMaster);
  assert.notEqual(done.newMaster, dead);
  assert.ok(topo.fencedNames('demo', 'bj').includes(dead), 'the old master fenced in the file');
  assert.equal((await routingTarget(topo, 'demo', 'bj')!.currentWrite())!.name, done.newMaster);
  assert.equal(Number(await value(done.newMaster, 'SELECT @@read_only')), 0);
  // the watch goes on against the new master: alive, and the fenced old master is no drift
  await w.waitFor((e) => e.event === 'master-alive', 15_000, 'the new master alive');
  await eventually(async () => {
    const st = (await sb.run(['--json', 'emha', 'watch-status', '--cluster', 'demo'])).json();
    return st.zones[0].master === done.newMaster && st.zones[0].verdict === 'alive' && st.drift.every((d: { kind: string }) => d.kind === 'replica-unreachable');
  }, 15_000, 'the watch on the new master, no drift but the dead node');
  // the old master back (the sandbox restarts a fenced node read_only), then made writable, as a
  // hung master failed over and then continued (SIGCONT) would be: the watch sets it read_only
  const up = await sb.run(['sandbox', 'up', '--dir', sb.dir]);
  assert.equal(up.code, 0, show(up));
  assert.equal(Number(await value(dead, 'SELECT @@read_only')), 1);
  await sql(dead, 'SET GLOBAL read_only = 0');
  const fenced = await w.waitFor((e) => e.event === 'drift-repaired' && e.drift.kind === 'fenced-writable', 15_000, 'the fenced node made read_only');
  assert.equal(fenced.drift.node, dead);
  assert.equal(Number(await value(dead, 'SELECT @@read_only')), 1);
  assert.ok(loadTopology(sb.config).fencedNames('demo', 'bj').includes(dead), 'still fenced, still in the file');
  assert.equal(await stopWatch(w), 0, w.stderr());
  assert.equal(w.events.filter((e) => e.event === 'failover-started').length, 1);
  process.stdout.write(`# detection ${Date.parse(confirmed.at) - Date.parse(started.at)} ms after the watch started (master already dead), failover ${done.ms} ms\n`);
});

test('a master hung past its replicas\' slave_net_timeout is failed over by watch --execute; after SIGCONT it is fenced and set read_only: one writable master routed', async () => {
  const hung = fileMaster(); // the master the previous test promoted
  const topo0 = loadTopology(sb.config);
  const replicas = topo0.nodes('demo').filter((n) => n.role === 'replica' && !n.fenced).map((n) => n.name);
  assert.ok(replicas.length >= 1, JSON.stringify(topo0.nodes('demo')));
  // the replicas lose a silent master after 4 s instead of 60 (heartbeat every second)
  for (const r of replicas) await sql(r, 'STOP SLAVE', 'SET GLOBAL slave_net_timeout = 4', 'CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 1', 'START SLAVE');
  await eventually(async () => (await assessMaster(ctx(), loadTopology(sb.config), 'demo', 'bj', { connectTimeoutMs: 1000 })).verdict === 'alive', 10_000, 'replicas connected');
  const w = startWatch(['--execute', '--interval', '500ms', '--timeout', '1s', '--anti-flap', '0s', '--lease', '5s']);
  await w.waitFor((e) => e.event === 'started', 20_000, 'started');
  const pid = pidOf(hung);
  process.kill(pid, 'SIGSTOP');
  stoppedPids.add(pid);
  let done: Record<string, any>;
  try {
    // first: unreachable while the replicas still read from it, then dead once they lost it
    await w.waitFor((e) => e.event === 'master-unreachable' && e.master === hung, 15_000, 'unreachable first');
    done = await w.waitFor((e) => e.event === 'failover-done' || e.event === 'failover-failed', 60_000, 'the failover');
    assert.equal(done.event, 'failover-done', JSON.stringify(done));
  } finally {
    process.kill(pid, 'SIGCONT');
    stoppedPids.delete(pid);
  }
  const ev = w.events.map((e) => e.event);
  assert.ok(ev.indexOf('master-unreachable') < ev.indexOf('master-dead'), ev.join(', '));
  const topo = loadTopology(sb.config);
  assert.equal(topo.master('demo', 'bj').name, done.newMaster);
  assert.ok(topo.fencedNames('demo', 'bj').includes(hung));
  // back from SIGSTOP it is still writable: the watch sets it read_only; the proxy only ever routes to the new master
  const fix = await w.waitFor((e) => e.event === 'drift-repaired' && e.drift.kind === 'fenced-writable' && e.drift.node === hung, 20_000, 'the hung master made read_only');
  assert.ok(fix);
  assert.equal(Number(await value(hung, 'SELECT @@read_only')), 1);
  assert.equal((await routingTarget(topo, 'demo', 'bj')!.currentWrite())!.name, done.newMaster);
  assert.equal(await stopWatch(w), 0, w.stderr());
});

test('two zones with DRC running: watch --execute follows a switch done by hand in sh in the file, the proxy, DRC (both directions reach the new master) and MHA\'s config', async () => {
  const two = await startSandbox({ zones: ['bj', 'sh'], replicas: 1, proxy: true, load: 10 });
  let drcPid: number | undefined;
  let w: Watch | undefined;
  const main = sb;
  sb = two; // the helpers above speak to `sb`
  try {
    drcPid = await drcStart(two);
    await drcWaitAll(two, ['bj', 'sh']);
    const mhaDir = join(two.dir, 'state', 'mha');
    let r = await two.run(['emha', 'mha-config', '--cluster', 'demo', '--out', mhaDir]);
    assert.equal(r.code, 0, show(r));
    const newPort = two.node('sh-replica1').port;
    assert.doesNotMatch(readFileSync(join(mhaDir, 'demo-sh.cnf'), 'utf8'), new RegExp(`\\[server1\\][^[]*port=${newPort}`));

    // the switch by hand, as drc-faults' test does it (no DRC repoint: that is the watch's part)
    await sql('sh-master', 'SET GLOBAL read_only = 1');
    const pos = String(await value('sh-master', 'SELECT @@gtid_binlog_pos'));
    assert.equal(Number(await value('sh-replica1', `SELECT MASTER_GTID_WAIT('${pos}', 30)`)), 0);
    await sql('sh-replica1', 'STOP SLAVE', 'RESET SLAVE ALL', 'SET GLOBAL read_only = 0');
    const n = two.node('sh-replica1');
    await sql('sh-master', ['CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1', [n.host, n.port, 'repl', replPassword()]], 'START SLAVE');

    w = startWatch(['--execute', '--interval', '300ms', '--drift-grace', '1s', '--lease', '5s']);
    const done = await w.waitFor((e) => e.event === 'drift-repaired' && e.drift.kind === 'master-changed', 30_000, 'the switch followed');
    assert.ok(done.done.some((d: string) => /^DRC: the daemon of demo repointed both directions of zone sh at sh-replica1/.test(d)), JSON.stringify(done.done));
    assert.ok(done.done.some((d: string) => /^MHA: rewrote .*demo-sh\.cnf/.test(d)), JSON.stringify(done.done));
    assert.equal(loadTopology(two.config).master('demo', 'sh').name, 'sh-replica1');
    assert.equal((await routingTarget(loadTopology(two.config), 'demo', 'sh')!.currentWrite())!.name, 'sh-replica1');
    assert.match(readFileSync(join(mhaDir, 'demo-sh.cnf'), 'utf8'), new RegExp(`\\[server1\\][^[]*port=${newPort}`));
    // DRC's binlog readers are no replicas: nothing but the switch was drift
    assert.deepEqual(w.events.filter((e) => e.event === 'drift').map((e) => e.drift.kind), ['master-changed'], JSON.stringify(w.events.filter((e) => e.event === 'drift')));
    assert.equal(await stopWatch(w), 0, w.stderr());

    // DRC both ways through the new master: a row written in each zone arrives in the other
    await sql('bj-master', "INSERT INTO ezdemo.users (shard_id, name, created_at) VALUES (1, 'from-bj-after-switch', NOW(3))");
    await sql('sh-replica1', "INSERT INTO ezdemo.users (shard_id, name, created_at) VALUES (40, 'from-sh-after-switch', NOW(3))");
    await drcWaitAll(two, ['bj', 'sh']);
    assert.equal(Number(await value('sh-replica1', "SELECT COUNT(*) FROM ezdemo.users WHERE name = 'from-bj-after-switch'")), 1);
    assert.equal(Number(await value('bj-master', "SELECT COUNT(*) FROM ezdemo.users WHERE name = 'from-sh-after-switch'")), 1);
    const st = await drcStatus(two);
    assert.ok(st.directions.find((d: any) => d.to === 'sh').target.includes(String(newPort)), JSON.stringify(st.directions));
  } finally {
    if (w && w.child.exitCode === null) w.child.kill('SIGKILL');
    if (drcPid) await drcStop(two, drcPid);
    sb = main;
    await two.down();
  }
});
