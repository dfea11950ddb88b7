// The routing table (core/routes) on a 2-zone sandbox of real servers: publish and read, a higher
// version winning, a stale zone synced, a zone down at a publish named in missedBy, the topology
// file mirrored, a follower seeing a change and holding writes while blocked, acknowledgements
// (a live, a busy and a stale client), `gz serve` (ETag, 304, long-poll), `gz routes --watch --json`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { EZCTL } from '../helpers/cli.js';
import { makeCtx, type Ctx } from '../../src/core/context.js';
import { loadTopology } from '../../src/core/config/load.js';
import { EzError } from '../../src/core/exit.js';
import { ensureStateSchema, trustStateSchema } from '../../src/core/state/schema.js';
import { connect } from '../../src/core/db/connect.js';
import {
  ackRoutes, publishAt, publishAtOutcome, publishRoutes, readRoutes, readRoutesAt, routesFromTopology, waitAcks, withShards, RoutesFollower, isRouteBlocked, type Routes,
} from '../../src/core/routes/index.js';

let sb: TestSandbox;
let tmp: string;
const stopped: number[] = [];
const children: ChildProcess[] = [];

const ctxFor = (config: string, connectTimeout = 5): Ctx => makeCtx({ config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** a topology file beside the sandbox's with one global cluster `g` on the same servers */
function globalConfig(): string {
  const doc = parseDocument(readFileSync(sb.config, 'utf8'));
  const demo = doc.getIn(['clusters', 'demo']) as { toJSON(): Record<string, unknown> };
  const g = { ...demo.toJSON() };
  delete g.shards;
  g.model = 'global';
  g.writerZone = 'bj';
  doc.setIn(['clusters'], doc.createNode({ g }));
  const path = join(sb.dir, 'global.yaml');
  writeFileSync(path, doc.toString());
  return path;
}

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 1 });
  tmp = mkdtempSync(join(tmpdir(), 'gz-routes-'));
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  }
  await sb?.down();
  rmSync(tmp, { recursive: true, force: true });
});

test('publish and read: version 0 from the file, then version 1 in every zone (and its replica), the owners mirrored into the file', async () => {
  const ctx = ctxFor(sb.config);
  const topo = await ctx.topology();
  const r0 = await readRoutes(ctx, topo, 'demo');
  assert.equal(r0.routes.version, 0);
  assert.deepEqual(r0.routes.shards.map((s) => [s.from, s.to, s.zone]), [[0, 31, 'bj'], [32, 63, 'sh']]);
  assert.deepEqual(r0.zones, { bj: { version: null }, sh: { version: null } });
  assert.deepEqual(r0.stale, []);

  const blocked = withShards(r0.routes, [[0, 7]], { state: 'blocked' });
  const p = await publishRoutes(ctx, topo, 'demo', blocked, { expectVersion: 0, required: ['bj', 'sh'], reason: 'test: block 0-7', jobId: 'job-1' });
  assert.deepEqual(p.written.sort(), ['bj', 'sh']);
  assert.equal(p.routes.version, 1);
  assert.deepEqual(p.routes.missedBy, []);
  assert.equal(p.fileChanged, false, 'blocked is run-time state: the file names the same owners');
  const r1 = await readRoutes(ctx, topo, 'demo');
  assert.equal(r1.routes.version, 1);
  assert.equal(r1.routes.job, 'job-1');
  assert.equal(r1.routes.shards[0]!.state, 'blocked');
  assert.deepEqual(r1.stale, []);
  // binlogged: the zone's replica has it too (and DRC's reader sees it in the zone's binlog)
  const rep = await sb.db('bj-replica1');
  try {
    await eventually(async () => (await readRoutesAt(rep, 'demo'))?.version === 1, 10_000, 'the replica to get version 1');
  } finally {
    await rep.close();
  }
  const bj = await sb.db('bj-master');
  try {
    const logged = await bj.value<number>('SELECT COUNT(*) FROM _ezctl.gz_routes_log WHERE cluster = ? AND version = 1', ['demo']);
    assert.equal(Number(logged), 1, 'the audit log has the version');
  } finally {
    await bj.close();
  }

  // flip 0-7 to sh: the file now names sh as their owner
  const moved = withShards(r1.routes, [[0, 7]], { zone: 'sh', state: 'active' });
  const p2 = await publishRoutes(ctx, topo, 'demo', moved, { expectVersion: 1, required: ['bj', 'sh'], reason: 'test: flip 0-7 to sh' });
  assert.equal(p2.routes.version, 2);
  assert.equal(p2.fileChanged, true);
  const after = loadTopology(sb.config);
  assert.deepEqual(routesFromTopology(after, 'demo').shards.map((s) => [s.from, s.to, s.zone]), [[0, 7, 'sh'], [8, 31, 'bj'], [32, 63, 'sh']]);
  assert.match(readFileSync(sb.config, 'utf8'), /sh: 0-7,32-63/);
});

test('a higher version always wins: a publish planned from an older version is refused with nothing written; a lower publishAt leaves the row; --sync writes the highest version to the stale zone', async () => {
  const ctx = ctxFor(sb.config);
  const topo = await ctx.topology();
  const cur = (await readRoutes(ctx, topo, 'demo')).routes;
  const sh = await sb.db('sh-master');
  const bj = await sb.db('bj-master');
  try {
    // another writer published version cur+5 at sh only
    const ahead: Routes = { ...cur, version: cur.version + 5, reason: 'someone else', publishedAt: new Date().toISOString() };
    assert.equal(await publishAt(sh, ahead), true);
    assert.equal(await publishAt(sh, { ...cur, version: cur.version + 1 }), false, 'a lower version is not written over a higher one');
    assert.equal(await publishAt(sh, ahead), true, 'the same document again: already there');
    assert.equal(await publishAt(sh, { ...ahead, reason: 'a second writer' }), false, "the same version number with another writer's document is not taken for it");
    assert.equal((await readRoutesAt(sh, 'demo'))!.version, cur.version + 5);
    await assert.rejects(
      publishRoutes(ctx, topo, 'demo', withShards(cur, [[8, 9]], { state: 'blocked' }), { expectVersion: cur.version, required: ['bj', 'sh'], reason: 'stale plan' }),
      (e: unknown) => e instanceof EzError && e.exitCode === 4 && /zone sh holds version/.test(e.message),
    );
    assert.equal((await readRoutesAt(bj, 'demo'))!.version, cur.version, 'nothing written at bj');
    const read = await readRoutes(ctx, topo, 'demo');
    assert.equal(read.routes.version, cur.version + 5);
    assert.deepEqual(read.stale, ['bj']);

    const plan = await sb.run(['--json', 'gz', 'routes', '--sync']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.deepEqual(plan.json().zones.map((z: { zone: string }) => z.zone), ['bj']);
    assert.equal((await readRoutesAt(bj, 'demo'))!.version, cur.version, 'the plan wrote nothing');
    const sync = await sb.run(['--json', 'gz', 'routes', '--sync', '--execute']);
    assert.equal(sync.code, 0, sync.stderr);
    assert.equal(sync.json().zones[0].outcome, 'written');
    assert.equal((await readRoutesAt(bj, 'demo'))!.version, cur.version + 5);
    const shown = await sb.run(['--json', 'gz', 'routes']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.deepEqual(shown.json().stale, []);
    assert.equal(shown.json().routes.version, cur.version + 5);
  } finally {
    await sh.close();
    await bj.close();
  }
});

test('publishAt on a multipleStatements connection (the kept ones of a switch): one query, the same outcomes (written, same, higher, conflict), the audit row once, binlogged; the binlog off: written by the statement-at-a-time path', async () => {
  const ctx = ctxFor(sb.config);
  const topo = await ctx.topology();
  const db = await connect(await ctx.endpoint(topo.master('demo', 'bj')), { multipleStatements: true });
  const rep = await sb.db('bj-replica1');
  try {
    assert.equal(db.multipleStatements, true);
    await ensureStateSchema(db);
    trustStateSchema(db);
    let queries = 0;
    const q = db.query.bind(db);
    db.query = ((sql: string, params?: never[]) => (queries++, q(sql, params))) as typeof db.query;
    const base: Routes = { ...routesFromTopology(topo, 'demo'), cluster: 'batch', version: 3, reason: 'batch v3', job: 'j1', publishedAt: new Date().toISOString() };
    assert.deepEqual(await publishAtOutcome(db, base), { outcome: 'written', stored: 3 }, 'no row yet: written');
    assert.equal(queries, 1, 'one query: one round trip');
    assert.deepEqual(await publishAtOutcome(db, base), { outcome: 'same', stored: 3 });
    assert.deepEqual(await publishAtOutcome(db, { ...base, reason: 'another writer' }), { outcome: 'conflict', stored: 3 });
    assert.deepEqual(await publishAtOutcome(db, { ...base, version: 2, reason: 'older' }), { outcome: 'higher', stored: 3 });
    assert.deepEqual(await publishAtOutcome(db, { ...base, version: 4, reason: 'batch v4' }), { outcome: 'written', stored: 4 }, 'a lower stored version: written');
    assert.equal(queries, 5);
    const stored = (await readRoutesAt(db, 'batch'))!;
    assert.equal(stored.version, 4);
    assert.equal(stored.reason, 'batch v4');
    const log = await db.query<{ version: number; reason: string; job: string }>('SELECT version, reason, job FROM _ezctl.gz_routes_log WHERE cluster = ? ORDER BY version', ['batch']);
    assert.deepEqual(log.map((r) => [Number(r.version), r.reason, r.job]), [[3, 'batch v3', 'j1'], [4, 'batch v4', 'j1']], 'one audit row per version written, none for the others');
    await eventually(async () => (await readRoutesAt(rep, 'batch'))?.version === 4, 10_000, "bj's replica to get version 4 (binlogged)");
    // the session's binlog off: the batch writes nothing, the statement-at-a-time path writes it binlogged
    await db.exec('SET SESSION sql_log_bin = 0');
    assert.deepEqual(await publishAtOutcome(db, { ...base, version: 5, reason: 'batch v5' }), { outcome: 'written', stored: 5 });
    assert.equal(Number(await db.value('SELECT @@SESSION.sql_log_bin')), 0, "the caller's setting is put back");
    await eventually(async () => (await readRoutesAt(rep, 'batch'))?.version === 5, 10_000, "bj's replica to get version 5");
    // a failing statement inside the batch leaves no transaction open
    await db.exec('SET SESSION sql_log_bin = 1');
    await assert.rejects(publishAtOutcome(db, { ...base, cluster: 'x'.repeat(70), version: 1 }));
    assert.equal(Number(await db.value('SELECT @@in_transaction')), 0);
  } finally {
    await db.exec("DELETE FROM _ezctl.gz_routes WHERE cluster = 'batch'").catch(() => undefined);
    await db.close();
    await rep.close();
  }
});

test('a zone down at a publish: written where it can be, missedBy names the zone, a required zone down fails with nothing written; the zone is stale once back', async () => {
  const ctx = ctxFor(sb.config, 1);
  const topo = await ctx.topology();
  const cur = (await readRoutes(ctx, topo, 'demo')).routes;
  const pid = sb.node('sh-master').pid!;
  process.kill(pid, 'SIGSTOP');
  stopped.push(pid);
  try {
    await assert.rejects(
      publishRoutes(ctx, topo, 'demo', withShards(cur, [[32, 40]], { zone: 'bj' }), { expectVersion: cur.version, required: ['sh'], reason: 'needs sh', timeoutMs: 1500 }),
      (e: unknown) => e instanceof EzError && e.exitCode === 3 && /required zone sh/.test(e.message) && /nothing was written/.test(e.message),
    );
    const p = await publishRoutes(ctx, topo, 'demo', withShards(cur, [[32, 40]], { zone: 'bj' }), { expectVersion: cur.version, required: ['bj'], reason: 'force-dead-source test', timeoutMs: 1500 });
    assert.deepEqual(p.written, ['bj']);
    assert.deepEqual(p.routes.missedBy, ['sh']);
    assert.equal(p.missed[0]!.zone, 'sh');
    const bj = await sb.db('bj-master');
    try {
      const stored = (await readRoutesAt(bj, 'demo'))!;
      assert.deepEqual(stored.missedBy, ['sh'], 'the stored document names the zone that missed it (DRC reads it)');
    } finally {
      await bj.close();
    }
    const read = await readRoutes(ctx, topo, 'demo', { timeoutMs: 1500 });
    assert.deepEqual(read.unreachable, ['sh']);
    assert.equal(read.routes.version, cur.version + 1);
  } finally {
    process.kill(pid, 'SIGCONT');
    stopped.splice(stopped.indexOf(pid), 1);
  }
  const back = await eventually(async () => {
    const r = await readRoutes(ctx, topo, 'demo');
    return r.unreachable.length === 0 ? r : undefined;
  }, 20_000, 'sh to answer again');
  assert.deepEqual(back.stale, ['sh']);
  const sync = await sb.run(['--json', 'gz', 'routes', '--sync', '--execute']);
  assert.equal(sync.code, 0, sync.stderr);
  assert.deepEqual((await readRoutes(ctx, topo, 'demo')).stale, []);
});

test('a global cluster: the write zone mirrored into writerZone', async () => {
  const config = globalConfig();
  const ctx = ctxFor(config);
  const topo = await ctx.topology();
  const r0 = await readRoutes(ctx, topo, 'g');
  assert.equal(r0.routes.model, 'global');
  assert.equal(r0.routes.writeZone, 'bj');
  const blocked = await publishRoutes(ctx, topo, 'g', { ...r0.routes, state: 'blocked' }, { expectVersion: 0, required: ['bj', 'sh'], reason: 'block bj' });
  assert.equal(blocked.fileChanged, false);
  const flipped = await publishRoutes(ctx, topo, 'g', { ...blocked.routes, writeZone: 'sh', state: 'active' }, { expectVersion: 1, required: ['sh'], skip: ['bj'], reason: 'flip to sh' });
  assert.deepEqual(flipped.written, ['sh']);
  assert.deepEqual(flipped.routes.missedBy, [], 'a skipped zone did not miss it');
  assert.equal(loadTopology(config).cluster('g').config.writerZone, 'sh');
  const read = await readRoutes(ctx, topo, 'g');
  assert.equal(read.routes.version, 2);
  assert.deepEqual(read.stale, ['bj'], 'the skipped source is written later with publishAt');
  // the caller's session has the binlog off (a lease's or journal's): the row is binlogged anyway
  const bj = await sb.db('bj-master');
  const rep = await sb.db('bj-replica1');
  try {
    await bj.exec('SET SESSION sql_log_bin = 0');
    assert.equal(await publishAt(bj, read.routes), true);
    assert.equal(Number(await bj.value('SELECT @@SESSION.sql_log_bin')), 0, "the caller's setting is put back");
    await eventually(async () => (await readRoutesAt(rep, 'g'))?.version === 2, 10_000, "bj's replica to get version 2");
  } finally {
    await bj.close();
    await rep.close();
  }
  assert.deepEqual((await readRoutes(ctx, topo, 'g')).stale, []);
});

test('the follower sees a change within its interval, holds a write while its shard is blocked, and clients acknowledge (live, busy, stale)', async () => {
  const ctx = ctxFor(sb.config);
  const topo = loadTopology(sb.config);
  // heartbeats well inside the 1 s staleMs the waits below use: a live client is never taken for stale
  const f = await RoutesFollower.start(ctx, topo, 'demo', { intervalMs: 100, heartbeatMs: 250, client: { id: 'live', zone: 'bj' } });
  try {
    let cur = f.routes;
    const seen: number[] = [];
    f.onChange((r) => seen.push(r.version));
    // a stale client: acknowledged an old version, not heard from since
    const sh = await sb.db('sh-master');
    try {
      await ensureStateSchema(sh);
      await ackRoutes(sh, { cluster: 'demo', client: 'ghost', zone: 'sh', version: 1, inFlight: 3 });
      // the application user (no BINLOG ADMIN: SET sql_log_bin is refused) acks too
      const app = await sb.appDb('sh-master');
      try {
        await ackRoutes(app, { cluster: 'demo', client: 'app-client', zone: 'sh', version: 1, inFlight: 0 });
        await app.exec(`DELETE FROM _ezctl.gz_clients WHERE client = 'app-client'`);
      } finally {
        await app.close();
      }
      // an ack is not binlogged: DRC never carries it, the zone's replicas do not get it
      const shRep = await sb.db('sh-replica1');
      try {
        // the marker is binlogged after the ack: once the replica has it, it would have the ack too
        const sh2 = await sb.db('sh-master');
        await sh2.exec("CREATE DATABASE IF NOT EXISTS ackmark");
        await sh2.close();
        await eventually(async () => Number(await shRep.value("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'ackmark'")) === 1, 10_000, 'the replica to catch up');
        assert.equal(Number(await shRep.value("SELECT COUNT(*) FROM _ezctl.gz_clients WHERE client = 'ghost'")), 0);
      } finally {
        await shRep.close();
      }
    } finally {
      await sh.close();
    }

    // block shard 3: a write for it waits; one for shard 20 goes through at once
    const p1 = await publishRoutes(ctx, topo, 'demo', withShards(cur, [[3, 3]], { state: 'blocked' }), { expectVersion: cur.version, required: ['bj', 'sh'], reason: 'block 3' });
    await eventually(async () => f.routes.version === p1.routes.version, 3000, 'the follower to see the block');
    assert.deepEqual(seen, [p1.routes.version]);
    assert.equal((await f.write(20, async (r) => r)).zone, 'bj');
    let wrote: { zone: string; version: number } | undefined;
    const waiting = f.write(3, async (r) => (wrote = r), { waitMs: 20_000 });
    await sleep(400);
    assert.equal(wrote, undefined, 'the write waits while its shard is blocked');
    await assert.rejects(f.write(3, async () => 1, { waitMs: 200 }), (e: unknown) => isRouteBlocked(e) && (e as EzError).exitCode === 4);
    cur = f.routes;
    const p2 = await publishRoutes(ctx, topo, 'demo', withShards(cur, [[3, 3]], { zone: 'sh', state: 'active' }), { expectVersion: cur.version, required: ['bj', 'sh'], reason: 'flip 3 to sh' });
    await waiting;
    assert.deepEqual(wrote, { zone: 'sh', version: p2.routes.version }, 'the held write goes to the new owner under the new version');

    // acks: the live client acknowledges at once; the ghost is named stale, not waited for
    await sleep(1200);
    const w = await waitAcks(ctx, topo, 'demo', p2.routes.version, { timeoutMs: 5000, staleMs: 1000 });
    assert.equal(w.reached, true, JSON.stringify(w));
    assert.deepEqual(w.acked, ['live']);
    assert.deepEqual(w.stale, ['ghost']);

    // a write in flight under the old version keeps the client behind the next one until it ends
    let release!: () => void;
    const busy = f.write(20, () => new Promise<void>((r) => (release = r)));
    await sleep(50);
    cur = f.routes;
    const p3 = await publishRoutes(ctx, topo, 'demo', withShards(cur, [[20, 20]], { state: 'blocked' }), { expectVersion: cur.version, required: ['bj', 'sh'], reason: 'block 20' });
    await eventually(async () => f.routes.version === p3.routes.version, 3000, 'the follower to see version 3');
    const notYet = await waitAcks(ctx, topo, 'demo', p3.routes.version, { timeoutMs: 1500, staleMs: 1000 });
    assert.equal(notYet.reached, false);
    assert.deepEqual(notYet.behind.map((b) => b.client), ['live']);
    const drained = waitAcks(ctx, topo, 'demo', p3.routes.version, { timeoutMs: 10_000, staleMs: 1000 });
    await sleep(300);
    release();
    await busy;
    const w3 = await drained;
    assert.equal(w3.reached, true, JSON.stringify(w3));
    assert.deepEqual(w3.acked, ['live']);
    // unblock for the tests after this one
    cur = f.routes;
    await publishRoutes(ctx, topo, 'demo', withShards(cur, [[20, 20]], { state: 'active' }), { expectVersion: cur.version, required: ['bj', 'sh'], reason: 'unblock 20' });
  } finally {
    await f.stop();
  }
  // a stopped client is no longer waited for
  const bj = await sb.db('bj-master');
  try {
    assert.equal(Number(await bj.value("SELECT COUNT(*) FROM _ezctl.gz_clients WHERE client = 'live'")), 0);
  } finally {
    await bj.close();
  }
});

/** spawn ezctl; lines of its stdout as they come */
function spawnEzctl(args: string[]): { child: ChildProcess; lines: string[]; next: (pred: (l: string) => boolean, ms?: number) => Promise<string>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let buf = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const next = async (pred: (l: string) => boolean, ms = 10_000) => {
    const found = await eventually(async () => lines.find(pred), ms, `a line (stdout: ${lines.join(' | ')}; stderr: ${stderr.slice(-500)})`);
    return found;
  };
  return { child, lines, next, exit };
}

test('gz routes --watch --json: a JSON line now and one per version change; SIGINT ends it with 130', async () => {
  const ctx = ctxFor(sb.config);
  const topo = loadTopology(sb.config);
  const w = spawnEzctl(['--json', 'gz', 'routes', '--watch', '--interval', '100ms']);
  const first = JSON.parse(await w.next((l) => l.startsWith('{')));
  const cur = (await readRoutes(ctx, topo, 'demo')).routes;
  assert.equal(first.version, cur.version);
  const p = await publishRoutes(ctx, topo, 'demo', withShards(cur, [[60, 63]], { state: 'blocked' }), { expectVersion: cur.version, required: ['bj', 'sh'], reason: 'watch me' });
  const line = JSON.parse(await w.next((l) => l.includes(`"version":${p.routes.version}`)));
  assert.equal(line.routes.reason, 'watch me');
  assert.equal(line.routes.shards.at(-1).state, 'blocked');
  assert.equal(w.lines.length, 2, 'one line per version');
  await publishRoutes(ctx, topo, 'demo', withShards(p.routes, [[60, 63]], { state: 'active' }), { expectVersion: p.routes.version, required: ['bj', 'sh'], reason: 'unblock' });
  await w.next((l) => l.includes(`"version":${p.routes.version + 1}`));
  w.child.kill('SIGINT');
  assert.equal(await w.exit, 130);
});

test('gz serve: ETag, 304 on If-None-Match, a long-poll answered on change (and 304 after its wait), SIGTERM ends it', async () => {
  const refusedRemote = await sb.run(['gz', 'serve', '--listen', '0.0.0.0:0']);
  assert.equal(refusedRemote.code, 4, refusedRemote.stderr);
  assert.match(refusedRemote.stderr, /not a loopback address/);

  const ctx = ctxFor(sb.config);
  const topo = loadTopology(sb.config);
  const s = spawnEzctl(['--json', 'gz', 'serve', '--listen', '127.0.0.1:0', '--interval', '100ms']);
  const { listening: url } = JSON.parse(await s.next((l) => l.includes('listening'))) as { listening: string };
  const list = (await (await fetch(`${url}/v1/routes`)).json()) as { clusters: Array<{ cluster: string }> };
  assert.deepEqual(list.clusters.map((c: { cluster: string }) => c.cluster), ['demo']);
  const res = await fetch(`${url}/v1/routes/demo`);
  assert.equal(res.status, 200);
  const doc = (await res.json()) as Routes;
  const etag = res.headers.get('etag');
  assert.equal(etag, `"demo-${doc.version}"`);
  assert.equal((await fetch(`${url}/v1/routes/demo`, { headers: { 'if-none-match': etag! } })).status, 304);
  assert.equal((await fetch(`${url}/v1/routes/nope`)).status, 404);
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  // a long-poll with nothing changing: 304 after its wait
  const t0 = Date.now();
  const idle = await fetch(`${url}/v1/routes/demo?wait=700ms`, { headers: { 'if-none-match': etag! } });
  assert.equal(idle.status, 304);
  assert.ok(Date.now() - t0 >= 600, 'it held the request for its wait');
  // a long-poll answered as soon as the version changes
  const polling = fetch(`${url}/v1/routes/demo?wait=30s`, { headers: { 'if-none-match': etag! } });
  await sleep(300);
  const cur = (await readRoutes(ctx, topo, 'demo')).routes;
  assert.equal(cur.version, doc.version);
  const p = await publishRoutes(ctx, topo, 'demo', withShards(cur, [[10, 11]], { state: 'blocked' }), { expectVersion: cur.version, required: ['bj', 'sh'], reason: 'serve me' });
  const changed = await polling;
  assert.equal(changed.status, 200);
  assert.equal(changed.headers.get('etag'), `"demo-${p.routes.version}"`);
  assert.equal(((await changed.json()) as Routes).shards.find((x) => x.from === 10)!.state, 'blocked');
  await publishRoutes(ctx, topo, 'demo', withShards(p.routes, [[10, 11]], { state: 'active' }), { expectVersion: p.routes.version, required: ['bj', 'sh'], reason: 'unblock' });
  s.child.kill('SIGTERM');
  assert.equal(await s.exit, 130);
});
