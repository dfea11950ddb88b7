// compareShapes, commonColumns and the report text, on hand-built table shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeColumnType, normalizeDefault, type ColumnShape, type IndexShape, type TableShape } from '../../src/core/db/introspect.js';
import { compareShapes, commonColumns, typeClass, type ShapeDiff } from '../../src/core/db/shape-compare.js';
import { renderSchemaReport, tableFilter, type SchemaReport } from '../../src/core/dcp/structure.js';

function col(name: string, columnType: string, more: Partial<ColumnShape> = {}): ColumnShape {
  const dataType = columnType.replace(/[ (].*$/, '');
  const text = /char|text|enum|set/.test(dataType);
  return {
    name,
    position: 0,
    dataType,
    columnType,
    serverType: columnType,
    nullable: false,
    default: null,
    charset: text ? 'utf8mb4' : null,
    collation: text ? 'utf8mb4_general_ci' : null,
    generated: null,
    extra: '',
    comment: '',
    ...more,
  };
}

function index(name: string, columns: string[], more: Partial<IndexShape> = {}): IndexShape {
  return { name, unique: name === 'PRIMARY', type: 'BTREE', parts: columns.map((c) => ({ column: c, subPart: null, descending: false })), visible: true, ...more };
}

/** The demo orders table. */
function orders(): TableShape {
  return {
    schema: 'ezdemo',
    table: 'orders',
    engine: 'InnoDB',
    collation: 'utf8mb4_general_ci',
    rowsEstimate: 50,
    columns: [
      col('id', 'bigint', { extra: 'auto_increment' }),
      col('user_id', 'bigint unsigned'),
      col('amount', 'decimal(12,2)'),
      col('note', 'text', { nullable: true }),
      col('status', 'tinyint', { default: '0' }),
      col('drc_ts', 'timestamp(3)', { default: 'current_timestamp(3)', extra: 'on update current_timestamp(3)' }),
    ].map((c, i) => ({ ...c, position: i + 1 })),
    primaryKey: ['id'],
    indexes: [index('PRIMARY', ['id']), index('idx_user', ['user_id'])],
    foreignKeys: [{ name: 'fk_user', columns: ['user_id'], references: 'ezdemo.users', refColumns: ['id'], onUpdate: 'RESTRICT', onDelete: 'CASCADE' }],
  };
}

function changed(edit: (t: TableShape) => void): TableShape {
  const t = structuredClone(orders());
  edit(t);
  return t;
}

const column = (t: TableShape, name: string) => t.columns.find((c) => c.name === name)!;
const only = (diffs: ShapeDiff[]) => diffs.map((d) => ({ ...d }));

test('identical shapes have no differences', () => {
  assert.deepEqual(compareShapes(orders(), orders()), []);
});

test('every column difference is its own kind, left the reference and right the other side', () => {
  const b = changed((t) => {
    column(t, 'amount').columnType = 'decimal(14,2)';
    column(t, 'note').nullable = false;
    column(t, 'status').default = '1';
    column(t, 'id').extra = '';
    column(t, 'drc_ts').generated = 'virtual as (now(3))';
  });
  assert.deepEqual(only(compareShapes(orders(), b)), [
    { kind: 'column-extra', object: 'id', left: 'auto_increment', right: null },
    { kind: 'column-type', object: 'amount', left: 'decimal(12,2)', right: 'decimal(14,2)' },
    { kind: 'column-nullable', object: 'note', left: 'NULL', right: 'NOT NULL' },
    { kind: 'column-default', object: 'status', left: '0', right: '1' },
    { kind: 'column-generated', object: 'drc_ts', left: null, right: 'virtual as (now(3))' },
  ]);
});

test('a charset change is one diff (not also a collation diff); a collation change alone is a collation diff', () => {
  const charset = changed((t) => Object.assign(column(t, 'note'), { charset: 'latin1', collation: 'latin1_swedish_ci' }));
  assert.deepEqual(only(compareShapes(orders(), charset)), [{ kind: 'column-charset', object: 'note', left: 'utf8mb4', right: 'latin1' }]);
  const collation = changed((t) => (column(t, 'note').collation = 'utf8mb4_bin'));
  assert.deepEqual(only(compareShapes(orders(), collation)), [{ kind: 'column-collation', object: 'note', left: 'utf8mb4_general_ci', right: 'utf8mb4_bin' }]);
  // text → int: the type diff says it all, no charset noise
  const retyped = changed((t) => Object.assign(column(t, 'note'), { dataType: 'int', columnType: 'int', charset: null, collation: null }));
  assert.deepEqual(compareShapes(orders(), retyped).map((d) => d.kind), ['column-type']);
});

test('a missing column is reported on the side that lacks it, with the column it would be', () => {
  const dropped = changed((t) => (t.columns = t.columns.filter((c) => c.name !== 'note')));
  assert.deepEqual(only(compareShapes(orders(), dropped)), [{ kind: 'column-missing', object: 'note', left: 'text NULL', right: null }]);
  const added = changed((t) => t.columns.push(col('coupon', 'varchar(16)', { nullable: true, default: "'none'" })));
  assert.deepEqual(only(compareShapes(orders(), added)), [{ kind: 'column-missing', object: 'coupon', left: null, right: "varchar(16) NULL DEFAULT 'none'" }]);
  // a dropped column shifts the others' positions but is no reordering
  assert.ok(!compareShapes(orders(), dropped).some((d) => d.kind === 'column-order'));
});

test('a moved column is one column-order diff, not one per column it shifted', () => {
  // drc_ts moved from last to right after id
  const moved = changed((t) => {
    const ts = t.columns.pop()!;
    t.columns.splice(1, 0, ts);
  });
  assert.deepEqual(only(compareShapes(orders(), moved)), [{ kind: 'column-order', object: 'drc_ts', left: 'after status', right: 'after id' }]);
  const first = changed((t) => t.columns.unshift(t.columns.splice(2, 1)[0]!));
  assert.deepEqual(only(compareShapes(orders(), first)), [{ kind: 'column-order', object: 'amount', left: 'after user_id', right: 'first' }]);
});

test('indexes: missing on either side, different columns, uniqueness, prefix, order, visibility; primary key apart', () => {
  const b = changed((t) => {
    t.indexes = [
      index('PRIMARY', ['id', 'user_id']),
      index('idx_amount', ['amount']),
      index('idx_note', ['note'], { parts: [{ column: 'note', subPart: 20, descending: false }] }),
    ];
  });
  const a = changed((t) => t.indexes.push(index('idx_note', ['note'], { parts: [{ column: 'note', subPart: 10, descending: false }] })));
  assert.deepEqual(only(compareShapes(a, b)), [
    { kind: 'primary-key', object: 'PRIMARY', left: 'PRIMARY KEY (id)', right: 'PRIMARY KEY (id, user_id)' },
    { kind: 'index-missing', object: 'idx_user', left: 'KEY (user_id)', right: null },
    { kind: 'index-different', object: 'idx_note', left: 'KEY (note(10))', right: 'KEY (note(20))' },
    { kind: 'index-missing', object: 'idx_amount', left: null, right: 'KEY (amount)' },
  ]);
  const variants: Array<[Partial<IndexShape>, string]> = [
    [{ unique: true }, 'UNIQUE (user_id)'],
    [{ type: 'HASH' }, 'KEY (user_id) USING HASH'],
    [{ visible: false }, 'KEY (user_id) IGNORED'],
    [{ parts: [{ column: 'user_id', subPart: null, descending: true }] }, 'KEY (user_id DESC)'],
    [{ parts: [{ column: 'status', subPart: null, descending: false }, { column: 'user_id', subPart: null, descending: false }] }, 'KEY (status, user_id)'],
  ];
  for (const [change, def] of variants) {
    const other = changed((t) => Object.assign(t.indexes.find((i) => i.name === 'idx_user')!, change));
    assert.deepEqual(only(compareShapes(orders(), other)), [{ kind: 'index-different', object: 'idx_user', left: 'KEY (user_id)', right: def }]);
  }
  const noPk = changed((t) => (t.indexes = t.indexes.filter((i) => i.name !== 'PRIMARY')));
  assert.deepEqual(only(compareShapes(orders(), noPk)), [{ kind: 'primary-key', object: 'PRIMARY', left: 'PRIMARY KEY (id)', right: null }]);
});

test('foreign keys, engine and table collation', () => {
  const b = changed((t) => {
    t.engine = 'MyISAM';
    t.collation = 'utf8mb4_bin';
    t.foreignKeys[0]!.onDelete = 'RESTRICT';
    t.foreignKeys.push({ name: 'fk_x', columns: ['status'], references: 'ezdemo.statuses', refColumns: ['id'], onUpdate: 'RESTRICT', onDelete: 'RESTRICT' });
  });
  assert.deepEqual(only(compareShapes(orders(), b)), [
    { kind: 'engine', object: 'ezdemo.orders', left: 'InnoDB', right: 'MyISAM' },
    { kind: 'table-collation', object: 'ezdemo.orders', left: 'utf8mb4_general_ci', right: 'utf8mb4_bin' },
    {
      kind: 'foreign-key-different',
      object: 'fk_user',
      left: '(user_id) REFERENCES ezdemo.users (id) ON UPDATE RESTRICT ON DELETE CASCADE',
      right: '(user_id) REFERENCES ezdemo.users (id) ON UPDATE RESTRICT ON DELETE RESTRICT',
    },
    { kind: 'foreign-key-missing', object: 'fk_x', left: null, right: '(status) REFERENCES ezdemo.statuses (id) ON UPDATE RESTRICT ON DELETE RESTRICT' },
  ]);
  const noFk = changed((t) => (t.foreignKeys = []));
  assert.deepEqual(compareShapes(orders(), noFk).map((d) => [d.kind, d.left !== null, d.right]), [['foreign-key-missing', true, null]]);
});

test('commonColumns: identical shapes give every column in table order', () => {
  assert.deepEqual(commonColumns([orders(), orders(), orders()]), { columns: ['id', 'user_id', 'amount', 'note', 'status', 'drc_ts'], excluded: [] });
  assert.deepEqual(commonColumns([]), { columns: [], excluded: [] });
});

test('commonColumns: a column whose values would print differently is excluded with the reason; a widened one stays', () => {
  const b = changed((t) => {
    column(t, 'amount').columnType = 'decimal(12,3)'; // "1.50" vs "1.500": not comparable
    column(t, 'user_id').columnType = 'bigint'; // unsigned → signed: same digits
    column(t, 'status').columnType = 'int'; // tinyint → int: same digits
    Object.assign(column(t, 'note'), { charset: 'latin1', collation: 'latin1_swedish_ci' }); // other bytes
    t.columns = t.columns.filter((c) => c.name !== 'drc_ts');
    t.columns.push(col('extra_b', 'int'));
  });
  const r = commonColumns([orders(), b], ['bj-master', 'sh-master']);
  assert.deepEqual(r.columns, ['id', 'user_id', 'status']);
  assert.deepEqual(r.excluded, [
    { column: 'amount', why: 'type differs: decimal(12,2) on bj-master; decimal(12,3) on sh-master' },
    { column: 'note', why: 'type differs: text utf8mb4 on bj-master; text latin1 on sh-master' },
    { column: 'drc_ts', why: 'missing on sh-master' },
    { column: 'extra_b', why: 'missing on bj-master' },
  ]);
  // without names the reasons still say which shape
  assert.equal(commonColumns([orders(), b]).excluded[0]!.why, 'type differs: decimal(12,2) on shape 1; decimal(12,3) on shape 2');
  // the example of the report: decimal(12,2) → decimal(14,2) keeps its values' text, so it stays
  const wider = changed((t) => (column(t, 'amount').columnType = 'decimal(14,2)'));
  assert.ok(commonColumns([orders(), wider]).columns.includes('amount'));
});

test('commonColumns: a generated column computed differently is excluded', () => {
  const a = changed((t) => t.columns.push(col('total', 'decimal(12,2)', { generated: 'virtual as (`amount` * 2)' })));
  const b = changed((t) => t.columns.push(col('total', 'decimal(12,2)', { generated: 'virtual as (`amount` * 3)' })));
  const r = commonColumns([a, b], ['bj-master', 'sh-master']);
  assert.deepEqual(r.excluded, [{ column: 'total', why: 'generated differently: virtual as (`amount` * 2) on bj-master; virtual as (`amount` * 3) on sh-master' }]);
});

test('type classes: what prints alike compares, what does not is apart', () => {
  const cls = (columnType: string, charset: string | null = null) => typeClass({ dataType: columnType.replace(/[ (].*$/, ''), columnType, charset });
  assert.equal(cls('int'), cls('bigint unsigned'));
  assert.notEqual(cls('int(5) unsigned zerofill'), cls('int unsigned'));
  assert.equal(cls('decimal(10,2)'), cls('decimal(14,2)'));
  assert.notEqual(cls('decimal(10,2)'), cls('decimal(10,3)'));
  assert.equal(cls('varchar(64)', 'utf8mb4'), cls('text', 'utf8mb4'));
  assert.equal(cls('varchar(64)', 'utf8mb3'), cls('varchar(64)', 'utf8mb4'));
  assert.notEqual(cls('varchar(64)', 'latin1'), cls('varchar(64)', 'utf8mb4'));
  assert.notEqual(cls('datetime(3)'), cls('datetime(6)'));
  assert.notEqual(cls('datetime(3)'), cls('timestamp(3)'));
  assert.notEqual(cls('float'), cls('double'));
  assert.notEqual(cls('binary(16)'), cls('varbinary(16)'));
  assert.equal(cls('varbinary(16)'), cls('blob'));
});

test('normalization: integer display widths, NULL defaults and CURRENT_TIMESTAMP spellings', () => {
  assert.equal(normalizeColumnType('INT(11)'), 'int');
  assert.equal(normalizeColumnType('bigint(20) unsigned'), 'bigint unsigned');
  assert.equal(normalizeColumnType('int(5) unsigned zerofill'), 'int(5) unsigned zerofill');
  assert.equal(normalizeColumnType('decimal(12,2)'), 'decimal(12,2)');
  assert.equal(normalizeColumnType('year(4)'), 'year');
  assert.equal(normalizeDefault('NULL'), null);
  assert.equal(normalizeDefault(null), null);
  assert.equal(normalizeDefault("'NULL'"), "'NULL'");
  assert.equal(normalizeDefault('current_timestamp()'), 'current_timestamp');
  assert.equal(normalizeDefault('CURRENT_TIMESTAMP'), 'current_timestamp');
  assert.equal(normalizeDefault('CURRENT_TIMESTAMP(3)'), 'current_timestamp(3)');
});

test('tableFilter: the cluster\'s databases and DRC rules, then --tables and --exclude', () => {
  const f = tableFilter({ databases: ['shop', 'crm'], drc: { exclude: ['crm.local_*'] } }, { tables: 'shop.*,crm.*,/^other\\./', exclude: 'shop.tmp_*' });
  assert.equal(f('shop', 'orders'), true);
  assert.equal(f('shop', 'tmp_x'), false);
  assert.equal(f('crm', 'local_cache'), false);
  assert.equal(f('other', 't'), false); // not a database of the cluster
  assert.equal(f('shop', '_orders_gho'), false); // gh-ost's ghost table
  assert.equal(f('shop', 'orders_ezgho'), false); // ezctl osc's ghost table
  assert.equal(f('shop', 'orders_ezdel'), false); // and the original kept after its cut-over
  assert.equal(f('shop', 'orders_del'), true); // an ordinary table
  assert.throws(() => tableFilter({}, { tables: 'no_dot' }), /not db\.table/);
});

test('renderSchemaReport: one line per difference under its table, and a summary', () => {
  const r: SchemaReport = {
    consistent: false,
    cluster: 'demo',
    reference: 'bj-master',
    nodes: ['bj-master', 'bj-replica1', 'sh-master', 'sh-replica1'],
    comparisons: [],
    tablesCompared: 14,
    tables: [
      {
        table: 'ezdemo.orders',
        diffs: [
          { node: 'sh-master', against: 'bj-master', kind: 'column-type', object: 'amount', left: 'decimal(12,2)', right: 'decimal(14,2)' },
          { node: 'sh-master', against: 'bj-master', kind: 'index-missing', object: 'idx_user', left: 'KEY (user_id)', right: null },
        ],
      },
      { table: 'ezdemo.tmp', diffs: [{ node: 'sh-replica1', against: 'sh-master', kind: 'table-missing', object: 'ezdemo.tmp', left: null, right: 'table' }] },
    ],
  };
  assert.equal(
    renderSchemaReport(r),
    [
      'ezdemo.orders',
      '  sh-master vs bj-master: column amount type decimal(12,2) → decimal(14,2)',
      '  sh-master vs bj-master: index idx_user missing (bj-master has KEY (user_id))',
      'ezdemo.tmp',
      '  sh-replica1 vs sh-master: table extra (not on sh-master)',
      '2 tables differ out of 14 compared (reference bj-master)',
    ].join('\n'),
  );
  assert.equal(renderSchemaReport({ ...r, consistent: true, tables: [] }), 'consistent: 14 tables identical on 4 nodes (reference bj-master)');
});
