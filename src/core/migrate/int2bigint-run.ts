// `ezctl migrate int2bigint --execute`: the planned families, most urgent first, each through the
// online schema change engine in every zone. A table alone (no foreign key on or to it) goes
// through `osc` (in place where the server can do it instantly, a ghost copy otherwise); a family
// linked by foreign keys is changed together (osc/family.ts), so no constraint ever points at the
// wrong table and no row is lost. Families never share a table (int2bigint.ts plans those as one).
// Every family's plan is checked first, so a refusal (a helper table an earlier change left, a
// table that differs between zones) refuses the run with nothing changed. Then one family at a
// time: a failure stops there, the families done stay done, the failed one's originals stay as
// they were, and the error says which families are done and which are not (exit 3).
import type { Ctx } from '../context.js';
import { EzError, ExitCode, refused, runtimeError } from '../exit.js';
import { onInterrupt } from '../signals.js';
import { runOsc, runOscFamily, type FamilyReport, type OscOptions, type OscReport } from '../osc/index.js';
import { copySettingsOf, type CopySettings } from '../copy/settings.js';
import { oscHelperNames } from '../cluster/helper-tables.js';
import { tableArgument } from '../db/quote.js';
import { int2bigintReport, type Family, type Int2BigintOptions, type Int2BigintReport } from './int2bigint.js';

/** The copy's knobs are osc's (see OscOptions). */
export interface Int2BigintRunOptions
  extends Int2BigintOptions, CopySettings, Pick<OscOptions, 'throttle' | 'dropOldTable' | 'includeTriggers' | 'lockWaitTimeoutS' | 'leaseMs'> {
  /** continue the family whose process died (its ghosts are there); the others run as usual */
  resume?: boolean;
  onProgress?: (line: string) => void;
}

export interface Int2BigintRun {
  report: Int2BigintReport;
  executed: Array<{ root: string; tables: string[]; method: 'instant' | 'copy'; ms: number; cutOverSkewMs?: number; cutOverAttempts?: number; oldTablesDropped?: boolean }>;
}

export async function runInt2Bigint(ctx: Ctx, o: Int2BigintRunOptions): Promise<Int2BigintRun> {
  const report = await int2bigintReport(ctx, o);
  const executed: Int2BigintRun['executed'] = [];
  const spanning = report.families.filter((f) => new Set(f.tables.map((t) => t.schema)).size > 1);
  if (spanning.length) {
    throw refused('int2bigint refused: nothing changed', {
      details: spanning.map((f) => `${f.root.schema}.${f.root.table}.${f.root.column}: its family spans schemas (${[...new Set(f.tables.map((t) => t.schema))].join(', ')}); change those tables by hand or narrow --tables`),
    });
  }
  const rootOf = (f: Family) => `${f.root.schema}.${f.root.table}.${f.root.column}`;
  const describe = (f: Family) => `${rootOf(f)} (${f.tables.map((t) => `${t.schema}.${t.table}`).join(', ')})`;
  // what the plan depends on too: with --include-triggers a table's triggers are carried over, not refused
  const commonOf = () => ({
    ...(o.cluster ? { cluster: o.cluster } : {}),
    ...(o.zones ? { zones: o.zones } : {}),
    ...(o.includeTriggers ? { includeTriggers: true } : {}),
    ...(o.lockWaitTimeoutS !== undefined ? { lockWaitTimeoutS: o.lockWaitTimeoutS } : {}),
  });
  // every family's plan first: a refusal of any of them refuses the run before anything changes
  const refusals: string[] = [];
  for (const f of report.families) {
    const resume = !!o.resume && (await ghostsThere(ctx, o.cluster, f));
    const plan = alone(f)
      ? await runOsc(ctx, { ...commonOf(), table: tableArgument(f.tables[0]!.schema, f.tables[0]!.table), alter: f.tables[0]!.alter, ...(resume ? { resume: true } : {}) })
      : await runOscFamily(ctx, { ...commonOf(), schema: f.tables[0]!.schema, tables: f.tables.map((t) => ({ table: t.table, alter: t.alter })), ...(resume ? { resume: true } : {}) });
    for (const r of plan.refusals) refusals.push(`${rootOf(f)}: ${r}`);
  }
  if (refusals.length) throw refused(`int2bigint refused: nothing changed (${report.families.length} ${report.families.length === 1 ? 'family' : 'families'} planned, none started)`, { details: refusals });

  const offInt = onInterrupt(() => {
    if (report.families.length > 1) process.stderr.write(`ezctl: int2bigint interrupted: ${progressText()}\n`);
  });
  let current = -1;
  const progressText = () => {
    const done = report.families.slice(0, Math.max(current, 0)).map(describe);
    const notStarted = report.families.slice(current + 1).map(describe);
    return [
      `done: ${done.length ? done.join('; ') : 'none'}`,
      `stopped in: ${current >= 0 ? describe(report.families[current]!) : 'none'} (its originals are as they were unless its cut-over had begun)`,
      `not started: ${notStarted.length ? notStarted.join('; ') : 'none'}`,
    ].join('; ');
  };
  try {
    for (current = 0; current < report.families.length; current++) await runFamily(report.families[current]!);
  } catch (e) {
    // a run of one family reports as that family's change does; of several, it says where it stopped
    if (report.families.length === 1 || (e instanceof EzError && e.exitCode === ExitCode.interrupted)) throw e;
    const first = current === 0 && e instanceof EzError && (e.exitCode === ExitCode.refused || e.exitCode === ExitCode.badInput);
    const what = e instanceof EzError ? e.message : (e as Error).message;
    const details = [
      `done: ${executed.length ? executed.map((x) => `${x.root} (${x.tables.join(', ')})`).join('; ') : 'none'}`,
      `failed: ${describe(report.families[current]!)}: ${what}`,
      ...(e instanceof EzError ? e.details.map((d) => `  ${d}`) : []),
      `not started: ${report.families.slice(current + 1).map(describe).join('; ') || 'none'}`,
    ];
    if (first) throw new EzError(ExitCode.refused, `int2bigint stopped at its first family: nothing changed`, { details, ...((e as EzError).hint ? { hint: (e as EzError).hint! } : {}) });
    throw runtimeError(`int2bigint stopped part-way: ${executed.length} of ${report.families.length} families done, ${report.families.length - executed.length} not`, {
      details,
      hint: `${e instanceof EzError && e.hint ? `${e.hint}; ` : ''}the families done keep their new types; run the same command again to plan what is left`,
      cause: e,
    });
  } finally {
    offInt();
  }
  return { report, executed };

  async function runFamily(f: Family): Promise<void> {
    const root = rootOf(f);
    const common = {
      ...commonOf(),
      ...copySettingsOf(o),
      ...(o.throttle ? { throttle: o.throttle } : {}),
      ...(o.dropOldTable ? { dropOldTable: true } : {}),
      jobKind: 'migrate-int2bigint' as const,
      ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}),
      execute: true,
    };
    const progress = (zs: Array<{ zone: string; phase: string; rowsCopied: number; backlog: number }>) =>
      o.onProgress?.(`int2bigint ${root}: ${zs.map((z) => `${z.zone} ${z.phase} ${z.rowsCopied} rows, backlog ${z.backlog}`).join('; ')}`);
    const resume = !!o.resume && (await ghostsThere(ctx, o.cluster, f));
    ctx.log.info(`int2bigint: ${root} (${(f.used * 100).toFixed(2)}% used): ${f.tables.map((t) => `${t.schema}.${t.table}`).join(', ')}${resume ? ' (resumed)' : ''}`);
    if (alone(f)) {
      const t = f.tables[0]!;
      const r: OscReport = await runOsc(ctx, { ...common, table: tableArgument(t.schema, t.table), alter: t.alter, onProgress: progress, ...(resume ? { resume: true } : {}) });
      executed.push({ root, tables: [`${t.schema}.${t.table}`], method: r.method, ms: r.ms, ...(r.cutOver ? { cutOverSkewMs: r.cutOver.skewMs, cutOverAttempts: r.cutOver.attempts } : {}), ...(r.oldTableDropped ? { oldTablesDropped: true } : {}) });
    } else {
      const schema = f.tables[0]!.schema;
      const r: FamilyReport = await runOscFamily(ctx, { ...common, schema, tables: f.tables.map((t) => ({ table: t.table, alter: t.alter })), onProgress: progress, ...(resume ? { resume: true } : {}) });
      executed.push({ root, tables: f.tables.map((t) => `${t.schema}.${t.table}`), method: 'copy', ms: r.ms, ...(r.cutOver ? { cutOverSkewMs: r.cutOver.skewMs, cutOverAttempts: r.cutOver.attempts } : {}), ...(r.oldTablesDropped ? { oldTablesDropped: true } : {}) });
    }
  }
}

/** Whether a change of this family died half-way: a ghost of one of its tables is there (first zone's master). */
async function ghostsThere(ctx: Ctx, cluster: string | undefined, f: Family): Promise<boolean> {
  const topo = await ctx.topology();
  const c = topo.cluster(cluster);
  const db = await ctx.connect(topo.master(c.name, topo.zonesOf(c.name)[0]!));
  try {
    for (const t of f.tables) {
      const n = await db.value('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [t.schema, oscHelperNames(t.table).ghost]);
      if (Number(n) > 0) return true;
    }
    return false;
  } finally {
    await db.close();
  }
}

/** One table with no foreign key on it or to it: an ordinary online schema change. */
function alone(f: Family): boolean {
  return f.tables.length === 1 && f.foreignKeys.length === 0;
}
