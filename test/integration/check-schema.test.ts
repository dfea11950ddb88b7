// ezctl check schema against a real two-zone sandbox: clean → exit 0; structure changed in one
// zone (or on one replica) → exit 1 with exactly those differences; filters; bad input → exit 2;
// an unreachable node → exit 3.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { show } from '../helpers/cli.js';
import { startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { sqlOn } from '../helpers/drc.js';

let sb: TestSandbox;

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 1, load: 50 });
});

after(async () => {
  await sb?.down();
});

interface Diff { table: string; node: string; against: string; kind: string; object: string; left: string | null; right: string | null }

/** Every diff of a JSON report, flattened with its table and sorted, for exact comparisons. */
function diffsOf(report: any): Diff[] {
  const out: Diff[] = report.tables.flatMap((t: any) => t.diffs.map((d: any) => ({ table: t.table, ...d })));
  return out.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

const sorted = (ds: Diff[]) => [...ds].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

/** Wait until a replica has applied everything its master has written. */
async function caughtUp(replica: string, master: string): Promise<void> {
  const m = await sb.db(master);
  const pos = await m.value<string>('SELECT @@gtid_binlog_pos');
  await m.close();
  const r = await sb.db(replica);
  try {
    assert.equal(Number(await r.value('SELECT MASTER_GTID_WAIT(?, 30)', [pos!])), 0, `${replica} did not reach ${pos}`);
  } finally {
    await r.close();
  }
}

test('a consistent topology: exit 0, consistent in JSON and in text', async () => {
  const r = await sb.run(['--json', 'check', 'schema']);
  assert.equal(r.code, 0, show(r));
  const rep = r.json();
  assert.equal(rep.consistent, true, show(r));
  assert.equal(rep.reference, 'bj-master');
  assert.deepEqual(rep.nodes, ['bj-master', 'bj-replica1', 'sh-master', 'sh-replica1']);
  assert.deepEqual(rep.comparisons, [
    { node: 'sh-master', against: 'bj-master' },
    { node: 'bj-replica1', against: 'bj-master' },
    { node: 'sh-replica1', against: 'sh-master' },
  ]);
  assert.equal(rep.tablesCompared, 5); // the demo tables; never _ezctl nor system schemas
  assert.deepEqual(rep.tables, []);

  const t = await sb.run(['check', 'schema', '--cluster', 'demo']);
  assert.equal(t.code, 0, show(t));
  assert.equal(t.stdout, 'consistent: 5 tables identical on 4 nodes (reference bj-master)\n');
});

// The changes are made on sh-master and replicate to sh-replica1 (zones are not linked: DRC is
// not running), so sh-master differs from the reference while sh-replica1 matches its master.
const zoneDiffs: Diff[] = [
  { table: 'ezdemo.merchants', node: 'sh-master', against: 'bj-master', kind: 'column-collation', object: 'name', left: 'utf8mb4_general_ci', right: 'utf8mb4_bin' },
  { table: 'ezdemo.only_sh', node: 'sh-master', against: 'bj-master', kind: 'table-missing', object: 'ezdemo.only_sh', left: null, right: 'table' },
  { table: 'ezdemo.order_items', node: 'sh-master', against: 'bj-master', kind: 'table-collation', object: 'ezdemo.order_items', left: 'utf8mb4_general_ci', right: 'utf8mb4_bin' },
  { table: 'ezdemo.orders', node: 'sh-master', against: 'bj-master', kind: 'column-type', object: 'amount', left: 'decimal(10,2)', right: 'decimal(14,2)' },
  { table: 'ezdemo.riders', node: 'sh-master', against: 'bj-master', kind: 'column-missing', object: 'vehicle', left: 'varchar(16) NULL', right: null },
  { table: 'ezdemo.users', node: 'sh-master', against: 'bj-master', kind: 'index-missing', object: 'idx_email', left: null, right: 'KEY (email(20))' },
];

test('structure changed in one zone: exit 1 with exactly those differences, in JSON and in text', async () => {
  await sqlOn(
    sb,
    'sh-master',
    'ALTER TABLE ezdemo.orders MODIFY amount DECIMAL(14,2) NOT NULL',
    'ALTER TABLE ezdemo.users ADD INDEX idx_email (email(20))',
    'ALTER TABLE ezdemo.riders DROP COLUMN vehicle',
    'ALTER TABLE ezdemo.merchants MODIFY name VARCHAR(100) NOT NULL COLLATE utf8mb4_bin',
    'ALTER TABLE ezdemo.order_items COLLATE utf8mb4_bin',
    'CREATE TABLE ezdemo.only_sh (id INT NOT NULL PRIMARY KEY, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))',
  );
  await caughtUp('sh-replica1', 'sh-master');

  const r = await sb.run(['--json', 'check', 'schema']);
  assert.equal(r.code, 1, show(r));
  const rep = r.json();
  assert.equal(rep.consistent, false);
  assert.equal(rep.tablesCompared, 6);
  assert.deepEqual(diffsOf(rep), sorted(zoneDiffs), show(r));

  const t = await sb.run(['check', 'schema']);
  assert.equal(t.code, 1, show(t));
  for (const line of [
    'ezdemo.orders',
    '  sh-master vs bj-master: column amount type decimal(10,2) → decimal(14,2)',
    '  sh-master vs bj-master: index idx_email extra: KEY (email(20)) (not on bj-master)',
    '  sh-master vs bj-master: column vehicle missing (bj-master has varchar(16) NULL)',
    '  sh-master vs bj-master: column name collation utf8mb4_general_ci → utf8mb4_bin',
    '  sh-master vs bj-master: table collation utf8mb4_general_ci → utf8mb4_bin',
    '  sh-master vs bj-master: table extra (not on bj-master)',
    '6 tables differ out of 6 compared (reference bj-master)',
  ]) {
    assert.ok(t.stdout.split('\n').includes(line), `missing line ${JSON.stringify(line)}\n${show(t)}`);
  }
  assert.doesNotMatch(t.stderr, /error/i, show(t));
});

test('--zones names the reference first: the same differences seen from sh-master', async () => {
  const r = await sb.run(['--json', 'check', 'schema', '--zones', 'sh,bj', '--tables', 'ezdemo.orders,ezdemo.users']);
  assert.equal(r.code, 1, show(r));
  const rep = r.json();
  assert.equal(rep.reference, 'sh-master');
  assert.deepEqual(diffsOf(rep), [
    { table: 'ezdemo.orders', node: 'bj-master', against: 'sh-master', kind: 'column-type', object: 'amount', left: 'decimal(14,2)', right: 'decimal(10,2)' },
    { table: 'ezdemo.users', node: 'bj-master', against: 'sh-master', kind: 'index-missing', object: 'idx_email', left: 'KEY (email(20))', right: null },
  ]);
});

test('--tables and --exclude narrow what is compared', async () => {
  const one = await sb.run(['--json', 'check', 'schema', '--tables', 'ezdemo.orders']);
  assert.equal(one.code, 1, show(one));
  assert.equal(one.json().tablesCompared, 1);
  assert.deepEqual(diffsOf(one.json()), zoneDiffs.filter((d) => d.table === 'ezdemo.orders'));

  const glob = await sb.run(['--json', 'check', 'schema', '--tables', 'ezdemo.*', '--exclude', 'ezdemo.o*,/^ezdemo\\.(users|riders)$/']);
  assert.equal(glob.code, 1, show(glob));
  assert.equal(glob.json().tablesCompared, 1); // merchants
  assert.deepEqual(diffsOf(glob.json()), zoneDiffs.filter((d) => d.table === 'ezdemo.merchants'));

  const clean = await sb.run(['--json', 'check', 'schema', '--exclude', 'ezdemo.o*,ezdemo.users,ezdemo.riders,ezdemo.merchants']);
  assert.equal(clean.code, 0, show(clean));
  assert.equal(clean.json().tablesCompared, 0);

  const bad = await sb.run(['check', 'schema', '--tables', 'nodot']);
  assert.equal(bad.code, 2, show(bad));
  assert.match(bad.stderr, /not db\.table/);
});

test('a replica that differs from its master is reported; --no-replicas compares masters only', async () => {
  // On the replica itself (read_only; the admin user may write), kept out of its binlog.
  await sqlOn(sb, 'bj-replica1', 'SET SESSION sql_log_bin = 0', 'ALTER TABLE ezdemo.orders ADD INDEX idx_tip (tip)');

  const r = await sb.run(['--json', 'check', 'schema']);
  assert.equal(r.code, 1, show(r));
  assert.deepEqual(
    diffsOf(r.json()),
    sorted([...zoneDiffs, { table: 'ezdemo.orders', node: 'bj-replica1', against: 'bj-master', kind: 'index-missing', object: 'idx_tip', left: null, right: 'KEY (tip)' }]),
  );
  const t = await sb.run(['check', 'schema', '--tables', 'ezdemo.orders']);
  assert.match(t.stdout, /^ {2}bj-replica1 vs bj-master: index idx_tip extra: KEY \(tip\) \(not on bj-master\)$/m, show(t));

  const masters = await sb.run(['--json', 'check', 'schema', '--no-replicas']);
  assert.equal(masters.code, 1, show(masters));
  assert.deepEqual(masters.json().nodes, ['bj-master', 'sh-master']);
  assert.deepEqual(masters.json().comparisons, [{ node: 'sh-master', against: 'bj-master' }]);
  assert.deepEqual(diffsOf(masters.json()), sorted(zoneDiffs));

  // only the bj zone: the replica against its master
  const bj = await sb.run(['--json', 'check', 'schema', '--zones', 'bj']);
  assert.equal(bj.code, 1, show(bj));
  assert.deepEqual(bj.json().comparisons, [{ node: 'bj-replica1', against: 'bj-master' }]);
  assert.equal(diffsOf(bj.json()).length, 1);
});

test('bad input exits 2 before any server is read: unknown zone, unknown cluster, nothing to compare', async () => {
  const zone = await sb.run(['--json', 'check', 'schema', '--zones', 'bj,xx']);
  assert.equal(zone.code, 2, show(zone));
  assert.match(zone.stderr, /cluster demo has no zone "xx"/);
  assert.match(zone.stderr, /zones: bj, sh/);
  assert.doesNotMatch(zone.stderr, /reading table structure/);
  assert.equal(zone.json().error.exitCode, 2);

  const cluster = await sb.run(['check', 'schema', '--cluster', 'nope']);
  assert.equal(cluster.code, 2, show(cluster));
  assert.match(cluster.stderr, /cluster "nope" is not in .*\n.*clusters: demo/);

  const alone = await sb.run(['check', 'schema', '--zones', 'bj', '--no-replicas']);
  assert.equal(alone.code, 2, show(alone));
  assert.match(alone.stderr, /nothing to compare/);

  const usage = await sb.run(['check', 'schema', '--zones', 'bj,bj']);
  assert.equal(usage.code, 2, show(usage));
});

test('an unreachable node exits 3 naming the node and the cause', async () => {
  // a port nobody listens on: bind one, then close it
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const broken = join(sb.dir, 'broken.yaml'); // beside the original: its .cnf paths resolve alike
  writeFileSync(broken, readFileSync(sb.config, 'utf8').replace(`port: ${sb.node('sh-replica1').port}`, `port: ${port}`));
  const r = await sb.run(['--config', broken, 'check', 'schema']);
  assert.equal(r.code, 3, show(r));
  assert.match(r.stderr, new RegExp(`sh-replica1 127\\.0\\.0\\.1:${port}.*connection refused`), show(r));
  assert.equal(r.stdout, '');
});
