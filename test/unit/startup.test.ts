// --help and usage errors are answered without loading the server layer: mysql2, yaml and zod
// cost 0.1-0.3 s of start-up (measured: ezctl --help p50 0.32 s with them, 0.15 s without, node
// itself 0.09 s). A command module that imports a parser from a file that also talks to servers
// brings them all in; this catches it. It runs dist/ as tsc writes it, whose packages load as
// modules the hook can list: the bundle bin/ezctl runs has the same import graph (lazy imports
// are its lazy chunks) with the packages inside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.js';

const UNBUNDLED = join(ROOT, 'dist', 'cli.js');

function packagesLoaded(args: string[]): string[] {
  const r = spawnSync(process.execPath, ['-r', join(ROOT, 'test', 'helpers', 'cjs-packages.cjs'), UNBUNDLED, ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  const line = /CJS packages: (.*)/.exec(r.stderr)?.[1];
  assert.ok(line !== undefined, `no package list from ezctl ${args.join(' ')}: ${r.stderr}`);
  return line.split(' ').filter(Boolean);
}

test('--help of the program and of commands loads no server driver or config parser', () => {
  for (const args of [['--help'], ['check', 'full', '--help'], ['osc', '--help'], ['drc', 'status', '--help'], ['sandbox', 'up', '--help'], ['check', 'full', '--max-load', 'x']]) {
    const loaded = packagesLoaded(args);
    for (const heavy of ['mysql2', 'yaml', '@vlasky/zongji']) assert.ok(!loaded.includes(heavy), `ezctl ${args.join(' ')} loaded ${heavy} (${loaded.join(' ')})`);
  }
});

test('the package list sees what a command that reads the topology loads', () => {
  // so the test above cannot pass by seeing nothing
  const loaded = packagesLoaded(['--config', join(ROOT, 'does-not-exist.yaml'), 'topo', 'show']);
  assert.ok(loaded.includes('yaml') || loaded.includes('mysql2'), `expected the topology layer: ${loaded.join(' ')}`);
});
