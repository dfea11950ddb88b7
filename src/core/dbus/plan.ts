// What a move does, before it does anything: the table mappings (source table -> target table,
// column by column, by one key), the target DDL to create, row estimates, and the refusals. The
// runner copies and applies only through these mappings.
import type { Ctx } from '../context.js';
import { mappingProblems, type TableMapping, type TableRef } from '../apply/mapping.js';
import { readShapes, rowKey, type TableShape } from '../db/introspect.js';
import { compareShapes, describeDiff } from '../db/shape-compare.js';
import { serverInfo, type ServerInfo } from '../db/server.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { describeAddress } from '../config/dsn.js';
import type { Db } from '../db/connect.js';
import type { DbusMove, DbusTable } from './spec.js';

/** The catalogs a plan is built from: each source's shapes by label, and the target's, keyed "db.table". */
export interface MoveShapes {
  sources: Map<string /* source label */, Map<string /* "db.table" */, TableShape>>;
  target: Map<string /* "db.table" */, TableShape>;
}

/** One apply/copy mapping of a move: a TableMapping plus the source it reads (its label). */
export interface DbusMapping extends TableMapping {
  /** the label of the source whose table this maps */
  label: string;
}

const nameOf = (t: TableRef) => `${t.schema}.${t.table}`;

/**
 * The apply/copy mappings of a move (contract C1 -> C2): C1 writes the 1:1 case (a moved or
 * renamed table: every source column to the same-named target column, keyed by the source's row
 * key); C2 extends it for `merge` and `where`. `problems` are plan refusals (exit 4).
 * `shapes.target` holds the target tables that exist; a missing one is mapped from the source's
 * shape (it will be created like it).
 */
export function tableMappings(move: DbusMove, shapes: MoveShapes): { mappings: DbusMapping[]; problems: string[] } {
  const mappings: DbusMapping[] = [];
  const problems: string[] = [];
  for (const t of move.tables) {
    const at = t.declaredAt ? ` (${t.declaredAt})` : '';
    if (t.sources.length > 1 || t.merge || t.where !== undefined) {
      const what = t.sources.length > 1 ? `a merge of ${t.sources.length} tables` : t.merge ? 'a merge rule' : 'a where filter';
      problems.push(`${nameOf(t.target)}${at}: ${what} is not supported by this build of dbus (the merge and filter rules are another part's)`);
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
    mappings.push({ label: s.source, source: s.table, target: t.target, columns, key: key.columns });
  }
  problems.push(...mappingProblems(mappings));
  return { mappings, problems };
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
  const row = await source.one<Record<string, string>>(`SHOW CREATE TABLE ${quoteTable(from.schema, from.table)}`);
  const text = String(row?.['Create Table'] ?? '');
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

/** Read both sides and build the plan (nothing changed). */
export async function planMove(ctx: Ctx, move: DbusMove, dbs: OpenedMove): Promise<DbusPlan> {
  const refusals: string[] = [];
  const shapes: MoveShapes = { sources: new Map(), target: new Map() };
  const plan: Omit<DbusPlan, 'tables' | 'ddl' | 'refusals' | 'mappings'> = { name: move.name, sources: [], target: { label: move.target.label, address: describeAddress(move.target.node!), version: '' }, sameServer: [] };
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
  const { mappings, problems } = tableMappings(move, shapes);
  refusals.push(...problems);

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
      key: (sshape && rowKey(sshape)?.columns) ?? [],
    };
    tables.push(row);
    if (tshape) {
      row.targetRows = Number(await dbs.target.value(`SELECT COUNT(*) FROM (SELECT 1 FROM ${quoteTable(t.target.schema, t.target.table)} LIMIT 1) x`));
      if (sshape && !t.merge && t.sources.length === 1) {
        const diffs = compareShapes({ ...sshape, schema: t.target.schema, table: t.target.table }, tshape).filter((d) => d.kind !== 'table-collation' && d.kind !== 'engine');
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
      ddl.push(await createTableSql(dbs.sources.get(first.source)!, first.table, t.target));
    }
  }
  return { ...plan, tables, ddl, refusals, mappings };
}

/** The entry a message names for a target table. */
export function entryOf(move: DbusMove, target: string): DbusTable | undefined {
  return move.tables.find((t) => nameOf(t.target) === target);
}
