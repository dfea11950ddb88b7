// The copy and apply layers between two servers (two independent zone masters, no DRC): a table
// and four shard tables (into one) copied from one server to the other while a writer changes the
// source, the binlog changes carried by the apply layer; the process doing it is killed with -9
// half-way through the copy and started again, resuming from the checkpoints in the target. At the
// end both sides are equal row for row, and a counter every write increments says no change was
// applied twice or lost.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { writeUntilStopped } from '../helpers/writer.js';
import { ROOT } from '../helpers/cli.js';
import type { Db, Endpoint } from '../../src/core/db/connect.js';
import { gtidCovers } from '../../src/core/db/gtid.js';
import type { TableMapping } from '../../src/core/apply/mapping.js';

let sb: TestSandbox;
let src: Db;
let dst: Db;
const children: ChildProcess[] = [];

const COLUMNS = ['id', 'n', 'amount', 'at', 'big', 'name', 'data', 'doc'];
const DDL = `(
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  n INT NOT NULL DEFAULT 0,
  amount DECIMAL(30,8) NULL,
  at DATETIME(6) NULL,
  big BIGINT UNSIGNED NULL,
  name VARCHAR(64) CHARACTER SET utf8mb4 NULL,
  data VARBINARY(32) NULL,
  doc JSON NULL
) ENGINE=InnoDB`;

/** A row whose every column is a value a careless copy would change (decimals, microseconds, 2^64-1, 4-byte UTF-8, a load's separators and escapes in text, bytes). */
function rowOf(id: number): unknown[] {
  return [id, 0, id % 7 === 0 ? null : `${id}123456789.12345678`, `2026-12-04 10:${String(id % 60).padStart(2, '0')}:00.${String(id % 1_000_000).padStart(6, '0')}`,
    `${18446744073709551615n - BigInt(id)}`, id % 5 === 0 ? `t\t\\N\r\n\0${id}` : `名${id}😀`, Buffer.from([0, 255, id % 256, 10]), `{"a":${id}}`];
}

async function fill(db: Db, table: string, ids: number[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    await db.exec(`INSERT INTO mv.${table} (${COLUMNS.join(', ')}) VALUES ${part.map(() => `(${COLUMNS.map(() => '?').join(', ')})`).join(', ')}`, part.flatMap(rowOf) as never[]);
  }
}

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  src = await sb.db(master('bj'));
  dst = await sb.db(master('sh'));
  for (const db of [src, dst]) await db.exec('CREATE DATABASE mv');
  await src.exec(`CREATE TABLE mv.t ${DDL}`);
  for (let s = 0; s < 4; s++) await src.exec(`CREATE TABLE mv.t_${s} ${DDL}`);
  await dst.exec(`CREATE TABLE mv.t ${DDL}`);
  await dst.exec(`CREATE TABLE mv.t_all ${DDL}`);
  await fill(src, 't', Array.from({ length: 3000 }, (_, i) => i + 1));
  // shard s holds ids 4k + s: unique across the shards, so they can meet in one table
  for (let s = 0; s < 4; s++) await fill(src, `t_${s}`, Array.from({ length: 600 }, (_, k) => 4 * (k + 1) + s));
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await src?.close();
  await dst?.close();
  await sb?.down();
});

function master(zone: string): string {
  return sb.nodes.find((n) => n.zone === zone && n.role === 'master')!.name;
}

function endpoint(name: string): Endpoint {
  const n = sb.node(name);
  return { label: name, host: n.host, port: n.port, user: 'ezctl', password: sb.adminPassword, passwordSource: 'test' };
}

/** The job as a child process; its events as they come. */
function startJob(mappings: TableMapping[]): { child: ChildProcess; events: Array<Record<string, any>>; exited: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const input = { name: 'move1', source: endpoint(master('bj')), target: endpoint(master('sh')), serverId: 900_000 + (process.pid % 1000), chunkPauseMs: 25, mappings };
  const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'fixtures', 'copy-apply-job.ts')], {
    cwd: ROOT, env: { ...process.env, EZCTL_COPY_APPLY: JSON.stringify(input) }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const events: Array<Record<string, any>> = [];
  let buf = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      events.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((res) => child.on('exit', (code, signal) => res({ code, signal, stderr })));
  return { child, events, exited };
}

const rowsOf = (db: Db, sql: string) => db.query(sql).then((rows) => rows.map((r) => COLUMNS.map((c) => (Buffer.isBuffer(r[c]) ? (r[c] as Buffer).toString('hex') : r[c]))));

/** Both sides equal row for row; otherwise the first rows that differ, by id. */
async function assertSameRows(what: string, target: Promise<unknown[][]>, source: Promise<unknown[][]>): Promise<void> {
  const [a, b] = await Promise.all([target, source]);
  const text = (rows: unknown[][]) => new Map(rows.map((r) => [String(r[0]), JSON.stringify(r)]));
  const [ta, tb] = [text(a), text(b)];
  const ids = [...new Set([...ta.keys(), ...tb.keys()])].filter((id) => ta.get(id) !== tb.get(id));
  assert.deepEqual(ids.slice(0, 5).map((id) => ({ id, target: ta.get(id) ?? 'missing', source: tb.get(id) ?? 'missing' })), [], `${what}: ${ids.length} rows differ (${a.length} rows in the target, ${b.length} in the source)`);
  assert.equal(a.length, b.length);
}

test('a table and four shards into one, copied and applied to another server under writes, killed with -9 half-way and resumed: equal row for row, nothing applied twice', async () => {
  const cols = COLUMNS.map((c) => ({ from: c, to: c }));
  const mappings: TableMapping[] = [
    { source: { schema: 'mv', table: 't' }, target: { schema: 'mv', table: 't' }, columns: cols, key: ['id'] },
    ...[0, 1, 2, 3].map((s) => ({ source: { schema: 'mv', table: `t_${s}` }, target: { schema: 'mv', table: 't_all' }, columns: cols, key: ['id'] })),
  ];
  // the application: increments counters, inserts new rows and deletes some, in t and the shards
  let nextId = 100_000;
  const writer = writeUntilStopped(() => sb.db(master('bj')), async (db, i) => {
    const table = i % 2 === 0 ? 't' : `t_${i % 4}`;
    const shard = table === 't' ? 0 : Number(table.slice(2));
    const id = table === 't' ? 1 + ((i * 7919) % 3000) : 4 * (1 + ((i * 7919) % 600)) + shard;
    await db.exec('BEGIN');
    await db.exec(`UPDATE mv.${table} SET n = n + 1 WHERE id = ?`, [id]);
    await db.exec(`UPDATE mv.${table} SET n = n + 1, amount = amount + 1 WHERE id = ?`, [table === 't' ? 3001 - id : id]);
    if (i % 5 === 0) {
      const nid = table === 't' ? nextId++ : 4 * nextId++ + shard;
      await db.exec(`INSERT INTO mv.${table} (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`, rowOf(nid) as never[]);
    }
    if (i % 7 === 0) await db.exec(`DELETE FROM mv.${table} WHERE id = ?`, [table === 't' ? 1 + ((i * 31) % 3000) : 4 * (1 + ((i * 31) % 600)) + shard]);
    await db.exec('COMMIT');
  });
  try {
    // first run: killed with -9 once part of mv.t is copied
    const first = startJob(mappings);
    await eventually(async () => first.events.filter((e) => e.event === 'chunk' && e.table === 'mv.t' && e.after).length >= 3 || first.child.exitCode !== null, 60_000, 'the first run to copy a few chunks');
    first.child.kill('SIGKILL');
    const died = await first.exited;
    assert.equal(died.signal, 'SIGKILL', `the first run ended before it was killed: ${died.stderr}`);
    const copied = Number(await dst.value('SELECT COUNT(*) FROM mv.t'));
    assert.ok(copied > 0 && copied < 3000, `killed half-way: ${copied} rows of mv.t in the target`);
    const saved = await dst.query<{ part: string; position: string }>("SELECT part, position FROM _ezctl.apply_checkpoint WHERE name = 'move1' ORDER BY part");
    assert.ok(saved.some((r) => r.part === '') && saved.some((r) => r.part === 'mv.t' && r.position !== 'done'), `checkpoints kept in the target: ${JSON.stringify(saved)}`);

    // second run: resumes from those checkpoints
    const second = startJob(mappings);
    await eventually(async () => second.events.some((e) => e.event === 'copied') || second.child.exitCode !== null, 120_000, 'the second run to finish the copy');
    assert.equal(second.child.exitCode, null, `the second run failed: ${(await Promise.race([second.exited, new Promise((r) => setTimeout(r, 100))]) as { stderr?: string } | undefined)?.stderr ?? ''}`);
    const start = second.events.find((e) => e.event === 'start')!;
    assert.ok(start.copied['mv.t'] && start.copied['mv.t'] !== 'done', `the second run resumed the copy of mv.t after ${JSON.stringify(start.copied)}`);
    const w = await writer.stop();
    assert.deepEqual(w.errors, []);
    assert.ok(w.n > 20, `the writer wrote (${w.n} transactions)`);
    const end = String(await src.value('SELECT @@global.gtid_binlog_pos'));
    await eventually(async () => second.events.some((e) => e.event === 'applied' && gtidCovers('mariadb', e.position, end)) || second.child.exitCode !== null, 60_000, 'the applier to catch up');
    second.child.kill('SIGTERM');
    const ended = await second.exited;
    assert.equal(ended.code, 0, ended.stderr);

    const order = ` ORDER BY id`;
    await assertSameRows('mv.t', rowsOf(dst, `SELECT * FROM mv.t${order}`), rowsOf(src, `SELECT * FROM mv.t${order}`));
    const shards = [0, 1, 2, 3].map((s) => `SELECT * FROM mv.t_${s}`).join(' UNION ALL ');
    await assertSameRows('mv.t_all', rowsOf(dst, `SELECT * FROM mv.t_all${order}`), rowsOf(src, `SELECT * FROM (${shards}) u${order}`));
    // every increment is there once: the counters' sums agree and the writer did increment
    const sum = async (db: Db, sql: string) => String(await db.value(sql));
    const srcN = await sum(src, `SELECT SUM(n) FROM (SELECT n FROM mv.t UNION ALL ${[0, 1, 2, 3].map((s) => `SELECT n FROM mv.t_${s}`).join(' UNION ALL ')}) u`);
    const dstN = await sum(dst, 'SELECT SUM(n) FROM (SELECT n FROM mv.t UNION ALL SELECT n FROM mv.t_all) u');
    assert.equal(dstN, srcN);
    assert.ok(Number(srcN) > 0);
  } finally {
    await writer.stop().catch(() => undefined);
  }
});

test('a between-servers chunk is one transaction on the target: an INSERT of it refused leaves none of its rows', async () => {
  const { copyChunkBetween, chunkWhere } = await import('../../src/core/copy/strategy.js');
  await src.exec('CREATE TABLE mv.tx (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL)');
  await src.exec("INSERT INTO mv.tx VALUES (1, 'a'), (2, 'b'), (3, 'too long for it'), (4, 'd')");
  // the target's column is narrower: the chunk's second INSERT (rows 3 and 4) is refused in strict mode
  await dst.exec('CREATE TABLE mv.tx (id INT NOT NULL PRIMARY KEY, v VARCHAR(5) NOT NULL)');
  const spec = { source: { schema: 'mv', table: 'tx', key: { index: 'PRIMARY', columns: ['id'], integer: true } }, target: { schema: 'mv', table: 'tx' }, columns: [{ from: 'id', to: 'id' }, { from: 'v', to: 'v' }] };
  await assert.rejects(copyChunkBetween(src, dst, spec, chunkWhere(spec, {}), { rowsPerInsert: 2, via: 'insert' }), /Data too long/);
  assert.equal(Number(await dst.value('SELECT COUNT(*) FROM mv.tx')), 0, 'rows 1 and 2 (the first INSERT) were rolled back with the chunk');
  // the same chunk as one LOAD DATA ... IGNORE: the truncation IGNORE makes a warning is refused all the same
  await assert.rejects(copyChunkBetween(src, dst, spec, chunkWhere(spec, {})), /would change a value: Warning 1265: Data truncated for column 'v' at row 3.*rolled back/);
  assert.equal(Number(await dst.value('SELECT COUNT(*) FROM mv.tx')), 0, 'rows 1, 2 and 4 were rolled back with the load');
  // the session is usable again (no transaction left open), and a chunk that fits is copied whole
  await src.exec("UPDATE mv.tx SET v = 'c' WHERE id = 3");
  assert.equal(await copyChunkBetween(src, dst, spec, chunkWhere(spec, {}), { rowsPerInsert: 3 }), 4);
  assert.deepEqual((await dst.query('SELECT id, v FROM mv.tx ORDER BY id')).map((r) => `${r.id}${r.v}`), ['1a', '2b', '3c', '4d']);
  for (const db of [src, dst]) await db.exec('DROP TABLE mv.tx');
});

test('every column type through the load, built from the bytes the source sent, is equal on the target value for value, geometries included', async () => {
  const { copyChunkBetween, chunkWhere } = await import('../../src/core/copy/strategy.js');
  const ddl = `(id BIGINT NOT NULL PRIMARY KEY, i INT NULL, u BIGINT UNSIGNED NULL, dec_ DECIMAL(30,10) NULL, f FLOAT NULL, d DOUBLE NULL,
    dt DATETIME(6) NULL, ts TIMESTAMP(3) NULL, da DATE NULL, tm TIME(2) NULL, y YEAR NULL,
    s VARCHAR(100) CHARACTER SET utf8mb4 NULL, l VARCHAR(50) CHARACTER SET latin1 NULL, tx TEXT NULL, bl BLOB NULL, vb VARBINARY(300) NULL,
    bt BIT(10) NULL, e ENUM('a','b','c d') NULL, st SET('x','y','z') NULL, j JSON NULL)`;
  await src.exec(`CREATE TABLE mv.types ${ddl}`);
  await dst.exec(`CREATE TABLE mv.types ${ddl}`);
  // every byte value in the binaries; the load's special characters, NULL against '' and '\\N' in text
  await src.exec(`INSERT INTO mv.types VALUES
    (1, -2147483648, 18446744073709551615, -12345678901234567890.0123456789, 3.40282e38, -1.7976931348623157e308,
     '2024-02-29 23:59:59.999999', '2038-01-19 03:14:07.999', '1000-01-01', '-838:59:59.99', 2155,
     'tab\\there\\nnew\\\\back\\rcr', 'caf\\u00e9', REPEAT('long ', 2000), UNHEX(REPEAT('00FF0A0D095C', 50)), (SELECT UNHEX(GROUP_CONCAT(LPAD(HEX(seq), 2, '0') SEPARATOR '')) FROM mv.seq_0_to_255),
     b'1010101010', 'c d', 'x,z', '{"a": [1, "t\\\\tb"], "b": null}'),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (3, 0, 0, 0, 0.1, 0.1, '0001-01-01 00:00:00', '1970-01-01 00:00:01', '9999-12-31', '00:00:00', 1901,
     '', '', '', '', '', b'0', 'a', '', '[]'),
    (4, 1, 1, 1, 1e-30, 2.2250738585072014e-308, '2000-01-01', '2000-01-01', '2000-01-01', '12:00', 2000,
     '\\\\N', 'N', '名前 🚀 ok', 0x00, 0x5C4E, b'1111111111', 'b', 'y', '"str\\\\u00e9"')`);
  await src.exec("UPDATE mv.types SET s = CONCAT('nul', CHAR(0), 'byte') WHERE id = 3");
  const cols = ['id', 'i', 'u', 'dec_', 'f', 'd', 'dt', 'ts', 'da', 'tm', 'y', 's', 'l', 'tx', 'bl', 'vb', 'bt', 'e', 'st', 'j'];
  const spec = { source: { schema: 'mv', table: 'types', key: { index: 'PRIMARY', columns: ['id'], integer: true } }, target: { schema: 'mv', table: 'types' }, columns: cols.map((c) => ({ from: c, to: c })) };
  assert.equal(await copyChunkBetween(src, dst, spec, chunkWhere(spec, {})), 4);
  // each value as the server shows it, bytes as hex: exactly what was there
  const shown = `SELECT ${cols.map((c) => (['bl', 'vb', 'bt'].includes(c) ? `HEX(${c})` : c === 'f' || c === 'd' ? `CONCAT(${c})` : c)).join(', ')}, HEX(s), HEX(l), HEX(tx), HEX(j) FROM mv.types ORDER BY id`;
  assert.deepEqual(await dst.queryArrays(shown), await src.queryArrays(shown));
  // and the floats bit for bit: the same value, not just the same rounding
  const bits = 'SELECT id, f = (SELECT f FROM mv.types s WHERE s.id = t.id), d FROM mv.types t ORDER BY id';
  assert.deepEqual((await dst.queryArrays(bits)).map((r) => r[2]), (await src.queryArrays(bits)).map((r) => r[2]));

  // geometries: the server's own bytes (SRID and WKB) through UNHEX, equal shape and SRID
  await src.exec('CREATE TABLE mv.geo (id INT NOT NULL PRIMARY KEY, p POINT NULL, g GEOMETRY NULL, s VARCHAR(10) NULL)');
  await dst.exec('CREATE TABLE mv.geo (id INT NOT NULL PRIMARY KEY, p POINT NULL, g GEOMETRY NULL, s VARCHAR(10) NULL)');
  await src.exec("INSERT INTO mv.geo VALUES (1, POINT(1.5, -2), ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))', 4326), 'a\\tb'), (2, NULL, NULL, NULL)");
  const g = { source: { schema: 'mv', table: 'geo', key: { index: 'PRIMARY', columns: ['id'], integer: true } }, target: { schema: 'mv', table: 'geo' }, columns: ['id', 'p', 'g', 's'].map((c) => ({ from: c, to: c })) };
  assert.equal(await copyChunkBetween(src, dst, g, chunkWhere(g, {})), 2);
  const geoShown = 'SELECT id, ST_AsText(p), ST_AsText(g), ST_SRID(g), HEX(g), HEX(s) FROM mv.geo ORDER BY id';
  assert.deepEqual(await dst.queryArrays(geoShown), await src.queryArrays(geoShown));
  // and as INSERTs (a target without LOAD DATA LOCAL) and as a merge's INSERTs (rows through a rule)
  for (const o of [{ via: 'insert' as const }, { beforeWrite: async (_db: Db, rows: Array<Record<string, unknown>>) => rows }]) {
    await dst.exec('DELETE FROM mv.geo');
    assert.equal(await copyChunkBetween(src, dst, g, chunkWhere(g, {}), o), 2);
    assert.deepEqual(await dst.queryArrays(geoShown), await src.queryArrays(geoShown));
  }
  for (const db of [src, dst]) await db.exec('DROP TABLE mv.types, mv.geo');
});

test('a chunk larger than the server\'s max_allowed_packet goes through the load (its content sent in pieces)', async () => {
  const { copyChunkBetween, chunkWhere } = await import('../../src/core/copy/strategy.js');
  const packet = Number(await dst.value('SELECT @@max_allowed_packet'));
  await src.exec('CREATE TABLE mv.wide (id INT NOT NULL PRIMARY KEY, v LONGTEXT NOT NULL)');
  await dst.exec('CREATE TABLE mv.wide (id INT NOT NULL PRIMARY KEY, v LONGTEXT NOT NULL)');
  // rows of 1 MiB each, together a quarter more than one packet may hold
  const rows = Math.ceil((packet * 1.25) / 2 ** 20);
  await src.exec(`INSERT INTO mv.wide SELECT seq, REPEAT(CHAR(97 + seq % 26), ${2 ** 20}) FROM mv.seq_1_to_${rows}`);
  const spec = { source: { schema: 'mv', table: 'wide', key: { index: 'PRIMARY', columns: ['id'], integer: true } }, target: { schema: 'mv', table: 'wide' }, columns: [{ from: 'id', to: 'id' }, { from: 'v', to: 'v' }] };
  assert.equal(await copyChunkBetween(src, dst, spec, chunkWhere(spec, {})), rows);
  const sums = 'SELECT COUNT(*), SUM(LENGTH(v)), BIT_XOR(CRC32(v)) FROM mv.wide';
  assert.deepEqual(await dst.queryArrays(sums), await src.queryArrays(sums));
  for (const db of [src, dst]) await db.exec('DROP TABLE mv.wide');
});
