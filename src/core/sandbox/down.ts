// ezctl sandbox down: stop what runs against the sandbox (DRC, jobs), then exactly the sandbox's
// own proxies and servers, by the pids it recorded (checked against each process's command
// line), then remove its directory.
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Ctx } from '../context.js';
import { badInput, runtimeError } from '../exit.js';
import { proxyRunning, readState, stopProxy, STATE_FILE } from './up.js';
import { isOurServer, stopServer } from './servers.js';
import { readPidFile } from '../process/pids.js';
import { sandboxClients, stopClients, type StoppedClient } from './clients.js';
import { relayPid, stopRelay } from './wan/index.js';

export interface DownReport {
  dir: string;
  /** the servers stopped */
  stopped: string[];
  /** the proxies stopped (`up --proxy`), by zone */
  stoppedProxies: string[];
  /** the WAN relay was stopped (`up --wan-latency`) */
  stoppedRelay: boolean;
  /** what ran against them and was stopped first: a DRC daemon, a job, an ezctl process using the sandbox's topology file */
  stoppedProcesses: StoppedClient[];
  removed: boolean;
}

export async function sandboxDown(ctx: Ctx, o: { dir: string; keepDir: boolean }): Promise<DownReport> {
  const dir = resolve(o.dir);
  if (!existsSync(dir)) {
    ctx.log.info(`no sandbox in ${dir}: nothing to stop`);
    return { dir, stopped: [], stoppedProxies: [], stoppedRelay: false, stoppedProcesses: [], removed: false };
  }
  const state = readState(dir);
  if (!state) throw badInput(`${dir} is not a sandbox (no ${STATE_FILE}); not touching it`);
  // First what works against the servers, so nothing is left retrying against closed ports.
  const stoppedProcesses = await stopClients(await sandboxClients(state.dir));
  for (const c of stoppedProcesses) ctx.log.debug(`stopped ${c.what} (pid ${c.pid}${c.signal === 'SIGKILL' ? ', killed after the grace period' : ''})`);
  // Then the proxies, before the servers behind them: no client is routed to a closing server.
  const stoppedProxies: string[] = [];
  await Promise.all((state.proxies ?? []).map(async (p) => {
    if (await stopProxy(p)) {
      stoppedProxies.push(p.zone);
      ctx.log.debug(`stopped the proxy of ${p.zone} (pid ${p.pid})`);
    }
  }));
  // the relay between them (it connects to servers only when a client comes)
  const stoppedRelay = await stopRelay(state.dir);
  if (stoppedRelay) ctx.log.debug('stopped the WAN relay');
  const stopped: string[] = [];
  await Promise.all(state.nodes.map(async (n) => {
    // the pid file is the server's own word; the recorded pid covers a server that died before writing it
    for (const pid of new Set([readPidFile(n.pidFile), n.pid].filter((p): p is number => typeof p === 'number'))) {
      // the data goes with the directory: no clean shutdown to wait for (1.3 s each, measured)
      if (isOurServer(pid, n.datadir) && (await stopServer(pid, n.datadir, o.keepDir ? {} : { signal: 'SIGKILL' }))) {
        stopped.push(n.name);
        ctx.log.debug(`stopped ${n.name} (pid ${pid})`);
      }
    }
  }));
  const still = state.nodes.filter((n) => [readPidFile(n.pidFile), n.pid].some((p) => typeof p === 'number' && isOurServer(p, n.datadir)));
  const stillProxies = (state.proxies ?? []).filter(proxyRunning).map((p) => `the proxy of ${p.zone} (pid ${p.pid})`);
  const stillRelay = relayPid(state.dir) !== undefined ? ['the WAN relay'] : [];
  if (still.length || stillProxies.length || stillRelay.length) throw runtimeError(`could not stop ${[...still.map((n) => n.name), ...stillProxies, ...stillRelay].join(', ')}`, { hint: `the directory ${dir} was kept` });
  if (!o.keepDir) rmSync(dir, { recursive: true, force: true });
  return { dir, stopped: stopped.sort(), stoppedProxies: stoppedProxies.sort(), stoppedRelay, stoppedProcesses, removed: !o.keepDir };
}
