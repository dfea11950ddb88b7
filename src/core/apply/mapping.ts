// Which source table's binlog changes go to which target table, column by column: one to one (osc's
// ghost, a table moved to another server) or many to one (shard tables t_0..t_3 into one t).
import type { Row } from '../binlog/stream.js';
import { toParam } from '../binlog/values.js';
import type { KeyValue } from '../chunk/keys.js';
import type { Param } from '../db/connect.js';

export interface TableRef {
  schema: string;
  table: string;
}

export interface TableMapping {
  source: TableRef;
  target: TableRef;
  /** source column -> target column; columns not listed are not carried */
  columns: Array<{ from: string; to: string }>;
  /**
   * The source columns that make the target's key (a PRIMARY or UNIQUE NOT NULL key of the target,
   * through `columns`). When several sources map to one target, their rows' keys must be unique
   * across all of them (an id that says its shard, or ids handed out apart): two sources' rows
   * with one key would be one target row.
   */
  key: string[];
  /** counted as changes are queued and applied (osc's zone progress) */
  counters?: { eventsApplied: number; backlog: number } | undefined;
  /**
   * Merge rules (a shard table into one target): source column -> a constant written for every
   * row of this source table, whatever (or whether) the row holds (the shard column the source
   * rows lack). The column is listed in `columns` like any other; it need not exist on the source.
   */
  constants?: Record<string, string | number> | undefined;
  /** source column -> an integer added to its value in the target (shard ids handed out apart) */
  offsets?: Record<string, number> | undefined;
  /**
   * The target key values this source's rows own (a shard merged with an offset: from its offset up
   * to the next shard's): a target row there came from this source. `column` is the target's.
   */
  ownedKeys?: { column: string; from: bigint | null; below: bigint | null } | undefined;
  /** a row filter, an SQL condition on the source's columns: rows outside it are not carried */
  where?: string | undefined;
  /** the values of `where`'s placeholders (a routed mapping's; the copy takes no such filter) */
  whereParams?: Param[] | undefined;
  /**
   * Several mappings of one source table route its rows (a merged table streamed back to its
   * shard tables): each takes the row images inside its `where`. A row image matching `orphanWhere`
   * (on the source's columns, placeholders in `params`) is placed by no mapping of the whole
   * routing (not only this stream's): the apply stops, naming it, rather than drop it.
   */
  orphanWhere?: { sql: string; params: Param[]; why: string } | undefined;
  /**
   * The target's UNIQUE keys other than `key` (target column lists) that rows of other sources
   * may collide on (a merge): a write that would overwrite another source's row is recorded,
   * never done (see apply/collisions.ts).
   */
  uniqueKeys?: string[][] | undefined;
}

export const tableId = (t: TableRef): string => `${t.schema}\0${t.table}`;
const show = (t: TableRef): string => `${t.schema}.${t.table}`;

/** Why a set of mappings cannot be applied; empty when it can. */
export function mappingProblems(mappings: readonly TableMapping[]): string[] {
  const out: string[] = [];
  const sources = new Set<string>();
  const keyOfTarget = new Map<string, string>();
  for (const m of mappings) {
    const what = `${show(m.source)} -> ${show(m.target)}`;
    const routed = mappings.filter((x) => tableId(x.source) === tableId(m.source));
    // a table routed by row filters (each mapping takes its own rows) may go to several targets
    if (sources.has(tableId(m.source)) && !routed.every((x) => x.where !== undefined)) out.push(`${what}: ${show(m.source)} is mapped twice; a source table goes to one target (or to several, each mapping with its own row filter)`);
    sources.add(tableId(m.source));
    if (!m.columns.length) out.push(`${what}: no columns are mapped`);
    const to = m.columns.map((c) => c.to);
    const twice = to.filter((c, i) => to.indexOf(c) !== i);
    if (twice.length) out.push(`${what}: target column ${[...new Set(twice)].join(', ')} is mapped from more than one source column`);
    if (!m.key.length) {
      out.push(`${what}: the mapping names no key (the source columns that make the target's key); without one a change cannot be applied as the final state of one row`);
      continue;
    }
    const missing = m.key.filter((k) => !m.columns.some((c) => c.from === k));
    if (missing.length) {
      out.push(`${what}: key column ${missing.join(', ')} is not mapped to a target column`);
      continue;
    }
    const targetKey = m.key.map((k) => m.columns.find((c) => c.from === k)!.to).join(', ');
    const seen = keyOfTarget.get(tableId(m.target));
    if (seen === undefined) keyOfTarget.set(tableId(m.target), targetKey);
    else if (seen !== targetKey) out.push(`${what}: the tables mapped into ${show(m.target)} name different keys (${seen} / ${targetKey}); rows of several sources meet in one target by one key`);
  }
  return out;
}

/** The target key columns of a (valid) mapping. */
export function targetKey(m: TableMapping): string[] {
  return m.key.map((k) => m.columns.find((c) => c.from === k)!.to);
}

/** The source columns a mapping reads from the source table (its constants are not read). */
export function readColumns(m: Pick<TableMapping, 'columns' | 'constants'>): Array<{ from: string; to: string }> {
  return m.columns.filter((c) => m.constants?.[c.from] === undefined);
}

/**
 * The value a source column carries into the target: the mapping's constant for it, or the row's
 * value plus its offset (exact integer arithmetic: BIGINT values are text), or the value as it is.
 */
export function sourceValue(m: Pick<TableMapping, 'constants' | 'offsets'>, row: Row, from: string): unknown {
  const k = m.constants?.[from];
  if (k !== undefined) return k;
  const v = row[from];
  const off = m.offsets?.[from];
  if (off === undefined || off === 0 || v === null || v === undefined) return v;
  return (BigInt(String(v)) + BigInt(off)).toString();
}

/** A row's key values (the target's key), read from a source row by the mapping's key and rules. */
export function keyOfRow(m: TableMapping, row: Row): KeyValue {
  return m.key.map((k) => toParam(sourceValue(m, row, k)));
}

/** Whether a target row (target column names) is this mapping's own: its shard constants, or its key in the owned range. */
export function ownsTargetRow(m: Pick<TableMapping, 'columns' | 'constants' | 'ownedKeys'>, row: Record<string, unknown>): boolean {
  const constants = Object.entries(m.constants ?? {}).map(([from, v]) => [m.columns.find((c) => c.from === from)?.to ?? from, String(v)] as const);
  if (constants.length) return constants.every(([to, v]) => String(row[to]) === v);
  const o = m.ownedKeys;
  if (!o) return false;
  const v = row[o.column];
  if (v === null || v === undefined || !/^-?\d+$/.test(String(v))) return false;
  const k = BigInt(String(v));
  return (o.from === null || k >= o.from) && (o.below === null || k < o.below);
}

/** A source row as the target row: target column -> value, by the mapping's columns and rules. */
export function targetRow(m: TableMapping, row: Row): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of m.columns) out[c.to] = sourceValue(m, row, c.from);
  return out;
}
