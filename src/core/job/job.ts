// A long job's row and lease in `_ezctl` at every zone master it touches (DRC does not carry
// `_ezctl` between zones, so each zone gets its own row; `ezctl jobs` merges them by id).
//
//   const job = await acquireJob(ctx, { cluster, kind: 'osc', targets: ['db.t'], zones });
//   job.setPhase('copy'); job.progress({ rows, pct, etaS });   // written at most once a second
//   job.assertHeld();                                           // before a point of no return
//   await job.finish();  /  await job.fail(e);  /  await job.release();  // (nothing was done)
//
// Acquire is atomic per server (the cluster's lease rows locked FOR UPDATE in one transaction)
// and all-or-nothing over the zones (every zone's transaction open, in zone-name order, before any
// commits). The lease is renewed by a timer of its own, on connections of its own, so the job's
// work never delays it; a job that cannot renew stops itself (job.signal aborts) a third of the
// lease before anyone may take it over, gh-ost/orchestrator style: never two live holders.
import { hostname, userInfo } from 'node:os';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import type { ResolvedNode } from '../config/load.js';
import type { Logger } from '../ui/log.js';
import { quoteTable } from '../db/quote.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { EzError, refused, runtimeError } from '../exit.js';
import { formatDuration } from '../throttle/duration.js';
import { onInterrupt } from '../signals.js';
import { decideAcquire, DEFAULT_LEASE_MS, leaseTimings, liveness, describeHolder, mustStop, type Here, type JobKind, type JobProgress, type JobStatus, type LeaseRow } from './lease.js';
import { pidAlive } from '../process/pids.js';
import { isLostConnection } from '../db/lost.js';

const JOBS = quoteTable(STATE_SCHEMA, 'jobs');
const LEASES = quoteTable(STATE_SCHEMA, 'job_leases');
/** progress and phase are written at most this often */
const FLUSH_EVERY_MS = 1000;
/**
 * A job's end waits this long for each zone's answer: a master that stops answering (SIGSTOP, cut
 * off) would hold the job's exit for good (mysql2 has no read timeout); its lease expires there instead.
 */
const END_WAIT_MS = 5000;

export interface AcquireOptions {
  cluster: string;
  kind: JobKind;
  /** what the job holds: tables (db.t, as --table takes them) or CLUSTER_TARGET; the first names the job */
  targets: string[];
  /** the zones the job touches, each by its master */
  zones: Array<{ zone: string; node: ResolvedNode }>;
  /** take over the dead (or failed) job on these targets: same id, new holder */
  resume?: boolean;
  leaseMs?: number;
  /** the job's first phase (default plan) */
  phase?: string;
  controlSocket?: string;
  /**
   * Write the job's rows and leases with sql_log_bin = 0: they never reach a binlog (the zone's
   * replicas, DRC). For a job that outlives master changes (emha watch): its lease renewals on a
   * master demoted under it would otherwise be transactions the new master never has (seen: DRC
   * refused to repoint to the new master for a GTID only the watch's renewal had written).
   */
  unlogged?: boolean;
}

export interface JobHandle {
  readonly id: string;
  readonly kind: JobKind;
  /** a dead or failed job was taken over (its id kept) */
  readonly tookOver: boolean;
  /** aborted (with the reason) when the lease is lost: the job must stop */
  readonly signal: AbortSignal;
  readonly phase: string;
  setPhase(phase: string): void;
  progress(p: JobProgress): void;
  /** throws when the lease is lost (or about to be: its renewals fail) */
  assertHeld(): void;
  /** ended: done (or aborted, by its operator); the leases go */
  finish(status?: Extract<JobStatus, 'done' | 'aborted'>, error?: string): Promise<void>;
  /** ended by an error: failed (or aborted, when `status` says so); the leases go */
  fail(error: unknown, status?: Extract<JobStatus, 'failed' | 'aborted'>): Promise<void>;
  /** nothing was done (refused before any change): the job leaves no trace; one taken over is left dead as it was */
  release(): Promise<void>;
}

export const here = (): Here => ({ host: hostname(), pidAlive });

/** A sortable, readable job id: 20261204-091502-3fa9c1. */
export function newJobId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${t}-${randomBytes(3).toString('hex')}`;
}

const isDeadlock = (e: unknown) => (e as { code?: string }).code === 'ER_LOCK_DEADLOCK';

export async function acquireJob(ctx: Ctx, o: AcquireOptions): Promise<JobHandle> {
  if (!o.targets.length) throw new Error('a job holds at least one target');
  const leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
  const zones = [...o.zones].sort((a, b) => (a.zone < b.zone ? -1 : a.zone > b.zone ? 1 : 0));
  const conns: Array<{ zone: string; db: Db }> = [];
  try {
    for (const z of zones) {
      const db = await ctx.connect(z.node);
      conns.push({ zone: z.zone, db });
      // the lock of the cluster's lease rows is held for milliseconds; a longer wait is a stuck session
      await db.exec('SET SESSION innodb_lock_wait_timeout = 10');
      await ensureStateSchema(db);
      // after the schema: its tables must reach the replicas, as every job's rows but these
      if (o.unlogged) await db.exec('SET SESSION sql_log_bin = 0');
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const got = await takeLeases(conns, o, leaseMs);
        return new Job(ctx.log, conns, o, leaseMs, got.id, got.holder, got.tookOver, got.sentAt);
      } catch (e) {
        // two jobs taking leases of one cluster at once: InnoDB picks one to retry
        if (!isDeadlock(e) || attempt >= 5) throw e;
      }
    }
  } catch (e) {
    await Promise.all(conns.map((c) => c.db.close().catch(() => undefined)));
    throw e;
  }
}

async function takeLeases(conns: Array<{ zone: string; db: Db }>, o: AcquireOptions, leaseMs: number): Promise<{ id: string; holder: string; tookOver: 'lease' | 'row' | undefined; sentAt: number }> {
  const open: Db[] = [];
  const rollback = () => Promise.all(open.map((db) => db.exec('ROLLBACK').catch(() => undefined)));
  try {
    const rows: LeaseRow[] = [];
    for (const { zone, db } of conns) {
      await db.exec('START TRANSACTION');
      open.push(db);
      rows.push(...(await leaseRows(db, zone, o.cluster, undefined, true)));
    }
    const d = decideAcquire(rows, { targets: o.targets, resume: !!o.resume, kind: o.kind }, here());
    if (!d.ok) {
      await rollback();
      const what = `${o.kind} of ${o.targets.join(', ')}`;
      throw refused(`${what} refused: ${d.reason}; nothing changed`, {
        hint: d.live
          ? 'wait for it to end, or stop it where it runs; `ezctl jobs` lists the jobs'
          : `the same command with --resume continues it (on any host), or abort it; \`ezctl jobs\` lists the jobs`,
      });
    }
    let id = d.takeOver;
    let from: 'lease' | 'row' | undefined = id ? 'lease' : undefined;
    if (!id && o.resume) {
      id = await lastUnfinished(conns, o);
      if (id) from = 'row';
    }
    const tookOver = id !== undefined;
    id ??= newJobId();
    const holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`.slice(0, 128);
    // the lease counts from when each server runs the write, later than this: the local deadline is safe
    const sentAt = performance.now();
    for (const { db } of conns) {
      await db.exec(
        `INSERT INTO ${JOBS} (id, cluster, kind, target, targets, zones, phase, status, host, pid, user, holder, lease_ms, control_socket)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE phase = VALUES(phase), status = 'running', host = VALUES(host), pid = VALUES(pid), user = VALUES(user), holder = VALUES(holder),
           lease_ms = VALUES(lease_ms), control_socket = VALUES(control_socket), zones = VALUES(zones), resumed_at = NOW(3), finished_at = NULL, last_error = NULL`,
        [id, o.cluster, o.kind, o.targets[0]!, JSON.stringify(o.targets), JSON.stringify(conns.map((c) => c.zone)), o.phase ?? 'plan', hostname(), process.pid, user(), holder, leaseMs, o.controlSocket ?? null],
      );
      for (const t of o.targets) {
        await db.exec(
          `INSERT INTO ${LEASES} (cluster, target, job_id, holder, host, pid, expires_at) VALUES (?, ?, ?, ?, ?, ?, TIMESTAMPADD(MICROSECOND, ?, NOW(3)))
           ON DUPLICATE KEY UPDATE job_id = VALUES(job_id), holder = VALUES(holder), host = VALUES(host), pid = VALUES(pid), taken_at = NOW(3), expires_at = VALUES(expires_at)`,
          [o.cluster, t, id, holder, hostname(), process.pid, leaseMs * 1000],
        );
      }
    }
    // every zone said yes: commit them all; a zone lost between two commits gets its leases back
    const committed: Db[] = [];
    try {
      for (const db of [...open]) {
        await db.exec('COMMIT');
        committed.push(db);
        open.splice(open.indexOf(db), 1);
      }
    } catch (e) {
      await rollback();
      await Promise.all(committed.map((db) => dropLeases(db, id!, holder, !tookOver).catch(() => undefined)));
      throw runtimeError(`the job's leases could not be taken in every zone (${(e as Error).message}); those taken were given back`, { cause: e });
    }
    return { id, holder, tookOver: from, sentAt };
  } catch (e) {
    await rollback();
    throw e;
  }
}

function user(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? '';
  }
}

/** --resume with no dead lease in the way: the last job on the target that failed keeping its work (or died before leases existed). */
async function lastUnfinished(conns: Array<{ db: Db }>, o: AcquireOptions): Promise<string | undefined> {
  let best: { id: string; at: string } | undefined;
  for (const { db } of conns) {
    const r = await db.one<{ id: string; at: string }>(
      `SELECT id, CAST(started_at AS CHAR) AS at FROM ${JOBS} WHERE cluster = ? AND target = ? AND kind = ? AND status IN ('running', 'failed') ORDER BY started_at DESC LIMIT 1`,
      [o.cluster, o.targets[0]!, o.kind],
    );
    if (r && (!best || r.at > best.at)) best = r;
  }
  return best?.id;
}

async function dropLeases(db: Db, id: string, holder: string, deleteJob: boolean): Promise<void> {
  await db.exec(`DELETE FROM ${LEASES} WHERE job_id = ? AND holder = ?`, [id, holder]);
  if (deleteJob) await db.exec(`DELETE FROM ${JOBS} WHERE id = ? AND holder = ?`, [id, holder]);
}

/**
 * The lease rows of a cluster in one zone (of some targets only, when given), with the job's
 * kind and phase; `lock`: FOR UPDATE, inside the caller's transaction.
 */
export async function leaseRows(db: Db, zone: string, cluster: string, targets?: readonly string[], lock = false): Promise<LeaseRow[]> {
  const only = targets?.length ? ` AND target IN (${targets.map(() => '?').join(', ')})` : '';
  const rows = await db.query<{ target: string; jobId: string; holder: string; host: string; pid: number | string; leftUs: number | string }>(
    `SELECT target, job_id AS jobId, holder, host, pid, TIMESTAMPDIFF(MICROSECOND, NOW(3), expires_at) AS leftUs FROM ${LEASES} WHERE cluster = ?${only}${lock ? ' FOR UPDATE' : ''}`,
    [cluster, ...(targets ?? [])],
  );
  if (!rows.length) return [];
  const ids = [...new Set(rows.map((r) => r.jobId))];
  const jobs = await db.query<{ id: string; kind: string; phase: string }>(`SELECT id, kind, phase FROM ${JOBS} WHERE id IN (${ids.map(() => '?').join(', ')})`, ids);
  const byId = new Map(jobs.map((j) => [j.id, j]));
  return rows.map((r) => {
    const j = byId.get(r.jobId);
    return { zone, cluster, target: r.target, jobId: r.jobId, holder: r.holder, host: r.host, pid: Number(r.pid), leftMs: Math.round(Number(r.leftUs) / 1000), ...(j ? { kind: j.kind, phase: j.phase } : {}) };
  });
}

/** The live holders of these targets in every zone (none where `_ezctl` has no lease table yet). */
export async function liveHolders(dbs: ReadonlyArray<{ zone: string; db: Db }>, cluster: string, targets: readonly string[]): Promise<Array<LeaseRow & { leftMs: number }>> {
  const out: Array<LeaseRow & { leftMs: number }> = [];
  for (const { zone, db } of dbs) {
    const rows = await leaseRows(db, zone, cluster, targets).catch((e: { code?: string }) => {
      if (e.code === 'ER_NO_SUCH_TABLE' || e.code === 'ER_BAD_DB_ERROR') return [];
      throw e;
    });
    for (const r of rows) if (liveness(r, here()).live) out.push(r);
  }
  return out;
}

/** "osc job 2026...-ab12cd on db.t (host h, pid 1, phase copy, lease left 21.3s)" */
export function describeLive(r: LeaseRow): string {
  return `${describeHolder(r)}, lease left ${formatDuration(r.leftMs)})`;
}

/**
 * For tools that end a dead job from outside it (`osc abort` with no live job): refuse (exit 4,
 * naming it) while a live job holds any of the targets in any zone.
 */
export async function assertNoLiveHolder(dbs: ReadonlyArray<{ zone: string; db: Db }>, cluster: string, targets: readonly string[], fix: string): Promise<void> {
  const [r] = await liveHolders(dbs, cluster, targets);
  if (r) throw refused(`zone ${r.zone}: ${r.target} is held by ${describeLive(r)}; nothing changed`, { hint: fix });
}

/**
 * Mark the unfinished jobs on these targets (dead, or failed keeping their work) as ended with
 * `status`, and give back their leases, in every zone. Returns the ids ended.
 */
export async function endUnfinishedJobs(dbs: ReadonlyArray<{ db: Db }>, cluster: string, targets: readonly string[], status: Extract<JobStatus, 'aborted' | 'failed'>, why: string): Promise<string[]> {
  const ended = new Set<string>();
  const list = targets.map(() => '?').join(', ');
  for (const { db } of dbs) {
    const there = Number(await db.value('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [STATE_SCHEMA, 'jobs']));
    if (!there) continue;
    const ids = (await db.query<{ id: string }>(
      `SELECT job_id AS id FROM ${LEASES} WHERE cluster = ? AND target IN (${list}) UNION SELECT id FROM ${JOBS} WHERE cluster = ? AND target IN (${list}) AND status IN ('running', 'failed')`,
      [cluster, ...targets, cluster, ...targets],
    )).map((r) => r.id);
    if (!ids.length) continue;
    const idList = ids.map(() => '?').join(', ');
    await db.exec(`UPDATE ${JOBS} SET status = ?, finished_at = NOW(3), last_error = ? WHERE id IN (${idList}) AND status IN ('running', 'failed')`, [status, why, ...ids]);
    await db.exec(`DELETE FROM ${LEASES} WHERE cluster = ? AND job_id IN (${idList})`, [cluster, ...ids]);
    for (const id of ids) ended.add(id);
  }
  return [...ended];
}

class Job implements JobHandle {
  readonly signal: AbortSignal;
  private readonly ctrl = new AbortController();
  private current: string;
  private progressJson: string | null = null;
  private dirty = false;
  private lost: EzError | undefined;
  private ended = false;
  private ending: Promise<void> | undefined;
  private readonly lastOk = new Map<string, number>();
  private readonly lastSent = new Map<string, number>();
  private readonly renewing = new Set<string>();
  private readonly failing = new Set<string>();
  private flushing = false;
  private lastFlush = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly offInt: () => void;
  private readonly timings: ReturnType<typeof leaseTimings>;

  constructor(
    private readonly log: Logger,
    private readonly conns: Array<{ zone: string; db: Db }>,
    private readonly o: AcquireOptions,
    private readonly leaseMs: number,
    readonly id: string,
    private readonly holder: string,
    private readonly from: 'lease' | 'row' | undefined,
    sentAt: number,
  ) {
    this.signal = this.ctrl.signal;
    this.current = o.phase ?? 'plan';
    this.timings = leaseTimings(leaseMs);
    for (const c of conns) {
      this.lastOk.set(c.zone, sentAt);
      this.lastSent.set(c.zone, sentAt);
    }
    this.timer = setInterval(() => this.tick(), Math.min(this.timings.checkEveryMs, FLUSH_EVERY_MS));
    this.timer.unref();
    // SIGINT/SIGTERM end the process once the cleanups ran (newest first: the job's own, which
    // stop its work, then this one), so the job records its end here: aborted
    this.offInt = onInterrupt(() => this.fail(new Error('interrupted (SIGINT/SIGTERM)'), 'aborted'));
    log.debug(`job ${id}: ${o.kind} of ${o.targets.join(', ')} holds its lease in ${conns.map((c) => c.zone).join(', ')} (${leaseMs} ms, renewed every ${this.timings.renewEveryMs} ms)${from ? ', taken over' : ''}`);
  }

  get tookOver(): boolean {
    return this.from !== undefined;
  }

  get kind(): JobKind {
    return this.o.kind;
  }

  get phase(): string {
    return this.current;
  }

  setPhase(phase: string): void {
    if (phase === this.current) return;
    this.current = phase;
    this.dirty = true;
  }

  progress(p: JobProgress): void {
    this.progressJson = JSON.stringify(p);
    this.dirty = true;
  }

  assertHeld(): void {
    this.checkDeadline();
    if (this.lost) throw this.lost;
  }

  private checkDeadline(): void {
    if (this.lost || this.ended) return;
    const now = performance.now();
    for (const [zone, at] of this.lastOk) {
      if (mustStop(at, now, this.leaseMs)) {
        this.lose(`zone ${zone}: no renewal of its lease succeeded for ${Math.round(now - at)} ms (lease ${this.leaseMs} ms)`);
        return;
      }
    }
  }

  private lose(reason: string): void {
    if (this.lost) return;
    this.lost = runtimeError(`the ${this.o.kind} job ${this.id} on ${this.o.targets.join(', ')} lost its lease: ${reason}; it stops so that no two processes run it`, {
      hint: 'once its server answers again, the same command with --resume continues it (`ezctl jobs` shows it)',
    });
    this.log.error(this.lost.message);
    this.ctrl.abort(this.lost);
  }

  private tick(): void {
    if (this.ended) return;
    this.checkDeadline();
    if (this.lost) return;
    const now = performance.now();
    for (const { zone, db } of this.conns) {
      if (this.renewing.has(zone) || now - this.lastSent.get(zone)! < this.timings.renewEveryMs) continue;
      this.renew(zone, db, now);
    }
    if (this.dirty && !this.flushing && now - this.lastFlush >= FLUSH_EVERY_MS) void this.flush();
  }

  private renew(zone: string, db: Db, sent: number): void {
    this.renewing.add(zone);
    this.lastSent.set(zone, sent);
    db.exec(`UPDATE ${LEASES} SET expires_at = TIMESTAMPADD(MICROSECOND, ?, NOW(3)) WHERE cluster = ? AND job_id = ? AND holder = ? AND expires_at > NOW(3)`, [
      this.leaseMs * 1000, this.o.cluster, this.id, this.holder,
    ]).then(
      (r) => {
        if (this.ended) return;
        if (r.affectedRows < this.o.targets.length) {
          this.lose(`zone ${zone}: its lease expired or was taken over (${r.affectedRows} of ${this.o.targets.length} renewed)`);
          return;
        }
        this.lastOk.set(zone, sent);
        if (this.failing.delete(zone)) this.log.info(`job ${this.id}: zone ${zone}: lease renewed again`);
      },
      (e: Error) => {
        if (this.ended) return;
        if (!this.failing.has(zone)) this.log.warn(`job ${this.id}: zone ${zone}: renewing its lease failed (${e.message}); it stops itself if this lasts ${this.timings.stopAfterMs} ms`);
        this.failing.add(zone);
      },
    ).finally(() => this.renewing.delete(zone));
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    this.dirty = false;
    this.lastFlush = performance.now();
    const phase = this.current;
    const progress = this.progressJson;
    try {
      await Promise.all(this.conns.map(({ zone, db }) =>
        db.exec(`UPDATE ${JOBS} SET phase = ?, progress = ? WHERE id = ? AND holder = ?`, [phase, progress, this.id, this.holder]).catch((e: Error) => {
          this.log.debug(`job ${this.id}: zone ${zone}: progress not written (${e.message})`);
        })));
    } finally {
      this.flushing = false;
    }
  }

  /** the first end wins; a later call (the interrupt's cleanup while the job's own end runs) waits for it */
  private end(write: (db: Db) => Promise<unknown>): Promise<void> {
    this.ending ??= this.endOnce(write);
    return this.ending;
  }

  private async endOnce(write: (db: Db) => Promise<unknown>): Promise<void> {
    this.ended = true;
    clearInterval(this.timer);
    this.offInt();
    await Promise.all(this.conns.map(async ({ zone, db }) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${END_WAIT_MS} ms`)), END_WAIT_MS);
      });
      try {
        await Promise.race([write(db), late]);
        await Promise.race([db.close(), late]).catch(() => undefined);
      } catch (e) {
        this.log.warn(`job ${this.id}: zone ${zone}: its end was not recorded (${isLostConnection(e) ? 'the connection to its master is lost' : (e as Error).message}); its lease there expires in ${this.leaseMs} ms and \`ezctl jobs\` shows it dead`);
        (db.conn as unknown as { destroy(): void }).destroy();
      } finally {
        clearTimeout(timer);
      }
    }));
  }

  private endAs(status: JobStatus, error: string | null): Promise<void> {
    const phase = status === 'done' ? 'done' : this.current;
    if (status === 'done' && this.progressJson) {
      // the estimate it was measured against was the server's guess: done is all of it
      const p = JSON.parse(this.progressJson) as JobProgress;
      if (p.pct !== undefined) p.pct = 100;
      delete p.etaS;
      this.progressJson = JSON.stringify(p);
    }
    return this.end(async (db) => {
      await db.exec(`UPDATE ${JOBS} SET status = ?, phase = ?, progress = COALESCE(?, progress), last_error = ?, finished_at = NOW(3) WHERE id = ? AND holder = ?`, [
        status, phase, this.progressJson, error, this.id, this.holder,
      ]);
      await db.exec(`DELETE FROM ${LEASES} WHERE job_id = ? AND holder = ?`, [this.id, this.holder]);
    });
  }

  finish(status: 'done' | 'aborted' = 'done', error?: string): Promise<void> {
    return this.endAs(status, error ?? null);
  }

  fail(error: unknown, status: 'failed' | 'aborted' = 'failed'): Promise<void> {
    const e = error as { message?: string; details?: string[] };
    const text = [e?.message ?? String(error), ...(e?.details ?? [])].join('; ').slice(0, 4000);
    return this.endAs(status, text);
  }

  release(): Promise<void> {
    if (!this.from) return this.end((db) => dropLeases(db, this.id, this.holder, true));
    // taken over, then nothing done: left as it was found, dead (its lease expired now) or failed
    if (this.from === 'lease') return this.end((db) => db.exec(`UPDATE ${LEASES} SET expires_at = NOW(3) WHERE job_id = ? AND holder = ?`, [this.id, this.holder]));
    return this.end(async (db) => {
      await db.exec(`UPDATE ${JOBS} SET status = 'failed', finished_at = NOW(3) WHERE id = ? AND holder = ?`, [this.id, this.holder]);
      await dropLeases(db, this.id, this.holder, false);
    });
  }
}

