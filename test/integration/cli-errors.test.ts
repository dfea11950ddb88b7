// Bad input and failures: every one exits with the documented code and a message that names
// the cause and the fix, and never shows a password.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ezctl, show } from '../helpers/cli.js';
import { startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { freePorts } from '../../src/core/sandbox/servers.js';

let tmp: string;
let sb: TestSandbox;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'ezctl-cli-'));
  sb = await startSandbox({ zones: ['bj'], replicas: 0 });
});

after(async () => {
  await sb?.down();
  rmSync(tmp, { recursive: true, force: true });
});

function topology(file: string, body: string): string {
  const p = join(tmp, file);
  writeFileSync(p, body);
  return p;
}

const oneNode = (port: number, creds = '  user: ezctl\n  passwordEnv: TEST_EZ_PASSWORD\n') => `zones: [bj]
credentials:
${creds}clusters:
  c1:
    zones:
      bj:
        master: {host: 127.0.0.1, port: ${port}}
`;

test('unknown command and unknown flag: exit 2 with the nearest suggestion', async () => {
  const cmd = await ezctl(['sandbx', 'up']);
  assert.equal(cmd.code, 2, show(cmd));
  assert.match(cmd.stderr, /unknown command 'sandbx'/);
  assert.match(cmd.stderr, /Did you mean sandbox\?/);
  const flag = await ezctl(['topo', 'show', '--clustr', 'x']);
  assert.equal(flag.code, 2, show(flag));
  assert.match(flag.stderr, /unknown option '--clustr'/);
  assert.match(flag.stderr, /Did you mean --cluster\?/);
});

test('bad option values are refused before anything runs (exit 2)', async () => {
  for (const args of [['sandbox', 'up', '--replicas', '9'], ['sandbox', 'workload', '--tps', 'abc'], ['sandbox', 'up', '--zones', 'bj,bj'], ['--connect-timeout', '0', 'topo', 'show']]) {
    const r = await ezctl(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${show(r)}`);
  }
});

test('--version and --help exit 0; every command shows examples', async () => {
  const v = await ezctl(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  for (const c of [[], ['sandbox'], ['sandbox', 'up'], ['sandbox', 'down'], ['sandbox', 'status'], ['sandbox', 'load'], ['sandbox', 'workload'], ['topo'], ['topo', 'show'], ['topo', 'check']]) {
    const h = await ezctl([...c, '--help']);
    assert.equal(h.code, 0, show(h));
    assert.match(h.stdout, /Examples:\n\s+\$ ezctl /, `help of "${c.join(' ')}" has examples`);
  }
  const top = await ezctl(['--help']);
  assert.match(top.stdout, /Exit codes:/);
});

test('an invalid topology file: exit 2, one line per problem with path, value and expectation', async () => {
  const p = topology('bad.yaml', `zones: [bj, sh]
clusters:
  orders:
    model: global
    zones:
      bj:
        master: {host: db1, port: 3306}
      sh:
        master: {host: db2, port: 70000}
        replicas: ["mysql://u@db3:99999"]
      gz:
        master: db4:3306
    colour: blue
`);
  const r = await ezctl(['--config', p, 'topo', 'show']);
  assert.equal(r.code, 2, show(r));
  const lines = r.stderr.split('\n');
  const expect = [
    'clusters.orders.zones.sh.master.port: 70000 is not a port (1-65535)',
    'clusters.orders.colour: unknown field',
    'clusters.orders.zones.gz: zone "gz" is not declared in zones (bj, sh)',
    'clusters.orders.writerZone: missing (a global cluster needs the zone that takes writes)',
  ];
  for (const e of expect) assert.ok(lines.some((l) => l.trim() === e), `missing line "${e}" in:\n${r.stderr}`);
  assert.ok(lines.some((l) => /clusters\.orders\.zones\.sh\.replicas\.0: "mysql:\/\/u@db3:99999": port 99999 is not a port/.test(l)), r.stderr);
  // --json: the same error as one JSON document on stdout
  const j = await ezctl(['--json', '--config', p, 'topo', 'show']);
  assert.equal(j.code, 2);
  assert.equal(j.json().error.exitCode, 2);
  assert.ok(j.json().error.details.includes('clusters.orders.zones.sh.master.port: 70000 is not a port (1-65535)'));
});

test('no topology file anywhere: exit 2 naming where it looked', async () => {
  const r = await ezctl(['topo', 'show'], { cwd: tmp, env: { EZCTL_CONFIG: undefined } });
  assert.equal(r.code, 2, show(r));
  assert.match(r.stderr, /no topology file found/);
  assert.match(r.stderr, /\.\/ezctl\.yaml and \.\/\.ezctl\/sandbox\/ezctl\.yaml/);
});

test('a password in the file or in a connection string is refused and never echoed', async () => {
  const p1 = topology('pw1.yaml', oneNode(3306, '  user: ezctl\n  password: hunter2secret\n'));
  const r1 = await ezctl(['--config', p1, 'topo', 'show']);
  assert.equal(r1.code, 2, show(r1));
  assert.match(r1.stderr, /credentials\.password: passwords do not belong in the topology file/);
  const p2 = topology('pw2.yaml', `zones: [bj]\nclusters:\n  c1:\n    zones:\n      bj:\n        master: "mysql://ezctl:hunter2secret@127.0.0.1:3306"\n`);
  const r2 = await ezctl(['--config', p2, 'topo', 'show']);
  assert.equal(r2.code, 2, show(r2));
  assert.match(r2.stderr, /a password in a connection string would show in ps/);
  assert.doesNotMatch(r1.stderr + r1.stdout + r2.stderr + r2.stdout, /hunter2secret/);
});

test('unreachable host: exit 3 naming host:port and the cause', async () => {
  const [port] = await freePorts(1);
  const p = topology('closed.yaml', oneNode(port!));
  const r = await ezctl(['--config', p, 'topo', 'check'], { env: { TEST_EZ_PASSWORD: 'x' } });
  assert.equal(r.code, 4, show(r)); // topo check: an unreachable node is a failed check
  assert.match(r.stdout, new RegExp(`cannot connect to bj-master 127\\.0\\.0\\.1:${port}: connection refused`));
  const s = await ezctl(['--config', p, 'topo', 'show'], { env: { TEST_EZ_PASSWORD: 'x' } });
  assert.equal(s.code, 3, show(s));
  assert.match(s.stdout, new RegExp(`127\\.0\\.0\\.1:${port}`));
});

test('a host that accepts but never answers: exit 3 within the connect timeout', async () => {
  const held: Socket[] = [];
  const silent: Server = createServer((sock) => held.push(sock)); // accepts, never greets
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const port = (silent.address() as { port: number }).port;
  try {
    const p = topology('silent.yaml', oneNode(port));
    const r = await ezctl(['--connect-timeout', '1', '--config', p, 'sandbox', 'load', '--rows', '1'], { env: { TEST_EZ_PASSWORD: 'x' }, timeoutMs: 30_000 });
    assert.equal(r.code, 2, show(r)); // this cluster has no shard map: refused before connecting
    const w = await ezctl(['--connect-timeout', '1', '--config', p, 'topo', 'show'], { env: { TEST_EZ_PASSWORD: 'x' }, timeoutMs: 30_000 });
    assert.equal(w.code, 3, show(w));
    assert.match(w.stderr, new RegExp(`cannot connect to bj-master 127\\.0\\.0\\.1:${port}: no answer within the connect timeout`));
  } finally {
    for (const s of held) s.destroy();
    silent.close();
  }
});

test('wrong password: says access denied and where the password came from, never prints it', async () => {
  const p = topology('wrongpw.yaml', oneNode(sb.node('bj-master').port));
  const r = await ezctl(['--config', p, 'sandbox', 'load', '--rows', '1', '--cluster', 'c1'], { env: { TEST_EZ_PASSWORD: 'S3cret-wrong-pw' } });
  assert.equal(r.code, 2, show(r)); // no shard map
  const t = await ezctl(['--json', '--config', p, 'topo', 'show'], { env: { TEST_EZ_PASSWORD: 'S3cret-wrong-pw' } });
  assert.equal(t.code, 3, show(t));
  assert.match(t.stdout, /access denied for user \\"ezctl\\" at bj-master 127\.0\.0\.1:\d+ \(password given, from \$TEST_EZ_PASSWORD\)/);
  assert.doesNotMatch(t.stdout + t.stderr, /S3cret-wrong-pw/);
  // the right password from the same variable works
  const ok = await ezctl(['--config', p, 'topo', 'show'], { env: { TEST_EZ_PASSWORD: sb.adminPassword } });
  assert.equal(ok.code, 0, show(ok));
  assert.doesNotMatch(ok.stdout + ok.stderr, new RegExp(sb.adminPassword));
});

test('password variable not set: exit 2 naming the variable', async () => {
  const p = topology('noenv.yaml', oneNode(sb.node('bj-master').port));
  const r = await ezctl(['--config', p, 'sandbox', 'workload', '--seconds', '1'], { env: { TEST_EZ_PASSWORD: undefined } });
  assert.equal(r.code, 2, show(r));
  const t = await ezctl(['--config', p, 'topo', 'show'], { env: { TEST_EZ_PASSWORD: undefined } });
  assert.equal(t.code, 2, show(t));
  assert.match(t.stderr, /environment variable TEST_EZ_PASSWORD \(named by credentials\.passwordEnv\) is not set/);
});

test('--defaults-file overrides the file\'s credentials; --ask-pass needs a terminal', async () => {
  const p = topology('df.yaml', oneNode(sb.node('bj-master').port));
  const cnf = join(tmp, 'my.cnf');
  writeFileSync(cnf, `[client]\nuser=ezctl\npassword="${sb.adminPassword}"\n`, { mode: 0o600 });
  const r = await ezctl(['--defaults-file', cnf, '--config', p, 'topo', 'show'], { env: { TEST_EZ_PASSWORD: 'wrong' } });
  assert.equal(r.code, 0, show(r));
  const a = await ezctl(['--ask-pass', '--config', p, 'topo', 'check'], { env: { TEST_EZ_PASSWORD: 'wrong' } });
  assert.equal(a.code, 2, show(a));
  assert.match(a.stderr, /--ask-pass needs a terminal/);
});

test('a password inside --master (URL, user:pw@host or percona p=) is refused and never echoed, text or --json', async () => {
  const p = topology('repoint.yaml', oneNode(sb.node('bj-master').port));
  for (const master of ['mysql://ezctl:hunter2secret@127.0.0.1:3306', 'ezctl:hunter2secret@127.0.0.1:3306', 'h=127.0.0.1,p=hunter2secret,P=3306', 'h=127.0.0.1,u=ezctl,p=hunter2secret']) {
    for (const json of [false, true]) {
      const r = await ezctl([...(json ? ['--json'] : []), '--config', p, 'drc', 'repoint', '--zone', 'bj', '--master', master], { env: { TEST_EZ_PASSWORD: 'x' } });
      assert.equal(r.code, 2, `${master}: ${show(r)}`);
      assert.match(r.stderr, /--master ".*\*\*\*.*": a password in a connection string would show in ps/, show(r));
      if (json) assert.match(r.json().error.message, /a password in a connection string would show in ps/);
      assert.doesNotMatch(r.stdout + r.stderr, /hunter2secret/, `${master}: ${show(r)}`);
    }
  }
});

test('usage errors: a message on stderr, with --json one {"error": ...} document on stdout, exit 2', async () => {
  const cases: Array<[string[], RegExp]> = [
    // osc checks its two required options itself (its subcommands share them): it used to print nothing
    [['osc'], /osc needs --table db\.table and --alter/],
    [['osc', '--table', 'ezdemo.orders'], /osc needs --table db\.table and --alter/],
    [['osc', 'status'], /osc status needs --table db\.table/],
    [['sandbx', 'up'], /unknown command 'sandbx'/],
    [['topo', 'show', '--clustr', 'x'], /unknown option '--clustr'/],
    [['sandbox', 'workload', '--tps', 'abc'], /"abc" is not a whole number/],
    [['--connect-timeout', 'soon', 'topo', 'show'], /"soon" is not a duration/],
    [['drc', 'repoint', '--zone', 'bj'], /required option '--master <host:port>' not specified/],
    [['topo'], /ezctl topo needs a command: show, check/],
    [['topo', 'show', 'extra'], /too many arguments/],
  ];
  for (const [args, re] of cases) {
    const t = await ezctl(args);
    assert.equal(t.code, 2, `${args.join(' ')}: ${show(t)}`);
    assert.match(t.stderr, re, `${args.join(' ')}: ${show(t)}`);
    assert.equal(t.stdout, '', `${args.join(' ')}: ${show(t)}`);
    const j = await ezctl(['--json', ...args]);
    assert.equal(j.code, 2, `--json ${args.join(' ')}: ${show(j)}`);
    assert.match(j.stderr, re);
    const doc = j.json();
    assert.equal(doc.error.exitCode, 2);
    assert.match(doc.error.message, re, `--json ${args.join(' ')}: ${show(j)}`);
    assert.equal(typeof doc.error.hint, 'string');
  }
  // the suggestion travels in the hint
  assert.equal((await ezctl(['--json', 'sandbx'])).json().error.hint, 'Did you mean sandbox?');
});

test('a world-writable defaults file is ignored with a warning naming it and the fix (the mysql client does the same)', async () => {
  const p = topology('ww.yaml', oneNode(sb.node('bj-master').port));
  const cnf = join(tmp, 'world.cnf');
  writeFileSync(cnf, `[client]\nuser=ezctl\npassword="${sb.adminPassword}"\n`);
  chmodSync(cnf, 0o666);
  for (const json of [false, true]) {
    const r = await ezctl([...(json ? ['--json'] : []), '--defaults-file', cnf, '--config', p, 'topo', 'show'], { env: { TEST_EZ_PASSWORD: 'wrong' } });
    assert.equal(r.code, 3, show(r)); // the file's right password was not used: the variable's wrong one was
    assert.ok(r.stderr.includes(`World-writable config file '${cnf}' is ignored`), show(r));
    assert.ok(r.stderr.includes(`chmod o-w ${cnf}`), show(r));
    assert.equal(r.stderr.split('World-writable').length - 1, 1, `named once: ${show(r)}`);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(sb.adminPassword));
  }
  // the same through the topology file's credentials.defaultsFile
  const q = topology('ww2.yaml', oneNode(sb.node('bj-master').port, `  defaultsFile: ${cnf}\n`));
  const t = await ezctl(['--config', q, 'topo', 'show']);
  assert.equal(t.code, 3, show(t));
  assert.match(t.stderr, /World-writable config file '.*world\.cnf' is ignored/);
  chmodSync(cnf, 0o600);
  const ok = await ezctl(['--config', q, 'topo', 'show']);
  assert.equal(ok.code, 0, show(ok));
  assert.doesNotMatch(ok.stderr, /World-writable/);
});

test('one server named twice, and a declared zone with no nodes: exit 2 naming the nodes and the zone', async () => {
  const p = topology('dup.yaml', `zones: [bj, sh, gz]
clusters:
  c1:
    zones:
      bj:
        master: {host: 127.0.0.1, port: 3307}
      sh:
        master: {host: 127.0.0.1, port: 3308}
        replicas: ["mysql://u@127.0.0.1:3307"]
`);
  for (const json of [false, true]) {
    const r = await ezctl([...(json ? ['--json'] : []), '--config', p, 'topo', 'check']);
    assert.equal(r.code, 2, show(r));
    const lines = json ? r.json().error.details : r.stderr.split('\n').map((l) => l.trim());
    assert.ok(lines.includes('clusters.c1.zones.sh.replicas.0: 127.0.0.1:3307 is also bj-master (clusters.c1.zones.bj.master): two nodes cannot be one server'), show(r));
    assert.ok(lines.includes('zones.2: zone "gz" has no nodes in any cluster (add them under clusters.<name>.zones.gz, or remove gz from zones)'), show(r));
  }
});

test('a server error shows its number and MariaDB\'s own message, not MySQL 8\'s name for that number', async () => {
  const db = await sb.db('bj-master');
  await db.exec('CREATE DATABASE IF NOT EXISTS ezerr');
  await db.exec('CREATE TABLE IF NOT EXISTS ezerr.t (id INT PRIMARY KEY, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))');
  await db.close();
  // a slip in the type name: MariaDB's 4161 "Unknown data type", which mysql2 calls ER_INSTALL_COMPONENT_SET_UNUSED_VALUE
  for (const json of [false, true]) {
    const r = await sb.run([...(json ? ['--json'] : []), 'osc', '--table', 'ezerr.t', '--alter', 'ADD COLUMN note INTT NULL']);
    assert.equal(r.code, 2, show(r));
    const text = json ? r.json().error.message : r.stderr;
    assert.match(text, /ERROR 4161 \(HY000\): Unknown data type: 'INTT'/, show(r));
    assert.doesNotMatch(r.stdout + r.stderr, /ER_INSTALL_COMPONENT|ER_[A-Z_]+/, show(r));
  }
  // a syntax error: the number and the server's message
  const s = await sb.run(['osc', '--table', 'ezerr.t', '--alter', 'ADD COLUMN note INT NULLL']);
  assert.equal(s.code, 2, show(s));
  assert.match(s.stderr, /ERROR 1064 \(42000\): You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version/, show(s));
  assert.doesNotMatch(s.stderr, /ER_[A-Z_]+/);
});
