// The sandbox workload as the routing table's reference client (issue 14, part W2), and
// `sandbox up --model global`: a global cluster's proxies send every zone's writes to the writer
// zone's master; the workload routes each write through the routing table (waits while a route
// is blocked, follows a flip), and its ack log lists every acknowledged write.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { show } from '../helpers/cli.js';
import { startSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { readDefaultsFile } from '../../src/core/config/defaults-file.js';
import { connect } from '../../src/core/db/connect.js';
import { loadTopology } from '../../src/core/config/load.js';

let g: TestSandbox | undefined;

before(async () => {
  g = await startSandbox({ zones: ['bj', 'sh'], replicas: 1, proxy: true, model: 'global', writerZone: 'sh', load: 200 });
});

after(async () => {
  await g?.down();
});

async function serverIdThrough(hostPort: string): Promise<number> {
  const [host, port] = hostPort.split(':');
  const password = readDefaultsFile(join(g!.dir, 'app.cnf')).password!;
  const db = await connect({ label: `proxy ${hostPort}`, host: host!, port: Number(port), user: 'app', password, passwordSource: 'test' });
  try {
    return Number(await db.value('SELECT @@server_id'));
  } finally {
    await db.close();
  }
}

test('up --model global: the file says model global and its writer zone, every zone\'s proxy sends writes to that zone\'s master, topo check and show agree', async () => {
  const topo = loadTopology(g!.config);
  const c = topo.file.clusters.demo!;
  assert.equal(c.model, 'global');
  assert.equal(c.writerZone, 'sh');
  assert.equal(c.shards, undefined);
  const st = (await g!.run(['--json', 'sandbox', 'status', '--dir', g!.dir])).json();
  for (const p of st.proxies) assert.equal(await serverIdThrough(p.write), g!.node('sh-master').serverId, `${p.zone}'s proxy`);
  const bjRead = st.proxies.find((p: any) => p.zone === 'bj').read;
  assert.equal(await serverIdThrough(bjRead), g!.node('bj-replica1').serverId, 'reads stay in the zone');
  const chk = await g!.run(['--json', 'topo', 'check']);
  assert.equal(chk.code, 0, show(chk));
  const rows = (await g!.run(['--json', 'topo', 'show'])).json();
  assert.equal(rows.find((r: any) => r.name === 'bj-proxy').proxy.writeTo, 'sh-master');
  assert.equal(rows.find((r: any) => r.name === 'sh-proxy').proxy.writeTo, 'sh-master');
});
