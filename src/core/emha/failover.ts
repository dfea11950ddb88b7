// `ezctl emha failover`: the zone's master is dead; promote its most advanced replica.
//
// As orchestrator's DeadMaster and MHA's failover: the master is dead only when ezctl cannot reach
// it AND every replica of the zone says its IO thread lost it (a SIGSTOPped master still holds its
// replicas' TCP sessions until slave_net_timeout: not dead, refused). The candidate is the replica
// that received the most (Gtid_IO_Pos), once it has applied all of it. The old master is fenced
// (topology `fenced`, the proxy, DRC, and read_only when the sandbox restarts it: fence.ts) before
// the candidate is promoted; every GTID known lost is named; a DRC checkpoint ahead of the new
// master (the other zones applied what the new master never got) is set back to the new master's
// position, through DRC's client. A journaled job on the step engine, with a lease; refused while
// the zone's last failover is more recent than --anti-flap.
import type { Ctx } from '../context.js';
import type { ResolvedNode, Topology } from '../config/load.js';
import type { Db } from '../db/connect.js';
import { describeAddress } from '../config/dsn.js';
import { parseMariaPos, formatMariaPos, type Flavor } from '../db/gtid.js';
import { gtidDifference, promote, replicateFrom, replicatesFrom, replicationCredentials, replState, waitApplied, type NodeReplState } from '../db/replication.js';
import { quoteTable } from '../db/quote.js';
import { badInput, EzError, ExitCode, refused, runtimeError } from '../exit.js';
import { formatDuration } from '../throttle/duration.js';
import { editTopologyFile, setZoneMaster } from '../config/editor.js';
import { routingTarget } from '../proxy/index.js';
import { DrcClient } from '../drc/client.js';
import { acquireJob, newJobId, type JobHandle } from '../job/job.js';
import { MariaDbJournal } from '../steps/mariadb-journal.js';
import { readJob, resumePlan, rollbackPlan, runPlan, type Plan, type Step, type StepsResult } from '../steps/engine.js';
import { hookRunner, hooksFromTopology } from '../steps/hooks.js';
import { STATE_SCHEMA, ensureStateSchema } from '../state/schema.js';
import { fenceNodeEverywhere, unfenceInFile } from './fence.js';
import { assessMaster, type MasterAssessment } from './detect.js';

export const FAILOVER_KIND = 'emha-failover';
/** orchestrator's RecoveryPeriodBlockSeconds default: one failover of a zone per hour */
export const DEFAULT_ANTI_FLAP_MS = 3_600_000;
export const DEFAULT_RELAY_TIMEOUT_MS = 60_000;
const DEFAULT_DRC_DOMAIN_OFFSET = 1000;

const LOOPBACK = ['localhost', '127.0.0.1', '::1'];
export function sameServer(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  if (a.port !== b.port) return false;
  const x = a.host.toLowerCase();
  const y = b.host.toLowerCase();
  return x === y || (LOOPBACK.includes(x) && LOOPBACK.includes(y));
}

// ---- the plan ----

export interface NodeRef { name: string; host: string; port: number }
const ref = (n: { name: string; host: string; port: number }): NodeRef => ({ name: n.name, host: n.host, port: n.port });

/** What the plan is rebuilt from (journaled; no secrets). */
export interface FailoverParams {
  cluster: string;
  zone: string;
  oldMaster: NodeRef;
  candidate: NodeRef;
  /** the zone's other replicas, repointed under the candidate */
  replicas: NodeRef[];
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
  /** replicas the failover could not repoint under the new master (each with why): `emha rejoin` them */
  notRepointed?: string[];
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

/** The most advanced of the eligible replicas: received most in the zone's domain, then applied most, then file order. */
export function pickCandidate(views: Array<{ name: string; eligible: boolean; received: string; applied: string }>, domain: number | null): string | undefined {
  const seq = (p: string) => (domain === null ? 0n : parseMariaPos(p).get(domain)?.seq ?? 0n);
  let best: (typeof views)[number] | undefined;
  for (const v of views) {
    if (!v.eligible) continue;
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

async function openJournal(ctx: Ctx, node: ResolvedNode, local: boolean): Promise<{ db: Db; journal: MariaDbJournal }> {
  const db = await ctx.connect(node);
  // on the candidate itself (a one-zone cluster), the journal must not be a transaction its replicas lack
  if (local) await db.exec('SET SESSION sql_log_bin = 0');
  return { db, journal: await MariaDbJournal.open(db) };
}

/** The last failover of the zone that passed its point of no return, from the journal. */
export async function lastFailover(db: Db, cluster: string, zone: string): Promise<{ jobId: string; atMs: number } | null> {
  await ensureStateSchema(db);
  const T = quoteTable(STATE_SCHEMA, 'job_steps');
  const rows = await db.query<{ job_id: string; at: string | number }>(
    `SELECT h.job_id, MAX(s.at_ms) AS at FROM ${T} h JOIN ${T} s ON s.job_id = h.job_id AND s.step = 'promote' AND s.state = 'done'
     WHERE h.seq = 1 AND JSON_VALUE(h.detail, '$.kind') = ? AND JSON_VALUE(h.detail, '$.params.cluster') = ? AND JSON_VALUE(h.detail, '$.params.zone') = ?
     GROUP BY h.job_id ORDER BY at DESC LIMIT 1`,
    [FAILOVER_KIND, cluster, zone],
  );
  const r = rows[0];
  return r ? { jobId: r.job_id, atMs: Number(r.at) } : null;
}

function nodeOf(topo: Topology, cluster: string, r: NodeRef): ResolvedNode {
  const n = topo.nodes(cluster).find((x) => sameServer(x, r)) ?? topo.node(cluster, r.name);
  if (!n) throw runtimeError(`${r.name} (${r.host}:${r.port}) is no longer in the topology file`, { hint: 'put it back, or resume from a file that has it' });
  return n;
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

function buildPlan(ctx: Ctx, topoAtStart: Topology, p: FailoverParams, journal: () => MariaDbJournal, job: () => JobHandle | undefined, relayTimeoutMs: number, checkpoints: CheckpointChange[], notRepointed: string[] = []): Plan<FailoverParams> {
  let topo = topoAtStart;
  const reload = async () => (topo = (await import('../config/load.js')).loadTopology(topo.path));
  const candidate = () => nodeOf(topo, p.cluster, p.candidate);
  const stepDetail = async (jobId: string, step: string): Promise<Record<string, unknown> | undefined> => {
    const j = await journal().load(jobId);
    return [...(j?.events ?? [])].reverse().find((e) => e.step === step && e.state === 'done' && e.detail && Object.keys(e.detail).some((k) => k !== 'by'))?.detail;
  };
  const steps: Step<FailoverParams>[] = [
    {
      name: 'fence-old-master',
      describe: () => ({ does: `fence ${p.oldMaster.name} (${p.oldMaster.host}:${p.oldMaster.port}): the topology file's fenced list (DRC never reads or writes it, the sandbox restarts it read_only) and the proxy (out of every route, sessions shut)` }),
      async do(sc) {
        const proxy = routingTarget(topo, p.cluster, p.zone);
        const before = proxy ? (await proxy.currentWrite())?.name ?? null : null;
        sc.note({ proxyWriteBefore: before });
        const r = await fenceNodeEverywhere(ctx, topo, { cluster: p.cluster, zone: p.zone, name: p.oldMaster.name });
        await reload();
        return { ...r };
      },
      async undo() {
        const proxy = routingTarget(topo, p.cluster, p.zone);
        if (proxy) {
          await proxy.unfence(p.oldMaster.name);
          // the old master is still the file's master: its write route comes back as it was
          const cur = await proxy.currentWrite();
          if (!cur) await proxy.moveWrite(p.oldMaster, { killExisting: false });
        }
        unfenceInFile(topo, p.cluster, p.zone, p.oldMaster.name);
        await reload();
      },
    },
    {
      name: 'apply-relay-log',
      describe: () => ({ does: `wait until ${p.candidate.name} has applied all it received from ${p.oldMaster.name} (${p.candidateReceived || 'nothing'}); refused when its SQL thread stops on an error`, sql: ['START SLAVE SQL_THREAD  -- if it is stopped without an error', 'SELECT @@gtid_current_pos  -- until it covers Gtid_IO_Pos'] }),
      changesNothing: true,
      timeoutMs: relayTimeoutMs,
      waitsFor: `${p.candidate.name} to apply its relay log`,
      async do(sc) {
        return withDb(ctx, candidate(), async (db) => {
          let st = await replState(db);
          if (st.replica && st.replica.sqlState !== 'Yes') {
            if (st.replica.lastSqlError) throw refused(`${p.candidate.name} cannot apply its relay log: its SQL thread stopped: ${st.replica.lastSqlError}`, { hint: 'fix the cause on the candidate (or choose another with --to), then run the failover again' });
            await db.exec('START SLAVE SQL_THREAD');
          }
          const target = st.replica?.retrievedGtid || p.candidateReceived;
          for (;;) {
            const w = await waitApplied(db, target, { timeoutMs: 500, signal: sc.signal, onProgress: (behind, at) => sc.waitingFor(`${p.candidate.name}: ${behind} transaction(s) behind (at ${at}, received ${target})`) });
            if (w.reached) break;
            st = await replState(db);
            if (st.replica && st.replica.sqlState !== 'Yes' && st.replica.lastSqlError) {
              throw refused(`${p.candidate.name} cannot apply its relay log: its SQL thread stopped: ${st.replica.lastSqlError}`, { hint: 'fix the cause on the candidate (or choose another with --to), then run the failover again' });
            }
            sc.waitingFor(`${p.candidate.name}: applied ${w.at}, received ${target}`);
            if (sc.signal.aborted) throw sc.signal.reason instanceof Error ? sc.signal.reason : new Error('aborted');
          }
          const now = await replState(db);
          // the new master's position at promotion: what the other zones' DRC checkpoints are set back to
          return { position: now.gtidBinlogPos, received: target };
        });
      },
    },
    {
      name: 'promote',
      pointOfNoReturn: true,
      describe: () => ({ does: `promote ${p.candidate.name}: it stops replicating, forgets its master and becomes writable`, sql: ['STOP ALL SLAVES', 'RESET SLAVE ALL', 'SET GLOBAL read_only = 0'] }),
      async do() {
        job()?.assertHeld();
        await withDb(ctx, candidate(), (db) => promote(db));
      },
      async check() {
        return withDb(ctx, candidate(), async (db) => {
          const st = await replState(db);
          return st.replica === null && !st.readOnly;
        });
      },
    },
    {
      name: 'repoint-replicas',
      describe: () => ({ does: p.replicas.length ? `make ${p.replicas.map((r) => r.name).join(', ')} replicate from ${p.candidate.name} (by GTID, read_only)` : 'no other replica to repoint' }),
      async do(sc) {
        const creds = await replicationCredentials(topo, p.cluster, ctx.secrets());
        const done: string[] = [];
        const skipped: string[] = [];
        for (const r of p.replicas) {
          try {
            await withDb(ctx, nodeOf(topo, p.cluster, r), (db) => replicateFrom(db, p.candidate, creds ? { user: creds.user, ...(creds.password !== undefined ? { password: creds.password } : {}) } : {}));
            done.push(r.name);
          } catch (e) {
            skipped.push(`${r.name}: ${(e as Error).message}`);
            notRepointed.push(`${r.name}: ${(e as Error).message}`);
            ctx.log.warn(`${r.name} not repointed under ${p.candidate.name}: ${(e as Error).message}; \`ezctl emha rejoin --node ${r.name}\` once it answers`);
          }
        }
        return { repointed: done, skipped };
      },
      async check() {
        for (const r of p.replicas) {
          const ok = await withDb(ctx, nodeOf(topo, p.cluster, r), async (db) => replicatesFrom(await replState(db), p.candidate)).catch(() => true);
          if (!ok) return false;
        }
        return true;
      },
    },
    {
      name: 'move-proxy',
      describe: () => ({ does: routingTarget(topo, p.cluster, p.zone) ? `the zone's proxy sends writes to ${p.candidate.name} and reads to ${p.replicas.map((r) => r.name).join(', ') || `${p.candidate.name} (no replica left)`}` : 'no proxy in the topology file for this zone (route other proxies from hooks)' }),
      async do() {
        const proxy = routingTarget(topo, p.cluster, p.zone);
        if (!proxy) return { proxy: 'none' };
        await proxy.moveWrite(p.candidate, { killExisting: true });
        await proxy.setReadPool(p.replicas);
        return { proxy: proxy.label, write: p.candidate.name, read: p.replicas.map((r) => r.name) };
      },
    },
    {
      name: 'drc-checkpoints',
      describe: () => ({ does: `where another zone's DRC applied transactions of zone ${p.zone} that ${p.candidate.name} never received, set that direction's checkpoint back to ${p.candidate.name}'s position in domain ${p.domain ?? '-'} (else DRC stops as diverged, or skips the new master's transactions that reuse those sequence numbers)` }),
      async do(sc) {
        const d = await stepDetail(sc.jobId, 'apply-relay-log');
        const at = typeof d?.position === 'string' ? d.position : undefined;
        if (at === undefined) throw runtimeError(`the journal has no position of ${p.candidate.name} at its promotion (apply-relay-log's detail)`);
        const drc = new DrcClient(ctx, topo, p.cluster);
        const offset = topo.cluster(p.cluster).config.drc?.drcDomainOffset ?? DEFAULT_DRC_DOMAIN_OFFSET;
        const changes: CheckpointChange[] = [];
        for (const a of await drcAhead(ctx, topo, p, at)) {
          const direction = `${p.zone}->${a.to}`;
          if (!a.checkpoint || a.lost.empty || p.domain === null) {
            changes.push({ direction, at: a.to, from: a.checkpoint, to: a.checkpoint ?? '', via: 'none', lost: [] });
            continue;
          }
          const to = replaceDomain(a.checkpoint, p.domain, at);
          const r = await drc.setCheckpoint(p.zone, a.to, to, p.candidate, { sourceDomain: p.domain, drcDomainOffset: offset });
          sc.log(`DRC ${direction}: checkpoint ${a.checkpoint} → ${to} (${r.via === 'daemon' ? 'the daemon writes it when it reads from the new master' : 'written'}); lost: ${a.lost.text.join(', ')}`);
          changes.push({ direction, at: a.to, from: a.checkpoint, to, via: r.via, lost: a.lost.text });
        }
        checkpoints.splice(0, checkpoints.length, ...changes);
        return { checkpoints: changes };
      },
    },
    {
      name: 'topology-drc',
      describe: () => ({ does: `rewrite the topology file (zone ${p.zone}'s master: ${p.candidate.name}; ${p.oldMaster.name} among the replicas, fenced) and tell a DRC daemon on this host to reconnect the zone's directions` }),
      timeoutMs: 60_000,
      waitsFor: 'DRC to write the checkpoints set back',
      async do(sc) {
        const e = editTopologyFile(topo.path, (doc) => setZoneMaster(doc, p.cluster, p.zone, p.candidate));
        topo = e.topology;
        const drc = new DrcClient(ctx, topo, p.cluster);
        const daemon = await drc.repoint(p.zone);
        if (daemon) {
          for (const to of topo.zonesOf(p.cluster).filter((z) => z !== p.zone)) {
            sc.waitingFor(`DRC ${p.zone}->${to} to write its checkpoint set back (it reads from ${p.candidate.name})`);
            if (!(await drc.waitCheckpoint(p.zone, to, 50_000, sc.signal))) throw runtimeError(`DRC ${p.zone}->${to} has not written the checkpoint set back: is ${p.candidate.name} reachable from the daemon?`);
          }
        } else sc.log(`no DRC daemon of cluster ${p.cluster} on this host: repoint it where it runs (ezctl drc repoint), it reads the file anew`);
        return { file: e.changed ? 'rewritten' : 'unchanged', drcDaemon: daemon };
      },
    },
  ];
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
    candidateName = pickCandidate(views, domain);
    if (!candidateName) refusals.push(`no replica of zone ${o.zone} can be promoted: ${views.length ? views.map((v) => `${v.name}: ${v.why}`).join('; ') : 'the zone has no replica'}`);
    else {
      const ahead = views.filter((v) => v.name !== candidateName && v.reachable && !v.eligible && v.why.includes('SQL thread'));
      for (const v of ahead) ctx.log.warn(`${v.name} is not a candidate: ${v.why}`);
    }
  }
  const cand = candidateName ? replicas.find((r) => r.name === candidateName) : undefined;
  const candView = cand ? views.find((v) => v.name === cand.name) : undefined;
  const flavor: Flavor = [...states.values()][0]?.flavor ?? 'mariadb';
  const params: FailoverParams | undefined = cand
    ? { cluster, zone: o.zone, oldMaster: ref(master), candidate: ref(cand), replicas: replicas.filter((r) => r.name !== cand.name && views.find((v) => v.name === r.name)?.reachable).map(ref), flavor, domain, candidateReceived: candView?.received ?? '' }
    : undefined;
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
  const jn = journalNodes(topo, cluster, o.zone, cand?.name)[0];
  if (jn) {
    try {
      const l = await withDb(ctx, jn, (db) => lastFailover(db, cluster, o.zone));
      if (l) last = { ...l, at: new Date(l.atMs).toISOString() };
    } catch (e) {
      ctx.log.warn(`cannot read the failover journal at ${jn.name}: ${(e as Error).message}`);
    }
  }
  const antiFlap = o.antiFlapMs ?? DEFAULT_ANTI_FLAP_MS;
  if (last && Date.now() - last.atMs < antiFlap) {
    refusals.push(`zone ${o.zone} failed over ${formatDuration(Date.now() - last.atMs)} ago (job ${last.jobId}, ${last.at}), within --anti-flap ${formatDuration(antiFlap)}: a master that keeps dying needs a person (orchestrator's recovery block)`);
  }
  const checkpoints: CheckpointChange[] = [];
  const notRepointed: string[] = [];
  let journal: MariaDbJournal | undefined;
  let jobHandle: JobHandle | undefined;
  const plan = params ? buildPlan(ctx, topo, params, () => journal!, () => jobHandle, o.relayTimeoutMs ?? DEFAULT_RELAY_TIMEOUT_MS, checkpoints, notRepointed) : undefined;
  const report: FailoverReport = {
    cluster, zone: o.zone, execute: !!o.execute, assessment, oldMaster: ref(master), candidate: params?.candidate ?? null, replicas: views, lost, lastFailover: last,
    steps: plan ? plan.steps.map((s) => ({ name: s.name, ...s.describe(), ...(s.pointOfNoReturn ? { pointOfNoReturn: true } : {}), ...(s.timeoutMs ? { bound: formatDuration(s.timeoutMs) } : {}) })) : [],
    exitCode: ExitCode.ok,
  };
  if (refusals.length) {
    throw refused(`failover of zone ${o.zone} refused: ${refusals.length === 1 ? refusals[0]! : `${refusals.length} reasons`}`, { details: refusals.length === 1 ? assessment.vantages.map((v) => `${v.from}: ${v.sees}: ${v.detail}`) : refusals, hint: 'nothing was changed' });
  }
  if (!o.execute) return report;
  // the job: its lease in every other zone (the dead one cannot hold it), its journal outside the zone
  const zones = topo.zonesOf(cluster).filter((z) => z !== o.zone).map((z) => ({ zone: z, node: topo.master(cluster, z) }));
  jobHandle = await acquireJob(ctx, { cluster, kind: FAILOVER_KIND, targets: [`emha:${o.zone}`], zones, ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}), phase: 'failover' });
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
    report.notRepointed = notRepointed;
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
  const zones = topo.zonesOf(cluster).filter((z) => z !== p.zone).map((z) => ({ zone: z, node: topo.master(cluster, z) }));
  const handle = await acquireJob(ctx, { cluster, kind: FAILOVER_KIND, targets: [`emha:${p.zone}`], zones, resume: true, ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}), phase: 'failover' });
  const checkpoints: CheckpointChange[] = [];
  const notRepointed: string[] = [];
  const plan = buildPlan(ctx, topo, p, () => found!.journal, () => handle, o.relayTimeoutMs ?? DEFAULT_RELAY_TIMEOUT_MS, checkpoints, notRepointed);
  try {
    const opts = { jobId, journal: found.journal, guard: handle, hooks: hookRunner(hooksFromTopology(topo.file, topo.dir, cluster)), signal: handle.signal, log: (m: string) => ctx.log.info(m) };
    const result = o.resume ? await resumePlan(plan, opts) : await rollbackPlan(plan, opts);
    if (result.outcome === 'done') await handle.finish();
    else await handle.fail(new Error(result.error?.message ?? result.outcome));
    return {
      cluster, zone: p.zone, execute: true, assessment: { cluster, zone: p.zone, master: p.oldMaster.name, verdict: 'dead', vantages: [], tookMs: 0 }, oldMaster: p.oldMaster, candidate: p.candidate, replicas: [], lost: lostSummary([]), lastFailover: null,
      steps: plan.steps.map((s) => ({ name: s.name, ...s.describe() })), jobId, result, checkpoints, notRepointed, exitCode: result.exitCode,
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
  out.push(r.lost.gtids.length ? `lost GTIDs (known now, ${r.lost.count}): ${r.lost.gtids.join(', ')}` : 'lost GTIDs known now: none');
  for (const f of r.lost.from) out.push(`  ${f.source}: ${f.gtids.join(', ')}`);
  if (r.lost.gtids.length) out.push(`  the rows those transactions wrote are in the other zones and not in ${r.zone}: \`ezctl check full --cluster ${r.cluster}\` names them, \`ezctl repair\` reconciles`);
  out.push(`  (${r.lost.note})`);
  for (const c of r.checkpoints ?? []) if (c.via !== 'none') out.push(`DRC ${c.direction}: checkpoint set back ${c.from} → ${c.to} (${c.via === 'daemon' ? 'by the daemon on this host' : `at zone ${c.at}`})`);
  for (const n of r.notRepointed ?? []) out.push(`not repointed (rejoin it once it answers): ${n}`);
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
