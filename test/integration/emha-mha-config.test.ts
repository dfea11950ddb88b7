// emha mha-config against a real two-zone sandbox (two replicas per zone), read back by MHA 0.58's
// own reader (MHA::Config::read_config, which also runs init_conf_load_script: the password
// reaches MHA without being in the file). A replica added to the topology rewrites only its zone's
// file; a DBA's own MHA key survives a rerun; a delayed replica is no_master.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { ezctl, show } from '../helpers/cli.js';
import { startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { sqlOn } from '../helpers/drc.js';
import { freePorts } from '../../src/core/sandbox/servers.js';

let sb: TestSandbox;
let out: string;
let full: string;

const READER = `
use strict; use MHA::Config;
my $c = MHA::Config->new(file => $ARGV[0], globalfile => '/nonexistent/masterha_default.cnf');
my ($servers) = $c->read_config();
for my $s (@$servers) {
  print join("\\t", map { defined $_ ? $_ : '' } @$s{qw(id hostname port candidate_master no_master user password manager_workdir manager_log master_binlog_dir ping_interval)}), "\\n";
}`;

interface MhaServer { id: string; hostname: string; port: number; candidate: boolean; noMaster: boolean; user: string; password: string; workdir: string; log: string; binlogDir: string; pingInterval: string }

/** What MHA's own reader makes of a file. */
function mhaRead(file: string): MhaServer[] {
  const r = spawnSync('perl', ['-e', READER, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `MHA::Config refused ${file}:\n${r.stderr}\n${readFileSync(file, 'utf8')}`);
  return r.stdout.trim().split('\n').map((l) => {
    const [id, hostname, port, cand, no, user, password, workdir, log, binlogDir, pingInterval] = l.split('\t');
    return { id: id!, hostname: hostname!, port: Number(port), candidate: cand === '1', noMaster: no === '1', user: user!, password: password!, workdir: workdir!, log: log!, binlogDir: binlogDir!, pingInterval: pingInterval! };
  });
}

before(async () => {
  const mha = spawnSync('perl', ['-MMHA::Config', '-e', '1'], { encoding: 'utf8' });
  assert.equal(mha.status, 0, `MHA's Perl modules are missing (apt-get install mha4mysql-manager, or scripts/ensure-test-peers.sh as root):\n${mha.stderr}`);
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 2 });
  out = mkdtempSync(join(tmpdir(), 'ezctl-mha-'));
  // the topology without bj-replica2 first: the test adds it back
  full = readFileSync(sb.config, 'utf8');
  const doc = parseDocument(full);
  const cluster = Object.keys(doc.toJS().clusters)[0]!;
  doc.deleteIn(['clusters', cluster, 'zones', 'bj', 'replicas', 1]);
  writeFileSync(sb.config, doc.toString());
  await sqlOn(sb, 'sh-replica2', 'STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY = 3600', 'START SLAVE');
});

after(async () => {
  await sb?.down();
  if (out) rmSync(out, { recursive: true, force: true });
});

const addr = (name: string) => `127.0.0.1:${sb.node(name).port}`;

test('without --out the files are printed and nothing is written', async () => {
  const r = await sb.run(['emha', 'mha-config']);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /\[server default\]/);
  assert.match(r.stdout, /printed only: nothing was written/);
  assert.ok(!existsSync(join(sb.dir, 'state', 'mha')), 'nothing written in the default folder');
  assert.ok(!r.stdout.includes(sb.adminPassword) && !r.stderr.includes(sb.adminPassword));
});

test("MHA's reader accepts every zone's file: hosts, ports, candidate flags, the password through init_conf_load_script", async () => {
  const r = await ezctlJson(['--config', sb.config, '--json', 'emha', 'mha-config', '--out', out]);
  assert.deepEqual(r.zones.map((z: any) => [z.zone, z.config.status, z.script.status]), [['bj', 'created', 'created'], ['sh', 'created', 'created']]);
  for (const zone of ['bj', 'sh']) {
    const cnf = join(out, `demo-${zone}.cnf`);
    const text = readFileSync(cnf, 'utf8');
    assert.ok(!text.includes(sb.adminPassword), 'no password in the file');
    assert.ok(!readFileSync(join(out, `demo-${zone}.secrets`), 'utf8').includes(sb.adminPassword), 'no password in the script');
    assert.equal(statSync(cnf).mode & 0o777, 0o600);
    assert.equal(statSync(join(out, `demo-${zone}.secrets`)).mode & 0o777, 0o700);
    const servers = mhaRead(cnf);
    const names = zone === 'bj' ? ['bj-master', 'bj-replica1'] : ['sh-master', 'sh-replica1', 'sh-replica2'];
    assert.deepEqual(servers.map((s) => `${s.id} ${s.hostname}:${s.port}`), names.map((n, i) => `server${i + 1} ${addr(n)}`));
    for (const s of servers) {
      assert.equal(s.user, 'ezctl');
      assert.equal(s.password, sb.adminPassword, 'MHA got the password from init_conf_load_script');
      assert.equal(s.workdir, join(out, `demo-${zone}`));
      assert.equal(s.log, join(out, `demo-${zone}`, 'manager.log'));
    }
    assert.deepEqual(servers.map((s) => s.binlogDir), names.map((n) => join(sb.dir, n)));
    // sh-replica2 replicates with MASTER_DELAY: never promoted
    assert.deepEqual(servers.map((s) => [s.candidate, s.noMaster]), names.map((n) => (n === 'sh-replica2' ? [false, true] : [true, false])));
  }
});

test("a replica added to the topology rewrites only its zone's file; a rerun rewrites nothing", async () => {
  const before = { sh: statSync(join(out, 'demo-sh.cnf')).ino, bjScript: statSync(join(out, 'demo-bj.secrets')).ino };
  writeFileSync(sb.config, full);
  const r = await ezctlJson(['--config', sb.config, '--json', 'emha', 'mha-config', '--out', out]);
  assert.deepEqual(r.zones.map((z: any) => [z.zone, z.config.status, z.script.status]), [['bj', 'updated', 'unchanged'], ['sh', 'unchanged', 'unchanged']]);
  assert.equal(statSync(join(out, 'demo-sh.cnf')).ino, before.sh);
  assert.equal(statSync(join(out, 'demo-bj.secrets')).ino, before.bjScript);
  assert.deepEqual(mhaRead(join(out, 'demo-bj.cnf')).map((s) => `${s.hostname}:${s.port}`), ['bj-master', 'bj-replica1', 'bj-replica2'].map(addr));
  const again = await ezctlJson(['--config', sb.config, '--json', 'emha', 'mha-config', '--out', out]);
  assert.deepEqual(again.zones.flatMap((z: any) => [z.config.status, z.script.status]), ['unchanged', 'unchanged', 'unchanged', 'unchanged']);
});

test("a DBA's own MHA key is kept across a rerun, one MHA refuses is dropped and named", async () => {
  const cnf = join(out, 'demo-sh.cnf');
  writeFileSync(cnf, readFileSync(cnf, 'utf8').replace('[server default]\n', '[server default]\nping_interval=5\ncolour=blue\n'));
  const r = await sb.run(['--json', 'emha', 'mha-config', '--out', out]);
  assert.equal(r.code, 0, show(r));
  const sh = r.json().zones.find((z: any) => z.zone === 'sh');
  assert.equal(sh.config.status, 'updated');
  assert.deepEqual(sh.kept, ['[server default] ping_interval']);
  assert.deepEqual(sh.dropped, ['[server default] colour (not a key MHA accepts)']);
  assert.deepEqual(mhaRead(cnf).map((s) => s.pingInterval), ['5', '5', '5']);
  const again = await sb.run(['--json', 'emha', 'mha-config', '--out', out]);
  assert.equal(again.json().zones.find((z: any) => z.zone === 'sh').config.status, 'unchanged');
});

test('emha mha-secrets prints what the script gives MHA, and refuses a replication password MHA would cut', async () => {
  const r = await sb.run(['emha', 'mha-secrets', '--zone', 'bj', '--repl-password-env', 'REPL_PW'], { env: { REPL_PW: 'r3pl' } });
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, `password=${sb.adminPassword}\nrepl_password=r3pl\n`);
  const bad = await sb.run(['emha', 'mha-secrets', '--zone', 'bj', '--repl-password-env', 'REPL_PW'], { env: { REPL_PW: 'a=b' } });
  assert.equal(bad.code, 2, show(bad));
  assert.match(bad.stderr, /'='/);
  assert.ok(!bad.stderr.includes('a=b'));
});

test('a node that cannot be reached is written without candidate flags or binlog folder, and the command exits 3 naming it', async () => {
  const [port] = await freePorts(1);
  const doc = parseDocument(full);
  const cluster = Object.keys(doc.toJS().clusters)[0]!;
  doc.addIn(['clusters', cluster, 'zones', 'sh', 'replicas'], { name: 'sh-gone', host: '127.0.0.1', port });
  writeFileSync(sb.config, doc.toString());
  try {
    const r = await sb.run(['--json', 'emha', 'mha-config', '--out', out]);
    assert.equal(r.code, 3, show(r));
    assert.deepEqual(r.json().unreachable.map((u: any) => u.node), ['sh-gone']);
    assert.match(r.stderr, /sh-gone/);
    const sh = r.json().zones.find((z: any) => z.zone === 'sh');
    assert.deepEqual(r.json().zones.map((z: any) => z.config.status), ['unchanged', 'updated']);
    assert.match(sh.notes.join('\n'), /sh-gone: not reached/);
    const last = mhaRead(join(out, 'demo-sh.cnf')).at(-1)!;
    assert.deepEqual([last.id, last.port, last.candidate, last.noMaster, last.binlogDir], ['server4', port, false, false, '/var/lib/mysql,/var/log/mysql']);
  } finally {
    writeFileSync(sb.config, full);
  }
});

async function ezctlJson(args: string[]): Promise<any> {
  const r = await ezctl(args);
  assert.equal(r.code, 0, show(r));
  return r.json();
}
