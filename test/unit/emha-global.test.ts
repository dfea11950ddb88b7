// emha in a global cluster: which zones' proxies follow a zone's master (pure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTopology } from '../../src/core/config/load.js';
import { writeRouteZones, describeWriteZone } from '../../src/core/emha/global.js';

const proxy = (z: string, p: number) => `proxy: {write: "127.0.0.1:${p}", read: "127.0.0.1:${p + 1}", admin: proxy-${z}/admin.sock, config: proxy-${z}/haproxy.cfg}`;
const FILE = (head: string) => `zones: [bj, sh, sz]
clusters:
  demo:
${head}
    zones:
      bj:
        master: {host: 10.0.0.1, port: 3306}
        ${proxy('bj', 31001)}
      sh:
        master: {host: 10.1.0.1, port: 3306}
        ${proxy('sh', 31011)}
      sz:
        master: {host: 10.2.0.1, port: 3306}
`;

test('a sharding cluster: a zone\'s proxy follows its own master only', () => {
  const t = parseTopology(FILE('    model: sharding'), '/x/ezctl.yaml');
  assert.deepEqual(writeRouteZones(t, 'demo', 'bj', null), ['bj']);
  assert.deepEqual(writeRouteZones(t, 'demo', 'sz', null), ['sz']);
});

test('a global cluster: the write zone\'s master is followed by every zone\'s proxy (its own first), another zone\'s by none', () => {
  const t = parseTopology(FILE('    model: global\n    writerZone: bj'), '/x/ezctl.yaml');
  assert.deepEqual(writeRouteZones(t, 'demo', 'bj', { writeZone: 'bj' }), ['bj', 'sh']);
  // the routing table moved the write zone to sh: sh's master is followed everywhere, bj's nowhere
  assert.deepEqual(writeRouteZones(t, 'demo', 'sh', { writeZone: 'sh' }), ['sh', 'bj']);
  assert.deepEqual(writeRouteZones(t, 'demo', 'bj', { writeZone: 'sh' }), []);
  assert.deepEqual(writeRouteZones(t, 'demo', 'sz', { writeZone: 'bj' }), []);
  assert.equal(describeWriteZone({ writeZone: 'sh', from: 'routes', version: 3, state: 'active', unreachable: [] }), 'write zone sh (routing table v3)');
  assert.equal(describeWriteZone({ writeZone: 'bj', from: 'file', version: 0, state: 'active', unreachable: [] }), "write zone bj (the topology file's writerZone)");
});
