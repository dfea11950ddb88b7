// Small helpers shared by the benchmarks.
import { spawn, spawnSync } from 'node:child_process';
import { EZCTL } from '../test/helpers/cli.js';

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

/** `ezctl --config CONFIG --json ARGS` as a child process: exit code, its JSON (null when stdout is not JSON: the error is in stderr), wall time; SIGKILLed past timeoutMs. */
export function ezctlJson(config: string, args: string[], timeoutMs = 180_000): Promise<{ code: number | null; json: any; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [EZCTL, '--config', config, '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      let json: any = null;
      try {
        json = JSON.parse(out);
      } catch {
        /* not JSON: the error is in stderr */
      }
      resolve({ code, json, stderr: err, ms: performance.now() - t0 });
    });
  });
}
