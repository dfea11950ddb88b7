import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatMariaPos, formatMysqlSet, gtidBehind, gtidCovers, mariaBehind, mariaCovers, mysqlBehind, mysqlCovers, parseMariaPos, parseMysqlSet,
} from '../../src/core/db/gtid.js';

const U1 = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const U2 = '8b2f0a9c-0000-4000-8000-000000000001';

const mp = parseMariaPos;
const ms = parseMysqlSet;

// ---- MariaDB ------------------------------------------------------------------------

test('MariaDB: parse one GTID per domain', () => {
  const p = mp('0-1-100,1-2-5');
  assert.equal(p.size, 2);
  assert.deepEqual(p.get(0), { domain: 0, server: 1, seq: 100n });
  assert.deepEqual(p.get(1), { domain: 1, server: 2, seq: 5n });
});

test('MariaDB: empty, null and undefined positions are empty', () => {
  assert.equal(mp('').size, 0);
  assert.equal(mp(null).size, 0);
  assert.equal(mp(undefined).size, 0);
  assert.equal(mp(' , ').size, 0);
  assert.equal(formatMariaPos(mp('')), '');
});

test('MariaDB: whitespace is ignored, and of two GTIDs in one domain the higher wins', () => {
  assert.equal(formatMariaPos(mp(' 1-2-5 , 0-1-100,0-3-90 ')), '0-1-100,1-2-5');
  assert.equal(formatMariaPos(mp('0-3-90,0-1-100')), '0-1-100');
  assert.equal(formatMariaPos(mp('0-3-100,0-1-100')), '0-3-100');
});

test('MariaDB: format sorts by domain', () => {
  assert.equal(formatMariaPos(mp('10-1-1,2-7-3,0-4-9')), '0-4-9,2-7-3,10-1-1');
});

test('MariaDB: sequence numbers beyond 2^53 stay exact', () => {
  const p = mp('0-1-18446744073709551615');
  assert.equal(p.get(0)!.seq, 18446744073709551615n);
  assert.equal(formatMariaPos(p), '0-1-18446744073709551615');
});

test('MariaDB: invalid text throws, naming the bad part', () => {
  assert.throws(() => mp('abc'), { message: '"abc" is not a MariaDB GTID (domain-server-seq)' });
  assert.throws(() => mp('0-1-100,0-1'), { message: '"0-1" is not a MariaDB GTID (domain-server-seq)' });
  assert.throws(() => mp('0-1--5'), /is not a MariaDB GTID/);
  assert.throws(() => mp(`${U1}:1-5`), /is not a MariaDB GTID/);
});

test('MariaDB covers: every domain of b at least as far in a; server id does not matter', () => {
  assert.equal(mariaCovers(mp('0-1-100,1-2-5'), mp('0-1-100,1-2-5')), true);
  assert.equal(mariaCovers(mp('0-1-101,1-2-5'), mp('0-1-100')), true);
  assert.equal(mariaCovers(mp('0-9-100'), mp('0-1-100')), true);
  assert.equal(mariaCovers(mp('0-1-100'), mp('0-9-101')), false);
  assert.equal(mariaCovers(mp('0-1-100'), mp('0-1-100,1-2-1')), false);
  assert.equal(mariaCovers(mp('0-1-100,1-2-4'), mp('0-1-90,1-2-5')), false);
  assert.equal(mariaCovers(mp('0-1-1'), mp('')), true);
  assert.equal(mariaCovers(mp(''), mp('')), true);
  assert.equal(mariaCovers(mp(''), mp('0-1-1')), false);
});

test('MariaDB behind: transactions missing, summed over domains', () => {
  assert.equal(mariaBehind(mp('0-1-100,1-2-5'), mp('0-1-100,1-2-5')), 0n);
  assert.equal(mariaBehind(mp('0-1-90,1-2-5'), mp('0-1-100,1-2-8')), 13n);
  // a domain a never saw counts from zero
  assert.equal(mariaBehind(mp('0-1-90'), mp('0-1-100,2-3-4')), 14n);
  // being ahead in one domain does not cancel being behind in another
  assert.equal(mariaBehind(mp('0-1-200,1-2-1'), mp('0-1-100,1-2-5')), 4n);
  assert.equal(mariaBehind(mp('0-1-200'), mp('0-5-100')), 0n);
  assert.equal(mariaBehind(mp(''), mp('')), 0n);
});

// ---- MySQL --------------------------------------------------------------------------

test('MySQL: parse, merging overlapping and adjacent intervals', () => {
  const s = ms(`${U1}:1-5:6-7:10-12:11-20,${U1}:22`);
  assert.deepEqual(s.get(U1), [[1n, 7n], [10n, 20n], [22n, 22n]]);
  assert.equal(formatMysqlSet(s), `${U1}:1-7:10-20:22`);
  assert.deepEqual(ms(`${U1}:5-9:1-3:4`).get(U1), [[1n, 9n]]);
  assert.deepEqual(ms(`${U1}:1-10:3-4`).get(U1), [[1n, 10n]]);
  assert.deepEqual(ms(`${U1}:3:3:3`).get(U1), [[3n, 3n]]);
});

test('MySQL: uuids are case-insensitive', () => {
  const s = ms(`${U1.toUpperCase()}:1-5,${U1}:6`);
  assert.equal(s.size, 1);
  assert.deepEqual(s.get(U1), [[1n, 6n]]);
  assert.equal(mysqlCovers(ms(`${U1}:1-10`), ms(`${U1.toUpperCase()}:2-3`)), true);
});

test('MySQL: whitespace and the newlines SHOW output puts after commas are ignored', () => {
  const s = ms(`${U1}:1-5,\n${U2}:1-3\n`);
  assert.equal(formatMysqlSet(s), `${U1}:1-5,${U2}:1-3`);
});

test('MySQL: format sorts by uuid and writes single transactions without a range', () => {
  assert.equal(formatMysqlSet(ms(`${U2}:4,${U1}:1-2:9`)), `${U1}:1-2:9,${U2}:4`);
  assert.equal(formatMysqlSet(ms('')), '');
  assert.equal(ms(null).size, 0);
  assert.equal(ms(undefined).size, 0);
});

test('MySQL: invalid sets throw', () => {
  assert.throws(() => ms('abc'), { message: '"abc" is not a MySQL GTID set element (uuid:1-5)' });
  assert.throws(() => ms(U1), { message: `"${U1}" is not a MySQL GTID set element (uuid:1-5)` });
  assert.throws(() => ms(`${U1.slice(0, -1)}:1`), /is not a MySQL GTID set element/);
  assert.throws(() => ms(`${U1}:1-x`), { message: `"1-x" is not an interval in "${U1}:1-x"` });
  assert.throws(() => ms(`${U1}:`), /is not an interval/);
  assert.throws(() => ms(`${U1}:5-2`), { message: 'interval 5-2 ends before it starts' });
  assert.throws(() => ms(`${U1}:0`), { message: 'interval 0 starts at 0 (transaction numbers start at 1)' });
  assert.throws(() => ms(`${U1}:0-5`), /starts at 0/);
  assert.throws(() => ms('0-1-100'), /is not a MySQL GTID set element/);
});

test('MySQL covers: set inclusion', () => {
  assert.equal(mysqlCovers(ms(`${U1}:1-10`), ms(`${U1}:1-10`)), true);
  assert.equal(mysqlCovers(ms(`${U1}:1-10`), ms(`${U1}:3-5:7`)), true);
  assert.equal(mysqlCovers(ms(`${U1}:1-10`), ms(`${U1}:1-11`)), false);
  // a gap in a is not covered even if the ends are
  assert.equal(mysqlCovers(ms(`${U1}:1-4:6-10`), ms(`${U1}:3-7`)), false);
  assert.equal(mysqlCovers(ms(`${U1}:1-4:6-10`), ms(`${U1}:5`)), false);
  // adjacent intervals in a were merged, so a range across them is covered
  assert.equal(mysqlCovers(ms(`${U1}:1-4:5-10`), ms(`${U1}:3-7`)), true);
  assert.equal(mysqlCovers(ms(`${U1}:1-10`), ms(`${U1}:1-10,${U2}:1`)), false);
  assert.equal(mysqlCovers(ms(`${U1}:1-10,${U2}:1`), ms(`${U1}:1-10`)), true);
  assert.equal(mysqlCovers(ms(''), ms('')), true);
  assert.equal(mysqlCovers(ms(`${U1}:1`), ms('')), true);
  assert.equal(mysqlCovers(ms(''), ms(`${U1}:1`)), false);
});

test('MySQL behind: transactions of b that a lacks', () => {
  assert.equal(mysqlBehind(ms(`${U1}:1-10`), ms(`${U1}:1-10`)), 0n);
  assert.equal(mysqlBehind(ms(`${U1}:1-5`), ms(`${U1}:1-10:20`)), 6n);
  assert.equal(mysqlBehind(ms(`${U1}:1-4:6-10`), ms(`${U1}:1-10`)), 1n);
  assert.equal(mysqlBehind(ms(`${U1}:3-4:8`), ms(`${U1}:1-10`)), 7n);
  assert.equal(mysqlBehind(ms(''), ms(`${U1}:1-10,${U2}:1-3`)), 13n);
  assert.equal(mysqlBehind(ms(`${U1}:1-100`), ms(`${U1}:1-10`)), 0n);
  // transactions only a has do not count
  assert.equal(mysqlBehind(ms(`${U2}:1-100`), ms(`${U1}:1-2`)), 2n);
});

// ---- dispatch -----------------------------------------------------------------------

test('gtidCovers and gtidBehind dispatch on the flavor', () => {
  assert.equal(gtidCovers('mariadb', '0-1-100', '0-2-99'), true);
  assert.equal(gtidCovers('mariadb', '0-1-99', '0-2-100'), false);
  assert.equal(gtidBehind('mariadb', '0-1-90,1-1-1', '0-1-100,1-1-3'), 12n);
  assert.equal(gtidCovers('mysql', `${U1}:1-10`, `${U1}:2-9`), true);
  assert.equal(gtidCovers('mysql', `${U1}:2-10`, `${U1}:1-9`), false);
  assert.equal(gtidBehind('mysql', `${U1}:1-3`, `${U1}:1-10`), 7n);
  assert.equal(gtidCovers('mysql', '', ''), true);
  assert.equal(gtidBehind('mariadb', '', ''), 0n);
  // the wrong flavor's syntax is an error, not a silent "covered"
  assert.throws(() => gtidCovers('mysql', '0-1-100', '0-1-100'), /MySQL GTID/);
  assert.throws(() => gtidCovers('mariadb', `${U1}:1`, ''), /MariaDB GTID/);
});
