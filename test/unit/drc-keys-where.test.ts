// The WHERE an applier reads, locks and deletes a batch's keys by (core/drc/apply keysWhere).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keysWhere } from '../../src/core/drc/apply.js';

test('keysWhere: one column IN a list; a composite key a row IN list, except one key, which is column equalities (MariaDB scans the whole table for a one-row (a, b) IN in a DELETE)', () => {
  assert.equal(keysWhere(['id'], 1), '`id` IN (?)');
  assert.equal(keysWhere(['id'], 3), '`id` IN (?, ?, ?)');
  assert.equal(keysWhere(['order_id', 'line_no'], 1), '`order_id` = ? AND `line_no` = ?');
  assert.equal(keysWhere(['order_id', 'line_no'], 2), '(`order_id`, `line_no`) IN ((?, ?), (?, ?))');
});
