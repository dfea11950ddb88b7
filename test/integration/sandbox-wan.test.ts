// Distance between zones (`sandbox up --wan-latency`): one two-zone sandbox, its relay at 30 ms.
// A cross-zone round trip pays at least the configured latency; DRC replicates through the relay;
// a partition stalls it without an error storm and heal lets it catch up; `sandbox down` stops
// the relay.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { assertZonesIdentical, drcStart, drcStatus, drcStop, drcWaitAll, sqlOn } from '../helpers/drc.js';
import { makeCtx, type Ctx } from '../../src/core/context.js';
import { heal, netStatus, partition, setLatency } from '../../src/core/sandbox/net.js';
import { pidAlive, readPidFile } from '../../src/core/process/pids.js';

let sb: TestSandbox;
let drcPid: number | undefined;
let ctx: Ctx;
const ZONES = ['bj', 'sh'];
const MASTERS = ['bj-master', 'sh-master'];
const TABLE = 'CREATE TABLE ezdemo.wan (id INT NOT NULL PRIMARY KEY, v VARCHAR(40) NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))';

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 0, load: 50, wanLatency: '30ms' });
  for (const m of MASTERS) await sqlOn(sb, m, TABLE);
  ctx = makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
});

after(async () => {
  if (sb) await drcStop(sb, drcPid);
  await heal(sb.dir).catch(() => undefined);
  await sb?.down();
});

/** The fastest of a few SELECT 1 round trips to a zone's master, as seen from a zone. */
async function roundTrip(zone: string, from: string): Promise<{ ms: number; label: string }> {
  const topo = await ctx.topology();
  const db = await ctx.connect(topo.master('demo', zone), { fromZone: from });
  try {
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await db.value('SELECT 1');
      best = Math.min(best, performance.now() - t0);
    }
    return { ms: best, label: db.ep.label };
  } finally {
    await db.close();
  }
}

test('the topology file gives each node its address as seen from the other zone; a query across pays the round trip, one inside the zone goes direct', async () => {
  const file = parse(readFileSync(sb.config, 'utf8'));
  const bj = file.clusters.demo.zones.bj.master;
  const sh = file.clusters.demo.zones.sh.master;
  assert.deepEqual(Object.keys(bj.via), ['sh']);
  assert.deepEqual(Object.keys(sh.via), ['bj']);
  const across = await roundTrip('sh', 'bj');
  assert.ok(across.ms >= 30, `SELECT 1 from bj to sh's master took ${across.ms.toFixed(1)} ms, below the 30 ms round trip`);
  assert.match(across.label, new RegExp(`from bj at ${sh.via.bj.replace(/\./g, '\\.')}`));
  const inside = await roundTrip('sh', 'sh');
  assert.equal(inside.label, `sh-master 127.0.0.1:${sh.port}`);
  // the operator's zone defaults to the first zone: sh's master is reached through the relay
  const op = await ctx.endpoint((await ctx.topology()).master('demo', 'sh'));
  assert.equal(op.port, Number(sh.via.bj.split(':')[1]));
  const links = await netStatus(sb.dir);
  assert.deepEqual(links.map((l) => [l.from, l.to, l.latencyMs, l.cut]), [['bj', 'sh', 30, false], ['sh', 'bj', 30, false]]);
});

test('DRC replicates through the relay in both directions; each direction reads its source across the distance', async () => {
  drcPid = await drcStart(sb);
  // a direction with no checkpoint starts at its source's position when its first session opens
  // (across the relay that takes some round trips): write once every direction runs
  await eventually(async () => (await drcStatus(sb)).directions.every((d: any) => d.state === 'running'), 15_000, 'every direction running');
  await sqlOn(sb, 'bj-master', "INSERT INTO ezdemo.wan (id, v) VALUES (1, 'from bj')");
  await sqlOn(sb, 'sh-master', "INSERT INTO ezdemo.wan (id, v) VALUES (2, 'from sh')");
  await drcWaitAll(sb, ZONES);
  await assertZonesIdentical(sb, MASTERS, [['ezdemo', 'wan']]);
  const links = await netStatus(sb.dir);
  // bj -> sh runs on sh's side: its binlog connection to bj is on the link sh>bj, and the other way
  for (const l of links) assert.ok(l.connections >= 1, `no connection through ${l.from}>${l.to}: ${JSON.stringify(links)}`);
});

test('partition: DRC stalls (lag grows, no error state) and writes stay in their zone; heal: it catches up and the zones converge', async () => {
  await partition(sb.dir, 'bj', 'sh');
  assert.deepEqual((await netStatus(sb.dir)).map((l) => l.cut), [true, true]);
  await sqlOn(sb, 'bj-master', "INSERT INTO ezdemo.wan (id, v) VALUES (3, 'bj during the cut')", "UPDATE ezdemo.wan SET v = 'bj changed it' WHERE id = 2");
  await sqlOn(sb, 'sh-master', "INSERT INTO ezdemo.wan (id, v) VALUES (4, 'sh during the cut')");
  const stalled = await eventually(async () => {
    const st = await drcStatus(sb);
    const d = st.directions.find((x: any) => x.from === 'bj' && x.to === 'sh');
    return d.lagMs !== null && d.lagMs >= 1500 ? st : undefined;
  }, 15_000, 'bj->sh lag to grow during the partition');
  for (const d of stalled.directions) assert.notEqual(d.state, 'error', `${d.from}->${d.to}: ${JSON.stringify(d.lastError)}`);
  const sh = await sb.db('sh-master');
  try {
    assert.equal(Number(await sh.value('SELECT COUNT(*) FROM ezdemo.wan WHERE id = 3')), 0, 'a row crossed a cut link');
  } finally {
    await sh.close();
  }
  await heal(sb.dir);
  assert.deepEqual((await netStatus(sb.dir)).map((l) => l.cut), [false, false]);
  await drcWaitAll(sb, ZONES);
  await assertZonesIdentical(sb, MASTERS, [['ezdemo', 'wan']]);
});

test('sandbox net: --latency changes a link at once; a bad zone is exit 2; sandbox down stops the relay', async () => {
  await setLatency(sb.dir, { latencyMs: 60, link: ['bj', 'sh'] });
  assert.ok((await roundTrip('sh', 'bj')).ms >= 60);
  const r = await sb.run(['--json', 'sandbox', 'net', '--dir', sb.dir, '--latency', '30ms']);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(r.json().links.map((l: any) => l.latencyMs), [30, 30]);
  const bad = await sb.run(['sandbox', 'net', '--dir', sb.dir, '--partition', 'bj,gz']);
  assert.equal(bad.code, 2, show(bad));
  assert.match(bad.stderr, /no zone "gz"/);
  await drcStop(sb, drcPid);
  drcPid = undefined;
  const relay = readPidFile(join(sb.dir, 'wan', 'relay.pid'))!;
  assert.ok(pidAlive(relay));
  const down = await sb.run(['--json', 'sandbox', 'down', '--dir', sb.dir]);
  assert.equal(down.code, 0, show(down));
  assert.equal(down.json().stoppedRelay, true);
  assert.equal(pidAlive(relay), false, `relay ${relay} still runs after sandbox down`);
});
