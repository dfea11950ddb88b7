// Server binaries and processes for the sandbox: find mariadbd (or mysqld), keep one initialised
// template datadir per server version in the cache, copy it per node, spawn each server as a
// plain detached process, wait until it answers, and stop it by pid.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { access, readFile, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, userInfo } from 'node:os';
import { join, delimiter } from 'node:path';
import { promisify } from 'node:util';
import { badInput, runtimeError } from '../exit.js';
import type { Flavor } from '../db/gtid.js';
import { pidAlive, stopProcess } from '../process/pids.js';

const run = promisify(execFile);

export interface ServerKit {
  flavor: Flavor;
  server: string;
  installDb?: string;
  version: string;
}

async function which(name: string): Promise<string | undefined> {
  // EZCTL_SERVER_PATH replaces the search list (PATH plus the sbin folders servers live in).
  const dirs = process.env.EZCTL_SERVER_PATH !== undefined
    ? process.env.EZCTL_SERVER_PATH.split(delimiter)
    : [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/mysql/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The server this machine has: mariadbd first (with mariadb-install-db), else mysqld. */
export async function findServerKit(): Promise<ServerKit> {
  const forced = process.env.EZCTL_SERVER_BIN;
  const mariadbd = forced ?? (await which('mariadbd'));
  if (mariadbd) {
    const installDb = await which('mariadb-install-db') ?? await which('mysql_install_db');
    const version = await serverVersion(mariadbd);
    if (/mariadb/i.test(version)) {
      if (!installDb) throw badInput(`found ${mariadbd} but not mariadb-install-db`, { hint: 'install the full server package: apt-get install mariadb-server' });
      return { flavor: 'mariadb', server: mariadbd, installDb, version };
    }
    return { flavor: 'mysql', server: mariadbd, version };
  }
  const mysqld = await which('mysqld');
  if (mysqld) {
    const version = await serverVersion(mysqld);
    if (/mariadb/i.test(version)) {
      const installDb = await which('mariadb-install-db') ?? await which('mysql_install_db');
      if (!installDb) throw badInput(`found ${mysqld} but not mariadb-install-db`, { hint: 'install the full server package: apt-get install mariadb-server' });
      return { flavor: 'mariadb', server: mysqld, installDb, version };
    }
    return { flavor: 'mysql', server: mysqld, version };
  }
  throw badInput('no MariaDB or MySQL server binary found (looked for mariadbd and mysqld in PATH and /usr/sbin)', {
    hint: 'install one: apt-get install mariadb-server (Debian/Ubuntu), or set EZCTL_SERVER_BIN to the mariadbd/mysqld path',
  });
}

async function serverVersion(bin: string): Promise<string> {
  try {
    const { stdout } = await run(bin, ['--version'], { timeout: 10_000 });
    return stdout.trim();
  } catch (e) {
    throw runtimeError(`cannot run ${bin} --version: ${(e as Error).message}`);
  }
}

/** "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for ..." → "10.11.19" */
export function versionNumber(versionText: string): string {
  return /Ver\s+(\d+\.\d+\.\d+)/.exec(versionText)?.[1] ?? 'unknown';
}

export function cacheDir(): string {
  if (process.env.EZCTL_CACHE_DIR) return process.env.EZCTL_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'ezctl');
}

const runningAsRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

// Small InnoDB files keep the template and every copy small; settings must match at start.
export const INNODB_SIZING = ['--innodb-log-file-size=16M', '--innodb-buffer-pool-size=64M'];

/**
 * An initialised datadir for this server version, created once and reused: copying it per node
 * is about three times faster than initialising each node. Safe when several processes race:
 * each builds in its own temporary folder and the first rename wins.
 */
export async function templateDatadir(kit: ServerKit): Promise<string> {
  const dir = join(cacheDir(), `template-${kit.flavor}-${versionNumber(kit.version)}-v1`);
  if (existsSync(join(dir, 'READY'))) return dir;
  mkdirSync(cacheDir(), { recursive: true, mode: 0o700 });
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    if (kit.flavor === 'mariadb') {
      const args = ['--no-defaults', `--datadir=${tmp}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...INNODB_SIZING];
      if (runningAsRoot()) args.push('--user=root');
      await run(kit.installDb!, args, { timeout: 120_000 });
    } else {
      const args = ['--no-defaults', '--initialize-insecure', `--datadir=${tmp}`, ...INNODB_SIZING.filter((a) => !a.includes('log-file'))];
      if (runningAsRoot()) args.push('--user=root');
      await run(kit.server, args, { timeout: 180_000 });
    }
    closeSync(openSync(join(tmp, 'READY'), 'w'));
    try {
      renameSync(tmp, dir);
    } catch {
      // another process won the race; its template is as good as ours
      rmSync(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const err = e as { stderr?: string; message: string };
    throw runtimeError(`initialising a ${kit.flavor} datadir failed: ${(err.stderr || err.message).trim().split('\n').slice(-3).join(' / ')}`);
  }
  return dir;
}

export async function copyDatadir(template: string, target: string): Promise<void> {
  await run('cp', ['-a', template, target]);
  await rm(join(target, 'READY'), { force: true });
}

export interface NodeProcessSpec {
  datadir: string;
  port: number;
  socket: string;
  pidFile: string;
  errorLog: string;
  serverId: number;
  domainId: number;
  readOnly: boolean;
  autoIncrementIncrement: number;
  autoIncrementOffset: number;
}

/** Command-line arguments: ROW binlogs with full images and metadata, GTIDs, loopback only. */
export function serverArgs(kit: ServerKit, s: NodeProcessSpec): string[] {
  const args = [
    '--no-defaults',
    `--datadir=${s.datadir}`,
    `--port=${s.port}`,
    '--bind-address=127.0.0.1',
    `--socket=${s.socket}`,
    `--pid-file=${s.pidFile}`,
    `--log-error=${s.errorLog}`,
    // each node's own temporary files (on-disk internal temp tables, filesort) beside its
    // datadir, not in a /tmp shared with every other server and test on the machine
    `--tmpdir=${nodeTmpdir(s)}`,
    `--server-id=${s.serverId}`,
    '--log-bin=binlog',
    '--relay-log=relay-bin',
    '--binlog-format=ROW',
    '--binlog-row-image=FULL',
    '--binlog-row-metadata=FULL',
    '--log-slave-updates=ON',
    '--skip-name-resolve',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_general_ci',
    '--default-time-zone=+00:00',
    // Mode 2 keeps a copy INSERT...SELECT from holding the AUTO-INC lock (MARIADB-NOTES).
    '--innodb-autoinc-lock-mode=2',
    // Durable at commit, binlog included: with =2 a server killed with -9 was seen to lose
    // transactions its binlog readers (DRC, replicas) had already received, and then to hand
    // out their GTIDs again. DRC's masters need what production ones have.
    '--innodb-flush-log-at-trx-commit=1',
    '--sync-binlog=1',
    '--max-connections=300',
    '--performance-schema=OFF',
    `--auto-increment-increment=${s.autoIncrementIncrement}`,
    `--auto-increment-offset=${s.autoIncrementOffset}`,
    ...INNODB_SIZING,
  ];
  if (kit.flavor === 'mariadb') {
    args.push(`--gtid-domain-id=${s.domainId}`);
  } else {
    args.push('--gtid-mode=ON', '--enforce-gtid-consistency=ON', '--mysqlx=OFF', `--report-port=${s.port}`);
  }
  if (s.readOnly) args.push('--read-only=ON');
  if (runningAsRoot()) args.push(`--user=${userInfo().username}`);
  return args;
}

export function nodeTmpdir(s: Pick<NodeProcessSpec, 'datadir'>): string {
  return `${s.datadir}.tmp`;
}

/** Start the server detached (its own session), so it outlives this command. */
export function spawnServer(kit: ServerKit, s: NodeProcessSpec, env?: NodeJS.ProcessEnv): number {
  mkdirSync(nodeTmpdir(s), { recursive: true, mode: 0o700 });
  const out = openSync(join(s.datadir, 'stdout.log'), 'a');
  // env: added to this process's environment (a drill's libfaketime: LD_PRELOAD and FAKETIME)
  const child = spawn(kit.server, serverArgs(kit, s), { detached: true, stdio: ['ignore', out, out], ...(env ? { env: { ...process.env, ...env } } : {}) });
  closeSync(out);
  child.unref();
  if (!child.pid) throw runtimeError(`could not start ${kit.server}`);
  return child.pid;
}

/** Is `pid` the server of this datadir (and not a recycled pid of something else)? */
export function isOurServer(pid: number, datadir: string): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.includes(`--datadir=${datadir}`);
  } catch {
    return false; // no /proc: cannot prove it is ours, so never signal it
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Last lines of the error log that explain a failed start. */
export async function errorLogTail(path: string, lines = 6): Promise<string[]> {
  try {
    const text = await readFile(path, 'utf8');
    const all = text.trim().split('\n');
    const errors = all.filter((l) => /\[ERROR\]/.test(l));
    return (errors.length ? errors : all).slice(-lines);
  } catch {
    return [];
  }
}

/** Wait until the server answers on its socket, or fail with the error log's explanation. */
export async function waitReady(pid: number, s: NodeProcessSpec, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) {
      const tail = await errorLogTail(s.errorLog);
      const inUse = tail.some((l) => /Address already in use|Do you already have another/i.test(l));
      const msg = inUse ? `port 127.0.0.1:${s.port} is already in use` : `the server on port ${s.port} exited during start`;
      throw Object.assign(runtimeError(msg, { details: tail, hint: inUse ? 'choose another --base-port, or omit it to use free ports' : `see ${s.errorLog}` }), { portInUse: inUse });
    }
    try {
      statSync(s.socket);
      if (await socketAnswers(s.socket)) return;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  throw runtimeError(`the server on port ${s.port} did not become ready within ${timeoutMs / 1000} s`, { details: await errorLogTail(s.errorLog), hint: `see ${s.errorLog}` });
}

async function socketAnswers(socket: string): Promise<boolean> {
  const { createConnection } = await import('node:net');
  return new Promise((resolve) => {
    const c = createConnection(socket);
    const done = (ok: boolean) => {
      c.destroy();
      resolve(ok);
    };
    c.once('data', () => done(true)); // the server greets first
    c.once('error', () => done(false));
    c.setTimeout(1000, () => done(false));
  });
}

/** SIGTERM, wait for exit, SIGKILL after the grace period. Only ever signals our own server. */
export async function stopServer(pid: number, datadir: string, opts: { graceMs?: number; signal?: NodeJS.Signals } = {}): Promise<boolean> {
  return (await stopProcess(pid, () => isOurServer(pid, datadir), opts)) !== undefined;
}

export async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** n distinct ports the system says are free now. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<import('node:net').Server>((resolve, reject) => {
        const srv = createServer();
        srv.once('error', reject);
        srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => resolve(srv));
      }),
    ),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
