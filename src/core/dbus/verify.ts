// `ezctl dbus verify NAME`: are the move's target tables what their sources say, row for row? Each
// mapping (plan.ts tableMappings: a source table -> a target table, column by column, by one key)
// is compared with check's machinery (dcp compareTablePair: chunk checksums over the same key
// ranges on both servers, a differing chunk narrowed to rows), the source's table as the source
// names it (its `where` filter applied there), the target's as the target names it. Under live
// writes a differing row is looked at again once the move's apply has caught up with the source's
// position of that moment (waitApplied), as `check` re-checks after DRC's lag; with settleMs 0
// (the writes are held: a cut-over, a rollback) a difference is real at once. Nothing is written.
import type { Ctx } from '../context.js';
import type { Db, Param } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { readShapes, type TableShape } from '../db/introspect.js';
import { badInput, EzError, ExitCode } from '../exit.js';
import { compareTablePair, pairHash, type RowDiff } from '../dcp/index.js';
import type { DbusMove, DbusTable } from './spec.js';
import { offsetRanges, openMove, tableMappings, type DbusMapping, type MoveShapes } from './plan.js';
import { dbusStatus, waitApplied } from './status.js';
import { listConflicts } from './conflicts.js';
import type { DbusStatus } from './spec.js';

export interface DbusVerifyOptions {
  /** only these tables: a target table "db.t", or a source table "db.t" / "label:db.t" */
  tables?: string[];
  /** the delay before a differing row is looked at again (after the apply caught up); 0: the writes are held, a difference is real at once (no re-check). Default 500 ms */
  settleMs?: number;
  signal?: AbortSignal;
  /** re-checks of a difference before it is reported (default 5; none with settleMs 0) */
  rechecks?: number;
  /** the bound of each wait for the apply to catch up before a re-check (default 10 s) */
  catchUpMs?: number;
  /** the move was read from this --spec YAML (its job's status is found through it) */
  spec?: string;
}

export type DifferenceKind = 'missing-at-target' | 'only-at-target' | 'changed' | 'not-compared';

export interface DbusDifference {
  /** the target table, "db.t" */
  table: string;
  /** the source table the rows come from, "label:db.t" */
  source: string;
  /** the row's key values, in the order of keyColumns ([] for a table not compared) */
  key: unknown[];
  /** the key's columns as the target names them */
  keyColumns: string[];
  why: string;
  kind: DifferenceKind;
  /** the columns that differ, as the target names them (a changed row) */
  columns?: string[];
  /** their values on each side (a changed row) */
  values?: { source: Record<string, unknown>; target: Record<string, unknown> };
  /** still changing when the re-checks ran out (a row written all the time) */
  unstable?: boolean;
  /** a merged shard: which target rows were compared with it */
  shard?: string;
  /** the row met another shard's row on a UNIQUE key of the target and was recorded, not written (`_ezctl.dbus_conflicts`) */
  conflict?: { uniqueKey: string[]; existingSource: string | null; at: string };
}

export interface DbusVerifyTable {
  table: string;
  source: string;
  compared: boolean;
  /** why not compared */
  reason?: string;
  /** rows walked (the most either side had per chunk, summed) */
  rows: number;
  chunks: number;
  differences: number;
  /** rows that differed when first seen and were looked at again (under live writes: most converge once the apply caught up) */
  rechecked: number;
  ms: number;
}

export interface DbusVerifyReport {
  move: string;
  /** every difference (up to 1000 listed per table; differencesTotal counts them all); empty: the target is what the sources say */
  differences: DbusDifference[];
  differencesTotal: number;
  tables: DbusVerifyTable[];
  rows: number;
  settleMs: number;
  /** a job of the move was applying the sources' changes (re-checks waited for it) */
  live: boolean;
  ms: number;
}

const DEFAULT_SETTLE_MS = 500;
const DEFAULT_CATCH_UP_MS = 10_000;
const MAX_DIFFS = 1000;

const nameOf = (t: { schema: string; table: string }) => `${t.schema}.${t.table}`;

/** One source table against its target table: what each side compares, in its own names. */
export interface VerifyPair {
  /** the target table, "db.t" */
  table: string;
  /** "label:db.t" */
  source: string;
  label: string;
  mapping: DbusMapping;
  source_: { schema: string; table: string; columns: string[]; key: string[]; where?: string };
  target: { schema: string; table: string; columns: string[]; key: string[]; where?: string; whereParams?: Param[]; whereNarrowsKey?: boolean; keyShift?: bigint };
  /** a shard of a merge: the target rows compared with it are the ones its rule places there (described) */
  shard?: string;
}

/** Target rows of a merge that no shard's rule places (a shard value of no shard): each is reported. */
export interface UnownedQuery {
  table: string;
  schema: string;
  name: string;
  key: string[];
  where: string;
  params: Param[];
  why: string;
}

/**
 * The pairs a verify compares (pure): each mapping's source and target sides, restricted to
 * `wanted` (target or source names). A merged shard is compared with the target rows its rule
 * places: a shard-column rule's rows carrying the shard's value (the shard column left out of
 * both sides), an offset rule's key range (plan.ts offsetRanges: from its offset up to the next
 * shard's), its keys shifted back by the offset. Errors are bad input.
 */
export function verifyPairs(move: DbusMove, mappings: readonly DbusMapping[], wanted?: readonly string[]): { pairs: VerifyPair[]; problems: string[]; unowned: UnownedQuery[] } {
  const problems: string[] = [];
  const unowned: UnownedQuery[] = [];
  const entryOf = (m: DbusMapping): DbusTable | undefined => move.tables.find((t) => nameOf(t.target) === nameOf(m.target) && t.sources.some((s) => s.source === m.label && nameOf(s.table) === nameOf(m.source)));
  const names = (m: DbusMapping) => [nameOf(m.target), nameOf(m.source), `${m.label}:${nameOf(m.source)}`];
  if (wanted) {
    const known = new Set(mappings.flatMap(names));
    const unknown = wanted.filter((w) => !known.has(w));
    if (unknown.length) problems.push(`--tables: ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not moved by ${move.name} (its tables: ${[...new Set(mappings.map((m) => nameOf(m.target)))].join(', ')})`);
  }
  const pairs: VerifyPair[] = [];
  for (const m of mappings) {
    if (wanted && !names(m).some((n) => wanted.includes(n))) continue;
    const entry = entryOf(m);
    const to = (c: string) => m.columns.find((x) => x.from === c)?.to ?? c;
    const src: VerifyPair['source_'] = { schema: m.source.schema, table: m.source.table, columns: m.columns.map((c) => c.from), key: [...m.key] };
    if (entry?.where !== undefined) src.where = entry.where;
    const pair: VerifyPair = {
      table: nameOf(m.target),
      source: `${m.label}:${nameOf(m.source)}`,
      label: m.label,
      mapping: m,
      source_: src,
      target: { schema: m.target.schema, table: m.target.table, columns: m.columns.map((c) => c.to), key: m.key.map(to) },
    };
    const merged = entry && (entry.sources.length > 1 || entry.merge);
    if (merged) {
      const at = `${nameOf(m.target)}${entry.declaredAt ? ` (${entry.declaredAt})` : ''}`;
      const rule = entry.merge;
      const same = mappings.filter((x) => nameOf(x.target) === nameOf(m.target));
      if (!rule) {
        if (same.length > 1) {
          problems.push(`${at}: a merge of ${entry.sources.length} source tables without a merge rule: which target rows came from which shard cannot be told (declare merge: shard-column or offset)`);
          continue;
        }
      } else if (rule.kind === 'shard-column') {
        const v = m.constants?.[rule.column];
        if (v === undefined) {
          problems.push(`${at}: ${pair.source} carries its own ${rule.column}: dbus verify compares a shard with the target rows of its merge.values entry; give it one (merge.values: { "${pair.source}": ... })`);
          continue;
        }
        const keep = (c: string) => c !== rule.column;
        const fromCols = m.columns.filter((c) => keep(c.to));
        src.columns = fromCols.map((c) => c.from);
        src.key = m.key.filter((k) => keep(to(k)));
        pair.target.columns = fromCols.map((c) => c.to);
        pair.target.key = src.key.map(to);
        if (!src.key.length) {
          problems.push(`${at}: the target key is the shard column ${rule.column} alone: a shard's rows cannot be told apart`);
          continue;
        }
        pair.target.where = `${quoteId(rule.column)} = ?`;
        pair.target.whereParams = [v];
        pair.target.whereNarrowsKey = true;
        pair.shard = `${rule.column} = ${JSON.stringify(v)}`;
        if (m === same[0]) {
          const values = same.map((x) => x.constants?.[rule.column]).filter((x): x is string | number => x !== undefined);
          unowned.push({
            table: nameOf(m.target), schema: m.target.schema, name: m.target.table, key: m.key.map(to),
            where: `${quoteId(rule.column)} IS NULL OR ${quoteId(rule.column)} NOT IN (${values.map(() => '?').join(', ')})`,
            params: values,
            why: `at the target only: its ${rule.column} names no shard of the merge (${values.map((x) => JSON.stringify(x)).join(', ')})`,
          });
        }
      } else {
        const keyCol = to(m.key[0] ?? '');
        if (m.key.length !== 1 || keyCol !== rule.column) {
          problems.push(`${at}: dbus verify compares an offset merge by a one-column integer key, the offset's column (${rule.column}); the target key is (${m.key.map(to).join(', ')})`);
          continue;
        }
        const r = m.ownedKeys ?? offsetRanges(same, rule.column).get(m) ?? { from: null, below: null };
        const parts: string[] = [];
        const params: Param[] = [];
        if (r.from !== null) (parts.push(`${quoteId(keyCol)} >= ?`), params.push(r.from));
        if (r.below !== null) (parts.push(`${quoteId(keyCol)} < ?`), params.push(r.below));
        if (parts.length) {
          pair.target.where = parts.join(' AND ');
          pair.target.whereParams = params;
          pair.target.whereNarrowsKey = true;
        }
        const off = BigInt(m.offsets?.[rule.column] ?? 0);
        if (off) pair.target.keyShift = off;
        pair.shard = `${keyCol} ${r.from === null ? '' : `>= ${r.from}`}${r.from !== null && r.below !== null ? ' and ' : ''}${r.below === null ? '' : `< ${r.below}`}${r.from === null && r.below === null ? 'any' : ''} (offset ${off})`;
      }
    }
    pairs.push(pair);
  }
  return { pairs, problems, unowned };
}

const show = (v: unknown): string => {
  if (v === null || v === undefined) return 'NULL';
  if (Buffer.isBuffer(v)) return `0x${v.toString('hex').slice(0, 32)}${v.length > 16 ? '…' : ''}`;
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
};

/** A compare's row difference as the move names it (pure): its key in order, the target's column names, why. */
export function differenceOf(p: VerifyPair, d: RowDiff, labels: { source: string; target: string }): DbusDifference {
  const to = (c: string) => p.mapping.columns.find((x) => x.from === c)?.to ?? c;
  const key = p.source_.key.map((k) => d.key[k]);
  const base = { table: p.table, source: p.source, key, keyColumns: p.target.key, ...(p.shard ? { shard: p.shard } : {}) };
  const unstable = d.unstable ? { unstable: true } : {};
  const tail = d.unstable ? ' (still changing when the re-checks ran out)' : '';
  if (d.kind === 'missing') {
    const atTarget = d.zones[labels.target]?.present;
    return atTarget
      ? { ...base, kind: 'only-at-target', why: `at the target only: not at the source ${p.source}${tail}`, ...unstable }
      : { ...base, kind: 'missing-at-target', why: `missing at the target (the source ${p.source} has it)${tail}`, ...unstable };
  }
  const sv = d.zones[labels.source]?.values ?? {};
  const tv = d.zones[labels.target]?.values ?? {};
  const columns = d.columns.map(to);
  const values = { source: Object.fromEntries(d.columns.map((c) => [to(c), sv[c]])), target: Object.fromEntries(d.columns.map((c) => [to(c), tv[c]])) };
  const what = d.columns.length ? d.columns.map((c) => `${to(c)} (source ${show(sv[c])}, target ${show(tv[c])})`).join(', ') : 'its row hash';
  return { ...base, kind: 'changed', why: `differs in ${what}${tail}`, columns, values, ...unstable };
}

function notCompared(p: VerifyPair, reason: string): DbusDifference {
  return { table: p.table, source: p.source, key: [], keyColumns: p.target.key, kind: 'not-compared', why: `not compared: ${reason}` };
}

/**
 * Compare the move's sources and target (contract with cut-over: `differences` empty means the
 * target holds what the sources say). Exit 2 on a bad --tables or a move whose mappings cannot be
 * built, 3 when a server cannot be reached, 130 when the signal stops it.
 */
export async function dbusVerify(ctx: Ctx, move: DbusMove, o: DbusVerifyOptions = {}): Promise<DbusVerifyReport> {
  const started = Date.now();
  const settleMs = o.settleMs ?? DEFAULT_SETTLE_MS;
  if (!Number.isFinite(settleMs) || settleMs < 0) throw badInput(`settleMs must be 0 or more (got ${o.settleMs})`);
  o.signal?.throwIfAborted();
  const dbs = await openMove(ctx, move);
  try {
    const shapes: MoveShapes = { sources: new Map(), target: new Map() };
    for (const s of move.sources) {
      const wanted = new Set(move.tables.flatMap((t) => t.sources.filter((x) => x.source === s.label).map((x) => nameOf(x.table))));
      shapes.sources.set(s.label, await readShapes(dbs.sources.get(s.label)!, (schema, table) => wanted.has(`${schema}.${table}`)));
    }
    const targets = new Set(move.tables.map((t) => nameOf(t.target)));
    shapes.target = await readShapes(dbs.target, (schema, table) => targets.has(`${schema}.${table}`));
    // the mappings as the move's runner builds them; a missing target table is a difference, not a plan problem
    const { mappings, problems } = tableMappings(move, shapes);
    const chosen = verifyPairs(move, mappings, o.tables);
    const all = [...problems.filter((p) => !/the target table has no column/.test(p)), ...chosen.problems];
    if (all.length) throw badInput(`dbus verify ${move.name}: the tables cannot be compared as the move maps them`, { details: all });

    // the move's job, if one applies the sources' changes: re-checks wait for it; tables not copied yet are not compared
    const status = await dbusStatus(ctx, move.name, o.spec ? { spec: o.spec } : {}).catch(() => undefined);
    const live = !!status && ['copying', 'following', 'cutting-over'].includes(status.state);
    const copying = new Map((status?.tables ?? []).filter((t) => !t.copyDone).map((t) => [t.target, t] as const));

    const targetLabel = move.target.label;
    const labels = (p: VerifyPair) => (p.label === targetLabel ? { source: `source ${p.label}`, target: `target ${targetLabel}` } : { source: p.label, target: targetLabel });
    const hashes = new Map<string, Awaited<ReturnType<typeof pairHash>>>();
    const report: DbusVerifyReport = { move: move.name, differences: [], differencesTotal: 0, tables: [], rows: 0, settleMs, live, ms: 0 };
    for (const p of chosen.pairs) {
      o.signal?.throwIfAborted();
      const t0 = Date.now();
      const row: DbusVerifyTable = { table: p.table, source: p.source, compared: false, rows: 0, chunks: 0, differences: 0, rechecked: 0, ms: 0 };
      report.tables.push(row);
      const skip = (reason: string) => {
        row.reason = reason;
        row.differences = 1;
        report.differences.push(notCompared(p, reason));
        report.differencesTotal++;
      };
      const sshape = shapes.sources.get(p.label)?.get(nameOf(p.source_));
      const tshape = shapes.target.get(p.table);
      const copy = copying.get(p.table);
      if (!sshape) skip(`the source table ${p.source} does not exist`);
      else if (!tshape) skip(`the target table ${p.table} does not exist`);
      else if (live && copy) skip(`the move is still copying it (${copy.copiedRows} of ~${copy.estimatedRows} rows); verify once \`ezctl dbus status ${move.name}\` says copied`);
      else {
        const l = labels(p);
        const sdb = dbs.sources.get(p.label)!;
        const hash = hashes.get(p.label) ?? (await pairHash([{ label: l.source, db: sdb }, { label: l.target, db: dbs.target }]));
        hashes.set(p.label, hash);
        const r = await compareTablePair(ctx, {
          name: p.table,
          sides: [
            { label: l.source, db: sdb, shape: sshape, ...p.source_ },
            { label: l.target, db: dbs.target, shape: tshape, ...p.target },
          ],
          hash,
          settleMs,
          ...(o.rechecks !== undefined ? { rechecks: o.rechecks } : {}),
          ...(live ? { beforeRecheck: () => catchUp(ctx, move.name, p.label, sdb, o) } : {}),
          maxDiffs: MAX_DIFFS,
          ...(o.signal ? { signal: o.signal } : {}),
        });
        if (r.status === 'incomplete') throw new EzError(ExitCode.interrupted, `dbus verify ${move.name} interrupted at ${p.table}, before every table was compared`);
        if (r.status === 'skipped') skip(r.reason ?? 'skipped');
        else {
          row.compared = true;
          row.rows = r.rows;
          row.chunks = r.chunks;
          row.rechecked = r.rechecked;
          row.differences = r.missing + r.changed;
          report.rows += r.rows;
          report.differencesTotal += row.differences;
          for (const d of r.diffs) report.differences.push(differenceOf(p, d, l));
        }
      }
      row.ms = Date.now() - t0;
    }
    for (const u of chosen.unowned) {
      const t0 = Date.now();
      if (!shapes.target.has(u.table)) continue;
      const where = ` WHERE ${u.where}`;
      const n = Number(await dbs.target.value(`SELECT COUNT(*) FROM ${quoteTable(u.schema, u.name)}${where}`, u.params));
      const keys = n ? await dbs.target.query(`SELECT ${u.key.map(quoteId).join(', ')} FROM ${quoteTable(u.schema, u.name)}${where} LIMIT ${MAX_DIFFS}`, u.params) : [];
      for (const k of keys) report.differences.push({ table: u.table, source: '(no shard)', key: u.key.map((c) => k[c]), keyColumns: u.key, kind: 'only-at-target', why: u.why });
      report.differencesTotal += n;
      report.tables.push({ table: u.table, source: '(rows of no shard)', compared: true, rows: n, chunks: 1, differences: n, rechecked: 0, ms: Date.now() - t0 });
    }
    await explainConflicts(dbs.target, move.name, chosen.pairs, report.differences);
    report.ms = Date.now() - started;
    return report;
  } finally {
    await dbs.close();
  }
}

/**
 * A differing row of a merged shard that a UNIQUE key collision kept out of the target was
 * recorded when it was met (`_ezctl.dbus_conflicts`): say so on the difference, with the row the
 * target kept. It stays a difference until the DBA settles which row wins.
 */
async function explainConflicts(target: Db, move: string, pairs: readonly VerifyPair[], diffs: DbusDifference[]): Promise<void> {
  const mine = diffs.filter((d) => d.kind !== 'not-compared' && d.source !== '(no shard)');
  if (!mine.length || !pairs.some((p) => p.shard)) return;
  const rows = await listConflicts(target, move);
  if (!rows.length) return;
  for (const d of mine) {
    const p = pairs.find((x) => x.source === d.source && x.table === d.table);
    if (!p) continue;
    const want = JSON.stringify(d.key.map((v) => String(v)));
    const c = rows.find((r) => r.source === d.source && JSON.stringify(p.source_.key.map((k) => String(r.sourceRow[k]))) === want);
    if (!c) continue;
    d.conflict = { uniqueKey: c.uniqueKey, existingSource: c.existingSource, at: c.at };
    d.why += `; a recorded cross-shard UNIQUE conflict on (${c.uniqueKey.join(', ')}) at ${c.at}: the target keeps ${c.existingSource ?? 'another shard'}'s row (decide which row wins, change the losing one at its shard, then verify again)`;
  }
}

/** Before a re-check: the source's position now, then wait (bounded) until the move's job applied it. */
async function catchUp(ctx: Ctx, move: string, label: string, source: Db, o: DbusVerifyOptions): Promise<void> {
  const pos = String((await source.value('SELECT @@global.gtid_binlog_pos')) ?? '');
  if (!pos) return;
  await waitApplied(ctx, move, { [label]: pos }, { timeoutMs: o.catchUpMs ?? DEFAULT_CATCH_UP_MS, ...(o.signal ? { signal: o.signal } : {}), ...(o.spec ? { spec: o.spec } : {}) }).catch(() => undefined);
}

/**
 * The exit code of a verify, as `check`'s: 0 the target is what the sources say, 1 rows differ, 4
 * nothing found different but some table could not be compared (named).
 */
export function verifyExitCode(r: Pick<DbusVerifyReport, 'differences' | 'differencesTotal'>): ExitCode {
  const notCompared = r.differences.filter((d) => d.kind === 'not-compared').length;
  if (r.differencesTotal > notCompared) return ExitCode.differences;
  return notCompared ? ExitCode.refused : ExitCode.ok;
}

export type { DbusStatus };
