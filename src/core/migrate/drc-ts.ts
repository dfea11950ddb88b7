// `ezctl migrate drc-ts`: give every replicated table the DRC timestamp column,
// `TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)`, in every
// zone, so that each existing row gets the same value in all zones.
//
// Why not simply ADD COLUMN ... DEFAULT CURRENT_TIMESTAMP(3): every zone runs its own ALTER, at
// its own moment, and each row gets that moment (even an instant ADD evaluates the default once,
// at the ALTER; a copying one stamps the copy time). The zones would then hold different
// timestamps for identical rows, and last-writer-wins would pick winners by when the migration
// happened to run in each zone. Instead, per table:
//   1. in every zone: ADD COLUMN ... NOT NULL DEFAULT '<one fixed UTC literal>' — instant on
//      MariaDB 10.3+ (existing rows read the default from the table's metadata); under any
//      fallback algorithm every row still gets that same constant;
//   2. zones that had no column while another zone had one: copy that zone's values, by key,
//      into the rows that still hold the fixed literal (a re-run finds the literal in the
//      column's default and does the same, so an interrupted run can simply be run again);
//   3. in every zone: MODIFY COLUMN to the final definition — metadata only (measured: INSTANT)
//      when only the default and ON UPDATE change; existing values are kept.
// A column that exists with a wrong definition is fixed by step 3 when that keeps every value
// (a narrower TIMESTAMP is widened: ALGORITHM=COPY, values kept; NULLs are first set to the
// fixed literal, because a copying ALTER to NOT NULL would stamp them with its own time), and
// refused otherwise (another type, a finer precision, a generated column).
//
// Every DDL carries DRC's marker comment, so a daemon started with --replicate-ddl does not
// forward it (each zone runs its own), and runs at the zone master with time_zone '+00:00': the
// zone's replicas get it through native replication. Row writes (NULL fill, value copy) run
// under DRC's GTID domain for that zone, like `ezctl repair`, so DRC does not carry them back.
import mysql from 'mysql2';
import type { Ctx } from '../context.js';
import type { ResolvedNode, Topology } from '../config/load.js';
import type { Db, Param } from '../db/connect.js';
import { QueryError } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { serverInfo, waitForGtid, type ServerInfo } from '../db/server.js';
import { badInput, runtimeError, EzError, ExitCode } from '../exit.js';
import { keyCompare, keyEquals, keyIn, orderBy, type KeyValue, type SqlPart } from '../chunk/keys.js';
import { readShapes, type ColumnShape, type TableShape } from '../db/introspect.js';
import { columnDefinition } from '../db/shape-compare.js';
import { tableFilter } from '../dcp/index.js';
import { DEFAULT_DRC_DOMAIN_OFFSET, ownDdlMarker } from '../cluster/tables.js';
import { drcDomainFor, OWN_DOMAIN_SQL, withDrcWrites, writeAsDrcSql } from '../cluster/session.js';
import { DrcClient, type PipelineStatus } from '../drc/client.js';
import { onInterrupt } from '../signals.js';
import { Throttler } from '../throttle/throttler.js';
import type { RunControl } from '../control/run.js';
import { drcTsSocketPath, openDrcTsControl } from './drc-ts-control.js';
import { acquireJob, type JobHandle } from '../job/job.js';

// ---------------------------------------------------------------------------------------------
// The wanted column

export const FINAL_TYPE = 'timestamp(3)';
export const FINAL_DEFAULT = 'current_timestamp(3)';
export const FINAL_ON_UPDATE = 'on update current_timestamp(3)';
export const FINAL_DEFINITION = 'TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)';

/** The comment every DDL of this command starts with: DRC's replicator never forwards a statement carrying it. */
const DDL_MARKER = ownDdlMarker('migrate drc-ts');

export type Algorithm = 'INSTANT' | 'INPLACE' | 'COPY';

const ALGORITHM_CLAUSE: Record<Algorithm, string> = {
  INSTANT: 'ALGORITHM=INSTANT',
  INPLACE: 'ALGORITHM=INPLACE, LOCK=NONE',
  COPY: 'ALGORITHM=COPY, LOCK=SHARED',
};

// ---------------------------------------------------------------------------------------------
// The fixed value

const TS_MIN = Date.UTC(1970, 0, 1, 0, 0, 1);
const TS_MAX = Date.UTC(2038, 0, 19, 3, 14, 7);

function fmtUtc(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}`;
}

/** The default fixed value: now, in UTC, to the whole second ("2026-11-23 20:00:00.000"). */
export function fixedValueAt(ms: number): string {
  return fmtUtc(Math.floor(ms / 1000) * 1000);
}

/** A user's --value: 'YYYY-MM-DD HH:MM:SS[.fff]' in UTC, within TIMESTAMP's range, as YYYY-MM-DD HH:MM:SS.fff. */
export function parseFixedValue(v: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?Z?$/.exec(v.trim());
  if (!m) throw badInput(`--value ${JSON.stringify(v)} is not 'YYYY-MM-DD HH:MM:SS[.fff]' (UTC)`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const frac = Number((m[7] ?? '0').padEnd(3, '0'));
  const ms = Date.UTC(y, mo - 1, d, h, mi, s, frac);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    throw badInput(`--value ${JSON.stringify(v)} is not a valid date and time`);
  }
  if (ms < TS_MIN || ms > TS_MAX) throw badInput(`--value ${JSON.stringify(v)} is outside TIMESTAMP's range (1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC)`);
  return fmtUtc(ms);
}

// ---------------------------------------------------------------------------------------------
// Classifying a column (pure)

export type ProblemKind = 'type' | 'precision' | 'nullable' | 'default' | 'on-update' | 'generated';

export interface Problem {
  kind: ProblemKind;
  have: string;
  want: string;
}

export interface ColumnVerdict {
  state: 'ok' | 'missing' | 'wrong';
  /** the column as found, one line ("timestamp NOT NULL DEFAULT current_timestamp on update current_timestamp") */
  definition: string | null;
  problems: Problem[];
  /** why the wrong definition cannot be fixed without changing or losing values */
  refusal?: string;
  /** fractional-second digits of a TIMESTAMP column */
  precision?: number;
  nullable: boolean;
  /** the default when it is a constant timestamp, unquoted ("2026-11-23 20:00:00.000") */
  literalDefault: string | null;
  /**
   * TIMESTAMP(3) NOT NULL with a constant default and no ON UPDATE: what step 1 of this command
   * leaves behind. Its rows hold that constant unless a zone that had the column before gives them
   * its values.
   */
  fresh: boolean;
  /** the final MODIFY cannot be metadata-only: a type change or NULL → NOT NULL (the server copies the table) */
  needsCopy: boolean;
  invisible: boolean;
}

export function precisionOf(columnType: string): number {
  const m = /^\w+\((\d+)\)/.exec(columnType);
  return m ? Number(m[1]) : 0;
}

/** The default as a timestamp literal, when it is one: MariaDB prints it quoted, MySQL bare. */
export function literalOf(def: string | null): string | null {
  if (def === null) return null;
  const m = /^'?(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)'?$/.exec(def.trim());
  return m ? m[1]! : null;
}

function typeRefusal(col: ColumnShape): string {
  if (col.dataType === 'datetime') {
    return `${col.columnType} holds wall-clock values without a time zone; converting them to TIMESTAMP reads each one in the converting session's time zone, so the result depends on a guess of the zone the writers used, and old rows would not compare with new UTC instants — convert it yourself with the zone its writers used (CONVERT_TZ into a new TIMESTAMP(3) column), or name another DRC column (drcTimestampColumn)`;
  }
  return `${col.columnType} is not a timestamp: its values (epoch seconds? milliseconds? text?) cannot become TIMESTAMP(3) values without knowing what they mean — convert it yourself, or name another DRC column (drcTimestampColumn)`;
}

/** What a zone's DRC timestamp column is, against the wanted definition. */
export function classifyColumn(col: ColumnShape | undefined): ColumnVerdict {
  if (!col) return { state: 'missing', definition: null, problems: [], nullable: false, literalDefault: null, fresh: false, needsCopy: false, invisible: false };
  const problems: Problem[] = [];
  let refusal: string | undefined;
  const isTimestamp = col.dataType === 'timestamp';
  const precision = isTimestamp ? precisionOf(col.columnType) : undefined;
  if (col.generated) {
    problems.push({ kind: 'generated', have: col.generated, want: 'a plain column' });
    refusal = 'a generated column cannot hold DRC\'s timestamps (DRC writes the value of every row it applies)';
  }
  if (!isTimestamp) {
    problems.push({ kind: 'type', have: col.columnType, want: FINAL_TYPE });
    refusal ??= typeRefusal(col);
  } else if (precision !== 3) {
    problems.push({ kind: 'precision', have: col.columnType, want: FINAL_TYPE });
    if (precision! > 3) {
      refusal ??= `narrowing ${col.columnType} to timestamp(3) would round every value (sub-millisecond order is lost, and a value rounded up can overtake a later write); DRC works with it as it is — leave the table out (--exclude), or change it yourself`;
    }
  }
  if (col.nullable) problems.push({ kind: 'nullable', have: 'NULL', want: 'NOT NULL' });
  if (col.default !== FINAL_DEFAULT) problems.push({ kind: 'default', have: col.default ?? '(none)', want: FINAL_DEFAULT });
  const onUpdate = /\bon update (current_timestamp(?:\(\d*\))?)/.exec(col.extra)?.[1] ?? null;
  if (`on update ${onUpdate}` !== FINAL_ON_UPDATE) problems.push({ kind: 'on-update', have: onUpdate ? `on update ${onUpdate}` : '(none)', want: FINAL_ON_UPDATE });
  const literalDefault = literalOf(col.default);
  const v: ColumnVerdict = {
    state: problems.length ? 'wrong' : 'ok',
    definition: columnDefinition(col),
    problems,
    nullable: col.nullable,
    literalDefault,
    fresh: isTimestamp && precision === 3 && !col.nullable && !col.generated && literalDefault !== null && onUpdate === null,
    needsCopy: (isTimestamp && precision !== 3) || col.nullable,
    invisible: /\binvisible\b/.test(col.extra),
  };
  if (refusal) v.refusal = refusal;
  if (precision !== undefined) v.precision = precision;
  return v;
}

export function describeProblem(p: Problem): string {
  switch (p.kind) {
    case 'type':
      return `type ${p.have} (wanted ${p.want})`;
    case 'precision':
      return `precision ${p.have} (wanted ${p.want})`;
    case 'nullable':
      return 'NULL allowed (wanted NOT NULL)';
    case 'default':
      return `default ${p.have} (wanted ${p.want})`;
    case 'on-update':
      return p.have === '(none)' ? `no ON UPDATE (wanted ${p.want})` : `${p.have} (wanted ${p.want})`;
    case 'generated':
      return `generated column ${p.have}`;
  }
}

// ---------------------------------------------------------------------------------------------
// SQL (pure)

export function addColumnSql(schema: string, table: string, column: string, literal: string, algorithm: Algorithm): SqlPart {
  return {
    sql: `${DDL_MARKER}ALTER TABLE ${quoteTable(schema, table)} ADD COLUMN ${quoteId(column)} TIMESTAMP(3) NOT NULL DEFAULT ?, ${ALGORITHM_CLAUSE[algorithm]}`,
    params: [literal],
  };
}

export function setLiteralDefaultSql(schema: string, table: string, column: string, literal: string, algorithm: Algorithm): SqlPart {
  return { sql: `${DDL_MARKER}ALTER TABLE ${quoteTable(schema, table)} ALTER COLUMN ${quoteId(column)} SET DEFAULT ?, ${ALGORITHM_CLAUSE[algorithm]}`, params: [literal] };
}

export function defineColumnSql(schema: string, table: string, column: string, keep: { invisible: boolean; comment: string | null }, algorithm: Algorithm): SqlPart {
  const params: Param[] = [];
  let extra = '';
  if (keep.invisible) extra += ' INVISIBLE';
  if (keep.comment) {
    extra += ' COMMENT ?';
    params.push(keep.comment);
  }
  return {
    sql: `${DDL_MARKER}ALTER TABLE ${quoteTable(schema, table)} MODIFY COLUMN ${quoteId(column)} ${FINAL_DEFINITION}${extra}, ${ALGORITHM_CLAUSE[algorithm]}`,
    params,
  };
}

export const FILL_BATCH = 5000;
/** rows of the other zone read, and given to this one, per statement */
export const COPY_BATCH = 500;

export function fillNullsSql(schema: string, table: string, column: string, literal: string, limit = FILL_BATCH): SqlPart {
  return { sql: `UPDATE ${quoteTable(schema, table)} SET ${quoteId(column)} = ? WHERE ${quoteId(column)} IS NULL LIMIT ${Math.max(1, Math.floor(limit))}`, params: [literal] };
}

/** The next keys and timestamps of the zone the values come from, in key order. */
export function readValuesSql(schema: string, table: string, column: string, key: readonly string[], after: KeyValue | undefined, limit: number): SqlPart {
  const where = after ? keyCompare(key, '>', after) : { sql: '1', params: [] };
  return {
    sql: `SELECT ${[...key, column].map(quoteId).join(', ')} FROM ${quoteTable(schema, table)} WHERE ${where.sql} ORDER BY ${orderBy(key)} LIMIT ${Math.max(1, Math.floor(limit))}`,
    params: where.params,
  };
}

/**
 * Give rows the other zone's timestamps, by key, where they still hold the fixed literal (a row
 * this zone has changed since got a newer timestamp of its own, and keeps it).
 */
export function copyValuesSql(schema: string, table: string, column: string, key: readonly string[], rows: ReadonlyArray<{ key: KeyValue; ts: string }>, literal: string): SqlPart {
  if (rows.length === 0) throw new Error('copyValuesSql needs rows');
  const cases = rows.map((r) => keyEquals(key, r.key));
  const where = keyIn(key, rows.map((r) => r.key));
  return {
    sql: `UPDATE ${quoteTable(schema, table)} SET ${quoteId(column)} = CASE ${cases.map((c) => `WHEN ${c.sql} THEN ?`).join(' ')} ELSE ${quoteId(column)} END WHERE ${where.sql} AND ${quoteId(column)} = ?`,
    params: [...rows.flatMap((r, i) => [...cases[i]!.params, r.ts]), ...where.params, literal],
  };
}

/** SQL with its values in, for printing (valid SQL to run by hand). */
export function inline(p: SqlPart): string {
  return mysql.format(p.sql, p.params as Parameters<typeof mysql.format>[1]);
}

// ---------------------------------------------------------------------------------------------
// Planning (pure)

export type StepKind = 'add' | 'literal-default' | 'fill-nulls' | 'copy-values' | 'define';

export interface Step {
  /** global order, from 1 */
  n: number;
  zone: string;
  table: string;
  schema: string;
  name: string;
  kind: StepKind;
  /** what it does, for people */
  what: string;
  /** DDL: the algorithms tried, in order (the server refuses one it cannot do instantly/in place; then the next) */
  algorithms?: Algorithm[];
  /** the value added rows read, or NULLs become, or rows to be given another zone's values hold */
  literal?: string;
  /** copy-values: where the values come from, by which key */
  from?: string;
  key?: string[];
  /** fill-nulls / copy-values: the GTID domain the writes are logged under (DRC's for this zone), MariaDB only */
  domain?: number;
  /** define: what to keep of the column */
  keep?: { invisible: boolean; comment: string | null };
  /** filled in by --execute */
  result?: StepResult;
}

export interface StepResult {
  algorithm?: Algorithm;
  /** algorithms the server refused before the one that ran, with its reason */
  refused?: Array<{ algorithm: Algorithm; reason: string }>;
  rows?: number;
  ms: number;
  lockRetries?: number;
}

export interface ZoneInput {
  zone: string;
  shape: TableShape | undefined;
  /** the DRC column's comment in this zone ('' or null: none) */
  comment: string | null;
}

export type ZoneVerdict = ColumnVerdict | { state: 'absent' };

export interface TablePlan {
  table: string;
  schema: string;
  name: string;
  status: 'ok' | 'change' | 'refused';
  zones: Record<string, ZoneVerdict>;
  /** the zone whose values the zones without a column of their own receive */
  donor: string | null;
  receivers: string[];
  refusals: string[];
  notes: string[];
  rowsEstimate: number;
  /** what will be done, per zone, for people */
  actions: string[];
  steps: Step[];
}

export interface PlanContext {
  column: string;
  /** the fixed value of this migration, UTC, "YYYY-MM-DD HH:MM:SS.fff" */
  literal: string;
  /** the GTID domain DRC writes under in `zone` for rows from `origin` (undefined: not MariaDB) */
  drcDomain: (zone: string, origin: string) => number | undefined;
}

type Unnumbered = Omit<Step, 'n'>;

/** What to do with one table across the zones (in the order given); steps are numbered later. */
export function planTable(table: string, inputs: ZoneInput[], pc: PlanContext): TablePlan {
  const dot = table.indexOf('.');
  const schema = table.slice(0, dot);
  const name = table.slice(dot + 1);
  const zones: Record<string, ZoneVerdict> = {};
  const plan: TablePlan = { table, schema, name, status: 'ok', zones, donor: null, receivers: [], refusals: [], notes: [], rowsEstimate: 0, actions: [], steps: [] };
  const present = inputs.filter((i) => i.shape);
  for (const i of inputs) {
    if (!i.shape) {
      zones[i.zone] = { state: 'absent' };
      continue;
    }
    zones[i.zone] = classifyColumn(i.shape.columns.find((c) => c.name === pc.column));
    plan.rowsEstimate = Math.max(plan.rowsEstimate, i.shape.rowsEstimate);
  }
  const absent = inputs.filter((i) => !i.shape).map((i) => i.zone);
  if (absent.length) plan.notes.push(`table absent in ${absent.join(', ')}: nothing is done there (\`ezctl check schema\` shows it)`);
  const verdict = (z: string) => zones[z] as ColumnVerdict;
  if (present.every((i) => verdict(i.zone).state === 'ok')) return plan;

  for (const i of present) {
    const v = verdict(i.zone);
    if (v.refusal) plan.refusals.push(`${i.zone}: ${pc.column} ${v.definition}: ${v.refusal}`);
  }

  // Who gives values to whom: zones without a column of their own (or with what an interrupted
  // run of this command left) receive the values of a zone whose column was there before.
  const original = present.filter((i) => verdict(i.zone).state !== 'missing' && !verdict(i.zone).fresh && !verdict(i.zone).refusal);
  const rank = (i: ZoneInput) => (verdict(i.zone).state === 'ok' ? 0 : verdict(i.zone).precision === 3 ? 1 : 2);
  const donor = [...original].sort((a, b) => rank(a) - rank(b))[0];
  const receivers = donor ? present.filter((i) => verdict(i.zone).state === 'missing' || verdict(i.zone).fresh) : [];
  if (donor && receivers.length) {
    const key = donor.shape!.primaryKey;
    if (key.length === 0) {
      plan.refusals.push(`${receivers.map((r) => r.zone).join(', ')}: the column is missing there but present in ${donor.zone}, and the table has no primary key to give each row ${donor.zone}'s value by`);
    } else {
      const differ = receivers.filter((r) => r.shape!.primaryKey.join(',') !== key.join(','));
      if (differ.length) plan.refusals.push(`${differ.map((r) => r.zone).join(', ')}: the primary key differs from ${donor.zone}'s (${key.join(', ')}), so rows cannot be matched to copy ${donor.zone}'s values`);
    }
    plan.donor = donor.zone;
    plan.receivers = receivers.map((r) => r.zone);
  }
  const distinctOriginal = new Set(original.map((i) => verdict(i.zone).precision ?? -1));
  if (original.length > 1 && distinctOriginal.size > 1) {
    plan.notes.push(`the column has different precisions in ${original.map((i) => `${i.zone} (${verdict(i.zone).definition})`).join(', ')}: values kept at a lower precision stay rounded; the verification will show them (\`ezctl repair\` makes them agree)`);
  }
  if (plan.refusals.length) {
    plan.status = 'refused';
    return plan;
  }
  plan.status = 'change';

  const steps: Unnumbered[] = [];
  const base = { table, schema, name };
  const otherZone = (z: string) => inputs.find((i) => i.zone !== z)?.zone ?? z;
  // 1. every zone has the column, holding one constant for existing rows
  for (const i of present) {
    const v = verdict(i.zone);
    if (v.state === 'missing') {
      steps.push({ ...base, zone: i.zone, kind: 'add', what: `add ${pc.column}; existing rows read '${pc.literal}'`, algorithms: ['INSTANT', 'INPLACE', 'COPY'], literal: pc.literal });
    } else if (v.nullable && !v.refusal) {
      const lit = pc.literal;
      if (v.literalDefault !== lit) {
        steps.push({ ...base, zone: i.zone, kind: 'literal-default', what: `default '${lit}' meanwhile, so no new row gets NULL`, algorithms: ['INSTANT', 'INPLACE', 'COPY'], literal: lit });
      }
      const fill: Unnumbered = { ...base, zone: i.zone, kind: 'fill-nulls', what: `NULLs become '${lit}' (a copying ALTER to NOT NULL would stamp them with its own time)`, literal: lit };
      const d = pc.drcDomain(i.zone, otherZone(i.zone));
      if (d !== undefined) fill.domain = d;
      steps.push(fill);
    }
  }
  // 2. rows of zones without a column of their own get the values of the zone that had one
  if (donor) {
    for (const r of receivers) {
      const v = verdict(r.zone);
      const lit = v.state === 'missing' ? pc.literal : v.literalDefault!;
      const copy: Unnumbered = { ...base, zone: r.zone, kind: 'copy-values', what: `rows still holding '${lit}' get ${donor.zone}'s ${pc.column}, by primary key`, literal: lit, from: donor.zone, key: donor.shape!.primaryKey };
      const d = pc.drcDomain(r.zone, donor.zone);
      if (d !== undefined) copy.domain = d;
      steps.push(copy);
    }
  }
  // 3. the final definition, keeping every value
  for (const i of present) {
    const v = verdict(i.zone);
    if (v.state === 'ok') continue;
    const keep = { invisible: v.invisible, comment: i.comment || null };
    const what = v.needsCopy
      ? `final definition; the server copies the table (${v.nullable ? 'NULL → NOT NULL' : `${v.definition?.split(' ')[0]} → timestamp(3)`}), every value kept`
      : 'final definition (default and ON UPDATE only: existing values kept)';
    steps.push({ ...base, zone: i.zone, kind: 'define', what, algorithms: v.needsCopy ? ['COPY'] : ['INSTANT', 'INPLACE', 'COPY'], keep });
  }
  plan.steps = steps.map((s) => ({ ...s, n: 0 }));

  for (const i of present) {
    const v = verdict(i.zone);
    const kinds = steps.filter((s) => s.zone === i.zone).map((s) => s.kind);
    if (kinds.length === 0) continue;
    const parts: string[] = [];
    if (kinds.includes('add')) parts.push(`add (existing rows '${pc.literal}')`);
    if (kinds.includes('fill-nulls')) parts.push('NULLs to the fixed value');
    if (kinds.includes('copy-values')) parts.push(`copy values from ${donor!.zone}`);
    if (kinds.includes('define')) parts.push(v.needsCopy ? 'final definition (COPY)' : 'final definition');
    plan.actions.push(`${i.zone}: ${parts.join(', then ')}`);
  }
  return plan;
}

/** Steps of all tables in the order they run, numbered from 1: table by table, each step zone after zone. */
export function numberSteps(plans: TablePlan[]): Step[] {
  const all: Step[] = [];
  for (const p of plans) {
    for (const s of p.steps) {
      s.n = all.length + 1;
      all.push(s);
    }
  }
  return all;
}

/** The SQL of one step as it can be run by hand at its zone's master, in order (comments included). */
export function stepSql(s: Step, column: string): string[] {
  const alt = (build: (a: Algorithm) => SqlPart) => {
    const [first, ...rest] = s.algorithms!;
    const out = [inline(build(first!)) + ';'];
    if (rest.length) out.push(`-- if the server refuses ${first} (ERROR 1845/1846), the same with ${rest.map((a) => ALGORITHM_CLAUSE[a]).join(', then ')}`);
    return out;
  };
  const domain = (lines: string[]) => (s.domain === undefined ? lines : [`${writeAsDrcSql(s.domain)};`, ...lines, `${OWN_DOMAIN_SQL};`]);
  switch (s.kind) {
    case 'add':
      return alt((a) => addColumnSql(s.schema, s.name, column, s.literal!, a));
    case 'literal-default':
      return alt((a) => setLiteralDefaultSql(s.schema, s.name, column, s.literal!, a));
    case 'define':
      return alt((a) => defineColumnSql(s.schema, s.name, column, s.keep!, a));
    case 'fill-nulls':
      return domain(['-- repeated until it changes no row:', inline(fillNullsSql(s.schema, s.name, column, s.literal!)) + ';']);
    case 'copy-values': {
      const key = s.key!;
      const col = quoteId(column);
      const k = key.map(quoteId);
      const match = `(${k.map((c) => `${c} = <${c.slice(1, -1)}>`).join(' AND ')})`;
      return domain([
        `-- for each ${COPY_BATCH} rows of ${s.from}, in key order: SELECT ${[...k, col].join(', ')} FROM ${quoteTable(s.schema, s.name)} WHERE (${k.join(', ')}) > (<the last key>) ORDER BY ${orderBy(key)} LIMIT ${COPY_BATCH}`,
        `-- one UPDATE ${quoteTable(s.schema, s.name)} SET ${col} = CASE WHEN ${match} THEN <${s.from}'s value> ... ELSE ${col} END WHERE <those keys> AND ${col} = ${mysql.escape(s.literal!)};`,
        `-- (the values as ${s.from} holds them, read and written at time_zone '+00:00')`,
      ]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The command

export interface DrcTsOptions {
  cluster?: string;
  zones?: string[];
  tables?: string;
  exclude?: string;
  execute?: boolean;
  /** the fixed value for existing rows, UTC (default: now, to the second) */
  value?: string;
  /** seconds a DDL waits for its metadata lock before it gives up and tries again */
  lockWaitTimeout?: number;
  /** with --execute, the job's lease (job/lease.ts DEFAULT_LEASE_MS when not given) */
  leaseMs?: number;
}

export interface NodeCheck {
  node: string;
  zone: string;
  role: 'master' | 'replica';
  ok: boolean;
  problems: string[];
}

export interface Verification {
  ok: boolean;
  definitions: { ok: boolean; nodes: NodeCheck[]; warnings: string[] };
  values: {
    ok: boolean;
    /** false: fewer than two zones, nothing to compare */
    compared: boolean;
    runId: string | null;
    rows: number;
    tables: Array<{ table: string; rows: number; missing: number; changed: number; examples: string[] }>;
  };
}

export interface DrcNote {
  /** a daemon answers on this host */
  running: boolean;
  /** directions resumed after the migration, with the table they had stopped on */
  resumed: Array<{ direction: string; table: string; stoppedBefore: boolean }>;
  warnings: string[];
}

export interface DrcTsReport {
  cluster: string;
  zones: string[];
  column: string;
  definition: string;
  fixedValue: string;
  execute: boolean;
  /** tables looked at */
  tablesSeen: number;
  /** the tables already right in every zone */
  ok: string[];
  tables: TablePlan[];
  refused: boolean;
  steps: Step[];
  /** the SQL per zone, in step order (valid SQL; run in the order of the step numbers) */
  sql: Record<string, string[]>;
  masters: Record<string, string>;
  drc?: DrcNote;
  verification?: Verification;
  /** `ezctl migrate drc-ts stop` ended the run after this many steps (then nothing was verified) */
  stopped?: { stepsDone: number; stepsTotal: number };
}

export function drcTsExitCode(r: DrcTsReport): ExitCode {
  if (r.refused) return ExitCode.refused;
  if (r.stopped) return ExitCode.interrupted; // as Ctrl-C: ended part-way, on request
  if (!r.execute || !r.verification) return ExitCode.ok;
  return r.verification.ok ? ExitCode.ok : ExitCode.differences;
}

interface ZoneConn {
  zone: string;
  node: ResolvedNode;
  db: Db;
  info: ServerInfo;
}

const LOCK_RETRIES = 5;
const REPLICA_WAIT_S = 60;

export async function migrateDrcTs(ctx: Ctx, o: DrcTsOptions): Promise<DrcTsReport> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster);
  const zones = topo.zonesChosen(cluster.name, o.zones);
  const column = topo.drcTimestampColumn(cluster.name);
  const literal = o.value !== undefined ? parseFixedValue(o.value) : fixedValueAt(Date.now());
  const filter = tableFilter(cluster.config, o);
  const offset = cluster.config.drc?.drcDomainOffset ?? DEFAULT_DRC_DOMAIN_OFFSET;
  const lockWait = o.lockWaitTimeout ?? 5;

  const conns: ZoneConn[] = [];
  const closeAll = () => Promise.all(conns.map((c) => c.db.close().catch(() => undefined)));
  let ctl: RunControl | undefined;
  let job: JobHandle | undefined;
  let jobEnd: unknown;
  try {
    for (const z of zones) {
      const node = topo.master(cluster.name, z);
      const db = await ctx.connect(node);
      conns.push({ zone: z, node, db, info: await serverInfo(db) });
    }
    ctx.log.info(`reading table structure at ${conns.map((c) => c.node.name).join(', ')}`);
    const shapes = await Promise.all(conns.map((c) => readShapes(c.db, filter)));
    const names = [...new Set(shapes.flatMap((m) => [...m.keys()]))].sort();
    if (names.length === 0) throw badInput(`no tables match${o.tables ? ` ${o.tables}` : ''} in cluster ${cluster.name}`, { hint: 'check --tables/--exclude and the cluster\'s databases' });
    const comments = await Promise.all(conns.map((c, i) => columnComments(c.db, column, [...shapes[i]!.values()].filter((s) => s.columns.some((x) => x.name === column)))));

    const domainOf = (z: string) => conns.find((c) => c.zone === z)?.info;
    const pc: PlanContext = {
      column,
      literal,
      drcDomain: (_zone, origin) => {
        const info = domainOf(origin);
        return drcDomainFor(info?.flavor === 'mariadb' ? info.gtidDomainId ?? 0 : undefined, offset);
      },
    };
    const plans = names.map((t) => planTable(t, conns.map((c, i) => ({ zone: c.zone, shape: shapes[i]!.get(t), comment: comments[i]!.get(t) ?? null })), pc));
    const changing = plans.filter((p) => p.status !== 'ok');
    const steps = numberSteps(changing.filter((p) => p.status === 'change'));
    const report: DrcTsReport = {
      cluster: cluster.name,
      zones,
      column,
      definition: FINAL_DEFINITION,
      fixedValue: literal,
      execute: !!o.execute,
      tablesSeen: names.length,
      ok: plans.filter((p) => p.status === 'ok').map((p) => p.table),
      tables: changing,
      refused: changing.some((p) => p.status === 'refused'),
      steps,
      sql: renderSqlByZone(steps, conns, column, lockWait),
      masters: Object.fromEntries(conns.map((c) => [c.zone, c.node.name])),
    };
    if (report.refused) {
      for (const p of changing.filter((x) => x.status === 'refused')) for (const r of p.refusals) ctx.log.error(`refused: ${p.table} ${r}`);
      return report;
    }
    if (!o.execute || steps.length === 0) return report;

    // ----- execute: answering status, pause, resume and stop (drc-ts-control.ts) from the first step to the last
    const drcHere = new DrcClient(ctx, topo, cluster.name);
    const stop = new AbortController();
    ctl = await openDrcTsControl(topo, cluster.name, () => stop.abort());
    // the tables it changes, held in every zone (from any host: the control socket sees only this one)
    job = await acquireJob(ctx, {
      cluster: cluster.name, kind: 'migrate-drc-ts', targets: [...new Set(steps.map((s) => s.table))], zones: conns.map((c) => ({ zone: c.zone, node: c.node })), phase: 'plan',
      // run again it starts from what each zone has: it takes over a migrate-drc-ts job that died (never another kind's)
      controlSocket: drcTsSocketPath(topo, cluster.name), resume: true, ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}),
    });
    const lease = job;
    const stepsProgress = () => {
      const n = steps.filter((x) => x.result).length;
      lease.progress({ steps: n, stepsTotal: steps.length, pct: Math.round((n / steps.length) * 1000) / 10, rows: steps.reduce((r, x) => r + (x.result?.rows ?? 0), 0) });
    };
    const gate = new Throttler([]);
    let under: Step | undefined;
    ctl.attach(() => {
      const done = steps.filter((x) => x.result);
      return { runId: null, done: done.length, total: steps.length, rows: done.reduce((n, x) => n + (x.result!.rows ?? 0), 0), rowsEstimate: 0, current: under ? [`step ${under.n} at ${under.zone}: ${under.table}: ${under.what}`] : [] };
    }, gate);
    const drc = await drcBefore(drcHere);
    report.drc = { running: drc.running, resumed: [], warnings: [] };
    if (drc.running) ctx.log.warn(`DRC runs for cluster ${cluster.name}: each table gets its column in every zone back to back (instant), so the window where zones differ is short (README: "Adding the DRC timestamp column", DRC meanwhile)`);
    for (const c of conns) await c.db.exec('SET SESSION lock_wait_timeout = ?', [lockWait]);

    // Ctrl-C: the step under way finishes (each step is whole), then the process exits 130
    let current: Promise<unknown> | undefined;
    const offInterrupt = onInterrupt(async () => {
      await current?.catch(() => undefined);
      const done = steps.filter((x) => x.result).length;
      ctx.log.warn(`interrupted after step ${done} of ${steps.length} (each step is whole: done or not); run the same command again with --value '${literal}' to continue`);
    });
    job.setPhase('steps');
    try {
      for (const s of steps) {
        // a pause holds here, before the next step; a stop ends the run here (a lost lease too: then it fails)
        under = undefined;
        if (!(await gate.gate(AbortSignal.any([stop.signal, lease.signal])).then(() => true, () => false))) break;
        lease.assertHeld();
        under = s;
        const conn = conns.find((c) => c.zone === s.zone)!;
        ctx.log.info(`step ${s.n}/${steps.length} at ${s.zone}: ${s.table}: ${s.what}`);
        const run = runStep(ctx, s, conn, conns, column);
        current = run;
        try {
          s.result = await run;
          stepsProgress();
        } catch (e) {
          const done = steps.filter((x) => x.result).map((x) => `step ${x.n} ${x.zone} ${x.table} ${x.kind}`);
          throw new EzError(ExitCode.runtime, `step ${s.n} at ${s.zone} (${s.table}, ${s.kind}) failed: ${(e as Error).message}`, {
            cause: e,
            details: done.length ? [`done before it: ${done.join('; ')}`] : ['no step had run before it'],
            hint: `fix the cause and run the same command again with --value '${literal}': it starts from what each zone has now`,
          });
        }
      }
    } finally {
      under = undefined;
      offInterrupt();
    }
    lease.assertHeld();
    const done = steps.filter((x) => x.result).length;
    if (stop.signal.aborted && done < steps.length) {
      report.stopped = { stepsDone: done, stepsTotal: steps.length };
      ctx.log.warn(`stopped by \`ezctl migrate drc-ts stop\` after step ${done} of ${steps.length} (each step is whole: done or not); run the same command again with --value '${literal}' to continue`);
      jobEnd = `stopped by \`ezctl migrate drc-ts stop\` after step ${done} of ${steps.length}; run the same command again with --value '${literal}' to continue`;
      return report;
    }
    job.setPhase('verify');
    report.drc = await drcAfter(ctx, drcHere, column, changing.map((p) => p.table), drc, report.drc);
    report.verification = await verify(ctx, topo, cluster.name, conns, column, changing.map((p) => p.table), filter);
    jobEnd = null;
    return report;
  } catch (e) {
    jobEnd = e;
    throw e;
  } finally {
    // done (verified or not: the report says); stopped: aborted; anything else failed (interrupted: aborted)
    if (job) {
      if (jobEnd === null) await job.finish('done');
      else if (typeof jobEnd === 'string') await job.finish('aborted', jobEnd);
      else await job.fail(jobEnd, jobEnd instanceof EzError && jobEnd.exitCode === ExitCode.interrupted ? 'aborted' : 'failed');
    }
    ctl?.close();
    await closeAll();
  }
}

async function columnComments(db: Db, column: string, shapes: TableShape[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (shapes.length === 0) return out;
  const schemas = [...new Set(shapes.map((s) => s.schema))];
  const rows = await db.query<{ s: string; t: string; c: string | null }>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_COMMENT AS c FROM information_schema.COLUMNS WHERE COLUMN_NAME = ? AND TABLE_SCHEMA IN (${schemas.map(() => '?').join(', ')})`,
    [column, ...schemas],
  );
  for (const r of rows) if (r.c) out.set(`${r.s}.${r.t}`, r.c);
  return out;
}

function renderSqlByZone(steps: Step[], conns: ZoneConn[], column: string, lockWait: number): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const c of conns) {
    const mine = steps.filter((s) => s.zone === c.zone);
    if (mine.length === 0) continue;
    const lines = [`-- zone ${c.zone}: ${c.node.name} (${c.node.host}:${c.node.port})`, "SET SESSION time_zone = '+00:00';", `SET SESSION lock_wait_timeout = ${lockWait};`];
    for (const s of mine) lines.push(`-- step ${s.n}: ${s.table}: ${s.what}`, ...stepSql(s, column));
    out[c.zone] = lines;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Running the steps

function isAlgorithmRefusal(e: unknown): boolean {
  const q = e as QueryError;
  return q instanceof QueryError && (q.code === 'ER_ALTER_OPERATION_NOT_SUPPORTED' || q.code === 'ER_ALTER_OPERATION_NOT_SUPPORTED_REASON' || q.errno === 1845 || q.errno === 1846);
}

function isLockWait(e: unknown): boolean {
  const q = e as QueryError;
  return q instanceof QueryError && (q.code === 'ER_LOCK_WAIT_TIMEOUT' || q.errno === 1205);
}

/** Run a statement, retrying when it waited too long for a lock (a long transaction on the table). */
async function withLockRetries(ctx: Ctx, what: string, fn: () => Promise<unknown>): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fn();
      return attempt;
    } catch (e) {
      if (!isLockWait(e) || attempt >= LOCK_RETRIES) throw e;
      ctx.log.warn(`${what}: waited too long for the table's lock (a transaction holds it); trying again (${attempt + 1}/${LOCK_RETRIES})`);
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
    }
  }
}

async function runDdl(ctx: Ctx, s: Step, db: Db, build: (a: Algorithm) => SqlPart): Promise<StepResult> {
  const started = Date.now();
  const refusedList: Array<{ algorithm: Algorithm; reason: string }> = [];
  let retries = 0;
  for (const a of s.algorithms!) {
    const q = build(a);
    try {
      retries += await withLockRetries(ctx, `${s.table} at ${s.zone}`, () => db.exec(q.sql, q.params));
      const r: StepResult = { algorithm: a, ms: Date.now() - started };
      if (refusedList.length) r.refused = refusedList;
      if (retries) r.lockRetries = retries;
      if (a === 'COPY') ctx.log.info(`${s.table} at ${s.zone}: ran with ALGORITHM=COPY`);
      return r;
    } catch (e) {
      if (!isAlgorithmRefusal(e)) throw e;
      const reason = ((e as QueryError).cause as { sqlMessage?: string } | undefined)?.sqlMessage ?? (e as Error).message;
      refusedList.push({ algorithm: a, reason });
      ctx.log.info(`${s.table} at ${s.zone}: ${a} refused (${reason}); trying the next algorithm`);
    }
  }
  throw runtimeError(`the server refused every algorithm for ${s.table} at ${s.zone}: ${refusedList.map((r) => `${r.algorithm}: ${r.reason}`).join('; ')}`);
}

async function runStep(ctx: Ctx, s: Step, conn: ZoneConn, conns: ZoneConn[], column: string): Promise<StepResult> {
  const db = conn.db;
  switch (s.kind) {
    case 'add':
      return runDdl(ctx, s, db, (a) => addColumnSql(s.schema, s.name, column, s.literal!, a));
    case 'literal-default':
      return runDdl(ctx, s, db, (a) => setLiteralDefaultSql(s.schema, s.name, column, s.literal!, a));
    case 'define':
      return runDdl(ctx, s, db, (a) => defineColumnSql(s.schema, s.name, column, s.keep!, a));
    case 'fill-nulls': {
      const started = Date.now();
      let rows = 0;
      await withDrcWrites(db, s.domain, async () => {
        for (;;) {
          const q = fillNullsSql(s.schema, s.name, column, s.literal!);
          const r = await db.exec(q.sql, q.params);
          rows += r.affectedRows;
          if (r.affectedRows === 0) break;
        }
      });
      return { rows, ms: Date.now() - started };
    }
    case 'copy-values': {
      const started = Date.now();
      const from = conns.find((c) => c.zone === s.from)!;
      const key = s.key!;
      let rows = 0;
      let after: KeyValue | undefined;
      await withDrcWrites(db, s.domain, async () => {
        for (;;) {
          const rq = readValuesSql(s.schema, s.name, column, key, after, COPY_BATCH);
          const got = await from.db.query(rq.sql, rq.params);
          if (got.length === 0) break;
          const batch = got.filter((r) => r[column] !== null && r[column] !== undefined).map((r) => ({ key: key.map((k) => r[k] as Param), ts: String(r[column]) }));
          if (batch.length) {
            const u = copyValuesSql(s.schema, s.name, column, key, batch, s.literal!);
            const res = await db.exec(u.sql, u.params);
            rows += res.affectedRows;
          }
          after = key.map((k) => got.at(-1)![k] as Param);
          if (got.length < COPY_BATCH) break;
        }
      });
      return { rows, ms: Date.now() - started };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// DRC around the migration

interface DrcSeen {
  running: boolean;
  /** direction -> the table it had stopped on for want of a timestamp column */
  stuck: Map<string, string>;
}

/** What a direction stopped on, when it stopped because the target lacked a table's DRC timestamp column. */
function stuckOnColumn(d: PipelineStatus): { table: string; column: string } | undefined {
  const s = d.state === 'error' ? d.stoppedOn : undefined;
  return s?.reason === 'no-timestamp-column' && s.table && s.column ? { table: s.table, column: s.column } : undefined;
}

async function drcBefore(drc: DrcClient): Promise<DrcSeen> {
  const st = await drc.daemonStatus().catch(() => null);
  const stuck = new Map<string, string>();
  for (const d of st?.directions ?? []) {
    const s = stuckOnColumn(d);
    if (s) stuck.set(`${d.from}->${d.to}`, s.table);
  }
  return { running: !!st, stuck };
}

/**
 * A direction that stopped because its target lacked the column on one of these tables can go
 * on now: it is resumed (it re-reads the table). One that had stopped before this run holds
 * changes written while their zone had no column: they carry no timestamp, so they are applied
 * without one (an insert takes the target's default; an update of an existing row loses to the
 * target's timestamp) — said in a warning, for `ezctl check full` / `ezctl repair`.
 */
async function drcAfter(ctx: Ctx, drc: DrcClient, column: string, tables: string[], before: DrcSeen, note: DrcNote): Promise<DrcNote> {
  const { cluster } = drc;
  if (!before.running) {
    ctx.log.info(`no DRC daemon answers on this host for cluster ${cluster}; if one runs elsewhere and a direction stopped on one of these tables ("has no ${column} column there"), run \`ezctl drc resume\` there`);
    return note;
  }
  const st = await drc.daemonStatus().catch(() => null);
  if (!st) return note;
  for (const d of st.directions) {
    const s = stuckOnColumn(d);
    if (!s || s.column !== column || !tables.includes(s.table)) continue;
    const direction = `${d.from}->${d.to}`;
    await drc.resume(direction);
    const stoppedBefore = before.stuck.has(direction);
    note.resumed.push({ direction, table: s.table, stoppedBefore });
    ctx.log.info(`DRC ${direction} had stopped on ${s.table} (no ${column} at ${d.to}); resumed`);
    if (stoppedBefore) {
      note.warnings.push(`DRC ${direction} had stopped before this run on ${s.table}: the changes it held were written in ${d.from} without a ${column} and are applied without one (an insert takes ${d.to}'s default, an update of a row ${d.to} has loses to ${d.to}'s timestamp as a conflict); the verification below compares these tables — \`ezctl repair\` makes what differs agree`);
    }
  }
  return note;
}

// ---------------------------------------------------------------------------------------------
// Verification

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

async function verify(ctx: Ctx, topo: Topology, cluster: string, conns: ZoneConn[], column: string, tables: string[], filter: (s: string, t: string) => boolean): Promise<Verification> {
  const wanted = new Set(tables);
  const only = (s: string, t: string) => filter(s, t) && wanted.has(`${s}.${t}`);
  // definitions: every zone master, and every replica once it has applied its master's binlog
  const nodes: NodeCheck[] = [];
  const warnings: string[] = [];
  const presentEverywhere = new Set(tables);
  const checkShapes = (node: ResolvedNode, shapes: Map<string, TableShape>): NodeCheck => {
    const problems: string[] = [];
    for (const t of tables) {
      const shape = shapes.get(t);
      if (!shape) {
        presentEverywhere.delete(t);
        continue;
      }
      const v = classifyColumn(shape.columns.find((c) => c.name === column));
      if (v.state === 'missing') problems.push(`${t}: ${column} missing`);
      else if (v.state === 'wrong') problems.push(`${t}: ${v.problems.map(describeProblem).join('; ')}`);
    }
    return { node: node.name, zone: node.zone, role: node.role, ok: problems.length === 0, problems };
  };
  for (const c of conns) nodes.push(checkShapes(c.node, await readShapes(c.db, only)));
  const replicas = topo.nodes(cluster).filter((n) => n.role === 'replica' && conns.some((c) => c.zone === n.zone));
  for (const r of replicas) {
    const master = conns.find((c) => c.zone === r.zone)!;
    let db: Db | undefined;
    try {
      db = await ctx.connect(r);
      const pos = (await serverInfo(master.db)).gtidBinlogPos;
      const info = await serverInfo(db);
      if (!(await waitForGtid(db, info.flavor, pos, REPLICA_WAIT_S))) {
        warnings.push(`${r.name} has not applied ${master.node.name}'s changes within ${REPLICA_WAIT_S} s: its definition is not verified`);
        continue;
      }
      nodes.push(checkShapes(r, await readShapes(db, only)));
    } catch (e) {
      warnings.push(`${r.name}: not verified: ${(e as Error).message}`);
    } finally {
      await db?.close().catch(() => undefined);
    }
  }
  for (const w of warnings) ctx.log.warn(w);
  const definitions = { ok: nodes.every((n) => n.ok), nodes, warnings };

  // values: the migrated tables compared across zones by the consistency check, every column
  // (the DRC column is what this command set; the rest shows what changed in a DRC window, e.g. an
  // update made while its zone had no column, which DRC applied as a lost conflict)
  const values: Verification['values'] = { ok: true, compared: false, runId: null, rows: 0, tables: [] };
  const comparable = [...presentEverywhere].sort();
  if (conns.length >= 2 && comparable.length) {
    const { checkFull } = await import('../dcp/index.js');
    ctx.log.info(`comparing ${comparable.length} table${comparable.length === 1 ? '' : 's'} across ${conns.map((c) => c.zone).join(', ')}`);
    const r = await checkFull(ctx, {
      cluster,
      zones: conns.map((c) => c.zone),
      tables: `/^(?:${comparable.map(escapeRe).join('|')})$/`,
    });
    const { describeRowDiff } = await import('../dcp/index.js');
    values.compared = true;
    values.runId = r.runId;
    values.rows = r.rows;
    values.ok = r.consistent;
    values.tables = r.tables.map((t) => ({ table: t.table, rows: t.rows, missing: t.missing, changed: t.changed, examples: t.diffs.slice(0, 5).map((d) => describeRowDiff(d, r.zones)) }));
  }
  return { ok: definitions.ok && values.ok, definitions, values };
}
