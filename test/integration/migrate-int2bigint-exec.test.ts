// `ezctl migrate int2bigint --execute` against a real two-zone sandbox with DRC running: an INT
// primary key with a child foreign key (ON DELETE CASCADE) is widened in every zone under writes
// that insert, update and delete parents (cascading to children); afterwards every node has the
// new types, the child's foreign key references the new parent, the old tables hold no foreign
// key, no child is orphaned, and the zones are identical. And the multi-table cut-over holds when
// the RENAME is held up between two tables of the family: no write reaches an original.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { EZCTL, show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { writeUntilStopped } from '../helpers/writer.js';
import { drcStart, drcStop, drcWaitAll, sqlOn } from '../helpers/drc.js';
import type { Db } from '../../src/core/db/connect.js';

let sb: TestSandbox;
let pid: number | undefined;
const ZONES = ['bj', 'sh'];
const flagDir = mkdtempSync(join(tmpdir(), 'ezctl-i2b-'));
const TS = 'drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)';

async function withDb<T>(node: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await sb.db(node);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

const columnType = (node: string, table: string, column: string) =>
  withDb(node, (db) => db.value<string>('SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?', ['shop', table, column]));

const foreignKeys = (node: string) =>
  withDb(node, (db) => db.query<{ t: string; r: string }>("SELECT TABLE_NAME AS t, REFERENCED_TABLE_NAME AS r FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = 'shop' ORDER BY 1, 2"));

const tables = (node: string) =>
  withDb(node, async (db) => (await db.query<{ t: string }>("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop' ORDER BY 1")).map((r) => r.t));

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 1 });
  for (const node of ['bj-master', 'sh-master']) {
    await sqlOn(sb, node,
      'CREATE DATABASE shop',
      // far up its range, so the default threshold plans it (and only it)
      `CREATE TABLE shop.accounts (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL, ${TS}) AUTO_INCREMENT = 3000000000`,
      `CREATE TABLE shop.payments (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, account_id INT UNSIGNED NOT NULL, amount DECIMAL(10,2) NOT NULL, ${TS},
         CONSTRAINT fk_payments_account FOREIGN KEY (account_id) REFERENCES shop.accounts (id) ON DELETE CASCADE)`,
      `CREATE TABLE shop.labels (id INT NOT NULL PRIMARY KEY, label VARCHAR(20) NOT NULL, ${TS})`,
      `CREATE TABLE shop.labels_map (label_id INT NOT NULL, item INT NOT NULL, ${TS}, PRIMARY KEY (label_id, item),
         CONSTRAINT fk_labels_map_label FOREIGN KEY (label_id) REFERENCES shop.labels (id) ON DELETE CASCADE)`,
    );
  }
  // rows written in bj reach sh through DRC
  pid = await drcStart(sb);
  await sqlOn(sb, 'bj-master',
    "INSERT INTO shop.accounts (name) SELECT CONCAT('a', seq) FROM shop.seq_1_to_2000",
    'INSERT INTO shop.payments (account_id, amount) SELECT a.id, s.seq FROM shop.accounts a JOIN shop.seq_1_to_3 s',
    "INSERT INTO shop.labels (id, label) SELECT seq, CONCAT('l', seq) FROM shop.seq_1_to_300",
    'INSERT INTO shop.labels_map (label_id, item) SELECT l.id, s.seq FROM shop.labels l JOIN shop.seq_1_to_5 s',
  );
  await drcWaitAll(sb, ZONES, '60s');
});

after(async () => {
  if (sb) await drcStop(sb, pid);
  await sb?.down();
  rmSync(flagDir, { recursive: true, force: true });
});

/** Writes like an application's in one zone until stopped: new accounts with payments, payment updates, account deletes (cascading). */
function writer(node: string) {
  return writeUntilStopped(() => sb.db(node), async (db, n) => {
    await db.exec('BEGIN');
    const r = await db.exec('INSERT INTO shop.accounts (name) VALUES (?)', [`w${n}`]);
    await db.exec('INSERT INTO shop.payments (account_id, amount) VALUES (?, 1), (?, 2)', [r.insertId, r.insertId]);
    await db.exec('UPDATE shop.payments SET amount = amount + 1 WHERE account_id = (SELECT MIN(id) FROM shop.accounts)');
    await db.exec('COMMIT');
    // a zone deletes only accounts it created (its ids are of its own parity): no conflict between zones
    if (n % 3 === 0) await db.exec('DELETE FROM shop.accounts WHERE id = ?', [r.insertId]);
  });
}

test('the plan: the parent with its child, nothing changed', async () => {
  const r = await sb.run(['--json', 'migrate', 'int2bigint', '--tables', 'shop.*']);
  assert.equal(r.code, 0, show(r));
  const rep = r.json();
  assert.equal(rep.families.length, 1, JSON.stringify(rep.families));
  assert.deepEqual(rep.families[0].tables.map((t: any) => t.table), ['accounts', 'payments']);
  assert.equal(await columnType('bj-master', 'accounts', 'id'), 'int(10) unsigned');
});

test('--execute widens the parent key and its child under writes in both zones: new types everywhere, foreign key on the new parent, no orphan, zones identical', async () => {
  const writers = [writer('bj-master'), writer('sh-master')];
  await new Promise((res) => setTimeout(res, 500));
  const r = await sb.run(['--json', 'migrate', 'int2bigint', '--tables', 'shop.*', '--execute', '--chunk-time', '20ms']);
  await new Promise((res) => setTimeout(res, 500));
  const w = await Promise.all(writers.map((x) => x.stop()));
  assert.equal(r.code, 0, show(r));
  for (const x of w) assert.deepEqual(x.errors, [], 'the application saw no error');
  assert.ok(w.every((x) => x.n > 5), `the writers wrote: ${w.map((x) => x.n)}`);
  const run = r.json();
  assert.deepEqual(run.executed.map((e: any) => e.tables), [['shop.accounts', 'shop.payments']]);
  for (const node of ['bj-master', 'sh-master', 'bj-replica1', 'sh-replica1']) {
    assert.equal(await columnType(node, 'accounts', 'id'), 'bigint(20) unsigned', node);
    assert.equal(await columnType(node, 'payments', 'account_id'), 'bigint(20) unsigned', node);
    assert.equal(await columnType(node, 'payments', 'id'), 'int(11)', `${node}: a column not planned is kept`);
  }
  for (const node of ['bj-master', 'sh-master']) {
    // the new child references the new parent; the old tables are kept, with no foreign key
    assert.deepEqual(await foreignKeys(node), [{ t: 'labels_map', r: 'labels' }, { t: 'payments', r: 'accounts' }], node);
    assert.deepEqual((await tables(node)).filter((t) => t.includes('_ez')), ['accounts_ezdel', 'payments_ezdel'], node);
    const orphans = await withDb(node, (db) => db.value('SELECT COUNT(*) FROM shop.payments p LEFT JOIN shop.accounts a ON a.id = p.account_id WHERE a.id IS NULL'));
    assert.equal(Number(orphans), 0, `${node}: every cascade of a deleted account reached the new child`);
    // and the application's new rows land in the new tables with the foreign key enforced
    await assert.rejects(withDb(node, (db) => db.exec('INSERT INTO shop.payments (account_id, amount) VALUES (1, 1)')), /foreign key constraint fails/);
  }
  await drcWaitAll(sb, ZONES, '60s');
  const check = await sb.run(['check', 'full', '--tables', 'shop.*']);
  assert.equal(check.code, 0, show(check));
  for (const node of ['bj-master', 'sh-master']) await sqlOn(sb, node, 'DROP TABLE shop.payments_ezdel', 'DROP TABLE shop.accounts_ezdel');
});

test('a family cut-over held up between its tables (a session reads a ghost) lets no write reach an original: one attempt, nothing lost', async () => {
  // labels.id far up its range; no AUTO_INCREMENT, so the cut-over alters no ghost the holder holds
  await sqlOn(sb, 'bj-master', "INSERT INTO shop.labels (id, label) VALUES (2000000000, 'high')");
  await drcWaitAll(sb, ZONES, '60s');
  const flag = join(flagDir, 'hold-copy');
  writeFileSync(flag, '');
  const job = sb.run(['--json', 'migrate', 'int2bigint', '--tables', 'shop.labels,shop.labels_map', '--execute', '--throttle-flag-file', flag, '--cut-over-lock-timeout', '5']);
  await eventually(async () => (await tables('bj-master')).includes('labels_ezgho'), 30_000, 'the ghosts');
  // and their foreign key to each other, added once both have their new shape: the ALTER giving
  // the parent's ghost its shape waits on any session that has read it, as the holder below does
  // until the end (a holder that came in between the CREATE and that ALTER stopped both)
  await eventually(() => withDb('bj-master', async (db) => Number(await db.value(
    "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = 'shop' AND TABLE_NAME = 'labels_map_ezgho' AND REFERENCED_TABLE_NAME = 'labels_ezgho'",
  )) === 1), 30_000, "the ghosts' foreign key");
  // The RENAME takes its locks in name order: labels, labels_ezdel, labels_ezgho, labels_map, then
  // the sentry labels_map_ezcut. A session reading the parent's ghost holds it up after the unlock,
  // between labels and labels_map, and labels_map is open to the writer meanwhile (a child's
  // insert needs no metadata lock on its parent; a parent's would wait for its child).
  const holder = await sb.db('bj-master');
  await holder.exec('BEGIN');
  await holder.value('SELECT COUNT(*) FROM shop.labels_ezgho');
  const inserted: number[] = [];
  let on = true;
  let writeError: unknown;
  const writes = (async () => {
    const db = await sb.db('bj-master');
    try {
      for (let item = 1000; on; item++) {
        await db.exec('INSERT INTO shop.labels_map (label_id, item) VALUES (1, ?)', [item]);
        inserted.push(item);
        await new Promise((res) => setTimeout(res, 3));
      }
    } catch (e) {
      writeError = e;
    } finally {
      await db.close();
    }
  })();
  try {
    rmSync(flag, { force: true });
    // the RENAME queued (behind the lock, then behind the holder), the sentry still there
    await eventually(async () => {
      if (!(await tables('bj-master')).includes('labels_map_ezcut')) return false;
      return withDb('bj-master', async (db) => Number(await db.value("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE%labels%' AND STATE LIKE '%metadata lock%'")) === 1);
    }, 120_000, 'the RENAME queued').catch(async (e) => {
      throw new Error(`${(e as Error).message}; the job: ${show(await job)}`);
    });
    await new Promise((res) => setTimeout(res, 1000));
  } finally {
    await holder.exec('COMMIT');
    await holder.close();
  }
  const r = await job;
  on = false;
  await writes;
  assert.equal(writeError, undefined);
  assert.equal(r.code, 0, show(r));
  const executed = r.json().executed;
  // the tables are let go one at a time behind the RENAME: the writer waits, nothing sneaks in
  assert.equal(executed[0].cutOverAttempts, 1, JSON.stringify(executed));
  const have = new Set((await withDb('bj-master', (db) => db.query<{ item: number }>('SELECT item FROM shop.labels_map WHERE label_id = 1 AND item >= 1000'))).map((x) => Number(x.item)));
  const lost = inserted.filter((i) => !have.has(i));
  assert.ok(inserted.length > 0);
  assert.deepEqual(lost, [], `${lost.length} of ${inserted.length} acknowledged inserts are not in the new table`);
  assert.equal(await columnType('bj-master', 'labels_map', 'label_id'), 'bigint(20)');
  await drcWaitAll(sb, ZONES, '60s');
  const check = await sb.run(['check', 'full', '--tables', 'shop.*']);
  assert.equal(check.code, 0, show(check));
});

test('kill -9 during a family\'s copy, then --execute --resume: the change completes, nothing lost, the originals never damaged', async () => {
  for (const node of ['bj-master', 'sh-master']) {
    await sqlOn(sb, node,
      `CREATE TABLE shop.owners (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL, ${TS})`,
      `CREATE TABLE shop.pets (id INT NOT NULL PRIMARY KEY, owner_id INT NOT NULL, weight INT NOT NULL, ${TS},
         CONSTRAINT fk_pets_owner FOREIGN KEY (owner_id) REFERENCES shop.owners (id) ON DELETE CASCADE)`,
    );
  }
  await sqlOn(sb, 'bj-master',
    "INSERT INTO shop.owners (id, name) SELECT seq, CONCAT('o', seq) FROM shop.seq_1_to_20000",
    "INSERT INTO shop.owners (id, name) VALUES (2100000000, 'high')",
    'INSERT INTO shop.pets (id, owner_id, weight) SELECT seq, 1 + seq % 20000, seq % 97 FROM shop.seq_1_to_100000',
  );
  await drcWaitAll(sb, ZONES, '60s');
  const args = ['migrate', 'int2bigint', '--tables', 'shop.owners,shop.pets', '--execute', '--chunk-time', '1ms'];
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
  const ctl = (cmd: string) => sb.run(['--json', 'osc', cmd, '--table', 'shop.owners']);
  await eventually(async () => {
    const st = await ctl('status');
    return st.code === 0 && st.json().zones.some((z: any) => z.rowsCopied > 0 && z.phase === 'copying');
  }, 30_000, 'the copy to start');
  assert.equal((await ctl('pause')).code, 0);
  await new Promise((r) => setTimeout(r, 1500));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  for (const node of ['bj-master', 'sh-master']) {
    const t = await tables(node);
    assert.ok(t.includes('owners_ezgho') && t.includes('pets_ezgho'), `${node}: the ghosts are left for --resume: ${t}`);
    assert.equal(await columnType(node, 'owners', 'id'), 'int(11)', `${node}: the original is untouched`);
  }
  // writes go on meanwhile: a cascading delete, an update, new rows; the resumed change must carry them
  await sqlOn(sb, 'bj-master', 'DELETE FROM shop.owners WHERE id = 7', 'UPDATE shop.pets SET weight = -1 WHERE id IN (3, 99999)', 'INSERT INTO shop.pets (id, owner_id, weight) VALUES (100001, 8, 1)');
  await sqlOn(sb, 'sh-master', "INSERT INTO shop.owners (id, name) VALUES (30000, 'sh')", 'INSERT INTO shop.pets (id, owner_id, weight) VALUES (100002, 30000, 2)');
  const plain = await sb.run(['--json', ...args]);
  assert.equal(plain.code, 4, `without --resume the left ghosts are refused: ${show(plain)}`);
  const resumed = await sb.run(['--json', ...args, '--resume']);
  assert.equal(resumed.code, 0, show(resumed));
  for (const node of ['bj-master', 'sh-master']) {
    assert.equal(await columnType(node, 'owners', 'id'), 'bigint(20)', node);
    assert.equal(await columnType(node, 'pets', 'owner_id'), 'bigint(20)', node);
    assert.deepEqual((await foreignKeys(node)).filter((f) => f.t === 'pets'), [{ t: 'pets', r: 'owners' }], node);
    await withDb(node, async (db) => {
      assert.equal(Number(await db.value('SELECT COUNT(*) FROM shop.pets WHERE owner_id = 7')), 0, `${node}: the cascade of owner 7`);
      assert.equal(Number(await db.value('SELECT COUNT(*) FROM shop.pets p LEFT JOIN shop.owners o ON o.id = p.owner_id WHERE o.id IS NULL')), 0, `${node}: no orphan`);
      // the new tables hold what the old ones held at the cut-over
      const diff = await db.value('SELECT COUNT(*) FROM shop.pets_ezdel o LEFT JOIN shop.pets n USING (id) WHERE n.id IS NULL OR n.weight <> o.weight OR n.owner_id <> o.owner_id');
      assert.equal(Number(diff), 0, node);
      assert.equal(Number(await db.value('SELECT COUNT(*) FROM shop.pets')), Number(await db.value('SELECT COUNT(*) FROM shop.pets_ezdel')), node);
      assert.equal(Number(await db.value('SELECT weight FROM shop.pets WHERE id = 99999')), -1, node);
    });
  }
  await drcWaitAll(sb, ZONES, '60s');
  const check = await sb.run(['check', 'full', '--tables', 'shop.*']);
  assert.equal(check.code, 0, show(check));
});
