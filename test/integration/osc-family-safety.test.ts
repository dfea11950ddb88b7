// A change of several tables (an int2bigint family) is as safe as a change of one: its tables'
// triggers are refused, or carried over with --include-triggers; a table whose name holds a dot is
// widened; `osc status`/`osc abort` naming any table of a running family reach its job, and an
// abort after kill -9 ends every table of the change; `osc cleanup` keeps the tables of a job
// whose lease is held (a job on another host before it first saved state), and a DROP held up by
// a session names it. Two zones, no replicas, no DRC: each zone's tables are written there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { EZCTL, show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { sqlOn } from '../helpers/drc.js';
import type { Db } from '../../src/core/db/connect.js';
import { oscLeaseName } from '../../src/core/osc/engine.js';

let sb: TestSandbox;
let cluster = '';
const MASTERS = ['bj-master', 'sh-master'];
const flagDir = mkdtempSync(join(tmpdir(), 'ezctl-osc-family-'));

async function onMaster<T>(node: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await sb.db(node);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

const tablesOf = (node: string, schema: string) =>
  onMaster(node, async (db) => (await db.query<{ t: string }>('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1', [schema])).map((r) => r.t));
const helpersOf = async (node: string, schema: string) => (await tablesOf(node, schema)).filter((t) => /_ez(gho|del|cut0?)$/.test(t));
const columnType = (node: string, schema: string, table: string, column: string) =>
  onMaster(node, (db) => db.value<string>('SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?', [schema, table, column]));
const savedStates = (node: string, schema: string) =>
  onMaster(node, async (db) => {
    const there = Number(await db.value("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '_ezctl' AND TABLE_NAME = 'osc_state'"));
    return there ? (await db.query<{ job: string }>('SELECT job FROM _ezctl.osc_state WHERE job LIKE ? ORDER BY 1', [`%:${schema}.%`])).map((r) => r.job.replace(/^[^:]*:/, '')) : [];
  });

/** parent (INT key) and child (INT key, INT foreign key to parent), ids 1..n, in every zone. */
async function family(schema: string, n: number, extra: string[] = []): Promise<void> {
  for (const node of MASTERS) {
    await sqlOn(sb, node,
      `CREATE DATABASE ${schema}`,
      `CREATE TABLE ${schema}.parent (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)`,
      `CREATE TABLE ${schema}.child (id INT NOT NULL PRIMARY KEY, parent_id INT NOT NULL, FOREIGN KEY (parent_id) REFERENCES ${schema}.parent(id))`,
      `INSERT INTO ${schema}.parent (id, v) SELECT seq, seq FROM ezseq.seq_1_to_${n}`,
      `INSERT INTO ${schema}.child (id, parent_id) SELECT seq, seq FROM ezseq.seq_1_to_${n}`,
      ...extra,
    );
  }
}

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  cluster = /clusters:\s*\n\s+([A-Za-z0-9_-]+):/.exec(readFileSync(sb.config, 'utf8'))![1]!;
  for (const node of MASTERS) await sqlOn(sb, node, 'CREATE DATABASE ezseq');
  // sh names lock holders exactly (a LOCK TABLES session is neither a transaction nor a statement naming the table)
  await sqlOn(sb, 'sh-master', "INSTALL SONAME 'metadata_lock_info'");
});

after(async () => {
  await sb?.down();
  rmSync(flagDir, { recursive: true, force: true });
});

test('int2bigint on a family with a trigger: refused naming --include-triggers (exit 4, nothing changed); with it the trigger fires on the new table once per write, in both zones', async () => {
  await family('trig', 200, [
    'CREATE TABLE trig.audit (n INT NOT NULL AUTO_INCREMENT PRIMARY KEY, child_id BIGINT NOT NULL)',
    'CREATE TRIGGER trig.child_ai AFTER INSERT ON trig.child FOR EACH ROW INSERT INTO trig.audit (child_id) VALUES (NEW.id)',
  ]);
  const args = ['migrate', 'int2bigint', '--tables', 'trig.parent,trig.child', '--threshold', '0', '--execute'];
  const refused = await sb.run(args);
  assert.equal(refused.code, 4, show(refused));
  assert.match(refused.stderr, /trig\.child has triggers \(child_ai\).*--include-triggers/s, show(refused));
  for (const node of MASTERS) assert.equal(await columnType(node, 'trig', 'child', 'id'), 'int(11)', node);
  const r = await sb.run([...args, '--include-triggers']);
  assert.equal(r.code, 0, show(r));
  for (const node of MASTERS) {
    for (const [t, c] of [['parent', 'id'], ['child', 'id'], ['child', 'parent_id']] as const) assert.equal(await columnType(node, 'trig', t, c), 'bigint(20)', `${node}: ${t}.${c}`);
    const triggers = await onMaster(node, (db) => db.query<{ t: string }>("SELECT EVENT_OBJECT_TABLE AS t FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'trig'"));
    assert.deepEqual(triggers.map((x) => x.t), ['child'], `${node}: the trigger is on the new table only`);
    await sqlOn(sb, node, 'DELETE FROM trig.audit', 'INSERT INTO trig.child (id, parent_id) VALUES (5000000000, 1)');
    assert.deepEqual(await onMaster(node, (db) => db.query('SELECT CAST(child_id AS CHAR) AS c FROM trig.audit')), [{ c: '5000000000' }], `${node}: fired once`);
  }
});

test('int2bigint widens a table whose name holds a dot (it reaches osc quoted)', async () => {
  for (const node of MASTERS) {
    await sqlOn(sb, node, 'CREATE DATABASE odd', 'CREATE TABLE odd.`a.b` (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)', 'INSERT INTO odd.`a.b` (v) SELECT seq FROM ezseq.seq_1_to_300');
  }
  const r = await sb.run(['migrate', 'int2bigint', '--tables', 'odd.*', '--threshold', '0', '--execute']);
  assert.equal(r.code, 0, show(r));
  for (const node of MASTERS) assert.equal(await columnType(node, 'odd', 'a.b', 'id'), 'bigint(20)', node);
});

test('a running family answers osc status naming any of its tables; after kill -9, osc abort naming its second table ends the whole change in both zones', async () => {
  await family('fam', 20_000);
  const flag = join(flagDir, 'hold-fam');
  writeFileSync(flag, '');
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, 'migrate', 'int2bigint', '--tables', 'fam.parent,fam.child', '--threshold', '0', '--execute', '--throttle-flag-file', flag], { stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    // both ghosts and both tables' saved state in both zones (the copy held by the flag)
    for (const node of MASTERS) {
      await eventually(async () => (await helpersOf(node, 'fam')).join() === 'child_ezgho,parent_ezgho' && (await savedStates(node, 'fam')).length === 2, 30_000, `${node}: the family's ghosts and saved state`);
    }
    const st = await sb.run(['--json', 'osc', 'status', '--table', 'fam.child']);
    assert.equal(st.code, 0, show(st));
    assert.deepEqual([...st.json().tables].sort(), ['fam.child', 'fam.parent']);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    rmSync(flag, { force: true });
  }
  // a lease of the change's other table held (its job on another host): refused, nothing dropped
  const lease = await sb.db('sh-master');
  try {
    const leaseId = Number(await lease.value('SELECT CONNECTION_ID()'));
    assert.equal(Number(await lease.value('SELECT GET_LOCK(?, 0)', [oscLeaseName(cluster, 'fam.parent')])), 1);
    const held = await sb.run(['osc', 'abort', '--table', 'fam.child']);
    assert.equal(held.code, 4, show(held));
    assert.match(held.stderr, new RegExp(`zone sh: a change of fam\\.parent is running on another host \\(its session ${leaseId} holds the job's lease\\)`), show(held));
    for (const node of MASTERS) assert.deepEqual(await helpersOf(node, 'fam'), ['child_ezgho', 'parent_ezgho'], `${node}: nothing dropped`);
  } finally {
    await lease.close();
  }
  const r = await sb.run(['--json', 'osc', 'abort', '--table', 'fam.child']);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual([...r.json().tables].sort(), ['fam.child', 'fam.parent']);
  for (const node of MASTERS) {
    assert.deepEqual(await helpersOf(node, 'fam'), [], `${node}: every ghost of the change dropped`);
    assert.deepEqual(await savedStates(node, 'fam'), [], `${node}: every table's saved state deleted`);
    assert.equal(await columnType(node, 'fam', 'parent', 'id'), 'int(11)', `${node}: originals unchanged`);
  }
  // the change starts afresh
  const again = await sb.run(['migrate', 'int2bigint', '--tables', 'fam.parent,fam.child', '--threshold', '0', '--execute', '--drop-old-table']);
  assert.equal(again.code, 0, show(again));
});

test('osc cleanup keeps the helper tables of a job whose lease is held in a zone (no socket here, no saved state yet); a DROP held up by a session names it and keeps the table', async () => {
  for (const node of MASTERS) {
    await sqlOn(sb, node,
      'CREATE DATABASE cl',
      'CREATE TABLE cl.leased (id INT NOT NULL PRIMARY KEY)', 'CREATE TABLE cl.leased_ezgho (id INT NOT NULL PRIMARY KEY)',
      'CREATE TABLE cl.held (id INT NOT NULL PRIMARY KEY)', 'CREATE TABLE cl.held_ezdel (id INT NOT NULL PRIMARY KEY)',
    );
  }
  // a job on another host, between creating its ghost and first saving state: its lease, in sh only
  const lease = await sb.db('sh-master');
  const reader = await sb.db('bj-master');
  const readerId = Number(await reader.value('SELECT CONNECTION_ID()'));
  try {
    assert.equal(Number(await lease.value('SELECT GET_LOCK(?, 0)', [oscLeaseName(cluster, 'cl.leased')])), 1);
    // a transaction that read the old table holds its metadata lock in bj
    await reader.exec('BEGIN');
    await reader.value('SELECT COUNT(*) FROM cl.held_ezdel');
    const r = await sb.run(['--json', 'osc', 'cleanup', '--execute'], { timeoutMs: 90_000 });
    assert.equal(r.code, 3, `a table it could not drop: ${show(r)}`);
    const listed = r.json().tables as Array<{ zone: string; schema: string; table: string; action: string; why: string; dropped?: boolean; error?: string }>;
    const of = (zone: string, table: string) => listed.find((t) => t.zone === zone && t.schema === 'cl' && t.table === table);
    for (const z of ['bj', 'sh']) {
      assert.equal(of(z, 'leased_ezgho')?.action, 'keep', JSON.stringify(listed));
      assert.match(of(z, 'leased_ezgho')!.why, /holds its lease/);
    }
    assert.equal(of('sh', 'held_ezdel')?.dropped, true, JSON.stringify(listed));
    assert.notEqual(of('bj', 'held_ezdel')?.dropped, true);
    assert.match(of('bj', 'held_ezdel')?.error ?? '', new RegExp(`dropping cl\\.held_ezdel: waited \\d+ s for a metadata lock on cl\\.held_ezdel, .*session ${readerId} \\(.*KILL ${readerId}`), JSON.stringify(listed));
  } finally {
    await reader.exec('ROLLBACK').catch(() => undefined);
    await reader.close();
    await lease.close();
  }
  assert.deepEqual(await helpersOf('bj-master', 'cl'), ['held_ezdel', 'leased_ezgho']);
  assert.deepEqual(await helpersOf('sh-master', 'cl'), ['leased_ezgho']);
  // the lease gone (its job ended), the ghost is an orphan and goes
  const again = await sb.run(['--json', 'osc', 'cleanup', '--execute']);
  assert.equal(again.code, 0, show(again));
  for (const node of MASTERS) assert.deepEqual(await helpersOf(node, 'cl'), [], node);
});

test('a session holding a family table holds up the plan\'s empty twin: the run stops within --lock-wait-timeout naming it, nothing changed', async () => {
  // tag's only integer column refers to parent: the report reads nothing of tag, the plan copies its shape
  for (const node of MASTERS) {
    await sqlOn(sb, node,
      'CREATE DATABASE pl',
      'CREATE TABLE pl.parent (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)',
      'CREATE TABLE pl.tag (code VARCHAR(10) NOT NULL PRIMARY KEY, parent_id INT NOT NULL, FOREIGN KEY (parent_id) REFERENCES pl.parent(id))',
      'INSERT INTO pl.parent (id, v) SELECT seq, seq FROM ezseq.seq_1_to_100',
      "INSERT INTO pl.tag (code, parent_id) SELECT CONCAT('t', seq), seq FROM ezseq.seq_1_to_100",
    );
  }
  // (a transaction that wrote the table does not hold up CREATE TABLE ... LIKE: only a lock that stops reads does)
  const blocker = await sb.db('sh-master');
  const id = Number(await blocker.value('SELECT CONNECTION_ID()'));
  let r;
  try {
    await blocker.exec('LOCK TABLES pl.tag WRITE');
    r = await sb.run(['migrate', 'int2bigint', '--tables', 'pl.*', '--threshold', '0', '--execute', '--lock-wait-timeout', '2'], { timeoutMs: 60_000 });
  } finally {
    await blocker.exec('UNLOCK TABLES').catch(() => undefined);
    await blocker.close();
  }
  assert.equal(r.code, 3, show(r));
  assert.match(r.stderr, new RegExp(`zone sh: planning pl\\.tag \\(an empty twin of the table\\): waited 2 s for a metadata lock on pl\\.tag, held by session ${id} \\(`), show(r));
  assert.match(r.stderr, new RegExp(`KILL ${id}`), show(r));
  for (const node of MASTERS) {
    assert.deepEqual(await helpersOf(node, 'pl'), [], node);
    assert.equal(await columnType(node, 'pl', 'parent', 'id'), 'int(11)', node);
  }
});

test('osc abort naming a running family\'s second table stops the whole change: every ghost dropped, the originals unchanged', async () => {
  await family('live', 20_000);
  const flag = join(flagDir, 'hold-live');
  writeFileSync(flag, '');
  const job = sb.run(['migrate', 'int2bigint', '--tables', 'live.parent,live.child', '--threshold', '0', '--execute', '--throttle-flag-file', flag], { timeoutMs: 90_000 });
  try {
    for (const node of MASTERS) await eventually(async () => (await helpersOf(node, 'live')).join() === 'child_ezgho,parent_ezgho', 30_000, `${node}: the family's ghosts`);
    await eventually(async () => (await sb.run(['osc', 'status', '--table', 'live.child'])).code === 0, 30_000, 'the job to answer');
    const a = await sb.run(['osc', 'abort', '--table', 'live.child']);
    assert.equal(a.code, 0, show(a));
    const r = await job;
    assert.equal(r.code, 4, show(r));
    assert.match(r.stderr, /aborted by `ezctl osc abort`: the helper tables were dropped/, show(r));
  } finally {
    rmSync(flag, { force: true });
    await job;
  }
  for (const node of MASTERS) {
    assert.deepEqual(await helpersOf(node, 'live'), [], `${node}: every ghost dropped`);
    assert.deepEqual(await savedStates(node, 'live'), [], `${node}: no saved state left`);
    assert.equal(await columnType(node, 'live', 'parent', 'id'), 'int(11)', `${node}: originals unchanged`);
    assert.equal(await columnType(node, 'live', 'child', 'id'), 'int(11)', node);
  }
});
