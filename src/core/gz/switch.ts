// `ezctl gz switch`: a global cluster's write zone moves to another zone (Ele.me's GZS switch), as
// `emha switch` moves a zone's master. Preflight refusals all at once (exit 4, nothing blocked);
// then a journaled job (steps/engine.ts) under the cluster's lease, journal and lease at the
// target zone's master (the source is blocked meanwhile):
//   pre-verify -> block-routes -> drain-clients -> block-writes -> final-position -> drain -> verify
//   -> reverse-drc -> flip (point of no return) -> move-proxies -> release-source -> routes-everywhere
// drain-clients: a client following the table that missed the blocked version (the window can be
// shorter than its poll) would write under the old route after the flip: through a proxy that
// lands at the target unseen, but straight to the old master it lands there once it is released.
// pre-verify checks the rows changed since the last verified point with the normal settle, before
// anything is blocked, so the verify inside the window only covers the last seconds. A failure
// before the flip lifts the block (read_only as it was) and publishes the old route active again
// (a higher version); after it, the job goes forward (`--resume`). A rerun of the same command
// while a dead switch holds the cluster (or the routes are left blocked by one) resumes it.
import type { Ctx } from '../context.js';
import type { Topology, ResolvedNode } from '../config/load.js';
import { sameServer } from '../config/dsn.js';
import { editTopologyFile } from '../config/editor.js';
import { ensureStateSchema, trustStateSchema } from '../state/schema.js';
import { serverInfo } from '../db/server.js';
import type { Db } from '../db/connect.js';
import { prepareBlock, blockWrites, runningWrites, listSessions, isClient, classifySession, sessionInfo, type WriteBlock, type SessionInfo, type PreparedBlock } from '../db/write-block.js';
import { routingTarget, type RoutingTarget } from '../proxy/index.js';
import { outcomeOf, type Plan, type Step } from '../steps/engine.js';
import { DrcClient } from '../drc/client.js';
import { formatDuration } from '../throttle/duration.js';
import { ExitCode, badInput, refused, runtimeError } from '../exit.js';
import { readRoutes, readRoutesAt, publishRoutes, publishAt, type Routes } from '../routes/index.js';
import { openVerifier, lastVerifiedPositions, binlogPositions, type VerifyReport, type Verifier } from '../dcp/index.js';
import {
  refOf, addrOf, freshTopology, nodeAt, withNode, ownGtid, spanOf, doneDetails, windowOf, stepList, clusterLeases, deadJobOf, leaseRefusals, findGzJob, driveGz, drcLagNow, drcRunningBeforeWindow, drcPreflight, leftBlockedBy, awaitClientAcks,
  KeptConnections, type GzNodeRef, type GzJobReport, type WindowGroups,
} from './common.js';

export const GZ_SWITCH_KIND = 'gz-switch';

export interface GzSwitchOptions {
  cluster?: string;
  /** the zone that takes writes afterwards */
  to: string;
  execute?: boolean;
  /** refused while DRC source->target lags more than this */
  maxLagMs?: number;
  /** the bound of the drain (DRC applying the source's final position at the target) */
  timeoutMs?: number;
  lockWaitMs?: number;
  graceMs?: number;
  /** refused while a write transaction at the source has run longer than this */
  runningUpdatesLimitMs?: number;
  /** also compare these tables in full inside the window ("db.t,db.u") */
  verifyTables?: string;
  /** flip even when rows differ (named in the report) */
  force?: boolean;
  leaseMs?: number;
  /** the bound of the wait for every live client to acknowledge the blocked route */
  clientTimeoutMs?: number;
  /** clients not heard from for this long are stale: named, not waited for */
  clientStaleMs?: number;
}

export const GZ_SWITCH_DEFAULTS = { maxLagMs: 1000, timeoutMs: 30_000, lockWaitMs: 3000, graceMs: 1000, runningUpdatesLimitMs: 10_000, clientTimeoutMs: 5000, clientStaleMs: 5000 };

/** What the journal keeps (no secrets): the plan is rebuilt from it on --resume / --rollback. */
export interface GzSwitchParams {
  cluster: string;
  topologyPath: string;
  from: string;
  to: string;
  zones: string[];
  /** the write zone's master (blocked) and the target zone's master (takes writes, holds the journal) */
  source: GzNodeRef;
  target: GzNodeRef;
  /** the source master's read_only when planned: put back whatever happens */
  sourceReadOnly: boolean;
  /** the source's own GTID domain (its application's writes), null on MySQL */
  sourceDomain: number | null;
  /** the routing table version the switch was planned from */
  routesVersion: number;
  lockWaitMs: number;
  graceMs: number;
  timeoutMs: number;
  /** absent in journals written before drain-clients: the defaults */
  clientTimeoutMs?: number;
  clientStaleMs?: number;
  verifyTables?: string;
  force: boolean;
}

export interface GzSwitchAssessment {
  cluster: string;
  from: string | null;
  to: string;
  routes: { version: number; writeZone: string | null; state: string; zones: Record<string, { version: number | null; error?: string }>; stale: string[]; unreachable: string[] } | null;
  source: { name: string; address: string; readOnly: boolean; gtidBinlogPos: string; domainId: number | null } | null;
  target: { name: string; address: string; reachable: boolean } | null;
  drc: Array<{ direction: string; state: string; lagMs: number | null; lastError: string | null }>;
  drcDaemonHere: boolean;
  proxies: Array<{ zone: string; label: string; up: boolean; write: string | null }>;
  runningWrites: SessionInfo[];
  leases: string[];
  refusals: string[];
}

export interface GzSwitchReport extends GzJobReport {
  assessment: GzSwitchAssessment | null;
  outcomeDetail: {
    source: string;
    target: string;
    blockMechanism: string | null;
    killedDuringGrace: SessionInfo[];
    killedAtSource: SessionInfo[];
    /** the source's own-domain GTID at the block, and after the run: equal when nothing committed there since */
    sourceOwnAtBlock: string | null;
    sourceOwnAfter: string | null;
    verify: { keysCompared: number; tablesCompared: number; differences: VerifyReport['differences'] } | null;
    proxies: string[];
    /** the clients following the routing table that acknowledged the block, and the stale ones not waited for */
    clients: { acked: string[]; stale: string[] } | null;
  } | null;
  /** --rollback of a job past its flip: the job rolled back (by this switch back to its source) */
  rollbackOf?: string;
  /** and the resume that finished that job first, when it had stopped */
  finishedFirst?: GzSwitchReport;
  /** a rerun of the command found this switch dead holding the cluster and resumed it */
  resumedDeadJob?: string;
}

const WINDOW: WindowGroups = {
  block: ['block-routes', 'drain-clients', 'block-writes', 'final-position'],
  drain: ['drain'],
  verify: ['verify', 'reverse-drc'],
  flip: ['flip'],
};

// ---------------------------------------------------------------- assessment (nothing changed)

interface Assessed {
  a: GzSwitchAssessment;
  params: GzSwitchParams | null;
  topo: Topology;
  cluster: string;
  noop: boolean;
  /** a dead switch (or the routes left blocked by one) to resume before anything else */
  resumeJob?: string;
}

const describeDiff = (d: VerifyReport['differences'][number]) => `${d.table} ${JSON.stringify(d.key)}${d.missingIn ? ` missing in ${d.missingIn}` : ` differs in ${d.columns.join(', ')}`}`;

export async function assessGzSwitch(ctx: Ctx, o: GzSwitchOptions): Promise<Assessed> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster).name;
  const cfg = topo.cluster(cluster).config;
  const zones = topo.zonesOf(cluster);
  if (!zones.includes(o.to)) throw badInput(`--to ${JSON.stringify(o.to)} is not a zone of cluster ${cluster}`, { hint: `zones: ${zones.join(', ')}` });
  const maxLagMs = o.maxLagMs ?? GZ_SWITCH_DEFAULTS.maxLagMs;
  const limitMs = o.runningUpdatesLimitMs ?? GZ_SWITCH_DEFAULTS.runningUpdatesLimitMs;
  const refusals: string[] = [];
  const a: GzSwitchAssessment = { cluster, from: null, to: o.to, routes: null, source: null, target: null, drc: [], drcDaemonHere: false, proxies: [], runningWrites: [], leases: [], refusals };
  const out = (noop = false): Assessed => ({ a, params: null, topo, cluster, noop });
  if (cfg.model !== 'global') {
    refusals.push(`cluster ${cluster} is a ${cfg.model ?? 'sharding'} cluster, not a global one: its shards move with \`ezctl gz move\``);
    return out();
  }

  // a dead switch holding the cluster: this run resumes it (forward past its flip, else rolled back)
  const leases = await clusterLeases(ctx, topo, cluster);
  const dead = deadJobOf(leases.rows, GZ_SWITCH_KIND);
  if (dead) return { ...out(), resumeJob: dead.jobId };

  const rr = await readRoutes(ctx, topo, cluster);
  const r = rr.routes;
  a.routes = { version: r.version, writeZone: r.writeZone, state: r.state, zones: rr.zones, stale: rr.stale, unreachable: rr.unreachable };
  const from = r.writeZone ?? cfg.writerZone ?? null;
  a.from = from;
  if (r.state === 'blocked') {
    // left blocked by a switch that is not running any more (its lease gone): resumed, never left so
    const left = await leftBlockedBy(ctx, topo, cluster, GZ_SWITCH_KIND, leases.rows, r.job);
    if (left) return { ...out(), resumeJob: left };
    refusals.push(`the routing table of ${cluster} is blocked (version ${r.version}, ${r.reason}${r.job ? `, job ${r.job}` : ''}): another switch is under way, or left it so (\`ezctl jobs\`; resume or roll back that job)`);
  }
  a.leases = leaseRefusals(leases.rows);
  refusals.push(...a.leases);
  if (from === null) {
    refusals.push(`cluster ${cluster} names no write zone (writerZone in the topology file, or the routing table)`);
    return out();
  }
  if (from === o.to && r.state === 'active') {
    return out(true);
  }
  for (const z of rr.unreachable) refusals.push(`zone ${z} cannot be reached (${rr.zones[z]?.error ?? 'no answer'}): every zone must take the new route`);
  for (const z of leases.unreachable) if (!rr.unreachable.includes(z)) refusals.push(`zone ${z}'s master cannot be reached: every zone must take the new route`);

  const sourceNode = topo.master(cluster, from);
  const targetNode = topo.master(cluster, o.to);
  // the source: its read_only, position and domain; its long-running writes
  let sourceReadOnly = false;
  let sourceDomain: number | null = null;
  try {
    const db = await ctx.connect(sourceNode);
    try {
      const info = await serverInfo(db);
      const ro = Number(await db.value('SELECT @@global.read_only')) === 1;
      sourceReadOnly = ro;
      sourceDomain = info.gtidDomainId;
      a.source = { name: sourceNode.name, address: addrOf(sourceNode), readOnly: ro, gtidBinlogPos: info.gtidBinlogPos, domainId: info.gtidDomainId };
      if (ro) refusals.push(`the write zone's master ${sourceNode.name} is read_only: nothing writes there to switch (set it writable, or fix the topology file)`);
      a.runningWrites = await runningWrites(db, limitMs / 1000);
      for (const w of a.runningWrites) refusals.push(`a write transaction on ${sourceNode.name} has run for ${w.timeS} s, more than ${formatDuration(limitMs)}: session ${w.id} ${w.user}@${w.host}${w.rowsModified !== undefined ? `, ${w.rowsModified} rows modified` : ''}${w.info ? `: ${w.info.slice(0, 200)}` : ''} (let it finish, or end it)`);
    } finally {
      await db.close().catch(() => undefined);
    }
  } catch (e) {
    refusals.push(`the write zone ${from}'s master ${sourceNode.name} (${addrOf(sourceNode)}) cannot be reached: ${(e as Error).message} (a switch drains and verifies it; a dead zone is not switched from)`);
  }
  // the target
  let targetOk = false;
  try {
    const db = await ctx.connect(targetNode);
    try {
      if (Number(await db.value('SELECT @@global.read_only')) === 1) refusals.push(`the target zone's master ${targetNode.name} is read_only: DRC could not apply there, nor the application write`);
      targetOk = true;
    } finally {
      await db.close().catch(() => undefined);
    }
  } catch (e) {
    refusals.push(`the target zone ${o.to}'s master ${targetNode.name} (${addrOf(targetNode)}) cannot be reached: ${(e as Error).message}`);
  }
  a.target = { name: targetNode.name, address: addrOf(targetNode), reachable: targetOk };

  // DRC both ways between the two zones: running, and source->target within --max-lag
  const drcCheck = await drcPreflight(ctx, topo, cluster, from, o.to, maxLagMs, { job: 'switch', holds: 'writes' });
  a.drcDaemonHere = drcCheck.daemonHere;
  a.drc.push(...drcCheck.views);
  refusals.push(...drcCheck.refusals);

  // every zone's proxy routes writes to the write zone's master, and is up
  for (const z of zones) {
    const target = routingTarget(topo, cluster, z);
    if (!target) continue;
    const h = await target.health().catch((e: Error) => ({ up: false, problems: [e.message], write: null }));
    a.proxies.push({ zone: z, label: target.label, up: h.up, write: h.write?.name ?? null });
    if (!h.up) refusals.push(`${target.label} is down: ${h.problems.join('; ') || 'no answer'} (the switch moves its write route)`);
    else if (!h.write || !sameServer(h.write, sourceNode)) refusals.push(`${target.label} routes writes to ${h.write ? `${h.write.name} (${addrOf(h.write)})` : 'nowhere'}, not to the write zone ${from}'s master ${sourceNode.name}: fix the proxy or the file first`);
  }

  const params: GzSwitchParams = {
    cluster,
    topologyPath: topo.path,
    from,
    to: o.to,
    zones,
    source: refOf(sourceNode),
    target: refOf(targetNode),
    sourceReadOnly,
    sourceDomain,
    routesVersion: r.version,
    lockWaitMs: o.lockWaitMs ?? GZ_SWITCH_DEFAULTS.lockWaitMs,
    graceMs: o.graceMs ?? GZ_SWITCH_DEFAULTS.graceMs,
    timeoutMs: o.timeoutMs ?? GZ_SWITCH_DEFAULTS.timeoutMs,
    clientTimeoutMs: o.clientTimeoutMs ?? GZ_SWITCH_DEFAULTS.clientTimeoutMs,
    clientStaleMs: o.clientStaleMs ?? GZ_SWITCH_DEFAULTS.clientStaleMs,
    force: !!o.force,
  };
  if (o.verifyTables !== undefined) params.verifyTables = o.verifyTables;
  return { a, params, topo, cluster, noop: false };
}

// ---------------------------------------------------------------- the plan

/** The route as the switch wants it: `zone` the write zone, in `state`. */
const routeTo = (r: Routes, zone: string, state: Routes['state']): Routes => ({ ...r, writeZone: zone, state });

/** The switch's steps; `live` carries the block and the positions between steps of one run (gone after a crash). */
export function gzSwitchPlan(ctx: Ctx, p: GzSwitchParams, jobId: string, refusals: string[] = [], kept?: KeptConnections): Plan<GzSwitchParams> {
  const live: { block?: WriteBlock; prepared?: PreparedBlock & { block(startedAt?: number): Promise<WriteBlock> }; blockAbort?: AbortController; finalPosition?: string; verifiedTo?: Record<string, string>; blocked?: Routes; t?: Topology; proxies?: RoutingTarget[]; verifier?: Verifier } = {};
  /** the write block's two sessions to the source, opened before the window (a handshake each, across the distance when the source is another zone) */
  const prepareSourceBlock = async (log: (m: string) => void) => {
    live.blockAbort = new AbortController();
    const ep = await ctx.endpoint(nodeAt(live.t ?? topo(), p.cluster, p.source));
    live.prepared = await prepareBlock(ep, { lockWaitMs: p.lockWaitMs, graceMs: p.graceMs, signal: live.blockAbort.signal, log });
  };
  const dropPreparedBlock = async () => {
    const x = live.prepared;
    live.prepared = undefined;
    await x?.close().catch(() => undefined);
  };
  // connections, server facts and table shapes read once, before the window: the verify inside it
  // then costs its few keys only (20-100 ms against 80-280 ms opening each time)
  const verifier = async () => {
    if (!live.verifier) {
      // four sets: the window's changed tables compared four at a time (each a round trip or two to the far zone)
      const v = await openVerifier(ctx, { cluster: p.cluster, zones: pair, sets: 4 });
      live.verifier = v;
      // a step failing between pre-verify and verify leaves it open (its binlog readers too)
      kept?.onClose(() => v.close());
    }
    return live.verifier;
  };
  // inside the window: the kept connections, and the file as parsed before it
  const k = kept?.ctx ?? ctx;
  const inWindow = <T>(ref: GzNodeRef, fn: (db: Db) => Promise<T>) => k.connect(nodeAt(live.t ?? topo(), p.cluster, ref)).then(async (db) => {
    try {
      return await fn(db);
    } finally {
      await db.close().catch(() => undefined);
    }
  });
  const proxiesOf = (t: Topology) => p.zones.map((z) => routingTarget(t, p.cluster, z)).filter((x): x is RoutingTarget => !!x);
  /** every zone's proxy writes to `ref`'s master (the sessions to the previous one closed) */
  const moveProxiesTo = async (targets: RoutingTarget[], ref: GzNodeRef): Promise<string[]> => {
    const to = { name: ref.name, host: ref.host, port: ref.port };
    return Promise.all(targets.map(async (target) => {
      const now0 = await target.currentWrite();
      if (!now0 || !sameServer(now0, ref)) await target.moveWrite(to, { killExisting: true });
      const now = now0 && sameServer(now0, ref) ? now0 : await target.currentWrite();
      if (!now || !sameServer(now, ref)) throw runtimeError(`${target.label} still routes writes to ${now ? now.name : 'nowhere'} after moving them to ${ref.name}`, { hint: 'see the proxy (ezctl sandbox status / its runtime API), then resume the job' });
      return target.label;
    }));
  };
  const topo = () => freshTopology(p.topologyPath);
  const on = <T>(ref: GzNodeRef, fn: (db: Db) => Promise<T>) => withNode(ctx, p.topologyPath, p.cluster, ref, fn);
  const pair: [string, string] = [p.from, p.to];

  /**
   * DRC into the source was refused while the source was read_only (its applier does not write to a
   * read_only master), and killing the source's client sessions ends DRC's sessions reading it (its
   * non-dump connections there): both wait out a backoff doubling from 0.5 s (measured: the next
   * switch's preflight saw 3.6 s of lag, and 25 s after a resumed release). Told to try again now,
   * both ways. Only a daemon on this host can be told.
   */
  const nudgeDrc = async (): Promise<string> => {
    const drc = new DrcClient(ctx, topo(), p.cluster);
    if (!(await drc.daemonHere().catch(() => false))) return 'no daemon on this host';
    try {
      await drc.resume(`${p.to}->${p.from}`);
      await drc.resume(`${p.from}->${p.to}`);
      return 'retried now';
    } catch (e) {
      return `not told: ${(e as Error).message}`;
    }
  };

  /** publish the old route active again (a higher version), unless it already is */
  const restoreRoutes = async (): Promise<Record<string, unknown>> => {
    const t = topo();
    const rr = await readRoutes(ctx, t, p.cluster);
    const r = rr.routes;
    if (r.writeZone === p.to && r.state === 'active' && r.version > p.routesVersion) {
      throw runtimeError(`the routing table already names ${p.to} the write zone (version ${r.version}, ${r.reason}): the switch flipped; it is not rolled back by putting ${p.from} back`, { hint: `resume the job forward, then switch back (ezctl gz switch --to ${p.from})` });
    }
    if (r.writeZone === p.from && r.state === 'active' && !rr.stale.length) return { routes: 'unchanged', version: r.version };
    const res = await publishRoutes(ctx, t, p.cluster, routeTo(r, p.from, 'active'), { expectVersion: r.version, required: p.zones, jobId, reason: `gz switch ${jobId}: rolled back, ${p.from} takes writes` });
    return { routes: 'restored', version: res.routes.version };
  };

  const preVerify: Step<GzSwitchParams> = {
    name: 'pre-verify',
    changesNothing: true,
    describe: () => ({ does: `compare the rows changed in ${p.from} and ${p.to} since the last verified point (dcp, normal settle), before anything is blocked: the verify inside the window then covers only the last moments` }),
    async do(sc) {
      const t0 = Date.now();
      const last = await lastVerifiedPositions(ctx, p.cluster, pair);
      const v = await verifier();
      if (!last) {
        live.verifiedTo = await binlogPositions(ctx, p.cluster, pair);
        v.follow(live.verifiedTo);
        sc.log(`no verified point of ${p.cluster} (no \`check incr\` run): the rows changed before ${JSON.stringify(live.verifiedTo)} are not verified by this switch`);
        return { verifiedFrom: null, verifiedTo: live.verifiedTo, span: spanOf(t0) };
      }
      const r = await v.verify({ window: { from: last }, signal: sc.signal });
      live.verifiedTo = r.positions;
      // the binlogs read on from here while the window is prepared: the verify inside it finds
      // its transactions read (a reader's start is ~10 round trips to the far zone)
      v.follow(r.positions);
      if (!r.consistent && !p.force) {
        throw refused(`${r.differences.length} row${r.differences.length === 1 ? '' : 's'} differ between ${p.from} and ${p.to} before the switch: ${r.differences.slice(0, 5).map(describeDiff).join('; ')}`, { hint: 'repair them first (ezctl repair), or pass --force to switch anyway' });
      }
      return { verifiedFrom: last, verifiedTo: r.positions, keysCompared: r.keysCompared, differences: r.differences.slice(0, 100), span: spanOf(t0) };
    },
  };

  const blockRoutes: Step<GzSwitchParams> = {
    name: 'block-routes',
    describe: () => ({ does: `publish the routing table with ${p.from} blocked to every zone (clients following it stop writing); DRC's illegal-write report judges from it` }),
    async do(sc) {
      // before the window: the file parsed, the connections and proxies the window uses opened,
      // the routes read (publishRoutes refuses anyway if a higher version appeared since)
      const t = topo();
      live.t = t;
      live.proxies = proxiesOf(t);
      await kept?.prepare(p.zones.map((z) => t.master(p.cluster, z)));
      // the state tables looked at once per kept connection, here (publishAt asks at every write)
      if (kept) {
        await Promise.all(p.zones.map((z) => k.connect(t.master(p.cluster, z)).then(async (db) => {
          await ensureStateSchema(db);
          trustStateSchema(db);
        }).catch(() => undefined)));
      }
      const [rr] = await Promise.all([readRoutes(k, t, p.cluster), prepareSourceBlock(sc.log)]);
      const drcBefore = await drcRunningBeforeWindow(k, t, p.cluster, p.from, p.to, 5_000, sc.signal);
      const drcLagAtBlockMs = await drcLagNow(k, t, p.cluster, p.from, p.to);
      const t0 = Date.now();
      try {
        if (rr.routes.version !== p.routesVersion) {
          throw refused(`the routing table of ${p.cluster} changed since the switch was planned (version ${p.routesVersion} -> ${rr.routes.version}: ${rr.routes.reason})`, { hint: 'run the switch again: it plans from the new version' });
        }
        // the file keeps no blocked state: nothing to mirror
        const res = await publishRoutes(k, t, p.cluster, routeTo(rr.routes, p.from, 'blocked'), { expectVersion: p.routesVersion, required: p.zones, jobId, reason: `gz switch ${jobId}: block ${p.from}`, signal: sc.signal, noFileMirror: true });
        live.blocked = res.routes;
        return { version: res.routes.version, written: res.written, drcLagAtBlockMs, drcBefore, span: spanOf(t0) };
      } catch (e) {
        await dropPreparedBlock();
        throw e;
      }
    },
    async undo() {
      await dropPreparedBlock();
      await restoreRoutes();
    },
  };

  const clientTimeoutMs = p.clientTimeoutMs ?? GZ_SWITCH_DEFAULTS.clientTimeoutMs;
  const clientStaleMs = p.clientStaleMs ?? GZ_SWITCH_DEFAULTS.clientStaleMs;
  const drainClients: Step<GzSwitchParams> = {
    name: 'drain-clients',
    changesNothing: true,
    timeoutMs: clientTimeoutMs + 5000,
    waitsFor: 'every live client to acknowledge the blocked version',
    describe: () => ({ does: `wait, at most --client-timeout ${formatDuration(clientTimeoutMs)}, until every live client following the routing table has acknowledged the blocked version (it holds its writes, and none it began under the old route is in flight); clients not heard from for ${formatDuration(clientStaleMs)} are stale: named, not waited for` }),
    async do(sc) {
      const t0 = Date.now();
      const t = live.t ?? topo();
      const version = live.blocked?.version ?? (await readRoutes(k, t, p.cluster)).routes.version;
      // the kept connections, asked every 10 ms: each client acknowledges at its own zone's master
      const w = await awaitClientAcks(k, t, p.cluster, version, sc, {
        timeoutMs: clientTimeoutMs,
        staleMs: clientStaleMs,
        intervalMs: 10,
        blocked: p.from,
        hint: `it may still write to ${p.from} under the old route; ${p.from} takes writes again. Find the client (ezctl gz routes), or raise --client-timeout`,
      });
      return { version, acked: w.acked, stale: w.stale, span: spanOf(t0) };
    },
  };

  const blockDb: Step<GzSwitchParams> = {
    name: 'block-writes',
    timeoutMs: p.lockWaitMs + 10_000,
    describe: () => ({ does: `block every write on ${p.from}'s master ${p.source.name} (${addrOf(p.source)}), privileged sessions included (DRC's applier too); writers holding it back after --grace ${formatDuration(p.graceMs)} are killed; given up past --lock-wait ${formatDuration(p.lockWaitMs)}` }),
    async do(sc) {
      // the sessions opened before the window (block-routes); after a crash, here
      if (!live.prepared) await prepareSourceBlock(sc.log);
      const prepared = live.prepared!;
      live.prepared = undefined;
      const abort = live.blockAbort!;
      const onAbort = () => abort.abort(sc.signal.reason);
      if (sc.signal.aborted) onAbort();
      sc.signal.addEventListener('abort', onAbort, { once: true });
      sc.waitingFor(`the write block on ${p.source.name}`);
      const t0 = Date.now();
      try {
        live.block = await prepared.block();
      } finally {
        sc.signal.removeEventListener('abort', onAbort);
      }
      return { mechanism: live.block.mechanism, tookMs: live.block.tookMs, killed: live.block.killed, readOnlyBefore: live.block.readOnlyBefore, span: spanOf(t0) };
    },
    async undo() {
      if (live.block) {
        await live.block.release({ restoreReadOnly: true });
        live.block = undefined;
      } else {
        // after a crash the holder's connection is gone (its lock with it); read_only is what stays
        await on(p.source, (db) => db.exec('SET GLOBAL read_only = ?', [p.sourceReadOnly ? 1 : 0]));
      }
      await nudgeDrc();
    },
  };

  const finalPos: Step<GzSwitchParams> = {
    name: 'final-position',
    changesNothing: true,
    describe: () => ({ does: `record ${p.source.name}'s final GTID position (every write blocked); kill the transactions waiting behind the block with their writes done (they must not commit there if this process dies)` }),
    async do() {
      const t0 = Date.now();
      if (!live.block) throw runtimeError(`the write block on ${p.source.name} is no longer held`, { hint: 'its session was killed or lost; run the switch again' });
      const holder = live.block.holderId;
      // the position (on the holder) and the sessions (another session) in one round trip; the
      // kills only once the position said the block is still held
      const [finalPosition, killed] = await inWindow(p.source, async (db) => {
        const [pos, { rows }] = await Promise.all([live.block!.finalPosition(), listSessions(db)]);
        const ours = new Set([holder]);
        const waiting = rows.filter((r) => isClient(r, ours) && classifySession(r, ours) === 'waiting' && ((r.trxRowsModified ?? 0) > 0 || (r.trxRowsLocked ?? 0) > 0));
        for (const r of waiting) await db.exec(`KILL CONNECTION ${Number(r.id)}`).catch(() => undefined);
        return [pos, waiting.map(sessionInfo)] as const;
      });
      live.finalPosition = finalPosition;
      return { finalPosition, sourceOwnAtBlock: ownGtid(finalPosition, p.sourceDomain), killedWaiting: killed, span: spanOf(t0) };
    },
  };

  const drain: Step<GzSwitchParams> = {
    name: 'drain',
    changesNothing: true,
    timeoutMs: p.timeoutMs + 5000,
    waitsFor: `DRC ${p.from}->${p.to} to apply ${p.source.name}'s final position at ${p.target.name}`,
    describe: () => ({ does: `wait, at most --timeout ${formatDuration(p.timeoutMs)}, until DRC ${p.from}->${p.to} has applied the final position at ${p.target.name}` }),
    async do(sc) {
      const t0 = Date.now();
      sc.waitingFor(`DRC ${p.from}->${p.to} to apply the final position`);
      // the final position read at the block is the source's position (nothing commits there):
      // no round trip to it; the target's checkpoint polled every 10 ms (a window waits on it)
      const final = live.finalPosition;
      const w = await new DrcClient(k, live.t ?? topo(), p.cluster).wait(p.from, p.to, p.timeoutMs, { pollMs: 10, ...(final !== undefined && p.sourceDomain !== null ? { source: { gtidBinlogPos: final, domainId: p.sourceDomain } } : {}) });
      return { reached: w.reached, target: w.target, waitedMs: w.waitedMs, span: spanOf(t0) };
    },
  };

  const verify: Step<GzSwitchParams> = {
    name: 'verify',
    changesNothing: true,
    describe: () => ({ does: `compare the rows changed in ${p.from} and ${p.to} since pre-verify, up to the final position (settle 0: writes are blocked and drained, a difference is real)${p.verifyTables ? `, and ${p.verifyTables} in full` : ''}; a difference stops the switch${p.force ? ' (--force: reported, not stopped)' : ''}` }),
    async do(sc) {
      const t0 = Date.now();
      if (!live.verifiedTo) throw runtimeError('no verified point recorded in this run (pre-verify)');
      const v = await verifier();
      const reports: VerifyReport[] = [];
      try {
        reports.push(await v.verify({ window: { from: live.verifiedTo }, settleMs: 0, signal: sc.signal }));
        if (p.verifyTables) reports.push(await v.verify({ tables: p.verifyTables, settleMs: 0, signal: sc.signal }));
      } finally {
        live.verifier = undefined;
        // closed behind the window (its connections' goodbyes, its readers' stop: round trips to
        // the far zone); the run's end waits for it (kept.onClose), a run without kept here
        if (kept) void v.close().catch(() => undefined);
        else await v.close().catch(() => undefined);
      }
      const differences = reports.flatMap((r) => r.differences);
      const keysCompared = reports.reduce((s, r) => s + r.keysCompared, 0);
      const tablesCompared = reports.reduce((s, r) => s + r.tablesCompared, 0);
      if (differences.length && !p.force) {
        throw refused(`${differences.length} row${differences.length === 1 ? '' : 's'} differ between ${p.from} and ${p.to} with writes blocked and drained: ${differences.slice(0, 5).map(describeDiff).join('; ')}`, {
          hint: 'nothing flipped: the block is lifted, the route restored. Repair the rows (ezctl repair) and switch again, or pass --force to flip anyway',
        });
      }
      return { keysCompared, tablesCompared, differences: differences.slice(0, 100), positions: reports[0]!.positions, span: spanOf(t0) };
    },
  };

  const reverse: Step<GzSwitchParams> = {
    name: 'reverse-drc',
    changesNothing: true,
    describe: () => ({ does: `check DRC ${p.to}->${p.from} runs (not stopped, paused or on an error): it carries ${p.to}'s writes back to ${p.from} once the switch is done` }),
    async do() {
      const t0 = Date.now();
      const drc = new DrcClient(k, live.t ?? topo(), p.cluster);
      const st = await drc.daemonStatus().catch(() => null);
      if (st) {
        const d = st.directions.find((x) => x.from === p.to && x.to === p.from);
        if (!d) throw refused(`DRC ${p.to}->${p.from} is not a direction of the daemon on this host`);
        if (d.state === 'error' || d.state === 'paused' || d.state === 'stopped') {
          throw refused(`DRC ${p.to}->${p.from} is ${d.state}${d.lastError ? `: ${d.lastError}` : ''}: ${p.to}'s writes would not reach ${p.from}`, { hint: 'fix or resume it (ezctl drc status / resume), then switch again' });
        }
        return { state: d.state, span: spanOf(t0) };
      }
      // no daemon here: the heartbeat of the target at the source says a daemon elsewhere runs it
      const hb = (await drc.lag().catch(() => [])).find((x) => x.from === p.to && x.to === p.from)?.lagMs ?? null;
      if (hb === null) throw refused(`no DRC heartbeat of ${p.to} at ${p.from}: DRC ${p.to}->${p.from} is not running`, { hint: 'start it (ezctl drc start --detach), then switch again' });
      return { state: 'no daemon here', heartbeatAgeMs: hb, span: spanOf(t0) };
    },
  };

  const flip: Step<GzSwitchParams> = {
    name: 'flip',
    pointOfNoReturn: true,
    describe: () => ({ does: `publish the routing table with ${p.to} the write zone, active, to every zone but ${p.from}, and move every zone's proxy write route to ${p.target.name}, at once (POINT OF NO RETURN: writes go to ${p.to} from here)` }),
    async do() {
      const t0 = Date.now();
      const t = live.t ?? topo();
      // the version this run published at the block (no read inside the window: publishRoutes
      // refuses it if another writer published a higher one since); read after a crash
      const r = live.blocked ?? (await readRoutes(k, t, p.cluster)).routes;
      const already = r.writeZone === p.to && r.state === 'active' && r.version > p.routesVersion;
      if (!already && !(r.writeZone === p.from && r.state === 'blocked' && r.job === jobId)) {
        throw refused(`the routing table of ${p.cluster} is not the one this switch blocked (version ${r.version}: ${r.reason}): another writer changed it`, { hint: 'nothing flipped; see `ezctl gz routes`' });
      }
      // the routes and the proxies together: a client following the table and one going through a
      // proxy find the target at the same moment (the file's writerZone follows in routes-everywhere)
      const [res, proxies] = await Promise.all([
        already ? Promise.resolve({ routes: r, written: [] as string[] }) : publishRoutes(k, t, p.cluster, routeTo(r, p.to, 'active'), { expectVersion: r.version, required: p.zones.filter((z) => z !== p.from), skip: [p.from], jobId, reason: `gz switch ${jobId}: flip to ${p.to}`, noFileMirror: true }),
        moveProxiesTo(live.proxies ?? proxiesOf(t), p.target),
      ]);
      return { version: res.routes.version, written: res.written, proxies, span: spanOf(t0) };
    },
    async check() {
      // any zone holding a version that names the target the write zone: the flip took place
      const t = topo();
      for (const z of p.zones) {
        if (z === p.from) continue;
        const r = await withNode(ctx, p.topologyPath, p.cluster, refOf(t.master(p.cluster, z)), (db) => readRoutesAt(db, p.cluster)).catch(() => null);
        if (r && r.writeZone === p.to && r.state === 'active' && r.version > p.routesVersion) return true;
      }
      return false;
    },
    async undo() {
      // the routes did not flip (check said so): the proxies moved with them go back to the source
      await moveProxiesTo(proxiesOf(topo()), p.source);
    },
  };

  const moveProxies: Step<GzSwitchParams> = {
    name: 'move-proxies',
    describe: () => ({ does: `check every zone's proxy writes to ${p.to}'s master ${p.target.name} (moved by the flip; after a crash moved here)` }),
    async do() {
      return { proxies: await moveProxiesTo(proxiesOf(topo()), p.target) };
    },
  };

  const releaseSource: Step<GzSwitchParams> = {
    name: 'release-source',
    describe: () => ({ does: `at ${p.source.name}: kill the client sessions (what waited behind the block must not commit there), lift the block, read_only back as it was (${p.sourceReadOnly ? 1 : 0}: DRC ${p.to}->${p.from} applies there; its backoff cut short)` }),
    async do(sc) {
      let b = live.block;
      if (!b || !(await b.held().catch(() => false))) {
        // resumed after a crash: the old block went with its holder; block again to kill what is there
        b = await blockWrites(await ctx.endpoint(nodeAt(topo(), p.cluster, p.source)), { lockWaitMs: p.lockWaitMs, graceMs: 0, signal: sc.signal, log: sc.log });
      }
      const killed = await b.killClients();
      await b.release({ restoreReadOnly: true });
      live.block = undefined;
      await on(p.source, (db) => db.exec('SET GLOBAL read_only = ?', [p.sourceReadOnly ? 1 : 0]));
      return { killed, drc: await nudgeDrc() };
    },
  };

  const everywhere: Step<GzSwitchParams> = {
    name: 'routes-everywhere',
    describe: () => ({ does: `write the new routing table at ${p.from} (and any zone it missed); the topology file's writerZone: ${p.to}` }),
    async do() {
      const t = topo();
      const rr = await readRoutes(ctx, t, p.cluster);
      if (rr.routes.writeZone !== p.to) throw runtimeError(`the routing table names ${rr.routes.writeZone} the write zone (version ${rr.routes.version}), not ${p.to}`);
      const written: string[] = [];
      const missed: string[] = [];
      for (const z of p.zones) {
        if (rr.zones[z]?.version === rr.routes.version) continue;
        const ok = await withNode(ctx, p.topologyPath, p.cluster, refOf(t.master(p.cluster, z)), (db) => publishAt(db, rr.routes)).catch((e: Error) => (missed.push(`${z}: ${e.message}`), false));
        if (ok) written.push(z);
      }
      if (missed.length) throw runtimeError(`the routing table could not be written at ${missed.join('; ')}`, { hint: 'bring the zone back, then resume the job' });
      let fileChanged = false;
      if (t.cluster(p.cluster).config.writerZone !== p.to) {
        fileChanged = editTopologyFile(p.topologyPath, (doc) => doc.setIn(['clusters', p.cluster, 'writerZone'], p.to)).changed;
      }
      return { version: rr.routes.version, written, fileChanged };
    },
  };

  return {
    kind: GZ_SWITCH_KIND,
    params: p,
    cluster: p.cluster,
    async preflight() {
      return refusals;
    },
    steps: [preVerify, blockRoutes, drainClients, blockDb, finalPos, drain, verify, reverse, flip, moveProxies, releaseSource, everywhere],
  };
}

// ---------------------------------------------------------------- running it

function emptyReport(mode: GzSwitchReport['mode'], cluster: string, a: GzSwitchAssessment | null): GzSwitchReport {
  return { command: 'switch', mode, cluster, from: a?.from ?? null, to: a?.to ?? null, jobId: null, outcome: mode, exitCode: ExitCode.ok, message: null, refusals: a?.refusals ?? [], window: null, drcLagAtBlockMs: null, finalPosition: null, routesVersion: a?.routes?.version ?? 0, steps: [], result: null, assessment: a, outcomeDetail: null };
}

/** Fill the report from the journal and the servers after a run. */
async function finishReport(ctx: Ctx, r: GzSwitchReport, p: GzSwitchParams, d: Awaited<ReturnType<typeof driveGz>>): Promise<GzSwitchReport> {
  Object.assign(r, outcomeOf(d.jobId, d.result));
  r.from = p.from;
  r.to = p.to;
  const topo = freshTopology(p.topologyPath);
  r.routesVersion = await readRoutes(ctx, topo, p.cluster).then((x) => x.routes.version, () => r.routesVersion);
  const sourceAfter = await withNode(ctx, p.topologyPath, p.cluster, p.source, (db) => db.value<string>('SELECT @@global.gtid_binlog_pos')).then((x) => String(x ?? ''), () => null);
  if (d.summary) {
    const done = doneDetails(d.summary);
    r.window = windowOf(done, WINDOW);
    const br = done.get('block-routes');
    r.drcLagAtBlockMs = typeof br?.drcLagAtBlockMs === 'number' ? br.drcLagAtBlockMs : null;
    const fp = done.get('final-position');
    r.finalPosition = typeof fp?.finalPosition === 'string' ? fp.finalPosition : null;
    const v = done.get('verify');
    r.outcomeDetail = {
      source: p.source.name,
      target: p.target.name,
      blockMechanism: (done.get('block-writes')?.mechanism as string | undefined) ?? null,
      killedDuringGrace: [...((done.get('block-writes')?.killed as SessionInfo[] | undefined) ?? []), ...((fp?.killedWaiting as SessionInfo[] | undefined) ?? [])],
      killedAtSource: (done.get('release-source')?.killed as SessionInfo[] | undefined) ?? [],
      sourceOwnAtBlock: typeof fp?.sourceOwnAtBlock === 'string' ? fp.sourceOwnAtBlock : null,
      sourceOwnAfter: sourceAfter === null ? null : ownGtid(sourceAfter, p.sourceDomain),
      verify: v ? { keysCompared: Number(v.keysCompared ?? 0), tablesCompared: Number(v.tablesCompared ?? 0), differences: (v.differences as VerifyReport['differences'] | undefined) ?? [] } : null,
      proxies: (done.get('flip')?.proxies as string[] | undefined) ?? (done.get('move-proxies')?.proxies as string[] | undefined) ?? [],
      clients: clientsOf(done.get('drain-clients')),
    };
  }
  return r;
}

function clientsOf(d: Record<string, unknown> | undefined): { acked: string[]; stale: string[] } | null {
  if (!d) return null;
  return { acked: Array.isArray(d.acked) ? d.acked.map(String) : [], stale: Array.isArray(d.stale) ? d.stale.map(String) : [] };
}

async function homeOf(ctx: Ctx, p: GzSwitchParams): Promise<ResolvedNode> {
  return nodeAt(freshTopology(p.topologyPath), p.cluster, p.target);
}

/** `gz switch`: the plan (no --execute), or the switch itself; a dead switch holding the cluster is resumed first. */
export async function gzSwitch(ctx: Ctx, o: GzSwitchOptions): Promise<GzSwitchReport> {
  const as = await assessGzSwitch(ctx, o);
  if (as.resumeJob) {
    if (!o.execute) {
      const r = emptyReport('plan', as.cluster, as.a);
      r.message = `switch job ${as.resumeJob} died holding cluster ${as.cluster}: with --execute this command resumes it (forward past its flip, else rolled back), then switches if still needed`;
      return r;
    }
    // the same command again after a crash finishes what the dead job began (forward past its
    // flip, else rolled back); it starts no second switch: run it once more for that
    ctx.log.warn(`switch job ${as.resumeJob} died holding cluster ${as.cluster}: resuming it (forward past its flip, else rolled back)`);
    const r = await gzSwitchAgain(ctx, { cluster: as.cluster, jobId: as.resumeJob, mode: 'resume', ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}) });
    r.resumedDeadJob = as.resumeJob;
    return r;
  }
  const { a, params } = as;
  if (as.noop) {
    const r = emptyReport('noop', as.cluster, a);
    r.message = `${o.to} is the write zone of ${as.cluster} already (routing table version ${a.routes?.version ?? 0}): nothing to do`;
    return r;
  }
  const r = emptyReport(o.execute ? 'run' : 'plan', as.cluster, a);
  if (params) r.steps = stepList(gzSwitchPlan(ctx, params, '(plan)'));
  if (a.refusals.length) {
    r.outcome = 'refused';
    r.exitCode = ExitCode.refused;
    r.message = `gz switch ${as.cluster} to ${o.to} refused: ${a.refusals.length === 1 ? a.refusals[0]! : `${a.refusals.length} reasons`}; nothing was changed`;
    return r;
  }
  if (!o.execute || !params) return r;
  const kept = new KeptConnections(ctx);
  const d = await driveGz(ctx, { cluster: params.cluster, topologyPath: params.topologyPath, kind: GZ_SWITCH_KIND, home: await homeOf(ctx, params), mode: 'run', refusals: a.refusals, ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}), plan: (id) => gzSwitchPlan(ctx, params, id, a.refusals, kept), close: () => kept.closeAll() });
  return finishReport(ctx, r, params, d);
}

/**
 * `gz switch --resume JOB` / `--rollback JOB`: the plan rebuilt from the journaled parameters.
 * --rollback of a job past its flip switches back the same way (a new switch to the old zone,
 * carrying what the target took meanwhile through DRC), after resuming it to its end.
 */
export async function gzSwitchAgain(ctx: Ctx, o: { cluster?: string; jobId: string; mode: 'resume' | 'rollback'; leaseMs?: number; switchBack?: Omit<GzSwitchOptions, 'to' | 'cluster'> }): Promise<GzSwitchReport> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster).name;
  const found = await findGzJob<GzSwitchParams>(ctx, topo, cluster, GZ_SWITCH_KIND, o.jobId);
  const p = found.params;
  const lease = o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {};
  if (o.mode === 'rollback' && found.summary.ponrPassed) {
    // past the flip: finish it if it stopped, then switch back
    let first: GzSwitchReport | undefined;
    if (found.summary.state !== 'done') {
      first = await gzSwitchAgain(ctx, { cluster, jobId: o.jobId, mode: 'resume', ...lease });
      if (first.outcome !== 'done') return first;
    }
    // the file as the flip left it (the command's context cached it before)
    const fresh: Ctx = { ...ctx, topology: () => Promise.resolve(freshTopology(p.topologyPath)) };
    const back = await gzSwitch(fresh, { ...(o.switchBack ?? {}), cluster, to: p.from, execute: true, ...lease });
    back.rollbackOf = o.jobId;
    if (first) back.finishedFirst = first;
    back.message = back.message ?? `job ${o.jobId} had flipped to ${p.to}: rolled back by switching back to ${p.from}${back.jobId ? ` (job ${back.jobId})` : ''}`;
    return back;
  }
  const r = emptyReport(o.mode, cluster, null);
  r.steps = stepList(gzSwitchPlan(ctx, p, o.jobId));
  const d = await driveGz(ctx, { cluster, topologyPath: p.topologyPath, kind: GZ_SWITCH_KIND, home: found.node, mode: o.mode, jobId: o.jobId, refusals: [], ...lease, plan: (id) => gzSwitchPlan(ctx, p, id) });
  return finishReport(ctx, r, p, d);
}
