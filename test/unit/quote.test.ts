import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quoteId, quoteTable } from '../../src/core/db/quote.js';

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
