// check full opens all its connections at once: when one fails, the others made are closed and
// the error is the one connecting one by one would have stopped at (first set, first zone).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectSets } from '../../src/core/dcp/check-full.js';
import type { Ctx } from '../../src/core/context.js';

function fakeCtx(failing: Set<string>, delayMs: (zone: string) => number) {
  const opened: string[] = [];
  const closed: string[] = [];
  let n = 0;
  const ctx = {
    async connect(node: { name: string }) {
      const id = `${node.name}#${n++}`;
      await new Promise((r) => setTimeout(r, delayMs(node.name)));
      if (failing.has(node.name)) throw new Error(`cannot connect to ${node.name}`);
      opened.push(id);
      return { ep: { label: node.name }, close: async () => void closed.push(id) };
    },
  } as unknown as Ctx;
  return { ctx, opened, closed };
}

const master = (zone: string) => ({ name: `${zone}-master` }) as never;

test('every set has one connection per zone, in zone order', async () => {
  const f = fakeCtx(new Set(), (z) => (z.startsWith('bj') ? 5 : 1));
  const sets = await connectSets(f.ctx, ['bj', 'sh'], master, 3);
  assert.equal(sets.length, 3);
  for (const s of sets) assert.deepEqual(s.map((c) => c.zone), ['bj', 'sh']);
  assert.equal(f.opened.length, 6);
  assert.deepEqual(f.closed, []);
});

test('a zone that cannot be reached: the connections made are closed, its error thrown', async () => {
  // sh fails fast, bj answers later: the error is still sh's, and every bj connection is closed
  const f = fakeCtx(new Set(['sh-master']), (z) => (z.startsWith('bj') ? 10 : 1));
  await assert.rejects(connectSets(f.ctx, ['bj', 'sh'], master, 3), /cannot connect to sh-master/);
  assert.equal(f.opened.length, 3);
  assert.deepEqual([...f.closed].sort(), [...f.opened].sort());
});

test('two zones failing: the first zone\'s error, as connecting in order would give', async () => {
  const f = fakeCtx(new Set(['bj-master', 'sh-master']), (z) => (z.startsWith('bj') ? 10 : 1));
  await assert.rejects(connectSets(f.ctx, ['bj', 'sh'], master, 2), /cannot connect to bj-master/);
});
