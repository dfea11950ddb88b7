// migrate drc-ts on real servers: tables created in each zone without the DRC timestamp column
// (rows identical in both zones), one with TIMESTAMP(0), one nullable with NULLs, one where only
// bj has the column. A column that cannot be fixed safely refuses the whole run (exit 4, nothing
// changed); the plan changes nothing and prints SQL every server accepts; --execute makes every
// definition right on every node and every row's timestamp the same in both zones (the replicas
// too); DRC's preflight then accepts the tables and DRC replicates writes on them, check full
// clean. Last, what a running DRC does with a table that lacks the column (the direction stops),
// and how the migration resumes it.
import { test, before, after } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { show } from '../helpers/cli.js';
import { eventually, startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { assertZonesIdentical, drcStart, drcStatus, drcStop, drcWaitAll, sqlOn, tableRows } from '../helpers/drc.js';
import { readShapes } from '../../src/core/db/introspect.js';
import { serverInfo, waitForGtid } from '../../src/core/db/server.js';

let sb: TestSandbox;
let pid: number | undefined;
const ZONES = ['bj', 'sh'];
const MASTERS = ['bj-master', 'sh-master'];
const NODES = ['bj-master', 'bj-replica1', 'sh-master', 'sh-replica1'];
const FIXED = '2026-11-23 12:00:00.000';
const TABLES = ['nullable', 'partial', 'plain', 'ts0'];

/** The same statements in every zone, each at its own master (as an application does it). */
const everyZone = async (...stmts: string[]) => {
  for (const m of MASTERS) await sqlOn(sb, m, ...stmts);
};

async function query(node: string, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const db = await sb.db(node);
  try {
    return await db.query(sql, params as never[]);
  } finally {
    await db.close();
  }
}

/** Every user table's structure on a node, as one comparable value. */
async function structure(node: string): Promise<unknown> {
  const db = await sb.db(node);
  try {
    return [...(await readShapes(db)).entries()].map(([k, s]) => [k, s.columns.map((c) => ({ ...c })), s.indexes]);
  } finally {
    await db.close();
  }
}

async function replicasCaughtUp(): Promise<void> {
  for (const z of ZONES) {
    const m = await sb.db(`${z}-master`);
    const r = await sb.db(`${z}-replica1`);
    try {
      const pos = (await serverInfo(m)).gtidBinlogPos;
      assert.ok(await waitForGtid(r, 'mariadb', pos, 30), `${z}-replica1 caught up`);
    } finally {
      await m.close();
      await r.close();
    }
  }
}

async function tsColumn(node: string, table: string): Promise<Record<string, unknown> | undefined> {
  return (await query(node, "SELECT COLUMN_TYPE AS t, IS_NULLABLE AS n, COLUMN_DEFAULT AS d, EXTRA AS e, COLUMN_COMMENT AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'ezmig' AND TABLE_NAME = ? AND COLUMN_NAME = 'drc_ts'", [table]))[0];
}

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 1, load: 500 });
  // created in each zone separately, identical rows; DRC is not running
  await everyZone(
    'CREATE DATABASE ezmig',
    'USE ezmig', // the seq_1_to_N tables live in the current database
    'CREATE TABLE ezmig.plain (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, amount DECIMAL(10,2))',
    "INSERT INTO ezmig.plain SELECT seq, CONCAT('name-', seq), seq * 1.25 FROM seq_1_to_300",
    "CREATE TABLE ezmig.ts0 (id INT PRIMARY KEY, v INT, drc_ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'lww')",
    "INSERT INTO ezmig.ts0 SELECT seq, seq, TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq MINUTE FROM seq_1_to_200",
    'CREATE TABLE ezmig.nullable (id INT PRIMARY KEY, v INT, drc_ts TIMESTAMP(3) NULL)',
    "INSERT INTO ezmig.nullable SELECT seq, seq, IF(seq % 3 = 0, NULL, TIMESTAMP'2026-02-01 00:00:00.250' + INTERVAL seq SECOND) FROM seq_1_to_100",
  );
  // only bj has the column, with values of its own (ms apart); sh has the same rows without it
  await sqlOn(sb, 'bj-master', 'USE ezmig',
    'CREATE TABLE ezmig.partial (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3), PRIMARY KEY (a, b))',
    "INSERT INTO ezmig.partial SELECT seq DIV 3, CONCAT('k', seq % 3), seq, TIMESTAMP'2026-03-01 00:00:00' + INTERVAL seq * 7000 MICROSECOND FROM seq_1_to_1200");
  await sqlOn(sb, 'sh-master', 'USE ezmig',
    'CREATE TABLE ezmig.partial (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (a, b))',
    "INSERT INTO ezmig.partial SELECT seq DIV 3, CONCAT('k', seq % 3), seq FROM seq_1_to_1200");
});

after(async () => {
  if (sb && pid) await drcStop(sb, pid);
  await sb?.down();
});

test('a column that cannot be fixed safely refuses the whole run: exit 4, nothing changed', async () => {
  await everyZone(
    'CREATE DATABASE ezbad',
    'CREATE TABLE ezbad.dt (id INT PRIMARY KEY, drc_ts DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))',
    'INSERT INTO ezbad.dt (id) VALUES (1), (2)',
  );
  const before = await Promise.all(MASTERS.map(structure));
  const r = await sb.run(['--json', 'migrate', 'drc-ts', '--execute']);
  assert.equal(r.code, 4, show(r));
  const rep = r.json();
  assert.equal(rep.refused, true);
  const bad = rep.tables.find((t: any) => t.table === 'ezbad.dt');
  assert.equal(bad.status, 'refused');
  assert.match(bad.refusals.join('\n'), /datetime\(3\).*time zone/);
  assert.equal(rep.steps.every((s: any) => s.result === undefined), true, 'no step ran');
  assert.deepEqual(await Promise.all(MASTERS.map(structure)), before, 'nothing changed');
  // the text says why
  const text = await sb.run(['migrate', 'drc-ts', '--tables', 'ezbad.*']);
  assert.equal(text.code, 4, show(text));
  assert.match(text.stdout, /REFUSED at bj: drc_ts datetime\(3\)/);
  await everyZone('DROP DATABASE ezbad');
});

test('the plan: per table and zone what is wrong and what will be done, valid SQL, nothing changed', async () => {
  const before = await Promise.all(MASTERS.map(structure));
  const r = await sb.run(['--json', 'migrate', 'drc-ts', '--value', FIXED]);
  assert.equal(r.code, 0, show(r));
  const rep = r.json();
  assert.equal(rep.execute, false);
  assert.equal(rep.fixedValue, FIXED);
  const states = Object.fromEntries(rep.tables.map((t: any) => [t.table, ZONES.map((z) => `${t.zones[z].state}${t.zones[z].problems?.length ? `(${t.zones[z].problems.map((p: any) => p.kind).join(',')})` : ''}`).join(' ')]));
  assert.deepEqual(states, {
    'ezmig.nullable': 'wrong(nullable,default,on-update) wrong(nullable,default,on-update)',
    'ezmig.partial': 'ok missing',
    'ezmig.plain': 'missing missing',
    'ezmig.ts0': 'wrong(precision,default,on-update) wrong(precision,default,on-update)',
  });
  assert.ok(rep.ok.includes('ezdemo.orders'), 'the demo tables are right already');
  assert.equal(rep.tables.find((t: any) => t.table === 'ezmig.partial').donor, 'bj');

  // every statement of the printed SQL is accepted by the zone's server (PREPARE parses without running)
  for (const [i, z] of ZONES.entries()) {
    const lines: string[] = rep.sql[z];
    const statements = lines.filter((l) => !l.startsWith('--'));
    assert.ok(statements.some((s) => /^\/\* ezctl-drc migrate drc-ts \*\/ ALTER TABLE `ezmig`.`plain` ADD COLUMN `drc_ts` TIMESTAMP\(3\) NOT NULL DEFAULT '2026-11-23 12:00:00.000', ALGORITHM=INSTANT;$/.test(s)), lines.join('\n'));
    const db = await sb.db(MASTERS[i]!);
    try {
      for (const s of statements) {
        assert.ok(s.endsWith(';'), s);
        await db.exec('PREPARE ezctl_check FROM ?', [s.slice(0, -1)]);
        await db.exec('DEALLOCATE PREPARE ezctl_check');
      }
    } finally {
      await db.close();
    }
  }
  const text = await sb.run(['migrate', 'drc-ts', '--value', FIXED]);
  assert.equal(text.code, 0, show(text));
  assert.match(text.stdout, /-- zone sh: sh-master/);
  assert.match(text.stdout, /nothing was changed/);
  assert.deepEqual(await Promise.all(MASTERS.map(structure)), before, 'the plan changed nothing');
  // and DRC still refuses these tables: its preflight names each one lacking the column
  const drc = await sb.run(['--json', 'drc', 'start', '--detach']);
  assert.equal(drc.code, 4, show(drc));
  const problems: string[] = drc.json().error.details;
  assert.ok(problems.some((p) => /zone bj .*ezmig\.plain has no drc_ts column/.test(p)), problems.join('\n'));
  assert.ok(problems.some((p) => /zone sh .*ezmig\.partial has no drc_ts column/.test(p)), problems.join('\n'));
  assert.ok(!problems.some((p) => /zone bj .*ezmig\.partial/.test(p)), 'bj has it');
});

test('--execute: the definition right on every node, every row the same timestamp in both zones', async () => {
  const ts0Before = await tableRows(sb, 'bj-master', 'ezmig', 'ts0');
  const nullableBefore = await tableRows(sb, 'bj-master', 'ezmig', 'nullable');
  const partialBj = await tableRows(sb, 'bj-master', 'ezmig', 'partial');
  const r = await sb.run(['--json', 'migrate', 'drc-ts', '--execute', '--value', FIXED]);
  assert.equal(r.code, 0, show(r));
  const rep = r.json();
  assert.equal(rep.verification.ok, true, JSON.stringify(rep.verification, null, 1));
  assert.deepEqual(rep.verification.definitions.nodes.map((n: any) => n.node).sort(), [...NODES].sort());
  assert.equal(rep.verification.values.compared, true);

  // the algorithms the server gave each step (measured; the README quotes them)
  const got = Object.fromEntries(rep.steps.map((s: any) => [`${s.table} ${s.zone} ${s.kind}`, s.result.algorithm ?? s.result.rows]));
  assert.deepEqual(got, {
    'ezmig.nullable bj literal-default': 'INSTANT',
    'ezmig.nullable bj fill-nulls': 33,
    'ezmig.nullable sh literal-default': 'INSTANT',
    'ezmig.nullable sh fill-nulls': 33,
    'ezmig.nullable bj define': 'COPY',
    'ezmig.nullable sh define': 'COPY',
    'ezmig.partial sh add': 'INSTANT',
    'ezmig.partial sh copy-values': 1200,
    'ezmig.partial sh define': 'INSTANT',
    'ezmig.plain bj add': 'INSTANT',
    'ezmig.plain sh add': 'INSTANT',
    'ezmig.plain bj define': 'INSTANT',
    'ezmig.plain sh define': 'INSTANT',
    'ezmig.ts0 bj define': 'COPY',
    'ezmig.ts0 sh define': 'COPY',
  });

  await replicasCaughtUp();
  for (const node of NODES) {
    for (const t of TABLES) {
      const c = await tsColumn(node, t);
      assert.deepEqual({ t: c?.t, n: c?.n, d: c?.d, e: c?.e }, { t: 'timestamp(3)', n: 'NO', d: 'current_timestamp(3)', e: 'on update current_timestamp(3)' }, `${t} at ${node}`);
    }
    assert.equal((await tsColumn(node, 'ts0'))?.c, 'lww', 'the comment is kept');
  }

  // values: the fixed one for rows that had none, kept (widened) where there was one, bj's in sh
  const plain = await tableRows(sb, 'sh-master', 'ezmig', 'plain');
  assert.equal(plain.length, 300);
  assert.ok(plain.every((row) => row.drc_ts === FIXED));
  const ts0 = await tableRows(sb, 'sh-master', 'ezmig', 'ts0');
  assert.deepEqual(ts0.map((row) => row.drc_ts), ts0Before.map((row) => `${row.drc_ts}.000`));
  const nullable = await tableRows(sb, 'bj-master', 'ezmig', 'nullable');
  assert.deepEqual(nullable.map((row) => row.drc_ts), nullableBefore.map((row) => row.drc_ts ?? FIXED));
  const partialSh = await tableRows(sb, 'sh-master', 'ezmig', 'partial');
  assert.deepEqual(partialSh.map((row) => row.drc_ts), partialBj.map((row) => row.drc_ts), 'sh has bj\'s timestamps');
  assert.notEqual(partialSh[0]!.drc_ts, partialSh[1]!.drc_ts);

  // every row identical across zones, and each replica identical to its master
  const pairs = TABLES.map((t) => ['ezmig', t] as [string, string]);
  await assertZonesIdentical(sb, MASTERS, pairs);
  await assertZonesIdentical(sb, ['bj-master', 'bj-replica1'], pairs);
  await assertZonesIdentical(sb, ['sh-master', 'sh-replica1'], pairs);

  // run again: nothing to do
  const again = await sb.run(['--json', 'migrate', 'drc-ts', '--execute']);
  assert.equal(again.code, 0, show(again));
  assert.deepEqual(again.json().tables, []);
});

test('DRC starts (its preflight accepts every table) and replicates writes on the migrated tables; check full clean', async () => {
  pid = await drcStart(sb); // runs the preflight: a table without drc_ts would refuse the start
  const bj = await sb.appDb('bj-master');
  const sh = await sb.appDb('sh-master');
  try {
    for (let i = 0; i < 20; i++) {
      await bj.exec("INSERT INTO ezmig.plain (id, name) VALUES (?, 'from-bj')", [1001 + i * 2]);
      await sh.exec("INSERT INTO ezmig.plain (id, name) VALUES (?, 'from-sh')", [1002 + i * 2]);
    }
    await bj.exec("UPDATE ezmig.plain SET name = 'bj-upd' WHERE id <= 10");
    await sh.exec("UPDATE ezmig.plain SET name = 'sh-upd' WHERE id BETWEEN 11 AND 20");
    await bj.exec('UPDATE ezmig.ts0 SET v = v + 1 WHERE id <= 5');
    await sh.exec('UPDATE ezmig.partial SET v = -v WHERE a < 3');
    await sh.exec('DELETE FROM ezmig.nullable WHERE id = 1');
    await bj.exec("UPDATE ezmig.plain SET name = 'conflict-bj' WHERE id = 50");
    await sh.exec("UPDATE ezmig.plain SET name = 'conflict-sh' WHERE id = 50");
  } finally {
    await bj.close();
    await sh.close();
  }
  const work = await sb.run(['sandbox', 'workload', '--tps', '40', '--seconds', '3', '--conflict-ratio', '0.1']);
  assert.equal(work.code, 0, show(work));
  await drcWaitAll(sb, ZONES, '30s');
  // ON UPDATE stamps new writes; DRC carried them with their timestamps
  const upd = await query('sh-master', 'SELECT drc_ts FROM ezmig.plain WHERE id = 1');
  assert.ok(String(upd[0]!.drc_ts) > FIXED, `an update is stamped after the fixed value (${String(upd[0]!.drc_ts)})`);
  await assertZonesIdentical(sb, MASTERS, TABLES.map((t) => ['ezmig', t] as [string, string]));
  const check = await sb.run(['--json', 'check', 'full']);
  assert.equal(check.code, 0, show(check));
  assert.equal(check.json().consistent, true);
});

test('a table without the column under a running DRC stops the direction into it; migrate adds it and resumes DRC; what travelled without a timestamp is found and repaired', async () => {
  // a new table, created in each zone (DRC does not replicate DDL), then a write in bj
  await everyZone('CREATE TABLE ezmig.late (id INT PRIMARY KEY, v VARCHAR(20))');
  await sqlOn(sb, 'bj-master', "INSERT INTO ezmig.late VALUES (1, 'bj')");
  const stopped = await eventually(async () => {
    const st = await drcStatus(sb);
    const d = st.directions.find((x: any) => x.from === 'bj' && x.to === 'sh');
    return d?.state === 'error' ? d : undefined;
  }, 15_000, 'bj->sh to stop');
  assert.match(stopped.lastError, /table ezmig\.late has no drc_ts column there; .*ezctl migrate drc-ts/);
  // the same, structured, for a program to act on (migrate drc-ts resumes by it)
  assert.deepEqual({ ...stopped.stoppedOn, gtid: undefined }, { reason: 'no-timestamp-column', table: 'ezmig.late', column: 'drc_ts', gtid: undefined });
  assert.match(stopped.stoppedOn.gtid, /^\d+-\d+-\d+$/);
  // the whole direction waits, not just that table: a later bj write elsewhere does not reach sh
  await sqlOn(sb, 'bj-master', "INSERT INTO ezmig.plain (id, name) VALUES (5001, 'after-late')");
  // the other direction goes on
  await sqlOn(sb, 'sh-master', "INSERT INTO ezmig.plain (id, name) VALUES (5002, 'sh-meanwhile')");
  await eventually(async () => (await query('bj-master', 'SELECT 1 FROM ezmig.plain WHERE id = 5002')).length === 1, 15_000, 'sh->bj still replicating');
  assert.equal((await query('sh-master', 'SELECT 1 FROM ezmig.plain WHERE id = 5001')).length, 0, 'bj->sh holds everything after the stop');

  const r = await sb.run(['--json', 'migrate', 'drc-ts', '--tables', 'ezmig.late', '--execute']);
  const rep = r.json();
  assert.deepEqual(rep.drc.resumed, [{ direction: 'bj->sh', table: 'ezmig.late', stoppedBefore: true }]);
  assert.match(rep.drc.warnings[0], /written in bj without a drc_ts/);
  // bj's row existed before bj had the column: it reads the fixed value; in sh DRC inserted it
  // afterwards without a timestamp, so it got sh's default (its apply time). The verification says so.
  assert.equal(r.code, 1, show(r));
  assert.equal(rep.verification.definitions.ok, true);
  assert.equal(rep.verification.values.ok, false);
  assert.equal(rep.verification.values.tables[0].table, 'ezmig.late');
  // DRC's replicators log every DDL of a zone's own (the CREATE TABLE above) but take the
  // migration's marked ALTERs for DRC's own statements: never reported, never forwarded
  const log = readFileSync(join(sb.dir, 'state', 'drc-demo', 'daemon.log'), 'utf8');
  assert.match(log, /DDL at bj \(.*CREATE TABLE ezmig\.late/);
  assert.doesNotMatch(log, /DDL at \w+ .*ALTER TABLE `ezmig`/);
  await eventually(async () => (await query('sh-master', 'SELECT 1 FROM ezmig.plain WHERE id = 5001')).length === 1, 15_000, 'bj->sh resumed');

  const fix = await sb.run(['--json', 'repair', '--tables', 'ezmig.late', '--execute']);
  assert.equal(fix.code, 0, show(fix));
  await drcWaitAll(sb, ZONES, '30s');
  const check = await sb.run(['--json', 'check', 'full']);
  assert.equal(check.code, 0, show(check));
});
