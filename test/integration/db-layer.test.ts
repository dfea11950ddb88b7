// The shared db layer against a real server: introspection, server and replica status, GTID
// positions and waiting, pools, quoting of hostile names, value fidelity.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { foreignKeysWhere, listTables, readShape, readShapes, rowKey } from '../../src/core/db/introspect.js';
import { serverInfo, replicaStatus, globalStatus, waitForGtid } from '../../src/core/db/server.js';
import { gtidCovers, parseMariaPos } from '../../src/core/db/gtid.js';
import { quoteId, quoteTable } from '../../src/core/db/quote.js';
import { pool } from '../../src/core/db/connect.js';
import { BinlogStream, type BinlogTx } from '../../src/core/binlog/stream.js';
import { ensureStateSchema } from '../../src/core/state/schema.js';

let sb: TestSandbox;

before(async () => {
  sb = await startSandbox({ zones: ['bj'], replicas: 1 });
  const db = await sb.db('bj-master');
  await db.exec('CREATE DATABASE shop');
  await db.exec(`CREATE TABLE shop.parent (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    code VARCHAR(20) NOT NULL, UNIQUE KEY uk_code (code),
    note TEXT NULL, total DECIMAL(12,2) NULL, doc JSON NULL, bin VARBINARY(8) NULL,
    drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
  ) ENGINE=InnoDB AUTO_INCREMENT=42`);
  await db.exec(`CREATE TABLE shop.child (
    parent_id INT UNSIGNED NOT NULL, line SMALLINT NOT NULL, qty INT NOT NULL,
    PRIMARY KEY (parent_id, line),
    CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES shop.parent (id) ON DELETE CASCADE
  ) ENGINE=InnoDB`);
  await db.exec('CREATE TABLE shop.nokey (a INT NULL, b INT NOT NULL, UNIQUE KEY u_a (a), UNIQUE KEY u_b (b))');
  await db.close();
});

after(async () => {
  await sb?.down();
});

test('listTables lists base tables of user schemas only', async () => {
  const db = await sb.db('bj-master');
  const all = await listTables(db);
  assert.deepEqual(all.map((t) => `${t.schema}.${t.table}`), ['shop.child', 'shop.nokey', 'shop.parent']);
  assert.deepEqual(await listTables(db, ['nothing']), []);
  await db.close();
});

test('readShape reads columns, keys, indexes with their parts and foreign keys; foreignKeysWhere finds the referencing side; rowKey picks the row key', async () => {
  const db = await sb.db('bj-master');
  const p = (await readShape(db, 'shop', 'parent'))!;
  assert.deepEqual(p.primaryKey, ['id']);
  const id = p.columns.find((c) => c.name === 'id')!;
  assert.equal(id.extra, 'auto_increment');
  assert.equal(id.columnType, 'int unsigned'); // display width normalized away
  const ts = p.columns.find((c) => c.name === 'drc_ts')!;
  assert.equal(ts.columnType, 'timestamp(3)');
  assert.match(ts.extra, /on update current_timestamp\(3\)/i);
  assert.equal(p.columns.find((c) => c.name === 'note')!.nullable, true);
  assert.deepEqual(p.indexes.map((i) => [i.name, i.unique, i.parts.map((x) => x.column)]), [['PRIMARY', true, ['id']], ['uk_code', true, ['code']]]);
  const referencedBy = await foreignKeysWhere(db, 'k.REFERENCED_TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME = ?', ['shop', 'parent']);
  assert.deepEqual(referencedBy.map((f) => ({ ...f })), [{ name: 'fk_parent', schema: 'shop', table: 'child', columns: ['parent_id'], refSchema: 'shop', refTable: 'parent', refColumns: ['id'], onUpdate: 'RESTRICT', onDelete: 'CASCADE' }]);
  const c = (await readShape(db, 'shop', 'child'))!;
  assert.deepEqual(c.primaryKey, ['parent_id', 'line']);
  assert.equal(c.foreignKeys[0]!.references, 'shop.parent');
  assert.equal(await readShape(db, 'shop', 'missing'), undefined);
  // one reader: a table read alone is the table read with its schema
  assert.deepEqual((await readShapes(db, (s) => s === 'shop')).get('shop.child'), c);
  // row key: the primary key, else a unique key whose columns are all NOT NULL
  assert.deepEqual(rowKey(p), { index: 'PRIMARY', columns: ['id'] });
  assert.deepEqual(rowKey((await readShape(db, 'shop', 'nokey'))!), { index: 'u_b', columns: ['b'] });
  await db.close();
});

test('hostile identifiers are quoted, values are placeholders, and values come back exactly', async () => {
  const db = await sb.db('bj-master');
  const schema = 'we`ird "db"';
  const table = "it's; DROP TABLE x --";
  await db.exec(`CREATE DATABASE ${quoteId(schema)}`);
  await db.exec(`CREATE TABLE ${quoteTable(schema, table)} (id BIGINT UNSIGNED PRIMARY KEY, d DECIMAL(30,10), f DOUBLE, t DATETIME(6), s VARCHAR(20), b VARBINARY(4))`);
  await db.exec(`INSERT INTO ${quoteTable(schema, table)} VALUES (?, ?, ?, ?, ?, ?)`, ['18446744073709551615', '12345678901234567890.0123456789', 0.1, '2026-02-03 04:05:06.123456', "o'neil \\ \"x\"", Buffer.from([0, 1, 255, 39])]);
  const row = (await db.one<any>(`SELECT * FROM ${quoteTable(schema, table)}`))!;
  assert.equal(row.id, '18446744073709551615');
  assert.equal(row.d, '12345678901234567890.0123456789');
  assert.equal(row.f, 0.1);
  assert.equal(row.t, '2026-02-03 04:05:06.123456');
  assert.equal(row.s, "o'neil \\ \"x\"");
  assert.deepEqual([...row.b], [0, 1, 255, 39]);
  const found = await listTables(db, [schema]);
  assert.deepEqual(found, [{ schema, table }]);
  await db.exec(`DROP DATABASE ${quoteId(schema)}`);
  await db.close();
});

test('serverInfo and replicaStatus describe master and replica', async () => {
  const m = await sb.db('bj-master');
  const r = await sb.db('bj-replica1');
  const mi = await serverInfo(m);
  assert.equal(mi.flavor, 'mariadb');
  assert.equal(mi.readOnly, false);
  assert.equal(mi.logBin, true);
  assert.equal(mi.binlogFormat, 'ROW');
  assert.equal(mi.gtidDomainId, 1);
  const ri = await serverInfo(r);
  assert.equal(ri.readOnly, true);
  assert.deepEqual(await replicaStatus(m, 'mariadb'), []);
  const rs = await replicaStatus(r, 'mariadb');
  assert.equal(rs.length, 1);
  assert.equal(rs[0]!.sourcePort, sb.node('bj-master').port);
  assert.equal(rs[0]!.usingGtid, 'Slave_Pos');
  const st = await globalStatus(m, ['Uptime', 'Threads_running', 'No_such_status']);
  assert.ok(Number(st.Uptime) >= 0);
  assert.ok(Number(st.Threads_running) >= 1);
  assert.equal(st.No_such_status, undefined);
  await m.close();
  await r.close();
});

test('waitForGtid returns once the replica has applied a master position, and times out when it cannot', async () => {
  const m = await sb.db('bj-master');
  const r = await sb.db('bj-replica1');
  await m.exec('INSERT INTO shop.parent (code) VALUES (?)', ['w1']);
  const pos = (await serverInfo(m)).gtidBinlogPos;
  assert.match(pos, /^1-101-\d+$/);
  assert.equal(await waitForGtid(r, 'mariadb', pos, 10), true);
  assert.ok(gtidCovers('mariadb', (await serverInfo(r)).gtidPosition, pos));

  await r.exec('STOP SLAVE SQL_THREAD');
  try {
    await m.exec('INSERT INTO shop.parent (code) VALUES (?)', ['w2']);
    const later = (await serverInfo(m)).gtidBinlogPos;
    assert.ok(parseMariaPos(later).get(1)!.seq > parseMariaPos(pos).get(1)!.seq);
    assert.equal(await waitForGtid(r, 'mariadb', later, 1), false);
  } finally {
    await r.exec('START SLAVE SQL_THREAD');
  }
  await m.close();
  await r.close();
});

test('a pool runs concurrent queries with the session time zone fixed to UTC', async () => {
  const n = sb.node('bj-master');
  const p = pool({ label: 'bj-master', host: n.host, port: n.port, user: 'ezctl', password: sb.adminPassword, passwordSource: 'test' }, { size: 3 });
  try {
    const rows = await Promise.all(Array.from({ length: 6 }, () => p.query('SELECT @@session.time_zone AS tz, SLEEP(0.05) AS s')));
    for (const [r] of rows) assert.equal((r as any[])[0].tz, '+00:00');
  } finally {
    await p.end();
  }
});

test('a binlog stream limited to some tables decodes only their rows, still delivers every transaction, and follows a change of the tables', async () => {
  const db = await sb.db('bj-master');
  const got: BinlogTx[] = [];
  const wanted = new Set(['parent']);
  let stream: BinlogStream | undefined;
  try {
    const from = String(await db.value('SELECT @@global.gtid_binlog_pos'));
    const n = sb.node('bj-master');
    stream = new BinlogStream({
      endpoint: { label: 'bj-master', host: n.host, port: n.port, user: 'ezctl', password: sb.adminPassword, passwordSource: 'test' },
      flavor: 'mariadb',
      from,
      serverId: 4242,
      decodeTable: (schema, table) => schema === 'shop' && wanted.has(table),
      onTx: (tx) => got.push(tx),
      onError: (e) => assert.fail(e),
    });
    await stream.start();
    await db.exec("INSERT INTO shop.parent (code) VALUES ('only-1')");
    await db.exec('INSERT INTO shop.nokey (a, b) VALUES (1, 1), (2, 2)');
    await db.exec('BEGIN');
    await db.exec("INSERT INTO shop.parent (code) VALUES ('only-2')");
    await db.exec('INSERT INTO shop.nokey (a, b) VALUES (3, 3)');
    await db.exec('COMMIT');
    let last = String(await db.value('SELECT @@global.gtid_binlog_pos'));
    await eventually(async () => got.some((t) => last.includes(t.gtid)), 10_000, 'the last transaction');
    // the filter is asked again at every table map: a table wanted from now on is decoded
    wanted.add('nokey');
    await db.exec('INSERT INTO shop.nokey (a, b) VALUES (4, 4)');
    last = String(await db.value('SELECT @@global.gtid_binlog_pos'));
    await eventually(async () => got.some((t) => last.includes(t.gtid)), 10_000, 'the last transaction');
  } finally {
    await stream?.stop();
    await db.close();
  }
  assert.equal(got.length, 4, 'every transaction arrives, the skipped table\'s too');
  assert.deepEqual(got.map((t) => t.changes.map((c) => `${c.table}:${c.after?.code ?? c.after?.a}`)), [['parent:only-1'], [], ['parent:only-2'], ['nokey:4']]);
});

test('ensureStateSchema creates what is missing and adds a column added since, even when every table is there', async () => {
  const db = await sb.db('bj-master');
  try {
    await ensureStateSchema(db);
    const cols = async () => (await db.query<{ c: string }>("SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '_ezctl' AND TABLE_NAME = 'osc_state'")).map((r) => r.c);
    assert.ok((await cols()).includes('change_tables'));
    // a server whose osc_state predates the column: every table is there, one column is not
    await db.exec('ALTER TABLE _ezctl.osc_state DROP COLUMN change_tables');
    await ensureStateSchema(db);
    assert.ok((await cols()).includes('change_tables'), 'the older table got its column');
    // and a missing table is created
    await db.exec('DROP TABLE _ezctl.osc_state');
    await ensureStateSchema(db);
    assert.ok((await cols()).includes('change_tables'));
  } finally {
    await db.close();
  }
});
