// DRC against MariaDB native replication, on the same sandbox and the same workload.
//  1. lag at fixed write rates (workload in one zone, then in both): a probe row written at
//     bj's master every 50 ms is watched for on bj's native replica and on sh's master (DRC);
//     the time until it is visible is the lag, measured the same way for both.
//  2. apply throughput: with applying paused (DRC paused / replica SQL thread stopped), N
//     single-row transactions are written, then applying resumes and the drain is timed; once
//     with the sandbox's durable settings, once with both applying servers relaxed.
//  3. daemon RSS sampled through the whole run (BENCH_SOAK_SECONDS for a long soak).
// Run with `npm run bench -- drc`. Figures go in the README.
import { readFileSync, writeFileSync } from 'node:fs';
import { startSandbox, type TestSandbox } from '../test/helpers/sandbox.js';
import { drcStart, drcStop } from '../test/helpers/drc.js';
import type { Db } from '../src/core/db/connect.js';
import { cpuSeconds, stats, row, probeLag } from './_util.js';

const RATES = (process.env.BENCH_RATES ?? '100,400,1000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 20000);
const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 60);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** user + system CPU time of a process so far, in ms */
const cpuMs = (pid: number): number => (cpuSeconds(pid) ?? NaN) * 1000;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Probe rows written at bj's master, watched for on sh's master (DRC) and bj's replica (native). */
async function measureLag(sb: TestSandbox, during: () => Promise<unknown>): Promise<{ drc: number[]; native: number[] }> {
  const watchers = { drc: await sb.db('sh-master'), native: await sb.db('bj-replica1') };
  try {
    const lags = await probeLag(sb, watchers, during, 1000);
    return { drc: lags.drc!, native: lags.native! };
  } finally {
    await Promise.all([watchers.drc.close(), watchers.native.close()]);
  }
}

async function backlog(sb: TestSandbox, n: number): Promise<void> {
  const conns = await Promise.all(Array.from({ length: 8 }, () => sb.db('bj-master')));
  let next = 0;
  const base = Date.now() * 10;
  await Promise.all(conns.map(async (c) => {
    for (;;) {
      const i = next++;
      if (i >= n) break;
      await c.exec('INSERT INTO ezbench.load (id, v) VALUES (?, ?)', [base + i, `row ${i}`]);
    }
  }));
  await Promise.all(conns.map((c) => c.close()));
}

async function caughtUp(sb: TestSandbox, node: string, pos: string, timeoutS = 300): Promise<void> {
  const db = await sb.db(node);
  try {
    if (node === 'bj-replica1') {
      await db.value('SELECT MASTER_GTID_WAIT(?, ?)', [pos, timeoutS]);
      return;
    }
    // DRC: the checkpoint at sh covers bj's own domain
    const seq = BigInt(pos.split(',').find((g) => g.startsWith('1-'))!.split('-')[2]!);
    for (;;) {
      const cp = String(await db.value("SELECT source_position FROM _ezctl.drc_checkpoint WHERE pipeline = 'demo:bj->sh'"));
      const s = BigInt(cp.split(',').find((g) => g.startsWith('1-'))?.split('-')[2] ?? '0');
      if (s >= seq) return;
      await sleep(10);
    }
  } finally {
    await db.close();
  }
}

async function main(): Promise<void> {
  console.log(`DRC vs MariaDB native replication (single-threaded replica), 2 zones x (master + replica), ${RATES.join('/')} tx/s for ${SECONDS} s each`);
  const sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 1, load: 20000 });
  let pid: number | undefined;
  const rss: number[] = [];
  let rssTimer: NodeJS.Timeout | undefined;
  try {
    for (const m of ['bj-master', 'sh-master']) {
      const db = await sb.db(m);
      await db.exec('CREATE DATABASE ezbench');
      await db.exec('CREATE TABLE ezbench.probe (seq BIGINT PRIMARY KEY, written_at_ms BIGINT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))');
      await db.exec('CREATE TABLE ezbench.load (id BIGINT PRIMARY KEY, v VARCHAR(64), drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))');
      await db.close();
    }
    pid = await drcStart(sb);
    rssTimer = setInterval(() => rss.push(rssMb(pid!)), 1000);
    await sleep(1000);

    const lines: string[] = [];
    const w = [34, 9, 9, 9, 9, 10];
    lines.push(row(['workload', 'p50 ms', 'p99 ms', 'max ms', 'probes', 'achieved'], w));
    const results: Record<string, unknown> = {};
    for (const zones of [['bj'], ['bj', 'sh']]) {
      for (const rate of RATES) {
        let achieved = 0;
        const lags = await measureLag(sb, async () => {
          const r = await sb.run(['--json', 'sandbox', 'workload', '--tps', String(rate), '--seconds', String(SECONDS), '--zones', zones.join(',')], { timeoutMs: (SECONDS + 120) * 1000 });
          const j = r.json();
          achieved = j.zones.reduce((a: number, z: any) => a + z.tps, 0) / j.zones.length;
        });
        for (const kind of ['native', 'drc'] as const) {
          const s = stats(lags[kind]);
          const label = `${kind === 'drc' ? 'DRC bj->sh' : 'native bj->replica'}, ${rate}/s in ${zones.join('+')}`;
          lines.push(row([label, s.p50, percentile(lags[kind], 0.99), s.max, String(lags[kind].length), achieved.toFixed(0) + '/s'], w));
          results[label] = { p50: s.p50, p99: percentile(lags[kind], 0.99), max: s.max };
        }
      }
    }
    console.log('\nlag of a probe row written every 50 ms at bj, seen at sh (DRC) and at bj\'s replica (native):');
    console.log(lines.join('\n'));

    // apply throughput: drain a backlog, first as the sandbox runs (durable at commit on every
    // server: innodb_flush_log_at_trx_commit=1, sync_binlog=1), then with both applying servers
    // relaxed (=2, 0) so that fsyncs do not decide it and CPU does
    const master = await sb.db('bj-master');
    const replica = await sb.db('bj-replica1');
    const shMaster = await sb.db('sh-master');
    const drain = async (label: string) => {
      await replica.exec('STOP SLAVE SQL_THREAD');
      let r = await sb.run(['drc', 'pause', '--direction', 'bj->sh']);
      if (r.code !== 0) throw new Error(r.stderr);
      const t0 = Date.now();
      await backlog(sb, BACKLOG);
      const writeMs = Date.now() - t0;
      const pos = String(await master.value('SELECT @@gtid_binlog_pos'));
      const n0 = Date.now();
      await replica.exec('START SLAVE SQL_THREAD');
      await caughtUp(sb, 'bj-replica1', pos);
      const nativeMs = Date.now() - n0;
      // timed from the acknowledged resume: a CLI start-up is not apply time (native's START
      // SLAVE pays none either)
      r = await sb.run(['drc', 'resume']);
      const cpu0 = cpuMs(pid!);
      const d0 = Date.now();
      await caughtUp(sb, 'sh-master', pos);
      const drcMs = Date.now() - d0;
      const daemonCpuMs = cpuMs(pid!) - cpu0;
      console.log(`
apply throughput, ${label}: a backlog of ${BACKLOG} single-row transactions (written in ${(writeMs / 1000).toFixed(1)} s by 8 clients)`);
      console.log(row(['applier', 'seconds', 'tx/s'], [34, 9, 9]));
      console.log(row(['native replica, 1 SQL thread', nativeMs / 1000, BACKLOG / (nativeMs / 1000)], [34, 9, 9]));
      console.log(row(['DRC bj->sh (batched, LWW)', drcMs / 1000, BACKLOG / (drcMs / 1000)], [34, 9, 9]));
      console.log(`DRC is ${(nativeMs / drcMs).toFixed(2)}x the native replica; the daemon used ${daemonCpuMs} ms of CPU (${Math.round((daemonCpuMs * 1000) / BACKLOG)} us per transaction)`);
      return { native: BACKLOG / (nativeMs / 1000), drc: BACKLOG / (drcMs / 1000), daemonCpuUsPerTx: (daemonCpuMs * 1000) / BACKLOG };
    };
    results.throughput = await drain('servers durable at commit (the sandbox\'s settings)');
    const durability = async (flush: number, sync: number) => {
      for (const db of [replica, shMaster]) {
        await db.exec(`SET GLOBAL innodb_flush_log_at_trx_commit = ${flush}`);
        await db.exec(`SET GLOBAL sync_binlog = ${sync}`);
      }
    };
    await durability(2, 0);
    try {
      results.throughputRelaxed = await drain('applying servers relaxed (innodb_flush_log_at_trx_commit=2, sync_binlog=0)');
    } finally {
      await durability(1, 1);
    }
    await Promise.all([master.close(), replica.close(), shMaster.close()]);

    if (SOAK_SECONDS > 0) {
      console.log(`\nsoak: ${SOAK_SECONDS} s of 200 tx/s in both zones with conflicts, daemon RSS sampled every second`);
      const before = rss.length;
      const w2 = await sb.run(['sandbox', 'workload', '--tps', '200', '--seconds', String(SOAK_SECONDS), '--conflict-ratio', '0.05'], { timeoutMs: (SOAK_SECONDS + 120) * 1000 });
      if (w2.code !== 0) console.log(w2.stderr);
      const soak = rss.slice(before);
      console.log(`daemon RSS: start ${soak[0]?.toFixed(0)} MB, max ${Math.max(...soak).toFixed(0)} MB, end ${soak.at(-1)?.toFixed(0)} MB (whole run max ${Math.max(...rss).toFixed(0)} MB)`);
      results.rss = { start: soak[0], max: Math.max(...soak), end: soak.at(-1) };
    }
    if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(results, null, 2));
  } finally {
    if (rssTimer) clearInterval(rssTimer);
    await drcStop(sb, pid);
    await sb.down();
  }
}

function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

await main();
