// DRC under faults: the daemon killed with SIGKILL mid-stream again and again, a zone master
// killed and restarted, a zone's replica promoted and DRC repointed. A ledger proves that
// nothing acknowledged was lost and nothing was applied twice: every zone inserts ledger rows,
// and a trigger in every zone counts each row's insert (an insert applied twice, even as an
// upsert, fires it twice). The audit table itself is excluded from DRC.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { drcStart, drcStatus, drcStop, drcWaitAll } from '../helpers/drc.js';
import { parseTopology } from '../../src/core/config/load.js';
import { pidAlive } from '../../src/core/process/pids.js';
import { LedgerWriter, createLedger, assertAppliedOnce as assertLedger } from '../helpers/ledger.js';

let sb: TestSandbox;
let pid: number | undefined;
const ZONES = ['bj', 'sh'];
let masters = { bj: 'bj-master', sh: 'sh-master' } as Record<string, string>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


const writer = (zone: string) => new LedgerWriter(sb, zone, () => masters[zone]!);
const assertAppliedOnce = (writers: LedgerWriter[]) => assertLedger(sb, ZONES.map((z) => masters[z]!), writers);

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 1, load: 100 });
  await createLedger(sb, ['bj-master', 'sh-master']);
  pid = await drcStart(sb);
});

// a failed test leaves its writers looping: halted before the next test, whose comparison they would spoil
afterEach(() => LedgerWriter.haltAll());

after(async () => {
  // a failed test may leave writers looping; they would keep this file's process alive
  await LedgerWriter.haltAll();
  if (sb) await drcStop(sb, pid);
  await sb?.down();
});

test('a direction without a checkpoint whose first session fails starts where it first read its source: a write made once drc start returned is replicated', async () => {
  // bj->sh starts afresh (no checkpoint), and its applier lock at sh is held for longer than the
  // session waits for it (5 s): the first session reads bj's position, then fails; the second
  // used to read bj's position again, after the write below, which then never reached sh
  await drcWaitAll(sb, ZONES, '30s');
  await drcStop(sb, pid);
  pid = undefined;
  const sh = await sb.db('sh-master');
  const bj = await sb.db('bj-master');
  try {
    await sh.exec("DELETE FROM _ezctl.drc_checkpoint WHERE pipeline = 'demo:bj->sh'");
    assert.equal(Number(await sh.value("SELECT GET_LOCK('ezctl-drc:demo:bj->sh', 0)")), 1);
    pid = await drcStart(sb);
    const res = await bj.exec("INSERT INTO ezdemo.ledger (zone, n) VALUES ('bj', -1)");
    await sleep(6000);
    await sh.exec("SELECT RELEASE_LOCK('ezctl-drc:demo:bj->sh')");
    await drcWaitAll(sb, ZONES, '30s');
    assert.equal(Number(await sh.value('SELECT COUNT(*) FROM ezdemo.ledger WHERE id = ?', [res.insertId])), 1, 'the write made right after drc start reached sh');
  } finally {
    await sh.close();
    await bj.close();
  }
});

test('kill -9 of the daemon at random moments under load, restarted each time: nothing lost, nothing applied twice', async () => {
  const writers = ZONES.map((z) => writer(z));
  writers.forEach((w) => w.start());
  // a workload on the demo tables too, with conflicts, while the daemon dies and comes back
  const workload = sb.run(['sandbox', 'workload', '--tps', '80', '--seconds', '8', '--conflict-ratio', '0.1']);
  for (let i = 0; i < 6; i++) {
    await sleep(300 + Math.floor(Math.random() * 900));
    const st = await drcStatus(sb);
    assert.equal(st.running, true);
    process.kill(st.pid, 'SIGKILL');
    await eventually(async () => !pidAlive(st.pid), 5000, 'the daemon to die');
    await sleep(Math.floor(Math.random() * 400));
    pid = await drcStart(sb);
  }
  const w = await workload;
  assert.equal(w.code, 0, show(w));
  await Promise.all(writers.map((x) => x.halt()));
  assert.ok(writers.every((x) => x.acked.length > 100), `writers made progress: ${writers.map((x) => x.acked.length)}`);
  await drcWaitAll(sb, ZONES, '60s');
  await assertAppliedOnce(writers);
});

test('a zone master killed and restarted during replication: DRC recovers by itself', async () => {
  const writers = ZONES.map((z) => writer(z));
  writers.forEach((w) => w.start());
  await sleep(800);
  const victim = sb.node('sh-master');
  const before = await drcStatus(sb);
  const shPid = JSON.parse(readFileSync(`${sb.dir}/sandbox.json`, 'utf8')).nodes.find((n: any) => n.name === 'sh-master').pid;
  process.kill(shPid, 'SIGKILL');
  await eventually(async () => !pidAlive(shPid), 5000, 'sh-master to die');
  await eventually(async () => (await drcStatus(sb)).directions.some((d: any) => d.state === 'retrying'), 15_000, 'DRC to notice');
  // monitoring sees it: exit 3, the failing directions named with their error and its time
  const down = await sb.run(['--json', 'drc', 'status']);
  assert.equal(down.code, 3, show(down));
  const failing = down.json().directions.filter((d: any) => d.state !== 'running');
  assert.ok(failing.length > 0 && failing.every((d: any) => d.lastError && Date.parse(d.lastErrorAt) > 0), JSON.stringify(failing));
  await sleep(1000);
  const up = await sb.run(['sandbox', 'up', '--dir', sb.dir]);
  assert.equal(up.code, 0, show(up));
  await sleep(1500);
  await Promise.all(writers.map((x) => x.halt()));
  assert.ok(writers[1]!.errors > 0, 'the sh writer saw the outage');
  await drcWaitAll(sb, ZONES, '60s');
  const after = await drcStatus(sb);
  assert.equal(after.pid, before.pid, 'the same daemon recovered, no restart');
  assert.ok(after.directions.every((d: any) => d.state === 'running'), JSON.stringify(after.directions));
  const healthy: any = await eventually<any>(async () => {
    const r = await sb.run(['--json', 'drc', 'status']);
    return r.code === 0 ? r.json() : undefined;
  }, 10_000, 'drc status to exit 0 after the recovery');
  assert.deepEqual(healthy.directions.map((d: any) => d.lastError), [null, null], 'the recovered directions no longer show the error');
  assert.equal(victim.port, sb.node('sh-master').port);
  await assertAppliedOnce(writers);
});

test('drc repoint after promoting a zone\'s replica: nothing lost or repeated', async () => {
  const writers = ZONES.map((z) => writer(z));
  writers.forEach((w) => w.start());
  await sleep(800);
  // The switch, as a master-switch tool does it: stop the zone's writers and DRC's writes into
  // it, let the replica catch up, promote it, repoint DRC, resume.
  await writers[1]!.halt();
  let r = await sb.run(['drc', 'pause', '--direction', 'bj->sh']);
  assert.equal(r.code, 0, show(r));
  await sleep(500); // a batch in flight commits
  const old = await sb.db('sh-master');
  await old.exec('SET GLOBAL read_only = 1');
  const pos = String(await old.value('SELECT @@gtid_binlog_pos'));
  await old.close();
  const rep = await sb.db('sh-replica1');
  assert.equal(Number(await rep.value('SELECT MASTER_GTID_WAIT(?, 30)', [pos])), 0);
  await rep.exec('STOP SLAVE');
  await rep.exec('RESET SLAVE ALL');
  await rep.exec('SET GLOBAL read_only = 0');
  await rep.close();
  const newPort = sb.node('sh-replica1').port;
  r = await sb.run(['drc', 'repoint', '--zone', 'sh', '--master', `127.0.0.1:${newPort}`]);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /the daemon reconnected its directions/);
  const topo = parseTopology(readFileSync(sb.config, 'utf8'), sb.config);
  assert.equal(topo.master('demo', 'sh').port, newPort);
  assert.ok(topo.nodes('demo').some((n) => n.role === 'replica' && n.port === sb.node('sh-master').port), 'the old master is listed as a replica');
  masters = { bj: 'bj-master', sh: 'sh-replica1' };
  r = await sb.run(['drc', 'resume']);
  assert.equal(r.code, 0, show(r));
  const after = writer('sh');
  after.start();
  await sleep(1500);
  await Promise.all([writers[0]!.halt(), after.halt()]);
  await drcWaitAll(sb, ZONES, '20s');
  const st = await drcStatus(sb);
  assert.ok(st.directions.every((d: any) => d.state === 'running'), JSON.stringify(st.directions));
  assert.ok(st.directions.find((d: any) => d.to === 'sh').target.includes(String(newPort)));
  await assertAppliedOnce([...writers, after]);
});
