// The change feed's events, shaped from a binlog transaction (pure: no I/O). One event per
// changed row, Maxwell/Debezium-like fields, then a commit marker; key templates for Redis.
import type { BinlogTx, Row, RowChange } from '../binlog/stream.js';
import { jsonReplacer } from '../context.js';
import { badInput } from '../exit.js';
import { drcDomainFor } from '../cluster/session.js';
import type { TableMatcher } from '../config/patterns.js';

export interface FeedRowEvent {
  type: 'insert' | 'update' | 'delete';
  database: string;
  table: string;
  /** primary-key columns and values (of the new row; of the old one on delete); null when the table has none */
  key: Row | null;
  /** the row after the change (before it, on delete) */
  data: Row;
  /** on update: the old values of the columns that changed */
  old?: Row;
  gtid: string;
  /** 0-based position of this row within its transaction (GTID + index identifies an event) */
  index: number;
  /** commit time, ms since epoch (the server stamps whole seconds) */
  ts: number;
  /** the zone that wrote the row first: its own domain, or a DRC domain (source domain + offset) */
  origin: string | null;
}

export interface FeedCommitEvent {
  type: 'commit';
  gtid: string;
  /** how many row events of this transaction precede the marker */
  rows: number;
  ts: number;
  origin: string | null;
}

export type FeedEvent = FeedRowEvent | FeedCommitEvent;

/** GTID domain → zone, for MariaDB: each zone's own domain and its DRC domain (+ offset). */
export function originMap(zoneDomains: ReadonlyMap<string, number>, drcOffset: number): Map<number, string> {
  const m = new Map<number, string>();
  for (const [zone, d] of zoneDomains) {
    m.set(d, zone);
    m.set(drcDomainFor(d, drcOffset)!, zone);
  }
  return m;
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return JSON.stringify(a, (k, v) => jsonReplacer(k, v)) === JSON.stringify(b, (k, v) => jsonReplacer(k, v));
}

function pick(row: Row, cols: readonly string[]): Row {
  const out: Row = {};
  for (const c of cols) out[c] = row[c];
  return out;
}

function rowEvent(c: RowChange, tx: BinlogTx, index: number, origin: string | null): FeedRowEvent {
  const data = (c.kind === 'delete' ? c.before : c.after) ?? {};
  const ev: FeedRowEvent = {
    type: c.kind,
    database: c.schema,
    table: c.table,
    key: c.pk.length ? pick(data, c.pk) : null,
    data,
    gtid: tx.gtid,
    index,
    ts: tx.timestampMs,
    origin,
  };
  if (c.kind === 'update' && c.before) {
    const old: Row = {};
    for (const [k, v] of Object.entries(c.before)) if (!same(v, data[k])) old[k] = v;
    ev.old = old;
  }
  return ev;
}

/**
 * The events of one transaction: its rows of the tables the feed follows, in binlog order, then
 * the commit marker. A transaction with no such row gives no event (its position still advances).
 */
export function shapeTx(tx: BinlogTx, follow: TableMatcher, origins: ReadonlyMap<number, string>): FeedEvent[] {
  const origin = tx.domain === undefined ? null : origins.get(tx.domain) ?? null;
  const out: FeedEvent[] = [];
  for (const c of tx.changes) {
    if (!follow(c.schema, c.table)) continue;
    out.push(rowEvent(c, tx, out.length, origin));
  }
  if (out.length === 0) return out;
  out.push({ type: 'commit', gtid: tx.gtid, rows: out.length, ts: tx.timestampMs, origin });
  return out;
}

/** One event as a JSON line: big integers as decimal strings, bytes as hex. */
export function eventJson(ev: FeedEvent): string {
  return JSON.stringify(ev, jsonReplacer);
}

// ---- key templates: `user:{id}`, `order:{shop_id}:{id}`

export interface KeyTemplate {
  /** the columns the template names, in order */
  columns: string[];
  render(row: Row): string;
}

function scalar(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

export function compileKeyTemplate(t: string): KeyTemplate {
  const parts: Array<string | { col: string }> = [];
  const re = /\{([^{}]*)\}/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t))) {
    if (!m[1]) throw badInput(`key template ${JSON.stringify(t)} has an empty {}; name a column, e.g. user:{id}`);
    parts.push(t.slice(last, m.index), { col: m[1] });
    last = m.index + m[0].length;
  }
  parts.push(t.slice(last));
  if (/[{}]/.test(parts.filter((p) => typeof p === 'string').join(''))) throw badInput(`key template ${JSON.stringify(t)} has an unmatched brace`);
  const columns = parts.filter((p): p is { col: string } => typeof p !== 'string').map((p) => p.col);
  if (columns.length === 0) throw badInput(`key template ${JSON.stringify(t)} names no column; write it like user:{id}`);
  return {
    columns,
    render(row) {
      return parts
        .map((p) => {
          if (typeof p === 'string') return p;
          if (!(p.col in row)) throw new Error(`key template ${t}: the row has no column ${p.col}`);
          return scalar(row[p.col]);
        })
        .join('');
    },
  };
}

/** `db.table=template` (repeatable) → per-table templates. */
export function parseKeyTemplates(specs: readonly string[]): Map<string, KeyTemplate> {
  const out = new Map<string, KeyTemplate>();
  for (const s of specs) {
    const i = s.indexOf('=');
    const table = i > 0 ? s.slice(0, i).trim() : '';
    if (!/^[^.\s]+\.[^.\s]+$/.test(table)) throw badInput(`--redis-del ${JSON.stringify(s)} is not db.table=template (e.g. shop.users=user:{id})`);
    out.set(table, compileKeyTemplate(s.slice(i + 1)));
  }
  return out;
}

/**
 * The cache keys one row event invalidates: the key of the row as it is now and, when an update
 * changed a column the template names, the key it had before.
 */
export function keysToInvalidate(ev: FeedRowEvent, t: KeyTemplate): string[] {
  const keys = [t.render(ev.data)];
  if (ev.type === 'update' && ev.old && t.columns.some((c) => ev.old && c in ev.old)) {
    keys.push(t.render({ ...ev.data, ...ev.old }));
  }
  return [...new Set(keys)];
}

/**
 * Cut the queued transactions into one batch: whole transactions, as many as fit in `maxEvents`,
 * at least one (a transaction larger than a batch goes alone, whole).
 */
export function takeBatch<T extends { events: FeedEvent[] }>(queue: readonly T[], maxEvents: number): number {
  let n = 0;
  let events = 0;
  for (const tx of queue) {
    if (n > 0 && events + tx.events.length > maxEvents) break;
    events += tx.events.length;
    n++;
  }
  return n;
}
