// `ezctl --help` wall time against a bare `node -e ''` (target: at most 2x), a command that loads
// the topology layer, and the same commands from dist/ as tsc writes it (bench/_bundle.ts; bin/ezctl
// runs the bundled build) to show what module loading costs.
import { timeCommand, stats, row } from './_util.js';
import { unbundledEzctl } from './_bundle.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const unbundled = unbundledEzctl();
{
  const cases: Array<[string, string, string[]]> = [
    ["node -e ''", process.execPath, ['-e', '']],
    ['ezctl --help', process.execPath, ['bin/ezctl', '--help']],
    ['ezctl --version', process.execPath, ['bin/ezctl', '--version']],
    ['ezctl sandbox up --help', process.execPath, ['bin/ezctl', 'sandbox', 'up', '--help']],
    ['unbundled --help', process.execPath, [unbundled.launcher, '--help']],
    ['unbundled --version', process.execPath, [unbundled.launcher, '--version']],
    ['unbundled sandbox up --help', process.execPath, [unbundled.launcher, 'sandbox', 'up', '--help']],
  ];
  for (const [, cmd, args] of cases) timeCommand(cmd, args); // warm the page cache
  // interleaved, so a slow spell of the machine falls on every case alike
  const samples = cases.map(() => [] as number[]);
  for (let i = 0; i < RUNS; i++) cases.forEach(([, cmd, args], j) => samples[j]!.push(timeCommand(cmd, args)));
  const results = cases.map(([name], j) => [name, stats(samples[j]!)] as const);
  const base = results[0]![1].p50;
  console.log(`startup, ${RUNS} runs each, interleaved (ms); unbundled, dist/ is ${unbundled.files} modules`);
  console.log(row(['command', 'min', 'p50', 'p95', 'max', 'x node'], [26, 8, 8, 8, 8, 8]));
  for (const [name, s] of results) console.log(row([name, s.min, s.p50, s.p95, s.max, (s.p50 / base).toFixed(2)], [26, 8, 8, 8, 8, 8]));
  const ratio = results[1]![1].p50 / base;
  console.log(`\nezctl --help p50 is ${ratio.toFixed(2)}x node -e '' (target <= 2x): ${ratio <= 2 ? 'met' : 'NOT met'}`);
  const saved = (i: number, j: number) => (results[i]![1].p50 - results[j]![1].p50).toFixed(0);
  console.log(`the bundled build saves ${saved(4, 1)} ms on --help, ${saved(5, 2)} ms on --version, ${saved(6, 3)} ms on sandbox up --help (p50)`);
}
