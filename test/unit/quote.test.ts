import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quoteId, quoteTable, parseTableName } from '../../src/core/db/quote.js';

test('quoteId doubles backticks and wraps the name', () => {
  assert.equal(quoteId('orders'), '`orders`');
  assert.equal(quoteId('we`ird'), '`we``ird`');
  assert.equal(quoteId("it's"), "`it's`");
  assert.equal(quoteTable('db', 'a`b'), '`db`.`a``b`');
});

test('quoteId refuses empty, NUL and over-long names', () => {
  assert.throws(() => quoteId(''), /empty/);
  assert.throws(() => quoteId('a\0b'), /NUL/);
  assert.throws(() => quoteId('x'.repeat(65)), /longer than 64/);
});

test('parseTableName: db.table with either part in backticks, as SQL writes it', () => {
  assert.deepEqual(parseTableName('ezdemo.orders'), { schema: 'ezdemo', table: 'orders' });
  assert.deepEqual(parseTableName(' ezdemo.my-table '), { schema: 'ezdemo', table: 'my-table' });
  assert.deepEqual(parseTableName('ezdemo.odd name'), { schema: 'ezdemo', table: 'odd name' });
  assert.deepEqual(parseTableName('ezdemo.`odd name.v2`'), { schema: 'ezdemo', table: 'odd name.v2' });
  assert.deepEqual(parseTableName('`ez.demo`.`t`'), { schema: 'ez.demo', table: 't' });
  assert.deepEqual(parseTableName('`ezdemo`.`a``b`'), { schema: 'ezdemo', table: 'a`b' });
  assert.deepEqual(parseTableName('db.````'), { schema: 'db', table: '`' });
  for (const bad of ['orders', 'a.b.c', 'ezdemo.odd name.v2', 'db.a`b', 'db.`unclosed', 'db.`x`y', '.t', 'db.', '`db`', 'db.``', `db.${'x'.repeat(65)}`]) {
    assert.equal(parseTableName(bad), undefined, bad);
  }
});
