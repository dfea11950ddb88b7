// dbus verify, pure parts: which tables a verify compares (each mapping's source and target sides
// in their own names, --tables by target or source name, a merged shard against the target rows its rule places), a compare's row
// difference as the move names it (key in order, target column names, why), the exit code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyPairs, differenceOf, verifyExitCode, type DbusDifference } from '../../src/core/dbus/verify.js';
import type { DbusMapping } from '../../src/core/dbus/plan.js';
import type { DbusMove } from '../../src/core/dbus/spec.js';
import type { RowDiff } from '../../src/core/dcp/index.js';

const move: DbusMove = {
  name: 'mv',
  sources: [{ label: 'old' }],
  target: { label: 'new' },
  createTarget: true,
  tables: [
    { target: { schema: 'shop2', table: 'orders' }, sources: [{ source: 'old', table: { schema: 'shop', table: 'orders' } }], where: "region = 'cn'" },
    { target: { schema: 'shop', table: 'users' }, sources: [{ source: 'old', table: { schema: 'shop', table: 'users' } }] },
  ],
};
const orders: DbusMapping = { label: 'old', source: { schema: 'shop', table: 'orders' }, target: { schema: 'shop2', table: 'orders' }, columns: [{ from: 'id', to: 'order_id' }, { from: 'amt', to: 'amount' }, { from: 'region', to: 'region' }], key: ['id'] };
const users: DbusMapping = { label: 'old', source: { schema: 'shop', table: 'users' }, target: { schema: 'shop', table: 'users' }, columns: [{ from: 'a', to: 'a' }, { from: 'b', to: 'b' }], key: ['a', 'b'] };

test('verify pairs: each side in its own names, the source\'s where filter on the source side only', () => {
  const { pairs, problems } = verifyPairs(move, [orders, users]);
  assert.deepEqual(problems, []);
  assert.equal(pairs.length, 2);
  const p = pairs[0]!;
  assert.equal(p.table, 'shop2.orders');
  assert.equal(p.source, 'old:shop.orders');
  assert.deepEqual(p.source_, { schema: 'shop', table: 'orders', columns: ['id', 'amt', 'region'], key: ['id'], where: "region = 'cn'" });
  assert.deepEqual(p.target, { schema: 'shop2', table: 'orders', columns: ['order_id', 'amount', 'region'], key: ['order_id'] });
  assert.equal('where' in pairs[1]!.source_, false);
});

test('verify pairs: --tables by target name, source name or label:source; an unknown name is a problem listing the move\'s tables', () => {
  assert.deepEqual(verifyPairs(move, [orders, users], ['shop2.orders']).pairs.map((p) => p.table), ['shop2.orders']);
  assert.deepEqual(verifyPairs(move, [orders, users], ['shop.orders']).pairs.map((p) => p.table), ['shop2.orders']);
  assert.deepEqual(verifyPairs(move, [orders, users], ['old:shop.users']).pairs.map((p) => p.table), ['shop.users']);
  const bad = verifyPairs(move, [orders, users], ['shop.nope', 'shop.users']);
  assert.deepEqual(bad.problems, ['--tables: shop.nope is not moved by mv (its tables: shop2.orders, shop.users)']);
});

test('verify pairs of a shard-column merge: each shard against the target rows of its value (a placeholder), the shard column out of both sides; rows of no shard asked for; a shard without a value refused', () => {
  const merge: DbusMove = {
    ...move,
    tables: [{ target: { schema: 's', table: 'o' }, sources: [{ source: 'old', table: { schema: 's', table: 'o_0' } }, { source: 'old', table: { schema: 's', table: 'o_1' } }], merge: { kind: 'shard-column', column: 'shard', values: { o_0: 0, o_1: 'b' } }, declaredAt: 'dbus.moves.mv.tables.0' }],
  };
  const m = (t: string, v?: string | number): DbusMapping => ({ label: 'old', source: { schema: 's', table: t }, target: { schema: 's', table: 'o' }, columns: [{ from: 'id', to: 'id' }, { from: 'v', to: 'v' }, { from: 'shard', to: 'shard' }], key: ['shard', 'id'], ...(v !== undefined ? { constants: { shard: v } } : {}) });
  const r = verifyPairs(merge, [m('o_0', 0), m('o_1', 'b')]);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.pairs.map((p) => [p.source, p.shard, p.source_.columns, p.source_.key, p.target.where, p.target.whereParams, p.target.whereNarrowsKey]), [
    ['old:s.o_0', 'shard = 0', ['id', 'v'], ['id'], '`shard` = ?', [0], true],
    ['old:s.o_1', 'shard = "b"', ['id', 'v'], ['id'], '`shard` = ?', ['b'], true],
  ]);
  assert.deepEqual(r.unowned.map((u) => [u.table, u.where, u.params, u.key]), [['s.o', '`shard` IS NULL OR `shard` NOT IN (?, ?)', [0, 'b'], ['shard', 'id']]]);
  const without = verifyPairs(merge, [m('o_0', 0), m('o_1')]);
  assert.equal(without.pairs.length, 1);
  assert.match(without.problems[0]!, /^s\.o \(dbus\.moves\.mv\.tables\.0\): old:s\.o_1 carries its own shard: .*merge\.values/);
  const plain: DbusMove = { ...merge, tables: [{ ...merge.tables[0]!, merge: undefined }] };
  assert.match(verifyPairs(plain, [m('o_0'), m('o_1')]).problems[0]!, /without a merge rule: which target rows came from which shard cannot be told/);
});

test('verify pairs of an offset merge: each shard owns the target keys from its offset up to the next one (plan.ts offsetRanges), its keys shifted back', () => {
  const merge: DbusMove = {
    ...move,
    tables: [{ target: { schema: 's', table: 'p' }, sources: ['p_0', 'p_1', 'p_2'].map((t) => ({ source: 'old', table: { schema: 's', table: t } })), merge: { kind: 'offset', column: 'id', offsets: { p_0: 0, p_1: 1000, p_2: 2000 } } }],
  };
  const m = (t: string, off: number): DbusMapping => ({ label: 'old', source: { schema: 's', table: t }, target: { schema: 's', table: 'p' }, columns: [{ from: 'id', to: 'id' }, { from: 'v', to: 'v' }], key: ['id'], offsets: { id: off } });
  // given in another order than their offsets
  const r = verifyPairs(merge, [m('p_2', 2000), m('p_0', 0), m('p_1', 1000)]);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.unowned, []);
  assert.deepEqual(r.pairs.map((p) => [p.source, p.target.where, p.target.whereParams, p.target.keyShift]), [
    ['old:s.p_2', '`id` >= ?', [2000n], 2000n],
    ['old:s.p_0', '`id` < ?', [1000n], undefined],
    ['old:s.p_1', '`id` >= ? AND `id` < ?', [1000n, 2000n], 1000n],
  ]);
  const composite = verifyPairs(merge, [{ ...m('p_0', 0), key: ['id', 'v'] }]);
  assert.match(composite.problems[0]!, /one-column integer key, the offset's column \(id\)/);
});

test('a row difference as the move names it: key in key order, the target\'s column names and values, why; missing on either side', () => {
  const p = verifyPairs(move, [orders])!.pairs[0]!;
  const labels = { source: 'old', target: 'new' };
  const changed: RowDiff = { kind: 'changed', key: { id: 7 }, columns: ['amt'], zones: { old: { present: true, values: { amt: '1.50' } }, new: { present: true, values: { amt: '2.00' } } } };
  const d = differenceOf(p, changed, labels);
  assert.deepEqual(d, {
    table: 'shop2.orders', source: 'old:shop.orders', key: [7], keyColumns: ['order_id'], kind: 'changed',
    why: 'differs in amount (source "1.50", target "2.00")', columns: ['amount'], values: { source: { amount: '1.50' }, target: { amount: '2.00' } },
  } satisfies DbusDifference);
  const missing = differenceOf(p, { kind: 'missing', key: { id: 9 }, columns: [], zones: { old: { present: true }, new: { present: false } } }, labels);
  assert.equal(missing.kind, 'missing-at-target');
  assert.equal(missing.why, 'missing at the target (the source old:shop.orders has it)');
  const extra = differenceOf(p, { kind: 'missing', key: { id: 10 }, columns: [], zones: { old: { present: false }, new: { present: true } }, unstable: true }, labels);
  assert.equal(extra.kind, 'only-at-target');
  assert.equal(extra.unstable, true);
  assert.match(extra.why, /^at the target only: not at the source old:shop\.orders \(still changing when the re-checks ran out\)$/);
  const users2 = verifyPairs(move, [users]).pairs[0]!;
  assert.deepEqual(differenceOf(users2, { kind: 'missing', key: { b: 2, a: 'x' }, columns: [], zones: { old: { present: true }, new: { present: false } } }, labels).key, ['x', 2]);
});

test('exit code: 0 alike, 1 rows differ, 4 nothing different found but a table not compared', () => {
  const d = (kind: DbusDifference['kind']): DbusDifference => ({ table: 't', source: 's', key: [], keyColumns: [], why: '', kind });
  assert.equal(verifyExitCode({ differences: [], differencesTotal: 0 }), 0);
  assert.equal(verifyExitCode({ differences: [d('changed')], differencesTotal: 1 }), 1);
  assert.equal(verifyExitCode({ differences: [d('not-compared'), d('changed')], differencesTotal: 2 }), 1);
  assert.equal(verifyExitCode({ differences: [d('not-compared')], differencesTotal: 1 }), 4);
  // more differences than listed still count
  assert.equal(verifyExitCode({ differences: [d('not-compared')], differencesTotal: 5 }), 1);
});
