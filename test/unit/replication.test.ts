import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gtidDifference, errantGtids, replicatesFrom, replicationCredentials, type NodeReplState } from '../../src/core/db/replication.js';
import { mariaMerge, mariaStateExtra } from '../../src/core/db/gtid.js';
import { parseTopology } from '../../src/core/config/load.js';
import type { ReplicaStatus } from '../../src/core/db/server.js';

const U1 = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const U2 = '8b2f0a9c-0000-4000-8000-000000000001';

// ---- gtidDifference, MariaDB ----------------------------------------------------------------

test('MariaDB difference: the seqs past the other side, per domain', () => {
  const d = gtidDifference('mariadb', '1-101-60,2-201-10', '1-101-56,2-201-10');
  assert.deepEqual(d.text, ['1-101-57..60']);
  assert.equal(d.count, 4n);
  assert.equal(d.empty, false);
});

test('MariaDB difference: one transaction is written without a range', () => {
  assert.deepEqual(gtidDifference('mariadb', '1-102-57', '1-101-56').text, ['1-102-57']);
});

test('MariaDB difference: a whole domain the other side lacks counts from 1', () => {
  const d = gtidDifference('mariadb', '0-1-3,7-702-5', '0-1-3');
  assert.deepEqual(d.text, ['7-702-1..5']);
  assert.equal(d.count, 5n);
});

test('MariaDB difference: several domains, sorted by domain', () => {
  const d = gtidDifference('mariadb', '3-301-9,1-101-60,2-201-12', '1-101-50,2-201-10');
  assert.deepEqual(d.text, ['1-101-51..60', '2-201-11..12', '3-301-1..9']);
  assert.equal(d.count, 10n + 2n + 9n);
});

test('MariaDB difference: another server in the domain does not matter, the seq does', () => {
  // the domain moved from server 101 to 102 (a switch): seq 57 on 102 follows 56 on 101
  assert.deepEqual(gtidDifference('mariadb', '1-102-60', '1-101-56').text, ['1-102-57..60']);
  assert.ok(gtidDifference('mariadb', '1-101-56', '1-102-60').empty);
  // of two GTIDs of one domain in a list, the higher seq is the position
  assert.deepEqual(gtidDifference('mariadb', '1-101-50,1-102-58', '1-101-56').text, ['1-102-57..58']);
});

test('MariaDB difference: empty sides', () => {
  assert.ok(gtidDifference('mariadb', '', '').empty);
  assert.ok(gtidDifference('mariadb', '', '1-101-5').empty);
  const d = gtidDifference('mariadb', '1-101-5', '');
  assert.deepEqual(d.text, ['1-101-1..5']);
  assert.equal(d.count, 5n);
  assert.ok(gtidDifference('mariadb', '1-101-5', '1-101-5').empty);
  assert.ok(gtidDifference('mariadb', '1-101-5', '1-101-9').empty);
});

test('MariaDB merge: per domain the higher of the positions', () => {
  assert.equal(mariaMerge('1-102-10,2-201-5', '1-101-20', '', '3-1-1'), '1-101-20,2-201-5,3-1-1');
});

test('MariaDB binlog states: a server the other never logged at that seq is named', () => {
  // the replica 102 wrote 1-102-57 itself; the master then wrote its own 57..60 and the replica
  // took them: positions are equal, the states show the replica's own write
  const node = '1-101-60,1-102-57,11-101-3';
  const master = '1-101-60,11-101-3';
  assert.deepEqual(mariaStateExtra(node, master, '1-101-60,11-101-3').text, ['1-102-57']);
  // the master logged 102's writes up to 57 (102 was master before): nothing errant
  assert.ok(mariaStateExtra(node, '1-101-60,1-102-57,11-101-3', '1-101-60,11-101-3').empty);
  // past the master's position: the position difference names it, not the state
  assert.ok(mariaStateExtra('1-102-70', '1-101-60', '1-101-60').empty);
});

// ---- gtidDifference, MySQL --------------------------------------------------------------------

test('MySQL difference: set difference of intervals', () => {
  const d = gtidDifference('mysql', `${U1}:1-100`, `${U1}:1-40:51-100`);
  assert.deepEqual(d.text, [`${U1}:41-50`]);
  assert.equal(d.count, 10n);
});

test('MySQL difference: holes split an interval; single transactions; several uuids', () => {
  const d = gtidDifference('mysql', `${U1}:1-10,${U2}:1-3`, `${U1}:2-4:6`);
  assert.deepEqual(d.text, [`${U1}:1:5:7-10`, `${U2}:1-3`]);
  assert.equal(d.count, 1n + 1n + 4n + 3n);
});

test('MySQL difference: empty sides and covered sets', () => {
  assert.ok(gtidDifference('mysql', '', `${U1}:1-5`).empty);
  assert.ok(gtidDifference('mysql', `${U1}:1-5`, `${U1}:1-9`).empty);
  assert.equal(gtidDifference('mysql', `${U1}:1-5`, '').count, 5n);
  assert.ok(gtidDifference('mysql', '', '').empty);
});

// ---- errantGtids, replicatesFrom ---------------------------------------------------------------

function state(o: Partial<NodeReplState>): NodeReplState {
  return {
    label: 'n', flavor: 'mariadb', serverId: 1, domainId: 1, readOnly: true, logBin: true, logSlaveUpdates: true, binlogFormat: 'ROW',
    gtidBinlogPos: '', gtidCurrentPos: '', gtidSlavePos: '', replica: null, delaySeconds: 0, ...o,
  };
}

test('errantGtids: a replica caught up with its master has none', () => {
  const m = state({ serverId: 101, gtidBinlogPos: '1-101-60,11-101-3', gtidCurrentPos: '1-101-60,11-101-3', gtidBinlogState: '1-101-60,11-101-3' });
  const r = state({ serverId: 102, gtidBinlogPos: '1-101-58,11-101-3', gtidCurrentPos: '1-101-58,11-101-3', gtidSlavePos: '1-101-58,11-101-3', gtidBinlogState: '1-101-58,11-101-3' });
  assert.ok(errantGtids(r, m).empty);
});

test('errantGtids: a write of its own past the master, and one the master has passed since', () => {
  const m = state({ serverId: 101, gtidBinlogPos: '1-101-60', gtidCurrentPos: '1-101-60', gtidBinlogState: '1-101-60' });
  const ahead = state({ serverId: 102, gtidBinlogPos: '1-102-61', gtidCurrentPos: '1-102-61', gtidSlavePos: '1-101-60', gtidBinlogState: '1-101-60,1-102-61' });
  assert.deepEqual(errantGtids(ahead, m).text, ['1-102-61']);
  const passed = state({ serverId: 102, gtidBinlogPos: '1-101-60', gtidCurrentPos: '1-101-60', gtidSlavePos: '1-101-60', gtidBinlogState: '1-101-60,1-102-57' });
  const e = errantGtids(passed, m);
  assert.deepEqual(e.text, ['1-102-57']);
  assert.equal(e.count, 1n);
  // a master that does not log what it replicates has a binlog state that proves nothing
  assert.ok(errantGtids(passed, { ...m, logSlaveUpdates: false }).empty);
});

test('errantGtids: a former master whose writes the new master has is clean; its lost writes are named', () => {
  const newMaster = state({ serverId: 102, gtidBinlogPos: '1-102-70', gtidCurrentPos: '1-102-70', gtidBinlogState: '1-101-60,1-102-70' });
  const oldMaster = state({ serverId: 101, gtidBinlogPos: '1-101-60', gtidCurrentPos: '1-101-60', gtidSlavePos: '', gtidBinlogState: '1-101-60' });
  assert.ok(errantGtids(oldMaster, newMaster).empty);
  const lost = state({ serverId: 101, gtidBinlogPos: '1-101-62', gtidCurrentPos: '1-101-62', gtidBinlogState: '1-101-62' });
  const promotedEarly = state({ serverId: 102, gtidBinlogPos: '1-101-60', gtidCurrentPos: '1-101-60', gtidBinlogState: '1-101-60' });
  assert.deepEqual(errantGtids(lost, promotedEarly).text, ['1-101-61..62']);
});

test('errantGtids on MySQL: gtid_executed set difference', () => {
  const m = state({ flavor: 'mysql', gtidBinlogPos: `${U1}:1-100`, gtidCurrentPos: `${U1}:1-100` });
  const r = state({ flavor: 'mysql', gtidBinlogPos: `${U1}:1-90,${U2}:1`, gtidCurrentPos: `${U1}:1-90,${U2}:1` });
  assert.deepEqual(errantGtids(r, m).text, [`${U2}:1`]);
});

function channel(o: Partial<ReplicaStatus>): ReplicaStatus {
  return {
    channel: '', sourceHost: '127.0.0.1', sourcePort: 3307, ioState: 'Yes', sqlState: 'Yes', lagSeconds: 0, usingGtid: 'Slave_Pos',
    retrievedGtid: '', executedGtid: '', lastIoError: '', lastSqlError: '', ...o,
  };
}

test('replicatesFrom: host:port as configured (loopback spellings alike), both threads running', () => {
  const s = state({ replica: channel({}) });
  assert.ok(replicatesFrom(s, { host: '127.0.0.1', port: 3307 }));
  assert.ok(replicatesFrom(s, { host: 'localhost', port: 3307 }));
  assert.ok(!replicatesFrom(s, { host: '127.0.0.1', port: 3308 }));
  assert.ok(!replicatesFrom(s, { host: '10.0.0.1', port: 3307 }));
  assert.ok(!replicatesFrom(state({ replica: channel({ sqlState: 'No' }) }), { host: '127.0.0.1', port: 3307 }));
  assert.ok(!replicatesFrom(state({ replica: channel({ ioState: 'Connecting' }) }), { host: '127.0.0.1', port: 3307 }));
  assert.ok(!replicatesFrom(state({}), { host: '127.0.0.1', port: 3307 }));
});

// ---- replicationCredentials ---------------------------------------------------------------------

const TOPO = (extra: string, clusterExtra = '') => `
zones: [bj]
${extra}
clusters:
  c1:
${clusterExtra}
    zones:
      bj:
        master: {host: 127.0.0.1, port: 3307}
`;

test('replicationCredentials: none named is undefined', async () => {
  assert.equal(await replicationCredentials(parseTopology(TOPO(''), '/x/ezctl.yaml'), 'c1'), undefined);
});

test('replicationCredentials: a defaults file beside the topology file; the cluster\'s own wins', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-repl-'));
  try {
    writeFileSync(join(dir, 'repl.cnf'), '[client]\nuser=repl\npassword="s3cret"\n', { mode: 0o600 });
    const t = parseTopology(TOPO('replCredentials: {user: repl, defaultsFile: repl.cnf}'), join(dir, 'ezctl.yaml'));
    const c = await replicationCredentials(t, 'c1');
    assert.deepEqual(c, { user: 'repl', password: 's3cret', source: `defaults file ${join(dir, 'repl.cnf')}` });
    process.env.EZCTL_TEST_REPL_PW = 'fromenv';
    const t2 = parseTopology(TOPO('replCredentials: {user: repl, defaultsFile: repl.cnf}', '    replCredentials: {user: repl2, passwordEnv: EZCTL_TEST_REPL_PW}'), join(dir, 'ezctl.yaml'));
    assert.deepEqual(await replicationCredentials(t2, 'c1'), { user: 'repl2', password: 'fromenv', source: '$EZCTL_TEST_REPL_PW' });
    // the global --defaults-file is the admin's: it does not change the replication user
    assert.equal((await replicationCredentials(t, 'c1', { defaultsFile: join(dir, 'nope.cnf') }))?.user, 'repl');
  } finally {
    delete process.env.EZCTL_TEST_REPL_PW;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('replicationCredentials: the user may come from the defaults file; none at all is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-repl-'));
  try {
    writeFileSync(join(dir, 'r.cnf'), '[client]\nuser=replu\npassword=pw\n', { mode: 0o600 });
    const t = parseTopology(TOPO('replCredentials: {defaultsFile: r.cnf}'), join(dir, 'ezctl.yaml'));
    assert.equal((await replicationCredentials(t, 'c1'))?.user, 'replu');
    const t2 = parseTopology(TOPO('replCredentials: {passwordEnv: X_UNSET_FOR_TEST}'), join(dir, 'ezctl.yaml'));
    await assert.rejects(replicationCredentials(t2, 'c1'), /replCredentials names no user/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('replCredentials: a password in the topology file is refused', () => {
  assert.throws(() => parseTopology(TOPO('replCredentials: {user: repl, password: x}'), '/x/ezctl.yaml'), (e: Error & { details?: string[] }) => {
    return (e.details ?? []).some((l) => /replCredentials\.password: passwords do not belong/.test(l));
  });
});
