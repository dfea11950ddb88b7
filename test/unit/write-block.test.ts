import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockers, namedBlockers, classifySession, describeSession, isClient, isWriteStatement, sessionInfo, statementHead, type SessionRow } from '../../src/core/db/write-block.js';

function row(p: Partial<SessionRow> & { id: number }): SessionRow {
  return { user: 'app', host: '127.0.0.1:5000', db: 'shop', command: 'Sleep', timeS: 0, state: '', info: null, trxRowsModified: null, trxRowsLocked: null, trxAgeS: null, ...p };
}
const OURS = new Set([1, 2]);

test('statementHead skips comments, parentheses and spaces', () => {
  assert.equal(statementHead('  /* app:42 */ -- note\n (SELECT 1)'), 'SELECT 1)');
  assert.equal(statementHead('# x\nUPDATE t SET a=1'), 'UPDATE t SET a=1');
  assert.equal(statementHead('/* unterminated'), '');
});

test('isWriteStatement: DML, DDL and LOCK TABLES write; SELECT, SHOW and SET do not', () => {
  for (const s of ['INSERT INTO t VALUES (1)', 'update t set a=1', ' /*x*/ DELETE FROM t', 'REPLACE INTO t VALUES (1)', 'LOAD DATA INFILE "x" INTO TABLE t', 'ALTER TABLE t ADD c INT', 'LOCK TABLES t WRITE', 'CALL p()', 'WITH x AS (SELECT 1) UPDATE t SET a = 1', 'TRUNCATE t']) {
    assert.equal(isWriteStatement(s), true, s);
  }
  for (const s of ['SELECT SLEEP(10) FROM t', 'SHOW PROCESSLIST', 'SET @a = 1', '(SELECT 1)', 'WITH x AS (SELECT 1) SELECT * FROM x']) {
    assert.equal(isWriteStatement(s), false, s);
  }
  assert.equal(isWriteStatement(null), false);
});

test('classifySession: ours and replication/system threads first, whatever they do', () => {
  assert.equal(classifySession(row({ id: 1, command: 'Query', info: 'UPDATE t SET a=1' }), OURS), 'ours');
  assert.equal(classifySession(row({ id: 5, user: 'repl', command: 'Binlog Dump', info: null }), OURS), 'system');
  assert.equal(classifySession(row({ id: 6, user: 'system user', command: 'Slave_SQL', trxRowsModified: 3, trxAgeS: 1 }), OURS), 'system');
  assert.equal(classifySession(row({ id: 7, user: 'system user', command: 'Daemon' }), OURS), 'system');
  assert.equal(classifySession(row({ id: 8, user: 'event_scheduler', command: 'Daemon' }), OURS), 'system');
  assert.equal(classifySession(row({ id: 9, user: 'repl', command: 'Binlog Dump GTID' }), OURS), 'system');
});

test('classifySession: a session waiting behind the block is its victim, not a holder', () => {
  // measured: an autocommit INSERT stopped by BLOCK_COMMIT shows 1 row modified in INNODB_TRX
  const r = row({ id: 10, user: 'ezctl', command: 'Query', state: 'Waiting for backup lock', info: 'INSERT INTO t VALUES (1)', trxRowsModified: 1, trxAgeS: 0 });
  assert.equal(classifySession(r, OURS), 'waiting');
  assert.equal(classifySession({ ...r, state: 'Waiting for global read lock' }, OURS), 'waiting');
  assert.equal(isClient(r, OURS), true, 'killClients kills it: it must not commit once the block is lifted');
});

test('classifySession: writers are open write transactions, running DML and write metadata locks', () => {
  assert.equal(classifySession(row({ id: 11, trxRowsModified: 2, trxRowsLocked: 2, trxAgeS: 30 }), OURS), 'writer', 'idle in a write transaction');
  assert.equal(classifySession(row({ id: 12, command: 'Query', info: 'SELECT * FROM t FOR UPDATE', trxRowsModified: 0, trxRowsLocked: 5, trxAgeS: 1 }), OURS), 'writer', 'rows locked');
  assert.equal(classifySession(row({ id: 13, command: 'Query', info: 'UPDATE t SET v = v + SLEEP(1)', trxRowsModified: 0, trxRowsLocked: 0, trxAgeS: 1 }), OURS), 'writer', 'running DML');
  assert.equal(classifySession(row({ id: 14, mdlModes: ['MDL_SHARED_NO_READ_WRITE'] }), OURS), 'writer', 'LOCK TABLES ... WRITE (metadata_lock_info)');
  assert.equal(classifySession(row({ id: 15, mdlModes: ['MDL_BACKUP_TRANS_DML'] }), OURS), 'writer');
});

test('classifySession: readers and idle sessions are never writers', () => {
  assert.equal(classifySession(row({ id: 20, command: 'Query', info: 'SELECT SLEEP(60) FROM t', trxRowsModified: 0, trxRowsLocked: 0, trxAgeS: 3 }), OURS), 'reader');
  assert.equal(classifySession(row({ id: 21, mdlModes: ['MDL_SHARED_READ'] }), OURS), 'idle');
  assert.equal(classifySession(row({ id: 22, trxRowsModified: 0, trxRowsLocked: 0, trxAgeS: 9 }), OURS), 'idle');
});

test('blockers: the writers when there are any, else who is doing something', () => {
  const reader = row({ id: 30, command: 'Query', info: 'SELECT SLEEP(60)' });
  const idleTrx = row({ id: 31, trxRowsModified: 0, trxRowsLocked: 0, trxAgeS: 4 });
  const idle = row({ id: 32 });
  const writer = row({ id: 33, command: 'Query', info: 'DELETE FROM t' });
  assert.deepEqual(blockers([reader, idleTrx, idle, writer], OURS).writers.map((r) => r.id), [33]);
  assert.deepEqual(blockers([reader, idleTrx, idle], OURS).others.map((r) => r.id), [30, 31]);
});

test('blockers: a LOCK TABLES holder is named before the DML queued behind it (rows modified, waiting on its lock)', () => {
  const queued = row({ id: 50, user: 'drc', command: 'Query', state: 'Waiting for table metadata lock', info: 'INSERT INTO t VALUES (9)', trxRowsModified: 3, trxAgeS: 1 });
  const holder = row({ id: 51, mdlModes: ['MDL_SHARED_NO_READ_WRITE'] });
  assert.deepEqual(namedBlockers(blockers([queued, holder], OURS)).map((r) => r.id), [51, 50]);
  // without metadata_lock_info the holder is an idle session with a transaction: named before the queued one
  const idleHolder = row({ id: 52, trxRowsModified: 0, trxRowsLocked: 0, trxAgeS: 5 });
  assert.deepEqual(namedBlockers(blockers([queued, idleHolder], OURS)).map((r) => r.id), [52, 50]);
});

test('sessionInfo and describeSession name the session, its age and its statement', () => {
  const s = sessionInfo(row({ id: 40, user: 'app', command: 'Query', timeS: 2, trxAgeS: 12, info: 'UPDATE t\n  SET a=1', trxRowsModified: 7 }));
  assert.deepEqual(s, { id: 40, user: 'app', host: '127.0.0.1:5000', db: 'shop', command: 'Query', timeS: 12, info: 'UPDATE t\n  SET a=1', rowsModified: 7 });
  assert.equal(describeSession(s), 'session 40 (app@127.0.0.1:5000 db shop, Query, 12 s, 7 row(s) modified, "UPDATE t SET a=1")');
  assert.match(describeSession(sessionInfo(row({ id: 41, trxRowsModified: 1, trxAgeS: 3 }))), /idle in a transaction/);
});
