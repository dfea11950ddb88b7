import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { addressFrom, operatorZone, proxyAddressFrom } from '../../src/core/config/via.js';
import { parseTopology } from '../../src/core/config/load.js';
import { planRelay, relayPortCount, viaOf } from '../../src/core/sandbox/wan/index.js';
import { Relay } from '../../src/core/sandbox/wan/relay.js';
import { parseLatency } from '../../src/commands/sandbox.js';
import { EzError } from '../../src/core/exit.js';
import { seenFromZone } from '../../src/core/proxy/zone.js';

const bjMaster = { zone: 'bj', host: '127.0.0.1', port: 3307, socket: '/tmp/bj.sock', via: { sh: { host: '127.0.0.1', port: 41001 } } };

test('addressFrom: the node\'s own address inside its zone, without a zone, or from a zone it has no via for; its via from another zone', () => {
  assert.deepEqual(addressFrom(bjMaster, 'bj'), { host: '127.0.0.1', port: 3307, socket: '/tmp/bj.sock' });
  assert.deepEqual(addressFrom(bjMaster, undefined), { host: '127.0.0.1', port: 3307, socket: '/tmp/bj.sock' });
  assert.deepEqual(addressFrom(bjMaster, 'gz'), { host: '127.0.0.1', port: 3307, socket: '/tmp/bj.sock' });
  // through the relay: no socket (it would bypass the distance)
  assert.deepEqual(addressFrom(bjMaster, 'sh'), { host: '127.0.0.1', port: 41001, seenFrom: 'sh' });
  assert.deepEqual(addressFrom({ zone: 'bj', host: 'h', port: 1 }, 'sh'), { host: 'h', port: 1 });
});

test('proxyAddressFrom: a zone\'s proxy listener as another zone reaches it', () => {
  const p = { zone: 'bj', write: { host: 'a', port: 1 }, read: { host: 'a', port: 2 }, via: { sh: { write: { host: 'r', port: 11 }, read: { host: 'r', port: 12 } } } };
  assert.deepEqual(proxyAddressFrom(p, 'write', 'bj'), { host: 'a', port: 1 });
  assert.deepEqual(proxyAddressFrom(p, 'write', 'sh'), { host: 'r', port: 11 });
  assert.deepEqual(proxyAddressFrom(p, 'read', 'sh'), { host: 'r', port: 12 });
  assert.deepEqual(proxyAddressFrom(p, 'read', undefined), { host: 'a', port: 2 });
});

test('operatorZone: --from-zone, then $EZCTL_ZONE, then the first zone', () => {
  assert.equal(operatorZone(['bj', 'sh'], 'sh', {}), 'sh');
  assert.equal(operatorZone(['bj', 'sh'], undefined, { EZCTL_ZONE: 'sh' }), 'sh');
  assert.equal(operatorZone(['bj', 'sh'], undefined, { EZCTL_ZONE: '' }), 'bj');
  assert.equal(operatorZone([], undefined, {}), undefined);
});

const FILE = `
zones: [bj, sh]
clusters:
  c1:
    zones:
      bj:
        master: { host: 127.0.0.1, port: 3307, via: { sh: "127.0.0.1:41001" } }
        proxy: { write: "127.0.0.1:6001", admin: a.sock, config: a.cfg, via: { sh: { write: "127.0.0.1:41002" } } }
      sh:
        master: { host: 127.0.0.1, port: 3308, via: { bj: "127.0.0.1:41003" } }
`;

test('topology via: parsed into each node; the proxy of a zone sees other zones\' nodes through theirs', () => {
  const t = parseTopology(FILE, 'x.yaml');
  assert.deepEqual(t.master('c1', 'bj').via, { sh: { host: '127.0.0.1', port: 41001 } });
  assert.deepEqual(addressFrom(t.master('c1', 'sh'), 'bj'), { host: '127.0.0.1', port: 41003, seenFrom: 'bj' });
  const seen = seenFromZone(t, 'c1', 'bj')!;
  assert.deepEqual(seen.to({ name: 'sh-master', host: '127.0.0.1', port: 3308 }), { name: 'sh-master', host: '127.0.0.1', port: 41003 });
  assert.deepEqual(seen.back({ name: 'sh-master', host: '127.0.0.1', port: 41003 }), { name: 'sh-master', host: '127.0.0.1', port: 3308 });
  // its own zone's master is left as it is
  assert.deepEqual(seen.to({ name: 'bj-master', host: '127.0.0.1', port: 3307 }), { name: 'bj-master', host: '127.0.0.1', port: 3307 });
});

test('topology via: the node\'s own zone, an undeclared zone and an address without a port are refused, each naming its path', () => {
  const bad = FILE
    .replace('via: { sh: "127.0.0.1:41001" }', 'via: { bj: "127.0.0.1:41001", gz: "127.0.0.1:1", sh: "127.0.0.1" }');
  let err: unknown;
  try {
    parseTopology(bad, 'x.yaml');
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof EzError);
  const d = err.details.join('\n');
  assert.match(d, /clusters\.c1\.zones\.bj\.master\.via\.bj: zone "bj" is this node's own zone/);
  assert.match(d, /clusters\.c1\.zones\.bj\.master\.via\.gz: zone "gz" is not declared/);
  assert.match(d, /clusters\.c1\.zones\.bj\.master\.via\.sh: "127\.0\.0\.1" has no port/);
});

test('planRelay: a port per ordered zone pair and far target; via maps each target to its relayed address per zone', () => {
  const targets = [
    { zone: 'bj', target: 'bj-master', host: '127.0.0.1', port: 3307 },
    { zone: 'sh', target: 'sh-master', host: '127.0.0.1', port: 3308 },
    { zone: 'gz', target: 'gz-master', host: '127.0.0.1', port: 3309 },
  ];
  assert.equal(relayPortCount(['bj', 'sh', 'gz'], targets), 6);
  const c = planRelay(['bj', 'sh', 'gz'], targets, [1, 2, 3, 4, 5, 6], { latencyMs: 30, jitterMs: 5 });
  assert.deepEqual(c.listeners.map((l) => `${l.from}->${l.target}:${l.listen}`), ['bj->sh-master:1', 'bj->gz-master:2', 'sh->bj-master:3', 'sh->gz-master:4', 'gz->bj-master:5', 'gz->sh-master:6']);
  assert.equal(Object.keys(c.links).length, 6);
  assert.deepEqual(c.links['bj>sh'], { latencyMs: 30, jitterMs: 5, cut: false });
  assert.deepEqual(viaOf(c).get('bj-master'), { sh: '127.0.0.1:3', gz: '127.0.0.1:5' });
  assert.throws(() => planRelay(['bj', 'sh', 'gz'], targets, [1, 2], { latencyMs: 0, jitterMs: 0 }), /6 ports needed/);
});

test('parseLatency: a round trip and its jitter', () => {
  assert.deepEqual(parseLatency('30ms'), { latencyMs: 30, jitterMs: 0 });
  assert.deepEqual(parseLatency('30ms,jitter 5ms'), { latencyMs: 30, jitterMs: 5 });
  assert.deepEqual(parseLatency('0.1s, 5'), { latencyMs: 100, jitterMs: 5 });
  assert.throws(() => parseLatency('fast'));
});

// ---- the relay, in process, against an echo server on loopback ----

async function listen(s: Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as AddressInfo).port;
}

async function withRelay(latencyMs: number, jitterMs: number, f: (r: Relay, port: number) => Promise<void>): Promise<void> {
  const echo = createServer((s) => s.on('error', () => {}).pipe(s));
  const echoPort = await listen(echo);
  const probe = createServer();
  const port = await listen(probe);
  await new Promise((r) => probe.close(r));
  const relay = new Relay(planRelay(['bj', 'sh'], [{ zone: 'sh', target: 'sh-echo', host: '127.0.0.1', port: echoPort }], [port], { latencyMs, jitterMs }));
  await relay.start();
  try {
    await f(relay, port);
  } finally {
    await relay.stop();
    echo.close();
  }
}

function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => resolve(s));
    s.on('error', reject);
  });
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('relay: bytes of a connection arrive whole and in order under jitter; a round trip pays at least the configured latency', async () => {
  await withRelay(20, 18, async (relay, port) => {
    const s = await connectTo(port);
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (got += d));
    const sent: string[] = [];
    for (let i = 0; i < 200; i++) {
      sent.push(`<${i}>`);
      s.write(`<${i}>`);
      if (i % 20 === 0) await settle(1);
    }
    const t0 = Date.now();
    while (got.length < sent.join('').length && Date.now() - t0 < 5000) await settle(5);
    assert.equal(got, sent.join(''));
    assert.equal(relay.status().find((l) => l.from === 'bj')!.connections, 1);
    relay.setLatency({ latencyMs: 40 });
    const before = got.length;
    const t1 = performance.now();
    s.write('x');
    while (got.length === before) await settle(1);
    assert.ok(performance.now() - t1 >= 39, `a round trip at 40 ms took ${performance.now() - t1} ms`);
    s.destroy();
  });
});

test('relay: a partition holds established connections and answers new ones with nothing; heal resets them and new ones pass', async () => {
  await withRelay(0, 0, async (relay, port) => {
    const held = await connectTo(port);
    let heldGot = '';
    held.on('data', (d) => (heldGot += d));
    held.write('a');
    while (heldGot !== 'a') await settle(2);
    relay.partition('bj', 'sh');
    assert.deepEqual(relay.status().map((l) => l.cut), [true, true]);
    held.write('b');
    // a new connection is accepted (no "connection refused") and gets no answer
    const fresh = await connectTo(port);
    let freshGot = '';
    fresh.on('data', (d) => (freshGot += d));
    fresh.write('c');
    await settle(100);
    assert.equal(heldGot, 'a');
    assert.equal(freshGot, '');
    const reset = (s: Socket) => new Promise<string>((r) => s.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? e.message)).on('close', () => r('closed')));
    const heldEnd = reset(held);
    const freshEnd = reset(fresh);
    relay.heal();
    assert.equal(await heldEnd, 'ECONNRESET');
    assert.equal(await freshEnd, 'ECONNRESET');
    const after = await connectTo(port);
    let afterGot = '';
    after.on('data', (d) => (afterGot += d));
    after.write('d');
    while (afterGot !== 'd') await settle(2);
    after.destroy();
    assert.throws(() => relay.partition('bj', 'gz'), /zone "gz" has no relayed link/);
  });
});

test('relay: a server\'s last bytes arrive before its FIN (a KILL\'s error packet is not lost behind a reset)', async () => {
  const bye = createServer((s) => {
    s.on('error', () => {});
    s.end('bye');
  });
  const byePort = await listen(bye);
  const probe = createServer();
  const port = await listen(probe);
  await new Promise((r) => probe.close(r));
  const relay = new Relay(planRelay(['bj', 'sh'], [{ zone: 'sh', target: 'sh-bye', host: '127.0.0.1', port: byePort }], [port], { latencyMs: 40, jitterMs: 0 }));
  await relay.start();
  try {
    const s = await connectTo(port);
    let got = '';
    s.on('data', (d) => (got += d));
    const how = await new Promise<string>((r) => {
      s.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? e.message));
      s.on('end', () => r('end'));
    });
    assert.equal(how, 'end');
    assert.equal(got, 'bye');
    s.destroy();
  } finally {
    await relay.stop();
    bye.close();
  }
});
