// `ezctl emha switch`: the planned, online master switch of one zone, as orchestrator's
// graceful-master-takeover and MHA's online switch do it. Preflight refusals all at once (exit 4,
// nothing touched); then a journaled job (steps/engine.ts) under the cluster's lease:
//   block-writes -> final-position -> catch-up -> promote (point of no return) -> move-proxy ->
//   topology-drc -> demote-old-master -> repoint-replicas -> mha-config
// A failure before the point of no return rolls back to the old master writable; after it the job
// is resumed forward (`--resume JOB`). The application cannot write from the block until the proxy
// has moved: the steps in between are only the catch-up wait and the promotion.
//
// The journal and the lease live outside the switching zone (another zone's master): the old master
// is blocked during the switch, so writes there would wait behind our own block. A one-zone cluster
// has no such server: they live on the candidate, written with sql_log_bin=0 (never replicated, no
// GTID of its own that its master would lack), and the candidate is where `--resume` finds them.
import type { Ctx } from '../context.js';
import type { Topology, ResolvedNode } from '../config/load.js';
import type { Db } from '../db/connect.js';
import { replState, errantGtids, replicatesFrom, waitApplied, dbFlavor, type NodeReplState } from '../db/replication.js';
import { blockWrites, prepareBlock, runningWrites, listSessions, isClient, classifySession, sessionInfo, type SessionInfo, type WriteBlock } from '../db/write-block.js';
import { routingTarget, type RoutingTarget } from '../proxy/index.js';
import { readJob, type Plan, type Step, type StepsResult } from '../steps/engine.js';
import { acquirePlanJob, runPlanUnderJob } from '../steps/under-job.js';
import { MariaDbJournal } from '../steps/mariadb-journal.js';
import { hookRunner, hooksFromTopology } from '../steps/hooks.js';
import { leaseRows, here } from '../job/job.js';
import { liveness, describeHolder, overlaps, CLUSTER_TARGET } from '../job/lease.js';
import { DrcClient, type PipelineStatus } from '../drc/client.js';
import { badInput, refused, runtimeError } from '../exit.js';
import { formatDuration } from '../throttle/duration.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { globalWriteZone, writeRouteZones, describeWriteZone, type GlobalWriteZone } from './global.js';
import { quoteTable } from '../db/quote.js';
import {
  promoteStep, takeoverSteps, withNode, nodeAt, freshTopology, refOf, addrOf, sameAddr, mhaDirOf, repointUnder, NodeConnections,
  type NodeRef, type TakeoverParams,
} from './takeover.js';

export const SWITCH_KIND = 'emha-switch';

export interface SwitchOptions {
  cluster?: string;
  zone: string;
  /** the candidate by name; default: the zone's best replica */
  to?: string;
  execute?: boolean;
  maxLagMs?: number;
  runningUpdatesLimitMs?: number;
  lockWaitMs?: number;
  graceMs?: number;
  /** the bound of the catch-up wait (the candidate applying the old master's final position) */
  timeoutMs?: number;
  mhaDir?: string;
  leaseMs?: number;
}

export const SWITCH_DEFAULTS = { maxLagMs: 1000, runningUpdatesLimitMs: 10_000, lockWaitMs: 3000, graceMs: 1000, timeoutMs: 10_000 };

/** What the journal keeps (no secrets): the plan is rebuilt from it on --resume / --rollback. */
export interface SwitchParams extends TakeoverParams {
  oldMaster: NodeRef;
  /** the old master's read_only when planned: a rollback after a crash puts it back */
  oldMasterReadOnly: boolean;
  lockWaitMs: number;
  graceMs: number;
  timeoutMs: number;
  /** where the journal and the lease are */
  state: NodeRef & { zone: string; noBinlog: boolean };
}

export interface CandidateView {
  name: string;
  address: string;
  /** why it cannot take over (empty: it can) */
  problems: string[];
  lagSeconds: number | null;
  errant: string[];
  chosen: boolean;
}

export interface SwitchAssessment {
  cluster: string;
  zone: string;
  oldMaster: { name: string; address: string; readOnly: boolean; gtidBinlogPos: string; domainId: number | null };
  candidate: { name: string; address: string } | null;
  candidates: CandidateView[];
  replicas: string[];
  proxy: { label: string; up: boolean; write: string | null; problems: string[] } | null;
  /** every proxy the switch touches: the zone's own first, then (a global cluster's write zone) every other zone's */
  proxies: ProxyView[];
  /** a global cluster's write zone (null: a sharding cluster) */
  global: GlobalWriteZone | null;
  drc: Array<{ direction: string; state: string; lagMs: number | null; lastError: string | null }>;
  drcDaemonHere: boolean;
  runningWrites: SessionInfo[];
  leases: string[];
  state: { node: string; address: string; zone: string; noBinlog: boolean };
  mhaConfig: string | null;
  refusals: string[];
}

export interface ProxyView {
  zone: string;
  label: string;
  up: boolean;
  /** where it routes writes now */
  write: string | null;
  /** where it must route writes for the switch to go on */
  expectedWrite: string;
  /** the switch moves its write route to the new master (else only the zone's read pool) */
  movesWrite: boolean;
  problems: string[];
}

export interface SwitchReport {
  mode: 'plan' | 'run' | 'resume' | 'rollback';
  cluster: string;
  zone: string;
  jobId: string | null;
  assessment: SwitchAssessment | null;
  steps: Array<{ name: string; does: string; sql?: string[]; pointOfNoReturn?: boolean; timeoutMs?: number }>;
  result: StepsResult | null;
  /** from the journal, after a run */
  outcome: {
    oldMaster: string;
    newMaster: string;
    finalPosition: string | null;
    blockMechanism: string | null;
    blockTookMs: number | null;
    /** blockWrites called -> proxy's write route moved (the application's write-unavailable window, an upper bound) */
    writeBlockedMs: number | null;
    killedDuringGrace: SessionInfo[];
    killedOnDemotion: SessionInfo[];
    drc: string | null;
    files: string[];
    mha: string | null;
    proxy: string | null;
  } | null;
}

// ---------------------------------------------------------------- assessment (nothing changed)

export interface NodeFacts {
  node: ResolvedNode;
  state?: NodeReplState;
  error?: string;
}

async function facts(ctx: Ctx, n: ResolvedNode): Promise<NodeFacts> {
  try {
    const db = await ctx.connect(n);
    try {
      return { node: n, state: await replState(db) };
    } finally {
      await db.close().catch(() => undefined);
    }
  } catch (e) {
    return { node: n, error: (e as Error).message };
  }
}

export function candidateProblems(f: NodeFacts, master: NodeFacts, maxLagMs: number): { problems: string[]; errant: string[] } {
  const name = f.node.name;
  if (!f.state) return { problems: [`${name} cannot be reached: ${f.error}`], errant: [] };
  const s = f.state;
  const m = master.state!;
  const out: string[] = [];
  if (f.node.fenced) out.push(`${name} is fenced in the topology file (an old master): rejoin it first (ezctl emha rejoin)`);
  const r = s.replica;
  if (!r) out.push(`${name} replicates from nobody`);
  else if (!replicatesFrom(s, master.node)) {
    const from = `${r.sourceHost}:${r.sourcePort}`;
    if (from !== addrOf(master.node) && !sameAddr({ host: r.sourceHost, port: r.sourcePort }, master.node)) out.push(`${name} replicates from ${from}, not from the master ${master.node.name} (${addrOf(master.node)})`);
    else out.push(`${name}'s replication is broken: IO ${r.ioState}, SQL ${r.sqlState}${r.lastIoError ? `; IO error: ${r.lastIoError}` : ''}${r.lastSqlError ? `; SQL error: ${r.lastSqlError}` : ''}`);
  } else if (r.lagSeconds === null) out.push(`${name} reports no lag (Seconds_Behind_Master NULL)`);
  else if (r.lagSeconds * 1000 > maxLagMs) out.push(`${name} lags ${r.lagSeconds} s behind the master, more than --max-lag ${formatDuration(maxLagMs)}`);
  if (s.delaySeconds > 0) out.push(`${name} is a delayed replica (MASTER_DELAY ${s.delaySeconds} s)`);
  const errant = errantGtids(s, m);
  if (!errant.empty) out.push(`${name} has ${errant.count} errant GTID${errant.count === 1n ? '' : 's'} (transactions the master never had): ${errant.text.join(', ')}; remove them (or rebuild the replica) first`);
  if (s.domainId !== m.domainId) out.push(`${name}'s gtid_domain_id is ${s.domainId}, the master's ${m.domainId}: as master its writes would carry another domain (DRC would take them for another zone's); set gtid_domain_id = ${m.domainId} in its config`);
  if (!s.logBin) out.push(`${name} has no binary log (log_bin OFF): DRC and the other replicas read the new master's binlog`);
  if (!s.logSlaveUpdates) out.push(`${name} does not log what it replicates (log_slave_updates OFF): the zone's other replicas and DRC would miss the old master's writes`);
  if (s.binlogFormat.toUpperCase() !== 'ROW') out.push(`${name}'s binlog_format is ${s.binlogFormat}, not ROW (DRC reads row events)`);
  return { problems: out, errant: errant.text };
}

interface Assessed {
  a: SwitchAssessment;
  params: SwitchParams | null;
  topo: Topology;
  cluster: string;
}

export async function assessSwitch(ctx: Ctx, o: SwitchOptions): Promise<Assessed> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster).name;
  const zones = topo.zonesOf(cluster);
  if (!zones.includes(o.zone)) throw badInput(`zone ${JSON.stringify(o.zone)} is not in cluster ${cluster}`, { hint: `zones: ${zones.join(', ')}` });
  const maxLagMs = o.maxLagMs ?? SWITCH_DEFAULTS.maxLagMs;
  const limitMs = o.runningUpdatesLimitMs ?? SWITCH_DEFAULTS.runningUpdatesLimitMs;
  const zoneNodes = topo.nodes(cluster).filter((n) => n.zone === o.zone);
  const masterNode = zoneNodes.find((n) => n.role === 'master')!;
  const replicaNodes = zoneNodes.filter((n) => n.role === 'replica');
  if (o.to !== undefined && !replicaNodes.some((n) => n.name === o.to)) {
    throw badInput(`--to ${o.to} is not a replica of ${cluster}/${o.zone}`, { hint: `its replicas: ${replicaNodes.map((n) => n.name).join(', ') || '(none)'}` });
  }
  const refusals: string[] = [];
  // the replicas first, then the master: under writes, a master read before its replicas looks
  // behind them, and what they have would be taken for errant transactions
  const reps = await Promise.all(replicaNodes.map((n) => facts(ctx, n)));
  const master = await facts(ctx, masterNode);
  if (!master!.state) {
    throw refused(`the master ${masterNode.name} (${addrOf(masterNode)}) cannot be reached: ${master!.error}`, {
      hint: 'a switch needs the old master alive; a dead master is `ezctl emha failover`\'s',
    });
  }
  const m = master!.state;
  const views: CandidateView[] = reps.map((f) => {
    const c = candidateProblems(f, master!, maxLagMs);
    return { name: f.node.name, address: addrOf(f.node), problems: c.problems, lagSeconds: f.state?.replica?.lagSeconds ?? null, errant: c.errant, chosen: false };
  });
  let chosen: CandidateView | undefined;
  if (o.to !== undefined) chosen = views.find((v) => v.name === o.to);
  else chosen = views.filter((v) => !v.problems.length).sort((x, y) => (x.lagSeconds ?? 0) - (y.lagSeconds ?? 0))[0];
  if (!replicaNodes.length) refusals.push(`${cluster}/${o.zone} has no replica to switch to`);
  else if (!chosen) refusals.push(`no replica of ${cluster}/${o.zone} can take over: ${views.map((v) => v.problems.join('; ')).join('; ')}`);
  else {
    chosen.chosen = true;
    refusals.push(...chosen.problems);
  }
  if (m.readOnly) refusals.push(`the master ${masterNode.name} is read_only already: nothing writes there to switch (set it writable, or fix the topology file)`);

  // long-running writes on the master
  const mdb = await ctx.connect(masterNode);
  let writes: SessionInfo[] = [];
  try {
    writes = await runningWrites(mdb, limitMs / 1000);
  } finally {
    await mdb.close().catch(() => undefined);
  }
  for (const w of writes) refusals.push(`a write transaction on ${masterNode.name} has run for ${w.timeS} s, more than --running-updates-limit ${formatDuration(limitMs)}: session ${w.id} ${w.user}@${w.host}${w.rowsModified !== undefined ? `, ${w.rowsModified} rows modified` : ''}${w.info ? `: ${w.info.slice(0, 200)}` : ''} (let it finish, or end it)`);

  // leases: another job on the cluster, in any zone
  const leases: string[] = [];
  for (const z of zones) {
    const db = await ctx.connect(topo.master(cluster, z)).catch(() => undefined);
    if (!db) continue;
    try {
      const rows = await leaseRows(db, z, cluster).catch(() => []);
      // a monitor's lease (emha watch) excludes only another monitor: the watch is not in a switch's way
      for (const r of rows.filter((x) => overlaps(x.target, [CLUSTER_TARGET]))) {
        const l = liveness(r, here());
        leases.push(`zone ${z}: ${describeHolder(r)}, ${l.live ? `lease left ${formatDuration(l.leftMs)}` : `dead: ${l.why}`})`);
        refusals.push(`another job holds the cluster: zone ${z}: ${describeHolder(r)}, ${l.live ? `lease left ${formatDuration(l.leftMs)}` : `dead: ${l.why}; resume or abort it first`})`);
      }
    } finally {
      await db.close().catch(() => undefined);
    }
  }

  // the proxies: the zone's own, and in a global cluster's write zone every zone's (each routes
  // its writes to the write zone's master, and the switch moves them all)
  const g = await globalWriteZone(ctx, topo, cluster);
  const routeZones = writeRouteZones(topo, cluster, o.zone, g);
  if (g?.state === 'blocked') refusals.push(`the routing table (v${g.version}) is blocked: a gz switch is between its block and its flip, or died there (finish it first: rerunning that \`ezctl gz switch\` resumes it)`);
  const proxies: ProxyView[] = [];
  let proxy: SwitchAssessment['proxy'] = null;
  for (const z of [o.zone, ...routeZones.filter((x) => x !== o.zone)]) {
    const target = routingTarget(topo, cluster, z);
    if (!target) continue;
    const h = await target.health().catch((e: Error) => ({ up: false, problems: [e.message], write: null, read: [], fenced: [], version: null }));
    const moves = routeZones.includes(z);
    // where its writes must go now: the old master when it follows it; else (a global cluster's
    // other zone) the write zone's master
    const expected = moves ? masterNode : topo.master(cluster, g!.writeZone);
    const view: ProxyView = { zone: z, label: target.label, up: h.up, write: h.write?.name ?? null, expectedWrite: expected.name, movesWrite: moves, problems: h.problems };
    proxies.push(view);
    if (z === o.zone) proxy = { label: view.label, up: view.up, write: view.write, problems: view.problems };
    if (!h.up) refusals.push(`${target.label} is down: ${h.problems.join('; ') || 'no answer'} (the switch moves its ${moves ? 'write route' : 'read pool'})`);
    else if (!h.write || !sameAddr(h.write, expected)) {
      const why = !g
        ? `not to the master ${masterNode.name} the topology file names`
        : moves
          ? `not to the master ${masterNode.name} of the ${describeWriteZone(g)}: in a global cluster every zone's proxy writes there, and the switch moves them all`
          : `not to the master ${expected.name} (${addrOf(expected)}) of the ${describeWriteZone(g)}: in a global cluster zone ${z}'s proxy writes there (this switch moves only its read pool)`;
      refusals.push(`${target.label} routes writes to ${h.write ? `${h.write.name} (${addrOf(h.write)})` : 'nowhere'}, ${why}: fix the proxy or the file first`);
    } else if (h.problems.length) refusals.push(`${target.label}: ${h.problems.join('; ')}`);
  }

  // DRC: a direction stopped on an error is shown, and refused (a switch would hide it)
  const drcClient = new DrcClient(ctx, topo, cluster);
  const drcDaemonHere = await drcClient.daemonHere().catch(() => false);
  const drc: SwitchAssessment['drc'] = [];
  if (zones.length > 1) {
    const st = await drcClient.status().catch(() => null);
    for (const d of (st?.directions ?? []) as PipelineStatus[]) {
      if (d.from !== o.zone && d.to !== o.zone) continue;
      drc.push({ direction: `${d.from}->${d.to}`, state: d.state, lagMs: d.lagMs, lastError: d.lastError });
      if (d.state === 'error') refusals.push(`DRC ${d.from}->${d.to} is stopped on an error: ${d.lastError ?? d.stoppedOn?.reason ?? 'unknown'} (fix it first: a switch would hide it)`);
    }
  }

  // where the journal and the lease live: another zone's master, else the candidate (unreplicated)
  const other = zones.find((z) => z !== o.zone);
  const candNode = chosen ? replicaNodes.find((n) => n.name === chosen!.name)! : undefined;
  const stateNode = other ? topo.master(cluster, other) : candNode ?? masterNode;
  const state = { ...refOf(stateNode), zone: stateNode.zone, noBinlog: !other };

  const mhaDir = mhaDirOf(topo, o.mhaDir);
  const { existsSync } = await import('node:fs');
  const mhaFile = `${mhaDir}/${cluster}-${o.zone}.cnf`;
  const a: SwitchAssessment = {
    cluster,
    zone: o.zone,
    oldMaster: { name: masterNode.name, address: addrOf(masterNode), readOnly: m.readOnly, gtidBinlogPos: m.gtidBinlogPos, domainId: m.domainId },
    candidate: chosen ? { name: chosen.name, address: chosen.address } : null,
    candidates: views,
    replicas: replicaNodes.filter((n) => n.name !== chosen?.name).map((n) => n.name),
    proxy,
    proxies,
    global: g,
    drc,
    drcDaemonHere,
    runningWrites: writes,
    leases,
    state: { node: stateNode.name, address: addrOf(stateNode), zone: stateNode.zone, noBinlog: state.noBinlog },
    mhaConfig: existsSync(mhaFile) ? mhaFile : null,
    refusals,
  };
  let params: SwitchParams | null = null;
  if (candNode) {
    const others = replicaNodes.filter((n) => n.name !== candNode.name).map(refOf);
    const p: SwitchParams = {
      cluster,
      zone: o.zone,
      topologyPath: topo.path,
      newMaster: refOf(candNode),
      oldMaster: refOf(masterNode),
      oldMasterReadOnly: m.readOnly,
      replicas: others,
      readPool: [...others, refOf(masterNode)],
      lockWaitMs: o.lockWaitMs ?? SWITCH_DEFAULTS.lockWaitMs,
      graceMs: o.graceMs ?? SWITCH_DEFAULTS.graceMs,
      timeoutMs: o.timeoutMs ?? SWITCH_DEFAULTS.timeoutMs,
      state,
      writeRouteZones: routeZones,
    };
    if (g) p.writeZone = g.writeZone;
    if (o.mhaDir !== undefined) p.mhaDir = o.mhaDir;
    params = p;
  }
  return { a, params, topo, cluster };
}

// ---------------------------------------------------------------- the plan

/** The switch's steps; `live` carries the write block between steps of one run (gone after a crash). */
export function switchPlan(ctx: Ctx, p: SwitchParams, refusals: string[] = [], conns?: NodeConnections): Plan<SwitchParams> {
  const live: { block?: WriteBlock; finalPosition?: string; targets?: Map<string, RoutingTarget | null> } = {};
  const oldEp = async () => ctx.endpoint(nodeAt(freshTopology(p.topologyPath), p.cluster, p.zone, p.oldMaster));

  const block: Step<SwitchParams> = {
    name: 'block-writes',
    timeoutMs: p.lockWaitMs + 10_000,
    describe: () => ({ does: `block every write on the old master ${p.oldMaster.name} (${addrOf(p.oldMaster)}), privileged sessions included; writers still holding it back after --grace ${formatDuration(p.graceMs)} are killed; given up past --lock-wait ${formatDuration(p.lockWaitMs)}` }),
    async do(sc) {
      const o: Parameters<typeof blockWrites>[1] = { lockWaitMs: p.lockWaitMs, graceMs: p.graceMs, signal: sc.signal, log: sc.log };
      const ep = await oldEp();
      // open now what the steps up to the proxy's move use: not inside the write-blocked window
      // (the block's own two sessions too: prepareBlock opens them, block() only blocks)
      if (conns) await Promise.all([conns.get(p.oldMaster), conns.get(p.newMaster).then(dbFlavor)]);
      const t = freshTopology(p.topologyPath);
      live.targets = new Map([p.zone, ...(p.writeRouteZones ?? [])].map((z) => [z, routingTarget(t, p.cluster, z) ?? null]));
      const prepared = await prepareBlock(ep, o);
      sc.waitingFor(`the write block on ${p.oldMaster.name}`);
      const calledAt = Date.now();
      live.block = await prepared.block();
      return { mechanism: live.block.mechanism, tookMs: live.block.tookMs, killed: live.block.killed, readOnlyBefore: live.block.readOnlyBefore, blockCalledAtMs: calledAt, blockedAtMs: Date.now() };
    },
    async undo() {
      if (live.block) {
        await live.block.release({ restoreReadOnly: true });
        live.block = undefined;
        return;
      }
      // after a crash the holder's connection is gone (its lock with it); read_only is what stays
      await withNode(ctx, p, p.oldMaster, (db) => db.exec('SET GLOBAL read_only = ?', [p.oldMasterReadOnly ? 1 : 0]));
    },
  };

  const finalPos: Step<SwitchParams> = {
    name: 'final-position',
    changesNothing: true,
    describe: () => ({ does: `record the old master's final GTID position (@@gtid_binlog_pos with every write blocked); kill the transactions waiting behind the block with their writes done (not in that position: they must not commit there if this process dies)`, sql: ['SELECT @@global.gtid_binlog_pos'] }),
    async do() {
      if (!live.block) throw runtimeError(`the write block on ${p.oldMaster.name} is no longer held`, { hint: 'its session was killed or lost; run the switch again' });
      // finalPosition() reads it on the holder session, refused when that session is not holding
      live.finalPosition = await live.block.finalPosition();
      // a transaction waiting behind the block with its writes done is not in the final position;
      // if ezctl died, the block would go with it and that transaction commit on the old master
      // (an admin session such as DRC's applier passes read_only): a write the new master never
      // has. Killed now (rolled back; the application or DRC retries it on the new master).
      const killed = await withNode(ctx, p, p.oldMaster, async (db) => {
        // listSessions leaves out the asking session; the block's own two are not waiting
        const ours = new Set([live.block!.holderId]);
        const { rows } = await listSessions(db);
        const waiting = rows.filter((r) => isClient(r, ours) && classifySession(r, ours) === 'waiting' && ((r.trxRowsModified ?? 0) > 0 || (r.trxRowsLocked ?? 0) > 0));
        for (const r of waiting) await db.exec(`KILL CONNECTION ${Number(r.id)}`).catch(() => undefined);
        return waiting.map(sessionInfo);
      }, conns);
      return { finalPosition: live.finalPosition, killedWaiting: killed };
    },
  };

  const catchUp: Step<SwitchParams> = {
    name: 'catch-up',
    changesNothing: true,
    timeoutMs: p.timeoutMs + 5000,
    waitsFor: `${p.newMaster.name} to apply the old master's final position`,
    describe: () => ({ does: `wait, at most --timeout ${formatDuration(p.timeoutMs)}, until ${p.newMaster.name} has applied the final position` }),
    async do(sc) {
      const pos = live.finalPosition;
      if (pos === undefined) throw runtimeError('no final position recorded in this run');
      const r = await withNode(ctx, p, p.newMaster, (db) =>
        waitApplied(db, pos, { timeoutMs: p.timeoutMs, signal: sc.signal, onProgress: (behind, at) => sc.waitingFor(`${p.newMaster.name}: ${behind} transaction${behind === 1n ? '' : 's'} behind ${pos} (at ${at})`) }),
      conns);
      if (!r.reached) throw refused(`${p.newMaster.name} did not apply the final position ${pos} within ${formatDuration(p.timeoutMs)} (at ${r.at})`, { hint: 'see its replication (SHOW SLAVE STATUS); raise --timeout' });
      // nothing the candidate has beyond it either (an errant write since the preflight)
      return { reachedMs: r.waitedMs, at: r.at };
    },
  };

  const demote: Step<SwitchParams> = {
    name: 'demote-old-master',
    describe: () => ({ does: `kill the old master ${p.oldMaster.name}'s client sessions (what waits behind the block must not commit there), lift its block with read_only left ON, make it a replica of ${p.newMaster.name}` }),
    async do(sc) {
      // our kept connection to the old master would be one of the client sessions killed here
      await conns?.drop(p.oldMaster);
      let b = live.block;
      if (!b || !(await b.held())) {
        // resumed after a crash: the old block went with its holder; block again to kill what is there
        b = await blockWrites(await oldEp(), { lockWaitMs: p.lockWaitMs, graceMs: 0, signal: sc.signal, log: sc.log });
      }
      const killed = await b.killClients();
      await b.release({ restoreReadOnly: false });
      live.block = undefined;
      // a write that reached the old master after its final position (only after a crash: the
      // block went with its holder, and an admin session such as DRC's applier passes read_only)
      // would be lost or conflict under the new master: named, never replicated over
      const errant = await withNode(ctx, p, p.oldMaster, async (odb) => {
        const o = await replState(odb);
        const n = await withNode(ctx, p, p.newMaster, (ndb) => replState(ndb));
        return errantGtids(o, n);
      });
      if (!errant.empty) {
        throw runtimeError(`the old master ${p.oldMaster.name} has ${errant.count} transaction${errant.count === 1n ? '' : 's'} the new master ${p.newMaster.name} lacks: ${errant.text.join(', ')}`, {
          hint: `it stays read_only and out of the routes; reconcile those rows (ezctl check), then make it a replica of ${p.newMaster.name} (ezctl emha rejoin) and resume the job`,
        });
      }
      await repointUnder(ctx, p, p.oldMaster, sc);
      return { killed };
    },
    async check() {
      return withNode(ctx, p, p.oldMaster, async (db) => {
        const s = await replState(db);
        return s.readOnly && replicatesFrom(s, p.newMaster);
      });
    },
  };

  return {
    kind: SWITCH_KIND,
    params: p,
    cluster: p.cluster,
    async preflight() {
      return refusals;
    },
    steps: [block, finalPos, catchUp, promoteStep<SwitchParams>(ctx, p, conns), ...takeoverSteps<SwitchParams>(ctx, p, { beforeReplicas: [demote], routeTarget: (z) => live.targets?.get(z) })],
  };
}

// ---------------------------------------------------------------- running it

async function stateConnect(ctx: Ctx, p: SwitchParams): Promise<{ ctx: Ctx; node: ResolvedNode }> {
  const topo = freshTopology(p.topologyPath);
  const node = topo.nodes(p.cluster).find((n) => sameAddr(n, p.state));
  if (!node) throw runtimeError(`the server holding the job's journal (${p.state.name}, ${addrOf(p.state)}) is not in ${topo.path}`);
  if (!p.state.noBinlog) return { ctx, node };
  // a one-zone cluster: the journal and lease on the candidate, never in its binlog
  const wrapped: Ctx = {
    ...ctx,
    async connect(n) {
      const db = await ctx.connect(n);
      await db.exec('SET SESSION sql_log_bin = 0');
      return db;
    },
  };
  return { ctx: wrapped, node };
}

async function drive(ctx: Ctx, p: SwitchParams, mode: 'run' | 'resume' | 'rollback', refusals: string[], jobId: string | undefined, leaseMs: number | undefined): Promise<{ result: StepsResult; jobId: string; journalDb: Db; journal: MariaDbJournal }> {
  const st = await stateConnect(ctx, p);
  const job = await acquirePlanJob(st.ctx, { cluster: p.cluster, kind: SWITCH_KIND, node: st.node, mode, runPhase: 'switch', ...(jobId !== undefined ? { jobId } : {}), ...(leaseMs !== undefined ? { leaseMs } : {}), refusals });
  const journalDb = await st.ctx.connect(st.node);
  const journal = await MariaDbJournal.open(journalDb);
  const topo = freshTopology(p.topologyPath);
  const hooks = hookRunner(hooksFromTopology(topo.file, topo.dir, p.cluster));
  const conns = new NodeConnections(ctx, p);
  const plan = switchPlan(ctx, p, refusals, conns);
  let result: StepsResult;
  try {
    result = await runPlanUnderJob(job, plan, mode, { journal, hooks, log: (m: string) => ctx.log.info(m) });
  } catch (e) {
    await journalDb.close().catch(() => undefined);
    throw e;
  } finally {
    await conns.closeAll();
  }
  return { result, jobId: job.id, journalDb, journal };
}

function stepList(plan: Plan<SwitchParams>): SwitchReport['steps'] {
  return plan.steps.map((s) => {
    const d = s.describe();
    const e: SwitchReport['steps'][number] = { name: s.name, does: d.does };
    if (d.sql) e.sql = d.sql;
    if (s.pointOfNoReturn) e.pointOfNoReturn = true;
    if (s.timeoutMs) e.timeoutMs = s.timeoutMs;
    return e;
  });
}

async function outcomeOf(journal: MariaDbJournal, jobId: string, p: SwitchParams): Promise<SwitchReport['outcome']> {
  const j = await readJob(journal, jobId);
  if (!j) return null;
  const done = new Map<string, Record<string, unknown>>();
  for (const e of j.events) if (e.state === 'done') done.set(e.step, { ...(done.get(e.step) ?? {}), ...e.detail });
  const b = done.get('block-writes');
  const r = done.get('move-proxy');
  const t = done.get('topology-drc');
  const files: string[] = [];
  if (t?.fileChanged) files.push(String(t.file));
  const mha = done.get('mha-config')?.mha;
  if (typeof mha === 'string' && mha.includes(': ') && !mha.startsWith('none')) files.push(mha.split(': ')[0]!);
  const blockedAt = typeof b?.blockCalledAtMs === 'number' ? b.blockCalledAtMs : null;
  const movedAt = typeof r?.writeMovedAtMs === 'number' ? r.writeMovedAtMs : null;
  return {
    oldMaster: p.oldMaster.name,
    newMaster: p.newMaster.name,
    finalPosition: (done.get('final-position')?.finalPosition as string | undefined) ?? null,
    blockMechanism: (b?.mechanism as string | undefined) ?? null,
    blockTookMs: (b?.tookMs as number | undefined) ?? null,
    writeBlockedMs: blockedAt !== null && movedAt !== null ? movedAt - blockedAt : null,
    killedDuringGrace: [...((b?.killed as SessionInfo[] | undefined) ?? []), ...((done.get('final-position')?.killedWaiting as SessionInfo[] | undefined) ?? [])],
    killedOnDemotion: (done.get('demote-old-master')?.killed as SessionInfo[] | undefined) ?? [],
    drc: (t?.drc as string | undefined) ?? null,
    files,
    mha: (mha as string | undefined) ?? null,
    proxy: (r?.proxy as string | undefined) ?? null,
  };
}

/** `emha switch`: the plan (no --execute), or the switch itself. */
export async function emhaSwitch(ctx: Ctx, o: SwitchOptions): Promise<SwitchReport> {
  const { a, params } = await assessSwitch(ctx, o);
  const report: SwitchReport = { mode: o.execute ? 'run' : 'plan', cluster: a.cluster, zone: a.zone, jobId: null, assessment: a, steps: [], result: null, outcome: null };
  if (params) report.steps = stepList(switchPlan(ctx, params));
  if (!o.execute || !params) return report;
  if (a.refusals.length) return report; // the caller refuses (exit 4), nothing touched
  const d = await drive(ctx, params, 'run', a.refusals, undefined, o.leaseMs);
  report.jobId = d.jobId;
  report.result = d.result;
  try {
    report.outcome = await outcomeOf(d.journal, d.jobId, params);
  } finally {
    await d.journalDb.close().catch(() => undefined);
  }
  return report;
}

/** Find the job's journal: another zone's master, or (a one-zone cluster) a node of the zone. */
async function findJob(ctx: Ctx, topo: Topology, cluster: string, jobId: string): Promise<SwitchParams> {
  const tried: string[] = [];
  for (const n of topo.nodes(cluster)) {
    const db = await ctx.connect(n).catch(() => undefined);
    if (!db) {
      tried.push(`${n.name} (unreachable)`);
      continue;
    }
    try {
      const row = await db
        .value<string | null>(`SELECT detail FROM ${quoteTable(STATE_SCHEMA, 'job_steps')} WHERE job_id = ? AND seq = 1`, [jobId])
        .catch(() => null);
      if (row) {
        const j = await readJob(await MariaDbJournal.open(db), jobId);
        if (j && j.header.kind === SWITCH_KIND) return j.header.params as SwitchParams;
      }
      tried.push(n.name);
    } finally {
      await db.close().catch(() => undefined);
    }
  }
  throw badInput(`no ${SWITCH_KIND} job ${jobId} in the journal of any node of cluster ${cluster} (looked at ${tried.join(', ')})`, { hint: '`ezctl jobs` lists the jobs' });
}

/** `emha switch --resume JOB` / `--rollback JOB`: the plan rebuilt from the journaled parameters. */
export async function emhaSwitchAgain(ctx: Ctx, o: { cluster?: string; jobId: string; mode: 'resume' | 'rollback'; leaseMs?: number }): Promise<SwitchReport> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster).name;
  const p = await findJob(ctx, topo, cluster, o.jobId);
  const d = await drive(ctx, p, o.mode, [], o.jobId, o.leaseMs);
  const report: SwitchReport = { mode: o.mode, cluster, zone: p.zone, jobId: d.jobId, assessment: null, steps: stepList(switchPlan(ctx, p)), result: d.result, outcome: null };
  try {
    report.outcome = await outcomeOf(d.journal, d.jobId, p);
  } finally {
    await d.journalDb.close().catch(() => undefined);
  }
  return report;
}
