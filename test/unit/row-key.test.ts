// One row-key rule (db/introspect rowKey): DRC's applier, check full/incr and osc's copy key a
// row by the same columns, or refuse the table; none picks a key another would not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commonRowKey, rowKey, type ColumnShape, type IndexShape, type RowKey, type TableShape } from '../../src/core/db/introspect.js';
import { drcRowKey } from '../../src/core/drc/apply.js';
import { copyKey } from '../../src/core/osc/plan.js';

const col = (name: string, nullable = false): ColumnShape => ({
  name, position: 0, dataType: 'int', columnType: 'int', serverType: 'int(11)', nullable, default: null, charset: null, collation: null, generated: null, extra: '', comment: '',
});
const textCol = (name: string): ColumnShape => ({ ...col(name), dataType: 'varchar', columnType: 'varchar(100)', serverType: 'varchar(100)', charset: 'utf8mb4', collation: 'utf8mb4_general_ci' });
const index = (name: string, unique: boolean, parts: Array<string | [string, number]>): IndexShape => ({
  name, unique, type: 'BTREE', visible: true,
  parts: parts.map((p) => (typeof p === 'string' ? { column: p, subPart: null, descending: false } : { column: p[0], subPart: p[1], descending: false })),
});
const table = (name: string, columns: ColumnShape[], indexes: IndexShape[]): TableShape => ({
  schema: 'shop', table: name, engine: 'InnoDB', collation: 'utf8mb4_general_ci', rowsEstimate: 0, columns,
  primaryKey: indexes.find((i) => i.name === 'PRIMARY')?.parts.map((p) => p.column) ?? [], indexes, foreignKeys: [],
});

const TABLES: Array<{ shape: TableShape; key: RowKey | undefined; why: string }> = [
  {
    why: 'a primary key',
    shape: table('pk', [col('id'), col('b')], [index('PRIMARY', true, ['id']), index('u_b', true, ['b'])]),
    key: { index: 'PRIMARY', columns: ['id'] },
  },
  {
    why: 'no primary key, a unique key on NOT NULL columns',
    shape: table('uk', [col('a'), col('b')], [index('u_ab', true, ['a', 'b'])]),
    key: { index: 'u_ab', columns: ['a', 'b'] },
  },
  {
    why: 'a unique key with a prefix part (rows equal on name(10) may differ in name)',
    shape: table('prefix', [textCol('name'), col('n')], [index('u_name', true, [['name', 10]])]),
    key: undefined,
  },
  {
    why: 'a unique key with a NULLable column (rows with NULL there are not told apart)',
    shape: table('nullable', [col('a', true), col('b')], [index('u_ab', true, ['a', 'b'])]),
    key: undefined,
  },
  {
    why: 'no key at all',
    shape: table('none', [col('a'), col('b')], [index('k_a', false, ['a'])]),
    key: undefined,
  },
  {
    why: 'unusable unique keys first in name order, then a usable one',
    shape: table('later', [textCol('name'), col('a', true), col('b')], [index('a_prefix', true, [['name', 4]]), index('b_nullable', true, ['a']), index('c_ok', true, ['b'])]),
    key: { index: 'c_ok', columns: ['b'] },
  },
];

for (const { shape, key, why } of TABLES) {
  test(`row key of a table with ${why}: the rule, check, osc and DRC agree`, () => {
    assert.deepEqual(rowKey(shape), key);
    // check full and incr: the same key in every zone compared
    assert.deepEqual(commonRowKey([shape, structuredClone(shape)]), key);
    // osc: the key its copy walks (the same shape after the change)
    const osc = copyKey(shape, shape, new Map());
    assert.deepEqual(osc.key && { index: osc.key.index, columns: osc.key.columns }, key);
    if (!key) assert.match(osc.refusals[0]!, /has no primary key or unique key on NOT NULL columns to copy by/);
    // DRC: the same key when it is the primary key; a table without one is refused (DRC needs a
    // primary key), never keyed by other columns than the checks use
    assert.deepEqual(drcRowKey(shape), key?.index === 'PRIMARY' ? key : undefined);
  });
}

test('across zones: a table keyed differently in one zone has no common row key', () => {
  const bj = table('t', [col('a'), col('b')], [index('u_a', true, ['a'])]);
  const sh = table('t', [col('a'), col('b')], [index('u_b', true, ['b'])]);
  assert.equal(commonRowKey([bj, sh]), undefined);
  assert.equal(commonRowKey([bj, TABLES[4]!.shape]), undefined);
});
