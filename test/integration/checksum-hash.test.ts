// The 64-bit row hash builds each row's string once and hands it from CRC32 to CRC32C through a
// session variable. That is only right if the server evaluates the assignment before the read in
// every query shape the checks use; here each shape is compared, row by row and chunk by chunk,
// with the definition: the same string written twice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import type { Db } from '../../src/core/db/connect.js';
import { keyRange } from '../../src/core/chunk/keys.js';
import {
  bucketChecksumSql, chunkChecksumSql, multisetSql, rowHashExpr, rowHashesSql, rowsByHashSql, rowStringExpr,
  type CompareColumn, type TableTarget,
} from '../../src/core/compare/checksum.js';

let sb: TestSandbox;
let db: Db;
const ROWS = 4000;

const columns: CompareColumn[] = [
  { name: 'id', dataType: 'int', nullable: false },
  { name: 'name', dataType: 'varchar', nullable: true },
  { name: 'note', dataType: 'text', nullable: true },
  { name: 'raw', dataType: 'varbinary', nullable: true },
  { name: 'doc', dataType: 'longtext', nullable: true },
  { name: 'amount', dataType: 'decimal', nullable: false },
  { name: 'ratio', dataType: 'double', nullable: true },
  { name: 'at', dataType: 'datetime', nullable: false },
];
const target: TableTarget = { schema: 'h', table: 't', index: 'PRIMARY', keyColumns: ['id'], columns, hash: 'crc64' };
// the definition the one-string form must equal: the row's string built twice
const twice = `((CRC32(${rowStringExpr(columns)}) << 32) | CRC32C(${rowStringExpr(columns)}))`;

before(async () => {
  sb = await startSandbox({ zones: ['bj'], replicas: 0 });
  db = await sb.db('bj-master');
  await db.exec('CREATE DATABASE h');
  await db.exec(`CREATE TABLE h.t (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) CHARACTER SET utf8mb4 NULL, note TEXT NULL,
    raw VARBINARY(16) NULL, doc JSON NULL, amount DECIMAL(12,2) NOT NULL, ratio DOUBLE NULL, at DATETIME(6) NOT NULL)`);
  // rows that differ in every way the string can: NULL against '', multibyte text, bytes that are
  // not text, long values, and rows whose strings follow one another in the scan with different lengths
  await db.exec(`INSERT INTO h.t SELECT seq,
      CASE seq % 5 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN CONCAT('名前 ', seq, ' 🚀') ELSE CONCAT('n', seq) END,
      IF(seq % 7 = 0, NULL, REPEAT(CHAR(65 + seq % 26), seq % 300)),
      IF(seq % 3 = 0, NULL, UNHEX(LPAD(HEX(seq * 2654435761), 16, '0'))),
      IF(seq % 4 = 0, NULL, JSON_OBJECT('k', seq, 'v', CONCAT('x', seq % 11))),
      (seq * 37 % 100000) / 100, IF(seq % 6 = 0, NULL, seq / 7),
      TIMESTAMP('2020-01-01') + INTERVAL seq * 1001 MICROSECOND
    FROM h.seq_1_to_${ROWS}`);
});

after(async () => {
  await db?.close();
  await sb?.down();
});

test('per row: the one-string crc64 equals CRC32 and CRC32C of the string written twice, in the order the scan reads', async () => {
  const q = rowHashesSql(target, keyRange(['id'], undefined, undefined), undefined, false);
  const hashes = await db.query<{ id: number; h: string }>(q.sql, q.params);
  const expected = await db.query<{ id: number; h: string }>(`SELECT id, ${twice} AS h FROM h.t ORDER BY id`);
  assert.equal(hashes.length, ROWS);
  assert.deepEqual(hashes.map((r) => String(r.h)), expected.map((r) => String(r.h)));
  // and side by side in one statement, where a read before its assignment would see the row before
  const diff = await db.value(`SELECT SUM(${rowHashExpr(columns, 'crc64')} <> ${twice}) FROM h.t`);
  assert.equal(Number(diff), 0);
});

test('one nullable column: its NULL flag alone is the same text as the flags CONCATenated (hashes are unchanged)', async () => {
  const one: CompareColumn[] = [columns[0]!, { ...columns[1]! }, { ...columns[5]! }];
  assert.equal(rowStringExpr(one), 'CONCAT_WS(0x1f, `id`, `name`, `amount`, ISNULL(`name`))');
  const diff = await db.value(`SELECT SUM(${rowStringExpr(one)} <> CONCAT_WS(0x1f, id, name, amount, CONCAT(ISNULL(name)))) FROM h.t`);
  assert.equal(Number(diff), 0);
});

test('per chunk and per bucket: BIT_XOR of the one-string hash equals BIT_XOR of the definition', async () => {
  for (const [lo, hi] of [[undefined, 1000], [1000, 1001], [1001, 3333], [3333, undefined]] as const) {
    const range = keyRange(['id'], lo === undefined ? undefined : [lo], hi === undefined ? undefined : [hi]);
    const q = chunkChecksumSql(target, range, false);
    const got = await db.one<{ cnt: number; crc: string }>(q.sql, q.params);
    const want = await db.one<{ cnt: number; crc: string }>(`SELECT COUNT(*) AS cnt, BIT_XOR(${twice}) AS crc FROM h.t WHERE ${range.sql}`, range.params);
    assert.deepEqual({ cnt: Number(got!.cnt), crc: String(got!.crc) }, { cnt: Number(want!.cnt), crc: String(want!.crc) });
  }
  const b = bucketChecksumSql(target, keyRange(['id'], undefined, undefined), 100n, false);
  const buckets = await db.query<{ b: string; cnt: number; crc: string }>(b.sql, b.params);
  const wantBuckets = await db.query<{ b: string; crc: string }>(`SELECT CAST(id DIV 100 AS CHAR) AS b, BIT_XOR(${twice}) AS crc FROM h.t GROUP BY b`);
  assert.equal(buckets.length, wantBuckets.length);
  const want = new Map(wantBuckets.map((r) => [r.b, String(r.crc)]));
  for (const r of buckets) assert.equal(String(r.crc), want.get(r.b), `bucket ${r.b}`);
});

test('grouped by hash and looked up by hash (keyless tables): the same hashes as the definition', async () => {
  const m = multisetSql(target);
  const groups = await db.query<{ h: string; n: number }>(m.sql, m.params);
  const wantGroups = await db.query<{ h: string; n: number }>(`SELECT ${twice} AS h, COUNT(*) AS n FROM h.t GROUP BY h`);
  const key = (rows: Array<{ h: string; n: number }>) => rows.map((r) => `${String(r.h)}x${Number(r.n)}`).sort();
  assert.deepEqual(key(groups), key(wantGroups));
  const one = await db.one<{ h: string }>(`SELECT ${twice} AS h FROM h.t WHERE id = 1234`);
  const f = rowsByHashSql(target, String(one!.h), 5);
  const found = await db.query<{ id: number }>(f.sql, f.params);
  assert.deepEqual(found.map((r) => Number(r.id)), [1234]);
});

test('a geometry column: the same shape under another SRID, or other coordinates, hashes differently; NULL and an empty-looking value apart', async () => {
  await db.exec('CREATE TABLE h.g (id INT NOT NULL PRIMARY KEY, g GEOMETRY NULL)');
  await db.exec(`INSERT INTO h.g VALUES (1, ST_GeomFromText('POINT(1 2)', 0)), (2, ST_GeomFromText('POINT(1 2)', 4326)),
    (3, ST_GeomFromText('POINT(1 3)', 0)), (4, NULL), (5, ST_GeomFromText('POINT(1 2)', 0))`);
  const cols: CompareColumn[] = [{ name: 'g', dataType: 'geometry', nullable: true }];
  for (const fn of ['crc64', 'crc32', 'md5'] as const) {
    const rows = await db.query<{ id: number; h: string }>(`SELECT id, CAST(${rowHashExpr(cols, fn)} AS CHAR) AS h FROM h.g ORDER BY id`);
    const h = new Map(rows.map((r) => [Number(r.id), String(r.h)]));
    assert.equal(h.get(1), h.get(5), `${fn}: the same point, the same SRID`);
    assert.notEqual(h.get(1), h.get(2), `${fn}: SRID 0 and 4326 of the same point`);
    assert.notEqual(h.get(1), h.get(3), `${fn}: other coordinates`);
    assert.notEqual(h.get(4), h.get(1), `${fn}: NULL`);
  }
});
