// Which connection each chunk of a table walk goes to: a far zone alternates between its two
// connections (its next chunk is at the server while the previous answer travels), a near zone
// keeps one (one chunk at a time on its server, as before).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkConns, farZones, FAR_ZONE_MS, secondsByZone } from '../../src/core/dcp/pipeline.js';

test('a zone is far when even its fastest round trip reaches the threshold', () => {
  assert.deepEqual(farZones([[0.2, 0.3, 9], [31, 30.5, 40]]), [false, true]);
  // one quick answer is enough to call a zone near (load makes round trips slower, never faster)
  assert.deepEqual(farZones([[12, 4.9, 30]]), [false]);
  assert.deepEqual(farZones([[FAR_ZONE_MS, FAR_ZONE_MS + 1]]), [true]);
  // no measurement: near (one connection, as before)
  assert.deepEqual(farZones([[]]), [false]);
  // threshold 0: every zone takes the far zones' path (tests on loopback)
  assert.deepEqual(farZones([[0.1], [0.2]], 0), [true, true]);
});

test('chunks alternate between a far zone\'s two connections; a near zone keeps its one', () => {
  const primary = ['bj1', 'sh1', 'gz1'];
  const second = [undefined, 'sh2', undefined];
  const seq = [0, 1, 2, 3, 4].map((i) => chunkConns(primary, second, i));
  assert.deepEqual(seq, [
    ['bj1', 'sh1', 'gz1'],
    ['bj1', 'sh2', 'gz1'],
    ['bj1', 'sh1', 'gz1'],
    ['bj1', 'sh2', 'gz1'],
    ['bj1', 'sh1', 'gz1'],
  ]);
  // at most two chunks of a table are in flight at once, so no connection ever holds two
  for (let i = 1; i < seq.length; i++) for (let z = 0; z < primary.length; z++) if (second[z]) assert.notEqual(seq[i]![z], seq[i - 1]![z]);
  // no second connections: every chunk on the walk's own set
  assert.deepEqual(chunkConns(primary, undefined, 1), primary);
  // the primary set itself is handed back (the walk's narrowing uses it too)
  assert.equal(chunkConns(primary, second, 0), primary);
});

test('a walk\'s second connections, opened for the far zones only, are placed by zone', () => {
  assert.deepEqual(secondsByZone([false, true, true], ['sh2', 'gz2']), [undefined, 'sh2', 'gz2']);
  assert.deepEqual(secondsByZone([true, false, true], ['bj2', 'gz2']), ['bj2', undefined, 'gz2']);
  assert.deepEqual(secondsByZone([false, false], []), [undefined, undefined]);
});
