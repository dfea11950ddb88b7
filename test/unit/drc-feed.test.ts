import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileKeyTemplate, eventJson, keysToInvalidate, originMap, parseKeyTemplates, shapeTx, takeBatch, type FeedRowEvent } from '../../src/core/drc/feed-event.js';
import type { BinlogTx } from '../../src/core/binlog/stream.js';

const all = () => true;
const origins = originMap(new Map([['bj', 1], ['sh', 2]]), 1000);

function tx(changes: BinlogTx['changes'], domain = 1): BinlogTx {
  return { gtid: `${domain}-11-7`, domain, seq: 7n, timestampMs: 1_700_000_000_000, changes };
}

test('one event per row in binlog order with its index, then the commit marker last', () => {
  const evs = shapeTx(tx([
    { kind: 'insert', schema: 'shop', table: 'users', pk: ['id'], after: { id: 1, name: 'a' } },
    { kind: 'update', schema: 'shop', table: 'users', pk: ['id'], before: { id: 1, name: 'a', n: 5 }, after: { id: 1, name: 'b', n: 5 } },
    { kind: 'delete', schema: 'shop', table: 'users', pk: ['id'], before: { id: 2, name: 'z' } },
  ]), all, origins);
  assert.deepEqual(evs.map((e) => e.type), ['insert', 'update', 'delete', 'commit']);
  assert.deepEqual(evs.slice(0, 3).map((e) => (e as FeedRowEvent).index), [0, 1, 2]);
  const up = evs[1] as FeedRowEvent;
  assert.deepEqual(up.old, { name: 'a' }, 'only the changed columns, with their old values');
  assert.deepEqual(up.key, { id: 1 });
  assert.deepEqual((evs[2] as FeedRowEvent).data, { id: 2, name: 'z' }, 'a delete carries the row it removed');
  assert.deepEqual(evs[3], { type: 'commit', gtid: '1-11-7', rows: 3, ts: 1_700_000_000_000, origin: 'bj' });
});

test('origin zone: a zone\'s own domain, and the DRC domain (source domain + offset) names the source zone', () => {
  const row = { kind: 'insert' as const, schema: 's', table: 't', pk: ['id'], after: { id: 1 } };
  assert.equal((shapeTx(tx([row], 2), all, origins)[0] as FeedRowEvent).origin, 'sh');
  assert.equal((shapeTx(tx([row], 1002), all, origins)[0] as FeedRowEvent).origin, 'sh');
  assert.equal((shapeTx(tx([row], 1001), all, origins)[0] as FeedRowEvent).origin, 'bj');
  assert.equal((shapeTx(tx([row], 77), all, origins)[0] as FeedRowEvent).origin, null);
});

test('rows of tables not followed are left out; a transaction with none gives no event at all', () => {
  const only = (s: string, t: string) => s === 'shop' && t === 'users';
  const evs = shapeTx(tx([
    { kind: 'insert', schema: 'shop', table: 'audit', pk: [], after: { x: 1 } },
    { kind: 'insert', schema: 'shop', table: 'users', pk: ['id'], after: { id: 3 } },
  ]), only, origins);
  assert.deepEqual(evs.map((e) => e.type), ['insert', 'commit']);
  assert.equal((evs[0] as FeedRowEvent).index, 0);
  assert.deepEqual(shapeTx(tx([{ kind: 'insert', schema: 'shop', table: 'audit', pk: [], after: { x: 1 } }]), only, origins), []);
});

test('JSON lines keep big integers exact and bytes as hex; a table without a key has key null', () => {
  const evs = shapeTx(tx([{ kind: 'insert', schema: 's', table: 't', pk: [], after: { big: 18446744073709551615n, b: Buffer.from([0, 255]) } }]), all, origins);
  const j = JSON.parse(eventJson(evs[0]!));
  assert.equal(j.data.big, '18446744073709551615');
  assert.equal(j.data.b, '00ff');
  assert.equal(j.key, null);
});

test('key templates render from the row; an update that changes a templated column invalidates both keys', () => {
  const t = compileKeyTemplate('order:{shop}:{id}');
  assert.deepEqual(t.columns, ['shop', 'id']);
  assert.equal(t.render({ shop: 'x', id: 12n }), 'order:x:12');
  const ev = shapeTx(tx([{ kind: 'update', schema: 's', table: 'o', pk: ['id'], before: { shop: 'x', id: 1, v: 1 }, after: { shop: 'y', id: 1, v: 2 } }]), all, origins)[0] as FeedRowEvent;
  assert.deepEqual(keysToInvalidate(ev, t), ['order:y:1', 'order:x:1']);
  const ev2 = shapeTx(tx([{ kind: 'update', schema: 's', table: 'o', pk: ['id'], before: { shop: 'x', id: 1, v: 1 }, after: { shop: 'x', id: 1, v: 2 } }]), all, origins)[0] as FeedRowEvent;
  assert.deepEqual(keysToInvalidate(ev2, t), ['order:x:1']);
  assert.throws(() => t.render({ id: 1 }), /no column shop/);
});

test('bad key templates and --redis-del specs are refused with the form to use', () => {
  assert.throws(() => compileKeyTemplate('user:'), /names no column/);
  assert.throws(() => compileKeyTemplate('user:{}'), /empty \{\}/);
  assert.throws(() => compileKeyTemplate('user:{id'), /unmatched brace/);
  assert.throws(() => parseKeyTemplates(['users=user:{id}']), /db\.table=template/);
  assert.equal(parseKeyTemplates(['shop.users=user:{id}']).get('shop.users')!.render({ id: 5 }), 'user:5');
});

test('a batch is whole transactions, at least one: a transaction larger than a batch goes alone', () => {
  const q = (sizes: number[]) => sizes.map((n) => ({ events: new Array(n).fill({}) }));
  assert.equal(takeBatch(q([3, 3, 3]), 7), 2);
  assert.equal(takeBatch(q([10001, 2]), 500), 1);
  assert.equal(takeBatch(q([2, 10001]), 500), 1);
  assert.equal(takeBatch(q([]), 500), 0);
});
