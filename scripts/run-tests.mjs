#!/usr/bin/env node
// Runs every test file under test/ with node's test runner (TypeScript through tsx).
// Usage: node scripts/run-tests.mjs [unit|integration|path...] [--test-name-pattern=...]
// Integration files each start their own sandbox on free ports; two run at a time on 2 cores.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  let out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

// flags (e.g. --test-name-pattern=...) go to node's test runner; the rest name files or folders
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
let files;
if (args.length === 0) files = walk('test');
else files = args.flatMap((a) => (a === 'unit' || a === 'integration' ? walk(join('test', a)) : statSync(a).isDirectory() ? walk(a) : [a]));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(2);
}
const concurrency = process.env.EZCTL_TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...flags, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
