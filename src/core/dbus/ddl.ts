// What the stream does when a source logs DDL on a table of the move. A moved table (one source):
// stop that source's stream, naming the table and the statement (C1's default). A merge of shard
// tables (C2): hold the source's stream before the statement until every shard table of the
// target has logged the same change, then make it once on the target and let the streams go on;
// a different change on another shard stops them all, naming both statements (as TiDB DM's
// pessimistic shard DDL). A held stream reads on (its transactions kept, unapplied), so a later
// shard table of the same source is seen too (peekSourceDdl).
import type { TableRef } from '../apply/mapping.js';
import { quoteTable } from '../db/quote.js';
import type { DbusMove, DbusTable } from './spec.js';

export interface SourceDdl {
  /** the default schema the statement ran in */
  schema: string;
  /** the tables of the move it names (source tables) */
  tables: TableRef[];
  /** its GTID on the source */
  gtid: string;
  /**
   * For 'hold': the runner parks this source's stream before the statement (its checkpoint stays
   * before it) until the hook calls resume() (the statement was applied to the target once: the
   * stream goes on past it) or stop(why) (the stream stops with that message).
   */
  resume(): void;
  stop(why: string): void;
  /** make a statement on the target, then bring the target's mappings to its new shape (optional, added by C2) */
  apply?: (sql: string, target: TableRef) => Promise<void>;
}

export type DdlDecision = 'stop' | 'hold';

const name = (t: TableRef) => `${t.schema}.${t.table}`;

interface Pending {
  change: string;
  query: string;
  ev?: SourceDdl;
}

interface Coordinator {
  table: DbusTable;
  /** per shard ("label:db.t"): the change it logged that waits for the others */
  pending: Map<string, Pending>;
  /** per shard: changes made on the target whose statement that shard's stream has still to pass (seen ahead while held) */
  done: Map<string, string[]>;
  applying: boolean;
}

const coordinators = new Map<string, Coordinator>();

/** The merge a source table belongs to (several source tables, or a merge rule), if any. */
function mergeOf(move: DbusMove, source: string, t: TableRef): DbusTable | undefined {
  return move.tables.find((x) => (x.sources.length > 1 || x.merge) && x.sources.some((s) => s.source === source && name(s.table) === name(t)));
}

/**
 * An ALTER TABLE of one table, as the change it makes (the statement after the table's name,
 * whitespace collapsed), or undefined for any other statement.
 */
export function alterChange(query: string): string | undefined {
  const id = '(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)';
  const m = new RegExp(`^\\s*(?:/\\*.*?\\*/\\s*)*ALTER\\s+(?:(?:ONLINE|IGNORE)\\s+)*TABLE\\s+(?:IF\\s+EXISTS\\s+)?${id}(?:\\s*\\.\\s*${id})?\\s+([\\s\\S]+)$`, 'i').exec(query);
  if (!m) return undefined;
  return m[1]!.replace(/\s+/g, ' ').replace(/;\s*$/, '').trim();
}

const key = (move: DbusMove, t: DbusTable) => `${move.name}\0${name(t.target)}`;

function coordinator(move: DbusMove, t: DbusTable): Coordinator {
  let c = coordinators.get(key(move, t));
  if (!c) coordinators.set(key(move, t), (c = { table: t, pending: new Map(), done: new Map(), applying: false }));
  return c;
}

/** The DDL hook of the stream (C1's runner calls it): 'stop', or 'hold' with a later ev.resume()/ev.stop(). */
export function onSourceDdl(move: DbusMove, source: string, query: string, ev?: SourceDdl): DdlDecision {
  if (!ev || !ev.tables.length) return 'stop';
  const merges = [...new Set(ev.tables.map((t) => mergeOf(move, source, t)))];
  if (merges.some((m) => !m)) return 'stop';
  const t = merges[0]!;
  const change = alterChange(query);
  if (merges.length > 1 || ev.tables.length > 1 || change === undefined) {
    ev.stop(`a merged shard table changed by a statement other than an ALTER TABLE of that one table: the merge cannot make it once on the target ${name(t.target)}`);
    return 'hold';
  }
  const shard = `${source}:${name(ev.tables[0]!)}`;
  const c = coordinator(move, t);
  const ahead = c.done.get(shard);
  if (ahead?.length) {
    // this shard's change was seen ahead (its stream held at another shard's) and is on the target
    const made = ahead.shift()!;
    if (made === change) ev.resume();
    else ev.stop(`it differs from the change made on the target for it (ALTER TABLE ... ${made}), which every shard logged`);
    return 'hold';
  }
  const p = c.pending.get(shard);
  if (p && p.change === change && !p.ev) p.ev = ev;
  else if (p) {
    ev.stop(`shard ${shard} already waits with another change (${p.query}): one change at a time is merged`);
    return 'hold';
  } else c.pending.set(shard, { change, query, ev });
  settle(move, c);
  return 'hold';
}

/** A statement a held stream read ahead (a later shard table of the same source may log the change there). */
export function peekSourceDdl(move: DbusMove, source: string, query: string, tables: TableRef[]): void {
  if (tables.length !== 1) return;
  const t = mergeOf(move, source, tables[0]!);
  const change = alterChange(query);
  if (!t || change === undefined) return;
  const c = coordinator(move, t);
  const shard = `${source}:${name(tables[0]!)}`;
  if (c.pending.has(shard) || c.done.get(shard)?.length) return; // its second change: met when its stream gets there
  c.pending.set(shard, { change, query });
  settle(move, c);
}

/** Every shard has the same change: make it once on the target, let the streams go; two changes: stop them all. */
function settle(move: DbusMove, c: Coordinator): void {
  if (c.applying) return;
  const all = [...c.pending.entries()];
  const first = all[0];
  if (!first) return;
  const other = all.find(([, p]) => p.change !== first[1].change);
  const shards = c.table.sources.map((s) => `${s.source}:${name(s.table)}`);
  if (other) {
    const why = `the shards of ${name(c.table.target)} logged different changes: ${first[0]}: ${JSON.stringify(first[1].query)}; ${other[0]}: ${JSON.stringify(other[1].query)}: a merge makes one change on the target, once every shard has it; make the same change on every shard (or end the move)`;
    for (const [, p] of all) p.ev?.stop(why);
    c.pending.clear();
    return;
  }
  if (!shards.every((s) => c.pending.has(s))) return;
  const apply = all.map(([, p]) => p.ev?.apply).find((f) => f);
  const sql = `ALTER TABLE ${quoteTable(c.table.target.schema, c.table.target.table)} ${first[1].change}`;
  if (!apply) {
    for (const [, p] of all) p.ev?.stop(`the runner cannot make the change on the target (${sql})`);
    c.pending.clear();
    return;
  }
  c.applying = true;
  void apply(sql, c.table.target).then(
    () => {
      for (const [shard, p] of all) {
        if (p.ev) p.ev.resume();
        else c.done.set(shard, [...(c.done.get(shard) ?? []), p.change]);
      }
    },
    (e: Error) => {
      for (const [, p] of all) p.ev?.stop(`every shard logged the change, but making it on the target failed (${sql}): ${e.message}`);
    },
  ).finally(() => {
    for (const [shard] of all) c.pending.delete(shard);
    c.applying = false;
    settle(move, c);
  });
}

/** Forget a move's coordination (its run ended). */
export function forgetDdl(moveName: string): void {
  for (const k of [...coordinators.keys()]) if (k.startsWith(`${moveName}\0`)) coordinators.delete(k);
}
