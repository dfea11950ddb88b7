// topo show / topo check, sandbox load and workload, against a real two-zone sandbox.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { show, EZCTL } from '../helpers/cli.js';
import { pidAlive } from '../../src/core/process/pids.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { patchTopology } from '../helpers/drc.js';

let sb: TestSandbox;

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 1, load: 300 });
});

after(async () => {
  await sb?.down();
});

async function checksums(node: string): Promise<Record<string, string>> {
  const db = await sb.db(node);
  const rows = await db.query<{ Table: string; Checksum: string }>('CHECKSUM TABLE ezdemo.users, ezdemo.merchants, ezdemo.riders, ezdemo.orders, ezdemo.order_items EXTENDED');
  await db.close();
  return Object.fromEntries(rows.map((r) => [r.Table, String(r.Checksum)]));
}

test('load writes the same rows, values and DRC timestamps in every zone', async () => {
  const bj = await checksums('bj-master');
  const sh = await checksums('sh-master');
  assert.deepEqual(bj, sh);
  const db = await sb.db('bj-master');
  const counts = await db.one<any>('SELECT (SELECT COUNT(*) FROM ezdemo.users) u, (SELECT COUNT(*) FROM ezdemo.merchants) m, (SELECT COUNT(*) FROM ezdemo.orders) o, (SELECT COUNT(*) FROM ezdemo.order_items) i');
  assert.deepEqual({ ...counts }, { u: '300', m: '30', o: '300', i: '600' }); // BIGINT counts come back exact, as strings
  // every column kind the later tools must handle is really there, with NULLs among the values
  const nulls = await db.one<any>('SELECT SUM(email IS NULL) e, SUM(profile IS NULL) p, SUM(avatar_hash IS NULL) a FROM ezdemo.users');
  assert.ok(Number(nulls!.e) > 0 && Number(nulls!.p) > 0 && Number(nulls!.a) > 0);
  const ts = await db.value<string>('SELECT MIN(drc_ts) FROM ezdemo.orders');
  assert.equal(ts, '2026-01-01 00:00:01.501');
  await db.close();
  // replicas follow their masters
  await eventually(async () => JSON.stringify(await checksums('sh-replica1')) === JSON.stringify(sh), 10_000, 'sh-replica1 to catch up');
});

test('load is repeatable: a second load gives identical tables', async () => {
  const before = await checksums('bj-master');
  const r = await sb.run(['sandbox', 'load', '--rows', '300']);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(await checksums('bj-master'), before);
});

test('topo show: one row per node with role, version, read_only, GTID, source, threads, lag', async () => {
  const r = await sb.run(['--json', 'topo', 'show']);
  assert.equal(r.code, 0, show(r));
  const rows = r.json();
  assert.equal(rows.length, 4);
  const byName = Object.fromEntries(rows.map((x: any) => [x.name, x]));
  assert.equal(byName['bj-master'].role, 'master');
  assert.equal(byName['bj-master'].readOnly, false);
  assert.equal(byName['bj-master'].source, null);
  assert.match(byName['bj-master'].version, /MariaDB/);
  assert.match(byName['bj-master'].gtid, /^1-101-\d+$/);
  assert.equal(byName['sh-replica1'].readOnly, true);
  assert.equal(byName['sh-replica1'].source, `127.0.0.1:${sb.node('sh-master').port}`);
  assert.equal(byName['sh-replica1'].ioThread, 'Yes');
  assert.equal(byName['sh-replica1'].sqlThread, 'Yes');
  assert.equal(typeof byName['sh-replica1'].lagSeconds, 'number');
  // the text form is a table on stdout with no colour codes when not on a terminal
  const t = await sb.run(['topo', 'show']);
  assert.equal(t.code, 0, show(t));
  assert.match(t.stdout, /bj-replica1/);
  assert.doesNotMatch(t.stdout + t.stderr, /\x1b\[/);
});

test('topo check passes on the sandbox, then names each problem and exits 4', async () => {
  const ok = await sb.run(['--json', 'topo', 'check']);
  assert.equal(ok.code, 0, show(ok));
  assert.equal(ok.json().ok, true);
  assert.equal(ok.json().tablesChecked, 10, `tables checked on the 2 masters: ${ok.stdout}`);

  const m = await sb.db('bj-master');
  await m.exec('CREATE TABLE ezdemo.no_pk (a INT, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))');
  await m.exec('CREATE TABLE ezdemo.no_ts (id INT PRIMARY KEY)');
  await m.exec('CREATE TABLE ezdemo.bad_ts (id INT PRIMARY KEY, drc_ts DATETIME)');
  const replica = await sb.db('sh-replica1');
  await replica.exec('SET GLOBAL read_only = 0');
  await replica.exec('STOP SLAVE SQL_THREAD');
  try {
    const bad = await sb.run(['--json', 'topo', 'check']);
    assert.equal(bad.code, 4, show(bad));
    const problems: Array<{ node: string; check: string; message: string }> = bad.json().problems;
    const has = (check: string, re: RegExp) => assert.ok(problems.some((p) => p.check === check && re.test(p.message)), `expected ${check} ${re}: ${JSON.stringify(problems, null, 1)}`);
    has('primary_key', /ezdemo\.no_pk has no primary key/);
    has('drc_ts', /ezdemo\.no_ts has no drc_ts column/);
    has('drc_ts', /ezdemo\.bad_ts: drc_ts is datetime, expected timestamp\(3\)/);
    has('writable', /demo\/sh: 2 writable nodes \(sh-master, sh-replica1\)/);
    has('replication', /io=Yes sql=No/);
    // the text form: one line per problem
    const text = await sb.run(['topo', 'check']);
    assert.equal(text.code, 4);
    assert.equal(text.stdout.trim().split('\n').length, problems.length);
  } finally {
    await replica.exec('START SLAVE SQL_THREAD');
    await replica.exec('SET GLOBAL read_only = 1');
    await replica.close();
    await m.exec('DROP TABLE ezdemo.no_pk, ezdemo.no_ts, ezdemo.bad_ts');
    await m.close();
  }
});

test('topo check leaves out the tables DRC does not replicate (drc.exclude, drc.include)', async () => {
  // a scratch table in one zone only, with neither a key nor the DRC column: wrong for a replicated
  // table, nothing to DRC once excluded (written without the binlog, so only bj-master has it)
  const m = await sb.db('bj-master');
  await m.exec('SET SESSION sql_log_bin = 0');
  await m.exec('CREATE TABLE ezdemo.scratch_log (note VARCHAR(20))');
  try {
    const bad = await sb.run(['--json', 'topo', 'check']);
    assert.equal(bad.code, 4, show(bad));
    assert.ok(bad.json().problems.some((p: any) => /ezdemo\.scratch_log has no primary key/.test(p.message)), bad.stdout);

    patchTopology(sb, (doc) => doc.setIn(['clusters', 'demo', 'drc'], doc.createNode({ exclude: ['ezdemo.scratch_*'] })));
    const ok = await sb.run(['--json', 'topo', 'check']);
    assert.equal(ok.code, 0, show(ok));
    assert.equal(ok.json().tablesChecked, 10, ok.stdout);
    // include narrows the same way: only the orders tables are DRC's, so only they are checked
    patchTopology(sb, (doc) => doc.setIn(['clusters', 'demo', 'drc'], doc.createNode({ include: ['ezdemo.order*'] })));
    const inc = await sb.run(['--json', 'topo', 'check']);
    assert.equal(inc.code, 0, show(inc));
    assert.equal(inc.json().tablesChecked, 4, inc.stdout); // orders and order_items on each of two masters
  } finally {
    patchTopology(sb, (doc) => doc.deleteIn(['clusters', 'demo', 'drc']));
    await m.exec('DROP TABLE ezdemo.scratch_log');
    await m.close();
  }
});

test('workload writes each zone\'s own shards, and others\' only at the conflict ratio', async () => {
  const own = await sb.run(['--json', 'sandbox', 'workload', '--tps', '100', '--seconds', '1.5', '--seed', '7']);
  assert.equal(own.code, 0, show(own));
  const rep = own.json();
  for (const z of rep.zones) {
    assert.equal(z.errors, 0, z.lastError);
    assert.equal(z.foreign, 0);
    assert.equal(z.transactions, 150);
    assert.equal(z.inserts + z.updates + z.deletes, 150);
  }
  // rows inserted in bj carry bj's shards only, with ids from bj's AUTO_INCREMENT offset
  const bj = await sb.db('bj-master');
  const bad = await bj.value<string>('SELECT COUNT(*) FROM ezdemo.orders WHERE id > 300 AND (shard_id >= 32 OR id % 2 = 0)');
  assert.equal(Number(bad), 0);
  await bj.close();

  const mixed = await sb.run(['--json', 'sandbox', 'workload', '--tps', '100', '--seconds', '1', '--conflict-ratio', '0.5', '--zones', 'sh', '--seed', '9']);
  assert.equal(mixed.code, 0, show(mixed));
  const z = mixed.json().zones;
  assert.equal(z.length, 1);
  assert.equal(z[0].zone, 'sh');
  assert.ok(z[0].foreign > 20 && z[0].foreign < 80, `foreign ${z[0].foreign} of 100`);
});

test('workload refuses a zone that is not in the cluster (exit 2)', async () => {
  const r = await sb.run(['sandbox', 'workload', '--zones', 'gz', '--seconds', '1']);
  assert.equal(r.code, 2, show(r));
  assert.match(r.stderr, /zone "gz" is not in cluster demo/);
});

test('workload keeps writing after a master restart (it reconnects), reports errors by kind while it runs, and prints its summary on SIGINT', async () => {
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, '--json', 'sandbox', 'workload', '--tps', '40', '--seconds', '120', '--zones', 'sh', '--progress', '300ms', '--max-wait', '1s'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } });
  let stdout = '';
  const lines: string[] = [];
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8');
  let partial = '';
  child.stderr.on('data', (d: string) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  const running = () => child.exitCode === null && child.signalCode === null;
  try {
    await eventually(async () => lines.some((l) => /workload sh: \d+ tx\/s over the last/.test(l)), 15_000, 'a progress line');
    const shPid = JSON.parse(readFileSync(`${sb.dir}/sandbox.json`, 'utf8')).nodes.find((n: any) => n.name === 'sh-master').pid;
    process.kill(shPid, 'SIGKILL');
    await eventually(async () => !pidAlive(shPid), 5000, 'sh-master to die');
    // errors show up on stderr while the workload runs, counted by kind, not only in the final summary
    const errLine = await eventually(async () => lines.find((l) => /WARN .*workload sh: .* [1-9]\d* errors? \(.*(no connection|connect|ECONN|PROTOCOL)/.test(l)), 15_000, 'an error summary line while it runs');
    assert.ok(running(), `the workload was still running when it reported ${errLine}`);
    const lineCount = lines.length;
    const up = await sb.run(['sandbox', 'up', '--dir', sb.dir]);
    assert.equal(up.code, 0, show(up));
    const db = await sb.db('sh-master');
    try {
      const restartedAt = String(await db.value("SELECT DATE_FORMAT(NOW(3), '%Y-%m-%d %H:%i:%s.%f')"));
      await eventually(async () => lines.some((l) => /workload sh: connected again/.test(l)), 20_000, 'the workload to reconnect');
      // it writes again into the restarted master
      await eventually(async () => Number(await db.value('SELECT COUNT(*) FROM ezdemo.orders WHERE created_at >= ?', [restartedAt])) > 0, 15_000, 'new orders in the restarted sh-master');
    } finally {
      await db.close();
    }
    // the progress lines are rate-limited: about one per zone per 300ms, not one per error
    assert.ok(lines.length - lineCount < 200, `${lines.length - lineCount} stderr lines`);
    assert.ok(running(), 'still running before SIGINT');
    child.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 130, `exit ${code}\n${stdout}\n${lines.join('\n')}`);
    const rep = JSON.parse(stdout);
    assert.equal(rep.interrupted, true);
    const z = rep.zones[0];
    assert.equal(z.zone, 'sh');
    assert.ok(z.transactions > 0 && z.errors > 0 && z.reconnects >= 1, JSON.stringify(z));
    assert.equal(Object.values(z.errorsByKind as Record<string, number>).reduce((a, b) => a + b, 0), z.errors, JSON.stringify(z.errorsByKind));
  } finally {
    if (running()) child.kill('SIGKILL');
  }
});
