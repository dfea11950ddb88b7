// The ghost-writer lock of an online schema change's zone applier: copy chunks (shared) run side
// by side, an applier batch (exclusive) runs alone, in the order they were queued.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZoneApplier } from '../../src/core/osc/applier.js';
import type { Ctx } from '../../src/core/context.js';
import type { ResolvedNode } from '../../src/core/config/load.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

test('copy chunks share the ghost, an applier batch waits for them and holds back the chunks queued after it', async () => {
  const a = new ZoneApplier({} as Ctx, 'bj', {} as ResolvedNode, 'db', [], [], 1);
  const log: string[] = [];
  const running = new Set<string>();
  const job = (name: string, g: { opened: Promise<void> }) => async () => {
    running.add(name);
    log.push(`start ${name} with ${[...running].sort().join(',')}`);
    await g.opened;
    running.delete(name);
    log.push(`end ${name}`);
  };
  const g1 = gate(), g2 = gate(), gb = gate(), g3 = gate();
  const c1 = a.shared(job('copy1', g1));
  const c2 = a.shared(job('copy2', g2));
  const b = a.exclusive(job('batch', gb));
  const c3 = a.shared(job('copy3', g3));
  await tick();
  assert.deepEqual(log, ['start copy1 with copy1', 'start copy2 with copy1,copy2'], 'the two chunks run together; the batch waits');
  g1.open();
  await tick();
  assert.ok(!log.some((l) => l.startsWith('start batch')), 'the batch waits for every chunk before it');
  g2.open();
  await tick();
  assert.deepEqual(log.slice(-2), ['end copy2', 'start batch with batch'], 'the batch runs alone');
  assert.ok(!log.some((l) => l.startsWith('start copy3')), 'a chunk queued after the batch waits for it');
  gb.open();
  await tick();
  assert.deepEqual(log.slice(-2), ['end batch', 'start copy3 with copy3']);
  g3.open();
  await Promise.all([c1, c2, b, c3]);
});

test('a failing writer does not stop the ones queued after it', async () => {
  const a = new ZoneApplier({} as Ctx, 'bj', {} as ResolvedNode, 'db', [], [], 1);
  await assert.rejects(a.shared(async () => { throw new Error('chunk failed'); }), /chunk failed/);
  await assert.rejects(a.exclusive(async () => { throw new Error('batch failed'); }), /batch failed/);
  assert.equal(await a.shared(async () => 'copied'), 'copied');
  assert.equal(await a.exclusive(async () => 'applied'), 'applied');
});
