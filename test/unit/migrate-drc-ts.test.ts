// migrate drc-ts, the pure parts: how a zone's DRC timestamp column is classified (ok, missing,
// wrong and what is wrong, refused and why), the fixed value, the SQL each step runs, and the
// plan across zones (who adds, who receives whose values, what runs in which order).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addColumnSql,
  classifyColumn,
  copyValuesSql,
  defineColumnSql,
  describeProblem,
  fillNullsSql,
  fixedValueAt,
  inline,
  literalOf,
  numberSteps,
  parseFixedValue,
  planTable,
  readValuesSql,
  setLiteralDefaultSql,
  stepSql,
  type PlanContext,
  type ZoneInput,
} from '../../src/core/migrate/drc-ts.js';
import type { ColumnShape, TableShape } from '../../src/core/db/introspect.js';
import { EzError } from '../../src/core/exit.js';

function col(name: string, columnType: string, more: Partial<ColumnShape> = {}): ColumnShape {
  return { name, position: 0, dataType: columnType.replace(/[ (].*$/, ''), columnType, serverType: columnType, nullable: false, default: null, charset: null, collation: null, generated: null, extra: '', comment: '', ...more };
}

const good = () => col('drc_ts', 'timestamp(3)', { default: 'current_timestamp(3)', extra: 'on update current_timestamp(3)' });

function shape(columns: ColumnShape[], primaryKey: string[] = ['id'], schema = 'shop', table = 't'): TableShape {
  return { schema, table, engine: 'InnoDB', collation: 'utf8mb4_general_ci', rowsEstimate: 100, columns, primaryKey, indexes: [], foreignKeys: [] };
}

const base = () => [col('id', 'int'), col('v', 'varchar(20)', { nullable: true })];
const pc: PlanContext = { column: 'drc_ts', literal: '2026-11-23 20:00:00.000', drcDomain: (_z, origin) => (origin === 'bj' ? 1001 : 1002) };
const zi = (zone: string, columns: ColumnShape[] | undefined, more: Partial<ZoneInput> = {}): ZoneInput => ({ zone, shape: columns ? shape(columns) : undefined, comment: null, ...more });

// ---------------------------------------------------------------------------------------------
// classification

test('the wanted definition is ok; invisible and a comment do not make it wrong', () => {
  assert.equal(classifyColumn(good()).state, 'ok');
  const inv = classifyColumn(col('drc_ts', 'timestamp(3)', { default: 'current_timestamp(3)', extra: 'on update current_timestamp(3) invisible' }));
  assert.equal(inv.state, 'ok');
  assert.equal(inv.invisible, true);
});

test('a missing column is missing', () => {
  const v = classifyColumn(undefined);
  assert.equal(v.state, 'missing');
  assert.equal(v.refusal, undefined);
});

test('TIMESTAMP(0) is wrong in precision, default and ON UPDATE; fixable with a table copy', () => {
  const v = classifyColumn(col('drc_ts', 'timestamp', { default: 'current_timestamp', extra: 'on update current_timestamp' }));
  assert.equal(v.state, 'wrong');
  assert.deepEqual(v.problems.map((p) => p.kind), ['precision', 'default', 'on-update']);
  assert.equal(v.refusal, undefined);
  assert.equal(v.needsCopy, true);
  assert.equal(v.precision, 0);
  assert.equal(describeProblem(v.problems[0]!), 'precision timestamp (wanted timestamp(3))');
});

test('only the default or only ON UPDATE wrong: fixable without a copy', () => {
  const noOnUpdate = classifyColumn(col('drc_ts', 'timestamp(3)', { default: 'current_timestamp(3)' }));
  assert.deepEqual(noOnUpdate.problems, [{ kind: 'on-update', have: '(none)', want: 'on update current_timestamp(3)' }]);
  assert.equal(noOnUpdate.needsCopy, false);
  assert.equal(describeProblem(noOnUpdate.problems[0]!), 'no ON UPDATE (wanted on update current_timestamp(3))');
  const zeroDefault = classifyColumn(col('drc_ts', 'timestamp(3)', { default: "'0000-00-00 00:00:00.000'", extra: 'on update current_timestamp(3)' }));
  assert.deepEqual(zeroDefault.problems.map((p) => p.kind), ['default']);
  assert.equal(zeroDefault.needsCopy, false);
});

test('a nullable column is wrong, fixable, and needs a copy (after NULLs get the fixed value)', () => {
  const v = classifyColumn(col('drc_ts', 'timestamp(3)', { nullable: true }));
  assert.equal(v.state, 'wrong');
  assert.ok(v.problems.some((p) => p.kind === 'nullable'));
  assert.equal(v.refusal, undefined);
  assert.equal(v.needsCopy, true);
  assert.equal(v.nullable, true);
});

test('DATETIME(3) is refused: converting it depends on a time zone', () => {
  const v = classifyColumn(col('drc_ts', 'datetime(3)', { default: 'current_timestamp(3)', extra: 'on update current_timestamp(3)' }));
  assert.equal(v.state, 'wrong');
  assert.deepEqual(v.problems.map((p) => p.kind), ['type']);
  assert.match(v.refusal!, /time zone/);
});

test('other types, a finer precision and generated columns are refused', () => {
  assert.match(classifyColumn(col('drc_ts', 'bigint')).refusal!, /not a timestamp/);
  assert.match(classifyColumn(col('drc_ts', 'varchar(30)')).refusal!, /not a timestamp/);
  assert.match(classifyColumn(col('drc_ts', 'timestamp(6)', { default: 'current_timestamp(6)', extra: 'on update current_timestamp(6)' })).refusal!, /round every value/);
  assert.match(classifyColumn(col('drc_ts', 'timestamp(3)', { generated: 'virtual as (now(3))' })).refusal!, /generated/);
});

test('what an interrupted add leaves (constant default, no ON UPDATE) is recognised, quoted or not', () => {
  const maria = classifyColumn(col('drc_ts', 'timestamp(3)', { default: "'2026-11-23 20:00:00.000'" }));
  assert.equal(maria.fresh, true);
  assert.equal(maria.literalDefault, '2026-11-23 20:00:00.000');
  assert.equal(classifyColumn(col('drc_ts', 'timestamp(3)', { default: '2026-11-23 20:00:00.000' })).fresh, true);
  assert.equal(classifyColumn(col('drc_ts', 'timestamp(3)', { default: "'2026-11-23 20:00:00.000'", extra: 'on update current_timestamp(3)' })).fresh, false);
  assert.equal(literalOf('current_timestamp(3)'), null);
  assert.equal(literalOf(null), null);
});

// ---------------------------------------------------------------------------------------------
// the fixed value

test('the fixed value: now to the second, or a given UTC value normalised to milliseconds', () => {
  assert.equal(fixedValueAt(Date.UTC(2026, 10, 23, 20, 1, 2, 345)), '2026-11-23 20:01:02.000');
  assert.equal(parseFixedValue('2026-11-23 20:01:02'), '2026-11-23 20:01:02.000');
  assert.equal(parseFixedValue('2026-11-23T20:01:02.5Z'), '2026-11-23 20:01:02.500');
  assert.equal(parseFixedValue('2026-11-23 20:01:02.123'), '2026-11-23 20:01:02.123');
  for (const bad of ['2026-02-30 00:00:00', 'yesterday', '1969-12-31 23:59:59', '2038-01-19 03:14:08', '2026-11-23 24:00:00']) {
    assert.throws(() => parseFixedValue(bad), (e: unknown) => e instanceof EzError && e.exitCode === 2, bad);
  }
});

// ---------------------------------------------------------------------------------------------
// SQL

test('ADD COLUMN with the fixed literal, the DRC marker and an explicit algorithm', () => {
  assert.equal(
    inline(addColumnSql('shop', 'orders', 'drc_ts', '2026-11-23 20:00:00.000', 'INSTANT')),
    "/* ezctl-drc migrate drc-ts */ ALTER TABLE `shop`.`orders` ADD COLUMN `drc_ts` TIMESTAMP(3) NOT NULL DEFAULT '2026-11-23 20:00:00.000', ALGORITHM=INSTANT",
  );
  assert.match(inline(addColumnSql('shop', 'orders', 'drc_ts', '2026-11-23 20:00:00.000', 'INPLACE')), /, ALGORITHM=INPLACE, LOCK=NONE$/);
  assert.match(inline(addColumnSql('shop', 'orders', 'drc_ts', '2026-11-23 20:00:00.000', 'COPY')), /, ALGORITHM=COPY, LOCK=SHARED$/);
  assert.equal(
    inline(setLiteralDefaultSql('shop', 'orders', 'drc_ts', '2026-11-23 20:00:00.000', 'INSTANT')),
    "/* ezctl-drc migrate drc-ts */ ALTER TABLE `shop`.`orders` ALTER COLUMN `drc_ts` SET DEFAULT '2026-11-23 20:00:00.000', ALGORITHM=INSTANT",
  );
});

test('MODIFY COLUMN to the final definition keeps INVISIBLE and the comment (escaped)', () => {
  assert.equal(
    inline(defineColumnSql('shop', 'we`ird', 'drc_ts', { invisible: false, comment: null }, 'INSTANT')),
    '/* ezctl-drc migrate drc-ts */ ALTER TABLE `shop`.`we``ird` MODIFY COLUMN `drc_ts` TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3), ALGORITHM=INSTANT',
  );
  assert.equal(
    inline(defineColumnSql('shop', 't', 'drc_ts', { invisible: true, comment: "it's LWW" }, 'COPY')),
    "/* ezctl-drc migrate drc-ts */ ALTER TABLE `shop`.`t` MODIFY COLUMN `drc_ts` TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) INVISIBLE COMMENT 'it\\'s LWW', ALGORITHM=COPY, LOCK=SHARED",
  );
});

test('NULL fill and value copy: only rows still holding the fixed value, by key', () => {
  assert.equal(inline(fillNullsSql('shop', 't', 'drc_ts', '2026-11-23 20:00:00.000', 100)), "UPDATE `shop`.`t` SET `drc_ts` = '2026-11-23 20:00:00.000' WHERE `drc_ts` IS NULL LIMIT 100");
  const one = copyValuesSql('shop', 't', 'drc_ts', ['id'], [{ key: [1], ts: '2026-01-01 00:00:00.001' }, { key: [2], ts: '2026-01-01 00:00:00.002' }], '2026-11-23 20:00:00.000');
  assert.equal(
    inline(one),
    "UPDATE `shop`.`t` SET `drc_ts` = CASE WHEN (`id` = 1) THEN '2026-01-01 00:00:00.001' WHEN (`id` = 2) THEN '2026-01-01 00:00:00.002' ELSE `drc_ts` END WHERE `id` IN (1, 2) AND `drc_ts` = '2026-11-23 20:00:00.000'",
  );
  const two = copyValuesSql('shop', 't', 'drc_ts', ['a', 'b'], [{ key: [1, 'x'], ts: '2026-01-01 00:00:00.001' }], '2026-11-23 20:00:00.000');
  assert.equal(
    inline(two),
    "UPDATE `shop`.`t` SET `drc_ts` = CASE WHEN (`a` = 1 AND `b` = 'x') THEN '2026-01-01 00:00:00.001' ELSE `drc_ts` END WHERE ((`a` = 1 AND `b` = 'x')) AND `drc_ts` = '2026-11-23 20:00:00.000'",
  );
  assert.equal(inline(readValuesSql('shop', 't', 'drc_ts', ['a', 'b'], undefined, 500)), 'SELECT `a`, `b`, `drc_ts` FROM `shop`.`t` WHERE 1 ORDER BY `a`, `b` LIMIT 500');
  assert.equal(inline(readValuesSql('shop', 't', 'drc_ts', ['a', 'b'], [3, 'k'], 500)), "SELECT `a`, `b`, `drc_ts` FROM `shop`.`t` WHERE (`a` > 3 OR (`a` = 3 AND `b` > 'k')) ORDER BY `a`, `b` LIMIT 500");
});

// ---------------------------------------------------------------------------------------------
// planning

test('a table right in every zone needs nothing', () => {
  const p = planTable('shop.t', [zi('bj', [...base(), good()]), zi('sh', [...base(), good()])], pc);
  assert.equal(p.status, 'ok');
  assert.deepEqual(p.steps, []);
});

test('missing everywhere: add in every zone first, then the final definition in every zone', () => {
  const p = planTable('shop.t', [zi('bj', base()), zi('sh', base())], pc);
  assert.equal(p.status, 'change');
  assert.equal(p.donor, null);
  const steps = numberSteps([p]);
  assert.deepEqual(steps.map((s) => `${s.n} ${s.zone} ${s.kind} ${s.algorithms?.join('/')}`), [
    '1 bj add INSTANT/INPLACE/COPY',
    '2 sh add INSTANT/INPLACE/COPY',
    '3 bj define INSTANT/INPLACE/COPY',
    '4 sh define INSTANT/INPLACE/COPY',
  ]);
  const sql = stepSql(steps[0]!, 'drc_ts');
  assert.match(sql[0]!, /ADD COLUMN `drc_ts` TIMESTAMP\(3\) NOT NULL DEFAULT '2026-11-23 20:00:00.000', ALGORITHM=INSTANT;$/);
  assert.match(sql[1]!, /^-- if the server refuses INSTANT .*ALGORITHM=INPLACE, LOCK=NONE, then ALGORITHM=COPY, LOCK=SHARED$/);
});

test('present in one zone, missing in the other: the other adds it and receives its values under DRC\'s domain', () => {
  const p = planTable('shop.t', [zi('bj', [...base(), good()]), zi('sh', base())], pc);
  assert.equal(p.donor, 'bj');
  assert.deepEqual(p.receivers, ['sh']);
  const steps = numberSteps([p]);
  assert.deepEqual(steps.map((s) => `${s.zone} ${s.kind}`), ['sh add', 'sh copy-values', 'sh define']);
  const copy = steps[1]!;
  assert.equal(copy.from, 'bj');
  assert.deepEqual(copy.key, ['id']);
  assert.equal(copy.literal, pc.literal);
  assert.equal(copy.domain, 1001, 'logged under the domain DRC uses at sh for rows from bj');
  const sql = stepSql(copy, 'drc_ts');
  assert.equal(sql[0], 'SET SESSION gtid_domain_id = 1001;');
  assert.equal(sql.at(-1), 'SET SESSION gtid_domain_id = @@GLOBAL.gtid_domain_id;');
  assert.ok(sql.slice(1, -1).every((l) => l.startsWith('--')), 'the data-dependent part is described in comments');
});

test('a re-run after an interrupted add: the zone holding the literal receives the other zone\'s values', () => {
  const fresh = col('drc_ts', 'timestamp(3)', { default: "'2026-01-01 00:00:00.000'" });
  const p = planTable('shop.t', [zi('bj', [...base(), good()]), zi('sh', [...base(), fresh])], pc);
  const steps = numberSteps([p]);
  assert.deepEqual(steps.map((s) => `${s.zone} ${s.kind}`), ['sh copy-values', 'sh define']);
  assert.equal(steps[0]!.literal, '2026-01-01 00:00:00.000', 'rows holding the earlier run\'s value, not this run\'s');
});

test('the donor prefers a zone whose column is already right', () => {
  const ts0 = col('drc_ts', 'timestamp', { default: 'current_timestamp', extra: 'on update current_timestamp' });
  const p = planTable('shop.t', [zi('bj', [...base(), ts0]), zi('gz', base()), zi('sh', [...base(), good()])], pc);
  assert.equal(p.donor, 'sh');
  assert.deepEqual(p.receivers, ['gz']);
  assert.ok(p.notes.some((n) => /different precisions/.test(n)));
});

test('a nullable column: a fixed default meanwhile, NULLs to the fixed value, then the copying MODIFY', () => {
  const nullable = col('drc_ts', 'timestamp(3)', { nullable: true });
  const p = planTable('shop.t', [zi('bj', [...base(), nullable], { comment: 'lww' }), zi('sh', [...base(), nullable], { comment: 'lww' })], pc);
  const steps = numberSteps([p]);
  assert.deepEqual(steps.map((s) => `${s.zone} ${s.kind}`), ['bj literal-default', 'bj fill-nulls', 'sh literal-default', 'sh fill-nulls', 'bj define', 'sh define']);
  assert.deepEqual(steps.at(-1)!.algorithms, ['COPY']);
  assert.deepEqual(steps.at(-1)!.keep, { invisible: false, comment: 'lww' });
  assert.equal(steps[1]!.literal, pc.literal);
  assert.equal(steps[1]!.domain, 1002, 'at bj, under the domain DRC uses there for rows from sh');
});

test('refused: DATETIME in a zone; a column to copy with no primary key', () => {
  const dt = col('drc_ts', 'datetime(3)');
  const p = planTable('shop.t', [zi('bj', [...base(), dt]), zi('sh', [...base(), good()])], pc);
  assert.equal(p.status, 'refused');
  assert.match(p.refusals[0]!, /^bj: drc_ts datetime\(3\) NOT NULL: .*time zone/);
  assert.deepEqual(p.steps, []);
  const nokey = planTable('shop.t', [
    { zone: 'bj', shape: shape([...base(), good()], []), comment: null },
    { zone: 'sh', shape: shape(base(), []), comment: null },
  ], pc);
  assert.equal(nokey.status, 'refused');
  assert.match(nokey.refusals[0]!, /no primary key/);
  // missing everywhere without a key is fine: nothing to match
  const plain = planTable('shop.t', [{ zone: 'bj', shape: shape(base(), []), comment: null }, { zone: 'sh', shape: shape(base(), []), comment: null }], pc);
  assert.equal(plain.status, 'change');
});

test('a table absent in a zone is left alone there, with a note', () => {
  const p = planTable('shop.t', [zi('bj', base()), zi('sh', undefined)], pc);
  assert.deepEqual(p.zones.sh, { state: 'absent' });
  assert.deepEqual(numberSteps([p]).map((s) => `${s.zone} ${s.kind}`), ['bj add', 'bj define']);
  assert.match(p.notes[0]!, /absent in sh/);
});

test('steps are numbered across tables in the order they run', () => {
  const a = planTable('shop.a', [zi('bj', base()), zi('sh', base())], pc);
  const b = planTable('shop.b', [zi('bj', [...base(), good()]), zi('sh', base())], pc);
  assert.deepEqual(numberSteps([a, b]).map((s) => `${s.n} ${s.table} ${s.zone} ${s.kind}`), [
    '1 shop.a bj add', '2 shop.a sh add', '3 shop.a bj define', '4 shop.a sh define',
    '5 shop.b sh add', '6 shop.b sh copy-values', '7 shop.b sh define',
  ]);
});
