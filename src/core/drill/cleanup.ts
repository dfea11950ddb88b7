// Undoing a drill's faults: as the drill ends, and for a drill that was killed (`drill cleanup`,
// and the start of the next drill run, read the drill state file the dead drill left).
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Ctx } from '../context.js';
import { refused, runtimeError } from '../exit.js';
import { pidAlive } from '../process/pids.js';
import { readState, sandboxUp, stopServer, nodeRunning, netStatus, partition, heal } from '../sandbox/index.js';
import { DrcClient } from '../drc/client.js';
import { clearDrillState, readDrillState, writeDrillState, type Fault } from './state.js';
import { ezctlBin } from '../self.js';

export interface CleanupReport {
  dir: string;
  /** the drill that left them, when there was a state file */
  drill: string | null;
  reverted: Array<{ fault: string; done: string }>;
  failed: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

export function describeFault(f: Fault): string {
  switch (f.kind) {
    case 'sigstop': return `SIGSTOP of ${f.what} (pid ${f.pid})`;
    case 'servers-down': return `servers stopped: ${f.nodes.join(', ')}`;
    case 'faketime': return `servers under libfaketime (${f.offset}): ${f.nodes.join(', ')}`;
    case 'drc-down': return `DRC daemon of ${f.cluster} killed`;
    case 'partition': return `link ${f.a}<->${f.b} cut`;
  }
}

/** The sandbox's links between zones (`sandbox net`, `up --wan-latency`): what the partition drill cuts and heals. */
export interface NetApi {
  netStatus(dir: string): Promise<unknown[]>;
  partition(dir: string, a: string, b: string): Promise<void>;
  heal(dir: string, a?: string, b?: string): Promise<void>;
}
export function netApi(): NetApi {
  return { netStatus, partition, heal };
}

/** `sandbox up` on the existing sandbox: it restarts every dead node as the topology file says (read_only unless the zone's unfenced master). */
export async function restartDead(ctx: Ctx, dir: string): Promise<string[]> {
  const st = readState(dir);
  if (!st) throw runtimeError(`${dir} is no sandbox any more (no sandbox.json)`);
  const r = await sandboxUp(ctx, { dir, zones: st.zones, replicas: st.replicas, cluster: st.cluster, shards: st.shards, ...(st.model ? { model: st.model } : {}) });
  // DRC's directions reading or writing a restarted master back off (doubling from 0.5 s): measured,
  // the drill then waited 6-14 s for them; told to retry now, as a zone switch does
  if (r.startedNodes.length) await retryDrcNow(ctx, st.cluster);
  return r.startedNodes;
}

/** Tell this host's DRC daemon to retry its directions now (`drc resume`), when one runs here. */
async function retryDrcNow(ctx: Ctx, cluster: string | undefined): Promise<void> {
  if (!cluster) return;
  try {
    const client = new DrcClient(ctx, await ctx.topology(), cluster);
    if (await client.daemonHere()) await client.resume();
  } catch {
    /* no daemon here, or it stopped meanwhile: it retries on its own */
  }
}

/** Start this cluster's DRC daemon in the background, as `ezctl drc start --detach` does, and wait until it answers. */
export async function startDrc(ctx: Ctx, cluster: string): Promise<number> {
  const topo = await ctx.topology();
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [ezctlBin(), '--config', topo.path, '--json', 'drc', 'start', '--detach', '--cluster', cluster], { timeout: 60_000 }, (e, stdout, stderr) => {
      if (e) reject(runtimeError(`could not start DRC of ${cluster}: ${stderr.trim().split('\n').slice(-3).join(' ') || e.message}`, { hint: 'start it by hand: `ezctl drc start --detach`' }));
      else resolve(stdout);
    });
  });
  const client = new DrcClient(ctx, topo, cluster);
  for (let i = 0; i < 100 && !(await client.daemonHere()); i++) await sleep(100);
  try {
    return Number((JSON.parse(out) as { pid?: number }).pid ?? 0);
  } catch {
    return 0;
  }
}

/** Undo one fault; what was done, in a few words. Undoing a fault already undone does nothing. */
export async function undoFault(ctx: Ctx, dir: string, f: Fault): Promise<string> {
  switch (f.kind) {
    case 'sigstop': {
      if (!pidAlive(f.pid)) return `pid ${f.pid} is gone`;
      if (cmdlineOf(f.pid) !== f.cmdline) return `pid ${f.pid} is another process now: not signalled`;
      process.kill(f.pid, 'SIGCONT');
      return `SIGCONT sent to ${f.what} (pid ${f.pid})`;
    }
    case 'servers-down': {
      const started = await restartDead(ctx, dir);
      return started.length ? `restarted ${started.join(', ')}` : 'every server runs';
    }
    case 'faketime': {
      const st = readState(dir);
      if (!st) return 'no sandbox';
      const stopped: string[] = [];
      for (const n of st.nodes.filter((x) => f.nodes.includes(x.name))) {
        if (n.pid !== null && nodeRunning(n) && faked(n.pid)) {
          await stopServer(n.pid, n.datadir, { graceMs: 20_000 });
          stopped.push(n.name);
        }
      }
      const started = await restartDead(ctx, dir);
      return stopped.length ? `stopped ${stopped.join(', ')} (under libfaketime) and restarted ${started.join(', ') || 'nothing'} normally` : `no server runs under libfaketime${started.length ? `; restarted ${started.join(', ')}` : ''}`;
    }
    case 'drc-down': {
      const topo = await ctx.topology();
      if (await new DrcClient(ctx, topo, f.cluster).daemonHere()) return 'DRC runs';
      const pid = await startDrc(ctx, f.cluster);
      return `DRC of ${f.cluster} started again (pid ${pid})`;
    }
    case 'partition': {
      await netApi().heal(dir, f.a, f.b);
      await retryDrcNow(ctx, readState(dir)?.cluster);
      return `healed ${f.a}<->${f.b}`;
    }
  }
}

/** Is this process running under libfaketime (its environment names it)? */
export function faked(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').some((v) => v.startsWith('LD_PRELOAD=') && v.includes('faketime'));
  } catch {
    return false;
  }
}

/** Revert what a drill left (it was killed mid-fault): continue, restart, heal. Refused while that drill still runs. */
export async function cleanupLeftovers(ctx: Ctx, dir: string): Promise<CleanupReport> {
  const st = readDrillState(dir);
  const out: CleanupReport = { dir, drill: st?.drill ?? null, reverted: [], failed: [] };
  if (!st) {
    removeScratch(dir);
    return out;
  }
  if (st.pid !== process.pid && pidAlive(st.pid) && /ezctl|cli\.js|node/.test(cmdlineOf(st.pid)) && cmdlineOf(st.pid).includes('drill')) {
    throw refused(`drill ${st.drill} (pid ${st.pid}) is still running against ${dir}`, { hint: `let it end (it undoes its faults), or stop it (kill ${st.pid}) and run \`ezctl drill cleanup\`` });
  }
  const left = [...st.faults];
  for (const f of [...st.faults].reverse()) {
    try {
      const done = await undoFault(ctx, dir, f);
      out.reverted.push({ fault: describeFault(f), done });
      left.splice(left.indexOf(f), 1);
      writeDrillState(dir, { ...st, faults: left });
    } catch (e) {
      out.failed.push(`${describeFault(f)}: ${(e as Error).message}`);
    }
  }
  if (!out.failed.length) {
    clearDrillState(dir);
    removeScratch(dir);
  }
  return out;
}

/** The ack logs (drill-XXXXXX folders) of drills that ended without removing them (killed). */
function removeScratch(dir: string): void {
  const st = readDrillState(dir);
  if (st && st.pid !== process.pid && pidAlive(st.pid)) return;
  for (const name of readdirSync(dir)) if (/^drill-[A-Za-z0-9]{6}$/.test(name)) rmSync(join(dir, name), { recursive: true, force: true });
}

/** `ezctl drill cleanup`: the sandbox of the topology file. */
export async function drillCleanup(ctx: Ctx): Promise<CleanupReport> {
  const topo = await ctx.topology();
  const dir = topo.dir;
  if (!readState(dir)) throw refused(`${topo.path} is not a sandbox: drills leave faults only in sandboxes`);
  return cleanupLeftovers(ctx, dir);
}
