// The pure parts of emha failover and rejoin, and the topology file's fenced list: which replica is
// promoted, what a DRC checkpoint is set back to, what a returning old master has that the new one
// lacks (per server, not per domain), and the fenced list's validation and editing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { domainOnly, pickCandidate, replaceDomain } from '../../src/core/emha/failover.js';
import { missingByServer } from '../../src/core/emha/rejoin.js';
import { editTopologyFile, fenceNode, unfenceNode } from '../../src/core/config/editor.js';
import { loadTopology, parseTopology } from '../../src/core/config/load.js';
import { ezErrorOf } from '../helpers/errors.js';

test('the candidate is the replica that received most in the zone\'s domain, then applied most, then file order', () => {
  const v = (name: string, received: string, applied: string, eligible = true) => ({ name, received, applied, eligible });
  assert.equal(pickCandidate([v('r1', '1-101-50', '1-101-50'), v('r2', '1-101-60', '1-101-40')], 1), 'r2');
  assert.equal(pickCandidate([v('r1', '1-101-60', '1-101-55'), v('r2', '1-101-60', '1-101-58')], 1), 'r2');
  assert.equal(pickCandidate([v('r1', '1-101-60', '1-101-60'), v('r2', '1-101-60', '1-101-60')], 1), 'r1');
  // when nobody holds everything, another domain's progress (DRC's writes from another zone) does not make a replica more advanced
  assert.equal(pickCandidate([v('r1', '1-101-60,1002-101-900', '1-101-60'), v('r2', '1-101-61,1002-101-10', '1-101-61')], 1), 'r2');
  assert.equal(pickCandidate([v('r1', '1-101-90', '1-101-90', false), v('r2', '1-101-60', '1-101-60')], 1), 'r2');
  assert.equal(pickCandidate([v('r1', '1-101-90', '1-101-90', false)], 1), undefined);
  // measured: equal in the zone's domain, r2 one DRC-applied transaction ahead in domain 1002. r1 promoted,
  // r2 could not replicate from it (error 1236: 1002-101-38 not in the master's binlog): r2 covers r1, r2 it is
  assert.equal(pickCandidate([v('r1', '1-101-24,1002-101-37', '1-101-24,1002-101-37'), v('r2', '1-101-24,1002-101-38', '1-101-24,1002-101-38')], 1), 'r2');
  // nobody covers everyone: the zone's own domain decides
  assert.equal(pickCandidate([v('r1', '1-101-25,1002-101-37', '1-101-25,1002-101-37'), v('r2', '1-101-24,1002-101-38', '1-101-24,1002-101-38')], 1), 'r1');
});

test('a DRC checkpoint is set back in the zone\'s domain only', () => {
  assert.equal(domainOnly('1-101-83,1002-101-89', 1), '1-101-83');
  assert.equal(domainOnly('1002-101-89', 1), '');
  assert.equal(replaceDomain('1-101-83,1002-101-89', 1, '1-101-28,1002-102-5,2-201-7'), '1-101-28,1002-101-89');
  assert.equal(replaceDomain('1002-101-89', 1, '1-102-3'), '1-102-3,1002-101-89');
  assert.equal(replaceDomain('1-101-83,1002-101-89', 1, '2-201-7'), '1002-101-89');
});

test('what an old master has that the new one lacks is judged per server: new writes that pass its sequence numbers hide nothing', () => {
  // measured shape: the old master wrote 1-101-29..83 that no replica got; the new master then wrote 1-102-29..140
  assert.deepEqual(missingByServer('1-101-83,1002-101-148', '1-101-28,1-102-140,1002-101-37,1002-102-61').text, ['1-101-29..83', '1002-101-38..148']);
  assert.equal(missingByServer('1-101-83', '1-101-28,1-102-140').count, 55n);
  assert.deepEqual(missingByServer('1-101-29', '1-101-28,1-102-140').text, ['1-101-29']);
  assert.deepEqual(missingByServer('1-101-28,2-201-5', '1-101-28,1-102-140,2-201-9').text, []);
  // a domain the master never saw at all
  assert.deepEqual(missingByServer('1-101-28,7-101-3', '1-101-28').text, ['7-101-1..3']);
  assert.deepEqual(missingByServer('', '1-101-28').text, []);
});

const FILE = `zones: [bj, sh]
clusters:
  orders:
    zones:
      bj:
        master: {name: bj-a, host: 10.0.0.1, port: 3306}
        replicas:
          - {name: bj-b, host: 10.0.0.2, port: 3306} # the promotable one
          - {host: 10.0.0.3, port: 3306}
      sh:
        master: {host: 10.1.0.1, port: 3306}
`;

test('the fenced list names nodes of its zone; a node in it is resolved fenced', () => {
  const t = parseTopology(FILE.replace('      sh:', '        fenced: [bj-b, bj-replica2]\n      sh:'), 'x.yaml');
  assert.deepEqual(t.fencedNames('orders', 'bj'), ['bj-b', 'bj-replica2']);
  assert.equal(t.node('orders', 'bj-b')!.fenced, true);
  assert.equal(t.node('orders', 'bj-replica2')!.fenced, true);
  assert.equal(t.node('orders', 'bj-a')!.fenced, undefined);
  const e = ezErrorOf(() => parseTopology(FILE.replace('      sh:', '        fenced: [sh-master]\n      sh:'), 'x.yaml'));
  assert.ok(e.details.some((d) => /clusters\.orders\.zones\.bj\.fenced\.0: "sh-master" is not a node of zone bj/.test(d)), e.details.join('\n'));
});

test('fenceNode / unfenceNode edit the file, keep its comments, and are idempotent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-fence-'));
  try {
    const path = join(dir, 'ezctl.yaml');
    writeFileSync(path, FILE);
    assert.equal(editTopologyFile(path, (doc) => fenceNode(doc, 'orders', 'bj', 'bj-a')).changed, true);
    assert.equal(editTopologyFile(path, (doc) => fenceNode(doc, 'orders', 'bj', 'bj-a')).changed, false);
    editTopologyFile(path, (doc) => fenceNode(doc, 'orders', 'bj', 'bj-replica2'));
    assert.deepEqual(loadTopology(path).fencedNames('orders', 'bj'), ['bj-a', 'bj-replica2']);
    assert.match(readFileSync(path, 'utf8'), /# the promotable one/);
    editTopologyFile(path, (doc) => unfenceNode(doc, 'orders', 'bj', 'bj-a'));
    assert.deepEqual(loadTopology(path).fencedNames('orders', 'bj'), ['bj-replica2']);
    editTopologyFile(path, (doc) => unfenceNode(doc, 'orders', 'bj', 'bj-replica2'));
    assert.doesNotMatch(readFileSync(path, 'utf8'), /fenced/);
    assert.equal(editTopologyFile(path, (doc) => unfenceNode(doc, 'orders', 'bj', 'bj-replica2')).changed, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
