// The sandbox workload as the routing table's reference client (issue 14, part W2), and
// `sandbox up --model global`: a global cluster's proxies send every zone's writes to the writer
// zone's master; the workload routes each write through the routing table (waits while a route
// is blocked, follows a flip), and its ack log lists every acknowledged write.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { readDefaultsFile } from '../../src/core/config/defaults-file.js';
import { connect, type Db } from '../../src/core/db/connect.js';
import { loadTopology } from '../../src/core/config/load.js';
import { makeCtx } from '../../src/core/context.js';
import { drcStart, drcStop, drcWaitAll } from '../helpers/drc.js';
import { publishRoutes, readRoutes, withShards, type Routes } from '../../src/core/routes/index.js';

let g: TestSandbox | undefined;

before(async () => {
  g = await startSandbox({ zones: ['bj', 'sh'], replicas: 1, proxy: true, model: 'global', writerZone: 'sh', load: 200 });
});

after(async () => {
  await g?.down();
});

async function serverIdThrough(hostPort: string): Promise<number> {
  const [host, port] = hostPort.split(':');
  const password = readDefaultsFile(join(g!.dir, 'app.cnf')).password!;
  const db = await connect({ label: `proxy ${hostPort}`, host: host!, port: Number(port), user: 'app', password, passwordSource: 'test' });
  try {
    return Number(await db.value('SELECT @@server_id'));
  } finally {
    await db.close();
  }
}

test('up --model global: the file says model global and its writer zone, every zone\'s proxy sends writes to that zone\'s master, topo check and show agree', async () => {
  const topo = loadTopology(g!.config);
  const c = topo.file.clusters.demo!;
  assert.equal(c.model, 'global');
  assert.equal(c.writerZone, 'sh');
  assert.equal(c.shards, undefined);
  const st = (await g!.run(['--json', 'sandbox', 'status', '--dir', g!.dir])).json();
  for (const p of st.proxies) assert.equal(await serverIdThrough(p.write), g!.node('sh-master').serverId, `${p.zone}'s proxy`);
  const bjRead = st.proxies.find((p: any) => p.zone === 'bj').read;
  assert.equal(await serverIdThrough(bjRead), g!.node('bj-replica1').serverId, 'reads stay in the zone');
  const chk = await g!.run(['--json', 'topo', 'check']);
  assert.equal(chk.code, 0, show(chk));
  const rows = (await g!.run(['--json', 'topo', 'show'])).json();
  assert.equal(rows.find((r: any) => r.name === 'bj-proxy').proxy.writeTo, 'sh-master');
  assert.equal(rows.find((r: any) => r.name === 'sh-proxy').proxy.writeTo, 'sh-master');
});

interface Ack { zone: string; from: string; table: string; key: { id: number }; op: string; token: string; shard: number; foreign: boolean; version: number | null; ms: number; at: string }

const acksOf = (path: string): Ack[] => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ack) : []);

/** Publish a change of the table at every zone (R1's publishRoutes), as a gz job would. */
async function publish(sb: TestSandbox, change: (r: Routes) => Routes, reason: string): Promise<Routes> {
  const ctx = makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
  const topo = loadTopology(sb.config);
  const now = await readRoutes(ctx, topo, 'demo');
  const r = await publishRoutes(ctx, topo, 'demo', change(now.routes), { expectVersion: now.routes.version, required: topo.zonesOf('demo'), reason });
  return r.routes;
}

/** How many rows of ezdemo.orders carry each of these insert tokens at a node. */
async function tokenCounts(db: Db, tokens: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>(tokens.map((t) => [t, 0]));
  for (let i = 0; i < tokens.length; i += 500) {
    const part = tokens.slice(i, i + 500);
    const rows = await db.query<{ note: string; n: number }>(`SELECT note, COUNT(*) AS n FROM ezdemo.orders WHERE note IN (${part.map(() => '?').join(', ')}) GROUP BY note`, part);
    for (const r of rows) out.set(r.note, Number(r.n));
  }
  return out;
}

test('global: the workload lands only in the write zone; a blocked route makes writes wait (no errors), a read_only master makes them retry, and the ack log lists every acknowledged write once', async () => {
  const log = join(g!.dir, '..', 'acks-global.jsonl');
  const work = g!.run(['--json', 'sandbox', 'workload', '--tps', '40', '--seconds', '7', '--progress', '0', '--ack-log', log, '--seed', '5']);
  await eventually(async () => acksOf(log).length > 10, 20_000, 'acknowledged writes');
  // a switch's block: the route is blocked in the table; writes wait for it
  const blocked = await publish(g!, (r) => ({ ...r, state: 'blocked' }), 'test: block sh');
  await new Promise((r) => setTimeout(r, 1500));
  const active = await publish(g!, (r) => ({ ...r, state: 'active' }), 'test: unblock sh');
  // a master refusing writes (read_only, as a switch's write block makes it): writes are retried
  await eventually(async () => acksOf(log).some((a) => a.version === active.version), 20_000, 'writes under the unblocked version');
  const sh = await g!.db('sh-master');
  try {
    await sh.exec('SET GLOBAL read_only = 1');
    await new Promise((r) => setTimeout(r, 800));
    await sh.exec('SET GLOBAL read_only = 0');
  } finally {
    await sh.close();
  }
  const r = await work;
  assert.equal(r.code, 0, show(r));
  const rep = r.json();
  assert.equal(rep.model, 'global');
  assert.equal(rep.routesVersion.end, active.version);
  const acks = acksOf(log);
  let total = 0;
  for (const z of rep.zones) {
    assert.equal(z.errors, 0, JSON.stringify(z));
    assert.equal(z.unknown, 0);
    assert.deepEqual(Object.keys(z.landed), ['sh'], `${z.zone} landed ${JSON.stringify(z.landed)}`);
    assert.ok(z.blockedWaits > 0, `${z.zone}: no write waited for the blocked route: ${JSON.stringify(z)}`);
    assert.ok(z.retries > 0, `${z.zone}: no write was retried while sh-master was read_only: ${JSON.stringify(z)}`);
    assert.ok(z.window.ms > 0 && z.p99Ms >= z.p50Ms);
    total += z.transactions;
  }
  // every slot was written: none lost to the block or the read_only master
  assert.equal(total, 2 * 40 * 7);
  assert.equal(acks.length, total);
  assert.ok(acks.every((a) => a.zone === 'sh'), 'every write landed in the write zone');
  assert.equal(acks.filter((a) => a.version === blocked.version).length, 0, 'no write ran under the blocked version');
  // every acknowledged insert is in the write zone's master exactly once, none in the other zone
  const inserts = acks.filter((a) => a.op === 'insert').map((a) => a.token);
  assert.ok(inserts.length > 50);
  const sdb = await g!.db('sh-master');
  const bdb = await g!.db('bj-master');
  try {
    const atSh = await tokenCounts(sdb, inserts);
    assert.deepEqual([...atSh].filter(([, n]) => n !== 1), []);
    const atBj = await tokenCounts(bdb, inserts);
    assert.deepEqual([...atBj].filter(([, n]) => n !== 0), []);
  } finally {
    await sdb.close();
    await bdb.close();
  }
});

test('global: sessions killed under the workload (some in their COMMIT) are retried, and no write is in the table twice', async () => {
  const log = join(g!.dir, '..', 'acks-kill.jsonl');
  const work = g!.run(['--json', 'sandbox', 'workload', '--tps', '100', '--seconds', '4', '--progress', '0', '--ack-log', log, '--zones', 'sh', '--seed', '11']);
  await eventually(async () => acksOf(log).length > 10, 20_000, 'acknowledged writes');
  const admin = await g!.db('sh-master');
  let killed = 0;
  try {
    const until = Date.now() + 2500;
    while (Date.now() < until) {
      const ids = await admin.query<{ id: number }>("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = 'app'");
      for (const { id } of ids) {
        await admin.exec(`KILL CONNECTION ${Number(id)}`).then(() => killed++, () => undefined);
      }
      await new Promise((r) => setTimeout(r, 30));
    }
  } finally {
    await admin.close();
  }
  assert.ok(killed > 0);
  const r = await work;
  const rep = r.json();
  const z = rep.zones[0];
  assert.ok(z.retries > 0, JSON.stringify(z));
  process.stderr.write(`# killed ${killed} sessions: ${z.retries} retries, COMMITs whose answer was lost: ${JSON.stringify(z.lostCommits)}\n`);
  // a write whose COMMIT answer was lost is either found by its token (acknowledged) or unknown; never written twice
  const acks = acksOf(log);
  assert.equal(acks.length, z.transactions);
  const inserts = acks.filter((a) => a.op === 'insert').map((a) => a.token);
  const sdb = await g!.db('sh-master');
  try {
    const atSh = await tokenCounts(sdb, inserts);
    assert.deepEqual([...atSh].filter(([, n]) => n !== 1), []);
    // and no token is in the table twice at all (an unacknowledged retry included)
    const dup = await sdb.query("SELECT note, COUNT(*) AS n FROM ezdemo.orders WHERE note LIKE '%.sh.%' GROUP BY note HAVING n > 1");
    assert.deepEqual(dup, []);
  } finally {
    await sdb.close();
  }
  assert.equal(r.code, 0, show(r));
  assert.equal(z.errors, 0, JSON.stringify(z));
  assert.equal(z.unknown, 0, JSON.stringify(z));
});

test('global, DRC both ways: every write the ack log lists is in both zones exactly once after drc wait, across a block and a read_only master', async () => {
  const pid = await drcStart(g!);
  try {
    const log = join(g!.dir, '..', 'acks-drc.jsonl');
    const work = g!.run(['--json', 'sandbox', 'workload', '--tps', '50', '--seconds', '5', '--progress', '0', '--ack-log', log, '--seed', '17']);
    await eventually(async () => acksOf(log).length > 10, 20_000, 'acknowledged writes');
    await publish(g!, (r) => ({ ...r, state: 'blocked' }), 'test: block sh');
    const sh = await g!.db('sh-master');
    try {
      await sh.exec('SET GLOBAL read_only = 1');
      await new Promise((r) => setTimeout(r, 1000));
      await publish(g!, (r) => ({ ...r, state: 'active' }), 'test: unblock sh');
      await new Promise((r) => setTimeout(r, 300));
      await sh.exec('SET GLOBAL read_only = 0');
    } finally {
      await sh.close();
    }
    const r = await work;
    assert.equal(r.code, 0, show(r));
    const acks = acksOf(log);
    assert.equal(acks.length, r.json().zones.reduce((n: number, z: any) => n + z.transactions, 0));
    await drcWaitAll(g!, ['bj', 'sh']);
    const inserts = acks.filter((a) => a.op === 'insert').map((a) => a.token);
    for (const node of ['bj-master', 'sh-master']) {
      const db = await g!.db(node);
      try {
        const counts = await tokenCounts(db, inserts);
        assert.deepEqual([...counts].filter(([, n]) => n !== 1), [], `${node}: acknowledged inserts not there exactly once`);
      } finally {
        await db.close();
      }
    }
  } finally {
    await drcStop(g!, pid);
  }
});

test('sharding: a blocked range waits while the other shards keep writing; after the flip those shards land only in the new owner zone, through its proxy', async () => {
  const sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0, proxy: true, load: 200 });
  try {
    const log = join(sb.dir, '..', 'acks-sharding.jsonl');
    const work = sb.run(['--json', 'sandbox', 'workload', '--tps', '60', '--seconds', '7', '--progress', '0', '--ack-log', log, '--seed', '21']);
    await eventually(async () => acksOf(log).length > 10, 20_000, 'acknowledged writes');
    const blocked = await publish(sb, (r) => withShards(r, [[0, 7]], { state: 'blocked' }), 'test: block 0-7');
    await new Promise((r) => setTimeout(r, 1500));
    const flipped = await publish(sb, (r) => withShards(r, [[0, 7]], { zone: 'sh', state: 'active' }), 'test: flip 0-7 to sh');
    const r = await work;
    assert.equal(r.code, 0, show(r));
    const rep = r.json();
    const acks = acksOf(log);
    const moved = (a: Ack) => a.shard >= 0 && a.shard <= 7;
    const bj = rep.zones.find((z: any) => z.zone === 'bj');
    const sh = rep.zones.find((z: any) => z.zone === 'sh');
    for (const z of rep.zones) assert.equal(z.errors, 0, JSON.stringify(z));
    assert.equal(acks.length, bj.transactions + sh.transactions);
    assert.equal(bj.transactions + sh.transactions, 2 * 60 * 7, 'every slot written');
    // bj's traffic is its shards 0-31 (what it owned at the start); 0-7 moved to sh
    assert.ok(acks.filter((a) => a.from === 'bj').every((a) => a.shard <= 31));
    assert.ok(bj.blockedWaits > 0 && sh.blockedWaits === 0, `${bj.blockedWaits} / ${sh.blockedWaits}`);
    assert.ok(bj.shardWaits.some((s: any) => s.shard <= 7), JSON.stringify(bj.shardWaits));
    // nothing of 0-7 ran under the blocked version; the other shards did (they never stopped)
    assert.equal(acks.filter((a) => moved(a) && a.version === blocked.version).length, 0);
    assert.ok(acks.some((a) => !moved(a) && a.from === 'bj' && a.version === blocked.version), 'bj\'s other shards wrote while 0-7 were blocked');
    // before: 0-7 in bj; after the flip: only in sh
    const before = acks.filter((a) => moved(a) && a.version !== null && a.version < blocked.version);
    const after = acks.filter((a) => moved(a) && a.version !== null && a.version >= flipped.version);
    assert.ok(before.length > 0 && after.length > 0, `${before.length} before, ${after.length} after`);
    assert.ok(before.every((a) => a.zone === 'bj'));
    assert.deepEqual(after.filter((a) => a.zone !== 'sh'), []);
    assert.ok(acks.filter((a) => !moved(a) && a.from === 'bj').every((a) => a.zone === 'bj'));
    assert.ok(bj.landed.sh > 0 && bj.landed.bj > 0, JSON.stringify(bj.landed));
    // the tables say the same (no DRC runs here: each insert is only where it landed)
    const bdb = await sb.db('bj-master');
    const sdb = await sb.db('sh-master');
    try {
      const ins = (xs: Ack[]) => xs.filter((a) => a.op === 'insert').map((a) => a.token);
      const afterAtSh = await tokenCounts(sdb, ins(after));
      const afterAtBj = await tokenCounts(bdb, ins(after));
      assert.ok(afterAtSh.size > 0);
      assert.deepEqual([...afterAtSh].filter(([, n]) => n !== 1), []);
      assert.deepEqual([...afterAtBj].filter(([, n]) => n !== 0), []);
      const beforeAtBj = await tokenCounts(bdb, ins(before));
      assert.deepEqual([...beforeAtBj].filter(([, n]) => n !== 1), []);
      // no order of shards 0-7 was inserted into bj after the flip
      const lastFlipIds = await bdb.value('SELECT COUNT(*) FROM ezdemo.orders WHERE shard_id <= 7 AND note IN (' + ins(after).map(() => '?').join(', ') + ')', ins(after));
      assert.equal(Number(lastFlipIds), 0);
    } finally {
      await bdb.close();
      await sdb.close();
    }
    // a zone stopped (its master and its proxy) and started again by \`sandbox up\`: the topology
    // file keeps what it learned since (the flip's owners mirrored into shards.zones)
    const mirrored = loadTopology(sb.config).file.clusters.demo!.shards!.zones;
    assert.deepEqual(mirrored, { bj: [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31], sh: [0, 1, 2, 3, 4, 5, 6, 7, ...Array.from({ length: 32 }, (_, i) => 32 + i)] });
    const fileBefore = readFileSync(sb.config, 'utf8');
    const state = JSON.parse(readFileSync(join(sb.dir, 'sandbox.json'), 'utf8'));
    const pids = [state.nodes.find((n: any) => n.name === 'sh-master').pid, state.proxies.find((p: any) => p.zone === 'sh').pid];
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await eventually(async () => pids.every((pid) => { try { process.kill(pid, 0); return false; } catch { return true; } }), 10_000, 'sh to stop');
    const up = await sb.run(['sandbox', 'up', '--dir', sb.dir]);
    assert.equal(up.code, 0, show(up));
    assert.match(up.stderr, /restarting sh-master, proxy-sh/);
    assert.equal(readFileSync(sb.config, 'utf8'), fileBefore, 'sandbox up left the topology file as it was');
    assert.deepEqual(loadTopology(sb.config).file.clusters.demo!.shards!.zones, mirrored);
  } finally {
    await sb.down();
  }
});
