// `ezctl emha switch` on real servers: two zones (2 replicas each), one HAProxy per zone, DRC both
// ways. A switch under a ledger workload through each zone's proxy (never two writable masters,
// every acknowledged row exactly once in both zones, DRC, proxy, file and MHA config following);
// each preflight refusal and a write block given up past --lock-wait (the master left writable,
// no step journaled done); kill -9 at every step (the engine's EZCTL_FAULT_KILL_AT), then --resume
// or --rollback: exactly one writable master, the proxy on it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { drcStart, drcStop, drcWaitAll, patchTopology, sqlOn } from '../helpers/drc.js';
import { EZCTL, show } from '../helpers/cli.js';
import { connect, type Db, type Param } from '../../src/core/db/connect.js';
import { loadTopology } from '../../src/core/config/load.js';
import { routingTarget } from '../../src/core/proxy/index.js';
import { makeCtx } from '../../src/core/context.js';
import { acquireJob } from '../../src/core/job/job.js';
import { readDefaultsFile } from '../../src/core/config/defaults-file.js';

let sb: TestSandbox;
let drcPid: number;
const BJ = ['bj-master', 'bj-replica1', 'bj-replica2'];
const ZONES = ['bj', 'sh'];

const sql = (node: string, ...stmts: string[]) => sqlOn(sb, node, ...stmts);

async function value<T>(node: string, q: string, params: Param[] = []): Promise<T> {
  const db = await sb.db(node);
  try {
    return (await db.value(q, params)) as T;
  } finally {
    await db.close();
  }
}

/** bj's nodes whose @@read_only is 0 now */
async function writable(): Promise<string[]> {
  const out: string[] = [];
  for (const n of BJ) if (Number(await value(n, 'SELECT @@global.read_only')) === 0) out.push(n);
  return out;
}

/** The zone's master as the topology file says now (name by address: names move with the file). */
function fileMaster(zone: string): { name: string; port: number } {
  const t = loadTopology(sb.config);
  const m = t.master('demo', zone);
  return { name: sb.nodes.find((n) => n.port === m.port)!.name, port: m.port };
}

async function proxyWrite(zone: string): Promise<string | null> {
  const w = await routingTarget(loadTopology(sb.config), 'demo', zone)!.currentWrite();
  return w ? sb.nodes.find((n) => n.port === w.port)!.name : null;
}

/** exactly one writable node in bj, the file's master, and the proxy writes to it */
async function oneMaster(what: string): Promise<string> {
  const w = await writable();
  assert.equal(w.length, 1, `${what}: writable bj nodes ${JSON.stringify(w)}`);
  assert.equal(fileMaster('bj').name, w[0], `${what}: the file's master`);
  assert.equal(await proxyWrite('bj'), w[0], `${what}: the proxy's write route`);
  return w[0]!;
}

const proxyAddr = (zone: string) => loadTopology(sb.config).cluster('demo').config.zones[zone]!.proxy!.write.split(':');
function appViaProxy(zone: string): Promise<Db> {
  const [host, port] = proxyAddr(zone);
  const password = readDefaultsFile(join(sb.dir, 'app.cnf')).password!;
  return connect({ label: `proxy ${zone}`, host: host!, port: Number(port), user: 'app', password, passwordSource: 'test' }, { timeoutMs: 2000 });
}

/** inserts ledger rows (id from `base`) through the zone's proxy, reconnecting on any error; acked: ids the server acknowledged */
function ledgerWriter(zone: string, base: number) {
  const acked: number[] = [];
  let on = true;
  let errors = 0;
  let lastError = '';
  const done = (async () => {
    let db: Db | undefined;
    for (let id = base; on; id++) {
      try {
        db ??= await appViaProxy(zone);
        await db.exec('INSERT INTO ezdemo.ledger (id, zone, n) VALUES (?, ?, 1)', [id, zone]);
        acked.push(id);
      } catch (e) {
        errors++;
        lastError = (e as Error).message;
        await db?.close().catch(() => undefined);
        db = undefined;
        await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise((r) => setTimeout(r, 3));
    }
    await db?.close().catch(() => undefined);
  })();
  return { acked, errors: () => errors, lastError: () => lastError, stop: async () => ((on = false), await done) };
}

/** asks every bj node for @@read_only every few ms; counts rounds with two writable */
function sampler() {
  let on = true;
  let rounds = 0;
  const bad: string[][] = [];
  const done = (async () => {
    const dbs = new Map<string, Db>();
    while (on) {
      const w: string[] = [];
      for (const n of BJ) {
        try {
          let db = dbs.get(n);
          if (!db) dbs.set(n, (db = await sb.db(n)));
          if (Number(await db.value('SELECT @@global.read_only')) === 0) w.push(n);
        } catch {
          await dbs.get(n)?.close().catch(() => undefined);
          dbs.delete(n); // killed with the old master's client sessions: reconnect
        }
      }
      rounds++;
      if (w.length > 1) bad.push(w);
      await new Promise((r) => setTimeout(r, 3));
    }
    for (const db of dbs.values()) await db.close().catch(() => undefined);
  })();
  return { stop: async () => ((on = false), await done, { rounds, bad }) };
}

async function lastJobId(): Promise<string> {
  return value<string>('sh-master', "SELECT job_id FROM _ezctl.job_steps WHERE seq = 1 AND detail LIKE '%emha-switch%' ORDER BY at_ms DESC LIMIT 1");
}
async function doneSteps(jobId: string): Promise<string[]> {
  const db = await sb.db('sh-master');
  try {
    return (await db.query<{ step: string }>("SELECT step FROM _ezctl.job_steps WHERE job_id = ? AND state = 'done' AND step <> '@job'", [jobId])).map((r) => r.step);
  } finally {
    await db.close();
  }
}

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 2, proxy: true });
  for (const m of ['bj-master', 'sh-master']) {
    await sql(m, 'CREATE DATABASE IF NOT EXISTS ezdemo', 'CREATE TABLE ezdemo.ledger (id INT NOT NULL PRIMARY KEY, zone VARCHAR(8) NOT NULL, n INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))');
  }
  drcPid = await drcStart(sb);
  const mha = await sb.run(['emha', 'mha-config', '--out', join(sb.dir, 'state', 'mha')]);
  assert.equal(mha.code, 0, show(mha));
});

after(async () => {
  if (sb) await drcStop(sb, drcPid);
  await sb?.down();
});

test('a switch under a ledger workload in both zones: never two writable, every acknowledged row once in both zones, DRC, proxy, file and MHA config follow; then back', async () => {
  const plan = await sb.run(['--json', 'emha', 'switch', '--zone', 'bj']);
  assert.equal(plan.code, 0, show(plan));
  const p = plan.json();
  assert.equal(p.assessment.candidate.name, 'bj-replica1');
  assert.deepEqual(p.assessment.refusals, []);
  assert.equal(p.assessment.drc.length, 2);
  assert.equal(await oneMaster('before'), 'bj-master');

  for (const [to, back] of [['bj-replica1', 'bj-master'], ['bj-master', 'bj-replica1']] as const) {
    const bj = ledgerWriter('bj', to === 'bj-replica1' ? 1 : 500_000);
    const sh = ledgerWriter('sh', to === 'bj-replica1' ? 1_000_000 : 1_500_000);
    const s = sampler();
    await eventually(async () => bj.acked.length > 20 && sh.acked.length > 20, 10_000, `writes through both proxies (bj ${bj.acked.length}: ${bj.lastError()}; sh ${sh.acked.length}: ${sh.lastError()})`);
    const r = await sb.run(['--json', 'emha', 'switch', '--zone', 'bj', '--to', to, '--execute']);
    const ackedAt = bj.acked.length;
    await eventually(async () => bj.acked.length > ackedAt + 20, 10_000, 'bj writes on the new master');
    const [, , samples] = await Promise.all([bj.stop(), sh.stop(), s.stop()]);
    assert.equal(r.code, 0, show(r));
    const out = r.json();
    assert.equal(out.result.outcome, 'done');
    assert.deepEqual(out.result.timeline.map((t: any) => t.step), ['block-writes', 'final-position', 'catch-up', 'promote', 'move-proxy', 'topology-drc', 'demote-old-master', 'repoint-replicas', 'mha-config']);
    assert.match(out.outcome.finalPosition, /^\d+-\d+-\d+/);
    assert.equal(typeof out.outcome.writeBlockedMs, 'number');
    assert.equal(out.outcome.drc, 'repointed');
    assert.ok(samples.rounds > 10, `sampled ${samples.rounds} times`);
    assert.deepEqual(samples.bad, [], 'two writable bj nodes at once');
    assert.equal(await oneMaster(`after the switch to ${to}`), to);
    assert.equal(Number(await value(back, 'SELECT @@global.read_only')), 1);
    // every node of bj replicates from the new master
    for (const n of BJ.filter((x) => x !== to)) {
      const st = await (async () => {
        const db = await sb.db(n);
        try {
          return await db.one<any>('SHOW SLAVE STATUS');
        } finally {
          await db.close();
        }
      })();
      assert.equal(Number(st.Master_Port), sb.node(to).port, `${n} replicates from ${to}`);
    }
    // MHA's config: [server1] is the master
    const cnf = readFileSync(join(sb.dir, 'state', 'mha', 'demo-bj.cnf'), 'utf8');
    assert.match(cnf, new RegExp(`\\[server1\\]\\s*hostname=\\S+\\s*port=${sb.node(to).port}\\b`));
    // every acknowledged row exactly once in both zones
    await drcWaitAll(sb, ZONES);
    for (const node of [to, 'sh-master']) {
      const db = await sb.db(node);
      try {
        for (const w of [bj, sh]) {
          const ids = w.acked;
          const rows = await db.query<{ id: number }>(`SELECT id FROM ezdemo.ledger WHERE id IN (${ids.map(() => '?').join(',')})`, ids);
          assert.equal(rows.length, ids.length, `${node}: acknowledged rows present`);
        }
      } finally {
        await db.close();
      }
    }
    // DRC lag back under 1 s within 10 s
    await eventually(async () => {
      const st = (await sb.run(['--json', 'drc', 'status'])).json();
      return st.directions.every((d: any) => d.state === 'running' && d.lagMs !== null && d.lagMs < 1000);
    }, 10_000, 'DRC lag under 1 s');
  }
});

test('preflight refusals: broken replication, lag, errant GTIDs (named), a long-running write, a lease held; nothing touched', async () => {
  const master = await oneMaster('start');
  const [r1, r2] = BJ.filter((n) => n !== master) as [string, string];
  const jobsBefore = await value<number>('sh-master', 'SELECT COUNT(*) FROM _ezctl.job_steps');
  const refusedWith = async (args: string[], re: RegExp, what: string) => {
    const r = await sb.run(['emha', 'switch', '--zone', 'bj', '--execute', ...args]);
    assert.equal(r.code, 4, `${what}: ${show(r)}`);
    assert.match(r.stderr + r.stdout, re, what);
    assert.deepEqual(await writable(), [master], `${what}: the master left writable`);
    assert.equal(Number(await value('sh-master', 'SELECT COUNT(*) FROM _ezctl.job_steps')), Number(jobsBefore), `${what}: nothing journaled`);
  };

  // broken replication
  await sql(r1, 'STOP SLAVE SQL_THREAD');
  await refusedWith(['--to', r1], new RegExp(`${r1}'s replication is broken`), 'broken');
  await sql(r1, 'START SLAVE');

  // lag: the replica's SQL thread waits on a table lock while the master writes
  const locker = await sb.db(r1);
  await locker.exec('LOCK TABLES ezdemo.ledger WRITE');
  await sql(master, 'INSERT INTO ezdemo.ledger (id, zone, n) VALUES (9000001, "bj", 1)');
  await new Promise((r) => setTimeout(r, 2500));
  await refusedWith(['--to', r1, '--max-lag', '1s'], new RegExp(`${r1} lags \\d+ s behind the master`), 'lag');
  await locker.exec('UNLOCK TABLES');
  await locker.close();

  // errant GTID (its own domain, so it can be wiped from the replica's binlog afterwards)
  await sql(r2, 'SET SESSION sql_log_bin = 0', 'CREATE TABLE ezdemo.errant (id INT PRIMARY KEY)', 'SET SESSION sql_log_bin = 1', 'SET SESSION gtid_domain_id = 77', 'INSERT INTO ezdemo.errant VALUES (1)');
  const sid = await value<number>(r2, 'SELECT @@server_id');
  await refusedWith(['--to', r2], new RegExp(`${r2} has 1 errant GTID.*77-${sid}-1`), 'errant');
  await sql(r2, 'STOP SLAVE', 'SET SESSION sql_log_bin = 0', 'DROP TABLE ezdemo.errant', 'RESET MASTER', 'START SLAVE');

  // a long-running write on the master
  const w = await sb.appDb(master);
  await w.exec('BEGIN');
  await w.exec('INSERT INTO ezdemo.ledger (id, zone, n) VALUES (9000002, "bj", 1)');
  await new Promise((r) => setTimeout(r, 1200));
  await refusedWith(['--running-updates-limit', '1s'], /a write transaction on .* has run for \d+ s, more than --running-updates-limit 1s: session \d+ app@/, 'running write');
  await w.exec('ROLLBACK');
  await w.close();

  // a lease held by another job on the cluster
  const ctx = makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
  const topo = await ctx.topology();
  const job = await acquireJob(ctx, { cluster: 'demo', kind: 'osc', targets: ['ezdemo.ledger'], zones: ZONES.map((z) => ({ zone: z, node: topo.master('demo', z) })) });
  try {
    await refusedWith([], new RegExp(`another job holds the cluster: zone bj: osc job ${job.id}`), 'lease');
  } finally {
    await job.release();
  }
  // all clear again
  const ok = await sb.run(['emha', 'switch', '--zone', 'bj']);
  assert.equal(ok.code, 0, show(ok));
});

test('a write block held back past --lock-wait: given up, exit 4, the master left writable, nothing journaled done', async () => {
  const master = await oneMaster('start');
  // with the plugin the LOCK TABLES holder itself is named; without it the holder shows as idle and
  // only a DRC transaction that happened to queue behind it could be (CI once saw none)
  if (!Number(await value(master, "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO'"))) {
    await sql(master, "INSTALL SONAME 'metadata_lock_info'");
  }
  const holder = await sb.db(master);
  const holderId = Number((await holder.query<{ id: number }>('SELECT CONNECTION_ID() AS id'))[0]!.id);
  await holder.exec('LOCK TABLES ezdemo.ledger WRITE');
  try {
    const r = await sb.run(['--json', 'emha', 'switch', '--zone', 'bj', '--execute', '--lock-wait', '1s', '--grace', '1h']);
    assert.equal(r.code, 4, show(r));
    const out = r.json();
    assert.equal(out.result.outcome, 'rolled-back');
    assert.equal(out.result.error.step, 'block-writes');
    assert.match(out.result.error.message, new RegExp(`writes not blocked within 1000 ms.*held back by .*session ${holderId} \\(`));
    const id = await lastJobId();
    assert.deepEqual(await doneSteps(id), []);
  } finally {
    await holder.exec('UNLOCK TABLES').catch(() => undefined);
    await holder.close();
  }
  assert.deepEqual(await writable(), [master]);
  assert.equal(Number(await value(master, 'SELECT @@global.read_only')), 0);
  assert.equal(await oneMaster('after'), master);
});

const STEPS = ['block-writes', 'final-position', 'catch-up', 'promote', 'move-proxy', 'topology-drc', 'demote-old-master', 'repoint-replicas', 'mha-config'];
const BEFORE_PONR = new Set(['block-writes', 'final-position', 'catch-up']);

test('kill -9 at every step, before and after its work: --resume (or --rollback before the point of no return) ends with exactly one writable master, the proxy on it', async () => {
  let i = 0;
  for (const step of STEPS) {
    for (const at of ['before', 'after'] as const) {
      const master = await oneMaster(`before the kill at ${step}:${at}`);
      const r = await sb.run(['emha', 'switch', '--zone', 'bj', '--execute'], { env: { ...process.env, EZCTL_FAULT_KILL_AT: `emha-switch:${step}:${at}` } });
      assert.notEqual(r.code, 0, `${step}:${at} was not killed: ${show(r)}`);
      const id = await lastJobId();
      const passed = !BEFORE_PONR.has(step) && !(step === 'promote' && at === 'before');
      const how = passed || i++ % 2 === 0 ? '--resume' : '--rollback';
      const again = await sb.run(['--json', 'emha', 'switch', how, id]);
      assert.equal(again.code, passed ? 0 : 4, `${step}:${at} ${how}: ${show(again)}`);
      const out = again.json();
      assert.equal(out.result.outcome, passed ? 'done' : 'rolled-back', `${step}:${at} ${how}`);
      const now = await oneMaster(`after ${step}:${at} and ${how}`);
      if (passed) assert.notEqual(now, master, `${step}:${at}: switched`);
      else assert.equal(now, master, `${step}:${at}: rolled back to the old master`);
    }
  }
});

test('SIGINT before the point of no return: the switch rolls back before it exits (130), the old master writable again', async () => {
  const master = await oneMaster('start');
  // a hook holding the job at before-ponr, with the writes blocked
  const hook = join(sb.dir, 'slow-hook.sh');
  writeFileSync(hook, '#!/bin/sh\nsleep 3\n', { mode: 0o755 });
  patchTopology(sb, (doc) => doc.setIn(['hooks'], doc.createNode([{ run: hook, events: ['before-ponr'] }])));
  try {
    const child = spawn(process.execPath, [EZCTL, '--config', sb.config, '--json', 'emha', 'switch', '--zone', 'bj', '--execute'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    await eventually(async () => Number(await value(master, 'SELECT @@global.read_only')) === 1, 10_000, 'the write block in place');
    child.kill('SIGINT');
    assert.equal(await exited, 130, stdout);
  } finally {
    patchTopology(sb, (doc) => doc.deleteIn(['hooks']));
  }
  assert.equal(await oneMaster('after the interrupt'), master);
  const id = await lastJobId();
  const state = await value<string>('sh-master', "SELECT state FROM _ezctl.job_steps WHERE job_id = ? AND step = '@job' ORDER BY seq DESC LIMIT 1", [id]);
  assert.equal(state, 'rolled-back');
});
