// What the dbus cut-over tests share: the move's `dbus start` job in the background (waited for
// until it follows), their cleanup (the jobs, and the detached reverse stream a cut-over starts),
// and a client that writes where the move's route record says, as an application would.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, type TestSandbox } from './sandbox.js';
import { EZCTL } from './cli.js';
import type { Db } from '../../src/core/db/connect.js';
import { isFenceError } from '../../src/core/dbus/fence.js';
import { readRouteAt, type DbusRoute } from '../../src/core/dbus/route.js';

/** `dbus start MOVE --execute [--resume]` in the background (kept in `jobs`); resolves once the move follows its sources. */
export async function startFollowing(sb: TestSandbox, move: string, jobs: ChildProcess[], resume = false): Promise<void> {
  const job = spawn(process.execPath, [EZCTL, '--config', sb.config, 'dbus', 'start', move, '--execute', ...(resume ? ['--resume'] : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
  jobs.push(job);
  let err = '';
  job.stderr!.on('data', (d) => (err += d));
  await eventually(async () => {
    if (job.exitCode !== null) throw new Error(`dbus start exited ${job.exitCode}: ${err.slice(-2000)}`);
    const r = await sb.run(['--json', 'dbus', 'status', move]);
    return r.code === 0 && r.json().state === 'following';
  }, 60_000, `dbus ${move} following (${err.slice(-500)})`);
}

/** Stop the jobs still running and the move's reverse stream (detached, started by a cut-over: stopped by its pid). */
export async function stopDbusProcesses(sb: TestSandbox, move: string, jobs: ChildProcess[]): Promise<void> {
  for (const job of jobs) {
    if (job.exitCode === null && job.signalCode === null) {
      job.kill('SIGTERM');
      await new Promise((r) => job.once('exit', r));
    }
  }
  try {
    const info = JSON.parse(readFileSync(join(sb.dir, 'state', 'dbus', move, 'reverse.json'), 'utf8')) as { pid: number };
    process.kill(info.pid, 'SIGTERM');
  } catch {
    /* none running */
  }
}

export type Side = 'old' | 'new';

/**
 * A client following the route record, as an application would: before each write it takes the
 * newest route among both sides (read every write); while blocked it waits; a fence error makes it
 * read the route again and retry. Each acknowledged write is logged with where it went.
 */
export class RouteClient {
  acked: Array<{ id: number; at: Side; ms: number; version: number }> = [];
  fenced = 0;
  private stop = false;
  private done: Promise<void> | undefined;
  constructor(
    private readonly move: string,
    private readonly conns: { old: Db; new: Db; readOld: Db; readNew: Db },
    private nextId: number,
    /** one write of row `id` at a side (through that side's connection) */
    private readonly write: (db: Db, at: Side, id: number) => Promise<unknown>,
  ) {}

  async route(): Promise<DbusRoute | undefined> {
    const [a, b] = await Promise.all([readRouteAt(this.conns.readOld, this.move).catch(() => undefined), readRouteAt(this.conns.readNew, this.move).catch(() => undefined)]);
    return [a, b].reduce<DbusRoute | undefined>((x, y) => (!y ? x : !x || y.version > x.version ? y : x), undefined);
  }

  start(): void {
    this.done = (async () => {
      while (!this.stop) {
        const r = await this.route();
        if (r?.state === 'blocked') {
          await new Promise((res) => setTimeout(res, 10));
          continue;
        }
        const at: Side = r?.home === 'target' ? 'new' : 'old';
        const id = this.nextId;
        try {
          await this.write(this.conns[at], at, id);
          this.acked.push({ id, at, ms: Date.now(), version: r?.version ?? 0 });
          this.nextId++;
        } catch (e) {
          if (!isFenceError(e)) throw e;
          this.fenced++;
        }
        await new Promise((res) => setTimeout(res, 5));
      }
    })();
  }

  async finish(): Promise<void> {
    this.stop = true;
    await this.done;
  }
}
