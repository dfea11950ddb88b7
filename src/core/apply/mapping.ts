// Which source table's binlog changes go to which target table, column by column: one to one (osc's
// ghost, a table moved to another server) or many to one (shard tables t_0..t_3 into one t).
import type { Row } from '../binlog/stream.js';
import { toParam } from '../binlog/values.js';
import type { KeyValue } from '../chunk/keys.js';

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
    if (sources.has(tableId(m.source))) out.push(`${what}: ${show(m.source)} is mapped twice; a source table goes to one target`);
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

/** A row's key values, read from a source row by the mapping's key. */
export function keyOfRow(m: TableMapping, row: Row): KeyValue {
  return m.key.map((k) => toParam(row[k]));
}
