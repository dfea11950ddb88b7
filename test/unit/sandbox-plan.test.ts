import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planNodes, planProxies, proxyModel, shardRanges } from '../../src/core/sandbox/up.js';
import { renderConfig } from '../../src/core/proxy/index.js';
import { INNODB_SIZING, serverArgs, versionNumber, type NodeProcessSpec, type ServerKit } from '../../src/core/sandbox/servers.js';
import { parseShardRanges } from '../../src/core/config/schema.js';

const DIR = '/tmp/sb';

test('planNodes: per zone a master then its replicas, named and placed in order', () => {
  const nodes = planNodes(DIR, ['bj', 'sh'], 2, [5001, 5002, 5003, 5004, 5005, 5006]);
  assert.deepEqual(
    nodes.map((n) => [n.name, n.zone, n.role, n.port]),
    [
      ['bj-master', 'bj', 'master', 5001],
      ['bj-replica1', 'bj', 'replica', 5002],
      ['bj-replica2', 'bj', 'replica', 5003],
      ['sh-master', 'sh', 'master', 5004],
      ['sh-replica1', 'sh', 'replica', 5005],
      ['sh-replica2', 'sh', 'replica', 5006],
    ],
  );
  const m = nodes[0]!;
  assert.equal(m.datadir, '/tmp/sb/bj-master');
  assert.equal(m.socket, '/tmp/sb/bj-master/mysqld.sock');
  assert.equal(m.pidFile, '/tmp/sb/bj-master/mysqld.pid');
  assert.equal(m.errorLog, '/tmp/sb/bj-master/error.log');
  assert.equal(m.pid, null);
});

test('planNodes: server ids are distinct, one GTID domain per zone', () => {
  const nodes = planNodes(DIR, ['bj', 'sh', 'gz'], 2, Array.from({ length: 9 }, (_, i) => 6000 + i));
  const ids = nodes.map((n) => n.serverId);
  assert.equal(new Set(ids).size, nodes.length);
  assert.deepEqual(ids, [101, 102, 103, 201, 202, 203, 301, 302, 303]);
  for (const n of nodes) assert.ok(n.serverId > 0 && n.serverId < 2 ** 32);
  const domainByZone = new Map<string, Set<number>>();
  for (const n of nodes) domainByZone.set(n.zone, (domainByZone.get(n.zone) ?? new Set()).add(n.domainId));
  assert.deepEqual([...domainByZone].map(([z, d]) => [z, [...d]]), [['bj', [1]], ['sh', [2]], ['gz', [3]]]);
});

test('planNodes: replicas are read-only, masters are not', () => {
  const nodes = planNodes(DIR, ['bj', 'sh'], 1, [1, 2, 3, 4]);
  assert.deepEqual(nodes.map((n) => [n.name, n.readOnly]), [
    ['bj-master', false],
    ['bj-replica1', true],
    ['sh-master', false],
    ['sh-replica1', true],
  ]);
});

test('planNodes: auto-increment increment is the zone count, offset the zone index + 1', () => {
  const nodes = planNodes(DIR, ['bj', 'sh', 'gz'], 1, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(nodes.map((n) => [n.zone, n.autoIncrementIncrement, n.autoIncrementOffset]), [
    ['bj', 3, 1],
    ['bj', 3, 1],
    ['sh', 3, 2],
    ['sh', 3, 2],
    ['gz', 3, 3],
    ['gz', 3, 3],
  ]);
  // zones never hand out the same value: the first values of each zone are disjoint
  const values = (offset: number, inc: number) => Array.from({ length: 50 }, (_, i) => offset + i * inc);
  const seen = new Set<number>();
  for (const m of nodes.filter((n) => n.role === 'master')) {
    for (const v of values(m.autoIncrementOffset, m.autoIncrementIncrement)) {
      assert.ok(!seen.has(v), `value ${v} handed out twice`);
      seen.add(v);
    }
  }
});

test('planNodes: one zone without replicas', () => {
  const nodes = planNodes(DIR, ['solo'], 0, [7000]);
  assert.equal(nodes.length, 1);
  assert.deepEqual(
    { name: nodes[0]!.name, port: nodes[0]!.port, serverId: nodes[0]!.serverId, domainId: nodes[0]!.domainId, inc: nodes[0]!.autoIncrementIncrement, off: nodes[0]!.autoIncrementOffset, ro: nodes[0]!.readOnly },
    { name: 'solo-master', port: 7000, serverId: 101, domainId: 1, inc: 1, off: 1, ro: false },
  );
});

test('shardRanges: even split', () => {
  assert.deepEqual(shardRanges(['bj', 'sh'], 64), { bj: '0-31', sh: '32-63' });
  assert.deepEqual(shardRanges(['a', 'b', 'c', 'd'], 8), { a: '0-1', b: '2-3', c: '4-5', d: '6-7' });
  assert.deepEqual(shardRanges(['bj'], 16), { bj: '0-15' });
});

test('shardRanges: uneven splits give the first zones one more', () => {
  assert.deepEqual(shardRanges(['bj', 'sh', 'gz'], 64), { bj: '0-21', sh: '22-42', gz: '43-63' });
  assert.deepEqual(shardRanges(['bj', 'sh', 'gz'], 10), { bj: '0-3', sh: '4-6', gz: '7-9' });
  assert.deepEqual(shardRanges(['bj', 'sh'], 3), { bj: '0-1', sh: '2' });
});

test('shardRanges: more zones than shards leaves the last zones without any', () => {
  assert.deepEqual(shardRanges(['a', 'b', 'c'], 2), { a: '0', b: '1' });
  assert.deepEqual(shardRanges(['a', 'b'], 1), { a: '0' });
  assert.deepEqual(shardRanges(['a', 'b'], 0), {});
});

test('shardRanges: every shard owned exactly once, in the syntax the topology file accepts', () => {
  for (const zones of [['a'], ['a', 'b'], ['a', 'b', 'c'], ['a', 'b', 'c', 'd', 'e']]) {
    for (const shards of [1, 2, 3, 7, 64, 100]) {
      const owned = Object.values(shardRanges(zones, shards)).flatMap((r) => parseShardRanges(r));
      assert.deepEqual(owned, Array.from({ length: shards }, (_, i) => i), `${zones.length} zones, ${shards} shards`);
    }
  }
});

const mariaKit: ServerKit = { flavor: 'mariadb', server: '/usr/sbin/mariadbd', installDb: '/usr/bin/mariadb-install-db', version: 'mariadbd  Ver 10.11.6-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)' };
const mysqlKit: ServerKit = { flavor: 'mysql', server: '/usr/sbin/mysqld', version: '/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)' };

function spec(over: Partial<NodeProcessSpec> = {}): NodeProcessSpec {
  return {
    datadir: '/tmp/sb/bj-master',
    port: 5001,
    socket: '/tmp/sb/bj-master/mysqld.sock',
    pidFile: '/tmp/sb/bj-master/mysqld.pid',
    errorLog: '/tmp/sb/bj-master/error.log',
    serverId: 101,
    domainId: 1,
    readOnly: false,
    autoIncrementIncrement: 2,
    autoIncrementOffset: 1,
    ...over,
  };
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

test('serverArgs: ROW binlogs with full images and metadata, replica updates logged, loopback only', () => {
  const args = serverArgs(mariaKit, spec());
  assert.equal(args[0], '--no-defaults');
  for (const a of [
    '--datadir=/tmp/sb/bj-master',
    '--port=5001',
    '--bind-address=127.0.0.1',
    '--socket=/tmp/sb/bj-master/mysqld.sock',
    '--pid-file=/tmp/sb/bj-master/mysqld.pid',
    '--log-error=/tmp/sb/bj-master/error.log',
    '--server-id=101',
    '--log-bin=binlog',
    '--binlog-format=ROW',
    '--binlog-row-image=FULL',
    '--binlog-row-metadata=FULL',
    '--log-slave-updates=ON',
    '--auto-increment-increment=2',
    '--auto-increment-offset=1',
    ...INNODB_SIZING,
  ]) {
    assert.ok(args.includes(a), `missing ${a} in ${args.join(' ')}`);
  }
  assert.equal(args.filter((a) => a.startsWith('--port=')).length, 1);
  assert.equal(args.filter((a) => a.startsWith('--bind-address=')).length, 1);
});

test('serverArgs: MariaDB gets its GTID domain; MySQL gets GTID mode instead', () => {
  const maria = serverArgs(mariaKit, spec({ domainId: 3 }));
  assert.ok(maria.includes('--gtid-domain-id=3'));
  assert.ok(!maria.some((a) => a.startsWith('--gtid-mode')));
  const mysql = serverArgs(mysqlKit, spec({ domainId: 3 }));
  assert.ok(!mysql.some((a) => a.startsWith('--gtid-domain-id')));
  for (const a of ['--gtid-mode=ON', '--enforce-gtid-consistency=ON', '--report-port=5001', '--binlog-format=ROW', '--binlog-row-image=FULL', '--bind-address=127.0.0.1']) {
    assert.ok(mysql.includes(a), `missing ${a}`);
  }
});

test('serverArgs: read-only only for replicas', () => {
  assert.ok(!serverArgs(mariaKit, spec()).some((a) => a.startsWith('--read-only')));
  assert.ok(serverArgs(mariaKit, spec({ readOnly: true })).includes('--read-only=ON'));
  assert.ok(serverArgs(mysqlKit, spec({ readOnly: true })).includes('--read-only=ON'));
});

test('serverArgs: --user only when running as root', () => {
  const users = serverArgs(mariaKit, spec()).filter((a) => a.startsWith('--user='));
  assert.equal(users.length, asRoot ? 1 : 0);
});

test('serverArgs follow planNodes: every node its own port, id, socket and datadir', () => {
  const nodes = planNodes(DIR, ['bj', 'sh'], 1, [5001, 5002, 5003, 5004]);
  const all = nodes.map((n) => serverArgs(mariaKit, n));
  for (const prefix of ['--port=', '--server-id=', '--socket=', '--datadir=', '--pid-file=']) {
    const values = all.map((args) => args.find((a) => a.startsWith(prefix)));
    assert.equal(new Set(values).size, nodes.length, prefix);
  }
  assert.ok(all[2]!.includes('--gtid-domain-id=2'));
  assert.ok(all[3]!.includes('--read-only=ON'));
});

test('versionNumber', () => {
  assert.equal(versionNumber(mariaKit.version), '10.11.6');
  assert.equal(versionNumber(mysqlKit.version), '8.0.36');
  assert.equal(versionNumber('mysqld  Ver 8.0.36-0ubuntu0.22.04.1 for Linux on x86_64 ((Ubuntu))'), '8.0.36');
  assert.equal(versionNumber('mariadbd  Ver 11.4.2-MariaDB for Linux'), '11.4.2');
  assert.equal(versionNumber('something else'), 'unknown');
  assert.equal(versionNumber(''), 'unknown');
});

test('planProxies / proxyModel: a proxy per zone on two ports, writes to the master, reads to the replicas (none: the master as fallback)', () => {
  const proxies = planProxies(DIR, ['bj', 'sh'], [6001, 6002, 6003, 6004]);
  assert.deepEqual(proxies[1], { zone: 'sh', dir: '/tmp/sb/proxy-sh', config: '/tmp/sb/proxy-sh/haproxy.cfg', admin: '/tmp/sb/proxy-sh/admin.sock', log: '/tmp/sb/proxy-sh/haproxy.log', writePort: 6003, readPort: 6004, pid: null });
  const m = proxyModel({ cluster: 'demo', nodes: planNodes(DIR, ['bj', 'sh'], 1, [5001, 5002, 5003, 5004]) }, proxies[1]!);
  assert.deepEqual(m, {
    version: 1, name: 'demo/sh', bind: '127.0.0.1', writePort: 6003, readPort: 6004, admin: '/tmp/sb/proxy-sh/admin.sock',
    nodes: [{ name: 'sh-master', host: '127.0.0.1', port: 5003 }, { name: 'sh-replica1', host: '127.0.0.1', port: 5004 }],
    write: 'sh-master', read: ['sh-replica1'], fenced: [],
  });
  const alone = proxyModel({ cluster: 'demo', nodes: planNodes(DIR, ['bj', 'sh'], 0, [5001, 5002]) }, proxies[0]!);
  assert.deepEqual(alone.read, []);
  assert.match(renderConfig(alone), /server _fallback 127\.0\.0\.1:5001 backup\n/);
});

test('proxyModel of a global cluster: every zone\'s proxy sends writes to the writer zone\'s master (a cross-zone slot), reads stay in the zone', () => {
  const proxies = planProxies(DIR, ['bj', 'sh'], [6001, 6002, 6003, 6004]);
  const nodes = planNodes(DIR, ['bj', 'sh'], 1, [5001, 5002, 5003, 5004]);
  const sh = proxyModel({ cluster: 'demo', nodes, model: 'global', writerZone: 'bj' }, proxies[1]!);
  assert.deepEqual(sh.nodes, [{ name: 'sh-master', host: '127.0.0.1', port: 5003 }, { name: 'sh-replica1', host: '127.0.0.1', port: 5004 }, { name: 'bj-master', host: '127.0.0.1', port: 5001 }]);
  assert.equal(sh.write, 'bj-master');
  assert.deepEqual(sh.read, ['sh-replica1']);
  assert.match(renderConfig(sh), /server bj-master 127\.0\.0\.1:5001\n/);
  assert.match(renderConfig(sh), /server sh-master 127\.0\.0\.1:5003 disabled\n/);
  const bj = proxyModel({ cluster: 'demo', nodes, model: 'global', writerZone: 'bj' }, proxies[0]!);
  assert.deepEqual(bj.nodes.map((n) => n.name), ['bj-master', 'bj-replica1']);
  assert.equal(bj.write, 'bj-master');
});
