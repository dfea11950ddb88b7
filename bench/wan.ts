// Distance between zones (`sandbox up --wan-latency`): the figures of issue 17 with 30 ms between
// bj and sh, on one machine, through the sandbox's relay.
//  1. The relay's own cost: SELECT 1 round trips to sh's master direct and through the relay at
//     0 ms; DRC lag at 100 tx/s with the relay at 0 ms against DRC connected directly (the
//     topology file without its via: entries), in one run.
//  2. DRC lag p50/p99 at the DRC bench's rates with 30 ms between the zones, beside native
//     replication across the same relay: sh's replica is repointed to bj's master at the address
//     sh sees it at (through the relay), and a probe row written at bj every 50 ms is watched for
//     on sh's master (DRC) and on that replica (native), as bench/drc.ts does.
//  3. `check full` of the demo data (the DRC bench's 20000 rows) at 30 ms and at 0 ms, same data.
//  4. A `gz switch` window (bench/gz.ts's global part, its sandbox at 30 ms) and an `emha switch`
//     window (bench/emha.ts's ezctl switches, its sandbox at 30 ms), by import.
// Targets (issue 17): DRC p99 <= 30 ms + 200 ms at the rate native replication sustains across the
// same distance; check full within 1.2x its loopback time.
// Run: `npx tsc -p tsconfig.json && flock /work/bench.lock node scripts/run-bench.mjs wan`.
// BENCH_RATES (default 100,400,1000), BENCH_SECONDS (15), BENCH_ROWS (20000), BENCH_SWITCHES (4),
// BENCH_SKIP_LAG=1, BENCH_SKIP_CHECK=1, BENCH_SKIP_GZ=1, BENCH_SKIP_EMHA=1, BENCH_OUT (a JSON file).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { startSandbox, type TestSandbox } from '../test/helpers/sandbox.js';
import { drcStart, drcStop, drcWaitAll } from '../test/helpers/drc.js';
import { readDefaultsFile } from '../src/core/config/defaults-file.js';
import { setLatency } from '../src/core/sandbox/net.js';
import { connect, type Db } from '../src/core/db/connect.js';
import { row, probeLag } from './_util.js';

const RATES = (process.env.BENCH_RATES ?? '100,400,1000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const ROWS = Number(process.env.BENCH_ROWS ?? 20000);
const RTT = 30;
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const say = (s: string) => console.log(s);

function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

function topo(sb: TestSandbox): any {
  return parseDocument(readFileSync(sb.config, 'utf8')).toJS();
}

/** The via: entries of the sandbox's topology file removed (every connection direct), or put back. */
function directTopology(sb: TestSandbox, original: string | undefined): string {
  const text = readFileSync(sb.config, 'utf8');
  if (original !== undefined) {
    writeFileSync(sb.config, original);
    return original;
  }
  const doc = parseDocument(text);
  for (const z of ['bj', 'sh']) {
    doc.deleteIn(['clusters', 'demo', 'zones', z, 'master', 'via']);
    const reps = doc.getIn(['clusters', 'demo', 'zones', z, 'replicas']) as any;
    for (let i = 0; i < (reps?.items?.length ?? 0); i++) doc.deleteIn(['clusters', 'demo', 'zones', z, 'replicas', i, 'via']);
  }
  writeFileSync(sb.config, doc.toString());
  return text;
}

/** Fastest and median SELECT 1 of n round trips on one connection. */
async function selectOne(db: Db, n = 500): Promise<{ p50: number; min: number }> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await db.value('SELECT 1');
    t.push(performance.now() - t0);
  }
  return { p50: percentile(t, 0.5), min: Math.min(...t) };
}

async function workload(sb: TestSandbox, rate: number, seconds: number): Promise<number> {
  const r = await sb.run(['--json', 'sandbox', 'workload', '--tps', String(rate), '--seconds', String(seconds), '--zones', 'bj', '--progress', '0'], { timeoutMs: (seconds + 120) * 1000 });
  try {
    const j = r.json();
    return j.zones.reduce((a: number, z: any) => a + z.tps, 0) / j.zones.length;
  } catch {
    throw new Error(`sandbox workload: exit ${r.code}: ${r.stderr.slice(-500)}`);
  }
}

/** sh's replica becomes a replica of bj's master, at the address sh sees it at (the relay). */
async function nativeAcrossRelay(sb: TestSandbox): Promise<void> {
  const via = String(topo(sb).clusters.demo.zones.bj.master.via.sh);
  const [host, port] = via.split(':');
  const repl = readDefaultsFile(join(sb.dir, 'repl.cnf')).password!;
  const sh = await sb.db('sh-master');
  const r = await sb.db('sh-replica1');
  const bj = await sb.db('bj-master');
  try {
    await r.value('SELECT MASTER_GTID_WAIT(?, 60)', [String(await sh.value('SELECT @@gtid_binlog_pos'))]);
    await r.exec('STOP SLAVE');
    await r.exec("SET GLOBAL slave_exec_mode = 'IDEMPOTENT'");
    await r.exec('SET GLOBAL gtid_slave_pos = ?', [String(await bj.value('SELECT @@gtid_binlog_pos'))]);
    await r.exec('CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1', [host!, Number(port), 'repl', repl]);
    await r.exec('START SLAVE');
  } finally {
    await Promise.all([sh.close(), r.close(), bj.close()]);
  }
}

async function checkFull(sb: TestSandbox): Promise<{ ms: number; rows: number; code: number | null }> {
  const t0 = performance.now();
  const r = await sb.run(['--json', 'check', 'full', '--cluster', 'demo'], { timeoutMs: 600_000 });
  const ms = performance.now() - t0;
  let rows = NaN;
  try {
    rows = r.json().rows;
  } catch {
    throw new Error(`check full: exit ${r.code}: ${r.stderr.slice(-500)}`);
  }
  return { ms, rows, code: r.code };
}

async function partOne(results: Record<string, unknown>): Promise<void> {
  const sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 1, wanLatency: '0ms', load: ROWS });
  let pid: number | undefined;
  try {
    for (const m of ['bj-master', 'sh-master']) {
      const db = await sb.db(m);
      await db.exec('CREATE DATABASE ezbench');
      await db.exec('CREATE TABLE ezbench.probe (seq BIGINT PRIMARY KEY, written_at_ms BIGINT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))');
      await db.close();
    }
    // ---- 1. the relay's own cost
    if (!process.env.BENCH_SKIP_COST) await relayCost(sb, results);

    // ---- 3. check full, 0 ms and 30 ms taking turns, same data (bj is the operator's zone: sh across)
    if (!process.env.BENCH_SKIP_CHECK) {
      const runs = Number(process.env.BENCH_CHECK_RUNS ?? 3);
      const at: Record<number, number[]> = { 0: [], [RTT]: [] };
      let rows = 0;
      for (let i = 0; i < runs; i++) {
        for (const l of [0, RTT]) {
          await setLatency(sb.dir, { latencyMs: l });
          const c = await checkFull(sb);
          at[l]!.push(c.ms);
          rows = c.rows;
        }
      }
      await setLatency(sb.dir, { latencyMs: 0 });
      const m0 = percentile(at[0]!, 0.5);
      const m30 = percentile(at[RTT]!, 0.5);
      say(`\ncheck full of the demo data (${rows} rows; ${runs} runs each, taking turns; load ${load()}): relay at 0 ms ${at[0]!.map((x) => (x / 1000).toFixed(2)).join(' ')} s (median ${(m0 / 1000).toFixed(2)}), at ${RTT} ms ${at[RTT]!.map((x) => (x / 1000).toFixed(2)).join(' ')} s (median ${(m30 / 1000).toFixed(2)}): ${(m30 / m0).toFixed(2)}x (target <= 1.2x: ${m30 / m0 <= 1.2 ? 'met' : 'NOT met'})`);
      results.checkFull = { ms0: at[0], ms30: at[RTT], ratio: m30 / m0, rows };
    }
    pid = await partTwo(sb, results);
  } finally {
    await drcStop(sb, pid);
    await sb.down();
  }
}

async function relayCost(sb: TestSandbox, results: Record<string, unknown>): Promise<void> {
  let pid: number | undefined;
  try {
    const t = topo(sb);
    const admin = readDefaultsFile(join(sb.dir, 'client.cnf')).password!;
    const via = String(t.clusters.demo.zones.sh.master.via.bj).split(':');
    const direct = await sb.db('sh-master');
    const relayed = await connect({ label: 'sh-master via relay', host: via[0]!, port: Number(via[1]), user: 'ezctl', password: admin, passwordSource: 'bench' });
    const d = await selectOne(direct);
    const r0 = await selectOne(relayed);
    await setLatency(sb.dir, { latencyMs: RTT });
    const r30 = await selectOne(relayed, 50);
    await setLatency(sb.dir, { latencyMs: 0 });
    await Promise.all([direct.close(), relayed.close()]);
    say(`\nSELECT 1 round trip to sh's master (load ${load()}):`);
    say(row(['path', 'p50 ms', 'min ms'], [34, 9, 9]));
    say(row(['direct (loopback)', d.p50, d.min], [34, 9, 9]));
    say(row(['through the relay, 0 ms configured', r0.p50, r0.min], [34, 9, 9]));
    say(row([`through the relay, ${RTT} ms configured`, r30.p50, r30.min], [34, 9, 9]));
    results.selectOne = { direct: d, relay0: r0, relay30: r30 };

    const drcLagAt = async (label: string): Promise<{ p50: number; p99: number }> => {
      pid = await drcStart(sb);
      await drcWaitAll(sb, ['bj', 'sh'], '120s');
      const sh = await sb.db('sh-master');
      const lags = await probeLag(sb, { drc: sh }, () => workload(sb, 100, SECONDS), 1500);
      await sh.close();
      await drcStop(sb, pid);
      pid = undefined;
      const out = { p50: percentile(lags.drc!, 0.5), p99: percentile(lags.drc!, 0.99) };
      say(row([label, out.p50, out.p99, String(lags.drc!.length)], [44, 9, 9, 8]));
      return out;
    };
    say(`\nDRC bj->sh lag at 100 tx/s in bj (load ${load()}):`);
    say(row(['DRC connected', 'p50 ms', 'p99 ms', 'probes'], [44, 9, 9, 8]));
    const original = directTopology(sb, undefined);
    const lagDirect = await drcLagAt('directly (no via: in the topology file)');
    directTopology(sb, original);
    const lagRelay0 = await drcLagAt('through the relay, 0 ms configured');
    results.relayCost = { drcDirect: lagDirect, drcRelay0: lagRelay0 };
  } finally {
    if (pid !== undefined) await drcStop(sb, pid);
  }
}

/** ---- 2. DRC and native replication across 30 ms; returns the DRC daemon's pid (left running) */
async function partTwo(sb: TestSandbox, results: Record<string, unknown>): Promise<number | undefined> {
  let pid: number | undefined;
    if (!process.env.BENCH_SKIP_LAG) {
      await setLatency(sb.dir, { latencyMs: RTT });
      await nativeAcrossRelay(sb);
      pid = await drcStart(sb);
      await drcWaitAll(sb, ['bj', 'sh'], '120s');
      const watchers = { drc: await sb.db('sh-master'), native: await sb.db('sh-replica1') };
      const w = [44, 9, 9, 9, 8, 10];
      const lines = [row(['workload in bj', 'p50 ms', 'p99 ms', 'max ms', 'probes', 'achieved'], w)];
      const lag: Record<string, unknown> = {};
      for (const rate of RATES) {
        let achieved = 0;
        const lags = await probeLag(sb, watchers, async () => {
          achieved = await workload(sb, rate, SECONDS);
        }, 1500);
        for (const kind of ['native', 'drc']) {
          const xs = lags[kind]!;
          const label = `${kind === 'drc' ? 'DRC bj->sh' : 'native replica in sh of bj'}, ${rate}/s`;
          lines.push(row([label, percentile(xs, 0.5), percentile(xs, 0.99), Math.max(...xs), String(xs.length), `${achieved.toFixed(0)}/s`], w));
          lag[label] = { p50: percentile(xs, 0.5), p99: percentile(xs, 0.99), max: Math.max(...xs) };
        }
        const nat = await watchers.native.one<{ Slave_SQL_Running: string; Last_Error: string }>('SHOW SLAVE STATUS');
        if (nat?.Slave_SQL_Running !== 'Yes') say(`(native replica stopped: ${nat?.Last_Error})`);
      }
      await Promise.all([watchers.drc.close(), watchers.native.close()]);
      say(`\nlag of a probe row written every 50 ms at bj, ${RTT} ms round trip between the zones (load ${load()}):`);
      say(lines.join('\n'));
      say(`target: DRC p99 <= ${RTT} + 200 ms at the rates native replication sustains`);
      results.lag = lag;
    }
  return pid;
}

async function main(): Promise<void> {
  say(`WAN: ${RTT} ms round trip between bj and sh through the sandbox's relay; load ${load()}`);
  const results: Record<string, unknown> = {};
  const tmp = mkdtempSync(join(tmpdir(), 'ezctl-bench-wan-'));
  try {
    await partOne(results);
    if (!process.env.BENCH_SKIP_GZ) {
      process.env.BENCH_SWITCHES ??= '4';
      const gz = await import('./gz.js');
      results.gz = gz.summary(`gz switch (global cluster, ${RTT} ms between the zones)`, await gz.globalPart(tmp, { wanLatency: `${RTT}ms` }));
    }
    if (!process.env.BENCH_SKIP_EMHA) {
      process.env.BENCH_SWITCHES ??= '4';
      const emha = await import('./emha.js');
      const sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 1, proxy: true, wanLatency: `${RTT}ms` });
      let pid: number | undefined;
      try {
        for (const m of ['bj-master', 'sh-master']) {
          const db = await sb.db(m);
          await db.exec('CREATE DATABASE IF NOT EXISTS ezbench');
          await db.exec(`CREATE TABLE ${emha.TABLE} (id BIGINT PRIMARY KEY, run INT NOT NULL, server_id INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))`);
          await db.close();
        }
        const rig = new emha.Rig(sb);
        pid = await drcStart(sb);
        await emha.drcWaitBoth(rig);
        const runs: import('./emha.js').SwitchRun[] = [];
        say(`\nemha switch in bj, ${RTT} ms between the zones, DRC running both ways:`);
        await emha.ezctlSwitches(rig, tmp, Number(process.env.BENCH_SWITCHES), runs);
        const s = emha.summary(runs);
        say(`emha switch: ${s.ok} of ${s.n} done; window p50/p99 ${s.windowP50.toFixed(0)}/${s.windowP99.toFixed(0)} ms; command p50/p99 ${(s.commandP50 / 1000).toFixed(2)}/${(s.commandP99 / 1000).toFixed(2)} s; lost ${s.lost}; repointed ${s.repointed} of ${s.n}`);
        results.emha = s;
      } finally {
        await drcStop(sb, pid);
        await sb.down();
      }
    }
    if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(results, null, 2));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
