// ezctl drill NAME: a named fault against a running topology under the reference workload.
// preflight (a sandbox, else only the faults that need no host access) -> leftovers of an earlier
// drill reverted -> the workload started with its ack log (the ledger) -> samplers (DRC lag, the
// writable nodes of every zone) -> the fault injected (recorded first in the drill state file),
// held, undone -> the workload stopped -> `drc wait` every direction -> `check full` -> the ledger
// against every zone's rows -> a report with a pass/fail per invariant (exit 1 with the evidence
// when one breaks).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Ctx } from '../context.js';
import { loadTopology, type ResolvedNode, type Topology } from '../config/load.js';
import { badInput, refused, runtimeError } from '../exit.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { readState, sandboxWorkload, DEMO_DATABASE, type SandboxState, type WorkloadReport } from '../sandbox/index.js';
import { DrcClient } from '../drc/client.js';
import { checkFull } from '../dcp/index.js';
import { clearDrillState, readDrillState, writeDrillState, sameFault, type DrillState, type Fault } from './state.js';
import { undoFault, cleanupLeftovers, describeFault, type CleanupReport } from './cleanup.js';
import { onInterrupt } from '../signals.js';
import { conflictOutcomes, expectations, lostWrites, readAckLog, tokenOfEmail, type ConflictOutcome, type LedgerFinding, type ZoneRows } from './ledger.js';
import { DRILLS, type DrillDef } from './drills.js';
import { readOnlyOf } from './probe.js';
export { readOnlyOf };

export interface DrillOptions {
  name: string;
  cluster?: string;
  durationMs: number;
  /** the zone the fault hits (default: the drill's choice, the first zone) */
  zone?: string;
  /** the workload's transactions per second, per zone */
  tps: number;
  allowNonSandbox: boolean;
  /** drc-crash: how many times the daemon is killed */
  kills?: number;
  seed?: number;
  /** the bound of `drc wait` after the fault is undone */
  convergeTimeoutMs?: number;
}

export interface Invariant { name: string; pass: boolean; detail: string; evidence?: string[] }

export interface DrillReport {
  drill: string;
  cluster: string;
  zone: string | null;
  sandbox: string | null;
  startedAt: string;
  ms: number;
  durationMs: number;
  /** what was found left by an earlier drill and reverted first */
  leftovers: CleanupReport['reverted'];
  timeline: Array<{ atMs: number; event: string; detail?: string }>;
  /** from the fault to the moment something noticed it (null: nothing is expected to notice) */
  detectMs: number | null;
  /** from the fault (or its undo, as the drill says) to service as before */
  recoverMs: number | null;
  writes: {
    acknowledged: number;
    lost: number;
    appliedTwice: number;
    unknown: number;
    errors: number;
    retries: number;
    /** the longest stretch without a commit, per traffic zone (ms) */
    windowMs: Record<string, number>;
    evidence: string[];
  };
  /** the largest of every direction's lag (ms): before the fault, its peak while the drill ran, after convergence */
  drcLag: { beforeMs: number | null; peakMs: number | null; afterMs: number | null; byDirection: Record<string, { peakMs: number | null; afterMs: number | null }> };
  check: { consistent: boolean; differences: number; tables: Array<{ table: string; missing: number; changed: number; keys: string[] }>; ms: number } | null;
  conflicts: { total: number; sameEverywhere: number; lastWriterWon: number; examples: ConflictOutcome[] } | null;
  invariants: Invariant[];
  /** facts the drill measured (per drill) */
  facts: Record<string, unknown>;
  notes: string[];
  passed: boolean;
}

/** What a drill's code gets: the topology as it is now, the fault log, the clock, the findings. */
export interface DrillRun {
  ctx: Ctx;
  cluster: string;
  zone: string;
  zones: string[];
  dir: string;
  sandbox: SandboxState | undefined;
  durationMs: number;
  opts: DrillOptions;
  t0: number;
  /** the topology file as it is now (a failover or a move edits it) */
  topo(): Topology;
  /** a context reading the file as it is now */
  fresh(): Ctx;
  mark(event: string, detail?: string): void;
  /** record a fault in the drill state file before it is injected */
  fault(f: Fault): void;
  /** undo a recorded fault and take it off the file */
  undo(f: Fault): Promise<void>;
  detected(atMs?: number): void;
  recovered(ms: number): void;
  invariant(name: string, pass: boolean, detail: string, evidence?: string[]): void;
  fact(key: string, value: unknown): void;
  note(text: string): void;
  sleep(ms: number): Promise<void>;
  /** the workload's conflict ratio this drill wants (clock-skew: conflicts to resolve) */
  conflictRatio: number;
  /** steps that run once the workload is stopped, before the convergence checks (a drill puts its topology back) */
  afterWorkload: Array<() => Promise<void>>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function drillNames(): string[] {
  return Object.keys(DRILLS);
}

export function freshCtx(ctx: Ctx, path: string): Ctx {
  return { ...ctx, topology: () => Promise.resolve(loadTopology(path)) };
}

export async function runDrill(ctx: Ctx, o: DrillOptions): Promise<DrillReport> {
  const def: DrillDef | undefined = DRILLS[o.name];
  if (!def) throw badInput(`no drill named ${JSON.stringify(o.name)}`, { hint: `drills: ${drillNames().join(', ')} (\`ezctl drill list\`)` });
  const topo0 = await ctx.topology();
  const path = topo0.path;
  const cluster = topo0.cluster(o.cluster).name;
  const zones = topo0.zonesOf(cluster);
  const zone = o.zone ?? def.defaultZone?.(topo0, cluster) ?? zones[0]!;
  if (!zones.includes(zone)) throw badInput(`--zone ${zone} is not a zone of cluster ${cluster}`, { hint: `zones: ${zones.join(', ')}` });
  const dir = topo0.dir;
  const sandbox = readState(dir);
  if (!sandbox && !o.allowNonSandbox) {
    throw refused(`cluster ${cluster} (${path}) is not a sandbox: a drill kills, stops and restarts servers`, { hint: 'run drills against `ezctl sandbox up`; --allow-non-sandbox offers only the drills that need no access to the hosts (switch-under-load)' });
  }
  if (!sandbox && def.hostAccess) {
    throw refused(`drill ${o.name} needs access to the hosts (${def.hostAccess}), and ${path} is not a sandbox`, { hint: `with --allow-non-sandbox only these run: ${Object.entries(DRILLS).filter(([, d]) => !d.hostAccess).map(([n]) => n).join(', ')}` });
  }
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  const report: DrillReport = {
    drill: o.name, cluster, zone, sandbox: sandbox ? dir : null, startedAt, ms: 0, durationMs: o.durationMs, leftovers: [], timeline: [],
    detectMs: null, recoverMs: null,
    writes: { acknowledged: 0, lost: 0, appliedTwice: 0, unknown: 0, errors: 0, retries: 0, windowMs: {}, evidence: [] },
    drcLag: { beforeMs: null, peakMs: null, afterMs: null, byDirection: {} },
    check: null, conflicts: null, invariants: [], facts: {}, notes: [], passed: false,
  };
  // leftovers of a drill killed mid-fault: reverted before anything else
  if (sandbox) {
    const left = await cleanupLeftovers(ctx, dir);
    report.leftovers = left.reverted;
    if (left.failed.length) throw refused(`a drill left faults that could not be reverted in ${dir}`, { details: left.failed, hint: 'see `ezctl drill cleanup`' });
  }
  const topo = () => loadTopology(path);
  const fresh = () => freshCtx(ctx, path);
  const mark = (event: string, detail?: string) => {
    report.timeline.push({ atMs: Date.now() - t0, event, ...(detail ? { detail } : {}) });
    ctx.log.info(`drill ${o.name}: ${event}${detail ? `: ${detail}` : ''}`);
  };
  const state: DrillState = { drill: o.name, cluster, pid: process.pid, startedAt, faults: [] };
  let faultAt: number | null = null;
  // Ctrl-C (or SIGTERM) mid-fault: every fault recorded is undone before the exit (130). Registered
  // again with each fault, so that it runs first (the newest cleanup runs first): the workload's and
  // the watch's own cleanups wait for servers that answer again only once the fault is undone
  // (measured: SIGINT during master-hang took 17 s to exit, the master SIGSTOPped until the end)
  const undoAll = async () => {
    for (const f of [...state.faults].reverse()) {
      try {
        await run.undo(f);
        ctx.log.info(`drill ${o.name}: interrupted: undone: ${describeFault(f)}`);
      } catch (e) {
        ctx.log.warn(`drill ${o.name}: interrupted: could not undo ${describeFault(f)}: ${(e as Error).message} (\`ezctl drill cleanup\`)`);
      }
    }
    if (!state.faults.length) clearDrillState(dir);
  };
  let offUndo = () => {};
  const run: DrillRun = {
    ctx, cluster, zone, zones, dir, sandbox, durationMs: o.durationMs, opts: o, t0, topo, fresh, mark,
    fault(f) {
      state.faults.push(f);
      writeDrillState(dir, state);
      offUndo();
      offUndo = onInterrupt(undoAll);
      faultAt ??= Date.now();
    },
    async undo(f) {
      await undoFault(fresh(), dir, f);
      state.faults = state.faults.filter((x) => !sameFault(x, f));
      writeDrillState(dir, state);
    },
    detected(at = Date.now()) {
      if (report.detectMs === null && faultAt !== null) report.detectMs = at - faultAt;
    },
    recovered(ms) {
      report.recoverMs = ms;
    },
    invariant(name, pass, detail, evidence) {
      report.invariants.push({ name, pass, detail, ...(evidence?.length ? { evidence } : {}) });
    },
    fact(key, value) {
      report.facts[key] = value;
    },
    note(text) {
      report.notes.push(text);
    },
    sleep,
    conflictRatio: def.conflictRatio ?? 0,
    afterWorkload: [],
  };
  // drill-specific refusals (exit 4, nothing done)
  const problems = await def.preflight(run);
  problems.push(...(await demoSchemaProblems(ctx, topo0, cluster)));
  const drc = new DrcClient(ctx, topo0, cluster);
  if (!(await drc.daemonHere())) problems.push(`DRC of cluster ${cluster} does not run on this host: the drill waits for it to converge (\`ezctl drc start --detach\`)`);
  if (problems.length) throw refused(`drill ${o.name} refused`, { details: problems });

  // in the sandbox folder when there is one: a drill killed -9 leaves it there, and `sandbox down` removes it
  const scratch = mkdtempSync(join(sandbox ? dir : tmpdir(), sandbox ? 'drill-' : 'ezctl-drill-'));
  const ackLog = join(scratch, 'acks.jsonl');
  const lagPeak: Record<string, number> = {};
  const twoWritable: string[] = [];
  const stopSampling = new AbortController();
  let workload: Promise<WorkloadReport> | undefined;
  const stopWorkload = new AbortController();
  const offInterrupt = onInterrupt(async () => {
    stopSampling.abort();
    await undoAll();
    rmSync(scratch, { recursive: true, force: true });
  });
  try {
    report.drcLag.beforeMs = await maxLag(fresh(), path, cluster, report.drcLag.byDirection, 'before');
    mark('workload', `${o.tps} tx/s per zone, ack log ${ackLog}`);
    workload = sandboxWorkload(fresh(), {
      tps: o.tps, durationMs: 3_600_000, progressMs: 0, conflictRatio: run.conflictRatio, database: DEMO_DATABASE, cluster,
      ackLog, signal: stopWorkload.signal, maxWaitMs: Math.max(30_000, o.durationMs * 2), ...(o.seed !== undefined ? { seed: o.seed } : {}),
    });
    workload.catch(() => undefined);
    const samplers = [
      sampleLag(fresh, path, cluster, lagPeak, stopSampling.signal),
      sampleWritable(fresh, path, cluster, twoWritable, stopSampling.signal),
    ];
    // the workload writing in every zone (its start connects and reads each zone: a fault before
    // that ends it, seen under load), then a second of writes before the fault: the baseline
    const warm = await Promise.race([writingEverywhere(ackLog, zones, 30_000), workload.then(() => false)]);
    if (!warm) throw runtimeError(`the workload did not write in every zone (${zones.join(', ')}) within 30 s: no baseline, no fault injected`, { hint: 'run `ezctl sandbox workload --seconds 5s` to see why' });
    await Promise.race([sleep(1000), workload]);
    writeDrillState(dir, state);
    await def.run(run);
    mark('fault undone');
    await sleep(500);
    stopWorkload.abort();
    const wr = await workload;
    mark('workload stopped', `${wr.zones.reduce((a, z) => a + z.transactions, 0)} acknowledged`);
    stopSampling.abort();
    await Promise.all(samplers);
    for (const step of run.afterWorkload.splice(0)) await step();
    // every fault undone (a drill that failed half-way left some: undone here)
    for (const f of [...state.faults].reverse()) await run.undo(f);
    clearDrillState(dir);
    report.writes.acknowledged = wr.zones.reduce((a, z) => a + z.transactions, 0);
    report.writes.unknown = wr.zones.reduce((a, z) => a + z.unknown, 0);
    report.writes.errors = wr.zones.reduce((a, z) => a + z.errors, 0);
    report.writes.retries = wr.zones.reduce((a, z) => a + z.retries, 0);
    for (const z of wr.zones) report.writes.windowMs[z.zone] = z.window.ms;
    for (const z of wr.zones) if (z.errors) report.notes.push(`workload ${z.zone}: ${z.errors} write(s) failed (${Object.entries(z.errorsByKind).map(([k, n]) => `${k} ${n}`).join(', ')}): not acknowledged, so not in the ledger`);

    // converge: DRC applies everything in every direction
    const t1 = Date.now();
    const waitProblems: string[] = [];
    const client = new DrcClient(fresh(), topo(), cluster);
    for (const from of zones) for (const to of zones) {
      if (from === to) continue;
      try {
        await client.wait(from, to, o.convergeTimeoutMs ?? 60_000);
      } catch (e) {
        waitProblems.push(`${from}->${to}: ${(e as Error).message}`);
      }
    }
    mark('drc wait', waitProblems.length ? waitProblems.join('; ') : `every direction applied (${Date.now() - t1} ms)`);
    run.invariant('drc-converged', waitProblems.length === 0, waitProblems.length ? 'DRC did not apply everything after the fault was undone' : `every direction applied everything within ${Date.now() - t1} ms of the undo`, waitProblems);
    report.drcLag.afterMs = await maxLag(fresh(), path, cluster, report.drcLag.byDirection, 'after');
    const peaks = Object.values(lagPeak);
    report.drcLag.peakMs = peaks.length ? Math.max(...peaks, report.drcLag.beforeMs ?? 0) : report.drcLag.beforeMs;
    for (const [d, v] of Object.entries(lagPeak)) (report.drcLag.byDirection[d] ??= { peakMs: null, afterMs: null }).peakMs = v;

    run.invariant('one-writable-master', twoWritable.length === 0, twoWritable.length ? 'a zone had two writable nodes at once' : 'never two writable nodes in a zone (sampled every 250 ms)', twoWritable.slice(0, 10));

    // check full of the workload's schema
    const tc = Date.now();
    const cr = await checkFull(fresh(), { cluster, tables: `${DEMO_DATABASE}.*`, rechecks: 3 });
    const tables = cr.tables.filter((t) => t.missing || t.changed).map((t) => ({ table: t.table, missing: t.missing, changed: t.changed, keys: t.diffs.slice(0, 5).map((d) => JSON.stringify(d.key)) }));
    report.check = { consistent: cr.consistent, differences: tables.reduce((a, t) => a + t.missing + t.changed, 0), tables, ms: Date.now() - tc };
    mark('check full', cr.consistent ? `consistent (${cr.rows} rows, ${report.check.ms} ms)` : `${report.check.differences} differences`);
    run.invariant('zones-consistent', cr.consistent, cr.consistent ? `check full: ${cr.rows} rows identical in ${cr.zones.join(', ')}` : `check full found ${report.check.differences} differing rows`, tables.flatMap((t) => t.keys.map((k) => `${t.table} ${k}`)));

    // the ledger
    const acks = readAckLog(ackLog);
    // a write stays unseen by the other zone for as long as DRC lags: writes of two zones that close are conflicts
    const expected = expectations(acks, { conflictMs: Math.max(1000, (report.drcLag.peakMs ?? 0) + 500) });
    const rows = await zoneRows(fresh(), topo(), cluster, [...expected.keys()]);
    const lost = lostWrites(expected, rows);
    const twice = await appliedTwice(fresh(), topo(), cluster, acks.filter((a) => a.op === 'insert').map((a) => a.token));
    report.writes.lost = new Set(lost.map((l) => l.key)).size;
    report.writes.appliedTwice = twice.length;
    report.writes.evidence = [...lost.slice(0, 10).map(showFinding), ...twice.slice(0, 10)];
    // the zones' positions: what a lost or doubled write is to be looked for in (`emha rejoin` and the binlogs name GTIDs)
    const positions = await masterPositions(fresh(), topo(), cluster);
    run.fact('positions', positions);
    const at = Object.entries(positions).map(([z, p]) => `${z} master ${p.node} @@gtid_binlog_pos ${p.gtidBinlogPos}`);
    run.invariant('no-lost-writes', lost.length === 0, lost.length ? `${report.writes.lost} acknowledged write(s) not in every zone` : `every one of ${acks.length} acknowledged writes is in every zone`, lost.length ? [...lost.slice(0, 10).map(showFinding), ...at] : []);
    run.invariant('no-write-applied-twice', twice.length === 0, twice.length ? `${twice.length} insert(s) applied more than once` : 'no acknowledged insert is in more than one row', twice.length ? [...twice.slice(0, 10), ...at] : []);
    if (!cr.consistent) report.invariants.find((i) => i.name === 'zones-consistent')!.evidence?.push(...at);
    const conflicts = conflictOutcomes(expected, rows);
    if (conflicts.length) {
      report.conflicts = { total: conflicts.length, sameEverywhere: conflicts.filter((c) => c.sameEverywhere).length, lastWriterWon: conflicts.filter((c) => c.lastWriterWon).length, examples: conflicts.filter((c) => !c.lastWriterWon).slice(0, 5) };
    }
    await def.verify?.(run, report);
  } finally {
    offInterrupt();
    offUndo();
    stopWorkload.abort();
    stopSampling.abort();
    await workload?.catch(() => undefined);
    // a drill that threw half-way: its faults undone now, the file cleared only when all were
    for (const f of [...state.faults].reverse()) {
      try {
        await run.undo(f);
      } catch (e) {
        ctx.log.warn(`drill ${o.name}: could not undo ${f.kind}: ${(e as Error).message} (left in ${dir}/drill-state.json: \`ezctl drill cleanup\`)`);
      }
    }
    if (state.faults.length === 0 && readDrillState(dir)?.pid === process.pid) clearDrillState(dir);
    // a drill that failed half-way still puts the topology back (zone-loss's shards home, master-kill's rejoin)
    for (const step of run.afterWorkload.splice(0)) {
      try {
        await step();
      } catch (e) {
        ctx.log.warn(`drill ${o.name}: could not put the topology back: ${(e as Error).message}`);
      }
    }
    rmSync(scratch, { recursive: true, force: true });
  }
  report.ms = Date.now() - t0;
  report.passed = report.invariants.every((i) => i.pass);
  return report;
}

/** Until the ack log has a write of every zone's traffic (true), or timeoutMs (false). */
async function writingEverywhere(ackLog: string, zones: string[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const seen = new Set(readAckLog(ackLog).map((a) => a.from));
    if (zones.every((z) => seen.has(z))) return true;
    await sleep(100);
  }
  return false;
}

/** Each zone master's GTID position (after convergence). */
async function masterPositions(ctx: Ctx, topo: Topology, cluster: string): Promise<Record<string, { node: string; gtidBinlogPos: string }>> {
  const out: Record<string, { node: string; gtidBinlogPos: string }> = {};
  for (const zone of topo.zonesOf(cluster)) {
    const m = topo.master(cluster, zone);
    try {
      const db = await ctx.connect(m);
      try {
        out[zone] = { node: m.name, gtidBinlogPos: String((await db.value('SELECT @@global.gtid_binlog_pos')) ?? '') };
      } finally {
        await db.close();
      }
    } catch (e) {
      out[zone] = { node: m.name, gtidBinlogPos: `(unreadable: ${(e as Error).message})` };
    }
  }
  return out;
}

/** The workload writes the demo schema (`sandbox load`): every zone master must have it. */
async function demoSchemaProblems(ctx: Ctx, topo: Topology, cluster: string): Promise<string[]> {
  const out: string[] = [];
  for (const zone of topo.zonesOf(cluster)) {
    const m = topo.master(cluster, zone);
    try {
      const db = await ctx.connect(m);
      try {
        const n = Number(await db.value('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?, ?)', [DEMO_DATABASE, 'orders', 'users', 'merchants']));
        if (n < 3) out.push(`zone ${zone}: ${m.name} has no ${DEMO_DATABASE} schema for the workload (\`ezctl sandbox load\`)`);
      } finally {
        await db.close();
      }
    } catch (e) {
      out.push(`zone ${zone}: ${m.name} does not answer: ${(e as Error).message}`);
    }
  }
  return out;
}

function showFinding(l: LedgerFinding): string {
  return `${l.key} at ${l.zone}: expected ${l.expected}, found ${l.found} (acknowledged by ${l.landed} at ${l.at})`;
}

/** The largest lag of every direction now (and per direction into `by`). */
async function maxLag(ctx: Ctx, path: string, cluster: string, by: DrillReport['drcLag']['byDirection'], which: 'before' | 'after'): Promise<number | null> {
  try {
    const pairs = await new DrcClient(ctx, loadTopology(path), cluster).lag();
    let max: number | null = null;
    for (const p of pairs) {
      if (which === 'after') (by[`${p.from}->${p.to}`] ??= { peakMs: null, afterMs: null }).afterMs = p.lagMs;
      if (p.lagMs !== null) max = Math.max(max ?? 0, p.lagMs);
    }
    return max;
  } catch {
    return null;
  }
}

async function sampleLag(fresh: () => Ctx, path: string, cluster: string, peak: Record<string, number>, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const pairs = await Promise.race([new DrcClient(fresh(), loadTopology(path), cluster).lag(), sleep(2000).then(() => [])]);
      for (const p of pairs) if (p.lagMs !== null) peak[`${p.from}->${p.to}`] = Math.max(peak[`${p.from}->${p.to}`] ?? 0, p.lagMs);
    } catch {
      /* a master down: that direction's lag shows once it answers */
    }
    await sleep(500);
  }
}

/** Every 250 ms, each node's read_only: two writable nodes of one zone at once is a finding. */
async function sampleWritable(fresh: () => Ctx, path: string, cluster: string, found: string[], signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const topo = loadTopology(path);
      const ctx = fresh();
      const nodes = topo.nodes(cluster);
      const ro = await Promise.all(nodes.map((n) => readOnlyOf(ctx, n, 800)));
      for (const zone of topo.zonesOf(cluster)) {
        const writable = nodes.filter((n, i) => n.zone === zone && ro[i] === false);
        if (writable.length > 1) found.push(`${new Date().toISOString()} zone ${zone}: ${writable.map((n) => `${n.name} (${n.host}:${n.port})${n.fenced ? ' fenced' : ''}`).join(' and ')} writable (read_only=0)`);
      }
    } catch {
      /* the file mid-edit: next look */
    }
    await sleep(250);
  }
}

/** Each zone master's view of the rows the ledger names: their token, or null when absent. */
async function zoneRows(ctx: Ctx, topo: Topology, cluster: string, keys: string[]): Promise<Map<string, ZoneRows>> {
  const byTable = new Map<string, number[]>();
  for (const k of keys) {
    const [table, id] = k.split('#');
    const list = byTable.get(table!) ?? [];
    list.push(Number(id));
    byTable.set(table!, list);
  }
  const out = new Map<string, ZoneRows>();
  for (const zone of topo.zonesOf(cluster)) {
    const rows: ZoneRows = new Map();
    const db = await ctx.connect(topo.master(cluster, zone));
    try {
      for (const [table, ids] of byTable) {
        const [schema, name] = table.split('.') as [string, string];
        const col = name === 'users' ? 'email' : 'note';
        for (let i = 0; i < ids.length; i += 500) {
          const part = ids.slice(i, i + 500);
          const got = await db.query<{ id: number | string; v: string | null }>(`SELECT id, ${quoteId(col)} AS v FROM ${quoteTable(schema, name)} WHERE id IN (${part.map(() => '?').join(',')})`, part);
          const seen = new Map(got.map((r) => [Number(r.id), r.v === null ? '' : String(r.v)]));
          for (const id of part) {
            const v = seen.get(id);
            rows.set(`${table}#${id}`, v === undefined ? null : col === 'email' ? tokenOfEmail(v) : v);
          }
        }
      }
    } finally {
      await db.close();
    }
    out.set(zone, rows);
  }
  return out;
}

/** Inserted tokens found in more than one row of a zone: an insert committed twice. */
async function appliedTwice(ctx: Ctx, topo: Topology, cluster: string, tokens: string[]): Promise<string[]> {
  const out: string[] = [];
  if (!tokens.length) return out;
  for (const zone of topo.zonesOf(cluster)) {
    const db = await ctx.connect(topo.master(cluster, zone));
    try {
      for (let i = 0; i < tokens.length; i += 500) {
        const part = tokens.slice(i, i + 500);
        const got = await db.query<{ note: string; n: number | string; ids: string }>(`SELECT note, COUNT(*) AS n, GROUP_CONCAT(id) AS ids FROM ${quoteTable(DEMO_DATABASE, 'orders')} WHERE note IN (${part.map(() => '?').join(',')}) GROUP BY note HAVING COUNT(*) > 1`, part);
        for (const r of got) out.push(`${zone}: insert ${r.note} is in ${r.n} rows of ${DEMO_DATABASE}.orders (ids ${r.ids})`);
      }
    } finally {
      await db.close();
    }
  }
  return out;
}

export type { DrillState };
