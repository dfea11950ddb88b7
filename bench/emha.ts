// EMHA against MHA 0.58, on one sandbox: 2 zones (bj, sh) × (master + 1 replica), an HAProxy per
// zone (`sandbox up --proxy`), the application writing through bj's proxy.
//
//  1. Planned switch, BENCH_SWITCHES times each (default 10), alternating bj-master → bj-replica1
//     → bj-master, the two tools taking turns two switches at a time (the machine's load swings
//     within minutes; turns keep the comparison within one stretch of it): the write-unavailable window the application sees (an autocommit INSERT loop
//     as the application user through bj's proxy, every acknowledgement stamped with the time and
//     the server that made it: the gap between the last acknowledged write on the old master and
//     the first on the new one), p50/p99, and the whole command's wall time.
//       - MHA: `masterha_master_switch --master_state=alive --orig_master_is_new_slave` with a
//         master_ip_online_change_script that sets read_only on the old master at `stop` and
//         moves the same HAProxy write route at `start` (bench/_emha-mha.ts says what is done to
//         make MHA 0.58 run here). The DRC daemon is stopped for MHA's turns: MHA repoints
//         neither DRC nor anything else, and DRC would write into the demoted master. After
//         MHA's turn its file/position replication is put back on MariaDB GTID.
//       - ezctl: `ezctl emha switch --cluster demo --zone bj --to NODE --execute`, DRC running
//         both ways; after each run the proxy, the topology file and both DRC directions must
//         name the new master.
//     After each run every acknowledged id must be on the new master (for ezctl after `drc wait`
//     both ways, and on sh's master too).
//  2. Failover: kill -9 of bj's master under the same writer. With `emha watch --execute`
//     running (when it exists): detection (kill → the watch says the master is dead) and total
//     (kill → first acknowledged write on the new master). Without it, `emha failover --execute`
//     is run right after the kill (total only). MHA's failover needs ssh to every node (not here).
//
// Run: `npm run build && flock /work/bench.lock node scripts/run-bench.mjs emha` (or `npm run
// bench -- emha`). BENCH_SWITCHES, BENCH_WRITER_PAUSE_MS (default 2), BENCH_OUT (a JSON file),
// BENCH_SKIP_MHA=1, BENCH_SKIP_EZCTL=1, BENCH_SKIP_FAILOVER=1.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parse } from 'yaml';
import { pathToFileURL } from 'node:url';
import { startSandbox, type TestSandbox } from '../test/helpers/sandbox.js';
import { drcStart, drcStop } from '../test/helpers/drc.js';
import { EZCTL } from '../test/helpers/cli.js';
import { readDefaultsFile } from '../src/core/config/defaults-file.js';
import type { Endpoint } from '../src/core/db/connect.js';
import { quoteTable } from '../src/core/db/quote.js';
import { HaproxyTarget } from '../src/core/proxy/haproxy.js';
import { AppWriter, missingIds, windowOf, type Window } from './_emha-writer.js';
import { mhaCheckRepl, mhaMissing, mhaSwitch, readTrace, setupMha, type MhaRig } from './_emha-mha.js';

const SWITCHES = Number(process.env.BENCH_SWITCHES ?? 10);
const PAUSE_MS = Number(process.env.BENCH_WRITER_PAUSE_MS ?? 2);
const CLUSTER = 'demo';
const ZONE = 'bj';
export const TABLE = quoteTable('ezbench', 'emha_w');
/** the measurement made before this bench existed (issue 13): MHA's window and command time */
const MHA_EARLIER = { windowMs: 42, commandMs: 1660 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const say = (s: string) => console.log(s);

function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
}

export interface SwitchRun {
  tool: 'ezctl' | 'mha';
  from: string;
  to: string;
  code: number | null;
  commandMs: number;
  /** wall clock (ms) when the command was started */
  startedAt: number;
  window?: Window;
  acked: number;
  missingOnNew: number;
  missingInSh?: number;
  errors: Record<string, number>;
  /** ezctl: the proxy, the topology file and both DRC directions name the new master */
  repointed?: { proxy: boolean; topology: boolean; drc: boolean; detail: string };
  /** MHA: the change script's commands, ms from the last write on the old master */
  phases?: { stopBegin: number; readOnlySet: number; startBegin: number; routeMoved: number; firstWrite: number };
  /** ezctl: its report's timeline, step and ms */
  timeline?: string;
  /** ezctl: the job's own total (the command's time less start-up, preflight and lease) */
  jobMs?: number;
  /** ezctl's own figure of the blocked window, when its report has one */
  reportedBlockedMs?: number;
  note?: string;
}

/** The sandbox as the bench needs it: nodes, server ids, the zone's proxy. */
export class Rig {
  constructor(readonly sb: TestSandbox) {}
  topo(): any {
    return parse(readFileSync(this.sb.config, 'utf8'));
  }
  zone(z = ZONE): any {
    return this.topo().clusters[CLUSTER].zones[z];
  }
  master(z = ZONE): string {
    return this.zone(z).master.name;
  }
  replicas(z = ZONE): string[] {
    return (this.zone(z).replicas ?? []).map((r: any) => r.name);
  }
  sid(node: string): number {
    return this.sb.node(node).serverId;
  }
  path(p: string): string {
    return isAbsolute(p) ? p : resolve(dirname(this.sb.config), p);
  }
  proxy(z = ZONE): HaproxyTarget {
    const p = this.zone(z).proxy;
    return new HaproxyTarget({ config: this.path(p.config), admin: this.path(p.admin), label: `proxy ${z}` });
  }
  appEndpoint(z = ZONE): Endpoint {
    const [host, port] = String(this.zone(z).proxy.write).split(':');
    const password = readDefaultsFile(join(this.sb.dir, 'app.cnf')).password!;
    return { label: `app via ${z}'s proxy`, host: host!, port: Number(port), user: 'app', password, passwordSource: 'test' };
  }
}

let runNo = 0;

/**
 * One switch under the writer: the writer runs until it has written on the old master for a
 * while, the switch runs, the writer runs until it has written on the new master, then the
 * acknowledgements are checked on the new master (after `sync`).
 */
async function underWriter(rig: Rig, tool: 'ezctl' | 'mha', from: string, to: string, doSwitch: () => Promise<{ code: number | null; ms: number; note?: string }>): Promise<SwitchRun & { writer: AppWriter }> {
  const run = ++runNo;
  const writer = new AppWriter(rig.appEndpoint(), TABLE, { firstId: run * 1_000_000, run, pauseMs: PAUSE_MS });
  writer.start();
  if (!(await writer.waitForAckOn(rig.sid(from), 10_000))) {
    await writer.stop();
    throw new Error(`the writer could not write on ${from} through the proxy (errors: ${JSON.stringify(Object.fromEntries(writer.errors))})`);
  }
  await sleep(300);
  const startedAt = Date.now();
  const r = await doSwitch();
  const landed = r.code === 0 && (await writer.waitForAckOn(rig.sid(to), 15_000));
  await sleep(200);
  await writer.stop();
  const out: SwitchRun & { writer: AppWriter } = {
    tool, from, to, code: r.code, commandMs: r.ms, startedAt, acked: writer.acks.length, missingOnNew: NaN,
    errors: Object.fromEntries(writer.errors), writer, note: r.note,
  };
  if (landed) out.window = windowOf(writer.acks, rig.sid(from), rig.sid(to));
  const other = writer.acks.filter((a) => a.server !== rig.sid(from) && a.server !== rig.sid(to));
  if (other.length) out.note = `${out.note ?? ''} ${other.length} acks from another server`.trim();
  return out;
}

async function missingOn(rig: Rig, node: string, ids: number[]): Promise<number> {
  const db = await rig.sb.db(node);
  try {
    return (await missingIds(db, TABLE, ids)).length;
  } finally {
    await db.close();
  }
}

/** Wait until `node` has applied `from`'s binlog position (native replication inside the zone). */
async function replicaCaughtUp(rig: Rig, from: string, node: string): Promise<void> {
  const m = await rig.sb.db(from);
  const r = await rig.sb.db(node);
  try {
    const pos = String(await m.value('SELECT @@gtid_binlog_pos'));
    const w = Number(await r.value('SELECT MASTER_GTID_WAIT(?, 30)', [pos]));
    if (w !== 0) throw new Error(`${node} did not reach ${from}'s ${pos} within 30 s`);
  } finally {
    await Promise.all([m.close(), r.close()]);
  }
}

// ---------------------------------------------------------------- MHA

function mhaPrepare(rig: Rig, dir: string): { mha: MhaRig; nodes: Array<{ name: string; host: string; port: number }> } {
  const z = rig.zone();
  const nodes = [z.master, ...(z.replicas ?? [])] as Array<{ name: string; host: string; port: number }>;
  const mha: MhaRig = setupMha({
    dir, topology: rig.sb.config, sandboxDir: rig.sb.dir, cluster: CLUSTER, zone: ZONE,
    admin: rig.path(z.proxy.admin), slots: nodes.map((n) => ({ port: n.port, name: n.name })),
  });
  return { mha, nodes };
}

/** `n` MHA switches (even: the zone ends with the master it began with, as the topology file says). */
async function mhaSwitches(rig: Rig, m: ReturnType<typeof mhaPrepare>, n: number, runs: SwitchRun[]): Promise<boolean> {
  const { mha, nodes } = m;
  let cur = nodes.find((x) => x.name === rig.master())!;
  for (let k = 0; k < n; k++) {
    const i = runs.length;
    const to = nodes.find((x) => x.name !== cur.name)!;
    await replicaCaughtUp(rig, cur.name, to.name);
    const log = join(mha.dir, `switch-${i + 1}.log`);
    const r = await underWriter(rig, 'mha', cur.name, to.name, () => mhaSwitch(mha, to, log));
    if (r.window) {
      // where MHA's window goes: the change script's commands, from the last write on the old master
      const t0 = performance.timeOrigin + r.window.lastOldAt;
      const tr = readTrace(mha).filter((x) => x.at >= r.startedAt);
      const at = (cmd: string, edge: string) => tr.find((x) => (x.cmd === cmd || (cmd === 'stop' && x.cmd === 'stopssh')) && x.edge === edge)?.at;
      const rel = (x: number | undefined) => (x === undefined ? NaN : x - t0);
      r.phases = { stopBegin: rel(at('stop', 'begin')), readOnlySet: rel(at('stop', 'end')), startBegin: rel(at('start', 'begin')), routeMoved: rel(at('start', 'end')), firstWrite: r.window.windowMs };
    }
    if (r.code === 0) {
      r.missingOnNew = await missingOn(rig, to.name, r.writer.acks.map((a) => a.id));
      cur = to;
    } else {
      r.note = `${r.note ?? ''} masterha_master_switch exit ${r.code}, see ${log}`.trim();
    }
    runs.push(strip(r));
    line(r, i);
    if (r.code !== 0) return false;
    await sleep(500);
  }
  if (cur.name !== rig.master()) throw new Error(`MHA's runs ended with ${cur.name} the master; the topology file names ${rig.master()}: not going on`);
  return true;
}

/**
 * MHA repoints the demoted master by binlog file and position (it has no MariaDB GTID support):
 * put every replica of the zone back on GTID replication (MASTER_USE_GTID=slave_pos, its
 * gtid_slave_pos set to what it has applied), as the sandbox wires it and ezctl expects it.
 */
async function backToGtid(rig: Rig): Promise<void> {
  for (const r of rig.replicas()) {
    await replicaCaughtUp(rig, rig.master(), r);
    const db = await rig.sb.db(r);
    try {
      await db.exec('STOP SLAVE');
      const pos = String(await db.value('SELECT @@gtid_binlog_pos'));
      await db.exec('SET GLOBAL gtid_slave_pos = ?', [pos]);
      await db.exec('CHANGE MASTER TO MASTER_USE_GTID = slave_pos');
      await db.exec('START SLAVE');
    } finally {
      await db.close();
    }
  }
}

// ---------------------------------------------------------------- ezctl

/** Does this build have `ezctl <group> <command>`? (commander prints the group's help for an unknown one) */
async function ezctlHas(group: string, command: string): Promise<boolean> {
  const r = spawnSync(process.execPath, [EZCTL, group, '--help'], { encoding: 'utf8' });
  return new RegExp(`^\\s+${command}\\b`, 'm').test(r.stdout.split(/^Commands:$/m)[1] ?? '');
}

export async function drcWaitBoth(rig: Rig): Promise<void> {
  for (const [from, to] of [['bj', 'sh'], ['sh', 'bj']]) {
    const r = await rig.sb.run(['drc', 'wait', '--from', from!, '--to', to!, '--timeout', '60s'], { timeoutMs: 90_000 });
    if (r.code !== 0) throw new Error(`drc wait ${from}->${to}: exit ${r.code}: ${r.stderr.trim()}`);
  }
}

async function repointed(rig: Rig, to: string): Promise<NonNullable<SwitchRun['repointed']>> {
  const w = await rig.proxy().currentWrite();
  const st = await rig.sb.run(['--json', 'drc', 'status']);
  let drc = false;
  let detail = '';
  try {
    const dirs = st.json().directions as Array<{ from: string; to: string; source: string; target: string; state: string }>;
    const out = dirs.find((d) => d.from === ZONE);
    const inn = dirs.find((d) => d.to === ZONE);
    drc = !!out && !!inn && out.source.split(' ')[0] === to && inn.target.split(' ')[0] === to;
    detail = dirs.map((d) => `${d.from}->${d.to} ${d.state} reads ${d.source.split(' ')[0]} writes ${d.target.split(' ')[0]}`).join('; ');
  } catch (e) {
    detail = `drc status: ${(e as Error).message.split('\n')[0]}`;
  }
  return { proxy: w?.name === to, topology: rig.master() === to, drc, detail: `proxy writes to ${w?.name ?? 'nobody'}; file master ${rig.master()}; ${detail}` };
}

function findNumber(o: unknown, keys: RegExp): number | undefined {
  if (!o || typeof o !== 'object') return undefined;
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    if (keys.test(k) && typeof v === 'number') return v;
    const inner = findNumber(v, keys);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

/** Switches refused (exit 4) and tried again: the refusal, by switch number. */
const refusals: Array<{ switchNo: number; why: string }> = [];
const REFUSAL_RETRIES = 3;

export async function ezctlSwitches(rig: Rig, dir: string, n: number, runs: SwitchRun[]): Promise<boolean> {
  for (let k = 0; k < n; k++) {
    const i = runs.length;
    const from = rig.master();
    const to = rig.replicas()[0]!;
    for (let attempt = 0; ; attempt++) {
      await replicaCaughtUp(rig, from, to);
      const base = join(dir, `ezctl-switch-${i + 1}${attempt ? `-try${attempt + 1}` : ''}`);
      const r = await underWriter(rig, 'ezctl', from, to, async () => {
        const t0 = performance.now();
        const x = await rig.sb.run(['--json', 'emha', 'switch', '--cluster', CLUSTER, '--zone', ZONE, '--to', to, '--execute'], { timeoutMs: 120_000 });
        const ms = performance.now() - t0;
        writeFileSync(`${base}.json`, x.stdout);
        writeFileSync(`${base}.log`, x.stderr);
        return { code: x.code, ms, note: x.code === 0 ? undefined : `exit ${x.code}: ${x.stderr.trim().split('\n').slice(-3).join(' / ')}` };
      });
      if (r.code === 4 && attempt < REFUSAL_RETRIES) {
        // a preflight refusal changes nothing: said, counted, and the switch tried again
        refusals.push({ switchNo: i + 1, why: r.note ?? '' });
        say(`  ezctl #${i + 1} ${from} -> ${to}: refused (${r.note}); tried again in 1 s`);
        await sleep(1_000);
        continue;
      }
      try {
        const j = JSON.parse(readFileSync(`${base}.json`, 'utf8'));
        r.reportedBlockedMs = findNumber(j, /blocked.*ms|window.*ms/i);
        const tl = (j.result?.timeline ?? []) as Array<{ step: string; action: string; durationMs: number }>;
        if (tl.length) r.timeline = tl.map((x) => `${x.step}${x.action === 'do' ? '' : ` (${x.action})`} ${x.durationMs}`).join(', ');
        if (typeof j.result?.totalMs === 'number') r.jobMs = j.result.totalMs;
      } catch {
        /* not JSON */
      }
      if (r.code === 0) {
        r.repointed = await repointed(rig, to);
        await drcWaitBoth(rig);
        const ids = r.writer.acks.map((a) => a.id);
        r.missingOnNew = await missingOn(rig, to, ids);
        r.missingInSh = await missingOn(rig, rig.master('sh'), ids);
      }
      runs.push(strip(r));
      line(r, i);
      if (r.code !== 0 || r.window === undefined) return false;
      break;
    }
    await sleep(500);
  }
  return true;
}

// ---------------------------------------------------------------- failover

interface FailoverRun {
  how: string;
  killed: string;
  newMaster?: string;
  /** kill → the watch's first look that saw the master dead */
  firstLookMs?: number;
  /** kill → the watch says the master is dead (confirmed) */
  detectionMs?: number;
  /** kill → the watch says the failover is done */
  failoverDoneMs?: number;
  /** kill → first acknowledged write on the new master */
  totalMs?: number;
  commandMs?: number;
  code?: number | null;
  ackedBeforeKill: number;
  missingOnNew?: number;
  reportedLost?: unknown;
  note?: string;
}

/** Lines of a child's stdout and stderr with the time each arrived. */
function follow(child: ChildProcess): Array<{ t: number; line: string }> {
  const lines: Array<{ t: number; line: string }> = [];
  for (const s of [child.stdout, child.stderr]) {
    let buf = '';
    s?.setEncoding('utf8');
    s?.on('data', (d: string) => {
      const t = performance.now();
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const l of parts) lines.push({ t, line: l });
    });
  }
  return lines;
}

function pidOf(rig: Rig, node: string): number {
  const s = JSON.parse(readFileSync(join(rig.sb.dir, 'sandbox.json'), 'utf8'));
  const n = (s.nodes as Array<{ name: string; pid?: number }>).find((x) => x.name === node);
  return n?.pid ?? rig.sb.node(node).pid!;
}

async function failoverBlock(rig: Rig, dir: string): Promise<FailoverRun | undefined> {
  const watch = await ezctlHas('emha', 'watch');
  const failover = await ezctlHas('emha', 'failover');
  if (!watch && !failover) {
    say('failover: `ezctl emha failover` / `emha watch` not in this build: skipped');
    return undefined;
  }
  const old = rig.master();
  const candidates = rig.replicas();
  await replicaCaughtUp(rig, old, candidates[0]!);
  let watcher: ChildProcess | undefined;
  let watchLines: Array<{ t: number; line: string }> = [];
  if (watch) {
    watcher = spawn(process.execPath, [EZCTL, '--config', rig.sb.config, '--json', 'emha', 'watch', '--cluster', CLUSTER, '--execute', '--interval', '1s'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true', NO_COLOR: '1' } });
    watchLines = follow(watcher);
    // started (lease taken), then a few looks with the masters alive
    const until = performance.now() + 30_000;
    while (performance.now() < until && !watchLines.some((l) => /"event":\s*"started"|\bstarted\b/.test(l.line)) && watcher.exitCode === null) await sleep(50);
    if (watcher.exitCode !== null) throw new Error(`emha watch exited ${watcher.exitCode}: ${watchLines.map((l) => l.line).join(' / ')}`);
    await sleep(2_500);
  }
  const run = ++runNo;
  const writer = new AppWriter(rig.appEndpoint(), TABLE, { firstId: run * 1_000_000, run, pauseMs: PAUSE_MS });
  writer.start();
  const out: FailoverRun = { how: watch ? 'emha watch --execute' : 'emha failover --execute, run at once after the kill', killed: old, ackedBeforeKill: 0 };
  try {
    await writer.waitForAckOn(rig.sid(old), 10_000);
    await sleep(500);
    const pid = pidOf(rig, old);
    const tKill = performance.now();
    process.kill(pid, 'SIGKILL');
    out.ackedBeforeKill = writer.acks.length;
    let byHand = !watch;
    if (watch && failover) {
      // the watch fails over itself; if it only alerts (a build whose watch cannot call the
      // failover yet), the failover is run by hand once the watch has said the master is dead
      const until = performance.now() + 30_000;
      const said = (re: RegExp) => watchLines.some((l) => l.t > tKill && re.test(l.line));
      while (performance.now() < until && !said(/failover-(started|alert)/) && watcher!.exitCode === null) await sleep(20);
      if (!said(/failover-started/)) {
        byHand = true;
        out.how += ' (it only alerted: `emha failover --execute` run by hand at its alert)';
      }
    }
    if (byHand && failover) {
      const t0 = performance.now();
      const x = await rig.sb.run(['--json', 'emha', 'failover', '--cluster', CLUSTER, '--zone', ZONE, '--execute'], { timeoutMs: 120_000 });
      out.commandMs = performance.now() - t0;
      out.code = x.code;
      writeFileSync(join(dir, 'ezctl-failover.json'), x.stdout);
      writeFileSync(join(dir, 'ezctl-failover.log'), x.stderr);
      if (x.code !== 0) out.note = `exit ${x.code}: ${x.stderr.trim().split('\n').slice(-3).join(' / ')}`;
      try {
        const j = x.json();
        out.reportedLost = j.lost?.gtids ?? j.lost;
      } catch {
        /* not JSON */
      }
    }
    // the new master: whichever replica the writer reaches through the proxy
    const deadline = performance.now() + 60_000;
    while (performance.now() < deadline) {
      const a = writer.acks.find((x) => x.t > tKill && x.server !== rig.sid(old));
      if (a) {
        out.totalMs = a.t - tKill;
        out.newMaster = rig.sb.nodes.find((n) => n.serverId === a.server)?.name;
        break;
      }
      await sleep(20);
    }
    if (watch && watcher) {
      // the failover goes on after the route moved (replicas, topology file, DRC, MHA config):
      // the watch is stopped only once it said the failover ended, never in the middle of it
      const until = performance.now() + 120_000;
      while (performance.now() < until && watcher.exitCode === null && !watchLines.some((l) => l.t > tKill && /failover-(done|failed)/.test(l.line))) await sleep(50);
    }
    if (watch) {
      // the watch's events (one JSON document a line with --json): the first look that saw the
      // master dead, the confirmed death (detection), the failover's end
      const ev = (name: string) => watchLines.find((l) => {
        if (l.t <= tKill) return false;
        try {
          const j = JSON.parse(l.line);
          return j.event === name && (j.zone === undefined || j.zone === ZONE);
        } catch {
          return new RegExp(`\\b${name}\\b(?!-)`).test(l.line);
        }
      });
      const suspected = ev('master-dead-suspected');
      const dead = ev('master-dead');
      const done = ev('failover-done');
      if (suspected) out.firstLookMs = suspected.t - tKill;
      if (dead) out.detectionMs = dead.t - tKill;
      if (done) {
        out.failoverDoneMs = done.t - tKill;
        try {
          const j = JSON.parse(done.line);
          out.commandMs = j.ms;
          out.reportedLost = j.lost?.gtids ?? j.report?.lost?.gtids;
        } catch {
          /* not JSON */
        }
      }
      writeFileSync(join(dir, 'ezctl-watch.log'), watchLines.map((l) => `${(l.t - tKill).toFixed(0)} ms\t${l.line}`).join('\n'));
    }
    await sleep(300);
  } finally {
    await writer.stop();
    if (watcher && watcher.exitCode === null) {
      watcher.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => (watcher!.kill('SIGKILL'), r(undefined)), 30_000);
        watcher!.on('exit', () => (clearTimeout(t), r(undefined)));
      });
    }
  }
  if (out.newMaster) {
    await drcWaitBoth(rig).catch((e) => (out.note = `${out.note ?? ''} ${(e as Error).message}`.trim()));
    out.missingOnNew = await missingOn(rig, out.newMaster, writer.acks.map((a) => a.id));
  }
  return out;
}

// ---------------------------------------------------------------- report

function strip(r: SwitchRun & { writer?: AppWriter }): SwitchRun {
  const { writer: _w, ...rest } = r;
  return rest;
}

function line(r: SwitchRun, i: number): void {
  const w = r.window ? `window ${r.window.windowMs.toFixed(1)} ms${r.window.overlap ? ` (${r.window.overlap} acks on the old master after the new one!)` : ''}` : 'no window (no write on the new master)';
  const rp = r.repointed ? `, proxy ${r.repointed.proxy ? 'ok' : 'NOT moved'}, file ${r.repointed.topology ? 'ok' : 'NOT rewritten'}, DRC ${r.repointed.drc ? 'ok' : 'NOT repointed'}` : '';
  const miss = Number.isNaN(r.missingOnNew) ? '' : `, ${r.missingOnNew} of ${r.acked} acked missing on ${r.to}${r.missingInSh !== undefined ? `, ${r.missingInSh} in sh` : ''}`;
  say(`  ${r.tool} #${i + 1} ${r.from} -> ${r.to}: exit ${r.code}, ${r.commandMs.toFixed(0)} ms, ${w}${miss}${rp}${r.reportedBlockedMs !== undefined ? `, its report: ${r.reportedBlockedMs} ms blocked` : ''}${r.note ? ` (${r.note})` : ''}`);
  if (r.phases) {
    const p = r.phases;
    say(`    from the last write on ${r.from}: stop script began +${p.stopBegin.toFixed(0)} ms, read_only set +${p.readOnlySet.toFixed(0)}, start script began +${p.startBegin.toFixed(0)}, route moved +${p.routeMoved.toFixed(0)}, first write on ${r.to} +${p.firstWrite.toFixed(0)}`);
  }
  if (r.timeline) say(`    its timeline (ms): ${r.timeline}; the job ${r.jobMs ?? '?'} ms of the command's ${r.commandMs.toFixed(0)}`);
  if (r.repointed && !(r.repointed.proxy && r.repointed.topology && r.repointed.drc)) say(`    ${r.repointed.detail}`);
}

export function summary(runs: SwitchRun[]): { n: number; ok: number; windowP50: number; windowP99: number; commandP50: number; commandP99: number; lost: number; overlap: number; repointed: number } {
  const ok = runs.filter((r) => r.code === 0 && r.window);
  const ws = ok.map((r) => r.window!.windowMs);
  const cs = ok.map((r) => r.commandMs);
  return {
    n: runs.length,
    ok: ok.length,
    windowP50: percentile(ws, 0.5),
    windowP99: percentile(ws, 0.99),
    commandP50: percentile(cs, 0.5),
    commandP99: percentile(cs, 0.99),
    lost: runs.reduce((a, r) => a + (Number.isNaN(r.missingOnNew) ? 0 : r.missingOnNew) + (r.missingInSh ?? 0), 0),
    overlap: ok.reduce((a, r) => a + r.window!.overlap, 0),
    repointed: runs.filter((r) => r.repointed && r.repointed.proxy && r.repointed.topology && r.repointed.drc).length,
  };
}

const fmt = (x: number | undefined, unit = 'ms') => (x === undefined || Number.isNaN(x) ? 'n/a' : unit === 's' ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`);

async function main(): Promise<void> {
  say(`EMHA: planned switch and failover in zone ${ZONE}, ezctl against MHA 0.58; ${SWITCHES} switches each; writer pause ${PAUSE_MS} ms; load ${load()}`);
  const tmp = mkdtempSync(join(tmpdir(), 'ezctl-bench-emha-'));
  const sb = await startSandbox({ zones: ['bj', 'sh'], replicas: 1, proxy: true });
  const rig = new Rig(sb);
  let drcPid: number | undefined;
  const results: Record<string, unknown> = {};
  try {
    for (const m of [rig.master('bj'), rig.master('sh')]) {
      const db = await sb.db(m);
      await db.exec('CREATE DATABASE IF NOT EXISTS ezbench');
      await db.exec(`CREATE TABLE ${TABLE} (id BIGINT PRIMARY KEY, run INT NOT NULL, server_id INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))`);
      await db.close();
    }

    // MHA and ezctl take turns, two switches each per round, so that both see the same machine
    // (its load swings by ±30 % within minutes): DRC is stopped for MHA's turn, started for ezctl's
    const missing = mhaMissing();
    let mhaPrep: ReturnType<typeof mhaPrepare> | undefined;
    let checkRepl: ReturnType<typeof mhaCheckRepl> | undefined;
    if (process.env.BENCH_SKIP_MHA) say('MHA: skipped (BENCH_SKIP_MHA)');
    else if (missing) say(`MHA: not run: ${missing}`);
    else {
      mhaPrep = mhaPrepare(rig, join(tmp, 'mha'));
      for (const n of mhaPrep.mha.notes) say(`(MHA: ${n})`);
      checkRepl = mhaCheckRepl(mhaPrep.mha);
      say(`masterha_check_repl with the fixed module and --skip_check_ssh: ${checkRepl.ok ? 'OK' : `exit ${checkRepl.code}`}; ${checkRepl.pastVersionParsing ? 'past the version parsing (it read every server)' : 'it did not get past the version parsing'}; stopped at: ${checkRepl.stoppedAt}`);
    }
    let ezOn = !process.env.BENCH_SKIP_EZCTL && (await ezctlHas('emha', 'switch'));
    if (process.env.BENCH_SKIP_EZCTL) say('ezctl: skipped (BENCH_SKIP_EZCTL)');
    else if (!ezOn) say('ezctl emha switch: not in this build: skipped');
    const mhaRuns: SwitchRun[] = [];
    const ezRuns: SwitchRun[] = [];
    let mhaOn = !!mhaPrep;
    for (let round = 0; round < Math.ceil(SWITCHES / 2) && (mhaOn || ezOn); round++) {
      if (mhaOn) {
        if (drcPid !== undefined) {
          await drcStop(sb, drcPid);
          drcPid = undefined;
        }
        say(`round ${round + 1}: MHA 0.58 online switch (masterha_master_switch --master_state=alive --orig_master_is_new_slave), DRC stopped:`);
        mhaOn = await mhaSwitches(rig, mhaPrep!, 2, mhaRuns);
        await backToGtid(rig);
      }
      if (ezOn) {
        if (drcPid === undefined) {
          drcPid = await drcStart(sb);
          await drcWaitBoth(rig);
        }
        say(`round ${round + 1}: ezctl emha switch --execute, DRC running both ways:`);
        ezOn = await ezctlSwitches(rig, tmp, 2, ezRuns);
      }
    }
    if (drcPid === undefined) drcPid = await drcStart(sb);
    const mha = mhaPrep ? { runs: mhaRuns, checkRepl, notes: mhaPrep.mha.notes } : undefined;
    const ez = ezRuns.length ? ezRuns : undefined;

    let fo: FailoverRun | undefined;
    if (!process.env.BENCH_SKIP_FAILOVER) {
      say(`\nfailover: kill -9 of ${rig.master()} under the writer:`);
      fo = await failoverBlock(rig, tmp);
      if (fo) {
        const f = (x: number | undefined) => (x === undefined ? 'n/a' : `${(x / 1000).toFixed(2)} s`);
        say(`  ${fo.how}: killed ${fo.killed}; first look that saw it dead +${f(fo.firstLookMs)}, confirmed dead +${f(fo.detectionMs)}, failover done +${f(fo.failoverDoneMs)}${fo.commandMs !== undefined ? ` (the failover itself ${f(fo.commandMs)}, exit ${fo.code ?? 0})` : ''}, first write on ${fo.newMaster ?? '(none)'} +${f(fo.totalMs)}`);
        say(`  acknowledged writes missing on the new master: ${fo.missingOnNew ?? 'n/a'} of ${fo.ackedBeforeKill} acked before the kill; GTIDs the failover reported lost: ${JSON.stringify(fo.reportedLost ?? 'n/a')}${fo.note ? ` (${fo.note})` : ''}`);
      }
    }

    // ---- the table
    const m = mha ? summary(mha.runs) : undefined;
    const e = ez ? summary(ez) : undefined;
    const W = [44, 26, 26];
    const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(W[i]!) : c.padStart(W[i]!))).join(' ');
    say(`\nside by side (load ${load()}):`);
    say(row(['', 'ezctl emha', 'MHA 0.58']));
    say(row(['switches (ok / run)', e ? `${e.ok} / ${e.n}` : 'not run', m ? `${m.ok} / ${m.n}` : 'not run']));
    say(row(['write-unavailable window p50 / p99', e ? `${fmt(e.windowP50)} / ${fmt(e.windowP99)}` : 'n/a', m ? `${fmt(m.windowP50)} / ${fmt(m.windowP99)}` : `(earlier: ${MHA_EARLIER.windowMs} ms)`]));
    say(row(['whole command p50 / p99', e ? `${fmt(e.commandP50, 's')} / ${fmt(e.commandP99, 's')}` : 'n/a', m ? `${fmt(m.commandP50, 's')} / ${fmt(m.commandP99, 's')}` : `(earlier: ${MHA_EARLIER.commandMs / 1000} s)`]));
    say(row(['preflight refusals, tried again', e ? String(refusals.length) : 'n/a', m ? '0' : 'n/a']));
    say(row(['acknowledged writes lost', e ? String(e.lost) : 'n/a', m ? String(m.lost) : 'n/a']));
    say(row(['acks on the old master after the new', e ? String(e.overlap) : 'n/a', m ? String(m.overlap) : 'n/a']));
    say(row(['proxy + file + DRC repointed', e ? `${e.repointed} of ${e.n}` : 'n/a', m ? 'proxy only (its script)' : 'n/a']));
    say(row(['failover detection (kill -> dead)', fo?.detectionMs !== undefined ? fmt(fo.detectionMs, 's') : 'n/a', 'needs ssh (10-30 s published)']));
    say(row(['failover total (kill -> first write)', fo?.totalMs !== undefined ? fmt(fo.totalMs, 's') : 'n/a', 'needs ssh']));

    // ---- targets
    const mhaWindow = m && !Number.isNaN(m.windowP50) ? m.windowP50 : MHA_EARLIER.windowMs;
    const mhaWindowP99 = m && !Number.isNaN(m.windowP99) ? m.windowP99 : MHA_EARLIER.windowMs;
    const verdict = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'met' : 'NOT met');
    say('\ntargets:');
    const tWin = e && e.ok ? e.windowP50 <= 2 * mhaWindow && e.windowP99 <= 2 * mhaWindowP99 : undefined;
    say(`  window <= 2x MHA's (p50 ${fmt(e?.windowP50)} vs ${fmt(2 * mhaWindow)}, p99 ${fmt(e?.windowP99)} vs ${fmt(2 * mhaWindowP99)}${m ? '' : '; MHA not run here: its earlier 42 ms'}): ${verdict(tWin)}`);
    const tLost = e && e.ok ? e.lost === 0 && e.ok === e.n : undefined;
    say(`  0 acknowledged writes lost, every switch done: ${verdict(tLost)}`);
    const tRep = e && e.n ? e.repointed === e.n : undefined;
    say(`  DRC and the proxy repointed in the same run, every run: ${verdict(tRep)}`);
    say(`  failover detection <= 5 s: ${verdict(fo?.detectionMs !== undefined ? fo.detectionMs <= 5_000 : undefined)}`);
    say(`  failover total <= 15 s: ${verdict(fo?.totalMs !== undefined ? fo.totalMs <= 15_000 : undefined)}`);
    for (const x of refusals) say(`  ezctl #${x.switchNo} refused first: ${x.why}`);
    Object.assign(results, { mha: mha && { summary: m, runs: mha.runs, checkRepl: mha.checkRepl, notes: mha.notes }, ezctl: ez && { summary: e, runs: ez, refusals }, failover: fo });
    if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(results, null, 2));
    say(`\n(logs of every run in ${tmp}, removed at the end; BENCH_KEEP=1 keeps them)`);
  } finally {
    await drcStop(sb, drcPid);
    await sb.down();
    if (!process.env.BENCH_KEEP) rmSync(tmp, { recursive: true, force: true });
  }
}

// run as a benchmark, not when imported (bench/wan.ts reuses its parts)
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
