// drc status for monitoring: which states make it unhealthy (exit 3), and what it says about each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drcProblems } from '../../src/core/drc/manage.js';
import type { DaemonStatus, PipelineStatus } from '../../src/core/drc/client.js';

const dir = (from: string, to: string, state: PipelineStatus['state'], lastError: string | null = null, lastErrorAt: string | null = null): PipelineStatus => ({
  from, to, state, source: '', target: '', lagMs: null, p99LagMs: null, sourcePosition: null, appliedPosition: null, txPerSec: 0, rowsPerSec: 0,
  appliedTx: 0, appliedRows: 0, conflicts: 0, illegalWrites: 0, ddlSeen: 0, droppedTx: 0, queue: 0, lastError, lastErrorAt,
});
const status = (running: boolean, directions: PipelineStatus[]): DaemonStatus => ({ cluster: 'demo', running, pid: running ? 1 : null, startedAt: null, directions });

test('healthy only when the daemon runs and every direction is running', () => {
  assert.deepEqual(drcProblems(status(true, [dir('bj', 'sh', 'running'), dir('sh', 'bj', 'running')])), []);
  for (const state of ['starting', 'paused', 'retrying', 'error', 'stopped'] as const) {
    assert.equal(drcProblems(status(true, [dir('bj', 'sh', 'running'), dir('sh', 'bj', state)])).length, 1, state);
  }
  assert.deepEqual(drcProblems(status(true, [])), ['the daemon runs no direction']);
});

test('each problem names the direction, its state, and its last error with the time', () => {
  const p = drcProblems(status(true, [dir('bj', 'sh', 'error', 'zone sh refused transaction 1-101-7: table t does not exist there', '2026-12-04T05:00:00.000Z'), dir('sh', 'bj', 'running')]));
  assert.deepEqual(p, ['bj->sh is error: zone sh refused transaction 1-101-7: table t does not exist there (at 2026-12-04T05:00:00.000Z)']);
  const down = drcProblems(status(false, [dir('bj', 'sh', 'stopped'), dir('sh', 'bj', 'stopped', 'cannot connect', null)]));
  assert.deepEqual(down, ['DRC for cluster demo is not running', 'bj->sh is stopped', 'sh->bj is stopped: cannot connect']);
});
