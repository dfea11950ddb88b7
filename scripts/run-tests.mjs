#!/usr/bin/env node
// Runs every test file under test/ with node's test runner (TypeScript through tsx).
// Usage: node scripts/run-tests.mjs [unit|integration|path...] [--test-name-pattern=...]
// Integration files each start their own sandbox on free ports; two run at a time on 2 cores.
import { readdirSync, statSync, statfsSync, readFileSync, writeFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { basename, dirname, join, resolve } from 'node:path';
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
// Measured seconds of the slow ones (a full run, 2026-12-05 11:40, test sandboxes on tmpfs, 609 s in all);
// a file not listed sorts after them.
const SLOW = {
  'drill.test.ts': 80, 'osc.test.ts': 77, 'emha-watch.test.ts': 57, 'check-truth.test.ts': 55,
  'drc-feed.test.ts': 53, 'gz-move.test.ts': 51, 'gz-switch.test.ts': 46, 'drc-faults.test.ts': 45,
  'jobs.test.ts': 44, 'drc.test.ts': 43, 'emha-switch.test.ts': 42, 'gz-workload.test.ts': 41,
  'check-drc.test.ts': 38, 'emha-failover.test.ts': 34, 'check.test.ts': 28, 'dbus-move.test.ts': 27,
  'migrate-int2bigint-exec.test.ts': 26, 'osc-family-safety.test.ts': 26, 'osc-safety.test.ts': 25,
  'steps.test.ts': 25, 'cli-errors.test.ts': 24, 'dbus-cutover.test.ts': 21,
  'migrate-int2bigint-families.test.ts': 20, 'migrate-drc-ts.test.ts': 19, 'sandbox.test.ts': 19,
};
// All unit files run in one process (below): ~15 s, sorted among the integration files that long.
const UNIT_BUNDLE_SECONDS = 15;
const weight = (f) => (f.includes('integration') ? SLOW[f.split('/').pop()] ?? 1 : f.endsWith('unit-files.test.mjs') ? UNIT_BUNDLE_SECONDS : 0);
const concurrency = process.env.EZCTL_TEST_CONCURRENCY ?? '2';
// A test that hangs fails after --test-timeout instead of holding the run; --test-force-exit ends a
// file's process once its tests are done even if a failed test left a handle open; and the whole
// run has a hard limit (its process group is killed) so CI always finishes and reports.
const perTestMs = process.env.EZCTL_TEST_TIMEOUT_MS ?? '300000';
const wholeRunMs = Number(process.env.EZCTL_TEST_RUN_LIMIT_MS ?? 20 * 60_000);
// each running test sandbox leaves a marker here (test/helpers/sandbox.ts); what is left when the
// run ends (a file killed by the time limit ran no handler) is stopped below
const sandboxes = mkdtempSync(join(tmpdir(), 'ezctl-test-run-'));
// Node's runner starts a process per file: 58 unit files cost ~64 s of wall time and 70 CPU-s that
// way (tsx loading in each), one process importing them all 13 s and 7 CPU-s. Their tests share
// no state that needs a process of its own (all 472 pass together).
const unitFiles = files.filter((f) => !f.includes('integration'));
if (unitFiles.length > 1) {
  const bundle = join(sandboxes, 'unit-files.test.mjs');
  writeFileSync(bundle, unitFiles.map((f) => `import ${JSON.stringify(pathToFileURL(resolve(f)).href)};\n`).join(''));
  files = [...files.filter((f) => f.includes('integration')), bundle];
}
files = files.map((f, i) => [f, i]).sort((a, b) => weight(b[0]) - weight(a[0]) || a[1] - b[1]).map(([f]) => f);
// The test sandboxes' servers go on tmpfs when there is room (EZCTL_TEST_DATA_DIR, else /dev/shm
// with 4 GiB free; EZCTL_TEST_DATA_DIR= keeps them on disk): they fsync every commit, as production
// masters do, and on this machine's disk a commit took 6.7-10 ms under the suite's load against
// 0.8-1.4 ms on tmpfs. A kill -9 of a server still loses nothing it wrote (the data stays in memory);
// only the machine's own crash would, and no test crashes the machine. Benchmarks run on disk unless
// told otherwise, as the peers they compare with. Tests whose job must still be running when their
// next command arrives hold it with a throttle flag or a pause, never by its size.
function testDataDir() {
  if (process.env.EZCTL_TEST_DATA_DIR !== undefined) return process.env.EZCTL_TEST_DATA_DIR;
  try {
    const st = statfsSync('/dev/shm');
    if (st.bavail * st.bsize >= 4 * 2 ** 30) {
      rmSync(mkdtempSync('/dev/shm/ezctl-probe-'), { recursive: true });
      return '/dev/shm';
    }
  } catch {
    /* no /dev/shm, or not writable */
  }
  return '';
}
const dataDir = testDataDir();
// Each integration file's process appends its wall time here on exit (test/helpers/sandbox.ts);
// printed slowest first when the run ends: what to look at when the suite nears its budget.
const timesFile = join(sandboxes, 'file-times.tsv');
function printFileTimes() {
  if (!existsSync(timesFile)) return;
  const rows = readFileSync(timesFile, 'utf8').trim().split('\n').map((l) => l.split('\t')).map(([s, f, runs]) => [Number(s), f.replace(/^.*?\btest\//, 'test/'), Number(runs)]).sort((a, b) => b[0] - a[0]);
  const total = rows.reduce((t, r) => t + r[0], 0);
  const runs = rows.reduce((t, r) => t + r[2], 0);
  console.log(`\nseconds per integration test file, slowest first (${total.toFixed(0)} s and ${runs} ezctl runs in all, ${rows.length} files):`);
  for (const [s, f, n] of rows) console.log(`${s.toFixed(1).padStart(7)}  ${String(n).padStart(4)} runs  ${f}`);
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${perTestMs}`, '--test-force-exit', '--test-reporter=spec', ...flags, ...files],
  { stdio: 'inherit', detached: true, env: { ...process.env, EZCTL_TEST_SANDBOXES: sandboxes, EZCTL_TEST_DATA_DIR: dataDir } },
);
function stopLeftSandboxes() {
  for (const m of readdirSync(sandboxes).filter((f) => f !== 'file-times.tsv' && f !== 'unit-files.test.mjs')) {
    const dir = readFileSync(join(sandboxes, m), 'utf8');
    if (existsSync(dir)) {
      console.error(`stopping a sandbox a killed test left running: ${dir}`);
      spawnSync(process.execPath, [fileURLToPath(new URL('../bin/ezctl', import.meta.url)), 'sandbox', 'down', '--dir', dir], { stdio: 'inherit', timeout: 60_000 });
    }
    // its mkdtemp parent (test/helpers/sandbox.ts), left empty on tmpfs otherwise
    const parent = dirname(dir);
    if (basename(parent).startsWith('ezctl-test-')) rmSync(parent, { recursive: true, force: true });
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
  printFileTimes();
  stopLeftSandboxes();
  process.exit(code ?? (signal ? 1 : 0));
});
