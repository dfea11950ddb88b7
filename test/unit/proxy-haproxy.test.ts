// The HAProxy routing target's pure parts: the configuration made from a routing model, the
// runtime API commands each change sends, `show servers state` and the drift between the running
// proxy and its file; and the topology file's proxy field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FALLBACK, checkModel, parseModel, parseServersState, planFence, planMoveWrite, planReadPool, planUnfence, renderConfig, routeDrift, runtimeOutputProblems, runtimeRoutes, takesTraffic,
  type ProxyModel,
} from '../../src/core/proxy/haproxy-config.js';
import { parseTopology } from '../../src/core/config/load.js';
import { zoneProxy } from '../../src/core/proxy/zone.js';
import { ezErrorOf } from '../helpers/errors.js';

const model = (over: Partial<ProxyModel> = {}): ProxyModel => ({
  version: 1,
  name: 'demo/bj',
  bind: '127.0.0.1',
  writePort: 31001,
  readPort: 31002,
  admin: '/tmp/sb/proxy-bj/admin.sock',
  nodes: [
    { name: 'bj-master', host: '127.0.0.1', port: 3306 },
    { name: 'bj-replica1', host: '127.0.0.1', port: 3307 },
    { name: 'bj-replica2', host: '127.0.0.1', port: 3308 },
  ],
  write: 'bj-master',
  read: ['bj-replica1', 'bj-replica2'],
  fenced: [],
  ...over,
});

const section = (cfg: string, name: string) => {
  const lines = cfg.split('\n');
  const start = lines.indexOf(name);
  assert.ok(start >= 0, `no section ${name} in\n${cfg}`);
  const end = lines.findIndex((l, i) => i > start && l === '');
  return lines.slice(start + 1, end).map((l) => l.trim());
};

test('the configuration: a TCP write backend with only the master enabled, a read backend over the pool with the master as backup, a 0600 admin socket', () => {
  const cfg = renderConfig(model());
  assert.match(cfg, /^ {4}stats socket "\/tmp\/sb\/proxy-bj\/admin.sock" mode 600 level admin$/m);
  assert.match(cfg, /^ {4}mode tcp$/m);
  assert.deepEqual(section(cfg, 'frontend write'), ['bind 127.0.0.1:31001', 'default_backend write']);
  assert.deepEqual(section(cfg, 'backend write'), [
    'balance first',
    'server bj-master 127.0.0.1:3306',
    'server bj-replica1 127.0.0.1:3307 disabled',
    'server bj-replica2 127.0.0.1:3308 disabled',
  ]);
  assert.deepEqual(section(cfg, 'frontend read'), ['bind 127.0.0.1:31002', 'default_backend read']);
  assert.deepEqual(section(cfg, 'backend read'), [
    'balance roundrobin', 'option redispatch', 'retries 2',
    'server bj-master 127.0.0.1:3306 disabled',
    'server bj-replica1 127.0.0.1:3307',
    'server bj-replica2 127.0.0.1:3308',
    `server ${FALLBACK} 127.0.0.1:3306 backup`,
  ]);
  // the model rides in the file: what a restarted proxy and the next ezctl read back
  assert.deepEqual(parseModel(cfg), model());
  assert.equal(parseModel('global\n    maxconn 10\n'), undefined);
});

test('a closed write route: no write server enabled, the read fallback disabled', () => {
  const cfg = renderConfig(model({ write: null }));
  assert.ok(section(cfg, 'backend write').filter((l) => l.startsWith('server')).every((l) => l.endsWith(' disabled')));
  assert.ok(section(cfg, 'backend read').some((l) => l.startsWith(`server ${FALLBACK} `) && l.endsWith(' backup disabled')));
});

test('a model that cannot be written is refused, naming each reason', () => {
  const bad = model({ nodes: [{ name: 'bj master', host: '127.0.0.1', port: 1 }, { name: FALLBACK, host: 'h"x', port: 2 }], write: 'gone', read: [FALLBACK], fenced: [FALLBACK] });
  const problems = checkModel(bad);
  assert.ok(problems.some((p) => /"bj master" cannot name an HAProxy server/.test(p)), problems.join('\n'));
  assert.ok(problems.some((p) => /_fallback is reserved/.test(p)));
  assert.ok(problems.some((p) => /host "h\\"x" is not/.test(p)));
  assert.ok(problems.some((p) => /write node gone is not one of/.test(p)));
  assert.ok(problems.some((p) => /read node _fallback is fenced/.test(p)));
  assert.throws(() => renderConfig(bad), /cannot write the proxy configuration of demo\/bj/);
});

test('moving the write route: every other write slot disabled (sessions shut) before the new one is enabled, the read fallback follows', () => {
  const to = { name: 'bj-replica1', host: '127.0.0.1', port: 3307 };
  const p = planMoveWrite(model(), to);
  assert.deepEqual(p.commands, [
    'disable server write/bj-master', 'shutdown sessions server write/bj-master',
    'disable server write/bj-replica2', 'shutdown sessions server write/bj-replica2',
    'enable server write/bj-replica1',
    `set server read/${FALLBACK} addr 127.0.0.1 port 3307`, `enable server read/${FALLBACK}`,
  ]);
  assert.equal(p.model.write, 'bj-replica1');
  // the read pool is the caller's to change
  assert.deepEqual(p.model.read, ['bj-replica1', 'bj-replica2']);
  // left to the caller: no session is shut
  assert.ok(!planMoveWrite(model(), to, false).commands.some((c) => c.startsWith('shutdown')));
  // the input model is not changed
  assert.equal(model().write, 'bj-master');
});

test('moving the write route to a node the proxy has no slot for adds it (in maintenance), to a moved node sets its address', () => {
  const added = planMoveWrite(model(), { name: 'bj-new', host: '10.0.0.9', port: 3310 });
  assert.deepEqual(added.commands.slice(0, 2), ['add server write/bj-new 10.0.0.9:3310', 'add server read/bj-new 10.0.0.9:3310']);
  assert.equal(added.commands.filter((c) => c === 'enable server write/bj-new').length, 1);
  assert.deepEqual(added.model.nodes.at(-1), { name: 'bj-new', host: '10.0.0.9', port: 3310 });
  assert.match(renderConfig(added.model), /server bj-new 10\.0\.0\.9:3310\n/);
  assert.throws(() => planMoveWrite(model(), { name: 'bj-new', host: 'db9.example.com', port: 3310 }), /bj-new is at db9\.example\.com, a host name: the running proxy can be given only an IP address/);
  // a known slot at the same address needs no new address: a host name is fine there
  assert.doesNotThrow(() => planMoveWrite(model({ nodes: [...model().nodes, { name: 'db9', host: 'db9.example.com', port: 3306 }] }), { name: 'db9', host: 'db9.example.com', port: 3306 }));
  const moved = planMoveWrite(model(), { name: 'bj-replica1', host: '127.0.0.1', port: 4000 });
  assert.deepEqual(moved.commands.slice(0, 2), ['set server write/bj-replica1 addr 127.0.0.1 port 4000', 'set server read/bj-replica1 addr 127.0.0.1 port 4000']);
});

test('a fenced node gets no route: fencing shuts its sessions in both backends and closes the write route when it was the write node', () => {
  const f = planFence(model(), 'bj-master');
  assert.deepEqual(f.commands, [
    'disable server write/bj-master', 'shutdown sessions server write/bj-master',
    'disable server read/bj-master', 'shutdown sessions server read/bj-master',
    `disable server read/${FALLBACK}`, `shutdown sessions server read/${FALLBACK}`,
  ]);
  assert.equal(f.model.write, null);
  assert.deepEqual(f.model.fenced, ['bj-master']);
  assert.throws(() => planMoveWrite(f.model, { name: 'bj-master', host: '127.0.0.1', port: 3306 }), /bj-master is fenced in the proxy of demo\/bj: unfence it/);
  assert.throws(() => planReadPool(f.model, [{ name: 'bj-master', host: '127.0.0.1', port: 3306 }]), /bj-master is fenced/);
  assert.throws(() => planFence(model(), 'nope'), /nope is not a node of the proxy of demo\/bj/);
  const r = planFence(model(), 'bj-replica2');
  assert.deepEqual(r.model.read, ['bj-replica1']);
  assert.equal(r.model.write, 'bj-master');
  const u = planUnfence(f.model, 'bj-master');
  assert.deepEqual(u.model.fenced, []);
  assert.deepEqual(u.commands, []);
  assert.equal(u.model.write, null, 'unfencing routes nothing by itself');
});

test('setting the read pool enables exactly its nodes', () => {
  const p = planReadPool(model(), [{ name: 'bj-master', host: '127.0.0.1', port: 3306 }]);
  assert.deepEqual(p.commands.slice(0, 3), ['enable server read/bj-master', 'disable server read/bj-replica1', 'disable server read/bj-replica2']);
  assert.deepEqual(p.model.read, ['bj-master']);
});

// `show servers state` as HAProxy 2.6.12 printed it after `disable server write/a; enable server write/b`
// (b was `disabled` in the file: 0x04 stays set once enabled) and two `add server` (maintenance).
const STATE = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 write 1 a 127.0.0.1 0 1 1 1 0 1 0 0 0 0 0 0 - 24101 - 0 0 - - 0
3 write 2 b 127.0.0.1 2 4 1 1 0 1 0 0 8 0 0 0 - 24102 - 0 0 - - 0
3 write 3 c 127.0.0.1 0 1 1 1 0 1 0 0 0 0 0 0 - 24103 - 0 0 - - 0
5 read 1 a 127.0.0.1 0 5 1 1 4 1 0 0 8 0 0 0 - 24101 - 0 0 - - 0
5 read 2 b 127.0.0.1 2 0 1 1 4 1 0 2 0 0 0 0 - 24102 - 0 0 - - 0
5 read 3 _fallback 127.0.0.1 2 0 1 1 4 1 0 2 0 0 0 0 - 24102 - 0 0 - - 0
5 read 4 c 127.0.0.1 0 1 1 1 0 1 0 0 0 0 0 0 - 24103 - 0 0 - - 0
`;

test('show servers state: which slots take traffic, and how the running proxy differs from its file', () => {
  const s = parseServersState(STATE);
  assert.equal(s.length, 7);
  assert.deepEqual(s[1], { backend: 'write', server: 'b', addr: '127.0.0.1', port: 24102, opState: 2, adminState: 4 });
  assert.deepEqual(s.filter(takesTraffic).map((x) => `${x.backend}/${x.server}`), ['write/b', 'read/b', 'read/_fallback']);
  const r = runtimeRoutes(s);
  assert.deepEqual(r.write.map((x) => x.server), ['b']);
  assert.deepEqual(r.read.map((x) => x.server), ['b']);
  assert.equal(r.fallback?.port, 24102);
  const m = model({ nodes: [{ name: 'a', host: '127.0.0.1', port: 24101 }, { name: 'b', host: '127.0.0.1', port: 24102 }, { name: 'c', host: '127.0.0.1', port: 24103 }], write: 'b', read: ['b'] });
  assert.deepEqual(routeDrift(m, r), []);
  const drift = routeDrift({ ...m, write: 'a', read: ['a', 'c'], fenced: ['b'] }, r);
  assert.deepEqual(drift, [
    'the running proxy sends writes to b; its configuration says a',
    "the running proxy's read pool is b; its configuration says a, c",
    'fenced node b is in a route of the running proxy',
  ]);
  const two = runtimeRoutes(parseServersState(STATE.replace('3 write 1 a 127.0.0.1 0 1', '3 write 1 a 127.0.0.1 2 0')));
  assert.match(routeDrift(m, two)[0]!, /the write route goes to 2 nodes \(a, b\); exactly one is expected/);
  assert.throws(() => parseServersState('Unknown command'), /unexpected answer/);
});

test('runtime API answers: success lines pass, anything else is a problem', () => {
  assert.deepEqual(runtimeOutputProblems('\n\nNew server registered.\n\nIP changed from \'127.0.0.1\' to \'127.0.0.2\', port changed from \'1\' to \'2\' by \'stats socket command\'\n\nno need to change the addr, no need to change the port by \'stats socket command\'\n'), []);
  assert.deepEqual(runtimeOutputProblems('\nNo such server.\n\n'), ['No such server.']);
});

const TOPO = (proxy: string) => `
zones: [bj]
clusters:
  demo:
    zones:
      bj:
        master: {host: 127.0.0.1, port: 3306}
        ${proxy}
`;

test('the topology file\'s proxy field: listeners as host:port, paths from the file\'s folder', () => {
  const t = parseTopology(TOPO('proxy: {write: "127.0.0.1:31001", read: "127.0.0.1:31002", admin: proxy-bj/admin.sock, config: /etc/haproxy/bj.cfg}'), '/srv/ezctl/ezctl.yaml');
  assert.deepEqual(zoneProxy(t, 'demo', 'bj'), {
    cluster: 'demo', zone: 'bj', kind: 'haproxy',
    write: { host: '127.0.0.1', port: 31001 }, read: { host: '127.0.0.1', port: 31002 },
    admin: '/srv/ezctl/proxy-bj/admin.sock', config: '/etc/haproxy/bj.cfg',
  });
  const e = ezErrorOf(() => parseTopology(TOPO('proxy: {kind: proxysql, write: "127.0.0.1", read: "x:99999", extra: 1}'), '/srv/ezctl/ezctl.yaml'));
  assert.deepEqual(e.details.sort(), [
    'clusters.demo.zones.bj.proxy.admin: missing (expected the path of the runtime API\'s unix socket)',
    'clusters.demo.zones.bj.proxy.config: missing (expected the path of the haproxy.cfg ezctl wrote)',
    'clusters.demo.zones.bj.proxy.kind: "proxysql" is not a proxy kind ezctl drives (haproxy); route other proxies from hooks',
    'clusters.demo.zones.bj.proxy.read: "x:99999": port 99999 is not a port (1-65535)',
    'clusters.demo.zones.bj.proxy.write: "127.0.0.1" has no port (expected the write listener as host:port)',
    'clusters.demo.zones.bj.proxy.extra: unknown field',
  ].sort());
});
