// `ezctl osc`: one schema change in every zone of a cluster. Each zone copies its own rows
// locally (nothing crosses zones), DRC keeps replicating the original table meanwhile and ignores
// the helper tables, and when every zone is ready the cut-overs are taken together: every zone
// locks and catches up, every zone's RENAME is queued, then all locks are released at once, so
// the zones change shape within a few milliseconds of each other. A failed attempt undoes the
// lock in every zone (the originals stay) and is retried. Anything failing before the cut-over
// drops the helper tables and leaves the original as it was.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import { parseTableName, quoteTable, tableArgument } from '../db/quote.js';
import { createHash } from 'node:crypto';
import { DEFAULT_LOCK_WAIT_S, isLockWaitTimeout, lockWaitError, LockWaitError, withLockWait } from '../db/lockwait.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { gtidCovers } from '../db/gtid.js';
import { serverInfo } from '../db/server.js';
import { badInput, EzError, ExitCode, refused, runtimeError } from '../exit.js';
import { throttlerFor, logThrottleChanges, type Throttler, type ThrottleOptions, type ThrottleStatus } from '../throttle/index.js';
import { measureDrcLagMs } from '../throttle/signals.js';
import { onInterrupt } from '../signals.js';
import { JOB_REFUSED, sendControl } from '../control/socket.js';
import { command, jobKind, noJobAnswers, sendJob, serveJob, type ArgsOf, type ReplyOf } from '../control/commands.js';
import { parseDuration } from '../throttle/duration.js';
import type { Topology } from '../config/load.js';
import { buildIndexesSql, createTriggerSql, ghostTriggerName, indexesLeftOut, leaveOutIndexesSql, planOnMaster, parseColumnMap, sameShapeEverywhere, type OscPlan } from './plan.js';
import { ZoneOsc, type ZoneProgress } from './zone.js';
import { copySettingsOf, type CopySettings } from '../copy/settings.js';
import { sentryNames, ZoneCutOver } from './cutover.js';
import { ZoneApplier, type CascadeRule } from './applier.js';
import { ownDdlMarker } from '../cluster/tables.js';
import { oscHelperNames } from '../cluster/helper-tables.js';
import { dropOldTables } from './drop.js';
import { acquireJob, assertNoLiveHolder, endUnfinishedJobs, type JobHandle } from '../job/job.js';
import { progressOf, type JobKind } from '../job/lease.js';

/** The change's options; the copy's (chunk time, threads, deferred indexes, cut-over waits) are CopySettings. */
export interface OscOptions extends CopySettings {
  cluster?: string;
  table: string;
  alter: string;
  zones?: string[];
  execute?: boolean;
  /** auto: change in place where the server can do it instantly; never: always copy */
  instant?: 'auto' | 'never';
  map?: string[];
  throttle?: ThrottleOptions;
  postponeCutOverFlagFile?: string;
  /** the bound on every other metadata lock wait: the ghost's DDL, its index build, the copy, dropping it (default 10 s) */
  lockWaitTimeoutS?: number;
  /** carry the table's triggers to the new table at the cut-over (without it, a table with triggers is refused) */
  includeTriggers?: boolean;
  /** DRC lag above which the change is refused (DRC unhealthy) */
  maxDrcLagMs?: number;
  /** continue a job that died (kill -9): its ghost and saved positions are in every zone */
  resume?: boolean;
  /** after the cut-over, drop the old table (<t>_ezdel) in every zone (osc/drop.ts) */
  dropOldTable?: boolean;
  /** the job's lease in `_ezctl.job_leases` (job/lease.ts DEFAULT_LEASE_MS when not given) */
  leaseMs?: number;
  /** the job's kind in `_ezctl.jobs` (default osc; `migrate int2bigint` runs as migrate-int2bigint) */
  jobKind?: Extract<JobKind, 'osc' | 'migrate-int2bigint'>;
  /** the job's row and lease, taken by runOsc / runOscFamily with --execute (copyAndCutOver keeps its phase and progress) */
  job?: JobHandle;
  onProgress?: (zones: ZoneProgress[]) => void;
}

export interface OscReport {
  cluster: string;
  table: string;
  alter: string;
  zones: string[];
  execute: boolean;
  method: 'instant' | 'copy';
  plan: {
    key: string[];
    columns: Array<{ from: string; to: string }>;
    added: string[];
    dropped: string[];
    retyped: string[];
    rowsEstimate: number;
    ghostDdl: string[];
    checks: string[];
    notes: string[];
  };
  refusals: string[];
  progress?: ZoneProgress[];
  cutOver?: { attempts: number; skewMs: number; at: Record<string, string> };
  /** --drop-old-table: the old table was dropped in every zone after the cut-over */
  oldTableDropped?: boolean;
  ms: number;
}

export async function runOsc(ctx: Ctx, opts: OscOptions): Promise<OscReport> {
  const started = Date.now();
  const topo = await ctx.topology();
  const cluster = topo.cluster(opts.cluster);
  const zones = topo.zonesChosen(cluster.name, opts.zones);
  const { schema, table } = tableOption(opts.table);
  const map = parseColumnMap(opts.map);

  // the job's row and lease in every zone before anything else: a second change of the table is refused here, naming the first
  const oscJob = opts.execute ? await acquireOscJob(ctx, topo, cluster.name, zones, [oscTableName(schema, table)], opts) : undefined;
  const ctl: { zone: string; db: Db }[] = [];
  try {
    const lockWaitS = opts.lockWaitTimeoutS ?? DEFAULT_LOCK_WAIT_S;
    for (const z of zones) ctl.push({ zone: z, db: await ctx.connect(topo.master(cluster.name, z)) });
    for (const c of ctl) {
      // the plan's empty twin (CREATE TABLE ... LIKE the table) waits no longer than the rest
      await c.db.exec('SET SESSION lock_wait_timeout = ?', [lockWaitS]);
      const info = await serverInfo(c.db);
      if (info.flavor !== 'mariadb') throw refused(`zone ${c.zone}: online schema change is implemented for MariaDB masters (${info.version} found)`);
      if (!info.logBin || info.binlogFormat !== 'ROW') throw refused(`zone ${c.zone}: the binlog must be on and ROW (the ghost follows the table through it)`);
    }
    const plans: { zone: string; plan: OscPlan }[] = [];
    for (const c of ctl) {
      const plan = await planOnMaster(c.db, schema, table, opts.alter, map, !!opts.resume, false, { includeTriggers: !!opts.includeTriggers }).catch(async (e) => {
        if (!isLockWaitTimeout(e)) throw e;
        throw await lockWaitError(c.db, { seconds: lockWaitS, schema, tables: [table], what: `zone ${c.zone}: planning (an empty twin of the table)` }, e);
      });
      plans.push({ zone: c.zone, plan });
    }
    const job = oscJobName(cluster.name, schema, table);
    const saved = new Map<string, Awaited<ReturnType<typeof ZoneOsc.savedState>>>();
    if (opts.resume) {
      for (const c of ctl) saved.set(c.zone, await ZoneOsc.savedState(c.db, job, c.zone));
    }
    const plan = plans[0]!.plan;
    const refusals = [...new Set(plans.flatMap((p) => p.plan.refusals.map((r) => (plans.length > 1 ? `zone ${p.zone}: ${r}` : r))))];
    refusals.push(...sameShapeEverywhere(plans).map((d) => `the table differs between zones before the change: ${d}`));
    if (opts.resume) {
      for (const c of ctl) {
        const st = saved.get(c.zone);
        const ghostThere = (await c.db.value('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [schema, plan.names.ghost])) as number | string;
        if (!st) refusals.push(`zone ${c.zone}: no saved state of a change of ${opts.table} to resume`);
        else if (st.alter !== opts.alter) refusals.push(`zone ${c.zone}: the saved change is "${st.alter}", not "${opts.alter}"`);
        if (!Number(ghostThere)) refusals.push(`zone ${c.zone}: the ghost table ${plan.names.ghost} is gone; start again without --resume`);
      }
    }
    // DRC must be healthy: a change while DRC is far behind would cut over with rows still to come
    const lag = await measureDrcLagMs(ctl).catch(() => ({ maxLagMs: null }));
    const maxDrcLag = opts.maxDrcLagMs ?? 10_000;
    if (zones.length > 1 && lag.maxLagMs !== null && lag.maxLagMs > maxDrcLag) refusals.push(`DRC is unhealthy: lag ${lag.maxLagMs} ms > ${maxDrcLag} ms between the zones`);

    const method: OscReport['method'] = (opts.instant ?? 'auto') === 'auto' && plans.every((p) => p.plan.instant) ? 'instant' : 'copy';
    const report: OscReport = {
      cluster: cluster.name,
      table: opts.table,
      alter: opts.alter,
      zones,
      execute: !!opts.execute,
      method,
      plan: {
        key: plan.key.columns,
        columns: plan.columns,
        added: plan.added,
        dropped: plan.dropped,
        retyped: plan.retyped,
        rowsEstimate: plan.rowsEstimate,
        ghostDdl:
          method === 'instant'
            ? [`ALTER TABLE ${quoteTable(schema, table)} ${opts.alter}, ALGORITHM=INSTANT  -- in every zone`]
            : [
                `CREATE TABLE ${quoteTable(schema, plan.names.ghost)} LIKE ${quoteTable(schema, table)}`, `ALTER TABLE ${quoteTable(schema, plan.names.ghost)} ${opts.alter}`, ...deferredIndexDdl(plan, opts.deferIndexes),
                ...(opts.includeTriggers ? plan.triggers.map((t) => `${createTriggerSql(schema, plan.names.ghost, t, ghostTriggerName(t.name))}  -- under the cut-over lock`) : []),
                ...(opts.includeTriggers ? plan.triggers.map((t) => `DROP TRIGGER ${quoteTable(schema, t.name)}  -- after the cut-over, from ${plan.names.old}`) : []),
              ],
        checks: [
          'the ALTER was tried on an empty twin (not logged): accepted',
          'a unique key both shapes share, to copy by',
          'no foreign keys on or to the table',
          plan.triggers.length ? `triggers carried to the new table at the cut-over: ${plan.triggers.map((t) => t.name).join(', ')}` : 'no triggers',
          `every other lock wait (ghost DDL, index build, copy, drop) ≤ ${lockWaitS} s`,
          'renamed columns mapped (--map)',
          'the same table in every zone',
          `DRC lag ≤ ${maxDrcLag} ms${lag.maxLagMs === null ? ' (no DRC heartbeat seen)' : ` (now ${lag.maxLagMs} ms)`}`,
          ...(method === 'copy' ? ['before the cut-over: original and ghost compared chunk by chunk', `cut-over: lock wait ${opts.cutOverLockTimeoutS ?? 3} s, ${opts.cutOverRetries ?? 5} attempts`] : []),
        ],
        notes: [
          ...plan.notes, ...(method === 'copy' ? deferredIndexNote(plan, opts.deferIndexes) : []),
          ...(method === 'copy' ? [opts.dropOldTable ? `after the cut-over the old table ${plan.names.old} is dropped in every zone (once the throttle lets it through)` : `after the cut-over the original is kept as ${plan.names.old} (--drop-old-table drops it; \`ezctl osc cleanup\` lists and drops kept tables)`] : []),
        ],
      },
      refusals,
      ms: 0,
    };
    if (!opts.execute) {
      report.ms = Date.now() - started;
      return report;
    }
    if (refusals.length) throw refused(`online schema change of ${opts.table} refused: nothing changed`, { details: refusals });

    if (method === 'instant') {
      oscJob?.setPhase('alter');
      // every zone at once; each zone's own replicas follow through their binlog
      // marked as DRC's own: each zone makes the change itself, so not even --replicate-ddl forwards it
      await Promise.all(ctl.map((c) => c.db.exec(`${ownDdlMarker('osc')}ALTER TABLE ${quoteTable(schema, table)} ${opts.alter}, ALGORITHM=INSTANT`)));
      report.ms = Date.now() - started;
      await endOscJob(oscJob);
      return report;
    }
    const zonePlans = new Map(plans.map((p) => [p.zone, p.plan]));
    const makeJobs = (throttler: Throttler | undefined) =>
      zones.map((z, i) => new ZoneOsc(ctx, z, topo.master(cluster.name, z), zonePlans.get(z)!, {
        copy: copySettingsOf(opts), log: ctx.log, throttler, job, lockWaitS, changeTables: [table],
      }));
    const dropOld = opts.dropOldTable
      ? async (throttler: Throttler) => {
        await dropOldTables(ctx, zones.map((z) => ({ zone: z, node: topo.master(cluster.name, z) })), schema, [table], { throttler, lockWaitS });
        report.oldTableDropped = true;
      }
      : undefined;
    // the job answers on a socket named by the table's canonical name, whichever form --table took
    Object.assign(report, await copyAndCutOver({ ctx, cluster: cluster.name, zones, makeJobs, opts: { ...opts, table: oscTableName(schema, table), ...(oscJob ? { job: oscJob } : {}) }, started, saved: (j) => saved.get(j.zone), afterCutOver: dropOld }));
    await endOscJob(oscJob);
    return report;
  } catch (e) {
    await endOscJob(oscJob, e);
    throw e;
  } finally {
    await Promise.all(ctl.map((c) => c.db.close().catch(() => undefined)));
  }
}

/**
 * The job's row and lease (`ezctl jobs`) for a change of these tables in every zone; --resume
 * takes over the dead (or failed) job on them, keeping its id.
 */
export async function acquireOscJob(ctx: Ctx, topo: Topology, cluster: string, zones: string[], tables: string[], o: Pick<OscOptions, 'resume' | 'leaseMs' | 'jobKind'>): Promise<JobHandle> {
  return acquireJob(ctx, {
    cluster, kind: o.jobKind ?? 'osc', targets: tables, zones: zones.map((z) => ({ zone: z, node: topo.master(cluster, z) })), phase: 'plan',
    controlSocket: oscSocketPath(topo, cluster, tables[0]!), ...(o.resume ? { resume: true } : {}), ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}),
  });
}

/**
 * The job's end, by how the run ended: done; refused while still planning (nothing changed): no
 * trace (a job taken over is left as it was found); interrupted or aborted by its operator:
 * aborted; anything else: failed (its ghost and saved state may be kept for --resume).
 */
export async function endOscJob(job: JobHandle | undefined, e?: unknown): Promise<void> {
  if (!job) return;
  if (e === undefined) return job.finish('done');
  if (job.phase === 'plan') return job.release();
  const byOperator = e instanceof EzError && (e.exitCode === ExitCode.interrupted || e.exitCode === ExitCode.refused);
  return job.fail(e, byOperator ? 'aborted' : 'failed');
}

/** The job's progress for `ezctl jobs`: rows copied over the tables' estimates in every zone. */
function oscProgress(jobs: ZoneOsc[], since: number): ReturnType<typeof progressOf> {
  const rows = jobs.reduce((n, j) => n + j.progress.rowsCopied, 0);
  const total = jobs.reduce((n, j) => n + j.plan.rowsEstimate, 0);
  return { ...progressOf(rows, total, Date.now() - since), backlog: jobs.reduce((n, j) => n + j.progress.backlog, 0) };
}

/** What the copy and the cut-over of a change take: one table's (runOsc) or a family's (runOscFamily). */
export interface CopyAndCutOver {
  ctx: Ctx;
  cluster: string;
  zones: string[];
  /** the change's knobs; table: the name it answers by (its socket, its messages) */
  opts: Pick<OscOptions, 'table' | 'alter' | 'throttle' | 'postponeCutOverFlagFile' | 'cutOverLockTimeoutS' | 'cutOverRetries' | 'lockWaitTimeoutS' | 'onProgress' | 'job'>;
  /** when the command started (Date.now()) */
  started: number;
  /** every zone's table jobs, with the job's throttler */
  makeJobs: (t: Throttler | undefined) => ZoneOsc[];
  /** a table's saved state in a zone on --resume */
  saved: SavedFor;
  /** the foreign keys between the tables of a family, as the ghosts follow them */
  rules?: CascadeRule[] | undefined;
  /** once every ghost of a zone exists, before its applier starts (a family: the ghosts' foreign keys) */
  prepareZone?: ((zone: string, db: Db) => Promise<void>) | undefined;
  /** after the cut-over, with the job's state and control socket still there (old foreign keys, --drop-old-table) */
  afterCutOver?: ((throttler: Throttler) => Promise<void>) | undefined;
}

/** What the copy and the cut-over report. */
export interface CopyAndCutOverResult {
  progress?: ZoneProgress[];
  cutOver?: OscReport['cutOver'];
  ms: number;
}

export async function copyAndCutOver(o: CopyAndCutOver): Promise<CopyAndCutOverResult> {
  const { ctx, cluster, zones, makeJobs, opts, started, saved, rules = [], prepareZone, afterCutOver } = o;
  const report: CopyAndCutOverResult = { ms: 0 };
  // always a throttler: `osc pause` needs one even when no signal was asked for
  const throttle = await throttlerFor(ctx, cluster, zones, opts.throttle ?? {});
  const offLog = logThrottleChanges(throttle.throttler, ctx.log, 'osc: ');
  const jobs = makeJobs(throttle.throttler);
  let cutOverNow = false;
  let aborted = false;
  const phase = () => jobs.map((j) => j.progress.phase);
  const status = (): OscStatus => ({
    table: opts.table, tables: [...new Set(jobs.map((j) => `${j.plan.schema}.${j.plan.table}`))], alter: opts.alter, pid: process.pid, zones: jobs.map((j) => ({ ...j.progress })), throttle: throttle.throttler.status(),
    postponed: !!opts.postponeCutOverFlagFile && !cutOverNow && phase().every((p) => p === 'ready'), elapsedMs: Date.now() - started,
  });
  const sock = oscSocketPath(await ctx.topology(), cluster, opts.table);
  // one job per table: a lease for every table of the change (a family's several) in every zone
  // (user locks, freed by the server when the job's connection goes, kill -9 included), taken
  // before any helper table exists; `osc abort` without a live job and `osc cleanup` look for them
  const leases: Db[] = [];
  const changed = [...new Set(jobs.map((j) => oscTableName(j.plan.schema, j.plan.table)))];
  try {
    for (const z of zones) {
      const db = await ctx.connect(jobs.find((j) => j.zone === z)!.node);
      leases.push(db);
      await db.exec('SET SESSION wait_timeout = 31536000'); // idle for the job's whole life
      for (const t of changed) {
        const got = Number(await db.value('SELECT GET_LOCK(?, 0)', [oscLeaseName(cluster, t)]));
        if (got !== 1) {
          const holder = await db.value('SELECT IS_USED_LOCK(?)', [oscLeaseName(cluster, t)]);
          throw refused(`zone ${z}: a change of ${t} is already running (its session ${String(holder)} holds the job's lease); nothing changed`, { hint: '`ezctl osc status` on the host that runs it' });
        }
      }
    }
  } catch (e) {
    await Promise.all(leases.map((d) => d.close().catch(() => undefined)));
    await throttle.close();
    offLog();
    throw e;
  }
  const server = await serveJob(sock, oscJob, {
    status,
    pause() {
      throttle.throttler.pause('paused by operator (ezctl osc pause)');
      return status();
    },
    resume() {
      throttle.throttler.resume();
      return status();
    },
    'cut-over'() {
      cutOverNow = true;
      return status();
    },
    set({ value }) {
      // the key is checked against the declaration: chunk-time is the one setting
      const ms = parseDuration(value);
      for (const j of jobs) j.setChunkTime(ms);
      ctx.log.info(`osc: chunk-time set to ${ms} ms`);
      return status();
    },
    abort() {
      aborted = true;
      setImmediate(() => void stopJobs(jobs, true));
      return { aborting: true as const };
    },
  });
  // a job that lost its lease (its server gone past the lease's bound, or taken over) stops at
  // once, keeping its ghost and saved state for --resume
  const job = opts.job;
  let leaseLost = false;
  const onLeaseLost = () => {
    leaseLost = true;
    setImmediate(() => void stopJobs(jobs, false));
  };
  job?.signal.addEventListener('abort', onLeaseLost, { once: true });
  let interrupted = false;
  const offInt = onInterrupt(async () => {
    interrupted = true;
    await stopJobs(jobs, true);
    await Promise.all(jobs.map((j) => j.clearState().catch(() => undefined)));
  });
  const copyFrom = Date.now();
  const tick = setInterval(() => {
    opts.onProgress?.(jobs.map((j) => j.progress));
    job?.progress(oscProgress(jobs, copyFrom));
  }, 1000);
  tick.unref();
  let cutOverDone = false;
  try {
    job?.setPhase('copy');
    const appliers = await startZones(ctx, zones, jobs, saved, rules, prepareZone, opts.lockWaitTimeoutS ?? DEFAULT_LOCK_WAIT_S);
    await Promise.all(jobs.map(async (j) => {
      await j.copy();
      await j.buildIndexes();
    }));
    await Promise.all(jobs.map((j) => j.verify()));
    job?.setPhase('catch-up');
    if (opts.postponeCutOverFlagFile) {
      let said = false;
      while (existsSync(opts.postponeCutOverFlagFile) && !cutOverNow) {
        if (!said) ctx.log.info(`osc: every zone is ready; the cut-over waits while ${opts.postponeCutOverFlagFile} exists`);
        said = true;
        await Promise.all(jobs.map((j) => j.caughtUp(60_000)));
        await sleep(500);
      }
    }
    const lockWaitS = opts.cutOverLockTimeoutS ?? 3;
    const retries = opts.cutOverRetries ?? 5;
    const nodes = new Map(zones.map((z) => [z, jobs.find((j) => j.zone === z)!]));
    job?.setPhase('cut-over');
    for (let attempt = 1; ; attempt++) {
      // never cut over without the lease: another process may have taken the job over
      job?.assertHeld();
      const cuts = zones.map((z) => new ZoneCutOver(ctx, z, nodes.get(z)!.node, jobs.filter((j) => j.zone === z), appliers.get(z)!));
      try {
        await Promise.all(jobs.map((j) => j.caughtUp(60_000)));
        await Promise.all(cuts.map((c) => c.lockAndCatchUp(lockWaitS, 10_000)));
        await Promise.all(cuts.map((c) => c.queueRename(lockWaitS)));
        await Promise.all(cuts.map((c) => c.unlockAndSettle(lockWaitS * 1000)));
        // from here on the renames run: one release per zone, all at once
        cutOverDone = true;
        const at = await Promise.all(cuts.map((c) => c.release()));
        report.cutOver = {
          attempts: attempt,
          skewMs: Math.max(...at) - Math.min(...at),
          at: Object.fromEntries(zones.map((z, i) => [z, new Date(at[i]!).toISOString()])),
        };
        break;
      } catch (e) {
        if (cutOverDone) throw runtimeError(`the cut-over of ${opts.table} failed part-way: ${(e as Error).message}`, { hint: 'check each zone: the table or <t>_ezdel holds the original; ezctl check schema shows which shape each zone has' });
        await Promise.all(cuts.map((c) => c.undo()));
        if (attempt >= retries) {
          throw runtimeError(`the cut-over of ${opts.table} did not succeed in ${retries} attempts: ${(e as Error).message}`, {
            hint: `${e instanceof LockWaitError ? (e.hint ?? '') : 'a long transaction may hold the table: find it in the processlist, or raise --cut-over-lock-timeout'}; the original is untouched and the ghost was dropped`,
          });
        }
        ctx.log.warn(`osc: cut-over attempt ${attempt} failed (${(e as Error).message.replace(/ in: .*/s, '')}); the original is untouched; retrying`);
        await sleep(Math.min(500 * 2 ** attempt, 5000));
      }
    }
    // --include-triggers: the old tables' triggers go (the new tables have them)
    for (const z of zones) {
      const mine = jobs.filter((j) => j.zone === z && j.plan.triggers.length);
      if (!mine.length) continue;
      const db = await ctx.connect(mine[0]!.node);
      try {
        for (const j of mine) await j.dropOldTriggers(db);
      } catch (e) {
        ctx.log.warn(`osc: ${(e as Error).message}; they cannot fire (nothing writes the old table), drop them or the old table later`);
      } finally {
        await db.close();
      }
    }
    report.progress = jobs.map((j) => ({ ...j.progress }));
    job?.progress(oscProgress(jobs, copyFrom));
    if (afterCutOver) {
      job?.setPhase('drop');
      try {
        await afterCutOver(throttle.throttler);
      } catch (e) {
        await Promise.all(jobs.map((j) => j.clearState().catch(() => undefined)));
        throw runtimeError(`${opts.table} was changed in every zone, but what follows the cut-over failed: ${(e as Error).message}`, {
          hint: `${e instanceof LockWaitError && e.hint ? `${e.hint}; ` : ''}\`ezctl osc cleanup\` lists the helper tables left; with --execute it drops them`,
          cause: e,
        });
      }
    }
    report.ms = Date.now() - started;
    await Promise.all(jobs.map((j) => j.clearState()));
    return report;
  } catch (e) {
    // a metadata lock that a session holds past the bound, before the cut-over and once every
    // zone saved its state: the job stops and keeps its ghosts, to be resumed or aborted
    const keep = !cutOverDone && !interrupted && !aborted && e instanceof LockWaitError && jobs.every((j) => j.stateSaved);
    const lost = leaseLost ? (job!.signal.reason as EzError) : undefined;
    if (lost && !cutOverDone && jobs.every((j) => j.stateSaved)) {
      await Promise.all(jobs.map((j) => j.stop(false)));
      throw runtimeError(`${lost.message}; ${opts.table} is untouched, its ghost and saved state are kept`, { hint: lost.hint ?? '', cause: lost });
    }
    if (keep) {
      await Promise.all(jobs.map((j) => j.stop(false)));
      throw new LockWaitError(`${e.message}; the job stopped, ${opts.table} is untouched, its ghost and saved state are kept`, e.holders, {
        hint: `${e.hint ?? ''}; then the same command with --resume continues the job, or \`ezctl osc abort --table ${opts.table}\` drops the ghost`,
        cause: e,
      });
    }
    if (!cutOverDone) {
      await stopJobs(jobs, true);
      // a ghost left (a session held it past the bound) keeps its saved state, for `osc abort`
      await Promise.all(jobs.filter((j) => !j.ghostLeft).map((j) => j.clearState().catch(() => undefined)));
    }
    const dropped = jobs.some((j) => j.ghostLeft) ? `a session holds a ghost, which is left (\`ezctl osc abort --table ${opts.table}\` drops it later)` : 'the helper tables were dropped';
    if (interrupted && !cutOverDone) throw new EzError(ExitCode.interrupted, `interrupted: ${dropped}; ${opts.table} is as it was`);
    if (aborted && !cutOverDone) throw refused(`aborted by \`ezctl osc abort\`: ${dropped}; ${opts.table} is as it was`);
    if (lost && !cutOverDone) throw runtimeError(`${lost.message}; ${dropped}; ${opts.table} is as it was`, { cause: lost });
    throw lost ?? e;
  } finally {
    job?.signal.removeEventListener('abort', onLeaseLost);
    clearInterval(tick);
    offInt();
    offLog();
    server.close();
    await Promise.all(jobs.map((j) => j.stop(false)));
    await Promise.all(leases.map((d) => d.close().catch(() => undefined)));
    await throttle.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stop every job, the zones side by side and each zone's tables one after another, last table
 * first (a family lists a parent before its children): InnoDB refuses at once, with a lock wait
 * timeout, a DROP of a ghost whose foreign-key partner another session is dropping (measured on
 * MariaDB 10.11: parent_ezgho while child_ezgho goes), which left a ghost and its saved state behind.
 */
async function stopJobs(jobs: ZoneOsc[], dropHelpers: boolean): Promise<void> {
  const zones = [...new Set(jobs.map((j) => j.zone))];
  await Promise.all(zones.map(async (z) => {
    for (const j of jobs.filter((x) => x.zone === z).reverse()) await j.stop(dropHelpers);
  }));
}

/** The plan's statements for the indexes left out of the copy (see OscPlan.deferrableIndexes). */
function deferredIndexDdl(plan: OscPlan, defer: boolean | undefined): string[] {
  const later = indexesLeftOut(plan, defer);
  if (!later.length) return [];
  const ghost = quoteTable(plan.schema, plan.names.ghost);
  return [`${leaveOutIndexesSql(ghost, later)}  -- while it is empty`, `${buildIndexesSql(ghost, later)}  -- after the copy`];
}

function deferredIndexNote(plan: OscPlan, defer: boolean | undefined): string[] {
  const later = indexesLeftOut(plan, defer);
  if (!later.length) return [];
  return [
    `index ${later.map((ix) => ix.name).join(', ')} is built after the copy in one online ALTER of the ghost (faster than row by row); ` +
      "the zone's replicas replay it as one statement, so their lag grows by its duration (about a second per million rows here); --no-defer-indexes keeps it during the copy",
  ];
}

/** A table's saved state in a zone, when a change is resumed (undefined: starting afresh). */
export type SavedFor = (job: ZoneOsc) => Awaited<ReturnType<typeof ZoneOsc.savedState>> | undefined;

/**
 * Per zone: every table's ghost (prepareZone then adds what spans tables, e.g. foreign keys
 * between ghosts), then one applier for them all from the binlog position at that moment (or the
 * saved one on --resume).
 */
async function startZones(
  ctx: Ctx, zones: string[], jobs: ZoneOsc[], saved: SavedFor, rules: CascadeRule[],
  prepareZone?: (zone: string, db: Db) => Promise<void>,
  lockWaitS = DEFAULT_LOCK_WAIT_S,
): Promise<Map<string, ZoneApplier>> {
  const appliers = new Map<string, ZoneApplier>();
  const started = Promise.allSettled(zones.map(async (z, i) => {
    const mine = jobs.filter((j) => j.zone === z);
    const states = mine.map((j) => saved(j));
    const resuming = states.every((st) => st !== undefined);
    for (const [k, j] of mine.entries()) await j.prepare(states[k]);
    const db = await ctx.connect(mine[0]!.node);
    let from: string;
    try {
      // what spans the ghosts (their foreign keys: DDL on each) waits no longer than the rest
      if (!resuming && prepareZone) {
        await withLockWait(db, { seconds: lockWaitS, schema: mine[0]!.plan.schema, tables: mine.map((j) => j.plan.names.ghost), what: `zone ${z}: linking the ghosts`, fix: 'or wait, and start the change again' }, () => prepareZone(z, db));
      }
      // the tables of a zone share one applier, so their saved positions are points of one
      // progression: start again from the earliest (applying final states again is harmless)
      const positions = states.map((st) => st?.appliedPos ?? '');
      from = resuming ? positions.find((p) => positions.every((q) => gtidCovers('mariadb', q, p)))! : String(await db.value('SELECT @@global.gtid_binlog_pos'));
    } finally {
      await db.close();
    }
    const applier = new ZoneApplier(ctx, z, mine[0]!.node, mine[0]!.plan.schema, mine.map((j) => j.applierTable()), rules, 700_000 + ((process.pid * 10 + i) % 100_000), lockWaitS);
    appliers.set(z, applier);
    await applier.start(from);
    for (const j of mine) await j.attach(applier);
  }));
  const failed = (await started).find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all([...appliers.values()].map((a) => a.stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return appliers;
}

/** Where a running change of this table answers: one socket per cluster and table. */
export function oscSocketPath(topo: Topology, cluster: string, table: string): string {
  return join(topo.stateDir(), `osc-${cluster}-${table.replace(/[^A-Za-z0-9_.-]/g, '_')}.sock`);
}

/** What a running change answers to status (and to pause, resume, set, cut-over). */
export interface OscStatus {
  table: string;
  /** every table of the change (db.table): a family's several */
  tables: string[];
  alter: string;
  pid: number;
  zones: ZoneProgress[];
  throttle: ThrottleStatus;
  /** every zone ready, the cut-over waiting for the flag file */
  postponed: boolean;
  elapsedMs: number;
}

/** The commands a running change answers on its control socket. */
export const oscJob = jobKind('osc job', {
  status: command<OscStatus>()('progress per zone, throttle, postponed cut-over'),
  pause: command<OscStatus>()('pause the copy in every zone'),
  resume: command<OscStatus>()('resume a paused copy'),
  'cut-over': command<OscStatus>()('cut over now, even while the postpone flag file exists'),
  set: command<OscStatus>()('change a setting', { key: { type: 'string', oneOf: ['chunk-time'] }, value: { type: 'string' } }),
  abort: command<{ aborting: true }>()('stop the change, drop the helper tables'),
});
export type OscCommand = keyof typeof oscJob.commands;

/** `ezctl osc status|pause|resume|set|cut-over|abort`: one request to the running job. */
export async function oscControl<K extends OscCommand>(ctx: Ctx, o: { cluster?: string; table: string; cmd: K; args?: ArgsOf<(typeof oscJob.commands)[K]> }): Promise<ReplyOf<(typeof oscJob.commands)[K]> | OscAbortReport> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster);
  const { schema, table } = tableOption(o.table);
  const fix = 'start one with `ezctl osc --table ... --alter ... --execute`';
  const at = (path: string) => ({ kind: oscJob, path, job: `schema change of ${o.table}`, fix });
  const send = (path: string) => sendJob(at(path), o.cmd, o.args);
  return send(oscSocketPath(topo, cluster.name, oscTableName(schema, table))).catch(async (e: Error & { code?: string }) => {
    const none = () => runtimeError(`no schema change of ${o.table} is running on this host (${(noJobAnswers(e) && e.cause instanceof Error ? e.cause : e).message})`, { hint: fix });
    if (e instanceof EzError && !noJobAnswers(e)) throw e; // a bad argument: nothing was sent
    // the job answered and refused (a value it cannot take): its own words, not "not running"
    if (e.code === JOB_REFUSED) throw badInput(`the schema change of ${o.table} refused ${o.cmd}: ${e.message}`);
    if (!noJobAnswers(e)) throw none();
    // a change of several tables (a family) answers on its first table's socket: any of its tables finds it
    const job = (await runningJobs(topo, cluster.name)).find((j) => j.tables.includes(`${schema}.${table}`));
    if (job) return send(job.sock);
    // no job answers here (no socket, or one left by a job that died): abort from what it left
    if (o.cmd === 'abort') return abortFromSavedState(ctx, cluster.name, schema, table);
    throw none();
  });
}

/** The changes of this cluster answering on their control sockets on this host, with every table each changes (db.table). */
export async function runningJobs(topo: Topology, cluster: string): Promise<Array<{ sock: string; table: string; tables: string[] }>> {
  const dir = topo.stateDir();
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(`osc-${cluster}-`) && n.endsWith('.sock'));
  } catch {
    return [];
  }
  const out: Array<{ sock: string; table: string; tables: string[] }> = [];
  for (const n of names) {
    const sock = join(dir, n);
    const st = (await sendControl(sock, { cmd: 'status' }, 2000).catch(() => undefined)) as { table?: string; tables?: string[] } | undefined;
    if (st) out.push({ sock, table: st.table ?? '', tables: st.tables ?? [] });
  }
  return out;
}

/** The table of --table (db.table, either part in backticks when its name needs them). */
export function tableOption(text: string): { schema: string; table: string } {
  const t = parseTableName(text);
  if (!t) throw badInput(`--table ${JSON.stringify(text)} is not db.table`, { hint: 'a name holding a dot or a backtick goes in backticks, as in SQL: db.`my.table`, db.`a``b`' });
  return t;
}

/** The table's name for sockets, leases and saved state (the form --table takes back). */
export const oscTableName = tableArgument;

export function oscJobName(cluster: string, schema: string, table: string): string {
  return `${cluster}:${oscTableName(schema, table)}`;
}

/** The user lock a running job holds in every zone (GET_LOCK names are at most 64 characters). */
export function oscLeaseName(cluster: string, table: string): string {
  return `ezctl-osc-${createHash('sha1').update(`${cluster}:${table}`).digest('hex').slice(0, 40)}`;
}

export interface OscAbortReport {
  aborted: true;
  table: string;
  /** every table of the change (a family's several, from its saved state), each aborted */
  tables: string[];
  /** no live job: what was dropped in each zone from what the job left */
  zones: Array<{ zone: string; dropped: string[]; savedStateCleared: boolean }>;
}

/**
 * `osc abort` with no live job (its process died: kill -9, a crash, another host gone): in every
 * zone, drop the ghosts and the cut-over's sentries the job left and delete its saved state, for
 * every table of the change (a family's several: named in each table's saved state, so the abort
 * of any one of them ends them all). The originals are never touched, nor the old tables of a
 * change that completed (t_ezdel). Refused while a lease of the change is held in a zone: the job
 * runs elsewhere and is aborted there.
 */
export async function abortFromSavedState(ctx: Ctx, cluster: string, schema: string, table: string): Promise<OscAbortReport> {
  const topo = await ctx.topology();
  const zones = topo.zonesChosen(cluster);
  const name = oscTableName(schema, table);
  const dbs: { zone: string; db: Db }[] = [];
  try {
    for (const z of zones) dbs.push({ zone: z, db: await ctx.connect(topo.master(cluster, z)) });
    // the change's tables: this one, and those its saved state names in any zone
    const tables = [table];
    for (const { db } of dbs) {
      for (const t of await changeTablesSaved(db, oscJobName(cluster, schema, table))) if (!tables.includes(t)) tables.push(t);
    }
    const names = tables.map((t) => oscTableName(schema, t));
    const helpers = [...new Set([...tables.flatMap((t) => [oscHelperNames(t).ghost, sentryNames([t]).sentry, sentryNames([t]).standIn]), sentryNames(tables).sentry, sentryNames(tables).standIn])];
    const sentries = [...new Set([...tables.map((t) => sentryNames([t]).sentry), sentryNames(tables).sentry])];
    const jobs = tables.map((t) => oscJobName(cluster, schema, t));
    for (const { zone, db } of dbs) {
      for (const n of names) {
        // a job killed a moment ago: the server frees its lease once it sees the connection gone
        const lease = oscLeaseName(cluster, n);
        let holder: unknown = null;
        for (let i = 0; i < 30; i++) {
          holder = await db.value('SELECT IS_USED_LOCK(?)', [lease]);
          if (holder === null || holder === undefined) break;
          await sleep(100);
        }
        if (holder !== null && holder !== undefined) {
          throw refused(`zone ${zone}: a change of ${n} is running on another host (its session ${String(holder)} holds the job's lease); nothing changed`, { hint: `run \`ezctl osc abort --table ${name}\` on the host that runs it` });
        }
      }
    }
    // a job's lease (`ezctl jobs`): a live one holds it on another host, even past its connection
    await assertNoLiveHolder(dbs, cluster, names, `stop it on the host that runs it (\`ezctl jobs\` names it), or wait for its lease to expire if that host is gone`);
    const out: OscAbortReport = { aborted: true, table: name, tables: names, zones: [] };
    let found = false;
    for (const { zone, db } of dbs) {
      const there = (await db.query<{ t: string }>(
        `SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (${helpers.map(() => '?').join(', ')})`, [schema, ...helpers],
      )).map((r) => r.t);
      const stateThere = await db.value('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [STATE_SCHEMA, 'osc_state']);
      const saved = Number(stateThere) ? Number(await db.value(`SELECT COUNT(*) FROM ${quoteTable(STATE_SCHEMA, 'osc_state')} WHERE job IN (${jobs.map(() => '?').join(', ')})`, jobs)) : 0;
      if (there.length || saved) found = true;
      // a killed cut-over's RENAME, still queued: it fails on its sentry pair while the sentry
      // exists, so the sentry goes only once no RENAME of the table waits
      for (let i = 0; ; i++) {
        const pending = await db.value<number>(
          `SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE%' AND (${sentries.map(() => 'INSTR(INFO, ?) > 0').join(' OR ')}) LIMIT 1`,
          sentries.map((x) => quoteTable(schema, x)),
        );
        if (pending === undefined || pending === null) break;
        if (i >= 30) throw runtimeError(`zone ${zone}: session ${pending} still runs a cut-over RENAME of ${names.join(', ')}; nothing dropped`, { hint: `KILL ${pending}, then abort again` });
        await sleep(100);
      }
      for (const t of there) {
        await withLockWait(db, { seconds: DEFAULT_LOCK_WAIT_S, schema, tables: [t], what: `zone ${zone}: dropping ${schema}.${t}`, fix: 'and abort again' }, () =>
          db.exec(`DROP TABLE IF EXISTS ${quoteTable(schema, t)}`));
      }
      if (saved) await db.exec(`DELETE FROM ${quoteTable(STATE_SCHEMA, 'osc_state')} WHERE job IN (${jobs.map(() => '?').join(', ')})`, jobs);
      out.zones.push({ zone, dropped: there, savedStateCleared: saved > 0 });
    }
    // its job (dead, or failed keeping its ghost) ends as aborted, so a new change of the table may start
    const ended = await endUnfinishedJobs(dbs, cluster, names, 'aborted', 'aborted by `ezctl osc abort` (no live job)');
    if (ended.length) found = true;
    if (!found) throw runtimeError(`no schema change of ${name} is running on this host, and no zone holds its ghost or saved state: nothing to abort`);
    for (const z of out.zones) if (z.dropped.length || z.savedStateCleared) ctx.log.info(`osc abort: zone ${z.zone}: dropped ${z.dropped.join(', ') || 'nothing'}${z.savedStateCleared ? ', saved state deleted' : ''}; ${names.join(', ')} untouched`);
    return out;
  } finally {
    await Promise.all(dbs.map((d) => d.db.close().catch(() => undefined)));
  }
}

/** The tables of the change a job's saved state names in this zone (none: no state, or saved before the column existed). */
async function changeTablesSaved(db: Db, job: string): Promise<string[]> {
  const rows = await db.query<Record<string, unknown>>(`SELECT * FROM ${quoteTable(STATE_SCHEMA, 'osc_state')} WHERE job = ?`, [job]).catch((e: { code?: string }) => {
    if (e.code === 'ER_NO_SUCH_TABLE') return [];
    throw e;
  });
  const out: string[] = [];
  for (const r of rows) {
    const v = r['change_tables'];
    if (typeof v !== 'string' || !v) continue;
    const list = JSON.parse(v) as unknown;
    if (Array.isArray(list)) for (const t of list) if (typeof t === 'string' && !out.includes(t)) out.push(t);
  }
  return out;
}
