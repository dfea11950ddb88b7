// The pure parts of dead-master detection: what a replica's SHOW SLAVE STATUS says about its
// master, which channel reads from it, and the verdict from all vantage points (orchestrator's
// DeadMaster: ezctl cannot reach it and every replica reached has lost it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channelFrom, replicaSees, serverAnswered, verdictOf, type Vantage } from '../../src/core/emha/detect.js';
import type { ReplicaStatus } from '../../src/core/db/server.js';

const ch = (o: Partial<ReplicaStatus> = {}): ReplicaStatus => ({
  channel: '', sourceHost: '127.0.0.1', sourcePort: 3307, ioState: 'Yes', sqlState: 'Yes', lagSeconds: 0, usingGtid: 'Slave_Pos',
  retrievedGtid: '', executedGtid: '', lastIoError: '', lastSqlError: '', ...o,
});
const v = (from: string, sees: Vantage['sees']): Vantage => ({ from, sees, detail: '' });

test('the verdict: dead only when ezctl cannot reach the master and every replica with a vote has lost it', () => {
  assert.equal(verdictOf([v('ezctl', 'alive'), v('r1', 'unreachable')]), 'alive');
  assert.equal(verdictOf([v('ezctl', 'unreachable'), v('r1', 'unreachable'), v('r2', 'unreachable')]), 'dead');
  // SIGSTOP: ezctl times out, the replicas' IO threads still connected (until slave_net_timeout)
  assert.equal(verdictOf([v('ezctl', 'unreachable'), v('r1', 'alive'), v('r2', 'unreachable')]), 'unreachable');
  // a replica not reached, or not reading from this master, has no vote ...
  assert.equal(verdictOf([v('ezctl', 'unreachable'), v('r1', 'unknown'), v('r2', 'unreachable')]), 'dead');
  // ... and with no vote at all there is no second vantage point: never dead
  assert.equal(verdictOf([v('ezctl', 'unreachable'), v('r1', 'unknown')]), 'unreachable');
  assert.equal(verdictOf([v('ezctl', 'unreachable')]), 'unreachable');
});

test('a replica\'s IO thread: connected is alive, reconnecting (with or without an error) is unreachable, stopped by hand is no opinion', () => {
  assert.equal(replicaSees(ch(), 'r1', [ch()]).sees, 'alive');
  // kill -9 of the master: connection refused at once (measured: seen in < 50 ms)
  const refused = ch({ ioState: 'Connecting', lastIoError: "error reconnecting to master 'repl@127.0.0.1:3307' ... (111 \"Connection refused\")" });
  assert.equal(replicaSees(refused, 'r1', [refused]).sees, 'unreachable');
  // SIGSTOP past slave_net_timeout: Connecting with an empty Last_IO_Error (measured on 10.11)
  assert.equal(replicaSees(ch({ ioState: 'Connecting' }), 'r1', []).sees, 'unreachable');
  assert.equal(replicaSees(ch({ ioState: 'No', lastIoError: 'fatal error 1236' }), 'r1', []).sees, 'unreachable');
  assert.equal(replicaSees(ch({ ioState: 'No' }), 'r1', []).sees, 'unknown');
  const other = replicaSees(undefined, 'r1', [ch({ sourcePort: 4000 })]);
  assert.equal(other.sees, 'unknown');
  assert.match(other.detail, /127\.0\.0\.1:4000/);
  assert.match(replicaSees(undefined, 'r1', []).detail, /nobody/);
});

test('the channel reading from the master is matched by port and host, loopback names alike', () => {
  const a = ch({ channel: '', sourceHost: 'localhost', sourcePort: 3307 });
  const b = ch({ channel: 'x', sourceHost: '10.0.0.2', sourcePort: 3307 });
  assert.equal(channelFrom([b, a], { host: '127.0.0.1', port: 3307 }), a);
  assert.equal(channelFrom([b, a], { host: '10.0.0.2', port: 3307 }), b);
  assert.equal(channelFrom([a], { host: '127.0.0.1', port: 3308 }), undefined);
});

test('an error the server sent proves it alive; a network error does not', () => {
  assert.equal(serverAnswered({ message: 'x', cause: { errno: 1045, code: 'ER_ACCESS_DENIED_ERROR', sqlMessage: 'Access denied' } }), true);
  assert.equal(serverAnswered({ errno: 1040, sqlMessage: 'Too many connections' }), true);
  assert.equal(serverAnswered({ message: 'x', cause: { code: 'ETIMEDOUT', errorno: 'ETIMEDOUT' } }), false);
  assert.equal(serverAnswered({ code: 'ECONNREFUSED', errno: -111 }), false);
});
