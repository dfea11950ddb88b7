// What a move does, before it does anything: the table mappings (source table -> target table,
// column by column, by one key), the target DDL to create, row estimates, and the refusals. The
// runner copies and applies only through these mappings.
import type { Ctx } from '../context.js';
import { mappingProblems, type TableMapping, type TableRef } from '../apply/mapping.js';
import { readShapes, rowKey, showCreateTable, type TableShape } from '../db/introspect.js';
import { compareShapes, describeDiff } from '../db/shape-compare.js';
import { serverInfo, type ServerInfo } from '../db/server.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { describeAddress } from '../config/dsn.js';
import type { Db } from '../db/connect.js';
import type { DbusMove, DbusTable } from './spec.js';
import { deferrableIndexes, leaveOutIndexesSql, type DeferredIndex } from '../copy/indexes.js';

/** The catalogs a plan is built from: each source's shapes by label, and the target's, keyed "db.table". */
export interface MoveShapes {
  sources: Map<string /* source label */, Map<string /* "db.table" */, TableShape>>;
  target: Map<string /* "db.table" */, TableShape>;
}

/** One apply/copy mapping of a move: a TableMapping plus the source it reads (its label). */
export interface DbusMapping extends TableMapping {
  /** the label of the source whose table this maps */
  label: string;
  /** columns written from a constant that the source table itself does not have (a merge's shard column) */
  absentAtSource?: string[];
}

const nameOf = (t: TableRef) => `${t.schema}.${t.table}`;

/**
 * The apply/copy mappings of a move (contract C1 -> C2): C1 writes the 1:1 case (a moved or
 * renamed table: every source column to the same-named target column, keyed by the source's row
 * key); C2 extends it for `merge` and `where`. `problems` are plan refusals (exit 4).
 * `shapes.target` holds the target tables that exist; a missing one is mapped from the source's
 * shape (it will be created like it).
 */
export function tableMappings(move: DbusMove, shapes: MoveShapes, ranges?: KeyRanges, o: { resuming?: boolean } = {}): { mappings: DbusMapping[]; problems: string[]; held: string[] } {
  const mappings: DbusMapping[] = [];
  const problems: string[] = [];
  const held: string[] = [];
  for (const t of move.tables) {
    const at = t.declaredAt ? ` (${t.declaredAt})` : '';
    if (t.sources.length > 1 || t.merge) {
      const r = mergeMappings(t, shapes, at, !!o.resuming);
      mappings.push(...r.mappings);
      problems.push(...r.problems);
      held.push(...r.held);
      continue;
    }
    const s = t.sources[0]!;
    const shape = shapes.sources.get(s.source)?.get(nameOf(s.table));
    if (!shape) {
      problems.push(`${s.source}:${nameOf(s.table)}${at}: not found on the source`);
      continue;
    }
    const key = rowKey(shape);
    if (!key) {
      problems.push(`${s.source}:${nameOf(s.table)}${at}: no PRIMARY KEY or UNIQUE key of NOT NULL columns: a change read from the binlog could not be applied to exactly one target row (add a primary key first)`);
      continue;
    }
    const target = shapes.target.get(nameOf(t.target));
    const columns = shape.columns.filter((c) => !c.generated).map((c) => ({ from: c.name, to: c.name }));
    if (target) {
      const have = new Set(target.columns.filter((c) => !c.generated).map((c) => c.name));
      const missing = columns.filter((c) => !have.has(c.to)).map((c) => c.to);
      if (missing.length) problems.push(`${nameOf(t.target)}${at}: the target table has no column ${missing.join(', ')}`);
    }
    const m: DbusMapping = { label: s.source, source: s.table, target: t.target, columns, key: key.columns };
    if (t.where !== undefined) m.where = t.where;
    mappings.push(m);
  }
  problems.push(...mappingProblems(mappings));
  if (!problems.length) problems.push(...mergeProblems(move, shapes, mappings, ranges));
  return { mappings, problems, held };
}

/** A merge rule's entry for a source table: "label:db.t", else "db.t", else "t". */
export function ruleValue<T>(map: Record<string, T> | undefined, s: { source: string; table: TableRef }): T | undefined {
  if (!map) return undefined;
  return map[`${s.source}:${nameOf(s.table)}`] ?? map[nameOf(s.table)] ?? map[s.table.table];
}

/**
 * Several source tables (or one with a merge rule) into one target: each source's columns by
 * name, the target's key (the target's own when it exists, else the first source's, which it is
 * created from), the shard column's constant or the key's offset per source table, the target's
 * other UNIQUE keys watched for collisions between sources.
 */
function mergeMappings(t: DbusTable, shapes: MoveShapes, at: string, resuming: boolean): { mappings: DbusMapping[]; problems: string[]; held: string[] } {
  const problems: string[] = [];
  const held: string[] = [];
  const mappings: DbusMapping[] = [];
  const first = t.sources[0]!;
  const tshape = shapes.target.get(nameOf(t.target)) ?? shapes.sources.get(first.source)?.get(nameOf(first.table));
  if (!tshape) return { mappings, problems: [`${first.source}:${nameOf(first.table)}${at}: not found on the source`], held };
  const exists = shapes.target.has(nameOf(t.target));
  const tcols = new Set(tshape.columns.filter((c) => !c.generated).map((c) => c.name));
  const rule = t.merge;
  if (rule && !tcols.has(rule.column)) {
    problems.push(exists
      ? `${nameOf(t.target)}${at}: the merge rule's column ${rule.column} is not a column of the target table`
      : `${nameOf(t.target)}${at}: the target table does not exist and ${first.source}:${nameOf(first.table)} (its model) has no column ${rule.column}: create ${nameOf(t.target)} first, with ${rule.column} in its primary key (PRIMARY KEY (${rule.column}, ...))`);
    return { mappings, problems, held };
  }
  const tkey = rowKey(tshape);
  if (!tkey) return { mappings, held, problems: [`${nameOf(t.target)}${at}: no PRIMARY KEY or UNIQUE key of NOT NULL columns on the target (or its model): merged rows could not be told apart`] };
  const uniqueKeys = t.sources.length > 1
    ? tshape.indexes.filter((ix) => ix.unique && ix.parts.length && ix.parts.map((p) => p.column).join('\0') !== tkey.columns.join('\0')).map((ix) => ix.parts.map((p) => p.column))
    : [];
  for (const s of t.sources) {
    const who = `${s.source}:${nameOf(s.table)}`;
    const shape = shapes.sources.get(s.source)?.get(nameOf(s.table));
    if (!shape) {
      problems.push(`${who}${at}: not found on the source`);
      continue;
    }
    const scols = shape.columns.filter((c) => !c.generated).map((c) => c.name);
    const missing = scols.filter((c) => !tcols.has(c));
    // resumed after a stop while a shard's ALTER was held (kill -9 mid-hold): its stream starts
    // before the statement and meets it again, so the merge still makes the change once; rows
    // logged before it do not carry the new column
    if (missing.length && resuming && exists) held.push(`${who}${at}: has column ${missing.join(', ')}, which the target table ${nameOf(t.target)} has not yet: a change to be made once every shard has logged it (held again as its stream meets it)`);
    else if (missing.length) problems.push(`${who}${at}: the target table ${nameOf(t.target)} has no column ${missing.join(', ')}`);
    const m: DbusMapping = { label: s.source, source: s.table, target: t.target, columns: scols.filter((c) => tcols.has(c)).map((c) => ({ from: c, to: c })), key: [...tkey.columns] };
    if (rule?.kind === 'shard-column') {
      const v = ruleValue(rule.values, s);
      if (v !== undefined) {
        if (!m.columns.some((c) => c.from === rule.column)) m.columns.push({ from: rule.column, to: rule.column });
        m.constants = { [rule.column]: v };
        if (!scols.includes(rule.column)) m.absentAtSource = [rule.column];
      } else if (!scols.includes(rule.column)) {
        problems.push(`${who}${at}: has no column ${rule.column} and the merge rule gives it no value (merge.values: { "${who}": ... })`);
      }
    } else if (rule?.kind === 'offset') {
      const off = ruleValue(rule.offsets, s);
      if (off === undefined) problems.push(`${who}${at}: the offset rule gives it no offset (merge.offsets: { "${who}": ... })`);
      else if (!scols.includes(rule.column)) problems.push(`${who}${at}: has no column ${rule.column} (the offset rule's)`);
      else m.offsets = { [rule.column]: off };
    }
    const unmapped = tkey.columns.filter((k) => !m.columns.some((c) => c.to === k));
    if (unmapped.length) problems.push(`${who}${at}: the target key (${tkey.columns.join(', ')}) has column ${unmapped.join(', ')}, which ${who} does not have`);
    if (t.where !== undefined) m.where = t.where;
    if (uniqueKeys.length) m.uniqueKeys = uniqueKeys;
    mappings.push(m);
  }
  if (rule?.kind === 'offset') {
    const owned = offsetRanges(mappings, rule.column);
    for (const m of mappings) {
      const r = owned.get(m);
      if (r) m.ownedKeys = { column: m.columns.find((c) => c.from === rule.column)?.to ?? rule.column, ...r };
    }
  }
  return { mappings, problems, held };
}

/** The target key range a shard merged with an offset owns: [from, below), null an open end. */
export interface OffsetRange {
  from: bigint | null;
  below: bigint | null;
}

/**
 * The target key ranges of an offset merge's shards (pure): each shard owns the keys from its
 * offset up to the next larger offset; the smallest offset's shard also everything below, the
 * largest's everything above. So every target row belongs to exactly one shard (verify compares it
 * with that shard, the collision check knows a shard's own older row, the reverse stream knows
 * where a row goes); the plan refuses shards whose keys would land outside their range.
 */
export function offsetRanges(same: readonly DbusMapping[], column: string): Map<DbusMapping, OffsetRange> {
  const starts = same.filter((m) => m.offsets?.[column] !== undefined).map((m) => ({ m, start: BigInt(m.offsets![column]!) }))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out = new Map<DbusMapping, OffsetRange>();
  starts.forEach((s, i) => out.set(s.m, { from: i === 0 ? null : s.start, below: i === starts.length - 1 ? null : starts[i + 1]!.start }));
  return out;
}

/** The range of the first key column of each merged source table ("label:db.t"), when an integer. */
export type KeyRanges = Map<string, { min: bigint; max: bigint } | null>;

/**
 * Plan refusals for merges whose shards can give two rows one target key: an AUTO_INCREMENT key
 * (every shard counts from 1), or key ranges read from the sources that overlap, when the target
 * key holds no shard column and no offset rule moves the shards apart (or the offsets leave the
 * ranges overlapping). The message names the tables and the two rules that would fix it.
 */
export function mergeProblems(move: DbusMove, shapes: MoveShapes, mappings: readonly DbusMapping[], ranges: KeyRanges = new Map()): string[] {
  const out: string[] = [];
  for (const t of move.tables) {
    if (t.sources.length < 2) continue;
    const at = t.declaredAt ? ` (${t.declaredAt})` : '';
    const ms = mappings.filter((m) => nameOf(m.target) === nameOf(t.target));
    if (ms.length < 2) continue;
    const key = ms[0]!.key;
    const rule = t.merge;
    const name = (m: DbusMapping) => `${m.label}:${nameOf(m.source)}`;
    if (rule?.kind === 'shard-column' && key.includes(rule.column)) {
      // the shard column keeps them apart, when each shard's constant is its own
      const seen = new Map<string, string>();
      for (const m of ms) {
        const v = m.constants?.[rule.column];
        if (v === undefined) continue;
        const other = seen.get(String(v));
        if (other) out.push(`${nameOf(t.target)}${at}: ${other} and ${name(m)} get one shard value ${JSON.stringify(v)} for ${rule.column}: their rows would share keys; give each source table its own value`);
        seen.set(String(v), name(m));
      }
      continue;
    }
    const shifted = ms.map((m) => {
      const r = ranges.get(name(m));
      const off = BigInt(m.offsets?.[key[0]!] ?? 0);
      return { m, r: r ? { min: r.min + off, max: r.max + off } : r };
    });
    const why: string[] = [];
    if (!(rule?.kind === 'offset' && key.includes(rule.column))) {
      const auto = ms.filter((m) => {
        const shape = shapes.sources.get(m.label)?.get(nameOf(m.source));
        return shape?.columns.some((c) => key.includes(c.name) && /auto_increment/i.test(c.extra));
      });
      if (auto.length) why.push(`${auto.map(name).join(', ')} ${auto.length === 1 ? 'has an' : 'have'} AUTO_INCREMENT key (${key.join(', ')}): each shard hands out the same ids`);
    }
    if (rule?.kind === 'offset' && key.includes(rule.column)) {
      for (const { m, r } of shifted) {
        const own = m.ownedKeys;
        if (!r || !own) continue;
        if ((own.from !== null && r.min < own.from) || (own.below !== null && r.max >= own.below)) {
          why.push(`the keys of ${name(m)} land at ${r.min}..${r.max} after its offset, outside the range its offset gives it (${own.from ?? '-inf'}..${own.below === null ? '+inf' : own.below - 1n}, up to the next shard's offset)`);
        }
      }
    }
    for (let i = 0; i < shifted.length; i++) {
      for (let j = i + 1; j < shifted.length; j++) {
        const a = shifted[i]!.r;
        const b = shifted[j]!.r;
        if (a && b && a.min <= b.max && b.min <= a.max) why.push(`the key ranges of ${name(shifted[i]!.m)} (${a.min}..${a.max}) and ${name(shifted[j]!.m)} (${b.min}..${b.max}) overlap${rule?.kind === 'offset' ? ' after the offsets' : ''}`);
      }
    }
    if (!why.length) continue;
    const example = ms.map((m, i) => `"${name(m)}": ${i + 1}`).join(', ');
    out.push(`${nameOf(t.target)}${at}: rows of the merged tables can collide on the target key (${key.join(', ')}): ${why.slice(0, 4).join('; ')}${why.length > 4 ? ` (and ${why.length - 4} more)` : ''}. Two rules fix it: a shard column in the target's key (merge: { kind: shard-column, column: shard_id, values: { ${example} } }, the target created with PRIMARY KEY (shard_id, ${key.join(', ')})), or an offset per shard on the key (merge: { kind: offset, column: ${key[0]}, offsets: { ${ms.map((m, i) => `"${name(m)}": ${i}000000000`).join(', ')} } })`);
  }
  return out;
}

/**
 * A 1:1 mapping turned around, for the reverse stream of a cut-over (target -> source): the
 * target's table read, the source's written, the same columns and key by their target names.
 * `label`: the label of the server now read (the move's target).
 */
export function reverseMapping(m: DbusMapping, label: string): DbusMapping {
  const to = (c: string) => m.columns.find((x) => x.from === c)!.to;
  return { label, source: m.target, target: m.source, columns: m.columns.map((c) => ({ from: c.to, to: c.from })), key: m.key.map(to) };
}

/**
 * The reverse mappings of a move (pure): a moved table's turned around; a merged table routed back
 * to its shard tables, each taking the rows its rule put there: a shard-column shard the rows
 * whose shard column holds its value (the column not written where the shard table lacks it), an
 * offset shard the keys of its range (plan offsetRanges) minus its offset. A merged row no shard
 * takes (a shard value no shard has) stops the reverse stream, naming it (`orphanWhere`), on
 * whichever server's stream meets it. `forward`: every mapping of the move (all sources), so the
 * routing knows every shard; `only`: the label whose shard tables this stream writes.
 */
export function reverseMappings(forward: readonly DbusMapping[], label: string, only: string): DbusMapping[] {
  const out: DbusMapping[] = [];
  for (const m of forward) {
    if (m.label !== only) continue;
    const same = forward.filter((x) => nameOf(x.target) === nameOf(m.target));
    const merged = same.length > 1 || m.constants !== undefined || m.offsets !== undefined;
    if (!merged) {
      out.push(reverseMapping(m, label));
      continue;
    }
    const to = (c: string) => m.columns.find((x) => x.from === c)?.to ?? c;
    const absent = new Set(m.absentAtSource ?? []);
    const columns = m.columns.filter((c) => !absent.has(c.from)).map((c) => ({ from: c.to, to: c.from }));
    const r: DbusMapping = { label, source: m.target, target: m.source, columns, key: m.key.filter((k) => !absent.has(k)).map(to) };
    const constants = Object.entries(m.constants ?? {});
    if (constants.length) {
      const [col, v] = constants[0]!;
      const tcol = to(col);
      r.where = `${quoteId(tcol)} = ?`;
      r.whereParams = [v];
      const values = same.map((x) => x.constants?.[col]).filter((x): x is string | number => x !== undefined);
      r.orphanWhere = {
        sql: `${quoteId(tcol)} IS NULL OR ${quoteId(tcol)} NOT IN (${values.map(() => '?').join(', ')})`,
        params: values,
        why: `its ${tcol} names no shard of the merge into ${nameOf(m.target)} (${values.map((x) => JSON.stringify(x)).join(', ')})`,
      };
    }
    if (m.offsets) {
      r.offsets = Object.fromEntries(Object.entries(m.offsets).map(([c, off]) => [to(c), off === 0 ? 0 : -off]));
      const own = m.ownedKeys;
      if (own) {
        const parts: string[] = [];
        const params: bigint[] = [];
        if (own.from !== null) (parts.push(`${quoteId(own.column)} >= ?`), params.push(own.from));
        if (own.below !== null) (parts.push(`${quoteId(own.column)} < ?`), params.push(own.below));
        r.where = parts.length ? parts.join(' AND ') : '1';
        r.whereParams = params;
      }
    }
    out.push(r);
  }
  return out;
}

export interface PlannedTable {
  target: string;
  sources: string[];
  /** the sources' estimates (TABLE_ROWS), summed */
  estimatedRows: number;
  /** the target exists already */
  exists: boolean;
  /** rows the target holds now (an existing table), for the refusal of a fresh start into a table with rows */
  targetRows: number | null;
  key: string[];
}

export interface DbusPlan {
  name: string;
  sources: Array<{ label: string; address: string; version: string; gtidBinlogPos: string }>;
  target: { label: string; address: string; version: string };
  tables: PlannedTable[];
  /** the statements that create the missing target schemas and tables, in order */
  ddl: string[];
  refusals: string[];
  mappings: DbusMapping[];
  /** source and target are one server: chunks are copied with INSERT ... SELECT */
  sameServer: string[];
  /**
   * Per target table the plain secondary indexes it goes without during its copy, built after it in
   * one online ALTER (a table the move creates: its source's; on --resume: those it still lacks).
   * Inserting rows into an index costs the copy more than building it sorted once (MARIADB-NOTES).
   */
  laterIndexes: Array<{ target: string; schema: string; table: string; indexes: DeferredIndex[] }>;
}

/** The servers' settings the binlog apply needs; each problem a refusal. */
export function binlogProblems(who: string, info: ServerInfo): string[] {
  const out: string[] = [];
  if (info.flavor !== 'mariadb') out.push(`${who}: ${info.version} is not MariaDB: the apply layer reads MariaDB binlogs and GTIDs only`);
  if (!info.logBin) out.push(`${who}: the binary log is off (log_bin): there is no change stream to follow; start the server with log_bin`);
  if (info.binlogFormat && info.binlogFormat.toUpperCase() !== 'ROW') out.push(`${who}: binlog_format is ${info.binlogFormat}, not ROW: row changes cannot be read (SET GLOBAL binlog_format = ROW, and in the server's config)`);
  if (info.binlogRowImage && info.binlogRowImage.toUpperCase() !== 'FULL') out.push(`${who}: binlog_row_image is ${info.binlogRowImage}, not FULL: an update would not carry the whole row`);
  if (info.binlogRowMetadata && info.binlogRowMetadata.toUpperCase() !== 'FULL') out.push(`${who}: binlog_row_metadata is ${info.binlogRowMetadata}, not FULL: the binlog would not name the columns (SET GLOBAL binlog_row_metadata = FULL)`);
  return out;
}

/** The CREATE TABLE of a source table, renamed to the target (SHOW CREATE TABLE on the source). */
export async function createTableSql(source: Db, from: TableRef, to: TableRef): Promise<string> {
  const text = (await showCreateTable(source, from.schema, from.table)) ?? '';
  const head = /^CREATE TABLE `(?:[^`]|``)+`/.exec(text);
  if (!head) throw new Error(`SHOW CREATE TABLE ${nameOf(from)} answered no CREATE TABLE`);
  return `CREATE TABLE IF NOT EXISTS ${quoteTable(to.schema, to.table)}${text.slice(head[0].length)}`;
}

export interface OpenedMove {
  sources: Map<string, Db>;
  target: Db;
  close(): Promise<void>;
}

/** A session on each server of the move (closed together). */
export async function openMove(ctx: Ctx, move: DbusMove): Promise<OpenedMove> {
  const opened: Db[] = [];
  try {
    const sources = new Map<string, Db>();
    for (const s of move.sources) {
      const db = await ctx.connect(s.node!);
      opened.push(db);
      sources.set(s.label, db);
    }
    const target = await ctx.connect(move.target.node!);
    opened.push(target);
    return { sources, target, close: () => Promise.all(opened.map((d) => d.close().catch(() => undefined))).then(() => undefined) };
  } catch (e) {
    await Promise.all(opened.map((d) => d.close().catch(() => undefined)));
    throw e;
  }
}

const sameServer = (a: { host: string; port: number; socket?: string }, b: { host: string; port: number; socket?: string }) =>
  describeAddress(a) === describeAddress(b) || (a.port === b.port && ['127.0.0.1', 'localhost', '::1'].includes(a.host) && ['127.0.0.1', 'localhost', '::1'].includes(b.host));

/** Read both sides and build the plan (nothing changed). `resuming`: the move has kept positions (a shard's held change is expected). */
export async function planMove(ctx: Ctx, move: DbusMove, dbs: OpenedMove, o: { resuming?: boolean; deferIndexes?: boolean } = {}): Promise<DbusPlan> {
  const refusals: string[] = [];
  const shapes: MoveShapes = { sources: new Map(), target: new Map() };
  const plan: Omit<DbusPlan, 'tables' | 'ddl' | 'refusals' | 'mappings'> = { name: move.name, sources: [], target: { label: move.target.label, address: describeAddress(move.target.node!), version: '' }, sameServer: [], laterIndexes: [] };
  for (const s of move.sources) {
    const db = dbs.sources.get(s.label)!;
    const info = await serverInfo(db);
    const who = `source ${s.label} (${describeAddress(s.node!)})`;
    refusals.push(...binlogProblems(who, info));
    plan.sources.push({ label: s.label, address: describeAddress(s.node!), version: info.version, gtidBinlogPos: info.gtidBinlogPos });
    const wanted = new Set(move.tables.flatMap((t) => t.sources.filter((x) => x.source === s.label).map((x) => nameOf(x.table))));
    shapes.sources.set(s.label, await readShapes(db, (schema, table) => wanted.has(`${schema}.${table}`)));
    if (sameServer(s.node!, move.target.node!)) plan.sameServer.push(s.label);
  }
  const tinfo = await serverInfo(dbs.target);
  plan.target.version = tinfo.version;
  if (tinfo.readOnly) refusals.push(`target ${move.target.label} (${describeAddress(move.target.node!)}) is read_only: the copy and the apply could not write (or would write only as a privileged user)`);
  const targets = new Set(move.tables.map((t) => nameOf(t.target)));
  shapes.target = await readShapes(dbs.target, (schema, table) => targets.has(`${schema}.${table}`));
  const ranges = await keyRanges(move, shapes, dbs);
  const { mappings, problems, held } = tableMappings(move, shapes, ranges, o);
  refusals.push(...problems);
  for (const h of held) ctx.log.warn(`dbus ${move.name}: ${h}`);

  const tables: PlannedTable[] = [];
  const ddl: string[] = [];
  const schemas = new Set((await dbs.target.query<{ s: string }>('SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA')).map((r) => r.s));
  for (const t of move.tables) {
    const first = t.sources[0]!;
    const sshape = shapes.sources.get(first.source)?.get(nameOf(first.table));
    const tshape = shapes.target.get(nameOf(t.target));
    const row: PlannedTable = {
      target: nameOf(t.target),
      sources: t.sources.map((s) => `${s.source}:${nameOf(s.table)}`),
      estimatedRows: t.sources.reduce((n, s) => n + (shapes.sources.get(s.source)?.get(nameOf(s.table))?.rowsEstimate ?? 0), 0),
      exists: !!tshape,
      targetRows: null,
      key: mappings.find((m) => nameOf(m.target) === nameOf(t.target))?.key ?? (sshape && rowKey(sshape)?.columns) ?? [],
    };
    tables.push(row);
    const later = (indexes: DeferredIndex[]) => {
      if (indexes.length) plan.laterIndexes.push({ target: nameOf(t.target), schema: t.target.schema, table: t.target.table, indexes });
    };
    if (tshape) {
      row.targetRows = Number(await dbs.target.value(`SELECT COUNT(*) FROM (SELECT 1 FROM ${quoteTable(t.target.schema, t.target.table)} LIMIT 1) x`));
      // resumed: the source's plain indexes the target still lacks are the ones the first run left
      // out (it created the table; a shape check refuses any other difference), built after the copy
      let lacking = new Set<string>();
      if (o.resuming && sshape) {
        const have = new Set(tshape.indexes.map((i) => i.name));
        const wanted = deferrableIndexes(await createTableSql(dbs.sources.get(first.source)!, first.table, t.target)).filter((ix) => !have.has(ix.name));
        later(wanted);
        lacking = new Set(wanted.map((ix) => ix.name));
      }
      if (sshape && !t.merge && t.sources.length === 1) {
        const diffs = compareShapes({ ...sshape, schema: t.target.schema, table: t.target.table }, tshape).filter((d) => d.kind !== 'table-collation' && d.kind !== 'engine' && !(d.kind === 'index-missing' && d.right === null && lacking.has(d.object)));
        if (diffs.length) refusals.push(`${nameOf(t.target)}: the target table exists with a different shape: ${diffs.slice(0, 5).map((d) => describeDiff(d, 'the source')).join('; ')}${diffs.length > 5 ? ` (and ${diffs.length - 5} more)` : ''}`);
      }
    } else if (!move.createTarget) {
      refusals.push(`${nameOf(t.target)}: the target table does not exist and createTarget is false`);
    } else if (sshape) {
      if (!schemas.has(t.target.schema)) {
        const cs = await dbs.sources.get(first.source)!.one<{ cs: string; co: string }>('SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [first.table.schema]);
        // a character set and collation are names, not identifiers or values: only plain ones are written
        const plain = cs && /^\w+$/.test(cs.cs) && /^\w+$/.test(cs.co);
        ddl.push(`CREATE DATABASE IF NOT EXISTS ${quoteId(t.target.schema)}${plain ? ` DEFAULT CHARACTER SET ${cs.cs} COLLATE ${cs.co}` : ''}`);
        schemas.add(t.target.schema);
      }
      const create = await createTableSql(dbs.sources.get(first.source)!, first.table, t.target);
      ddl.push(create);
      const leftOut = o.deferIndexes === false ? [] : deferrableIndexes(create);
      // dropped while the table is empty (instant), built again after its copy (run.ts)
      if (leftOut.length) ddl.push(leaveOutIndexesSql(quoteTable(t.target.schema, t.target.table), leftOut));
      later(leftOut);
    }
  }
  return { ...plan, tables, ddl, refusals, mappings };
}

/** The integer key ranges of the tables merged into one target (MIN/MAX of the key's first column, on the sources). */
async function keyRanges(move: DbusMove, shapes: MoveShapes, dbs: OpenedMove): Promise<KeyRanges> {
  const out: KeyRanges = new Map();
  for (const t of move.tables) {
    if (t.sources.length < 2) continue;
    for (const s of t.sources) {
      const shape = shapes.sources.get(s.source)?.get(nameOf(s.table));
      const k = shape && rowKey(shape);
      const col = k && shape.columns.find((c) => c.name === k.columns[0]);
      if (!col || !/int$/.test(col.dataType)) continue;
      const r = await dbs.sources.get(s.source)!.one<{ lo: string | null; hi: string | null }>(`SELECT CAST(MIN(${quoteId(col.name)}) AS CHAR) AS lo, CAST(MAX(${quoteId(col.name)}) AS CHAR) AS hi FROM ${quoteTable(s.table.schema, s.table.table)}`);
      out.set(`${s.source}:${nameOf(s.table)}`, r?.lo != null && r.hi != null ? { min: BigInt(r.lo), max: BigInt(r.hi) } : null);
    }
  }
  return out;
}

/** The entry a message names for a target table. */
export function entryOf(move: DbusMove, target: string): DbusTable | undefined {
  return move.tables.find((t) => nameOf(t.target) === target);
}
