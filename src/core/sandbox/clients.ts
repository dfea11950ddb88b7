// What runs against a sandbox besides its servers: a DRC daemon, a job with a control socket
// (osc, migrate), any ezctl process using the sandbox's ezctl.yaml (--config, $EZCTL_CONFIG, or
// found from its cwd). `sandbox down` stops them first, by pid, so nothing is left retrying
// against closed ports.
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { configCandidates, loadTopology } from '../config/load.js';
import { controlAlive, sendControl } from '../control/socket.js';
import { EZCTL_ENTRY, isEzctlProcess, processArgv, stopProcess } from '../process/pids.js';

export interface SandboxClient { pid: number; what: string }
export interface StoppedClient extends SandboxClient { signal: 'SIGTERM' | 'SIGKILL' }

/** "ezctl drc start --cluster demo", without the node binary and the launcher's path. */
function describe(pid: number): string {
  const argv = processArgv(pid);
  const i = argv.findIndex((a) => EZCTL_ENTRY.test(a));
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

/** The environment of a process, as far as /proc shows it. */
function environ(pid: number): NodeJS.ProcessEnv {
  try {
    return Object.fromEntries(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  } catch {
    return {};
  }
}

/**
 * ezctl processes that use this topology file: found the way they found it themselves (--config,
 * $EZCTL_CONFIG, then ./ezctl.yaml and ./.ezctl/sandbox/ezctl.yaml from their own cwd).
 * `sandbox up|down|status` work on --dir, not on a topology file: never theirs.
 */
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
    const argv = processArgv(pid);
    const at = argv.slice(0, 3).findIndex((a) => EZCTL_ENTRY.test(a));
    if (at < 0) continue;
    const words = argv.slice(at + 1);
    const sb = words.indexOf('sandbox');
    if (sb >= 0 && ['up', 'down', 'status'].includes(words[sb + 1] ?? '')) continue;
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    let explicit: string | undefined;
    for (let i = 0; i < words.length; i++) {
      if ((words[i] === '--config' || words[i] === '-c') && words[i + 1]) explicit = words[i + 1];
      else if (words[i]!.startsWith('--config=')) explicit = words[i]!.slice('--config='.length);
    }
    const found = configCandidates(explicit, environ(pid), cwd).find((c) => existsSync(c.path));
    if (found && real(found.path) === config) out.push(pid);
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
      const { drcSocket } = await import('../drc/client.js');
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
