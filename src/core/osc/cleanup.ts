// `ezctl osc cleanup`: the helper tables schema changes left in every zone, and (with --execute)
// dropping them: the old tables kept after a cut-over (<t>_ezdel), and the ghosts, cut-over
// sentries and plan probes of jobs that died. A helper table whose job still runs is never
// dropped: its table's job answers on its control socket on this host, holds its table's lease
// (GET_LOCK) in any zone (a job on another host, from before its first helper table), holds its
// job's lease (_ezctl.job_leases, renewed while it runs: `ezctl jobs`), or has saved state in that zone (_ezctl.osc_state, written from the moment its ghosts are followed until its old
// tables are handled, so a job on another host counts too; a job that died keeps it until
// `--resume` finishes it or `ezctl osc abort` ends it). Tables are dropped as --drop-old-table
// drops them (osc/drop.ts: behind the throttle, logged so that the zone's replicas follow), and
// never carried to another zone by DRC (it ignores helper tables' rows and DDL).
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import { SYSTEM_SCHEMAS } from '../db/introspect.js';
import { quoteTable } from '../db/quote.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { sendControl } from '../control/socket.js';
import { throttlerFor, type ThrottleOptions } from '../throttle/index.js';
import { pidAlive } from '../process/pids.js';
import { parseHelperName } from '../cluster/helper-tables.js';
import { dropHelperTable } from './drop.js';
import { oscLeaseName, oscSocketPath, oscTableName, runningJobs } from './engine.js';
import { describeLive, liveHolders } from '../job/job.js';

export interface CleanupOptions {
  cluster?: string;
  zones?: string[];
  execute?: boolean;
  throttle?: ThrottleOptions;
}

export interface HelperTable {
  zone: string;
  schema: string;
  table: string;
  /** old: the original kept after a cut-over; ghost: a copy in progress or left by a job that died; sentry: the cut-over's; probe: a plan's unlogged twin */
  kind: 'old' | 'ghost' | 'sentry' | 'probe';
  /** the table it belongs to ('' for a probe) */
  of: string;
  rowsEstimate: number;
  bytes: number;
  action: 'drop' | 'keep';
  why: string;
  dropped?: boolean;
  error?: string;
}

export interface CleanupReport {
  cluster: string;
  zones: string[];
  execute: boolean;
  tables: HelperTable[];
  ms: number;
}

export async function oscCleanup(ctx: Ctx, o: CleanupOptions): Promise<CleanupReport> {
  const started = Date.now();
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster);
  const zones = topo.zonesChosen(cluster.name, o.zones);
  const out: HelperTable[] = [];
  const dbs = new Map<string, Db>();
  const throttle = o.execute ? await throttlerFor(ctx, cluster.name, zones, o.throttle ?? {}) : undefined;
  try {
    for (const z of zones) dbs.set(z, await ctx.connect(topo.master(cluster.name, z)));
    // jobs answering on this host, by every table they change
    const running = new Set((await runningJobs(topo, cluster.name)).flatMap((j) => [j.table, ...j.tables]));
    const leaseHolder = async (schema: string, table: string): Promise<{ zone: string; session: string } | undefined> => {
      for (const [zone, db] of dbs) {
        const holder = await db.value('SELECT IS_USED_LOCK(?)', [oscLeaseName(cluster.name, oscTableName(schema, table))]);
        if (holder !== null && holder !== undefined) return { zone, session: String(holder) };
      }
      return undefined;
    };
    const isRunning = async (schema: string, table: string) =>
      running.has(`${schema}.${table}`) || (await sendControl(oscSocketPath(topo, cluster.name, `${schema}.${table}`), { cmd: 'ping' }, 2000).then(() => true, () => false));
    const judge = async (zone: string, db: Db, t: { schema: string; table: string }, h: NonNullable<ReturnType<typeof parseHelperName>>): Promise<Pick<HelperTable, 'action' | 'why'>> => {
      if (h.kind === 'probe') {
        return pidAlive(h.pid!)
          ? { action: 'keep', why: `a plan may be making it now (process ${h.pid} runs on this host)` }
          : { action: 'drop', why: "a plan's twin, left by a process that is gone (unlogged: this server only)" };
      }
      if (await isRunning(t.schema, h.of)) return { action: 'keep', why: `the change of ${t.schema}.${h.of} is running (it answers on its control socket here)` };
      // a job anywhere holds its table's lease in every zone from before its first helper table
      // until it ends (before it first saves state, too); the server frees it when the job dies
      const lease = await leaseHolder(t.schema, h.of);
      if (lease) return { action: 'keep', why: `the change of ${t.schema}.${h.of} is running (session ${lease.session} in ${lease.zone} holds its lease): on another host, or starting` };
      // its job's lease (`ezctl jobs`), live while the job renews it: a job whose connection
      // dropped but whose process still runs (it stops itself before the lease expires)
      const [job] = await liveHolders([...dbs].map(([zone, d]) => ({ zone, db: d })), cluster.name, [oscTableName(t.schema, h.of)]);
      if (job) return { action: 'keep', why: `the change of ${t.schema}.${h.of} is running: ${describeLive(job)} in ${job.zone}` };
      const state = await savedState(db, `${cluster.name}:${t.schema}.${h.of}`, zone);
      if (state) {
        return {
          action: 'keep',
          why: `the change of ${t.schema}.${h.of} has saved state in ${zone} (phase ${state.phase}, last saved ${state.updatedAt}): it runs on another host, or it died and \`--resume\` continues it or \`ezctl osc abort --table ${t.schema}.${h.of}\` ends it`,
        };
      }
      const base = Number(await db.value('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [t.schema, h.of]));
      if (!base) return { action: 'keep', why: `${t.schema}.${h.of} itself is missing: ${t.table} may hold its only copy; rename it back by hand after checking` };
      if (h.kind === 'old') return { action: 'drop', why: `the original of ${t.schema}.${h.of}, kept after its change` };
      if (h.kind === 'ghost') return { action: 'drop', why: `the ghost of a change of ${t.schema}.${h.of} whose job is gone (no saved state, no control socket)` };
      return { action: 'drop', why: `a cut-over sentry of a change of ${t.schema}.${h.of} whose job is gone` };
    };

    for (const z of zones) {
      const db = dbs.get(z)!;
      const rows = await db.query<{ s: string; t: string; n: string | number | null; b: string | number | null }>(
        `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, TABLE_ROWS AS n, DATA_LENGTH + INDEX_LENGTH AS b FROM information_schema.TABLES
          WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (${SYSTEM_SCHEMAS.map(() => '?').join(', ')})
            AND (TABLE_NAME LIKE '%\\_ez%' OR TABLE_NAME LIKE '\\_ezctl\\_osc\\_probe\\_%') ORDER BY 1, 2`,
        [...SYSTEM_SCHEMAS],
      );
      for (const r of rows) {
        const h = parseHelperName(r.t);
        if (!h) continue;
        const verdict = await judge(z, db, { schema: r.s, table: r.t }, h);
        out.push({ zone: z, schema: r.s, table: r.t, kind: h.kind, of: h.of, rowsEstimate: Number(r.n ?? 0), bytes: Number(r.b ?? 0), ...verdict });
      }
    }
    if (o.execute) {
      // zones side by side, each zone's tables one after another; every verdict checked again
      // just before its DROP, so a job started since the listing keeps its tables
      await Promise.all(zones.map(async (z) => {
        const db = dbs.get(z)!;
        for (const t of out.filter((x) => x.zone === z && x.action === 'drop')) {
          const again = await judge(z, db, t, parseHelperName(t.table)!);
          if (again.action !== 'drop') {
            Object.assign(t, again);
            continue;
          }
          try {
            ctx.log.info(`osc cleanup: zone ${z}: dropping ${t.schema}.${t.table} (about ${t.rowsEstimate} rows)`);
            await dropHelperTable(db, t.schema, t.table, { throttler: throttle?.throttler, unlogged: t.kind === 'probe', zone: z });
            t.dropped = true;
          } catch (e) {
            const hint = (e as { hint?: string }).hint;
            t.error = `${(e as Error).message}${hint ? ` (${hint})` : ''}`;
          }
        }
      }));
    }
    return { cluster: cluster.name, zones, execute: !!o.execute, tables: out, ms: Date.now() - started };
  } finally {
    await Promise.all([...dbs.values()].map((d) => d.close().catch(() => undefined)));
    await throttle?.close();
  }
}

async function savedState(db: Db, job: string, zone: string): Promise<{ phase: string; updatedAt: string } | undefined> {
  const r = await db
    .one<{ phase: string; u: string }>(`SELECT phase, CAST(updated_at AS CHAR) AS u FROM ${quoteTable(STATE_SCHEMA, 'osc_state')} WHERE job = ? AND zone = ?`, [job, zone])
    .catch((e: { code?: string }) => {
      // no state table: no job ever ran here; anything else must not read as "no job"
      if (e.code === 'ER_NO_SUCH_TABLE') return undefined;
      throw e;
    });
  return r ? { phase: r.phase, updatedAt: r.u } : undefined;
}
