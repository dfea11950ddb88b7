// migrate int2bigint on real servers: two zones, each with its own ids (created separately, as an
// application does it: bj set its accounts' AUTO_INCREMENT far ahead, sh stored a large id), a
// parent accounts.id (INT UNSIGNED) with a child payments.account_id (ON DELETE CASCADE), a table
// pointing at payments, and a TINYINT key near its limit. The report takes each maximum over the
// zones, the plan widens the parent with its child (signs kept) and rebuilds the table pointing
// in, most urgent family first; every ALTER parses on the server; nothing is changed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { show } from '../helpers/cli.js';
import { startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { sqlOn } from '../helpers/drc.js';

let sb: TestSandbox;
const MASTERS = ['bj-master', 'sh-master'];
const TABLES = ['accounts', 'payments', 'refunds', 'small'];

const SCHEMA = [
  'CREATE DATABASE shop',
  'CREATE TABLE shop.accounts (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL)',
  "CREATE TABLE shop.payments (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, account_id INT UNSIGNED NOT NULL COMMENT 'the payer''s account', amount DECIMAL(10,2) NOT NULL, CONSTRAINT payments_account FOREIGN KEY (account_id) REFERENCES shop.accounts (id) ON DELETE CASCADE)",
  'CREATE TABLE shop.refunds (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, payment_id INT NOT NULL, CONSTRAINT refunds_payment FOREIGN KEY (payment_id) REFERENCES shop.payments (id))',
  'CREATE TABLE shop.small (id TINYINT NOT NULL PRIMARY KEY, label VARCHAR(10))',
];

async function showCreate(node: string): Promise<string[]> {
  const db = await sb.db(node);
  try {
    const out: string[] = [];
    for (const t of TABLES) {
      const row = await db.one<Record<string, string>>(`SHOW CREATE TABLE shop.${t}`);
      out.push(row!['Create Table']!);
    }
    return out;
  } finally {
    await db.close();
  }
}

before(async () => {
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  for (const m of MASTERS) await sqlOn(sb, m, ...SCHEMA);
  // bj: few rows, but its accounts' AUTO_INCREMENT jumped to 2e9 (ids handed out count as used)
  await sqlOn(sb, 'bj-master', 'USE shop', // the seq_1_to_N tables live in the current database
    "INSERT INTO shop.accounts (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    'ALTER TABLE shop.accounts AUTO_INCREMENT = 2000000000',
    'INSERT INTO shop.payments (account_id, amount) VALUES (1, 10), (2, 20)',
    'INSERT INTO shop.refunds (payment_id) VALUES (1)',
    'INSERT INTO shop.small (id) SELECT seq FROM seq_1_to_100');
  // sh: a large stored account id, payments far ahead, small nearer its limit
  await sqlOn(sb, 'sh-master', 'USE shop',
    "INSERT INTO shop.accounts (id, name) VALUES (1, 'a'), (1000000000, 'big')",
    'INSERT INTO shop.payments (id, account_id, amount) VALUES (100000000, 1000000000, 5)',
    'INSERT INTO shop.refunds (payment_id) VALUES (100000000)',
    'INSERT INTO shop.small (id) SELECT seq FROM seq_1_to_120');
});

after(async () => {
  await sb?.down();
});

const near = (a: number, b: number) => Math.abs(a - b) < 1e-6;

test('report and plan: maxima over zones, shares used, families by urgency, the child with its parent, signs kept; nothing changed', async () => {
  const before = await Promise.all(MASTERS.map(showCreate));
  const r = await sb.run(['--json', 'migrate', 'int2bigint', '--threshold', '0.3']);
  assert.equal(r.code, 0, show(r));
  const rep = r.json();
  assert.equal(rep.threshold, 0.3);
  assert.deepEqual(rep.zones, ['bj', 'sh']);
  const byName = Object.fromEntries(rep.columns.map((c: any) => [`${c.schema}.${c.table}.${c.column}`, c]));

  const accounts = byName['shop.accounts.id'];
  assert.deepEqual(
    { type: accounts.dataType, unsigned: accounts.unsigned, ai: accounts.autoIncrement, pk: accounts.primaryKey, max: accounts.maxValue, next: accounts.autoIncrementNext, cap: accounts.capacity },
    { type: 'int', unsigned: true, ai: true, pk: true, max: '1000000000', next: '2000000000', cap: '4294967295' },
    'the largest value is sh\'s, the AUTO_INCREMENT bj\'s',
  );
  assert.ok(near(accounts.used, 1999999999 / 4294967295), String(accounts.used));
  assert.deepEqual(accounts.referencedBy.map((f: any) => [f.constraint, f.table, f.columns, f.onDelete]), [['payments_account', 'payments', ['account_id'], 'CASCADE']]);

  const payments = byName['shop.payments.id'];
  assert.deepEqual([payments.unsigned, payments.maxValue, payments.autoIncrementNext, payments.capacity], [false, '100000000', '100000001', '2147483647']);
  assert.ok(near(payments.used, 100000000 / 2147483647));
  assert.deepEqual(payments.referencedBy.map((f: any) => f.constraint), ['refunds_payment']);

  const small = byName['shop.small.id'];
  assert.deepEqual([small.dataType, small.maxValue, small.autoIncrementNext, small.capacity], ['tinyint', '120', null, '127']);
  assert.ok(near(small.used, 120 / 127));
  assert.ok(byName['shop.refunds.id'], 'every auto-increment key is reported');
  assert.equal(byName['shop.payments.account_id'], undefined, 'a foreign-key column is reported under its parent, not as a key');
  assert.deepEqual(rep.columns.slice(0, 2).map((c: any) => c.table), ['small', 'accounts'], 'most used first');

  // families: small first (94%), then accounts with payments and refunds; payments.id (5%) is below 0.3
  assert.deepEqual(rep.families.map((f: any) => `${f.root.table}.${f.root.column}`), ['small.id', 'accounts.id']);
  assert.deepEqual(rep.families[0].tables, [{ schema: 'shop', table: 'small', columns: ['id'], alter: 'MODIFY COLUMN `id` BIGINT NOT NULL' }]);
  const fam = rep.families[1];
  assert.ok(near(fam.used, accounts.used));
  assert.deepEqual(fam.tables, [
    { schema: 'shop', table: 'accounts', columns: ['id'], alter: 'MODIFY COLUMN `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT' },
    { schema: 'shop', table: 'payments', columns: ['account_id'], alter: "MODIFY COLUMN `account_id` BIGINT UNSIGNED NOT NULL COMMENT 'the payer\\'s account'" },
    { schema: 'shop', table: 'refunds', columns: [], alter: '' },
  ]);
  assert.deepEqual(fam.foreignKeys.map((f: any) => f.constraint).sort(), ['payments_account', 'refunds_payment']);

  // every ALTER of the plan is accepted by the server (PREPARE parses it without running it)
  for (const m of MASTERS) {
    const db = await sb.db(m);
    try {
      for (const f of rep.families) {
        for (const t of f.tables.filter((x: any) => x.alter)) {
          await db.exec('PREPARE ezctl_check FROM ?', [`ALTER TABLE \`${t.schema}\`.\`${t.table}\` ${t.alter}`]);
          await db.exec('DEALLOCATE PREPARE ezctl_check');
        }
      }
    } finally {
      await db.close();
    }
  }
  assert.deepEqual(await Promise.all(MASTERS.map(showCreate)), before, 'nothing changed');
});

test('the text report shows the columns, the ALTERs in order and says nothing was changed', async () => {
  const r = await sb.run(['migrate', 'int2bigint', '--threshold', '0.3', '--tables', 'shop.*']);
  assert.equal(r.code, 0, show(r));
  const out = r.stdout;
  assert.match(out, /shop\.accounts\.id .*int\(10\) unsigned .*1000000000 .*2000000000 .*46\.57% .*shop\.payments\.account_id/);
  assert.match(out, /shop\.small\.id .*tinyint\(4\) .*120 .*94\.49%/);
  const lines = out.split('\n');
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
  const first = at(/^1\. shop\.small\.id: 94\.49% used/);
  const accounts = at(/ALTER TABLE `shop`\.`accounts` MODIFY COLUMN `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT;/);
  const payments = at(/ALTER TABLE `shop`\.`payments` MODIFY COLUMN `account_id` BIGINT UNSIGNED NOT NULL COMMENT 'the payer\\'s account';/);
  const refunds = at(/-- shop\.refunds: rebuilt unchanged, so that its foreign key refunds_payment follows the new tables/);
  assert.ok(first >= 0 && first < accounts && accounts < payments && payments < refunds, out);
  assert.match(out, /\nnothing was changed\n$/);
});

test('--zones and --exclude narrow what is measured; a bad --threshold is bad input', async () => {
  // sh alone: accounts at 1e9 of 4.29e9 (23%) is under 0.3, small still over it
  const sh = await sb.run(['--json', 'migrate', 'int2bigint', '--zones', 'sh', '--threshold', '0.3']);
  assert.equal(sh.code, 0, show(sh));
  const rep = sh.json();
  const acc = rep.columns.find((c: any) => c.table === 'accounts');
  assert.deepEqual([acc.maxValue, acc.autoIncrementNext], ['1000000000', '1000000001']);
  assert.deepEqual(rep.families.map((f: any) => f.root.table), ['small']);

  const ex = await sb.run(['--json', 'migrate', 'int2bigint', '--tables', 'shop.*', '--exclude', 'shop.small', '--threshold', '0.3']);
  assert.equal(ex.code, 0, show(ex));
  assert.deepEqual(ex.json().columns.map((c: any) => c.table).sort(), ['accounts', 'payments', 'refunds']);
  assert.deepEqual(ex.json().families.map((f: any) => f.root.table), ['accounts']);

  const bad = await sb.run(['migrate', 'int2bigint', '--threshold', '1.5']);
  assert.equal(bad.code, 2, show(bad));
});
