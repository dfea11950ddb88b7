// Walk a table by its key in ranges whose size adapts to a time target. The boundaries come
// from one server (the reference); the same ranges are then used on every zone, so each row in
// any zone falls in exactly one chunk: the first chunk is open below, the last open above.
//
// Two ways to find the next boundary:
// - "numeric": a one-column integer key is stepped through its value range (lower + step); no
//   boundary query at all, the step adapting to the density measured so far. Gaps only make a
//   chunk smaller.
// - "offset": any other key asks the reference for the key N rows on (ORDER BY key LIMIT 1
//   OFFSET N-1), the way pt-table-checksum does.
import type { Db } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { keyCompare, keyRange, orderBy, type KeyValue, type SqlPart } from './keys.js';

export interface ChunkKey {
  /** index name used to walk (PRIMARY or a unique NOT NULL index) */
  index: string;
  columns: string[];
  /** integer data type of a one-column key, when it is one */
  integer?: boolean;
}

export interface Chunk {
  index: number;
  /** exclusive; undefined = from the start */
  lower?: KeyValue;
  /** inclusive; undefined = to the end */
  upper?: KeyValue;
  last: boolean;
  /** rows the chunker expects in it (its current size) */
  plannedRows: number;
}

export interface ChunkerOptions {
  targetMs?: number;
  initialRows?: number;
  minRows?: number;
  maxRows?: number;
  /** extra filter applied when finding boundaries (the same one the caller applies to chunks) */
  where?: SqlPart;
  /** start after this key (a checkpoint) */
  after?: KeyValue;
  /** for numeric keys: the largest key in any zone, read by the caller; past it the last chunk is open */
  numericMax?: bigint | null;
  numericMin?: bigint | null;
  /**
   * for numeric keys: rows per key unit to start from (the table's row estimate over its key
   * span); without it 1, the densest a unique integer key can be, so the first step is the
   * smallest. Taken within [1/4, 1]: an estimate can be stale (a table that grew since its
   * statistics), and below 1/4 the first chunk could hold many times the rows planned; from 1/4 it
   * holds at most four times (1/2 is a key shared by two zones' auto-increment offsets).
   */
  density?: number;
}

const MIN_START_DENSITY = 0.25;

export class Chunker {
  private lower: KeyValue | undefined;
  private done = false;
  private count = 0;
  private rows: number;
  private targetMs: number;
  private readonly minRows: number;
  private readonly maxRows: number;
  // numeric strategy: rows per key unit, smoothed
  private density = 1;
  private lastStep = 0n;
  private readonly numeric: boolean;

  constructor(
    private readonly db: Db,
    readonly schema: string,
    readonly table: string,
    readonly key: ChunkKey,
    private readonly opts: ChunkerOptions = {},
  ) {
    this.targetMs = opts.targetMs ?? 500;
    this.minRows = opts.minRows ?? 100;
    this.maxRows = opts.maxRows ?? 250_000;
    this.rows = clamp(opts.initialRows ?? 2000, this.minRows, this.maxRows);
    this.lower = opts.after;
    this.numeric = key.columns.length === 1 && !!key.integer && opts.numericMax !== undefined;
    if (opts.density !== undefined && opts.density > 0) this.density = Math.min(1, Math.max(MIN_START_DENSITY, opts.density));
  }

  /** Lower bound of the next chunk: what a checkpoint saves. */
  get position(): KeyValue | undefined {
    return this.lower;
  }

  /** A new time target (a running job's `set chunk-time`). */
  setTargetMs(ms: number): void {
    this.targetMs = ms;
  }

  get chunkRows(): number {
    return this.rows;
  }

  get strategy(): 'numeric' | 'offset' {
    return this.numeric ? 'numeric' : 'offset';
  }

  async next(): Promise<Chunk | undefined> {
    if (this.done) return undefined;
    const upper = this.numeric ? this.numericUpper() : await this.offsetUpper();
    const chunk: Chunk = { index: this.count++, last: upper === undefined, plannedRows: this.rows };
    if (this.lower) chunk.lower = this.lower;
    if (upper) chunk.upper = upper;
    if (upper === undefined) this.done = true;
    else this.lower = upper;
    return chunk;
  }

  /** Feed back what a chunk took; the next chunks are sized so one takes about targetMs. */
  record(rowsSeen: number, elapsedMs: number): void {
    if (this.numeric && this.lastStep > 0n) {
      // rows found per key unit in this step, smoothed so one sparse stretch doesn't swing it
      const d = rowsSeen / Number(this.lastStep);
      this.density = this.density * 0.5 + Math.max(d, 1e-6) * 0.5;
    }
    if (rowsSeen <= 0 || elapsedMs <= 0) return;
    const ideal = (rowsSeen / Math.max(elapsedMs, 1)) * this.targetMs;
    // move at most 2x per chunk towards the ideal: a single slow chunk (a lock, a cold page)
    // must not collapse the size
    const next = clamp(ideal, this.rows / 2, this.rows * 2);
    this.rows = Math.round(clamp(next, this.minRows, this.maxRows));
  }

  private numericUpper(): KeyValue | undefined {
    const max = this.opts.numericMax;
    if (max === null || max === undefined) return undefined; // empty everywhere: one open chunk
    const start = this.lower ? BigInt(String(this.lower[0])) : (this.opts.numericMin ?? 1n) - 1n;
    let step = BigInt(Math.max(1, Math.round(this.rows / this.density)));
    if (step < 1n) step = 1n;
    const upper = start + step;
    this.lastStep = step;
    if (upper >= max) return undefined;
    // no sliver: when what is left after this step would be under a quarter of it, this chunk
    // takes the rest (open above, so also the rows written past the max since it was read)
    if (Number(max - upper) * this.density < this.rows / 4) {
      this.lastStep = max - start;
      return undefined;
    }
    return [upper];
  }

  private async offsetUpper(): Promise<KeyValue | undefined> {
    const cols = this.key.columns;
    const where: SqlPart[] = [];
    if (this.lower) where.push(keyCompare(cols, '>', this.lower));
    if (this.opts.where) where.push(this.opts.where);
    const sql =
      `SELECT ${cols.map(quoteId).join(', ')} FROM ${quoteTable(this.schema, this.table)} FORCE INDEX (${quoteId(this.key.index)})` +
      (where.length ? ` WHERE ${where.map((w) => w.sql).join(' AND ')}` : '') +
      ` ORDER BY ${orderBy(cols)} LIMIT 1 OFFSET ${Math.max(0, this.rows - 1)}`;
    const row = await this.db.one(sql, where.flatMap((w) => w.params));
    if (!row) return undefined;
    return cols.map((c) => row[c] as KeyValue[number]);
  }
}

/**
 * Where a walk whose chunks finish out of order (several at once) may resume: the end of the
 * last chunk that has every chunk before it finished. Chunks are numbered from 0 as the chunker
 * hands them out.
 */
export class ChunkFrontier {
  private readonly done = new Map<number, KeyValue | undefined>();
  private next = 0;

  constructor(private at: KeyValue | undefined) {}

  /** A chunk finished; the resume point, moved on if this closed a gap. */
  finished(chunk: Pick<Chunk, 'index' | 'upper'>): KeyValue | undefined {
    this.done.set(chunk.index, chunk.upper);
    while (this.done.has(this.next)) {
      const upper = this.done.get(this.next);
      this.done.delete(this.next++);
      if (upper) this.at = upper;
    }
    return this.at;
  }

  get position(): KeyValue | undefined {
    return this.at;
  }
}

/** The rows of a chunk, for the caller's queries. */
export function chunkRange(key: ChunkKey, chunk: Pick<Chunk, 'lower' | 'upper'>): SqlPart {
  return keyRange(key.columns, chunk.lower, chunk.upper, key.integer);
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}
