// `ezctl migrate int2bigint --threshold 0 --execute` on ordinary schemas, two zones with DRC
// running and a replica each, under writes in both zones: a parent/child pair (each with its own
// INT key) and a three-level chain (grandparent -> parent -> child, each with its own INT key and
// an INT foreign key to the level above). Families never overlap: each schema is one family, run
// once; every key becomes BIGINT, the foreign keys are kept, the zones hold the same rows, and
// with --drop-old-table no helper table is left on any node. (The old planner planned `child`
// alone and `parent, child` after it: the first left child_ezdel, the second was refused with
// exit 4 "nothing changed", the zones half migrated.) A run that stops part-way says which
// families are done and which are not, exit 3; a refusal found in any family's plan refuses the
// run before anything changes (exit 4), and `ezctl osc cleanup --execute` is the fix it names.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { show } from '../helpers/cli.js';
import { startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { writeUntilStopped } from '../helpers/writer.js';
import { drcStart, drcStop, drcWaitAll, sqlOn } from '../helpers/drc.js';
import type { Db } from '../../src/core/db/connect.js';

let sb: TestSandbox;
let pid: number | undefined;
const ZONES = ['bj', 'sh'];
const MASTERS = ['bj-master', 'sh-master'];
const NODES = ['bj-master', 'sh-master', 'bj-replica1', 'sh-replica1'];
const TS = 'drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)';

async function withDb<T>(node: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await sb.db(node);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

const columnType = (node: string, schema: string, table: string, column: string) =>
  withDb(node, (db) => db.value<string>('SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?', [schema, table, column]));

const foreignKeys = (node: string, schema: string) =>
  withDb(node, (db) => db.query<{ t: string; r: string }>('SELECT TABLE_NAME AS t, REFERENCED_TABLE_NAME AS r FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? ORDER BY 1, 2', [schema]));

const helperTables = (node: string) =>
  withDb(node, async (db) => (await db.query<{ t: string }>(
    "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('pc', 'chain', 'shop') AND TABLE_NAME LIKE '%\\_ez%' ORDER BY 1",
  )).map((r) => r.t));

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 1 });
  for (const node of MASTERS) {
    await sqlOn(sb, node,
      'CREATE DATABASE pc',
      `CREATE TABLE pc.parent (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20), ${TS})`,
      `CREATE TABLE pc.child (id INT NOT NULL PRIMARY KEY, parent_id INT NOT NULL, ${TS}, FOREIGN KEY (parent_id) REFERENCES pc.parent(id))`,
      'CREATE DATABASE chain',
      `CREATE TABLE chain.grandparent (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20), ${TS})`,
      `CREATE TABLE chain.parent (id INT NOT NULL PRIMARY KEY, grandparent_id INT NOT NULL, ${TS}, FOREIGN KEY (grandparent_id) REFERENCES chain.grandparent(id))`,
      `CREATE TABLE chain.child (id INT NOT NULL PRIMARY KEY, parent_id INT NOT NULL, ${TS}, FOREIGN KEY (parent_id) REFERENCES chain.parent(id))`,
      'CREATE DATABASE shop',
      // for the part-way and refusal tests: tables alone, the first far up its range
      `CREATE TABLE shop.alpha (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL, ${TS}) AUTO_INCREMENT = 2000000000`,
      `CREATE TABLE shop.beta (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, ${TS})`,
      `CREATE TABLE shop.gamma (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL, ${TS}) AUTO_INCREMENT = 2000000000`,
      `CREATE TABLE shop.delta (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, ${TS})`,
    );
  }
  pid = await drcStart(sb);
  // rows written in bj reach sh through DRC (bj's AUTO_INCREMENT hands out odd ids)
  await sqlOn(sb, 'bj-master', 'USE pc',
    "INSERT INTO pc.parent (name) SELECT CONCAT('p', seq) FROM seq_1_to_3000",
    'INSERT INTO pc.child (id, parent_id) SELECT p.id * 10 + s.seq, p.id FROM pc.parent p JOIN seq_1_to_3 s',
    "INSERT INTO chain.grandparent (name) SELECT CONCAT('g', seq) FROM seq_1_to_1000",
    'INSERT INTO chain.parent (id, grandparent_id) SELECT g.id * 10 + s.seq, g.id FROM chain.grandparent g JOIN seq_1_to_3 s',
    'INSERT INTO chain.child (id, parent_id) SELECT p.id * 10 + s.seq, p.id FROM chain.parent p JOIN seq_1_to_2 s',
    'INSERT INTO shop.alpha (v) SELECT seq FROM seq_1_to_500',
    'INSERT INTO shop.beta (id, v) SELECT seq, seq FROM seq_1_to_500',
    'INSERT INTO shop.gamma (v) SELECT seq FROM seq_1_to_50',
    'INSERT INTO shop.delta (id, v) SELECT seq, seq FROM seq_1_to_50',
  );
  await drcWaitAll(sb, ZONES, '60s');
});

after(async () => {
  if (sb) await drcStop(sb, pid);
  await sb?.down();
});

/**
 * An application in one zone until stopped: a new parent with children at every level, updates,
 * and deletes of its own children. Explicit ids are kept apart by zone (bj odd, sh even millions).
 */
function writer(node: string, zoneNo: number) {
  return writeUntilStopped(() => sb.db(node), async (db, n) => {
    const base = 100_000_000 + zoneNo * 10_000_000 + n * 10;
    await db.exec('BEGIN');
    const p = await db.exec("INSERT INTO pc.parent (name) VALUES ('w')");
    await db.exec('INSERT INTO pc.child (id, parent_id) VALUES (?, ?), (?, ?)', [base, p.insertId, base + 1, p.insertId]);
    const g = await db.exec("INSERT INTO chain.grandparent (name) VALUES ('w')");
    await db.exec('INSERT INTO chain.parent (id, grandparent_id) VALUES (?, ?)', [base, g.insertId]);
    await db.exec('INSERT INTO chain.child (id, parent_id) VALUES (?, ?), (?, ?)', [base, base, base + 1, base]);
    await db.exec("UPDATE pc.parent SET name = CONCAT('u', ?) WHERE id = ?", [n, p.insertId]);
    await db.exec('COMMIT');
    if (n % 3 === 0) await db.exec('DELETE FROM chain.child WHERE id = ?', [base + 1]);
  });
}

test('the plan at --threshold 0: one family per schema, no table in two families, nothing changed', async () => {
  const r = await sb.run(['--json', 'migrate', 'int2bigint', '--tables', 'pc.*,chain.*', '--threshold', '0']);
  assert.equal(r.code, 0, show(r));
  const fams = r.json().families as Array<{ tables: Array<{ schema: string; table: string; columns: string[] }> }>;
  const bySchema = Object.fromEntries(fams.map((f) => [f.tables[0]!.schema, Object.fromEntries(f.tables.map((t) => [t.table, [...t.columns].sort()]))]));
  assert.equal(fams.length, 2, JSON.stringify(fams));
  assert.deepEqual(bySchema, {
    pc: { parent: ['id'], child: ['id', 'parent_id'] },
    chain: { grandparent: ['id'], parent: ['grandparent_id', 'id'], child: ['id', 'parent_id'] },
  });
  const text = await sb.run(['migrate', 'int2bigint', '--tables', 'pc.*', '--threshold', '0']);
  assert.equal(text.code, 0, show(text));
  assert.match(text.stdout, /share pc\.child: planned as one family/);
  assert.equal(await columnType('bj-master', 'pc', 'child', 'id'), 'int(11)');
});

test('--threshold 0 --execute --drop-old-table under writes in both zones: each family once, every key BIGINT, foreign keys kept, zones equal, no helper table left', async () => {
  const writers = [writer('bj-master', 1), writer('sh-master', 2)];
  await new Promise((res) => setTimeout(res, 500));
  const r = await sb.run(['--json', 'migrate', 'int2bigint', '--tables', 'pc.*,chain.*', '--threshold', '0', '--execute', '--drop-old-table', '--chunk-time', '20ms']);
  await new Promise((res) => setTimeout(res, 500));
  const w = await Promise.all(writers.map((x) => x.stop()));
  assert.equal(r.code, 0, show(r));
  for (const x of w) assert.deepEqual(x.errors, [], 'the application saw no error');
  assert.ok(w.every((x) => x.n > 5), `the writers wrote: ${w.map((x) => x.n)}`);
  const executed = r.json().executed as Array<{ tables: string[] }>;
  assert.deepEqual(executed.map((e) => [...e.tables].sort()).sort(), [
    ['chain.child', 'chain.grandparent', 'chain.parent'],
    ['pc.child', 'pc.parent'],
  ], 'one run per family, each table once');
  const keys: Array<[string, string, string]> = [
    ['pc', 'parent', 'id'], ['pc', 'child', 'id'], ['pc', 'child', 'parent_id'],
    ['chain', 'grandparent', 'id'], ['chain', 'parent', 'id'], ['chain', 'parent', 'grandparent_id'], ['chain', 'child', 'id'], ['chain', 'child', 'parent_id'],
  ];
  for (const node of NODES) {
    for (const [s, t, c] of keys) assert.equal(await columnType(node, s, t, c), 'bigint(20)', `${node}: ${s}.${t}.${c}`);
  }
  await drcWaitAll(sb, ZONES, '60s');
  for (const node of NODES) {
    assert.deepEqual(await foreignKeys(node, 'pc'), [{ t: 'child', r: 'parent' }], node);
    assert.deepEqual(await foreignKeys(node, 'chain'), [{ t: 'child', r: 'parent' }, { t: 'parent', r: 'grandparent' }], node);
    assert.deepEqual(await helperTables(node), [], `${node}: the old tables were dropped, nothing else left`);
  }
  for (const node of MASTERS) {
    await assert.rejects(withDb(node, (db) => db.exec('INSERT INTO chain.child (id, parent_id) VALUES (1, 999999999)')), /foreign key constraint fails/, `${node}: enforced`);
  }
  const check = await sb.run(['check', 'full', '--tables', 'pc.*,chain.*']);
  assert.equal(check.code, 0, show(check));
  const again = await sb.run(['--json', 'migrate', 'int2bigint', '--tables', 'pc.*,chain.*', '--threshold', '0']);
  assert.equal(again.code, 0, show(again));
  assert.deepEqual(again.json().families, [], 'nothing left to widen');
});

test('a run that stops part-way names the families done and not done, exit 3, never "nothing changed"', async () => {
  // a session holding beta (a read in an open transaction) keeps its cut-over from locking it
  const holder = await sb.db('bj-master');
  try {
    await holder.exec('BEGIN');
    await holder.value('SELECT COUNT(*) FROM shop.beta');
    const r = await sb.run(['migrate', 'int2bigint', '--tables', 'shop.alpha,shop.beta', '--threshold', '0', '--execute', '--cut-over-lock-timeout', '1', '--cut-over-retries', '1']);
    assert.equal(r.code, 3, show(r));
    assert.match(r.stderr, /stopped part-way: 1 of 2 families done, 1 not/, show(r));
    assert.match(r.stderr, /done: shop\.alpha\.id \(shop\.alpha\)/, show(r));
    assert.match(r.stderr, /failed: shop\.beta\.id \(shop\.beta\)/, show(r));
    assert.match(r.stderr, /not started: none/, show(r));
    assert.doesNotMatch(r.stderr + r.stdout, /nothing changed/, show(r));
  } finally {
    await holder.exec('COMMIT');
    await holder.close();
  }
  for (const node of MASTERS) {
    assert.equal(await columnType(node, 'shop', 'alpha', 'id'), 'bigint(20)', `${node}: the family done stays done`);
    assert.equal(await columnType(node, 'shop', 'beta', 'id'), 'int(11)', `${node}: the failed one is as it was`);
  }
});

test('a refusal in any family\'s plan refuses the run before anything changes (exit 4); osc cleanup --execute, the fix it names, lets it run', async () => {
  // delta's old table kept by an earlier change (as `osc` leaves it by default), in both zones
  for (const node of MASTERS) await sqlOn(sb, node, 'CREATE TABLE shop.delta_ezdel LIKE shop.delta', 'INSERT INTO shop.delta_ezdel (id, v) VALUES (1, 1)');
  const args = ['migrate', 'int2bigint', '--tables', 'shop.gamma,shop.delta', '--threshold', '0', '--execute'];
  const r = await sb.run(args);
  assert.equal(r.code, 4, show(r));
  assert.match(r.stderr, /nothing changed \(2 families planned, none started\)/, show(r));
  assert.match(r.stderr, /shop\.delta_ezdel exists: the original kept by an earlier change of delta; `ezctl osc cleanup --execute` drops it/, show(r));
  for (const node of MASTERS) assert.equal(await columnType(node, 'shop', 'gamma', 'id'), 'int(11)', `${node}: the first family was not started`);
  const clean = await sb.run(['--json', 'osc', 'cleanup', '--execute']);
  assert.equal(clean.code, 0, show(clean));
  const dropped = (clean.json().tables as Array<{ zone: string; table: string; dropped?: boolean }>).filter((t) => t.dropped).map((t) => `${t.zone}:${t.table}`).sort();
  assert.ok(dropped.includes('bj:delta_ezdel') && dropped.includes('sh:delta_ezdel'), JSON.stringify(clean.json().tables));
  const ok = await sb.run(args);
  assert.equal(ok.code, 0, show(ok));
  for (const node of MASTERS) assert.equal(await columnType(node, 'shop', 'delta', 'id'), 'bigint(20)', node);
});
