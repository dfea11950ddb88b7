// sandbox up/status/down against real mariadbd processes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { ezctl, show, EZCTL } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { parseTopology } from '../../src/core/config/load.js';
import { pidAlive } from '../../src/core/process/pids.js';
import { drcStart } from '../helpers/drc.js';

let sb: TestSandbox;

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 1 });
});

after(async () => {
  await sb?.down();
});

test('up starts a master and a replica per zone, each a distinct server', async () => {
  assert.deepEqual(sb.nodes.map((n) => n.name), ['bj-master', 'bj-replica1', 'sh-master', 'sh-replica1']);
  assert.ok(sb.nodes.every((n) => n.running && n.pid && pidAlive(n.pid)));
  const seen = new Map<string, number>();
  for (const n of sb.nodes) {
    const db = await sb.db(n.name);
    const r = (await db.one<any>('SELECT @@server_id AS id, @@gtid_domain_id AS dom, @@read_only AS ro, @@binlog_format AS fmt, @@binlog_row_image AS img, @@binlog_row_metadata AS meta, @@log_slave_updates AS lsu, @@auto_increment_increment AS inc, @@auto_increment_offset AS off'))!;
    await db.close();
    assert.equal(Number(r.id), n.serverId);
    assert.equal(r.fmt, 'ROW');
    assert.equal(r.img, 'FULL');
    assert.equal(r.meta, 'FULL');
    assert.equal(Number(r.lsu), 1);
    assert.equal(Number(r.ro), n.role === 'replica' ? 1 : 0, `${n.name} read_only`);
    assert.equal(Number(r.inc), 2);
    seen.set(n.name, Number(r.dom));
    assert.equal(Number(r.off), n.zone === 'bj' ? 1 : 2);
  }
  assert.equal(seen.get('bj-master'), seen.get('bj-replica1'));
  assert.notEqual(seen.get('bj-master'), seen.get('sh-master'));
});

test('the written topology file is valid and describes what runs', () => {
  const topo = parseTopology(readFileSync(sb.config, 'utf8'), sb.config);
  const nodes = topo.nodes('demo');
  assert.deepEqual(nodes.map((n) => `${n.zone}/${n.role}/${n.port}`), sb.nodes.map((n) => `${n.zone}/${n.role}/${n.port}`));
  assert.deepEqual(topo.file.clusters.demo!.shards!.zones, { bj: Array.from({ length: 32 }, (_, i) => i), sh: Array.from({ length: 32 }, (_, i) => i + 32) });
  // secrets live in mode-0600 files beside it, never in the YAML
  assert.doesNotMatch(readFileSync(sb.config, 'utf8'), new RegExp(sb.adminPassword));
  assert.equal(statSync(join(sb.dir, 'client.cnf')).mode & 0o777, 0o600);
});

test('replicas follow their zone master through GTID replication, and zones stay apart', async () => {
  const m = await sb.db('bj-master');
  await m.exec('CREATE DATABASE IF NOT EXISTS t_repl');
  await m.exec('CREATE TABLE t_repl.t (id INT PRIMARY KEY, v VARCHAR(10))');
  await m.exec("INSERT INTO t_repl.t VALUES (1, 'a'), (2, 'b')");
  await m.close();
  const r = await sb.db('bj-replica1');
  const rows = await eventually(async () => {
    const x = await r.query('SELECT id, v FROM t_repl.t ORDER BY id').catch(() => []);
    return x.length === 2 ? x : undefined;
  }, 10_000, 'rows on bj-replica1');
  assert.deepEqual(rows, [{ id: 1, v: 'a' }, { id: 2, v: 'b' }]);
  const st = (await r.query<any>('SHOW SLAVE STATUS'))[0];
  assert.equal(st.Using_Gtid, 'Slave_Pos');
  assert.equal(st.Master_Port, sb.node('bj-master').port);
  await r.close();
  const other = await sb.db('sh-master');
  assert.equal((await other.query("SHOW DATABASES LIKE 't\\_repl'")).length, 0, 'no native replication between zones');
  await other.close();
});

test('the application user is subject to read_only; root has no password-less TCP login', async () => {
  const app = await sb.appDb('bj-replica1');
  await assert.rejects(app.exec("INSERT INTO t_repl.t VALUES (9, 'z')"), /--read-only/);
  await app.close();
  const r = await ezctl(['--json', 'topo', 'show'], {
    env: { EZCTL_CONFIG: undefined },
    cwd: sb.dir,
  });
  assert.equal(r.code, 0, show(r));
  const { connect } = await import('../../src/core/db/connect.js');
  await assert.rejects(connect({ label: 'root', host: '127.0.0.1', port: sb.node('bj-master').port, user: 'root', passwordSource: 'none' }), /access denied/);
});

test('a second up reports what runs; a killed node is restarted by up', async () => {
  const again = await ezctl(['--json', 'sandbox', 'up', '--dir', sb.dir]);
  assert.equal(again.code, 0, show(again));
  assert.equal(again.json().alreadyRunning, true);
  assert.deepEqual(again.json().startedNodes, []);

  const victim = sb.node('sh-replica1');
  process.kill(victim.pid!, 'SIGKILL');
  await eventually(async () => !pidAlive(victim.pid!), 5000, 'sh-replica1 to die');
  const st = await ezctl(['--json', 'sandbox', 'status', '--dir', sb.dir]);
  assert.equal(st.code, 3, 'status exits 3 when a node is down');
  assert.equal(st.json().nodes.find((n: any) => n.name === 'sh-replica1').running, false);

  const restarted = await ezctl(['--json', 'sandbox', 'up', '--dir', sb.dir]);
  assert.equal(restarted.code, 0, show(restarted));
  assert.deepEqual(restarted.json().startedNodes, ['sh-replica1']);
  const db = await sb.db('sh-replica1');
  const st2 = await eventually(async () => {
    const s = (await db.query<any>('SHOW SLAVE STATUS'))[0];
    return s?.Slave_IO_Running === 'Yes' && s?.Slave_SQL_Running === 'Yes' ? s : undefined;
  }, 10_000, 'replication to resume');
  assert.ok(st2);
  await db.close();
});

test('a port already taken: clear error, exit 2, nothing left behind', async () => {
  const blocker: Server = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as { port: number }).port;
  const parent = mkdtempSync(join(tmpdir(), 'ezctl-port-'));
  const dir = join(parent, 'sb');
  try {
    // the blocked port is the first one asked for: the port before it may be any other test's (CI saw one taken)
    const r = await ezctl(['sandbox', 'up', '--dir', dir, '--base-port', String(port), '--replicas', '0']);
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, new RegExp(`port 127\\.0\\.0\\.1:${port} is already in use`));
    assert.match(r.stderr, /--base-port/);
    assert.equal(existsSync(dir), false, 'no sandbox directory left');
  } finally {
    blocker.close();
    rmSync(parent, { recursive: true, force: true });
  }
});

test('no server binary: says what to install, exit 2', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'ezctl-nobin-'));
  try {
    const r = await ezctl(['sandbox', 'up', '--dir', join(parent, 'sb')], { env: { EZCTL_SERVER_PATH: join(parent, 'empty') } });
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /no MariaDB or MySQL server binary found/);
    assert.match(r.stderr, /apt-get install mariadb-server/);
    assert.equal(existsSync(join(parent, 'sb')), false);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test('down stops exactly its own processes by pid and removes the directory', async () => {
  const extra = await startSandbox({ zones: ['gz'], replicas: 0 });
  const pids = extra.nodes.map((n) => n.pid!);
  const mine = sb.nodes.map((n) => n.name);
  const r = await ezctl(['--json', 'sandbox', 'down', '--dir', extra.dir]);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(r.json().stopped, ['gz-master']);
  assert.ok(pids.every((p) => !pidAlive(p)));
  assert.equal(existsSync(extra.dir), false);
  // the other sandbox is untouched
  const st = await ezctl(['--json', 'sandbox', 'status', '--dir', sb.dir]);
  assert.equal(st.code, 0, show(st));
  assert.deepEqual(st.json().nodes.filter((n: any) => n.running).map((n: any) => n.name), mine);
  await extra.down();
  // down of a missing sandbox is a no-op
  const again = await ezctl(['sandbox', 'down', '--dir', extra.dir]);
  assert.equal(again.code, 0, show(again));
});

test('down first stops what runs against the sandbox (the DRC daemon, ezctl processes using its topology file), by pid, and says so', async () => {
  const two = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  let watcher: ChildProcess | undefined;
  let watcher2: ChildProcess | undefined;
  let daemon: number | undefined;
  try {
    daemon = await drcStart(two);
    // a long-running ezctl process pointed at this sandbox (a monitor, say)
    watcher = spawn(process.execPath, [EZCTL, '--config', two.config, 'drc', 'status', '--watch', '--interval', '200ms'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } });
    // and one that found the topology file through $EZCTL_CONFIG
    watcher2 = spawn(process.execPath, [EZCTL, 'drc', 'status', '--watch', '--interval', '200ms'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true', EZCTL_CONFIG: two.config } });
    const w = watcher;
    const w2 = watcher2;
    for (const c of [w, w2]) {
      await new Promise<void>((res, rej) => {
        c.stdout!.once('data', () => res());
        c.once('exit', (code) => rej(new Error(`drc status --watch exited ${code}`)));
      });
    }
    const r = await ezctl(['--json', 'sandbox', 'down', '--dir', two.dir]);
    assert.equal(r.code, 0, show(r));
    assert.equal(pidAlive(daemon), false, 'the DRC daemon is gone');
    const out = r.json();
    assert.deepEqual(out.stoppedProcesses.map((p: any) => p.pid).sort(), [daemon, w.pid, w2.pid].sort(), JSON.stringify(out.stoppedProcesses));
    assert.match(out.stoppedProcesses.find((p: any) => p.pid === daemon).what, /DRC daemon of cluster demo/);
    assert.deepEqual(out.stopped, ['bj-master', 'sh-master']);
    await eventually(async () => [w, w2].every((c) => c.exitCode !== null || c.signalCode !== null), 5000, 'the watchers to exit');
    // no ezctl process is left that names the sandbox
    const left = spawnSync('pgrep', ['-f', two.dir], { encoding: 'utf8' }).stdout.trim();
    assert.equal(left, '', `processes still naming ${two.dir}: ${left}`);
    const text = await ezctl(['sandbox', 'down', '--dir', two.dir]);
    assert.equal(text.code, 0, show(text));
  } finally {
    if (daemon && pidAlive(daemon)) process.kill(daemon, 'SIGKILL');
    for (const c of [watcher, watcher2]) if (c && c.exitCode === null) c.kill('SIGKILL');
    await two.down();
  }
});

test('on a terminal the steps draw live on stderr, and a redirected --json stdout stays pure JSON', { skip: spawnSync('script', ['--version']).status !== 0 && 'util-linux script is not installed' }, async () => {
  const parent = mkdtempSync(join(tmpdir(), 'ezctl-tty-'));
  const dir = join(parent, 'sb');
  try {
    // script(1) gives the command a pseudo-terminal; only its stdout is redirected to a file.
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(EZCTL)} --json sandbox up --dir ${JSON.stringify(dir)} --zones tt --replicas 0 > ${JSON.stringify(join(parent, 'out.json'))}`;
    const r = spawnSync('script', ['-qec', cmd, join(parent, 'tty.log')], { env: { ...process.env, CI: '' }, stdio: 'ignore', timeout: 60_000 });
    assert.equal(r.status, 0);
    const out = JSON.parse(readFileSync(join(parent, 'out.json'), 'utf8'));
    assert.deepEqual(out.startedNodes, ['tt-master']);
    const screen = readFileSync(join(parent, 'tty.log'), 'utf8');
    assert.match(screen, /✔ start the servers: tt-master:\d+/);
    assert.match(screen, /\x1b\[/, 'the terminal got a live view');
  } finally {
    await ezctl(['sandbox', 'down', '--dir', dir]);
    rmSync(parent, { recursive: true, force: true });
  }
});
