// `ezctl osc` against pt-online-schema-change and the server's own ALTER ... ALGORITHM=COPY
// (issues "mm-ost" and 11), on the same data in the same sandbox. Targets: copy rate >= 0.9x
// ALTER COPY's in each case, foreground p95 increase no larger than pt-osc's, no row lock wait
// or deadlock caused under load, cut-over skew <= 1 s:
//  - sandbox: 2 zones (bj, sh), a master each, no replicas; DRC running both ways for every run
//    (BENCH_DRC=0: no DRC), so every contender works in the same active-active setting: DRC's
//    binlog readers decode every row a copy writes, whoever writes it. pt-osc's helper tables
//    (_t_new, _t_old) are excluded from DRC in the topology file (ezctl's are excluded by DRC
//    itself).
//  - data: sbtest.sbtest1, sysbench's table shape (id INT AUTO_INCREMENT PRIMARY KEY, k INT with
//    its index k_1, c CHAR(120), pad CHAR(60)) plus drc_ts TIMESTAMP(3), BENCH_ROWS rows
//    (1,000,000), loaded with MariaDB's sequence engine with sql_log_bin=0, identical in both
//    zones (deterministic values, drc_ts fixed). Reloaded before every run, so each run starts
//    from the same table (helper tables left behind are dropped).
//  - changes: "ADD COLUMN x INT NULL" (forced to a copy: ezctl --instant never, ALGORITHM=COPY;
//    ezctl's default --instant auto is shown once too) and "MODIFY id BIGINT NOT NULL
//    AUTO_INCREMENT" (the key widened: a copy for everyone).
//  - contenders: ezctl osc in both zones at once (the real use; on the same 2 cores), ezctl osc
//    --zones bj (like for like), pt-online-schema-change on bj's master, ALTER ALGORITHM=COPY on
//    bj's master (the limit of copying: no binlog rows, no triggers, but writes blocked).
//  - idle, then under sysbench oltp_read_write at a fixed rate (BENCH_RATE 100 tx/s, BENCH_THREADS
//    4) on bj's master against the same table: p95 latency over BENCH_BASELINE_SECONDS (20) right
//    before each run, and over the run itself (sysbench started with the tool; the window ends
//    when the tool has exited and sysbench's rate queue has drained). sysbench runs a 12-line
//    wrapper of its own oltp_read_write.lua that ends the run when a stop file appears, so its
//    own latency histogram (queue time included) covers exactly the migration.
//  - copy rows/s: rows / the copy phase, seen on the server: bj's (and sh's) processlist is
//    sampled every 100 ms for the tool's copy statement (its start from TIME_MS, its end when it
//    is last seen), the same way for ezctl and pt-osc (ezctl's build of the ghost's plain indexes
//    after the copy counts as copying); ALTER COPY: rows / its whole statement.
//  - cut-over skew: BENCH_SKEW_RUNS (10) runs of ezctl osc --instant never on a BENCH_SKEW_ROWS
//    (20,000) table in both zones: ezctl's own cutOver.skewMs (in-process: when each zone's
//    RENAME returned), and a probe independent of ezctl: in each zone a session loops on
//    `SELECT x FROM t LIMIT 0` (it fails until the new table is there, and blocks behind the
//    cut-over lock), one clock, first success per zone.
//  - diagnostics (BENCH_DIAG=0 to skip): CPU seconds of each tool, each mariadbd and the DRC
//    daemon per run; binlog bytes per run; ezctl's and pt-osc's copy statements alone at their
//    own chunk sizes (ezctl's with its index built after the copy, and kept during it); ezctl's
//    with its binlog reader in this process (decoding only the changed table, as ezctl does).
//  - idle, ezctl --zones bj again at BENCH_CHUNK_TIMES_IDLE (none by default), each change.
//  - under load, pt-osc and ezctl --zones bj again at BENCH_CHUNK_TIMES_LOAD (0.1 s; '' for none):
//    pt-osc reads each chunk LOCK IN SHARE MODE, so a foreground write to a row of the chunk being
//    copied waits for that chunk; ezctl's copy reads without locks (its binlog applier's
//    batches still take row locks on the ghost only). InnoDB's row lock waits are counted per run.
//  - idle runs: each copy statement as the server timed it (slow log to a table at
//    long_query_time=0), to tell the server's time from the time between statements.
// Sizes: BENCH_ROWS, BENCH_SKEW_ROWS, BENCH_SKEW_RUNS; BENCH_MODES=idle,load; BENCH_CHANGES=
// add,bigint; BENCH_CONTENDERS=pt-osc,alter-copy,ezctl-bj,ezctl-bj-t2,ezctl-2z; BENCH_REPS (1);
// BENCH_BUFFER_POOL (e.g. 1G; the sandbox's is 64M), BENCH_LOG_FILE_SIZE (e.g. 512M; the
// sandbox's is 16M). BENCH_OUT=file.json for every sample.
// Run with `npm run bench -- osc`. Figures go in the README.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir, loadavg } from 'node:os';
import { startSandbox, type TestSandbox } from '../test/helpers/sandbox.js';
import { drcStart, drcStop, patchTopology } from '../test/helpers/drc.js';
import { EZCTL, ROOT } from '../test/helpers/cli.js';
import type { Db } from '../src/core/db/connect.js';
import { readDefaultsFile } from '../src/core/config/defaults-file.js';
import { BinlogStream } from '../src/core/binlog/stream.js';
import { SourcePosition } from '../src/core/binlog/position.js';
import { gtidCovers } from '../src/core/db/gtid.js';
import { cpuSeconds, row } from './_util.js';

const num = (name: string, def: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v} is not a number`);
  return n;
};
const list = (name: string, def: string): string[] => (process.env[name] ?? def).split(',').map((s) => s.trim()).filter(Boolean);

const ROWS = num('BENCH_ROWS', 1_000_000);
const SKEW_ROWS = num('BENCH_SKEW_ROWS', 20_000);
const SKEW_RUNS = num('BENCH_SKEW_RUNS', 10);
const RATE = num('BENCH_RATE', 100);
const THREADS = num('BENCH_THREADS', 4);
const BASELINE_S = num('BENCH_BASELINE_SECONDS', 20);
const REPS = Math.max(1, num('BENCH_REPS', 1));
const USE_DRC = process.env.BENCH_DRC !== '0';
const DIAG = process.env.BENCH_DIAG !== '0';
const DIAG_REPS = Math.max(1, num('BENCH_DIAG_REPS', 2));
const CHUNK_TIMES_LOAD = list('BENCH_CHUNK_TIMES_LOAD', '0.1');
// idle, ezctl --zones bj again at these --chunk-time values (none by default): what a smaller chunk costs without load
const CHUNK_TIMES_IDLE = list('BENCH_CHUNK_TIMES_IDLE', '');
const BUFFER_POOL = process.env.BENCH_BUFFER_POOL;
const LOG_FILE_SIZE = process.env.BENCH_LOG_FILE_SIZE;
const MODES = list('BENCH_MODES', 'idle,load') as Mode[];
const SCHEMA = 'sbtest';
const TABLE = 'sbtest1';
const SKEW_TABLE = 'skew';
const ZONES = ['bj', 'sh'] as const;
const LOAD_BATCH = 250_000;
const OLD_TS = '2024-01-01 00:00:00.000';

type Mode = 'idle' | 'load';
type ChangeId = 'add' | 'bigint';
type ContenderId = 'pt-osc' | 'alter-copy' | 'ezctl-bj' | 'ezctl-bj-t2' | 'ezctl-2z';

const CHANGES: Record<ChangeId, { label: string; alter: string }> = {
  add: { label: 'ADD COLUMN x INT NULL', alter: 'ADD COLUMN x INT NULL' },
  bigint: { label: 'MODIFY id BIGINT (key)', alter: 'MODIFY id BIGINT NOT NULL AUTO_INCREMENT' },
};
const CONTENDERS: Record<ContenderId, { label: string; zones: string[] }> = {
  'pt-osc': { label: 'pt-online-schema-change, bj', zones: ['bj'] },
  'alter-copy': { label: 'ALTER ALGORITHM=COPY, bj', zones: ['bj'] },
  'ezctl-bj': { label: 'ezctl osc --zones bj', zones: ['bj'] },
  'ezctl-bj-t2': { label: 'ezctl osc --zones bj --copy-threads 2', zones: ['bj'] },
  'ezctl-2z': { label: 'ezctl osc, bj+sh at once', zones: ['bj', 'sh'] },
};
const CHANGE_IDS = list('BENCH_CHANGES', 'add,bigint') as ChangeId[];
const CONTENDER_IDS = list('BENCH_CONTENDERS', 'pt-osc,alter-copy,ezctl-bj,ezctl-bj-t2,ezctl-2z') as ContenderId[];
for (const c of CHANGE_IDS) if (!CHANGES[c]) throw new Error(`BENCH_CHANGES: no change ${c} (add, bigint)`);
for (const c of CONTENDER_IDS) if (!CONTENDERS[c]) throw new Error(`BENCH_CONTENDERS: no contender ${c}`);
for (const m of MODES) if (m !== 'idle' && m !== 'load') throw new Error(`BENCH_MODES: no mode ${m} (idle, load)`);

// ---------------------------------------------------------------------------------------------
// processes: every child is tracked so Ctrl-C stops exactly those, by pid

const children = new Set<ChildProcess>();
let sandbox: TestSandbox | undefined;
let drcPid: number | undefined;
let tmp: string | undefined;
let downing: Promise<void> | undefined;
let interrupted = false;

function cleanup(): Promise<void> {
  downing ??= (async () => {
    for (const c of children) if (c.pid && c.exitCode === null) c.kill('SIGTERM');
    if (sandbox && drcPid) await drcStop(sandbox, drcPid).catch((e) => console.error(`drc stop: ${(e as Error).message}`));
    if (sandbox) await sandbox.down().catch((e) => console.error(`sandbox down: ${(e as Error).message}`));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  })();
  return downing;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: stopping the benchmark's own processes and the sandbox`);
    void cleanup().finally(() => process.exit(130));
  });
}


interface Measured {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** the child's CPU seconds, sampled every 100 ms (the last 100 ms may be missing) */
  cpuS: number;
}

interface Spawned {
  child: ChildProcess;
  done: Promise<Measured>;
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, onLine?: (line: string) => void): Spawned {
  if (interrupted) throw new Error('interrupted');
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, CI: 'true', NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  let cpu = 0;
  let partial = '';
  const sample = () => {
    const c = cpuSeconds(child.pid);
    if (c !== undefined) cpu = c;
  };
  const timer = setInterval(sample, 100);
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d;
    if (!onLine) return;
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) onLine(l);
  });
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Measured>((resolve, reject) => {
    child.on('error', (e) => {
      clearInterval(timer);
      children.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearInterval(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, ms: Number(process.hrtime.bigint() - t0) / 1e6, cpuS: cpu });
    });
  });
  return { child, done };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------
// data

function createSql(table: string): string {
  // sysbench's own table (oltp_common.lua) plus the DRC timestamp column
  return `CREATE TABLE ${SCHEMA}.\`${table}\` (
    id INT NOT NULL AUTO_INCREMENT,
    k INT NOT NULL DEFAULT 0,
    c CHAR(120) NOT NULL DEFAULT '',
    pad CHAR(60) NOT NULL DEFAULT '',
    drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    KEY k_1 (k)
  ) ENGINE=InnoDB`;
}

const helpers = (t: string) => [`${t}_ezgho`, `${t}_ezdel`, `_${t}_new`, `_${t}_old`];

/** Drop the table (and any helper table a run left) and load it again, unlogged, in every zone. */
async function reload(sb: TestSandbox, table: string, rows: number): Promise<number> {
  const t0 = Date.now();
  await Promise.all(ZONES.map(async (z) => {
    const db = await sb.db(`${z}-master`);
    try {
      await db.exec('SET SESSION sql_log_bin = 0');
      for (const h of [...helpers(table), table]) await db.exec(`DROP TABLE IF EXISTS ${SCHEMA}.\`${h}\``);
      await db.exec(createSql(table));
      for (let a = 1; a <= rows; a += LOAD_BATCH) {
        const b = Math.min(rows, a + LOAD_BATCH - 1);
        // deterministic values, the same in every zone; the sequence table is qualified with a db
        await db.exec(
          `INSERT INTO ${SCHEMA}.\`${table}\` (id, k, c, pad, drc_ts)
           SELECT seq, 1 + (seq * 7919) % ${rows}, LEFT(CONCAT(MD5(seq), '-', MD5(seq + 1), '-', MD5(seq + 2), '-', MD5(seq + 3)), 119),
                  LEFT(CONCAT(MD5(-seq), '-', MD5(-seq - 1)), 59), '${OLD_TS}'
           FROM ${SCHEMA}.seq_${a}_to_${b}`,
        );
      }
      // a job that failed part-way may have left its saved state
      await db.exec(`DELETE FROM _ezctl.osc_state WHERE job LIKE '%:${SCHEMA}.${table}'`).catch(() => undefined);
    } finally {
      await db.close();
    }
  }));
  return Date.now() - t0;
}

async function shapeOf(db: Db, table: string): Promise<{ idType: string; hasX: boolean }> {
  const cols = await db.query<{ name: string; type: string }>(
    'SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [SCHEMA, table],
  );
  return { idType: cols.find((c) => c.name === 'id')?.type ?? '?', hasX: cols.some((c) => c.name === 'x') };
}

// ---------------------------------------------------------------------------------------------
// measuring on the servers

/** Samples each zone master's processlist every 100 ms for the copy statement of a tool. */
class CopyWatch {
  private readonly first = new Map<string, number>();
  private readonly last = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(private readonly conns: Array<{ zone: string; db: Db }>, private readonly re: RegExp) {}

  start(): void {
    this.timer = setInterval(() => {
      this.polling ??= this.poll().finally(() => (this.polling = undefined));
    }, 100);
  }

  private async poll(): Promise<void> {
    await Promise.all(this.conns.map(async ({ zone, db }) => {
      const rows = await db.query<{ ms: string | number; info: string }>(
        "SELECT TIME_MS AS ms, LEFT(INFO, 200) AS info FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND (INFO LIKE 'INSERT%' OR INFO LIKE 'ALTER%')",
      );
      const now = nowMs();
      for (const r of rows) {
        if (!this.re.test(r.info)) continue;
        const began = now - Number(r.ms);
        this.first.set(zone, Math.min(this.first.get(zone) ?? Infinity, began));
        this.last.set(zone, now);
      }
    }));
  }

  /** Per zone: the copy phase in ms (first statement's start to the last sighting). */
  async stop(): Promise<Record<string, number>> {
    clearInterval(this.timer);
    await this.polling;
    const out: Record<string, number> = {};
    for (const [z, f] of this.first) out[z] = this.last.get(z)! - f;
    return out;
  }
}

/**
 * Who waits for whom at bj: InnoDB's lock waits sampled every 100 ms, each side named by what it
 * is (the application = sysbench's user, the tool's copy, ezctl's binlog applier, ...). A pair
 * seen in n samples waited about n x 0.1 s.
 */
class LockWatch {
  readonly pairs = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(private readonly db: Db, private readonly appUser: string) {}

  start(): void {
    this.timer = setInterval(() => {
      this.polling ??= this.poll().catch(() => undefined).finally(() => (this.polling = undefined));
    }, 100);
  }

  private what(user: string | null, query: string | null): string {
    const q = (query ?? '').replace(/\s+/g, ' ');
    if (user === this.appUser) return 'application';
    if (/^INSERT (LOW_PRIORITY IGNORE )?INTO `[^`]+`\.`([^`]+_ezgho|_[^`]+_new)` .*SELECT/i.test(q)) return 'copy';
    if (/^(REPLACE INTO|DELETE FROM) `[^`]+`\.`[^`]+_ezgho`/i.test(q)) return "ezctl's binlog applier";
    if (/^(SELECT COUNT|SELECT .*BIT_XOR)/i.test(q)) return 'checksum';
    if (/^(LOCK TABLES|RENAME TABLE)/i.test(q)) return 'cut-over';
    if (!q) return `${user ?? '?'} (between statements)`;
    return `${user ?? '?'}: ${q.slice(0, 30)}`;
  }

  private async poll(): Promise<void> {
    const rows = await this.db.query<{ wid: number; wu: string | null; wq: string | null; bid: number; bu: string | null; bq: string | null }>(
      `SELECT rt.trx_mysql_thread_id AS wid, rp.USER AS wu, LEFT(rt.trx_query, 200) AS wq, bt.trx_mysql_thread_id AS bid, bp.USER AS bu, LEFT(bt.trx_query, 200) AS bq
       FROM information_schema.INNODB_LOCK_WAITS w
       JOIN information_schema.INNODB_TRX rt ON rt.trx_id = w.requesting_trx_id
       JOIN information_schema.INNODB_TRX bt ON bt.trx_id = w.blocking_trx_id
       LEFT JOIN information_schema.PROCESSLIST rp ON rp.ID = rt.trx_mysql_thread_id
       LEFT JOIN information_schema.PROCESSLIST bp ON bp.ID = bt.trx_mysql_thread_id`,
    );
    const seen = new Set<string>();
    for (const r of rows) {
      const key = `${r.wid}>${r.bid}`;
      if (seen.has(key)) continue; // one pair once per sample, however many locks
      seen.add(key);
      const label = `${this.what(r.wu, r.wq)} waits for ${this.what(r.bu, r.bq)}`;
      this.pairs.set(label, (this.pairs.get(label) ?? 0) + 1);
    }
  }

  async stop(): Promise<Record<string, number>> {
    clearInterval(this.timer);
    await this.polling;
    return Object.fromEntries([...this.pairs].sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, n / 10]));
  }
}

/** BENCH_BINLOG_ROWS=1: what fills bj's binlog during each run (row images counted per statement kind and table). */
const BINLOG_ROWS = process.env.BENCH_BINLOG_ROWS === '1';

function binlogRowCounts(sandboxDir: string, file: string, pos: number): string {
  const dir = join(sandboxDir, 'bj-master');
  const index = readFileSync(join(dir, 'binlog.index'), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean).map((l) => l.replace(/^\.\//, ''));
  const files = index.slice(index.indexOf(file));
  const counts = new Map<string, number>();
  files.forEach((f, i) => {
    // streamed through grep: a run's decoded binlog is larger than a string may be
    const args = ['--base64-output=decode-rows', '-v', ...(i === 0 ? [`--start-position=${pos}`] : []), join(dir, f)];
    const out = spawnSync('bash', ['-c', 'mariadb-binlog "$@" | grep -oE "^### (INSERT INTO|UPDATE|DELETE FROM) [^ ]+" | sort | uniq -c', '_', ...args], { encoding: 'utf8', maxBuffer: 1 << 26 }).stdout ?? '';
    for (const m of out.matchAll(/^\s*(\d+) ### (.+)$/gm)) counts.set(m[2]!, (counts.get(m[2]!) ?? 0) + Number(m[1]));
  });
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, n]) => `${k} ${n}`).join('; ');
}

async function binlogBytes(db: Db): Promise<number> {
  const logs = await db.query<{ File_size: string | number }>('SHOW BINARY LOGS');
  return logs.reduce((s, l) => s + Number(l.File_size), 0);
}

// ---------------------------------------------------------------------------------------------
// sysbench: a wrapper of its own oltp_read_write that ends when a stop file appears

const FG_LUA = `-- oltp_read_write, ended (with sysbench's usual report) once $EZBENCH_STOP_FILE exists
dofile("/usr/share/sysbench/oltp_read_write.lua")
local stop_file = os.getenv("EZBENCH_STOP_FILE")
local inner = event
function event(thread_id)
  inner(thread_id)
  if stop_file then
    local f = io.open(stop_file, "r")
    if f then f:close(); return true end
  end
end
`;

interface Sysb {
  seconds: number;
  tps: number;
  transactions: number;
  errors: number;
  p95: number;
  maxMs: number;
  /** the worst 1-second interval's p95 */
  maxIntervalP95: number;
  code: number | null;
}

function parseSysbench(out: string, code: number | null): Sysb {
  const m = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const intervals = [...out.matchAll(/lat \(ms,95%\): ([\d.]+)/g)].map((x) => Number(x[1]));
  return {
    seconds: m(/total time:\s+([\d.]+)s/),
    tps: m(/transactions:\s+\d+\s+\(([\d.]+) per sec/),
    transactions: m(/transactions:\s+(\d+)/),
    errors: m(/ignored errors:\s+(\d+)/),
    p95: m(/95th percentile:\s+([\d.]+)/),
    maxMs: m(/max:\s+([\d.]+)/),
    maxIntervalP95: intervals.length ? Math.max(...intervals) : NaN,
    code,
  };
}

class Sysbench {
  readonly dir: string;
  private readonly cfg: string;
  private readonly lua: string;

  constructor(parent: string, host: string, port: number, user: string, password: string) {
    this.dir = mkdtempSync(join(parent, 'sysbench-'));
    // sysbench has no defaults-file option, but it reads options from --config-file: the
    // password lives in this 0600 file, never in argv
    this.cfg = join(this.dir, 'sysbench.cfg');
    writeFileSync(this.cfg, `db-driver=mysql\nmysql-host=${host}\nmysql-port=${port}\nmysql-user=${user}\nmysql-password=${password}\nmysql-db=${SCHEMA}\n`, { mode: 0o600 });
    this.lua = join(this.dir, 'oltp_read_write_until.lua');
    writeFileSync(this.lua, FG_LUA);
  }

  args(time: number): string[] {
    return [
      `--config-file=${this.cfg}`, '--tables=1', `--table-size=${ROWS}`, `--threads=${THREADS}`, `--rate=${RATE}`,
      '--report-interval=1', '--percentile=95', `--time=${time}`, this.lua, 'run',
    ];
  }

  async baseline(seconds: number): Promise<Sysb> {
    const r = await start('sysbench', this.args(seconds)).done;
    if (r.code !== 0) throw new Error(`sysbench exited ${r.code}: ${r.stdout.slice(-1500)}${r.stderr.slice(-1500)}`);
    return parseSysbench(r.stdout, r.code);
  }

  /** sysbench runs from just before fn starts until fn is done and its rate queue has drained. */
  async during<T>(fn: () => Promise<T>): Promise<{ value: T | undefined; error: Error | undefined; sysb: Sysb; out: string }> {
    const stopFile = join(this.dir, `stop-${Date.now()}`);
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    let fnDone = false;
    let drained: (() => void) | undefined;
    const drainedP = new Promise<void>((r) => (drained = r));
    let intervalsAfter = 0;
    const s = start('sysbench', this.args(0), { EZBENCH_STOP_FILE: stopFile }, (line) => {
      if (/Threads started!/.test(line)) started();
      const q = /queue length: (\d+)/.exec(line);
      if (q && fnDone && ++intervalsAfter >= 1 && Number(q[1]) === 0) drained?.();
    });
    const exited = s.done.then((r) => {
      started();
      drained?.();
      return r;
    });
    await startedP;
    let value: T | undefined;
    let error: Error | undefined;
    try {
      value = await fn();
    } catch (e) {
      error = e as Error;
    }
    fnDone = true;
    await Promise.race([drainedP, sleep(30_000)]);
    writeFileSync(stopFile, '');
    const t = setTimeout(() => s.child.kill('SIGTERM'), 60_000);
    const r = await exited;
    clearTimeout(t);
    rmSync(stopFile, { force: true });
    return { value, error, sysb: parseSysbench(r.stdout, r.code), out: r.stdout };
  }
}

// ---------------------------------------------------------------------------------------------
// the contenders

interface RunResult {
  contender: ContenderId;
  change: ChangeId;
  mode: Mode;
  rep: number;
  ok: boolean;
  error?: string;
  totalMs: number;
  /** per zone changed: the copy phase seen in the processlist */
  copyMs: Record<string, number>;
  /** rows / the slowest zone's copy phase (per zone: each zone copies its own ROWS) */
  rowsPerS: number | null;
  toolCpuS: number;
  serverCpuS: Record<string, number>;
  drcCpuS: number | null;
  binlogMb: Record<string, number>;
  ezctl?: { chunks: Record<string, number>; recopied: Record<string, number>; eventsApplied: Record<string, number>; skewMs: number | undefined };
  ptOscChunks?: number;
  /** --chunk-time given to the tool (default: each tool's own 0.5 s) */
  chunkTime?: string;
  /** idle runs: the copy statements as the server timed them (slow log at long_query_time=0) */
  statements?: Record<string, { n: number; s: number; rows: number }>;
  /** bj: InnoDB row lock waits during the run, and the time spent in them */
  rowLockWaits?: number;
  rowLockMs?: number;
  /** bj: InnoDB deadlocks during the run (Innodb_deadlocks) */
  deadlocks?: number;
  /** under load, at bj: "X waits for Y" -> seconds (sampled every 100 ms) */
  lockWaits?: Record<string, number>;
  baseline?: Sysb;
  during?: Sysb;
}

interface Ctx {
  sb: TestSandbox;
  watch: Array<{ zone: string; db: Db }>;
  admin: Record<string, Db>;
  cnf: string;
  sysbench: Sysbench;
  /** bj: a session of its own for the lock-wait sampler */
  lockDb: Db;
}

function copyRegex(c: ContenderId, table: string): RegExp | undefined {
  if (c === 'pt-osc') return new RegExp(`^INSERT LOW_PRIORITY IGNORE INTO \`${SCHEMA}\`\\.\`_${table}_new\``);
  // ezctl builds the ghost's plain indexes after the copy: that ALTER is part of its copy phase
  if (c.startsWith('ezctl')) return new RegExp(`^(INSERT INTO|ALTER TABLE) \`${SCHEMA}\`\\.\`${table}_ezgho\` (\\(|ADD KEY)`);
  return undefined;
}

async function runTool(ctx: Ctx, c: ContenderId, change: ChangeId, chunkTime?: string): Promise<{ ms: number; cpuS: number; json?: any; ptChunks?: number }> {
  const alter = CHANGES[change].alter;
  if (c === 'alter-copy') {
    const t0 = nowMs();
    await ctx.admin.bj!.exec(`ALTER TABLE ${SCHEMA}.${TABLE} ${alter}, ALGORITHM=COPY`);
    return { ms: nowMs() - t0, cpuS: 0 };
  }
  if (c === 'pt-osc') {
    const m = ctx.sb.node('bj-master');
    // the password stays in the sandbox's defaults file (F=), never in argv
    const args = [
      '--execute', '--no-version-check', '--recursion-method=none', '--chunk-time', chunkTime ?? '0.5', '--statistics',
      '--alter', alter, `D=${SCHEMA},t=${TABLE},h=${m.host},P=${m.port},u=ezctl,F=${ctx.cnf}`,
    ];
    const r = await start('pt-online-schema-change', args).done;
    if (r.code !== 0) throw new Error(`pt-online-schema-change exited ${r.code}\n${r.stdout.slice(-2500)}\n${r.stderr.slice(-2500)}`);
    return { ms: r.ms, cpuS: r.cpuS, ptChunks: Number(/#\s+INSERT\s+(\d+)/.exec(r.stdout)?.[1] ?? NaN) };
  }
  const args = [EZCTL, '--config', ctx.sb.config, '--json', 'osc', '--table', `${SCHEMA}.${TABLE}`, '--alter', alter, '--instant', 'never', '--execute'];
  if (c === 'ezctl-bj' || c === 'ezctl-bj-t2') args.push('--zones', 'bj');
  if (c === 'ezctl-bj-t2') args.push('--copy-threads', '2');
  if (chunkTime) args.push('--chunk-time', `${chunkTime}s`);
  const r = await start(process.execPath, args).done;
  if (r.code !== 0) throw new Error(`ezctl osc exited ${r.code}\n${r.stdout.slice(0, 2500)}\n${r.stderr.slice(-2500)}`);
  return { ms: r.ms, cpuS: r.cpuS, json: JSON.parse(r.stdout) };
}

async function drcCatchUp(sb: TestSandbox): Promise<void> {
  if (!USE_DRC) return;
  for (const [from, to] of [['bj', 'sh'], ['sh', 'bj']] as const) {
    const r = await sb.run(['drc', 'wait', '--from', from, '--to', to, '--timeout', '600s'], { timeoutMs: 660_000 });
    if (r.code !== 0) throw new Error(`drc wait ${from}->${to}: ${r.stdout}${r.stderr}`);
  }
}

async function rowLocks(db: Db): Promise<{ waits: number; ms: number; deadlocks: number }> {
  const rows = await db.query<{ Variable_name: string; Value: string }>("SHOW GLOBAL STATUS WHERE Variable_name LIKE 'Innodb_row_lock_%' OR Variable_name = 'Innodb_deadlocks'");
  const v = (n: string) => Number(rows.find((r) => r.Variable_name === n)?.Value ?? NaN);
  return { waits: v('Innodb_row_lock_waits'), ms: v('Innodb_row_lock_time'), deadlocks: v('Innodb_deadlocks') };
}

/** Idle runs: every statement goes to mysql.slow_log (TABLE, long_query_time=0) for the new sessions. */
async function slowLogOn(dbs: Db[]): Promise<void> {
  for (const db of dbs) {
    await db.exec('SET GLOBAL slow_query_log = 0');
    await db.exec('TRUNCATE TABLE mysql.slow_log');
    await db.exec("SET GLOBAL log_output = 'TABLE', long_query_time = 0, slow_query_log = 1");
  }
}

async function slowLogOff(db: Db, re: RegExp): Promise<{ n: number; s: number; rows: number }> {
  await db.exec('SET GLOBAL slow_query_log = 0, long_query_time = 10');
  const rows = await db.query<{ t: string; s: string | number; r: string | number }>(
    "SELECT LEFT(sql_text, 200) AS t, TIME_TO_SEC(query_time) AS s, rows_affected AS r FROM mysql.slow_log WHERE sql_text LIKE 'INSERT%'",
  );
  await db.exec('TRUNCATE TABLE mysql.slow_log');
  const mine = rows.filter((r) => re.test(String(r.t)));
  return { n: mine.length, s: mine.reduce((a, r) => a + Number(r.s), 0), rows: mine.reduce((a, r) => a + Number(r.r), 0) };
}

async function runOne(ctx: Ctx, c: ContenderId, change: ChangeId, mode: Mode, rep: number, chunkTime?: string): Promise<RunResult> {
  const { sb } = ctx;
  const zones = CONTENDERS[c].zones;
  const res: RunResult = { contender: c, change, mode, rep, ok: false, totalMs: NaN, copyMs: {}, rowsPerS: null, toolCpuS: NaN, serverCpuS: {}, drcCpuS: null, binlogMb: {} };
  if (chunkTime) res.chunkTime = chunkTime;
  await drcCatchUp(sb);
  await reload(sb, TABLE, ROWS);
  await drcCatchUp(sb);
  if (mode === 'load') res.baseline = await ctx.sysbench.baseline(BASELINE_S);

  const pids = Object.fromEntries(ZONES.map((z) => [z, sb.node(`${z}-master`).pid]));
  const cpu0 = Object.fromEntries(ZONES.map((z) => [z, cpuSeconds(pids[z]) ?? NaN]));
  const drc0 = cpuSeconds(drcPid);
  const bin0 = Object.fromEntries(await Promise.all(ZONES.map(async (z) => [z, await binlogBytes(ctx.admin[z]!)] as const)));
  const binAt = BINLOG_ROWS ? await ctx.admin.bj!.one<{ File: string; Position: string | number }>('SHOW MASTER STATUS') : undefined;
  const re = copyRegex(c, TABLE);
  const slowLog = mode === 'idle' && re !== undefined && DIAG;
  if (slowLog) await slowLogOn(zones.map((z) => ctx.admin[z]!));
  const locks0 = await rowLocks(ctx.admin.bj!);
  const watch = re ? new CopyWatch(ctx.watch.filter((w) => zones.includes(w.zone)), re) : undefined;
  watch?.start();
  const locks = mode === 'load' && DIAG ? new LockWatch(ctx.lockDb, 'app') : undefined;
  locks?.start();
  const exec = () => runTool(ctx, c, change, chunkTime);
  let tool: Awaited<ReturnType<typeof runTool>> | undefined;
  try {
    if (mode === 'load') {
      const d = await ctx.sysbench.during(exec);
      res.during = d.sysb;
      if (d.error) throw d.error;
      tool = d.value;
      if (d.sysb.code !== 0) console.log(`  (sysbench exited ${d.sysb.code} during ${c}: ${d.out.slice(-800)})`);
    } else {
      tool = await exec();
    }
    res.ok = true;
  } catch (e) {
    res.error = (e as Error).message;
    console.log(`  ${CONTENDERS[c].label}, ${CHANGES[change].label}, ${mode}: FAILED: ${res.error.slice(0, 1500)}`);
  }
  const windows = (await watch?.stop()) ?? {};
  if (locks) res.lockWaits = await locks.stop();
  const locks1 = await rowLocks(ctx.admin.bj!);
  res.rowLockWaits = locks1.waits - locks0.waits;
  res.rowLockMs = locks1.ms - locks0.ms;
  res.deadlocks = locks1.deadlocks - locks0.deadlocks;
  if (slowLog) {
    res.statements = {};
    for (const z of zones) {
      try {
        res.statements[z] = await slowLogOff(ctx.admin[z]!, re!);
      } catch (e) {
        console.log(`  (slow log at ${z}: ${(e as Error).message})`);
      }
    }
  }
  for (const z of ZONES) res.serverCpuS[z] = (cpuSeconds(pids[z]) ?? NaN) - cpu0[z]!;
  const drc1 = cpuSeconds(drcPid);
  res.drcCpuS = drc0 !== undefined && drc1 !== undefined ? drc1 - drc0 : null;
  for (const z of ZONES) res.binlogMb[z] = ((await binlogBytes(ctx.admin[z]!)) - bin0[z]!) / 2 ** 20;
  if (binAt) console.log(`  bj binlog row images during the run, by statement and table: ${binlogRowCounts(sb.dir, binAt.File, Number(binAt.Position))}`);
  if (!tool) return res;

  res.totalMs = tool.ms;
  res.toolCpuS = tool.cpuS;
  res.copyMs = c === 'alter-copy' ? { bj: tool.ms } : windows;
  const slowest = Math.max(...zones.map((z) => res.copyMs[z] ?? NaN));
  res.rowsPerS = Number.isFinite(slowest) && slowest > 0 ? ROWS / (slowest / 1000) : null;
  if (tool.ptChunks !== undefined) res.ptOscChunks = tool.ptChunks;
  if (tool.json) {
    const p = tool.json.progress as Array<{ zone: string; chunks: number; chunksRecopied: number; eventsApplied: number }>;
    res.ezctl = {
      chunks: Object.fromEntries(p.map((z) => [z.zone, z.chunks])),
      recopied: Object.fromEntries(p.map((z) => [z.zone, z.chunksRecopied])),
      eventsApplied: Object.fromEntries(p.map((z) => [z.zone, z.eventsApplied])),
      skewMs: tool.json.cutOver?.skewMs,
    };
  }
  try {
    await verifyRun(ctx, c, change, mode);
  } catch (e) {
    res.ok = false;
    res.error = (e as Error).message;
    console.log(`  ${CONTENDERS[c].label}, ${CHANGES[change].label}, ${mode}: WRONG RESULT: ${res.error}`);
  }
  return res;
}

/** The change happened where it should and nowhere else; idle, no row was lost. */
async function verifyRun(ctx: Ctx, c: ContenderId, change: ChangeId, mode: Mode): Promise<void> {
  const zones = CONTENDERS[c].zones;
  for (const z of ZONES) {
    const s = await shapeOf(ctx.admin[z]!, TABLE);
    const changed = change === 'add' ? s.hasX : s.idType === 'bigint';
    if (changed !== zones.includes(z)) throw new Error(`${c} ${change}: zone ${z} ${changed ? 'was changed' : 'was not changed'} (id ${s.idType}, x ${s.hasX})`);
  }
  if (mode === 'idle') {
    for (const z of zones) {
      const n = Number(await ctx.admin[z]!.value(`SELECT COUNT(*) FROM ${SCHEMA}.${TABLE}`));
      if (n !== ROWS) throw new Error(`${c} ${change}: zone ${z} has ${n} rows after the change, expected ${ROWS}`);
    }
  } else if (USE_DRC) {
    await drcCatchUp(ctx.sb);
    const [a, b] = await Promise.all(ZONES.map((z) => ctx.admin[z]!.value(`SELECT COUNT(*) FROM ${SCHEMA}.${TABLE}`)));
    if (Number(a) !== Number(b)) console.log(`  (after ${c} ${change} under load: bj has ${a} rows, sh ${b})`);
  }
}

// ---------------------------------------------------------------------------------------------
// cut-over skew

interface SkewRun {
  ezctlSkewMs: number;
  probeSkewMs: number;
  seenAt: Record<string, number>;
  ms: number;
}

/** First moment each zone answers `SELECT x FROM t` (the new shape), on one clock. */
function probeNewShape(ctx: Ctx, table: string, stop: { stop: boolean }): Promise<Record<string, number>> {
  return Promise.all(ctx.watch.map(async ({ zone, db }) => {
    while (!stop.stop) {
      try {
        await db.query(`SELECT x FROM ${SCHEMA}.\`${table}\` LIMIT 0`);
        return [zone, nowMs()] as const;
      } catch {
        await sleep(2);
      }
    }
    return [zone, NaN] as const;
  })).then((xs) => Object.fromEntries(xs));
}

async function skewRuns(ctx: Ctx): Promise<SkewRun[]> {
  const out: SkewRun[] = [];
  for (let i = 0; i < SKEW_RUNS; i++) {
    await drcCatchUp(ctx.sb);
    await reload(ctx.sb, SKEW_TABLE, SKEW_ROWS);
    const stop = { stop: false };
    const probes = probeNewShape(ctx, SKEW_TABLE, stop);
    const r = await start(process.execPath, [EZCTL, '--config', ctx.sb.config, '--json', 'osc', '--table', `${SCHEMA}.${SKEW_TABLE}`, '--alter', 'ADD COLUMN x INT NULL', '--instant', 'never', '--execute']).done;
    const t = setTimeout(() => (stop.stop = true), 10_000);
    if (r.code !== 0) stop.stop = true;
    const seen = await probes;
    clearTimeout(t);
    if (r.code !== 0) throw new Error(`skew run ${i + 1}: ezctl osc exited ${r.code}\n${r.stdout.slice(0, 2000)}\n${r.stderr.slice(-2000)}`);
    const j = JSON.parse(r.stdout);
    out.push({ ezctlSkewMs: j.cutOver.skewMs, probeSkewMs: Math.abs(seen.bj! - seen.sh!), seenAt: seen, ms: r.ms });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// diagnostics: the copy statements alone, and ezctl's with a binlog reader beside it

interface DiagCopy {
  label: string;
  chunkRows: number;
  ms: number;
  rowsPerS: number;
  readerBehindMs?: number;
  readerCpuS?: number;
  rowsDecoded?: number;
}

/**
 * A copy of the table on bj by one statement shape, with nothing else of the tool: pt-osc's
 * (locking reads into a ghost with every index); ezctl's (consistent reads into a ghost without
 * its plain index, built afterwards and timed with the copy); ezctl's keeping the index (what
 * --no-defer-indexes does); optionally with ezctl's binlog reader beside it in this process.
 */
type DiagStatement = 'ezctl' | 'ezctl-indexes-kept' | 'ezctl-binlog-off' | 'pt-osc';

async function diagCopy(ctx: Ctx, label: string, stmt: DiagStatement, chunkRows: number, withReader: boolean): Promise<DiagCopy> {
  const db = ctx.admin.bj!;
  await drcCatchUp(ctx.sb);
  await reload(ctx.sb, TABLE, ROWS);
  await drcCatchUp(ctx.sb);
  const ez = stmt !== 'pt-osc';
  const ghost = ez ? `${TABLE}_ezgho` : `_${TABLE}_new`;
  const g = `\`${SCHEMA}\`.\`${ghost}\``;
  const t = `\`${SCHEMA}\`.\`${TABLE}\``;
  await db.exec(`CREATE TABLE ${g} LIKE ${t}`);
  await db.exec(`ALTER TABLE ${g} ADD COLUMN x INT NULL`);
  const indexAfter = stmt === 'ezctl' || stmt === 'ezctl-binlog-off';
  if (indexAfter) await db.exec(`ALTER TABLE ${g} DROP INDEX \`k_1\``);
  await db.exec(`SET SESSION TRANSACTION ISOLATION LEVEL ${ez ? 'READ COMMITTED' : 'REPEATABLE READ'}`);
  // what the copy costs the server without writing its rows to the binlog: not a mode ezctl
  // offers (the zone's replicas need the ghost's rows), the measure of what the binlog takes
  if (stmt === 'ezctl-binlog-off') await db.exec('SET SESSION sql_log_bin = 0');
  const cols = '`id`, `k`, `c`, `pad`, `drc_ts`';
  let reader: { stop: () => Promise<void> } | undefined;
  let pos: SourcePosition | undefined;
  let decoded = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  if (withReader) {
    // what ezctl's zone job does: read the binlog from the ghost's creation on, keep the table's changes
    const from = String(await db.value('SELECT @@global.gtid_binlog_pos'));
    pos = new SourcePosition('mariadb', from);
    const n = ctx.sb.node('bj-master');
    const stream = new BinlogStream({
      endpoint: { label: 'bj-master', host: n.host, port: n.port, user: 'ezctl', password: ctx.sb.adminPassword, passwordSource: 'test' },
      flavor: 'mariadb',
      from,
      serverId: 880_000 + (process.pid % 10_000),
      decodeTable: (schema, table) => schema === SCHEMA && table === TABLE,
      onTx: (tx) => {
        pos!.advance(tx.gtid);
        decoded += tx.changes.length;
      },
      onError: (e) => console.log(`  (diag reader: ${e.message})`),
    });
    await stream.start();
    reader = stream;
    cpu0 = process.cpuUsage();
  }
  const t0 = nowMs();
  for (let lo = 0; lo < ROWS; lo += chunkRows) {
    const hi = lo + chunkRows;
    if (ez) {
      await db.exec(`INSERT INTO ${g} (${cols}) SELECT ${cols} FROM ${t} FORCE INDEX (\`PRIMARY\`) WHERE \`id\` > ? AND \`id\` <= ? ON DUPLICATE KEY UPDATE \`id\` = ${g}.\`id\``, [lo, hi]);
    } else {
      await db.exec(`INSERT LOW_PRIORITY IGNORE INTO ${g} (${cols}) SELECT ${cols} FROM ${t} FORCE INDEX(\`PRIMARY\`) WHERE ((\`id\` >= ?)) AND ((\`id\` <= ?)) LOCK IN SHARE MODE`, [lo + 1, hi]);
    }
  }
  if (indexAfter) await db.exec(`ALTER TABLE ${g} ADD KEY \`k_1\` (\`k\`), ALGORITHM=INPLACE, LOCK=NONE`);
  const ms = nowMs() - t0;
  await db.exec('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  await db.exec('SET SESSION sql_log_bin = 1');
  const out: DiagCopy = { label, chunkRows, ms, rowsPerS: ROWS / (ms / 1000) };
  if (reader && pos) {
    const target = String(await db.value('SELECT @@global.gtid_binlog_pos'));
    while (!gtidCovers('mariadb', pos.toString(), target)) await sleep(10);
    out.readerBehindMs = nowMs() - t0 - ms;
    const cu = process.cpuUsage(cpu0);
    out.readerCpuS = (cu.user + cu.system) / 1e6;
    out.rowsDecoded = decoded;
    await reader.stop();
  }
  await db.exec(`DROP TABLE ${g}`);
  return out;
}

// ---------------------------------------------------------------------------------------------

function bytes(v: string, name: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(v.trim());
  if (!m) throw new Error(`${name}=${v} is not a size (e.g. 1G, 512M)`);
  return Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase());
}

const s1 = (ms: number | undefined | null) => (ms === undefined || ms === null || !Number.isFinite(ms) ? '-' : (ms / 1000).toFixed(1));
const f1 = (x: number | undefined | null) => (x === undefined || x === null || !Number.isFinite(x) ? '-' : x.toFixed(1));
const k = (x: number | null | undefined) => (x === undefined || x === null || !Number.isFinite(x) ? '-' : Math.round(x).toLocaleString('en'));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

async function main(): Promise<void> {
  const t00 = Date.now();
  console.log(`online schema change: ezctl osc vs pt-online-schema-change vs ALTER ALGORITHM=COPY, ${ROWS.toLocaleString('en')} rows (sysbench shape + drc_ts), 2 zones, DRC ${USE_DRC ? 'running' : 'off'}`);
  console.log(`modes ${MODES.join(', ')}; under load: sysbench oltp_read_write ${RATE} tx/s, ${THREADS} threads, on bj's master, same table; ${REPS} rep(s)`);
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (2 cores shared with other work: timings are noisy)`);
  for (const bin of ['pt-online-schema-change', 'sysbench']) {
    const v = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (v.status !== 0) throw new Error(`${bin} is not installed (Debian packages percona-toolkit, sysbench)`);
    console.log(`${v.stdout.trim().split('\n')[0]}`);
  }
  tmp = mkdtempSync(join(tmpdir(), 'ezbench-osc-'));
  sandbox = await startSandbox({ zones: [...ZONES], replicas: 0 });
  const sb = sandbox;
  const admin: Record<string, Db> = {};
  const watch: Array<{ zone: string; db: Db }> = [];
  const results: Record<string, unknown> = { rows: ROWS, rate: RATE, threads: THREADS, drc: USE_DRC, reps: REPS };
  const runs: RunResult[] = [];
  let failed = false;
  try {
    for (const z of ZONES) {
      admin[z] = await sb.db(`${z}-master`);
      watch.push({ zone: z, db: await sb.db(`${z}-master`) });
      await admin[z]!.exec('SET SESSION sql_log_bin = 0');
      await admin[z]!.exec(`CREATE DATABASE ${SCHEMA}`);
      await admin[z]!.exec('SET SESSION sql_log_bin = 1');
      if (BUFFER_POOL) await admin[z]!.exec('SET GLOBAL innodb_buffer_pool_size = ?', [bytes(BUFFER_POOL, 'BENCH_BUFFER_POOL')]);
      // resizable at run time since MariaDB 10.9
      if (LOG_FILE_SIZE) await admin[z]!.exec('SET GLOBAL innodb_log_file_size = ?', [bytes(LOG_FILE_SIZE, 'BENCH_LOG_FILE_SIZE')]);
    }
    {
      const v = await admin.bj!.one<{ v: string; bp: string; lf: string; al: string }>('SELECT VERSION() AS v, @@innodb_buffer_pool_size AS bp, @@innodb_log_file_size AS lf, @@innodb_autoinc_lock_mode AS al');
      console.log(`server ${v?.v}: innodb_buffer_pool_size ${Math.round(Number(v?.bp) / 2 ** 20)} MB, innodb_log_file_size ${Math.round(Number(v?.lf) / 2 ** 20)} MB, innodb_autoinc_lock_mode ${v?.al}, sync_binlog=1, innodb_flush_log_at_trx_commit=1`);
    }
    const l0 = Date.now();
    await reload(sb, TABLE, ROWS);
    console.log(`sandbox up; ${ROWS.toLocaleString('en')} rows loaded per zone in ${s1(Date.now() - l0)} s (both zones at once, sql_log_bin=0)`);
    if (USE_DRC) {
      // pt-osc's helper tables stay out of DRC (ezctl's are left out by DRC itself)
      patchTopology(sb, (doc) => doc.setIn(['clusters', 'demo', 'drc'], doc.createNode({ exclude: [`${SCHEMA}._*_new`, `${SCHEMA}._*_old`] })));
      drcPid = await drcStart(sb);
      await sleep(1000);
      console.log(`DRC running (pid ${drcPid}); pt-osc's ${SCHEMA}._*_new/_*_old excluded from it`);
    }
    const appPw = readDefaultsFile(join(sb.dir, 'app.cnf')).password!;
    const bj = sb.node('bj-master');
    const lockDb = await sb.db('bj-master');
    watch.push({ zone: 'lock', db: lockDb }); // closed with the others
    const ctx: Ctx = { sb, watch: watch.filter((w) => w.zone !== 'lock'), admin, cnf: join(sb.dir, 'client.cnf'), sysbench: new Sysbench(tmp, bj.host, bj.port, 'app', appPw), lockDb };

    // ---- the runs
    for (const mode of MODES) {
      for (const change of CHANGE_IDS) {
        for (let rep = 1; rep <= REPS; rep++) {
          for (const c of CONTENDER_IDS) {
            if (interrupted) return;
            const r = await runOne(ctx, c, change, mode, rep);
            runs.push(r);
            const fg = r.baseline && r.during ? `, p95 ${f1(r.baseline.p95)} -> ${f1(r.during.p95)} ms` : '';
            console.log(`  ${mode} ${change} ${CONTENDERS[c].label}: ${r.ok ? `${s1(r.totalMs)} s, copy ${Object.entries(r.copyMs).map(([z, ms]) => `${z} ${s1(ms)} s`).join(' ')}, ${k(r.rowsPerS)} rows/s${fg}` : 'FAILED'}`);
            if (!r.ok) failed = true;
          }
        }
      }
    }
    // ---- the same under load at other chunk times (what the foreground p95 follows)
    const extra: RunResult[] = [];
    if (MODES.includes('idle')) {
      for (const ct of CHUNK_TIMES_IDLE) {
        for (const change of CHANGE_IDS) {
          if (interrupted) return;
          const r = await runOne(ctx, 'ezctl-bj', change, 'idle', 1, ct);
          extra.push(r);
          console.log(`  idle ${change} ${CONTENDERS['ezctl-bj'].label} --chunk-time ${ct}: ${r.ok ? `${s1(r.totalMs)} s, ${k(r.rowsPerS)} rows/s` : 'FAILED'}`);
        }
      }
    }
    if (MODES.includes('load')) {
      for (const ct of CHUNK_TIMES_LOAD) {
        for (const c of ['pt-osc', 'ezctl-bj'] as const) {
          if (interrupted) return;
          const r = await runOne(ctx, c, CHANGE_IDS[0]!, 'load', 1, ct);
          extra.push(r);
          console.log(`  load ${CHANGE_IDS[0]} ${CONTENDERS[c].label} --chunk-time ${ct}: ${r.ok ? `${s1(r.totalMs)} s, ${k(r.rowsPerS)} rows/s, p95 ${f1(r.baseline?.p95)} -> ${f1(r.during?.p95)} ms` : 'FAILED'}`);
        }
      }
    }
    results.runs = runs;
    results.chunkTimeRuns = extra;

    // ---- ezctl's default: --instant auto
    let instant: { ms: number; method: string } | undefined;
    if (CHANGE_IDS.includes('add')) {
      await drcCatchUp(sb);
      await reload(sb, TABLE, ROWS);
      const r = await start(process.execPath, [EZCTL, '--config', sb.config, '--json', 'osc', '--table', `${SCHEMA}.${TABLE}`, '--alter', CHANGES.add.alter, '--execute']).done;
      if (r.code !== 0) throw new Error(`ezctl osc --instant auto exited ${r.code}: ${r.stdout}${r.stderr.slice(-2000)}`);
      const j = JSON.parse(r.stdout);
      instant = { ms: r.ms, method: j.method };
      results.instantAuto = instant;
    }

    // ---- skew
    let skew: SkewRun[] = [];
    if (SKEW_RUNS > 0) {
      skew = await skewRuns(ctx);
      results.skew = skew;
    }

    // ---- diagnostics
    const diags: DiagCopy[] = [];
    const idleAdd = (c: ContenderId) => runs.find((r) => r.mode === 'idle' && r.change === 'add' && r.contender === c && r.ok);
    if (DIAG) {
      const ez = idleAdd('ezctl-bj');
      const pt = idleAdd('pt-osc');
      const ezChunk = ez?.ezctl ? Math.round(ROWS / ez.ezctl.chunks.bj!) : 40_000;
      const ptChunk = pt?.ptOscChunks ? Math.round(ROWS / pt.ptOscChunks) : 40_000;
      const variants: Array<[string, DiagStatement, number, boolean]> = [
        ["pt-osc's statement alone", 'pt-osc', ptChunk, false],
        ["ezctl's copy alone (index built after)", 'ezctl', ezChunk, false],
        ["ezctl's copy, index kept (--no-defer-indexes)", 'ezctl-indexes-kept', ezChunk, false],
        ["ezctl's copy, pt-osc's chunk size", 'ezctl', ptChunk, false],
        ["ezctl's copy + ezctl's binlog reader", 'ezctl', ezChunk, true],
        ["ezctl's copy, binlog off (what the binlog costs)", 'ezctl-binlog-off', ezChunk, false],
      ];
      // interleaved, best of DIAG_REPS each
      const all: DiagCopy[][] = variants.map(() => []);
      for (let i = 0; i < DIAG_REPS; i++) {
        for (const [j, v] of variants.entries()) all[j]!.push(await diagCopy(ctx, ...v));
      }
      for (const xs of all) diags.push(xs.reduce((a, b) => (b.ms < a.ms ? b : a)));
      results.diagAll = all;
      results.diag = diags;
    }

    // ---- report
    const best = (c: ContenderId, change: ChangeId, mode: Mode): RunResult | undefined =>
      runs.filter((r) => r.contender === c && r.change === change && r.mode === mode && r.ok).sort((a, b) => a.totalMs - b.totalMs)[0];
    const w = [28, 24, 6, 8, 16, 11, 10, 17, 8, 9, 13, 11];
    const lines = [row(['contender', 'change', 'mode', 'total s', 'copy s (zones)', 'copy rows/s', 'vs pt-osc', 'fg p95 ms', 'p95 +ms', 'tool CPU', 'mariadbd CPU', 'binlog MB'], w)];
    for (const mode of MODES) {
      for (const change of CHANGE_IDS) {
        const pt = best('pt-osc', change, mode);
        for (const c of CONTENDER_IDS) {
          const rs = runs.filter((r) => r.contender === c && r.change === change && r.mode === mode);
          const b = best(c, change, mode);
          if (!b) {
            if (rs.length) lines.push(row([CONTENDERS[c].label, CHANGES[change].label, mode, 'FAILED', '', '', '', '', '', '', '', ''], w));
            continue;
          }
          const copy = Object.values(b.copyMs).map((ms) => s1(ms)).join('/');
          const vs = b.rowsPerS && pt?.rowsPerS ? `${(b.rowsPerS / pt.rowsPerS).toFixed(2)}x` : '-';
          const fg = b.baseline && b.during ? `${f1(b.baseline.p95)} -> ${f1(b.during.p95)}` : '-';
          const inc = b.baseline && b.during ? f1(b.during.p95 - b.baseline.p95) : '-';
          const srv = CONTENDERS[c].zones.map((z) => f1(b.serverCpuS[z])).join('/');
          const bin = CONTENDERS[c].zones.map((z) => k(b.binlogMb[z])).join('/');
          lines.push(row([CONTENDERS[c].label, CHANGES[change].label, mode, s1(b.totalMs), copy, k(b.rowsPerS), vs, fg, inc, f1(b.toolCpuS), srv, bin], w));
        }
      }
    }
    console.log(`\n${ROWS.toLocaleString('en')} rows per zone${REPS > 1 ? `, best of ${REPS}` : ''}; copy rows/s is per zone (ezctl bj+sh copies that many rows in each zone at once); "vs pt-osc" = copy rate / pt-osc's; CPU in seconds (mariadbd: bj/sh); DRC ${USE_DRC ? 'running' : 'off'}:`);
    console.log(lines.join('\n'));
    for (const r of runs.filter((x) => x.ok && x.ezctl)) {
      const z = Object.keys(r.ezctl!.chunks);
      console.log(`  ezctl ${r.mode} ${r.change} (${CONTENDERS[r.contender].label}): chunks ${z.map((x) => `${x} ${r.ezctl!.chunks[x]} (avg ${k(ROWS / r.ezctl!.chunks[x]!)} rows)`).join(', ')}; re-copied ${z.map((x) => r.ezctl!.recopied[x]).join('/')}; binlog events applied ${z.map((x) => r.ezctl!.eventsApplied[x]).join('/')}; after the copy ${s1(r.totalMs - Math.max(...Object.values(r.copyMs)))} s (verify + cut-over); DRC CPU ${f1(r.drcCpuS)} s`);
    }
    for (const r of runs.filter((x) => x.ok && x.ptOscChunks !== undefined)) {
      console.log(`  pt-osc ${r.mode} ${r.change}: ${r.ptOscChunks} chunks (avg ${k(ROWS / r.ptOscChunks!)} rows); after the copy ${s1(r.totalMs - Math.max(...Object.values(r.copyMs)))} s; DRC CPU ${f1(r.drcCpuS)} s`);
    }
    for (const r of runs.filter((x) => x.during)) {
      console.log(`  fg ${r.change} ${CONTENDERS[r.contender].label}: baseline ${f1(r.baseline?.tps)} tx/s p95 ${f1(r.baseline?.p95)} max ${f1(r.baseline?.maxMs)} ms; during ${f1(r.during!.seconds)} s: ${f1(r.during!.tps)} tx/s p95 ${f1(r.during!.p95)} max ${f1(r.during!.maxMs)} ms, worst 1-s p95 ${f1(r.during!.maxIntervalP95)} ms, ${r.during!.errors} ignored errors`);
    }
    for (const r of runs.filter((x) => x.statements)) {
      const z = Object.keys(r.statements!);
      console.log(`  server-timed copy statements, ${r.mode} ${r.change} ${CONTENDERS[r.contender].label}: ${z.map((x) => {
        const st = r.statements![x]!;
        return `${x} ${st.n} statements, ${s1(st.s * 1000)} s inside the server (${k(st.rows / st.s)} rows/s) of a ${s1(r.copyMs[x])} s copy phase`;
      }).join('; ')}`);
    }
    for (const r of [...runs, ...extra].filter((x) => x.mode === 'load' && x.ok)) {
      const lw = Object.entries(r.lockWaits ?? {}).slice(0, 4).map(([k2, v]) => `${k2} ${v.toFixed(1)} s`).join('; ');
      console.log(`  row lock waits at bj, ${r.change} ${CONTENDERS[r.contender].label}${r.chunkTime ? ` --chunk-time ${r.chunkTime}` : ''}: ${k(r.rowLockWaits)} waits, ${s1(r.rowLockMs)} s waited, ${k(r.deadlocks)} deadlocks (InnoDB's counters)${lw ? `; sampled: ${lw}` : ''}`);
    }
    if (extra.length) {
      console.log(`\nunder load, ${CHANGES[CHANGE_IDS[0]!].label}, other --chunk-time values (the copy holds shared row locks on a chunk while it runs):`);
      const w4 = [28, 12, 8, 11, 17, 8, 12];
      console.log(row(['contender', 'chunk-time', 'total s', 'copy rows/s', 'fg p95 ms', 'p95 +ms', 'lock waits'], w4));
      const base = (c: ContenderId) => best(c, CHANGE_IDS[0]!, 'load');
      for (const r of [...(['pt-osc', 'ezctl-bj'] as const).map(base).filter((x): x is RunResult => !!x), ...extra.filter((x) => x.ok && x.mode === 'load')]) {
        console.log(row([CONTENDERS[r.contender].label, `${r.chunkTime ?? '0.5'} s`, s1(r.totalMs), k(r.rowsPerS), `${f1(r.baseline?.p95)} -> ${f1(r.during?.p95)}`, f1((r.during?.p95 ?? NaN) - (r.baseline?.p95 ?? NaN)), k(r.rowLockWaits)], w4));
      }
    }
    const idleExtra = extra.filter((x) => x.ok && x.mode === 'idle');
    if (idleExtra.length) {
      console.log(`\nidle, ezctl --zones bj at other --chunk-time values (against its default 0.5 s and ALTER COPY, best of the runs above):`);
      for (const change of CHANGE_IDS) {
        const lim = best('alter-copy', change, 'idle');
        const def = best('ezctl-bj', change, 'idle');
        const cells = [def && `0.5 s ${k(def.rowsPerS)} rows/s`, ...idleExtra.filter((x) => x.change === change).map((x) => `${x.chunkTime} s ${k(x.rowsPerS)} rows/s`)].filter(Boolean);
        console.log(`  ${CHANGES[change].label}: ${cells.join(', ')}${lim ? `; ALTER COPY ${k(lim.rowsPerS)} rows/s` : ''}`);
      }
    }
    if (instant) console.log(`\nezctl osc --alter "${CHANGES.add.alter}" with the default --instant auto, bj+sh: method ${instant.method}, ${s1(instant.ms)} s (process start to exit)`);
    if (skew.length) {
      const e = skew.map((s) => s.ezctlSkewMs);
      const p = skew.map((s) => s.probeSkewMs);
      console.log(`\ncut-over skew between bj and sh, ${skew.length} runs of ezctl osc --instant never on ${SKEW_ROWS.toLocaleString('en')} rows (ms):`);
      console.log(row(['measure', 'min', 'p50', 'max', 'every run'], [44, 7, 7, 7, 40]));
      console.log(row(["ezctl's cutOver.skewMs (RENAMEs returned)", Math.min(...e), pct(e, 0.5), Math.max(...e), e.join(' ')], [44, 7, 7, 7, 40]));
      console.log(row(['probe: first SELECT x that succeeds, per zone', Math.min(...p), pct(p, 0.5), Math.max(...p), p.map((x) => x.toFixed(1)).join(' ')], [44, 7, 7, 7, 40]));
      console.log(`  run time p50 ${s1(pct(skew.map((s) => s.ms), 0.5))} s`);
    }
    if (diags.length) {
      console.log(`\ndiagnostics: the copy statements alone on bj (run by this script in a loop, as each tool runs them), ${ROWS.toLocaleString('en')} rows, each tool's own average chunk size, best of ${DIAG_REPS}, idle, DRC ${USE_DRC ? 'running' : 'off'}:`);
      const w3 = [50, 9, 8, 10, 16, 12, 12];
      console.log(row(['what', 'chunk', 'copy s', 'rows/s', 'reader behind s', 'reader CPU', 'rows decoded'], w3));
      for (const d of diags) console.log(row([d.label, k(d.chunkRows), s1(d.ms), k(d.rowsPerS), s1(d.readerBehindMs), f1(d.readerCpuS), k(d.rowsDecoded)], w3));
    }

    // ---- verdicts
    console.log('\nverdicts:');
    const verdict: Record<string, unknown> = {};
    for (const mode of MODES) {
      for (const change of CHANGE_IDS) {
        const pt = best('pt-osc', change, mode);
        const limit = best('alter-copy', change, mode);
        if (pt?.rowsPerS && limit?.rowsPerS) {
          // the server's own copy (no row to the binlog, writes blocked) is the limit the copy
          // rate is judged against; pt-osc's rate stays beside it as the peer's
          const x = limit.rowsPerS / pt.rowsPerS;
          console.log(`the limit, ${mode}, ${CHANGES[change].label}: ALTER ALGORITHM=COPY ${k(limit.rowsPerS)} rows/s = ${x.toFixed(2)}x pt-osc`);
          verdict[`limit:${mode}:${change}`] = x;
        }
        for (const c of ['ezctl-bj', 'ezctl-bj-t2', 'ezctl-2z'] as const) {
          const e = best(c, change, mode);
          if (!pt?.rowsPerS || !e?.rowsPerS) continue;
          const x = e.rowsPerS / pt.rowsPerS;
          const xl = limit?.rowsPerS ? e.rowsPerS / limit.rowsPerS : undefined;
          console.log(`copy rate, ${mode}, ${CHANGES[change].label}, ${CONTENDERS[c].label}: ${k(e.rowsPerS)} rows/s = ${xl === undefined ? '(no ALTER COPY run)' : `${xl.toFixed(2)}x ALTER COPY's ${k(limit!.rowsPerS)} (target >= 0.9x) ${xl >= 0.9 ? 'MET' : 'MISSED'}`}; ${x.toFixed(2)}x pt-osc's ${k(pt.rowsPerS)}`);
          verdict[`copy:${mode}:${change}:${c}`] = { vsAlterCopy: xl, vsPtOsc: x };
          // a miss, measured: ALTER COPY writes no row to the binlog, ezctl's copy must (the zone's
          // replicas build the ghost from it); the diagnostics time the same copy with it off
          const on = diags.find((d) => d.label === "ezctl's copy alone (index built after)");
          const off = diags.find((d) => d.label === "ezctl's copy, binlog off (what the binlog costs)");
          if (xl !== undefined && xl < 0.9 && on && off && off.ms < on.ms) {
            const share = 1 - off.ms / on.ms;
            const without = e.rowsPerS / (1 - share);
            console.log(`  why: the copy's rows in the binlog are ${Math.round(share * 100)}% of its statements' time (idle, ${s1(on.ms)} s with, ${s1(off.ms)} s without); this run's copy without that share: ${k(without)} rows/s = ${((without / e.rowsPerS) * xl).toFixed(2)}x ALTER COPY (which logs no rows; under load the binlog's readers, DRC and ezctl's own, pay for the rows again)`);
            verdict[`copy:${mode}:${change}:${c}`] = { vsAlterCopy: xl, vsPtOsc: x, binlogShare: share, vsAlterCopyWithoutBinlog: (without / e.rowsPerS) * xl };
          }
        }
      }
    }
    if (MODES.includes('load')) {
      for (const change of CHANGE_IDS) {
        // the median over the repetitions: one run's p95 moves by tens of ms on this machine,
        // and the fastest run (what the table shows) is not the one to judge latency by
        const increases = (c: ContenderId) => {
          const xs = runs.filter((r) => r.contender === c && r.change === change && r.mode === 'load' && r.ok && r.during && r.baseline).map((r) => r.during!.p95 - r.baseline!.p95).sort((a, b) => a - b);
          return { median: xs.length ? xs[Math.floor((xs.length - 1) / 2)]! : undefined, all: xs };
        };
        const pt = increases('pt-osc');
        for (const c of ['ezctl-bj', 'ezctl-bj-t2', 'ezctl-2z'] as const) {
          const e = increases(c);
          if (pt.median === undefined || e.median === undefined) continue;
          const pi = pt.median;
          const ei = e.median;
          const runsText = `${e.all.map(f1).join('/')} vs ${pt.all.map(f1).join('/')}`;
          console.log(`foreground p95 increase (median of ${e.all.length}), ${CHANGES[change].label}, ${CONTENDERS[c].label}: +${f1(ei)} ms vs pt-osc +${f1(pi)} ms [runs: ${runsText}] (target: no larger) ${ei <= pi ? 'MET' : 'MISSED'}`);
          verdict[`p95:${change}:${c}`] = { ezctl: ei, ptOsc: pi };
        }
      }
    }
    if (MODES.includes('load')) {
      // the application's row lock waits and deadlocks during each run at bj, the one zone under load
      for (const c of ['ezctl-bj', 'ezctl-bj-t2', 'ezctl-2z', 'pt-osc'] as const) {
        const rs = runs.filter((r) => r.contender === c && r.mode === 'load' && r.ok && r.rowLockWaits !== undefined);
        if (!rs.length) continue;
        const waits = rs.reduce((a, r) => a + (r.rowLockWaits ?? 0), 0);
        const dl = rs.reduce((a, r) => a + (r.deadlocks ?? 0), 0);
        const judged = c !== 'pt-osc';
        // InnoDB's counter also counts the application's own transactions waiting for one another
        // (ALTER COPY, which takes no row locks, moves it too): what the tool caused is what the
        // sampler saw blocked by one of its sessions (anything but the application itself)
        const sampled = rs.every((r) => r.lockWaits !== undefined);
        const caused = rs.reduce((a, r) => a + Object.entries(r.lockWaits ?? {}).filter(([pair]) => !/ waits for application$/.test(pair)).reduce((x, [, sec]) => x + sec, 0), 0);
        const base = runs.filter((r) => r.contender === 'alter-copy' && r.mode === 'load' && r.ok).reduce((a, r) => a + (r.rowLockWaits ?? 0), 0);
        const verdictText = sampled ? `caused by it (sampled): ${caused.toFixed(1)} s waited, ${dl} deadlocks (target 0 / 0) ${caused === 0 && dl === 0 ? 'MET' : 'MISSED'}` : `(target 0 / 0) ${waits === 0 && dl === 0 ? 'MET' : 'MISSED'}`;
        console.log(`lock waits / deadlocks under load, ${CONTENDERS[c].label}, ${rs.length} runs: InnoDB's counters ${waits} / ${dl} (ALTER COPY's runs: ${base} waits)${judged ? `; ${verdictText}` : ' (the peer)'}`);
        verdict[`locks:${c}`] = { rowLockWaits: waits, deadlocks: dl, ...(sampled ? { causedWaitSeconds: caused } : {}) };
      }
    }
    if (skew.length) {
      const me = Math.max(...skew.map((s) => s.ezctlSkewMs));
      const mp = Math.max(...skew.map((s) => s.probeSkewMs));
      console.log(`cut-over skew over ${skew.length} runs: max ${me} ms (ezctl's own), ${mp.toFixed(1)} ms (probe) (target <= 1000 ms) ${Math.max(me, mp) <= 1000 ? 'MET' : 'MISSED'}`);
      verdict.skew = { ezctlMaxMs: me, probeMaxMs: mp };
    }
    results.verdict = verdict;
    results.loadavgEnd = loadavg();
    console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}; whole benchmark ${s1(Date.now() - t00)} s`);
  } finally {
    if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(results, null, 2));
    await Promise.all([...Object.values(admin), ...watch.map((w) => w.db)].map((d) => d.close().catch(() => undefined)));
    await cleanup();
  }
  if (failed) process.exitCode = 1;
}

await main();
