import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SourcePosition, parseGtid } from '../../src/core/binlog/position.js';
import { resumePosition } from '../../src/core/drc/pipeline.js';

test('a MariaDB position advances per domain and keeps the server id', () => {
  const p = new SourcePosition('mariadb', '1-101-5,2-201-9');
  p.advance('1-101-6');
  p.advance('1001-101-1');
  assert.equal(p.toString(), '1-101-6,2-201-9,1001-101-1');
  assert.equal(p.seqOf(1), 6n);
  assert.equal(p.entry(2), '2-201-9');
});

test('covers: only the same server\'s GTIDs at or below the position (a new master may reuse numbers)', () => {
  const p = new SourcePosition('mariadb', '2-201-100');
  assert.equal(p.covers('2-201-100'), true);
  assert.equal(p.covers('2-201-50'), true);
  assert.equal(p.covers('2-201-101'), false);
  assert.equal(p.covers('2-202-90'), false, 'after a failover, 2-202-90 is a new transaction');
  assert.equal(p.covers('3-301-1'), false);
  const m = new SourcePosition('mysql', '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5');
  assert.equal(m.covers('3e11fa47-71ca-11e1-9e33-c80aa9429562:5'), true);
  assert.equal(m.covers('3e11fa47-71ca-11e1-9e33-c80aa9429562:6'), false);
  m.advance('3e11fa47-71ca-11e1-9e33-c80aa9429562:6');
  assert.equal(m.toString(), '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-6');
});

test('resume position: own domain from the checkpoint, other domains from where the source is now', () => {
  // the checkpoint names a DRC-domain GTID the new master never had; it does not matter
  assert.equal(resumePosition('2-201-148,1001-201-158,1002-201-1', '2-202-160,1001-202-170,1002-201-1', 2), '2-201-148,1001-202-170,1002-201-1');
  assert.equal(resumePosition('1-101-7', '1-101-9,1001-101-3', 1), '1-101-7,1001-101-3');
  // no own-domain entry yet: the own domain is read from its beginning (every such transaction is new)
  assert.equal(resumePosition('1001-201-3', '2-201-4,1001-201-9', 2), '1001-201-9');
});

test('parseGtid reads both flavors and refuses junk', () => {
  assert.deepEqual(parseGtid('mariadb', '0-1-18446744073709551615'), { domain: 0, serverId: 1, seq: 18446744073709551615n });
  assert.deepEqual(parseGtid('mysql', '3E11FA47-71CA-11E1-9E33-C80AA9429562:7'), { uuid: '3e11fa47-71ca-11e1-9e33-c80aa9429562', seq: 7n });
  assert.throws(() => parseGtid('mariadb', '1-2'));
  assert.throws(() => parseGtid('mysql', 'abc'));
});

test('reaches: every domain of the target read up to its sequence number, whatever the server id', () => {
  const at = new SourcePosition('mariadb', '1-101-10,2-201-5');
  assert.equal(at.reaches(new SourcePosition('mariadb', '1-101-10')), true);
  assert.equal(at.reaches(new SourcePosition('mariadb', '1-102-9,2-201-5')), true);
  assert.equal(at.reaches(new SourcePosition('mariadb', '1-101-11')), false);
  assert.equal(at.reaches(new SourcePosition('mariadb', '3-301-1')), false);
  assert.equal(at.reaches(new SourcePosition('mariadb', '')), true);
});
