// The sandbox's WAN relay: its plan (a port per ordered zone pair and server or proxy listener
// of the far zone), its process (one per sandbox, detached, pid in <dir>/wan/relay.pid), and the
// addresses each node has as seen from the other zones (the `via` of the topology file).
//
// One process for the whole sandbox rather than one per zone pair: a partition cuts both
// directions of a pair in one synchronous step of one event loop (never half cut), there is one
// pid to stop and one socket to drive, and an event loop carries every link of a sandbox with
// room to spare (its per-chunk work is a queue push and a timer).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runtimeError } from '../../exit.js';
import { pidAlive, processArgv, readPidFile, stopProcess } from '../../process/pids.js';
import { linkKey, type LinkState, type RelayConfig, type RelayListener } from './relay.js';

export type { RelayConfig, RelayListener } from './relay.js';

export const WAN_DIR = 'wan';
export const relayDir = (sandboxDir: string) => join(sandboxDir, WAN_DIR);
export const relayPidFile = (sandboxDir: string) => join(relayDir(sandboxDir), 'relay.pid');
export const relaySocket = (sandboxDir: string) => join(relayDir(sandboxDir), 'relay.sock');
export const relayConfigFile = (sandboxDir: string) => join(relayDir(sandboxDir), 'relay.json');
const RELAY_MAIN = fileURLToPath(new URL('./relay-main.js', import.meta.url));

/** What is behind a relayed port: a server, or a proxy's write or read listener. */
export interface RelayTarget { zone: string; target: string; host: string; port: number }

/** How many ports the relay needs: for each ordered pair (A, B), one per target of B. */
export function relayPortCount(zones: string[], targets: RelayTarget[]): number {
  return zones.reduce((sum, from) => sum + targets.filter((t) => t.zone !== from).length, 0);
}

/** The relay's configuration: its listeners on the given ports, every link at the given latency. */
export function planRelay(zones: string[], targets: RelayTarget[], ports: number[], link: { latencyMs: number; jitterMs: number }, bind = '127.0.0.1'): RelayConfig {
  const listeners: RelayListener[] = [];
  const links: Record<string, LinkState> = {};
  let i = 0;
  for (const from of zones) {
    for (const t of targets) {
      if (t.zone === from) continue;
      const listen = ports[i++];
      if (listen === undefined) throw new Error(`planRelay: ${relayPortCount(zones, targets)} ports needed, ${ports.length} given`);
      listeners.push({ from, to: t.zone, target: t.target, listen, host: t.host, port: t.port });
    }
    for (const to of zones) if (to !== from) links[linkKey(from, to)] = { latencyMs: link.latencyMs, jitterMs: link.jitterMs, cut: false };
  }
  return { version: 1, bind, listeners, links };
}

/** target name -> { zone seen from -> "host:port" }: what the topology file records as `via`. */
export function viaOf(config: RelayConfig): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const l of config.listeners) {
    const m = out.get(l.target) ?? {};
    m[l.from] = `${config.bind}:${l.listen}`;
    out.set(l.target, m);
  }
  return out;
}

export function readRelayConfig(sandboxDir: string): RelayConfig | undefined {
  const p = relayConfigFile(sandboxDir);
  if (!existsSync(p)) return undefined;
  return JSON.parse(readFileSync(p, 'utf8')) as RelayConfig;
}

export function writeRelayConfig(sandboxDir: string, c: RelayConfig): void {
  mkdirSync(relayDir(sandboxDir), { recursive: true, mode: 0o700 });
  writeFileSync(relayConfigFile(sandboxDir), JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
}

/** Is this pid the relay of this sandbox (its command line names relay-main.js and the sandbox's wan dir)? */
export function isOurRelay(pid: number, sandboxDir: string): boolean {
  if (!pidAlive(pid)) return false;
  const argv = processArgv(pid);
  return argv.some((a) => a.endsWith('relay-main.js')) && argv.includes(relayDir(sandboxDir));
}

export function relayPid(sandboxDir: string): number | undefined {
  const pid = readPidFile(relayPidFile(sandboxDir));
  return pid !== undefined && isOurRelay(pid, sandboxDir) ? pid : undefined;
}

/** Start the relay detached; resolves once it listens and answers (its pid file is written last). */
export async function startRelay(sandboxDir: string, timeoutMs = 10_000): Promise<number> {
  const dir = relayDir(sandboxDir);
  rmSync(relayPidFile(sandboxDir), { force: true });
  const log = join(dir, 'relay.log');
  const fd = openSync(log, 'a', 0o600);
  let child;
  try {
    child = spawn(process.execPath, [RELAY_MAIN, dir], { detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  child.unref();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    const pid = readPidFile(relayPidFile(sandboxDir));
    if (pid !== undefined && pid === child.pid) return pid;
    await new Promise((r) => setTimeout(r, 25));
  }
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  let tail = '';
  try {
    tail = readFileSync(log, 'utf8').trim().split('\n').slice(-3).join('\n');
  } catch {
    /* no log */
  }
  throw runtimeError(`the WAN relay did not start${tail ? `: ${tail}` : ''}`, { hint: `see ${log}` });
}

/** Stop the sandbox's relay by its pid (checked against its command line). True when one was stopped. */
export async function stopRelay(sandboxDir: string, opts: { signal?: NodeJS.Signals } = {}): Promise<boolean> {
  const pid = readPidFile(relayPidFile(sandboxDir));
  if (pid === undefined) return false;
  const r = await stopProcess(pid, () => isOurRelay(pid, sandboxDir), { graceMs: 5_000, ...(opts.signal ? { signal: opts.signal } : {}) });
  return r !== undefined;
}
