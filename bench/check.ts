// `ezctl check full` against pt-table-checksum and against the raw-scan limit, on the same data
// in the same sandbox (issue "DCP"):
//  - data: one 1,000,000-row table (BIGINT key) and 8 tables x 250,000 rows (INT key), rows
//    with varchar/decimal/datetime columns, a nullable column and drc_ts, identical in both
//    zones (deterministic functions of a sequence, written on each zone master; each master's
//    native replica gets them by replication). Keys are even numbers (2, 4, 6, ...): tables in
//    an active-active setup have gaps (auto_increment_increment = zones), and the odd keys give
//    room for "extra" rows in the middle of the key range.
//  - ezctl check full at --concurrency 1, 2 (the default) and 4: wall clock of the real binary,
//    its RSS sampled every 100 ms (and its VmHWM, the kernel's peak figure);
//  - the raw-scan limits: one COUNT(*), BIT_XOR(<row hash>) per table and zone, both zones in
//    parallel, with ezctl's own 64-bit row hash (the limit for the default check) and with
//    CRC32(CONCAT_WS('#', every column)) (the cheapest 32-bit hash); tables one and two at a time;
//  - ezctl's fixed cost: `check full` of a one-row table, and the default check, with the shipped
//    bundled build (bin/ezctl) and with dist/ as tsc writes it (bench/_bundle.ts), to show what
//    start-up is and what bundling saves;
//  - pt-table-checksum 3.2.1 (Debian's percona-toolkit): bj-master with its native replica
//    bj-replica1 found through a DSN table (its chunks are recomputed on the replica by
//    statement replication: that is how it compares);
//  - then 100 differences (deleted rows, extra rows, changed columns) in sh, where ezctl must
//    report exactly 100; and the same 100 on bj-replica1 for pt-table-checksum (it compares a
//    master with its replicas, not zones), where it reports differing chunks.
// Every figure is the best of BENCH_REPS runs (default 2); every sample goes to BENCH_OUT.
// Sizes: BENCH_ROWS_BIG, BENCH_ROWS_SMALL, BENCH_TABLES (small tables). BENCH_CHUNK_TIMES
// (e.g. "1s,2s") adds ezctl runs at the default concurrency with other --chunk-time values.
// BENCH_BUFFER_POOL (e.g. 1G) resizes every server's InnoDB buffer pool (the sandbox's is 64M).
// Run with `npm run bench -- check`.
import { readFileSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { startSandbox, type TestSandbox } from '../test/helpers/sandbox.js';
import { EZCTL, ROOT } from '../test/helpers/cli.js';
import type { Db } from '../src/core/db/connect.js';
import { rowHashExpr, type CompareColumn } from '../src/core/compare/checksum.js';
import { cpuSeconds, reapedChildrenCpuSeconds, row, serversCpuSeconds, stats } from './_util.js';
import { availableParallelism } from 'node:os';
import { unbundledEzctl } from './_bundle.js';

const ROWS_BIG = Number(process.env.BENCH_ROWS_BIG ?? 1_000_000);
const ROWS_SMALL = Number(process.env.BENCH_ROWS_SMALL ?? 250_000);
const SMALL_TABLES = Number(process.env.BENCH_TABLES ?? 8);
const REPS = Math.max(1, Number(process.env.BENCH_REPS ?? 2));
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? '1,2,4').split(',').map(Number);
const CHUNK_TIMES = (process.env.BENCH_CHUNK_TIMES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
// other row hashes run at the default concurrency too: crc32 is pt-table-checksum's own strength
const HASHES = (process.env.BENCH_HASHES ?? 'crc32').split(',').map((s) => s.trim()).filter(Boolean);
const BUFFER_POOL = process.env.BENCH_BUFFER_POOL;
const STARTUP_RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 10);
const DIFFS = 100;
const DEFAULT_CONCURRENCY = 2;
const LOAD_BATCH = 100_000;
const OLD_TS = '2024-01-01 00:00:00.000';
const ZONE_MASTERS = ['bj-master', 'sh-master'] as const;

interface Table {
  name: string;
  rows: number;
  keyType: string;
}

const TABLES: Table[] = [
  { name: 'big', rows: ROWS_BIG, keyType: 'BIGINT UNSIGNED' },
  ...Array.from({ length: SMALL_TABLES }, (_, i) => ({ name: `small${i + 1}`, rows: ROWS_SMALL, keyType: 'INT UNSIGNED' })),
].filter((t) => t.rows > 0);
const TOTAL_ROWS = TABLES.reduce((s, t) => s + t.rows, 0);
const SHAPE = [
  ROWS_BIG > 0 ? `1x${ROWS_BIG.toLocaleString('en')}` : '',
  SMALL_TABLES > 0 && ROWS_SMALL > 0 ? `${SMALL_TABLES}x${ROWS_SMALL.toLocaleString('en')}` : '',
].filter(Boolean).join(' + ');

// ---------------------------------------------------------------------------------------------
// processes: every child is tracked so Ctrl-C can stop exactly those, by pid

const children = new Set<ChildProcess>();
let sandbox: TestSandbox | undefined;
let downing: Promise<void> | undefined;
let interrupted = false;

function down(): Promise<void> {
  if (!sandbox) return Promise.resolve();
  downing ??= sandbox.down().catch((e) => console.error(`sandbox down: ${(e as Error).message}`));
  return downing;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: stopping the benchmark's own processes and the sandbox`);
    for (const c of children) if (c.pid) c.kill('SIGTERM');
    void down().finally(() => process.exit(130));
  });
}

interface Measured {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** the largest RSS seen by sampling, or the kernel's high-water mark if larger */
  maxRssMb: number;
}

function procMemMb(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return undefined; // exited
  }
}

/** Run a command to its end: wall clock from spawn to exit, RSS polled every 100 ms. */
function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    if (interrupted) return reject(new Error('interrupted'));
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, CI: 'true', NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    let maxRss = 0;
    const sample = () => {
      const m = child.pid ? procMemMb(child.pid) : undefined;
      if (m) maxRss = Math.max(maxRss, m.rss || 0, m.hwm || 0);
    };
    const timer = setInterval(sample, 100);
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', (e) => {
      clearInterval(timer);
      children.delete(child);
      reject(e);
    });
    child.on('exit', () => sample());
    child.on('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearInterval(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, ms, maxRssMb: maxRss });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// data

const COLUMNS = ['id', 'account_id', 'name', 'email', 'amount', 'status', 'note', 'created_at', 'drc_ts'];

function createSql(t: Table): string {
  return `CREATE TABLE ezbench.\`${t.name}\` (
    id ${t.keyType} NOT NULL AUTO_INCREMENT,
    account_id INT UNSIGNED NOT NULL,
    name VARCHAR(64) NOT NULL,
    email VARCHAR(128) NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    status VARCHAR(16) NOT NULL,
    note VARCHAR(255) NULL,
    created_at DATETIME NOT NULL,
    drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    KEY idx_account (account_id)
  ) ENGINE=InnoDB`;
}

/** The row for sequence number `s` (an SQL expression naming s), key given separately. */
function valuesFor(s: string, id: string): string {
  return [
    id,
    `(${s} * 7919) % 100003`,
    `CONCAT('customer ', ${s})`,
    `CONCAT('c', ${s}, '@mail', ${s} % 97, '.example.com')`,
    `((${s} * 37) % 1000000) / 100`,
    `ELT(1 + ${s} % 4, 'new', 'paid', 'shipped', 'closed')`,
    `IF(${s} % 5 = 0, NULL, CONCAT('note ', LEFT(MD5(${s}), 12 + ${s} % 20)))`,
    `TIMESTAMP('2020-01-01') + INTERVAL ${s} SECOND`,
    `'${OLD_TS}'`,
  ].join(', ');
}

async function loadZone(db: Db): Promise<void> {
  // one row in a database of its own: a check of it is ezctl's fixed cost (start-up, connect, look-up)
  await db.exec('CREATE DATABASE ezstart');
  await db.exec(`CREATE TABLE ezstart.one (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT '${OLD_TS}')`);
  await db.exec('INSERT INTO ezstart.one (id, v) VALUES (1, 1)');
  await db.exec('CREATE DATABASE ezbench');
  for (const t of TABLES) {
    await db.exec(createSql(t));
    for (let a = 1; a <= t.rows; a += LOAD_BATCH) {
      const b = Math.min(t.rows, a + LOAD_BATCH - 1);
      // the sequence engine's table must be qualified with a database
      await db.exec(`INSERT INTO ezbench.\`${t.name}\` (${COLUMNS.join(', ')}) SELECT ${valuesFor('seq', '2 * seq')} FROM ezbench.seq_${a}_to_${b}`);
    }
  }
}

async function waitReplica(sb: TestSandbox, master: string, replica: string): Promise<void> {
  const m = await sb.db(master);
  const r = await sb.db(replica);
  try {
    const pos = String(await m.value('SELECT @@gtid_binlog_pos'));
    const res = await r.value('SELECT MASTER_GTID_WAIT(?, 1800)', [pos]);
    if (Number(res) !== 0) throw new Error(`${replica} did not catch up with ${master} (${pos})`);
  } finally {
    await m.close();
    await r.close();
  }
}

// ---------------------------------------------------------------------------------------------
// differences: 100, spread over every table, a third of each kind

interface Diff {
  table: Table;
  kind: 'delete' | 'extra' | 'change';
  id: number;
  variant: number;
}

function plannedDiffs(): Diff[] {
  const out: Diff[] = [];
  const perTable = TABLES.map((_, ti) => Math.floor(DIFFS / TABLES.length) + (ti < DIFFS % TABLES.length ? 1 : 0));
  for (let k = 0; k < DIFFS; k++) {
    const ti = k % TABLES.length;
    const j = Math.floor(k / TABLES.length); // j-th difference in this table
    const t = TABLES[ti]!;
    const kind = (['delete', 'extra', 'change'] as const)[(j + ti) % 3]!;
    // positions spread over the key range, never the same row twice in a table
    const s = 1 + Math.floor(((j + 0.5) * t.rows) / perTable[ti]!);
    out.push({ table: t, kind, id: kind === 'extra' ? 2 * s + 1 : 2 * s, variant: j % 3 });
  }
  return out;
}

async function inject(db: Db, diffs: Diff[], opts: { noBinlog?: boolean } = {}): Promise<void> {
  if (opts.noBinlog) await db.exec('SET SESSION sql_log_bin = 0');
  for (const d of diffs) {
    const t = `ezbench.\`${d.table.name}\``;
    let n: number;
    if (d.kind === 'delete') {
      n = (await db.exec(`DELETE FROM ${t} WHERE id = ?`, [d.id])).affectedRows;
    } else if (d.kind === 'extra') {
      n = (await db.exec(`INSERT INTO ${t} (${COLUMNS.join(', ')}) SELECT ${valuesFor('s.seq', 's.id')} FROM (SELECT ? AS id, ? AS seq) s`, [d.id, (d.id - 1) / 2])).affectedRows;
    } else {
      // one column changed, drc_ts kept at its old value: a settled difference, not one in flight
      const set = [
        'amount = amount + 0.01',
        "note = IF(note IS NULL, '', NULL)", // NULL <-> '' must count as a difference
        "status = CONCAT(status, '!')",
      ][d.variant]!;
      n = (await db.exec(`UPDATE ${t} SET ${set}, drc_ts = ? WHERE id = ?`, [OLD_TS, d.id])).affectedRows;
    }
    if (n !== 1) throw new Error(`injecting ${d.kind} of id ${d.id} in ${d.table.name} changed ${n} rows`);
  }
}

// ---------------------------------------------------------------------------------------------
// contenders

interface EzResult {
  ms: number;
  ownMs: number;
  rows: number;
  chunks: number;
  missing: number;
  changed: number;
  maxRssMb: number;
  /** CPU seconds the sandbox's servers spent during the run, and ezctl's own process */
  serverCpuS: number;
  ezctlCpuS: number;
}

async function ezctlCheck(sb: TestSandbox, extra: string[], expectDiffs: boolean, launcher = EZCTL): Promise<EzResult> {
  const args = [launcher, '--config', sb.config, '--json', 'check', 'full', '--cluster', 'demo', '--tables', 'ezbench.*', ...extra];
  const s0 = serversCpuSeconds(sb);
  const c0 = reapedChildrenCpuSeconds();
  const r = await measure(process.execPath, args);
  const serverCpuS = serversCpuSeconds(sb) - s0;
  const ezctlCpuS = reapedChildrenCpuSeconds() - c0;
  const want = expectDiffs ? 1 : 0;
  if (r.code !== want) throw new Error(`ezctl ${extra.join(' ')} exited ${r.code}${r.signal ? ` (${r.signal})` : ''}, expected ${want}\n${r.stdout.slice(0, 3000)}\n${r.stderr.slice(-3000)}`);
  const j = JSON.parse(r.stdout) as { rows: number; ms: number; tables: { chunks: number; missing: number; changed: number; status: string }[] };
  if (j.tables.length !== TABLES.length || j.tables.some((t) => t.status !== 'done')) throw new Error(`ezctl checked ${j.tables.length} tables: ${JSON.stringify(j.tables.map((t) => t.status))}`);
  return {
    ms: r.ms,
    ownMs: j.ms,
    rows: j.rows,
    chunks: j.tables.reduce((s, t) => s + t.chunks, 0),
    missing: j.tables.reduce((s, t) => s + t.missing, 0),
    changed: j.tables.reduce((s, t) => s + t.changed, 0),
    maxRssMb: r.maxRssMb,
    serverCpuS,
    ezctlCpuS,
  };
}

/** `check full` of the one-row table: what every check pays before and after its rows. */
async function checkOneRow(sb: TestSandbox, launcher: string): Promise<{ ms: number; cpuS: number }> {
  const c0 = reapedChildrenCpuSeconds();
  const r = await measure(process.execPath, [launcher, '--config', sb.config, '--json', 'check', 'full', '--cluster', 'demo', '--tables', 'ezstart.one']);
  if (r.code !== 0) throw new Error(`ezctl check of ezstart.one exited ${r.code}\n${r.stdout.slice(0, 2000)}\n${r.stderr.slice(-2000)}`);
  return { ms: r.ms, cpuS: reapedChildrenCpuSeconds() - c0 };
}

/** Every table's full scan on both zones in parallel, `lanes` tables at a time. */
async function scanAll(lanes: Db[][], tables: Table[], expr: (t: Table) => string): Promise<number> {
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(lanes.map(async (conns) => {
    for (;;) {
      const t = tables[next++];
      if (!t) return;
      const res = await Promise.all(conns.map((c) => c.one<{ cnt: string | number; crc: string }>(`SELECT COUNT(*) AS cnt, ${expr(t)} AS crc FROM ezbench.\`${t.name}\``)));
      if (Number(res[0]!.cnt) !== t.rows) throw new Error(`raw scan of ${t.name} counted ${res[0]!.cnt} rows, expected ${t.rows}`);
    }
  }));
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const rawExpr = () => `BIT_XOR(CRC32(CONCAT_WS('#', ${COLUMNS.join(', ')})))`;

interface PtResult {
  ms: number;
  code: number | null;
  rows: number;
  chunks: number;
  diffs: number;
  errors: number;
  skipped: number;
  tablesWithDiffs: number;
  maxRssMb: number;
}

// pt-table-checksum's exit status is a bit mask (perldoc pt-table-checksum, EXIT STATUS)
const PT_BITS: Record<number, string> = { 1: 'ERROR', 2: 'ALREADY_RUNNING', 4: 'CAUGHT_SIGNAL', 8: 'NO_SLAVES_FOUND', 16: 'TABLE_DIFF', 32: 'SKIP_CHUNK', 64: 'SKIP_TABLE', 128: 'REPLICATION_STOPPED' };

async function ptChecksum(sb: TestSandbox, cnf: string): Promise<PtResult> {
  const m = sb.node('bj-master');
  // the password stays in the defaults file (F=), never in argv; the replica's DSN is in percona.dsns
  const args = [
    `h=${m.host},P=${m.port},u=ezctl,F=${cnf}`,
    '--no-check-binlog-format',
    '--no-version-check',
    '--recursion-method=dsn=D=percona,t=dsns',
    '--databases', 'ezbench',
    '--replicate', 'percona.checksums',
    '--create-replicate-table',
  ];
  const r = await measure('pt-table-checksum', args);
  const code = r.code ?? -1;
  const bits = Object.entries(PT_BITS).filter(([b]) => code & Number(b)).map(([, n]) => n);
  if (code < 0 || code & ~16) throw new Error(`pt-table-checksum exited ${r.code} (${bits.join(', ')})\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  // TS ERRORS DIFFS ROWS DIFF_ROWS CHUNKS SKIPPED TIME TABLE (DIFF_ROWS only in some versions)
  const lines = r.stdout.split('\n');
  const head = lines.find((l) => /^\s*TS\s+ERRORS\s+DIFFS/.test(l))?.trim().split(/\s+/);
  if (!head) throw new Error(`pt-table-checksum printed no report:\n${r.stdout}\n${r.stderr}`);
  const col = (name: string) => head.indexOf(name);
  const out: PtResult = { ms: r.ms, code: r.code, rows: 0, chunks: 0, diffs: 0, errors: 0, skipped: 0, tablesWithDiffs: 0, maxRssMb: r.maxRssMb };
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    if (f.length !== head.length || !/^\d\d-\d\dT/.test(f[0]!)) continue;
    out.rows += Number(f[col('ROWS')]);
    out.chunks += Number(f[col('CHUNKS')]);
    out.diffs += Number(f[col('DIFFS')]);
    out.errors += Number(f[col('ERRORS')]);
    out.skipped += Number(f[col('SKIPPED')]);
    if (Number(f[col('DIFFS')]) > 0) out.tablesWithDiffs++;
  }
  if (out.errors || out.skipped) console.log(`  (pt-table-checksum: ${out.errors} errors, ${out.skipped} chunks skipped)\n${r.stderr.slice(-2000)}`);
  return out;
}

// ---------------------------------------------------------------------------------------------

/** "1G", "512M", "65536K" or plain bytes */
function bytes(v: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(v.trim());
  if (!m) throw new Error(`BENCH_BUFFER_POOL=${v} is not a size (e.g. 1G, 512M)`);
  return Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase());
}

const best = <T extends { ms: number }>(xs: T[]): T => xs.reduce((a, b) => (b.ms < a.ms ? b : a));
const secs = (ms: number) => (ms / 1000).toFixed(1);
const rate = (rows: number, ms: number) => Math.round(rows / (ms / 1000)).toLocaleString('en');

async function main(): Promise<void> {
  console.log(`check full vs pt-table-checksum vs raw scan: ${SHAPE} rows (${TOTAL_ROWS.toLocaleString('en')} in all), 2 zones; best of ${REPS} runs each`);
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (other work on this machine makes timings noisy)`);
  const t0 = Date.now();
  sandbox = await startSandbox({ zones: ['bj', 'sh'], replicas: 1 });
  const sb = sandbox;
  if (interrupted) return;
  const results: Record<string, unknown> = { shape: SHAPE, rows: TOTAL_ROWS, reps: REPS };
  let failed = false;
  const lanes: Db[][] = [];
  try {
    console.log(`sandbox up in ${secs(Date.now() - t0)} s: ${sb.nodes.map((n) => `${n.name}:${n.port}`).join(' ')}`);
    if (BUFFER_POOL) {
      for (const n of sb.nodes) {
        const db = await sb.db(n.name);
        await db.exec('SET GLOBAL innodb_buffer_pool_size = ?', [bytes(BUFFER_POOL)]);
        await db.close();
      }
    }
    {
      const db = await sb.db('bj-master');
      const v = await db.one<{ v: string; bp: string; fm: string }>('SELECT VERSION() AS v, @@innodb_buffer_pool_size AS bp, @@innodb_flush_method AS fm');
      console.log(`server ${v?.v}, innodb_buffer_pool_size ${Math.round(Number(v?.bp) / 2 ** 20)} MB, innodb_flush_method ${v?.fm}`);
      await db.close();
    }

    // ---- data, identical in both zones
    const l0 = Date.now();
    await Promise.all(ZONE_MASTERS.map(async (m) => {
      const db = await sb.db(m);
      try {
        await loadZone(db);
      } finally {
        await db.close();
      }
    }));
    const l1 = Date.now();
    await Promise.all([waitReplica(sb, 'bj-master', 'bj-replica1'), waitReplica(sb, 'sh-master', 'sh-replica1')]);
    console.log(`loaded ${TOTAL_ROWS.toLocaleString('en')} rows per zone in ${secs(l1 - l0)} s; replicas caught up ${secs(Date.now() - l1)} s later`);

    for (let i = 0; i < 2; i++) lanes.push(await Promise.all(ZONE_MASTERS.map((m) => sb.db(m))));
    // one untimed pass so every contender starts from the same cache state
    await scanAll(lanes, TABLES, rawExpr);

    // the same full scans with ezctl's own row hash (CRC32 and CRC32C of the normalized row): the
    // limit for the default 64-bit check, what the hash expression costs apart from chunking
    let ezHashExpr: string;
    {
      const db = lanes[0]![0]!;
      const cols = await db.query<{ name: string; dataType: string; nullable: string }>(
        "SELECT COLUMN_NAME AS name, DATA_TYPE AS dataType, IS_NULLABLE AS nullable FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'ezbench' AND TABLE_NAME = 'big' ORDER BY ORDINAL_POSITION",
      );
      const cc: CompareColumn[] = cols.map((c) => ({ name: c.name, dataType: c.dataType, nullable: c.nullable === 'YES' }));
      ezHashExpr = `BIT_XOR(${rowHashExpr(cc, 'crc64')})`;
    }

    // ---- the raw-scan limits and ezctl check full, zones identical: interleaved, one round of
    // every contender per repetition, so that a ratio compares runs minutes apart at most (other
    // work on the machine comes and goes)
    const raw: Record<string, number[]> = { '1 table at a time': [], '2 tables at a time': [] };
    const rawEzHash: number[] = [];
    const rawEzHashCpu: number[] = [];
    const ez: Record<string, EzResult[]> = {};
    const unbundled = unbundledEzctl();
    const variants: { label: string; args: string[]; launcher?: string }[] = [
      ...CONCURRENCIES.map((c) => ({ label: `--concurrency ${c}`, args: ['--concurrency', String(c)] })),
      { label: `--concurrency ${DEFAULT_CONCURRENCY}, unbundled dist/`, args: ['--concurrency', String(DEFAULT_CONCURRENCY)], launcher: unbundled.launcher },
      ...CHUNK_TIMES.map((ct) => ({ label: `--concurrency ${DEFAULT_CONCURRENCY} --chunk-time ${ct}`, args: ['--concurrency', String(DEFAULT_CONCURRENCY), '--chunk-time', ct] })),
      ...HASHES.map((h) => ({ label: `--concurrency ${DEFAULT_CONCURRENCY} --hash ${h}`, args: ['--concurrency', String(DEFAULT_CONCURRENCY), '--hash', h] })),
    ];
    for (let i = 0; i < REPS; i++) {
      raw['1 table at a time']!.push(await scanAll(lanes.slice(0, 1), TABLES, rawExpr));
      raw['2 tables at a time']!.push(await scanAll(lanes, TABLES, rawExpr));
      const s0 = serversCpuSeconds(sb);
      rawEzHash.push(await scanAll(lanes, TABLES, () => ezHashExpr));
      rawEzHashCpu.push(serversCpuSeconds(sb) - s0);
      for (const v of variants) {
        const r = await ezctlCheck(sb, v.args, false, v.launcher);
        if (r.rows !== TOTAL_ROWS) throw new Error(`ezctl ${v.label} checked ${r.rows} rows, expected ${TOTAL_ROWS}`);
        (ez[v.label] ??= []).push(r);
      }
    }
    results.raw = raw;
    results.rawWithEzctlHash = rawEzHash;
    const rawBest = Math.min(...Object.values(raw).flat());
    const ezHashScan = Math.min(...rawEzHash);
    results.ezctl = ez;

    // ---- ezctl's fixed cost: a check of one row, the shipped (bundled) build and dist/ interleaved
    const fixed = { dist: [] as number[], unbundled: [] as number[], distCpuS: [] as number[] };
    for (let i = 0; i < STARTUP_RUNS; i++) {
      const d = await checkOneRow(sb, EZCTL);
      fixed.dist.push(d.ms);
      fixed.distCpuS.push(d.cpuS);
      fixed.unbundled.push((await checkOneRow(sb, unbundled.launcher)).ms);
    }
    results.fixedCost = fixed;

    // ---- what a chunk's range costs the server against a whole-table scan: the same rows and hash
    // on one zone, the whole big table as one query without a WHERE, and as one key range (a
    // chunk's form): the range is re-checked per row (EXPLAIN: Using where)
    const rangeCost = { full: [] as number[], range: [] as number[] };
    if (TABLES[0]?.name === 'big') {
      const db = lanes[0]![0]!;
      const bj = sb.node('bj-master').pid;
      const cpuOf = async (sql: string) => {
        const c0 = cpuSeconds(bj) ?? 0;
        await db.one(sql, [0, 2 * ROWS_BIG]);
        return (cpuSeconds(bj) ?? 0) - c0;
      };
      for (let i = 0; i < 3; i++) {
        rangeCost.full.push(await cpuOf(`SELECT COUNT(*) AS cnt, ${ezHashExpr} AS crc FROM ezbench.big WHERE ? IS NOT NULL AND ? IS NOT NULL`));
        rangeCost.range.push(await cpuOf(`SELECT COUNT(*) AS cnt, ${ezHashExpr} AS crc FROM ezbench.big FORCE INDEX (PRIMARY) WHERE id > ? AND id <= ?`));
      }
    }
    results.rangeCost = rangeCost;

    // ---- pt-table-checksum, master + replica identical
    const cnf = join(sb.dir, 'client.cnf');
    {
      const db = await sb.db('bj-master');
      const rep = sb.node('bj-replica1');
      await db.exec('CREATE DATABASE percona');
      await db.exec('CREATE TABLE percona.dsns (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT, dsn VARCHAR(255) NOT NULL)');
      await db.exec('INSERT INTO percona.dsns (dsn) VALUES (?)', [`h=${rep.host},P=${rep.port},u=ezctl,F=${cnf}`]);
      await db.close();
      await waitReplica(sb, 'bj-master', 'bj-replica1');
    }
    const pt: PtResult[] = [];
    for (let i = 0; i < REPS; i++) {
      const r = await ptChecksum(sb, cnf);
      if (r.diffs) throw new Error(`pt-table-checksum found ${r.diffs} differing chunks on identical data`);
      pt.push(r);
    }
    results.ptTableChecksum = pt;

    // ---- 100 differences
    const diffs = plannedDiffs();
    const kinds = (['delete', 'extra', 'change'] as const).map((k) => `${diffs.filter((d) => d.kind === k).length} ${k}`).join(', ');
    {
      const sh = await sb.db('sh-master');
      await inject(sh, diffs);
      await sh.close();
      const rep = await sb.db('bj-replica1');
      await inject(rep, diffs, { noBinlog: true });
      await rep.close();
      await waitReplica(sb, 'sh-master', 'sh-replica1');
    }
    const ezDiff: Record<string, EzResult[]> = {};
    for (let i = 0; i < REPS; i++) {
      for (const c of CONCURRENCIES) {
        const r = await ezctlCheck(sb, ['--concurrency', String(c)], true);
        (ezDiff[`--concurrency ${c}`] ??= []).push(r);
      }
      for (const h of HASHES) {
        const r = await ezctlCheck(sb, ['--concurrency', String(DEFAULT_CONCURRENCY), '--hash', h], true);
        (ezDiff[`--concurrency ${DEFAULT_CONCURRENCY} --hash ${h}`] ??= []).push(r);
      }
    }
    results.ezctlWithDiffs = ezDiff;
    const ptDiff: PtResult[] = [];
    for (let i = 0; i < REPS; i++) ptDiff.push(await ptChecksum(sb, cnf));
    results.ptTableChecksumWithDiffs = ptDiff;

    // ---- report
    const w = [48, 24, 8, 11, 9, 8, 16];
    const lines: string[] = [];
    const all = (xs: number[]) => xs.map(secs).join(' ');
    lines.push(row(['contender', 'tables x rows', 'seconds', 'rows/s', 'ezctl is', 'max RSS', 'every run (s)'], w));
    const ref = best(ez[`--concurrency ${DEFAULT_CONCURRENCY}`] ?? Object.values(ez)[0]!);
    const ratio = (ms: number) => `${(ms / ref.ms).toFixed(2)}x`;
    const mb = (x: number | undefined) => (x === undefined ? '-' : `${Math.round(x)} MB`);
    for (const [label, rs] of Object.entries(ez)) {
      const b = best(rs);
      lines.push(row([`ezctl check full ${label}`, SHAPE, secs(b.ms), rate(TOTAL_ROWS, b.ms), ratio(b.ms), mb(Math.max(...rs.map((r) => r.maxRssMb))), all(rs.map((r) => r.ms))], w));
    }
    const ptb = best(pt);
    lines.push(row(['pt-table-checksum (master + replica)', SHAPE, secs(ptb.ms), rate(TOTAL_ROWS, ptb.ms), ratio(ptb.ms), mb(Math.max(...pt.map((r) => r.maxRssMb))), all(pt.map((r) => r.ms))], w));
    for (const [label, xs] of Object.entries(raw)) {
      const b = Math.min(...xs);
      lines.push(row([`raw scan, ${label}`, SHAPE, secs(b), rate(TOTAL_ROWS, b), ratio(b), '-', all(xs)], w));
    }
    {
      const xs = rawEzHash;
      lines.push(row(['raw scan, ezctl\'s 64-bit row hash, 2 at a time', SHAPE, secs(ezHashScan), rate(TOTAL_ROWS, ezHashScan), ratio(ezHashScan), '-', all(xs)], w));
    }
    console.log(`\nzones identical (best of ${REPS}; "ezctl is" = contender's time / ezctl --concurrency ${DEFAULT_CONCURRENCY}'s time, >1 means ezctl is faster):`);
    console.log(lines.join('\n'));
    const chunkInfo = Object.entries(ez).map(([l, rs]) => `${l}: ${best(rs).chunks} chunks, ezctl's own time ${secs(best(rs).ownMs)} s`).join('; ');
    console.log(`  ${chunkInfo}; pt-table-checksum: ${ptb.chunks} chunks`);

    console.log(`\n${DIFFS} differences injected (${kinds}) in sh, and the same on bj-replica1 for pt-table-checksum:`);
    const w2 = [48, 18, 9, 8, 11, 8, 16];
    const l2: string[] = [row(['contender', 'found', 'expected', 'seconds', 'rows/s', 'max RSS', 'every run (s)'], w2)];
    for (const [label, rs] of Object.entries(ezDiff)) {
      const b = best(rs);
      const found = rs.map((r) => r.missing + r.changed);
      const ok = found.every((f) => f === DIFFS);
      if (!ok) failed = true;
      l2.push(row([`ezctl check full ${label}`, `${found.join('/')} rows${ok ? '' : ' WRONG'}`, String(DIFFS), secs(b.ms), rate(TOTAL_ROWS, b.ms), mb(Math.max(...rs.map((r) => r.maxRssMb))), all(rs.map((r) => r.ms))], w2));
    }
    const ptdb = best(ptDiff);
    l2.push(row(['pt-table-checksum (master + replica)', `${ptdb.diffs} chunks`, `${TABLES.length} tables`, secs(ptdb.ms), rate(TOTAL_ROWS, ptdb.ms), mb(Math.max(...ptDiff.map((r) => r.maxRssMb))), all(ptDiff.map((r) => r.ms))], w2));
    console.log(l2.join('\n'));
    console.log('  ezctl narrows each differing chunk to rows (sums per key stretch) and re-checks them before reporting (all tables together, a settle delay of 1 s after the last one found); pt-table-checksum only flags chunks');
    console.log(`  ezctl ${DIFFS} found as: ${Object.entries(ezDiff).map(([l, rs]) => `${l} ${best(rs).missing} missing + ${best(rs).changed} changed`).join('; ')}; pt-table-checksum flagged chunks in ${ptdb.tablesWithDiffs} of ${TABLES.length} tables`);
    if (ptDiff.some((r) => r.tablesWithDiffs !== TABLES.length)) console.log('  pt-table-checksum missed differences in some tables');

    // ---- verdicts
    const ezMax = Math.max(...[...Object.values(ez), ...Object.values(ezDiff)].flat().map((r) => r.maxRssMb));
    const vsPt = ptb.ms / ref.ms;
    const vsRaw = rawBest / ref.ms;
    const vsSameHash = ezHashScan / ref.ms;
    const bestEz = Object.entries(ez).map(([l, rs]) => [l, best(rs)] as const).reduce((a, b) => (b[1].ms < a[1].ms ? b : a));
    const fd = stats(fixed.dist).p50;
    const fu = stats(fixed.unbundled).p50;
    console.log(`\nfixed cost, a check of one row (p50 of ${STARTUP_RUNS}): ${secs(fd)} s shipped (bundled), ${secs(fu)} s unbundled dist/ (bundling saves ${Math.round(fu - fd)} ms); ` +
      `${(100 * fd / ref.ms).toFixed(0)}% of the default check's ${secs(ref.ms)} s; ezctl's own time (the check after start-up) ${secs(ref.ownMs)} s`);
    console.log(`\nverdict (ezctl --concurrency ${DEFAULT_CONCURRENCY}, the default 64-bit hash):`);
    console.log(`ezctl vs raw scan of the same row hash: ${vsSameHash.toFixed(2)}x (target >= 0.9x) ${vsSameHash >= 0.9 ? 'MET' : 'MISSED'}`);
    const paired = (ez[`--concurrency ${DEFAULT_CONCURRENCY}`] ?? []).map((r, i) => rawEzHash[i]! / r.ms);
    console.log(`  round by round (each run against the same-hash raw scan of its round): ${paired.map((x) => `${x.toFixed(2)}x`).join(' ')}`);
    console.log(`  without its fixed cost: ${(ezHashScan / (ref.ms - fd)).toFixed(2)}x`);
    {
      // Where the rest goes, as CPU: the raw scan keeps the cores busy, so ezctl's time is bounded
      // below by all the CPU it needs (the servers' work for its queries, and its own process)
      // spread over every core. Medians over the rounds, each run measured on its own.
      const cores = availableParallelism();
      const runs = ez[`--concurrency ${DEFAULT_CONCURRENCY}`] ?? [];
      const med = (xs: number[]) => stats(xs).p50;
      const rawCpu = med(rawEzHashCpu);
      const rawWall = med(rawEzHash) / 1000;
      const ezServer = med(runs.map((r) => r.serverCpuS));
      const ezOwn = med(runs.map((r) => r.ezctlCpuS));
      const startCpu = med(fixed.distCpuS);
      const floor = (ezServer + ezOwn) / cores;
      console.log(`  CPU (medians): the same-hash raw scan ${rawWall.toFixed(2)} s, its servers ${rawCpu.toFixed(2)} CPU-s (${(rawCpu / rawWall).toFixed(2)} of ${cores} cores busy); ` +
        `ezctl ${(med(runs.map((r) => r.ms)) / 1000).toFixed(2)} s, the servers ${ezServer.toFixed(2)} CPU-s (${(100 * (ezServer / rawCpu - 1)).toFixed(0)}% more than the raw scan: chunk queries, the run's own rows) ` +
        `+ ezctl's process ${ezOwn.toFixed(2)} CPU-s (a one-row check's start-up and set-up alone ${startCpu.toFixed(2)})`);
      if (rangeCost.full.length) {
        const f = med(rangeCost.full);
        const r = med(rangeCost.range);
        console.log(`  a key range against the whole table, the same ${ROWS_BIG.toLocaleString('en')} rows and hash on one server: ${r.toFixed(2)} against ${f.toFixed(2)} CPU-s, ` +
          `${(100 * (r / f - 1)).toFixed(0)}% more (every chunk is a range, re-checked per row: EXPLAIN says Using where)`);
      }
      console.log(`  so on ${cores} cores ezctl cannot finish under ${floor.toFixed(2)} s: at most ${(rawWall / floor).toFixed(2)}x the raw scan with the CPU it needs now` +
        `${rawWall / floor < 0.9 ? '; the 0.9x target needs less CPU, not less waiting' : ''}`);
      results.cpu = { cores, rawScanServersCpuS: rawEzHashCpu, ezctlServersCpuS: runs.map((r) => r.serverCpuS), ezctlOwnCpuS: runs.map((r) => r.ezctlCpuS), oneRowCheckCpuS: fixed.distCpuS, floorS: floor };
    }
    console.log(`ezctl vs pt-table-checksum: ${vsPt.toFixed(2)}x faster (target >= 2x) ${vsPt >= 2 ? 'MET' : 'MISSED'}`);
    console.log(`ezctl vs raw scan with CRC32 (32-bit, the cheapest hash): ${vsRaw.toFixed(2)}x`);
    console.log(`ezctl max RSS: ${Math.round(ezMax)} MB (target < 200 MB) ${ezMax < 200 ? 'MET' : 'MISSED'}`);
    const crc = ez[`--concurrency ${DEFAULT_CONCURRENCY} --hash crc32`];
    let vsPtCrc: number | undefined;
    if (crc) {
      vsPtCrc = ptb.ms / best(crc).ms;
      console.log(`ezctl --hash crc32 (pt-table-checksum's own 32-bit strength) vs pt-table-checksum: ${vsPtCrc.toFixed(2)}x (target >= 3x) ${vsPtCrc >= 3 ? 'MET' : 'MISSED'}; vs the CRC32 raw scan ${(rawBest / best(crc).ms).toFixed(2)}x`);
    }
    for (const h of HASHES.filter((x) => x !== 'crc32')) {
      const rs = ez[`--concurrency ${DEFAULT_CONCURRENCY} --hash ${h}`];
      if (rs) console.log(`ezctl --hash ${h}: ${(ptb.ms / best(rs).ms).toFixed(2)}x pt-table-checksum`);
    }
    if (bestEz[0] !== `--concurrency ${DEFAULT_CONCURRENCY}`) {
      console.log(`best ezctl (${bestEz[0]}): ${(ptb.ms / bestEz[1].ms).toFixed(2)}x pt-table-checksum, ${(ezHashScan / bestEz[1].ms).toFixed(2)}x the same-hash raw scan`);
    }
    console.log(`ezctl finds ${DIFFS} differences: ${failed ? 'NO (see above)' : 'yes, exactly'}`);
    results.verdict = { vsPt, vsPtCrc, vsSameHash, vsRaw, fixedCostMs: { shipped: fd, unbundled: fu }, maxRssMb: ezMax, exactDiffs: !failed };
    results.loadavgEnd = loadavg();
    console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(results, null, 2));
  } finally {
    await Promise.all(lanes.flat().map((c) => c.close()));
    await down();
  }
  if (failed) process.exitCode = 1;
}

await main();
