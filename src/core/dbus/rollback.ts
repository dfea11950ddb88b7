// `ezctl dbus rollback NAME`: a move cut over goes back to its sources the same way it came:
//   block-routes -> fence-target -> final-position -> reverse-running -> drain-reverse -> verify
//   -> flip (point of no return) -> unfence-sources -> stop-reverse -> routes-everywhere
// (the reverse stream stops after the sources take writes again: it has drained the target's final
// position and the target is fenced, so it has nothing left to write; stopping it first would keep
// the clients out for its shutdown)
// The reverse stream the cut-over started has carried the target's writes to the sources; with the
// target fenced its last position is drained into them, the rows compared, and the route flipped
// back (sources first). The target keeps its fence afterwards (as before the cut-over: only the
// move's own stream writes there), so no instant has both sides open. Also: --resume / --rollback
// of a cut-over or rollback job by id (dbusAgain), which the same command run again after a crash
// does by itself.
import type { Ctx } from '../context.js';
import { loadTopology } from '../config/load.js';
import type { Db } from '../db/connect.js';
import { flavorOf } from '../db/server.js';
import { ExitCode, refused, runtimeError } from '../exit.js';
import { formatDuration } from '../throttle/duration.js';
import type { Plan, Step } from '../steps/engine.js';
import { spanOf, KeptConnections, type WindowGroups } from '../gz/index.js';
import { loadMove } from './spec.js';
import { fenceTables, unfenceTables, fenceState } from './fence.js';
import { readRouteAt, type DbusRoute } from './route.js';
import { reverseStreamName } from './sides.js';
import { clearApplyState, ensureApplyCheckpoint } from '../apply/checkpoint.js';
import {
  DBUS_CUTOVER_KIND, DBUS_ROLLBACK_KIND, CUTOVER_DEFAULTS, cutoverPlan, sidesOf, publishRoute, readRoute, baseRoute, ensureReverse, stopReverse, reverseRunning, reverseApplied,
  assessSides, deadJobAt, loadVerify, emptyReport, stepList, finishReport, drive, findJob, type CutoverParams, type DbusCutoverReport,
} from './cutover.js';
import { refNode } from './sides.js';

export interface DbusRollbackOptions {
  name: string;
  spec?: string;
  execute?: boolean;
  /** the bound of drain-reverse (the sources applying the target's final position) */
  timeoutMs?: number;
  lockWaitMs?: number;
  force?: boolean;
  leaseMs?: number;
}

const WINDOW: WindowGroups = {
  block: ['block-routes', 'fence-target', 'final-position'],
  drain: ['reverse-running', 'drain-reverse'],
  verify: ['verify'],
  flip: ['flip', 'unfence-sources'],
};

const posOf = (db: Db) => db.value<string>('SELECT @@global.gtid_binlog_pos').then((x) => String(x ?? ''));
const flavorAt = (db: Db) => db.value<string>('SELECT VERSION()').then((v) => flavorOf(String(v ?? '')));

export function rollbackPlan(ctx: Ctx, p: CutoverParams, jobId: string, refusals: string[] = [], kept?: KeptConnections): Plan<CutoverParams> {
  const sides = sidesOf(kept?.ctx ?? ctx, p);
  const live: { finalPos?: string } = {};
  const lockWaitS = Math.max(1, Math.ceil(p.lockWaitMs / 1000));
  const label = (s: CutoverParams['target']) => s.ref.label;
  const route = (version: number, home: DbusRoute['home'], state: DbusRoute['state'], reason: string): DbusRoute => ({ ...baseRoute(p), version, home, state, job: jobId, reason, reverse: null });
  const current = async () => (await readRoute(sides, p)) ?? { version: p.routeVersion, home: 'target' as const, state: 'active' as const, job: null };

  const blockRoutes: Step<CutoverParams> = {
    name: 'block-routes',
    describe: () => ({ does: `publish the route record of ${p.move} (home: the target) blocked everywhere: clients following it hold the moved tables' writes` }),
    async do() {
      const t0 = Date.now();
      const r = route(p.routeVersion + 1, 'target', 'blocked', `dbus rollback ${jobId}: block`);
      const { written } = await publishRoute(sides, [p.target, ...p.sources], r);
      return { version: r.version, written, span: spanOf(t0) };
    },
    async undo() {
      const cur = await current();
      if (cur.home === 'target' && cur.state === 'active') return;
      await publishRoute(sides, [p.target, ...p.sources], route(cur.version + 1, 'target', 'active', `dbus rollback ${jobId}: rolled back`));
    },
  };

  const fenceTarget: Step<CutoverParams> = {
    name: 'fence-target',
    describe: () => ({ does: `fence the moved tables at the target ${label(p.target)} (triggers refusing every client's writes; the reverse stream only reads there), each waiting at most ${formatDuration(p.lockWaitMs)}` }),
    async do() {
      const t0 = Date.now();
      const r = await sides.with(p.target, (db) => fenceTables(db, p.move, p.target.tables, { lockWaitS, why: `is being rolled back to the sources: wait, then write there` }));
      return { fenceMs: r.ms, span: spanOf(t0) };
    },
    async undo() {
      await sides.with(p.target, (db) => unfenceTables(db, p.move, p.target.tables, { lockWaitS: Math.max(lockWaitS, 10) }));
    },
  };

  const finalPos: Step<CutoverParams> = {
    name: 'final-position',
    changesNothing: true,
    describe: () => ({ does: `read the target's @@gtid_binlog_pos with its tables fenced`, sql: ['SELECT @@global.gtid_binlog_pos'] }),
    async do() {
      const t0 = Date.now();
      live.finalPos = await sides.with(p.target, posOf);
      return { positions: { [label(p.target)]: live.finalPos }, span: spanOf(t0) };
    },
  };

  const reverseRunningStep: Step<CutoverParams> = {
    name: 'reverse-running',
    changesNothing: true,
    describe: () => ({ does: 'make sure the reverse stream runs (started again from its checkpoints when its process is gone)' }),
    async do(sc) {
      const t0 = Date.now();
      const topo = loadTopology(p.topologyPath);
      const was = reverseRunning(topo, p.move);
      const r = (await sides.with(p.target, (db) => readRouteAt(db, p.move))) ?? null;
      const info = was ?? (await ensureReverse(ctx, p, r?.reverse?.from ?? live.finalPos ?? (await sides.with(p.target, posOf)), sc.signal));
      return { restarted: !was, pid: info.pid, span: spanOf(t0) };
    },
  };

  const drain: Step<CutoverParams> = {
    name: 'drain-reverse',
    changesNothing: true,
    timeoutMs: p.timeoutMs + 5_000,
    waitsFor: `every source to apply the target's final position through the reverse stream (at most ${formatDuration(p.timeoutMs)})`,
    describe: () => ({ does: `wait, at most ${formatDuration(p.timeoutMs)}, until the reverse stream has applied the target's final position at every source` }),
    async do(sc) {
      const t0 = Date.now();
      const pos = live.finalPos ?? (await sides.with(p.target, posOf));
      const flavor = await sides.with(p.target, flavorAt);
      let behind: string[] = [];
      while (Date.now() - t0 < p.timeoutMs && !sc.signal.aborted) {
        behind = (await reverseApplied(sides, p, pos, flavor)).behind;
        if (!behind.length) return { position: pos, span: spanOf(t0) };
        sc.waitingFor(`the reverse stream at ${behind.join('; ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      throw refused(`the reverse stream did not apply the target's final position ${pos} within ${formatDuration(p.timeoutMs)}: ${behind.join('; ')}`, { hint: `nothing flipped back: the target's fence is lifted, its route restored. See ${loadTopology(p.topologyPath).stateDir()}/dbus/${p.move}/reverse.log` });
    },
  };

  const verify: Step<CutoverParams> = {
    name: 'verify',
    changesNothing: true,
    describe: () => ({ does: `compare every moved table at the target and the sources (settle 0); a difference stops the flip back${p.force ? ' (--force: reported)' : ''}` }),
    async do(sc) {
      const t0 = Date.now();
      const fn = await loadVerify();
      const move = await loadMove(ctx, { name: p.move, ...(p.spec ? { spec: p.spec } : {}) });
      const r = await fn(ctx, move, { settleMs: 0, signal: sc.signal });
      if (r.differences.length && !p.force) throw refused(`${r.differences.length} row(s) differ between the target and the sources: ${r.differences.slice(0, 5).map((d) => `${d.table} ${JSON.stringify(d.key)}: ${d.why}`).join('; ')}`, { hint: 'nothing flipped back; pass --force to roll back anyway' });
      return { differences: r.differences.slice(0, 100), span: spanOf(t0) };
    },
  };

  const flip: Step<CutoverParams> = {
    name: 'flip',
    pointOfNoReturn: true,
    describe: () => ({ does: 'publish the route record with the sources home and active, at the sources first, then at the target (POINT OF NO RETURN: clients write to the sources from here)' }),
    async do() {
      const t0 = Date.now();
      const cur = await current();
      if (cur.home === 'sources' && cur.version > p.routeVersion) return { version: cur.version, already: true, span: spanOf(t0) };
      if (!(cur.home === 'target' && cur.state === 'blocked' && cur.job === jobId)) throw refused(`the route record of ${p.move} is not the one this rollback blocked (version ${cur.version}): another job changed it`, { hint: 'nothing flipped' });
      const r = route(cur.version + 1, 'sources', 'active', `dbus rollback ${jobId}: back to the sources`);
      await publishRoute(sides, p.sources, r);
      const missed: string[] = [];
      await publishRoute(sides, [p.target], r).catch((e: Error) => missed.push(`${label(p.target)}: ${e.message}`));
      return { version: r.version, missed, span: spanOf(t0) };
    },
    async check() {
      for (const s of p.sources) {
        const r = await sides.with(s, (db) => readRouteAt(db, p.move)).catch(() => undefined);
        if (r && r.home === 'sources' && r.version > p.routeVersion) return true;
      }
      return false;
    },
  };

  const stop: Step<CutoverParams> = {
    name: 'stop-reverse',
    describe: () => ({ does: 'stop the reverse stream (everything the target took is at the sources, and the target is fenced) and drop its checkpoints' }),
    async do() {
      const t0 = Date.now();
      const r = await stopReverse(loadTopology(p.topologyPath), p.move);
      for (const s of p.sources) await sides.with(s, async (db) => {
        await ensureApplyCheckpoint(db);
        await clearApplyState(db, reverseStreamName(p.move, label(s)));
      });
      return { stopped: r.stopped, span: spanOf(t0) };
    },
  };

  const unfenceSources: Step<CutoverParams> = {
    name: 'unfence-sources',
    describe: () => ({ does: `lift the fence at every source: ${p.sources.map(label).join(', ')} take the moved tables' writes again` }),
    async do() {
      const t0 = Date.now();
      for (const s of p.sources) await sides.with(s, (db) => unfenceTables(db, p.move, s.tables, { lockWaitS: Math.max(lockWaitS, 10) }));
      return { span: spanOf(t0) };
    },
  };

  const everywhere: Step<CutoverParams> = {
    name: 'routes-everywhere',
    describe: () => ({ does: 'write the newest route record at every side that missed it; the target keeps its fence (as before the cut-over)' }),
    async do() {
      const r = await readRoute(sides, p);
      if (!r || r.home !== 'sources') throw runtimeError(`the route record of ${p.move} does not name the sources home (version ${r?.version ?? 0})`);
      const { written } = await publishRoute(sides, [...p.sources, p.target], r);
      const st = await sides.with(p.target, (db) => fenceState(db, p.move, p.target.tables));
      if (st.open.length || st.partial.length) await sides.with(p.target, (db) => fenceTables(db, p.move, p.target.tables, { lockWaitS: Math.max(lockWaitS, 10), why: `was rolled back to the sources` }));
      return { version: r.version, written };
    },
  };

  return {
    kind: DBUS_ROLLBACK_KIND,
    params: p,
    cluster: `dbus-cut:${p.move}`.slice(0, 64),
    async preflight() {
      return refusals;
    },
    steps: [blockRoutes, fenceTarget, finalPos, reverseRunningStep, drain, verify, flip, unfenceSources, stop, everywhere],
  };
}

/** `dbus rollback NAME`: the plan (no --execute), or the rollback of a cut-over move; a dead cut-over/rollback is resumed first. */
export async function dbusRollback(ctx: Ctx, o: DbusRollbackOptions): Promise<DbusCutoverReport> {
  const refusals: string[] = [];
  const s = await assessSides(ctx, o, refusals);
  const dbs = s.dbs;
  try {
    const dead = await deadJobAt(ctx, refNode(s.topo, s.move.target), s.move.name).catch(() => undefined);
    if (dead) {
      const r0 = emptyReport('rollback', o.execute ? 'resume' : 'plan', o.name);
      if (!o.execute) {
        r0.message = `job ${dead.jobId} (${dead.kind}) died holding ${o.name}: with --execute this command resumes it first (forward past its flip, else rolled back)`;
        return r0;
      }
      ctx.log.warn(`job ${dead.jobId} (${dead.kind}) died holding ${o.name}: resuming it first`);
      const r = await dbusAgain(ctx, { name: o.name, ...(o.spec ? { spec: o.spec } : {}), jobId: dead.jobId, mode: 'resume', ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}) });
      r.resumedDeadJob = dead.jobId;
      return r;
    }
    const r = emptyReport('rollback', o.execute ? 'run' : 'plan', o.name);
    r.route = s.route ?? null;
    if (!s.route || s.route.home === 'sources') {
      r.mode = 'noop';
      r.outcome = 'noop';
      r.message = `dbus ${o.name} is not cut over (route record version ${s.route?.version ?? 0}: the sources are home): nothing to roll back`;
      return r;
    }
    if (s.route.state === 'blocked') refusals.push(`the route record of ${o.name} is blocked (version ${s.route.version}, ${s.route.reason}): another cut-over or rollback is under way (\`ezctl jobs\`)`);
    const tf = dbs ? await fenceState(dbs.target, s.move.name, s.target.tables) : null;
    const p: CutoverParams = {
      move: s.move.name,
      topologyPath: s.topo.path,
      ...(o.spec ? { spec: o.spec } : {}),
      sources: s.sources,
      target: s.target,
      routeVersion: s.route.version,
      targetFencedBefore: !!tf && tf.fenced.length === s.target.tables.length,
      sourcesFencedBefore: true,
      lockWaitMs: o.lockWaitMs ?? CUTOVER_DEFAULTS.lockWaitMs,
      timeoutMs: o.timeoutMs ?? CUTOVER_DEFAULTS.timeoutMs,
      force: !!o.force,
    };
    r.steps = stepList(rollbackPlan(ctx, p, '(plan)'));
    if (refusals.length) {
      r.refusals = refusals;
      r.outcome = 'refused';
      r.exitCode = ExitCode.refused;
      r.message = `dbus rollback ${o.name} refused: ${refusals.length === 1 ? refusals[0]! : `${refusals.length} reasons`}; nothing was changed`;
      return r;
    }
    if (!o.execute) return r;
    await closeAll(dbs);
    const kept = new KeptConnections(ctx);
    await kept.prepare([p.target, ...p.sources].map((x) => sidesOf(ctx, p).node(x)));
    const d = await drive(ctx, p, { kind: DBUS_ROLLBACK_KIND, mode: 'run', refusals, ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}), plan: (id) => rollbackPlan(ctx, p, id, refusals, kept), close: () => kept.closeAll() });
    return finishReport(ctx, r, p, d, WINDOW);
  } finally {
    await closeAll(dbs);
  }
}

async function closeAll(dbs: { sources: Map<string, Db>; target: Db } | null): Promise<void> {
  if (!dbs) return;
  await Promise.all([dbs.target, ...dbs.sources.values()].map((d) => d.close().catch(() => undefined)));
}

/** `--resume JOB` / `--rollback JOB` of a cut-over or rollback job: the plan rebuilt from its journaled parameters. */
export async function dbusAgain(ctx: Ctx, o: { name: string; spec?: string; jobId: string; mode: 'resume' | 'rollback'; leaseMs?: number }): Promise<DbusCutoverReport> {
  const found = await findJob(ctx, o);
  const p = found.params;
  const isCutover = found.summary.header.kind === DBUS_CUTOVER_KIND;
  const plan = (id: string) => (isCutover ? cutoverPlan(ctx, p, id) : rollbackPlan(ctx, p, id));
  if (o.mode === 'rollback' && found.summary.ponrPassed) {
    const r = emptyReport(isCutover ? 'cutover' : 'rollback', 'rollback', o.name);
    r.jobId = o.jobId;
    r.outcome = 'refused';
    r.exitCode = ExitCode.refused;
    r.message = `job ${o.jobId} passed its flip: it is not undone step by step; ${isCutover ? `\`ezctl dbus rollback ${o.name} --execute\` moves the writes back to the sources the same way` : `\`ezctl dbus cutover ${o.name} --execute\` moves them to the target again`}`;
    return r;
  }
  const r = emptyReport(isCutover ? 'cutover' : 'rollback', o.mode, o.name);
  r.steps = stepList(plan('(plan)'));
  const d = await drive(ctx, p, { kind: found.summary.header.kind, mode: o.mode, jobId: o.jobId, refusals: [], ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}), plan });
  return finishReport(ctx, r, p, d, isCutover ? undefined : WINDOW);
}
