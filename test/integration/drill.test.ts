// `ezctl drill`: one short run of each drill against one sandbox (two zones, a replica each,
// HAProxy, DRC both ways, the demo rows), in an order where each leaves the sandbox as it found it
// (the drills undo their faults; master-kill rejoins the old master, zone-loss moves the shards
// home); a drill killed -9 mid-fault and `drill cleanup`; the refusals (not a sandbox, partition
// without the sandbox's relays). Every run's JSON report must show its invariants held: no
// acknowledged write lost or applied twice, the zones identical after `drc wait`, never two
// writable nodes in a zone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { EZCTL, show, type RunResult } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { drcStart, drcStop } from '../helpers/drc.js';
import { loadTopology } from '../../src/core/config/load.js';

let sb: TestSandbox;
let drcPid: number | undefined;
const stopped = new Set<number>();

before(async () => {
  // the zones behind relays without delay (`--wan-latency 0ms`): the partition drill cuts them
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 1, proxy: true, load: 1000, wanLatency: '0ms' });
  drcPid = await drcStart(sb);
});

after(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  }
  if (sb) await drcStop(sb, drcPid).catch(() => undefined);
  await sb?.down();
});

async function drill(name: string, ...args: string[]): Promise<{ r: RunResult; j: any }> {
  const r = await sb.run(['--json', 'drill', name, '--duration', '3s', '--tps', '15', ...args], { timeoutMs: 240_000 });
  let j: any;
  try {
    j = r.json();
  } catch {
    assert.fail(show(r));
  }
  return { r, j };
}

/** What every drill must show, whatever its fault. */
function held(name: string, r: RunResult, j: any): void {
  const failed = j.invariants.filter((i: any) => !i.pass);
  assert.equal(r.code, 0, `${name}: ${JSON.stringify(failed, null, 1)}\n${r.stderr.slice(-3000)}`);
  assert.equal(j.passed, true);
  assert.ok(j.writes.acknowledged > 0, `${name}: the workload wrote`);
  assert.equal(j.writes.lost, 0);
  assert.equal(j.writes.appliedTwice, 0);
  assert.equal(j.check.consistent, true);
  for (const inv of ['drc-converged', 'one-writable-master', 'zones-consistent', 'no-lost-writes', 'no-write-applied-twice']) {
    assert.ok(j.invariants.some((i: any) => i.name === inv && i.pass), `${name}: ${inv}`);
  }
  assert.ok(j.drcLag.beforeMs !== null && j.drcLag.afterMs !== null, `${name}: DRC lag before and after`);
  assert.ok(!existsSync(join(sb.dir, 'drill-state.json')), `${name}: no drill state left`);
}

const pidOf = (name: string): number => JSON.parse(readFileSync(join(sb.dir, 'sandbox.json'), 'utf8')).nodes.find((n: { name: string }) => n.name === name).pid;
const loadTopologyMaster = (zone: string) => loadTopology(sb.config).master('demo', zone).name;
const procState = (pid: number) => /State:\s+(\S)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];

test('master-hang: SIGSTOP past detection, SIGCONT: unreachable, never failed over, never two writable masters', async () => {
  const { r, j } = await drill('master-hang');
  held('master-hang', r, j);
  assert.ok(j.detectMs !== null, 'the watch saw it unreachable');
  assert.ok(j.invariants.some((i: any) => i.name === 'hung-master-not-failed-over' && i.pass));
  assert.equal(j.facts.failedOver, false);
});

test('a drill killed -9 mid-fault: `drill cleanup` continues the stopped master; the next drill finds nothing left', async () => {
  const master = 'bj-master';
  const pid = pidOf(master);
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, 'drill', 'master-hang', '--duration', '60s', '--tps', '5'], { stdio: 'ignore' });
  try {
    // the fault recorded, then injected
    await eventually(async () => existsSync(join(sb.dir, 'drill-state.json')) && JSON.parse(readFileSync(join(sb.dir, 'drill-state.json'), 'utf8')).faults.length > 0 && procState(pid) === 'T', 30_000, 'the master SIGSTOPped by the drill');
    stopped.add(pid);
    child.kill('SIGKILL');
    await eventually(async () => child.exitCode !== null || child.signalCode !== null, 5000, 'the drill gone');
    assert.equal(procState(pid), 'T', 'left stopped by the killed drill');
    const c = await sb.run(['--json', 'drill', 'cleanup']);
    assert.equal(c.code, 0, show(c));
    const cj = c.json();
    assert.equal(cj.drill, 'master-hang');
    assert.equal(cj.reverted.length, 1, show(c));
    assert.match(cj.reverted[0].done, /SIGCONT/);
    assert.notEqual(procState(pid), 'T', 'continued');
    stopped.delete(pid);
    assert.ok(!existsSync(join(sb.dir, 'drill-state.json')));
    assert.deepEqual(readdirSync(sb.dir).filter((f) => f.startsWith('drill-')), [], 'the killed drill\'s ack log removed');
    const again = await sb.run(['--json', 'drill', 'cleanup']);
    assert.equal(again.json().drill, null, 'nothing left');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test('a drill interrupted (SIGINT) mid-fault undoes it before it exits 130', async () => {
  const pid = pidOf('bj-master');
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, 'drill', 'master-hang', '--duration', '60s', '--tps', '5'], { stdio: 'ignore' });
  try {
    await eventually(async () => procState(pid) === 'T', 30_000, 'the master SIGSTOPped by the drill');
    stopped.add(pid);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((res) => (child.exitCode !== null ? res(child.exitCode) : child.once('exit', (c) => res(c))));
    assert.equal(code, 130);
    assert.notEqual(procState(pid), 'T', 'continued by the drill itself');
    stopped.delete(pid);
    assert.ok(!existsSync(join(sb.dir, 'drill-state.json')));
    assert.deepEqual(readdirSync(sb.dir).filter((f) => f.startsWith('drill-')), [], 'its ack log removed');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test('master-kill: kill -9 the master, the watch fails over inside the drill, the old master returns fenced (then rejoins)', async () => {
  const { r, j } = await drill('master-kill');
  held('master-kill', r, j);
  assert.ok(j.detectMs !== null && j.recoverMs !== null);
  assert.ok(j.invariants.some((i: any) => i.name === 'failed-over' && i.pass));
  assert.ok(j.invariants.some((i: any) => i.name === 'old-master-fenced' && i.pass));
  // rejoined, or kept fenced with the reason (what it has that its successor lacks)
  assert.ok(j.notes.some((n: string) => /rejoined zone bj|stays fenced: emha rejoin refused/.test(n)), JSON.stringify(j.notes));
});

test('switch-under-load: emha switch there and back, gz move of two shards there and back', async () => {
  // in sh: bj's old master rejoins after master-kill only when it has nothing its successor lacks
  // (a kill -9 can leave it ahead: then it stays fenced, and bj has no replica to switch to)
  const { r, j } = await drill('switch-under-load', '--zone', 'sh');
  held('switch-under-load', r, j);
  assert.equal(j.facts.switches.length, 4);
  assert.ok(j.facts.switches.every((s: any) => s.outcome === 'done'), JSON.stringify(j.facts.switches));
});

test('drc-crash: the daemon killed -9 twice and started again; nothing lost or applied twice', async () => {
  const { r, j } = await drill('drc-crash', '--kills', '2', '--seed', '7');
  held('drc-crash', r, j);
  assert.equal(j.facts.recoveriesMs.length, 2);
  assert.equal(j.timeline.filter((t: any) => t.event === 'fault').length, 2);
});

test('clock-skew: one zone 5 s ahead under libfaketime: LWW resolves every conflict the same in both zones, and the zone ahead wins', async () => {
  const { r, j } = await drill('clock-skew', '--zone', 'sh');
  held('clock-skew', r, j);
  assert.ok(j.facts.skewMs > 4000, `skew ${j.facts.skewMs}`);
  assert.equal(j.facts.lww.differ, 0);
  // written in sh first (its clock 5 s ahead), 500 ms later in bj: both zones keep sh's earlier write
  assert.equal(j.facts.lww.keptTheEarlierWriteOfTheZoneAhead, j.facts.lww.rows);
  assert.ok(j.notes.some((n: string) => /last-writer-wins/.test(n)));
  // the servers run with the real clock again
  const pid = pidOf('sh-master');
  assert.ok(!readFileSync(`/proc/${pid}/environ`, 'utf8').includes('faketime'));
});

test('zone-loss: every server of sh killed, its shards moved to bj with --force-dead-source, sh back and its shards home', async () => {
  const { r, j } = await drill('zone-loss');
  held('zone-loss', r, j);
  assert.equal(j.zone, 'sh');
  assert.ok(j.invariants.some((i: any) => i.name === 'shards-moved' && i.pass));
  assert.ok(j.invariants.some((i: any) => i.name === 'shards-home' && i.pass));
  assert.ok(j.invariants.some((i: any) => i.name === 'stray-write-reconciled' && i.pass), 'the stray write at the returned zone reached every zone');
  assert.ok(j.recoverMs !== null);
});

test('partition: the link between bj and sh cut for the duration, healed: DRC stalls, catches up, the zones converge', async () => {
  const { r, j } = await drill('partition');
  held('partition', r, j);
  assert.ok(j.detectMs !== null, 'DRC lag over 1 s seen while cut');
  assert.ok(j.recoverMs !== null, 'both directions under 1 s after the heal');
  const net = await sb.run(['--json', 'sandbox', 'net', '--dir', sb.dir]);
  assert.ok(net.json().links.every((l: any) => !l.cut), show(net));
});

test('an invariant that breaks: exit 1, the report names the row (and the zones\' positions)', async () => {
  // a row only bj has, unlogged (DRC never carries it): the drill's check full must find it
  const db = await sb.db(loadTopologyMaster('bj'));
  try {
    await db.exec('SET SESSION sql_log_bin = 0');
    await db.exec("INSERT INTO ezdemo.merchants (id, shard_id, name, lat, lng) VALUES (999001, 1, 'only in bj', 0, 0)");
    const { r, j } = await drill('master-hang', '--duration', '1s');
    assert.equal(r.code, 1, show(r));
    assert.equal(j.passed, false);
    const broken = j.invariants.find((i: any) => i.name === 'zones-consistent');
    assert.equal(broken.pass, false);
    assert.ok(broken.evidence.some((e: string) => /merchants.*999001/.test(e)), JSON.stringify(broken));
    assert.ok(broken.evidence.some((e: string) => /gtid_binlog_pos/.test(e)), JSON.stringify(broken));
    assert.ok(j.invariants.filter((i: any) => i.name !== 'zones-consistent').every((i: any) => i.pass), 'only that one');
  } finally {
    await db.exec('DELETE FROM ezdemo.merchants WHERE id = 999001').catch(() => undefined);
    await db.close();
  }
});

test('refusals (exit 4, nothing done): a topology that is not a sandbox', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'ezctl-drill-test-'));
  try {
    // the same servers through a copy of the file outside the sandbox folder: not a sandbox
    const cfg = join(scratch, 'ezctl.yaml');
    copyFileSync(sb.config, cfg);
    for (const f of ['client.cnf', 'app.cnf', 'repl.cnf']) copyFileSync(join(sb.dir, f), join(scratch, f));
    const run = (args: string[]) => new Promise<{ code: number | null; stderr: string }>((res) => {
      const c = spawn(process.execPath, [EZCTL, '--config', cfg, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      c.stderr.on('data', (d) => (stderr += d));
      c.on('close', (code) => res({ code, stderr }));
    });
    const a = await run(['drill', 'master-kill', '--duration', '2s']);
    assert.equal(a.code, 4, a.stderr);
    assert.match(a.stderr, /not a sandbox/);
    const b = await run(['drill', 'master-kill', '--duration', '2s', '--allow-non-sandbox']);
    assert.equal(b.code, 4, b.stderr);
    assert.match(b.stderr, /needs access to the hosts/);
    const bad = await run(['drill', 'no-such-drill']);
    assert.equal(bad.code, 2, bad.stderr);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
