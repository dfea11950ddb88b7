// D-Bus (`ezctl dbus`) on one machine: two sandbox instances, bj-master the source, sh-master the target.
//
//  1. Copy rows/s: one table of BENCH_ROWS rows (default 300,000; a secondary index) moved by
//     `ezctl dbus start --execute` (from the start until the job follows: plan, copy, catch-up;
//     its default --copy-threads, and the same with --copy-threads 1 into another schema),
//     against mydumper | myloader between the same two instances (Debian's mydumper 0.10, 2 threads
//     each, --rows 50000; myloader as it comes, which loads with the binlog off, and with
//     --enable-binlog, as a live target's replicas need), and against `INSERT ... SELECT` into a copy on the source itself (the
//     server's own limit: no network, no client). Every contender's CPU (ezctl's split source /
//     target / its process), and the floor for any client on this machine: the target's own
//     two-session LOAD DATA INFILE of local files + the cheapest read measured (mydumper's), on
//     the machine's cores, then the index built after the last row.
//  2. Catch-up: a writer at BENCH_TPS (default 200) transactions/s on the source (inserts and
//     updates), the move paused for BENCH_PAUSE_S (default 60) s, then resumed: the time until
//     the target applied the source's position at the resume, the backlog over that time against
//     the write rate (target: >= 5x).
//  3. Cut-over window: BENCH_CUTOVERS (default 5) `dbus cutover --execute` (and `dbus rollback`
//     back, then `dbus start --resume`) under a client writing through the route record: the
//     job's window (fence to the target unfenced) and the longest gap between two acknowledged
//     writes of the client around it, against the apply lag at the start (target: window <= lag + 1 s).
//
// Run: `npx tsc -p tsconfig.json && flock /work/bench.lock node scripts/run-bench.mjs dbus`.
// BENCH_ROWS, BENCH_TPS, BENCH_PAUSE_S (0: no catch-up part), BENCH_CUTOVERS, BENCH_JOB_LOG=1 (print the
// moves' own logs), BENCH_SKIP_PEERS=1 (no
// mydumper|myloader, no INSERT ... SELECT, no one-thread copy), BENCH_COPY_THREADS (the move's
// --copy-threads; default ezctl's), BENCH_MOVE_ARGS (more options of the measured move, e.g.
// --no-defer-indexes), BENCH_OUT (a JSON file).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../test/helpers/sandbox.js';
import { EZCTL } from '../test/helpers/cli.js';
import type { Db } from '../src/core/db/connect.js';
import { makeCtx } from '../src/core/context.js';
import { waitApplied, dbusStatus, dbusControl } from '../src/core/dbus/status.js';
import type { DbusStatus } from '../src/core/dbus/spec.js';
import type { Ctx } from '../src/core/context.js';
import { readRouteAt, newestRoute } from '../src/core/dbus/route.js';
import { isFenceError } from '../src/core/dbus/fence.js';
import { cpuSeconds, reapedChildrenCpuSeconds, serversCpuSeconds, stats, ezctlJson } from './_util.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 300_000);
const TPS = Number(process.env.BENCH_TPS ?? 200);
const PAUSE_S = Number(process.env.BENCH_PAUSE_S ?? 60);
const CUTOVERS = Number(process.env.BENCH_CUTOVERS ?? 5);
const MOVE = 'bench';
const say = (s: string) => console.log(s);
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let sb: TestSandbox;
const jobs: ChildProcess[] = [];

const run = (args: string[], timeoutMs = 600_000) => ezctlJson(sb.config, args, timeoutMs);

/** the move's status, asked in this process (a CLI per poll costs about a second on a loaded host) */
async function following(name = MOVE): Promise<DbusStatus | undefined> {
  const st = await dbusStatus(ctx(), name).catch(() => undefined);
  return st?.state === 'following' ? st : undefined;
}
let ctxMemo: Ctx | undefined;
const ctx = () => (ctxMemo ??= makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 }));

/**
 * Before each timed contender: both servers' dirty pages written out (the last contender's load
 * and DROP leave up to the whole 64 MB pool to flush, which the next one would pay for).
 */
async function settle(...dbs: Db[]): Promise<void> {
  for (const db of dbs) {
    const pct = Number(await db.value('SELECT @@GLOBAL.innodb_max_dirty_pages_pct'));
    await db.exec('SET GLOBAL innodb_max_dirty_pages_pct = 0');
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && Number((await db.one<{ Value: string }>("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'"))?.Value ?? 0) > 10) await sleep(100);
    await db.exec('SET GLOBAL innodb_max_dirty_pages_pct = ?', [pct]);
  }
}

/** CPU seconds of the last started move's process until it followed */
let lastMoveCpuS = NaN;


async function startMove(resume: boolean, name = MOVE, extra: string[] = []): Promise<number> {
  const t0 = performance.now();
  const p = spawn(process.execPath, [EZCTL, '--config', sb.config, 'dbus', 'start', name, '--execute', ...(resume ? ['--resume'] : []), ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  jobs.push(p);
  let err = '';
  p.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
  for (;;) {
    if (p.exitCode !== null) throw new Error(`dbus start exited ${p.exitCode}: ${err}`);
    if (await following(name)) {
      lastMoveCpuS = cpuSeconds(p.pid) ?? NaN;
      // BENCH_JOB_LOG=1: the job's own log (its steps' timestamps: plan, copy, index build)
      if (process.env.BENCH_JOB_LOG === '1') say(err.trimEnd());
      return performance.now() - t0;
    }
    await sleep(50);
  }
}

/** Writes to bench.t on whichever side the route record names home (inserts and updates), at `tps`. */
class Writer {
  acked = 0;
  fenced = 0;
  lastAck = 0;
  gaps: Array<{ at: number; ms: number }> = [];
  private stop = false;
  private done?: Promise<void>;
  private next = ROWS + 1;
  constructor(private readonly c: { old: Db; new: Db }, private readonly tps: number) {}
  start(): void {
    this.done = (async () => {
      const every = 1000 / this.tps;
      let due = performance.now();
      let home: 'old' | 'new' = 'old';
      let blocked = false;
      let lastRead = 0;
      while (!this.stop) {
        if (performance.now() - lastRead > 20) {
          const r = newestRoute(await Promise.all([readRouteAt(this.c.old, MOVE).catch(() => undefined), readRouteAt(this.c.new, MOVE).catch(() => undefined)]));
          home = r?.home === 'target' ? 'new' : 'old';
          blocked = r?.state === 'blocked';
          lastRead = performance.now();
        }
        if (blocked) {
          await sleep(5);
          continue;
        }
        try {
          if (this.next % 2) await this.c[home].exec('INSERT INTO bench.t (id, a, b, c) VALUES (?, ?, ?, NOW())', [this.next, this.next % 1000, `w${this.next}`]);
          else await this.c[home].exec('UPDATE bench.t SET a = a + 1 WHERE id = ?', [1 + (this.next % ROWS)]);
          this.next++;
          this.acked++;
          const now = performance.now();
          if (this.lastAck) this.gaps.push({ at: Date.now(), ms: now - this.lastAck });
          this.lastAck = now;
        } catch (e) {
          if (!isFenceError(e)) throw e;
          this.fenced++;
          lastRead = 0;
          continue;
        }
        due += every;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        else due = performance.now();
      }
    })();
  }
  maxGapBetween(from: number, to: number): number {
    return Math.max(0, ...this.gaps.filter((g) => g.at >= from && g.at <= to + 2000).map((g) => g.ms));
  }
  async finish(): Promise<void> {
    this.stop = true;
    await this.done;
  }
}

async function main(): Promise<void> {
  say(`load ${load()}; ${ROWS} rows, ${TPS} tx/s, pause ${PAUSE_S} s, ${CUTOVERS} cut-overs`);
  sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 0 });
  const out: Record<string, unknown> = { rows: ROWS, tps: TPS, pauseS: PAUSE_S };
  const tmp = mkdtempSync(join(tmpdir(), 'ezctl-bench-dbus-'));
  try {
    const bj = sb.node('bj-master');
    const sh = sb.node('sh-master');
    const src = await sb.db('bj-master');
    const dst = await sb.db('sh-master');
    await src.exec('CREATE DATABASE bench');
    await src.exec('CREATE TABLE bench.t (id BIGINT NOT NULL PRIMARY KEY, a INT NOT NULL, b VARCHAR(64) NOT NULL, c DATETIME NOT NULL, KEY (a))');
    for (let lo = 1; lo <= ROWS; lo += 100_000) {
      const hi = Math.min(ROWS, lo + 99_999);
      await src.exec(`INSERT INTO bench.t SELECT seq, seq % 1000, CONCAT('row', seq, '-', REPEAT('x', 20)), NOW() FROM bench.seq_${lo}_to_${hi}`);
    }
    say(`loaded ${ROWS} rows; load ${load()}`);

    // 1. copy: INSERT ... SELECT on the source, mydumper | myloader, ezctl dbus start
    const peers = process.env.BENCH_SKIP_PEERS !== '1';
    let t0 = performance.now();
    let insertSelectMs = NaN;
    let dumpMs = NaN;
    let loadMs = NaN;
    let loaded = 0;
    let loadBinlogMs = NaN;
    let loadInfileMs = NaN;
    let loadInfileDeferredMs = NaN;
    let loadInfileTwoMs = NaN;
    let loadInfileTwoLoadMs = NaN;
    let targetBestCpu = { load: NaN, index: NaN };
    let dumpCpu = { servers: NaN, client: NaN };
    let loadBinlogCpu = { servers: NaN, client: NaN };
    if (peers) {
    await src.exec('CREATE TABLE bench.t_copy LIKE bench.t');
    await settle(src, dst);
    t0 = performance.now();
    await src.exec('INSERT INTO bench.t_copy SELECT * FROM bench.t');
    insertSelectMs = performance.now() - t0;
    await src.exec('DROP TABLE bench.t_copy');
    const cnf = join(sb.dir, 'client.cnf');
    const dump = join(tmp, 'dump');
    await settle(src, dst);
    let s0 = serversCpuSeconds(sb);
    let c0 = reapedChildrenCpuSeconds();
    t0 = performance.now();
    let r = spawnSync('mydumper', [`--defaults-file=${cnf}`, '-h', '127.0.0.1', '-P', String(bj.port), '-B', 'bench', '-o', dump, '-t', '2', '-r', '50000'], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`mydumper: ${r.stderr}`);
    dumpMs = performance.now() - t0;
    dumpCpu = { servers: serversCpuSeconds(sb) - s0, client: reapedChildrenCpuSeconds() - c0 };
    await settle(src, dst);
    t0 = performance.now();
    r = spawnSync('myloader', [`--defaults-file=${cnf}`, '-h', '127.0.0.1', '-P', String(sh.port), '-d', dump, '-B', 'bench_my', '-t', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`myloader: ${r.stderr}`);
    loadMs = performance.now() - t0;
    loaded = Number(await dst.value('SELECT COUNT(*) FROM bench_my.t'));
    await dst.exec('DROP DATABASE bench_my');
    // myloader loads with sql_log_bin=0 unless told otherwise: the target's replicas (and DRC) never
    // see those rows. A move's target is a live master, so the like-for-like peer logs them (-e).
    await settle(src, dst);
    s0 = serversCpuSeconds(sb);
    c0 = reapedChildrenCpuSeconds();
    t0 = performance.now();
    r = spawnSync('myloader', [`--defaults-file=${cnf}`, '-h', '127.0.0.1', '-P', String(sh.port), '-d', dump, '-B', 'bench_my', '-t', '2', '--enable-binlog'], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`myloader --enable-binlog: ${r.stderr}`);
    loadBinlogMs = performance.now() - t0;
    loadBinlogCpu = { servers: serversCpuSeconds(sb) - s0, client: reapedChildrenCpuSeconds() - c0 };
    await dst.exec('DROP DATABASE bench_my');
    // the target server's own limit for these rows: LOAD DATA INFILE of a file it reads itself (no
    // client, no network, no parsing of INSERTs), into the same keyed table, binlog on
    const file = join(tmp, 't.tsv');
    await src.exec(`SELECT * FROM bench.t INTO OUTFILE ${JSON.stringify(file).replace(/"/g, "'")}`);
    await dst.exec('CREATE DATABASE bench_ld');
    await dst.exec(String((await src.one<Record<string, string>>('SHOW CREATE TABLE bench.t'))!['Create Table']).replace('CREATE TABLE `t`', 'CREATE TABLE `bench_ld`.`t`'));
    await settle(src, dst);
    t0 = performance.now();
    await dst.exec(`LOAD DATA INFILE ${JSON.stringify(file).replace(/"/g, "'")} INTO TABLE bench_ld.t`);
    loadInfileMs = performance.now() - t0;
    // and with the secondary index built after the load (one online ALTER): what deferring it could reach
    await dst.exec('DROP TABLE bench_ld.t');
    await dst.exec(String((await src.one<Record<string, string>>('SHOW CREATE TABLE bench.t'))!['Create Table']).replace('CREATE TABLE `t`', 'CREATE TABLE `bench_ld`.`t`'));
    await dst.exec('ALTER TABLE bench_ld.t DROP INDEX a');
    await settle(src, dst);
    t0 = performance.now();
    await dst.exec(`LOAD DATA INFILE ${JSON.stringify(file).replace(/"/g, "'")} INTO TABLE bench_ld.t`);
    await dst.exec('ALTER TABLE bench_ld.t ADD INDEX a (a), ALGORITHM=INPLACE, LOCK=NONE');
    loadInfileDeferredMs = performance.now() - t0;
    // two sessions at once, each loading half the rows, the index after: the most any client with
    // two threads could get from this target (it is what a parallel copy's writes compete for)
    await dst.exec('DROP TABLE bench_ld.t');
    await dst.exec(String((await src.one<Record<string, string>>('SHOW CREATE TABLE bench.t'))!['Create Table']).replace('CREATE TABLE `t`', 'CREATE TABLE `bench_ld`.`t`'));
    await dst.exec('ALTER TABLE bench_ld.t DROP INDEX a');
    const halves = [join(tmp, 't1.tsv'), join(tmp, 't2.tsv')];
    const sqlPath = (f: string) => JSON.stringify(f).replace(/"/g, "'");
    await src.exec(`SELECT * FROM bench.t WHERE id <= ? INTO OUTFILE ${sqlPath(halves[0]!)}`, [Math.floor(ROWS / 2)]);
    await src.exec(`SELECT * FROM bench.t WHERE id > ? INTO OUTFILE ${sqlPath(halves[1]!)}`, [Math.floor(ROWS / 2)]);
    const second = await sb.db('sh-master');
    await settle(src, dst);
    // the target server's own CPU in each phase: the floor of what loading these rows costs it
    const dstCpu0 = cpuSeconds(sh.pid!) ?? NaN;
    t0 = performance.now();
    await Promise.all([dst.exec(`LOAD DATA INFILE ${sqlPath(halves[0]!)} INTO TABLE bench_ld.t`), second.exec(`LOAD DATA INFILE ${sqlPath(halves[1]!)} INTO TABLE bench_ld.t`)]);
    loadInfileTwoLoadMs = performance.now() - t0;
    const dstCpu1 = cpuSeconds(sh.pid!) ?? NaN;
    await dst.exec('ALTER TABLE bench_ld.t ADD INDEX a (a), ALGORITHM=INPLACE, LOCK=NONE');
    loadInfileTwoMs = performance.now() - t0;
    targetBestCpu = { load: dstCpu1 - dstCpu0, index: (cpuSeconds(sh.pid!) ?? NaN) - dstCpu1 };
    await second.close();
    await dst.exec('DROP DATABASE bench_ld');
    for (const f of [file, ...halves]) rmSync(f);
    }
    appendFileSync(sb.config, `dbus:\n  moves:\n    ${MOVE}:\n      sources: [{ label: old, dsn: "h=127.0.0.1,P=${bj.port},u=ezctl" }]\n      target: { label: new, dsn: "h=127.0.0.1,P=${sh.port},u=ezctl" }\n      tables:\n        - { from: "bench.t" }\n` +
      `    ${MOVE}1:\n      sources: [{ label: old, dsn: "h=127.0.0.1,P=${bj.port},u=ezctl" }]\n      target: { label: new, dsn: "h=127.0.0.1,P=${sh.port},u=ezctl" }\n      tables:\n        - { from: "bench.t", to: "bench1.t" }\n`);
    // the same copy on one thread (--copy-threads 1), for the ratio of one run; then ended and dropped
    let oneThreadMs = NaN;
    let oneThreadRows = 0;
    if (peers) {
      await settle(src, dst);
      oneThreadMs = await startMove(false, `${MOVE}1`, ['--copy-threads', '1']);
      oneThreadRows = Number(await dst.value('SELECT COUNT(*) FROM bench1.t'));
      const ab = await run(['dbus', 'abort', `${MOVE}1`, '--drop-target']);
      if (ab.code !== 0) throw new Error(`dbus abort: ${ab.stderr.slice(-2000)}`);
      await dst.exec('DROP DATABASE IF EXISTS bench1');
    }
    await settle(src, dst);
    const ezS0 = serversCpuSeconds(sb);
    const ezDst0 = cpuSeconds(sh.pid!) ?? NaN;
    const moveArgs = [...(process.env.BENCH_COPY_THREADS ? ['--copy-threads', process.env.BENCH_COPY_THREADS] : []), ...(process.env.BENCH_MOVE_ARGS ?? '').split(' ').filter(Boolean)];
    const ezctlMs = await startMove(false, MOVE, moveArgs);
    const ezServers = serversCpuSeconds(sb) - ezS0;
    const ezTarget = (cpuSeconds(sh.pid!) ?? NaN) - ezDst0;
    const ezCpu = { servers: ezServers, source: ezServers - ezTarget, target: ezTarget, client: lastMoveCpuS };
    const copied = Number(await dst.value('SELECT COUNT(*) FROM bench.t'));
    out.copy = {
      insertSelect: { ms: Math.round(insertSelectMs), rowsPerS: Math.round(ROWS / (insertSelectMs / 1000)) },
      targetLoadInfile: { ms: Math.round(loadInfileMs), rowsPerS: Math.round(ROWS / (loadInfileMs / 1000)) },
      targetLoadInfileIndexAfter: { ms: Math.round(loadInfileDeferredMs), rowsPerS: Math.round(ROWS / (loadInfileDeferredMs / 1000)) },
      targetLoadInfileTwoSessions: { ms: Math.round(loadInfileTwoMs), loadMs: Math.round(loadInfileTwoLoadMs), rowsPerS: Math.round(ROWS / (loadInfileTwoMs / 1000)), cpuSeconds: targetBestCpu },
      cpuSeconds: { mydumper: dumpCpu, myloaderBinlog: loadBinlogCpu, ezctl: ezCpu },
      mydumperMyloader: { ms: Math.round(dumpMs + loadMs), dumpMs: Math.round(dumpMs), loadMs: Math.round(loadMs), rows: loaded, rowsPerS: Math.round(loaded / ((dumpMs + loadMs) / 1000)) },
      mydumperMyloaderBinlog: { ms: Math.round(dumpMs + loadBinlogMs), loadMs: Math.round(loadBinlogMs), rowsPerS: Math.round(loaded / ((dumpMs + loadBinlogMs) / 1000)) },
      ezctl: { ms: Math.round(ezctlMs), rows: copied, rowsPerS: Math.round(copied / (ezctlMs / 1000)) },
      ezctlOneThread: { ms: Math.round(oneThreadMs), rows: oneThreadRows, rowsPerS: Math.round(oneThreadRows / (oneThreadMs / 1000)) },
    };
    say(`copy: ${JSON.stringify(out.copy)}; load ${load()}`);
    if (peers) {
      const c = out.copy as any;
      say(`copy rows/s: ezctl ${c.ezctl.rowsPerS} (one thread ${c.ezctlOneThread.rowsPerS}); mydumper | myloader ${c.mydumperMyloader.rowsPerS} (target's binlog off), with --enable-binlog ${c.mydumperMyloaderBinlog.rowsPerS}; ` +
        `ezctl ${(c.ezctl.rowsPerS / c.mydumperMyloader.rowsPerS).toFixed(2)}x / ${(c.ezctl.rowsPerS / c.mydumperMyloaderBinlog.rowsPerS).toFixed(2)}x (target 1.5x); INSERT ... SELECT on the source ${c.insertSelect.rowsPerS}; ` +
        `the target's own LOAD DATA INFILE ${c.targetLoadInfile.rowsPerS} (${(c.targetLoadInfile.rowsPerS / c.mydumperMyloaderBinlog.rowsPerS).toFixed(2)}x myloader --enable-binlog), ` +
        `its secondary index built after ${c.targetLoadInfileIndexAfter.rowsPerS} (${(c.targetLoadInfileIndexAfter.rowsPerS / c.mydumperMyloaderBinlog.rowsPerS).toFixed(2)}x), ` +
        `two sessions at once, index after ${c.targetLoadInfileTwoSessions.rowsPerS} (${(c.targetLoadInfileTwoSessions.rowsPerS / c.mydumperMyloaderBinlog.rowsPerS).toFixed(2)}x): the target server's ceilings for these rows`);
      const cpu = c.cpuSeconds;
      const f = (x: number) => x.toFixed(2);
      const ezAll = cpu.ezctl.servers + cpu.ezctl.client;
      const myAll = cpu.mydumper.servers + cpu.mydumper.client + cpu.myloaderBinlog.servers + cpu.myloaderBinlog.client;
      say(`CPU seconds (both servers + the client's own process): ezctl ${f(cpu.ezctl.servers)} (source ${f(cpu.ezctl.source)}, target ${f(cpu.ezctl.target)}) + ${f(cpu.ezctl.client)} = ${f(ezAll)} in ${f(c.ezctl.ms / 1000)} s (${f(ezAll / (c.ezctl.ms / 1000))} cores busy); ` +
        `mydumper ${f(cpu.mydumper.servers)} + ${f(cpu.mydumper.client)}, myloader --enable-binlog ${f(cpu.myloaderBinlog.servers)} + ${f(cpu.myloaderBinlog.client)}, together ${f(myAll)} in ${f(c.mydumperMyloaderBinlog.ms / 1000)} s ` +
        `(${f(myAll / (c.mydumperMyloaderBinlog.ms / 1000))} cores busy); on ${availableParallelism()} cores ezctl's copy cannot take less than ${f(ezAll / availableParallelism())} s with the CPU it needs, ` +
        `${f(c.mydumperMyloaderBinlog.ms / 1000 / (ezAll / availableParallelism()))}x the binlogging peer at most`);
      // The floor of any copy between these two servers on this machine, whatever its client: the
      // rows must be read at the source and sent (at the least the CPU mydumper and its server
      // spent, the cheapest reader measured here; myloader's own client CPU the cheapest writer)
      // while the target loads them (at the least what its own two-session LOAD DATA INFILE of a
      // local file cost it), all on the same cores; then the index is built after the last row
      // (one thread: as long as it took the target alone). A copy that beat this would need the
      // target to load rows for less than its own local bulk load costs.
      const best = c.targetLoadInfileTwoSessions;
      const readCpu = cpu.mydumper.servers + cpu.mydumper.client + cpu.myloaderBinlog.client;
      const loadFloorS = Math.max(best.loadMs / 1000, (best.cpuSeconds.load + readCpu) / availableParallelism());
      const floorS = loadFloorS + (best.ms - best.loadMs) / 1000;
      const wantS = c.mydumperMyloaderBinlog.ms / 1000 / 1.5;
      say(`the floor on this machine for any client: the target's own two-session load ${f(best.cpuSeconds.load)} CPU-s (${f(best.loadMs / 1000)} s) + reading and sending at the cheapest measured ` +
        `(mydumper and its server ${f(cpu.mydumper.servers + cpu.mydumper.client)}, myloader's client ${f(cpu.myloaderBinlog.client)}) on ${availableParallelism()} cores: ${f(loadFloorS)} s, ` +
        `then the index built after the last row ${f((best.ms - best.loadMs) / 1000)} s (one thread, ${f(best.cpuSeconds.index)} CPU-s): ${f(floorS)} s = ` +
        `${f(c.mydumperMyloaderBinlog.ms / 1000 / floorS)}x the binlogging peer at most; 1.5x needs ${f(wantS)} s (ezctl took ${f(c.ezctl.ms / 1000)} s)` +
        (floorS > wantS ? ': not reachable here by any client' : ''));
    }

    // 2. catch-up after a pause under the writer (BENCH_PAUSE_S=0: skipped)
    const w = new Writer({ old: await sb.db('bj-master'), new: await sb.db('sh-master') }, TPS);
    w.start();
    await sleep(3000);
    if (PAUSE_S > 0) {
    await dbusControl(ctx(), { name: MOVE }, 'pause');
    const ackedAtPause = w.acked;
    await sleep(PAUSE_S * 1000);
    const backlog = w.acked - ackedAtPause;
    const posAtResume = String(await src.value('SELECT @@global.gtid_binlog_pos'));
    t0 = performance.now();
    await dbusControl(ctx(), { name: MOVE }, 'resume');
    const reached = await waitApplied(ctx(), MOVE, { old: posAtResume }, { timeoutMs: 600_000 });
    const catchupMs = performance.now() - t0;
    const writeRate = backlog / PAUSE_S;
    out.catchUp = { pausedS: PAUSE_S, backlogTx: backlog, writeRatePerS: Math.round(writeRate), catchUpMs: Math.round(catchupMs), applyRatePerS: Math.round(backlog / (catchupMs / 1000)), ratio: Number((backlog / (catchupMs / 1000) / writeRate).toFixed(1)), reached: reached.reached };
    say(`catch-up: ${JSON.stringify(out.catchUp)}; load ${load()}`);
    }

    // 3. cut-over windows under the route-following writer
    const cuts: Array<Record<string, unknown>> = [];
    for (let i = 0; i < CUTOVERS; i++) {
      const st = await following();
      const lagMs = Math.max(0, ...(st?.sources ?? []).map((s) => s.lagMs ?? 0));
      const a = Date.now();
      const c = await run(['dbus', 'cutover', MOVE, '--execute']);
      const b = Date.now();
      if (c.code !== 0) throw new Error(`dbus cutover: ${c.stderr.slice(-2000)}`);
      await sleep(500);
      const clientMs = w.maxGapBetween(a, b);
      const back = await run(['dbus', 'rollback', MOVE, '--execute']);
      if (back.code !== 0) throw new Error(`dbus rollback: ${back.stderr.slice(-2000)}`);
      cuts.push({ lagMs, window: c.json.window, clientMaxGapMs: Math.round(clientMs), rollbackWindow: back.json.window });
      say(`cut-over ${i + 1}: lag ${lagMs} ms, window ${JSON.stringify(c.json.window)}, client's longest gap ${Math.round(clientMs)} ms; rollback window ${back.json.window?.totalMs} ms; load ${load()}`);
      await startMove(true);
    }
    await w.finish();
    const tot = cuts.map((c) => (c.window as { totalMs: number }).totalMs);
    const gaps = cuts.map((c) => c.clientMaxGapMs as number);
    out.cutover = { runs: cuts, windowMs: stats(tot), clientGapMs: stats(gaps), fenced: w.fenced };
    say(`cut-over window p50/max ${Math.round(stats(tot).p50)}/${Math.round(stats(tot).max)} ms; client gap p50/max ${Math.round(stats(gaps).p50)}/${Math.round(stats(gaps).max)} ms; writes refused by the fence ${w.fenced}`);
    if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(out, null, 2));
  } finally {
    for (const j of jobs) if (j.exitCode === null && j.signalCode === null) j.kill('SIGTERM');
    try {
      const info = JSON.parse(readFileSync(join(sb.dir, 'state', 'dbus', MOVE, 'reverse.json'), 'utf8')) as { pid: number };
      process.kill(info.pid, 'SIGTERM');
    } catch {
      /* none */
    }
    await sleep(1000);
    await sb.down();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
