// What a check's tables add up to, what repair cannot mend, and which errors mean a lost server:
// nothing not compared (or not fixable) may come out as "consistent" / exit 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkExitCode, verdict, type TableReport } from '../../src/core/dcp/check-full.js';
import { unfixableTables } from '../../src/core/dcp/repair.js';
import { lostConnectionError } from '../../src/core/dcp/lost.js';
import { isLostConnection } from '../../src/core/db/lost.js';
import { QueryError } from '../../src/core/db/connect.js';
import { runtimeError } from '../../src/core/exit.js';

const table = (name: string, extra: Partial<TableReport> = {}): TableReport => ({ table: name, status: 'done', rows: 10, chunks: 1, missing: 0, changed: 0, diffs: [], ms: 1, ...extra });
const outcome = (tables: TableReport[]) => {
  const v = verdict(tables);
  return { ...v, code: checkExitCode({ ...v, tables }) };
};

test('all compared and alike: consistent, exit 0', () => {
  const r = outcome([table('d.a'), table('d.b', { keyless: true })]);
  assert.equal(r.consistent, true);
  assert.equal(r.code, 0);
  assert.deepEqual([r.missingTables, r.skipped, r.structureDiffers], [[], [], []]);
});

test('a table missing in a zone is a difference: exit 1, named with where it is missing and where it exists', () => {
  const r = outcome([table('d.a'), table('d.gone', { status: 'skipped', reason: 'table missing in sh (exists in bj)', missingIn: ['sh'], presentIn: ['bj'] })]);
  assert.equal(r.consistent, false);
  assert.equal(r.code, 1);
  assert.deepEqual(r.missingTables, [{ table: 'd.gone', missingIn: ['sh'], presentIn: ['bj'] }]);
  assert.deepEqual(r.skipped, [], 'a missing table is a difference, not a skipped table');
});

test('a skipped table alone: not consistent, exit 4, named with its reason; with differences too: exit 1', () => {
  const skipped = table('d.nokey', { status: 'skipped', reason: 'no primary or unique NOT NULL key, and 5 rows is more than --keyless-max-rows 1', keyless: true });
  const r = outcome([table('d.a'), skipped]);
  assert.equal(r.consistent, false);
  assert.equal(r.code, 4);
  assert.deepEqual(r.skipped, [{ table: 'd.nokey', reason: skipped.reason }]);
  const both = outcome([table('d.a', { changed: 1 }), skipped]);
  assert.equal(both.code, 1);
  assert.equal(both.skipped.length, 1);
});

test('a structure difference is a difference even when the common columns agree', () => {
  const r = outcome([table('d.a', { structure: ['sh: column extra missing (bj has int)'] })]);
  assert.deepEqual([r.consistent, r.code, r.structureDiffers], [false, 1, ['d.a']]);
});

test('repair: a missing table, a keyless table with differences and a skipped table are each unfixable, with the reason', () => {
  const u = unfixableTables([
    { table: 'd.ok', status: 'done', missing: 1, changed: 0 },
    { table: 'd.gone', status: 'skipped', missingIn: ['sh'], presentIn: ['bj'] },
    { table: 'd.nokey', status: 'done', keyless: true, missing: 2, changed: 0 },
    { table: 'd.nokey_same', status: 'done', keyless: true, missing: 0, changed: 0 },
    { table: 'd.big', status: 'skipped', reason: 'no primary or unique NOT NULL key, and 9 rows is more than --keyless-max-rows 1', keyless: true },
  ]);
  assert.deepEqual(u.map((x) => x.table), ['d.gone', 'd.nokey', 'd.big']);
  assert.match(u[0]!.why, /table missing in sh \(exists in bj\)/);
  assert.match(u[1]!.why, /2 rows differ, but the table has no primary or unique NOT NULL key/);
  assert.match(u[2]!.why, /not compared by the check \(no primary .*\): what differs there is unknown/);
});

test('lost connections are told from statement errors', () => {
  const closed = Object.assign(new Error("Can't add new command when connection is in closed state"), { fatal: true });
  const lost = Object.assign(new Error('Connection lost: The server closed the connection.'), { fatal: true, code: 'PROTOCOL_CONNECTION_LOST' });
  const sqlError = Object.assign(new Error("Table 'x.y' doesn't exist"), { code: 'ER_NO_SUCH_TABLE', errno: 1146, fatal: false });
  assert.equal(isLostConnection(new QueryError('sh-master: x', undefined, undefined, closed)), true);
  assert.equal(isLostConnection(runtimeError('repair at sh failed', { cause: new QueryError('sh-master: x', 'PROTOCOL_CONNECTION_LOST', undefined, lost) })), true);
  assert.equal(isLostConnection(new QueryError('sh-master: x', 'ER_NO_SUCH_TABLE', 1146, sqlError)), false);
  assert.equal(isLostConnection(Object.assign(new Error('gone'), { errno: 2013 })), true);
});

test('only a statement that failed on an open connection is called a lost connection; a connection never made keeps its own message', () => {
  const refusedErr = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3307'), { code: 'ECONNREFUSED', fatal: true });
  const notMade = runtimeError('cannot connect to sh-master 127.0.0.1:3307: connection refused', { cause: refusedErr });
  assert.equal(lostConnectionError(notMade, [], 'check full', () => 'x'), undefined);
  const closed = Object.assign(new Error("Can't add new command when connection is in closed state"), { fatal: true });
  const lost = lostConnectionError(new QueryError('sh-master 127.0.0.1:3307: x', undefined, undefined, closed), [], 'check full', () => '--resume continues run R');
  assert.ok(lost);
  assert.equal(lost.exitCode, 3);
  assert.match(lost.message, /^lost connection to a zone master during check full; --resume continues run R$/);
  assert.deepEqual(lost.details, ["cause: Can't add new command when connection is in closed state"]);
});
