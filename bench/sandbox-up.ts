// `ezctl sandbox up` for 2 zones x (master + 1 replica) on this machine (target: <= 15 s),
// cold (no cached template datadir) and warm, against the floor of the manual steps it
// automates: one mariadb-install-db plus starting one server.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { timeCommand, stats, row } from './_util.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const work = mkdtempSync(join(tmpdir(), 'ezctl-bench-up-'));
const ez = (args: string[], env: NodeJS.ProcessEnv) => timeCommand(process.execPath, ['bin/ezctl', ...args], env);
const down = (dir: string) => spawnSync(process.execPath, ['bin/ezctl', 'sandbox', 'down', '--dir', dir], { stdio: 'ignore' });

try {
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const cache = join(work, `cache-${i}`);
    const env = { ...process.env, EZCTL_CACHE_DIR: cache, CI: 'true' };
    const d1 = join(work, `cold-${i}`);
    cold.push(ez(['sandbox', 'up', '--dir', d1, '--zones', 'bj,sh', '--replicas', '1'], env));
    down(d1);
    const d2 = join(work, `warm-${i}`);
    warm.push(ez(['sandbox', 'up', '--dir', d2, '--zones', 'bj,sh', '--replicas', '1'], env));
    down(d2);
    rmSync(cache, { recursive: true, force: true });
  }
  const installDb = Array.from({ length: RUNS }, (_, i) => {
    const d = join(work, `init-${i}`);
    const args = ['--no-defaults', `--datadir=${d}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--innodb-log-file-size=16M'];
    if (process.getuid?.() === 0) args.push('--user=root');
    const ms = timeCommand('mariadb-install-db', args);
    rmSync(d, { recursive: true, force: true });
    return ms;
  });
  const s = { cold: stats(cold), warm: stats(warm), init: stats(installDb) };
  console.log(`sandbox up, 2 zones x (master + 1 replica) = 4 mariadbd, ${RUNS} runs (ms)`);
  console.log(row(['case', 'min', 'p50', 'max'], [44, 9, 9, 9]));
  console.log(row(['ezctl sandbox up, cold template cache', s.cold.min, s.cold.p50, s.cold.max], [44, 9, 9, 9]));
  console.log(row(['ezctl sandbox up, warm template cache', s.warm.min, s.warm.p50, s.warm.max], [44, 9, 9, 9]));
  console.log(row(['one mariadb-install-db alone (x4 serial)', s.init.min * 4, s.init.p50 * 4, s.init.max * 4], [44, 9, 9, 9]));
  console.log(`\ncold p50 ${(s.cold.p50 / 1000).toFixed(2)} s, warm p50 ${(s.warm.p50 / 1000).toFixed(2)} s (target <= 15 s): ${s.cold.max <= 15_000 ? 'met' : 'NOT met'}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
