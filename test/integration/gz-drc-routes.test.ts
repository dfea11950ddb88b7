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

let sb: TestSandbox;
let pid: number | undefined;
const ZONES = ['bj', 'sh'];
const SHARD_TABLES = { 'ezdemo.users': 'shard_id', 'ezdemo.merchants': 'shard_id', 'ezdemo.riders': 'shard_id', 'ezdemo.orders': 'shard_id', 'ezdemo.order_items': 'shard_id' };

/** The routes row as gz publishes it (contract R1): one conditional statement, binlogged, at one zone master. */
async function publishAt(node: string, doc: Record<string, unknown>): Promise<void> {
  const db = await sb.db(node);
  try {
    await db.exec(
      'INSERT INTO _ezctl.gz_routes (cluster, version, doc) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE doc = IF(version < VALUES(version), VALUES(doc), doc), version = GREATEST(version, VALUES(version))',
      ['demo', doc.version as number, JSON.stringify(doc)],
    );
  } finally {
    await db.close();
  }
}

function sharding(version: number, shards: Array<[number, number, string, string?]>, missedBy: string[] = []): Record<string, unknown> {
  return {
    cluster: 'demo', model: 'sharding', version, writeZone: null, state: 'active',
    shards: shards.map(([from, to, zone, state]) => ({ from, to, zone, state: state ?? 'active' })),
    tables: SHARD_TABLES, missedBy, job: null, reason: 'test', publishedAt: new Date().toISOString(),
  };
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
  // the routing table (R1 creates it in _ezctl): here by hand, unlogged, before DRC reads anything
  for (const m of ['bj-master', 'sh-master']) {
    await sqlOn(sb, m, 'SET SESSION sql_log_bin = 0', 'CREATE DATABASE IF NOT EXISTS _ezctl',
      'CREATE TABLE IF NOT EXISTS _ezctl.gz_routes (cluster VARCHAR(64) NOT NULL PRIMARY KEY, version BIGINT NOT NULL, doc JSON NOT NULL, published_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))');
  }
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
  const flip = sharding(1, [[0, 7, 'sh'], [8, 31, 'bj'], [32, 63, 'sh']]);
  for (const m of ['bj-master', 'sh-master']) await publishAt(m, flip);
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
  const block = sharding(2, [[0, 7, 'sh'], [8, 15, 'bj', 'blocked'], [16, 31, 'bj'], [32, 63, 'sh']]);
  for (const m of ['bj-master', 'sh-master']) await publishAt(m, block);
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.users SET name = 'while blocked' WHERE id = 9", "UPDATE ezdemo.users SET name = 'not blocked' WHERE id = 16");
  await drcWaitAll(sb, ZONES);
  const rows = await illegal('sh-master', 'demo:bj->sh');
  assert.deepEqual(rows.slice(1), [{ key: { id: 9 }, shard: '9', owner: 'bj', why: 'blocked', version: '2' }]);
});

test('sharding: a version whose missedBy names bj (published while it was down) judges bj\'s writes at once', async () => {
  // 16-23 moved to sh while bj was "down": the row reaches sh only; bj's binlog keeps version 2
  for (const m of ['sh-master']) await publishAt(m, sharding(3, [[0, 7, 'sh'], [8, 15, 'bj'], [16, 23, 'sh'], [24, 31, 'bj'], [32, 63, 'sh']], ['bj']));
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

test('global: a write at a zone other than the write zone is reported (the file first, then the table)', async () => {
  await drcStop(sb, pid);
  pid = undefined;
  for (const m of ['bj-master', 'sh-master']) await sqlOn(sb, m, 'SET SESSION sql_log_bin = 0', 'DELETE FROM _ezctl.gz_routes', 'DELETE FROM _ezctl.drc_illegal_writes');
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
  const doc = { cluster: 'demo', model: 'global', version: 1, writeZone: 'sh', state: 'active', shards: [], tables: {}, missedBy: [], job: null, reason: 'test', publishedAt: new Date().toISOString() };
  for (const m of ['bj-master', 'sh-master']) await publishAt(m, doc);
  await sqlOn(sb, 'bj-master', "UPDATE ezdemo.merchants SET name = 'bj after the flip' WHERE id = 7");
  await sqlOn(sb, 'sh-master', "UPDATE ezdemo.merchants SET name = 'sh after the flip' WHERE id = 8");
  await drcWaitAll(sb, ZONES);
  assert.deepEqual(await illegal('sh-master', 'demo:bj->sh'), [{ key: { id: 7 }, shard: null, owner: 'sh', why: 'not-write-zone', version: '1' }]);
  assert.equal((await illegal('bj-master', 'demo:sh->bj')).length, 1);
  assert.equal((await direction('bj')).illegalWrites, 1);
  assert.equal((await direction('sh')).routesVersion, 1);
});
