// gz move's pure parts: the owners of the shards asked for (one source per move), and whether a
// table has a set of shards at a zone in a state (the flip's check, the rollback's no-op).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ownersOf, allAt } from '../../src/core/gz/move.js';
import type { Routes } from '../../src/core/routes/index.js';

const routes = (shards: Routes['shards']): Routes => ({ cluster: 'c', model: 'sharding', version: 3, writeZone: null, state: 'active', shards, tables: {}, missedBy: [], job: null, reason: 'x', publishedAt: '' });
const r = routes([
  { from: 0, to: 15, zone: 'bj', state: 'active' },
  { from: 16, to: 31, zone: 'gz', state: 'blocked' },
  { from: 32, to: 63, zone: 'sh', state: 'active' },
]);

test('ownersOf: the shards asked for, grouped by owner, ranges merged; unowned ones under ""', () => {
  assert.deepEqual([...ownersOf(r, [[10, 20], [40, 40], [41, 45]])], [['bj', [[10, 15]]], ['gz', [[16, 20]]], ['sh', [[40, 45]]]]);
  assert.deepEqual([...ownersOf(r, [[60, 70]])], [['sh', [[60, 63]]], ['', [[64, 70]]]]);
  assert.deepEqual([...ownersOf(routes([{ from: 0, to: 3, zone: 'bj', state: 'active' }, { from: 8, to: 9, zone: 'bj', state: 'active' }]), [[0, 9]])], [['bj', [[0, 3], [8, 9]]], ['', [[4, 7]]]]);
});

test('allAt: every shard of the ranges at that zone in that state', () => {
  assert.equal(allAt(r, [[0, 15]], 'bj', 'active'), true);
  assert.equal(allAt(r, [[0, 16]], 'bj', 'active'), false);
  assert.equal(allAt(r, [[16, 20], [30, 31]], 'gz', 'blocked'), true);
  assert.equal(allAt(r, [[16, 20]], 'gz', 'active'), false);
  assert.equal(allAt(r, [[60, 70]], 'sh', 'active'), false);
});

test('renderGzMove: a dead-source run shows the window, what may not have arrived and the new owner', async () => {
  const { renderGzMove } = await import('../../src/core/gz/render-move.js');
  const text = renderGzMove({
    command: 'move', mode: 'run', cluster: 'demo', from: 'bj', to: 'sh', jobId: 'J', outcome: 'done', exitCode: 0, message: null, refusals: [],
    window: { blockMs: 10, drainMs: 20, verifyMs: null, flipMs: 5, totalMs: 40, blockedAt: null, flippedAt: null }, drcLagAtBlockMs: null, finalPosition: null, routesVersion: 7, steps: [],
    result: { jobId: 'J', kind: 'gz-move', outcome: 'done', exitCode: 0, ponr: 'flip', ponrPassed: true, resumed: false, timeline: [], hooks: [], totalMs: 50, journal: 'x' },
    assessment: null, shards: '0-7',
    outcomeDetail: { source: 'bj-master', target: 'sh-master', clients: { acked: ['w1'], stale: ['w2'] }, verify: null, deadSource: { lastAppliedAtTarget: '1-101-5', lastReadPosition: null, note: 'n' } },
  });
  assert.match(text, /write-unavailable window: 40 ms \(block 10 ms, drain 20 ms, verify -, flip 5 ms\)/);
  assert.match(text, /last position of bj DRC applied at sh: 1-101-5/);
  assert.match(text, /stale, not waited for: w2/);
  assert.match(text, /sh owns shards 0-7 of demo/);
});
