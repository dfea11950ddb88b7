// DRC's contract (src/core/cluster): helper-table names made and recognized in one place, what DRC
// replicates, and the GTID domain a write is kept from DRC by.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isHelperTable, namesHelperTable, oscHelperNames, oscProbeName, parseHelperName } from '../../src/core/cluster/helper-tables.js';
import { compileRules } from '../../src/core/cluster/rules.js';
import { drcDomainFor, OWN_DOMAIN_SQL, writeAsDrcSql } from '../../src/core/cluster/session.js';
import { hasOwnDdlMarker, ownDdlMarker } from '../../src/core/cluster/tables.js';
import { EzError } from '../../src/core/exit.js';

test('the names osc makes are the names cleanup and DRC recognize', () => {
  const n = oscHelperNames('orders');
  assert.deepEqual(n, { ghost: 'orders_ezgho', old: 'orders_ezdel' });
  assert.deepEqual(parseHelperName(n.ghost), { kind: 'ghost', of: 'orders' });
  assert.deepEqual(parseHelperName(n.old), { kind: 'old', of: 'orders' });
  assert.deepEqual(parseHelperName('orders_ezcut'), { kind: 'sentry', of: 'orders' });
  assert.deepEqual(parseHelperName('orders_ezcut0'), { kind: 'sentry', of: 'orders' });
  assert.deepEqual(parseHelperName(oscProbeName(4242)), { kind: 'probe', of: '', pid: 4242 });
  assert.equal(parseHelperName('orders'), undefined);
  for (const t of [n.ghost, n.old, 'orders_ezcut', 'orders_ezcut0', '_orders_gho', '_orders_ghc', '_orders_del']) assert.ok(isHelperTable(t), t);
  for (const t of ['orders', 'orders_ez', 'orders_gho', 'ezgho']) assert.ok(!isHelperTable(t), t);
});

test('a table name too long for its helper tables is refused (exit 2)', () => {
  assert.doesNotThrow(() => oscHelperNames('t'.repeat(57)));
  assert.throws(() => oscHelperNames('t'.repeat(58)), (e: EzError) => e.exitCode === 2 && /too long for its helper tables/.test(e.message));
});

test('a statement naming a helper table, quoted or not, is recognized; one naming the table itself is not', () => {
  assert.ok(namesHelperTable('RENAME TABLE `s`.`orders` TO `s`.`orders_ezdel`, `s`.`orders_ezgho` TO `s`.`orders`'));
  assert.ok(namesHelperTable('CREATE TABLE s.orders_ezcut (id int)'));
  assert.ok(namesHelperTable('ALTER TABLE _orders_gho ADD COLUMN x int'));
  assert.ok(!namesHelperTable('ALTER TABLE orders ADD COLUMN orders_ezgho_note int'));
  assert.ok(!namesHelperTable('ALTER TABLE `s`.`orders` ADD COLUMN x int'));
});

test('DRC replicates the cluster\'s tables, never system schemas, _ezctl (but its heartbeat) or helper tables', () => {
  const r = compileRules({ databases: ['app'], exclude: ['app.audit*'] });
  assert.ok(r('app', 'orders'));
  assert.ok(!r('app', 'orders_ezgho'));
  assert.ok(!r('app', '_orders_gho'));
  assert.ok(!r('app', 'audit_log'));
  assert.ok(!r('other', 'orders'));
  assert.ok(!r('mysql', 'user'));
  assert.ok(r('_ezctl', 'drc_heartbeat'));
  assert.ok(!r('_ezctl', 'drc_checkpoint'));
});

test('the own-DDL marker is recognized and cannot be closed early by its text', () => {
  const m = ownDdlMarker('origin=bj */ DROP TABLE x; /*');
  assert.ok(hasOwnDdlMarker(`${m}ALTER TABLE t ADD c int`));
  assert.ok(!m.slice(0, -4).includes('*/'), m);
});

test('DRC\'s domain for a write: the origin zone\'s domain + the offset, integers only', () => {
  assert.equal(drcDomainFor(1, 1000), 1001);
  assert.equal(drcDomainFor(undefined, 1000), undefined, 'MySQL: no session domain');
  assert.equal(writeAsDrcSql(1001), 'SET SESSION gtid_domain_id = 1001');
  assert.equal(OWN_DOMAIN_SQL, 'SET SESSION gtid_domain_id = @@GLOBAL.gtid_domain_id');
  assert.throws(() => drcDomainFor(0xffff_ffff, 1), (e: EzError) => e.exitCode === 2 && /not a GTID domain/.test(e.message));
  assert.throws(() => drcDomainFor(1.5, 1000), /not a GTID domain/);
  assert.throws(() => writeAsDrcSql('1; DROP TABLE t' as unknown as number), /not a GTID domain/);
});
