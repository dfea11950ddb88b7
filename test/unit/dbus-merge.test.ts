// Merging shard tables (dbus, issue 15): the mappings a merge rule makes (a shard column's constant
// per source table, an offset on the key), the plan's refusal of shards whose keys can collide, the
// rules applied to rows (the copy and the binlog apply read the same functions), and the change an
// ALTER TABLE makes (what the DDL hold compares across shards).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeProblems, reverseMappings, tableMappings, type MoveShapes } from '../../src/core/dbus/plan.js';
import { alterChange } from '../../src/core/dbus/ddl.js';
import { keyOfRow, mappingProblems, ownsTargetRow, readColumns, targetRow } from '../../src/core/apply/mapping.js';
import type { DbusMove, DbusTable } from '../../src/core/dbus/spec.js';
import type { TableShape } from '../../src/core/db/introspect.js';

const col = (name: string, i: number, extra = '') => ({ name, position: i + 1, dataType: name === 'email' ? 'varchar' : 'int', columnType: 'int', serverType: 'int(11)', nullable: false, default: null, charset: null, collation: null, generated: null, extra, comment: '' });
const ix = (name: string, cols: string[]) => ({ name, unique: true, type: 'BTREE', parts: cols.map((c) => ({ column: c, subPart: null, descending: false })), visible: true });
const shard = (table: string, autoInc: boolean): TableShape => ({
  schema: 's', table, engine: 'InnoDB', collation: null, rowsEstimate: 10,
  columns: [col('id', 0, autoInc ? 'auto_increment' : ''), col('v', 1), col('email', 2)],
  primaryKey: ['id'], indexes: [ix('PRIMARY', ['id']), ix('email', ['email'])], foreignKeys: [],
});
const target = (): TableShape => ({
  ...shard('o', false),
  columns: [col('shard_id', 0), col('id', 1), col('v', 2), col('email', 3)],
  primaryKey: ['shard_id', 'id'], indexes: [ix('PRIMARY', ['shard_id', 'id']), ix('email', ['email'])],
});

const SOURCES = [['bj', 'o_0'], ['bj', 'o_1'], ['sh', 'o_2'], ['sh', 'o_3']] as const;
const moveOf = (t: Partial<DbusTable>): DbusMove => ({
  name: 'm', createTarget: true, sources: [{ label: 'bj' }, { label: 'sh' }], target: { label: 'new' },
  tables: [{ target: { schema: 's', table: 'o' }, sources: SOURCES.map(([source, table]) => ({ source, table: { schema: 's', table } })), declaredAt: 'dbus.moves.m.tables.0', ...t }],
});
const shapesOf = (autoInc: boolean, withTarget: boolean): MoveShapes => ({
  sources: new Map([
    ['bj', new Map([['s.o_0', shard('o_0', autoInc)], ['s.o_1', shard('o_1', autoInc)]])],
    ['sh', new Map([['s.o_2', shard('o_2', autoInc)], ['s.o_3', shard('o_3', autoInc)]])],
  ]),
  target: withTarget ? new Map([['s.o', target()]]) : new Map(),
});

test('AUTO_INCREMENT shards into one key without a rule: refused, naming the tables and both rules', () => {
  const r = tableMappings(moveOf({}), shapesOf(true, false));
  assert.equal(r.problems.length, 1, r.problems.join('\n'));
  assert.match(r.problems[0]!, /^s\.o \(dbus\.moves\.m\.tables\.0\): rows of the merged tables can collide on the target key \(id\)/);
  assert.match(r.problems[0]!, /bj:s\.o_0, bj:s\.o_1, sh:s\.o_2, sh:s\.o_3 have AUTO_INCREMENT key/);
  assert.match(r.problems[0]!, /kind: shard-column, column: shard_id/);
  assert.match(r.problems[0]!, /kind: offset, column: id/);
});

test('overlapping key ranges read from the sources are refused; apart they are not; an offset moves them apart', () => {
  const move = moveOf({});
  const shapes = shapesOf(false, false);
  const { mappings } = tableMappings(move, shapes);
  const apart = new Map(SOURCES.map(([l, t], i) => [`${l}:s.${t}`, { min: BigInt(i * 100 + 1), max: BigInt(i * 100 + 100) }]));
  assert.deepEqual(mergeProblems(move, shapes, mappings, apart), []);
  const same = new Map(SOURCES.map(([l, t]) => [`${l}:s.${t}`, { min: 1n, max: 100n }]));
  assert.match(mergeProblems(move, shapes, mappings, same)[0]!, /the key ranges of bj:s\.o_0 \(1\.\.100\) and bj:s\.o_1 \(1\.\.100\) overlap/);
  const offsets = Object.fromEntries(SOURCES.map(([l, t], i) => [`${l}:s.${t}`, i * 1000]));
  const withOffsets = moveOf({ merge: { kind: 'offset', column: 'id', offsets } });
  const r = tableMappings(withOffsets, shapes, same);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.mappings[2]!.offsets, { id: 2000 });
  assert.deepEqual(keyOfRow(r.mappings[2]!, { id: '7', v: 1 }), ['2007']);
  // offsets too small for the ranges: still refused
  const small = moveOf({ merge: { kind: 'offset', column: 'id', offsets: Object.fromEntries(SOURCES.map(([l, t], i) => [`${l}:s.${t}`, i * 10])) } });
  assert.match(tableMappings(small, shapes, same).problems[0]!, /overlap after the offsets/);
  // each shard owns its offset up to the next one's: its older rows there are its own (no collision)
  assert.deepEqual(r.mappings.map((m) => m.ownedKeys), [
    { column: 'id', from: null, below: 1000n },
    { column: 'id', from: 1000n, below: 2000n },
    { column: 'id', from: 2000n, below: 3000n },
    { column: 'id', from: 3000n, below: null },
  ]);
  assert.equal(ownsTargetRow(r.mappings[1]!, { id: 1999 }), true);
  assert.equal(ownsTargetRow(r.mappings[1]!, { id: '2000' }), false);
  assert.equal(ownsTargetRow(r.mappings[0]!, { id: -5 }), true);
  // keys past the next shard's offset, or below the shard's own: refused though no two ranges overlap
  const wide = new Map(SOURCES.map(([l, t], i) => [`${l}:s.${t}`, i === 1 ? { min: 1n, max: 1200n } : i === 2 ? { min: -3n, max: 5n } : { min: 1n, max: 100n }]));
  const problems = tableMappings(withOffsets, shapes, wide).problems.join('\n');
  assert.match(problems, /the keys of bj:s\.o_1 land at 1001\.\.2200 after its offset, outside the range its offset gives it \(1000\.\.1999/);
  assert.match(problems, /the keys of sh:s\.o_2 land at 1997\.\.2005 after its offset/);
});

test('a shard column the sources lack: a constant per source table, in the target key; the UNIQUE email watched across shards', () => {
  const values = Object.fromEntries(SOURCES.map(([l, t], i) => [`${l}:s.${t}`, i]));
  const r = tableMappings(moveOf({ merge: { kind: 'shard-column', column: 'shard_id', values } }), shapesOf(true, true));
  assert.deepEqual(r.problems, []);
  const m = r.mappings[3]!;
  assert.deepEqual(m.key, ['shard_id', 'id']);
  assert.deepEqual(m.constants, { shard_id: 3 });
  assert.deepEqual(m.uniqueKeys, [['email']]);
  assert.deepEqual(readColumns(m).map((c) => c.from), ['id', 'v', 'email']);
  assert.deepEqual(keyOfRow(m, { id: 5, v: 1, email: 'a' }), [3, 5]);
  assert.deepEqual(targetRow(m, { id: 5, v: 1, email: 'a' }), { id: 5, v: 1, email: 'a', shard_id: 3 });
  // a value missing for one table, two tables with one value: refused
  const missing = tableMappings(moveOf({ merge: { kind: 'shard-column', column: 'shard_id', values: { 'bj:s.o_0': 0 } } }), shapesOf(true, true));
  assert.match(missing.problems.join('\n'), /bj:s\.o_1 \(dbus\.moves\.m\.tables\.0\): has no column shard_id and the merge rule gives it no value/);
  const twice = tableMappings(moveOf({ merge: { kind: 'shard-column', column: 'shard_id', values: { ...values, 'sh:s.o_3': 0 } } }), shapesOf(true, true));
  assert.match(twice.problems.join('\n'), /bj:s\.o_0 and sh:s\.o_3 get one shard value 0/);
  // the target missing: it would be created like the first shard, which has no shard column
  const noTarget = tableMappings(moveOf({ merge: { kind: 'shard-column', column: 'shard_id', values } }), shapesOf(true, false));
  assert.match(noTarget.problems[0]!, /create s\.o first, with shard_id in its primary key/);
});

test('a where filter is carried by the mapping (the copy and the binlog apply read it)', () => {
  const move: DbusMove = { name: 'm', createTarget: true, sources: [{ label: 'bj' }], target: { label: 'new' }, tables: [{ target: { schema: 's', table: 'o_0' }, sources: [{ source: 'bj', table: { schema: 's', table: 'o_0' } }], where: "v > 2" }] };
  const r = tableMappings(move, shapesOf(false, false));
  assert.deepEqual(r.problems, []);
  assert.equal(r.mappings[0]!.where, 'v > 2');
});

test('the change an ALTER TABLE makes, whatever the table name and spacing; other statements none', () => {
  assert.equal(alterChange('ALTER TABLE s.o_0 ADD COLUMN note VARCHAR(10)  NULL'), 'ADD COLUMN note VARCHAR(10) NULL');
  assert.equal(alterChange('alter table `o_1`\n  ADD COLUMN note VARCHAR(10) NULL'), 'ADD COLUMN note VARCHAR(10) NULL');
  assert.equal(alterChange('ALTER ONLINE TABLE `s`.`o_2` ADD COLUMN note VARCHAR(10) NULL;'), 'ADD COLUMN note VARCHAR(10) NULL');
  assert.equal(alterChange('DROP TABLE s.o_0'), undefined);
  assert.equal(alterChange('RENAME TABLE s.o_0 TO s.x'), undefined);
});

test('the copy within one server: the shard constant and the offset are placeholders of the SELECT list, before the chunk\'s; the filter joins the chunk\'s range', async () => {
  const { insertSelectSql, chunkWhere } = await import('../../src/core/copy/strategy.js');
  const spec = {
    source: { schema: 's', table: 'o_2', key: { index: 'PRIMARY', columns: ['id'], integer: true } },
    target: { schema: 'm', table: 'o' },
    columns: [{ from: 'id', to: 'id' }, { from: 'v', to: 'v' }, { from: 'shard_id', to: 'shard_id' }],
    constants: { shard_id: 2 },
    offsets: { id: 1000 },
    where: 'v % 2 = 0',
  };
  const range = chunkWhere(spec, { lower: [10n], upper: [20n] });
  assert.match(range.sql, /\) AND \(v % 2 = 0\)$/);
  const q = insertSelectSql(spec, range, { keepExisting: true });
  assert.match(q.sql, /^INSERT INTO `m`\.`o` \(`id`, `v`, `shard_id`\) SELECT `id` \+ \?, `v`, \? FROM `s`\.`o_2`/);
  assert.deepEqual(q.params.slice(0, 2), [1000, 2]);
  assert.deepEqual(q.params.slice(2), range.params);
});

test('reverse mappings of a merge: each shard takes the merged rows of its value (a placeholder), the shard column not written back where the shard lacks it; one stream per source server, the orphan check over every shard', () => {
  const values = Object.fromEntries(SOURCES.map(([l, t], i) => [`${l}:s.${t}`, i]));
  const { mappings, problems } = tableMappings(moveOf({ merge: { kind: 'shard-column', column: 'shard_id', values } }), shapesOf(true, true));
  assert.deepEqual(problems, []);
  const sh = reverseMappings(mappings, 'new', 'sh');
  assert.deepEqual(sh.map((m) => [m.label, `${m.source.table}->${m.target.table}`, m.where, m.whereParams, m.key]), [
    ['new', 'o->o_2', '`shard_id` = ?', [2], ['id']],
    ['new', 'o->o_3', '`shard_id` = ?', [3], ['id']],
  ]);
  assert.deepEqual(sh[0]!.columns.map((c) => c.from), ['id', 'v', 'email']);
  assert.deepEqual(sh[0]!.orphanWhere?.params, [0, 1, 2, 3]);
  assert.match(sh[0]!.orphanWhere!.sql, /^`shard_id` IS NULL OR `shard_id` NOT IN \(\?, \?, \?, \?\)$/);
  // routed by row filters, one source table may feed several targets; without filters it may not
  assert.deepEqual(mappingProblems(sh), []);
  assert.match(mappingProblems(sh.map((m) => ({ ...m, where: undefined }))).join('\n'), /s\.o is mapped twice/);
  // an offset merge: each shard its range, its key shifted back
  const offsets = Object.fromEntries(SOURCES.map(([l, t], i) => [`${l}:s.${t}`, i * 1000]));
  const off = tableMappings(moveOf({ merge: { kind: 'offset', column: 'id', offsets } }), shapesOf(false, false));
  const bj = reverseMappings(off.mappings, 'new', 'bj');
  assert.deepEqual(bj.map((m) => [m.where, m.whereParams, m.offsets, m.orphanWhere]), [
    ['`id` < ?', [1000n], { id: 0 }, undefined],
    ['`id` >= ? AND `id` < ?', [1000n, 2000n], { id: -1000 }, undefined],
  ]);
  assert.deepEqual(keyOfRow(bj[1]!, { id: '1007', v: 1 }), ['7']);
});
