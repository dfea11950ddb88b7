// The DRC daemon's summaries of events that come by the thousand, and its log bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventSummary, kindCounts, rotateLog } from '../../src/core/drc/log-summary.js';

test('events are counted per table and flushed as one line each, with the first sample and counts by kind', () => {
  const lines: string[] = [];
  const s = new EventSummary((table, n, kinds, sample) => lines.push(`${table} ${n} [${kindCounts(kinds)}] ${sample}`));
  for (let i = 0; i < 1000; i++) s.add('db.orders', i % 10 === 0 ? 'shards of gz' : 'shards of sh', () => `key ${i}`);
  s.add('db.users', 'shards of sh', () => 'key u');
  s.flush();
  assert.deepEqual(lines, ['db.orders 1000 [shards of sh 900, shards of gz 100] key 0', 'db.users 1 [shards of sh 1] key u']);
  s.flush();
  assert.equal(lines.length, 2, 'nothing new: no line');
});

test('a log past its bound is copied to .1 and truncated in place; a writer appending through its descriptor goes on at the new end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-rot-'));
  try {
    const log = join(dir, 'daemon.log');
    const fd = openSync(log, 'a');
    writeSync(fd, 'x'.repeat(2000) + '\n');
    assert.equal(rotateLog(log, 4096), false, 'under the bound: untouched');
    writeSync(fd, 'y'.repeat(3000) + '\n');
    assert.equal(rotateLog(log, 4096), true);
    assert.equal(statSync(join(dir, 'daemon.log.1')).size, 5002);
    assert.match(readFileSync(log, 'utf8'), /^\S+ INFO  log rotated: the previous 5002 bytes are in .*daemon\.log\.1\n$/);
    writeSync(fd, 'after\n');
    closeSync(fd);
    const text = readFileSync(log, 'utf8');
    assert.ok(text.endsWith('rotated: the previous 5002 bytes are in ' + join(dir, 'daemon.log.1') + '\nafter\n'), JSON.stringify(text));
    assert.ok(!text.includes('\0'), 'no hole left where the old bytes were');
    // a second rotation replaces the old .1
    appendFileSync(log, 'z'.repeat(5000));
    rotateLog(log, 4096);
    assert.ok(readFileSync(join(dir, 'daemon.log.1'), 'utf8').includes('zzz'));
    writeFileSync(log, '');
    assert.equal(rotateLog(join(dir, 'missing.log'), 10), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
