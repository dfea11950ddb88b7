// The pure parts of jobs and leases: the lease arithmetic, who may take a target, the merge of
// every zone's rows into one view per job, and its rendering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER_TARGET, decideAcquire, leaseTimings, liveness, mustStop, overlaps, progressOf, type Here, type LeaseRow } from '../../src/core/job/lease.js';
import { mergeJobs, type JobRow, type ZoneRead } from '../../src/core/job/list.js';
import { renderJobs, renderLease, renderProgress } from '../../src/core/job/render.js';
import { newJobId } from '../../src/core/job/job.js';

const alive: Here = { host: 'h1', pidAlive: () => true };
const lease = (o: Partial<LeaseRow> = {}): LeaseRow => ({ zone: 'bj', cluster: 'c', target: 'db.t', jobId: 'J1', holder: 'h2:10:aa', host: 'h2', pid: 10, leftMs: 20_000, kind: 'osc', phase: 'copy', ...o });

test('a lease is renewed every third of it, checked every sixth, and a job stops itself two thirds after its last renewal was sent', () => {
  assert.deepEqual(leaseTimings(30_000), { renewEveryMs: 10_000, checkEveryMs: 5_000, stopAfterMs: 20_000 });
  // the server counts the lease from when it ran the renewal (later than it was sent): stopping at
  // 2/3 of the lease after the send leaves a third of it to stop the work before anyone may take over
  assert.equal(mustStop(1000, 1000 + 19_999, 30_000), false);
  assert.equal(mustStop(1000, 1000 + 20_000, 30_000), true);
  // the check interval never lets the deadline slip past the lease: last check before expiry
  const t = leaseTimings(3000);
  assert.ok(t.stopAfterMs + t.checkEveryMs < 3000);
});

test('a holder is live while its lease has time left, unless its process on this very host is gone', () => {
  assert.deepEqual(liveness(lease(), alive), { live: true, leftMs: 20_000 });
  assert.deepEqual(liveness(lease({ leftMs: -4200 }), alive), { live: false, why: 'lease expired 4.2s ago' });
  assert.deepEqual(liveness(lease({ leftMs: 0 }), alive), { live: false, why: 'lease expired 0ms ago' });
  // another host: its pid means nothing here
  assert.equal(liveness(lease({ host: 'h2' }), { host: 'h1', pidAlive: () => false }).live, true);
  assert.deepEqual(liveness(lease({ host: 'h1' }), { host: 'h1', pidAlive: () => false }), { live: false, why: 'its process 10 on this host is gone' });
});

test('a lease stands in the way of the same target, and a cluster-wide one of everything (both ways)', () => {
  assert.equal(overlaps('db.t', ['db.t']), true);
  assert.equal(overlaps('db.t', ['db.u']), false);
  assert.equal(overlaps(CLUSTER_TARGET, ['db.u']), true);
  assert.equal(overlaps('db.t', [CLUSTER_TARGET]), true);
  assert.equal(overlaps('db.t', ['db.u', 'db.t']), true);
});

test('a change feed\'s lease (feed:<name>) excludes only another feed of that name, never a job on the cluster (a master switch it follows)', () => {
  assert.equal(overlaps('feed:bj-cache', [CLUSTER_TARGET]), false);
  assert.equal(overlaps(CLUSTER_TARGET, ['feed:bj-cache']), false);
  assert.equal(overlaps('feed:bj-cache', ['feed:bj-cache']), true);
  assert.equal(overlaps('feed:bj-cache', ['feed:other']), false);
  assert.equal(overlaps('feed:bj-cache', ['db.t']), false);
});

test('acquire: free targets are taken; a live holder refuses, named with its kind, host, pid, phase and lease left', () => {
  assert.deepEqual(decideAcquire([], { targets: ['db.t'], resume: false }, alive), { ok: true });
  assert.deepEqual(decideAcquire([lease({ target: 'db.u' })], { targets: ['db.t'], resume: false }, alive), { ok: true });
  const d = decideAcquire([lease()], { targets: ['db.t'], resume: true }, alive);
  assert.equal(d.ok, false);
  assert.ok(!d.ok && d.live);
  assert.equal(!d.ok && d.reason, 'zone bj: db.t is held by osc job J1 on db.t (host h2, pid 10, phase copy, lease left 20s)');
  // a switch holding the cluster refuses a job on any table, and a switch is refused by any job
  const sw = decideAcquire([lease({ target: CLUSTER_TARGET, kind: 'emha-switch', phase: 'drain' })], { targets: ['db.x'], resume: false }, alive);
  assert.match(!sw.ok ? sw.reason : '', /cluster is held by emha-switch job J1/);
  assert.equal(decideAcquire([lease({ target: 'db.x' })], { targets: [CLUSTER_TARGET], resume: false }, alive).ok, false);
});

test('acquire: a dead holder refuses a fresh job (naming it dead) and is taken over, keeping its id, by --resume', () => {
  const dead = lease({ leftMs: -3000 });
  const fresh = decideAcquire([dead, { ...dead, zone: 'sh' }], { targets: ['db.t'], resume: false }, alive);
  assert.ok(!fresh.ok && !fresh.live);
  assert.match(!fresh.ok ? fresh.reason : '', /held by osc job J1 on db\.t \(host h2, pid 10, phase copy, dead: lease expired 3s ago\)/);
  assert.deepEqual(decideAcquire([dead, { ...dead, zone: 'sh' }], { targets: ['db.t'], resume: true }, alive), { ok: true, takeOver: 'J1' });
  // dead in one zone but live in another: still held
  assert.equal(decideAcquire([dead, { ...dead, zone: 'sh', leftMs: 5000 }], { targets: ['db.t'], resume: true }, alive).ok, false);
  // two different dead jobs, or a dead job on something else (the cluster), are not this job
  assert.equal(decideAcquire([dead, lease({ target: 'db.u', jobId: 'J2', leftMs: -1 })], { targets: ['db.t', 'db.u'], resume: true }, alive).ok, false);
  assert.equal(decideAcquire([lease({ target: CLUSTER_TARGET, leftMs: -1 })], { targets: ['db.t'], resume: true }, alive).ok, false);
  // nor is a dead job of another kind: a repair (which always takes over a dead repair) never takes over a dead osc
  const other = decideAcquire([dead], { targets: ['db.t'], resume: true, kind: 'repair' }, alive);
  assert.ok(!other.ok && !other.live);
  assert.match(!other.ok ? other.reason : '', /held by osc job J1 on db\.t \(host h2, pid 10, phase copy, dead: lease expired 3s ago\), not a repair job/);
  assert.deepEqual(decideAcquire([dead], { targets: ['db.t'], resume: true, kind: 'osc' }, alive), { ok: true, takeOver: 'J1' });
});

test('progress: percent of the estimate and an eta from the rate so far', () => {
  assert.deepEqual(progressOf(0, 0, 1000), { rows: 0 });
  assert.deepEqual(progressOf(250, 1000, 10_000), { rows: 250, pct: 25, etaS: 30 });
  assert.deepEqual(progressOf(1500, 1000, 10_000), { rows: 1500, pct: 100 });
  assert.equal(renderProgress({ rows: 250, pct: 25, etaS: 90 }), '250 rows 25% eta 1m30s');
  assert.equal(renderProgress({ rows: 250, pct: 25, etaS: 90 }, false), '250 rows 25%', 'no eta for a job not running');
  assert.equal(renderProgress(null), '-');
});

const row = (o: Partial<JobRow> = {}): JobRow => ({
  id: 'J1', cluster: 'c', kind: 'osc', target: 'db.t', targets: ['db.t'], zones: ['bj', 'sh'], phase: 'copy', status: 'running', host: 'h2', pid: 10, user: 'u', leaseMs: 30_000,
  startedAt: '2026-12-04 09:00:00.000', resumedAt: null, updatedAt: '2026-12-04 09:00:05.000', finishedAt: null, progress: { rows: 10 }, lastError: null, controlSocket: null, ...o,
});
const read = (zone: string, jobs: JobRow[], leases: LeaseRow[] = []): ZoneRead => ({ cluster: 'c', zone, jobs, leases: leases.map((l) => ({ ...l, zone })) });

test('merge: one view per job id from every zone, its fields from the row written last, its lease the least left', () => {
  const v = mergeJobs([
    read('bj', [row({ phase: 'copy', updatedAt: '2026-12-04 09:00:05.000' })], [lease({ leftMs: 25_000 })]),
    read('sh', [row({ phase: 'catch-up', progress: { rows: 99 }, updatedAt: '2026-12-04 09:00:06.000' })], [lease({ leftMs: 21_000 })]),
  ], { all: false, here: alive });
  assert.equal(v.length, 1);
  assert.equal(v[0]!.phase, 'catch-up');
  assert.deepEqual(v[0]!.progress, { rows: 99 });
  assert.equal(v[0]!.state, 'running');
  assert.deepEqual(v[0]!.lease, { leftMs: 21_000 });
  assert.deepEqual(v[0]!.seenIn, ['bj', 'sh']);
  assert.deepEqual(v[0]!.missingIn, []);
});

test('merge: an unfinished job whose lease is dead in any zone (or which holds none) is stopped; a row missing in a zone is named', () => {
  const v = mergeJobs([read('bj', [row()], [lease({ leftMs: -2000 })]), read('sh', [], [lease({ leftMs: 9000 })])], { all: false, here: alive });
  assert.equal(v[0]!.state, 'stopped');
  assert.deepEqual(v[0]!.lease, { dead: 'lease expired 2s ago' });
  assert.deepEqual(v[0]!.missingIn, ['sh']);
  assert.equal(mergeJobs([read('bj', [row()])], { all: false, here: alive })[0]!.state, 'stopped');
});

test('merge: without --all, finished jobs are left out and a failure only while it is the last job on its target', () => {
  const reads = [read('bj', [
    row({ id: 'A', status: 'failed', startedAt: '2026-12-04 08:00:00.000', lastError: 'boom' }),
    row({ id: 'B', status: 'done', startedAt: '2026-12-04 08:30:00.000' }),
    row({ id: 'C', target: 'db.u', targets: ['db.u'], status: 'failed', startedAt: '2026-12-04 08:40:00.000' }),
    row({ id: 'D', target: 'db.v', targets: ['db.v'], status: 'aborted' }),
    row({ id: 'E', target: 'db.w', targets: ['db.w'] }),
  ], [lease({ jobId: 'E', target: 'db.w' })])];
  assert.deepEqual(mergeJobs(reads, { all: false, here: alive }).map((j) => `${j.id} ${j.state}`), ['E running', 'C failed']);
  assert.deepEqual(mergeJobs(reads, { all: true, here: alive }).map((j) => `${j.id} ${j.state}`), ['E running', 'C failed', 'A failed', 'D aborted', 'B done']);
});

test('rendering: a line per job with its holder and lease, the stopped ones explained, unreadable zones named', () => {
  const jobs = mergeJobs([read('bj', [row(), row({ id: 'J2', target: 'db.u', targets: ['db.u', 'db.v'] })], [lease(), lease({ jobId: 'J2', target: 'db.u', leftMs: -1500 })])], { all: false, here: alive });
  const text = renderJobs({ clusters: ['c'], all: false, jobs, errors: [{ cluster: 'c', zone: 'sh', error: 'connect ECONNREFUSED' }] });
  assert.match(text, /J1 +│? *c +│? *osc/);
  assert.match(text, /h2:10/);
  assert.match(text, /20s left/);
  assert.match(text, /db\.u \(\+1\)/);
  assert.match(text, /dead: lease expired 1\.5s ago/);
  assert.match(text, /stopped: no live lease \(its process died, or lost its servers and stopped itself\); the same command with --resume continues it from any host, or abort it \(J2\)/);
  assert.match(text, /error: cluster c zone sh: connect ECONNREFUSED/);
  assert.equal(renderLease({ lease: null }), '-');
  assert.match(renderJobs({ clusters: ['c'], all: false, jobs: [], errors: [] }), /no running, stopped or failed jobs in c/);
});

test('job ids sort by their start and differ', () => {
  const a = newJobId(new Date('2026-12-04T09:15:02.123Z'));
  assert.match(a, /^20261204-091502-[0-9a-f]{6}$/);
  assert.notEqual(newJobId(), newJobId());
});
