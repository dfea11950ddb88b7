// DRC's illegal-write report judged by the routing table (`_ezctl.gz_routes`) as it was at each
// point of the source's binlog, against a real two-zone sandbox with the daemon running: a write
// committed before a flip is legal even when applied after it, one after it is reported; a version
// published while a zone was down (missedBy) judges that zone's writes at once; a global cluster's
// writes at a zone other than the write zone are reported; `drc status` names the version judged by.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { show } from '../helpers/cli.js';
import { eventually, startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { drcStart, drcStatus, drcStop, drcWaitAll, patchTopology, sqlOn } from '../helpers/drc.js';
import { makeCtx, type Ctx } from '../../src/core/context.js';
import { publishAt, publishRoutes, readRoutes, withShards, type Routes } from '../../src/core/routes/index.js';

let sb: TestSandbox;
let pid: number | undefined;
const ZONES = ['bj', 'sh'];

const newCtx = (): Ctx => makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });

/** Publish to every zone as a gz job does (R1's publishRoutes): the next version of what the zones hold. */
async function publish(change: (r: Routes) => Routes, reason: string): Promise<Routes> {
  const ctx = newCtx();
  const topo = await ctx.topology();
  const read = await readRoutes(ctx, topo, 'demo');
  const r = await publishRoutes(ctx, topo, 'demo', change(read.routes), { expectVersion: read.routes.version, required: ZONES, reason });
  assert.deepEqual(r.written.sort(), ZONES);
  return r.routes;
}

async function illegal(node: string, pipeline: string): Promise<Array<{ key: unknown; shard: string | null; owner: string | null; why: string; version: string }>> {
  const db = await sb.db(node);
  try {
    const rows = await db.query<any>('SELECT row_key, shard_id, owner_zone, why, routes_version FROM _ezctl.drc_illegal_writes WHERE pipeline = ? ORDER BY id', [pipeline]);
    return rows.map((r) => ({ key: JSON.parse(r.row_key), shard: r.shard_id === null ? null : String(r.shard_id), owner: r.owner_zone, why: r.why, version: String(r.routes_version) }));
  } finally {
    await db.close();
  }
}

const direction = async (from: string) => (await drcStatus(sb)).directions.find((d: any) => d.from === from);

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 0, load: 200 });
  pid = await drcStart(sb);
  await drcWaitAll(sb, ZONES);
});

after(async () => {
  if (sb) await drcStop(sb, pid);
  await sb?.down();
});

test('sharding: a write to shard 3 at bj before the flip of 0-7 to sh is legal though applied after it; one after it is reported', async () => {
  assert.equal((await direction('bj')).routesVersion, 0, 'no row yet: the topology file (version 0)');
  const r = await sb.run(['drc', 'pause', '--direction', 'bj->sh']);
  assert.equal(r.code, 0, show(r));
  // users: shard_id = id % 64; 3 and 67 are shard 3 (bj's in the file)
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.users SET name = 'before the flip' WHERE id = 3");
  const flip = await publish((r) => withShards(r, [[0, 7]], { zone: 'sh' }), 'test: flip 0-7 to sh');
  assert.equal(flip.version, 1);
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.users SET name = 'after the flip' WHERE id = 67");
  // a shard bj still owns: legal
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.users SET name = 'still bj' WHERE id = 8");
  assert.equal((await sb.run(['drc', 'resume', '--direction', 'bj->sh'])).code, 0);
  await drcWaitAll(sb, ZONES);
  assert.deepEqual(await illegal('sh-master', 'demo:bj->sh'), [{ key: { id: 67 }, shard: '3', owner: 'sh', why: 'owner', version: '1' }]);
  const d = await direction('bj');
  assert.equal(d.illegalWrites, 1);
  assert.equal(d.routesVersion, 1);
  assert.equal((await direction('sh')).routesVersion, 1);
  // both rows were replicated (reported, not blocked)
  const db = await sb.db('sh-master');
  try {
    assert.deepEqual((await db.query('SELECT id, name FROM ezdemo.users WHERE id IN (3, 67, 8) ORDER BY id')).map((x: any) => x.name), ['before the flip', 'still bj', 'after the flip']);
  } finally {
    await db.close();
  }
  // the human status names the version
  const st = await sb.run(['drc', 'status']);
  assert.match(st.stdout, /routes/);
  assert.match(st.stdout, /v1/);
});

test('sharding: a blocked shard range makes a write at its owner illegal', async () => {
  const block = await publish((r) => withShards(r, [[8, 15]], { state: 'blocked' }), 'test: block 8-15');
  assert.equal(block.version, 2);
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.users SET name = 'while blocked' WHERE id = 9", "UPDATE ezdemo.users SET name = 'not blocked' WHERE id = 16");
  await drcWaitAll(sb, ZONES);
  const rows = await illegal('sh-master', 'demo:bj->sh');
  assert.deepEqual(rows.slice(1), [{ key: { id: 9 }, shard: '9', owner: 'bj', why: 'blocked', version: '2' }]);
});

test('sharding: a version whose missedBy names bj (published while it was down) judges bj\'s writes at once', async () => {
  // 16-23 moved to sh while bj was "down": the row reaches sh only; bj's binlog keeps version 2
  // (what publishRoutes writes when bj does not answer: missedBy [bj], written at sh only)
  const ctx = newCtx();
  const v2 = (await readRoutes(ctx, await ctx.topology(), 'demo')).routes;
  const moved: Routes = { ...withShards(v2, [[16, 23]], { zone: 'sh' }), version: 3, missedBy: ['bj'], reason: 'test: 16-23 to sh, bj down', publishedAt: new Date().toISOString() };
  const sh = await sb.db('sh-master');
  try {
    assert.equal(await publishAt(sh, moved), true);
  } finally {
    await sh.close();
  }
  await eventually(async () => {
    const d = await direction('bj');
    return d.routesVersion === 3 && d.routesMissed === true;
  }, 30_000, 'bj->sh judging by version 3 (missed by bj)');
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.users SET name = 'bj missed the move' WHERE id = 17");
  await drcWaitAll(sb, ZONES);
  const rows = await illegal('sh-master', 'demo:bj->sh');
  assert.deepEqual(rows.slice(2), [{ key: { id: 17 }, shard: '17', owner: 'sh', why: 'owner', version: '3' }]);
  // the human status marks it
  assert.match((await sb.run(['drc', 'status'])).stdout, /v3 missed/);
});

test('a restart across a publish: the direction resumes judging from the version at its checkpoint, not the source\'s newest', async () => {
  assert.equal((await sb.run(['drc', 'pause', '--direction', 'bj->sh'])).code, 0);
  // bj's binlog holds version 2 (it missed 3): shard 24 is bj's; the checkpoint of bj->sh stays before this write
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.users SET name = 'before the flip, applied after a restart' WHERE id = 24");
  const flip = await publish((r) => withShards(r, [[24, 31]], { zone: 'sh' }), 'test: flip 24-31 to sh');
  assert.equal(flip.version, 4);
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.users SET name = 'after the flip' WHERE id = 25");
  await drcStop(sb, pid);
  pid = await drcStart(sb);
  await drcWaitAll(sb, ZONES);
  const rows = await illegal('sh-master', 'demo:bj->sh');
  assert.deepEqual(rows.slice(3), [{ key: { id: 25 }, shard: '25', owner: 'sh', why: 'owner', version: '4' }]);
  assert.equal((await direction('bj')).routesVersion, 4);
});

test('global: a write at a zone other than the write zone is reported (the file first, then the table)', async () => {
  await drcStop(sb, pid);
  pid = undefined;
  for (const m of ['bj-master', 'sh-master']) await sqlOn(sb, m, 'SET SESSION sql_log_bin = 0', 'DELETE FROM _ezctl.gz_routes', 'DELETE FROM _ezctl.gz_routes_log', 'DELETE FROM _ezctl.drc_illegal_writes');
  patchTopology(sb, (doc) => {
    doc.setIn(['clusters', 'demo', 'model'], 'global');
    doc.setIn(['clusters', 'demo', 'writerZone'], 'bj');
    doc.deleteIn(['clusters', 'demo', 'shards']);
  });
  pid = await drcStart(sb);
  await drcWaitAll(sb, ZONES);
  await sqlOn(sb, 'sh-master', "UPDATE ezdemo.merchants SET name = 'written at sh' WHERE id = 5");
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.merchants SET name = 'written at bj' WHERE id = 6");
  await drcWaitAll(sb, ZONES);
  assert.deepEqual(await illegal('bj-master', 'demo:sh->bj'), [{ key: { id: 5 }, shard: null, owner: 'bj', why: 'not-write-zone', version: '0' }]);
  assert.deepEqual(await illegal('sh-master', 'demo:bj->sh'), []);
  // the write zone moves to sh (a switch's flip): bj's writes are now the illegal ones
  const flipped = await publish((r) => ({ ...r, writeZone: 'sh' }), 'test: write zone to sh');
  assert.equal(flipped.version, 1);
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.merchants SET name = 'bj after the flip' WHERE id = 7");
  await sqlOn(sb, 'sh-master', "UPDATE ezdemo.merchants SET name = 'sh after the flip' WHERE id = 8");
  await drcWaitAll(sb, ZONES);
  assert.deepEqual(await illegal('sh-master', 'demo:bj->sh'), [{ key: { id: 7 }, shard: null, owner: 'sh', why: 'not-write-zone', version: '1' }]);
  assert.equal((await illegal('bj-master', 'demo:sh->bj')).length, 1);
  assert.equal((await direction('bj')).illegalWrites, 1);
  assert.equal((await direction('sh')).routesVersion, 1);
});
