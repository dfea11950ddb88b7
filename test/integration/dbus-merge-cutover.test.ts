// dbus cutover / rollback of a merge (issue 15), against two real servers: three shard tables on
// bj-master (ids 1..200 in each, so they collide) merged by a shard column into one table on
// sh-master. A client following the route record writes each new row to its shard (o_{id % 3}) at
// the source, or to the merged table at the target after the flip. After the cut-over the reverse
// stream routes each row written at the target back to its shard table by its shard_id: an update,
// a delete, an insert, and an update that moves a row to another shard (a delete there, an insert
// here); the rollback brings every acknowledged write back to its shard. The verify inside both
// compares the merge shard by shard. A row of no shard written at the target is named by the
// reverse stream and left there: the rollback's verify refuses until it is given a shard.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { RouteClient, startFollowing, stopDbusProcesses } from '../helpers/dbus.js';
import { show } from '../helpers/cli.js';
import type { Db } from '../../src/core/db/connect.js';
import { fenceState } from '../../src/core/dbus/fence.js';

const MOVE = 'mm';
const SHARDS = 3;
let sb: TestSandbox;
let bj: Db;
let sh: Db;
const opened: Db[] = [];
const jobs: ChildProcess[] = [];
async function db(name: string): Promise<Db> {
  const d = await sb.db(name);
  opened.push(d);
  return d;
}

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  bj = await db('bj-master');
  sh = await db('sh-master');
  await bj.exec('CREATE DATABASE s');
  for (let n = 0; n < SHARDS; n++) {
    await bj.exec(`CREATE TABLE s.o_${n} (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, at VARCHAR(8) NOT NULL) ENGINE=InnoDB`);
    await bj.exec(`INSERT INTO s.o_${n} SELECT seq, seq, 'seed' FROM seq.seq_1_to_200`);
  }
  await sh.exec('CREATE DATABASE m');
  await sh.exec('CREATE TABLE m.o (shard_id INT NOT NULL, id INT NOT NULL, v INT NOT NULL, at VARCHAR(8) NOT NULL, PRIMARY KEY (shard_id, id)) ENGINE=InnoDB');
  const b = sb.node('bj-master');
  const s = sb.node('sh-master');
  const values = Array.from({ length: SHARDS }, (_, n) => `"old:s.o_${n}": ${n}`).join(', ');
  appendFileSync(sb.config, `dbus:\n  moves:\n    ${MOVE}:\n      sources: [{ label: old, dsn: "h=127.0.0.1,P=${b.port},u=ezctl" }]\n      target: { label: new, dsn: "h=127.0.0.1,P=${s.port},u=ezctl" }\n      tables:\n        - { from: "s.o_[0-9]+", to: "m.o", merge: { kind: shard-column, column: shard_id, values: { ${values} } } }\n`);
});

after(async () => {
  await stopDbusProcesses(sb, MOVE, jobs);
  await Promise.all(opened.map((d) => d.close().catch(() => undefined)));
  await sb?.down();
});

const startJob = (resume = false) => startFollowing(sb, MOVE, jobs, resume);

const shardRows = async (n: number) => new Map((await bj.query<{ id: number; v: number }>(`SELECT id, v FROM s.o_${n}`)).map((r) => [Number(r.id), Number(r.v)]));

test('a merge cut over under a writer and rolled back: target writes reach their shard through the reverse stream (a shard-moving update included), none acknowledged lost; a row of no shard named and kept at the target, the rollback refused until it has one', { timeout: 240_000 }, async (t) => {
  await startJob();
  // each new row to its shard at the source, to the merged table at the target
  const client = new RouteClient(MOVE, { old: await db('bj-master'), new: await db('sh-master'), readOld: await db('bj-master'), readNew: await db('sh-master') }, 100_000, (d, at, id) =>
    at === 'old' ? d.exec(`INSERT INTO s.o_${id % SHARDS} (id, v, at) VALUES (?, ?, 'old')`, [id, id]) : d.exec("INSERT INTO m.o (shard_id, id, v, at) VALUES (?, ?, ?, 'new')", [id % SHARDS, id, id]));
  client.start();
  await eventually(async () => client.acked.length >= 20, 10_000, 'the client writing');

  const cut = await sb.run(['--json', 'dbus', 'cutover', MOVE, '--execute']);
  assert.equal(cut.code, 0, show(cut));
  assert.equal(cut.json().outcome, 'done');
  await eventually(async () => client.acked.some((a) => a.at === 'new'), 10_000, 'the client writing at the target');

  // writes at the target after the flip, each back in its shard
  await sh.exec('UPDATE m.o SET v = -5 WHERE shard_id = 1 AND id = 5');
  await sh.exec('DELETE FROM m.o WHERE shard_id = 2 AND id = 6');
  await sh.exec('UPDATE m.o SET shard_id = 1, id = 1007, v = 7007 WHERE shard_id = 0 AND id = 7');
  await sh.exec("INSERT INTO m.o VALUES (2, 5000, 5000, 'new')");
  await eventually(async () => {
    const [o0, o1, o2] = [await shardRows(0), await shardRows(1), await shardRows(2)];
    return o1.get(5) === -5 && !o2.has(6) && !o0.has(7) && o1.get(1007) === 7007 && o2.get(5000) === 5000;
  }, 15_000, 'the reverse stream to bring the target writes to their shards').catch((e: Error) => {
    throw new Error(`${e.message}; reverse.log: ${readFileSync(join(sb.dir, 'state', 'dbus', MOVE, 'reverse.log'), 'utf8').slice(-3000)}`);
  });
  // the other shards' rows of those ids untouched
  assert.equal((await shardRows(0)).get(5), 5);
  assert.equal((await shardRows(1)).get(6), 6);
  assert.equal((await shardRows(2)).get(7), 7);

  const back = await sb.run(['--json', 'dbus', 'rollback', MOVE, '--execute']);
  assert.equal(back.code, 0, show(back));
  await eventually(async () => client.acked.at(-1)?.at === 'old', 10_000, 'the client writing at the source again');
  await client.finish();
  t.diagnostic(`client: ${client.acked.length} acked (${client.acked.filter((a) => a.at === 'new').length} at the target), ${client.fenced} refused by the fence`);
  assert.ok(client.acked.some((a) => a.at === 'new'), 'some writes went to the target meanwhile');
  const shards = [await shardRows(0), await shardRows(1), await shardRows(2)];
  assert.deepEqual(client.acked.filter((a) => shards[a.id % SHARDS]!.get(a.id) !== a.id).map((a) => a.id), [], 'acknowledged writes missing in their shard after the rollback');
  assert.deepEqual(client.acked.filter((a) => [0, 1, 2].some((n) => n !== a.id % SHARDS && shards[n]!.has(a.id))).map((a) => a.id), [], 'a write in another shard than its own');
  const tables = Array.from({ length: SHARDS }, (_, n) => ({ schema: 's', table: `o_${n}` }));
  assert.deepEqual((await fenceState(bj, MOVE, tables)).open, tables.map((x) => `${x.schema}.${x.table}`));
  assert.deepEqual((await fenceState(sh, MOVE, [{ schema: 'm', table: 'o' }])).fenced, ['m.o']);

  // cut over again (no writer), then a row of no shard at the target: the reverse stream names it
  // and goes on; the rollback's verify refuses while it has no shard; given one, it reaches that shard
  await startJob(true);
  const again = await sb.run(['--json', 'dbus', 'cutover', MOVE, '--execute']);
  assert.equal(again.code, 0, show(again));
  const reverseLog = () => readFileSync(join(sb.dir, 'state', 'dbus', MOVE, 'reverse.log'), 'utf8');
  await sh.exec("INSERT INTO m.o VALUES (9, 7777, 1, 'new')");
  await sh.exec("INSERT INTO m.o VALUES (2, 7778, 1, 'new')");
  await eventually(async () => (await shardRows(2)).has(7778), 15_000, 'the reverse stream to go on past the row of no shard');
  assert.match(reverseLog(), /a row of m\.o \(shard_id = 9, id = 7777\) goes to no table: its shard_id names no shard of the merge into m\.o \(0, 1, 2\): left at the target/);
  const refused = await sb.run(['--json', 'dbus', 'rollback', MOVE, '--execute']);
  assert.equal(refused.code, 4, show(refused));
  assert.match(refused.stderr + refused.stdout, /m\.o \[9,7777\]: at the target only: its shard_id names no shard/);
  await sh.exec('UPDATE m.o SET shard_id = 1 WHERE shard_id = 9 AND id = 7777');
  await eventually(async () => (await shardRows(1)).has(7777), 15_000, 'the row given a shard to reach it');
  assert.equal(reverseLog().match(/goes to no table/g)?.length, 1, 'named once: its update out of no shard is no second warning');
  const done = await sb.run(['--json', 'dbus', 'rollback', MOVE, '--execute']);
  assert.equal(done.code, 0, show(done));
  for (const n of [0, 2]) assert.equal((await shardRows(n)).has(7777), false, 'no other shard took it');
});
