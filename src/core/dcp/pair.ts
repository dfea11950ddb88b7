// One table compared on two servers that name it differently (a dbus move: the source's table and
// the target's, renamed, its columns mapped, a filter on the source's side), by check full's walk:
// chunk checksums over the same key ranges, a differing chunk narrowed to rows, differing rows
// re-checked after a settle (with a caller's wait before each re-check: a move's apply catching
// up), or none with settleMs 0 (writes held: a difference is real at once). Nothing is stored.
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import type { TableShape } from '../db/introspect.js';
import type { HashFunction } from '../compare/checksum.js';
import { hashFunction, type TableReport } from './check-full.js';
import { TableCheck, type TableSide } from './table-check.js';

export type { TableSide } from './table-check.js';

export interface PairSide extends TableSide {
  /** the side's name in the report (RowDiff.zones), e.g. the source's label */
  label: string;
  db: Db;
  /** the side's table as its catalog has it */
  shape: TableShape;
}

export interface ComparePairOptions {
  /** the report's name of the table */
  name: string;
  /** the reference side first: the chunk boundaries come from it, RowDiff keys and columns are in its names */
  sides: [PairSide, PairSide];
  /** crc64 where both servers have CRC32C, else md5 (as check full picks it); give it to pick once for many tables */
  hash?: HashFunction;
  /** the delay before a differing row is looked at again; 0: no re-check (writes held, the difference is real) */
  settleMs: number;
  /** re-checks before a difference is reported (default 5; none with settleMs 0) */
  rechecks?: number;
  beforeRecheck?: () => Promise<void>;
  /** differences listed (all are counted) */
  maxDiffs?: number;
  chunkTimeMs?: number;
  signal?: AbortSignal;
  onRows?: (n: number) => void;
}

/** The hash two servers both compute (check full's choice). */
export async function pairHash(sides: readonly { label: string; db: Db }[], wanted?: HashFunction): Promise<HashFunction> {
  return hashFunction(sides.map((s) => ({ zone: s.label, db: s.db })), wanted);
}

/**
 * Compare one table on two servers; a report as check full's (status 'incomplete' when the signal
 * stopped it), and `rechecked`: the rows that differed when first seen and were looked at again.
 */
export async function compareTablePair(ctx: Ctx, o: ComparePairOptions): Promise<TableReport & { rechecked: number }> {
  const [a, b] = o.sides;
  if (a.label === b.label) throw new Error(`the two sides of a compare need different labels (both ${a.label})`);
  const conns = o.sides.map((s) => ({ zone: s.label, db: s.db }));
  const hash = o.hash ?? (await pairHash(o.sides));
  const signal = o.signal ?? new AbortController().signal;
  let rechecked = 0;
  const check = new TableCheck(ctx, {
    name: o.name,
    zones: [a.label, b.label],
    conns,
    shapes: [a.shape, b.shape],
    sides: o.sides.map((s) => ({ schema: s.schema, table: s.table, columns: s.columns, key: s.key, ...(s.where ? { where: s.where } : {}), ...(s.whereParams ? { whereParams: s.whereParams } : {}), ...(s.keyShift ? { keyShift: s.keyShift } : {}), ...(s.whereNarrowsKey ? { whereNarrowsKey: true } : {}) })),
    beforeRecheck: o.settleMs > 0 ? o.beforeRecheck : undefined,
    onRecheck: (n) => (rechecked += n),
    mode: 'checksum',
    hash,
    tsColumn: '',
    chunkTimeMs: o.chunkTimeMs ?? 500,
    settleDelayMs: o.settleMs,
    rechecks: o.settleMs === 0 ? 0 : o.rechecks ?? 5,
    keylessMaxRows: 0,
    maxDiffs: o.maxDiffs ?? 1000,
    stopRequested: () => signal.aborted,
    stopSignal: signal,
    onRows: o.onRows ?? (() => undefined),
  });
  const report = (await check.walkOnly()) ?? (await check.settleOn(conns));
  return { ...report, rechecked };
}
