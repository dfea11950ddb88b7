// ezctl check full against a real two-zone sandbox: differences of every kind injected in one
// zone are found exactly (no misses, no false positives), in every mode; --run-time/--resume
// cover a table exactly once; bad input is refused before anything runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { show } from '../helpers/cli.js';
import { startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { sqlOn } from '../helpers/drc.js';

let sb: TestSandbox;
const OLD_TS = '2024-01-01 00:00:00.000';

const both = async (...stmts: string[]) => {
  for (const m of ['bj-master', 'sh-master']) await sqlOn(sb, m, ...stmts);
};

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0, load: 3000 });
  await both(
    'CREATE DATABASE ezcheck',
    'CREATE TABLE ezcheck.kinds (id INT PRIMARY KEY, s VARCHAR(32) NULL, f DOUBLE NULL, j JSON NULL, b VARBINARY(16) NULL, t VARCHAR(32) NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))',
    `INSERT INTO ezcheck.kinds SELECT seq, CONCAT('s', seq), seq / 10, JSON_OBJECT('a', seq), UNHEX(LPAD(HEX(seq), 4, '0')), 'abc', '${OLD_TS}' FROM ezcheck.seq_1_to_50`,
    'CREATE TABLE ezcheck.comp (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), PRIMARY KEY (a, b))',
    `INSERT INTO ezcheck.comp SELECT seq % 7, CONCAT('k', seq), seq, '${OLD_TS}' FROM ezcheck.seq_1_to_40`,
    'CREATE TABLE ezcheck.nokey (x INT, y VARCHAR(10))',
    "INSERT INTO ezcheck.nokey VALUES (1, 'a'), (2, 'b'), (2, 'b')",
    'CREATE TABLE ezcheck.big (id INT PRIMARY KEY, v INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))',
    `INSERT INTO ezcheck.big SELECT seq, seq, '${OLD_TS}' FROM ezcheck.seq_1_to_200000`,
    // sparse keys, then a dense block: narrowing by key stretches must split some stretches again
    'CREATE TABLE ezcheck.gaps (id INT PRIMARY KEY, v INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))',
    `INSERT INTO ezcheck.gaps SELECT seq * 10, seq, '${OLD_TS}' FROM ezcheck.seq_1_to_50000`,
    `INSERT INTO ezcheck.gaps SELECT 600000 + seq, seq, '${OLD_TS}' FROM ezcheck.seq_1_to_50000`,
    'CREATE TABLE ezcheck.shape (id INT PRIMARY KEY, v INT, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))',
    `INSERT INTO ezcheck.shape SELECT seq, seq, '${OLD_TS}' FROM ezcheck.seq_1_to_20`,
  );
  // the differences, all in the sh zone (no DRC runs in this file: nothing repairs them)
  await sqlOn(sb, 'sh-master',
    'DELETE FROM ezcheck.kinds WHERE id = 2',
    `INSERT INTO ezcheck.kinds VALUES (1000, 'extra', NULL, NULL, NULL, NULL, '${OLD_TS}')`,
    `UPDATE ezcheck.kinds SET s = 'changed', drc_ts = '${OLD_TS}' WHERE id = 3`,
    `UPDATE ezcheck.kinds SET s = NULL, drc_ts = '${OLD_TS}' WHERE id = 4`,
    `UPDATE ezcheck.kinds SET s = '', drc_ts = '${OLD_TS}' WHERE id = 14`,
    `UPDATE ezcheck.kinds SET f = 0.5000000000000001, drc_ts = '${OLD_TS}' WHERE id = 5`,
    `UPDATE ezcheck.kinds SET j = '{"a": 66}', drc_ts = '${OLD_TS}' WHERE id = 6`,
    `UPDATE ezcheck.kinds SET b = 0x00fe, drc_ts = '${OLD_TS}' WHERE id = 7`,
    `UPDATE ezcheck.kinds SET t = 'abc ', drc_ts = '${OLD_TS}' WHERE id = 8`,
    `UPDATE ezcheck.comp SET v = -1, drc_ts = '${OLD_TS}' WHERE a = 1 AND b = 'k8'`,
    "DELETE FROM ezcheck.nokey WHERE x = 2 LIMIT 1",
    'DELETE FROM ezcheck.gaps WHERE id = 10',
    `INSERT INTO ezcheck.gaps VALUES (-5, 0, '${OLD_TS}'), (255555, 0, '${OLD_TS}'), (700000, 0, '${OLD_TS}')`,
    `UPDATE ezcheck.gaps SET v = -v, drc_ts = '${OLD_TS}' WHERE id IN (250000, 600001, 624999, 625000, 625001, 650000)`,
    'ALTER TABLE ezcheck.shape ADD COLUMN extra INT NULL',
    // deep inside a big table: found by bisection, not by a small chunk
    `UPDATE ezdemo.order_items o JOIN (SELECT order_id, line_no FROM ezdemo.order_items ORDER BY order_id DESC, line_no DESC LIMIT 5, 1) x USING (order_id, line_no) SET o.qty = o.qty + 1, o.drc_ts = o.drc_ts`,
  );
});

after(async () => {
  await sb?.down();
});

type Diff = { kind: string; key: Record<string, unknown>; columns: string[]; zones: Record<string, any> };

function diffsOf(report: any, table: string): Diff[] {
  const t = report.tables.find((x: any) => x.table === table);
  assert.ok(t, `table ${table} in the report`);
  return t.diffs;
}

function summary(diffs: Diff[]): string[] {
  return diffs.map((d) => `${d.kind} ${JSON.stringify(d.key)} ${d.columns.join(',')}`).sort();
}

const EXPECTED_KINDS = [
  'changed {"id":14} s',
  'changed {"id":3} s',
  'changed {"id":4} s',
  'changed {"id":5} f',
  'changed {"id":6} j',
  'changed {"id":7} b',
  'changed {"id":8} t',
  'missing {"id":1000} ',
  'missing {"id":2} ',
].sort();

/** the first test's report, compared with a run taking the far zones' path */
let firstReport: any;

test('every kind of injected difference is found exactly, with no false positives', async () => {
  const r = await sb.run(['--json', 'check', 'full', '--delay', '200ms', '--rechecks', '1']);
  assert.equal(r.code, 1, show(r));
  const rep = r.json();
  firstReport = rep;
  assert.equal(rep.consistent, false);
  assert.equal(rep.complete, true);
  assert.equal(rep.hash, 'crc64', 'the 64-bit hash by default on MariaDB 10.8+');
  assert.deepEqual(summary(diffsOf(rep, 'ezcheck.kinds')), EXPECTED_KINDS);
  const missing2 = diffsOf(rep, 'ezcheck.kinds').find((d) => d.key.id === 2)!;
  assert.deepEqual([missing2.zones.bj.present, missing2.zones.sh.present], [true, false]);
  const nullVsEmpty = diffsOf(rep, 'ezcheck.kinds').find((d) => d.key.id === 4)!;
  assert.deepEqual([nullVsEmpty.zones.bj.values.s, nullVsEmpty.zones.sh.values.s], ['s4', null]);
  assert.deepEqual(summary(diffsOf(rep, 'ezcheck.comp')), ['changed {"a":1,"b":"k8"} v']);
  // the keyless table: one copy of (2,'b') fewer in sh
  const nk = diffsOf(rep, 'ezcheck.nokey');
  assert.equal(nk.length, 1, JSON.stringify(nk));
  assert.deepEqual([nk[0]!.zones.bj.count, nk[0]!.zones.sh.count], [2, 1]);
  assert.equal(rep.tables.find((t: any) => t.table === 'ezcheck.nokey').keyless, true);
  // structure difference: reported, data compared on the common columns (and equal there)
  const shape = rep.tables.find((t: any) => t.table === 'ezcheck.shape');
  assert.ok(shape.structure.some((s: string) => /extra/.test(s)), JSON.stringify(shape));
  assert.deepEqual(shape.diffs, []);
  // the big table: one changed row, found through bisection
  const oi = rep.tables.find((t: any) => t.table === 'ezdemo.order_items');
  assert.deepEqual(oi.diffs.map((d: Diff) => d.columns), [['qty']]);
  // walked after the largest tables, it was sized from their speed: one chunk, one query
  assert.equal(oi.chunks, 1, 'a table started once the run knows its speed, and small enough, is one chunk');
  assert.ok(rep.tables.find((t: any) => t.table === 'ezcheck.big').chunks >= 2, 'the largest table, walked first, grows its chunks from a small probe');
  // an integer key with gaps and a dense block: every difference, at both ends and beyond them
  assert.deepEqual(summary(diffsOf(rep, 'ezcheck.gaps')), [
    'changed {"id":250000} v', 'changed {"id":600001} v', 'changed {"id":624999} v', 'changed {"id":625000} v', 'changed {"id":625001} v', 'changed {"id":650000} v',
    'missing {"id":-5} ', 'missing {"id":10} ', 'missing {"id":255555} ', 'missing {"id":700000} ',
  ].sort());
  // nothing else anywhere
  const others = rep.tables.filter((t: any) => !['ezcheck.kinds', 'ezcheck.comp', 'ezcheck.nokey', 'ezcheck.gaps', 'ezdemo.order_items'].includes(t.table));
  assert.deepEqual(others.flatMap((t: any) => t.diffs), []);
  // the text form names them too
  const text = await sb.run(['check', 'full', '--tables', 'ezcheck.kinds', '--delay', '200ms', '--rechecks', '1']);
  assert.equal(text.code, 1, show(text));
  assert.match(text.stdout, /missing \(id=2\): bj: present, sh: missing/);
  assert.match(text.stdout, /changed \(id=8\): t bj="abc" sh="abc "/);
});

test('every zone walked as a far one (each table\'s chunks alternating between two connections per zone) finds the same', async () => {
  assert.ok(firstReport, 'the first test ran');
  const r = await sb.run(['--json', 'check', 'full', '--delay', '200ms', '--rechecks', '1'], { env: { EZCTL_CHECK_FAR_ZONE_MS: '0' } });
  assert.equal(r.code, 1, show(r));
  const rep = r.json();
  const per = (x: any) => x.tables.map((t: any) => ({ table: t.table, status: t.status, rows: t.rows, missing: t.missing, changed: t.changed, diffs: summary(t.diffs) }));
  assert.deepEqual(per(rep), per(firstReport));
  assert.equal(rep.complete, true);
  // tables of several chunks, one with differences: both of each zone's connections were used
  for (const t of ['ezcheck.big', 'ezcheck.gaps']) assert.ok(rep.tables.find((x: any) => x.table === t).chunks >= 2, `${t} took several chunks`);
});

test('rows mode and the 32-bit hash find the same differences; count mode finds rows missing where the counts differ', async () => {
  const rows = await sb.run(['--json', 'check', 'full', '--tables', 'ezcheck.kinds', '--mode', 'rows', '--delay', '200ms', '--rechecks', '1']);
  assert.equal(rows.code, 1, show(rows));
  assert.deepEqual(summary(diffsOf(rows.json(), 'ezcheck.kinds')), EXPECTED_KINDS);
  // the 32-bit row hash finds the same (every difference here changes the hash)
  const crc32 = await sb.run(['--json', 'check', 'full', '--tables', 'ezcheck.kinds,ezcheck.gaps', '--hash', 'crc32', '--delay', '200ms', '--rechecks', '1']);
  assert.equal(crc32.code, 1, show(crc32));
  assert.equal(crc32.json().hash, 'crc32');
  assert.deepEqual(summary(diffsOf(crc32.json(), 'ezcheck.kinds')), EXPECTED_KINDS);
  assert.equal(diffsOf(crc32.json(), 'ezcheck.gaps').length, 10);
  const bad = await sb.run(['check', 'full', '--hash', 'sha9']);
  assert.equal(bad.code, 2, show(bad));
  assert.match(bad.stderr, /not a row hash/);
  // counts only: one row missing and one extra in the same chunk cancel out, so the extra row
  // is filtered away here to leave a count that differs
  const count = await sb.run(['--json', 'check', 'full', '--tables', 'ezcheck.kinds', '--where', 'id < 1000', '--mode', 'count', '--delay', '200ms', '--rechecks', '1']);
  assert.equal(count.code, 1, show(count));
  assert.deepEqual(summary(diffsOf(count.json(), 'ezcheck.kinds')), ['missing {"id":2} ']);
});

test('--where and --ignore-columns narrow what is compared', async () => {
  const r = await sb.run(['--json', 'check', 'full', '--tables', 'ezcheck.kinds', '--where', 'ezcheck.kinds:id BETWEEN 5 AND 8', '--ignore-columns', 'ezcheck.kinds:j,b', '--delay', '200ms', '--rechecks', '1']);
  assert.equal(r.code, 1, show(r));
  assert.deepEqual(summary(diffsOf(r.json(), 'ezcheck.kinds')), ['changed {"id":5} f', 'changed {"id":8} t']);
  const clean = await sb.run(['--json', 'check', 'full', '--tables', 'ezdemo.users,ezdemo.orders']);
  assert.equal(clean.code, 0, show(clean));
  assert.equal(clean.json().consistent, true);
});

test('--run-time stops at a chunk boundary and --resume covers the rest exactly once', async () => {
  // 200,000 rows in chunks kept near the smallest size (--chunk-time 1ms): far more than 0.5 s of work
  const args = ['--json', 'check', 'full', '--tables', 'ezcheck.big', '--chunk-time', '1ms', '--delay', '200ms', '--rechecks', '1'];
  await sqlOn(sb, 'sh-master', 'UPDATE ezcheck.big SET v = -v WHERE id = 199000');
  const total = Number((await (async () => {
    const db = await sb.db('bj-master');
    try {
      return db.value('SELECT COUNT(*) FROM ezcheck.big');
    } finally {
      await db.close();
    }
  })()));
  const first = await sb.run([...args, '--run-time', '500ms', '--resume']);
  assert.equal(first.code, 0, show(first));
  const a = first.json();
  assert.equal(a.complete, false);
  assert.equal(a.stoppedBy, 'run-time');
  const partA = a.tables[0].rows;
  assert.ok(partA > 0 && partA < total, `first part checked ${partA} of ${total}`);
  const second = await sb.run([...args, '--resume']);
  assert.equal(second.code, 1, show(second));
  const b = second.json();
  assert.equal(b.runId, a.runId, 'the same run continued');
  assert.equal(b.complete, true);
  assert.equal(b.tables[0].rows, total, 'every row checked once over the two parts');
  assert.deepEqual(b.tables[0].diffs.map((d: Diff) => d.key), [{ id: 199000 }]);
  // a finished run is not resumed again: the next --resume starts a new one
  const third = await sb.run([...args, '--resume']);
  assert.notEqual(third.json().runId, a.runId);
});

test('bad input: unknown table or zone, invalid --where, hostile names: exit 2 and no run recorded', async () => {
  const runs = async () => {
    const db = await sb.db('bj-master');
    try {
      const exists = Number(await db.value("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '_ezctl' AND TABLE_NAME = 'check_runs'"));
      return exists ? Number(await db.value('SELECT COUNT(*) FROM _ezctl.check_runs')) : 0;
    } finally {
      await db.close();
    }
  };
  const before = await runs();
  for (const args of [
    ['--tables', 'ezdemo.nope'],
    ['--zones', 'bj,xx'],
    ['--tables', 'ezcheck.kinds', '--where', 'ezcheck.kinds:id >>> 3'],
    ['--tables', 'ezcheck.kinds', '--where', 'ezcheck.kinds:no_such_column = 1'],
    ['--tables', 'ez`demo.x'],
    ['--tables', "ezdemo.users'; DROP TABLE ezdemo.users; --"],
    ['--mode', 'fast'],
    ['--tables', 'ezcheck.kinds', '--ignore-columns', 'ezcheck.kinds:nope'],
  ]) {
    const r = await sb.run(['check', 'full', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${show(r)}`);
    assert.match(r.stderr, /ezctl: |error: /);
  }
  assert.equal(await runs(), before, 'no run was recorded');
  const db = await sb.db('bj-master');
  try {
    assert.equal(Number(await db.value('SELECT COUNT(*) FROM ezdemo.users')), 3000, 'the users table is intact');
  } finally {
    await db.close();
  }
});

test('a throttle flag file holds the check, the log says why, and --run-time still stops it', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const flag = join(mkdtempSync(join(tmpdir(), 'ezctl-flag-')), 'pause');
  writeFileSync(flag, '');
  // the run time counts from the start: setup took up to 1.4 s of it on a loaded machine
  const r = await sb.run(['--json', 'check', 'full', '--tables', 'ezcheck.big', '--throttle-flag-file', flag, '--run-time', '3s']);
  assert.equal(r.code, 0, show(r));
  const rep = r.json();
  assert.equal(rep.complete, false);
  assert.equal(rep.stoppedBy, 'run-time');
  assert.equal(rep.rows, 0);
  assert.ok(rep.throttledMs > 1000, `throttled for ${rep.throttledMs} ms`);
  assert.match(r.stderr, /throttled: flag file .*pause exists/);
});
