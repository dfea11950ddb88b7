// What runs against a sandbox besides its servers: a DRC daemon, a job with a control socket
// (osc, migrate), any ezctl process started with --config <the sandbox's ezctl.yaml>. `sandbox
// down` stops them first, by pid, so nothing is left retrying against closed ports.
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { loadTopology } from '../config/load.js';
import { controlAlive, sendControl } from '../control/socket.js';
import { stopProcess } from './servers.js';

export interface SandboxClient { pid: number; what: string }
export interface StoppedClient extends SandboxClient { signal: 'SIGTERM' | 'SIGKILL' }

/** The argv of a process (empty when it is gone or /proc cannot tell). */
function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Is this pid an ezctl process (node running bin/ezctl or dist/cli.js)? */
export function isEzctlProcess(pid: number): boolean {
  const argv = cmdline(pid);
  return argv.slice(0, 3).some((a) => /(^|\/)ezctl$|(^|\/)dist\/cli\.js$/.test(a));
}

/** "ezctl drc start --cluster demo", without the node binary and the launcher's path. */
function describe(pid: number): string {
  const argv = cmdline(pid);
  const i = argv.findIndex((a) => /(^|\/)ezctl$|(^|\/)dist\/cli\.js$/.test(a));
  return ['ezctl', ...argv.slice(i + 1).filter((a, j, all) => !(a === '--config' || a === '-c' || all[j - 1] === '--config' || all[j - 1] === '-c'))].join(' ');
}

/** The control sockets a sandbox's jobs answer on: every *.sock under its state dir, plus DRC's. */
function socketsUnder(dir: string, depth = 2): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    const p = join(dir, n);
    try {
      const st = statSync(p);
      if (st.isSocket()) out.push(p);
      else if (st.isDirectory() && depth > 1) out.push(...socketsUnder(p, depth - 1));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

const real = (p: string) => {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
};

/** ezctl processes whose --config names this topology file (resolved from their own cwd). */
function processesWithConfig(configPath: string): number[] {
  const config = real(configPath);
  const out: number[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const p of pids) {
    const pid = Number(p);
    if (pid === process.pid) continue;
    const argv = cmdline(pid);
    if (!argv.slice(0, 3).some((a) => /(^|\/)ezctl$|(^|\/)dist\/cli\.js$/.test(a))) continue;
    let cwd = '/';
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    for (let i = 0; i < argv.length - 1; i++) {
      if ((argv[i] === '--config' || argv[i] === '-c') && real(resolve(cwd, argv[i + 1]!)) === config) out.push(pid);
    }
    const eq = argv.find((a) => a.startsWith('--config='));
    if (eq && real(resolve(cwd, eq.slice('--config='.length))) === config) out.push(pid);
  }
  return out;
}

/** Every ezctl process working against the sandbox in `dir` (never this process). */
export async function sandboxClients(dir: string): Promise<SandboxClient[]> {
  const config = join(dir, 'ezctl.yaml');
  const found = new Map<number, string>();
  const add = (pid: number, what: string) => {
    if (pid !== process.pid && !found.has(pid) && isEzctlProcess(pid)) found.set(pid, what);
  };
  if (existsSync(config)) {
    let stateDir: string | undefined;
    const drcSockets: Array<[string, string]> = [];
    try {
      const topo = loadTopology(config);
      stateDir = topo.stateDir();
      const { drcSocket } = await import('../drc/daemon.js');
      for (const c of topo.clusterNames) drcSockets.push([drcSocket(topo, c), `DRC daemon of cluster ${c}`]);
    } catch {
      stateDir = join(dir, 'state'); // what `sandbox up` writes; an edited file may not load
    }
    const sockets: Array<[string, string]> = [...drcSockets, ...socketsUnder(stateDir).map((s): [string, string] => [s, `job answering on ${basename(s)}`])];
    for (const [sock, what] of sockets) {
      if (!(await controlAlive(sock))) continue;
      try {
        const st = (await sendControl(sock, { cmd: 'status' }, 5000)) as { pid?: unknown };
        if (typeof st?.pid === 'number') add(st.pid, what);
      } catch {
        /* it answered ping but not status: it is going away */
      }
    }
    // a daemon that has not opened its socket yet (or no longer answers) left its pid file
    for (const d of safeDirs(stateDir)) {
      const pidFile = join(stateDir, d, 'daemon.pid');
      const pid = Number(readIf(pidFile));
      if (Number.isInteger(pid) && pid > 0) add(pid, `DRC daemon of cluster ${d.replace(/^drc-/, '')}`);
    }
    for (const pid of processesWithConfig(config)) add(pid, describe(pid));
  }
  return [...found].map(([pid, what]) => ({ pid, what }));
}

function safeDirs(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n.startsWith('drc-'));
  } catch {
    return [];
  }
}

function readIf(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** SIGTERM each (a DRC daemon finishes its batches, an osc job aborts cleanly), SIGKILL after the grace period. */
export async function stopClients(clients: SandboxClient[], graceMs = 30_000): Promise<StoppedClient[]> {
  const out: StoppedClient[] = [];
  await Promise.all(clients.map(async (c) => {
    const signal = await stopProcess(c.pid, () => isEzctlProcess(c.pid), { graceMs });
    if (signal) out.push({ ...c, signal });
  }));
  return out.sort((a, b) => a.pid - b.pid);
}
