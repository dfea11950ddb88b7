// Small helpers shared by the benchmarks.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { EZCTL } from '../test/helpers/cli.js';
import type { TestSandbox } from '../test/helpers/sandbox.js';
import type { Db } from '../src/core/db/connect.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system) a process has used so far; undefined once it is gone. */
export function cpuSeconds(pid: number | null | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return undefined;
  }
}

/** Every sandbox server's CPU seconds so far (the work a contender makes them do is the difference). */
export function serversCpuSeconds(sb: Pick<TestSandbox, 'nodes'>): number {
  return sb.nodes.reduce((sum, n) => sum + (cpuSeconds(n.pid) ?? 0), 0);
}

/**
 * CPU seconds (user + system) of this process's children that have exited and been reaped (the
 * kernel adds them to the parent's cutime/cstime): the difference around one child's run is its CPU.
 */
export function reapedChildrenCpuSeconds(): number {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / CLK_TCK; // cutime, cstime (fields 16, 17)
}

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

/**
 * Probe rows (`ezbench.probe`) written at bj's master every 50 ms, each watcher polling for them every
 * 5 ms: the time until a watcher first sees a row is its lag. The caller opens and closes the watchers;
 * tailMs after `during` ends lets the last probes arrive.
 */
export async function probeLag(sb: TestSandbox, watchers: Record<string, Db>, during: () => Promise<unknown>, tailMs: number): Promise<Record<string, number[]>> {
  const writer = await sb.db('bj-master');
  const written = new Map<number, number>();
  const lags: Record<string, number[]> = Object.fromEntries(Object.keys(watchers).map((k) => [k, []]));
  let stop = false;
  let seq = Number((await writer.value('SELECT COALESCE(MAX(seq), 0) FROM ezbench.probe')) ?? 0);
  const write = (async () => {
    while (!stop) {
      const s = ++seq;
      written.set(s, Date.now());
      await writer.exec('INSERT INTO ezbench.probe (seq, written_at_ms) VALUES (?, ?)', [s, Date.now()]);
      await sleep(50);
    }
  })();
  const watch = async (kind: string) => {
    let seen = seq;
    while (!stop) {
      const top = Number((await watchers[kind]!.value('SELECT COALESCE(MAX(seq), 0) FROM ezbench.probe')) ?? 0);
      const now = Date.now();
      for (let s = seen + 1; s <= top; s++) if (written.has(s)) lags[kind]!.push(now - written.get(s)!);
      seen = Math.max(seen, top);
      await sleep(5);
    }
  };
  const ws = Object.keys(watchers).map(watch);
  await during();
  await sleep(tailMs);
  stop = true;
  await Promise.all([write, ...ws]);
  await writer.close();
  return lags;
}
