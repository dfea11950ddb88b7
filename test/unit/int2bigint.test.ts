// migrate int2bigint, the pure parts: the capacity of each integer type, the share used, the
// MODIFY clause that changes only the type, and the families: a parent with its children and
// grandchildren widened together, tables pointing into a family rebuilt, urgency order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildFamilies,
  capacityOf,
  maxOf,
  modifyClause,
  overThreshold,
  usedShare,
  type ForeignKeyRef,
  type IntColumn,
  type IntType,
  type KeyColumn,
} from '../../src/core/migrate/int2bigint.js';
import { formatUsed, renderInt2Bigint } from '../../src/core/migrate/int2bigint-render.js';

function col(table: string, column: string, dataType: IntType, more: Partial<IntColumn> = {}): IntColumn {
  const unsigned = more.unsigned ?? false;
  return {
    schema: 'shop', table, column, dataType, unsigned, zerofill: false, columnType: `${dataType}${unsigned ? ' unsigned' : ''}`,
    nullable: false, default: null, autoIncrement: false, onUpdate: null, invisible: false, comment: '', generated: false, ...more,
  };
}

function key(table: string, column: string, dataType: IntType, used: number, more: Partial<KeyColumn> = {}): KeyColumn {
  const c = col(table, column, dataType, more);
  return {
    ...c, primaryKey: true, unique: false, maxValue: null, maxValueRead: true, autoIncrementNext: null,
    capacity: capacityOf(c.dataType, c.unsigned).toString(), used, referencedBy: [], ...more,
  };
}

function fk(table: string, columns: string[], refTable: string, refColumns: string[], constraint = `${table}_${columns.join('_')}_fk`): ForeignKeyRef {
  return { constraint, schema: 'shop', table, columns, refSchema: 'shop', refTable, refColumns, onDelete: 'RESTRICT', onUpdate: 'RESTRICT' };
}

// ---------------------------------------------------------------------------------------------
// capacity and use

test('capacity: 2^(bits-1)-1 signed, 2^bits-1 unsigned, exact for BIGINT UNSIGNED', () => {
  assert.equal(capacityOf('tinyint', false), 127n);
  assert.equal(capacityOf('tinyint', true), 255n);
  assert.equal(capacityOf('smallint', false), 32767n);
  assert.equal(capacityOf('mediumint', false), 8388607n);
  assert.equal(capacityOf('mediumint', true), 16777215n);
  assert.equal(capacityOf('int', false), 2147483647n);
  assert.equal(capacityOf('int', true), 4294967295n);
  assert.equal(capacityOf('bigint', false), 9223372036854775807n);
  assert.equal(capacityOf('bigint', true), 18446744073709551615n);
});

test('used: the larger of the largest value and the last id AUTO_INCREMENT handed out', () => {
  assert.ok(Math.abs(usedShare('100', null, 127n) - 100 / 127) < 1e-9);
  // AUTO_INCREMENT 2e9 means 1999999999 was handed out, though the rows now stop at 1e9
  assert.ok(Math.abs(usedShare('1000000000', '2000000000', '4294967295') - 1999999999 / 4294967295) < 1e-9);
  assert.ok(Math.abs(usedShare('3000000000', '11', 4294967295n) - 3000000000 / 4294967295) < 1e-9);
  assert.equal(usedShare(null, null, 127n), 0, 'an empty table');
  assert.equal(usedShare(null, '1', 127n), 0, 'a fresh AUTO_INCREMENT');
  assert.equal(usedShare('-5', null, 127n), 0, 'negative values use no ids');
  assert.equal(usedShare('127', null, 127n), 1);
  assert.equal(usedShare(null, '256', 255n), 1, 'exhausted');
  // BIGINT UNSIGNED: exact decimal strings, no float rounding on the way in
  assert.ok(Math.abs(usedShare('18446744073709551615', null, capacityOf('bigint', true)) - 1) < 1e-9);
  assert.ok(Math.abs(usedShare('9223372036854775808', null, capacityOf('bigint', true)) - 0.5) < 1e-9);
});

test('maxOf compares exact integers, not text', () => {
  assert.equal(maxOf('999', '1000'), '1000');
  assert.equal(maxOf('18446744073709551615', '18446744073709551614'), '18446744073709551615');
  assert.equal(maxOf(null, '3'), '3');
  assert.equal(maxOf('3', null), '3');
  assert.equal(maxOf(null, null), null);
});

test('used % on a terminal: two decimals, never a misleading 0', () => {
  assert.equal(formatUsed(0.4656612873), '46.57%');
  assert.equal(formatUsed(0), '0.00%');
  assert.equal(formatUsed(0.0000001), '<0.01%');
  assert.equal(formatUsed(1), '100.00%');
});

// ---------------------------------------------------------------------------------------------
// the MODIFY clause

test('MODIFY keeps everything but the type: signedness, NOT NULL, AUTO_INCREMENT', () => {
  assert.equal(modifyClause(col('accounts', 'id', 'int', { unsigned: true, columnType: 'int(10) unsigned', autoIncrement: true })), 'MODIFY COLUMN `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT');
  assert.equal(modifyClause(col('payments', 'account_id', 'int', { columnType: 'int(11)' })), 'MODIFY COLUMN `account_id` BIGINT NOT NULL');
  assert.equal(modifyClause(col('t', 'parent', 'mediumint', { nullable: true })), 'MODIFY COLUMN `parent` BIGINT NULL');
});

test('MODIFY keeps DEFAULT (literal or expression), INVISIBLE, ON UPDATE and COMMENT (quotes escaped), quotes the name', () => {
  assert.equal(modifyClause(col('t', 'n', 'smallint', { default: '0', comment: "the owner's id" })), "MODIFY COLUMN `n` BIGINT NOT NULL DEFAULT 0 COMMENT 'the owner\\'s id'");
  assert.equal(modifyClause(col('t', 'n', 'int', { default: "'-1'", nullable: true })), 'MODIFY COLUMN `n` BIGINT NULL DEFAULT -1');
  assert.equal(modifyClause(col('t', 'n', 'int', { default: '1 + 1' })), 'MODIFY COLUMN `n` BIGINT NOT NULL DEFAULT (1 + 1)');
  assert.equal(modifyClause(col('t', 'we`ird', 'int', { invisible: true, unsigned: true })), 'MODIFY COLUMN `we``ird` BIGINT UNSIGNED NOT NULL INVISIBLE');
  assert.equal(modifyClause(col('t', 'n', 'int', { onUpdate: 'current_timestamp' })), 'MODIFY COLUMN `n` BIGINT NOT NULL ON UPDATE CURRENT_TIMESTAMP');
});

test('MODIFY of a ZEROFILL column keeps the display width it pads to', () => {
  assert.equal(modifyClause(col('t', 'code', 'int', { unsigned: true, zerofill: true, columnType: 'int(8) unsigned zerofill' })), 'MODIFY COLUMN `code` BIGINT(8) UNSIGNED ZEROFILL NOT NULL');
});

// ---------------------------------------------------------------------------------------------
// families

// accounts.id ← payments.account_id; accounts.id ← invoices.account_id;
// payments.id ← refunds.payment_id (payments.id is no part of accounts' family: refunds is
// rebuilt); invoices.account_id is itself referenced by invoice_lines.account_id (a grandchild);
// audit points at invoice_lines (rebuilt, transitively); tags is unrelated.
const accounts = key('accounts', 'id', 'int', 0.6, { unsigned: true, autoIncrement: true, columnType: 'int(10) unsigned' });
const payments = key('payments', 'id', 'int', 0.1, { autoIncrement: true });
const small = key('small', 'id', 'tinyint', 0.94);
const tags = key('tags', 'id', 'int', 0.01);
const invoicesAccount = col('invoices', 'account_id', 'int', { unsigned: true });
const paymentsAccount = col('payments', 'account_id', 'int', { unsigned: true });
const linesAccount = col('invoice_lines', 'account_id', 'int', { unsigned: true, nullable: true });
const refundsPayment = col('refunds', 'payment_id', 'int');
const auditLine = col('audit', 'line_id', 'int');
const fks = [
  fk('payments', ['account_id'], 'accounts', ['id']),
  fk('invoices', ['account_id'], 'accounts', ['id']),
  fk('invoice_lines', ['account_id'], 'invoices', ['account_id']),
  fk('refunds', ['payment_id'], 'payments', ['id']),
  fk('audit', ['line_id'], 'invoice_lines', ['id']),
];
const base = {
  keyColumns: [accounts, payments, small, tags],
  columns: [invoicesAccount, paymentsAccount, linesAccount, refundsPayment, auditLine],
  foreignKeys: fks,
};

test('a parent, its two children and a grandchild through a widened child, together; tables pointing in are rebuilt', () => {
  const { families } = buildFamilies({ ...base, threshold: 0.5 });
  const f = families.find((x) => x.root.table === 'accounts')!;
  assert.deepEqual(f.root, { schema: 'shop', table: 'accounts', column: 'id' });
  assert.equal(f.used, 0.6);
  assert.deepEqual(f.tables, [
    { schema: 'shop', table: 'accounts', columns: ['id'], alter: 'MODIFY COLUMN `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT' },
    { schema: 'shop', table: 'payments', columns: ['account_id'], alter: 'MODIFY COLUMN `account_id` BIGINT UNSIGNED NOT NULL' },
    { schema: 'shop', table: 'invoices', columns: ['account_id'], alter: 'MODIFY COLUMN `account_id` BIGINT UNSIGNED NOT NULL' },
    { schema: 'shop', table: 'invoice_lines', columns: ['account_id'], alter: 'MODIFY COLUMN `account_id` BIGINT UNSIGNED NULL' },
    { schema: 'shop', table: 'refunds', columns: [], alter: '' },
    { schema: 'shop', table: 'audit', columns: [], alter: '' },
  ]);
  assert.deepEqual(f.foreignKeys.map((k) => k.constraint).sort(), fks.map((k) => k.constraint).sort(), 'every foreign key touching the family');
  assert.ok(!f.tables.some((t) => t.table === 'tags'));
});

test('threshold picks the families; the most urgent first', () => {
  const half = buildFamilies({ ...base, threshold: 0.5 }).families;
  assert.deepEqual(half.map((f) => `${f.root.table}.${f.root.column}`), ['small.id', 'accounts.id']);
  assert.deepEqual(half[0]!.tables, [{ schema: 'shop', table: 'small', columns: ['id'], alter: 'MODIFY COLUMN `id` BIGINT NOT NULL' }]);
  const all = buildFamilies({ ...base, threshold: 0.05 }).families;
  // payments.id's family shares payments with accounts.id's: one family (see below)
  assert.deepEqual(all.map((f) => `${f.root.table}.${f.root.column}`), ['small.id', 'accounts.id']);
  assert.equal(buildFamilies({ ...base, threshold: 0.95 }).families.length, 0);
  assert.deepEqual(overThreshold(base.keyColumns, 0.1).map((c) => c.table), ['small', 'accounts', 'payments']);
});

test('families sharing a table are one: payments (its own key and its parent\'s) is changed once, every column widened', () => {
  const { families, notes } = buildFamilies({ ...base, threshold: 0.05 });
  assert.deepEqual(families.map((f) => `${f.root.table}.${f.root.column}`), ['small.id', 'accounts.id']);
  const f = families[1]!;
  assert.deepEqual(f.roots.map((r) => `${r.table}.${r.column}`), ['accounts.id', 'payments.id']);
  assert.deepEqual(f.tables.map((t) => [t.table, t.alter]), [
    ['accounts', 'MODIFY COLUMN `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT'],
    ['payments', 'MODIFY COLUMN `account_id` BIGINT UNSIGNED NOT NULL, MODIFY COLUMN `id` BIGINT NOT NULL AUTO_INCREMENT'],
    ['invoices', 'MODIFY COLUMN `account_id` BIGINT UNSIGNED NOT NULL'],
    ['invoice_lines', 'MODIFY COLUMN `account_id` BIGINT UNSIGNED NULL'],
    ['refunds', 'MODIFY COLUMN `payment_id` BIGINT NOT NULL'],
    ['audit', ''],
  ]);
  assert.equal(f.used, 0.6);
  assert.ok(notes.some((n) => /the families of shop\.accounts\.id and shop\.payments\.id share shop\.payments, shop\.refunds: planned as one family/.test(n)), notes.join('\n'));
});

/** No table in two families: the property the run relies on. */
function assertDisjoint(families: ReturnType<typeof buildFamilies>['families']): void {
  const seen = new Map<string, string>();
  for (const f of families) {
    for (const t of f.tables) {
      const k = `${t.schema}.${t.table}`;
      assert.ok(!seen.has(k), `${k} is in the families of ${seen.get(k)} and ${f.root.table}`);
      seen.set(k, f.root.table);
    }
  }
}

test('the issue\'s parent/child at --threshold 0: one family, the child\'s own key widened with its foreign key', () => {
  const parent = key('parent', 'id', 'int', 0.000001, { autoIncrement: true });
  const child = key('child', 'id', 'int', 0.000002);
  const childParent = col('child', 'parent_id', 'int');
  const r = buildFamilies({ keyColumns: [child, parent], columns: [childParent], foreignKeys: [fk('child', ['parent_id'], 'parent', ['id'])], threshold: 0 });
  assert.equal(r.families.length, 1, JSON.stringify(r.families));
  assert.deepEqual(Object.fromEntries(r.families[0]!.tables.map((t) => [t.table, [...t.columns].sort()])), { parent: ['id'], child: ['id', 'parent_id'] });
  assert.deepEqual(r.families[0]!.roots.map((x) => x.table).sort(), ['child', 'parent']);
  assert.deepEqual(r.families[0]!.tables.map((t) => t.table), ['parent', 'child'], 'a parent before its child, whichever root came first');
  assert.equal(r.families[0]!.used, 0.000002, 'as urgent as its most used key');
});

test('a three-level chain at --threshold 0: one family, every key and every foreign-key column widened once', () => {
  const gp = key('grandparent', 'id', 'int', 0.1, { autoIncrement: true });
  const parent = key('parent', 'id', 'int', 0.2);
  const child = key('child', 'id', 'int', 0.3);
  const r = buildFamilies({
    keyColumns: [child, parent, gp],
    columns: [col('parent', 'grandparent_id', 'int'), col('child', 'parent_id', 'int')],
    foreignKeys: [fk('parent', ['grandparent_id'], 'grandparent', ['id']), fk('child', ['parent_id'], 'parent', ['id'])],
    threshold: 0,
  });
  assertDisjoint(r.families);
  assert.equal(r.families.length, 1);
  const f = r.families[0]!;
  assert.deepEqual(Object.fromEntries(f.tables.map((t) => [t.table, [...t.columns].sort()])), { grandparent: ['id'], parent: ['grandparent_id', 'id'], child: ['id', 'parent_id'] });
  assert.equal(f.foreignKeys.length, 2);
  assert.deepEqual(f.tables.map((t) => t.table), ['grandparent', 'parent', 'child']);
  for (const t of f.tables) assert.equal(t.alter.split('MODIFY COLUMN').length - 1, t.columns.length, `${t.table}: one MODIFY per column`);
  // only the chain's lower levels over the threshold: those two, once; the grandparent's key is
  // not widened, so parent.grandparent_id keeps its type (the ghost's foreign key points at it)
  const lower = buildFamilies({
    keyColumns: [child, parent, gp],
    columns: [col('parent', 'grandparent_id', 'int'), col('child', 'parent_id', 'int')],
    foreignKeys: [fk('parent', ['grandparent_id'], 'grandparent', ['id']), fk('child', ['parent_id'], 'parent', ['id'])],
    threshold: 0.15,
  });
  assertDisjoint(lower.families);
  assert.equal(lower.families.length, 1);
  assert.deepEqual(Object.fromEntries(lower.families[0]!.tables.map((t) => [t.table, [...t.columns].sort()])), { parent: ['id'], child: ['id', 'parent_id'] });
});

test('families that share no table stay apart; a family joins two others through a rebuilt table', () => {
  // a.id <- x.a_id, b.id <- y.b_id: apart; then z (own key) points at both x and y: one family
  const a = key('a', 'id', 'int', 0.9);
  const b = key('b', 'id', 'int', 0.8);
  const x = key('x', 'id', 'int', 0.01);
  const y = key('y', 'id', 'int', 0.01);
  const cols = [col('x', 'a_id', 'int'), col('y', 'b_id', 'int'), col('z', 'x_id', 'int'), col('z', 'y_id', 'int')];
  const fks2 = [fk('x', ['a_id'], 'a', ['id']), fk('y', ['b_id'], 'b', ['id'])];
  const apart = buildFamilies({ keyColumns: [a, b, x, y], columns: cols, foreignKeys: fks2, threshold: 0.5 });
  assert.deepEqual(apart.families.map((f) => f.tables.map((t) => t.table)), [['a', 'x'], ['b', 'y']]);
  const joined = buildFamilies({ keyColumns: [a, b, x, y], columns: cols, foreignKeys: [...fks2, fk('z', ['x_id'], 'x', ['id']), fk('z', ['y_id'], 'y', ['id'])], threshold: 0.5 });
  assertDisjoint(joined.families);
  assert.equal(joined.families.length, 1, 'z is rebuilt by both: one change');
  assert.deepEqual(joined.families[0]!.tables.map((t) => t.table).sort(), ['a', 'b', 'x', 'y', 'z']);
  assert.equal(joined.families[0]!.root.table, 'a', 'the most urgent root leads');
});

test('a child key over the threshold plans its top-most parent\'s family', () => {
  // account_details.account_id is its table's primary key and references accounts.id (1:1)
  const details = key('account_details', 'account_id', 'int', 0.7, { unsigned: true });
  const parent = key('accounts', 'id', 'int', 0.2, { unsigned: true, autoIncrement: true });
  const { families } = buildFamilies({ keyColumns: [parent, details], columns: [], foreignKeys: [fk('account_details', ['account_id'], 'accounts', ['id'])], threshold: 0.5 });
  assert.equal(families.length, 1);
  assert.deepEqual(families[0]!.root, { schema: 'shop', table: 'accounts', column: 'id' });
  assert.equal(families[0]!.used, 0.7, 'the family is as urgent as its most used key');
  assert.deepEqual(families[0]!.tables.map((t) => t.table), ['accounts', 'account_details']);
});

test('BIGINT is never planned; a BIGINT child needs no MODIFY but its table is rebuilt', () => {
  const big = key('events', 'id', 'bigint', 0.8, { unsigned: true });
  const r = buildFamilies({ keyColumns: [big], columns: [], foreignKeys: [], threshold: 0.5 });
  assert.deepEqual(r.families, []);
  assert.match(r.notes.join('\n'), /shop\.events\.id is BIGINT already \(80\.00% used\)/);
  const parent = key('users', 'id', 'int', 0.9);
  const child = col('logins', 'user_id', 'bigint');
  const f = buildFamilies({ keyColumns: [parent], columns: [child], foreignKeys: [fk('logins', ['user_id'], 'users', ['id'])], threshold: 0.5 });
  assert.deepEqual(f.families[0]!.tables.map((t) => [t.table, t.alter]), [['users', 'MODIFY COLUMN `id` BIGINT NOT NULL'], ['logins', '']]);
  assert.match(f.notes.join('\n'), /shop\.logins\.user_id .* is bigint while shop\.users\.id is int/);
});

test('a child of another sign keeps its own sign, with a note', () => {
  const parent = key('users', 'id', 'int', 0.9, { unsigned: true });
  const child = col('logins', 'user_id', 'int');
  const { families, notes } = buildFamilies({ keyColumns: [parent], columns: [child], foreignKeys: [fk('logins', ['user_id'], 'users', ['id'])], threshold: 0.5 });
  assert.deepEqual(families[0]!.tables.map((t) => t.alter), ['MODIFY COLUMN `id` BIGINT UNSIGNED NOT NULL', 'MODIFY COLUMN `user_id` BIGINT NOT NULL']);
  assert.match(notes.join('\n'), /shop\.logins\.user_id \(foreign key logins_user_id_fk\) is signed while shop\.users\.id is unsigned; each keeps its own sign/);
});

test('a self-reference and a two-column foreign key: one table entry, one MODIFY per widened column, columns paired', () => {
  const emp = key('employees', 'id', 'int', 0.7, { autoIncrement: true });
  const manager = col('employees', 'manager_id', 'int', { nullable: true });
  // shifts (tenant_id, employee_id) → employees (tenant_id, id): only employee_id pairs with id
  const empTenant = col('employees', 'tenant_id', 'smallint');
  const shiftTenant = col('shifts', 'tenant_id', 'smallint');
  const shiftEmp = col('shifts', 'employee_id', 'int');
  const r = buildFamilies({
    keyColumns: [emp],
    columns: [manager, empTenant, shiftTenant, shiftEmp],
    foreignKeys: [fk('employees', ['manager_id'], 'employees', ['id']), fk('shifts', ['tenant_id', 'employee_id'], 'employees', ['tenant_id', 'id'])],
    threshold: 0.5,
  });
  assert.deepEqual(r.families.map((f) => f.tables.map((t) => [t.table, t.columns, t.alter])), [[
    ['employees', ['id', 'manager_id'], 'MODIFY COLUMN `id` BIGINT NOT NULL AUTO_INCREMENT, MODIFY COLUMN `manager_id` BIGINT NULL'],
    ['shifts', ['employee_id'], 'MODIFY COLUMN `employee_id` BIGINT NOT NULL'],
  ]]);
});

test('a generated column in a family is left for a human, with a note', () => {
  const parent = key('users', 'id', 'int', 0.9);
  const child = col('shadow', 'user_id', 'int', { generated: true });
  const r = buildFamilies({ keyColumns: [parent], columns: [child], foreignKeys: [fk('shadow', ['user_id'], 'users', ['id'])], threshold: 0.5 });
  assert.deepEqual(r.families[0]!.tables.map((t) => [t.table, t.alter]), [['users', 'MODIFY COLUMN `id` BIGINT NOT NULL'], ['shadow', '']]);
  assert.match(r.notes.join('\n'), /shop\.shadow\.user_id is a generated column/);
});

// ---------------------------------------------------------------------------------------------
// rendering

test('the text report: columns, each family\'s ALTERs in order, notes; nothing changed', () => {
  const withRefs = { ...accounts, maxValue: '2576980377', autoIncrementNext: '2576980378', referencedBy: [fks[0]!, fks[1]!] };
  const { families, notes } = buildFamilies({ ...base, keyColumns: [withRefs, payments, small, tags], threshold: 0.5 });
  const text = renderInt2Bigint({ cluster: 'demo', zones: ['bj', 'sh'], threshold: 0.5, tablesSeen: 8, columns: [small, withRefs, payments, tags], families, notes });
  assert.match(text, /^cluster demo, zones bj, sh: 4 integer key columns in 8 tables/);
  assert.match(text, /shop\.accounts\.id .*int\(10\) unsigned .*2576980377 .*2576980378 .*60\.00% .*shop\.payments\.account_id, shop\.invoices\.account_id/);
  const lines = text.split('\n');
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
  assert.ok(at(/^1\. shop\.small\.id: 94\.00% used; 1 table$/) < at(/^2\. shop\.accounts\.id: 60\.00% used; 6 tables, together/));
  assert.ok(at(/ALTER TABLE `shop`\.`accounts` MODIFY COLUMN `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT;/) < at(/ALTER TABLE `shop`\.`invoice_lines` MODIFY COLUMN `account_id` BIGINT UNSIGNED NULL;/));
  assert.match(text, /-- shop\.refunds: rebuilt unchanged, so that its foreign key refunds_payment_id_fk follows the new tables/);
  assert.match(text, /shop\.payments\.payments_account_id_fk: shop\.payments\(account_id\) → shop\.accounts\(id\) ON DELETE RESTRICT ON UPDATE RESTRICT/);
  assert.match(text, /\nnothing was changed$/);
  const unread = renderInt2Bigint({ cluster: 'demo', zones: ['bj'], threshold: 0.5, tablesSeen: 1, columns: [{ ...tags, maxValueRead: false }], families: [], notes: [] });
  assert.match(unread, /shop\.tags\.id .* not read /);
  const none = renderInt2Bigint({ cluster: 'demo', zones: ['bj'], threshold: 0.99, tablesSeen: 1, columns: [tags], families: [], notes: [] });
  assert.match(none, /no key at or above 99\.00% of its capacity: nothing to widen/);
});
