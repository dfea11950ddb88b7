// sandbox workload: which errors mean "open a new connection", and the kinds errors are counted under.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionBroken, errorKind, kindsText, onAttemptError, percentile, shardsBy, WindowTracker } from '../../src/core/sandbox/workload.js';
import { QueryError } from '../../src/core/db/connect.js';
import { runtimeError } from '../../src/core/exit.js';

test('a lost connection is broken; a lock wait or a duplicate key is not', () => {
  const lost = new QueryError('bj-master: Connection lost: The server closed the connection.', 'PROTOCOL_CONNECTION_LOST', undefined, Object.assign(new Error('lost'), { fatal: true }));
  assert.equal(connectionBroken(lost), true);
  assert.equal(connectionBroken(new QueryError("bj-master: Can't add new command when connection is in closed state (error) in: BEGIN", undefined, undefined, new Error('closed'))), true);
  assert.equal(connectionBroken(new Error("Can't add new command when connection is in closed state")), true);
  assert.equal(connectionBroken(new QueryError('x', 'ER_SERVER_SHUTDOWN', 1053, new Error('x'))), true);
  assert.equal(connectionBroken(runtimeError('cannot connect', { cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) })), true);
  assert.equal(connectionBroken(new QueryError('x', 'ER_LOCK_WAIT_TIMEOUT', 1205, new Error('x'))), false);
  assert.equal(connectionBroken(new QueryError('x', 'ER_DUP_ENTRY', 1062, new Error('x'))), false);
});

test('errors are counted by their code', () => {
  assert.equal(errorKind(new QueryError('x', 'ER_LOCK_WAIT_TIMEOUT', 1205, new Error('x'))), 'ER_LOCK_WAIT_TIMEOUT');
  assert.equal(errorKind(runtimeError('cannot connect', { cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) })), 'ECONNREFUSED');
  assert.equal(errorKind(new Error("Can't add new command when connection is in closed state")), 'connection closed');
  assert.equal(kindsText({ a: 1, 'no connection': 30, ECONNREFUSED: 12 }), 'no connection 30, ECONNREFUSED 12, a 1');
});

test('after a failed attempt: a read_only master or a cut session is retried on a new connection, a deadlock on the same one, a bad statement fails', () => {
  assert.equal(onAttemptError(new QueryError('x', 'ER_OPTION_PREVENTS_STATEMENT', 1290, new Error('x'))), 'reconnect');
  assert.equal(onAttemptError(new QueryError('x', 'ER_CONNECTION_KILLED', 1927, new Error('x'))), 'reconnect');
  assert.equal(onAttemptError(new QueryError('x', 'PROTOCOL_CONNECTION_LOST', undefined, Object.assign(new Error('lost'), { fatal: true }))), 'reconnect');
  assert.equal(onAttemptError(new QueryError('x', 'ER_LOCK_DEADLOCK', 1213, new Error('x'))), 'retry');
  assert.equal(onAttemptError(new QueryError('x', 'ER_LOCK_WAIT_TIMEOUT', 1205, new Error('x'))), 'retry');
  assert.equal(onAttemptError(new QueryError('x', 'ER_DUP_ENTRY', 1062, new Error('x'))), 'fail');
  assert.equal(onAttemptError(new QueryError('x', 'ER_BAD_FIELD_ERROR', 1054, new Error('x'))), 'fail');
});

test('percentile: nearest rank; the window is the longest stretch between commits, from the start', () => {
  assert.equal(percentile([], 50), 0);
  assert.equal(percentile([5], 99), 5);
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 99), 99);
  assert.equal(percentile(xs, 100), 100);
  const w = new WindowTracker(1000);
  w.commit(1300); // 300 from the start
  w.commit(1350);
  w.commit(2350); // 1000
  w.commit(2300); // a commit recorded late never makes the window shorter or negative
  w.commit(2400);
  assert.equal(w.window.ms, 1000);
  assert.equal(w.window.from, new Date(1350).toISOString());
  assert.equal(w.window.to, new Date(2350).toISOString());
});

test('shardsBy: the shards a zone owns in a routing table, and the others', () => {
  const r = { cluster: 'demo', model: 'sharding' as const, version: 3, writeZone: null, state: 'active' as const, tables: {}, missedBy: [], job: null, reason: 't', publishedAt: '',
    shards: [{ from: 0, to: 2, zone: 'sh', state: 'blocked' as const }, { from: 3, to: 4, zone: 'bj', state: 'active' as const }, { from: 5, to: 6, zone: 'sh', state: 'active' as const }] };
  assert.deepEqual(shardsBy(r, 'sh'), { own: [0, 1, 2, 5, 6], others: [3, 4] });
  assert.deepEqual(shardsBy(r, 'gz'), { own: [], others: [0, 1, 2, 3, 4, 5, 6] });
});
