// check and repair on a cluster DRC replicates: under a live workload with conflicts a consistent
// cluster reports nothing (re-checks wait out DRC's lag); a difference DRC cannot see (written
// with sql_log_bin=0) is found, repaired without DRC echoing the fix, and checked clean; the
// newest DRC timestamp wins, a newer delete in DRC's conflict log wins over a restore, and
// --prefer-zone overrides.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { show } from '../helpers/cli.js';
import { startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { binlogPos, drcStart, drcStop, drcWaitAll, rowCountsByDomain, sqlOn } from '../helpers/drc.js';

let sb: TestSandbox;
let pid: number | undefined;
const ZONES = ['bj', 'sh'];

/** A write DRC never sees: not in the binlog. */
const unlogged = (node: string, ...stmts: string[]) => sqlOn(sb, node, 'SET SESSION sql_log_bin = 0', ...stmts);

async function value(node: string, sql: string): Promise<unknown> {
  const db = await sb.db(node);
  try {
    return await db.value(sql);
  } finally {
    await db.close();
  }
}

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 0, load: 2000 });
  pid = await drcStart(sb);
});

after(async () => {
  if (sb) await drcStop(sb, pid);
  await sb?.down();
});

test('under DRC and a workload with conflicts, a consistent cluster reports no differences', async () => {
  const workload = sb.run(['sandbox', 'workload', '--tps', '60', '--seconds', '8', '--conflict-ratio', '0.1']);
  await new Promise((r) => setTimeout(r, 1000));
  for (let i = 0; i < 2; i++) {
    const r = await sb.run(['--json', 'check', 'full', '--tables', 'ezdemo.*']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.json().consistent, true);
  }
  const w = await workload;
  assert.equal(w.code, 0, show(w));
  await drcWaitAll(sb, ZONES, '30s');
  const r = await sb.run(['--json', 'check', 'full']);
  assert.equal(r.code, 0, show(r));
});

test('a difference DRC cannot see is found, repaired without an echo, then checks clean', async () => {
  await unlogged('sh-master', "UPDATE ezdemo.users SET name = 'only-in-sh', drc_ts = NOW(3) WHERE id = 11", 'DELETE FROM ezdemo.orders WHERE id = (SELECT MIN(id) FROM (SELECT id FROM ezdemo.orders) x)');
  const found = await sb.run(['--json', 'check', 'full', '--tables', 'ezdemo.users,ezdemo.orders', '--delay', '300ms', '--rechecks', '1']);
  assert.equal(found.code, 1, show(found));
  const rep = found.json();
  const kinds = rep.tables.flatMap((t: any) => t.diffs.map((d: any) => `${t.table} ${d.kind}`)).sort();
  assert.deepEqual(kinds, ['ezdemo.orders missing', 'ezdemo.users changed']);

  // the plan: valid SQL, nothing changed yet
  const plan = await sb.run(['repair']);
  assert.equal(plan.code, 0, show(plan));
  assert.match(plan.stdout, /SET SESSION gtid_domain_id = \d+;\nSTART TRANSACTION;\nINSERT INTO `ezdemo`.`users`/);
  assert.notEqual(await value('bj-master', 'SELECT name FROM ezdemo.users WHERE id = 11'), 'only-in-sh', 'the plan changed nothing');

  const fromBj = await binlogPos(sb, 'bj-master');
  const fromSh = await binlogPos(sb, 'sh-master');
  const fixed = await sb.run(['--json', 'repair', '--execute']);
  assert.equal(fixed.code, 0, show(fixed));
  assert.equal(fixed.json().verified, 2);
  // the newest timestamp won: sh's change is now in bj too
  assert.equal(await value('bj-master', 'SELECT name FROM ezdemo.users WHERE id = 11'), 'only-in-sh');
  await new Promise((r) => setTimeout(r, 1500)); // DRC would have carried an echo by now
  await drcWaitAll(sb, ZONES, '30s');
  // bj got the users fix under DRC's domain for sh; nothing came back to sh from bj for it
  const bjUsers = await rowCountsByDomain(sb, 'bj-master', fromBj, 'ezdemo', 'users');
  const shUsers = await rowCountsByDomain(sb, 'sh-master', fromSh, 'ezdemo', 'users');
  assert.deepEqual([...bjUsers.entries()], [[1002, 1]], 'the fix at bj, logged under sh\'s DRC domain');
  assert.deepEqual([...shUsers.entries()], [], 'no echo of the fix at sh');
  const clean = await sb.run(['check', 'full']);
  assert.equal(clean.code, 0, show(clean));
});

test('a newer delete in DRC\'s conflict log wins over a restore; --prefer-zone overrides', async () => {
  // a row gone from bj (a delete DRC logged as a conflict) but still in sh with an older timestamp
  await unlogged('bj-master', 'DELETE FROM ezdemo.users WHERE id = 21');
  await unlogged('sh-master', "UPDATE ezdemo.users SET drc_ts = '2025-01-01 00:00:00.000' WHERE id = 21");
  await sqlOn(sb, 'bj-master',
    'SET SESSION sql_log_bin = 0',
    `INSERT INTO _ezctl.drc_conflicts (pipeline, db, tbl, row_key, kind, source_ts, target_ts, winner, gtid) VALUES ('sh->bj', 'ezdemo', 'users', '{"id":"21"}', 'delete-changed', NULL, '2025-01-01 00:00:00.000', 'source', '0-0-0')`);
  const plan = await sb.run(['--json', 'repair', '--tables', 'ezdemo.users']);
  assert.equal(plan.code, 0, show(plan));
  const fix = plan.json().fixes.find((f: any) => String(f.key.id) === '21');
  assert.ok(fix, JSON.stringify(plan.json()));
  assert.equal(fix.winner, 'delete');
  assert.deepEqual(fix.actions, { sh: 'delete' });
  // the zone's version wins when preferred: bj has no row, so the row goes; sh: it comes back
  const preferSh = await sb.run(['--json', 'repair', '--tables', 'ezdemo.users', '--prefer-zone', 'sh', '--execute']);
  assert.equal(preferSh.code, 0, show(preferSh));
  assert.equal(Number(await value('bj-master', 'SELECT COUNT(*) FROM ezdemo.users WHERE id = 21')), 1);
  const clean = await sb.run(['check', 'full', '--tables', 'ezdemo.users']);
  assert.equal(clean.code, 0, show(clean));
});

test('check incr: the first run records positions; later runs check exactly the changes since, and find what DRC has not carried', async () => {
  const first = await sb.run(['--json', 'check', 'incr']);
  assert.equal(first.code, 0, show(first));
  assert.equal(first.json().keys, 0);
  // sh->bj held back: sh's changes stay different in bj while the check runs
  let r = await sb.run(['drc', 'pause', '--direction', 'sh->bj']);
  assert.equal(r.code, 0, show(r));
  await sqlOn(sb, 'sh-master', "UPDATE ezdemo.users SET name = CONCAT(name, '*') WHERE id IN (31, 32, 33)");
  const found = await sb.run(['--json', 'check', 'incr', '--until-now', '--delay', '300ms', '--rechecks', '1', '--hash', 'crc32']);
  assert.equal(found.code, 1, show(found));
  const rep = found.json();
  assert.equal(rep.keys, 3);
  assert.equal(rep.hash, 'crc32', 'the hash asked for');
  assert.deepEqual(rep.tables.flatMap((t: any) => t.diffs.map((d: any) => `${t.table} ${d.kind} ${d.key.id} ${d.columns.join(',')}`)).sort(), ['ezdemo.users changed 31 name,drc_ts', 'ezdemo.users changed 32 name,drc_ts', 'ezdemo.users changed 33 name,drc_ts']);
  r = await sb.run(['drc', 'resume']);
  assert.equal(r.code, 0, show(r));
  await drcWaitAll(sb, ZONES, '30s');
  // a workload in both zones, DRC carrying it: the next run checks those changes and finds nothing
  const w = await sb.run(['sandbox', 'workload', '--tps', '100', '--seconds', '3', '--conflict-ratio', '0.05']);
  assert.equal(w.code, 0, show(w));
  await drcWaitAll(sb, ZONES, '30s');
  const clean = await sb.run(['--json', 'check', 'incr', '--until-now']);
  assert.equal(clean.code, 0, show(clean));
  assert.ok(clean.json().keys > 100, `keys checked: ${clean.json().keys}`);
  // nothing changed since: nothing to check
  const again = await sb.run(['--json', 'check', 'incr']);
  assert.equal(again.code, 0, show(again));
  assert.equal(again.json().keys, 0);
});
