// `ezctl gz move`: shard ranges of a sharding cluster move from the zone that owns them to another
// (Ele.me's Sharding Zone move), as `gz switch` moves a global cluster's write zone. Preflight
// refusals all at once (exit 4, nothing changed); then a journaled job (steps/engine.ts) under the
// cluster's lease, journal and lease at the target zone's master:
//   block-routes -> drain-clients -> final-position -> drain -> verify -> flip (point of no return)
// There is no database-level block: the source keeps taking writes for its other shards. The
// routing table blocks the moved shards (clients following it hold those writes), the clients'
// acknowledgements say no write begun under the old route is still in flight, then the source's
// GTID position is the last one that can hold a write to them: DRC applies it at the target, the
// rows of those shards are compared (settle 0), and the routing table names the target the owner.
// A failure before the flip publishes the shards active at the source again (a higher version).
// A rerun of the same command while a dead move holds the cluster (or left shards blocked) resumes it.
//
// --force-dead-source: the source zone is down. No drain, no verify: the block and the flip go to
// the reachable zones (the versions carry missedBy [source]); the report names what may not have
// arrived (the source's last GTID DRC applied at the target, and the last position DRC read there).
// When the zone comes back, its writes to the moved shards are illegal (DRC reports them) and
// `check` / `repair` (last writer wins) reconcile the rows.
import type { Ctx } from '../context.js';
import type { Topology, ResolvedNode } from '../config/load.js';
import { serverInfo } from '../db/server.js';
import { parseMariaPos } from '../db/gtid.js';
import { quoteTable } from '../db/quote.js';
import { outcomeOf, type Plan, type Step } from '../steps/engine.js';
import { DrcClient } from '../drc/client.js';
import { CHECKPOINT_TABLE } from '../cluster/tables.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { formatDuration } from '../throttle/duration.js';
import { ExitCode, badInput, refused, runtimeError } from '../exit.js';
import { readRoutes, readRoutesAt, publishRoutes, parseShardList, withShards, formatShardList, type Routes } from '../routes/index.js';
import { syncRoutes } from '../routes/show.js';
import { openVerifier, binlogPositions, type VerifyReport, type Verifier } from '../dcp/index.js';
import {
  refOf, addrOf, freshTopology, nodeAt, withNode, ownGtid, spanOf, doneDetails, windowOf, stepList, clusterLeases, deadJobOf, leaseRefusals, findGzJob, driveGz, drcLagNow, drcRunningBeforeWindow, drcPreflight, leftBlockedBy, awaitClientAcks,
  type GzNodeRef, type GzJobReport, type WindowGroups,
} from './common.js';

export const GZ_MOVE_KIND = 'gz-move';

export interface GzMoveOptions {
  cluster?: string;
  /** "0-31,40-47" */
  shards: string;
  /** the zone that owns them afterwards */
  to: string;
  execute?: boolean;
  /** refused while DRC source->target lags more than this */
  maxLagMs?: number;
  /** the bound of the drain (DRC applying the source's final position at the target) */
  timeoutMs?: number;
  /** the bound of drain-clients (every live client acknowledging the blocked version) */
  clientTimeoutMs?: number;
  /** a client not heard from for this long is stale: named, not waited for */
  clientStaleMs?: number;
  /** flip even when rows differ (named in the report) */
  force?: boolean;
  /** the source zone is down: move without drain and verify */
  forceDeadSource?: boolean;
  leaseMs?: number;
}

export const GZ_MOVE_DEFAULTS = { maxLagMs: 1000, timeoutMs: 30_000, clientTimeoutMs: 5000, clientStaleMs: 5000 };

/** What the journal keeps (no secrets): the plan is rebuilt from it on --resume / --rollback. */
export interface GzMoveParams {
  cluster: string;
  topologyPath: string;
  from: string;
  to: string;
  zones: string[];
  /** the moved shard ids, inclusive ranges, sorted */
  ranges: Array<[number, number]>;
  /** "db.table" -> shard-key column: the rows the verify compares */
  tables: Record<string, string>;
  source: GzNodeRef;
  target: GzNodeRef;
  /** the source's own GTID domain (its application's writes), null when unknown (dead source, MySQL) */
  sourceDomain: number | null;
  /** the routing table version the move was planned from */
  routesVersion: number;
  timeoutMs: number;
  clientTimeoutMs: number;
  clientStaleMs: number;
  force: boolean;
  deadSource: boolean;
}

export interface GzMoveAssessment {
  cluster: string;
  from: string | null;
  to: string;
  /** the shards asked for, and those of them --to owns already (nothing to do for them) */
  requested: string;
  moving: string;
  alreadyThere: string;
  routes: { version: number; zones: Record<string, { version: number | null; error?: string }>; stale: string[]; unreachable: string[]; shards: Routes['shards'] } | null;
  source: { name: string; address: string; reachable: boolean; gtidBinlogPos: string | null; domainId: number | null } | null;
  target: { name: string; address: string; reachable: boolean } | null;
  drc: Array<{ direction: string; state: string; lagMs: number | null; lastError: string | null }>;
  leases: string[];
  refusals: string[];
}

export interface GzMoveReport extends GzJobReport {
  assessment: GzMoveAssessment | null;
  /** the shards this move moves ("0-15,40") */
  shards: string;
  outcomeDetail: {
    source: string;
    target: string;
    clients: { acked: string[]; stale: string[] } | null;
    verify: { keysCompared: number; tablesCompared: number; differences: VerifyReport['differences'] } | null;
    /** --force-dead-source: what may not have arrived from the dead source */
    deadSource: { lastAppliedAtTarget: string | null; lastReadPosition: string | null; note: string } | null;
  } | null;
  /** a rerun of the command found this move dead holding the cluster and resumed it */
  resumedDeadJob?: string;
  /** a no-op run wrote the current routing table at these zones (back after missing the move) */
  synced?: string[];
}

const WINDOW: WindowGroups = {
  block: ['block-routes'],
  drain: ['drain-clients', 'final-position', 'drain'],
  verify: ['verify'],
  flip: ['flip'],
};

const describeDiff = (d: VerifyReport['differences'][number]) => `${d.table} ${JSON.stringify(d.key)}${d.missingIn ? ` missing in ${d.missingIn}` : ` differs in ${d.columns.join(', ')}`}`;

/** Each shard id of the ranges, grouped by its owner in r ('' for no owner). */
export function ownersOf(r: Routes, ranges: ReadonlyArray<readonly [number, number]>): Map<string, Array<[number, number]>> {
  const out = new Map<string, Array<[number, number]>>();
  const add = (zone: string, a: number, b: number) => {
    const l = out.get(zone) ?? [];
    const last = l[l.length - 1];
    if (last && last[1] + 1 === a) last[1] = b;
    else l.push([a, b]);
    out.set(zone, l);
  };
  for (const [from, to] of ranges) {
    let s = from;
    while (s <= to) {
      const hit = r.shards.find((x) => x.from <= s && s <= x.to);
      if (hit) {
        const end = Math.min(hit.to, to);
        add(hit.zone, s, end);
        s = end + 1;
      } else {
        const next = r.shards.filter((x) => x.from > s).reduce((m, x) => Math.min(m, x.from), Infinity);
        const end = Math.min(to, next - 1);
        add('', s, end);
        s = end + 1;
      }
    }
  }
  return out;
}

/** Are all the shards of `ranges` owned by `zone` in state `state` in r? */
export function allAt(r: Routes, ranges: ReadonlyArray<readonly [number, number]>, zone: string, state: Routes['state']): boolean {
  for (const [a, b] of ranges) {
    for (let s = a; s <= b; ) {
      const hit = r.shards.find((x) => x.from <= s && s <= x.to);
      if (!hit || hit.zone !== zone || hit.state !== state) return false;
      s = hit.to + 1;
    }
  }
  return true;
}

/** The blocked shard ranges of r (whoever blocked them). */
function blockedShards(r: Routes): Array<[number, number]> {
  return r.shards.filter((s) => s.state === 'blocked').map((s) => [s.from, s.to] as [number, number]);
}

// ---------------------------------------------------------------- assessment (nothing changed)

interface Assessed {
  a: GzMoveAssessment;
  params: GzMoveParams | null;
  cluster: string;
  noop: boolean;
  /** a dead move (or shards left blocked by one) to resume before anything else */
  resumeJob?: string;
}

async function reachable(ctx: Ctx, n: ResolvedNode): Promise<{ ok: true; gtidBinlogPos: string; domainId: number | null; readOnly: boolean } | { ok: false; error: string }> {
  try {
    const db = await ctx.connect(n);
    try {
      const info = await serverInfo(db);
      const ro = Number(await db.value('SELECT @@global.read_only')) === 1;
      return { ok: true, gtidBinlogPos: info.gtidBinlogPos, domainId: info.gtidDomainId, readOnly: ro };
    } finally {
      await db.close().catch(() => undefined);
    }
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

export async function assessGzMove(ctx: Ctx, o: GzMoveOptions): Promise<Assessed> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster).name;
  const cfg = topo.cluster(cluster).config;
  const zones = topo.zonesOf(cluster);
  if (!zones.includes(o.to)) throw badInput(`--to ${JSON.stringify(o.to)} is not a zone of cluster ${cluster}`, { hint: `zones: ${zones.join(', ')}` });
  const requested = parseShardList(o.shards);
  const maxLagMs = o.maxLagMs ?? GZ_MOVE_DEFAULTS.maxLagMs;
  const refusals: string[] = [];
  const a: GzMoveAssessment = { cluster, from: null, to: o.to, requested: formatShardList(requested), moving: '', alreadyThere: '', routes: null, source: null, target: null, drc: [], leases: [], refusals };
  const out = (noop = false): Assessed => ({ a, params: null, cluster, noop });
  if (cfg.model !== 'sharding') {
    refusals.push(`cluster ${cluster} is a ${cfg.model} cluster, not a sharding one: its write zone moves with \`ezctl gz switch\``);
    return out();
  }

  // a dead move holding the cluster: this run resumes it (forward past its flip, else rolled back)
  const leases = await clusterLeases(ctx, topo, cluster);
  const dead = deadJobOf(leases.rows, GZ_MOVE_KIND);
  if (dead) return { ...out(), resumeJob: dead.jobId };

  const rr = await readRoutes(ctx, topo, cluster);
  const r = rr.routes;
  a.routes = { version: r.version, zones: rr.zones, stale: rr.stale, unreachable: rr.unreachable, shards: r.shards };
  const blocked = blockedShards(r);
  if (blocked.length) {
    // left blocked by a move that is not running any more (its lease gone): resumed, never left so
    const left = await leftBlockedBy(ctx, topo, cluster, GZ_MOVE_KIND, leases.rows, r.job);
    if (left) return { ...out(), resumeJob: left };
    refusals.push(`shards ${formatShardList(blocked)} of ${cluster} are blocked in the routing table (version ${r.version}, ${r.reason}${r.job ? `, job ${r.job}` : ''}): another move is under way, or left them so (\`ezctl jobs\`; resume or roll back that job)`);
  }
  a.leases = leaseRefusals(leases.rows);
  refusals.push(...a.leases);

  const owners = ownersOf(r, requested);
  const unowned = owners.get('');
  if (unowned) throw badInput(`shards ${formatShardList(unowned)} are not in cluster ${cluster}'s shard map (no zone owns them)`, { hint: `the routing table: ${r.shards.map((s) => `${s.zone} ${s.from}-${s.to}`).join(', ') || '(empty)'}` });
  a.alreadyThere = formatShardList(owners.get(o.to) ?? []);
  const sources = [...owners.keys()].filter((z) => z !== o.to);
  if (!sources.length) return out(true);
  if (sources.length > 1) {
    // one source per move: its drain, verify and undo are about one zone pair
    refusals.push(`the shards are owned by ${sources.length} zones other than ${o.to}: ${sources.map((z) => `${z}: ${formatShardList(owners.get(z)!)}`).join('; ')}; move them one source at a time (one \`gz move\` per source zone)`);
    return out();
  }
  const from = sources[0]!;
  const ranges = owners.get(from)!;
  a.from = from;
  a.moving = formatShardList(ranges);

  const sourceNode = topo.master(cluster, from);
  const targetNode = topo.master(cluster, o.to);
  const src = await reachable(ctx, sourceNode);
  const dst = await reachable(ctx, targetNode);
  a.source = { name: sourceNode.name, address: addrOf(sourceNode), reachable: src.ok, gtidBinlogPos: src.ok ? src.gtidBinlogPos : null, domainId: src.ok ? src.domainId : null };
  a.target = { name: targetNode.name, address: addrOf(targetNode), reachable: dst.ok };
  if (!dst.ok) refusals.push(`the target zone ${o.to}'s master ${targetNode.name} (${addrOf(targetNode)}) cannot be reached: ${dst.error}`);
  else if (dst.readOnly) refusals.push(`the target zone ${o.to}'s master ${targetNode.name} is read_only: DRC could not apply there, nor the application write`);
  if (o.forceDeadSource) {
    if (src.ok) refusals.push(`--force-dead-source: the source zone ${from}'s master ${sourceNode.name} (${addrOf(sourceNode)}) answers: it is not dead (use the normal move, which drains and verifies)`);
  } else if (!src.ok) {
    refusals.push(`the source zone ${from}'s master ${sourceNode.name} (${addrOf(sourceNode)}) cannot be reached: ${src.error} (a move drains and verifies it; if the zone is down for good, --force-dead-source)`);
  }
  const deadSource = !!o.forceDeadSource && !src.ok;
  if (!deadSource && !Object.keys(r.tables).length) refusals.push(`cluster ${cluster} names no shard tables (shards.tables in ${topo.path}: "db.table": shard-key column): the verify could not tell the moved shards' rows from the others; add them`);
  // every zone but a dead source must take the new routes
  for (const z of rr.unreachable) if (z !== from && z !== o.to) refusals.push(`zone ${z} cannot be reached (${rr.zones[z]?.error ?? 'no answer'}): every zone must take the new routes`);

  // DRC between the two zones: both directions running, source->target within --max-lag
  if (!deadSource && src.ok && dst.ok) {
    const drcCheck = await drcPreflight(ctx, topo, cluster, from, o.to, maxLagMs, { job: 'move', holds: 'the shards' });
    a.drc.push(...drcCheck.views);
    refusals.push(...drcCheck.refusals);
  }

  const params: GzMoveParams = {
    cluster,
    topologyPath: topo.path,
    from,
    to: o.to,
    zones,
    ranges,
    tables: r.tables,
    source: refOf(sourceNode),
    target: refOf(targetNode),
    sourceDomain: src.ok ? src.domainId : null,
    routesVersion: r.version,
    timeoutMs: o.timeoutMs ?? GZ_MOVE_DEFAULTS.timeoutMs,
    clientTimeoutMs: o.clientTimeoutMs ?? GZ_MOVE_DEFAULTS.clientTimeoutMs,
    clientStaleMs: o.clientStaleMs ?? GZ_MOVE_DEFAULTS.clientStaleMs,
    force: !!o.force,
    deadSource,
  };
  return { a, params, cluster, noop: false };
}

// ---------------------------------------------------------------- the plan

/** The move's steps; `live` carries the positions between steps of one run (gone after a crash: a job killed before its flip is rolled back). */
export function gzMovePlan(ctx: Ctx, p: GzMoveParams, jobId: string, refusals: string[] = []): Plan<GzMoveParams> {
  const live: { preBlock?: Record<string, string>; finalPosition?: string; verifier?: Verifier } = {};
  const topo = () => freshTopology(p.topologyPath);
  const pair: [string, string] = [p.from, p.to];
  const list = formatShardList(p.ranges);
  /** the zones that must take each version: all, or all but a dead source (it misses them) */
  const required = p.deadSource ? p.zones.filter((z) => z !== p.from) : p.zones;
  const flipped = (r: Routes) => r.version > p.routesVersion && allAt(r, p.ranges, p.to, 'active');

  /** publish the shards active at the source again (a higher version), unless they are */
  const restoreRoutes = async (): Promise<Record<string, unknown>> => {
    const t = topo();
    const rr = await readRoutes(ctx, t, p.cluster);
    const r = rr.routes;
    if (flipped(r)) {
      throw runtimeError(`the routing table already names ${p.to} the owner of shards ${list} (version ${r.version}, ${r.reason}): the move flipped; it is not rolled back by putting them back at ${p.from}`, { hint: `resume the job forward, then move them back (ezctl gz move --shards ${list} --to ${p.from})` });
    }
    if (allAt(r, p.ranges, p.from, 'active') && !rr.stale.length) return { routes: 'unchanged', version: r.version };
    const res = await publishRoutes(ctx, t, p.cluster, withShards(r, p.ranges, { zone: p.from, state: 'active' }), { expectVersion: r.version, required, jobId, reason: `gz move ${jobId}: rolled back, ${list} active at ${p.from}` });
    return { routes: 'restored', version: res.routes.version };
  };

  const blockRoutes: Step<GzMoveParams> = {
    name: 'block-routes',
    describe: () => ({ does: `publish the routing table with shards ${list} blocked to every zone${p.deadSource ? ` but the dead ${p.from}` : ''} (clients following it hold their writes to them; the other shards keep writing); DRC's illegal-write report judges from it` }),
    async do(sc) {
      const t = topo();
      // the floor of the drain and the verify window's start, measured before the window
      let drcLagAtBlockMs: number | null = null;
      let drcBefore: { waitedMs: number; state: string | null } | null = null;
      if (!p.deadSource) {
        drcBefore = await drcRunningBeforeWindow(ctx, t, p.cluster, p.from, p.to, 5_000, sc.signal);
        drcLagAtBlockMs = await drcLagNow(ctx, t, p.cluster, p.from, p.to);
        live.preBlock = await binlogPositions(ctx, p.cluster, pair);
        // connections, server facts and table shapes read before the window: the verify inside it
        // then costs its few keys only
        live.verifier ??= await openVerifier(ctx, { cluster: p.cluster, zones: pair });
      }
      const t0 = Date.now();
      const rr = await readRoutes(ctx, t, p.cluster);
      if (rr.routes.version !== p.routesVersion) {
        throw refused(`the routing table of ${p.cluster} changed since the move was planned (version ${p.routesVersion} -> ${rr.routes.version}: ${rr.routes.reason})`, { hint: 'run the move again: it plans from the new version' });
      }
      const res = await publishRoutes(ctx, t, p.cluster, withShards(rr.routes, p.ranges, { zone: p.from, state: 'blocked' }), { expectVersion: p.routesVersion, required, jobId, reason: `gz move ${jobId}: block ${list} at ${p.from}`, signal: sc.signal });
      return { version: res.routes.version, written: res.written, missedBy: res.routes.missedBy, drcLagAtBlockMs, drcBefore, preBlock: live.preBlock ?? null, span: spanOf(t0) };
    },
    async undo() {
      await restoreRoutes();
    },
  };

  const drainClients: Step<GzMoveParams> = {
    name: 'drain-clients',
    changesNothing: true,
    timeoutMs: p.clientTimeoutMs + 5000,
    waitsFor: 'every live client to acknowledge the blocked version',
    describe: () => ({ does: `wait, at most --client-timeout ${formatDuration(p.clientTimeoutMs)}, until every live client following the routing table has acknowledged the blocked version (no write it began under the old route still in flight); clients not heard from for ${formatDuration(p.clientStaleMs)} are stale: named, not waited for` }),
    async do(sc) {
      const t0 = Date.now();
      const t = topo();
      const rr = await readRoutes(ctx, t, p.cluster);
      const version = rr.routes.version;
      if (!allAt(rr.routes, p.ranges, p.from, 'blocked')) throw runtimeError(`shards ${list} are not blocked at ${p.from} in the routing table (version ${version}: ${rr.routes.reason})`, { hint: 'another writer changed the table; see `ezctl gz routes`' });
      const w = await awaitClientAcks(ctx, t, p.cluster, version, sc, {
        timeoutMs: p.clientTimeoutMs,
        staleMs: p.clientStaleMs,
        hint: 'a write it began under the old route may still be in flight; the shards are active at the source again. Find the client (ezctl gz routes), or raise --client-timeout',
      });
      return { version, acked: w.acked, stale: w.stale, span: spanOf(t0) };
    },
  };

  const finalPos: Step<GzMoveParams> = {
    name: 'final-position',
    changesNothing: true,
    describe: () => p.deadSource
      ? { does: `record what may not have arrived from the dead ${p.from}: the last position of ${p.from} DRC applied at ${p.target.name} (its checkpoint) and the last it read` }
      : { does: `record ${p.source.name}'s GTID position (@@gtid_binlog_pos): every write to shards ${list} begun under the old route is in it`, sql: ['SELECT @@global.gtid_binlog_pos'] },
    async do() {
      const t0 = Date.now();
      if (p.deadSource) {
        const drc = new DrcClient(ctx, topo(), p.cluster);
        const applied = await drc.checkpointOf(p.from, p.to).catch(() => null);
        const st = await drc.daemonStatus().catch(() => null);
        const d = st?.directions.find((x) => x.from === p.from && x.to === p.to);
        return { lastAppliedAtTarget: applied, lastReadPosition: d?.sourcePosition ?? null, span: spanOf(t0) };
      }
      const finalPosition = await withNode(ctx, p.topologyPath, p.cluster, p.source, (db) => db.value<string>('SELECT @@global.gtid_binlog_pos')).then((x) => String(x ?? ''));
      live.finalPosition = finalPosition;
      return { finalPosition, sourceOwnAtBlock: ownGtid(finalPosition, p.sourceDomain), span: spanOf(t0) };
    },
  };

  const drain: Step<GzMoveParams> = {
    name: 'drain',
    changesNothing: true,
    timeoutMs: p.timeoutMs + 5000,
    waitsFor: `DRC ${p.from}->${p.to} to apply ${p.source.name}'s final position at ${p.target.name}`,
    describe: () => ({ does: `wait, at most --timeout ${formatDuration(p.timeoutMs)}, until DRC ${p.from}->${p.to} has applied the final position at ${p.target.name} (its checkpoint covers ${p.from}'s own GTID domain there)` }),
    async do(sc) {
      const t0 = Date.now();
      const pos = live.finalPosition;
      if (pos === undefined) throw runtimeError('no final position recorded in this run');
      const want = p.sourceDomain === null ? undefined : parseMariaPos(pos).get(p.sourceDomain)?.seq;
      if (want === undefined) return { reached: true, target: '(nothing written at the source in its domain)', waitedMs: 0, span: spanOf(t0) };
      const pipeline = `${p.cluster}:${p.from}->${p.to}`;
      let at = '';
      const reached = await withNode(ctx, p.topologyPath, p.cluster, p.target, async (db) => {
        for (;;) {
          at = String((await db.value(`SELECT source_position FROM ${quoteTable(STATE_SCHEMA, CHECKPOINT_TABLE)} WHERE pipeline = ?`, [pipeline]).catch(() => '')) ?? '');
          if ((parseMariaPos(at).get(p.sourceDomain!)?.seq ?? -1n) >= want) return true;
          if (Date.now() - t0 > p.timeoutMs || sc.signal.aborted) return false;
          sc.waitingFor(`DRC ${p.from}->${p.to}: applied ${at || '(no checkpoint)'}, waiting for ${p.sourceDomain}-*-${want}`);
          await new Promise((res) => setTimeout(res, 20));
        }
      });
      if (!reached) {
        throw refused(`DRC ${p.from}->${p.to} did not apply ${p.source.name}'s final position ${ownGtid(pos, p.sourceDomain)} at ${p.target.name} within --timeout ${formatDuration(p.timeoutMs)} (applied: ${at || 'nothing'})`, {
          hint: `the shards are active at ${p.from} again; see \`ezctl drc status\` (lag, paused, errors), then move again (or raise --timeout)`,
        });
      }
      return { reached: true, target: `${p.sourceDomain}-*-${want}`, at, waitedMs: Date.now() - t0, span: spanOf(t0) };
    },
  };

  const verify: Step<GzMoveParams> = {
    name: 'verify',
    changesNothing: true,
    describe: () => ({ does: `compare the rows of shards ${list} changed in ${p.from} or ${p.to} from before the block up to now (settle 0: their writes are held and drained, a difference is real); a difference stops the move${p.force ? ' (--force: reported, not stopped)' : ''}` }),
    async do(sc) {
      const t0 = Date.now();
      if (!live.preBlock) throw runtimeError('no pre-block position recorded in this run (block-routes)');
      const v = live.verifier ?? (await openVerifier(ctx, { cluster: p.cluster, zones: pair }));
      let r: VerifyReport;
      try {
        r = await v.verify({ window: { from: live.preBlock }, shards: { ranges: p.ranges, tables: p.tables }, settleMs: 0, signal: sc.signal });
      } finally {
        live.verifier = undefined;
        await v.close().catch(() => undefined);
      }
      if (r.differences.length && !p.force) {
        throw refused(`${r.differences.length} row${r.differences.length === 1 ? '' : 's'} of shards ${list} differ between ${p.from} and ${p.to} with their writes held and drained: ${r.differences.slice(0, 5).map(describeDiff).join('; ')}`, {
          hint: `nothing flipped: the shards are active at ${p.from} again. Repair the rows (ezctl repair) and move again, or pass --force to flip anyway`,
        });
      }
      return { keysCompared: r.keysCompared, tablesCompared: r.tablesCompared, differences: r.differences.slice(0, 100), positions: r.positions, span: spanOf(t0) };
    },
  };

  const flip: Step<GzMoveParams> = {
    name: 'flip',
    pointOfNoReturn: true,
    describe: () => ({ does: `publish the routing table with ${p.to} the owner of shards ${list}, active, to every zone${p.deadSource ? ` but the dead ${p.from} (missedBy: ${p.from})` : ''} (POINT OF NO RETURN: clients write them at ${p.to} from here); the topology file's shards.zones follows` }),
    async do() {
      const t0 = Date.now();
      const t = topo();
      const rr = await readRoutes(ctx, t, p.cluster);
      const r = rr.routes;
      if (flipped(r)) return { version: r.version, already: true, span: spanOf(t0) };
      if (!(allAt(r, p.ranges, p.from, 'blocked') && r.job === jobId)) {
        throw refused(`the routing table of ${p.cluster} is not the one this move blocked (version ${r.version}: ${r.reason}): another writer changed it`, { hint: 'nothing flipped; see `ezctl gz routes`' });
      }
      const res = await publishRoutes(ctx, t, p.cluster, withShards(r, p.ranges, { zone: p.to, state: 'active' }), { expectVersion: r.version, required, jobId, reason: `gz move ${jobId}: flip ${list} to ${p.to}` });
      return { version: res.routes.version, written: res.written, missedBy: res.routes.missedBy, span: spanOf(t0) };
    },
    async check() {
      // any zone holding a version that names the target the owner: the flip took place
      const t = topo();
      for (const z of p.zones) {
        const r = await withNode(ctx, p.topologyPath, p.cluster, refOf(t.master(p.cluster, z)), (db) => readRoutesAt(db, p.cluster)).catch(() => null);
        if (r && flipped(r)) return true;
      }
      return false;
    },
  };

  return {
    kind: GZ_MOVE_KIND,
    params: p,
    cluster: p.cluster,
    async preflight() {
      return refusals;
    },
    steps: p.deadSource ? [blockRoutes, drainClients, finalPos, flip] : [blockRoutes, drainClients, finalPos, drain, verify, flip],
  };
}

// ---------------------------------------------------------------- running it

function emptyReport(mode: GzMoveReport['mode'], cluster: string, a: GzMoveAssessment | null): GzMoveReport {
  return { command: 'move', mode, cluster, from: a?.from ?? null, to: a?.to ?? null, jobId: null, outcome: mode, exitCode: ExitCode.ok, message: null, refusals: a?.refusals ?? [], window: null, drcLagAtBlockMs: null, finalPosition: null, routesVersion: a?.routes?.version ?? 0, steps: [], result: null, assessment: a, shards: a?.moving ?? '', outcomeDetail: null };
}

async function finishReport(ctx: Ctx, r: GzMoveReport, p: GzMoveParams, d: Awaited<ReturnType<typeof driveGz>>): Promise<GzMoveReport> {
  Object.assign(r, outcomeOf(d.jobId, d.result));
  r.from = p.from;
  r.to = p.to;
  r.shards = formatShardList(p.ranges);
  r.routesVersion = await readRoutes(ctx, freshTopology(p.topologyPath), p.cluster).then((x) => x.routes.version, () => r.routesVersion);
  if (d.summary) {
    const done = doneDetails(d.summary);
    r.window = windowOf(done, WINDOW);
    const br = done.get('block-routes');
    r.drcLagAtBlockMs = typeof br?.drcLagAtBlockMs === 'number' ? br.drcLagAtBlockMs : null;
    const fp = done.get('final-position');
    r.finalPosition = typeof fp?.finalPosition === 'string' ? fp.finalPosition : null;
    const dc = done.get('drain-clients');
    const v = done.get('verify');
    const applied = typeof fp?.lastAppliedAtTarget === 'string' ? fp.lastAppliedAtTarget : null;
    r.outcomeDetail = {
      source: p.source.name,
      target: p.target.name,
      clients: dc ? { acked: (dc.acked as string[] | undefined) ?? [], stale: (dc.stale as string[] | undefined) ?? [] } : null,
      verify: v ? { keysCompared: Number(v.keysCompared ?? 0), tablesCompared: Number(v.tablesCompared ?? 0), differences: (v.differences as VerifyReport['differences'] | undefined) ?? [] } : null,
      deadSource: p.deadSource
        ? {
            lastAppliedAtTarget: applied,
            lastReadPosition: typeof fp?.lastReadPosition === 'string' ? fp.lastReadPosition : null,
            note: `what ${p.from} committed after ${applied ?? '(no checkpoint)'} did not reach ${p.to}; when ${p.from} comes back, DRC carries it over and reports its writes to shards ${formatShardList(p.ranges)} since the block as illegal: reconcile them with \`ezctl check\` / \`ezctl repair\` (last writer wins)`,
          }
        : null,
    };
  }
  return r;
}

/** `gz move`: the plan (no --execute), or the move itself; a dead move holding the cluster is resumed first. */
export async function gzMove(ctx: Ctx, o: GzMoveOptions): Promise<GzMoveReport> {
  const as = await assessGzMove(ctx, o);
  if (as.resumeJob) {
    if (!o.execute) {
      const r = emptyReport('plan', as.cluster, as.a);
      r.message = `move job ${as.resumeJob} died holding cluster ${as.cluster}: with --execute this command resumes it (forward past its flip, else rolled back); run the move again after that if still needed`;
      return r;
    }
    ctx.log.warn(`move job ${as.resumeJob} died holding cluster ${as.cluster}: resuming it (forward past its flip, else rolled back)`);
    const r = await gzMoveAgain(ctx, { cluster: as.cluster, jobId: as.resumeJob, mode: 'resume', ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}) });
    r.resumedDeadJob = as.resumeJob;
    return r;
  }
  const { a, params } = as;
  if (as.noop) {
    const r = emptyReport('noop', as.cluster, a);
    r.message = `${o.to} owns shards ${a.requested} of ${as.cluster} already (routing table version ${a.routes?.version ?? 0}): nothing to do`;
    // a zone that missed the move (down at its flip: --force-dead-source) and is back holds an
    // older table: the routes layer's sync writes the current one there (a higher version stays)
    // and the owners into the topology file
    if (o.execute && a.routes && a.routes.version > 0 && a.routes.stale.length) {
      const s = await syncRoutes(ctx, { cluster: as.cluster, execute: true });
      const synced = s.zones.filter((z) => z.outcome === 'written').map((z) => z.zone);
      const failed = s.zones.filter((z) => z.outcome === 'failed').map((z) => `${z.zone}: ${z.error}`);
      r.synced = synced;
      if (synced.length) r.message += `; routing table version ${s.routes.version} written at ${synced.join(', ')} (it held an older one)`;
      if (failed.length) r.message += `; not written at ${failed.join('; ')} (ezctl gz routes --sync --execute)`;
    }
    return r;
  }
  const r = emptyReport(o.execute ? 'run' : 'plan', as.cluster, a);
  if (params) r.steps = stepList(gzMovePlan(ctx, params, '(plan)'));
  if (a.refusals.length) {
    r.outcome = 'refused';
    r.exitCode = ExitCode.refused;
    r.message = `gz move ${as.cluster} shards ${a.requested} to ${o.to} refused: ${a.refusals.length === 1 ? a.refusals[0]! : `${a.refusals.length} reasons`}; nothing was changed`;
    return r;
  }
  if (!o.execute || !params) return r;
  const home = nodeAt(freshTopology(params.topologyPath), params.cluster, params.target);
  const d = await driveGz(ctx, { cluster: params.cluster, topologyPath: params.topologyPath, kind: GZ_MOVE_KIND, home, mode: 'run', refusals: a.refusals, ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}), plan: (id) => gzMovePlan(ctx, params, id, a.refusals) });
  return finishReport(ctx, r, params, d);
}

/** `gz move --resume JOB` / `--rollback JOB`: the plan rebuilt from the journaled parameters (a move past its flip is not rolled back: move the shards back). */
export async function gzMoveAgain(ctx: Ctx, o: { cluster?: string; jobId: string; mode: 'resume' | 'rollback'; leaseMs?: number }): Promise<GzMoveReport> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster).name;
  const found = await findGzJob<GzMoveParams>(ctx, topo, cluster, GZ_MOVE_KIND, o.jobId);
  const p = found.params;
  const r = emptyReport(o.mode, cluster, null);
  r.steps = stepList(gzMovePlan(ctx, p, o.jobId));
  const d = await driveGz(ctx, { cluster, topologyPath: p.topologyPath, kind: GZ_MOVE_KIND, home: found.node, mode: o.mode, jobId: o.jobId, refusals: [], ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}), plan: (id) => gzMovePlan(ctx, p, id) });
  return finishReport(ctx, r, p, d);
}
