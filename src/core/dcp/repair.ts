// `ezctl repair`: make the zones agree on the rows a check found different. For each key the
// rows are read afresh in every zone (the check may be hours old and DRC may have fixed it);
// the winner is the row with the newest DRC timestamp (the first zone in topology order on a
// tie, as DRC breaks ties), a row missing somewhere is restored unless DRC's conflict log holds
// a delete of it that is newer, and --prefer-zone overrides both. Without --execute it prints
// the SQL. With --execute each fix runs in one transaction per zone, after locking the row and
// checking it is still what the plan saw, under DRC's own GTID domain so DRC does not carry it
// back; then the repaired keys are compared again.
import mysql from 'mysql2';
import { readFileSync } from 'node:fs';
import type { Ctx } from '../context.js';
import type { Db, Param, Row } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { serverInfo } from '../db/server.js';
import { badInput, refused, runtimeError, EzError, ExitCode } from '../exit.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { CONFLICTS_TABLE, DEFAULT_DRC_DOMAIN_OFFSET } from '../cluster/tables.js';
import { drcDomainFor, writeAsDrc, writeAsDrcSql } from '../cluster/session.js';
import { keyEquals, keyText, type KeyValue } from '../chunk/keys.js';
import { readShapes, type TableShape } from '../db/introspect.js';
import { checkFull, type CheckFullOptions } from './check-full.js';
import { loadDiffs } from './runs.js';
import { lostConnectionError, watchPace, watchZones } from './lost.js';
import { acquireJob, type JobHandle } from '../job/job.js';
import { progressOf } from '../job/lease.js';

export interface RepairOptions {
  cluster?: string;
  run?: string;
  reportFile?: string;
  /** a fresh check of these tables instead of a stored run */
  tables?: string;
  preferZone?: string;
  execute?: boolean;
  check?: CheckFullOptions;
  /** with --execute, the job's lease (job/lease.ts DEFAULT_LEASE_MS when not given) */
  leaseMs?: number;
}

export interface PlannedFix {
  table: string;
  key: Record<string, unknown>;
  /** where the winning version comes from, or 'delete' when the row goes */
  winner: string;
  why: string;
  /** zone → what is done there */
  actions: Record<string, 'upsert' | 'delete'>;
}

export interface RepairReport {
  cluster: string;
  runId: string | null;
  execute: boolean;
  planned: number;
  applied: number;
  verified: number;
  alreadyConsistent: number;
  skipped: { table: string; key: Record<string, unknown>; why: string }[];
  /** differences repair cannot fix, per table, and why (a table missing in a zone, no key, not compared): exit 1 */
  unfixable: { table: string; why: string }[];
  fixes: PlannedFix[];
  /** zone → the SQL (dry run) */
  sql?: Record<string, string[]>;
  remaining: { table: string; key: Record<string, unknown> }[];
}

interface Target {
  table: string;
  schema: string;
  name: string;
  keyColumns: string[];
  key: KeyValue;
  diffId?: number;
}

interface ZoneConn {
  zone: string;
  db: Db;
  domain: number | undefined;
}

export async function repair(ctx: Ctx, opts: RepairOptions): Promise<RepairReport> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(opts.cluster);
  const zones = topo.zonesOf(cluster.name);
  if (opts.preferZone && !zones.includes(opts.preferZone)) throw badInput(`--prefer-zone ${opts.preferZone} is not a zone of cluster ${cluster.name}`, { hint: `zones: ${zones.join(', ')}` });
  const sources = [opts.run, opts.reportFile, opts.tables].filter((x) => x !== undefined).length;
  if (sources > 1) throw badInput('give one of --run, --report or --tables');
  const tsColumn = topo.drcTimestampColumn(cluster.name);
  const offset = cluster.config.drc?.drcDomainOffset ?? DEFAULT_DRC_DOMAIN_OFFSET;

  // what to repair: a fresh check, a report file, or a stored run (default: the latest)
  let targets: Target[];
  let runId: string | null = null;
  // what the check found or left that no row fix can mend
  let unfixable: { table: string; why: string; keyless?: boolean }[];
  if (opts.reportFile) {
    ({ targets, unfixable } = targetsFromReport(opts.reportFile));
  } else if (opts.tables) {
    const r = await checkFull(ctx, { ...opts.check, cluster: cluster.name, tables: opts.tables });
    runId = r.runId;
    targets = r.tables.flatMap((t) => (t.keyless ? [] : t.diffs.map((d) => target(t.table, d.key))));
    unfixable = unfixableTables(r.tables);
  } else {
    const conns = await connectZones(ctx, topo, cluster.name, zones.slice(0, 1));
    try {
      const db = conns[0]!.db;
      runId = opts.run ?? (await latestRun(db, cluster.name));
      const run = await db.one<{ status: string }>(`SELECT status FROM ${quoteTable(STATE_SCHEMA, 'check_runs')} WHERE run_id = ? AND cluster = ?`, [runId, cluster.name]).catch(() => undefined);
      if (!run) throw badInput(`no check run ${runId} of cluster ${cluster.name} in _ezctl at ${conns[0]!.zone}`, { hint: 'ezctl check full lists its run id; or give --tables for a fresh check' });
      unfixable = unfixableTables(await runTables(db, runId));
      const keyless = new Set(unfixable.filter((u) => u.keyless).map((u) => u.table));
      targets = (await loadDiffs(db, runId)).filter((d) => !keyless.has(d.table)).map((d) => ({ ...target(d.table, d.key), key: d.keyValues, keyColumns: d.keyColumns, diffId: d.id }));
    } finally {
      await Promise.all(conns.map((c) => c.db.close()));
    }
  }

  const conns = await connectZones(ctx, topo, cluster.name, zones);
  let committed = 0;
  let job: JobHandle | undefined;
  let failure: unknown;
  // a master that stops answering fails the repair's statements waiting on it
  const stopWatch = watchZones(conns.map((c) => ({ label: c.db.ep.label, connect: () => ctx.connect(topo.master(cluster.name, c.zone)), conns: () => [c.db] })), watchPace(ctx.opts.connectTimeout));
  try {
    for (const c of conns) {
      const info = await serverInfo(c.db);
      c.domain = info.flavor === 'mariadb' ? (info.gtidDomainId ?? 0) : undefined;
    }
    const report: RepairReport = { cluster: cluster.name, runId, execute: !!opts.execute, planned: 0, applied: 0, verified: 0, alreadyConsistent: 0, skipped: [], unfixable: unfixable.map(({ table, why }) => ({ table, why })), fixes: [], remaining: [] };
    if (opts.execute && conns.some((c) => c.domain === undefined)) {
      throw refused('repair --execute needs MariaDB zone masters: its writes are kept from DRC by a GTID domain of their own', { hint: 'run without --execute and apply the printed SQL by hand' });
    }
    const tables = [...new Set(targets.map((t) => t.table))];
    // the tables it writes, held in every zone before their rows are read: two repairs (or a
    // repair and an osc) of one table are refused while it runs, naming the first
    if (opts.execute && tables.length) {
      job = await acquireJob(ctx, {
        cluster: cluster.name, kind: 'repair', targets: tables, zones: zones.map((z) => ({ zone: z, node: topo.master(cluster.name, z) })), phase: 'plan',
        // a repair reads every row afresh: the next one takes over a repair that died (never another kind's job)
        resume: true,
        ...(opts.leaseMs ? { leaseMs: opts.leaseMs } : {}),
      });
    }
    const zoneShapes = await Promise.all(conns.map((c) => readShapes(c.db, (s, t) => tables.includes(`${s}.${t}`))));
    const shapes = zoneShapes[0]!;
    const sql: Record<string, string[]> = Object.fromEntries(zones.map((z) => [z, []]));
    const plans: { fix: PlannedFix; t: Target; rows: (Row | undefined)[]; shape: TableShape }[] = [];
    // tables without the DRC timestamp column (in some zone): no last writer to go by
    const noTs = new Map<string, { lacking: string[]; keys: number }>();

    for (const t of targets) {
      const missingIn = zones.filter((_, i) => !zoneShapes[i]!.get(t.table));
      if (missingIn.length) {
        if (!report.unfixable.some((u) => u.table === t.table)) report.unfixable.push({ table: t.table, why: missingTableWhy(missingIn, zones.filter((z) => !missingIn.includes(z))) });
        continue;
      }
      const shape = shapes.get(t.table)!;
      const rows = await currentRows(conns, t);
      if (rowsAgree(rows, shape.columns.map((c) => c.name))) {
        report.alreadyConsistent++;
        continue;
      }
      const lacking = zones.filter((_, i) => !zoneShapes[i]!.get(t.table)!.columns.some((c) => c.name === tsColumn));
      if (lacking.length && !opts.preferZone) {
        const n = noTs.get(t.table) ?? { lacking, keys: 0 };
        n.keys++;
        noTs.set(t.table, n);
        continue;
      }
      const fix = await decide(conns, t, rows, tsColumn, opts.preferZone, shape.columns.map((c) => c.name));
      if (!fix) {
        report.skipped.push({ table: t.table, key: keyObject(t), why: 'no zone has the row and none lacks it' });
        continue;
      }
      plans.push({ fix, t, rows, shape });
      report.fixes.push(fix);
    }
    if (noTs.size) {
      throw refused(`repair will not pick a winner without the DRC timestamp column: nothing says which zone wrote last`, {
        details: [...noTs].map(([table, n]) => `${table}: no ${tsColumn} column in ${n.lacking.join(', ')}; ${n.keys} key${n.keys === 1 ? '' : 's'} differ${n.keys === 1 ? 's' : ''}`),
        hint: `name the zone whose rows win: --prefer-zone ZONE (e.g. ezctl repair --tables ${[...noTs.keys()].join(',')} --prefer-zone ${zones[0]}), or add the column first: ezctl migrate drc-ts; nothing was changed`,
      });
    }
    report.planned = plans.length;

    const writes = plans.reduce((n, p) => n + Object.keys(p.fix.actions).length, 0);
    const applyFrom = Date.now();
    job?.setPhase('apply');
    for (const p of plans) {
      const winnerRow = p.fix.winner === 'delete' ? undefined : p.rows[zones.indexOf(p.fix.winner)];
      const winnerDomain = p.fix.winner === 'delete' ? conns[0]!.domain : conns[zones.indexOf(p.fix.winner)]!.domain;
      for (const [zone, action] of Object.entries(p.fix.actions)) {
        const stmt = action === 'upsert' ? upsertSql(p.shape, winnerRow!) : deleteSql(p.t);
        const c = conns[zones.indexOf(zone)]!;
        // written as DRC's apply of the winner's write: DRC carries it nowhere
        const domain = drcDomainFor(winnerDomain, offset);
        if (!opts.execute) {
          sql[zone]!.push(`-- ${p.t.table} ${JSON.stringify(keyObject(p.t))}: ${p.fix.why}`);
          sql[zone]!.push(...(domain === undefined ? [] : [writeAsDrcSql(domain) + ';']), 'START TRANSACTION;', mysql.format(stmt.sql, stmt.params as Parameters<typeof mysql.format>[1]) + ';', 'COMMIT;');
          continue;
        }
        const before = p.rows[zones.indexOf(zone)];
        job?.assertHeld();
        const ok = await applyFix(c, domain, p.t, before, stmt);
        if (ok) {
          report.applied++;
          committed++;
        }
        else report.skipped.push({ table: p.t.table, key: keyObject(p.t), why: `the row changed at ${zone} since it was read; left for the next check` });
        job?.progress({ ...progressOf(report.applied + report.skipped.length, writes, Date.now() - applyFrom), applied: report.applied });
      }
    }
    if (!opts.execute) {
      report.sql = sql;
      return report;
    }

    // compare the repaired keys again in every zone
    job?.setPhase('verify');
    for (const p of plans) {
      const rows = await currentRows(conns, p.t);
      if (rowsAgree(rows, p.shape.columns.map((c) => c.name))) {
        report.verified++;
        if (p.t.diffId !== undefined) {
          await conns[0]!.db.exec(`UPDATE ${quoteTable(STATE_SCHEMA, 'check_diffs')} SET repaired_at = NOW(3) WHERE id = ?`, [p.t.diffId]).catch(() => undefined);
        }
      } else {
        report.remaining.push({ table: p.t.table, key: keyObject(p.t) });
      }
    }
    return report;
  } catch (e) {
    failure = e;
    throw lostConnectionError(e, conns, opts.execute ? 'repair --execute' : 'repair', () =>
      opts.execute
        ? `${committed} fix${committed === 1 ? '' : 'es'} committed before it (each key in its own transaction); run the repair again: what is already fixed is found consistent and left alone`
        : 'nothing was changed; run it again',
    ) ?? e;
  } finally {
    // done; refused while still planning (nothing written): no trace; anything else: failed (or aborted: Ctrl-C)
    if (job) {
      if (failure === undefined) await job.finish('done');
      else if (job.phase === 'plan') await job.release();
      else await job.fail(failure, failure instanceof EzError && failure.exitCode === ExitCode.interrupted ? 'aborted' : 'failed');
    }
    stopWatch();
    await Promise.all(conns.map((c) => c.db.close().catch(() => undefined)));
  }
}

function target(table: string, key: Record<string, unknown>): Target {
  const i = table.indexOf('.');
  return { table, schema: table.slice(0, i), name: table.slice(i + 1), keyColumns: Object.keys(key), key: Object.values(key) as KeyValue };
}

function keyObject(t: Target): Record<string, unknown> {
  return Object.fromEntries(t.keyColumns.map((c, i) => [c, t.key[i]]));
}

/** What a check left that repair cannot mend, as the check's table reports (or its stored rows) say. */
interface TableOutcome {
  table: string;
  status?: string;
  reason?: string | undefined;
  keyless?: boolean | undefined;
  missingIn?: string[] | undefined;
  presentIn?: string[] | undefined;
  missing?: number;
  changed?: number;
  diffs?: { key: Record<string, unknown> }[];
}

function missingTableWhy(missingIn: string[], presentIn: string[]): string {
  return `table missing in ${missingIn.join(', ')} (exists in ${presentIn.join(', ')}): repair mends rows, not tables; create it in ${missingIn.join(', ')} from ${presentIn[0] ?? 'another zone'}'s definition (SHOW CREATE TABLE), then check again`;
}

export function unfixableTables(tables: TableOutcome[]): { table: string; why: string; keyless?: boolean }[] {
  const out: { table: string; why: string; keyless?: boolean }[] = [];
  for (const t of tables) {
    const differing = (t.missing ?? 0) + (t.changed ?? 0) || (t.diffs?.length ?? 0);
    if (t.missingIn?.length) out.push({ table: t.table, why: missingTableWhy(t.missingIn, t.presentIn ?? []) });
    else if (t.status === 'skipped') out.push({ table: t.table, why: `not compared by the check (${t.reason ?? 'skipped'}): what differs there is unknown` });
    else if (t.keyless && differing) {
      out.push({ table: t.table, keyless: true, why: `${differing} row${differing === 1 ? ' differs' : 's differ'}, but the table has no primary or unique NOT NULL key: one copy of a row cannot be told from another; add a key, check again and repair, or fix it by hand` });
    }
  }
  return out;
}

/** The tables of a stored run, with what the check recorded of each. */
async function runTables(db: Db, runId: string): Promise<TableOutcome[]> {
  const rows = await db.query<{ db: string; tbl: string; status: string; reason: string | null; detail: string | null; missing: number | string; changed: number | string }>(
    `SELECT db, tbl, status, reason, detail, missing, changed FROM ${quoteTable(STATE_SCHEMA, 'check_tables')} WHERE run_id = ?`,
    [runId],
  );
  return rows.map((r) => {
    const detail = r.detail ? (JSON.parse(r.detail) as { keyless?: boolean; missingIn?: string[]; presentIn?: string[] }) : {};
    return { table: `${r.db}.${r.tbl}`, status: r.status, reason: r.reason ?? undefined, keyless: detail.keyless, missingIn: detail.missingIn, presentIn: detail.presentIn, missing: Number(r.missing), changed: Number(r.changed) };
  });
}

function targetsFromReport(file: string): { targets: Target[]; unfixable: { table: string; why: string }[] } {
  let rep: { tables?: TableOutcome[] };
  try {
    rep = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw badInput(`--report ${file}: ${(e as Error).message}`, { hint: 'give a file written by `ezctl check full --report FILE` (or its --json output)' });
  }
  if (!Array.isArray(rep.tables)) throw badInput(`--report ${file} is not a check report (no "tables" list)`);
  return { targets: rep.tables.filter((t) => !t.keyless).flatMap((t) => (t.diffs ?? []).map((d) => target(t.table, d.key))), unfixable: unfixableTables(rep.tables) };
}

async function latestRun(db: Db, cluster: string): Promise<string> {
  const r = await db
    .one<{ run_id: string }>(`SELECT run_id FROM ${quoteTable(STATE_SCHEMA, 'check_runs')} WHERE cluster = ? ORDER BY started_at DESC, run_id DESC LIMIT 1`, [cluster])
    .catch(() => undefined);
  if (!r) throw badInput(`cluster ${cluster} has no check run to repair from`, { hint: 'run `ezctl check full` first, or give --tables for a fresh check' });
  return r.run_id;
}

async function connectZones(ctx: Ctx, topo: Awaited<ReturnType<Ctx['topology']>>, cluster: string, zones: string[]): Promise<ZoneConn[]> {
  const out: ZoneConn[] = [];
  try {
    for (const z of zones) out.push({ zone: z, db: await ctx.connect(topo.master(cluster, z)), domain: undefined });
  } catch (e) {
    await Promise.all(out.map((c) => c.db.close()));
    throw e;
  }
  return out;
}

async function currentRows(conns: ZoneConn[], t: Target, lock = false): Promise<(Row | undefined)[]> {
  const k = keyEquals(t.keyColumns, t.key);
  return Promise.all(conns.map((c) => c.db.one(`SELECT * FROM ${quoteTable(t.schema, t.name)} WHERE ${k.sql}${lock ? ' FOR UPDATE' : ''}`, k.params)));
}

/** A row as comparable text, over the reference zone's columns (a zone with an extra column still agrees). */
function rowText(r: Row | undefined, columns?: string[]): string {
  if (!r) return 'absent';
  const cols = columns ?? Object.keys(r);
  return JSON.stringify(cols.map((k) => {
    const v = r[k];
    return [k, Buffer.isBuffer(v) ? v.toString('hex') : v === null || v === undefined ? null : String(v)];
  }));
}

function rowsAgree(rows: (Row | undefined)[], columns?: string[]): boolean {
  const first = rowText(rows[0], columns);
  return rows.every((r) => rowText(r, columns) === first);
}

async function decide(conns: ZoneConn[], t: Target, rows: (Row | undefined)[], tsColumn: string, prefer: string | undefined, columns: string[]): Promise<PlannedFix | undefined> {
  const zones = conns.map((c) => c.zone);
  const present = zones.filter((_, i) => rows[i]);
  const absent = zones.filter((_, i) => !rows[i]);
  const actions: Record<string, 'upsert' | 'delete'> = {};
  const fix = (winner: string, why: string): PlannedFix => {
    const winnerText = winner === 'delete' ? 'absent' : rowText(rows[zones.indexOf(winner)], columns);
    zones.forEach((z, i) => {
      if (rowText(rows[i], columns) === winnerText) return;
      actions[z] = winner === 'delete' ? 'delete' : 'upsert';
    });
    return { table: t.table, key: keyObject(t), winner, why, actions };
  };
  if (prefer) {
    const i = zones.indexOf(prefer);
    return rows[i] ? fix(prefer, `--prefer-zone ${prefer}`) : fix('delete', `--prefer-zone ${prefer}, which has no such row`);
  }
  if (present.length === 0) return undefined;
  // newest DRC timestamp wins; text compare works for the fixed 'YYYY-MM-DD hh:mm:ss.fff' form
  const ts = (z: string) => String(rows[zones.indexOf(z)]?.[tsColumn] ?? '');
  const winner = present.reduce((a, b) => (ts(b) > ts(a) ? b : a));
  if (absent.length) {
    const deleted = await newerDelete(conns, t, ts(winner));
    if (deleted) return fix('delete', `DRC's conflict log has a delete at ${deleted.zone} (${deleted.at}) newer than the row (${ts(winner)})`);
    return fix(winner, `restored from ${winner} (missing in ${absent.join(', ')})`);
  }
  return fix(winner, `${winner} has the newest ${tsColumn} (${ts(winner)})`);
}

/** A delete of this row that DRC logged as a conflict after the row's last write. */
async function newerDelete(conns: ZoneConn[], t: Target, rowTs: string): Promise<{ zone: string; at: string } | undefined> {
  const want = keyText(t.key);
  for (const c of conns) {
    const rows = await c.db
      .query<{ row_key: string; at: string }>(
        `SELECT row_key, CAST(detected_at AS CHAR) AS at FROM ${quoteTable(STATE_SCHEMA, CONFLICTS_TABLE)} WHERE db = ? AND tbl = ? AND kind IN ('delete-changed', 'update-missing') AND detected_at > ? ORDER BY detected_at DESC LIMIT 1000`,
        [t.schema, t.name, rowTs || '1970-01-01'],
      )
      .catch(() => []);
    for (const r of rows) {
      const k = JSON.parse(r.row_key) as Record<string, unknown>;
      const values = t.keyColumns.map((col) => k[col]);
      if (keyText(values as KeyValue) === want) return { zone: c.zone, at: r.at };
    }
  }
  return undefined;
}

function writableColumns(shape: TableShape): string[] {
  return shape.columns.filter((c) => !c.generated).map((c) => c.name);
}

function upsertSql(shape: TableShape, row: Row): { sql: string; params: Param[] } {
  const cols = writableColumns(shape);
  const updates = cols.filter((c) => !shape.primaryKey.includes(c)).map((c) => `${quoteId(c)} = VALUES(${quoteId(c)})`);
  return {
    sql: `INSERT INTO ${quoteTable(shape.schema, shape.table)} (${cols.map(quoteId).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})` + (updates.length ? ` ON DUPLICATE KEY UPDATE ${updates.join(', ')}` : ` ON DUPLICATE KEY UPDATE ${quoteId(cols[0]!)} = ${quoteId(cols[0]!)}`),
    params: cols.map((c) => row[c] as Param),
  };
}

function deleteSql(t: Target): { sql: string; params: Param[] } {
  const k = keyEquals(t.keyColumns, t.key);
  return { sql: `DELETE FROM ${quoteTable(t.schema, t.name)} WHERE ${k.sql}`, params: k.params };
}

/** One fix at one zone: lock the row, make sure it is what the plan saw, write, commit. */
async function applyFix(c: ZoneConn, domain: number | undefined, t: Target, planned: Row | undefined, stmt: { sql: string; params: Param[] }): Promise<boolean> {
  const db = c.db;
  await db.exec("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'");
  await writeAsDrc(db, domain);
  await db.exec('START TRANSACTION');
  try {
    const [now] = await currentRows([c], t, true);
    if (rowText(now) !== rowText(planned)) {
      await db.exec('ROLLBACK');
      return false;
    }
    await db.exec(stmt.sql, stmt.params);
    await db.exec('COMMIT');
    return true;
  } catch (e) {
    await db.exec('ROLLBACK').catch(() => undefined);
    throw runtimeError(`repair at ${c.zone} of ${t.table} ${JSON.stringify(keyObject(t))} failed: ${(e as Error).message}`, { cause: e });
  }
}

/** 0: everything fixed and verified (or, without --execute, every difference has a planned fix); 1: differences remain. */
export function repairExitCode(r: RepairReport): ExitCode {
  if (r.unfixable.length) return ExitCode.differences;
  if (!r.execute) return ExitCode.ok;
  return r.verified === r.planned && r.remaining.length === 0 ? ExitCode.ok : ExitCode.differences;
}

export function renderRepair(r: RepairReport): string {
  const out: string[] = [];
  if (!r.execute) {
    for (const [zone, lines] of Object.entries(r.sql ?? {})) {
      if (!lines.length) continue;
      out.push(`-- zone ${zone}`, ...lines, '');
    }
    out.push(`-- ${r.planned} key${r.planned === 1 ? "" : "s"} to repair${r.alreadyConsistent ? `, ${r.alreadyConsistent} already consistent` : ''}${r.skipped.length ? `, ${r.skipped.length} skipped` : ''}${r.planned ? '; run again with --execute to apply' : ''}`);
    for (const s of r.skipped) out.push(`-- skipped ${s.table} ${JSON.stringify(s.key)}: ${s.why}`);
    for (const u of r.unfixable) out.push(`-- cannot repair ${u.table}: ${u.why}`);
    if (r.unfixable.length) out.push(`-- ${r.unfixable.length} table${r.unfixable.length === 1 ? '' : 's'} with differences repair cannot fix (above): the zones will still differ`);
    return out.join('\n');
  }
  for (const f of r.fixes) out.push(`${f.table} ${JSON.stringify(f.key)}: ${Object.entries(f.actions).map(([z, a]) => `${a} at ${z}`).join(', ')} (${f.why})`);
  for (const s of r.skipped) out.push(`skipped ${s.table} ${JSON.stringify(s.key)}: ${s.why}`);
  for (const m of r.remaining) out.push(`still different: ${m.table} ${JSON.stringify(m.key)}`);
  for (const u of r.unfixable) out.push(`cannot repair ${u.table}: ${u.why}`);
  out.push(`repaired ${r.verified} of ${r.planned} keys (verified in every zone)${r.alreadyConsistent ? `; ${r.alreadyConsistent} were already consistent` : ''}${r.unfixable.length ? `; ${r.unfixable.length} table${r.unfixable.length === 1 ? '' : 's'} left different (cannot repair)` : ''}${r.runId ? `; run ${r.runId}` : ''}`);
  return out.join('\n');
}
