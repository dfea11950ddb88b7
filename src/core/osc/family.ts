// A change of several tables linked by foreign keys (a parent and every table whose foreign keys
// point into the family), taken together so that no constraint ever points at the wrong table:
//  - each table gets its ghost; a ghost's foreign keys are those of its table, pointing at the
//    parent's ghost when the parent is in the family (at the parent itself otherwise), under
//    another name (constraint names are unique in a schema: a leading "_" is toggled);
//  - one applier per zone follows all of them in binlog order, with the foreign keys' cascades;
//  - one RENAME per zone swaps them all at once (cutover.ts). InnoDB moves a foreign key along
//    with the table it references, so afterwards the new tables reference each other and the old
//    ones (t_ezdel) each other; the old tables' foreign keys are then dropped, so nothing of them
//    can hold up the application (a RESTRICT on a parent) or refuse a later DROP.
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { serverInfo } from '../db/server.js';
import { badInput, refused } from '../exit.js';
import { measureDrcLagMs } from '../throttle/signals.js';
import type { Throttler } from '../throttle/throttler.js';
import type { ForeignKeyShape } from '../db/introspect.js';
import { planOnMaster, sameShapeEverywhere, type OscPlan } from './plan.js';
import { ZoneOsc, type ZoneProgress } from './zone.js';
import { acquireOscJob, copyAndCutOver, endOscJob, oscJobName, oscTableName, type OscOptions, type OscReport } from './engine.js';
import { copySettingsOf, type CopySettings } from '../copy/settings.js';
import { DEFAULT_LOCK_WAIT_S, withLockWait } from '../db/lockwait.js';
import type { CascadeRule } from './applier.js';
import { dropOldTables } from './drop.js';

/** The change's knobs are osc's; a family names its tables and their changes instead of one. */
export type FamilyOptions = CopySettings & Pick<
  OscOptions,
  'cluster' | 'zones' | 'execute' | 'throttle' | 'postponeCutOverFlagFile' | 'maxDrcLagMs' | 'resume' | 'dropOldTable' | 'onProgress' | 'lockWaitTimeoutS' | 'includeTriggers' | 'leaseMs' | 'jobKind'
> & {
  schema: string;
  /** every table of the family with its change ('' = rebuilt unchanged, for its foreign keys) */
  tables: Array<{ table: string; alter: string }>;
};

export interface FamilyReport {
  cluster: string;
  schema: string;
  zones: string[];
  execute: boolean;
  tables: Array<{ table: string; alter: string; rowsEstimate: number; foreignKeys: string[] }>;
  refusals: string[];
  progress?: ZoneProgress[];
  cutOver?: OscReport['cutOver'];
  /** foreign keys dropped from the old tables after the cut-over */
  oldForeignKeysDropped?: number;
  /** --drop-old-table: the old tables dropped, per zone */
  oldTablesDropped?: Array<{ zone: string; table: string }>;
  ms: number;
}

/** The ghost's name for a foreign key: constraint names are unique per schema, so a leading "_" is toggled. */
export function ghostConstraintName(name: string): string {
  return name.startsWith('_') ? name.slice(1) : `_${name}`.slice(0, 64);
}

export async function runOscFamily(ctx: Ctx, o: FamilyOptions): Promise<FamilyReport> {
  const started = Date.now();
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster);
  const zones = topo.zonesChosen(cluster.name, o.zones);
  if (!o.tables.length) throw badInput('a family needs at least one table');
  const names = new Set(o.tables.map((t) => t.table));
  const ctl: { zone: string; db: Db }[] = [];
  // the bound on every metadata lock wait but the cut-over's: the plan's twins, the ghosts, the
  // copy, the old tables' foreign keys and tables after the cut-over
  const lockWaitS = o.lockWaitTimeoutS ?? DEFAULT_LOCK_WAIT_S;
  // one job holding every table of the family, before anything else (a change of any of them is refused here)
  const oscJob = o.execute ? await acquireOscJob(ctx, topo, cluster.name, zones, o.tables.map((t) => oscTableName(o.schema, t.table)), o) : undefined;
  try {
    for (const z of zones) ctl.push({ zone: z, db: await ctx.connect(topo.master(cluster.name, z)) });
    const refusals: string[] = [];
    const plans = new Map<string, Map<string, OscPlan>>(); // zone -> table -> plan
    for (const c of ctl) {
      const info = await serverInfo(c.db);
      if (info.flavor !== 'mariadb') throw refused(`zone ${c.zone}: online schema change is implemented for MariaDB masters (${info.version} found)`);
      if (!info.logBin || info.binlogFormat !== 'ROW') throw refused(`zone ${c.zone}: the binlog must be on and ROW (the ghosts follow the tables through it)`);
      const mine = new Map<string, OscPlan>();
      for (const t of o.tables) {
        const plan = await withLockWait(c.db, { seconds: lockWaitS, schema: o.schema, tables: [t.table], what: `zone ${c.zone}: planning ${o.schema}.${t.table} (an empty twin of the table)` }, () =>
          planOnMaster(c.db, o.schema, t.table, t.alter, new Map(), !!o.resume, true, { includeTriggers: !!o.includeTriggers }));
        mine.set(t.table, plan);
      }
      plans.set(c.zone, mine);
      // every table whose foreign keys point into the family must be in it (its keys would follow the old table)
      const outside = await c.db.query<{ t: string; n: string; r: string }>(
        `SELECT TABLE_NAME AS t, CONSTRAINT_NAME AS n, REFERENCED_TABLE_NAME AS r FROM information_schema.REFERENTIAL_CONSTRAINTS
          WHERE UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME IN (${o.tables.map(() => '?').join(', ')})`,
        [o.schema, ...o.tables.map((t) => t.table)],
      );
      for (const r of outside.filter((x) => !names.has(x.t))) refusals.push(`zone ${c.zone}: ${o.schema}.${r.t} references ${r.r} (${r.n}) but is not part of the change; it must be rebuilt with it`);
    }
    const first = plans.get(zones[0]!)!;
    const job = (table: string) => oscJobName(cluster.name, o.schema, table);
    // --resume: every table's saved state and ghost in every zone, for this very change
    const saved = new Map<string, NonNullable<Awaited<ReturnType<typeof ZoneOsc.savedState>>>>();
    if (o.resume) {
      for (const c of ctl) {
        for (const t of o.tables) {
          const st = await ZoneOsc.savedState(c.db, job(t.table), c.zone);
          const ghost = first.get(t.table)!.names.ghost;
          const there = Number(await c.db.value('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [o.schema, ghost]));
          if (!st) refusals.push(`zone ${c.zone}: no saved state of a change of ${o.schema}.${t.table} to resume`);
          else if (st.alter !== t.alter) refusals.push(`zone ${c.zone}: the saved change of ${o.schema}.${t.table} is "${st.alter}", not "${t.alter}"`);
          else saved.set(`${c.zone}\0${t.table}`, st);
          if (!there) refusals.push(`zone ${c.zone}: the ghost table ${ghost} is gone; start again without --resume`);
        }
      }
    }
    for (const t of o.tables) {
      for (const z of zones) for (const r of plans.get(z)!.get(t.table)!.refusals) refusals.push(`zone ${z}: ${o.schema}.${t.table}: ${r}`);
      refusals.push(...sameShapeEverywhere(zones.map((z) => ({ zone: z, plan: plans.get(z)!.get(t.table)! }))).map((d) => `${o.schema}.${t.table} differs between zones before the change: ${d}`));
    }
    const foreignKeys = o.tables.flatMap((t) => first.get(t.table)!.before.foreignKeys.map((fk) => ({ table: t.table, fk })));
    const lag = await measureDrcLagMs(ctl).catch(() => ({ maxLagMs: null }));
    const maxDrcLag = o.maxDrcLagMs ?? 10_000;
    if (zones.length > 1 && lag.maxLagMs !== null && lag.maxLagMs > maxDrcLag) refusals.push(`DRC is unhealthy: lag ${lag.maxLagMs} ms > ${maxDrcLag} ms between the zones`);
    const report: FamilyReport = {
      cluster: cluster.name,
      schema: o.schema,
      zones,
      execute: !!o.execute,
      tables: o.tables.map((t) => ({
        table: t.table,
        alter: t.alter,
        rowsEstimate: first.get(t.table)!.rowsEstimate,
        foreignKeys: first.get(t.table)!.before.foreignKeys.map((fk) => `${fk.name} (${fk.columns.join(', ')}) -> ${fk.references} (${fk.refColumns.join(', ')})`),
      })),
      refusals: [...new Set(refusals)],
      ms: 0,
    };
    if (!o.execute) {
      report.ms = Date.now() - started;
      return report;
    }
    if (report.refusals.length) throw refused(`the change of ${o.schema}.{${o.tables.map((t) => t.table).join(', ')}} was refused: nothing changed`, { details: report.refusals });

    const rules: CascadeRule[] = foreignKeys
      .filter(({ fk }) => names.has(refTableOf(fk, o.schema) ?? ''))
      .map(({ table, fk }) => ({ parent: refTableOf(fk, o.schema)!, parentColumns: fk.refColumns, child: table, childColumns: fk.columns, onDelete: fk.onDelete.toUpperCase(), onUpdate: fk.onUpdate.toUpperCase() }));
    const root = o.tables[0]!;
    const label = oscTableName(o.schema, root.table);
    const makeJobs = (throttler: Throttler | undefined) =>
      zones.flatMap((z) => o.tables.map((t) => new ZoneOsc(ctx, z, topo.master(cluster.name, z), plans.get(z)!.get(t.table)!, {
        copy: copySettingsOf(o), log: ctx.log, throttler, job: job(t.table), lockWaitS,
        changeTables: o.tables.map((x) => x.table),
      })));
    // the ghosts' foreign keys, once every ghost of the zone exists
    const addGhostForeignKeys = async (_zone: string, db: Db) => {
      await db.exec('SET SESSION foreign_key_checks = 0');
      for (const { table, fk } of foreignKeys) {
        const ref = refTableOf(fk, o.schema);
        const target = ref && names.has(ref) ? quoteTable(o.schema, first.get(ref)!.names.ghost) : quoteFkTarget(fk);
        await db.exec(
          `ALTER TABLE ${quoteTable(o.schema, first.get(table)!.names.ghost)} ADD CONSTRAINT ${quoteId(ghostConstraintName(fk.name))} FOREIGN KEY (${fk.columns.map(quoteId).join(', ')}) REFERENCES ${target} (${fk.refColumns.map(quoteId).join(', ')}) ON DELETE ${ruleSql(fk.onDelete)} ON UPDATE ${ruleSql(fk.onUpdate)}`,
        );
      }
    };
    const oscOpts = {
      table: label, alter: o.tables.map((t) => `${t.table}: ${t.alter || '(rebuilt)'}`).join('; '),
      throttle: o.throttle, postponeCutOverFlagFile: o.postponeCutOverFlagFile, cutOverLockTimeoutS: o.cutOverLockTimeoutS, cutOverRetries: o.cutOverRetries, onProgress: o.onProgress,
      lockWaitTimeoutS: lockWaitS, job: oscJob,
    };
    // after the cut-over, while the job's state and control socket still say it runs (so that
    // `osc cleanup` leaves its tables alone): the old tables keep nothing that could act on
    // anything, their foreign keys go; with --drop-old-table the old tables go too
    const afterCutOver = async (throttler: Throttler) => {
      let dropped = 0;
      for (const c of ctl) {
        await c.db.exec('SET SESSION foreign_key_checks = 0');
        for (const t of o.tables) {
          // by the names they have now: InnoDB renames a generated name (child_ibfk_1) with its
          // table (child_ezdel_ibfk_1)
          const old = first.get(t.table)!.names.old;
          const names = await c.db.query<{ n: string; r: string }>(
            'SELECT CONSTRAINT_NAME AS n, REFERENCED_TABLE_NAME AS r FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?', [o.schema, old],
          );
          for (const { n, r } of names) {
            // the ALTER locks the referenced table too: a session holding either is named
            await withLockWait(c.db, { seconds: lockWaitS, schema: o.schema, tables: [...new Set([old, r])], what: `zone ${c.zone}: dropping foreign key ${n} of the old table ${o.schema}.${old}`, fix: 'then `ezctl osc cleanup --execute` drops the old tables' }, () =>
              c.db.exec(`ALTER TABLE ${quoteTable(o.schema, old)} DROP FOREIGN KEY ${quoteId(n)}`));
            dropped++;
          }
        }
      }
      report.oldForeignKeysDropped = dropped;
      if (o.dropOldTable) {
        report.oldTablesDropped = await dropOldTables(ctx, zones.map((z) => ({ zone: z, node: topo.master(cluster.name, z) })), o.schema, o.tables.map((t) => t.table), { throttler, lockWaitS });
      }
    };
    const done = await copyAndCutOver({
      ctx, cluster: cluster.name, zones, makeJobs, opts: stripUndefined(oscOpts), started, saved: (j) => saved.get(`${j.zone}\0${j.plan.table}`), rules, prepareZone: addGhostForeignKeys, afterCutOver,
    });
    report.progress = done.progress;
    report.cutOver = done.cutOver;
    report.ms = Date.now() - started;
    await endOscJob(oscJob);
    return report;
  } catch (e) {
    await endOscJob(oscJob, e);
    throw e;
  } finally {
    await Promise.all(ctl.map((c) => c.db.close().catch(() => undefined)));
  }
}

/** The referenced table's name when it is in the schema being changed. */
function refTableOf(fk: ForeignKeyShape, schema: string): string | undefined {
  const [s, t] = splitRef(fk.references);
  return s === schema ? t : undefined;
}

function quoteFkTarget(fk: ForeignKeyShape): string {
  const [s, t] = splitRef(fk.references);
  return quoteTable(s, t);
}

function splitRef(ref: string): [string, string] {
  const i = ref.indexOf('.');
  return [ref.slice(0, i), ref.slice(i + 1)];
}

/** ON DELETE / ON UPDATE actions as SQL words (only the known ones pass). */
function ruleSql(rule: string): string {
  const r = rule.toUpperCase().replace(/_/g, ' ');
  if (!['CASCADE', 'SET NULL', 'RESTRICT', 'NO ACTION', 'SET DEFAULT'].includes(r)) throw new Error(`unknown foreign key action ${rule}`);
  return r;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
