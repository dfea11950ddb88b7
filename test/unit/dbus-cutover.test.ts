// The pure parts of dbus cutover/rollback: the fence's trigger names and what its body admits, the
// sides of a move (each source's fenced tables, the target's), which moves cannot be streamed back (a filtered one, a merge without a rule), and the route record's choice of the newest version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fenceTriggerNames, fenceMessage, fenceStatements } from '../../src/core/dbus/fence.js';
import { sourceTables, targetTables, reverseProblems, reverseStreamName } from '../../src/core/dbus/sides.js';
import { newestRoute, writesGoTo, type DbusRoute } from '../../src/core/dbus/route.js';
import type { DbusMove } from '../../src/core/dbus/spec.js';

test('fence triggers: three per table, short, distinct between tables and schemas', () => {
  const a = fenceTriggerNames({ schema: 'shop', table: 'orders' });
  const b = fenceTriggerNames({ schema: 'shop', table: 'orders2' });
  const c = fenceTriggerNames({ schema: 'shop2', table: 'orders' });
  assert.deepEqual(a.map((x) => x.event), ['INSERT', 'UPDATE', 'DELETE']);
  const all = [...a, ...b, ...c].map((x) => x.name);
  assert.equal(new Set(all).size, 9);
  for (const n of all) assert.ok(n.length <= 64 && /^ezctl_fence_[0-9a-f]{12}_[iud]$/.test(n), n);
  const long = 'x'.repeat(64);
  assert.ok(fenceTriggerNames({ schema: long, table: long }).every((x) => x.name.length <= 64));
});

test('fence statements: the move and the message are values (escaped by the client), the names quoted; the message fits SIGNAL (128)', () => {
  const s = fenceStatements("it's", { schema: 'a`b', table: 't' }, 'is fenced');
  assert.equal(s.length, 3);
  assert.match(s[0]!.sql, /^CREATE TRIGGER IF NOT EXISTS `a``b`\.`ezctl_fence_[0-9a-f]{12}_i` BEFORE INSERT ON `a``b`\.`t` FOR EACH ROW IF COALESCE\(@ezctl_dbus_apply, ''\) <> \? THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = \?; END IF$/);
  assert.deepEqual(s[0]!.params[0], "it's");
  assert.ok(fenceMessage('m'.repeat(100), { schema: 'd', table: 't' }, 'w'.repeat(100)).length <= 128);
});

const move: DbusMove = {
  name: 'mv',
  sources: [{ label: 'a', dsn: 'h=h1' }, { label: 'b', dsn: 'h=h2' }],
  target: { label: 'n', dsn: 'h=h3' },
  createTarget: true,
  tables: [
    { target: { schema: 's', table: 'x' }, sources: [{ source: 'a', table: { schema: 's', table: 'x' } }] },
    { target: { schema: 's2', table: 'y' }, sources: [{ source: 'b', table: { schema: 's', table: 'y_old' } }] },
  ],
};

test('sides: each source fences its own tables, the target the targets; a merge without a rule or a filter cannot be streamed back (a merge with a rule can)', () => {
  assert.deepEqual(Object.fromEntries(sourceTables(move)), { a: [{ schema: 's', table: 'x' }], b: [{ schema: 's', table: 'y_old' }] });
  assert.deepEqual(targetTables(move), [{ schema: 's', table: 'x' }, { schema: 's2', table: 'y' }]);
  assert.deepEqual(reverseProblems(move), []);
  const merge: DbusMove = { ...move, tables: [{ target: { schema: 's', table: 'o' }, sources: [{ source: 'a', table: { schema: 's', table: 'o_0' } }, { source: 'b', table: { schema: 's', table: 'o_1' } }], merge: { kind: 'shard-column', column: 'shard' } }] };
  assert.deepEqual(reverseProblems(merge), []);
  const ruleless: DbusMove = { ...merge, tables: [{ ...merge.tables[0]!, merge: undefined }] };
  assert.match(reverseProblems(ruleless)[0]!, /merge of 2 source tables without a merge rule/);
  const filtered: DbusMove = { ...move, tables: [{ ...move.tables[0]!, where: "region = 'cn'" }] };
  assert.match(reverseProblems(filtered)[0]!, /WHERE region = 'cn'/);
  assert.equal(reverseStreamName('mv', 'a'), 'dbus-reverse:mv:a');
});

test('route record: the newest version wins; writes go to the home (the source a table came from, or the target), waiting while blocked', () => {
  const r = (version: number, home: DbusRoute['home'], state: DbusRoute['state'] = 'active'): DbusRoute => ({ move: 'mv', version, home, state, target: { label: 'n', host: 'h3', port: 3 }, sources: [{ label: 'a', host: 'h1', port: 1 }, { label: 'b', host: 'h2', port: 2 }], job: null, reason: '' });
  assert.equal(newestRoute([r(2, 'sources'), undefined, r(3, 'target'), r(1, 'sources')])?.version, 3);
  assert.equal(newestRoute([undefined]), undefined);
  assert.deepEqual(writesGoTo(r(1, 'sources'), 'b'), { server: { label: 'b', host: 'h2', port: 2 }, wait: false });
  assert.deepEqual(writesGoTo(r(1, 'target', 'blocked'), 'b'), { server: { label: 'n', host: 'h3', port: 3 }, wait: true });
});

test('the plans: one point of no return, the fence before the final positions, the reverse stream before the flip, the forward job ended before the target takes writes', async () => {
  const { cutoverPlan } = await import('../../src/core/dbus/cutover.js');
  const { rollbackPlan } = await import('../../src/core/dbus/rollback.js');
  const { validatePlan } = await import('../../src/core/steps/engine.js');
  const side = (label: string) => ({ ref: { label, dsn: `h=${label}` }, host: label, port: 1, tables: [{ schema: 's', table: 't' }] });
  const p = { move: 'mv', topologyPath: '/nonexistent.yaml', sources: [side('a')], target: side('n'), routeVersion: 0, targetFencedBefore: false, sourcesFencedBefore: false, lockWaitMs: 3000, timeoutMs: 30000, force: false };
  const ctx = {} as never;
  const cut = cutoverPlan(ctx, p, 'j');
  validatePlan(cut);
  const names = cut.steps.map((s) => s.name);
  assert.deepEqual(names, ['prepare-reverse', 'block-routes', 'fence-sources', 'final-positions', 'wait-applied', 'verify', 'fence-target', 'reverse-stream', 'flip', 'end-forward', 'unfence-target', 'routes-everywhere']);
  assert.equal(cut.steps.find((s) => s.pointOfNoReturn)?.name, 'flip');
  const back = rollbackPlan(ctx, p, 'j');
  validatePlan(back);
  assert.deepEqual(back.steps.map((s) => s.name), ['block-routes', 'fence-target', 'final-position', 'reverse-running', 'drain-reverse', 'verify', 'flip', 'unfence-sources', 'stop-reverse', 'routes-everywhere']);
  assert.equal(back.kind, 'dbus-rollback');
  assert.equal(cut.kind, 'dbus-cutover');
});
