#!/usr/bin/env node
// Runs every test file under test/ with node's test runner (TypeScript through tsx).
// Usage: node scripts/run-tests.mjs [unit|integration|path...] [--test-name-pattern=...]
// Integration files each start their own sandbox on free ports; two run at a time on 2 cores.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

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
// A test that hangs fails after --test-timeout instead of holding the run; --test-force-exit ends a
// file's process once its tests are done even if a failed test left a handle open; and the whole
// run has a hard limit (its process group is killed) so CI always finishes and reports.
const perTestMs = process.env.EZCTL_TEST_TIMEOUT_MS ?? '300000';
const wholeRunMs = Number(process.env.EZCTL_TEST_RUN_LIMIT_MS ?? 20 * 60_000);
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${perTestMs}`, '--test-force-exit', '--test-reporter=spec', ...flags, ...files],
  { stdio: 'inherit', detached: true },
);
const killGroup = (sig) => {
  try {
    process.kill(-child.pid, sig);
  } catch {
    /* already gone */
  }
};
const limit = setTimeout(() => {
  console.error(`test run stopped after ${wholeRunMs} ms (EZCTL_TEST_RUN_LIMIT_MS): a test hangs`);
  killGroup('SIGKILL');
}, wholeRunMs);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => killGroup(sig));
child.on('exit', (code, signal) => {
  clearTimeout(limit);
  process.exit(code ?? (signal ? 1 : 0));
});
