// sandbox workload: which errors mean "open a new connection", and the kinds errors are counted under.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionBroken, errorKind, kindsText } from '../../src/core/sandbox/workload.js';
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
