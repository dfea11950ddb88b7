// A move's state for `dbus status` and for cut-over: over the control socket when the job runs on
// this host, else from its job row and checkpoints in the target's `_ezctl` (any host). Also the
// sources' binlog retention against a kept position, and `dbus pause|resume|abort`.
import { hostname } from 'node:os';
import type { Ctx } from '../context.js';
import { connect, type Db, type Endpoint } from '../db/connect.js';
import { gtidCovers } from '../db/gtid.js';
import { quoteTable } from '../db/quote.js';
import { badInput, runtimeError } from '../exit.js';
import { sendJob, noJobAnswers } from '../control/commands.js';
import { clearApplyState, ensureApplyCheckpoint } from '../apply/checkpoint.js';
import { readZone, mergeJobs, type JobView } from '../job/list.js';
import { here, endUnfinishedJobs, assertNoLiveHolder } from '../job/job.js';
import { formatDuration } from '../throttle/duration.js';
import { loadMoveServers, type DbusMove, type DbusState, type DbusStatus } from './spec.js';
import { DBUS_CLUSTER, dbusJob, streamName } from './job.js';
import { conflictSummary } from './conflicts.js';

export type { DbusStatus } from './spec.js';

type Servers = Pick<DbusMove, 'name' | 'sources' | 'target' | 'origin'>;
export interface MoveRef { name: string; config?: string; spec?: string }

/** The start of a source's oldest binary log: its file and the GTID position before it (none: no binlog). */
export async function binlogStart(db: Db): Promise<{ file: string; position: string } | undefined> {
  const logs = await db.query<Record<string, unknown>>('SHOW BINARY LOGS');
  const file = logs[0]?.Log_name as string | undefined;
  if (!file) return undefined;
  const events = await db.query<Record<string, unknown>>('SHOW BINLOG EVENTS IN ? LIMIT 4', [file]);
  const list = events.find((e) => String(e.Event_type) === 'Gtid_list');
  const m = /\[([^\]]*)\]/.exec(String(list?.Info ?? ''));
  return { file, position: (m?.[1] ?? '').replace(/\s+/g, '') };
}

/**
 * A warning when a source's binlog retention is about to pass (or passed) a kept position: the
 * binlogs are purged after binlog_expire_logs_seconds (expire_logs_days); a resume needs every
 * binlog from the kept position on. `since`: when the position was kept (the pause).
 */
export async function retentionWarning(ep: Endpoint, kept: string, since: number, now = Date.now()): Promise<string | undefined> {
  const db = await connect(ep);
  try {
    const start = await binlogStart(db);
    if (start && !gtidCovers('mariadb', kept, start.position)) return `the kept position ${kept} is no longer in the binary logs (the oldest, ${start.file}, starts after ${start.position}): a resume will refuse; the move must start again`;
    const v = await db.one<{ s: unknown; d: unknown }>('SELECT @@global.binlog_expire_logs_seconds AS s, @@global.expire_logs_days AS d').catch(async () => db.one<{ s: unknown; d: unknown }>('SELECT 0 AS s, @@global.expire_logs_days AS d'));
    const seconds = Number(v?.s ?? 0) || Math.round(Number(v?.d ?? 0) * 86400);
    return retentionText(seconds, since, now);
  } finally {
    await db.close();
  }
}

/** Pure: the warning for a retention of `seconds` and a position kept since `since` (none when far off or no expiry). */
export function retentionText(seconds: number, since: number, now: number): string | undefined {
  if (!seconds) return undefined;
  const leftMs = since + seconds * 1000 - now;
  if (leftMs > Math.max((seconds * 1000) / 2, 3_600_000) || leftMs > seconds * 1000) return undefined;
  const kept = formatDuration(Math.max(0, now - since));
  if (leftMs <= 0) return `binlogs are kept ${formatDuration(seconds * 1000)} (binlog_expire_logs_seconds) and the position was kept ${kept} ago: the next purge may remove it, after which a resume refuses; resume now or raise the retention`;
  return `binlogs are kept ${formatDuration(seconds * 1000)} (binlog_expire_logs_seconds) and the position was kept ${kept} ago: it may be purged in about ${formatDuration(leftMs)}, after which a resume refuses; resume before then or raise the retention`;
}

/** The move's newest job on its target, with its state (running = a live lease). */
async function jobOf(target: Db, s: Servers): Promise<JobView | undefined> {
  const read = await readZone(target, DBUS_CLUSTER, s.target.label);
  const mine = { ...read, jobs: read.jobs.filter((j) => j.target === s.name), leases: read.leases.filter((l) => l.target === s.name) };
  return mergeJobs([mine], { all: true, here: here() }).filter((j) => j.target === s.name).sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1))[0];
}

const stateOf = (j: JobView): DbusState => {
  if (j.state === 'running') return (['copying', 'following', 'paused', 'cutting-over', 'cut-over', 'rolled-back'].includes(j.phase) ? j.phase : 'copying') as DbusState;
  if (j.state === 'done') return (['cut-over', 'rolled-back'].includes(j.phase) ? j.phase : 'cut-over') as DbusState;
  if (j.state === 'failed') return 'failed';
  return 'stopped';
};

const address = (s: Servers) => ({ kind: dbusJob, path: '', job: `dbus job of move ${s.name}`, fix: `start it with \`ezctl dbus start ${s.name} --execute\`` });

async function withTarget<T>(ctx: Ctx, ref: MoveRef, fn: (target: Db, s: Servers) => Promise<T>): Promise<T> {
  const s = await loadMoveServers(ctx, ref);
  const db = await ctx.connect(s.target.node!);
  try {
    return await fn(db, s);
  } finally {
    await db.close();
  }
}

/** A move's state: the live job's own answer on this host, else its job row and checkpoints (any host). */
export async function dbusStatus(ctx: Ctx, name: string, o: Omit<MoveRef, 'name'> = {}): Promise<DbusStatus> {
  return withTarget(ctx, { name, ...o }, async (target, s) => {
    const job = await jobOf(target, s);
    if (job && job.state === 'running' && job.host === hostname() && job.controlSocket) {
      try {
        return await sendJob({ ...address(s), path: job.controlSocket }, 'status');
      } catch (e) {
        if (!noJobAnswers(e)) throw e;
      }
    }
    return statusFromRows(target, s, job);
  });
}

async function statusFromRows(target: Db, s: Servers, job: JobView | undefined): Promise<DbusStatus> {
  const there = Number(await target.value('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', ['_ezctl', 'apply_checkpoint']));
  const rows = there
    ? await target.query<{ name: string; part: string; position: string }>(`SELECT name, part, position FROM ${quoteTable('_ezctl', 'apply_checkpoint')} WHERE name LIKE ?`, [`${streamName(s.name, '')}%`])
    : [];
  const sources = s.sources.map((src) => {
    const pos = rows.find((r) => r.name === streamName(s.name, src.label) && r.part === '')?.position ?? '';
    return { label: src.label, readGtid: pos, appliedGtid: pos, lagMs: null };
  });
  const progress = (job?.progress?.tables as Array<{ target: string; source: string; copiedRows: number; estimatedRows: number; copyDone: boolean }> | undefined) ?? [];
  const tables = progress.map((t) => {
    const [label, table] = [t.source.slice(0, t.source.indexOf(':')), t.source.slice(t.source.indexOf(':') + 1)];
    const done = rows.some((r) => r.name === streamName(s.name, label) && r.part === table && r.position === 'done');
    return { target: t.target, copiedRows: t.copiedRows, estimatedRows: t.estimatedRows, copyDone: t.copyDone || done };
  });
  return {
    name: s.name,
    jobId: job?.id ?? '',
    holder: job ? `${job.host}:${job.pid}` : '',
    state: job ? stateOf(job) : 'planned',
    sources,
    tables,
    ...(await conflicts(target, s.name)),
    error: job?.lastError ?? null,
  };
}

/** Rows in `_ezctl.dbus_conflicts` for the move, and the last; 0 while the table does not exist. */
async function conflicts(target: Db, name: string): Promise<Pick<DbusStatus, 'conflicts' | 'lastConflict'>> {
  const c = await conflictSummary(target, name);
  return c.count ? { conflicts: c.count, lastConflict: c.last } : { conflicts: 0 };
}

/**
 * Wait until the running job of `name` has applied, for each source label, that source's GTID
 * position (cut-over's final positions), read from its checkpoints on the target (any host; an
 * idle stream saves its position within 100 ms). behind: the labels not reached at the timeout.
 */
export async function waitApplied(
  ctx: Ctx,
  name: string,
  positions: Record<string /* source label */, string /* gtid */>,
  o: { timeoutMs: number; signal?: AbortSignal; config?: string; spec?: string },
): Promise<{ reached: boolean; behind: string[] }> {
  return withTarget(ctx, { name, ...(o.config ? { config: o.config } : {}), ...(o.spec ? { spec: o.spec } : {}) }, async (target) => {
    const deadline = Date.now() + o.timeoutMs;
    for (;;) {
      const rows = await target.query<{ name: string; position: string }>(`SELECT name, position FROM ${quoteTable('_ezctl', 'apply_checkpoint')} WHERE name LIKE ? AND part = ''`, [`${streamName(name, '')}%`]);
      const behind = Object.entries(positions)
        .filter(([label, gtid]) => !gtidCovers('mariadb', rows.find((r) => r.name === streamName(name, label))?.position ?? '', gtid))
        .map(([label]) => label);
      if (!behind.length) return { reached: true, behind };
      if (Date.now() >= deadline || o.signal?.aborted) return { reached: false, behind };
      await new Promise((r) => setTimeout(r, 20));
    }
  });
}

/** `dbus pause|resume|abort NAME`: the live job on this host over its socket; abort also ends a dead one. */
export async function dbusControl(ctx: Ctx, ref: MoveRef, cmd: 'pause' | 'resume' | 'abort', o: { dropTarget?: boolean } = {}): Promise<{ status: DbusStatus; dropped?: string[]; kept?: string[] }> {
  return withTarget(ctx, ref, async (target, s) => {
    const job = await jobOf(target, s);
    const live = job && job.state === 'running';
    if (live && job.host !== hostname()) {
      throw runtimeError(`the dbus job of move ${s.name} runs on host ${job.host} (pid ${job.pid}): its control socket is there`, { hint: `run \`ezctl dbus ${cmd} ${s.name}\` on ${job.host}` });
    }
    if (live) {
      const at = { ...address(s), path: job.controlSocket ?? '' };
      if (cmd === 'abort') {
        await sendJob(at, 'abort', o.dropTarget ? { 'drop-target': true } : {});
        // the job ends itself: wait until its row says so
        const deadline = Date.now() + 30_000;
        for (;;) {
          const j = await jobOf(target, s);
          if (!j || j.state !== 'running') break;
          if (Date.now() > deadline) throw runtimeError(`the dbus job of move ${s.name} did not end within 30 s of the abort`, { hint: '`ezctl dbus status` shows it' });
          await new Promise((r) => setTimeout(r, 100));
        }
        const names = await loadTargets(ctx, ref, job);
        return { status: await statusFromRows(target, s, await jobOf(target, s)), ...(o.dropTarget ? { dropped: names, kept: [] } : { dropped: [], kept: names }) };
      }
      return { status: await sendJob(at, cmd) };
    }
    if (cmd !== 'abort') throw runtimeError(`no dbus job of move ${s.name} is running (${job ? `its last one ${job.state === 'stopped' ? 'died' : `is ${job.state}`}` : 'none ever started'})`, { hint: `\`ezctl dbus start ${s.name} --execute${job ? ' --resume' : ''}\`` });
    // a dead job (or none): end its rows, drop its checkpoints, and the target tables when asked
    await assertNoLiveHolder([{ zone: s.target.label, db: target }], DBUS_CLUSTER, [s.name], `stop it where it runs (\`ezctl dbus abort ${s.name}\` there)`);
    await endUnfinishedJobs([{ db: target }], DBUS_CLUSTER, [s.name], 'aborted', 'aborted by `dbus abort` (no live job)');
    const names = await loadTargets(ctx, ref, job);
    await ensureApplyCheckpoint(target);
    for (const src of s.sources) await clearApplyState(target, streamName(s.name, src.label));
    if (o.dropTarget) {
      for (const n of names) {
        const [schema, table] = [n.slice(0, n.indexOf('.')), n.slice(n.indexOf('.') + 1)];
        await target.exec(`DROP TABLE IF EXISTS ${quoteTable(schema, table)}`);
      }
    }
    return { status: await statusFromRows(target, s, await jobOf(target, s)), ...(o.dropTarget ? { dropped: names, kept: [] } : { dropped: [], kept: names }) };
  });
}

/** The move's target tables: from its last job's progress (the tables it resolved), else from the declaration. */
async function loadTargets(ctx: Ctx, ref: MoveRef, job: JobView | undefined): Promise<string[]> {
  const t = (job?.progress?.tables as Array<{ target: string }> | undefined) ?? [];
  if (t.length) return [...new Set(t.map((x) => x.target))];
  const { loadMove } = await import('./spec.js');
  const move = await loadMove(ctx, ref);
  return move.tables.map((x) => `${x.target.schema}.${x.target.table}`);
}

export function checkName(name: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw badInput(`${JSON.stringify(name)} is not a move name (letters, digits, _ -)`);
  return name;
}
