// db/replication.ts against real MariaDB servers: one zone, a master and two replicas. A master
// switch done with the primitives (promote a replica, repoint the old master and the other
// replica under it by GTID), errant transactions found and named, a bounded wait for a position,
// and a former master rejoining after its new master purged the binlogs it already had.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import type { Db } from '../../src/core/db/connect.js';
import { loadTopology } from '../../src/core/config/load.js';
import {
  errantGtids, promote, replicateFrom, replicatesFrom, replicationCredentials, replState, waitApplied,
} from '../../src/core/db/replication.js';

let sb: TestSandbox;
const dbs: Db[] = [];
async function open(name: string): Promise<Db> {
  const d = await sb.db(name);
  dbs.push(d);
  return d;
}
const at = (name: string) => ({ host: '127.0.0.1', port: sb.node(name).port });

before(async () => {
  sb = await startSandbox({ zones: ['bj'], replicas: 2 });
  const m = await open('bj-master');
  await m.exec('CREATE DATABASE rt');
  await m.exec('CREATE TABLE rt.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40) NOT NULL, src INT NOT NULL)');
  await m.exec("INSERT INTO rt.t (v, src) VALUES ('m1', @@server_id), ('m2', @@server_id)");
  // a write as DRC applies it: another zone's domain (domain + offset), this server's id
  await m.exec('SET SESSION gtid_domain_id = 1002');
  await m.exec("INSERT INTO rt.t (v, src) VALUES ('drc', @@server_id)");
  await m.exec('SET SESSION gtid_domain_id = @@GLOBAL.gtid_domain_id');
});

after(async () => {
  for (const d of dbs) await d.close();
  await sb?.down();
});

async function rows(d: Db): Promise<string> {
  return String(await d.value("SELECT GROUP_CONCAT(v ORDER BY id SEPARATOR ',') FROM rt.t"));
}

test('the sandbox names its replication user: replicationCredentials reads repl.cnf', async () => {
  const topo = loadTopology(sb.config);
  const c = await replicationCredentials(topo, 'demo');
  assert.equal(c?.user, 'repl');
  assert.ok(c?.password && c.password.length > 10);
  assert.match(c!.source, /repl\.cnf$/);
});

test('replState: every node of a zone has the zone\'s domain; replicas read_only, replicating from the master', async () => {
  const m = await replState(await open('bj-master'));
  const r1 = await replState(await open('bj-replica1'));
  assert.equal(m.flavor, 'mariadb');
  assert.equal(m.domainId, 1);
  assert.equal(r1.domainId, 1);
  assert.equal(m.replica, null);
  assert.equal(m.readOnly, false);
  assert.equal(r1.readOnly, true);
  assert.ok(m.logBin && m.logSlaveUpdates);
  assert.equal(m.binlogFormat, 'ROW');
  assert.ok(replicatesFrom(r1, at('bj-master')));
  assert.equal(r1.delaySeconds, 0);
  assert.match(m.gtidBinlogPos, /^1-101-\d+,1002-101-1$/);
});

test('a switch with the primitives: promote replica1, the old master and replica2 under it, writes flow, no errant GTIDs', async () => {
  const m = await open('bj-master');
  const r1 = await open('bj-replica1');
  const r2 = await open('bj-replica2');
  const creds = (await replicationCredentials(loadTopology(sb.config), 'demo'))!;
  await m.exec('SET GLOBAL read_only = 1');
  const final = (await replState(m)).gtidBinlogPos;
  const w = await waitApplied(r1, final, { timeoutMs: 10_000 });
  assert.ok(w.reached, `replica1 did not reach ${final}: at ${w.at}`);
  await promote(r1);
  await promote(r1); // idempotent
  const p = await replState(r1);
  assert.equal(p.readOnly, false);
  assert.equal(p.replica, null);
  // RESET SLAVE ALL leaves gtid_slave_pos as it was
  assert.equal(p.gtidSlavePos, final);
  await replicateFrom(m, at('bj-replica1'), { user: creds.user, password: creds.password!, connectRetryS: 1 });
  await replicateFrom(r2, at('bj-replica1')); // keeps the user and password it has
  await replicateFrom(r2, at('bj-replica1')); // idempotent
  await r1.exec("INSERT INTO rt.t (v, src) VALUES ('r1', @@server_id)");
  const pos = (await replState(r1)).gtidBinlogPos;
  assert.match(pos, /1-102-/);
  for (const d of [m, r2]) assert.ok((await waitApplied(d, pos, { timeoutMs: 10_000 })).reached);
  const newMaster = await replState(r1);
  for (const d of [m, r2]) {
    const s = await replState(d);
    assert.ok(s.readOnly);
    assert.ok(replicatesFrom(s, at('bj-replica1')), `${s.label} replicates from ${s.replica?.sourcePort}`);
    assert.ok(errantGtids(s, newMaster).empty, `${s.label}: ${errantGtids(s, newMaster).text.join(' ')}`);
    assert.equal(await rows(d), 'm1,m2,drc,r1');
  }
});

test('an errant write on a replica is found and named, also after the master\'s writes pass its seq', async () => {
  const r1 = await open('bj-replica1');
  const r2 = await open('bj-replica2');
  await r2.exec('SET GLOBAL read_only = 0');
  // an id of its own, so that the master's next rows do not collide with it (a duplicate key
  // would stop replica2's SQL thread: errant writes are not always that loud)
  await r2.exec("INSERT INTO rt.t (id, v, src) VALUES (900001, 'errant', @@server_id)");
  await r2.exec('SET GLOBAL read_only = 1');
  const mine = (await replState(r2)).gtidBinlogPos.split(',').find((g) => g.startsWith('1-103-'))!;
  assert.ok(mine, 'the errant write has a GTID of replica2 in the zone\'s domain');
  let e = errantGtids(await replState(r2), await replState(r1));
  assert.deepEqual(e.text, [mine]);
  assert.equal(e.count, 1n);
  // the master writes on: its seqs pass the errant one and replica2 takes them
  await r1.exec("INSERT INTO rt.t (v, src) VALUES ('r1b', @@server_id), ('r1c', @@server_id)");
  await r1.exec("INSERT INTO rt.t (v, src) VALUES ('r1d', @@server_id)");
  const pos = (await replState(r1)).gtidBinlogPos;
  assert.ok((await waitApplied(r2, pos, { timeoutMs: 10_000 })).reached);
  const s2 = await replState(r2);
  e = errantGtids(s2, await replState(r1));
  assert.deepEqual(e.text, [mine], `position ${s2.gtidBinlogPos}, state ${s2.gtidBinlogState}`);
  // the old master (under replica1 too) has none
  assert.ok(errantGtids(await replState(await open('bj-master')), await replState(r1)).empty);
});

test('waitApplied times out on a stopped SQL thread, reports progress, and reaches once it runs', async () => {
  const r1 = await open('bj-replica1');
  const r2 = await open('bj-replica2');
  await r2.exec('STOP SLAVE SQL_THREAD');
  try {
    await r1.exec("INSERT INTO rt.t (v, src) VALUES ('w1', @@server_id)");
    const pos = (await replState(r1)).gtidBinlogPos;
    const seen: bigint[] = [];
    const w = await waitApplied(r2, pos, { timeoutMs: 400, onProgress: (behind) => seen.push(behind) });
    assert.equal(w.reached, false);
    assert.ok(w.waitedMs >= 400);
    assert.ok(seen.length >= 1 && seen.at(-1)! >= 1n, `progress ${seen.join(',')}`);
    // an aborted wait rejects with the signal's reason
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop waiting')), 50);
    await assert.rejects(waitApplied(r2, pos, { timeoutMs: 10_000, signal: ac.signal }), /stop waiting/);
    await r2.exec('START SLAVE SQL_THREAD');
    const ok = await waitApplied(r2, pos, { timeoutMs: 10_000 });
    assert.ok(ok.reached, `at ${ok.at}`);
  } finally {
    await r2.exec('START SLAVE SQL_THREAD');
  }
});

test('waitApplied reaches a position when the SQL thread starts during the wait (MASTER_GTID_WAIT on what is missing)', async () => {
  const r1 = await open('bj-replica1');
  const r2 = await open('bj-replica2');
  await r2.exec('STOP SLAVE SQL_THREAD');
  try {
    await r1.exec("INSERT INTO rt.t (v, src) VALUES ('w2', @@server_id)");
    const pos = (await replState(r1)).gtidBinlogPos;
    const waiting = waitApplied(r2, pos, { timeoutMs: 20_000 });
    setTimeout(() => void r2.exec('START SLAVE SQL_THREAD'), 300);
    const ok = await waiting;
    assert.ok(ok.reached, `at ${ok.at}`);
  } finally {
    await r2.exec('START SLAVE SQL_THREAD');
  }
});

test('replicateFrom refuses a node with no replication user, before changing anything', async () => {
  const r1 = await open('bj-replica1'); // the master now: RESET SLAVE ALL forgot its user
  await assert.rejects(replicateFrom(r1, at('bj-master')), /has no replication user to keep.*replicates from nobody/);
  assert.equal((await replState(r1)).readOnly, false);
});

test('a former master rejoins after the new master purged binlogs it already had (its gtid_slave_pos is stale)', async () => {
  // switch back to bj-master; bj-replica1 wrote as master, so its gtid_slave_pos is older than its binlog
  const m = await open('bj-master');
  const r1 = await open('bj-replica1');
  const r2 = await open('bj-replica2');
  await r1.exec('SET GLOBAL read_only = 1');
  const final = (await replState(r1)).gtidBinlogPos;
  assert.ok((await waitApplied(m, final, { timeoutMs: 10_000 })).reached);
  await promote(m);
  // the new master keeps only a fresh binlog: everything before it every node already has
  await m.exec('FLUSH BINARY LOGS');
  const file = String((await m.one('SHOW MASTER STATUS'))!.File);
  // right after FLUSH the previous file may still be needed (InnoDB's binlog checkpoint comes
  // later): PURGE then keeps it, without an error
  await eventually(async () => {
    await m.exec(`PURGE BINARY LOGS TO '${file.replace(/'/g, '')}'`);
    return (await m.query('SHOW BINARY LOGS')).length === 1;
  }, 10_000, `the binlogs before ${file} purged`);
  await m.exec("INSERT INTO rt.t (v, src) VALUES ('back', @@server_id)");
  const s1 = await replState(r1);
  assert.notEqual(s1.gtidSlavePos, s1.gtidBinlogPos, 'replica1 wrote as master: its binlog is past its slave position');
  // replica1 was a master (RESET SLAVE ALL forgot its user): it needs the credentials
  const creds = (await replicationCredentials(loadTopology(sb.config), 'demo'))!;
  await replicateFrom(r1, at('bj-master'), { user: creds.user, password: creds.password! });
  await replicateFrom(r2, at('bj-master'));
  const pos = (await replState(m)).gtidBinlogPos;
  for (const d of [r1, r2]) {
    const w = await waitApplied(d, pos, { timeoutMs: 10_000 });
    assert.ok(w.reached, `at ${w.at}`);
    assert.ok(replicatesFrom(await replState(d), at('bj-master')));
  }
  assert.equal(await rows(r1), await rows(m));
  assert.match(await rows(r1), /,back$/);
  // replica2 keeps the row it wrote itself (errant, named above); otherwise it has the same
  assert.equal((await rows(r2)).replace(',errant', ''), await rows(m));
});

test('replicateFrom with a wrong password fails naming the refusal, and leaves no secret in the message', async () => {
  const r2 = await open('bj-replica2');
  const err = await replicateFrom(r2, at('bj-master'), { password: 'not-the-password', verifyMs: 10_000 }).then(() => undefined, (e: Error) => e);
  assert.ok(err, 'a wrong password is an error');
  assert.match(err.message, /bj-replica2 does not replicate from 127\.0\.0\.1:\d+: .*Access denied for user 'repl'/);
  assert.doesNotMatch(err.message, /not-the-password/);
  // the right credentials put it back
  const creds = (await replicationCredentials(loadTopology(sb.config), 'demo'))!;
  await replicateFrom(r2, at('bj-master'), { user: creds.user, password: creds.password! });
  assert.ok(replicatesFrom(await replState(r2), at('bj-master')));
});
