// Processes by pid: is one alive, what it runs, stop it without ever signalling a recycled pid.
// Used by the sandbox (its servers and the ezctl processes working against it), DRC (`drc stop`)
// and osc (a plan's twin left by a process that is gone).
import { readFileSync } from 'node:fs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid a pid file holds (undefined when it is missing or holds no positive integer). */
export function readPidFile(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The argv of a process (empty when it is gone or /proc cannot tell). */
export function processArgv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** node running bin/ezctl (or an installed ezctl) or dist/cli.js */
export const EZCTL_ENTRY = /(^|\/)ezctl$|(^|\/)dist\/cli\.js$/;

/** Is this pid an ezctl process? */
export function isEzctlProcess(pid: number): boolean {
  return processArgv(pid).slice(0, 3).some((a) => EZCTL_ENTRY.test(a));
}

/**
 * Stop a process by pid: a graceful signal, a bounded wait, then SIGKILL. `ours` is asked before
 * each signal, so a pid recycled by something else is never signalled. Returns the last signal
 * sent, or undefined when the process was not ours (or already gone).
 */
export async function stopProcess(pid: number, ours: () => boolean, opts: { graceMs?: number; signal?: NodeJS.Signals } = {}): Promise<'SIGTERM' | 'SIGKILL' | undefined> {
  if (!ours()) return undefined;
  const first = opts.signal ?? 'SIGTERM';
  try {
    process.kill(pid, first);
  } catch {
    return undefined; // gone meanwhile
  }
  const deadline = Date.now() + (opts.graceMs ?? 30_000);
  while (pidAlive(pid) && Date.now() < deadline) await sleep(50);
  if (pidAlive(pid) && ours()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    while (pidAlive(pid)) await sleep(20);
    return 'SIGKILL';
  }
  return first === 'SIGKILL' ? 'SIGKILL' : 'SIGTERM';
}
