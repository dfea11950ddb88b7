// The integer keys' bounds read for the first tables of a check full in one query per zone: only
// tables whose walk keys them by one integer column alike in every zone; identifiers quoted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyBoundsQuery } from '../../src/core/dcp/check-full.js';
import type { ColumnShape, TableShape } from '../../src/core/db/introspect.js';

function col(name: string, dataType: string, nullable = false): ColumnShape {
  return { name, position: 1, dataType, columnType: dataType, serverType: dataType, nullable, default: null, charset: null, collation: null, generated: null, extra: '', comment: '' };
}

function table(schema: string, name: string, columns: ColumnShape[], primaryKey: string[]): TableShape {
  return { schema, table: name, engine: 'InnoDB', collation: null, rowsEstimate: 0, columns, primaryKey, indexes: [], foreignKeys: [] };
}

test('one query over the tables keyed by a single integer column, in every zone alike', () => {
  const bj = new Map<string, TableShape>([
    ['d.ints', table('d', 'ints', [col('id', 'bigint'), col('v', 'int')], ['id'])],
    ['d.text', table('d', 'text', [col('k', 'varchar')], ['k'])],
    ['d.two', table('d', 'two', [col('a', 'int'), col('b', 'int')], ['a', 'b'])],
    ['d.only_bj', table('d', 'only_bj', [col('id', 'int')], ['id'])],
    ['d.rekeyed', table('d', 'rekeyed', [col('id', 'int'), col('n', 'int')], ['id'])],
    ['d`x.we`ird', table('d`x', 'we`ird', [col('i`d', 'mediumint')], ['i`d'])],
  ]);
  const sh = new Map<string, TableShape>([
    ['d.ints', table('d', 'ints', [col('id', 'bigint'), col('v', 'int')], ['id'])],
    ['d.text', table('d', 'text', [col('k', 'varchar')], ['k'])],
    ['d.two', table('d', 'two', [col('a', 'int'), col('b', 'int')], ['a', 'b'])],
    ['d.rekeyed', table('d', 'rekeyed', [col('id', 'int'), col('n', 'int')], ['n'])],
    ['d`x.we`ird', table('d`x', 'we`ird', [col('i`d', 'mediumint')], ['i`d'])],
  ]);
  const q = keyBoundsQuery([...bj.keys()], [bj, sh])!;
  assert.deepEqual(q.keyed, [{ name: 'd.ints', column: 'id' }, { name: 'd`x.we`ird', column: 'i`d' }]);
  assert.equal(
    q.sql,
    'SELECT 0 AS i, CAST(MIN(`id`) AS CHAR) AS lo, CAST(MAX(`id`) AS CHAR) AS hi FROM `d`.`ints`' +
      ' UNION ALL SELECT 1 AS i, CAST(MIN(`i``d`) AS CHAR) AS lo, CAST(MAX(`i``d`) AS CHAR) AS hi FROM `d``x`.`we``ird`',
  );
  // none keyed that way: no query
  assert.equal(keyBoundsQuery(['d.text', 'd.two'], [bj, sh]), undefined);
});
