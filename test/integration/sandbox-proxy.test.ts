// `sandbox up --proxy`: one real HAProxy per zone in front of real MariaDB servers; the HAProxy
// routing target moves the write route (at run time and in the file a restarted proxy reads);
// the workload writes through the proxy; `sandbox down` stops the proxies by pid.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { EZCTL, ezctl, show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { readDefaultsFile } from '../../src/core/config/defaults-file.js';
import { connect, type Db } from '../../src/core/db/connect.js';
import { loadTopology } from '../../src/core/config/load.js';
import { pidAlive } from '../../src/core/process/pids.js';
import { adminRequest, isOurHaproxy, routingTarget, type RoutingTarget } from '../../src/core/proxy/index.js';

let sb: TestSandbox | undefined;
let stopped = false;

interface ProxyInfo { zone: string; write: string; read: string; admin: string; config: string; pid: number; running: boolean }

const box = () => sb!;
async function status(): Promise<{ code: number | null; proxies: ProxyInfo[]; nodes: Array<{ name: string; pid: number }> }> {
  const r = await box().run(['--json', 'sandbox', 'status', '--dir', box().dir]);
  const j = r.json();
  return { code: r.code, proxies: j.proxies, nodes: j.nodes };
}
const proxyOf = async (zone: string) => (await status()).proxies.find((p) => p.zone === zone)!;

/** An application-user connection through a proxy listener "host:port". */
async function through(hostPort: string): Promise<Db> {
  const [host, port] = hostPort.split(':');
  const password = readDefaultsFile(join(box().dir, 'app.cnf')).password!;
  return connect({ label: `proxy ${hostPort}`, host: host!, port: Number(port), user: 'app', password, passwordSource: 'test' });
}
async function serverIdThrough(hostPort: string): Promise<number> {
  const db = await through(hostPort);
  try {
    return Number(await db.value('SELECT @@server_id'));
  } finally {
    await db.close();
  }
}
const serverId = (name: string) => box().node(name).serverId;
async function target(zone: string): Promise<RoutingTarget> {
  const topo = loadTopology(box().config);
  return routingTarget(topo, 'demo', zone)!;
}
const node = (name: string) => ({ name, host: '127.0.0.1', port: box().node(name).port });

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 1, proxy: true, load: 200 });
});

after(async () => {
  if (!stopped) await sb?.down();
});

test('up --proxy starts one HAProxy per zone (own pid, admin socket mode 0600) and records it in the topology file', async () => {
  const s = await status();
  assert.equal(s.code, 0);
  assert.deepEqual(s.proxies.map((p) => p.zone), ['bj', 'sh']);
  for (const p of s.proxies) {
    assert.ok(p.running && pidAlive(p.pid) && isOurHaproxy(p.pid, p.config), JSON.stringify(p));
    assert.equal(statSync(p.admin).mode & 0o777, 0o600, `${p.admin} mode`);
    assert.ok(statSync(p.admin).isSocket());
  }
  const topo = loadTopology(box().config);
  const bj = topo.file.clusters.demo!.zones.bj!.proxy!;
  assert.deepEqual(bj, { kind: 'haproxy', write: s.proxies[0]!.write, read: s.proxies[0]!.read, admin: 'proxy-bj/admin.sock', config: 'proxy-bj/haproxy.cfg' });
  // topo show: a row per proxy, saying where it sends writes
  const show1 = await box().run(['--json', 'topo', 'show']);
  assert.equal(show1.code, 0, show(show1));
  const rows = show1.json();
  assert.deepEqual(rows.map((r: any) => r.name), ['bj-master', 'bj-replica1', 'bj-proxy', 'sh-master', 'sh-replica1', 'sh-proxy']);
  const row = rows.find((r: any) => r.name === 'bj-proxy');
  assert.equal(row.role, 'proxy');
  assert.match(row.version, /^HAProxy 2\./);
  assert.deepEqual(row.proxy.readPool, ['bj-replica1']);
  assert.equal(row.proxy.writeTo, 'bj-master');
  const text = await box().run(['topo', 'show']);
  assert.match(text.stdout, /bj-proxy .*writes -> bj-master/);
});

test('a client through the write listener lands on the master, through the read listener on a replica', async () => {
  const s = await status();
  for (const zone of ['bj', 'sh']) {
    const p = s.proxies.find((x) => x.zone === zone)!;
    assert.equal(await serverIdThrough(p.write), serverId(`${zone}-master`), `${zone} write`);
    assert.equal(await serverIdThrough(p.read), serverId(`${zone}-replica1`), `${zone} read`);
  }
});

test('the routing target moves the write route: new connections land on the new node, the old route\'s sessions are closed, and a restarted haproxy routes the same', async () => {
  const p = await proxyOf('bj');
  const t = await target('bj');
  assert.deepEqual(await t.currentWrite(), node('bj-master'));
  const old = await through(p.write);
  assert.equal(Number(await old.value('SELECT @@server_id')), serverId('bj-master'));
  await t.moveWrite(node('bj-replica1'));
  try {
    assert.deepEqual(await t.currentWrite(), node('bj-replica1'));
    assert.equal(await serverIdThrough(p.write), serverId('bj-replica1'));
    // the session through the old route was shut by the proxy
    await assert.rejects(old.value('SELECT @@server_id'));
  } finally {
    old.conn.destroy();
  }
  // the read pool falls back to the write node when the pool is empty, and follows a route move
  await t.setReadPool([]);
  assert.equal(await serverIdThrough(p.read), serverId('bj-replica1'));
  await t.setReadPool([node('bj-master')]);
  assert.equal(await serverIdThrough(p.read), serverId('bj-master'));
  assert.equal(statSync(p.admin).mode & 0o777, 0o600);
  const h = await t.health();
  assert.deepEqual(h.problems, []);
  assert.equal(h.write?.name, 'bj-replica1');
  // topo check names a proxy that does not send writes to the file's master
  const chk = await box().run(['--json', 'topo', 'check']);
  assert.equal(chk.code, 4, show(chk));
  assert.ok(chk.json().problems.some((x: any) => x.check === 'proxy' && /demo\/bj: the proxy .* sends writes to bj-replica1; the file says the master is bj-master/.test(x.message)), chk.stdout);

  // the haproxy process stops (by its pid); status and topo check say so
  process.kill(p.pid, 'SIGTERM');
  await eventually(async () => !isOurHaproxy(p.pid, p.config), 10_000, 'haproxy to exit');
  const down = await status();
  assert.equal(down.code, 3);
  assert.equal(down.proxies.find((x) => x.zone === 'bj')!.running, false);
  const chk2 = await box().run(['--json', 'topo', 'check']);
  assert.equal(chk2.code, 4, show(chk2));
  assert.ok(chk2.json().problems.some((x: any) => x.check === 'proxy' && /demo\/bj: the proxy .* is down/.test(x.message)), chk2.stdout);
  const row = (await box().run(['--json', 'topo', 'show'])).json().find((r: any) => r.name === 'bj-proxy');
  assert.match(row.error, /does not answer/);
  // `sandbox up` starts it again from its configuration: it routes as last moved
  const up = await box().run(['sandbox', 'up', '--dir', box().dir]);
  assert.equal(up.code, 0, show(up));
  assert.match(up.stderr, /restarting proxy-bj/);
  const again = await proxyOf('bj');
  assert.notEqual(again.pid, p.pid);
  assert.ok(again.running);
  assert.equal(statSync(again.admin).mode & 0o777, 0o600);
  assert.equal(await serverIdThrough(again.write), serverId('bj-replica1'));
  assert.equal(await serverIdThrough(again.read), serverId('bj-master'));
  assert.deepEqual((await t.health()).problems, []);

  // fenced: in no route at all, and no route can be moved to it
  await t.fence('bj-master');
  assert.equal(await serverIdThrough(again.read), serverId('bj-replica1'), 'the read pool is empty: the fallback is the write node');
  await assert.rejects(t.moveWrite(node('bj-master')), /bj-master is fenced/);
  await t.unfence('bj-master');
  await t.moveWrite(node('bj-master'));
  await t.setReadPool([node('bj-replica1')]);
  assert.equal(await serverIdThrough(again.write), serverId('bj-master'));
  assert.equal(await serverIdThrough(again.read), serverId('bj-replica1'));
});

/** Sessions the proxy has opened to a server of a backend (`show stat`, column stot). */
async function sessionsTotal(admin: string, backend: string, server: string): Promise<number> {
  const csv = await adminRequest(admin, ['show stat']);
  const lines = csv.split('\n');
  const cols = lines[0]!.replace(/^# /, '').split(',');
  const row = lines.map((l) => l.split(',')).find((f) => f[0] === backend && f[1] === server);
  assert.ok(row, `no ${backend}/${server} in show stat`);
  return Number(row[cols.indexOf('stot')]);
}

test('the workload writes through the zone\'s proxy, says so, counts its writes, and follows a moved write route', async () => {
  const sh = await proxyOf('sh');
  const before = await sessionsTotal(sh.admin, 'write', 'sh-master');
  const r = await box().run(['--json', 'sandbox', 'workload', '--zones', 'sh', '--tps', '40', '--seconds', '1.5', '--seed', '3']);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stderr, new RegExp(`workload sh: writing through the zone's proxy at ${sh.write}`));
  const z = r.json().zones[0];
  assert.equal(z.through, `proxy ${sh.write}`);
  assert.equal(z.transactions, 60, JSON.stringify(z));
  assert.equal(z.errors, 0);
  assert.ok((await sessionsTotal(sh.admin, 'write', 'sh-master')) > before, 'the proxy carried the workload\'s connections');
  const text = await box().run(['sandbox', 'workload', '--zones', 'sh', '--tps', '20', '--seconds', '0.5']);
  assert.match(text.stdout, new RegExp(`^sh \\(through the proxy ${sh.write}\\): 10 tx`));

  // A route moved under a running workload: its sessions are shut, it reconnects through the
  // proxy and writes into the new node. bj-replica1 is made a writable master for it.
  const bj = await proxyOf('bj');
  const replica = await box().db('bj-replica1');
  const master = await box().db('bj-master');
  // inserts raise it (the workload deletes only loaded rows)
  const count = (db: Db) => db.value<string>('SELECT MAX(id) FROM ezdemo.orders').then(Number);
  const child = spawn(process.execPath, [EZCTL, '--config', box().config, '--json', 'sandbox', 'workload', '--tps', '40', '--seconds', '120', '--zones', 'bj', '--progress', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  try {
    await replica.exec('STOP SLAVE');
    await replica.exec('SET GLOBAL read_only = 0');
    const onMaster = await count(master);
    await eventually(async () => (await count(master)) > onMaster, 20_000, 'writes through the proxy into bj-master');
    const onReplica = await count(replica);
    await (await target('bj')).moveWrite(node('bj-replica1'));
    await eventually(async () => (await count(replica)) > onReplica, 20_000, 'writes through the proxy into bj-replica1 after the move');
    child.kill('SIGINT');
    assert.equal(await exited, 130, `${stdout}\n${stderr}`);
    const w = JSON.parse(stdout).zones[0];
    assert.equal(w.through, `proxy ${bj.write}`);
    assert.ok(w.transactions > 0 && w.reconnects >= 1, JSON.stringify(w));
    assert.match(stderr, /workload bj: lost the connection to the proxy of bj/);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await replica.close();
    await master.close();
  }
});

test('sandbox down stops every proxy and server by pid: no haproxy of the sandbox is left', async () => {
  const s = await status();
  const pids = [...s.proxies.map((p) => p.pid), ...s.nodes.map((n) => n.pid)];
  assert.equal(pids.length, 6);
  const configs = s.proxies.map((p) => readFileSync(p.config, 'utf8'));
  assert.ok(configs.every((c) => c.includes('# ezctl-model: ')));
  stopped = true;
  await box().down();
  for (const pid of pids) assert.equal(pidAlive(pid), false, `pid ${pid} still alive`);
});

test('up --proxy without haproxy: says what to install, exit 2, nothing started or left behind', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'ezctl-nohaproxy-'));
  try {
    const r = await ezctl(['sandbox', 'up', '--proxy', '--dir', join(parent, 'sb')], { env: { EZCTL_HAPROXY_BIN: join(parent, 'no-haproxy') } });
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /EZCTL_HAPROXY_BIN=.*no-haproxy is not an executable file/);
    assert.match(r.stderr, /apt-get install haproxy/);
    assert.equal(existsSync(join(parent, 'sb')), false);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});
