#!/usr/bin/env node
// Runs every test file under test/ with node's test runner (TypeScript through tsx).
// Usage: node scripts/run-tests.mjs [unit|integration|path...] [--test-name-pattern=...]
// Integration files each start their own sandbox on free ports; two run at a time on 2 cores.
import { readdirSync, statSync, readFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

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
// The longest files first (two run at a time): started in name order, osc.test.ts (~2.5 min) began
// near the end and ran on alone, the whole run 16 min; longest first, the two slots end together.
// Measured seconds of the slow ones (CI 2026-12-04); a file not listed sorts after them.
const SLOW = {
  'osc.test.ts': 142, 'gz-move.test.ts': 139, 'emha-switch.test.ts': 106, 'gz-switch.test.ts': 105, 'jobs.test.ts': 84,
  'check-truth.test.ts': 80, 'drc-faults.test.ts': 61, 'drc-feed.test.ts': 55, 'drc.test.ts': 54, 'emha-global.test.ts': 50,
  'gz-workload.test.ts': 46, 'dbus-move.test.ts': 52, 'emha-watch.test.ts': 45, 'osc-safety.test.ts': 42, 'check-drc.test.ts': 39, 'emha-failover.test.ts': 39,
  'drill.test.ts': 101, 'dbus-cutover.test.ts': 60, 'sandbox-wan.test.ts': 40, 'drc-three.test.ts': 48,
};
const weight = (f) => SLOW[f.split('/').pop()] ?? (f.includes('integration') ? 1 : 0);
files = files.map((f, i) => [f, i]).sort((a, b) => weight(b[0]) - weight(a[0]) || a[1] - b[1]).map(([f]) => f);
const concurrency = process.env.EZCTL_TEST_CONCURRENCY ?? '2';
// A test that hangs fails after --test-timeout instead of holding the run; --test-force-exit ends a
// file's process once its tests are done even if a failed test left a handle open; and the whole
// run has a hard limit (its process group is killed) so CI always finishes and reports.
const perTestMs = process.env.EZCTL_TEST_TIMEOUT_MS ?? '300000';
const wholeRunMs = Number(process.env.EZCTL_TEST_RUN_LIMIT_MS ?? 20 * 60_000);
// each running test sandbox leaves a marker here (test/helpers/sandbox.ts); what is left when the
// run ends (a file killed by the time limit ran no handler) is stopped below
const sandboxes = mkdtempSync(join(tmpdir(), 'ezctl-test-run-'));
const timesFile = join(tmpdir(), `ezctl-test-times-${process.pid}.txt`);
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${perTestMs}`, '--test-force-exit', '--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${fileURLToPath(new URL('./file-times-reporter.mjs', import.meta.url))}`, '--test-reporter-destination=stdout', ...flags, ...files],
  { stdio: 'inherit', detached: true, env: { ...process.env, EZCTL_TEST_SANDBOXES: sandboxes, EZCTL_TEST_TIMES_FILE: timesFile } },
);
function stopLeftSandboxes() {
  for (const m of readdirSync(sandboxes)) {
    const dir = readFileSync(join(sandboxes, m), 'utf8');
    if (existsSync(dir)) {
      console.error(`stopping a sandbox a killed test left running: ${dir}`);
      spawnSync(process.execPath, [fileURLToPath(new URL('../bin/ezctl', import.meta.url)), 'sandbox', 'down', '--dir', dir], { stdio: 'inherit', timeout: 60_000 });
    }
  }
  rmSync(sandboxes, { recursive: true, force: true });
}
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
  if (existsSync(timesFile)) {
    console.log(`\n${readFileSync(timesFile, 'utf8')}`);
    rmSync(timesFile, { force: true });
  }
  stopLeftSandboxes();
  process.exit(code ?? (signal ? 1 : 0));
});
