// The routing table's pure parts: shard lists, splitting and merging ranges, the route of a write,
// the version conflict rule, where the clients stand against a version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EzError } from '../../src/core/exit.js';
import { ackState, describeRoutes, formatShardList, newerThan, normalizeShards, parseRoutesDoc, parseShardList, routeOf, withShards, type Routes } from '../../src/core/routes/index.js';

const sharding = (shards: Routes['shards']): Routes => ({
  cluster: 'c',
  model: 'sharding',
  version: 3,
  writeZone: null,
  state: 'active',
  shards,
  tables: { 'd.t': 'shard_id' },
  missedBy: [],
  job: null,
  reason: 'test',
  publishedAt: '2026-01-01T00:00:00.000Z',
});
const global = (zone: string, state: 'active' | 'blocked' = 'active'): Routes => ({ ...sharding([]), model: 'global', writeZone: zone, state, tables: {} });

test('parseShardList: ids and ranges, sorted, merged; bad input is exit 2', () => {
  assert.deepEqual(parseShardList('0-31,40'), [[0, 31], [40, 40]]);
  assert.deepEqual(parseShardList(' 40 , 0-31 '), [[0, 31], [40, 40]]);
  assert.deepEqual(parseShardList('0-3,4-7,6,10'), [[0, 7], [10, 10]]);
  for (const bad of ['', ',', '1-', 'a', '5-2', '0-3,,4', '-1']) {
    assert.throws(() => parseShardList(bad), (e: unknown) => e instanceof EzError && e.exitCode === 2, bad);
  }
  assert.equal(formatShardList(parseShardList('0-31,40')), '0-31,40');
});

test('withShards splits a range, changes the owner or state, and merges equal neighbours back', () => {
  const r = sharding([{ from: 0, to: 31, zone: 'bj', state: 'active' }, { from: 32, to: 63, zone: 'sh', state: 'active' }]);
  const blocked = withShards(r, [[8, 15]], { state: 'blocked' });
  assert.deepEqual(blocked.shards, [
    { from: 0, to: 7, zone: 'bj', state: 'active' },
    { from: 8, to: 15, zone: 'bj', state: 'blocked' },
    { from: 16, to: 31, zone: 'bj', state: 'active' },
    { from: 32, to: 63, zone: 'sh', state: 'active' },
  ]);
  assert.equal(blocked.version, 3, 'version untouched');
  assert.equal(r.shards.length, 2, 'the input is not changed');
  const moved = withShards(blocked, [[8, 15]], { zone: 'sh', state: 'active' });
  assert.deepEqual(moved.shards.map((s) => [s.from, s.to, s.zone, s.state]), [[0, 7, 'bj', 'active'], [8, 15, 'sh', 'active'], [16, 31, 'bj', 'active'], [32, 63, 'sh', 'active']]);
  const back = withShards(moved, [[8, 15]], { zone: 'bj' });
  assert.deepEqual(back.shards, r.shards, 'equal neighbours merge again');
  // a range across two owners, then the whole of it to one zone
  const across = withShards(r, [[30, 33]], { zone: 'sh' });
  assert.deepEqual(across.shards.map((s) => [s.from, s.to, s.zone]), [[0, 29, 'bj'], [30, 63, 'sh']]);
  // shards nobody owned: taken by the named zone, refused without one
  const grown = withShards(r, [[64, 70]], { zone: 'sh' });
  assert.deepEqual(grown.shards.at(-1), { from: 32, to: 70, zone: 'sh', state: 'active' });
  assert.throws(() => withShards(r, [[64, 70]], { state: 'blocked' }), /no owner/);
  assert.throws(() => withShards(global('bj'), [[0, 1]], { zone: 'sh' }), /global cluster/);
});

test('normalizeShards sorts, merges adjacent equal ranges, refuses overlaps', () => {
  assert.deepEqual(normalizeShards([{ from: 10, to: 19, zone: 'a', state: 'active' }, { from: 0, to: 9, zone: 'a', state: 'active' }]), [{ from: 0, to: 19, zone: 'a', state: 'active' }]);
  assert.equal(normalizeShards([{ from: 0, to: 9, zone: 'a', state: 'active' }, { from: 10, to: 19, zone: 'a', state: 'blocked' }]).length, 2);
  assert.throws(() => normalizeShards([{ from: 0, to: 9, zone: 'a', state: 'active' }, { from: 9, to: 19, zone: 'b', state: 'active' }]), /overlap/);
});

test('routeOf: the write zone of a global cluster, the owner of a shard', () => {
  assert.deepEqual(routeOf(global('bj'), 5), { zone: 'bj', state: 'active' });
  assert.deepEqual(routeOf(global('sh', 'blocked')), { zone: 'sh', state: 'blocked' });
  assert.equal(routeOf({ ...global('bj'), writeZone: null }), undefined);
  const r = withShards(sharding([{ from: 0, to: 31, zone: 'bj', state: 'active' }, { from: 32, to: 63, zone: 'sh', state: 'active' }]), [[40, 41]], { state: 'blocked' });
  assert.deepEqual(routeOf(r, 0), { zone: 'bj', state: 'active' });
  assert.deepEqual(routeOf(r, 31), { zone: 'bj', state: 'active' });
  assert.deepEqual(routeOf(r, 40), { zone: 'sh', state: 'blocked' });
  assert.deepEqual(routeOf(r, 63), { zone: 'sh', state: 'active' });
  assert.equal(routeOf(r, 64), undefined);
  assert.equal(routeOf(r), undefined, 'a sharding write needs its shard');
});

test('the version conflict rule: a higher version anywhere refuses the publish; equal or lower, or none, does not', () => {
  assert.deepEqual(newerThan(3, { bj: 3, sh: 2, gz: null }), []);
  assert.deepEqual(newerThan(3, { bj: 4, sh: 3 }), [{ zone: 'bj', version: 4 }]);
  assert.deepEqual(newerThan(0, { bj: null, sh: null }), []);
  assert.deepEqual(newerThan(0, { bj: 1 }), [{ zone: 'bj', version: 1 }]);
});

test('ackState: acked at or past the version, behind while heard from, stale when silent', () => {
  const c = (client: string, version: number, ageMs: number) => ({ client, zone: 'bj', version, inFlight: 0, ageMs, host: 'h', pid: 1 });
  const w = ackState([c('a', 5, 100), c('b', 4, 200), c('s', 3, 9000)], 5, 5000);
  assert.deepEqual(w.acked, ['a']);
  assert.deepEqual(w.behind.map((b) => b.client), ['b']);
  assert.deepEqual(w.stale, ['s']);
  assert.equal(w.reached, false);
  assert.equal(ackState([c('a', 6, 0), c('s', 1, 6000)], 5, 5000).reached, true);
  assert.equal(ackState([], 5, 5000).reached, true, 'no clients: nothing to wait for');
});

test('a stored document is checked, not trusted', () => {
  const r = parseRoutesDoc(JSON.stringify(sharding([{ from: 0, to: 1, zone: 'bj', state: 'blocked' }])), 9);
  assert.equal(r.version, 9, 'the row version is the truth');
  assert.equal(r.shards[0]!.state, 'blocked');
  assert.throws(() => parseRoutesDoc('{', 1), /not JSON/);
  assert.throws(() => parseRoutesDoc('{"model":"x"}', 1), /not a routing table/);
  assert.equal(describeRoutes(r), 'v9 sharding: 0-1 bj (blocked)');
  assert.equal(describeRoutes(global('sh', 'blocked')), 'v3 global: writes to sh (blocked)');
});
