// emha mha-config's pure parts: the topology → MHA sections mapping (candidate_master, no_master
// for delayed or binlog-less replicas, nothing decided for a node not reached), the merge that keeps
// a DBA's MHA keys by hostname:port, the ini reading MHA's Config::Tiny does, the passwords MHA's
// init_conf_load_script cannot carry, and the writer that replaces a file only when it changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  mhaZonePlan, mergeExisting, parseIni, renderIni, mhaPasswordProblem, maskSecrets, writeIfChanged, mhaProblems, secretsScript, configHeader,
  type MhaZone, type MhaSettings, type Section,
} from '../../src/core/emha/mha-config.js';

const settings: MhaSettings = { dir: '/etc/mha', topologyPath: '/etc/ezctl.yaml' };

function zone(nodes: Partial<MhaZone['nodes'][number]>[] = []): MhaZone {
  const base: MhaZone['nodes'] = [
    { name: 'bj-master', role: 'master', host: '10.0.1.10', port: 3306, probed: true, logBin: true, sqlDelay: 0, binlogDir: '/var/lib/mysql' },
    { name: 'bj-replica1', role: 'replica', host: '10.0.1.11', port: 3306, probed: true, logBin: true, sqlDelay: 0, binlogDir: '/var/lib/mysql' },
  ];
  return { cluster: 'orders', zone: 'bj', user: 'ezctl', nodes: [...base, ...nodes.map((n, i) => ({ name: `bj-replica${i + 2}`, role: 'replica' as const, host: `10.0.1.${12 + i}`, port: 3306, probed: true, logBin: true, sqlDelay: 0, ...n }))] };
}

const keysOf = (sections: Section[], name: string) => Object.fromEntries(sections.find((s) => s.name === name)?.keys ?? []);

test('one zone maps to [server default] and one [serverN] per node, master first, with paths under --out', () => {
  const plan = mhaZonePlan(zone(), settings);
  assert.equal(plan.configPath, '/etc/mha/orders-bj.cnf');
  assert.equal(plan.scriptPath, '/etc/mha/orders-bj.secrets');
  assert.deepEqual(plan.sections.map((s) => s.name), ['server default', 'server1', 'server2']);
  assert.deepEqual(keysOf(plan.sections, 'server default'), {
    user: 'ezctl',
    init_conf_load_script: '/etc/mha/orders-bj.secrets',
    manager_workdir: '/etc/mha/orders-bj',
    manager_log: '/etc/mha/orders-bj/manager.log',
    remote_workdir: '/var/tmp/mha-orders-bj',
  });
  assert.deepEqual(keysOf(plan.sections, 'server1'), { hostname: '10.0.1.10', port: '3306', master_binlog_dir: '/var/lib/mysql', candidate_master: '1' });
  assert.deepEqual(keysOf(plan.sections, 'server2'), { hostname: '10.0.1.11', port: '3306', master_binlog_dir: '/var/lib/mysql', candidate_master: '1' });
  // no password key anywhere
  assert.ok(!renderIni([], plan.sections).includes('password'));
});

test('a delayed replica and one without a binary log are no_master; a node not reached gets neither flag nor binlog dir', () => {
  const plan = mhaZonePlan(zone([{ sqlDelay: 3600 }, { logBin: false, binlogDir: undefined }, { probed: false, logBin: undefined, sqlDelay: undefined, binlogDir: undefined }]), settings);
  assert.deepEqual(keysOf(plan.sections, 'server3'), { hostname: '10.0.1.12', port: '3306', no_master: '1' });
  assert.deepEqual(keysOf(plan.sections, 'server4'), { hostname: '10.0.1.13', port: '3306', no_master: '1' });
  assert.deepEqual(keysOf(plan.sections, 'server5'), { hostname: '10.0.1.14', port: '3306' });
  assert.match(plan.notes.join('\n'), /bj-replica2: no_master \(a delayed replica: MASTER_DELAY 3600 s\)/);
  assert.match(plan.notes.join('\n'), /bj-replica3: no_master \(binary log off/);
  assert.match(plan.notes.join('\n'), /bj-replica4: not reached/);
});

test('--ssh-user, --repl-user and --remote-workdir land in [server default] and become keys ezctl owns', () => {
  const plan = mhaZonePlan(zone(), { ...settings, sshUser: 'mha', replUser: 'repl', replPassword: true, remoteWorkdir: '/data/mha' });
  const d = keysOf(plan.sections, 'server default');
  assert.equal(d.ssh_user, 'mha');
  assert.equal(d.repl_user, 'repl');
  assert.equal(d.remote_workdir, '/data/mha');
  assert.ok(plan.owned.default.includes('ssh_user') && plan.owned.default.includes('repl_user') && plan.owned.default.includes('repl_password'));
  assert.ok(!mhaZonePlan(zone(), settings).owned.default.includes('ssh_user'));
});

test('parseIni reads as Config::Tiny does: comments, " ; " inline comments, last key wins, keys before any section', () => {
  const s = parseIni('x=1\n# c\n; c\n[server default]\nuser = a \nping_interval=3 ; every 3 s\nuser=b\n[ server1 ]\nhostname=h\n');
  assert.deepEqual(s, [
    { name: '_', keys: [['x', '1']] },
    { name: 'server default', keys: [['ping_interval', '3'], ['user', 'b']] },
    { name: 'server1', keys: [['hostname', 'h']] },
  ]);
});

test("the merge keeps a DBA's MHA keys (by hostname:port, not by section number), drops what MHA refuses and servers gone", () => {
  const old = [
    '[server default]',
    'user=someone',
    'password=hunter2',
    'ping_interval=5',
    'master_ip_failover_script=/usr/local/bin/vip',
    'colour=blue',
    '[server1]',
    'hostname=10.0.1.11',
    'port=3306',
    'ignore_fail=1',
    'candidate_master=0',
    '[server2]',
    'hostname=10.0.9.9',
    'ssh_port=2222',
    '[binlog1]',
    'hostname=10.0.1.50',
    'bogus=1',
    '[weird]',
    'hostname=x',
  ].join('\n');
  const plan = mhaZonePlan(zone(), settings);
  const m = mergeExisting(plan, old);
  const d = keysOf(m.sections, 'server default');
  assert.equal(d.user, 'ezctl', 'an owned key is ezctl\'s');
  assert.equal(d.password, undefined, 'a password in the file is dropped: the script gives it');
  assert.equal(d.ping_interval, '5');
  assert.equal(d.master_ip_failover_script, '/usr/local/bin/vip');
  assert.equal(d.colour, undefined);
  // bj-replica1 (10.0.1.11) is server2 now: its ignore_fail follows it; candidate_master is ezctl's
  assert.equal(keysOf(m.sections, 'server2').ignore_fail, '1');
  assert.equal(keysOf(m.sections, 'server2').candidate_master, '1');
  assert.equal(keysOf(m.sections, 'server1').ignore_fail, undefined);
  assert.deepEqual(keysOf(m.sections, 'binlog1'), { hostname: '10.0.1.50' });
  assert.deepEqual(m.kept.sort(), ['[binlog1]', '[server default] master_ip_failover_script', '[server default] ping_interval', '[server2] ignore_fail'].sort());
  const dropped = m.dropped.join('\n');
  assert.match(dropped, /\[server default\] user=someone \(ezctl writes ezctl\)/);
  assert.match(dropped, /\[server default\] password \(init_conf_load_script gives it\)/);
  assert.match(dropped, /\[server default\] colour \(not a key MHA accepts\)/);
  assert.match(dropped, /\[server1\] candidate_master=0 \(ezctl writes 1\)/);
  assert.match(dropped, /\[server2\] 10\.0\.9\.9:3306 \(no longer in the zone\), with ssh_port/);
  assert.match(dropped, /\[binlog1\] bogus/);
  assert.match(dropped, /\[weird\]/);
  assert.ok(!dropped.includes('hunter2'), 'a dropped password is never shown');
});

test('merging the file it wrote gives the same file (a rerun changes nothing)', () => {
  const plan = mhaZonePlan(zone([{ sqlDelay: 60 }]), settings);
  const first = renderIni(configHeader(plan, settings.topologyPath), mergeExisting(plan, undefined).sections);
  const m = mergeExisting(plan, first + '\n[server default]\nping_interval=7\n');
  const second = renderIni(configHeader(plan, settings.topologyPath), m.sections);
  const third = renderIni(configHeader(plan, settings.topologyPath), mergeExisting(plan, second).sections);
  assert.equal(third, second);
  assert.deepEqual(m.dropped, []);
  assert.match(second, /ping_interval=7/);
});

test('passwords MHA would mangle through init_conf_load_script are named', () => {
  assert.equal(mhaPasswordProblem('Abc-123_xyz'), undefined);
  assert.match(mhaPasswordProblem('a=b')!, /'='/);
  assert.match(mhaPasswordProblem('ab"')!, /quote/);
  assert.match(mhaPasswordProblem("ab'")!, /quote/);
  assert.match(mhaPasswordProblem('a\nb')!, /line break/);
  assert.equal(maskSecrets('[server1]\npassword=x\nrepl_password = y\nuser=z\n'), '[server1]\npassword=***\nrepl_password = ***\nuser=z\n');
});

test('paths MHA hands to a shell unquoted, and hosts it cannot carry, are refused', () => {
  assert.deepEqual(mhaProblems(zone(), settings), []);
  assert.match(mhaProblems(zone(), { ...settings, dir: '/etc/my mha' }).join('\n'), /through a shell/);
  assert.match(mhaProblems({ ...zone(), cluster: 'a$b' }, settings).join('\n'), /through a shell/);
  assert.match(mhaProblems(zone([{ binlogDir: '/var/lib/my sql' }]), settings).join('\n'), /master_binlog_dir/);
});

test('the secrets script runs ezctl with every argument quoted and holds no secret', () => {
  const plan = mhaZonePlan(zone(), settings);
  const s = secretsScript(plan, { node: '/usr/bin/node', ezctl: "/opt/it's/ezctl", topologyPath: '/etc/ezctl.yaml', defaultsFile: '/root/.my.cnf', replPasswordEnv: 'REPL_PW', passwordFrom: '$EZCTL_PASSWORD' });
  assert.match(s, /^#!\/bin\/sh\n/);
  assert.match(s, /\nexec '\/usr\/bin\/node' '\/opt\/it'\\''s\/ezctl' '--config' '\/etc\/ezctl.yaml' '--defaults-file' '\/root\/.my.cnf' 'emha' 'mha-secrets' '--cluster' 'orders' '--zone' 'bj' '--repl-password-env' 'REPL_PW'\n$/);
});

test('writeIfChanged: created, unchanged (no new inode, mode corrected), updated by rename, no temporary file left', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-mha-unit-'));
  try {
    const p = join(dir, 'a.cnf');
    assert.equal(writeIfChanged(p, 'one\n', 0o600), 'created');
    assert.equal(statSync(p).mode & 0o777, 0o600);
    const ino = statSync(p).ino;
    const mtime = statSync(p).mtimeMs;
    chmodSync(p, 0o644);
    assert.equal(writeIfChanged(p, 'one\n', 0o600), 'unchanged');
    assert.equal(statSync(p).ino, ino);
    assert.equal(statSync(p).mtimeMs, mtime);
    assert.equal(statSync(p).mode & 0o777, 0o600);
    assert.equal(writeIfChanged(p, 'two\n', 0o600), 'updated');
    assert.notEqual(statSync(p).ino, ino, 'replaced by a rename, not rewritten in place');
    assert.equal(readFileSync(p, 'utf8'), 'two\n');
    writeFileSync(join(dir, 'x'), '');
    assert.deepEqual(readdirSync(dir).sort(), ['a.cnf', 'x']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
