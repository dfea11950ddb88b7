// DRC over three zones (six directions): the two-zone suite's ledger and kill -9 tests on three.
// Every zone master takes its own writes and two peers' appliers at once; a workload with
// conflicts writes the same rows in every zone while the daemon is killed with -9 and started
// again. Every acknowledged ledger row must be in every zone exactly once, the zones identical,
// and the lock conflicts the appliers met counted (retried in place, not seconds of lag).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { drcStart, drcStatus, drcStop, drcWaitAll, sqlOn } from '../helpers/drc.js';
import { Applier, type QueuedTx } from '../../src/core/drc/apply.js';
import type { Routes } from '../../src/core/routes/index.js';
import { LedgerWriter, createLedger, assertAppliedOnce } from '../helpers/ledger.js';
import { pidAlive } from '../../src/core/process/pids.js';

let sb: TestSandbox;
let pid: number | undefined;
const ZONES = ['bj', 'sh', 'gz'];
const MASTERS = ZONES.map((z) => `${z}-master`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 0, load: 100 });
  await createLedger(sb, MASTERS);
  pid = await drcStart(sb);
});

after(async () => {
  await LedgerWriter.haltAll();
  if (sb) await drcStop(sb, pid);
  await sb?.down();
});

test('three zones, a workload with conflicts in every zone and the daemon killed -9 mid-stream: every acknowledged write in every zone once, the zones identical, lock conflicts counted per direction', async () => {
  const writers = ZONES.map((z) => new LedgerWriter(sb, z, () => `${z}-master`));
  writers.forEach((w) => w.start());
  const workload = sb.run(['sandbox', 'workload', '--tps', '25', '--seconds', '6', '--conflict-ratio', '0.2']);
  await sleep(2000);
  const st = await drcStatus(sb);
  assert.equal(st.directions.length, 6, JSON.stringify(st.directions.map((d: any) => `${d.from}->${d.to}`)));
  process.kill(st.pid, 'SIGKILL');
  await eventually(async () => !pidAlive(st.pid), 5000, 'the daemon to die');
  pid = await drcStart(sb);
  const w = await workload;
  assert.equal(w.code, 0, show(w));
  await LedgerWriter.haltAll();
  assert.ok(writers.every((x) => x.acked.length > 50), `writers made progress: ${writers.map((x) => x.acked.length)}`);
  await drcWaitAll(sb, ZONES, '60s');
  await assertAppliedOnce(sb, MASTERS, writers);
  const after = await drcStatus(sb);
  for (const d of after.directions) {
    assert.equal(d.state, 'running', `${d.from}->${d.to}: ${d.lastError}`);
    assert.ok(Number.isInteger(d.retries?.deadlock) && Number.isInteger(d.retries?.lockWait), `${d.from}->${d.to} retries: ${JSON.stringify(d.retries)}`);
  }
  const text = await sb.run(['drc', 'status']);
  assert.match(text.stdout, /retries/, show(text));
});

test('an applier locks only the rows that are there: a key it is about to insert blocks neither the zone\'s own writers nor another zone\'s applier, and a row inserted meanwhile is read again and judged by last writer wins', async () => {
  for (const m of MASTERS) await sqlOn(sb, m, 'CREATE DATABASE IF NOT EXISTS ezgap', 'CREATE TABLE IF NOT EXISTS ezgap.t (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))');
  await sqlOn(sb, 'bj-master', "INSERT INTO ezgap.t (id, v) VALUES (10, 'bj')");
  const target = await sb.db('bj-master');
  const own = await sb.db('bj-master'); // the zone's own writer
  await own.exec('SET SESSION innodb_lock_wait_timeout = 3');
  const retries: string[] = [];
  let between: (() => Promise<void>) | undefined;
  const applier = new Applier({
    pipeline: 'gaptest:sh->bj', sourceZone: 'sh', targetZone: 'bj', sourceRank: 1, targetRank: 0, tsColumn: 'drc_ts', blockIllegal: false,
    fileRoutes: { cluster: 'demo', model: 'sharding', version: 0, writeZone: null, state: 'active', shards: [], tables: {}, missedBy: [] } as unknown as Routes,
    onLockRetry: (why) => retries.push(why),
    afterLockingRead: async () => {
      const f = between;
      between = undefined; // the first attempt only
      await f?.();
    },
  }, target);
  const insert = (id: number, v: string, ts: string): QueuedTx => ({
    tx: { gtid: `2-201-${id}`, seq: BigInt(id), timestampMs: Date.now(), changes: [{ kind: 'insert', schema: 'ezgap', table: 't', pk: ['id'], after: { id, v, drc_ts: ts } }] },
    positionAfter: `2-201-${id}`,
  });
  try {
    await Applier.prepareSession(target, undefined);
    // Under REPEATABLE READ the locking read of absent key 20 took a gap lock above 10: the zone's
    // own insert of 30 waited for the applier's commit (here: its lock wait timeout), and a second
    // applier doing the same deadlocked with it.
    between = async () => {
      await own.exec("INSERT INTO ezgap.t (id, v) VALUES (30, 'bj own')");
    };
    await applier.apply([insert(20, 'sh', '2026-01-01 00:00:00.000')]);
    assert.deepEqual(retries, []);
    // A row inserted at the target between the read (absent) and the write, newer: kept, not overwritten.
    between = async () => {
      await own.exec("INSERT INTO ezgap.t (id, v, drc_ts) VALUES (40, 'bj newer', '2030-01-01 00:00:00.000')");
    };
    const r = await applier.apply([insert(40, 'sh older', '2026-01-01 00:00:00.000')]);
    assert.deepEqual(retries, ['rowAppeared']);
    assert.equal(r.conflicts.length, 1, JSON.stringify(r.conflicts));
    assert.equal(r.conflicts[0]!.winner, 'target');
    const rows = await target.query<{ id: number; v: string }>('SELECT id, v FROM ezgap.t ORDER BY id');
    assert.deepEqual(rows.map((x) => `${x.id}:${x.v}`), ['10:bj', '20:sh', '30:bj own', '40:bj newer']);
  } finally {
    await target.close();
    await own.close();
  }
});
