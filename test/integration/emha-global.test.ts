// emha in a global cluster (model: global, writerZone bj): two zones, one replica each, a proxy per
// zone, DRC both ways; sh's proxy sends its writes to bj's master through a cross-zone slot. A
// switch of bj's master moves both proxies' write routes (a write through sh's proxy lands on the
// new master); a switch of sh's master is not refused for sh's proxy writing to bj, and leaves that
// route alone; a job holding the cluster (a gz switch) refuses both emha switch and failover in
// their preflight; a failover of bj's master after kill -9 moves both proxies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { drcStart, drcStop, sqlOn } from '../helpers/drc.js';
import { show } from '../helpers/cli.js';
import { connect, type Db } from '../../src/core/db/connect.js';
import { loadTopology } from '../../src/core/config/load.js';
import { routingTarget } from '../../src/core/proxy/index.js';
import { readDefaultsFile } from '../../src/core/config/defaults-file.js';
import { makeCtx } from '../../src/core/context.js';
import { acquireJob } from '../../src/core/job/job.js';
import { CLUSTER_TARGET } from '../../src/core/job/lease.js';
import { readRoutes, publishRoutes } from '../../src/core/routes/index.js';
import { applyDrift } from '../../src/core/emha/drift.js';

let sb: TestSandbox;
let drcPid: number | undefined;
const CLUSTER = 'demo';
const ZONES = ['bj', 'sh'];

/** the sandbox's node (its original name) at the address the topology file gives the zone's master now */
function fileMaster(zone: string): string {
  const m = loadTopology(sb.config).master(CLUSTER, zone);
  return sb.nodes.find((n) => n.port === m.port)!.name;
}

/** where the zone's proxy sends writes now, as its running HAProxy says (the sandbox's node name) */
async function proxyWrite(zone: string): Promise<string | null> {
  const h = await routingTarget(loadTopology(sb.config), CLUSTER, zone)!.health();
  assert.ok(h.up, `proxy ${zone} up: ${h.problems.join('; ')}`);
  assert.deepEqual(h.problems, [], `proxy ${zone}: its running routes agree with its configuration`);
  return h.write ? sb.nodes.find((n) => n.port === h.write!.port)!.name : null;
}

async function proxyRead(zone: string): Promise<string[]> {
  const h = await routingTarget(loadTopology(sb.config), CLUSTER, zone)!.health();
  return h.read.map((r) => sb.nodes.find((n) => n.port === r.port)!.name).sort();
}

/** a write by the application user through the zone's proxy: the server_id it landed on */
async function writeThroughProxy(zone: string, id: number): Promise<number> {
  const [host, port] = loadTopology(sb.config).cluster(CLUSTER).config.zones[zone]!.proxy!.write.split(':');
  const password = readDefaultsFile(join(sb.dir, 'app.cnf')).password!;
  const db: Db = await connect({ label: `app via proxy ${zone}`, host: host!, port: Number(port), user: 'app', password, passwordSource: 'test' }, { timeoutMs: 2000 });
  try {
    await db.exec('INSERT INTO ledger.entries (id, zone) VALUES (?, ?)', [id, zone]);
    return Number(await db.value('SELECT @@server_id'));
  } finally {
    await db.close().catch(() => undefined);
  }
}

/** the write lands on `node` (retried a little: the proxy's old sessions were shut) */
async function landsOn(zone: string, node: string, id: number): Promise<void> {
  let last = '';
  await eventually(async () => {
    try {
      const sid = await writeThroughProxy(zone, id);
      last = `server_id ${sid}`;
      return sid === sb.node(node).serverId;
    } catch (e) {
      last = (e as Error).message;
      return false;
    }
  }, 10_000, `a write through ${zone}'s proxy landing on ${node} (server_id ${sb.node(node).serverId}); last: ${last}`).catch((e: Error) => {
    throw new Error(`${e.message}; last: ${last}`);
  });
}

function pidOf(name: string): number {
  const st = JSON.parse(readFileSync(join(sb.dir, 'sandbox.json'), 'utf8')) as { nodes: Array<{ name: string; pid: number }> };
  return st.nodes.find((n) => n.name === name)!.pid;
}

const ctxOf = () => makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });

/** hold a gz switch's lease on the cluster at sh's master while fn runs */
async function withGzLease(fn: (jobId: string) => Promise<void>): Promise<void> {
  const ctx = ctxOf();
  const topo = await ctx.topology();
  const job = await acquireJob(ctx, { cluster: CLUSTER, kind: 'gz-switch', targets: [CLUSTER_TARGET], zones: [{ zone: 'sh', node: topo.master(CLUSTER, 'sh') }] });
  try {
    await fn(job.id);
  } finally {
    await job.release();
  }
}

before(async () => {
  // a global cluster: the file says model: global, writerZone: bj, and sh's proxy routes its
  // writes to bj's master through a slot for it
  sb = await startSandbox({ zones: ZONES, replicas: 1, proxy: true, model: 'global', writerZone: 'bj' });
  for (const m of ['bj-master', 'sh-master']) {
    await sqlOn(sb, m, 'CREATE DATABASE ledger', 'CREATE TABLE ledger.entries (id BIGINT PRIMARY KEY, zone VARCHAR(8) NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))');
  }
  drcPid = await drcStart(sb);
  assert.equal(await proxyWrite('sh'), 'bj-master');
  assert.equal(await proxyWrite('bj'), 'bj-master');
});

after(async () => {
  if (sb) {
    await drcStop(sb, drcPid);
    await sb.down();
  }
});

test('switch of the write zone bj: both proxies move their write route to the new master; a write through sh lands there', async () => {
  const plan = await sb.run(['--json', 'emha', 'switch', '--zone', 'bj']);
  assert.equal(plan.code, 0, show(plan));
  const p = plan.json();
  assert.deepEqual(p.assessment.refusals, [], show(plan));

  const r = await sb.run(['--json', 'emha', 'switch', '--zone', 'bj', '--execute']);
  assert.equal(r.code, 0, show(r));
  const out = r.json();
  assert.equal(out.result.outcome, 'done', show(r));
  assert.equal(fileMaster('bj'), 'bj-replica1');
  assert.equal(await proxyWrite('bj'), 'bj-replica1');
  assert.equal(await proxyWrite('sh'), 'bj-replica1', "sh's proxy follows the write zone's new master");
  assert.equal(typeof out.outcome.writeBlockedMs, 'number');
  assert.match(out.outcome.proxy, /demo\/bj.*demo\/sh/);
  // the application in sh writes again, on the new master (on the old one: read_only, ERROR 1290)
  await landsOn('sh', 'bj-replica1', 1);
  await landsOn('bj', 'bj-replica1', 2);
  // sh's read pool untouched: its own replica
  assert.deepEqual(await proxyRead('sh'), ['sh-replica1']);
  // the plan said so
  assert.equal(p.assessment.global.writeZone, 'bj');
  assert.deepEqual(p.assessment.proxies.map((x: any) => [x.zone, x.write, x.movesWrite]), [['bj', 'bj-master', true], ['sh', 'bj-master', true]]);
  assert.match(p.steps.find((s: any) => s.name === 'move-proxy').does, /proxies of sh/);
});

test('kill -9 at move-proxy (before, and after its work) in the write zone\'s switch: --resume leaves both proxies on the new master', async () => {
  for (const at of ['before', 'after'] as const) {
    const from = fileMaster('bj');
    const to = from === 'bj-master' ? 'bj-replica1' : 'bj-master';
    const r = await sb.run(['emha', 'switch', '--zone', 'bj', '--execute'], { env: { ...process.env, EZCTL_FAULT_KILL_AT: `emha-switch:move-proxy:${at}` } });
    assert.notEqual(r.code, 0, `move-proxy:${at} was not killed: ${show(r)}`);
    const db = await sb.db('sh-master');
    const id = String(await db.value("SELECT job_id FROM _ezctl.job_steps WHERE seq = 1 AND detail LIKE '%emha-switch%' ORDER BY at_ms DESC LIMIT 1"));
    await db.close();
    const again = await sb.run(['--json', 'emha', 'switch', '--resume', id]);
    assert.equal(again.code, 0, `move-proxy:${at} --resume: ${show(again)}`);
    assert.equal(again.json().result.outcome, 'done');
    assert.equal(fileMaster('bj'), to);
    assert.equal(await proxyWrite('bj'), to, `move-proxy:${at}: bj's proxy`);
    assert.equal(await proxyWrite('sh'), to, `move-proxy:${at}: sh's proxy`);
    await landsOn('sh', to, at === 'before' ? 10 : 11);
  }
});

test('switch of sh (not the write zone): not refused for sh writing to bj; sh keeps writing to bj, only its read pool moves', async () => {
  const bjMaster = fileMaster('bj');
  const plan = await sb.run(['--json', 'emha', 'switch', '--zone', 'sh']);
  assert.equal(plan.code, 0, show(plan));
  const p = plan.json();
  assert.deepEqual(p.assessment.refusals, [], show(plan));

  const r = await sb.run(['--json', 'emha', 'switch', '--zone', 'sh', '--execute']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.json().result.outcome, 'done', show(r));
  assert.equal(fileMaster('sh'), 'sh-replica1');
  assert.equal(await proxyWrite('sh'), bjMaster, "sh's proxy still writes to the write zone's master");
  assert.equal(await proxyWrite('bj'), bjMaster);
  assert.deepEqual(await proxyRead('sh'), ['sh-master'], "sh's read pool: the demoted old master");
  await landsOn('sh', bjMaster, 3);
  assert.deepEqual(p.assessment.proxies.map((x: any) => [x.zone, x.write, x.movesWrite]), [['sh', bjMaster, false]]);

  // a proxy of sh sending writes to sh's own master in a global cluster is refused, naming the write zone
  const shTarget = routingTarget(loadTopology(sb.config), CLUSTER, 'sh')!;
  const shm = sb.node('sh-replica1');
  await shTarget.moveWrite({ name: 'sh-replica1', host: shm.host, port: shm.port });
  try {
    const bad = await sb.run(['emha', 'switch', '--zone', 'sh']);
    assert.equal(bad.code, 4, show(bad));
    assert.match(bad.stdout + bad.stderr, /routes writes to sh-replica1 .*not to the master .* of the write zone bj/, show(bad));
  } finally {
    const b = sb.node(bjMaster);
    await shTarget.moveWrite({ name: bjMaster, host: b.host, port: b.port });
  }
});

test('a gz switch holding the cluster refuses emha switch in its preflight', async () => {
  await withGzLease(async (jobId) => {
    const r = await sb.run(['emha', 'switch', '--zone', 'bj', '--execute']);
    assert.equal(r.code, 4, show(r));
    assert.match(r.stdout + r.stderr, new RegExp(`another job holds the cluster: zone sh: gz-switch job ${jobId}`), show(r));
  });
});

test('failover of the write zone\'s master (kill -9): both proxies move to the new master; a gz lease refuses it first', async () => {
  const dead = fileMaster('bj');
  const cand = dead === 'bj-master' ? 'bj-replica1' : 'bj-master';
  process.kill(pidOf(dead), 'SIGKILL');
  const dry = await eventually(async () => {
    const r = await sb.run(['--json', 'emha', 'failover', '--zone', 'bj']);
    return r.code === 0 ? r : undefined;
  }, 30_000, 'the replica to see the master gone');
  const plan = dry.json();
  assert.equal(plan.candidate.port, sb.node(cand).port);

  await withGzLease(async (jobId) => {
    const r = await sb.run(['emha', 'failover', '--zone', 'bj']);
    assert.equal(r.code, 4, show(r));
    assert.match(r.stdout + r.stderr, new RegExp(`gz-switch job ${jobId}`), show(r));
  });

  const r = await sb.run(['--json', 'emha', 'failover', '--zone', 'bj', '--execute', '--anti-flap', '0s']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.json().result.outcome, 'done', show(r));
  assert.equal(fileMaster('bj'), cand);
  assert.equal(await proxyWrite('bj'), cand);
  assert.equal(await proxyWrite('sh'), cand, "sh's proxy follows the write zone's new master");
  await landsOn('sh', cand, 4);
  await landsOn('bj', cand, 5);
  assert.equal(plan.global.writeZone, 'bj');
  assert.deepEqual(plan.writeRouteZones, ['bj', 'sh']);
});

test('the write zone is the routing table\'s when published (over the file\'s writerZone); a blocked table is refused', async () => {
  const ctx = ctxOf();
  const topo = await ctx.topology();
  const read = await readRoutes(ctx, topo, CLUSTER);
  // the table says sh takes the writes (the file still says bj): bj is not the write zone any more
  const v1 = await publishRoutes(ctx, topo, CLUSTER, { ...read.routes, writeZone: 'sh' }, { expectVersion: read.routes.version, required: ZONES, reason: 'test: write zone sh', noFileMirror: true });
  assert.equal(loadTopology(sb.config).cluster(CLUSTER).config.writerZone, 'bj');
  const r = await sb.run(['--json', 'emha', 'switch', '--zone', 'bj']);
  assert.equal(r.code, 4, show(r)); // the plan, refused: bj's proxy writes to bj, not to the write zone sh
  const a = r.json().assessment;
  assert.deepEqual(a.global && [a.global.writeZone, a.global.from, a.global.version], ['sh', 'routes', v1.routes.version]);
  assert.deepEqual(a.proxies.map((x: any) => [x.zone, x.movesWrite, x.expectedWrite]), [['bj', false, loadTopology(sb.config).master(CLUSTER, 'sh').name]]);
  assert.ok(a.refusals.some((x: string) => /routes writes to .* of the write zone sh \(routing table v\d+\)/.test(x)), JSON.stringify(a.refusals));
  // blocked (a gz switch between its block and its flip): refused
  await publishRoutes(ctx, topo, CLUSTER, { ...v1.routes, writeZone: 'bj', state: 'blocked' }, { expectVersion: v1.routes.version, required: ZONES, reason: 'test: blocked', noFileMirror: true });
  const b = await sb.run(['emha', 'switch', '--zone', 'bj', '--execute']);
  assert.equal(b.code, 4, show(b));
  assert.match(b.stdout + b.stderr, /the routing table \(v\d+\) is blocked/, show(b));
});

test('emha watch\'s repair of a master changed by hand in sh (not the write zone) leaves sh\'s proxy writing to bj\'s master', async () => {
  const bjMaster = fileMaster('bj');
  const oldSh = fileMaster('sh');
  const newSh = oldSh === 'sh-master' ? 'sh-replica1' : 'sh-master';
  // a switch done by hand: the old master read_only, the replica promoted
  await sqlOn(sb, oldSh, 'SET GLOBAL read_only = 1');
  await sqlOn(sb, newSh, 'STOP SLAVE', "RESET SLAVE ALL", 'SET GLOBAL read_only = 0');
  const ctx = ctxOf();
  const topo = await ctx.topology();
  const name = (n: string) => topo.nodes(CLUSTER).find((x) => x.port === sb.node(n).port)!.name;
  const { change } = await applyDrift(ctx, topo, CLUSTER, { kind: 'master-changed', zone: 'sh', from: name(oldSh), to: name(newSh), detail: 'by hand' });
  assert.equal(change.error, undefined, JSON.stringify(change));
  assert.equal(fileMaster('sh'), newSh);
  assert.equal(await proxyWrite('sh'), bjMaster, "sh's proxy still writes to the write zone's master");
  assert.equal(await proxyWrite('bj'), bjMaster);
});
