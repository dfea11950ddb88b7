// A sandbox per test file, in a temporary directory on free ports, always stopped afterwards.
import { mkdtempSync, rmSync, existsSync, mkdirSync, copyFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { readDefaultsFile } from '../../src/core/config/defaults-file.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { EZCTL, cliRuns, ezctl, show, type RunResult } from './cli.js';
import { connect, type Db, type Endpoint } from '../../src/core/db/connect.js';

export interface SandboxNodeInfo { name: string; zone: string; role: string; host: string; port: number; serverId: number; pid: number | null; running: boolean }

export interface TestSandbox {
  dir: string;
  config: string;
  nodes: SandboxNodeInfo[];
  node(name: string): SandboxNodeInfo;
  /** ezctl with --config pointing at this sandbox */
  run(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult>;
  /** an admin connection to a node */
  db(name: string): Promise<Db>;
  /** an application-user connection (no SUPER / READ_ONLY ADMIN) */
  appDb(name: string): Promise<Db>;
  adminPassword: string;
  down(): Promise<void>;
}

// Sandboxes of this test file not stopped yet. A test that runs past --test-timeout, or a file
// ended by --test-force-exit before its after() hooks ran, used to leave its servers and DRC
// daemon running (seen: 4 mariadbd and a daemon, 30 minutes later): the file's process stops
// them on its way out, synchronously, as `sandbox down` does.
// A test process killed outright (the run's time limit kills its process group) runs no handler:
// scripts/run-tests.mjs names a folder in EZCTL_TEST_SANDBOXES where each running sandbox leaves a
// marker holding its dir, and stops what is still marked once the run has ended.
const running = new Set<string>();
const markerOf = (dir: string) => (process.env.EZCTL_TEST_SANDBOXES ? join(process.env.EZCTL_TEST_SANDBOXES, dir.split('/').slice(-2).join('-')) : undefined);
function mark(dir: string, on: boolean): void {
  const m = markerOf(dir);
  if (!m) return;
  if (on) writeFileSync(m, dir);
  else rmSync(m, { force: true });
}
process.on('exit', () => {
  for (const dir of running) {
    if (existsSync(dir)) spawnSync(process.execPath, [EZCTL, 'sandbox', 'down', '--dir', dir], { stdio: 'ignore', timeout: 60_000 });
    rmSync(join(dir, '..'), { recursive: true, force: true });
    mark(dir, false);
  }
});

// scripts/run-tests.mjs prints each file's wall time when the run ends (this process is one file's)
if (process.env.EZCTL_TEST_SANDBOXES) {
  process.on('exit', () => {
    try {
      appendFileSync(join(process.env.EZCTL_TEST_SANDBOXES!, 'file-times.tsv'), `${process.uptime().toFixed(1)}\t${process.argv[1]}\t${cliRuns.count}\n`);
    } catch {
      /* the run ended first */
    }
  });
}

function cnfPassword(path: string): string {
  return readDefaultsFile(path).password!;
}

export async function startSandbox(opts: { zones?: string[]; replicas?: number; load?: number; proxy?: boolean; model?: 'sharding' | 'global'; writerZone?: string; wanLatency?: string } = {}): Promise<TestSandbox> {
  // EZCTL_TEST_DATA_DIR (set by scripts/run-tests.mjs: /dev/shm when it has room): servers that fsync every commit, as the
  // sandbox's are, wait on the disk at each one; on tmpfs an fsync is free and a kill -9 of a server
  // still loses nothing it wrote (the data is in memory, not in the process)
  const parent = mkdtempSync(join(process.env.EZCTL_TEST_DATA_DIR || tmpdir(), 'ezctl-test-'));
  const dir = join(parent, 'sb');
  mark(dir, true);
  const up = await ezctl(['--json', 'sandbox', 'up', '--dir', dir, '--zones', (opts.zones ?? ['bj', 'sh']).join(','), '--replicas', String(opts.replicas ?? 1), ...(opts.proxy ? ['--proxy'] : []), ...(opts.model ? ['--model', opts.model] : []), ...(opts.writerZone ? ['--writer-zone', opts.writerZone] : []), ...(opts.wanLatency ? ['--wan-latency', opts.wanLatency] : [])]);
  if (up.code !== 0) {
    if (existsSync(dir)) await ezctl(['sandbox', 'down', '--dir', dir]);
    rmSync(parent, { recursive: true, force: true });
    mark(dir, false);
    throw new Error(`sandbox up failed: ${show(up)}`);
  }
  running.add(dir);
  const report = up.json();
  const config = join(dir, 'ezctl.yaml');
  const adminPassword = cnfPassword(join(dir, 'client.cnf'));
  const appPassword = cnfPassword(join(dir, 'app.cnf'));
  const nodes: SandboxNodeInfo[] = report.nodes;
  const node = (name: string) => {
    const n = nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  };
  const ep = (name: string, user: string, password: string): Endpoint => {
    const n = node(name);
    return { label: name, host: n.host, port: n.port, user, password, passwordSource: 'test' };
  };
  const sb: TestSandbox = {
    dir,
    config,
    nodes,
    node,
    adminPassword,
    run: (args, o = {}) => ezctl(['--config', config, ...args], o),
    db: (name) => connect(ep(name, 'ezctl', adminPassword)),
    appDb: (name) => connect(ep(name, 'app', appPassword)),
    async down() {
      // EZCTL_KEEP_LOGS=folder keeps every server's error log (a crash leaves its stack there)
      if (process.env.EZCTL_KEEP_LOGS && existsSync(dir)) {
        const keep = join(process.env.EZCTL_KEEP_LOGS, parent.split('/').pop()!);
        mkdirSync(keep, { recursive: true });
        for (const n of nodes) {
          try {
            copyFileSync(join(dir, n.name, 'error.log'), join(keep, `${n.name}.error.log`));
          } catch {
            /* no log */
          }
        }
      }
      if (existsSync(dir)) {
        const r = await ezctl(['sandbox', 'down', '--dir', dir]);
        if (r.code !== 0) throw new Error(`sandbox down failed: ${show(r)}`);
      }
      running.delete(dir);
      rmSync(parent, { recursive: true, force: true });
      mark(dir, false);
    },
  };
  if (opts.load) {
    const r = await sb.run(['sandbox', 'load', '--rows', String(opts.load)]);
    if (r.code !== 0) {
      await sb.down();
      throw new Error(`sandbox load failed: ${show(r)}`);
    }
  }
  return sb;
}

/** Poll until fn returns a truthy value (or throw after timeoutMs). */
export async function eventually<T>(fn: () => Promise<T | undefined | false | null>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
