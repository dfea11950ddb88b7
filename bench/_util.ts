// Small helpers shared by the benchmarks.
import { spawnSync } from 'node:child_process';

export function timeCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

export function stats(xs: number[]): { min: number; p50: number; p95: number; max: number; mean: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { min: s[0]!, p50: q(0.5), p95: q(0.95), max: s.at(-1)!, mean: s.reduce((a, b) => a + b, 0) / s.length };
}

export function row(cells: Array<string | number>, widths: number[]): string {
  return cells.map((c, i) => (typeof c === 'number' ? c.toFixed(1) : c).padStart(widths[i] ?? 12)).join(' ');
}
