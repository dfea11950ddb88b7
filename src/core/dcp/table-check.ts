// The check of one table across zones: structure first (the data compare uses the columns every
// zone has alike), then the key range walked in chunks whose bounds come from the reference zone;
// each chunk's count and checksum computed by every zone in parallel; a chunk that differs is
// narrowed (buckets of an integer key, else bisection) to rows; differing rows are re-checked
// after DRC has had time to carry what was in flight. A table without a row key is compared as a
// multiset of rows when small enough.
import type { Ctx } from '../context.js';
import type { Db, Param } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { badInput } from '../exit.js';
import { Chunker, type Chunk, type ChunkKey } from '../chunk/chunker.js';
import { keyRange, keyText, type KeyValue, type SqlPart } from '../chunk/keys.js';
import { commonRowKey, type TableShape } from '../db/introspect.js';
import { compareShapes, commonColumns, describeDiff } from '../db/shape-compare.js';
import {
  bucketChecksumSql, bucketKeys, chunkChecksumSql, multisetSql, rowHashesSql, rowHashesByKeySql, rowValuesSql, rowsByHashSql, splitKeySql, shiftKeys,
  type CompareColumn, type HashFunction, type TableTarget,
} from '../compare/checksum.js';
import type { Throttler } from '../throttle/throttler.js';
import { storeDiffs, storeTable } from './runs.js';
import { chunkConns } from './pipeline.js';
import type { CheckMode, RowDiff, TableReport, ZoneState } from './check-full.js';

const LEAF_ROWS = 2000;
/**
 * rows per bucket aimed at when an integer-keyed chunk is narrowed (well under LEAF_ROWS: the
 * chunker's density estimate can be off by 2x); at most MAX_BUCKETS per scan
 */
const BUCKET_ROWS = 500;
const MAX_BUCKETS = 1024;
const RECHECK_BATCH = 500;

/** A connection to one zone's master. */
export interface ZoneConn {
  zone: string;
  db: Db;
}

/**
 * One zone's table when the zones do not name it alike (a dbus move: a renamed table, mapped
 * columns, a filter on one side): its name, the compared columns in one order across the zones
 * (this zone's names), its key columns in key order (this zone's names), and its filter.
 */
export interface TableSide {
  schema: string;
  table: string;
  columns: string[];
  key: string[];
  /** an SQL condition on this zone's columns (the rows of the table that take part) */
  where?: string;
  /** the values of `where`'s placeholders */
  whereParams?: Param[];
  /** the key is unique only within `where` (a merged shard's rows in the target): lookups by key keep it */
  whereNarrowsKey?: boolean;
  /** one integer key column holding the reference side's key plus this (a shard merged with an offset) */
  keyShift?: bigint;
}

export interface TableJob {
  name: string;
  zones: string[];
  /** the walk's connections, one per zone in zone order */
  conns: ZoneConn[];
  /**
   * per zone, a second walk connection (a far zone) or none: every other chunk is computed on
   * it, so the zone has the next chunk in hand while the previous one's answer travels (pipeline.ts)
   */
  ahead?: (ZoneConn | undefined)[] | undefined;
  /**
   * an integer key's smallest and largest value in each zone (zone order), read moments before
   * (check-full.ts reads those of the first tables together); used when read on this column, else
   * the walk reads them itself
   */
  keyBounds?: KeyBounds | undefined;
  shapes: (TableShape | undefined)[];
  mode: CheckMode;
  hash: HashFunction;
  tsColumn: string;
  where?: string | undefined;
  /**
   * Per zone, the table as that zone names it (then `where`, `ignore` and the structure compare do
   * not apply: the caller mapped the columns); shapes[i] is zone i's table. Default: one name and
   * the columns alike by name in every zone.
   */
  sides?: TableSide[] | undefined;
  /** before each re-check of differing rows, after the settle delay (a dbus verify waits there for the apply to catch up) */
  beforeRecheck?: (() => Promise<void>) | undefined;
  /** told how many rows differed when first seen, before they are looked at again */
  onRecheck?: ((rows: number) => void) | undefined;
  ignore?: string[] | undefined;
  /** the ignore list names this table (not every table): its columns must exist */
  ignoreNamed?: boolean;
  chunkTimeMs: number;
  settleDelayMs: number;
  rechecks: number;
  keylessMaxRows: number;
  maxDiffs: number;
  throttler?: Throttler | undefined;
  stopRequested: () => boolean;
  stopSignal: AbortSignal;
  /** where the run's figures and differences are stored; none: nothing is written (a verify with writes blocked) */
  state?: Db | undefined;
  runId?: string | undefined;
  resumeAfter?: KeyValue | undefined;
  resumed?: { rows: number; chunks: number; diffs: RowDiff[] } | undefined;
  onRows: (n: number) => void;
  /** the run's walk speed so far, shared by its tables: a table's first chunk is sized from it */
  rate?: WalkRate | undefined;
}

/**
 * How fast a run's walks have gone (rows per ms of the slowest zone, over the chunks seen), so a
 * table started later sizes its first chunk to the chunk time at once instead of growing from a
 * small probe: a table that fits in one chunk is then read by one query without a key range,
 * which the server does not re-check row by row.
 */
export class WalkRate {
  private rows = 0;
  private ms = 0;

  record(rows: number, ms: number): void {
    // chunks of a few ms say more about round trips than about speed
    if (ms < 20 || rows <= 0) return;
    this.rows += rows;
    this.ms += ms;
  }

  /** rows a chunk of targetMs would hold at this speed, or undefined before any chunk was measured */
  rowsFor(targetMs: number): number | undefined {
    return this.ms > 0 ? Math.floor((this.rows / this.ms) * targetMs) : undefined;
  }
}

/** An integer key column's MIN and MAX in each zone (zone order), as text; null when the table is empty there. */
export interface KeyBounds {
  column: string;
  perZone: { lo: string | null; hi: string | null }[];
}

/** A chunk being computed on every zone. */
interface InFlight {
  chunk: Chunk;
  result: Promise<{ n: number; sums?: { cnt: number; crc: string }[]; buckets?: Buckets }>;
  /** the longest time any zone spent on it, not counting its wait behind the chunk before */
  busyMs: () => number;
}

type Tracker = <T>(zone: number, p: Promise<T>) => Promise<T>;
const untracked: Tracker = (_zone, p) => p;

/** A range's per-stretch sums (key DIV step), per zone, and the range's totals per zone. */
interface Buckets {
  lower: KeyValue | undefined;
  upper: KeyValue | undefined;
  lo: bigint;
  hi: bigint;
  step: bigint;
  byBucket: Map<string, { cnt: number; crc: string }[]>;
  sums: { cnt: number; crc: string }[];
}

interface Seen {
  key: KeyValue;
  /** per zone: row hash and DRC timestamp, or undefined when absent */
  zones: ({ h: string; ts: string | null } | undefined)[];
}

export class TableCheck {
  private readonly report: TableReport;
  /** per zone, the SQL's view of the table (one name for every zone unless job.sides) */
  private targets!: TableTarget[];
  private key!: ChunkKey;
  private candidates = new Map<string, KeyValue>();
  /** what the walk saw of each differing row (per zone hash and timestamp), to tell whether it changes */
  private firstSeen = new Map<string, string>();
  private hasTs = false;
  /** a one-column integer key's smallest and largest value in any zone, read before the walk */
  private keySpan: { min: bigint; max: bigint } | undefined;
  /** per zone: when the last chunk issued ended there (filled in as it ends; for chunk timing) */
  private lastEnds: number[] | undefined;
  /** chunks of this table that differed so far */
  private differingChunks = 0;
  /** when the last differing row was found: its re-check waits the settle delay from then */
  private lastFoundAt = 0;
  private readonly started = Date.now();
  /** differences stored by an earlier part of a resumed run (not stored again) */
  private priorDiffs = 0;
  /** where a stopped walk ended, saved once its differences are stored */
  private stopAt: KeyValue | undefined;

  constructor(
    private readonly ctx: Ctx,
    private readonly job: TableJob,
  ) {
    this.report = { table: job.name, status: 'done', rows: 0, chunks: 0, missing: 0, changed: 0, diffs: [], ms: 0 };
  }

  /**
   * The walk alone: a report when the table is already finished (skipped, keyless), else
   * undefined and settle() is due. The caller can let the walk's connections go meanwhile.
   */
  async walkOnly(): Promise<TableReport | undefined> {
    const j = this.job;
    if (j.resumed) {
      this.report.rows = j.resumed.rows;
      this.report.chunks = j.resumed.chunks;
      this.priorDiffs = j.resumed.diffs.length;
      for (const d of j.resumed.diffs) {
        this.report.diffs.push(d);
        if (d.kind === 'missing') this.report.missing++;
        else this.report.changed++;
      }
    }
    // the table's row in the run, written on the state connection while this table's own
    // connections start on it (that connection runs its statements in order: later checkpoints
    // land after it)
    const registered = j.resumed ? undefined : this.saveTable('running');
    registered?.catch(() => undefined); // awaited below; not unhandled if the walk fails first
    const prepared = await this.prepare();
    if (!prepared) await this.walk();
    await registered;
    return prepared;
  }

  /** After walkOnly: re-check what differed, on these connections (one per zone, in zone order), and finish. */
  async settleOn(conns: ZoneConn[]): Promise<TableReport> {
    this.job.conns = conns;
    await this.settle();
    return this.finish(this.report.status);
  }

  /** The incremental check: just these keys, compared and re-checked like a chunk's differing rows. */
  async checkKeys(keys: KeyValue[]): Promise<TableReport> {
    const prepared = await this.prepare(true);
    if (prepared) return prepared;
    for (const k of keys) this.candidates.set(keyText(k), k);
    this.lastFoundAt = Date.now();
    this.report.rows = keys.length;
    this.report.chunks = Math.ceil(keys.length / RECHECK_BATCH);
    this.job.onRows(keys.length);
    await this.settle();
    return this.finish('done');
  }

  /** Structure, columns and key; a report when the table cannot be walked (skipped, or keyless and done). */
  private async prepare(keysOnly = false): Promise<TableReport | undefined> {
    const j = this.job;
    const absent = j.zones.filter((_, i) => !j.shapes[i]);
    if (absent.length) {
      const present = j.zones.filter((_, i) => j.shapes[i]);
      this.report.missingIn = absent;
      this.report.presentIn = present;
      return this.skip(`table missing in ${absent.join(', ')} (exists in ${present.join(', ')})`, []);
    }
    const shapes = j.shapes as TableShape[];
    if (j.sides) return this.prepareSides(shapes, j.sides);
    const structure = shapes.slice(1).flatMap((s, i) => compareShapes(shapes[0]!, s).map((d) => `${j.zones[i + 1]}: ${describeDiff(d, j.zones[0])}`));
    if (structure.length) this.report.structure = structure;
    const common = commonColumns(shapes, j.zones);
    const ignored = new Set(j.ignore ?? []);
    if (j.ignoreNamed) for (const c of ignored) if (!shapes[0]!.columns.some((x) => x.name === c)) throw badInput(`--ignore-columns: ${j.name} has no column ${c}`);
    const excluded = [...common.excluded, ...[...ignored].map((column) => ({ column, why: 'ignored (--ignore-columns)' }))];
    if (excluded.length) this.report.columnsExcluded = excluded;

    const identity = commonRowKey(shapes);
    const keyCols = identity?.columns ?? [];
    const compared = common.columns.filter((c) => !ignored.has(c) || keyCols.includes(c));
    if (compared.length === 0) return this.skip('no column is alike in every zone', structure);
    const ref = shapes[0]!;
    const columns: CompareColumn[] = compared.map((name) => {
      const cs = shapes.map((s) => s.columns.find((c) => c.name === name)!);
      const c0 = cs[0]!;
      return { name, dataType: c0.dataType, nullable: cs.some((c) => c.nullable), convertCharset: new Set(cs.map((c) => c.charset ?? '')).size > 1 };
    });
    this.hasTs = compared.includes(j.tsColumn);
    const target: TableTarget = { schema: ref.schema, table: ref.table, index: identity?.index ?? null, keyColumns: keyCols, columns, hash: j.hash };
    if (j.where) target.where = j.where;
    this.targets = j.zones.map(() => target);

    if (!identity) return keysOnly ? this.skip('no primary or unique NOT NULL key to look rows up by', structure) : this.keyless(structure);
    if (!keyCols.every((k) => compared.includes(k))) return this.skip(`its key (${keyCols.join(', ')}) is not alike in every zone`, structure);
    const kc = ref.columns.find((c) => c.name === keyCols[0]);
    this.key = { index: identity.index, columns: keyCols, integer: keyCols.length === 1 && !!kc && /int$/.test(kc.dataType) };

    return undefined;
  }

  /** Per-zone names (job.sides): the columns and the key as the caller mapped them, no structure compare. */
  private async prepareSides(shapes: TableShape[], sides: TableSide[]): Promise<TableReport | undefined> {
    const j = this.job;
    const width = sides[0]!.columns.length;
    const problems: string[] = [];
    sides.forEach((sd, zi) => {
      if (sd.columns.length !== width || sd.key.length !== sides[0]!.key.length) problems.push(`${j.zones[zi]}: ${sd.columns.length} columns and ${sd.key.length} key columns, where ${j.zones[0]} has ${width} and ${sides[0]!.key.length}`);
      for (const c of [...sd.columns, ...sd.key]) if (!shapes[zi]!.columns.some((x) => x.name === c)) problems.push(`${j.zones[zi]}: ${sd.schema}.${sd.table} has no column ${c}`);
    });
    if (problems.length) return this.skip(`the columns compared are not there: ${problems.join('; ')}`, []);
    if (!sides[0]!.key.length) return this.skip('no primary or unique NOT NULL key to look rows up by', []);
    const cols = (zi: number) => sides[zi]!.columns.map((n) => shapes[zi]!.columns.find((c) => c.name === n)!);
    const all = sides.map((_, zi) => cols(zi));
    this.targets = sides.map((sd, zi) => {
      const index = shapes[zi]!.indexes.find((ix) => ix.unique && ix.parts.length === sd.key.length && ix.parts.every((p, i) => p.column === sd.key[i] && p.subPart === null));
      const columns: CompareColumn[] = all[zi]!.map((c, ci) => ({
        name: c.name,
        dataType: all[0]![ci]!.dataType,
        // one NULL bitmap and one character set for every zone: the hashed strings must match
        nullable: all.some((z) => z[ci]!.nullable),
        convertCharset: new Set(all.map((z) => z[ci]!.charset ?? '')).size > 1,
        ...(sd.keyShift && c.name === sd.key[0] ? { shift: sd.keyShift } : {}),
      }));
      const t: TableTarget = { schema: sd.schema, table: sd.table, index: index?.name ?? null, keyColumns: sd.key, columns, hash: j.hash };
      if (sd.where) t.where = sd.where;
      if (sd.whereParams) t.whereParams = sd.whereParams;
      if (sd.whereNarrowsKey) t.whereNarrowsKey = true;
      if (sd.keyShift) t.keyShift = sd.keyShift;
      return t;
    });
    this.hasTs = false;
    const kc = shapes[0]!.columns.find((c) => c.name === sides[0]!.key[0]);
    this.key = { index: this.targets[0]!.index ?? 'PRIMARY', columns: sides[0]!.key, integer: sides[0]!.key.length === 1 && !!kc && /int$/.test(kc.dataType) };
    if (sides.some((sd) => sd.keyShift) && !this.key.integer) return this.skip('a shifted key (a merge offset) needs a one-column integer key', []);
    return undefined;
  }

  /** Zone zi's key range (lower, upper], in its own key column names. */
  private range(zi: number, lower: KeyValue | undefined, upper: KeyValue | undefined): SqlPart {
    const t = this.targets[zi]!;
    const shift = (k: KeyValue | undefined) => (k && t.keyShift ? shiftKeys(t, [k])[0] : k);
    return keyRange(t.keyColumns, shift(lower), shift(upper), this.key.integer);
  }

  private async walk(): Promise<void> {
    const j = this.job;
    const opts: ConstructorParameters<typeof Chunker>[4] = { targetMs: j.chunkTimeMs };
    const ref = this.targets[0]!;
    if (ref.where) opts.where = { sql: `(${ref.where}\n)`, params: ref.whereParams ?? [] };
    if (j.resumeAfter) opts.after = j.resumeAfter;
    if (this.key.integer) {
      const kb = j.keyBounds;
      // read while the lease was taken (check full), when every side names the key column alike
      const known = kb && kb.perZone.length === j.conns.length && this.targets.every((t) => t.keyColumns[0] === kb.column) ? kb.perZone : undefined;
      const bounds = known ?? (await Promise.all(
        j.conns.map((c, zi) => {
          const t = this.targets[zi]!;
          const col = quoteId(t.keyColumns[0]!);
          // within the side's own rows (a merged shard's part of the target), in the reference's values
          const w = t.where ? ` WHERE (${t.where}\n)` : '';
          const sql = `SELECT CAST(MIN(${col}) AS CHAR) AS lo, CAST(MAX(${col}) AS CHAR) AS hi FROM ${quoteTable(t.schema, t.table)}${w}`;
          return c.db.one<{ lo: string | null; hi: string | null }>(sql, t.where ? t.whereParams ?? [] : []).then((b) => {
            if (!b || !t.keyShift) return b;
            const back = (v: string | null) => (v === null ? null : String(BigInt(v) - t.keyShift!));
            return { lo: back(b.lo), hi: back(b.hi) };
          });
        }),
      ));
      const los = bounds.map((b) => b?.lo).filter((x): x is string => x !== null && x !== undefined).map(BigInt);
      const his = bounds.map((b) => b?.hi).filter((x): x is string => x !== null && x !== undefined).map(BigInt);
      opts.numericMax = his.length ? his.reduce((a, b) => (b > a ? b : a)) : null;
      opts.numericMin = los.length ? los.reduce((a, b) => (b < a ? b : a)) : null;
      if (opts.numericMin !== null && opts.numericMax !== null) {
        this.keySpan = { min: opts.numericMin, max: opts.numericMax };
        // the estimate over the span: steps sized to rows from the first chunk (a unique key has at most one row per unit)
        const est = Math.max(0, ...j.shapes.map((sh) => sh?.rowsEstimate ?? 0));
        if (est > 0) opts.density = est / (Number(opts.numericMax - opts.numericMin) + 1);
      }
      if (j.resumeAfter) opts.after = [BigInt(String(j.resumeAfter[0]))];
    }
    const first = j.rate?.rowsFor(j.chunkTimeMs);
    if (first !== undefined) opts.initialRows = first;
    const chunker = new Chunker(j.conns[0]!.db, ref.schema, ref.table, this.key, opts);
    let lastSave = Date.now();
    // One chunk is computed ahead: each zone's server starts the next chunk as soon as it has
    // finished this one, instead of waiting for the slowest zone (a near zone's connection runs
    // its queries in order, so queueing the next chunk is enough; a far zone takes every other
    // chunk on its second connection, so the next one is not sent only after this one answered).
    let ahead: InFlight | undefined;
    const finish = async (f: InFlight) => {
      const { sums, buckets, n } = await f.result;
      const busyMs = f.busyMs();
      chunker.record(n, busyMs);
      j.rate?.record(n, busyMs);
      if (sums && !sameSums(sums)) {
        this.differingChunks++;
        if (buckets) await this.narrowFrom(buckets);
        else await this.narrow(f.chunk.lower, f.chunk.upper, sums);
      }
      this.report.rows += n;
      this.report.chunks++;
      j.onRows(n);
      // the checkpoint is the end of the last chunk finished, not of the one still in flight;
      // and never past a difference not yet re-checked and stored: a run that dies (a server
      // lost) resumes from before it, instead of past a difference it never reported
      if (Date.now() - lastSave > 2000 && f.chunk.upper && this.candidates.size === 0) {
        lastSave = Date.now();
        await this.saveTable('running', f.chunk.upper);
      }
    };
    try {
      for (;;) {
        if (j.stopRequested()) {
          if (ahead) await finish(ahead);
          ahead = undefined;
          this.report.status = 'incomplete';
          // with differences pending, the position is saved once they are stored (finish)
          if (this.candidates.size === 0) await this.saveTable('running', chunker.position);
          else this.stopAt = chunker.position;
          return;
        }
        try {
          await j.throttler?.gate(j.stopSignal);
        } catch (e) {
          if (!j.stopSignal.aborted) throw e;
          continue; // stopping: the check at the top of the loop saves the checkpoint
        }
        const chunk = await chunker.next();
        if (!chunk) break;
        const current = this.issue(chunk);
        const previous = ahead;
        ahead = current;
        if (previous) await finish(previous);
      }
      if (ahead) await finish(ahead);
      ahead = undefined;
    } finally {
      // a failure with a chunk in flight: let it settle before the connections are reused
      await ahead?.result.catch(() => undefined);
    }
  }

  /** Start computing a chunk on every zone; busyMs() is the longest any zone spent on it. */
  private issue(chunk: Chunk): InFlight {
    const j = this.job;
    const issuedAt = Date.now();
    const conns = chunkConns(j.conns, j.ahead, chunk.index);
    // a zone starts on this chunk when it is done with the one before (filled in as they end)
    const before = this.lastEnds;
    const ends: number[] = [];
    this.lastEnds = ends;
    const track = <T>(zi: number, p: Promise<T>) =>
      p.then((v) => {
        ends[zi] = Date.now();
        return v;
      });
    // Once a chunk of this table has differed, more are likely to: sums per key stretch cost
    // ~15% more than one sum per chunk, where narrowing a differing chunk reads it all again.
    const bucketed = j.mode !== 'rows' && this.keySpan !== undefined && this.differingChunks > 0;
    const result = (async () => {
      if (j.mode === 'rows') {
        const n = await this.compareRows(chunk.lower, chunk.upper, track, conns);
        return { n };
      }
      if (bucketed) {
        const buckets = await this.bucketSums(chunk.lower, chunk.upper, chunk.plannedRows, track, conns);
        return { sums: buckets.sums, buckets, n: Math.max(...buckets.sums.map((s) => s.cnt)) };
      }
      const sums = await this.checksums(chunk.lower, chunk.upper, track, conns);
      return { sums, n: Math.max(...sums.map((s) => s.cnt)) };
    })();
    result.catch(() => undefined); // awaited by the walk; not unhandled meanwhile
    return { chunk, result, busyMs: () => Math.max(1, ...ends.map((e, zi) => e - Math.max(issuedAt, before?.[zi] ?? 0))) };
  }

  private async checksums(lower: KeyValue | undefined, upper: KeyValue | undefined, track: Tracker = untracked, conns = this.job.conns): Promise<{ cnt: number; crc: string }[]> {
    return Promise.all(
      conns.map(async (c, zi) => {
        const q = chunkChecksumSql(this.targets[zi]!, this.range(zi, lower, upper), this.job.mode === 'count');
        const r = await track(zi, c.db.one<{ cnt: number | string; crc?: string | number | null }>(q.sql, q.params));
        return { cnt: Number(r?.cnt ?? 0), crc: String(r?.crc ?? '') };
      }),
    );
  }

  /** Narrow a differing range until it is small, then compare it row by row. */
  private async narrow(lower: KeyValue | undefined, upper: KeyValue | undefined, sums: { cnt: number; crc: string }[]): Promise<void> {
    const n = Math.max(...sums.map((s) => s.cnt));
    if (n > LEAF_ROWS && this.keySpan) return this.narrowByBuckets(lower, upper, n);
    return this.bisect(lower, upper, sums);
  }

  /**
   * An integer key: one query per zone gives the count and checksum of up to MAX_BUCKETS
   * stretches of the key; only the stretches that differ are compared row by row (or split the
   * same way again when they are still large).
   */
  private async narrowByBuckets(lower: KeyValue | undefined, upper: KeyValue | undefined, rows: number): Promise<void> {
    await this.narrowFrom(await this.bucketSums(lower, upper, rows));
  }

  /** Count and checksum per stretch of an integer key range (lower, upper], about `rows` rows in all. */
  private async bucketSums(lower: KeyValue | undefined, upper: KeyValue | undefined, rows: number, track: Tracker = untracked, conns = this.job.conns): Promise<Buckets> {
    const lo = lower ? BigInt(String(lower[0])) : this.keySpan!.min - 1n;
    const hi = upper ? BigInt(String(upper[0])) : this.keySpan!.max;
    const buckets = BigInt(Math.max(2, Math.min(MAX_BUCKETS, Math.ceil(rows / BUCKET_ROWS))));
    const span = hi > lo ? hi - lo : 1n;
    const step = span / buckets + 1n;
    const perZone = await Promise.all(
      conns.map((c, zi) => {
        const q = bucketChecksumSql(this.targets[zi]!, this.range(zi, lower, upper), step, this.job.mode === 'count');
        return track(zi, c.db.query<{ b: string; cnt: number | string; crc?: string | number | null }>(q.sql, q.params));
      }),
    );
    const byBucket = new Map<string, { cnt: number; crc: string }[]>();
    const totals = perZone.map(() => ({ cnt: 0, crc: 0n }));
    perZone.forEach((rs, zi) => {
      for (const r of rs) {
        const list = byBucket.get(r.b) ?? perZone.map(() => ({ cnt: 0, crc: '' }));
        list[zi] = { cnt: Number(r.cnt), crc: String(r.crc ?? '') };
        byBucket.set(r.b, list);
        totals[zi]!.cnt += Number(r.cnt);
        if (r.crc !== undefined && r.crc !== null) totals[zi]!.crc ^= BigInt(r.crc);
      }
    });
    return { lower, upper, lo, hi, step, byBucket, sums: totals.map((t) => ({ cnt: t.cnt, crc: this.job.mode === 'count' ? '' : String(t.crc) })) };
  }

  private async narrowFrom(b: Buckets): Promise<void> {
    const { lower, upper, lo, hi, step } = b;
    const differing = [...b.byBucket].filter(([, s]) => !sameSums(s)).map(([k, s]) => ({ b: BigInt(k), n: Math.max(...s.map((x) => x.cnt)) })).sort((x, y) => (x.b < y.b ? -1 : x.b > y.b ? 1 : 0));
    for (const d of differing) {
      const [first, last] = bucketKeys(d.b, step);
      // the bucket within the range: (max(lo, first - 1), min(hi, last)], the top left open when the range is
      const bLower: KeyValue | undefined = lower || first - 1n > lo ? [first - 1n > lo ? first - 1n : lo] : undefined;
      const bUpper: KeyValue | undefined = upper || last < hi ? [last < hi ? last : hi] : undefined;
      if (d.n <= LEAF_ROWS || step === 1n) await this.compareRows(bLower, bUpper);
      else await this.narrowByBuckets(bLower, bUpper, d.n);
    }
  }

  /** Any other key: bisect by row offset until the range is small, then compare it row by row. */
  private async bisect(lower: KeyValue | undefined, upper: KeyValue | undefined, sums: { cnt: number; crc: string }[]): Promise<void> {
    const n = Math.max(...sums.map((s) => s.cnt));
    if (n <= LEAF_ROWS) {
      await this.compareRows(lower, upper);
      return;
    }
    const fullest = sums.findIndex((s) => s.cnt === n);
    const q = splitKeySql(this.targets[fullest]!, this.range(fullest, lower, upper), Math.floor(n / 2) - 1);
    const row = await this.job.conns[fullest]!.db.one(q.sql, q.params);
    if (!row) {
      await this.compareRows(lower, upper);
      return;
    }
    const mid = this.targets[fullest]!.keyColumns.map((c) => row[c] as Param);
    for (const [lo, hi] of [[lower, mid], [mid, upper]] as const) {
      const s = await this.checksums(lo, hi);
      if (!sameSums(s)) await this.bisect(lo, hi, s);
    }
  }

  /** Fetch each row's key and hash from every zone and note the keys that differ; returns the most rows any zone had. */
  private async compareRows(lower: KeyValue | undefined, upper: KeyValue | undefined, track: Tracker = untracked, conns = this.job.conns): Promise<number> {
    const perZone = await Promise.all(
      conns.map((c, zi) => {
        const q = rowHashesSql(this.targets[zi]!, this.range(zi, lower, upper), this.hasTs ? this.job.tsColumn : undefined, this.job.mode === 'count');
        return track(zi, c.db.query(q.sql, q.params));
      }),
    );
    const seen = this.collect(perZone);
    for (const [id, s] of seen) {
      if (!differs(s)) continue;
      this.candidates.set(id, s.key);
      this.firstSeen.set(id, JSON.stringify(s.zones));
      this.lastFoundAt = Date.now();
    }
    return Math.max(...perZone.map((r) => r.length));
  }

  private collect(perZone: Record<string, unknown>[][]): Map<string, Seen> {
    const seen = new Map<string, Seen>();
    const zn = this.job.conns.length;
    perZone.forEach((rows, zi) => {
      const keyColumns = this.targets[zi]!.keyColumns;
      for (const r of rows) {
        const key = keyColumns.map((c) => r[c] as Param);
        const id = keyText(key);
        let s = seen.get(id);
        if (!s) {
          s = { key, zones: new Array(zn).fill(undefined) };
          seen.set(id, s);
        }
        s.zones[zi] = { h: String(r.h ?? ''), ts: r.ts === undefined || r.ts === null ? null : String(r.ts) };
      }
    });
    return seen;
  }

  /**
   * Re-check the differing keys after the settle delay, with backoff, while they are recent or
   * still changing; report what persists. A row DRC was still carrying converges meanwhile.
   */
  private async settle(): Promise<void> {
    if (this.candidates.size === 0) return;
    this.job.onRecheck?.(this.candidates.size);
    const j = this.job;
    let pending = new Map(this.candidates);
    // the walk's view is the first observation: a row unchanged since then, with no recent
    // timestamp, is settled at the first re-check (the incremental check has no such view and
    // always looks twice)
    const previous = new Map(this.firstSeen);
    const confirmed = new Map<string, Seen>();
    // the first look once the settle delay has passed since the last difference was found (a
    // long walk has often waited it already), the next one a delay later, then backing off
    let wait = Math.max(0, this.lastFoundAt + j.settleDelayMs - Date.now());
    for (let attempt = 0; attempt <= j.rechecks && pending.size; attempt++) {
      await sleep(wait);
      wait = Math.min(j.settleDelayMs * 2 ** attempt, 30_000);
      await j.beforeRecheck?.();
      const nowMs = await serverNowMs(j.conns[0]!.db);
      const current = await this.fetchByKeys([...pending.values()]);
      const next = new Map<string, KeyValue>();
      for (const [id, key] of pending) {
        const s = current.get(id) ?? { key, zones: new Array(j.conns.length).fill(undefined) };
        if (!differs(s)) continue;
        const fingerprint = JSON.stringify(s.zones);
        const recent = s.zones.some((z) => z?.ts && nowMs - tsMs(z.ts) < j.settleDelayMs);
        const seenBefore = previous.has(id);
        const moving = seenBefore && previous.get(id) !== fingerprint;
        previous.set(id, fingerprint);
        if ((recent || moving || !seenBefore) && attempt < j.rechecks) next.set(id, key);
        else confirmed.set(id, { ...s, ...(recent || moving ? { unstable: true } : {}) } as Seen);
      }
      pending = next;
    }
    await this.classify([...confirmed.values()]);
  }

  private async fetchByKeys(keys: KeyValue[]): Promise<Map<string, Seen>> {
    const out = new Map<string, Seen>();
    for (let i = 0; i < keys.length; i += RECHECK_BATCH) {
      const batch = keys.slice(i, i + RECHECK_BATCH);
      const perZone = await Promise.all(
        this.job.conns.map((c, zi) => {
          const q = rowHashesByKeySql(this.targets[zi]!, batch, this.hasTs ? this.job.tsColumn : undefined);
          return c.db.query(q.sql, q.params);
        }),
      );
      for (const [id, s] of this.collect(perZone)) {
        // count mode compares presence only
        if (this.job.mode === 'count') s.zones = s.zones.map((z) => (z ? { ...z, h: '' } : z));
        out.set(id, s);
      }
    }
    return out;
  }

  /** Missing where some zone lacks the row; changed (with the columns) where all have it. */
  private async classify(rows: (Seen & { unstable?: boolean })[]): Promise<void> {
    const j = this.job;
    const changed = rows.filter((s) => s.zones.every(Boolean));
    const values = new Map<string, Record<string, unknown>[]>();
    for (let i = 0; i < changed.length && i < j.maxDiffs; i += RECHECK_BATCH) {
      const batch = changed.slice(i, Math.min(i + RECHECK_BATCH, j.maxDiffs)).map((s) => s.key);
      const perZone = await Promise.all(
        j.conns.map((c, zi) => {
          const q = rowValuesSql(this.targets[zi]!, batch);
          return c.db.query(q.sql, q.params);
        }),
      );
      perZone.forEach((rs, zi) => {
        for (const r of rs) {
          const id = keyText(this.targets[zi]!.keyColumns.map((c) => r[c] as Param));
          const list = values.get(id) ?? new Array(j.conns.length).fill(undefined);
          list[zi] = r;
          values.set(id, list);
        }
      });
    }
    for (const s of rows) {
      const kind: RowDiff['kind'] = s.zones.every(Boolean) ? 'changed' : 'missing';
      if (kind === 'missing') this.report.missing++;
      else this.report.changed++;
      if (this.report.diffs.length >= j.maxDiffs) continue;
      const diff: RowDiff = { kind, key: Object.fromEntries(this.key.columns.map((c, i) => [c, s.key[i]])), zones: {}, columns: [] };
      const vals = values.get(keyText(s.key));
      if (kind === 'changed' && vals) {
        this.targets[0]!.columns.forEach((c, ci) => {
          const vs = vals.map((r) => r?.[`c${ci}`]);
          if (!allEqual(vs)) diff.columns.push(c.name);
        });
      }
      j.zones.forEach((z, zi) => {
        const zs = s.zones[zi];
        const st: ZoneState = { present: !!zs };
        if (zs && this.hasTs) st.drcTs = zs.ts;
        if (zs && vals && diff.columns.length) {
          st.values = Object.fromEntries(diff.columns.map((col) => [col, vals[zi]?.[`c${this.targets[0]!.columns.findIndex((c) => c.name === col)}`]]));
        }
        diff.zones[z] = st;
      });
      if (s.unstable) diff.unstable = true;
      this.report.diffs.push(diff);
    }
  }

  /** A table without a usable key: compared as a multiset of whole rows when small enough. */
  private async keyless(structure: string[]): Promise<TableReport> {
    const j = this.job;
    this.report.keyless = true;
    const target = this.targets[0]!; // a keyless table is compared under one name (sides need a key)
    const counts = await Promise.all(j.conns.map((c) => c.db.value<number | string>(`SELECT COUNT(*) FROM ${quoteTable(target.schema, target.table)}${target.where ? ` WHERE (${target.where}\n)` : ''}`, target.where ? target.whereParams ?? [] : [])));
    const n = Math.max(...counts.map(Number));
    if (n > j.keylessMaxRows) return this.skip(`no primary or unique NOT NULL key, and ${n} rows is more than --keyless-max-rows ${j.keylessMaxRows}`, structure);
    const pass = async () => {
      const q = multisetSql(target);
      const perZone = await Promise.all(j.conns.map((c) => c.db.query<{ h: string; n: number | string }>(q.sql, q.params)));
      const byHash = new Map<string, number[]>();
      perZone.forEach((rows, zi) => {
        for (const r of rows) {
          const list = byHash.get(String(r.h)) ?? new Array(j.conns.length).fill(0);
          list[zi] = Number(r.n);
          byHash.set(String(r.h), list);
        }
      });
      return new Map([...byHash].filter(([, c]) => !allEqual(c)));
    };
    let diff = await pass();
    for (let attempt = 0; attempt < j.rechecks && diff.size; attempt++) {
      await sleep(j.settleDelayMs * 2 ** attempt);
      const again = await pass();
      const stable = new Map([...again].filter(([h, c]) => diff.get(h) && JSON.stringify(diff.get(h)) === JSON.stringify(c)));
      if (stable.size === again.size) {
        diff = again;
        break;
      }
      diff = again;
    }
    this.report.rows = n;
    this.report.chunks = 1;
    j.onRows(n);
    for (const [h, c] of diff) {
      this.report.missing++;
      if (this.report.diffs.length >= j.maxDiffs) continue;
      const fullest = c.indexOf(Math.max(...c));
      const q = rowsByHashSql(target, h, 1);
      const row = (await j.conns[fullest]!.db.one(q.sql, q.params)) ?? {};
      this.report.diffs.push({ kind: 'missing', key: row, zones: Object.fromEntries(j.zones.map((z, zi) => [z, { present: c[zi]! > 0, count: c[zi]! }])), columns: [] });
    }
    return this.finish('done');
  }

  private async skip(reason: string, structure: string[]): Promise<TableReport> {
    this.report.status = 'skipped';
    this.report.reason = reason;
    if (structure.length) this.report.structure = structure;
    return this.finish('skipped');
  }

  private async finish(status: TableReport['status']): Promise<TableReport> {
    this.report.status = status;
    this.report.ms = Date.now() - this.started;
    await this.saveDiffs();
    await this.saveTable(status === 'incomplete' ? 'running' : status, status === 'incomplete' ? this.stopAt : undefined);
    return this.report;
  }

  private async saveTable(status: string, lastKey?: KeyValue): Promise<void> {
    if (!this.job.state || !this.job.runId) return;
    await storeTable(this.job.state, this.job.runId, this.report, status, lastKey, Date.now() - this.started);
  }

  private async saveDiffs(): Promise<void> {
    if (!this.job.state || !this.job.runId) return;
    await storeDiffs(this.job.state, this.job.runId, this.job.name, this.report.diffs.slice(this.priorDiffs));
  }
}

function sameSums(s: { cnt: number; crc: string }[]): boolean {
  return s.every((x) => x.cnt === s[0]!.cnt && x.crc === s[0]!.crc);
}

function differs(s: Seen): boolean {
  const first = s.zones[0];
  return s.zones.some((z) => (z === undefined) !== (first === undefined) || (z && first && z.h !== first.h));
}

function allEqual(vs: unknown[]): boolean {
  const norm = vs.map((v) => (Buffer.isBuffer(v) ? 'b:' + v.toString('hex') : v === null || v === undefined ? 'null' : 's:' + String(v)));
  return norm.every((x) => x === norm[0]);
}

function tsMs(ts: string): number {
  return Date.parse(ts.replace(' ', 'T') + 'Z');
}

async function serverNowMs(db: Db): Promise<number> {
  const v = await db.value<string>('SELECT CAST(NOW(3) AS CHAR)');
  return v ? tsMs(String(v)) : Date.now();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
