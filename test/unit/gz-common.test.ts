// gz/common.ts's pure parts: the write-unavailable window split from the steps' journaled spans,
// the own-domain GTID of a position, and which lease is a dead switch a rerun resumes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { windowOf, ownGtid, deadJobOf, leaseRefusals } from '../../src/core/gz/common.js';
import type { LeaseRow } from '../../src/core/job/lease.js';

const groups = { block: ['block-routes', 'drain-clients', 'block-writes', 'final-position'], drain: ['drain'], verify: ['verify', 'reverse-drc'], flip: ['flip', 'move-proxies'] };

test('the window split: each group from its first start to its last end, total from the block to the flip', () => {
  const done = new Map<string, Record<string, unknown>>([
    ['pre-verify', { span: [0, 500] }],
    ['block-routes', { span: [1000, 1010] }],
    ['drain-clients', { span: [1010, 1012] }],
    ['block-writes', { span: [1012, 1030] }],
    ['final-position', { span: [1030, 1032] }],
    ['drain', { span: [1032, 1100] }],
    ['verify', { span: [1100, 1150] }],
    ['reverse-drc', { span: [1150, 1152] }],
    ['flip', { span: [1152, 1170] }],
    ['move-proxies', { span: [1170, 1200] }],
  ]);
  assert.deepEqual(windowOf(done, groups), { blockMs: 32, drainMs: 68, verifyMs: 52, flipMs: 48, totalMs: 200, blockedAt: new Date(1000).toISOString(), flippedAt: new Date(1152).toISOString() });
});

test('the window of a run that stopped before the flip (or was resumed from the journal without spans): nulls, not made up', () => {
  const done = new Map<string, Record<string, unknown>>([['block-routes', { span: [1000, 1010] }], ['flip', { by: 'check' }]]);
  assert.deepEqual(windowOf(done, groups), { blockMs: 10, drainMs: null, verifyMs: null, flipMs: null, totalMs: null, blockedAt: new Date(1000).toISOString(), flippedAt: null });
});

test("the own-domain GTID of a MariaDB position", () => {
  assert.equal(ownGtid('1-101-478,1001-102-9', 1), '1-101-478');
  assert.equal(ownGtid('1001-102-9', 1), '');
  assert.equal(ownGtid('1-101-4', null), '');
});

test('a dead switch holding the cluster is found for a rerun; a live one, another kind or another target is not', () => {
  const row = (o: Partial<LeaseRow>): LeaseRow => ({ zone: 'sh', cluster: 'demo', target: 'cluster', jobId: 'j1', holder: 'h', host: hostname(), pid: 2 ** 22 + 12345, leftMs: 20_000, kind: 'gz-switch', ...o });
  assert.equal(deadJobOf([row({})], 'gz-switch')?.jobId, 'j1', 'its process on this host is gone');
  assert.equal(deadJobOf([row({ host: 'elsewhere' })], 'gz-switch'), undefined, 'lease left, another host: alive');
  assert.equal(deadJobOf([row({ host: 'elsewhere', leftMs: -1 })], 'gz-switch')?.jobId, 'j1', 'lease expired');
  assert.equal(deadJobOf([row({ kind: 'emha-switch' })], 'gz-switch'), undefined);
  assert.equal(deadJobOf([row({ target: 'db.t' })], 'gz-switch'), undefined);
});

test('lease refusals: a job on the cluster or a table refuses a gz job; a change feed\'s or a monitor\'s lease does not (it follows the switch)', () => {
  const row = (target: string, kind: string): LeaseRow => ({ zone: 'bj', cluster: 'c', target, jobId: 'J', holder: 'h', host: 'elsewhere', pid: 1, leftMs: 20_000, kind });
  assert.equal(leaseRefusals([row('feed:bj-cache', 'drc-feed'), row('monitor:emha-watch', 'emha-watch')]).length, 0);
  const r = leaseRefusals([row('cluster', 'emha-switch'), row('db.t', 'osc'), row('feed:x', 'drc-feed')]);
  assert.equal(r.length, 2);
  assert.match(r[0]!, /another job holds the cluster: zone bj: emha-switch job J on cluster/);
});

test("a monitor's lease (emha watch), live or dead, is in no zone switch's way; any other job on the cluster is", () => {
  // found by `ezctl drill switch-under-load` after master-kill: gz move refused while a watch ran,
  // and for good by the dead watch row left on the master killed under it (the README says a
  // monitor's lease excludes only another monitor)
  const row = (o: Partial<LeaseRow>): LeaseRow => ({ zone: 'bj', cluster: 'demo', target: 'monitor:emha-watch', jobId: 'w1', holder: 'h', host: 'elsewhere', pid: 1, leftMs: 20_000, kind: 'emha-watch', ...o });
  assert.deepEqual(leaseRefusals([row({}), row({ leftMs: -40_000 })]), []);
  const other = leaseRefusals([row({ target: 'cluster', kind: 'gz-move', jobId: 'm1' }), row({ target: 'ezdemo.orders', kind: 'osc', jobId: 'o1' })]);
  assert.equal(other.length, 2);
  assert.match(other[0]!, /gz-move job m1/);
});
