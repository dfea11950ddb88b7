// DRC over three zones (six directions): the two-zone suite's ledger and kill -9 tests on three.
// Every zone master takes its own writes and two peers' appliers at once; a workload with
// conflicts writes the same rows in every zone while the daemon is killed with -9 and started
// again. Every acknowledged ledger row must be in every zone exactly once, the zones identical,
// and the lock conflicts the appliers met counted (retried in place, not seconds of lag).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { drcStart, drcStatus, drcStop, drcWaitAll } from '../helpers/drc.js';
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
