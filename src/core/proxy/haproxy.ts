// HAProxy as a routing target: its runtime API over the admin unix socket for the running
// process, and the haproxy.cfg it was started from, written again whole on every change (the
// file is written first, then the running proxy is told: a proxy restarted at any moment routes
// as the last change said). Plus the few process helpers the sandbox needs to run one.
import { execFile, spawn } from 'node:child_process';
import { closeSync, constants, fsyncSync, openSync, readFileSync, renameSync, writeSync, chmodSync, statSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { badInput, runtimeError } from '../exit.js';
import type { MoveWriteOptions, RouteHealth, RouteNode, RoutingTarget } from './routing.js';
import {
  parseModel, parseServersState, planFence, planMoveWrite, planReadPool, planUnfence, renderConfig, routeDrift, runtimeOutputProblems, runtimeRoutes,
  type ProxyModel, type RoutePlan,
} from './haproxy-config.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the runtime API ----

/** Send one request (commands joined by ";", run in order by HAProxy) and return its answer. */
export function adminRequest(socket: string, commands: string[], timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socket);
    let out = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`no answer from the HAProxy admin socket ${socket} within ${timeoutMs} ms`));
    }, timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.end(commands.join('; ') + '\n'));
    c.on('data', (d) => (out += d));
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

// ---- the process ----

/** The haproxy binary: $EZCTL_HAPROXY_BIN, else PATH and the sbin folders. */
export async function findHaproxy(): Promise<string> {
  const forced = process.env.EZCTL_HAPROXY_BIN;
  if (forced) {
    try {
      await access(forced, constants.X_OK);
      return forced;
    } catch {
      throw badInput(`EZCTL_HAPROXY_BIN=${forced} is not an executable file`, { hint: 'point it at haproxy, or unset it to find haproxy in PATH and /usr/sbin (apt-get install haproxy)' });
    }
  }
  for (const d of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin']) {
    if (!d) continue;
    try {
      await access(join(d, 'haproxy'), constants.X_OK);
      return join(d, 'haproxy');
    } catch {
      /* next */
    }
  }
  throw badInput('no haproxy binary found (looked in PATH and /usr/sbin)', {
    hint: 'install it: apt-get install haproxy (Debian/Ubuntu; scripts/ensure-proxy.sh does it as root), or set EZCTL_HAPROXY_BIN',
  });
}

/** "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/" → "2.6.12" */
export async function haproxyVersion(bin: string): Promise<string> {
  const { stdout } = await run(bin, ['-v'], { timeout: 10_000 });
  return /version\s+(\d+\.\d+(?:\.\d+)?)/i.exec(stdout)?.[1] ?? stdout.split('\n')[0]!.trim();
}

/** Is `pid` an haproxy started from this configuration file (and not a recycled pid)? */
export function isOurHaproxy(pid: number, cfg: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    // a zombie (exited, not yet reaped) has an empty command line
    return /haproxy$/.test(argv[0] ?? '') && argv.includes(cfg);
  } catch {
    return false; // no /proc: cannot prove it is ours, so never signal it
  }
}

/**
 * Write the configuration of a model: a temporary file (synced), checked by `haproxy -c` when
 * `bin` is given, renamed over the old one. The check costs about 57 ms (a process start,
 * measured with 2.6.12), so route moves, which sit inside a switch's write-unavailable window,
 * skip it: their file comes from a model of the same, already checked, shape.
 */
export async function writeConfig(bin: string | undefined, cfg: string, m: ProxyModel): Promise<void> {
  const tmp = `${cfg}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, renderConfig(m));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (bin) {
    try {
      await run(bin, ['-c', '-q', '-f', tmp], { timeout: 10_000 });
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string; message: string };
      throw runtimeError(`haproxy refuses the configuration written for ${m.name}: ${(err.stderr || err.stdout || err.message).trim().split('\n').slice(-3).join(' / ')}`, { hint: `see ${tmp}` });
    }
  }
  renameSync(tmp, cfg);
}

/**
 * Start haproxy in the foreground of its own session (-db: no fork, so the pid is the proxy),
 * detached from this command, its output in `log`. Resolves with the pid once the admin socket
 * answers; fails with haproxy's own words (a port in use, say) when it exits first.
 */
export async function startHaproxy(bin: string, cfg: string, admin: string, log: string, timeoutMs = 15_000): Promise<number> {
  const out = openSync(log, 'a');
  const child = spawn(bin, ['-db', '-f', cfg], { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();
  if (!child.pid) throw runtimeError(`could not start ${bin}`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      const tail = logTail(log);
      const inUse = tail.some((l) => /cannot bind socket|Address already in use/i.test(l));
      throw Object.assign(runtimeError(inUse ? `the proxy of ${cfg} could not bind its port (already in use)` : `haproxy exited during start (code ${exited})`, { details: tail, hint: `see ${log}` }), { portInUse: inUse });
    }
    try {
      if (statSync(admin).isSocket() && /Pid:/.test(await adminRequest(admin, ['show info'], 1_000))) {
        chmodSync(admin, 0o600);
        return child.pid;
      }
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  throw runtimeError(`haproxy (pid ${child.pid}) did not answer on ${admin} within ${timeoutMs / 1000} s`, { details: logTail(log), hint: `see ${log}` });
}

function logTail(log: string, lines = 6): string[] {
  try {
    return readFileSync(log, 'utf8').trim().split('\n').slice(-lines);
  } catch {
    return [];
  }
}

// ---- the routing target ----

export interface HaproxyTargetOptions {
  /** the haproxy.cfg written by ezctl (it carries the routing model) */
  config: string;
  /** the runtime API's unix socket; by default the one the configuration names */
  admin?: string;
  /** for messages */
  label?: string;
  /**
   * Addresses as the proxy's zone reaches them (config/via.ts): `to` turns a node's own address
   * into the one the proxy is given (another zone's master through a relay), `back` the other way
   * for what the proxy reports. Identity when absent.
   */
  seen?: { to: (n: RouteNode) => RouteNode; back: (n: RouteNode) => RouteNode };
}

export class HaproxyTarget implements RoutingTarget {
  readonly label: string;

  constructor(private readonly o: HaproxyTargetOptions) {
    this.label = o.label ?? `proxy ${this.model().name}`;
  }

  /** The routing model in the configuration file. */
  model(): ProxyModel {
    let text: string;
    try {
      text = readFileSync(this.o.config, 'utf8');
    } catch (e) {
      throw runtimeError(`cannot read the proxy configuration ${this.o.config}: ${(e as Error).message}`);
    }
    const m = parseModel(text);
    if (!m) throw badInput(`${this.o.config} was not written by ezctl (no "# ezctl-model:" line)`, { hint: 'ezctl moves routes only in an HAProxy configuration it wrote; route another proxy from the switch\'s hooks' });
    return m;
  }

  private get admin(): string {
    return this.o.admin ?? this.model().admin;
  }

  private async request(commands: string[]): Promise<string> {
    try {
      return await adminRequest(this.admin, commands);
    } catch (e) {
      throw runtimeError(`${this.label}: its admin socket ${this.admin} does not answer (${(e as Error).message})`, { hint: 'is the proxy running? (`ezctl sandbox status`; `ezctl sandbox up` starts it again)' });
    }
  }

  private async apply(plan: RoutePlan): Promise<void> {
    // The file first: a proxy restarted from here on routes as this change says. Not checked by
    // haproxy -c (57 ms inside the write-unavailable window); the runtime request takes ~1 ms.
    await writeConfig(undefined, this.o.config, plan.model);
    if (plan.commands.length === 0) return;
    let out: string;
    try {
      out = await this.request(plan.commands);
    } catch (e) {
      throw runtimeError(`${(e as Error).message}; ${this.o.config} already routes the new way and applies when the proxy starts`, { hint: (e as { hint?: string }).hint ?? '' });
    }
    const problems = runtimeOutputProblems(out);
    if (problems.length) throw runtimeError(`${this.label}: the runtime API refused part of the change: ${problems.join(' / ')}`, { details: plan.commands });
  }

  async serversState() {
    return parseServersState(await this.request(['show servers state']));
  }

  async currentWrite(): Promise<RouteNode | null> {
    const r = runtimeRoutes(await this.serversState());
    if (r.write.length > 1) throw runtimeError(`${this.label} sends writes to ${r.write.length} nodes (${r.write.map((s) => s.server).join(', ')})`, { hint: 'move the write route to the master again to repair it' });
    const w = r.write[0];
    return w ? this.back({ name: w.server, host: w.addr, port: w.port }) : null;
  }

  private seenTo = (n: RouteNode): RouteNode => (this.o.seen ? this.o.seen.to(n) : n);
  private back = (n: RouteNode): RouteNode => (this.o.seen ? this.o.seen.back(n) : n);

  async moveWrite(to: RouteNode, opts: MoveWriteOptions = {}): Promise<void> {
    await this.apply(this.plan(() => planMoveWrite(this.model(), this.seenTo(to), opts.killExisting ?? true)));
  }

  async setReadPool(nodes: RouteNode[]): Promise<void> {
    await this.apply(this.plan(() => planReadPool(this.model(), nodes.map(this.seenTo))));
  }

  async fence(node: string): Promise<void> {
    await this.apply(this.plan(() => planFence(this.model(), node)));
  }

  async unfence(node: string): Promise<void> {
    await this.apply(this.plan(() => planUnfence(this.model(), node)));
  }

  private plan(f: () => RoutePlan): RoutePlan {
    try {
      return f();
    } catch (e) {
      if ((e as { exitCode?: number }).exitCode !== undefined) throw e;
      throw badInput(`${this.label}: ${(e as Error).message}`);
    }
  }

  async health(): Promise<RouteHealth> {
    const m = this.model();
    let info: string;
    try {
      info = await adminRequest(this.admin, ['show info'], 2_000);
    } catch (e) {
      return { up: false, problems: [`the proxy does not answer on ${this.admin} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`], write: null, read: [], fenced: m.fenced, version: null };
    }
    const version = /^Version:\s*(\S+)/m.exec(info)?.[1] ?? null;
    const r = runtimeRoutes(await this.serversState());
    const node = (s: { server: string; addr: string; port: number }): RouteNode => this.back({ name: s.server, host: s.addr, port: s.port });
    return {
      up: true,
      problems: routeDrift(m, r),
      write: r.write.length === 1 ? node(r.write[0]!) : null,
      read: r.read.map(node),
      fenced: m.fenced,
      version,
    };
  }
}
