// `ezctl --help` wall time against a bare `node -e ''` (target: at most 2x), and a command that
// loads the topology layer, to show what lazy loading saves.
import { timeCommand, stats, row } from './_util.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const cases: Array<[string, string, string[]]> = [
  ["node -e ''", process.execPath, ['-e', '']],
  ['ezctl --help', process.execPath, ['bin/ezctl', '--help']],
  ['ezctl --version', process.execPath, ['bin/ezctl', '--version']],
  ['ezctl sandbox up --help', process.execPath, ['bin/ezctl', 'sandbox', 'up', '--help']],
];
for (const [, cmd, args] of cases) timeCommand(cmd, args); // warm the page cache
const results = cases.map(([name, cmd, args]) => [name, stats(Array.from({ length: RUNS }, () => timeCommand(cmd, args)))] as const);
const base = results[0]![1].p50;
console.log(`startup, ${RUNS} runs each (ms)`);
console.log(row(['command', 'min', 'p50', 'p95', 'max', 'x node'], [26, 8, 8, 8, 8, 8]));
for (const [name, s] of results) console.log(row([name, s.min, s.p50, s.p95, s.max, (s.p50 / base).toFixed(2)], [26, 8, 8, 8, 8, 8]));
const ratio = results[1]![1].p50 / base;
console.log(`\nezctl --help p50 is ${ratio.toFixed(2)}x node -e '' (target <= 2x): ${ratio <= 2 ? 'met' : 'NOT met'}`);
