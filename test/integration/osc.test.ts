// ezctl osc against a real two-zone sandbox with DRC running and a workload on: changes land in
// every zone with identical data; unsafe changes are refused with nothing changed; the throttle
// flag file holds the copy; an interrupted job leaves the original as it was; a cut-over blocked
// by a transaction times out, retries, and the original stays intact until it succeeds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { EZCTL, show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { insertIdsUntilStopped } from '../helpers/writer.js';
import { drcStart, drcStop, drcWaitAll, sqlOn } from '../helpers/drc.js';
import type { Db } from '../../src/core/db/connect.js';

let sb: TestSandbox;
let pid: number | undefined;
const ZONES = ['bj', 'sh'];
const flagDir = mkdtempSync(join(tmpdir(), 'ezctl-osc-'));

async function tables(node: string, schema: string): Promise<string[]> {
  const db = await sb.db(node);
  try {
    return (await db.query<{ t: string }>('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1', [schema])).map((r) => r.t);
  } finally {
    await db.close();
  }
}

async function columnType(node: string, table: string, column: string): Promise<string | undefined> {
  const db = await sb.db(node);
  try {
    return db.value<string>('SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?', ['ezdemo', table, column]);
  } finally {
    await db.close();
  }
}

/** SHOW CREATE TABLE as a plain ALTER would leave it: the change made on an unlogged twin of the table. */
async function shapeAfter(table: string, alter: string): Promise<string> {
  const db = await sb.db('bj-master');
  try {
    await db.exec('SET SESSION sql_log_bin = 0');
    await db.exec(`CREATE TABLE ezdemo.${table}_ref LIKE ezdemo.${table}`);
    try {
      await db.exec(`ALTER TABLE ezdemo.${table}_ref ${alter}`);
      return normalizedDdl(await showCreate(db, `${table}_ref`), `${table}_ref`, table);
    } finally {
      await db.exec(`DROP TABLE ezdemo.${table}_ref`);
    }
  } finally {
    await db.close();
  }
}

async function showCreate(db: Db, table: string): Promise<string> {
  return String((await db.one<any>(`SHOW CREATE TABLE ezdemo.${table}`))['Create Table']);
}

function normalizedDdl(ddl: string, name: string, as: string): string {
  return ddl.replace(`\`${name}\``, `\`${as}\``).replace(/ AUTO_INCREMENT=\d+/, '');
}

async function shapeOn(node: string, table: string): Promise<string> {
  const db = await sb.db(node);
  try {
    return normalizedDdl(await showCreate(db, table), table, table);
  } finally {
    await db.close();
  }
}

/** After a change: same structure everywhere, DRC caught up, every row identical across zones. */
async function assertConsistent(): Promise<void> {
  const schema = await sb.run(['check', 'schema', '--tables', 'ezdemo.*']);
  assert.equal(schema.code, 0, show(schema));
  await drcWaitAll(sb, ZONES, '60s');
  const full = await sb.run(['check', 'full', '--tables', 'ezdemo.*']);
  assert.equal(full.code, 0, show(full));
}

/** A table of ids 1..rows with v = id in both zones (written at bj, replicated by DRC); extra: more of its definition. */
async function numberedTable(table: string, rows: number, extra = ''): Promise<void> {
  for (const node of ['bj-master', 'sh-master']) {
    await sqlOn(sb, node, `CREATE TABLE ezdemo.${table} (id INT PRIMARY KEY, v INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)${extra})`);
  }
  await sqlOn(sb, 'bj-master', `INSERT INTO ezdemo.${table} (id, v) SELECT seq, seq FROM ezdemo.seq_1_to_${rows}`);
  await drcWaitAll(sb, ZONES, '60s');
}

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 1, load: 2000 });
  pid = await drcStart(sb);
});

after(async () => {
  if (sb) await drcStop(sb, pid);
  await sb?.down();
  rmSync(flagDir, { recursive: true, force: true });
});

test('modify, add and drop a column and add an index under a workload: every zone changes, data identical', async () => {
  const workload = sb.run(['sandbox', 'workload', '--tps', '60', '--seconds', '20', '--conflict-ratio', '0.05']);
  for (const alter of ['MODIFY amount DECIMAL(14,2) NOT NULL', 'ADD COLUMN coupon VARCHAR(16) NULL', 'ADD INDEX idx_created (created_at)', 'DROP COLUMN coupon']) {
    // two of them copy three chunks at a time, beside the binlog applier's batches
    const threads = alter.startsWith('MODIFY') || alter.startsWith('ADD INDEX') ? ['--copy-threads', '3', '--chunk-time', '20ms'] : [];
    // the copy goes without the plain indexes and builds them afterwards; the shape must come out
    // exactly as the ALTER alone would make it, index order included
    const expected = await shapeAfter('orders', alter);
    const r = await sb.run(['--json', 'osc', '--table', 'ezdemo.orders', '--alter', alter, '--instant', 'never', '--execute', ...threads]);
    assert.equal(r.code, 0, `${alter}: ${show(r)}`);
    const rep = r.json();
    assert.equal(rep.method, 'copy');
    assert.ok(rep.progress.every((z: any) => z.indexBuildMs >= 0), `the indexes were built after the copy: ${JSON.stringify(rep.progress)}`);
    for (const node of ['bj-master', 'sh-master', 'bj-replica1', 'sh-replica1']) {
      await eventually(async () => (await shapeOn(node, 'orders')) === expected, 15_000, `${node}: orders shaped as a plain ALTER leaves it`);
    }
    assert.ok(rep.cutOver.skewMs <= 1000, `cut-over skew ${rep.cutOver.skewMs} ms`);
    assert.ok(rep.progress.every((z: any) => z.rowsCopied > 0), JSON.stringify(rep.progress));
    for (const node of ['bj-master', 'sh-master']) assert.deepEqual((await tables(node, 'ezdemo')).filter((t) => t.startsWith('orders_ez')), ['orders_ezdel'], node);
    await sqlOn(sb, 'bj-master', 'DROP TABLE ezdemo.orders_ezdel');
    await sqlOn(sb, 'sh-master', 'DROP TABLE ezdemo.orders_ezdel');
    if (alter.startsWith('ADD COLUMN coupon')) {
      // a value in the new column, written in one zone right after the cut-over, reaches the other
      await sqlOn(sb, 'bj-master', "UPDATE ezdemo.orders SET coupon = 'NEW-1' WHERE id = (SELECT id FROM (SELECT MIN(id) AS id FROM ezdemo.orders) x)");
      await eventually(async () => {
        const db = await sb.db('sh-master');
        try {
          return Number(await db.value("SELECT COUNT(*) FROM ezdemo.orders WHERE coupon = 'NEW-1'")) === 1;
        } finally {
          await db.close();
        }
      }, 15_000, 'the new column\'s value to reach sh through DRC');
    }
  }
  const w = await workload;
  assert.equal(w.code, 0, show(w));
  for (const node of ['bj-master', 'sh-master', 'bj-replica1', 'sh-replica1']) assert.equal(await columnType(node, 'orders', 'amount'), 'decimal(14,2)', node);
  await assertConsistent();
});

test('an instant change is made in place in every zone, and said so', async () => {
  const r = await sb.run(['--json', 'osc', '--table', 'ezdemo.users', '--alter', 'ADD COLUMN nickname VARCHAR(32) NULL', '--execute']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.json().method, 'instant');
  for (const node of ['bj-master', 'sh-master']) assert.equal(await columnType(node, 'users', 'nickname'), 'varchar(32)');
  await assertConsistent();
});

test('unsafe changes are refused with exit 4 and nothing changed; the plan changes nothing', async () => {
  await sqlOn(sb, 'bj-master', 'CREATE TABLE ezdemo.nokey (a INT, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))');
  await sqlOn(sb, 'sh-master', 'CREATE TABLE ezdemo.nokey (a INT, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))');
  const cases: Array<[string, string, RegExp]> = [
    ['ezdemo.order_items', 'DROP PRIMARY KEY', /no unique key on \(order_id, line_no\)/],
    ['ezdemo.riders', 'CHANGE name full_name VARCHAR(64) NOT NULL', /--map name:full_name/],
    ['ezdemo.nokey', 'ADD COLUMN b INT', /no primary key or unique key/],
    ['ezdemo.riders', 'ADD UNIQUE KEY u_shard (shard_id)', /adds unique key u_shard \(shard_id\): a row duplicating another/],
  ];
  const before = await tables('bj-master', 'ezdemo');
  for (const [table, alter, why] of cases) {
    const plan = await sb.run(['osc', '--table', table, '--alter', alter, '--instant', 'never']);
    assert.equal(plan.code, 4, show(plan));
    assert.match(plan.stdout, why);
    const r = await sb.run(['osc', '--table', table, '--alter', alter, '--instant', 'never', '--execute']);
    assert.equal(r.code, 4, show(r));
    assert.match(r.stderr, why);
  }
  // a bad ALTER is bad input; a good one without --execute is only a plan
  const bad = await sb.run(['osc', '--table', 'ezdemo.riders', '--alter', 'ADD COLUMN oops NOSUCHTYPE']);
  assert.equal(bad.code, 2, show(bad));
  const plan = await sb.run(['osc', '--table', 'ezdemo.riders', '--alter', 'ADD COLUMN x INT NULL', '--instant', 'never']);
  assert.equal(plan.code, 0, show(plan));
  assert.match(plan.stdout, /CREATE TABLE `ezdemo`.`riders_ezgho` LIKE `ezdemo`.`riders`/);
  assert.match(plan.stdout, /ALTER TABLE `ezdemo`.`riders_ezgho` ADD KEY `idx_shard` \(`shard_id`\), ALGORITHM=INPLACE, LOCK=NONE {2}-- after the copy/);
  assert.match(plan.stdout, /note: index idx_shard is built after the copy/);
  const kept = await sb.run(['osc', '--table', 'ezdemo.riders', '--alter', 'ADD COLUMN x INT NULL', '--instant', 'never', '--no-defer-indexes']);
  assert.doesNotMatch(kept.stdout, /idx_shard/, show(kept));
  assert.deepEqual(await tables('bj-master', 'ezdemo'), before, 'nothing created');
  assert.equal(await columnType('bj-master', 'riders', 'full_name'), undefined);
  // with the rename mapped, the column keeps its data
  const mapped = await sb.run(['osc', '--table', 'ezdemo.riders', '--alter', 'CHANGE name full_name VARCHAR(64) NOT NULL', '--map', 'name:full_name', '--instant', 'never', '--execute']);
  assert.equal(mapped.code, 0, show(mapped));
  const db = await sb.db('sh-master');
  try {
    assert.equal(Number(await db.value("SELECT COUNT(*) FROM ezdemo.riders WHERE full_name IS NULL OR full_name = ''")), 0);
  } finally {
    await db.close();
  }
  for (const node of ['bj-master', 'sh-master']) await sqlOn(sb, node, 'DROP TABLE ezdemo.riders_ezdel');
  await assertConsistent();
});

test('a throttle flag file holds the copy; an interrupted job drops its helper tables and leaves the original', async () => {
  const flag = join(flagDir, 'throttle');
  writeFileSync(flag, '');
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, 'osc', '--table', 'ezdemo.order_items', '--alter', 'ADD COLUMN gift TINYINT NULL', '--instant', 'never', '--execute', '--throttle-flag-file', flag], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  // the ghost exists, and stays empty while the flag is there
  await eventually(async () => (await tables('bj-master', 'ezdemo')).includes('order_items_ezgho'), 15_000, 'the ghost table');
  await new Promise((r) => setTimeout(r, 1500));
  const db = await sb.db('bj-master');
  try {
    assert.equal(Number(await db.value('SELECT COUNT(*) FROM ezdemo.order_items_ezgho')), 0, 'nothing copied while throttled');
  } finally {
    await db.close();
  }
  assert.match(err, /throttled: flag file/);
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 130, err);
  for (const node of ['bj-master', 'sh-master']) {
    assert.deepEqual((await tables(node, 'ezdemo')).filter((t) => t.startsWith('order_items_ez')), [], `${node}: helper tables dropped`);
    assert.equal(await columnType(node, 'order_items', 'gift'), undefined, `${node}: original unchanged`);
  }
  rmSync(flag, { force: true });
  await assertConsistent();
});

test('the verification finds ghost rows the binlog never explained and copies their chunks again', async () => {
  // Rows written straight into the ghost, unlogged, stand for what the copy could get wrong: a
  // value the copy kept (ON DUPLICATE KEY keeps the ghost's row) and a row the original never had,
  // past its last key. Only the comparison before the cut-over can find them.
  await numberedTable('ledger', 3000);
  const flag = join(flagDir, 'throttle-ledger');
  writeFileSync(flag, '');
  const job = sb.run(['--json', 'osc', '--table', 'ezdemo.ledger', '--alter', 'ADD COLUMN memo VARCHAR(8) NULL', '--instant', 'never', '--execute', '--throttle-flag-file', flag]);
  // on bj's replica too, as a row the copy got wrong would be there: it replays the master's writes
  for (const node of ['bj-master', 'bj-replica1']) {
    await eventually(async () => (await tables(node, 'ezdemo')).includes('ledger_ezgho'), 15_000, `the ghost table on ${node}`);
    const db = await sb.db(node);
    try {
      await db.exec('SET SESSION sql_log_bin = 0');
      await db.exec("INSERT INTO ezdemo.ledger_ezgho (id, v, drc_ts) VALUES (7, -7, '2020-01-01 00:00:00.000'), (999999, 1, '2020-01-01 00:00:00.000')");
    } finally {
      await db.close();
    }
  }
  rmSync(flag, { force: true });
  const done = await job;
  assert.equal(done.code, 0, show(done));
  const bj = done.json().progress.find((z: any) => z.zone === 'bj');
  assert.ok(bj.chunksRecopied >= 1, JSON.stringify(done.json().progress));
  const check = await sb.db('bj-master');
  try {
    assert.equal(Number(await check.value('SELECT v FROM ezdemo.ledger WHERE id = 7')), 7);
    assert.equal(Number(await check.value('SELECT COUNT(*) FROM ezdemo.ledger WHERE id = 999999')), 0);
    assert.equal(Number(await check.value('SELECT COUNT(*) FROM ezdemo.ledger')), 3000);
  } finally {
    await check.close();
  }
  for (const node of ['bj-master', 'sh-master']) await sqlOn(sb, node, 'DROP TABLE ezdemo.ledger_ezdel');
  await assertConsistent();
});

test('a cut-over blocked by a transaction times out, retries, and succeeds once it ends; or gives up leaving the original', async () => {
  const hold = join(flagDir, 'hold');
  // first: blocked for good, two short attempts, then it gives up
  const blocker = await sb.db('sh-master');
  await blocker.exec('BEGIN');
  // an open transaction that has read the table holds a metadata lock: rows can still be read
  // and copied, but the cut-over's LOCK TABLES ... WRITE must wait for it
  await blocker.query('SELECT * FROM ezdemo.merchants LIMIT 1');
  const failed = await sb.run(['osc', '--table', 'ezdemo.merchants', '--alter', 'ADD COLUMN osc_mark TINYINT NULL', '--instant', 'never', '--execute', '--cut-over-lock-timeout', '1', '--cut-over-retries', '2']);
  assert.equal(failed.code, 3, show(failed));
  assert.match(failed.stderr, /did not succeed in 2 attempts/);
  for (const node of ['bj-master', 'sh-master']) {
    assert.deepEqual((await tables(node, 'ezdemo')).filter((t) => t.startsWith('merchants_ez')), [], node);
    assert.equal(await columnType(node, 'merchants', 'osc_mark'), undefined, node);
  }
  // then: the transaction ends while the job retries
  writeFileSync(hold, '');
  const job = sb.run(['--json', 'osc', '--table', 'ezdemo.merchants', '--alter', 'ADD COLUMN osc_mark TINYINT NULL', '--instant', 'never', '--execute', '--cut-over-lock-timeout', '1', '--cut-over-retries', '10', '--postpone-cut-over-flag-file', hold]);
  await eventually(async () => (await tables('sh-master', 'ezdemo')).includes('merchants_ezgho'), 15_000, 'the ghost table');
  await new Promise((r) => setTimeout(r, 1000));
  rmSync(hold); // cut-over begins, and meets the open transaction
  await new Promise((r) => setTimeout(r, 2500));
  await blocker.exec('ROLLBACK');
  await blocker.close();
  const ok = await job;
  assert.equal(ok.code, 0, show(ok));
  assert.ok(ok.json().cutOver.attempts >= 2, JSON.stringify(ok.json().cutOver));
  for (const node of ['bj-master', 'sh-master']) {
    assert.equal(await columnType(node, 'merchants', 'osc_mark'), 'tinyint(4)', node);
    await sqlOn(sb, node, 'DROP TABLE ezdemo.merchants_ezdel');
  }
  await assertConsistent();
});

test('control: osc status / pause / resume / set / cut-over on the running job, and osc abort', async () => {
  const hold = join(flagDir, 'hold2');
  writeFileSync(hold, '');
  const job = sb.run(['--json', 'osc', '--table', 'ezdemo.users', '--alter', 'ADD COLUMN level TINYINT NULL', '--instant', 'never', '--execute', '--chunk-time', '20ms', '--postpone-cut-over-flag-file', hold]);
  const ctl = (...a: string[]) => sb.run(['--json', 'osc', ...a, '--table', 'ezdemo.users']);
  await eventually(async () => (await ctl('status')).code === 0, 15_000, 'the job to answer');
  let r = await ctl('pause');
  assert.equal(r.code, 0, show(r));
  await new Promise((res) => setTimeout(res, 800));
  const a = (await ctl('status')).json();
  await new Promise((res) => setTimeout(res, 800));
  const b = (await ctl('status')).json();
  assert.equal(b.throttle.throttled, true);
  assert.match(b.throttle.reason, /paused by operator/);
  assert.deepEqual(b.zones.map((z: any) => z.rowsCopied), a.zones.map((z: any) => z.rowsCopied), 'no rows copied while paused');
  r = await sb.run(['osc', 'set', 'chunk-time=200ms', '--table', 'ezdemo.users']);
  assert.equal(r.code, 0, show(r));
  // a value the job cannot take is bad input in the job's words (it said "no schema change is running" before)
  r = await sb.run(['osc', 'set', 'chunk-time=fast', '--table', 'ezdemo.users']);
  assert.equal(r.code, 2, show(r));
  assert.match(r.stderr, /the schema change of ezdemo\.users refused set: "fast" is not a duration/);
  r = await sb.run(['osc', 'set', 'threads=4', '--table', 'ezdemo.users']);
  assert.equal(r.code, 2, show(r));
  assert.match(r.stderr, /osc job: set: key "threads" is not one of chunk-time; it accepts: status, pause/);
  r = await ctl('resume');
  assert.equal(r.code, 0, show(r));
  await eventually(async () => (await ctl('status')).json().postponed === true, 60_000, 'every zone ready, the cut-over postponed');
  r = await ctl('cut-over');
  assert.equal(r.code, 0, show(r));
  const done = await job;
  assert.equal(done.code, 0, show(done));
  for (const node of ['bj-master', 'sh-master']) {
    assert.equal(await columnType(node, 'users', 'level'), 'tinyint(4)', node);
    await sqlOn(sb, node, 'DROP TABLE ezdemo.users_ezdel');
  }
  rmSync(hold, { force: true });

  // abort: mid-copy, held by the throttle flag
  const flag = join(flagDir, 'throttle2');
  writeFileSync(flag, '');
  const job2 = sb.run(['osc', '--table', 'ezdemo.riders', '--alter', 'ADD COLUMN zone_hint CHAR(2) NULL', '--instant', 'never', '--execute', '--throttle-flag-file', flag]);
  await eventually(async () => (await sb.run(['osc', 'status', '--table', 'ezdemo.riders'])).code === 0, 15_000, 'the second job to answer');
  r = await sb.run(['osc', 'abort', '--table', 'ezdemo.riders']);
  assert.equal(r.code, 0, show(r));
  const aborted = await job2;
  assert.equal(aborted.code, 4, show(aborted));
  assert.match(aborted.stderr, /aborted/);
  for (const node of ['bj-master', 'sh-master']) {
    assert.deepEqual((await tables(node, 'ezdemo')).filter((t) => t.startsWith('riders_ez')), [], node);
    assert.equal(await columnType(node, 'riders', 'zone_hint'), undefined, node);
  }
  rmSync(flag, { force: true });
  const none = await sb.run(['osc', 'status', '--table', 'ezdemo.riders']);
  assert.equal(none.code, 3, show(none));
  await assertConsistent();
});

test('the copy does not lock the original: a transaction holding a row lock does not hold it up, and its change still arrives', async () => {
  await numberedTable('slips', 5000, ', KEY k_v (v)');
  // a row in the middle of the table, locked and changed, not committed: a copy reading under
  // locks (LOCK IN SHARE MODE) would wait on it, time out after 10 s and retry, ten times over
  const blocker = await sb.db('bj-master');
  await blocker.exec('BEGIN');
  await blocker.exec('UPDATE ezdemo.slips SET v = -7 WHERE id = 2500');
  const hold = join(flagDir, 'hold-slips');
  writeFileSync(hold, '');
  const job = sb.run(['--json', 'osc', '--table', 'ezdemo.slips', '--alter', 'ADD COLUMN memo VARCHAR(8) NULL', '--instant', 'never', '--execute', '--chunk-time', '5ms', '--postpone-cut-over-flag-file', hold]);
  try {
    // copied, indexed and verified in both zones while the lock is still held
    await eventually(async () => {
      const st = await sb.run(['--json', 'osc', 'status', '--table', 'ezdemo.slips']);
      return st.code === 0 && st.json().postponed === true;
    }, 30_000, 'the copy done and verified while a row of it is locked');
  } finally {
    await blocker.exec('COMMIT');
    await blocker.close();
    rmSync(hold, { force: true });
  }
  const done = await job;
  assert.equal(done.code, 0, show(done));
  await drcWaitAll(sb, ZONES, '60s');
  for (const node of ['bj-master', 'sh-master']) {
    const db = await sb.db(node);
    try {
      assert.equal(Number(await db.value('SELECT v FROM ezdemo.slips WHERE id = 2500')), -7, `${node}: the change committed during the job is in the new table`);
    } finally {
      await db.close();
    }
    await sqlOn(sb, node, 'DROP TABLE ezdemo.slips_ezdel');
  }
  await assertConsistent();
});

test('kill -9 during the copy, then --resume: the change completes, data identical, the original never damaged', async () => {
  // 200,000 rows written in bj and carried to sh by DRC, copied in chunks kept small: seconds of
  // copying to kill it in
  for (const node of ['bj-master', 'sh-master']) {
    await sqlOn(sb, node, 'CREATE TABLE ezdemo.parcels (id INT PRIMARY KEY, weight INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3), KEY k_weight (weight))');
  }
  for (let i = 0; i < 10; i++) {
    await sqlOn(sb, 'bj-master', `INSERT INTO ezdemo.parcels SELECT seq, seq % 977, '2024-01-01 00:00:00' FROM ezdemo.seq_${i * 20000 + 1}_to_${(i + 1) * 20000}`);
  }
  await drcWaitAll(sb, ZONES, '60s');
  const args = ['osc', '--table', 'ezdemo.parcels', '--alter', 'ADD COLUMN wrapped TINYINT NULL', '--instant', 'never', '--execute', '--chunk-time', '1ms'];
  // three chunks at a time (their checkpoint logic: ChunkFrontier's unit test; a kill of the
  // client lets the server finish the statements in flight, so no hole can be made from here)
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, ...args, '--copy-threads', '3'], { stdio: ['ignore', 'ignore', 'ignore'] });
  const ctl = (cmd: string) => sb.run(['--json', 'osc', cmd, '--table', 'ezdemo.parcels']);
  // let it copy a little, hold it, let the checkpoint be written, then kill it without warning
  await eventually(async () => {
    const st = await ctl('status');
    return st.code === 0 && st.json().zones.every((z: any) => z.rowsCopied > 0);
  }, 30_000, 'the copy to start');
  // killed mid-chunk, with chunks in flight (no pause first), once checkpoints have been written
  await new Promise((r) => setTimeout(r, 1500));
  const before = (await ctl('status')).json();
  assert.ok(before.zones.some((z: any) => z.phase === 'copying'), JSON.stringify(before.zones));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const expected = await shapeAfter('parcels', 'ADD COLUMN wrapped TINYINT NULL');
  for (const z of before.zones.filter((x: any) => x.phase === 'copying')) {
    assert.doesNotMatch(await shapeOn(`${z.zone}-master`, 'parcels_ezgho'), /k_weight/, `${z.zone}: killed before its plain index was built`);
  }
  for (const node of ['bj-master', 'sh-master']) {
    assert.ok((await tables(node, 'ezdemo')).includes('parcels_ezgho'), `${node}: the ghost is left for --resume`);
    assert.equal(await columnType(node, 'parcels', 'wrapped'), undefined, `${node}: the original is untouched`);
  }
  // writes go on meanwhile, in both zones and through DRC; the resumed job must carry them into the ghost too
  await sqlOn(sb, 'bj-master', 'UPDATE ezdemo.parcels SET weight = -1 WHERE id IN (7, 150000)', 'DELETE FROM ezdemo.parcels WHERE id = 99');
  await sqlOn(sb, 'sh-master', 'INSERT INTO ezdemo.parcels (id, weight) VALUES (300001, 5)');
  const plain = await sb.run(['osc', ...args.slice(1)]);
  assert.equal(plain.code, 4, `without --resume the left ghost is refused: ${show(plain)}`);
  const resumed = await sb.run(['--json', 'osc', ...args.slice(1), '--resume']);
  assert.equal(resumed.code, 0, show(resumed));
  // nothing the crashed run copied is missing (the verification would have copied it again)
  assert.deepEqual(resumed.json().progress.map((z: any) => z.chunksRecopied), [0, 0], JSON.stringify(resumed.json().progress));
  for (const node of ['bj-master', 'sh-master']) {
    assert.equal(await columnType(node, 'parcels', 'wrapped'), 'tinyint(4)', node);
    assert.equal(await shapeOn(node, 'parcels'), expected, `${node}: the resumed job built the index the copy went without`);
    assert.deepEqual((await tables(node, 'ezdemo')).filter((t) => t.startsWith('parcels_ez')), ['parcels_ezdel'], node);
  }
  await assertConsistent();
  // the new table holds exactly what the old one held at the cut-over: nothing lost in the crash
  for (const node of ['bj-master', 'sh-master']) {
    const db = await sb.db(node);
    try {
      const diff = await db.value('SELECT COUNT(*) FROM ezdemo.parcels_ezdel o LEFT JOIN ezdemo.parcels n USING (id) WHERE n.id IS NULL OR n.weight <> o.weight OR n.drc_ts <> o.drc_ts');
      const counts = await db.one<any>('SELECT (SELECT COUNT(*) FROM ezdemo.parcels) AS n, (SELECT COUNT(*) FROM ezdemo.parcels_ezdel) AS o');
      assert.equal(Number(diff), 0, node);
      assert.equal(Number(counts.n), Number(counts.o), node);
      assert.equal(Number(counts.n), 200000, node);
    } finally {
      await db.close();
    }
    await sqlOn(sb, node, 'DROP TABLE ezdemo.parcels_ezdel');
  }
});

test('writes waiting on the table at the cut-over go to the new table: the RENAME queues on the table itself, so it goes first even when it is held up after the unlock', async () => {
  // The RENAME takes its locks in name order. A session holding the ghost keeps the RENAME from
  // finishing after the unlock: if the RENAME were queued on the sentry (gh-ost's _t_del names),
  // the inserts waiting on the table would run against the original in that gap and be lost.
  // no AUTO_INCREMENT: the cut-over then has no reason to alter the ghost the holder below holds
  await numberedTable('tickets', 1000);
  const hold = join(flagDir, 'hold-tickets');
  writeFileSync(hold, '');
  const job = sb.run(['--json', 'osc', '--table', 'ezdemo.tickets', '--alter', 'ADD COLUMN note VARCHAR(8) NULL', '--instant', 'never', '--execute', '--postpone-cut-over-flag-file', hold]);
  await eventually(async () => {
    const st = await sb.run(['--json', 'osc', 'status', '--table', 'ezdemo.tickets']);
    return st.code === 0 && st.json().postponed === true;
  }, 60_000, 'the copy done, the cut-over postponed');

  const holder = await sb.db('bj-master');
  const writer = await insertIdsUntilStopped(() => sb.db('bj-master'), 'ezdemo.tickets', 2);
  const inserted = writer.inserted;
  try {
    await holder.exec('BEGIN');
    await holder.value('SELECT COUNT(*) FROM ezdemo.tickets_ezgho');
    rmSync(hold, { force: true });
    // hold the ghost until the sentry is gone (the locks released) and a little longer; the table
    // list is read without opening the tables, whose names the RENAME may hold
    await eventually(async () => {
      if ((await tables('bj-master', 'ezdemo')).includes('tickets_ezcut')) return false;
      const db = await sb.db('bj-master');
      try {
        return Number(await db.value("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE%tickets%'")) === 1;
      } finally {
        await db.close();
      }
    }, 30_000, 'the sentry dropped, the RENAME waiting');
    await new Promise((res) => setTimeout(res, 400));
    await holder.exec('COMMIT');
    const done = await job;
    assert.equal(done.code, 0, show(done));
    await new Promise((res) => setTimeout(res, 300));
  } finally {
    await writer.stop();
    await holder.close();
  }
  assert.ok(inserted.length > 0);
  const db = await sb.db('bj-master');
  try {
    const ids = (await db.query<{ id: number }>('SELECT id FROM ezdemo.tickets WHERE id >= 100000')).map((r) => Number(r.id));
    const have = new Set(ids);
    const lost = inserted.filter((id) => !have.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${inserted.length} acknowledged inserts are not in the new table`);
  } finally {
    await db.close();
  }
  for (const node of ['bj-master', 'sh-master']) await sqlOn(sb, node, 'DROP TABLE ezdemo.tickets_ezdel');
  await assertConsistent();
});
