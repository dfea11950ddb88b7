import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ezErrorOf } from '../helpers/errors.js';
import { configCandidates, expandPath, findConfig, loadTopology, parseTopology, type Topology } from '../../src/core/config/load.js';
import { parseShardRanges } from '../../src/core/config/schema.js';
import { EzError, ExitCode } from '../../src/core/exit.js';

const FILE = '/etc/ezctl/ezctl.yaml';


/** Parse text that must be refused; returns the detail lines (one per problem). */
function problems(text: string): string[] {
  const e = ezErrorOf(() => parseTopology(text, FILE));
  assert.equal(e.exitCode, ExitCode.badInput);
  assert.equal(e.exitCode, 2);
  assert.equal(e.message, `${FILE} has ${e.details.length} problem${e.details.length === 1 ? '' : 's'}`);
  return e.details;
}

const VALID = `
zones: [bj, sh]
clusters:
  orders:
    zones:
      bj:
        master: {host: 10.0.0.1, port: 3306}
        replicas:
          - {host: 10.0.0.2, port: 3306}
          - {host: 10.0.0.3}
      sh:
        master: {host: 10.1.0.1, port: 3307}
`;

/** A one-cluster file whose cluster body is `body` (indented by four spaces). */
const withCluster = (body: string, zones = '[bj, sh]') => `zones: ${zones}\nclusters:\n  orders:\n${body}`;

test('a valid file parses, with defaults filled in', () => {
  const t = parseTopology(VALID, FILE);
  assert.equal(t.path, FILE);
  assert.equal(t.dir, '/etc/ezctl');
  assert.equal(t.file.version, 1);
  assert.deepEqual(t.file.zones, ['bj', 'sh']);
  assert.equal(t.file.drcTimestampColumn, 'drc_ts');
  assert.deepEqual(t.file.credentials, {});
  assert.equal(t.file.appCredentials, undefined);
  const c = t.file.clusters.orders!;
  assert.equal(c.model, 'sharding');
  assert.equal(c.writerZone, undefined);
  assert.deepEqual(c.zones.sh!.replicas, []);
  assert.equal(c.zones.bj!.replicas.length, 2);
  assert.deepEqual(t.clusterNames, ['orders']);
  assert.equal(t.drcTimestampColumn('orders'), 'drc_ts');
});

test('a full file keeps every setting', () => {
  const t = parseTopology(
    `
version: 1
zones: [bj, sh, gz]
credentials: {user: ops, passwordEnv: EZ_PW}
appCredentials: {user: app, defaultsFile: app.cnf}
drcTimestampColumn: updated_at
clusters:
  users:
    model: global
    writerZone: sh
    databases: [users, users_archive]
    drcTimestampColumn: drc_time
    zones:
      bj: {master: {host: a, tls: {ca: /ca.pem, rejectUnauthorized: false}}}
      sh: {master: {host: b, socket: /run/m.sock}}
  orders:
    zones:
      bj: {master: {host: c}}
      gz: {master: {host: d}}
    shards:
      zones: {bj: "0-15,32-47", gz: [16, 17, 18]}
      tables: {shop.orders: user_id}
`,
    FILE,
  );
  assert.equal(t.file.drcTimestampColumn, 'updated_at');
  assert.equal(t.drcTimestampColumn('users'), 'drc_time');
  assert.equal(t.drcTimestampColumn('orders'), 'updated_at');
  const users = t.file.clusters.users!;
  assert.equal(users.model, 'global');
  assert.equal(users.writerZone, 'sh');
  assert.deepEqual(users.databases, ['users', 'users_archive']);
  assert.deepEqual(users.zones.bj!.master.tls, { ca: '/ca.pem', rejectUnauthorized: false });
  assert.deepEqual(t.file.appCredentials, { user: 'app', defaultsFile: 'app.cnf' });
  const shards = t.file.clusters.orders!.shards!;
  assert.deepEqual(shards.zones.gz, [16, 17, 18]);
  assert.equal(shards.zones.bj!.length, 32);
  assert.equal(shards.zones.bj![15], 15);
  assert.equal(shards.zones.bj![16], 32);
  assert.deepEqual(shards.tables, { 'shop.orders': 'user_id' });
  assert.deepEqual(t.zonesOf('orders'), ['bj', 'gz']);
  assert.deepEqual(t.zonesOf('users'), ['bj', 'sh']);
});

test('nodes may be written as connection strings', () => {
  const t = parseTopology(
    withCluster(`    zones:
      bj:
        master: mysql://repl@10.0.0.1:3307/ignored_db
        replicas: ['h=10.0.0.2,P=3308,u=ro', '10.0.0.3:3309', 'mysql://[::1]']
      sh:
        master: 'S=/run/mysqld/mysqld.sock'
`),
    FILE,
  );
  const bj = t.file.clusters.orders!.zones.bj!;
  assert.deepEqual(bj.master, { host: '10.0.0.1', port: 3307, credentials: { user: 'repl' } });
  assert.deepEqual(bj.replicas, [
    { host: '10.0.0.2', port: 3308, credentials: { user: 'ro' } },
    { host: '10.0.0.3', port: 3309 },
    { host: '::1', port: 3306 },
  ]);
  assert.deepEqual(t.file.clusters.orders!.zones.sh!.master, { host: 'localhost', port: 3306, socket: '/run/mysqld/mysqld.sock' });
});

test('a bad port names the field path, the value and the expectation', () => {
  assert.deepEqual(
    problems(withCluster(`    zones:
      bj:
        master: {host: a}
      sh:
        master: {host: b, port: 70000}
`)),
    ['clusters.orders.zones.sh.master.port: 70000 is not a port (1-65535)'],
  );
  assert.deepEqual(
    problems(withCluster(`    zones:
      bj:
        master: {host: a, port: "3306"}
        replicas: [{host: b, port: 0}, {host: c, port: 3306.5}]
`)),
    [
      'clusters.orders.zones.bj.master.port: "3306" is not a port (1-65535)',
      'clusters.orders.zones.bj.replicas.0.port: 0 is not a port (1-65535)',
      'clusters.orders.zones.bj.replicas.1.port: 3306.5 is not a port (1-65535)',
    ],
  );
});

test('a bad connection string names the field and the reason', () => {
  assert.deepEqual(problems(withCluster(`    zones:\n      bj:\n        master: "mysql://h:99999"\n`, '[bj]')), [
    'clusters.orders.zones.bj.master: "mysql://h:99999": port 99999 is not a port (1-65535)',
  ]);
  assert.deepEqual(problems(withCluster(`    zones:\n      bj:\n        master: "h=h,z=1"\n`, '[bj]')), [
    'clusters.orders.zones.bj.master: "h=h,z=1": unknown key z= (keys: h P u D t S)',
  ]);
});

test('unknown fields are named, at every level', () => {
  const lines = problems(`zones: [bj]\nzone: [sh]\nclusters:\n  orders:\n    modle: global\n    zones:\n      bj:\n        master: {host: a, prot: 3306}\n        replica: []\n`);
  assert.deepEqual([...lines].sort(), [
    'clusters.orders.modle: unknown field',
    'clusters.orders.zones.bj.master.prot: unknown field',
    'clusters.orders.zones.bj.replica: unknown field',
    'zone: unknown field',
  ]);
});

test('several unknown fields in one object give one line each', () => {
  const lines = problems(`zones: [bj]\nclusters:\n  orders:\n    zones:\n      bj:\n        master: {host: a, foo: 1, bar: 2}\n`);
  assert.deepEqual([...lines].sort(), ['clusters.orders.zones.bj.master.bar: unknown field', 'clusters.orders.zones.bj.master.foo: unknown field']);
});

test('a zone without master, and a node without host or socket', () => {
  assert.deepEqual(problems(withCluster(`    zones:\n      bj:\n        replicas: [{host: a}]\n`, '[bj]')), ['clusters.orders.zones.bj.master: missing (expected a mapping)']);
  assert.deepEqual(problems(withCluster(`    zones:\n      bj:\n        master: {port: 3306}\n`, '[bj]')), [
    'clusters.orders.zones.bj.master.host: missing (a node needs host or socket)',
  ]);
  assert.deepEqual(problems(withCluster(`    zones:\n      bj:\n        master: null\n`, '[bj]')), ['clusters.orders.zones.bj.master: null is not a mapping']);
});

test('wrong types name the value found and what was expected', () => {
  assert.deepEqual(problems(`zones: bj\nclusters: []\n`), ['zones: "bj" is not a list', 'clusters: [] is not a mapping']);
  assert.deepEqual(problems(withCluster(`    databases: shop\n    zones:\n      bj:\n        master: {host: a, tls: {rejectUnauthorized: "yes"}}\n        replicas: a\n`, '[bj]')), [
    'clusters.orders.databases: "shop" is not a list',
    'clusters.orders.zones.bj.master.tls.rejectUnauthorized: "yes" is not true or false',
    'clusters.orders.zones.bj.replicas: "a" is not a list',
  ]);
  assert.deepEqual(problems(`version: 2\nzones: [bj]\nclusters:\n  c:\n    model: ring\n    zones: {bj: {master: {host: a}}}\n`), [
    'version: 2 is not a supported version (1)',
    'clusters.c.model: "ring" is not a cluster model (sharding or global)',
  ]);
});

test('missing and empty top-level fields', () => {
  assert.deepEqual(problems(`zones: []\n`), ['zones: empty (at least one zone)', 'clusters: missing (expected a mapping)']);
  assert.deepEqual(problems(`clusters: {}\n`), ['zones: missing (expected a list)', 'clusters: empty (at least one cluster)']);
  assert.deepEqual(problems(`zones: [bj]\nclusters: {}\n`), ['clusters: empty (at least one cluster)']);
  assert.deepEqual(problems(withCluster(`    zones: {}\n`)), ['clusters.orders.zones: empty (a cluster needs at least one zone)']);
  // a wrong type is one problem, not also an "empty" one
  assert.deepEqual(problems(withCluster(`    zones: []\n`)), ['clusters.orders.zones: [] is not a mapping']);
  assert.deepEqual(problems(`zones: [bj]\nclusters: [a]\n`), ['clusters: ["a"] is not a mapping']);
  assert.deepEqual(problems(withCluster(`    zones: {bj: {master: {host: a}}}\n    shards: {zones: [bj]}\n`, '[bj]')), ['clusters.orders.shards.zones: ["bj"] is not a mapping']);
});

test('cross-field checks run even when fields fail, so every problem is listed at once', () => {
  assert.deepEqual(
    problems(`zones: [bj, bj]\nclusters:\n  orders:\n    writerZone: sh\n    zones:\n      bj: {master: {host: a, port: 0}}\n      gz: {master: {host: b}}\n`),
    [
      'clusters.orders.zones.bj.master.port: 0 is not a port (1-65535)',
      'zones: ["bj","bj"] names a zone twice',
      'clusters.orders.zones.gz: zone "gz" is not declared in zones (bj, bj)',
      'clusters.orders.writerZone: only a global cluster has a writer zone (this one is sharding)',
    ],
  );
  // with zones not a list, undeclared-zone checks are skipped rather than reported against nothing
  assert.deepEqual(problems(`zones: bj\nclusters:\n  c:\n    zones: {bj: {master: {host: a}}}\n`), ['zones: "bj" is not a list']);
});

test('bad names: zone, cluster, column, environment variable', () => {
  assert.deepEqual(problems(`zones: [bj, "s h"]\nclusters:\n  "my cluster":\n    zones: {bj: {master: {host: a}}}\n`), [
    'zones.1: "s h" is not a valid zone name (letters, digits, _ $ -)',
    'clusters.my cluster: "my cluster" is not a valid cluster name (letters, digits, _ $ -)',
  ]);
  assert.deepEqual(problems(`zones: [bj]\ndrcTimestampColumn: "drc ts"\ncredentials: {passwordEnv: "MY-PW!", user: ""}\nclusters:\n  c:\n    zones: {bj: {master: {host: a}}}\n`), [
    'credentials.user: empty (expected a user name)',
    'credentials.passwordEnv: "MY-PW!" is not a valid environment variable name (letters, digits, _ $ -)',
    'drcTimestampColumn: "drc ts" is not a valid column name (letters, digits, _ $ -)',
  ]);
});

test('a zone the cluster uses must be declared', () => {
  assert.deepEqual(problems(withCluster(`    zones:\n      bj: {master: {host: a}}\n      gz: {master: {host: b}}\n`)), [
    'clusters.orders.zones.gz: zone "gz" is not declared in zones (bj, sh)',
    // most likely the same slip seen from the other side: sh declared, its nodes written as gz
    'zones.1: zone "sh" has no nodes in any cluster (add them under clusters.<name>.zones.sh, or remove sh from zones)',
  ]);
});

test('a declared zone with no nodes in any cluster is named', () => {
  assert.deepEqual(problems(withCluster(`    zones: {bj: {master: {host: a}}}\n`, '[bj, sh, gz]')), [
    'zones.1: zone "sh" has no nodes in any cluster (add them under clusters.<name>.zones.sh, or remove sh from zones)',
    'zones.2: zone "gz" has no nodes in any cluster (add them under clusters.<name>.zones.gz, or remove gz from zones)',
  ]);
  // a zone only some clusters run in is fine: another cluster has nodes there
  const t = parseTopology(`zones: [bj, sh]\nclusters:\n  a:\n    zones: {bj: {master: {host: a1}}, sh: {master: {host: a2}}}\n  b:\n    zones: {bj: {master: {host: b1}}}\n`, FILE);
  assert.deepEqual(t.zonesOf('b'), ['bj']);
});

test('one server named twice in a cluster is refused, naming both nodes', () => {
  assert.deepEqual(
    problems(withCluster(`    zones:\n      bj:\n        master: {host: 10.0.0.1, port: 3307}\n        replicas: [{host: 10.0.0.2}, {host: 10.0.0.1, port: 3307, name: bj-r2}]\n      sh:\n        master: "mysql://u@10.0.0.2:3306"\n`)),
    [
      'clusters.orders.zones.bj.replicas.1: 10.0.0.1:3307 is also bj-master (clusters.orders.zones.bj.master): two nodes cannot be one server',
      'clusters.orders.zones.sh.master: 10.0.0.2:3306 is also bj-replica1 (clusters.orders.zones.bj.replicas.0): two nodes cannot be one server',
    ],
  );
  // loopback spellings are one server; a socket is its own key
  assert.deepEqual(
    problems(withCluster(`    zones:\n      bj: {master: {host: localhost, port: 3310}}\n      sh: {master: {host: 127.0.0.1, port: 3310}, replicas: [{socket: /run/a.sock}, {socket: /run/a.sock}]}\n`)),
    [
      'clusters.orders.zones.sh.master: 127.0.0.1:3310 is also bj-master (clusters.orders.zones.bj.master): two nodes cannot be one server',
      'clusters.orders.zones.sh.replicas.1: socket /run/a.sock is also sh-replica1 (clusters.orders.zones.sh.replicas.0): two nodes cannot be one server',
    ],
  );
  // two clusters may share servers (each replicates its own databases)
  parseTopology(`zones: [bj]\nclusters:\n  a:\n    databases: [shop]\n    zones: {bj: {master: {host: h}}}\n  b:\n    databases: [crm]\n    zones: {bj: {master: {host: h}}}\n`, FILE);
});

test('zones named twice', () => {
  assert.deepEqual(problems(withCluster(`    zones: {bj: {master: {host: a}}}\n`, '[bj, bj]')), ['zones: ["bj","bj"] names a zone twice']);
});

test('a global cluster needs a writer zone that is one of its zones', () => {
  assert.deepEqual(problems(withCluster(`    model: global\n    zones: {bj: {master: {host: a}}}\n`, '[bj]')), [
    'clusters.orders.writerZone: missing (a global cluster needs the zone that takes writes)',
  ]);
  assert.deepEqual(problems(withCluster(`    model: global\n    writerZone: sh\n    zones: {bj: {master: {host: a}}}\n`, '[bj]')), [
    'clusters.orders.writerZone: "sh" is not one of this cluster\'s zones (bj)',
  ]);
});

test('a sharding cluster has no writer zone', () => {
  assert.deepEqual(problems(withCluster(`    writerZone: bj\n    zones: {bj: {master: {host: a}}}\n`, '[bj]')), [
    'clusters.orders.writerZone: only a global cluster has a writer zone (this one is sharding)',
  ]);
  assert.deepEqual(problems(withCluster(`    model: sharding\n    writerZone: bj\n    zones: {bj: {master: {host: a}}}\n`, '[bj]')), [
    'clusters.orders.writerZone: only a global cluster has a writer zone (this one is sharding)',
  ]);
});

const twoZones = `    zones:\n      bj: {master: {host: a}}\n      sh: {master: {host: b}}\n`;

test('a shard owned by two zones', () => {
  assert.deepEqual(problems(withCluster(`${twoZones}    shards:\n      zones: {bj: "0-31", sh: "30-63"}\n`)), [
    'clusters.orders.shards.zones.sh: shard 30 is already owned by zone bj',
  ]);
});

test('bad shard ranges and shard zones', () => {
  assert.deepEqual(problems(withCluster(`${twoZones}    shards:\n      zones: {bj: "5-2"}\n`)), [
    'clusters.orders.shards.zones.bj: "5-2" is not a shard range (it ends before it starts)',
  ]);
  assert.deepEqual(problems(withCluster(`${twoZones}    shards:\n      zones: {bj: "0-3,x"}\n`)), [
    'clusters.orders.shards.zones.bj: "0-3,x": "x" is not a shard id or range like 0-31',
  ]);
  assert.deepEqual(problems(withCluster(`${twoZones}    shards:\n      zones: {bj: [1, -2], sh: true}\n`)), [
    'clusters.orders.shards.zones.bj: [1,-2] is not a shard range (like "0-31,40" or [0, 1, 2])',
    'clusters.orders.shards.zones.sh: true is not a shard range (like "0-31,40" or [0, 1, 2])',
  ]);
  assert.deepEqual(problems(withCluster(`${twoZones}    shards:\n      zones: {bj: "0-3", gz: "4-7"}\n`)), [
    'clusters.orders.shards.zones.gz: zone "gz" is not one of this cluster\'s zones',
  ]);
  assert.deepEqual(problems(withCluster(`${twoZones}    shards:\n      zones: {bj: "0-3"}\n      tables: {orders: user_id, shop.items: "item id"}\n`)), [
    'clusters.orders.shards.tables.orders: "orders" is not db.table',
    'clusters.orders.shards.tables.shop.items: "item id" is not a valid column name (letters, digits, _ $ -)',
  ]);
});

test('parseShardRanges', () => {
  assert.deepEqual(parseShardRanges('0-3'), [0, 1, 2, 3]);
  assert.deepEqual(parseShardRanges(' 7, 0-1 ,3 - 4,1'), [0, 1, 3, 4, 7]);
  assert.deepEqual(parseShardRanges([3, 1, 3, 2]), [1, 2, 3]);
  assert.deepEqual(parseShardRanges('5'), [5]);
  assert.throws(() => parseShardRanges('5-2'), { message: '"5-2" is not a shard range (it ends before it starts)' });
  assert.throws(() => parseShardRanges('0-2000000'), { message: '"0-2000000" is not a shard range (more than 1000000 ids)' });
  assert.throws(() => parseShardRanges(''), { message: 'no shard ids' });
  assert.throws(() => parseShardRanges('a-b'), { message: '"a-b" is not a shard id or range like 0-31' });
});

test('passwords are refused in credentials and never echoed', () => {
  const lines = problems(`zones: [bj]\ncredentials: {user: a, password: hunter2}\nclusters:\n  c:\n    credentials: {password: 12345}\n    zones:\n      bj:\n        master: {host: h, credentials: {password: [hunter2]}}\n`);
  const msg = 'passwords do not belong in the topology file: use passwordEnv (an environment variable name) or defaultsFile';
  assert.deepEqual(lines, [`credentials.password: ${msg}`, `clusters.c.credentials.password: ${msg}`, `clusters.c.zones.bj.master.credentials.password: ${msg}`]);
});

test('passwords in node connection strings are refused and never echoed', () => {
  const lines = problems(withCluster(`    zones:\n      bj:\n        master: mysql://u:hunter2@h:3306\n        replicas: ['h=h,u=u,p=hunter2']\n`, '[bj]'));
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^clusters\.orders\.zones\.bj\.master: "mysql:\/\/u:\*\*\*@h:3306": a password in a connection string/);
  assert.match(lines[1]!, /^clusters\.orders\.zones\.bj\.replicas\.0: "h=h,u=u,p=\*\*\*": a password in a connection string/);
  for (const l of lines) assert.ok(!l.includes('hunter2'), l);
});

test('invalid YAML gives file:line:col', () => {
  const e = ezErrorOf(() => parseTopology('zones: [bj]\nclusters:\n  c: [a\n  d: 1\n', FILE));
  assert.equal(e.exitCode, 2);
  assert.equal(e.message, `${FILE} is not valid YAML`);
  assert.ok(e.details.length >= 1);
  for (const d of e.details) assert.match(d, /^\/etc\/ezctl\/ezctl\.yaml:\d+:\d+: \S/);
  const dup = ezErrorOf(() => parseTopology('zones: [bj]\nclusters: {}\nzones: [sh]\n', FILE));
  assert.deepEqual(dup.details, [`${FILE}:3:1: Map keys must be unique`]);
});

test('a file that is not a mapping', () => {
  for (const text of ['', '# only a comment\n', '- a\n- b\n', 'just text\n']) {
    const e = ezErrorOf(() => parseTopology(text, FILE));
    assert.equal(e.exitCode, 2);
    assert.equal(e.message, `${FILE}: expected a mapping with zones: and clusters:`);
  }
});

test('several problems come out together, one line each', () => {
  const lines = problems(`zones: [bj]\nclusters:\n  a:\n    model: global\n    zones: {bj: {master: {host: x, port: 0}}}\n  b:\n    zones: {bj: {master: {host: y, port: 65536}}}\n`);
  assert.deepEqual(lines, [
    'clusters.a.zones.bj.master.port: 0 is not a port (1-65535)',
    'clusters.b.zones.bj.master.port: 65536 is not a port (1-65535)',
    'clusters.a.writerZone: missing (a global cluster needs the zone that takes writes)',
  ]);
});

// ---- Topology methods -------------------------------------------------------------------

const MULTI = `
zones: [bj, sh]
credentials: {user: top, passwordEnv: TOP_PW, defaultsFile: ~/.my.cnf}
clusters:
  orders:
    credentials: {user: cluster_user}
    zones:
      sh:
        master: {host: s1, port: 3310}
      bj:
        master: {name: beijing-primary, host: b1, credentials: {passwordEnv: NODE_PW}}
        replicas:
          - {host: b2, port: 3307, socket: /run/b2.sock}
          - mysql://node_user@b3:3308
  users:
    model: global
    writerZone: sh
    zones:
      sh: {master: {host: u1}}
`;

const multi = (): Topology => parseTopology(MULTI, '/srv/ezctl/ezctl.yaml');

test('cluster() with a name, without a name and one cluster, and with an unknown name', () => {
  const t = multi();
  assert.equal(t.cluster('users').name, 'users');
  assert.equal(t.cluster('users').config.writerZone, 'sh');
  const single = parseTopology(VALID, FILE);
  assert.equal(single.cluster().name, 'orders');
  const unknown = ezErrorOf(() => t.cluster('nope'));
  assert.equal(unknown.exitCode, 2);
  assert.equal(unknown.message, 'cluster "nope" is not in /srv/ezctl/ezctl.yaml');
  assert.equal(unknown.hint, 'clusters: orders, users');
});

test('cluster() without a name when there are several names them all', () => {
  const e = ezErrorOf(() => multi().cluster());
  assert.equal(e.exitCode, 2);
  assert.equal(e.message, 'the topology file has 2 clusters; say which with --cluster');
  assert.equal(e.hint, 'clusters: orders, users');
});

test('nodes(): zones in file order, master first, generated and given names', () => {
  const nodes = multi().nodes('orders');
  assert.deepEqual(
    nodes.map((n) => [n.name, n.zone, n.role, n.host, n.port]),
    [
      ['beijing-primary', 'bj', 'master', 'b1', 3306],
      ['bj-replica1', 'bj', 'replica', 'b2', 3307],
      ['bj-replica2', 'bj', 'replica', 'b3', 3308],
      ['sh-master', 'sh', 'master', 's1', 3310],
    ],
  );
  for (const n of nodes) {
    assert.equal(n.cluster, 'orders');
    assert.equal(n.baseDir, '/srv/ezctl');
  }
  assert.equal(nodes[1]!.socket, '/run/b2.sock');
  assert.equal('socket' in nodes[0]!, false);
});

test('nodes() names replicas by zone and index', () => {
  const names = parseTopology(VALID, FILE).nodes().map((n) => n.name);
  assert.deepEqual(names, ['bj-master', 'bj-replica1', 'bj-replica2', 'sh-master']);
});

test('nodes() without a cluster lists every cluster', () => {
  const all = multi().nodes();
  assert.deepEqual(all.map((n) => `${n.cluster}/${n.name}`), ['orders/beijing-primary', 'orders/bj-replica1', 'orders/bj-replica2', 'orders/sh-master', 'users/sh-master']);
  assert.throws(() => multi().nodes('nope'), EzError);
});

test('credentials merge: node over cluster over top level', () => {
  const byName = new Map(multi().nodes().map((n) => [`${n.cluster}/${n.name}`, n.credentials]));
  assert.deepEqual(byName.get('orders/beijing-primary'), { user: 'cluster_user', passwordEnv: 'NODE_PW', defaultsFile: '~/.my.cnf' });
  assert.deepEqual(byName.get('orders/bj-replica1'), { user: 'cluster_user', passwordEnv: 'TOP_PW', defaultsFile: '~/.my.cnf' });
  // a user given in a connection string is a node-level credential
  assert.deepEqual(byName.get('orders/bj-replica2'), { user: 'node_user', passwordEnv: 'TOP_PW', defaultsFile: '~/.my.cnf' });
  assert.deepEqual(byName.get('users/sh-master'), { user: 'top', passwordEnv: 'TOP_PW', defaultsFile: '~/.my.cnf' });
});

test('merged credentials are copies: changing one leaves the file alone', () => {
  const t = multi();
  const n = t.nodes('users')[0]!;
  n.credentials.user = 'changed';
  assert.equal(t.file.credentials.user, 'top');
  assert.equal(t.nodes('users')[0]!.credentials.user, 'top');
});

test('master() finds the zone master, or says which zones there are', () => {
  const t = multi();
  const m = t.master('orders', 'sh');
  assert.equal(m.name, 'sh-master');
  assert.equal(m.role, 'master');
  assert.equal(m.host, 's1');
  assert.equal(t.master('orders', 'bj').name, 'beijing-primary');
  const e = ezErrorOf(() => t.master('users', 'bj'));
  assert.equal(e.exitCode, 2);
  assert.equal(e.message, 'cluster users has no zone "bj"');
  assert.equal(e.hint, 'zones: sh');
});

test('expandPath', () => {
  assert.equal(expandPath('~/.my.cnf', '/base'), join(homedir(), '.my.cnf'));
  assert.equal(expandPath('~', '/base'), homedir());
  assert.equal(expandPath('client.cnf', '/base/dir'), '/base/dir/client.cnf');
  assert.equal(expandPath('../x.cnf', '/base/dir'), '/base/x.cnf');
  assert.equal(expandPath('/etc/my.cnf', '/base'), '/etc/my.cnf');
});

// ---- finding the file -----------------------------------------------------------------

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ezctl-unit-'));
}

test('configCandidates: --config, then $EZCTL_CONFIG, then ./ezctl.yaml and the sandbox', () => {
  const cwd = '/work/here';
  assert.deepEqual(configCandidates('conf/x.yaml', { EZCTL_CONFIG: '/env.yaml' }, cwd), [{ path: '/work/here/conf/x.yaml', source: '--config' }]);
  assert.deepEqual(configCandidates(undefined, { EZCTL_CONFIG: 'env.yaml' }, cwd), [{ path: '/work/here/env.yaml', source: '$EZCTL_CONFIG' }]);
  assert.deepEqual(configCandidates(undefined, { EZCTL_CONFIG: '/abs/env.yaml' }, cwd), [{ path: '/abs/env.yaml', source: '$EZCTL_CONFIG' }]);
  assert.deepEqual(configCandidates(undefined, {}, cwd), [
    { path: '/work/here/ezctl.yaml', source: './ezctl.yaml' },
    { path: '/work/here/.ezctl/sandbox/ezctl.yaml', source: './.ezctl/sandbox/ezctl.yaml' },
  ]);
  // an empty EZCTL_CONFIG counts as unset
  assert.equal(configCandidates(undefined, { EZCTL_CONFIG: '' }, cwd).length, 2);
});

test('findConfig walks the candidates in order', () => {
  const dir = tempDir();
  try {
    const none = ezErrorOf(() => findConfig(undefined, {}, dir));
    assert.equal(none.exitCode, 2);
    assert.equal(none.message, 'no topology file found');
    assert.match(none.hint ?? '', /looked for \.\/ezctl\.yaml and \.\/\.ezctl\/sandbox\/ezctl\.yaml/);

    mkdirSync(join(dir, '.ezctl/sandbox'), { recursive: true });
    writeFileSync(join(dir, '.ezctl/sandbox/ezctl.yaml'), VALID);
    assert.equal(findConfig(undefined, {}, dir), join(dir, '.ezctl/sandbox/ezctl.yaml'));

    writeFileSync(join(dir, 'ezctl.yaml'), VALID);
    assert.equal(findConfig(undefined, {}, dir), join(dir, 'ezctl.yaml'));

    writeFileSync(join(dir, 'env.yaml'), VALID);
    assert.equal(findConfig(undefined, { EZCTL_CONFIG: 'env.yaml' }, dir), join(dir, 'env.yaml'));

    writeFileSync(join(dir, 'flag.yaml'), VALID);
    assert.equal(findConfig('flag.yaml', { EZCTL_CONFIG: 'env.yaml' }, dir), join(dir, 'flag.yaml'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('findConfig: an explicit file that does not exist is an error, not a fallback', () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'ezctl.yaml'), VALID);
    const flag = ezErrorOf(() => findConfig('missing.yaml', {}, dir));
    assert.equal(flag.exitCode, 2);
    assert.equal(flag.message, `topology file ${join(dir, 'missing.yaml')} (from --config) does not exist`);
    const env = ezErrorOf(() => findConfig(undefined, { EZCTL_CONFIG: 'gone.yaml' }, dir));
    assert.equal(env.message, `topology file ${join(dir, 'gone.yaml')} (from $EZCTL_CONFIG) does not exist`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadTopology reads and validates the file it finds', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'ezctl.yaml');
    writeFileSync(path, VALID);
    const t = loadTopology(path);
    assert.equal(t.path, path);
    assert.equal(t.dir, dir);
    assert.equal(t.nodes()[0]!.baseDir, dir);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'zones: [bj]\nclusters:\n  c:\n    zones: {bj: {master: {host: a, port: 70000}}}\n');
    assert.deepEqual(ezErrorOf(() => loadTopology(bad)).details, ['clusters.c.zones.bj.master.port: 70000 is not a port (1-65535)']);
    const unreadable = ezErrorOf(() => loadTopology(dir));
    assert.equal(unreadable.exitCode, 2);
    assert.equal(unreadable.message, `cannot read ${dir}: EISDIR`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
