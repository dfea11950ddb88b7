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

const ack = (op: AckLine['op'], id: number, token: string, at: string, zone = 'bj', table = 'ezdemo.orders'): AckLine => ({ zone, from: zone, table, key: { id }, op, token, at });

test('expectations: the last acknowledged write of each row decides; an update of a deleted row is nothing; a loaded row updated may be gone', () => {
  const e = expectations([
    ack('insert', 10, 't1', '2026-01-01T00:00:01.000Z'),
    ack('update', 10, 't2', '2026-01-01T00:00:02.000Z'),
    ack('delete', 11, 'd1', '2026-01-01T00:00:01.000Z'),
    ack('update', 11, 't3', '2026-01-01T00:00:03.000Z'),
    ack('update', 12, 't4', '2026-01-01T00:00:01.000Z'),
  ]);
  assert.deepEqual(e.get('ezdemo.orders#10'), { state: 'present', token: 't2', op: 'update', at: '2026-01-01T00:00:02.000Z', landed: 'bj' });
  assert.equal(e.get('ezdemo.orders#11')?.state, 'absent');
  assert.equal(e.get('ezdemo.orders#12')?.state, 'if-present');
});

test('lost writes: a row missing, an older token, a deleted row back; an if-present row may be absent', () => {
  const e = expectations([ack('insert', 10, 't1', 'a'), ack('delete', 11, 'd', 'a'), ack('update', 12, 't4', 'a'), ack('insert', 13, 't5', 'a'), ack('update', 13, 't6', 'b')]);
  const ok: ZoneRows = new Map([['ezdemo.orders#10', 't1'], ['ezdemo.orders#11', null], ['ezdemo.orders#12', null], ['ezdemo.orders#13', 't6']]);
  const bad: ZoneRows = new Map([['ezdemo.orders#10', null], ['ezdemo.orders#11', 'x'], ['ezdemo.orders#12', 'old'], ['ezdemo.orders#13', 't5']]);
  assert.deepEqual(lostWrites(e, new Map([['bj', ok]])), []);
  const lost = lostWrites(e, new Map([['bj', ok], ['sh', bad]]));
  assert.deepEqual(lost.map((l) => `${l.zone} ${l.key} ${l.found}`), ['sh ezdemo.orders#10 absent', 'sh ezdemo.orders#11 token x', 'sh ezdemo.orders#12 token old', 'sh ezdemo.orders#13 token t5']);
});

test('a row written in two zones is a conflict: any of its writes, the same everywhere; who won, and whether it was the last acknowledged', () => {
  const e = expectations([ack('update', 5, 'a', '1', 'bj', 'ezdemo.users'), ack('update', 5, 'b', '2', 'sh', 'ezdemo.users')]);
  assert.equal(e.get('ezdemo.users#5')?.state, 'conflict');
  const same = new Map([['bj', new Map([['ezdemo.users#5', 'a']]) as ZoneRows], ['sh', new Map([['ezdemo.users#5', 'a']]) as ZoneRows]]);
  assert.deepEqual(lostWrites(e, same), []);
  const [c] = conflictOutcomes(e, same);
  assert.deepEqual(c, { key: 'ezdemo.users#5', winner: { bj: 'bj', sh: 'bj' }, lastWriter: 'sh', sameEverywhere: true, lastWriterWon: false });
  const other = new Map([['bj', new Map([['ezdemo.users#5', 'zzz']]) as ZoneRows]]);
  assert.equal(lostWrites(e, other).length, 1, 'a token nobody acknowledged');
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
