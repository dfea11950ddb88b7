// DRC under faults: the daemon killed with SIGKILL mid-stream again and again, a zone master
// killed and restarted, a zone's replica promoted and DRC repointed. A ledger proves that
// nothing acknowledged was lost and nothing was applied twice: every zone inserts ledger rows,
// and a trigger in every zone counts each row's insert (an insert applied twice, even as an
// upsert, fires it twice). The audit table itself is excluded from DRC.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { assertZonesIdentical, drcStart, drcStatus, drcStop, drcWaitAll, patchTopology, sqlOn } from '../helpers/drc.js';
import { parseTopology } from '../../src/core/config/load.js';
import { pidAlive } from '../../src/core/process/pids.js';
import type { Db } from '../../src/core/db/connect.js';

let sb: TestSandbox;
let pid: number | undefined;
const ZONES = ['bj', 'sh'];
let masters = { bj: 'bj-master', sh: 'sh-master' } as Record<string, string>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sql = (node: string, ...stmts: string[]) => sqlOn(sb, node, ...stmts);

/** Inserts ledger rows into a zone's current master until stopped; keeps the acknowledged ids. */
class LedgerWriter {
  /** every writer ever started, so after() can stop those a failed test left running */
  static all: LedgerWriter[] = [];
  acked: number[] = [];
  errors = 0;
  private stop = false;
  private done: Promise<void> | undefined;
  private static next = 0;
  private readonly base = ++LedgerWriter.next * 1_000_000_000;
  constructor(readonly zone: string) {}
  start(): void {
    LedgerWriter.all.push(this);
    this.stop = false;
    this.done = (async () => {
      let db: Db | undefined;
      let n = 0;
      while (!this.stop) {
        try {
          db ??= await sb.db(masters[this.zone]!);
          // explicit ids, distinct per zone: the BEFORE INSERT trigger sees the real id everywhere
          const id = this.base + ++n;
          await db.exec('INSERT INTO ezdemo.ledger (id, zone, n) VALUES (?, ?, ?)', [id, this.zone, n]);
          this.acked.push(id);
        } catch {
          this.errors++;
          await db?.close().catch(() => undefined);
          db = undefined;
          await sleep(100);
        }
        await sleep(4);
      }
      await db?.close().catch(() => undefined);
    })();
  }
  async halt(): Promise<void> {
    this.stop = true;
    await this.done;
  }
}

async function ledgerIds(node: string): Promise<Set<number>> {
  const db = await sb.db(node);
  try {
    return new Set((await db.query<{ id: string }>('SELECT id FROM ezdemo.ledger')).map((r) => Number(r.id)));
  } finally {
    await db.close();
  }
}

/** Each ledger row was inserted exactly once in every zone: the trigger fired once per row. */
async function assertAppliedOnce(writers: LedgerWriter[]): Promise<void> {
  const acked = writers.flatMap((w) => w.acked);
  const missingBy: Record<string, number[]> = {};
  for (const zone of ZONES) {
    const ids = await ledgerIds(masters[zone]!);
    missingBy[masters[zone]!] = acked.filter((id) => !ids.has(id));
  }
  assert.ok(Object.values(missingBy).every((m) => m.length === 0), `acknowledged ledger rows missing: ${JSON.stringify(missingBy)}`);
  for (const zone of ZONES) {
    const node = masters[zone]!;
    const db = await sb.db(node);
    try {
      const twice = await db.query('SELECT ledger_id, COUNT(*) AS c FROM ezaudit.fires GROUP BY ledger_id HAVING c <> 1 LIMIT 10');
      assert.deepEqual(twice, [], `${node}: ledger rows whose insert was applied more or less than once`);
      const counts = (await db.one<any>('SELECT (SELECT COUNT(*) FROM ezaudit.fires) AS f, (SELECT COUNT(*) FROM ezdemo.ledger) AS l'))!;
      assert.equal(counts.f, counts.l, `${node}: one trigger fire per ledger row`);
    } finally {
      await db.close();
    }
  }
  await assertZonesIdentical(sb, ZONES.map((z) => masters[z]!), [['ezdemo', 'ledger'], ['ezdemo', 'orders'], ['ezdemo', 'users']]);
}

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 1, load: 100 });
  for (const m of ['bj-master', 'sh-master']) {
    await sql(m,
      'CREATE TABLE ezdemo.ledger (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, zone VARCHAR(8) NOT NULL, n INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))',
      'CREATE DATABASE ezaudit',
      'CREATE TABLE ezaudit.fires (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, ledger_id BIGINT NOT NULL, KEY (ledger_id))',
      'CREATE TRIGGER ezdemo.ledger_fires BEFORE INSERT ON ezdemo.ledger FOR EACH ROW INSERT INTO ezaudit.fires (ledger_id) VALUES (NEW.id)',
    );
  }
  patchTopology(sb, (doc) => doc.setIn(['clusters', 'demo', 'drc'], doc.createNode({ exclude: ['ezaudit.*'] })));
  pid = await drcStart(sb);
});

after(async () => {
  // a failed test may leave writers looping; they would keep this file's process alive
  await Promise.all(LedgerWriter.all.map((w) => w.halt()));
  if (sb) await drcStop(sb, pid);
  await sb?.down();
});

test('kill -9 of the daemon at random moments under load, restarted each time: nothing lost, nothing applied twice', async () => {
  const writers = ZONES.map((z) => new LedgerWriter(z));
  writers.forEach((w) => w.start());
  // a workload on the demo tables too, with conflicts, while the daemon dies and comes back
  const workload = sb.run(['sandbox', 'workload', '--tps', '80', '--seconds', '8', '--conflict-ratio', '0.1']);
  for (let i = 0; i < 6; i++) {
    await sleep(300 + Math.floor(Math.random() * 900));
    const st = await drcStatus(sb);
    assert.equal(st.running, true);
    process.kill(st.pid, 'SIGKILL');
    await eventually(async () => !pidAlive(st.pid), 5000, 'the daemon to die');
    await sleep(Math.floor(Math.random() * 400));
    pid = await drcStart(sb);
  }
  const w = await workload;
  assert.equal(w.code, 0, show(w));
  await Promise.all(writers.map((x) => x.halt()));
  assert.ok(writers.every((x) => x.acked.length > 100), `writers made progress: ${writers.map((x) => x.acked.length)}`);
  await drcWaitAll(sb, ZONES, '60s');
  await assertAppliedOnce(writers);
});

test('a zone master killed and restarted during replication: DRC recovers by itself', async () => {
  const writers = ZONES.map((z) => new LedgerWriter(z));
  writers.forEach((w) => w.start());
  await sleep(800);
  const victim = sb.node('sh-master');
  const before = await drcStatus(sb);
  const shPid = JSON.parse(readFileSync(`${sb.dir}/sandbox.json`, 'utf8')).nodes.find((n: any) => n.name === 'sh-master').pid;
  process.kill(shPid, 'SIGKILL');
  await eventually(async () => !pidAlive(shPid), 5000, 'sh-master to die');
  await eventually(async () => (await drcStatus(sb)).directions.some((d: any) => d.state === 'retrying'), 15_000, 'DRC to notice');
  // monitoring sees it: exit 3, the failing directions named with their error and its time
  const down = await sb.run(['--json', 'drc', 'status']);
  assert.equal(down.code, 3, show(down));
  const failing = down.json().directions.filter((d: any) => d.state !== 'running');
  assert.ok(failing.length > 0 && failing.every((d: any) => d.lastError && Date.parse(d.lastErrorAt) > 0), JSON.stringify(failing));
  await sleep(1000);
  const up = await sb.run(['sandbox', 'up', '--dir', sb.dir]);
  assert.equal(up.code, 0, show(up));
  await sleep(1500);
  await Promise.all(writers.map((x) => x.halt()));
  assert.ok(writers[1]!.errors > 0, 'the sh writer saw the outage');
  await drcWaitAll(sb, ZONES, '60s');
  const after = await drcStatus(sb);
  assert.equal(after.pid, before.pid, 'the same daemon recovered, no restart');
  assert.ok(after.directions.every((d: any) => d.state === 'running'), JSON.stringify(after.directions));
  const healthy: any = await eventually<any>(async () => {
    const r = await sb.run(['--json', 'drc', 'status']);
    return r.code === 0 ? r.json() : undefined;
  }, 10_000, 'drc status to exit 0 after the recovery');
  assert.deepEqual(healthy.directions.map((d: any) => d.lastError), [null, null], 'the recovered directions no longer show the error');
  assert.equal(victim.port, sb.node('sh-master').port);
  await assertAppliedOnce(writers);
});

test('drc repoint after promoting a zone\'s replica: nothing lost or repeated', async () => {
  const writers = ZONES.map((z) => new LedgerWriter(z));
  writers.forEach((w) => w.start());
  await sleep(800);
  // The switch, as a master-switch tool does it: stop the zone's writers and DRC's writes into
  // it, let the replica catch up, promote it, repoint DRC, resume.
  await writers[1]!.halt();
  let r = await sb.run(['drc', 'pause', '--direction', 'bj->sh']);
  assert.equal(r.code, 0, show(r));
  await sleep(500); // a batch in flight commits
  const old = await sb.db('sh-master');
  await old.exec('SET GLOBAL read_only = 1');
  const pos = String(await old.value('SELECT @@gtid_binlog_pos'));
  await old.close();
  const rep = await sb.db('sh-replica1');
  assert.equal(Number(await rep.value('SELECT MASTER_GTID_WAIT(?, 30)', [pos])), 0);
  await rep.exec('STOP SLAVE');
  await rep.exec('RESET SLAVE ALL');
  await rep.exec('SET GLOBAL read_only = 0');
  await rep.close();
  const newPort = sb.node('sh-replica1').port;
  r = await sb.run(['drc', 'repoint', '--zone', 'sh', '--master', `127.0.0.1:${newPort}`]);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /the daemon reconnected its directions/);
  const topo = parseTopology(readFileSync(sb.config, 'utf8'), sb.config);
  assert.equal(topo.master('demo', 'sh').port, newPort);
  assert.ok(topo.nodes('demo').some((n) => n.role === 'replica' && n.port === sb.node('sh-master').port), 'the old master is listed as a replica');
  masters = { bj: 'bj-master', sh: 'sh-replica1' };
  r = await sb.run(['drc', 'resume']);
  assert.equal(r.code, 0, show(r));
  const after = new LedgerWriter('sh');
  after.start();
  await sleep(1500);
  await Promise.all([writers[0]!.halt(), after.halt()]);
  await drcWaitAll(sb, ZONES, '20s');
  const st = await drcStatus(sb);
  assert.ok(st.directions.every((d: any) => d.state === 'running'), JSON.stringify(st.directions));
  assert.ok(st.directions.find((d: any) => d.to === 'sh').target.includes(String(newPort)));
  await assertAppliedOnce([...writers, after]);
});
