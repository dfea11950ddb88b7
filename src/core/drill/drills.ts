// The drills: each a fault, how it is injected (recorded first), held, undone, and what it must show.
import { existsSync } from 'node:fs';
import type { Topology } from '../config/load.js';
import type { Ctx } from '../context.js';
import { DEMO_DATABASE, findServerKit, nodeRunning, readOnlyNow, readState, spawnServer, stopServer, waitReady, writeState, type SandboxNode } from '../sandbox/index.js';
import { DrcClient } from '../drc/client.js';
import { emhaRejoin, emhaSwitch, watch, watchControl, type WatchEvent, type WatchReport } from '../emha/index.js';
import { gzMove, gzSwitch } from '../gz/index.js';
import { cmdlineOf, netApi } from './cleanup.js';
import { readOnlyOf } from './probe.js';
import { quoteTable } from '../db/quote.js';
import type { DrillReport, DrillRun } from './run.js';

export interface DrillDef {
  summary: string;
  /** what it needs of the hosts (absent: it runs against any topology with --allow-non-sandbox) */
  hostAccess?: string;
  conflictRatio?: number;
  defaultZone?: (topo: Topology, cluster: string) => string | undefined;
  /** refusals (exit 4, nothing done) */
  preflight(run: DrillRun): Promise<string[]>;
  run(run: DrillRun): Promise<void>;
  /** after convergence and the ledger: the drill's own invariants */
  verify?(run: DrillRun, report: DrillReport): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The sandbox node (its process) of a topology node, by port. */
function sandboxNode(run: DrillRun, port: number): SandboxNode | undefined {
  return readState(run.dir)?.nodes.find((n) => n.port === port);
}

function pidOf(n: SandboxNode): number | null {
  return n.pid !== null && nodeRunning(n) ? n.pid : null;
}

/** Replicas of the zone the file names (not fenced). */
function replicasOf(topo: Topology, cluster: string, zone: string) {
  return topo.nodes(cluster).filter((n) => n.zone === zone && n.role === 'replica' && !n.fenced);
}

function needsSandboxMaster(run: DrillRun): string[] {
  const m = run.topo().master(run.cluster, run.zone);
  const sn = sandboxNode(run, m.port);
  if (!sn) return [`${m.name} (${m.host}:${m.port}) is not a server of the sandbox in ${run.dir}`];
  if (pidOf(sn) === null) return [`${m.name} does not run (start it: \`ezctl sandbox up\`)`];
  return [];
}

/** emha watch --execute inside the drill, its events kept. */
class InnerWatch {
  events: Array<WatchEvent & { ms: number }> = [];
  private done: Promise<WatchReport | undefined>;
  constructor(private readonly run: DrillRun) {
    this.done = watch(run.fresh(), { cluster: run.cluster, execute: true, intervalMs: 500, timeoutMs: 1000, forMs: run.durationMs + 120_000, antiFlapMs: 0 }, (e) => {
      this.events.push({ ...e, ms: Date.now() });
      if (e.event !== 'started' && e.event !== 'lease-taken') run.mark(`watch ${e.event}`, e.message);
    }).catch((e) => {
      run.note(`emha watch ended on an error: ${(e as Error).message}`);
      return undefined;
    });
  }
  first(event: WatchEvent['event'], zone?: string) {
    return this.events.find((e) => e.event === event && (zone === undefined || e.zone === zone));
  }
  async until(pred: () => unknown, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (pred()) return true;
      await sleep(50);
    }
    return !!pred();
  }
  async stop(): Promise<void> {
    try {
      await watchControl(this.run.fresh(), { cluster: this.run.cluster, cmd: 'stop' });
    } catch {
      /* not answering yet or gone */
    }
    await Promise.race([this.done, sleep(10_000)]);
  }
}

const masterKill: DrillDef = {
  summary: 'kill -9 a zone master; emha watch --execute (run inside the drill) fails over; the old master returns fenced and read_only',
  hostAccess: 'kill -9 of a server process',
  async preflight(run) {
    const p = needsSandboxMaster(run);
    if (!replicasOf(run.topo(), run.cluster, run.zone).length) p.push(`zone ${run.zone} has no replica to fail over to (\`sandbox up --replicas 1\`)`);
    return p;
  },
  async run(run) {
    const w = new InnerWatch(run);
    try {
      if (!(await w.until(() => w.first('started'), 15_000))) throw new Error('emha watch did not start within 15 s');
      const old = run.topo().master(run.cluster, run.zone);
      const sn = sandboxNode(run, old.port)!;
      run.fact('oldMaster', old.name);
      run.fault({ kind: 'servers-down', nodes: [sn.name] });
      const killedAt = Date.now();
      process.kill(pidOf(sn)!, 'SIGKILL');
      run.mark('fault', `kill -9 ${old.name} (pid ${sn.pid})`);
      await w.until(() => w.first('failover-done', run.zone) || w.first('failover-failed', run.zone), Math.max(30_000, run.durationMs));
      const dead = w.first('master-dead', run.zone) ?? w.first('master-dead-suspected', run.zone);
      if (dead) run.detected(dead.ms);
      const done = w.first('failover-done', run.zone);
      if (done) run.recovered(done.ms - killedAt);
      if (done?.lost) run.fact('failoverLost', done.lost);
      run.invariant('failed-over', !!done, done ? `emha watch failed ${run.zone} over in ${done.ms - killedAt} ms (${done.message})` : `no failover of ${run.zone} within ${Math.max(30, run.durationMs / 1000)} s`, w.events.filter((e) => e.zone === run.zone).map((e) => `${e.event}: ${e.message}`).slice(-5));
      await sleep(Math.max(0, killedAt + run.durationMs - Date.now()));
      // the old master comes back: the file fences it, so the sandbox restarts it read_only
      await run.undo({ kind: 'servers-down', nodes: [sn.name] });
      run.mark('undo', `${old.name} restarted`);
      const back = run.topo().nodes(run.cluster).find((n) => n.port === old.port)!;
      const ro = await readOnlyOf(run.fresh(), back, 3000);
      run.invariant('old-master-fenced', ro === true && (!done || !!back.fenced), `${old.name} returned ${ro === null ? 'not answering' : ro ? 'read_only' : 'WRITABLE'}${back.fenced ? ', fenced in the topology file' : ', not fenced in the file'}`);
      // give the watch a look at the returned node (fenced-writable would be repaired, and shown)
      await sleep(1200);
      run.afterWorkload.push(async () => {
        if (!done) return;
        try {
          const r = await emhaRejoin(run.fresh(), { cluster: run.cluster, node: back.name, execute: true });
          run.note(`${back.name} rejoined zone ${run.zone} as a replica of ${r.master} (emha rejoin)`);
        } catch (e) {
          run.note(`${back.name} stays fenced: emha rejoin refused it: ${(e as Error).message}`);
        }
      });
    } finally {
      await w.stop();
    }
  },
};

const masterHang: DrillDef = {
  summary: 'SIGSTOP a zone master past detection, then SIGCONT: the watch calls it unreachable, never fails it over while its replicas see it; never two writable masters',
  hostAccess: 'SIGSTOP/SIGCONT of a server process',
  async preflight(run) {
    return needsSandboxMaster(run);
  },
  async run(run) {
    const w = new InnerWatch(run);
    try {
      if (!(await w.until(() => w.first('started'), 15_000))) throw new Error('emha watch did not start within 15 s');
      const m = run.topo().master(run.cluster, run.zone);
      const sn = sandboxNode(run, m.port)!;
      const pid = pidOf(sn)!;
      const f = { kind: 'sigstop' as const, pid, what: `${m.name} (${m.host}:${m.port})`, cmdline: cmdlineOf(pid) };
      run.fault(f);
      process.kill(pid, 'SIGSTOP');
      const at = Date.now();
      run.mark('fault', `SIGSTOP ${m.name} (pid ${pid})`);
      // held for --duration and past detection: SIGCONT only once the watch has called it
      // unreachable (at most 30 s more; under load a look took longer than a 3 s hold)
      await w.until(() => w.first('master-unreachable', run.zone) || w.first('master-dead-suspected', run.zone), run.durationMs + 30_000);
      const seen = w.first('master-unreachable', run.zone) ?? w.first('master-dead-suspected', run.zone);
      if (seen) run.detected(seen.ms);
      else run.note(`the watch did not call ${m.name} unreachable within ${Math.round((run.durationMs + 30_000) / 1000)} s of the SIGSTOP`);
      await sleep(Math.max(0, at + run.durationMs - Date.now()));
      await run.undo(f);
      const cont = Date.now();
      run.mark('undo', `SIGCONT ${m.name}`);
      let answered = false;
      while (Date.now() - cont < 15_000 && !(answered = (await readOnlyOf(run.fresh(), m, 1000)) !== null)) await sleep(50);
      if (answered) run.recovered(Date.now() - cont);
      const failedOver = w.first('failover-started', run.zone);
      run.fact('failedOver', !!failedOver);
      run.invariant('master-answers-again', answered, answered ? `${m.name} answered ${Date.now() - cont} ms after SIGCONT` : `${m.name} did not answer within 15 s of SIGCONT`);
      run.invariant('hung-master-not-failed-over', !failedOver, failedOver
        ? `the watch failed over a hung master (its replicas lost it: slave_net_timeout passed): ${failedOver.message}`
        : `detected ${seen ? `as ${seen.event} after ${seen.ms - at} ms` : 'by nothing'}; not failed over while its replicas still read from it`);
      await sleep(1000);
    } finally {
      await w.stop();
    }
  },
};

const drcCrash: DrillDef = {
  summary: 'kill -9 the DRC daemon at random points, several times (--kills, default 3), and start it again: it resumes from its checkpoints, nothing lost or applied twice',
  hostAccess: 'kill -9 of the DRC daemon on this host',
  async preflight() {
    return [];
  },
  async run(run) {
    const kills = run.opts.kills ?? 3;
    const slot = run.durationMs / kills;
    let rand = run.opts.seed ?? Date.now();
    const next = () => ((rand = (rand * 1103515245 + 12345) % 2147483648) / 2147483648);
    const recoveries: number[] = [];
    for (let i = 0; i < kills; i++) {
      await sleep(Math.round(slot * (0.2 + 0.6 * next())));
      const client = new DrcClient(run.fresh(), run.topo(), run.cluster);
      const st = await client.daemonStatus();
      if (!st?.pid) throw new Error('the DRC daemon does not answer on this host');
      const f = { kind: 'drc-down' as const, cluster: run.cluster };
      run.fault(f);
      const at = Date.now();
      process.kill(st.pid, 'SIGKILL');
      run.mark('fault', `kill -9 DRC (pid ${st.pid}), ${i + 1} of ${kills}`);
      while (Date.now() - at < 10_000) {
        try {
          process.kill(st.pid, 0);
        } catch {
          break;
        }
        await sleep(20);
      }
      await sleep(Math.round(200 + 300 * next()));
      await run.undo(f);
      run.mark('restarted', `DRC started again ${Date.now() - at} ms after the kill`);
      // recovered: every direction running again and its lag back under a second
      let ok = false;
      while (Date.now() - at < 60_000) {
        const s = await new DrcClient(run.fresh(), run.topo(), run.cluster).daemonStatus().catch(() => null);
        const lag = await new DrcClient(run.fresh(), run.topo(), run.cluster).lag().catch(() => []);
        if (s && s.directions.every((d) => d.state === 'running') && lag.length && lag.every((p) => p.lagMs !== null && p.lagMs < 1000)) {
          ok = true;
          break;
        }
        await sleep(100);
      }
      recoveries.push(Date.now() - at);
      run.mark('recovered', ok ? `DRC running, lag under 1 s, ${Date.now() - at} ms after the kill` : 'DRC not back within 60 s');
      if (!ok) run.invariant('drc-back', false, `after kill ${i + 1}, DRC was not running with lag under 1 s within 60 s`);
    }
    run.recovered(Math.max(...recoveries));
    run.fact('recoveriesMs', recoveries);
    if (!run.opts.seed) run.note('the kill points are random: --seed N repeats them');
  },
};

const switchUnderLoad: DrillDef = {
  summary: 'emha switch to a replica and back, then gz switch (global) or gz move of a shard range (sharding) to another zone and back, under the workload',
  async preflight(run) {
    const p: string[] = [];
    const topo = run.topo();
    if (!replicasOf(topo, run.cluster, run.zone).length) p.push(`zone ${run.zone} has no replica to switch to`);
    if (run.zones.length < 2) p.push('the cluster has one zone: no zone switch');
    return p;
  },
  async run(run) {
    const windows: Array<{ what: string; outcome: string; ms: number | null }> = [];
    const fail: string[] = [];
    const zone = run.zone;
    const first = run.topo().master(run.cluster, zone).name;
    for (const to of [undefined, first]) {
      const t = Date.now();
      const r = await emhaSwitch(run.fresh(), { cluster: run.cluster, zone, execute: true, ...(to ? { to } : {}) });
      const outcome = r.result?.outcome ?? 'refused';
      const refusals = [...(r.assessment?.refusals ?? []), ...(r.result?.refusals ?? [])];
      const names = `${r.outcome?.oldMaster ?? r.assessment?.oldMaster.name ?? '?'} -> ${r.outcome?.newMaster ?? r.assessment?.candidate?.name ?? '?'}`;
      windows.push({ what: `emha switch ${zone}: ${names}`, outcome, ms: r.outcome?.writeBlockedMs ?? null });
      run.mark('emha switch', `${names}: ${outcome} in ${Date.now() - t} ms`);
      if (outcome !== 'done') fail.push(`emha switch of ${zone} (${names}): ${outcome}${r.result?.error ? `: ${r.result.error.message}` : ''}${refusals.length ? `: ${refusals.join('; ')}` : ''}`);
      await sleep(Math.min(2000, run.durationMs / 4));
    }
    const topo = run.topo();
    const cfg = topo.cluster(run.cluster).config;
    const other = run.zones.find((z) => z !== zone)!;
    if (cfg.model === 'global') {
      const writer = cfg.writerZone ?? run.zones[0]!;
      const away = run.zones.find((z) => z !== writer)!;
      for (const to of [away, writer]) {
        const r = await gzSwitch(run.fresh(), { cluster: run.cluster, to, execute: true });
        windows.push({ what: `gz switch -> ${to}`, outcome: r.outcome, ms: r.window?.totalMs ?? null });
        run.mark('gz switch', `-> ${to}: ${r.outcome}${r.window ? ` (window ${r.window.totalMs} ms)` : ''}`);
        if (r.outcome !== 'done') fail.push(`gz switch to ${to}: ${r.outcome}: ${r.message ?? r.refusals.join('; ')}`);
        await sleep(Math.min(2000, run.durationMs / 4));
      }
    } else {
      const own = String(cfg.shards?.zones?.[zone] ?? '').split(',')[0] ?? '';
      const [lo] = own.split('-').map(Number);
      const shards = lo === undefined || Number.isNaN(lo) ? '' : `${lo}-${lo + 1}`;
      if (!shards) fail.push(`zone ${zone} owns no shards in the file`);
      else {
        for (const to of [other, zone]) {
          const r = await gzMove(run.fresh(), { cluster: run.cluster, shards, to, execute: true });
          windows.push({ what: `gz move ${shards} -> ${to}`, outcome: r.outcome, ms: r.window?.totalMs ?? null });
          run.mark('gz move', `${shards} -> ${to}: ${r.outcome}${r.window ? ` (window ${r.window.totalMs} ms)` : ''}`);
          if (r.outcome !== 'done') fail.push(`gz move ${shards} to ${to}: ${r.outcome}: ${r.message ?? r.refusals.join('; ')}`);
          await sleep(Math.min(2000, run.durationMs / 4));
        }
      }
    }
    run.fact('switches', windows);
    const ms = windows.map((w) => w.ms ?? 0);
    if (ms.length) run.recovered(Math.max(...ms));
    run.invariant('switches-done', fail.length === 0, fail.length ? `${fail.length} switch(es) did not end done` : `${windows.length} switches done (longest write-unavailable window ${Math.max(...ms)} ms)`, fail);
  },
};

const zoneLoss: DrillDef = {
  summary: 'stop every server of a zone (kill -9); gz move --force-dead-source gives its shards to another zone; the zone returns; its shards are moved back once DRC has carried its writes over',
  hostAccess: 'kill -9 and restart of a zone\'s servers',
  defaultZone: (topo, cluster) => topo.zonesOf(cluster).at(-1),
  async preflight(run) {
    const p: string[] = [];
    const cfg = run.topo().cluster(run.cluster).config;
    if (cfg.model === 'global' || !cfg.shards) p.push(`cluster ${run.cluster} is not a sharding cluster: zone-loss moves the lost zone's shards`);
    else if (!cfg.shards.zones[run.zone]) p.push(`zone ${run.zone} owns no shards`);
    if (run.zones.length < 2) p.push('the cluster has one zone');
    if (!readState(run.dir)?.nodes.some((n) => n.zone === run.zone)) p.push(`zone ${run.zone} has no servers in the sandbox`);
    return p;
  },
  async run(run) {
    const cfg = run.topo().cluster(run.cluster).config;
    const shards = compactShards(String(cfg.shards!.zones[run.zone]));
    const to = run.zones.find((z) => z !== run.zone)!;
    const nodes = readState(run.dir)!.nodes.filter((n) => n.zone === run.zone && pidOf(n) !== null);
    const f = { kind: 'servers-down' as const, nodes: nodes.map((n) => n.name) };
    run.fault(f);
    const at = Date.now();
    for (const n of nodes) process.kill(n.pid!, 'SIGKILL');
    run.mark('fault', `kill -9 every server of zone ${run.zone}: ${nodes.map((n) => n.name).join(', ')}`);
    const master = run.topo().master(run.cluster, run.zone);
    while (Date.now() - at < 10_000 && (await readOnlyOf(run.fresh(), master, 500)) !== null) await sleep(50);
    run.detected();
    const mv = await gzMove(run.fresh(), { cluster: run.cluster, shards, to, execute: true, forceDeadSource: true });
    run.mark('gz move --force-dead-source', `${shards} -> ${to}: ${mv.outcome}${mv.message ? `: ${mv.message}` : ''}`);
    run.invariant('shards-moved', mv.outcome === 'done', mv.outcome === 'done' ? `shards ${shards} owned by ${to} ${Date.now() - at} ms after the zone was lost` : `gz move --force-dead-source: ${mv.outcome}: ${mv.message ?? mv.refusals.join('; ')}`);
    if (mv.outcome === 'done') run.recovered(Date.now() - at);
    await sleep(Math.max(0, at + run.durationMs - Date.now()));
    await run.undo(f);
    run.mark('undo', `zone ${run.zone} restarted`);
    // the same command again: the returned zone gets the current routing table
    const sync = await gzMove(run.fresh(), { cluster: run.cluster, shards, to, execute: true });
    run.mark('gz move (again)', `${sync.outcome}${sync.message ? `: ${sync.message}` : ''}`);
    // a stray write: a client of the returned zone that does not follow the routing table writes a
    // row of a moved shard there (DRC reports it illegal, carries it over; the zones must agree)
    const stray = await strayWrite(run, shards);
    run.afterWorkload.push(async () => {
      // DRC carries the zone's writes over (it retries until the zone answers), then the shards go home
      const client = new DrcClient(run.fresh(), run.topo(), run.cluster);
      for (const [a, b] of [[run.zone, to], [to, run.zone]] as const) await client.wait(a, b, 60_000).catch((e) => run.note(`drc wait ${a}->${b} before moving back: ${(e as Error).message}`));
      const back = await gzMove(run.fresh(), { cluster: run.cluster, shards, to: run.zone, execute: true });
      run.mark('gz move back', `${shards} -> ${run.zone}: ${back.outcome}${back.message ? `: ${back.message}` : ''}`);
      run.invariant('shards-home', back.outcome === 'done', back.outcome === 'done' ? `shards ${shards} moved back to ${run.zone}` : `moving ${shards} back to ${run.zone}: ${back.outcome}: ${back.message ?? back.refusals.join('; ')}`);
      const st = await client.status().catch(() => null);
      const illegal = st?.directions.reduce((a, d) => a + (d.illegalWrites ?? 0), 0) ?? null;
      run.fact('illegalWrites', illegal);
      if (stray) {
        for (const [a, b] of [[run.zone, to], [to, run.zone]] as const) await client.wait(a, b, 60_000).catch(() => undefined);
        const held: Record<string, string | null> = {};
        for (const zone of run.zones) {
          const db = await run.fresh().connect(run.topo().master(run.cluster, zone));
          try {
            held[zone] = ((await db.value<string | null>(`SELECT description FROM ${quoteTable(DEMO_DATABASE, 'merchants')} WHERE id = ?`, [stray.id])) ?? null) as string | null;
          } finally {
            await db.close();
          }
        }
        const same = Object.values(held).every((v) => v === stray.value);
        run.fact('strayWrite', { ...stray, held });
        run.invariant('stray-write-reconciled', same, same
          ? `the stray write at ${run.zone} to ${DEMO_DATABASE}.merchants id=${stray.id} (shard ${stray.shard}, owned by ${to} then) reached every zone (DRC: illegal, reported${illegal !== null ? `: ${illegal} illegal writes in all` : ''})`
          : `the stray write at ${run.zone} to ${DEMO_DATABASE}.merchants id=${stray.id} is not in every zone (a daemon with --block-illegal keeps it out: \`ezctl check full\` + \`ezctl repair\`)`,
          Object.entries(held).map(([z, v]) => `${z}: ${JSON.stringify(v)}`));
      }
    });
  },
};

/** "32,33,34,40" -> "32-34,40" (a file edited by moves lists shards one by one). */
export function compactShards(spec: string): string {
  const nums = new Set<number>();
  for (const part of spec.split(',').map((x) => x.trim()).filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) return spec;
    for (let i = a; i <= (b === undefined || Number.isNaN(b) ? a : b); i++) nums.add(i);
  }
  const sorted = [...nums].sort((x, y) => x - y);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** One row of a moved shard written at the returned zone's master, as a client not following the routing table would. */
async function strayWrite(run: DrillRun, shards: string): Promise<{ id: number; shard: number; value: string } | undefined> {
  const first = Number(shards.split(/[-,]/)[0]);
  if (Number.isNaN(first)) return undefined;
  try {
    const db = await run.fresh().connect(run.topo().master(run.cluster, run.zone));
    try {
      const id = Number(await db.value(`SELECT id FROM ${quoteTable(DEMO_DATABASE, 'merchants')} WHERE shard_id = ? ORDER BY id LIMIT 1`, [first]));
      if (!id) return undefined;
      const value = `drill zone-loss ${run.t0}: a stray write at ${run.zone}`;
      await db.exec(`UPDATE ${quoteTable(DEMO_DATABASE, 'merchants')} SET description = ? WHERE id = ?`, [value, id]);
      run.mark('stray write', `${DEMO_DATABASE}.merchants id=${id} (shard ${first}) at ${run.zone}`);
      return { id, shard: first, value };
    } finally {
      await db.close();
    }
  } catch (e) {
    run.note(`no stray write: ${(e as Error).message}`);
    return undefined;
  }
}

const FAKETIME_LIBS = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1', '/usr/local/lib/faketime/libfaketime.so.1'];
export const faketimeLib = () => FAKETIME_LIBS.find((p) => existsSync(p));
export const SKEW = '+5s';

const clockSkew: DrillDef = {
  summary: 'restart one zone\'s servers under libfaketime 5 s ahead (conflicting writes in both zones): last-writer-wins still resolves every row the same in both zones; the report says how often the zone ahead won a row it wrote first',
  hostAccess: 'restart of a zone\'s servers under libfaketime (LD_PRELOAD)',
  conflictRatio: 0.2,
  async preflight(run) {
    const p: string[] = [];
    if (!faketimeLib()) p.push('libfaketime is not installed (Debian package faketime: `bash scripts/ensure-drill-peers.sh`)');
    if (run.zones.length < 2) p.push('the cluster has one zone: no conflict to resolve');
    if (run.topo().cluster(run.cluster).config.model === 'global') p.push('a global cluster writes in one zone: no conflicts for last-writer-wins');
    return p;
  },
  async run(run) {
    const lib = faketimeLib()!;
    const st = readState(run.dir)!;
    const nodes = st.nodes.filter((n) => n.zone === run.zone && pidOf(n) !== null);
    const f = { kind: 'faketime' as const, nodes: nodes.map((n) => n.name), offset: SKEW };
    run.fault(f);
    const kit = await findServerKit();
    const t = Date.now();
    for (const n of nodes) {
      await stopServer(n.pid!, n.datadir, { graceMs: 20_000 });
      n.readOnly = readOnlyNow(run.ctx, st, n);
      n.pid = spawnServer(kit, n, { LD_PRELOAD: lib, FAKETIME: SKEW, FAKETIME_DONT_RESET: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' });
      writeState(st);
      await waitReady(n.pid, n);
    }
    run.mark('fault', `${nodes.map((n) => n.name).join(', ')} restarted under libfaketime ${SKEW} (${Date.now() - t} ms)`);
    const at = Date.now();
    const skew = await clockDifference(run);
    run.fact('skewMs', skew);
    run.invariant('clock-skewed', skew !== null && skew > 4000, `zone ${run.zone}'s servers read NOW(3) ${skew ?? '?'} ms ahead of the other zone's`);
    // conflicts of our own, with a known order: each row written first in the zone ahead, then,
    // 500 ms later in real time, in the other zone (the workload's conflicts are rare and unordered)
    run.fact('skewPairs', await conflictPairs(run));
    await sleep(Math.max(0, at + run.durationMs - Date.now()));
    await run.undo(f);
    run.mark('undo', `${nodes.map((n) => n.name).join(', ')} restarted with the real clock`);
  },
  async verify(run, report) {
    const pairs = report.facts.skewPairs as SkewPairs | undefined;
    if (pairs) {
      const other = run.zones.find((z) => z !== run.zone)!;
      const held = new Map<string, Map<number, string | null>>();
      for (const zone of run.zones) {
        const db = await run.fresh().connect(run.topo().master(run.cluster, zone));
        try {
          const rows = await db.query<{ id: number; d: string | null }>(`SELECT id, description AS d FROM ${quoteTable(DEMO_DATABASE, 'merchants')} WHERE id IN (${pairs.ids.map(() => '?').join(',')})`, pairs.ids);
          held.set(zone, new Map(rows.map((r) => [Number(r.id), r.d])));
        } finally {
          await db.close();
        }
      }
      const winnerOf = (d: string | null | undefined) => (d === pairs.tags[run.zone] ? run.zone : d === pairs.tags[other] ? other : '?');
      const differ = pairs.ids.filter((id) => winnerOf(held.get(run.zone)?.get(id)) !== winnerOf(held.get(other)?.get(id)));
      const aheadWon = pairs.ids.filter((id) => winnerOf(held.get(run.zone)?.get(id)) === run.zone).length;
      run.fact('lww', { rows: pairs.ids.length, writtenFirstIn: run.zone, writtenLastIn: other, gapMs: pairs.gapMs, keptTheEarlierWriteOfTheZoneAhead: aheadWon, keptTheLaterWrite: pairs.ids.length - aheadWon - differ.length, differ: differ.length });
      run.invariant('lww-same-everywhere', differ.length === 0, differ.length ? `${differ.length} of ${pairs.ids.length} rows written in both zones hold different writes in ${run.zone} and ${other}` : `each of ${pairs.ids.length} rows written in both zones holds the same write in ${run.zone} and ${other}`, differ.map((id) => `${DEMO_DATABASE}.merchants id=${id}: ${run.zone} has ${JSON.stringify(held.get(run.zone)?.get(id))}, ${other} has ${JSON.stringify(held.get(other)?.get(id))}`));
      run.note(`clock skew and last-writer-wins: ${pairs.ids.length} rows were written in ${run.zone} (clock ${SKEW}) and ${pairs.gapMs} ms later in ${other}; both zones kept ${run.zone}'s earlier write for ${aheadWon} of them. A zone ahead stamps drc_ts ahead, so its writes beat the other zone's for as long as the skew: the zones still agree (every zone compares the same stamps), but "last" is the clocks' order, not the real one.`);
    }
    const c = report.conflicts;
    if (c) run.invariant('workload-conflicts-same-everywhere', c.sameEverywhere === c.total, `${c.sameEverywhere} of ${c.total} rows the workload wrote in both zones hold the same write in every zone (${c.lastWriterWon} the one acknowledged last)`);
  },
};

interface SkewPairs { ids: number[]; tags: Record<string, string>; gapMs: number }

async function conflictPairs(run: DrillRun): Promise<SkewPairs> {
  const topo = run.topo();
  const other = run.zones.find((z) => z !== run.zone)!;
  const tags = { [run.zone]: `drill clock-skew ${run.t0}: written in ${run.zone} first`, [other]: `drill clock-skew ${run.t0}: written in ${other} last` };
  const gapMs = 500;
  const write = async (zone: string, ids: number[]) => {
    const db = await run.fresh().connect(topo.master(run.cluster, zone));
    try {
      await db.exec(`UPDATE ${quoteTable(DEMO_DATABASE, 'merchants')} SET description = ? WHERE id IN (${ids.map(() => '?').join(',')})`, [tags[zone]!, ...ids]);
    } finally {
      await db.close();
    }
  };
  const db = await run.fresh().connect(topo.master(run.cluster, run.zone));
  let ids: number[];
  try {
    ids = (await db.query<{ id: number }>(`SELECT id FROM ${quoteTable(DEMO_DATABASE, 'merchants')} ORDER BY id LIMIT 10`)).map((r) => Number(r.id));
  } finally {
    await db.close();
  }
  // DRC paused both ways meanwhile: a conflict is two writes neither zone saw the other make. With
  // DRC running, the first write reached the other zone within the 500 ms (measured: 10 of 10),
  // and the second one was an update of it, not a conflict: it won everywhere, rightly
  const drc = new DrcClient(run.fresh(), topo, run.cluster);
  await drc.pause();
  try {
    await write(run.zone, ids);
    await sleep(gapMs);
    await write(other, ids);
  } finally {
    await drc.resume();
  }
  run.mark('conflicts', `${ids.length} merchants rows written in ${run.zone}, then ${gapMs} ms later in ${other}, DRC paused meanwhile`);
  return { ids, tags, gapMs };
}

/** How far the drill zone's master clock is ahead of another zone's (ms). */
async function clockDifference(run: DrillRun): Promise<number | null> {
  const topo = run.topo();
  const other = run.zones.find((z) => z !== run.zone);
  if (!other) return null;
  const read = async (zone: string) => {
    const db = await run.fresh().connect(topo.master(run.cluster, zone));
    try {
      const t = Date.now();
      const v = Number(await db.value('SELECT UNIX_TIMESTAMP(NOW(3)) * 1000'));
      return v - (t + Date.now()) / 2;
    } finally {
      await db.close();
    }
  };
  try {
    return Math.round((await read(run.zone)) - (await read(other)));
  } catch {
    return null;
  }
}

const partition: DrillDef = {
  summary: 'cut the link between two zones (`sandbox net`) for --duration, heal: each zone keeps serving its shards, DRC catches up, zones converge (needs `sandbox up --wan-latency`)',
  hostAccess: 'the sandbox\'s WAN relays',
  async preflight(run) {
    if (run.zones.length < 2) return ['the cluster has one zone'];
    if (!(await netApi().netStatus(run.dir)).length) return [`the sandbox in ${run.dir} has no relays between zones to cut: make it with \`sandbox up --wan-latency 30ms\` (0ms: relays without delay)`];
    return [];
  },
  async run(run) {
    const net = netApi();
    const other = run.zones.find((z) => z !== run.zone)!;
    const f = { kind: 'partition' as const, a: run.zone, b: other };
    run.fault(f);
    const at = Date.now();
    await net.partition(run.dir, run.zone, other);
    run.mark('fault', `link ${run.zone}<->${other} cut`);
    // the daemon's own measure (its control socket, on this host): reading the heartbeat rows at the
    // zone masters would go across the cut link itself and wait for nothing
    const pairLag = async () => {
      const st = await Promise.race([new DrcClient(run.fresh(), run.topo(), run.cluster).daemonStatus(), sleep(2000).then(() => null)]).catch(() => null);
      return (st?.directions ?? []).filter((d) => (d.from === run.zone && d.to === other) || (d.from === other && d.to === run.zone)).map((d) => ({ lagMs: d.state === 'running' ? d.lagMs : null }));
    };
    while (Date.now() - at < run.durationMs) {
      if ((await pairLag()).some((p) => p.lagMs === null || p.lagMs > 1000)) {
        run.detected();
        break;
      }
      await sleep(250);
    }
    await sleep(Math.max(0, at + run.durationMs - Date.now()));
    await run.undo(f);
    const healed = Date.now();
    run.mark('undo', `link ${run.zone}<->${other} healed`);
    while (Date.now() - healed < 60_000) {
      const l = await pairLag();
      if (l.length === 2 && l.every((p) => p.lagMs !== null && p.lagMs < 1000)) {
        run.recovered(Date.now() - healed);
        break;
      }
      await sleep(100);
    }
  },
};

export const DRILLS: Record<string, DrillDef> = {
  'master-kill': masterKill,
  'master-hang': masterHang,
  'drc-crash': drcCrash,
  'switch-under-load': switchUnderLoad,
  'zone-loss': zoneLoss,
  'clock-skew': clockSkew,
  partition,
};

export type { Ctx };
