// ezctl dbus, pure parts: the move's declaration in the topology file (errors naming the path),
// table patterns resolved against catalogs (db.*, renames, a regex for shard names), the tables a
// DDL statement names, the 1:1 mappings and their refusals, the binlog retention warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ezErrorOf } from '../helpers/errors.js';
import { parseTopology } from '../../src/core/config/load.js';
import { ExitCode } from '../../src/core/exit.js';
import { parseFrom, parseTo, resolveEntry, type DbusMove } from '../../src/core/dbus/spec.js';
import { reverseMapping, tableMappings, type MoveShapes } from '../../src/core/dbus/plan.js';
import { ddlTables } from '../../src/core/dbus/run.js';
import { retentionText } from '../../src/core/dbus/status.js';
import type { TableShape } from '../../src/core/db/introspect.js';

const FILE = '/etc/ezctl/ezctl.yaml';
const BASE = `zones: [bj]
clusters:
  c1:
    zones:
      bj:
        master: {host: 10.0.0.1, port: 3306}
`;

test('topology dbus.moves: a valid move parses, createTarget defaults to true', () => {
  const t = parseTopology(`${BASE}dbus:
  moves:
    orders-out:
      sources: [{ label: bj, cluster: c1, zone: bj }]
      target: { label: new, dsn: "h=127.0.0.1,P=3310,u=ezctl" }
      tables:
        - { from: "shop.*" }
        - { from: "crm.users", to: "crm2.users", where: "region = 'cn'" }
        - { from: "bj:sales.orders_[0-9]+", to: "sales.orders", merge: { kind: shard-column, column: shard_id } }
`, FILE);
  const m = t.file.dbus!.moves['orders-out']!;
  assert.equal(m.createTarget, true);
  assert.equal(m.tables.length, 3);
  assert.deepEqual(m.tables[2]!.merge, { kind: 'shard-column', column: 'shard_id' });
});

test('topology dbus.moves: every problem named by its path, exit 2', () => {
  const e = ezErrorOf(() => parseTopology(`${BASE}dbus:
  moves:
    m1:
      sources: [{ label: a, cluster: c1 }, { label: a, dsn: "h=x,P=1" }]
      target: { label: a, dsn: "mysql://u:secret@h:1" , cluster: c1 }
      tables:
        - { form: "x.y" }
        - { from: "x.y", merge: { kind: hash, column: c } }
`, FILE));
  assert.equal(e.exitCode, ExitCode.badInput);
  const d = e.details.join('\n');
  assert.match(d, /dbus\.moves\.m1\.sources\.0\.zone: missing/);
  assert.match(d, /dbus\.moves\.m1\.sources\.1\.label: "a" names two sources/);
  assert.match(d, /dbus\.moves\.m1\.target\.dsn: .*a password in a connection string/);
  assert.doesNotMatch(d, /secret/);
  assert.match(d, /dbus\.moves\.m1\.tables\.0\.form: unknown field/);
  assert.match(d, /dbus\.moves\.m1\.tables\.0\.from: missing/);
  assert.match(d, /dbus\.moves\.m1\.tables\.1\.merge.*"hash" is not a merge kind/);
});

test('table patterns: [label:]db.table with globs or a regex for the table; targets db.table or db.*', () => {
  assert.deepEqual(parseFrom('shop.*'), { schema: 'shop', table: '*', exact: false });
  assert.deepEqual(parseFrom('bj:sales.orders_[0-9]+'), { label: 'bj', schema: 'sales', table: 'orders_[0-9]+', exact: false });
  assert.deepEqual(parseFrom('crm.users'), { schema: 'crm', table: 'users', exact: true });
  assert.throws(() => parseFrom('users'), /is not \[label:\]db\.table/);
  assert.throws(() => parseFrom('db.orders_[0-9'), /not a valid regular expression/);
  assert.deepEqual(parseTo('crm2.*'), { schema: 'crm2', table: undefined });
  assert.deepEqual(parseTo('crm2'), { schema: 'crm2', table: undefined });
  assert.deepEqual(parseTo('crm2.people'), { schema: 'crm2', table: 'people' });
  assert.equal(parseTo(undefined), undefined);
  assert.throws(() => parseTo('crm2.p*'), /not a pattern/);
});

test('entries resolved against the catalogs: a database, a rename, shards into one table', () => {
  const catalogs = new Map([
    ['bj', [{ schema: 'shop', table: 'a' }, { schema: 'shop', table: 'b' }, { schema: 'sales', table: 'orders_0' }, { schema: 'sales', table: 'orders_1' }, { schema: 'sales', table: 'orders_x' }]],
    ['sh', [{ schema: 'sales', table: 'orders_2' }, { schema: 'shop', table: 'a' }]],
  ]);
  const db = resolveEntry({ from: 'bj:shop.*', to: 'shop2.*' }, ['bj', 'sh'], catalogs);
  assert.deepEqual([...db.targets.keys()], ['shop2.a', 'shop2.b']);
  const merged = resolveEntry({ from: 'sales.orders_[0-9]+', to: 'sales.orders' }, ['bj', 'sh'], catalogs);
  assert.deepEqual([...merged.targets.keys()], ['sales.orders']);
  assert.deepEqual(merged.targets.get('sales.orders')!.sources.map((s) => `${s.source}:${s.table.table}`), ['bj:orders_0', 'bj:orders_1', 'sh:orders_2']);
  assert.equal(resolveEntry({ from: 'shop.zzz' }, ['bj'], catalogs).matched, 0);
  assert.throws(() => resolveEntry({ from: 'gz:shop.a' }, ['bj', 'sh'], catalogs), /"gz" is not a source of this move/);
});

test('the tables a DDL statement changes (qualified or in the default schema), none for other statements', () => {
  const d = (q: string, schema = 'other') => ddlTables(q, schema)?.map((t) => `${t.schema}.${t.table}`);
  assert.deepEqual(d('ALTER TABLE dd.x ADD COLUMN z INT NULL'), ['dd.x']);
  assert.deepEqual(d('ALTER ONLINE TABLE `x` ADD INDEX (v)', 'dd'), ['dd.x']);
  assert.deepEqual(d('ALTER TABLE other_t ADD COLUMN x INT', 'dd'), ['dd.other_t'], 'a column named like a moved table is not that table');
  assert.deepEqual(d('RENAME TABLE dd.x TO dd.x_old, dd.x_new TO dd.x'), ['dd.x', 'dd.x_old', 'dd.x_new', 'dd.x']);
  assert.deepEqual(d('/* c */ TRUNCATE TABLE `d d`.`t``1`'), ['d d.t`1']);
  assert.deepEqual(d('DROP TABLE IF EXISTS a, dd.b /* generated by server */'), ['other.a', 'dd.b']);
  assert.deepEqual(d('CREATE UNIQUE INDEX i ON dd.x (v)'), ['dd.x']);
  assert.deepEqual(d('DROP INDEX i ON x', 'dd'), ['dd.x']);
  assert.deepEqual(d('CREATE TABLE IF NOT EXISTS dd.y LIKE dd.x'), ['dd.y']);
  assert.equal(d('CREATE DATABASE foo'), undefined);
  assert.equal(d("INSERT INTO dd.x VALUES (1, 'ALTER TABLE dd.x')"), undefined);
  assert.equal(d('GRANT SELECT ON dd.x TO u'), undefined);
  assert.equal(d('OPTIMIZE TABLE dd.x'), undefined);
});

const shape = (schema: string, table: string, o: Partial<TableShape> = {}): TableShape => ({
  schema, table, engine: 'InnoDB', collation: 'utf8mb4_general_ci', rowsEstimate: 10,
  columns: ['id', 'v', 'g'].map((name, i) => ({ name, position: i + 1, dataType: 'int', columnType: 'int', serverType: 'int(11)', nullable: name !== 'id', default: null, charset: null, collation: null, generated: name === 'g' ? 'virtual as (v + 1)' : null, extra: '', comment: '' })),
  primaryKey: ['id'], indexes: [{ name: 'PRIMARY', unique: true, type: 'BTREE', parts: [{ column: 'id', subPart: null, descending: false }], visible: true }], foreignKeys: [],
  ...o,
});

test('1:1 mappings: every stored column by name, keyed by the row key; no key, a missing target column, a merge of tables not found: refusals', () => {
  const move: DbusMove = {
    name: 'm', createTarget: true, sources: [{ label: 'bj' }], target: { label: 'new' },
    tables: [
      { target: { schema: 'd2', table: 't' }, sources: [{ source: 'bj', table: { schema: 'd', table: 't' } }] },
      { target: { schema: 'd', table: 'nokey' }, sources: [{ source: 'bj', table: { schema: 'd', table: 'nokey' } }] },
      { target: { schema: 'd', table: 'all' }, sources: [{ source: 'bj', table: { schema: 'd', table: 'a0' } }, { source: 'bj', table: { schema: 'd', table: 'a1' } }], declaredAt: 'dbus.moves.m.tables.2' },
      { target: { schema: 'd', table: 'old' }, sources: [{ source: 'bj', table: { schema: 'd', table: 'old' } }] },
    ],
  };
  const shapes: MoveShapes = {
    sources: new Map([['bj', new Map([
      ['d.t', shape('d', 't')],
      ['d.nokey', shape('d', 'nokey', { primaryKey: [], indexes: [] })],
      ['d.old', shape('d', 'old')],
    ])]]),
    target: new Map([['d.old', shape('d', 'old', { columns: shape('d', 'old').columns.filter((c) => c.name !== 'v') })]]),
  };
  const r = tableMappings(move, shapes);
  assert.deepEqual(r.mappings[0], { label: 'bj', source: { schema: 'd', table: 't' }, target: { schema: 'd2', table: 't' }, columns: [{ from: 'id', to: 'id' }, { from: 'v', to: 'v' }], key: ['id'] });
  assert.deepEqual(reverseMapping({ ...r.mappings[0]!, columns: [{ from: 'id', to: 'uid' }, { from: 'v', to: 'v' }] }, 'new'), { label: 'new', source: { schema: 'd2', table: 't' }, target: { schema: 'd', table: 't' }, columns: [{ from: 'uid', to: 'id' }, { from: 'v', to: 'v' }], key: ['uid'] });
  assert.equal(r.problems.length, 3, r.problems.join('\n'));
  assert.match(r.problems[0]!, /bj:d\.nokey: no PRIMARY KEY or UNIQUE key of NOT NULL columns/);
  assert.match(r.problems[1]!, /bj:d\.a0 \(dbus\.moves\.m\.tables\.2\): not found on the source/);
  assert.match(r.problems[2]!, /d\.old: the target table has no column v/);
});

test('binlog retention: no warning far from the purge or without expiry; a warning near it and past it', () => {
  const day = 86_400;
  const now = Date.parse('2026-12-04T12:00:00Z');
  assert.equal(retentionText(0, now - 10 * day * 1000, now), undefined);
  assert.equal(retentionText(7 * day, now - 3600_000, now), undefined);
  assert.match(retentionText(7 * day, now - 6 * day * 1000, now)!, /may be purged in about 1d|may be purged in about 24h/);
  assert.match(retentionText(3600, now - 3000_000, now)!, /may be purged in about/);
  assert.match(retentionText(3600, now - 4000_000, now)!, /the next purge may remove it/);
});

test('index builds: one at a time in the order queued, each target table once; the first failure stops the rest and is thrown at the end', async () => {
  const { IndexBuildQueue } = await import('../../src/core/dbus/run.js');
  const t = (table: string) => ({ target: `d.${table}`, schema: 'd', table, indexes: [] });
  const log: string[] = [];
  let running = 0;
  const q = new IndexBuildQueue(async (x) => {
    running++;
    assert.equal(running, 1, 'never two builds at once');
    log.push(`start ${x.table}`);
    await new Promise((r) => setTimeout(r, 5));
    log.push(`end ${x.table}`);
    running--;
    if (x.table === 'bad') throw new Error('lock wait');
  });
  q.queue(t('a'));
  q.queue(t('b'));
  q.queue(t('a')); // queued again (a table copied earlier, queued at the end): built once
  await q.settle();
  assert.deepEqual(log, ['start a', 'end a', 'start b', 'end b']);
  q.queue(t('bad'));
  q.queue(t('c'));
  await assert.rejects(q.done(), /lock wait/);
  assert.deepEqual(log.slice(4), ['start bad', 'end bad'], 'c is not started after a failure');
});
