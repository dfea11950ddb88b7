// `ezctl --help` wall time against a bare `node -e ''` (target: at most 2x), a command that loads
// the topology layer, and the same commands from a bundled build (bench/_bundle.ts) to show what
// module loading costs.
import { timeCommand, stats, row } from './_util.js';
import { bundleEzctl } from './_bundle.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const bundle = await bundleEzctl();
try {
  const cases: Array<[string, string, string[]]> = [
    ["node -e ''", process.execPath, ['-e', '']],
    ['ezctl --help', process.execPath, ['bin/ezctl', '--help']],
    ['ezctl --version', process.execPath, ['bin/ezctl', '--version']],
    ['ezctl sandbox up --help', process.execPath, ['bin/ezctl', 'sandbox', 'up', '--help']],
    ['bundled --help', process.execPath, [bundle.launcher, '--help']],
    ['bundled --version', process.execPath, [bundle.launcher, '--version']],
    ['bundled sandbox up --help', process.execPath, [bundle.launcher, 'sandbox', 'up', '--help']],
  ];
  for (const [, cmd, args] of cases) timeCommand(cmd, args); // warm the page cache
  // interleaved, so a slow spell of the machine falls on every case alike
  const samples = cases.map(() => [] as number[]);
  for (let i = 0; i < RUNS; i++) cases.forEach(([, cmd, args], j) => samples[j]!.push(timeCommand(cmd, args)));
  const results = cases.map(([name], j) => [name, stats(samples[j]!)] as const);
  const base = results[0]![1].p50;
  console.log(`startup, ${RUNS} runs each, interleaved (ms); the bundle is ${bundle.files} files`);
  console.log(row(['command', 'min', 'p50', 'p95', 'max', 'x node'], [26, 8, 8, 8, 8, 8]));
  for (const [name, s] of results) console.log(row([name, s.min, s.p50, s.p95, s.max, (s.p50 / base).toFixed(2)], [26, 8, 8, 8, 8, 8]));
  const ratio = results[1]![1].p50 / base;
  console.log(`\nezctl --help p50 is ${ratio.toFixed(2)}x node -e '' (target <= 2x): ${ratio <= 2 ? 'met' : 'NOT met'}`);
  const saved = (i: number, j: number) => (results[i]![1].p50 - results[j]![1].p50).toFixed(0);
  console.log(`a bundled build saves ${saved(1, 4)} ms on --help, ${saved(2, 5)} ms on --version, ${saved(3, 6)} ms on sandbox up --help (p50)`);
} finally {
  bundle.remove();
}
