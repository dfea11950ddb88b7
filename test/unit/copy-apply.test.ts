// The pure parts of the copy and apply layers: the final state of a batch per key, the table
// mapping's checks, the chunk loop's frontier and the statements of the copy strategies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Db } from '../../src/core/db/connect.js';
import type { RowChange } from '../../src/core/binlog/stream.js';
import { Chunker, type Chunk } from '../../src/core/chunk/chunker.js';
import { compareKeys, type KeyValue } from '../../src/core/chunk/keys.js';
import { finalStates } from '../../src/core/apply/final-state.js';
import { mappingProblems, type TableMapping } from '../../src/core/apply/mapping.js';
import { runCopyLoop } from '../../src/core/copy/loop.js';
import { insertSelectSql, multiRowInsertSql, LoadDataWriter, loadKind, type CopySpec } from '../../src/core/copy/strategy.js';
import { commitEstimate } from '../../src/core/apply/applier.js';
import { copySettingsOf } from '../../src/core/copy/settings.js';

const cols = (...names: string[]) => names.map((n) => ({ from: n, to: n }));
const shard = (i: number): TableMapping => ({ source: { schema: 's', table: `t_${i}` }, target: { schema: 'd', table: 't' }, columns: cols('id', 'v'), key: ['id'] });

test('final state per key: the last image wins, a delete after an insert deletes, a key change deletes the old key', () => {
  const m = shard(0);
  const ch = (kind: RowChange['kind'], before?: Record<string, unknown>, after?: Record<string, unknown>): RowChange => ({ kind, schema: 's', table: 't_0', pk: ['id'], ...(before ? { before } : {}), ...(after ? { after } : {}) });
  const states = finalStates([
    ch('insert', undefined, { id: 1, v: 'a' }),
    ch('update', { id: 1, v: 'a' }, { id: 1, v: 'b' }),
    ch('insert', undefined, { id: 2, v: 'x' }),
    ch('delete', { id: 2, v: 'x' }),
    ch('update', { id: 3, v: 'c' }, { id: 4, v: 'c' }),
    ch('update', { id: 1, v: 'b' }, { id: 1, v: 'z' }),
  ], () => m).get('d\0t')!;
  const seen = [...states.values()].map((s) => [s.key, s.row]);
  // in the order of each key's last change
  assert.deepEqual(seen, [[[2], null], [[3], null], [[4], { id: 4, v: 'c' }], [[1], { id: 1, v: 'z' }]]);
});

test('final state across shards: four source tables meet in one target by the key', () => {
  const maps = [0, 1, 2, 3].map(shard);
  const changes: RowChange[] = maps.map((m, i) => ({ kind: 'insert', schema: 's', table: m.source.table, pk: ['id'], after: { id: i * 10, v: String(i) } }));
  changes.push({ kind: 'delete', schema: 's', table: 't_2', pk: ['id'], before: { id: 20, v: '2' } });
  const per = finalStates(changes, (c) => maps.find((m) => m.source.table === c.table)!);
  assert.deepEqual([...per.keys()], ['d\0t']);
  assert.deepEqual([...per.get('d\0t')!.values()].map((s) => [s.key[0], s.row ? s.mapping.source.table : null]), [[0, 't_0'], [10, 't_1'], [20, null], [30, 't_3']]);
});

test('a mapping without a key, with an unmapped key column, or sources naming different keys for one target is refused', () => {
  assert.deepEqual(mappingProblems([0, 1, 2, 3].map(shard)), []);
  assert.match(mappingProblems([{ ...shard(0), key: [] }]).join('\n'), /names no key/);
  assert.match(mappingProblems([{ ...shard(0), key: ['w'] }]).join('\n'), /key column w is not mapped/);
  assert.match(mappingProblems([shard(0), { ...shard(1), columns: [...cols('id', 'v'), { from: 'k', to: 'k' }], key: ['k'] }]).join('\n'), /name different keys \(id \/ k\)/);
  assert.match(mappingProblems([shard(0), { ...shard(0), target: { schema: 'd', table: 'u' } }]).join('\n'), /s\.t_0 is mapped twice/);
  assert.match(mappingProblems([{ ...shard(0), columns: [{ from: 'id', to: 'id' }, { from: 'v', to: 'id' }] }]).join('\n'), /target column id is mapped from more than one/);
});

/** A chunker over ids 1..n that asks no server (the numeric strategy). */
const numericChunker = (n: number, after?: KeyValue) =>
  new Chunker(undefined as unknown as Db, 's', 't', { index: 'PRIMARY', columns: ['id'], integer: true }, { numericMin: 1n, numericMax: BigInt(n), initialRows: 100, minRows: 100, maxRows: 100, ...(after ? { after } : {}) });

test('the copy loop: threads finish out of order, every checkpoint covers only chunks all done, the last says done', async () => {
  const done: Chunk[] = [];
  const checkpoints: Array<{ at: KeyValue | undefined; done: boolean; finished: Chunk[] }> = [];
  let rows = 0;
  await runCopyLoop({
    chunker: numericChunker(2000),
    sessions: [1, 2, 3],
    copyChunk: async (s, chunk) => {
      await new Promise((r) => setTimeout(r, (chunk.index * 7 + s * 3) % 11));
      done.push(chunk);
      return 100;
    },
    onChunk: (n) => (rows += n),
    checkpointMs: 0,
    checkpoint: async (at, isDone) => {
      checkpoints.push({ at, done: isDone, finished: [...done] });
    },
  });
  assert.equal(done.length, 20);
  assert.deepEqual(done.map((c) => c.index).sort((a, b) => a - b), [...Array(20).keys()]);
  assert.equal(rows, 2000);
  assert.deepEqual(checkpoints.at(-1), { at: undefined, done: true, finished: done });
  for (const c of checkpoints.slice(0, -1)) {
    assert.equal(c.done, false);
    if (!c.at) continue;
    // every chunk at or below the checkpoint was finished when it was written
    const below = done.filter((d) => d.upper && compareKeys(d.upper, c.at!) <= 0);
    for (const d of below) assert.ok(c.finished.includes(d), `chunk ${d.index} below checkpoint ${String(c.at)} was not done`);
  }
});

test('the copy loop resumes after a key, and one failing thread stops the others and fails the copy', async () => {
  const seen: Chunk[] = [];
  await runCopyLoop({ chunker: numericChunker(1000, [500]), sessions: [1], after: [500], copyChunk: async (_s, c) => (seen.push(c), 1) });
  assert.deepEqual(seen[0]!.lower, [500]);
  let after = 0;
  await assert.rejects(runCopyLoop({
    chunker: numericChunker(100_000),
    sessions: [1, 2],
    copyChunk: async (s, c) => {
      if (c.index === 3) throw new Error('boom');
      if (c.index > 5) after++;
      await new Promise((r) => setTimeout(r, s));
      return 1;
    },
  }), /boom/);
  assert.ok(after <= 2, `copying went on after a failure (${after} chunks)`);
});

test('the copy statements: same server INSERT ... SELECT keeps a newer row; between servers a multi-row INSERT with placeholders', () => {
  const spec: CopySpec = { source: { schema: 's', table: 't', key: { index: 'PRIMARY', columns: ['id'] } }, target: { schema: 's', table: '_t_gho' }, columns: [{ from: 'id', to: 'id' }, { from: 'old', to: 'new' }] };
  const q = insertSelectSql(spec, { sql: '`id` > ?', params: [5] }, { keepExisting: true });
  assert.equal(q.sql, 'INSERT INTO `s`.`_t_gho` (`id`, `new`) SELECT `id`, `old` FROM `s`.`t` FORCE INDEX (`PRIMARY`) WHERE `id` > ? ON DUPLICATE KEY UPDATE `id` = `s`.`_t_gho`.`id`');
  assert.deepEqual(q.params, [5]);
  assert.match(insertSelectSql(spec, { sql: '1', params: [] }, { lockInShareMode: true }).sql, /WHERE 1 LOCK IN SHARE MODE$/);
  // both: the lock is the SELECT's, before ON DUPLICATE KEY UPDATE (MariaDB refuses it after, ERROR 1064: dbus between schemas of one server)
  assert.match(insertSelectSql(spec, { sql: '1', params: [] }, { keepExisting: true, lockInShareMode: true }).sql, /WHERE 1 LOCK IN SHARE MODE ON DUPLICATE KEY UPDATE `id` = `s`.`_t_gho`.`id`$/);
  assert.equal(multiRowInsertSql(spec, 2, 'keep'), 'INSERT INTO `s`.`_t_gho` (`id`, `new`) VALUES (?, ?), (?, ?) ON DUPLICATE KEY UPDATE `id` = `id`');
  assert.equal(multiRowInsertSql(spec, 1, 'update'), 'INSERT INTO `s`.`_t_gho` (`id`, `new`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `id` = VALUES(`id`), `new` = VALUES(`new`)');
});

/** A text-protocol row packet's payload: each value a length-coded string, 0xfb for NULL. */
function rowPacket(values: ReadonlyArray<Buffer | null>): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) {
    if (v === null) parts.push(Buffer.from([0xfb]));
    else if (v.length < 251) parts.push(Buffer.from([v.length]), v);
    else if (v.length < 1 << 16) parts.push(Buffer.from([0xfc, v.length & 255, v.length >> 8]), v);
    else parts.push(Buffer.from([0xfd, v.length & 255, (v.length >> 8) & 255, v.length >> 16]), v);
  }
  return Buffer.concat(parts);
}

test('a chunk as one LOAD DATA from the bytes the source sent: separators and escapes spelled out, NULL as \\N, bytes as hex through UNHEX, other kinds left to INSERTs', () => {
  const spec: CopySpec = { source: { schema: 's', table: 't', key: { index: 'PRIMARY', columns: ['id'] } }, target: { schema: 'd', table: 'x`y' }, columns: [{ from: 'id', to: 'id' }, { from: 'v', to: 'w' }, { from: 'b', to: 'b' }] };
  // BIGINT (its text, charset binary as servers report numbers), VARCHAR utf8mb4, VARBINARY
  const fields = [{ columnType: 8, characterSet: 63 }, { columnType: 253, characterSet: 45 }, { columnType: 253, characterSet: 63 }];
  const b = (s: string) => Buffer.from(s, 'utf8');
  const writer = LoadDataWriter.for(fields)!;
  for (const row of [
    [b('1'), b('a\tb\nc\\d\re\0f'), Buffer.from([0, 10, 92, 9])],
    [b('2'), null, null],
    [b('3'), b('\\N'), null],
    [b('-4'), b('名😀'), Buffer.alloc(0)],
  ]) {
    const p = rowPacket(row);
    writer.addPacket(p, 0, p.length);
  }
  const load = writer.finish(spec);
  assert.equal(load.sql, "LOAD DATA LOCAL INFILE 'ezctl-chunk' IGNORE INTO TABLE `d`.`x``y` CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ENCLOSED BY '' ESCAPED BY '\\\\' LINES STARTING BY '' TERMINATED BY '\\n' (`id`, `w`, @ezctl_h2) SET `b` = UNHEX(@ezctl_h2)");
  assert.equal(load.data.toString('utf8'), '1\ta\\tb\\nc\\\\d\\re\\0f\t000a5c09\n2\t\\N\t\\N\n3\t\\\\N\t\\N\n-4\t名😀\t\n');
  // the buffer is exactly the text: no byte left unwritten
  assert.equal(load.data.length, Buffer.byteLength('1\ta\\tb\\nc\\\\d\\re\\0f\t000a5c09\n2\t\\N\t\\N\n3\t\\\\N\t\\N\n-4\t名😀\t\n'));
  // kinds: BIT as hex, JSON as text whatever charset MySQL gives it, numbers and dates as they are
  assert.equal(loadKind({ columnType: 16, characterSet: 63 }), 'hex');
  assert.equal(loadKind({ columnType: 245, characterSet: 63 }), 'text');
  assert.equal(loadKind({ columnType: 12, characterSet: 63 }), 'as-is');
  assert.equal(loadKind({ columnType: 246, characterSet: 63 }), 'as-is');
  assert.equal(loadKind({ columnType: 252, characterSet: 63 }), 'hex'); // BLOB
  assert.equal(loadKind({ columnType: 252, characterSet: 224 }), 'text'); // TEXT
  // a geometry: the server's own bytes, as hex; a type this code does not know: the chunk goes as INSERTs
  assert.equal(loadKind({ columnType: 255, characterSet: 63 }), 'hex');
  assert.equal(loadKind({ columnType: 242, characterSet: 63 }), undefined);
  assert.equal(LoadDataWriter.for([fields[0]!, { columnType: 242, characterSet: 63 }, fields[2]!]), undefined);
});

test('a chunk read from the row packets as the server sent them is byte for byte the load text of its values', () => {
  const spec: CopySpec = { source: { schema: 's', table: 't', key: { index: 'PRIMARY', columns: ['id'] } }, target: { schema: 'd', table: 't' }, columns: ['id', 'v', 'b', 't'].map((c) => ({ from: c, to: c })) };
  const fields = [{ columnType: 8, characterSet: 63 }, { columnType: 253, characterSet: 45 }, { columnType: 252, characterSet: 63 }, { columnType: 252, characterSet: 45 }];
  const b = (s: string) => Buffer.from(s, 'utf8');
  const long = (n: number, s: string) => b(s.repeat(Math.ceil(n / s.length)).slice(0, n));
  const rows: Array<Array<Buffer | null>> = [
    [b('1'), b('a\tb\nc\\d\re\0f'), Buffer.from([0, 10, 92, 9]), null],
    [b('2'), null, null, b('')],
    // values past the short-copy length, with and without bytes to escape; lengths past 250 and 65535 (0xfc, 0xfd)
    [b('3'), long(39, 'x'), long(300, 'ab'), long(70_000, 'q\t名')],
    [b('18446744073709551615'), long(41, 'y\n'), Buffer.alloc(0), long(1000, 'z')],
  ];
  // the text each row must become, written out here value by value: \N, hex, escaped text, as is
  const escape = (v: Buffer) => v.toString('latin1').replace(/[\\\t\n\r\0]/g, (ch) => `\\${({ '\\': '\\', '\t': 't', '\n': 'n', '\r': 'r', '\0': '0' } as Record<string, string>)[ch]}`);
  const kinds = ['as-is', 'text', 'hex', 'text'];
  const expected = Buffer.from(rows.map((r) => r.map((v, c) => (v === null ? '\\N' : kinds[c] === 'hex' ? v.toString('hex') : kinds[c] === 'text' ? escape(v) : v.toString('latin1'))).join('\t') + '\n').join(''), 'latin1');
  const byPacket = LoadDataWriter.for(fields, 10)!;
  // several rows in one buffer, as a socket read brings them: each row read from its own range
  const packets = rows.map(rowPacket);
  const all = Buffer.concat([Buffer.from([1, 2, 3, 4]), ...packets]);
  let at = 4;
  for (let i = 0; i < rows.length; i++) {
    byPacket.addPacket(all, at, at + packets[i]!.length);
    at += packets[i]!.length;
  }
  assert.equal(byPacket.rows, rows.length);
  assert.ok(byPacket.finish(spec).data.equals(expected));
  assert.equal(byPacket.bytes, expected.length);
  // a packet that does not hold the row it claims is refused, never loaded short
  const w = LoadDataWriter.for(fields)!;
  const p = rowPacket(rows[0]!);
  assert.throws(() => w.addPacket(p, 0, p.length - 1), /past the end of its row|columns for 4/);
  assert.throws(() => w.addPacket(Buffer.concat([p, Buffer.from([0])]), 0, p.length + 1), /1 bytes after its 4 columns/);
  assert.throws(() => w.addPacket(rowPacket(rows[0]!.slice(0, 3)), 0, rowPacket(rows[0]!.slice(0, 3)).length), /a row of 3 columns for 4/);
});

test('copy settings: only those given are taken from wider options', () => {
  assert.deepEqual(copySettingsOf({ chunkTimeMs: 200, copyThreads: undefined, deferIndexes: false, table: 'x' } as never), { chunkTimeMs: 200, deferIndexes: false });
});

test('the applier refuses a mapping without a key before it connects anywhere (exit 2, naming the tables)', async () => {
  const { BatchApplier } = await import('../../src/core/apply/applier.js');
  let connected = false;
  assert.throws(() => new BatchApplier({
    label: 'move m1', targetsName: 'the target table', lockWaitFix: 'or wait', serverId: 1,
    source: async () => ((connected = true), { label: 's', host: 'h', port: 1, user: 'u', passwordSource: 'none' }),
    connectTarget: async () => ((connected = true), undefined as unknown as Db),
    mappings: [0, 1].map((i) => ({ ...shard(i), key: [] })),
  }), (e: Error & { exitCode?: number; details?: string[] }) => {
    assert.match(e.message, /move m1: the table mapping cannot be applied/);
    assert.equal(e.exitCode, 2);
    assert.match((e.details ?? []).join('\n'), /s\.t_1 -> d\.t: the mapping names no key/);
    return true;
  });
  assert.equal(connected, false);
});

test('a queued transaction\'s commit time: the binlog\'s whole second taken at its end, unless it was read earlier (a live stream reads it within ms)', () => {
  assert.equal(commitEstimate({ timestampMs: 1_000_000, readAtMs: 1_000_120 }), 1_000_120);
  assert.equal(commitEstimate({ timestampMs: 1_000_000, readAtMs: 1_005_000 }), 1_000_999);
});
