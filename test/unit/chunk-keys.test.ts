// Key-range SQL, key encoding, checksum expressions and check option parsing: pure logic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyCompare, keyRange, keyIn, keyText, encodeKey, decodeKey, compareKeys } from '../../src/core/chunk/keys.js';
import { Chunker, ChunkFrontier } from '../../src/core/chunk/chunker.js';
import { rowHashExpr, rowStringExpr, normalizedExpr, chunkChecksumSql, bucketKeys, bucketChecksumSql, rowHashesSql, rowHashesByKeySql, rowValuesSql, splitKeySql, shiftKeys } from '../../src/core/compare/checksum.js';
import { parseWhereList, parseIgnoreList, checkOptions } from '../../src/core/dcp/options.js';
import { EzError } from '../../src/core/exit.js';
import type { Db } from '../../src/core/db/connect.js';
import { WalkRate } from '../../src/core/dcp/table-check.js';

test('composite key comparisons expand to index-friendly OR/AND form', () => {
  assert.deepEqual(keyCompare(['a'], '>', [5]), { sql: '`a` > ?', params: [5] });
  const c = keyCompare(['a', 'b', 'c'], '>', [1, 'x', 3]);
  assert.equal(c.sql, '(`a` > ? OR (`a` = ? AND `b` > ?) OR (`a` = ? AND `b` = ? AND `c` > ?))');
  assert.deepEqual(c.params, [1, 1, 'x', 1, 'x', 3]);
  const le = keyCompare(['a', 'b'], '<=', [1, 2]);
  assert.equal(le.sql, '(`a` < ? OR (`a` = ? AND `b` <= ?))');
  assert.throws(() => keyCompare(['a', 'b'], '>', [1]), /2 columns, got 1/);
});

test('a range is open where a bound is missing; identifiers are quoted', () => {
  assert.deepEqual(keyRange(['id'], undefined, undefined), { sql: '1', params: [] });
  assert.deepEqual(keyRange(['id'], [10], undefined), { sql: '`id` > ?', params: [10] });
  assert.deepEqual(keyRange(['id'], [10], [20]), { sql: '`id` > ? AND `id` <= ?', params: [10, 20] });
  assert.equal(keyRange(['we`ird'], undefined, [1]).sql, '`we``ird` <= ?');
  // a one-column integer key: one BETWEEN from the integer after the exclusive lower bound
  assert.deepEqual(keyRange(['id'], [10], [20], true), { sql: '`id` BETWEEN ? AND ?', params: [11n, 20] });
  assert.deepEqual(keyRange(['id'], ['18446744073709551614'], ['18446744073709551615'], true), { sql: '`id` BETWEEN ? AND ?', params: [18446744073709551615n, '18446744073709551615'] });
  assert.deepEqual(keyRange(['id'], [-3n], [4n], true).params, [-2n, 4n]);
  assert.deepEqual(keyRange(['id'], [10], undefined, true), { sql: '`id` > ?', params: [10] });
  assert.deepEqual(keyRange(['id'], undefined, [20], true), { sql: '`id` <= ?', params: [20] });
  // not an integer after all (a caller's mistake): the exact two-bound form, never a wrong range
  assert.deepEqual(keyRange(['id'], ['a'], ['b'], true), { sql: '`id` > ? AND `id` <= ?', params: ['a', 'b'] });
  assert.deepEqual(keyRange(['a', 'b'], [1, 2], [3, 4], true).sql, keyRange(['a', 'b'], [1, 2], [3, 4]).sql);
  assert.deepEqual(keyIn(['id'], [[1], [2]]), { sql: '`id` IN (?, ?)', params: [1, 2] });
  assert.equal(keyIn(['a', 'b'], [[1, 'x']]).sql, '((`a` = ? AND `b` = ?))');
  assert.equal(keyIn(['a'], []).sql, '0');
});

test('key text is the same whatever type a driver returns; encoded keys come back exactly', () => {
  assert.equal(keyText([5]), keyText(['5']));
  assert.equal(keyText([5n]), keyText(['5']));
  assert.notEqual(keyText(['a ']), keyText(['a']));
  const k = [Buffer.from([0, 255]), 12345678901234567890n, 'x', null];
  const back = decodeKey(encodeKey(k));
  assert.ok(Buffer.isBuffer(back[0]) && (back[0] as Buffer).equals(k[0] as Buffer));
  assert.equal(back[1], 12345678901234567890n);
  assert.deepEqual(back.slice(2), ['x', null]);
  assert.equal(compareKeys(['10', 'b'], [9, 'z']), 1);
  assert.equal(compareKeys([1, 'a'], [1, 'b']), -1);
});

test('the chunker adapts its size to the time target, at most 2x per chunk, within bounds', () => {
  const c = new Chunker({} as Db, 's', 't', { index: 'PRIMARY', columns: ['id'] }, { targetMs: 500, initialRows: 1000, minRows: 100, maxRows: 5000 });
  c.record(1000, 100); // 10 rows/ms: ideal 5000, capped at 2x
  assert.equal(c.chunkRows, 2000);
  c.record(2000, 200);
  assert.equal(c.chunkRows, 4000);
  c.record(4000, 400);
  assert.equal(c.chunkRows, 5000, 'maxRows');
  c.record(5000, 50_000); // one very slow chunk: halves, not collapses
  assert.equal(c.chunkRows, 2500);
  for (let i = 0; i < 10; i++) c.record(100, 10_000);
  assert.equal(c.chunkRows, 100, 'minRows');
});

test('numeric chunking steps through the key range and ends with an open chunk', async () => {
  const c = new Chunker({} as Db, 's', 't', { index: 'PRIMARY', columns: ['id'], integer: true }, { initialRows: 100, minRows: 100, numericMin: 1n, numericMax: 250n });
  assert.equal(c.strategy, 'numeric');
  const chunks = [];
  for (let ch = await c.next(); ch; ch = await c.next()) {
    chunks.push([ch.lower?.[0] ?? null, ch.upper?.[0] ?? null]);
    c.record(100, 500);
  }
  assert.deepEqual(chunks, [[null, 100n], [100n, 200n], [200n, null]]);
  const empty = new Chunker({} as Db, 's', 't', { index: 'PRIMARY', columns: ['id'], integer: true }, { numericMax: null });
  const only = await empty.next();
  assert.deepEqual([only?.lower, only?.upper, only?.last], [undefined, undefined, true]);
  assert.equal(await empty.next(), undefined);
});

test('numeric chunking: the first step sized by a density estimate, and no sliver left for a last chunk', async () => {
  const walk = async (opts: ConstructorParameters<typeof Chunker>[4]) => {
    const c = new Chunker({} as Db, 's', 't', { index: 'PRIMARY', columns: ['id'], integer: true }, opts);
    const chunks = [];
    for (let ch = await c.next(); ch; ch = await c.next()) {
      chunks.push([ch.lower?.[0] ?? null, ch.upper?.[0] ?? null]);
      c.record(ch.plannedRows, 500);
    }
    return chunks;
  };
  // even keys 2..1000 (500 rows): density 1 assumed, 250 rows a step covers 250 key units
  assert.deepEqual(await walk({ initialRows: 250, minRows: 100, numericMin: 2n, numericMax: 1000n }), [[null, 251n], [251n, 501n], [501n, 751n], [751n, null]]);
  // with the estimate (0.5 rows per unit) 250 rows are 500 units: two chunks
  assert.deepEqual(await walk({ initialRows: 250, minRows: 100, numericMin: 2n, numericMax: 1000n, density: 0.5 }), [[null, 501n], [501n, null]]);
  // a table that fits in one chunk is one chunk without bounds: read by one query, no key range
  assert.deepEqual(await walk({ initialRows: 600, minRows: 100, numericMin: 2n, numericMax: 1000n, density: 0.5 }), [[null, null]]);
  // what is left after a step under a quarter of a chunk goes with it (not a sliver of its own)
  assert.deepEqual(await walk({ initialRows: 450, minRows: 100, maxRows: 450, numericMin: 2n, numericMax: 1000n, density: 0.5 }), [[null, null]]);
  // an estimate far below the truth (stale statistics of a table that grew) is taken as 1/4: the
  // first chunk spans 4 units per planned row, not the whole table
  assert.deepEqual((await walk({ initialRows: 100, minRows: 100, maxRows: 100, numericMin: 1n, numericMax: 10_000n, density: 0.0001 }))[0], [null, 400n]);
  // a density above one row per unit (a bad estimate) is taken as one
  assert.deepEqual(await walk({ initialRows: 100, minRows: 100, maxRows: 100, numericMin: 1n, numericMax: 250n, density: 7 }), [[null, 100n], [100n, 200n], [200n, null]]);
});

test('a run\'s walk rate sizes the next table\'s first chunk; chunks too short to time are left out', () => {
  const r = new WalkRate();
  assert.equal(r.rowsFor(500), undefined);
  r.record(2000, 5); // a round trip, not a speed
  assert.equal(r.rowsFor(500), undefined);
  r.record(100_000, 100);
  r.record(300_000, 300);
  assert.equal(r.rowsFor(500), 500_000);
});

test('the row hash normalizes types, carries a NULL bitmap and is 64 bits', () => {
  const cols = [
    { name: 'id', dataType: 'int', nullable: false },
    { name: 's', dataType: 'varchar', nullable: true, convertCharset: true },
    { name: 'b', dataType: 'bit', nullable: false },
  ];
  assert.equal(normalizedExpr(cols[1]!), 'CONVERT(`s` USING utf8mb4)');
  assert.equal(normalizedExpr({ name: 's', dataType: 'varchar', nullable: true }), '`s`');
  assert.equal(rowStringExpr(cols), 'CONCAT_WS(0x1f, `id`, CONVERT(`s` USING utf8mb4), CAST(`b` AS UNSIGNED), ISNULL(`s`))');
  // two nullable columns: their NULL flags side by side, one value
  assert.equal(rowStringExpr([...cols, { name: 'n', dataType: 'int', nullable: true }]), 'CONCAT_WS(0x1f, `id`, CONVERT(`s` USING utf8mb4), CAST(`b` AS UNSIGNED), `n`, CONCAT(ISNULL(`s`), ISNULL(`n`)))');
  // the row's string built once, handed to CRC32C through a session variable
  assert.equal(rowHashExpr(cols, 'crc64'), `((CRC32(@ezctl_row := ${rowStringExpr(cols)}) << 32) | CRC32C(@ezctl_row))`);
  assert.match(rowHashExpr(cols, 'md5'), /CONV\(LEFT\(MD5\(/);
  const q = chunkChecksumSql({ schema: 'd', table: 't', index: 'PRIMARY', keyColumns: ['id'], columns: cols, hash: 'crc64', where: 'id > 3 -- note' }, { sql: '`id` <= ?', params: [9] }, false);
  assert.match(q.sql, /^SELECT COUNT\(\*\) AS cnt, BIT_XOR\(.*\) AS crc FROM `d`.`t` FORCE INDEX \(`PRIMARY`\) WHERE `id` <= \? AND \(id > 3 -- note\n\)$/s);
  assert.deepEqual(q.params, [9]);
});

test('check options: per-table --where/--ignore-columns, flags over the topology section', () => {
  assert.deepEqual(parseWhereList(['ezdemo.orders:id > 5', "created_at >= '2024-01-01 00:00:00'"]), { 'ezdemo.orders': 'id > 5', '*': "created_at >= '2024-01-01 00:00:00'" });
  assert.throws(() => parseWhereList(['a > 1', 'b > 2']), (e: unknown) => e instanceof EzError && e.exitCode === 2);
  assert.deepEqual(parseIgnoreList(['ezdemo.users:a,b', 'c']), { 'ezdemo.users': ['a', 'b'], '*': ['c'] });
  assert.throws(() => parseIgnoreList(['ezdemo.users:']), /names no column/);
  const o = checkOptions({ tables: 'x.*', maxLag: 1500 }, { tables: ['y.*'], exclude: ['y.tmp_*'], chunkTime: '2s', mode: 'rows', maxLoad: 'Threads_running=20' });
  assert.equal(o.tables, 'x.*');
  assert.equal(o.exclude, 'y.tmp_*');
  assert.equal(o.chunkTimeMs, 2000);
  assert.equal(o.mode, 'rows');
  assert.deepEqual(o.throttle, { maxLagMs: 1500, maxDrcLagMs: 1500, maxLoad: 'Threads_running=20' });
  assert.throws(() => checkOptions({}, { maxLoad: 'nonsense' }), (e: unknown) => e instanceof EzError && e.exitCode === 2);
});

test('bucketKeys names exactly the keys whose DIV step (truncating toward zero, as the server does) is the bucket', () => {
  const div = (k: bigint, step: bigint) => k / step; // BigInt division truncates toward zero, like DIV
  for (const step of [1n, 2n, 7n, 1000n]) {
    for (const b of [-3n, -1n, 0n, 1n, 5n]) {
      const [first, last] = bucketKeys(b, step);
      assert.equal(div(first, step), b, `first of ${b}/${step}`);
      assert.equal(div(last, step), b, `last of ${b}/${step}`);
      assert.notEqual(div(first - 1n, step), b, `before ${b}/${step}`);
      assert.notEqual(div(last + 1n, step), b, `after ${b}/${step}`);
    }
  }
  assert.deepEqual(bucketKeys(18446744073709551n, 1000n), [18446744073709551000n, 18446744073709551999n]);
});

test('bucketChecksumSql groups a range by key DIV step, the step a placeholder before the range\'s', () => {
  const t = { schema: 'd', table: 't', index: 'PRIMARY', keyColumns: ['id'], columns: [{ name: 'id', dataType: 'int', nullable: false }], hash: 'crc64' as const };
  const q = bucketChecksumSql(t, keyRange(['id'], [10], [20]), 4n, false);
  assert.match(q.sql, /^SELECT CAST\(`id` DIV \? AS CHAR\) AS b, COUNT\(\*\) AS cnt, BIT_XOR\(.*\) AS crc FROM `d`\.`t` FORCE INDEX \(`PRIMARY`\) WHERE `id` > \? AND `id` <= \? GROUP BY b$/);
  assert.deepEqual(q.params, [4n, 10, 20]);
  assert.doesNotMatch(bucketChecksumSql(t, keyRange(['id'], [10], [20]), 4n, true).sql, /crc/);
});

test('ChunkFrontier: chunks finishing out of order move the resume point only past a gapless prefix', () => {
  const f = new ChunkFrontier([100]);
  assert.deepEqual(f.finished({ index: 1, upper: [300] }), [100], 'chunk 0 still running: nothing past it');
  assert.deepEqual(f.finished({ index: 2, upper: [400] }), [100]);
  assert.deepEqual(f.finished({ index: 0, upper: [200] }), [400], 'the gap closed: past chunks 0-2');
  assert.deepEqual(f.finished({ index: 4 }), [400], 'the last (open) chunk, with chunk 3 running');
  assert.deepEqual(f.finished({ index: 3, upper: [500] }), [500]);
  assert.deepEqual(new ChunkFrontier(undefined).position, undefined);
});

test('a shifted key (a merged shard\'s offset): read back and hashed minus the shift, looked up plus it, ordered by the column itself; a where that narrows the key kept in lookups', () => {
  const t = { schema: 'd', table: 't', index: null, keyColumns: ['id'], columns: [{ name: 'id', dataType: 'bigint', nullable: false, shift: 1000n }, { name: 'v', dataType: 'int', nullable: true }], hash: 'crc32' as const, keyShift: 1000n, where: '`id` >= ?', whereParams: [1000n], whereNarrowsKey: true };
  const rows = rowHashesSql(t, keyRange(['id'], [1010n], [1020n]), undefined, false);
  assert.match(rows.sql, /^SELECT \(CAST\(`id` AS SIGNED\) - \(1000\)\) AS `id`, CRC32\(CONCAT_WS\(0x1f, \(CAST\(`id` AS SIGNED\) - \(1000\)\), `v`, /);
  assert.match(rows.sql, /WHERE `id` > \? AND `id` <= \? AND \(`id` >= \?\n\) ORDER BY `d`\.`t`\.`id`$/);
  assert.deepEqual(rows.params, [1010n, 1020n, 1000n]);
  const byKey = rowHashesByKeySql(t, [[5], [7n]], undefined);
  assert.deepEqual(byKey.params, [1005n, 1007n, 1000n]);
  const values = rowValuesSql(t, [[5]]);
  assert.match(values.sql, /WHERE `id` IN \(\?\) AND \(`id` >= \?\n\)$/);
  assert.deepEqual(values.params, [1005n, 1000n]);
  // a user's filter (not narrowing the key) is dropped in lookups by key, as before
  assert.doesNotMatch(rowValuesSql({ ...t, whereNarrowsKey: false }, [[5]]).sql, />= \?/);
  assert.match(bucketChecksumSql(t, keyRange(['id'], [1010n], [1020n]), 4n, true).sql, /^SELECT CAST\(\(CAST\(`id` AS SIGNED\) - \(1000\)\) DIV \? AS CHAR\) AS b/);
  assert.match(splitKeySql(t, keyRange(['id'], undefined, undefined), 3).sql, /^SELECT \(CAST\(`id` AS SIGNED\) - \(1000\)\) AS `id` FROM `d`\.`t` WHERE 1 AND .* ORDER BY `d`\.`t`\.`id` LIMIT 1 OFFSET 3$/s);
  assert.deepEqual(shiftKeys({ keyShift: -5n }, [[10]]), [[5n]]);
});
