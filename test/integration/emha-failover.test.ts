// ezctl emha failover and rejoin against a real two-zone sandbox (2 replicas per zone, a proxy per
// zone, DRC both ways): kill -9 of a master under a workload through the proxy, the GTIDs lost
// reported equal to the set difference measured independently on the old master once it is back;
// the old master comes back read_only and receives nothing (no DRC, no proxy route); a SIGSTOPped
// master is not failed over while its replicas still see it; anti-flap; rejoin refused with a
// transaction the new master lacks, accepted without.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { show } from '../helpers/cli.js';
import { drcStart, drcStop, drcWaitAll, sqlOn } from '../helpers/drc.js';
import { connect, type Db } from '../../src/core/db/connect.js';
import { loadTopology } from '../../src/core/config/load.js';
import { readDefaultsFile } from '../../src/core/config/defaults-file.js';
import { editTopologyFile, setZoneMaster } from '../../src/core/config/editor.js';
import { makeCtx } from '../../src/core/context.js';
import { DrcClient } from '../../src/core/drc/client.js';

let sb: TestSandbox;
let drcPid: number | undefined;
const CLUSTER = 'demo';

/** the sandbox's own record of its nodes (pids change when `sandbox up` restarts one) */
function pidOf(name: string): number {
  const st = JSON.parse(readFileSync(join(sb.dir, 'sandbox.json'), 'utf8')) as { nodes: Array<{ name: string; pid: number }> };
  return st.nodes.find((n) => n.name === name)!.pid;
}

function proxyWrite(zone: string): { host: string; port: number } {
  const p = loadTopology(sb.config).cluster(CLUSTER).config.zones[zone]!.proxy!;
  const [host, port] = p.write.split(':');
  return { host: host!, port: Number(port) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The application: one session through the zone's proxy (app user, no SUPER), a ledger row every
 * 20 ms, reconnecting after any error; `acked` holds the ids the server acknowledged.
 */
function ledgerWriter(zone: string) {
  const appPassword = readDefaultsFile(join(sb.dir, 'app.cnf')).password!;
  const acked: number[] = [];
  let errors = 0;
  let on = true;
  const done = (async () => {
    let db: Db | undefined;
    for (let n = 0; on; n++) {
      try {
        const w = proxyWrite(zone);
        db ??= await connect({ label: `app via proxy ${zone}`, host: w.host, port: w.port, user: 'app', password: appPassword, passwordSource: 'test' }, { timeoutMs: 1000 });
        const r = await db.exec('INSERT INTO ledger.entries (zone, n) VALUES (?, ?)', [zone, n]);
        acked.push(Number(r.insertId));
      } catch {
        errors++;
        db?.conn.destroy();
        db = undefined;
        await sleep(100);
      }
      await sleep(20);
    }
    db?.conn.destroy();
  })();
  return { acked, errors: () => errors, stop: async () => ((on = false), await done) };
}

async function q<T = unknown>(node: string, sql: string): Promise<T> {
  const db = await sb.db(node);
  try {
    return (await db.value(sql)) as T;
  } finally {
    await db.close();
  }
}

/** (domain, server) → last seq, from @@gtid_binlog_state */
async function binlogState(node: string): Promise<Map<string, bigint>> {
  const s = String(await q(node, 'SELECT @@gtid_binlog_state'));
  const m = new Map<string, bigint>();
  for (const part of s.split(',').filter(Boolean)) {
    const [d, srv, seq] = part.trim().split('-');
    m.set(`${d}-${srv}`, BigInt(seq!));
  }
  return m;
}

async function writable(nodes: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const n of nodes) {
    try {
      if (Number(await q(n, 'SELECT @@read_only')) === 0) out.push(n);
    } catch {
      /* down */
    }
  }
  return out;
}

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 2, proxy: true });
  // the ledger, created in each zone (DDL does not travel through DRC)
  for (const m of ['bj-master', 'sh-master']) {
    await sqlOn(sb, m, 'CREATE DATABASE ledger', 'CREATE TABLE ledger.entries (id BIGINT AUTO_INCREMENT PRIMARY KEY, zone VARCHAR(8) NOT NULL, n INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))');
  }
  drcPid = await drcStart(sb);
  // MHA's config written where a takeover rewrites it (<stateDir>/mha)
  const mha = await sb.run(['emha', 'mha-config', '--out', join(sb.dir, 'state', 'mha')]);
  assert.equal(mha.code, 0, show(mha));
});

after(async () => {
  if (sb) {
    for (const n of sb.nodes) {
      try {
        process.kill(pidOf(n.name), 'SIGCONT');
      } catch {
        /* gone */
      }
    }
    await drcStop(sb, drcPid);
    await sb.down();
  }
});

let lostReported: string[] = [];

test('failover after kill -9 of the master under a workload: lost GTIDs named, checkpoint set back, old master fenced', async (t) => {
  const bjW = ledgerWriter('bj');
  const shW = ledgerWriter('sh');
  await sleep(1000);
  // the replicas fall behind (their IO threads stop) while the master goes on taking writes
  // that DRC carries to sh: those are the transactions the failover must report lost
  for (const r of ['bj-replica1', 'bj-replica2']) await sqlOn(sb, r, 'STOP SLAVE IO_THREAD');
  // writes the replicas never get: until there are some (1.5 s idle; CI under load saw 19 in all after 2.5 s)
  const atStop = bjW.acked.length;
  await sleep(1500);
  await eventually(async () => bjW.acked.length >= Math.max(atStop + 10, 21), 20_000, `bj writes after the replicas stopped reading (${bjW.acked.length - atStop}, errors ${bjW.errors()})`);
  await bjW.stop();
  assert.ok(bjW.acked.length > 20, `bj writes acknowledged: ${bjW.acked.length}, errors ${bjW.errors()}`);
  // DRC writes no heartbeat to a read_only master: once sh has applied everything, what sh
  // applied is exactly what bj-master committed (DRC keeps running through the failover)
  await sqlOn(sb, 'bj-master', 'SET GLOBAL read_only = 1');
  // (bj->sh only: DRC applies nothing to a read_only master either, so sh->bj waits for the failover)
  const w = await sb.run(['drc', 'wait', '--from', 'bj', '--to', 'sh', '--timeout', '30s']);
  assert.equal(w.code, 0, show(w));
  process.kill(pidOf('bj-master'), 'SIGKILL');
  for (const r of ['bj-replica1', 'bj-replica2']) await sqlOn(sb, r, 'START SLAVE IO_THREAD');
  const bjW2 = ledgerWriter('bj');

  // dry run: the assessment, the candidate and the lost GTIDs, nothing changed
  const dry = await eventually(async () => {
    const r = await sb.run(['--json', 'emha', 'failover', '--zone', 'bj']);
    return r.code === 0 ? r : undefined;
  }, 20_000, 'the replicas to see bj-master gone');
  const plan = dry.json();
  assert.equal(plan.assessment.verdict, 'dead', show(dry));
  assert.ok(plan.assessment.vantages.length === 3, show(dry));
  assert.ok(plan.lost.gtids.length > 0, show(dry));
  assert.equal(loadTopology(sb.config).master(CLUSTER, 'bj').name, 'bj-master', 'a dry run changes nothing');

  const r = await sb.run(['--json', 'emha', 'failover', '--zone', 'bj', '--execute']);
  assert.equal(r.code, 0, show(r));
  const rep = r.json();
  assert.equal(rep.result.outcome, 'done', show(r));
  lostReported = rep.lost.gtids;
  t.diagnostic(`lost: ${JSON.stringify(rep.lost)}; checkpoints: ${JSON.stringify(rep.checkpoints)}`);
  t.diagnostic(`timeline: ${rep.result.timeline.map((e: any) => `${e.step} ${e.action} ${e.durationMs}ms ${e.outcome}`).join(' | ')}; total ${rep.result.totalMs} ms; assessment ${rep.assessment.tookMs} ms`);
  const newMaster = rep.candidate.name as string;
  const other = newMaster === 'bj-replica1' ? 'bj-replica2' : 'bj-replica1';
  const topo = loadTopology(sb.config);
  assert.equal(topo.master(CLUSTER, 'bj').name, newMaster);
  assert.deepEqual(topo.fencedNames(CLUSTER, 'bj'), ['bj-master']);
  // MHA's config of the zone names the new master first, and not the fenced old one
  const mhaCnf = readFileSync(join(sb.dir, 'state', 'mha', `${CLUSTER}-bj.cnf`), 'utf8');
  assert.match(mhaCnf, new RegExp(`\\[server1\\][^\\[]*port=${sb.node(newMaster).port}\\b`), mhaCnf);
  assert.doesNotMatch(mhaCnf, new RegExp(`port=${sb.node('bj-master').port}\\b`), mhaCnf);
  const cp = rep.checkpoints.find((c: any) => c.direction === 'bj->sh');
  assert.ok(cp && cp.via !== 'none', `the bj->sh checkpoint was set back: ${JSON.stringify(rep.checkpoints)}`);
  assert.deepEqual(cp.lost, lostReported);

  // the application writes again through the proxy, to the new master, and DRC carries it to sh
  await eventually(async () => bjW2.acked.length > 10, 20_000, 'writes through the bj proxy after the failover');
  assert.deepEqual(await writable(['bj-replica1', 'bj-replica2']), [newMaster], 'one writable master in bj');
  assert.equal(Number(await q(other, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")), 0);
  await bjW2.stop();
  await shW.stop();
  await drcWaitAll(sb, ['bj', 'sh']);
  const st = await sb.run(['--json', 'drc', 'status']);
  for (const d of st.json().directions) assert.equal(d.state, 'running', show(st));
  // every row acknowledged in bj after the failover is in sh too, and the ones before it
  const shIds = new Set((await (async () => {
    const db = await sb.db('sh-master');
    try {
      return db.query<{ id: number }>("SELECT id FROM ledger.entries WHERE zone = 'bj'");
    } finally {
      await db.close();
    }
  })()).map((x) => Number(x.id)));
  for (const id of [...bjW.acked, ...bjW2.acked]) assert.ok(shIds.has(id), `bj's acknowledged row ${id} is in sh`);
  const bjIds = new Set((await (async () => {
    const db = await sb.db(newMaster);
    try {
      return db.query<{ id: number }>("SELECT id FROM ledger.entries WHERE zone = 'sh'");
    } finally {
      await db.close();
    }
  })()).map((x) => Number(x.id)));
  for (const id of shW.acked) assert.ok(bjIds.has(id), `sh's acknowledged row ${id} is in bj's new master`);

  // independently: the old master back (sandbox up restarts it) has exactly the reported GTIDs beyond the new master
  const up = await sb.run(['sandbox', 'up', '--dir', sb.dir]);
  assert.equal(up.code, 0, show(up));
  assert.equal(Number(await q('bj-master', 'SELECT @@read_only')), 1, 'the old master comes back read_only');
  const oldState = await binlogState('bj-master');
  const newState = await binlogState(newMaster);
  const key = '1-101';
  const hi = oldState.get(key)!;
  const lo = (newState.get(key) ?? 0n) + 1n;
  assert.ok(hi >= lo, `bj-master has transactions the new master lacks (${hi} vs ${lo - 1n})`);
  t.diagnostic(`independently: bj-master ${[...oldState].join(' ')}; ${newMaster} ${[...newState].join(' ')}`);
  assert.deepEqual(lostReported, [hi === lo ? `${key}-${hi}` : `${key}-${lo}..${hi}`]);

  // it receives nothing: no proxy route, no DRC, no replication
  const before = String(await q('bj-master', 'SELECT @@gtid_binlog_state'));
  const bjW3 = ledgerWriter('bj');
  const shW3 = ledgerWriter('sh');
  await eventually(async () => bjW3.acked.length > 5 && shW3.acked.length > 5, 20_000, 'writes in both zones');
  await bjW3.stop();
  await shW3.stop();
  await drcWaitAll(sb, ['bj', 'sh']);
  assert.equal(String(await q('bj-master', 'SELECT @@gtid_binlog_state')), before, 'the fenced old master received nothing');
  // topo check: the fenced node is its only problem, named as fenced (a warning: it needs a person), not as a broken replica
  const tc = await sb.run(['--json', 'topo', 'check']);
  assert.equal(tc.json().ok, true, show(tc));
  assert.deepEqual(tc.json().problems.map((x: any) => [x.node, x.check, x.severity]), [[`${CLUSTER}/bj-master`, 'fenced', 'warning']], show(tc));
  // the application cannot write on it (read_only), and root-less ezctl tools refuse it
  const repoint = await sb.run(['drc', 'repoint', '--zone', 'bj', '--master', `127.0.0.1:${sb.node('bj-master').port}`]);
  assert.equal(repoint.code, 4, show(repoint));
  assert.match(repoint.stderr, /fenced/);

  // even a file that names the fenced node as the zone's master (edited by hand) gets it nothing from DRC
  const ctx = makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
  editTopologyFile(sb.config, (doc) => setZoneMaster(doc, CLUSTER, 'bj', { host: '127.0.0.1', port: sb.node('bj-master').port }));
  try {
    assert.equal(await new DrcClient(ctx, loadTopology(sb.config), CLUSTER).repoint('bj'), true);
    const refusedDirs = await eventually(async () => {
      const x = (await sb.run(['--json', 'drc', 'status'])).json();
      const ds = x.directions.filter((d: any) => d.from === 'bj' || d.to === 'bj');
      return ds.every((d: any) => d.state === 'retrying' && /fenced/.test(d.lastError ?? '')) ? ds : undefined;
    }, 15_000, 'DRC to refuse the fenced node both ways');
    assert.equal(refusedDirs.length, 2);
    await sleep(1000);
    assert.equal(String(await q('bj-master', 'SELECT @@gtid_binlog_state')), before, 'no heartbeat nor DRC write reached the fenced node');
  } finally {
    editTopologyFile(sb.config, (doc) => setZoneMaster(doc, CLUSTER, 'bj', { host: '127.0.0.1', port: sb.node(newMaster).port }));
    await new DrcClient(ctx, loadTopology(sb.config), CLUSTER).repoint('bj');
  }
  await drcWaitAll(sb, ['bj', 'sh']);

  // rejoin: refused, naming the transactions the new master lacks; it stays fenced
  const rj = await sb.run(['emha', 'rejoin', '--node', 'bj-master', '--execute']);
  assert.equal(rj.code, 4, show(rj));
  t.diagnostic(`rejoin: ${rj.stderr.trim().replace(/\n/g, ' | ')}`);
  for (const g of lostReported) assert.ok(rj.stderr.includes(g), `rejoin names ${g}:\n${show(rj)}`);
  // and the rows they wrote, read from bj-master's own binlog: at least the acknowledged bj rows the new master lacks
  const onNew = new Set((await (async () => {
    const db = await sb.db(newMaster);
    try {
      return db.query<{ id: number }>("SELECT id FROM ledger.entries WHERE zone = 'bj'");
    } finally {
      await db.close();
    }
  })()).map((x) => Number(x.id)));
  const lostRows = bjW.acked.filter((id) => !onNew.has(id));
  assert.ok(lostRows.length > 0, 'acknowledged bj rows exist only on the old master (and in sh, through DRC)');
  const named = /ledger\.entries: (\d+) row changes? only bj-master has/.exec(rj.stderr);
  assert.ok(named && Number(named[1]) >= lostRows.length, `rejoin names the rows (${lostRows.length} lost bj rows):\n${show(rj)}`);
  assert.match(rj.stderr, /ezctl check full --cluster demo --tables ledger\.entries/);
  assert.deepEqual(loadTopology(sb.config).fencedNames(CLUSTER, 'bj'), ['bj-master']);
});

test('a SIGSTOPped master whose replicas still see it is not failed over; after SIGCONT one writable master', async () => {
  const pid = pidOf('sh-master');
  process.kill(pid, 'SIGSTOP');
  let r;
  try {
    await sleep(500);
    r = await sb.run(['emha', 'failover', '--zone', 'sh', '--execute']);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  assert.equal(r.code, 4, show(r));
  assert.match(r.stderr, /not dead/);
  assert.match(r.stderr, /sh-replica1: alive/);
  assert.match(r.stderr, /sh-replica2: alive/);
  assert.equal(loadTopology(sb.config).master(CLUSTER, 'sh').name, 'sh-master');
  assert.deepEqual(loadTopology(sb.config).fencedNames(CLUSTER, 'sh'), []);
  assert.deepEqual(await writable(['sh-master', 'sh-replica1', 'sh-replica2']), ['sh-master']);
});

test('anti-flap: a zone that failed over within --anti-flap is refused; so is a candidate whose SQL thread cannot apply its relay log', async () => {
  const newMaster = loadTopology(sb.config).master(CLUSTER, 'bj').name;
  const replica = newMaster === 'bj-replica1' ? 'bj-replica2' : 'bj-replica1';
  // the last replica's SQL thread stops on a row it cannot apply (a duplicate key of its own)
  await sqlOn(sb, replica, 'SET SESSION sql_log_bin = 0', "INSERT INTO ledger.entries (id, zone, n) VALUES (999999, 'x', 0)");
  await sqlOn(sb, newMaster, "INSERT INTO ledger.entries (id, zone, n) VALUES (999999, 'bj', 0)");
  await eventually(async () => {
    const db = await sb.db(replica);
    try {
      const row = (await db.query<{ Last_SQL_Errno: number | string }>('SHOW SLAVE STATUS'))[0];
      return Number(row?.Last_SQL_Errno) === 1062;
    } finally {
      await db.close();
    }
  }, 10_000, `${replica} to stop on the duplicate key`);
  process.kill(pidOf(newMaster), 'SIGKILL');
  try {
    const r = await eventually(async () => {
      const x = await sb.run(['emha', 'failover', '--zone', 'bj', '--execute']);
      return /anti-flap/.test(x.stderr) ? x : undefined;
    }, 20_000, 'the anti-flap refusal');
    assert.equal(r.code, 4, show(r));
    assert.match(r.stderr, /failed over .* ago \(job /);
    assert.match(r.stderr, new RegExp(`${replica}.*SQL thread stopped on relay log it cannot apply`));
    const noFlap = await sb.run(['emha', 'failover', '--zone', 'bj', '--execute', '--anti-flap', '0s']);
    assert.equal(noFlap.code, 4, show(noFlap));
    assert.doesNotMatch(noFlap.stderr, /anti-flap/);
    assert.match(noFlap.stderr, new RegExp(`no replica of zone bj can be promoted: ${replica}: .*Duplicate entry`));
    assert.equal(loadTopology(sb.config).master(CLUSTER, 'bj').name, newMaster, 'nothing changed');
    assert.deepEqual(loadTopology(sb.config).fencedNames(CLUSTER, 'bj'), ['bj-master']);
  } finally {
    const up = await sb.run(['sandbox', 'up', '--dir', sb.dir]);
    assert.equal(up.code, 0, show(up));
    await sqlOn(sb, replica, 'SET SESSION sql_log_bin = 0', 'DELETE FROM ledger.entries WHERE id = 999999', 'START SLAVE');
  }
  assert.equal(Number(await q(newMaster, 'SELECT @@read_only')), 0, 'the file\'s master restarts writable');
  assert.equal(Number(await q('bj-master', 'SELECT @@read_only')), 1);
});

test('rejoin is accepted when the old master has nothing the new one lacks: it replicates and is unfenced', async () => {
  // a quiet zone: no writes, no DRC heartbeats, the replicas caught up
  await drcStop(sb, drcPid);
  drcPid = undefined;
  const pos = String(await q('sh-master', 'SELECT @@gtid_binlog_pos'));
  for (const r of ['sh-replica1', 'sh-replica2']) assert.equal(Number(await q(r, `SELECT MASTER_GTID_WAIT('${pos}', 30)`)), 0);
  process.kill(pidOf('sh-master'), 'SIGKILL');
  const dry = await eventually(async () => {
    const x = await sb.run(['--json', 'emha', 'failover', '--zone', 'sh']);
    return x.code === 0 ? x : undefined;
  }, 20_000, 'the replicas to see sh-master gone');
  assert.deepEqual(dry.json().lost.gtids, [], 'nothing lost in a quiet zone');
  // the failover process itself dies right after the promotion (the engine's kill knob): --resume finishes it
  const killed = await sb.run(['--json', 'emha', 'failover', '--zone', 'sh', '--execute'], { env: { EZCTL_FAULT_KILL_AT: 'emha-failover:promote:after' } });
  assert.equal(killed.signal, 'SIGKILL', show(killed));
  const jobId = /failover job (\S+) /.exec(killed.stderr)?.[1];
  assert.ok(jobId, show(killed));
  const r = await sb.run(['--json', 'emha', 'failover', '--zone', 'sh', '--resume', jobId]);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.json().result.outcome, 'done', show(r));
  assert.ok(r.json().result.timeline.some((e: any) => e.step === 'promote' && e.action === 'check' && e.outcome === 'already done'), show(r));
  const rep = r.json();
  const newMaster = rep.candidate.name as string;
  assert.equal(loadTopology(sb.config).master(CLUSTER, 'sh').name, newMaster);
  const up = await sb.run(['sandbox', 'up', '--dir', sb.dir]);
  assert.equal(up.code, 0, show(up));
  assert.equal(Number(await q('sh-master', 'SELECT @@read_only')), 1);
  const check = await sb.run(['--json', 'emha', 'rejoin', '--node', 'sh-master']);
  assert.equal(check.code, 0, show(check));
  assert.deepEqual(check.json().errant, []);
  const rj = await sb.run(['--json', 'emha', 'rejoin', '--node', 'sh-master', '--execute']);
  assert.equal(rj.code, 0, show(rj));
  assert.equal(rj.json().rejoined, true);
  assert.deepEqual(loadTopology(sb.config).fencedNames(CLUSTER, 'sh'), []);
  await sqlOn(sb, newMaster, "INSERT INTO ledger.entries (zone, n) VALUES ('sh', -1)");
  await eventually(async () => Number(await q('sh-master', "SELECT COUNT(*) FROM ledger.entries WHERE n = -1")) === 1, 10_000, 'the rejoined node to replicate');
  assert.deepEqual(await writable(['sh-master', 'sh-replica1', 'sh-replica2']), [newMaster]);
  drcPid = await drcStart(sb);
});

test('a one-zone cluster fails over with its journal and lease on the candidate, unlogged: nothing the candidate\'s replicas lack', async () => {
  const one = await startSandbox({ zones: ['bj'], replicas: 2 });
  try {
    const st = JSON.parse(readFileSync(join(one.dir, 'sandbox.json'), 'utf8')) as { nodes: Array<{ name: string; pid: number }> };
    const db = await one.db('bj-master');
    const pos = String(await db.value('SELECT @@gtid_binlog_pos'));
    await db.close();
    for (const r of ['bj-replica1', 'bj-replica2']) {
      const rdb = await one.db(r);
      assert.equal(Number(await rdb.value(`SELECT MASTER_GTID_WAIT('${pos}', 30)`)), 0);
      await rdb.close();
    }
    process.kill(st.nodes.find((n) => n.name === 'bj-master')!.pid, 'SIGKILL');
    // killed before the point of no return, then rolled back: the fence is lifted, nothing else changed
    const killed = await eventually(async () => {
      const x = await one.run(['--json', 'emha', 'failover', '--zone', 'bj', '--execute'], { env: { EZCTL_FAULT_KILL_AT: 'emha-failover:apply-relay-log:before' } });
      return x.signal === 'SIGKILL' ? x : /not dead/.test(x.stdout + x.stderr) ? undefined : x;
    }, 20_000, 'the one-zone failover to start');
    assert.equal(killed.signal, 'SIGKILL', show(killed));
    assert.deepEqual(loadTopology(one.config).fencedNames(CLUSTER, 'bj'), ['bj-master'], 'killed after the fence');
    const jobId = /failover job (\S+) /.exec(killed.stderr)![1]!;
    const rb = await one.run(['--json', 'emha', 'failover', '--zone', 'bj', '--rollback', jobId]);
    assert.equal(rb.code, 4, show(rb));
    assert.equal(rb.json().result.outcome, 'rolled-back', show(rb));
    assert.deepEqual(loadTopology(one.config).fencedNames(CLUSTER, 'bj'), []);
    assert.equal(loadTopology(one.config).master(CLUSTER, 'bj').name, 'bj-master');
    const r = await one.run(['--json', 'emha', 'failover', '--zone', 'bj', '--execute']);
    assert.equal(r.code, 0, show(r));
    const rep = r.json();
    assert.equal(rep.result.outcome, 'done', show(r));
    assert.match(rep.result.journal, new RegExp(rep.candidate.name));
    const other = rep.candidate.name === 'bj-replica1' ? 'bj-replica2' : 'bj-replica1';
    // the candidate's binlog has nothing its replica lacks: the journal and the lease wrote no GTID
    const cdb = await one.db(rep.candidate.name);
    const cpos = String(await cdb.value('SELECT @@gtid_binlog_pos'));
    await cdb.close();
    assert.equal(cpos, pos, 'no transaction was written on the new master by the failover itself');
    const odb = await one.db(other);
    try {
      await eventually(async () => {
        const s = (await odb.query<{ Slave_IO_Running: string; Slave_SQL_Running: string; Master_Port: number }>('SHOW SLAVE STATUS'))[0];
        return s && s.Slave_IO_Running === 'Yes' && s.Slave_SQL_Running === 'Yes' && Number(s.Master_Port) === one.node(rep.candidate.name).port;
      }, 10_000, `${other} to replicate from the new master`);
    } finally {
      await odb.close();
    }
    // anti-flap is read from the journal on the new master
    const again = await one.run(['emha', 'failover', '--zone', 'bj']);
    assert.equal(again.code, 4, show(again));
    assert.match(again.stderr, /within --anti-flap/);
  } finally {
    await one.down();
  }
});
