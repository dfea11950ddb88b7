// `ezctl emha failover`: the zone's master is dead; promote its most advanced replica.
//
// As orchestrator's DeadMaster and MHA's failover: the master is dead only when ezctl cannot reach
// it AND every replica of the zone says its IO thread lost it (a SIGSTOPped master still holds its
// replicas' TCP sessions until slave_net_timeout: not dead, refused). The candidate is the replica
// that received the most (Gtid_IO_Pos), once it has applied all of it. The old master is fenced
// (topology `fenced`, the proxy, DRC, and read_only when the sandbox restarts it: fence.ts) before
// the candidate is promoted; every GTID known lost is named; a DRC checkpoint ahead of the new
// master (the other zones applied what the new master never got) is set back to the new master's
// position, through DRC's client. After the point of no return, takeover.ts's steps (emha switch's too).
// A journaled job on the step engine, with a lease; refused while
// the zone's last failover is more recent than --anti-flap.
import type { Ctx } from '../context.js';
import type { ResolvedNode, Topology } from '../config/load.js';
import type { Db } from '../db/connect.js';
import { describeAddress, sameServer } from '../config/dsn.js';
import { DEFAULT_DRC_DOMAIN_OFFSET } from '../cluster/tables.js';
import { gtidCovers, mariaMerge, parseMariaPos, formatMariaPos, type Flavor } from '../db/gtid.js';
import { gtidDifference, replState, waitApplied, type NodeReplState } from '../db/replication.js';
import { quoteTable } from '../db/quote.js';
import { badInput, EzError, ExitCode, refused, runtimeError } from '../exit.js';
import { formatDuration } from '../throttle/duration.js';
import { routingTarget } from '../proxy/index.js';
import { DrcClient } from '../drc/client.js';
import { acquireJob, leaseRows, here, type JobHandle } from '../job/job.js';
import { overlaps, liveness, describeHolder } from '../job/lease.js';
import { globalWriteZone, writeRouteZones, describeWriteZone, type GlobalWriteZone } from './global.js';
import { MariaDbJournal } from '../steps/mariadb-journal.js';
import { readJob, resumePlan, rollbackPlan, runPlan, type Plan, type Step, type StepsResult } from '../steps/engine.js';
import { hookRunner, hooksFromTopology } from '../steps/hooks.js';
import { STATE_SCHEMA, ensureStateSchema } from '../state/schema.js';
import { fenceNodeEverywhere, unfenceInFile } from './fence.js';
import { assessMaster, type MasterAssessment } from './detect.js';
import { addrOf, freshTopology, promoteStep, refOf, takeoverSteps, withNode, type NodeRef, type TakeoverParams } from './takeover.js';

export const FAILOVER_KIND = 'emha-failover';
/** orchestrator's RecoveryPeriodBlockSeconds default: one failover of a zone per hour */
export const DEFAULT_ANTI_FLAP_MS = 3_600_000;
export const DEFAULT_RELAY_TIMEOUT_MS = 60_000;

// ---- the plan ----

/** What the plan is rebuilt from (journaled; no secrets): the takeover's parameters (the candidate is
 *  its newMaster, the zone's other replicas its replicas and read pool) and the failover's own. */
export interface FailoverParams extends TakeoverParams {
  oldMaster: NodeRef;
  flavor: Flavor;
  /** the zone's own GTID domain (MariaDB) */
  domain: number | null;
  /** what the candidate had received from the old master when the plan was made */
  candidateReceived: string;
}

export interface FailoverOptions {
  cluster?: string;
  zone: string;
  /** the candidate (default: the most advanced replica) */
  to?: string;
  execute?: boolean;
  antiFlapMs?: number;
  relayTimeoutMs?: number;
  leaseMs?: number;
  resume?: string;
  rollback?: string;
  /** the dead-master probe's connect timeout per try */
  probeTimeoutMs?: number;
}

export interface ReplicaView {
  name: string;
  reachable: boolean;
  received: string;
  applied: string;
  sql: string;
  eligible: boolean;
  why: string;
}

export interface LostGtids {
  /** GTIDs the old master had committed that the new master will not have, known now (text ranges) */
  gtids: string[];
  count: string;
  /** who received them: another zone's DRC (it applied them there), a replica */
  from: Array<{ source: string; gtids: string[] }>;
  note: string;
}

export interface CheckpointChange { direction: string; at: string; from: string | null; to: string; via: 'daemon' | 'server' | 'none'; lost: string[] }

export interface FailoverReport {
  cluster: string;
  zone: string;
  execute: boolean;
  assessment: MasterAssessment;
  oldMaster: NodeRef;
  candidate: NodeRef | null;
  replicas: ReplicaView[];
  lost: LostGtids;
  lastFailover: { jobId: string; atMs: number; at: string } | null;
  /** the steps it takes (dry run) */
  steps: Array<{ name: string; does: string; sql?: string[]; pointOfNoReturn?: boolean; bound?: string }>;
  jobId?: string;
  result?: StepsResult;
  checkpoints?: CheckpointChange[];
  /** replicas left where they are (each with why): they hold what the new master lacks */
  notRepointed: string[];
  /** a global cluster's write zone (null: sharding) */
  global?: GlobalWriteZone | null;
  /** the zones whose proxy's write route moves to the new master */
  writeRouteZones?: string[];
  exitCode: ExitCode;
}

/** Only the domain's entry of a MariaDB position ('' when it has none). */
export function domainOnly(pos: string, domain: number | null): string {
  if (domain === null) return pos;
  const g = parseMariaPos(pos).get(domain);
  return g ? `${g.domain}-${g.server}-${g.seq}` : '';
}

/** `pos` with its entry of `domain` replaced by `by`'s (dropped when `by` has none). */
export function replaceDomain(pos: string, domain: number, by: string): string {
  const p = parseMariaPos(pos);
  const b = parseMariaPos(by).get(domain);
  if (b) p.set(domain, b);
  else p.delete(domain);
  return formatMariaPos(p);
}

/** Everything a replica holds or has received (MariaDB: per domain the higher of Gtid_IO_Pos and gtid_current_pos). */
export function heldOf(v: { received: string; applied: string }, flavor: Flavor = 'mariadb'): string {
  return flavor === 'mariadb' ? mariaMerge(v.received, v.applied) : v.received || v.applied;
}

/**
 * The replica to promote. First choice: one that holds everything every other eligible replica
 * holds, in every domain (the zone's own and DRC's writes from other zones alike): each of the
 * others can then replicate from it by GTID (measured: a replica one DRC-applied transaction ahead
 * of the new master in domain 1002 was refused, error 1236 "requested to start from GTID
 * 1002-101-38, which is not in the master's binlog"). Among those, and when none covers all, the one
 * that received most in the zone's own domain, then applied most, then file order.
 */
export function pickCandidate(views: Array<{ name: string; eligible: boolean; received: string; applied: string }>, domain: number | null, flavor: Flavor = 'mariadb'): string | undefined {
  const seq = (p: string) => (domain === null ? 0n : parseMariaPos(p).get(domain)?.seq ?? 0n);
  const eligible = views.filter((v) => v.eligible);
  const coversAll = eligible.filter((v) => eligible.every((w) => gtidCovers(flavor, heldOf(v, flavor), heldOf(w, flavor))));
  let best: (typeof views)[number] | undefined;
  for (const v of coversAll.length ? coversAll : eligible) {
    if (!best) best = v;
    else if (seq(v.received) > seq(best.received) || (seq(v.received) === seq(best.received) && seq(v.applied) > seq(best.applied))) best = v;
  }
  return best?.name;
}

/** Where the journal lives: another zone's master (it outlives the zone's trouble); the candidate in a one-zone cluster. */
function journalNodes(topo: Topology, cluster: string, zone: string, candidate?: string): ResolvedNode[] {
  const others = topo.zonesOf(cluster).filter((z) => z !== zone).map((z) => topo.master(cluster, z));
  const own = topo.nodes(cluster).filter((n) => n.zone === zone && !n.fenced && (candidate === undefined || n.name === candidate));
  return [...others, ...own];
}

/**
 * Where the failover's lease lives: every other zone's master (the dead zone cannot hold it). A
 * one-zone cluster holds it on the candidate, unlogged (sql_log_bin=0: no transaction its replicas,
 * or the old master, would lack).
 */
function leaseZones(topo: Topology, cluster: string, zone: string, candidate: NodeRef): { zones: Array<{ zone: string; node: ResolvedNode }>; unlogged?: boolean } {
  const others = topo.zonesOf(cluster).filter((z) => z !== zone).map((z) => ({ zone: z, node: topo.master(cluster, z) }));
  if (others.length) return { zones: others };
  const node = topo.nodes(cluster).find((n) => n.zone === zone && sameServer(n, candidate));
  return node ? { zones: [{ zone, node }], unlogged: true } : { zones: [] };
}

/**
 * acquireJob logs the creation of `_ezctl` (a watch's tables must reach its replicas); on a candidate
 * still applying the old master's relay log that would be a transaction of its own amid them: create
 * them here first, unlogged, so acquireJob finds them.
 */
async function leaseOn(ctx: Ctx, l: ReturnType<typeof leaseZones>): Promise<ReturnType<typeof leaseZones>> {
  if (!l.unlogged) return l;
  for (const z of l.zones) {
    await withDb(ctx, z.node, async (db) => {
      await db.exec('SET SESSION sql_log_bin = 0');
      await ensureStateSchema(db);
    });
  }
  return l;
}

async function openJournal(ctx: Ctx, node: ResolvedNode, local: boolean): Promise<{ db: Db; journal: MariaDbJournal }> {
  const db = await ctx.connect(node);
  // on the candidate itself (a one-zone cluster), the journal must not be a transaction its replicas lack
  if (local) await db.exec('SET SESSION sql_log_bin = 0');
  return { db, journal: await MariaDbJournal.open(db) };
}

/** The last failover of the zone that passed its point of no return, from the journal. */
export async function lastFailover(db: Db, cluster: string, zone: string): Promise<{ jobId: string; atMs: number } | null> {
  // only read: creating `_ezctl` here would be a transaction of its own on a replica (ezctl's user
  // passes read_only), one the new master lacks (seen: 1-103-15 on a replica, error 1236 on repoint)
  const T = quoteTable(STATE_SCHEMA, 'job_steps');
  const exists = await db.value<number | string>('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [STATE_SCHEMA, 'job_steps']);
  if (Number(exists) === 0) return null;
  const rows = await db.query<{ job_id: string; at: string | number }>(
    `SELECT h.job_id, MAX(s.at_ms) AS at FROM ${T} h JOIN ${T} s ON s.job_id = h.job_id AND s.step = 'promote' AND s.state = 'done'
     WHERE h.seq = 1 AND JSON_VALUE(h.detail, '$.kind') = ? AND JSON_VALUE(h.detail, '$.params.cluster') = ? AND JSON_VALUE(h.detail, '$.params.zone') = ?
     GROUP BY h.job_id ORDER BY at DESC LIMIT 1`,
    [FAILOVER_KIND, cluster, zone],
  );
  const r = rows[0];
  return r ? { jobId: r.job_id, atMs: Number(r.at) } : null;
}

async function withDb<T>(ctx: Ctx, node: ResolvedNode, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await ctx.connect(node);
  try {
    return await fn(db);
  } finally {
    await db.close().catch(() => undefined);
  }
}

/** What other zones' DRC applied of the zone's domain beyond `have` (the new master's position). */
async function drcAhead(ctx: Ctx, topo: Topology, p: Pick<FailoverParams, 'cluster' | 'zone' | 'flavor' | 'domain'>, have: string): Promise<Array<{ to: string; checkpoint: string | null; lost: { text: string[]; count: bigint; empty: boolean } }>> {
  const drc = new DrcClient(ctx, topo, p.cluster);
  const out = [];
  for (const to of topo.zonesOf(p.cluster).filter((z) => z !== p.zone)) {
    const cp = await drc.checkpointOf(p.zone, to);
    const lost = cp ? gtidDifference(p.flavor, domainOnly(cp, p.domain), domainOnly(have, p.domain)) : { text: [], count: 0n, empty: true };
    out.push({ to, checkpoint: cp, lost });
  }
  return out;
}

function lostSummary(from: Array<{ source: string; text: string[]; count: bigint }>): LostGtids {
  const seen = new Set<string>();
  const gtids: string[] = [];
  let count = 0n;
  for (const f of from) {
    for (const t of f.text) if (!seen.has(t)) seen.add(t), gtids.push(t);
  }
  // the sources overlap (each zone's DRC read the same binlog): the widest one counts
  for (const f of from) if (f.count > count) count = f.count;
  return {
    gtids,
    count: count.toString(),
    from: from.filter((f) => f.text.length).map((f) => ({ source: f.source, gtids: f.text })),
    note: 'known from what other zones\' DRC and the replicas received; what the old master committed that nobody received is named by `ezctl emha rejoin` once it is back',
  };
}

function buildPlan(ctx: Ctx, p: FailoverParams, journal: () => MariaDbJournal, relayTimeoutMs: number, checkpoints: CheckpointChange[]): Plan<FailoverParams> {
  const topo = () => freshTopology(p.topologyPath);
  const candidate = p.newMaster;
  const stepDetail = async (jobId: string, step: string): Promise<Record<string, unknown> | undefined> => {
    const j = await journal().load(jobId);
    return [...(j?.events ?? [])].reverse().find((e) => e.step === step && e.state === 'done' && e.detail && Object.keys(e.detail).some((k) => k !== 'by'))?.detail;
  };
  const refuseSql = (why: string) => refused(`${candidate.name} cannot apply its relay log: its SQL thread stopped: ${why}`, { hint: 'fix the cause on the candidate (or choose another with --to), then run the failover again' });
  const before: Step<FailoverParams>[] = [
    {
      name: 'fence-old-master',
      describe: () => ({ does: `fence ${p.oldMaster.name} (${addrOf(p.oldMaster)}): the topology file's fenced list (DRC never reads or writes it, the sandbox restarts it read_only) and the proxy (out of every route, sessions shut)` }),
      async do() {
        return { ...(await fenceNodeEverywhere(ctx, topo(), { cluster: p.cluster, zone: p.zone, name: p.oldMaster.name })) };
      },
      async undo() {
        const t = topo();
        const proxy = routingTarget(t, p.cluster, p.zone);
        if (proxy) {
          await proxy.unfence(p.oldMaster.name);
          // the old master is still the file's master: its write route comes back as it was
          if (!(await proxy.currentWrite())) await proxy.moveWrite(p.oldMaster, { killExisting: false });
        }
        unfenceInFile(t, p.cluster, p.zone, p.oldMaster.name);
      },
    },
    {
      name: 'apply-relay-log',
      describe: () => ({ does: `wait until ${candidate.name} has applied all it received from ${p.oldMaster.name} (${p.candidateReceived || 'nothing'}); refused when its SQL thread stops on an error`, sql: ['START SLAVE SQL_THREAD  -- only if it is stopped without an error', 'SELECT @@gtid_current_pos  -- until it covers Gtid_IO_Pos'] }),
      changesNothing: true,
      timeoutMs: relayTimeoutMs,
      waitsFor: `${candidate.name} to apply its relay log`,
      async do(sc) {
        return withNode(ctx, p, candidate, async (db) => {
          let st = await replState(db);
          if (st.replica && st.replica.sqlState !== 'Yes') {
            if (st.replica.lastSqlError) throw refuseSql(st.replica.lastSqlError);
            await db.exec('START SLAVE SQL_THREAD');
          }
          const target = st.replica?.retrievedGtid || p.candidateReceived;
          for (;;) {
            const w = await waitApplied(db, target, { timeoutMs: 500, signal: sc.signal, onProgress: (behind, at) => sc.waitingFor(`${candidate.name}: ${behind} transaction(s) behind (at ${at}, received ${target})`) });
            if (w.reached) break;
            st = await replState(db);
            if (st.replica && st.replica.sqlState !== 'Yes' && st.replica.lastSqlError) throw refuseSql(st.replica.lastSqlError);
            if (sc.signal.aborted) throw sc.signal.reason instanceof Error ? sc.signal.reason : new Error('aborted');
          }
          // the new master's position at promotion: what the other zones' DRC checkpoints are set back to
          return { position: (await replState(db)).gtidBinlogPos, received: target };
        });
      },
    },
  ];
  const drcCheckpoints: Step<FailoverParams> = {
    name: 'drc-checkpoints',
    describe: () => ({ does: `where another zone's DRC applied transactions of zone ${p.zone} that ${candidate.name} never received, set that direction's checkpoint back to ${candidate.name}'s position at promotion in domain ${p.domain ?? '-'} (else DRC stops as diverged, or skips the new master's transactions that reuse those sequence numbers); a daemon on this host writes it once it reads from ${candidate.name}` }),
    async do(sc) {
      const d = await stepDetail(sc.jobId, 'apply-relay-log');
      const at = typeof d?.position === 'string' ? d.position : undefined;
      if (at === undefined) throw runtimeError(`the journal has no position of ${candidate.name} at its promotion (apply-relay-log's detail)`);
      const t = topo();
      const drc = new DrcClient(ctx, t, p.cluster);
      const offset = t.cluster(p.cluster).config.drc?.drcDomainOffset ?? DEFAULT_DRC_DOMAIN_OFFSET;
      const changes: CheckpointChange[] = [];
      for (const a of await drcAhead(ctx, t, p, at)) {
        const direction = `${p.zone}->${a.to}`;
        if (!a.checkpoint || a.lost.empty || p.domain === null) {
          changes.push({ direction, at: a.to, from: a.checkpoint, to: a.checkpoint ?? '', via: 'none', lost: [] });
          continue;
        }
        const to = replaceDomain(a.checkpoint, p.domain, at);
        const r = await drc.setCheckpoint(p.zone, a.to, to, candidate, { sourceDomain: p.domain, drcDomainOffset: offset });
        sc.log(`DRC ${direction}: checkpoint ${a.checkpoint} → ${to} (${r.via === 'daemon' ? 'the daemon writes it when it reads from the new master' : 'written'}); lost: ${a.lost.text.join(', ')}`);
        changes.push({ direction, at: a.to, from: a.checkpoint, to, via: r.via, lost: a.lost.text });
      }
      checkpoints.splice(0, checkpoints.length, ...changes);
      return { checkpoints: changes };
    },
  };
  const drcWritten: Step<FailoverParams> = {
    name: 'drc-checkpoint-written',
    describe: () => ({ does: `wait until a DRC daemon on this host has written the checkpoints set back (it does when it reads from ${candidate.name})` }),
    timeoutMs: 60_000,
    waitsFor: 'DRC to write the checkpoints set back',
    async do(sc) {
      const drc = new DrcClient(ctx, topo(), p.cluster);
      if (!(await drc.daemonHere())) return { drc: 'no daemon on this host' };
      for (const to of topo().zonesOf(p.cluster).filter((z) => z !== p.zone)) {
        sc.waitingFor(`DRC ${p.zone}->${to} to write its checkpoint set back (it reads from ${candidate.name})`);
        if (!(await drc.waitCheckpoint(p.zone, to, 55_000, sc.signal))) throw runtimeError(`DRC ${p.zone}->${to} has not written the checkpoint set back: is ${candidate.name} reachable from the daemon?`);
      }
      return { drc: 'written' };
    },
  };
  // after the point of no return: the takeover's steps (switch's too), the checkpoints set back before DRC is repointed
  const steps = [...before, promoteStep<FailoverParams>(ctx, p), ...takeoverSteps<FailoverParams>(ctx, p, { afterRoute: [drcCheckpoints] }), drcWritten];
  return { kind: FAILOVER_KIND, params: p, cluster: p.cluster, steps };
}

/** `ezctl emha failover`: assess, choose, refuse or plan, and (with --execute) run the failover. */
export async function emhaFailover(ctx: Ctx, o: FailoverOptions): Promise<FailoverReport> {
  const topo = await ctx.topology();
  const { name: cluster } = topo.cluster(o.cluster);
  if (!topo.zonesOf(cluster).includes(o.zone)) throw badInput(`cluster ${cluster} has no zone ${JSON.stringify(o.zone)}`, { hint: `zones: ${topo.zonesOf(cluster).join(', ')}` });
  if (o.resume || o.rollback) return resumeFailover(ctx, topo, cluster, o);
  const master = topo.master(cluster, o.zone);
  if (master.fenced) throw refused(`zone ${o.zone}'s master ${master.name} is fenced in the topology file: a failover of the zone is under way or was left half-done`, { hint: '`ezctl jobs` and the journal name the failover job: resume it (--resume JOB)' });
  const assessment = await assessMaster(ctx, topo, cluster, o.zone, o.probeTimeoutMs ? { connectTimeoutMs: o.probeTimeoutMs } : {});
  const refusals: string[] = [];
  if (assessment.verdict !== 'dead') {
    refusals.push(`${master.name} (${describeAddress(master)}) is not dead (${assessment.verdict}): ${assessment.vantages.map((v) => `${v.from} sees it ${v.sees} (${v.detail})`).join('; ')}`);
  }
  // the replicas: what each received and applied, and whether it can be the new master
  const replicas = topo.nodes(cluster).filter((n) => n.zone === o.zone && n.role === 'replica' && !n.fenced);
  const states = new Map<string, NodeReplState>();
  const views: ReplicaView[] = await Promise.all(replicas.map(async (r): Promise<ReplicaView> => {
    try {
      const st = await withDb(ctx, r, (db) => replState(db));
      states.set(r.name, st);
      const rep = st.replica;
      const why: string[] = [];
      if (!rep || !sameServer({ host: rep.sourceHost, port: rep.sourcePort }, master)) why.push(rep ? `replicates from ${rep.sourceHost}:${rep.sourcePort}, not ${master.name}` : 'replicates from nobody');
      if (st.delaySeconds > 0) why.push(`delayed by ${st.delaySeconds} s (MASTER_DELAY)`);
      if (!st.logBin || !st.logSlaveUpdates || st.binlogFormat !== 'ROW') why.push('no log_bin with log_slave_updates and ROW binlog (DRC reads the new master\'s binlog)');
      if (rep && rep.sqlState !== 'Yes' && rep.lastSqlError) why.push(`its SQL thread stopped on relay log it cannot apply: ${rep.lastSqlError}`);
      return { name: r.name, reachable: true, received: rep?.retrievedGtid ?? '', applied: st.gtidCurrentPos, sql: rep ? rep.sqlState : '-', eligible: why.length === 0, why: why.join('; ') };
    } catch (e) {
      return { name: r.name, reachable: false, received: '', applied: '', sql: '-', eligible: false, why: `not reachable: ${(e as Error).message}` };
    }
  }));
  const domains = new Set([...states.values()].map((s) => s.domainId));
  const domain = [...states.values()][0]?.domainId ?? null;
  if (domains.size > 1) refusals.push(`the zone's replicas have different gtid_domain_id (${[...domains].join(', ')}): a promoted replica must keep the zone's domain, or DRC takes its writes for another zone's`);
  let candidateName = o.to;
  if (candidateName) {
    const v = views.find((x) => x.name === candidateName);
    if (!v) throw badInput(`--to ${candidateName} is not a replica of zone ${o.zone}`, { hint: `replicas: ${replicas.map((r) => r.name).join(', ') || 'none'}` });
    if (!v.eligible) refusals.push(`${candidateName} cannot be promoted: ${v.why}`);
  } else {
    candidateName = pickCandidate(views, domain, [...states.values()][0]?.flavor ?? 'mariadb');
    if (!candidateName) refusals.push(`no replica of zone ${o.zone} can be promoted: ${views.length ? views.map((v) => `${v.name}: ${v.why}`).join('; ') : 'the zone has no replica'}`);
    else {
      const ahead = views.filter((v) => v.name !== candidateName && v.reachable && !v.eligible && v.why.includes('SQL thread'));
      for (const v of ahead) ctx.log.warn(`${v.name} is not a candidate: ${v.why}`);
    }
  }
  // a global cluster: the write zone's failover moves every zone's proxy write route (each writes
  // to the write zone's master); another zone's moves only its read pool
  const g = await globalWriteZone(ctx, topo, cluster).catch((e: Error) => {
    ctx.log.warn(`cannot read the routing table of ${cluster}: ${e.message}; the topology file's writerZone is used`);
    const w = topo.cluster(cluster).config.writerZone;
    return w && topo.cluster(cluster).config.model === 'global' ? { writeZone: w, from: 'file' as const, version: 0, state: 'active' as const, unreachable: [] } : null;
  });
  const routeZones = writeRouteZones(topo, cluster, o.zone, g);
  if (g?.state === 'blocked') refusals.push(`the routing table of ${cluster} (v${g.version}) is blocked: a gz switch is between its block and its flip, or died there (finish it first: rerunning that \`ezctl gz switch\` resumes it)`);
  // another job holding the cluster (a gz switch or move, an emha switch): the lease would refuse
  // the failover later; said here with the rest, nothing touched
  for (const z of topo.zonesOf(cluster).filter((x) => x !== o.zone)) {
    const rows = await withDb(ctx, topo.master(cluster, z), (db) => leaseRows(db, z, cluster)).catch(() => []);
    for (const r of rows) {
      if (!overlaps(r.target, [`emha:${o.zone}`])) continue;
      const l = liveness(r, here());
      refusals.push(`another job holds the cluster: zone ${z}: ${describeHolder(r)}, ${l.live ? `lease left ${formatDuration(l.leftMs)}` : `dead: ${l.why}; resume or abort it first`})`);
    }
  }
  const cand = candidateName ? replicas.find((r) => r.name === candidateName) : undefined;
  const candView = cand ? views.find((v) => v.name === cand.name) : undefined;
  const flavor: Flavor = [...states.values()][0]?.flavor ?? 'mariadb';
  const notRepointed: string[] = [];
  const params: FailoverParams | undefined = cand
    ? (() => {
        // a replica holding what the candidate lacks cannot replicate from it: left out (and named)
        const candHeld = heldOf(candView!, flavor);
        const others = replicas.filter((r) => {
          const v = views.find((x) => x.name === r.name)!;
          if (r.name === cand.name || !v.reachable) return false;
          const extra = gtidDifference(flavor, heldOf(v, flavor), candHeld);
          if (!extra.empty) notRepointed.push(`${r.name}: holds ${extra.text.join(', ')}, which ${cand.name} lacks (it cannot replicate from it; \`ezctl emha rejoin --node ${r.name}\` names them once reconciled)`);
          return extra.empty;
        }).map(refOf);
        const fp: FailoverParams = { cluster, zone: o.zone, topologyPath: topo.path, newMaster: refOf(cand), replicas: others, readPool: others, oldMaster: refOf(master), flavor, domain, candidateReceived: candView?.received ?? '', writeRouteZones: routeZones };
        if (g) fp.writeZone = g.writeZone;
        return fp;
      })()
    : undefined;
  for (const n of notRepointed) ctx.log.warn(`not repointed under the new master: ${n}`);
  // lost GTIDs known now: what other zones' DRC applied and other replicas received beyond the candidate
  let lost: LostGtids = lostSummary([]);
  if (params) {
    const have = candView!.received || candView!.applied;
    const sources: Array<{ source: string; text: string[]; count: bigint }> = [];
    try {
      for (const a of await drcAhead(ctx, topo, params, have)) sources.push({ source: `DRC ${o.zone}->${a.to} (checkpoint at zone ${a.to}: ${a.checkpoint ?? 'none'})`, text: a.lost.text, count: a.lost.count });
    } catch (e) {
      ctx.log.warn(`cannot read the other zones' DRC checkpoints: ${(e as Error).message}`);
    }
    for (const v of views) {
      if (v.name === cand!.name || !v.received) continue;
      const d = gtidDifference(flavor, domainOnly(v.received, domain), domainOnly(have, domain));
      sources.push({ source: `${v.name}'s relay log`, text: d.text, count: d.count });
    }
    lost = lostSummary(sources);
  }
  // anti-flap, from the journal
  let last: FailoverReport['lastFailover'] = null;
  // every journal a failover of the zone may have used: the other zones' masters; in a one-zone
  // cluster each of the zone's nodes (the journal is unlogged on the candidate, not replicated)
  const multi = topo.zonesOf(cluster).length > 1;
  const journals = journalNodes(topo, cluster, o.zone).filter((n) => !multi || n.zone !== o.zone);
  const seen = await Promise.all(journals.map(async (jn) => {
    try {
      return await withDb(ctx, jn, (db) => lastFailover(db, cluster, o.zone));
    } catch (e) {
      if (jn.zone !== o.zone) ctx.log.warn(`cannot read the failover journal at ${jn.name}: ${(e as Error).message}`);
      return null;
    }
  }));
  for (const l of seen) if (l && (!last || l.atMs > last.atMs)) last = { ...l, at: new Date(l.atMs).toISOString() };
  const antiFlap = o.antiFlapMs ?? DEFAULT_ANTI_FLAP_MS;
  if (last && Date.now() - last.atMs < antiFlap) {
    refusals.push(`zone ${o.zone} failed over ${formatDuration(Date.now() - last.atMs)} ago (job ${last.jobId}, ${last.at}), within --anti-flap ${formatDuration(antiFlap)}: a master that keeps dying needs a person (orchestrator's recovery block)`);
  }
  const checkpoints: CheckpointChange[] = [];
  let journal: MariaDbJournal | undefined;
  let jobHandle: JobHandle | undefined;
  const plan = params ? buildPlan(ctx, params, () => journal!, o.relayTimeoutMs ?? DEFAULT_RELAY_TIMEOUT_MS, checkpoints) : undefined;
  const report: FailoverReport = {
    cluster, zone: o.zone, execute: !!o.execute, assessment, oldMaster: refOf(master), candidate: params?.newMaster ?? null, replicas: views, lost, lastFailover: last, notRepointed, global: g, writeRouteZones: routeZones,
    steps: plan ? plan.steps.map((s) => ({ name: s.name, ...s.describe(), ...(s.pointOfNoReturn ? { pointOfNoReturn: true } : {}), ...(s.timeoutMs ? { bound: formatDuration(s.timeoutMs) } : {}) })) : [],
    exitCode: ExitCode.ok,
  };
  if (refusals.length) {
    throw refused(`failover of zone ${o.zone} refused: ${refusals.length === 1 ? refusals[0]! : `${refusals.length} reasons`}`, { details: refusals.length === 1 ? assessment.vantages.map((v) => `${v.from}: ${v.sees}: ${v.detail}`) : refusals, hint: 'nothing was changed' });
  }
  if (!o.execute) return report;
  // the job: its lease in every other zone (the dead one cannot hold it), its journal outside the zone
  jobHandle = await acquireJob(ctx, { cluster, kind: FAILOVER_KIND, targets: [`emha:${o.zone}`], ...(await leaseOn(ctx, leaseZones(topo, cluster, o.zone, params!.newMaster))), ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}), phase: 'failover' });
  let jdb: Db | undefined;
  try {
    const jnode = journalNodes(topo, cluster, o.zone, cand!.name)[0]!;
    const opened = await openJournal(ctx, jnode, jnode.zone === o.zone);
    jdb = opened.db;
    journal = opened.journal;
    ctx.log.info(`failover job ${jobHandle.id} (journal ${journal.where}); should this process die, \`ezctl emha failover --cluster ${cluster} --zone ${o.zone} --resume ${jobHandle.id}\` continues it from any host`);
    const result = await runPlan(plan!, { jobId: jobHandle.id, journal, guard: jobHandle, hooks: hookRunner(hooksFromTopology(topo.file, topo.dir, cluster)), signal: jobHandle.signal, log: (m) => ctx.log.info(m) });
    report.jobId = jobHandle.id;
    report.result = result;
    report.checkpoints = checkpoints;
    report.exitCode = result.exitCode;
    if (result.outcome === 'done') await jobHandle.finish();
    else await jobHandle.fail(new Error(result.error?.message ?? result.outcome));
    return report;
  } catch (e) {
    await jobHandle.fail(e).catch(() => undefined);
    throw e;
  } finally {
    await jdb?.close().catch(() => undefined);
  }
}

/** --resume JOB / --rollback JOB: the plan rebuilt from the journaled parameters. */
async function resumeFailover(ctx: Ctx, topo: Topology, cluster: string, o: FailoverOptions): Promise<FailoverReport> {
  const jobId = (o.resume ?? o.rollback)!;
  let found: { db: Db; journal: MariaDbJournal; params: FailoverParams } | undefined;
  for (const n of journalNodes(topo, cluster, o.zone)) {
    try {
      const opened = await openJournal(ctx, n, n.zone === o.zone);
      const j = await readJob(opened.journal, jobId);
      if (j && j.header.kind === FAILOVER_KIND) {
        found = { ...opened, params: j.header.params as FailoverParams };
        break;
      }
      await opened.db.close();
    } catch {
      /* next */
    }
  }
  if (!found) throw badInput(`no failover job ${jobId} of zone ${o.zone} in a journal (looked at ${journalNodes(topo, cluster, o.zone).map((n) => n.name).join(', ')})`);
  const p = found.params;
  const handle = await acquireJob(ctx, { cluster, kind: FAILOVER_KIND, targets: [`emha:${p.zone}`], ...(await leaseOn(ctx, leaseZones(topo, cluster, p.zone, p.newMaster))), resume: true, ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}), phase: 'failover' });
  if (handle.id !== jobId) {
    await handle.release().catch(() => undefined);
    await found.db.close().catch(() => undefined);
    throw refused(`the lease of zone ${p.zone}'s failovers belongs to job ${handle.id}, not ${jobId}: resume that one`, { hint: '`ezctl jobs` lists the jobs' });
  }
  const checkpoints: CheckpointChange[] = [];
  const plan = buildPlan(ctx, p, () => found!.journal, o.relayTimeoutMs ?? DEFAULT_RELAY_TIMEOUT_MS, checkpoints);
  try {
    const opts = { jobId, journal: found.journal, guard: handle, hooks: hookRunner(hooksFromTopology(topo.file, topo.dir, cluster)), signal: handle.signal, log: (m: string) => ctx.log.info(m) };
    const result = o.resume ? await resumePlan(plan, opts) : await rollbackPlan(plan, opts);
    if (result.outcome === 'done') await handle.finish();
    else await handle.fail(new Error(result.error?.message ?? result.outcome));
    return {
      cluster, zone: p.zone, execute: true, assessment: { cluster, zone: p.zone, master: p.oldMaster.name, verdict: 'dead', vantages: [], tookMs: 0 }, oldMaster: p.oldMaster, candidate: p.newMaster, replicas: [], lost: lostSummary([]), lastFailover: null, notRepointed: [],
      steps: plan.steps.map((s) => ({ name: s.name, ...s.describe() })), jobId, result, checkpoints, exitCode: result.exitCode,
    };
  } catch (e) {
    await handle.fail(e).catch(() => undefined);
    throw e;
  } finally {
    await found.db.close().catch(() => undefined);
  }
}

export function renderFailover(r: FailoverReport): string {
  const out: string[] = [];
  out.push(`failover of ${r.cluster}/${r.zone}: ${r.oldMaster.name} (${r.oldMaster.host}:${r.oldMaster.port}) is ${r.assessment.verdict}${r.assessment.tookMs ? ` (assessed in ${r.assessment.tookMs} ms)` : ''}`);
  for (const v of r.assessment.vantages) out.push(`  ${v.from}: ${v.sees} (${v.detail})`);
  if (r.replicas.length) {
    out.push('replicas:');
    for (const v of r.replicas) out.push(`  ${v.name}${r.candidate?.name === v.name ? ' [candidate]' : ''}: received ${v.received || '-'}, applied ${v.applied || '-'}${v.eligible ? '' : `; not a candidate: ${v.why}`}`);
  }
  if (r.candidate) out.push(`new master: ${r.candidate.name} (${r.candidate.host}:${r.candidate.port})`);
  if (r.global) {
    const others = (r.writeRouteZones ?? []).filter((z) => z !== r.zone);
    out.push(`global cluster: ${describeWriteZone(r.global)}: ${r.global.writeZone === r.zone ? `every zone's proxy writes to this zone's master: the write routes of ${[r.zone, ...others].join(', ')} move to the new master` : `the zone's proxy writes to ${r.global.writeZone}'s master and keeps doing so (only its read pool moves)`}`);
  }
  out.push(r.lost.gtids.length ? `lost GTIDs (known now, ${r.lost.count}): ${r.lost.gtids.join(', ')}` : 'lost GTIDs known now: none');
  for (const f of r.lost.from) out.push(`  ${f.source}: ${f.gtids.join(', ')}`);
  if (r.lost.gtids.length) out.push(`  the rows those transactions wrote are in the other zones and not in ${r.zone}: \`ezctl check full --cluster ${r.cluster}\` names them, \`ezctl repair\` reconciles`);
  out.push(`  (${r.lost.note})`);
  for (const c of r.checkpoints ?? []) if (c.via !== 'none') out.push(`DRC ${c.direction}: checkpoint set back ${c.from} → ${c.to} (${c.via === 'daemon' ? 'by the daemon on this host' : `at zone ${c.at}`})`);
  for (const n of r.notRepointed) out.push(`not repointed: ${n}`);
  if (!r.result) {
    out.push(`steps${r.execute ? '' : ' (dry run: nothing changed; add --execute)'}:`);
    r.steps.forEach((s, i) => {
      out.push(`  ${i + 1}. ${s.name}: ${s.does}${s.bound ? ` (at most ${s.bound})` : ''}`);
      for (const q of s.sql ?? []) out.push(`       ${q}`);
      if (s.pointOfNoReturn) out.push('     ---- point of no return ----');
    });
  } else {
    out.push(`job ${r.jobId}: ${r.result.outcome}${r.result.ponrPassed ? ' (past the point of no return)' : ''} in ${r.result.totalMs} ms`);
    for (const t of r.result.timeline) out.push(`  ${String(t.startMs).padStart(6)} ms  ${t.step.padEnd(18)} ${t.action.padEnd(5)} ${String(t.durationMs).padStart(5)} ms  ${t.outcome}${t.error ? `: ${t.error}` : ''}`);
  }
  return out.join('\n');
}

/** The result as the command's exit: an error for a job that did not end done. */
export function failoverError(r: FailoverReport): EzError | undefined {
  if (!r.result || r.result.outcome === 'done') return undefined;
  const e = r.result.error;
  return new EzError(r.result.exitCode, `failover ${r.jobId}: ${r.result.outcome}${e?.step ? ` at ${e.step}` : ''}: ${e?.message ?? ''}`, { ...(e?.hint ? { hint: e.hint } : {}), details: r.result.refusals ?? [] });
}
