// SQL for ranges of a (possibly composite) key in key order. Row-constructor comparisons like
// (a,b) > (?,?) are written out as a > ? OR (a = ? AND b > ?): every server turns that form into
// an index range, where some optimizers scan for the constructor form.
import type { Param } from '../db/connect.js';
import { quoteId } from '../db/quote.js';

export type KeyValue = Param[];

export interface SqlPart {
  sql: string;
  params: Param[];
}

/** Key strictly after `values` (op '>') or at/before it (op '<='), in lexicographic key order. */
export function keyCompare(columns: readonly string[], op: '>' | '>=' | '<' | '<=', values: KeyValue): SqlPart {
  if (columns.length === 0) throw new Error('a key needs at least one column');
  if (values.length !== columns.length) throw new Error(`key has ${columns.length} columns, got ${values.length} values`);
  const strict = op === '>' || op === '<' ? op : op === '>=' ? '>' : '<';
  const inclusiveLast = op === '>=' || op === '<=';
  const ors: string[] = [];
  const params: Param[] = [];
  for (let i = 0; i < columns.length; i++) {
    const ands: string[] = [];
    for (let j = 0; j < i; j++) {
      ands.push(`${quoteId(columns[j]!)} = ?`);
      params.push(values[j]!);
    }
    const last = i === columns.length - 1;
    ands.push(`${quoteId(columns[i]!)} ${last && inclusiveLast ? op : strict} ?`);
    params.push(values[i]!);
    ors.push(ands.length === 1 ? ands[0]! : `(${ands.join(' AND ')})`);
  }
  return { sql: ors.length === 1 ? ors[0]! : `(${ors.join(' OR ')})`, params };
}

/** Exactly this key. */
export function keyEquals(columns: readonly string[], values: KeyValue): SqlPart {
  return { sql: `(${columns.map((c) => `${quoteId(c)} = ?`).join(' AND ')})`, params: [...values] };
}

/** Any of these keys: (a = ? AND b = ?) OR ..., or a plain IN list for a one-column key. */
export function keyIn(columns: readonly string[], keys: readonly KeyValue[]): SqlPart {
  if (keys.length === 0) return { sql: '0', params: [] };
  if (columns.length === 1) return { sql: `${quoteId(columns[0]!)} IN (${keys.map(() => '?').join(', ')})`, params: keys.map((k) => k[0]!) };
  const parts = keys.map((k) => keyEquals(columns, k));
  return { sql: `(${parts.map((p) => p.sql).join(' OR ')})`, params: parts.flatMap((p) => p.params) };
}

/** The integer after a key value (a number, bigint or digits), or undefined when it is not an integer. */
function integerAfter(v: Param | undefined): bigint | undefined {
  if (typeof v === 'bigint') return v + 1n;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) + 1n : undefined;
  if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) return BigInt(v) + 1n;
  return undefined;
}

/**
 * The rows of a chunk: key > lower (exclusive) and key <= upper (inclusive); a missing bound is
 * open, so the first and last chunks also hold rows that sort before or after every boundary.
 * A one-column integer key (`integer`) with both bounds is written `k BETWEEN lower + 1 AND
 * upper`: the same rows, one range predicate for the server to evaluate per row instead of two
 * (a checksum query of 1M rows 2-3 % faster, measured on MariaDB 10.11).
 */
export function keyRange(columns: readonly string[], lower: KeyValue | undefined, upper: KeyValue | undefined, integer = false): SqlPart {
  if (integer && columns.length === 1 && lower && upper) {
    const after = integerAfter(lower[0]);
    if (after !== undefined) return { sql: `${quoteId(columns[0]!)} BETWEEN ? AND ?`, params: [after, upper[0]!] };
  }
  const parts: SqlPart[] = [];
  if (lower) parts.push(keyCompare(columns, '>', lower));
  if (upper) parts.push(keyCompare(columns, '<=', upper));
  if (parts.length === 0) return { sql: '1', params: [] };
  return { sql: parts.map((p) => p.sql).join(' AND '), params: parts.flatMap((p) => p.params) };
}

export function orderBy(columns: readonly string[], desc = false): string {
  return columns.map((c) => quoteId(c) + (desc ? ' DESC' : '')).join(', ');
}

/** Lexicographic comparison of two key values as the server returned them (for merging sorted streams). */
export function compareKeys(a: KeyValue, b: KeyValue, collate: (x: Param, y: Param, i: number) => number = compareValue): number {
  for (let i = 0; i < a.length; i++) {
    const c = collate(a[i]!, b[i]!, i);
    if (c !== 0) return c;
  }
  return 0;
}

/** Numbers (including big integers returned as strings) numerically, buffers bytewise, else as strings. */
export function compareValue(x: Param, y: Param): number {
  if (x === y) return 0;
  if (x === null) return -1;
  if (y === null) return 1;
  if (Buffer.isBuffer(x) && Buffer.isBuffer(y)) return Buffer.compare(x, y);
  const nx = numeric(x);
  const ny = numeric(y);
  if (nx !== undefined && ny !== undefined) return nx < ny ? -1 : nx > ny ? 1 : 0;
  const sx = String(x);
  const sy = String(y);
  return sx < sy ? -1 : sx > sy ? 1 : 0;
}

function numeric(v: Param): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d{1,40}$/.test(v)) return BigInt(v);
  return undefined;
}

/**
 * A stable text form of a key, for maps: the same key read by different drivers (a number from
 * one, a digit string or a bigint from another) gives the same text.
 */
export function keyText(values: KeyValue): string {
  return JSON.stringify(values.map((v) => (Buffer.isBuffer(v) ? { hex: v.toString('hex') } : typeof v === 'bigint' || typeof v === 'number' ? String(v) : v)));
}

/** A key value list as JSON that comes back exactly (buffers tagged as hex), for checkpoints. */
export function encodeKey(values: KeyValue): string {
  return JSON.stringify(values.map((v) => (Buffer.isBuffer(v) ? { $hex: v.toString('hex') } : typeof v === 'bigint' ? { $int: v.toString() } : v instanceof Date ? v.toISOString() : v)));
}

export function decodeKey(text: string): KeyValue {
  const raw = JSON.parse(text) as unknown[];
  if (!Array.isArray(raw)) throw new Error('a stored key is not a list');
  return raw.map((v) => {
    if (v && typeof v === 'object' && '$hex' in v) return Buffer.from(String((v as { $hex: string }).$hex), 'hex');
    if (v && typeof v === 'object' && '$int' in v) return BigInt(String((v as { $int: string }).$int));
    return v as Param;
  });
}
