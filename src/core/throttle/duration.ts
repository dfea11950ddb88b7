// Durations as DBAs type them ("500ms", "1.5s", "2m") and as reasons print them ("3.2s"). Kept
// in core because core may not import from src/commands (which has its own option parser).
import { badInput } from '../exit.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** "500ms", "2s", "1.5m", "1h", or plain seconds → milliseconds; badInput (exit 2) otherwise. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw badInput(`${JSON.stringify(value)} is not a duration (like 500ms, 10s, 5m, 1h)`);
  const unit = (m[2] ?? 's') as keyof typeof UNIT_MS;
  return Math.round(Number(m[1]) * UNIT_MS[unit]);
}

/** 850 → "850ms", 3210 → "3.2s", 125000 → "2m5s", 7200000 → "2h0m". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const sign = ms < 0 ? '-' : '';
  const a = Math.abs(ms);
  if (a < 1000) return `${sign}${Math.round(a)}ms`;
  if (a < 60_000) return `${sign}${(Math.round(a / 100) / 10).toString()}s`;
  const totalS = Math.floor(a / 1000);
  if (a < 3_600_000) return `${sign}${Math.floor(totalS / 60)}m${totalS % 60}s`;
  return `${sign}${Math.floor(totalS / 3600)}h${Math.floor((totalS % 3600) / 60)}m`;
}
