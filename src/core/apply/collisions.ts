// Rows of several source tables meet in one target table (a merge of shards): the target's key
// keeps them apart (the shard column, or an offset), but another UNIQUE key of the target (an
// email) may still hold the same value in two shards. Written as is, the second row would replace
// the first (REPLACE) or be dropped (INSERT ... ON DUPLICATE KEY UPDATE): here such a row is found
// before the write, left out and handed back with the row it collides with, so the caller records
// both (and the operator decides). The read locks what it finds (FOR UPDATE), so two writers of
// different sources cannot both miss each other's row: the second waits for the first's commit.
import type { Db, Param } from '../db/connect.js';
import type { Row } from '../binlog/stream.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { keyText } from '../chunk/keys.js';
import { toParam } from '../binlog/values.js';
import { ownsTargetRow, targetKey, targetRow, type TableMapping } from './mapping.js';

export interface Collision {
  mapping: TableMapping;
  /** the target's unique key the two rows share a value of */
  uniqueKey: string[];
  /** the row being written, as read from its source (source column names) */
  sourceRow: Row;
  /** the row the target holds (target column names): another source's */
  existing: Record<string, unknown>;
}

const IN_LIST = 200;

/**
 * The rows that can be written, and the collisions of the others (the target's rows locked FOR
 * UPDATE: call within the write's transaction). A target row of the SAME source (its shard
 * constants are this mapping's, or its key is in the range an offset gives this source) is no collision: the source's own UNIQUE key holds at each commit,
 * so the target's row is an older state the binlog changes after it will rewrite. The apply writes
 * over it ('write': that row is in the same batch); the copy, which read a newer state of the
 * source than the target has applied, leaves its row out ('skip'): the binlog brings it.
 */
export async function splitCollisions(db: Db, m: TableMapping, rows: readonly Row[], sameSource: 'write' | 'skip' = 'write'): Promise<{ write: Row[]; collisions: Collision[] }> {
  if (!m.uniqueKeys?.length || !rows.length) return { write: [...rows], collisions: [] };
  const mine = (f: Record<string, unknown>) => ownsTargetRow(m, f);
  const skip = new Set<number>();
  const tkey = targetKey(m);
  const t = quoteTable(m.target.schema, m.target.table);
  const mapped = rows.map((r) => ({ src: r, row: targetRow(m, r) }));
  const ownKey = (r: Record<string, unknown>) => keyText(tkey.map((k) => toParam(r[k])) as never);
  // the rows written together: a target row among them is rewritten by this write (a UNIQUE value
  // moving between two rows of one source in one batch), no collision
  const rewritten = sameSource === 'write' ? new Set(mapped.map((x) => ownKey(x.row))) : new Set<string>();
  const bad = new Map<number, Collision>();
  for (const u of m.uniqueKeys) {
    const candidates = mapped.map((x, i) => ({ ...x, i })).filter((x) => !bad.has(x.i) && u.every((c) => x.row[c] !== null && x.row[c] !== undefined));
    for (let at = 0; at < candidates.length; at += IN_LIST) {
      const part = candidates.slice(at, at + IN_LIST);
      const one = `(${u.map(() => '?').join(', ')})`;
      const found = await db.query<Record<string, unknown>>(
        `SELECT * FROM ${t} WHERE (${u.map(quoteId).join(', ')}) IN (${part.map(() => one).join(', ')}) FOR UPDATE`,
        part.flatMap((x) => u.map((c) => toParam(x.row[c]) as Param)),
      );
      if (!found.length) continue;
      const byValue = new Map(found.map((f) => [valueText(u, f), f]));
      for (const x of part) {
        const f = byValue.get(valueText(u, x.row));
        if (!f || ownKey(f) === ownKey(x.row) || rewritten.has(ownKey(f))) continue;
        if (!mine(f)) bad.set(x.i, { mapping: m, uniqueKey: u, sourceRow: x.src, existing: f });
        else if (sameSource === 'skip') skip.add(x.i);
      }
    }
  }
  return { write: mapped.filter((_, i) => !bad.has(i) && !skip.has(i)).map((x) => x.src), collisions: [...bad.values()] };
}

/** A unique key's values as text, compared the way the server does for the usual collations (case-insensitive, trailing spaces ignored). */
function valueText(u: string[], r: Record<string, unknown>): string {
  return JSON.stringify(u.map((c) => {
    const v = r[c];
    if (Buffer.isBuffer(v)) return v.toString('hex');
    if (typeof v === 'string') return v.toLowerCase().replace(/ +$/, '');
    return String(v);
  }));
}
