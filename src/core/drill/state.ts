// A drill's faults, recorded before they are injected: the state file in the sandbox folder
// (drill-state.json) names each fault and how to undo it. A drill undoes its faults as it ends and
// clears the file; a drill killed mid-fault leaves it, and `drill cleanup` or the next drill run
// finds it and reverts what it names (a SIGSTOPped process continued, a stopped server restarted,
// a server under libfaketime restarted normally, a cut link healed, DRC started again).
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DRILL_STATE_FILE = 'drill-state.json';

export type Fault =
  /** a process SIGSTOPped: continue it (only when it is still the same process: its command line) */
  | { kind: 'sigstop'; pid: number; what: string; cmdline: string }
  /** sandbox servers stopped or killed: start them again (`sandbox up` restarts dead nodes as the file says) */
  | { kind: 'servers-down'; nodes: string[] }
  /** sandbox servers running under libfaketime: stop them, start them normally */
  | { kind: 'faketime'; nodes: string[]; offset: string }
  /** DRC's daemon killed: start it again (it was running before the drill) */
  | { kind: 'drc-down'; cluster: string }
  /** the link between two zones cut (`sandbox net`): heal it */
  | { kind: 'partition'; a: string; b: string };

export interface DrillState {
  drill: string;
  cluster: string;
  pid: number;
  startedAt: string;
  faults: Fault[];
}

export function statePath(dir: string): string {
  return join(dir, DRILL_STATE_FILE);
}

export function readDrillState(dir: string): DrillState | undefined {
  const p = statePath(dir);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as DrillState;
  } catch {
    return undefined;
  }
}

/** Written whole and renamed over the old one: a crash leaves the old file or the new one. */
export function writeDrillState(dir: string, s: DrillState): void {
  const p = statePath(dir);
  writeFileSync(p + '.tmp', JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  renameSync(p + '.tmp', p);
}

export function clearDrillState(dir: string): void {
  rmSync(statePath(dir), { force: true });
}

/** The same fault (to take one off the file once undone). */
export function sameFault(a: Fault, b: Fault): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
