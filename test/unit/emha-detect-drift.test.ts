// The pure parts of `emha watch`: drift of a zone from what its servers say against the topology
// file, and the monitor's lease, which excludes only another watch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocument } from 'yaml';
import { addReplica, driftKey, newReplicaName, planDrift, removeReplica, type NodeObs, type ZoneObs } from '../../src/core/emha/drift.js';
import { CLUSTER_TARGET, decideAcquire, overlaps, type LeaseRow } from '../../src/core/job/lease.js';
import { WATCH_TARGET } from '../../src/core/emha/watch.js';

const file = [
  { name: 'bj-master', zone: 'bj', role: 'master' as const, host: '127.0.0.1', port: 3001 },
  { name: 'bj-replica1', zone: 'bj', role: 'replica' as const, host: '127.0.0.1', port: 3002 },
  { name: 'bj-replica2', zone: 'bj', role: 'replica' as const, host: '127.0.0.1', port: 3003 },
  { name: 'sh-master', zone: 'sh', role: 'master' as const, host: '127.0.0.1', port: 4001 },
];
const src = (port: number) => ({ host: '127.0.0.1', port, io: 'Yes', sql: 'Yes' });
const node = (name: string, o: Partial<NodeObs> = {}): NodeObs => {
  const f = file.find((n) => n.name === name)!;
  return { ...f, reachable: true, readOnly: f.role === 'replica', sources: f.role === 'replica' ? [src(3001)] : [], ...o };
};
const zone = (nodes: NodeObs[], slaveHosts: ZoneObs['slaveHosts'] = []): ZoneObs => ({ zone: 'bj', master: 'bj-master', nodes, slaveHosts });
const kinds = (z: ZoneObs) => planDrift(z, file).map((d) => `${d.kind}:${'node' in d ? d.node : 'to' in d ? d.to : 'host' in d ? d.port : ''}`);

test('a zone as the file says has no drift', () => {
  assert.deepEqual(kinds(zone([node('bj-master'), node('bj-replica1'), node('bj-replica2')], [{ serverId: 2, host: '127.0.0.1', port: 3002 }, { serverId: 3, host: '127.0.0.1', port: 3003 }])), []);
  // a chain inside the zone is still the zone's replica
  assert.deepEqual(kinds(zone([node('bj-master'), node('bj-replica1'), node('bj-replica2', { sources: [src(3002)] })])), []);
});

test('a manual switch: the writable replica that replicates from nobody, while the file\'s master is read_only, is the master now', () => {
  const z = zone([node('bj-master', { readOnly: true, sources: [src(3002)] }), node('bj-replica1', { readOnly: false, sources: [] }), node('bj-replica2', { sources: [src(3002)] })]);
  const d = planDrift(z, file);
  assert.equal(d.length, 1);
  assert.deepEqual({ kind: d[0]!.kind, from: (d[0] as { from: string }).from, to: (d[0] as { to: string }).to }, { kind: 'master-changed', from: 'bj-master', to: 'bj-replica1' });
  // the old master still writable: two writable masters, an alert, nothing repaired
  assert.deepEqual(kinds(zone([node('bj-master'), node('bj-replica1', { readOnly: false, sources: [] }), node('bj-replica2')])), ['two-writable:']);
  // read_only master and no promoted replica: nothing to follow
  assert.deepEqual(kinds(zone([node('bj-master', { readOnly: true }), node('bj-replica1'), node('bj-replica2')])), []);
});

test('a replica removed, moved to another zone, or added; one not reached is only said', () => {
  assert.deepEqual(kinds(zone([node('bj-master'), node('bj-replica1', { sources: [] }), node('bj-replica2')])), ['replica-removed:bj-replica1']);
  assert.deepEqual(kinds(zone([node('bj-master'), node('bj-replica1', { sources: [src(9999)] }), node('bj-replica2')])), ['replica-removed:bj-replica1']);
  // the head of a chain (an old master left detached, others still reading from it) is not removed
  assert.deepEqual(kinds(zone([node('bj-master'), node('bj-replica1', { sources: [] }), node('bj-replica2', { sources: [src(3002)] })])), []);
  assert.deepEqual(planDrift(zone([node('bj-master'), node('bj-replica1', { sources: [src(4001)] }), node('bj-replica2')]), file).map((d) => d.kind === 'replica-moved' && d.toZone), ['sh']);
  const added = planDrift(zone([node('bj-master'), node('bj-replica1'), node('bj-replica2')], [{ serverId: 9, host: '127.0.0.1', port: 3009 }, { serverId: 10, host: '127.0.0.1', port: 0 }]), file);
  assert.deepEqual(added.map((d) => d.kind === 'replica-added' && [d.name, d.port]), [['bj-replica3', 3009]]);
  assert.deepEqual(kinds(zone([node('bj-master'), node('bj-replica1', { reachable: false, error: 'refused', sources: [] }), node('bj-replica2')])), ['replica-unreachable:bj-replica1']);
  // the file's master not reached: no drift judged (that is the dead-master detection's part)
  assert.deepEqual(kinds(zone([node('bj-master', { reachable: false, readOnly: undefined }), node('bj-replica1', { sources: [] }), node('bj-replica2')])), []);
});

test('a fenced node (an old master after a failover) is not removed nor a second master; writable, it is made read_only', () => {
  assert.deepEqual(kinds(zone([node('bj-master'), node('bj-replica1', { sources: [], fenced: true }), node('bj-replica2')])), []);
  assert.deepEqual(kinds(zone([node('bj-master'), node('bj-replica1', { sources: [], fenced: true, reachable: false }), node('bj-replica2')])), []);
  // back from SIGSTOP after a failover: writable, never a 'two-writable' nor a 'master-changed'
  assert.deepEqual(kinds(zone([node('bj-master'), node('bj-replica1', { sources: [], readOnly: false, fenced: true }), node('bj-replica2')])), ['fenced-writable:bj-replica1']);
  assert.deepEqual(kinds(zone([node('bj-master', { readOnly: true }), node('bj-replica1', { sources: [], readOnly: false, fenced: true }), node('bj-replica2')])), ['fenced-writable:bj-replica1']);
});

test('drift keys stay the same while the drift lasts; new names skip those taken', () => {
  const a = planDrift(zone([node('bj-master'), node('bj-replica1', { sources: [] }), node('bj-replica2')]), file)[0]!;
  const b = planDrift(zone([node('bj-master'), node('bj-replica1', { sources: [] }), node('bj-replica2')]), file)[0]!;
  assert.equal(driftKey(a), driftKey(b));
  assert.equal(newReplicaName('bj', new Set(['bj-replica1', 'bj-replica3'])), 'bj-replica2');
});

test('the file edits: a replica taken out keeps the others; moved, its entry (comment and all) goes along', () => {
  const doc = parseDocument(`clusters:\n  c:\n    zones:\n      bj:\n        replicas:\n          - name: r1 # first\n            host: h\n            port: 1\n          - h:2\n      sh:\n        replicas: []\n`);
  const e = removeReplica(doc, 'c', 'bj', { host: 'h', port: 1 });
  addReplica(doc, 'c', 'sh', e);
  assert.match(doc.toString(), /sh:\n\s+replicas:\n\s+- name: r1 # first/);
  assert.equal(removeReplica(doc, 'c', 'bj', { host: 'h', port: 2 }) !== undefined, true);
  assert.equal(removeReplica(doc, 'c', 'bj', { host: 'h', port: 9 }), undefined);
});

test("the watch's lease excludes only another watch: a switch or failover (the cluster) passes it", () => {
  assert.equal(overlaps(WATCH_TARGET, [CLUSTER_TARGET]), false);
  assert.equal(overlaps(CLUSTER_TARGET, [WATCH_TARGET]), false);
  assert.equal(overlaps(WATCH_TARGET, [WATCH_TARGET]), true);
  assert.equal(overlaps(CLUSTER_TARGET, ['db.t']), true);
  const row: LeaseRow = { zone: 'bj', cluster: 'c', target: WATCH_TARGET, jobId: 'W1', holder: 'h:1:x', host: 'other', pid: 1, leftMs: 20_000, kind: 'emha-watch' };
  const here = { host: 'h', pidAlive: () => true };
  assert.equal(decideAcquire([row], { targets: [CLUSTER_TARGET], resume: false, kind: 'emha-switch' }, here).ok, true);
  const second = decideAcquire([row], { targets: [WATCH_TARGET], resume: true, kind: 'emha-watch' }, here);
  assert.equal(second.ok, false);
  assert.match((second as { reason: string }).reason, /emha-watch job W1/);
});
