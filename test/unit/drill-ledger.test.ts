// The drill's ledger (the workload's ack log against every zone's rows) and its small helpers:
// what each row must be after the drill, which acknowledged writes are lost, which rows were
// conflicts and who won them; and the fault records of the drill state file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conflictOutcomes, expectations, lostWrites, tokenOfEmail, type AckLine, type ZoneRows } from '../../src/core/drill/ledger.js';
import { clearDrillState, readDrillState, sameFault, writeDrillState } from '../../src/core/drill/state.js';
import { compactShards } from '../../src/core/drill/drills.js';

const T = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const ack = (op: AckLine['op'], id: number, token: string, sec: number, zone = 'bj', table = 'ezdemo.orders', ms = 20): AckLine => ({ zone, from: zone, table, key: { id }, op, token, at: T(sec), ms });

test('expectations: the last acknowledged write of a row decides; a loaded row the drill only updated may be gone; a deleted one must be', () => {
  const e = expectations([
    ack('insert', 10, 't1', 1),
    ack('update', 10, 't2', 2),
    ack('delete', 11, 'd1', 1),
    ack('update', 12, 't4', 1),
  ]);
  assert.deepEqual(e.get('ezdemo.orders#10'), { tokens: { t2: 'bj' }, lastToken: 't2', absentOk: false, conflict: false, op: 'update', at: T(2), landed: 'bj' });
  assert.deepEqual(e.get('ezdemo.orders#11')?.tokens, {});
  assert.equal(e.get('ezdemo.orders#11')?.absentOk, true);
  assert.equal(e.get('ezdemo.orders#12')?.absentOk, true, 'an update of a loaded row: an earlier run may have deleted it');
});

test('writes of one zone whose spans overlap may commit in either order: both are allowed; one acknowledged before the other began is not', () => {
  // two connections of one zone: the second began (slot) before the first was acknowledged
  const e = expectations([ack('update', 7, 'a', 5, 'bj', 'ezdemo.orders', 20), { ...ack('update', 7, 'b', 5, 'bj', 'ezdemo.orders', 30), at: new Date(Date.parse(T(5)) + 10).toISOString() }]);
  assert.deepEqual(Object.keys(e.get('ezdemo.orders#7')!.tokens).sort(), ['a', 'b']);
  assert.equal(e.get('ezdemo.orders#7')!.conflict, false);
  const seq = expectations([ack('update', 8, 'a', 5), ack('update', 8, 'b', 7)]);
  assert.deepEqual(Object.keys(seq.get('ezdemo.orders#8')!.tokens), ['b']);
});

test('lost writes: an inserted row missing, a token not among the last writes, a deleted row back; an updated loaded row may be absent', () => {
  const e = expectations([ack('insert', 10, 't1', 1), ack('delete', 11, 'd', 1), ack('update', 12, 't4', 1), ack('insert', 13, 't5', 1), ack('update', 13, 't6', 3)]);
  const ok: ZoneRows = new Map([['ezdemo.orders#10', 't1'], ['ezdemo.orders#11', null], ['ezdemo.orders#12', null], ['ezdemo.orders#13', 't6']]);
  const bad: ZoneRows = new Map([['ezdemo.orders#10', null], ['ezdemo.orders#11', 'x'], ['ezdemo.orders#12', 'old'], ['ezdemo.orders#13', 't5']]);
  assert.deepEqual(lostWrites(e, new Map([['bj', ok]])), []);
  const lost = lostWrites(e, new Map([['bj', ok], ['sh', bad]]));
  assert.deepEqual(lost.map((l) => `${l.zone} ${l.key} ${l.found}`), ['sh ezdemo.orders#10 absent', 'sh ezdemo.orders#11 token x', 'sh ezdemo.orders#12 token old', 'sh ezdemo.orders#13 token t5']);
});

test('writes of two zones within the conflict window are a conflict: either, the same everywhere; who won, and whether it was the last acknowledged', () => {
  const e = expectations([ack('update', 5, 'a', 1, 'bj', 'ezdemo.users'), ack('update', 5, 'b', 2, 'sh', 'ezdemo.users')], { conflictMs: 1500 });
  assert.equal(e.get('ezdemo.users#5')?.conflict, true);
  const same = new Map([['bj', new Map([['ezdemo.users#5', 'a']]) as ZoneRows], ['sh', new Map([['ezdemo.users#5', 'a']]) as ZoneRows]]);
  assert.deepEqual(lostWrites(e, same), []);
  const [c] = conflictOutcomes(e, same);
  assert.deepEqual(c, { key: 'ezdemo.users#5', winner: { bj: 'bj', sh: 'bj' }, lastWriter: 'sh', sameEverywhere: true, lastWriterWon: false });
  const other = new Map([['bj', new Map([['ezdemo.users#5', 'zzz']]) as ZoneRows]]);
  assert.equal(lostWrites(e, other).length, 1, 'a token nobody acknowledged');
  // further apart than the window: the later one must win
  const apart = expectations([ack('update', 5, 'a', 1, 'bj', 'ezdemo.users'), ack('update', 5, 'b', 4, 'sh', 'ezdemo.users')], { conflictMs: 1500 });
  assert.equal(apart.get('ezdemo.users#5')?.conflict, false);
  assert.equal(lostWrites(apart, same).length, 2);
  assert.equal(tokenOfEmail('r1.bj.7@bj.example.com'), 'r1.bj.7');
});

test('the drill state file: written whole, read back, cleared; a fault is found again by its value', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-drill-state-'));
  try {
    assert.equal(readDrillState(dir), undefined);
    const f = { kind: 'sigstop' as const, pid: 12, what: 'bj-master', cmdline: 'mariadbd --datadir=x' };
    writeDrillState(dir, { drill: 'master-hang', cluster: 'demo', pid: 1, startedAt: 'now', faults: [f] });
    assert.ok(sameFault(readDrillState(dir)!.faults[0]!, f));
    assert.ok(!sameFault(f, { ...f, pid: 13 }));
    clearDrillState(dir);
    assert.equal(readDrillState(dir), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('shards listed one by one (a file edited by moves) are given to gz move as ranges', () => {
  assert.equal(compactShards('32,33,34,35,40,42,43'), '32-35,40,42-43');
  assert.equal(compactShards('0-31'), '0-31');
  assert.equal(compactShards('5'), '5');
});
