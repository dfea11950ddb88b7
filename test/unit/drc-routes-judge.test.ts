// DRC's judgement of a source write by the routing table (drc/routes-judge.ts), and the shard
// condition a whole-table verify uses (dcp/verify.ts): pure logic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveRoutes, judgeWrite, routesFromChange, RoutesBoard } from '../../src/core/drc/routes-judge.js';
import type { Routes } from '../../src/core/routes/index.js';
import { shardWhere } from '../../src/core/dcp/verify.js';

const TABLES = { 'db.t': 'shard_id' };
const META = { job: null, reason: 'test', publishedAt: '2026-01-01T00:00:00.000Z' };
const sharding = (version: number, shards: Routes['shards'], missedBy: string[] = []): Routes => ({ cluster: 'c', model: 'sharding', version, writeZone: null, state: 'active', shards, tables: TABLES, missedBy, ...META });
const global = (version: number, writeZone: string, state: Routes['state'] = 'active', missedBy: string[] = []): Routes => ({ cluster: 'c', model: 'global', version, writeZone, state, shards: [], tables: {}, missedBy, ...META });

test('sharding: a write to another zone\'s shard, a blocked shard, or no shard is illegal; the owner\'s is not', () => {
  const r = sharding(4, [{ from: 0, to: 7, zone: 'sh', state: 'active' }, { from: 8, to: 15, zone: 'bj', state: 'blocked' }, { from: 16, to: 31, zone: 'bj', state: 'active' }]);
  assert.deepEqual(judgeWrite(r, 'bj', 'db', 't', { shard_id: 3 }, {}), { shardId: 3, ownerZone: 'sh', why: 'owner' });
  assert.equal(judgeWrite(r, 'sh', 'db', 't', { shard_id: 3 }, {}), undefined);
  assert.deepEqual(judgeWrite(r, 'bj', 'db', 't', { shard_id: 9 }, {}), { shardId: 9, ownerZone: 'bj', why: 'blocked' });
  assert.equal(judgeWrite(r, 'bj', 'db', 't', { shard_id: 31 }, {}), undefined);
  assert.deepEqual(judgeWrite(r, 'bj', 'db', 't', { shard_id: 40 }, {}), { shardId: 40, ownerZone: null, why: 'no-owner' });
  assert.deepEqual(judgeWrite(r, 'bj', 'db', 't', { shard_id: null }, {}), { shardId: null, ownerZone: null, why: 'no-owner' });
  // a bigint or string from the binlog decoder
  assert.equal(judgeWrite(r, 'sh', 'db', 't', { shard_id: 5n }, {}), undefined);
  // not a shard table, and never _ezctl (DRC's heartbeat)
  assert.equal(judgeWrite(r, 'bj', 'db', 'other', { shard_id: 3 }, {}), undefined);
  assert.equal(judgeWrite(r, 'bj', '_ezctl', 'drc_heartbeat', { zone: 'bj' }, {}), undefined);
  // a document without tables: the topology file's shard tables
  assert.deepEqual(judgeWrite({ ...r, tables: {} }, 'bj', 'db', 'u', { k: 3 }, { 'db.u': 'k' }), { shardId: 3, ownerZone: 'sh', why: 'owner' });
});

test('global: a write at a zone other than the write zone is illegal; at the write zone never, blocked or not (a switch fences it with the DB block)', () => {
  assert.deepEqual(judgeWrite(global(2, 'bj'), 'sh', 'db', 'x', { id: 1 }, {}), { shardId: null, ownerZone: 'bj', why: 'not-write-zone' });
  assert.equal(judgeWrite(global(2, 'bj'), 'bj', 'db', 'x', { id: 1 }, {}), undefined);
  assert.equal(judgeWrite(global(3, 'bj', 'blocked'), 'bj', 'db', 'x', { id: 1 }, {}), undefined);
  assert.deepEqual(judgeWrite(global(3, 'bj', 'blocked'), 'sh', 'db', 'x', { id: 1 }, {}), { shardId: null, ownerZone: 'bj', why: 'not-write-zone' });
  assert.equal(judgeWrite(global(3, 'bj', 'blocked'), 'bj', '_ezctl', 'drc_heartbeat', { zone: 'bj' }, {}), undefined);
});

test("a routes row from the binlog: the cluster's only, its version column the authority, its doc as text or bytes; anything else is not one", () => {
  const doc = global(5, 'sh');
  const text = JSON.stringify(doc);
  assert.deepEqual(routesFromChange({ schema: '_ezctl', table: 'gz_routes', after: { cluster: 'c', version: 5, doc: text } }, 'c'), doc);
  assert.equal(routesFromChange({ schema: '_ezctl', table: 'gz_routes', after: { cluster: Buffer.from('c'), version: 6n, doc: Buffer.from(text) } }, 'c')?.version, 6);
  assert.equal(routesFromChange({ schema: '_ezctl', table: 'gz_routes', after: { cluster: 'other', version: 5, doc: text } }, 'c'), undefined);
  assert.equal(routesFromChange({ schema: '_ezctl', table: 'gz_routes', after: null }, 'c'), undefined);
  assert.equal(routesFromChange({ schema: 'db', table: 'gz_routes', after: { cluster: 'c', version: 5, doc: text } }, 'c'), undefined);
  assert.equal(routesFromChange({ schema: '_ezctl', table: 'gz_routes', after: { cluster: 'c', version: 5, doc: '{not json' } }, 'c'), undefined);
  assert.equal(routesFromChange({ schema: '_ezctl', table: 'gz_routes', after: { cluster: 'c', version: 5, doc: JSON.stringify({ ...doc, cluster: 'd' }) } }, 'c'), undefined);
});

test('a version a zone missed judges its writes once seen anywhere, unless its own stream has a newer one', () => {
  const board = new RoutesBoard();
  const stream = sharding(2, [{ from: 0, to: 31, zone: 'bj', state: 'active' }]);
  assert.deepEqual(effectiveRoutes(stream, board, 'bj'), { routes: stream, missed: false });
  const moved = sharding(3, [{ from: 0, to: 31, zone: 'sh', state: 'active' }], ['bj']);
  board.seen(moved);
  board.seen(sharding(1, [], ['bj'])); // an older one changes nothing
  assert.deepEqual(effectiveRoutes(stream, board, 'bj'), { routes: moved, missed: true });
  assert.deepEqual(effectiveRoutes(stream, board, 'sh'), { routes: stream, missed: false });
  const later = sharding(4, [{ from: 0, to: 31, zone: 'sh', state: 'active' }]);
  assert.deepEqual(effectiveRoutes(later, board, 'bj'), { routes: later, missed: false });
  assert.equal(board.newest?.version, 3);
});

test('the shard condition of a whole-table verify: quoted column, integer bounds', () => {
  assert.equal(shardWhere('shard_id', [[0, 7], [9, 9]]), '`shard_id` BETWEEN 0 AND 7 OR `shard_id` = 9');
  assert.equal(shardWhere('we`ird', [[1, 2]]), '`we``ird` BETWEEN 1 AND 2');
});
