// The verify the zone switches run (dcp verifyRows), against a real two-zone sandbox with DRC
// off (nothing carries a write to the other zone, nothing repairs a difference): a window finds a
// row changed in one zone only, and not one changed alike in both; a shard restriction leaves out
// what is outside its ranges; check incr's stored positions (the cron's last verified point) stay
// as they were unless saveAsVerified asks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { show } from '../helpers/cli.js';
import { startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { sqlOn } from '../helpers/drc.js';
import { makeCtx, type Ctx } from '../../src/core/context.js';
import { binlogPositions, lastVerifiedPositions, openVerifier, verifyRows } from '../../src/core/dcp/index.js';
import type { EzError } from '../../src/core/exit.js';
import { blockWrites } from '../../src/core/db/write-block.js';

let sb: TestSandbox;
let ctx: Ctx;
const SHARD_TABLES = { 'ezdemo.users': 'shard_id', 'ezdemo.orders': 'shard_id' };

const both = async (...stmts: string[]) => {
  for (const m of ['bj-master', 'sh-master']) await sqlOn(sb, m, ...stmts);
};

async function incrPositions(): Promise<Array<{ zone: string; position: string }>> {
  const db = await sb.db('bj-master');
  try {
    return await db.query("SELECT zone, position FROM _ezctl.check_incr_position WHERE cluster = 'demo' ORDER BY zone");
  } finally {
    await db.close();
  }
}

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0, load: 500 });
  ctx = makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
  // the cron's last verified point: a first check incr run records each zone's position
  const r = await sb.run(['--json', 'check', 'incr', '--until-now']);
  assert.equal(r.code, 0, show(r));
});

after(async () => {
  await sb?.down();
});

test('a window finds a row changed in one zone only (table, key, columns); the same change in both zones is consistent; check incr positions untouched', async () => {
  const stored = await incrPositions();
  assert.equal(stored.length, 2, JSON.stringify(stored));
  const from = await binlogPositions(ctx, 'demo', ['bj', 'sh']);
  assert.deepEqual(Object.keys(from).sort(), ['bj', 'sh']);
  await sqlOn(sb, 'sh-master', `UPDATE ezdemo.users SET name = 'only-in-sh', drc_ts = drc_ts WHERE id = 5`);
  await both(`UPDATE ezdemo.merchants SET name = 'alike', drc_ts = drc_ts WHERE id = 6`);

  const r = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from }, settleMs: 0 });
  assert.equal(r.consistent, false);
  assert.equal(r.mode, 'window');
  assert.deepEqual(r.differences.map((d) => [d.table, d.key, d.columns]), [['ezdemo.users', { id: '5' }, ['name']]], JSON.stringify(r.differences));
  assert.deepEqual(r.differences[0]!.values, { bj: { name: r.differences[0]!.values!.bj!.name }, sh: { name: 'only-in-sh' } });
  // both keys were compared (users id 5 from sh's binlog, merchants id 6 from both)
  assert.equal(r.keysCompared, 2);
  assert.equal(r.tablesCompared, 2);
  // row images read (an update has two): sh's two updates, bj's one
  assert.equal(r.window!.sh!.changes, 4);
  assert.equal(r.window!.bj!.changes, 2);
  // the window's end: each zone's position now (default `to`), the next verified point
  assert.deepEqual(r.positions, await binlogPositions(ctx, 'demo', ['bj', 'sh']));
  assert.deepEqual(await incrPositions(), stored, 'a verify does not move check incr positions');

  // make the zones alike again: the same window is consistent
  await sqlOn(sb, 'bj-master', `UPDATE ezdemo.users SET name = 'only-in-sh', drc_ts = drc_ts WHERE id = 5`);
  const again = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from }, settleMs: 0 });
  assert.equal(again.consistent, true, JSON.stringify(again.differences));
  assert.deepEqual(again.differences, []);
  assert.equal(again.keysCompared, 2);

  // a window that ends before the change (to = from) reads nothing
  const none = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from, to: from }, settleMs: 0 });
  assert.equal(none.consistent, true);
  assert.equal(none.keysCompared, 0);
  assert.deepEqual(await incrPositions(), stored);
});

test('a row missing in one zone is named with the zone that lacks it; whole-table mode finds it too', async () => {
  const from = await binlogPositions(ctx, 'demo', ['bj', 'sh']);
  await sqlOn(sb, 'bj-master', 'DELETE FROM ezdemo.riders WHERE id = 7');
  const r = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from }, settleMs: 0 });
  assert.deepEqual(r.differences.map((d) => [d.table, d.key, d.missingIn]), [['ezdemo.riders', { id: 7 }, 'bj']]);
  const full = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], tables: 'ezdemo.riders', settleMs: 0 });
  assert.equal(full.mode, 'tables');
  assert.deepEqual(full.differences.map((d) => [d.table, d.key, d.missingIn]), [['ezdemo.riders', { id: 7 }, 'bj']]);
  assert.ok(full.keysCompared > 10, String(full.keysCompared));
  await sqlOn(sb, 'sh-master', 'DELETE FROM ezdemo.riders WHERE id = 7');
});

test('a shard restriction compares only those shards\' rows: a difference outside the ranges is left out', async () => {
  const from = await binlogPositions(ctx, 'demo', ['bj', 'sh']);
  // users: shard_id = id % 64; id 3 is shard 3, id 40 shard 40; orders 131 is shard 3
  await sqlOn(sb, 'sh-master',
    `UPDATE ezdemo.users SET balance = balance + 1, drc_ts = drc_ts WHERE id = 3`,
    `UPDATE ezdemo.users SET balance = balance + 1, drc_ts = drc_ts WHERE id = 40`,
    `UPDATE ezdemo.orders SET tip = 99, drc_ts = drc_ts WHERE id = 131`,
    `UPDATE ezdemo.merchants SET name = 'not-a-shard-table', drc_ts = drc_ts WHERE id = 9`,
  );
  const inRange = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from }, shards: { ranges: [[0, 7]], tables: SHARD_TABLES }, settleMs: 0 });
  assert.deepEqual(inRange.differences.map((d) => `${d.table} ${JSON.stringify(d.key)} ${d.columns.join(',')}`).sort(), ['ezdemo.orders {"id":"131"} tip', 'ezdemo.users {"id":"3"} balance']);
  const outside = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from }, shards: { ranges: [[8, 31], [41, 63]], tables: SHARD_TABLES }, settleMs: 0 });
  assert.equal(outside.consistent, true, JSON.stringify(outside.differences));
  assert.equal(outside.keysCompared, 0);
  // whole tables, restricted to the shards by a condition on the shard column
  const full = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], shards: { ranges: [[40, 40]], tables: SHARD_TABLES }, settleMs: 0 });
  assert.deepEqual(full.differences.map((d) => `${d.table} ${JSON.stringify(d.key)}`), ['ezdemo.users {"id":"40"}']);
  assert.equal(full.tablesCompared, 2);
  // without the restriction all four are found (the merchants row too)
  const all = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from }, settleMs: 0 });
  assert.equal(all.differences.length, 4, JSON.stringify(all.differences));
  await sqlOn(sb, 'bj-master',
    `UPDATE ezdemo.users SET balance = balance + 1, drc_ts = drc_ts WHERE id IN (3, 40)`,
    `UPDATE ezdemo.orders SET tip = 99, drc_ts = drc_ts WHERE id = 131`,
    `UPDATE ezdemo.merchants SET name = 'not-a-shard-table', drc_ts = drc_ts WHERE id = 9`,
  );
});

test('a window ends at its `to`: a change after it is left out, though the reader gets it in the same burst', async () => {
  const from = await binlogPositions(ctx, 'demo', ['bj', 'sh']);
  await sqlOn(sb, 'sh-master', "UPDATE ezdemo.riders SET name = 'in the window', drc_ts = drc_ts WHERE id = 21");
  const to = await binlogPositions(ctx, 'demo', ['bj', 'sh']);
  await sqlOn(sb, 'sh-master', "UPDATE ezdemo.riders SET name = 'after the window', drc_ts = drc_ts WHERE id = 22");
  const r = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from, to }, settleMs: 0 });
  assert.deepEqual(r.differences.map((d) => d.key), [{ id: 21 }]);
  assert.equal(r.keysCompared, 1);
  assert.deepEqual(r.positions, to);
  // the next window, from there, has the other
  const next = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from: to }, settleMs: 0 });
  assert.deepEqual(next.differences.map((d) => d.key), [{ id: 22 }]);
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.riders SET name = 'in the window', drc_ts = drc_ts WHERE id = 21", "UPDATE ezdemo.riders SET name = 'after the window', drc_ts = drc_ts WHERE id = 22");
});

test('a window verify runs while the source holds the write block (read_only + BACKUP STAGE BLOCK_COMMIT), as in a switch', async () => {
  const from = await binlogPositions(ctx, 'demo', ['bj', 'sh']);
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.riders SET name = 'before the block', drc_ts = drc_ts WHERE id = 31");
  const ep = await ctx.endpoint((await ctx.topology()).master('demo', 'bj'));
  const block = await blockWrites(ep, { lockWaitMs: 5000 });
  try {
    const final = await block.finalPosition();
    const r = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from, to: { bj: final } }, settleMs: 0, signal: AbortSignal.timeout(30_000) });
    assert.deepEqual(r.differences.map((d) => [d.table, d.key, d.columns]), [['ezdemo.riders', { id: 31 }, ['name']]]);
    assert.equal(r.positions.bj, final);
  } finally {
    await block.release({ restoreReadOnly: true });
  }
  await sqlOn(sb, 'sh-master', "UPDATE ezdemo.riders SET name = 'before the block', drc_ts = drc_ts WHERE id = 31");
});

test('a verifier (opened before the block) runs verify after verify on what it read once; one at a time; closed, it refuses', async () => {
  const v = await openVerifier(ctx, { cluster: 'demo', zones: ['bj', 'sh'] });
  try {
    const from = await binlogPositions(ctx, 'demo', ['bj', 'sh']);
    await sqlOn(sb, 'sh-master', "UPDATE ezdemo.riders SET name = 'verifier', drc_ts = drc_ts WHERE id = 41");
    const first = await v.verify({ window: { from }, settleMs: 0 });
    assert.deepEqual(first.differences.map((d) => d.key), [{ id: 41 }]);
    const both = await Promise.allSettled([v.verify({ window: { from }, settleMs: 0 }), v.verify({ window: { from }, settleMs: 0 })]);
    assert.equal(both[0].status, 'fulfilled');
    assert.match(String((both[1] as PromiseRejectedResult).reason), /one verify at a time/);
    await sqlOn(sb, 'bj-master', "UPDATE ezdemo.riders SET name = 'verifier', drc_ts = drc_ts WHERE id = 41");
    const second = await v.verify({ window: { from: first.positions }, settleMs: 0 });
    assert.equal(second.consistent, true, JSON.stringify(second.differences));
    assert.equal(second.keysCompared, 1);
    const shard = await v.verify({ shards: { ranges: [[41, 41]], tables: { 'ezdemo.riders': 'shard_id' } }, settleMs: 0 });
    assert.equal(shard.consistent, true);
    assert.equal(shard.tablesCompared, 1);
  } finally {
    await v.close();
  }
  await assert.rejects(v.verify({ window: { from: {} as Record<string, string> }, settleMs: 0 }), /no start position/);
  await assert.rejects(v.verify({ tables: 'ezdemo.riders', settleMs: 0 }), /closed/);
});

test('a verifier following the binlogs from a position (a switch after its pre-verify): the window verify from there takes what was read, with the same result; another start reads for itself', async () => {
  const v = await openVerifier(ctx, { cluster: 'demo', zones: ['bj', 'sh'] });
  try {
    const from = await binlogPositions(ctx, 'demo', ['bj', 'sh']);
    v.follow(from);
    await sqlOn(sb, 'sh-master', `UPDATE ezdemo.users SET name = 'followed-sh', drc_ts = drc_ts WHERE id = 21`);
    await both(`UPDATE ezdemo.merchants SET name = 'followed-both', drc_ts = drc_ts WHERE id = 22`);
    const r = await v.verify({ window: { from }, settleMs: 0 });
    assert.equal(r.window!.bj!.followed, true, JSON.stringify(r.window));
    assert.equal(r.window!.sh!.followed, true, JSON.stringify(r.window));
    assert.deepEqual(r.differences.map((d) => [d.table, d.key, d.columns]), [['ezdemo.users', { id: '21' }, ['name']]], JSON.stringify(r.differences));
    assert.equal(r.keysCompared, 2);
    assert.equal(r.window!.sh!.changes, 4);
    assert.equal(r.window!.bj!.changes, 2);
    // the followers are used once: the same window again is read by the verify itself, alike
    const again = await v.verify({ window: { from }, settleMs: 0 });
    assert.equal(again.window!.sh!.followed, undefined);
    assert.deepEqual(again.differences.map((d) => [d.table, d.key]), [['ezdemo.users', { id: '21' }]]);
    assert.equal(again.window!.sh!.changes, 4);
    // followed from elsewhere: not taken for this window
    v.follow(await binlogPositions(ctx, 'demo', ['bj', 'sh']));
    const other = await v.verify({ window: { from }, settleMs: 0 });
    assert.equal(other.window!.bj!.followed, undefined);
    assert.equal(other.keysCompared, 2);
    await sqlOn(sb, 'bj-master', `UPDATE ezdemo.users SET name = 'followed-sh', drc_ts = drc_ts WHERE id = 21`);
  } finally {
    await v.close();
  }
});

test('lastVerifiedPositions is where check incr stopped; saveAsVerified moves it only after a consistent window that starts there', async () => {
  const last = await lastVerifiedPositions(ctx, 'demo', ['bj', 'sh']);
  const stored = await incrPositions();
  assert.deepEqual(last, Object.fromEntries(stored.map((s) => [s.zone, s.position])));
  // from the last verified point: every change since (the earlier tests' too, made alike again)
  const r = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from: last! }, saveAsVerified: true, settleMs: 0 });
  assert.equal(r.consistent, true, JSON.stringify(r.differences));
  assert.deepEqual(r.savedAsVerified, { saved: true });
  assert.deepEqual(await lastVerifiedPositions(ctx, 'demo', ['bj', 'sh']), r.positions);
  // a window that starts after the stored point would skip what lies between: not saved
  await both(`UPDATE ezdemo.merchants SET name = 'gap', drc_ts = drc_ts WHERE id = 11`);
  const later = await binlogPositions(ctx, 'demo', ['bj', 'sh']);
  await both(`UPDATE ezdemo.merchants SET name = 'gap2', drc_ts = drc_ts WHERE id = 11`);
  const gap = await verifyRows(ctx, { cluster: 'demo', zones: ['bj', 'sh'], window: { from: later }, saveAsVerified: true, settleMs: 0 });
  assert.equal(gap.consistent, true);
  assert.equal(gap.savedAsVerified?.saved, false);
  assert.match(gap.savedAsVerified!.reason!, /after check incr's position/);
  assert.deepEqual(await lastVerifiedPositions(ctx, 'demo', ['bj', 'sh']), r.positions);
});

test('bad input is refused before anything is read', async () => {
  const bad = async (o: Parameters<typeof verifyRows>[1], re: RegExp) => assert.rejects(verifyRows(ctx, o), (e: EzError) => e.exitCode === 2 && re.test(e.message));
  await bad({ cluster: 'demo', zones: ['bj', 'bj'] }, /two different zones/);
  await bad({ cluster: 'demo', zones: ['bj', 'xx'] }, /no zone "xx"/);
  await bad({ cluster: 'demo', zones: ['bj', 'sh'], window: { from: { bj: '' } } }, /no start position for zone sh/);
  await bad({ cluster: 'demo', zones: ['bj', 'sh'], shards: { ranges: [[5, 2]], tables: SHARD_TABLES } }, /not a shard range/);
  await bad({ cluster: 'demo', zones: ['bj', 'sh'], tables: 'ezdemo.nosuch' }, /does not exist/);
  await bad({ cluster: 'demo', zones: ['bj', 'sh'], window: { from: { bj: '', sh: '' } }, tables: 'ezdemo.users', saveAsVerified: true }, /saveAsVerified needs/);
});
