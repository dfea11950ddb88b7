// The throttle's option values, parsed and checked: --max-load / --critical-load and --pause-window.
// Kept apart from signals.ts so that commands parse their flags without loading the server layer
// (mysql2 and friends) for --help or a usage error.
import { badInput } from '../exit.js';

/** "Threads_running=25,Threads_connected=500" → { Threads_running: 25, Threads_connected: 500 } */
export function parseLoadSpec(spec: string): Record<string, number> {
  const example = 'like Threads_running=25,Threads_connected=500';
  const parts = spec.split(',').map((s) => s.trim());
  if (spec.trim() === '') throw badInput(`empty load limit: expected status=number pairs, ${example}`);
  const out: Record<string, number> = {};
  const seen = new Set<string>();
  for (const part of parts) {
    const m = /^([^=\s]*)\s*=\s*(\S*)$/.exec(part);
    if (!part || !m) throw badInput(`${JSON.stringify(part)} in ${JSON.stringify(spec)} is not status=number (${example})`);
    const [, name, value] = m as unknown as [string, string, string];
    if (!/^[A-Za-z_]+$/.test(name)) throw badInput(`${JSON.stringify(name)} is not a status variable name (letters and _ only, ${example})`);
    if (!/^\d+(\.\d+)?$/.test(value)) throw badInput(`limit ${JSON.stringify(value)} for ${name} is not a number (${example})`);
    if (seen.has(name.toLowerCase())) throw badInput(`${name} is limited twice in ${JSON.stringify(spec)}`);
    seen.add(name.toLowerCase());
    out[name] = Number(value);
  }
  return out;
}

export interface PauseWindow {
  /** minutes after local midnight; start included, end excluded */
  startMin: number;
  endMin: number;
  /** normalized "hh:mm-hh:mm" */
  text: string;
}

const pad = (n: number) => String(n).padStart(2, '0');
const hhmm = (min: number) => `${pad(Math.floor(min / 60))}:${pad(min % 60)}`;

/** "10:30-13:30,23:00-01:00" → windows; a start after the end crosses midnight. */
export function parseWindows(spec: string): PauseWindow[] {
  const example = 'like 10:30-13:30,23:00-01:00';
  if (spec.trim() === '') throw badInput(`empty pause window list: expected hh:mm-hh:mm, ${example}`);
  return spec.split(',').map((raw) => {
    const part = raw.trim();
    const m = /^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$/.exec(part);
    if (!m) throw badInput(`${JSON.stringify(part)} in ${JSON.stringify(spec)} is not a window hh:mm-hh:mm (${example})`);
    const [h1, m1, h2, m2] = m.slice(1).map(Number) as [number, number, number, number];
    for (const [h, mi] of [[h1, m1], [h2, m2]] as const) {
      if (h > 23 || mi > 59) throw badInput(`${pad(h)}:${pad(mi)} in ${JSON.stringify(part)} is not a time of day (00:00-23:59)`);
    }
    const startMin = h1 * 60 + m1;
    const endMin = h2 * 60 + m2;
    if (startMin === endMin) throw badInput(`window ${JSON.stringify(part)} starts when it ends: it is empty (a start after the end crosses midnight, e.g. 23:00-01:00)`);
    return { startMin, endMin, text: `${hhmm(startMin)}-${hhmm(endMin)}` };
  });
}

/** Is this minute of the day (0-1439) inside the window? */
export function inWindow(w: PauseWindow, minuteOfDay: number): boolean {
  return w.startMin < w.endMin ? minuteOfDay >= w.startMin && minuteOfDay < w.endMin : minuteOfDay >= w.startMin || minuteOfDay < w.endMin;
}

