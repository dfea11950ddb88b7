// D-Bus moves: what a move is (sources, a target, the tables and how they map), as declared in the
// topology file's `dbus.moves.<name>` or in a `--spec` YAML, validated with zod and resolved
// against the sources' catalogs into a DbusMove (every `db.*` and name pattern expanded).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { Ctx } from '../context.js';
import type { TableRef } from '../apply/mapping.js';
import { parseYamlFile, type ResolvedNode, type Topology } from '../config/load.js';
import { credentialsSchema, formatIssues, type Credentials } from '../config/schema.js';
import { dbusSectionSchema, type DbusMoveConfig } from '../config/dbus-schema.js';
import { describeAddress, parseConnectionString } from '../config/dsn.js';
import { listTables } from '../db/introspect.js';
import type { Db } from '../db/connect.js';
import { badInput } from '../exit.js';
import type { DbusConflict } from './conflicts.js';

export type { TableRef } from '../apply/mapping.js';

/**
 * A server of the move: a zone master by cluster/zone, or any instance by DSN. A DSN carries no
 * password: it comes from the defaults/secret rules (--defaults-file, --ask-pass, the file's
 * credentials: passwordEnv, defaultsFile).
 */
export interface DbusEndpointRef {
  label: string;
  cluster?: string;
  zone?: string;
  dsn?: string;
  /** resolved by loadMove: the node to connect to (ctx.connect(node)) (optional, added by C1) */
  node?: ResolvedNode;
}

export interface DbusTableSource {
  /** the label of one of the move's sources */
  source: string;
  table: TableRef;
}

export type MergeRule =
  /** the target key includes `column`; values: a constant per source table ("label:db.t" -> value) when the source rows lack it */
  | { kind: 'shard-column'; column: string; values?: Record<string, string | number> }
  /** target.column = source.column + the offset of its source table ("label:db.t" -> offset) */
  | { kind: 'offset'; column: string; offsets: Record<string, number> };

export interface DbusTable {
  target: TableRef;
  /** one for a move/rename, several for a merge */
  sources: DbusTableSource[];
  /** a row filter, an SQL condition on the source's columns (C2 evaluates it on binlog rows too) */
  where?: string;
  merge?: MergeRule;
  /** where this entry was declared, for messages: "dbus.moves.orders-out.tables.2" (optional, added by C1) */
  declaredAt?: string;
}

export interface DbusMove {
  name: string;
  sources: DbusEndpointRef[];
  target: DbusEndpointRef;
  /** resolved: `db.*` expanded to the source's tables, name patterns matched */
  tables: DbusTable[];
  /** create missing target schema/tables from the source's shape (default true) */
  createTarget: boolean;
  /** the file the move was read from (topology file or --spec file) (optional, added by C1) */
  origin?: string;
}

/** The state of a move's job, as `dbus status` reports it (contract C1 -> C3). */
export type DbusState = 'planned' | 'copying' | 'following' | 'paused' | 'stopped' | 'failed' | 'cutting-over' | 'cut-over' | 'rolled-back';

export interface DbusStatus {
  name: string;
  jobId: string;
  holder: string;
  state: DbusState;
  sources: Array<{ label: string; readGtid: string; appliedGtid: string; lagMs: number | null; retentionWarning?: string }>;
  tables: Array<{ target: string; copiedRows: number; estimatedRows: number; copyDone: boolean }>;
  conflicts: number;
  /** the last unique-key collision of merged shards recorded (optional, added by C2) */
  lastConflict?: DbusConflict | null;
  error: string | null;
}

// ---------------------------------------------------------------------------------------------
// Reading the declaration

/** A --spec file: the topology file's `dbus:` section, and optionally the credentials its DSNs use. */
const specFileSchema = z.strictObject({
  credentials: credentialsSchema.optional(),
  dbus: dbusSectionSchema,
});

interface Declared {
  config: DbusMoveConfig;
  origin: string;
  /** credentials for DSN servers: the file's */
  credentials: Credentials;
  baseDir: string;
  topology: Topology | undefined;
}

async function declared(ctx: Ctx, o: { name: string; config?: string; spec?: string }): Promise<Declared> {
  if (o.spec) {
    const path = resolve(o.spec);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw badInput(`cannot read the move spec ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const parsed = specFileSchema.safeParse(parseYamlFile(text, path), { reportInput: true });
    if (!parsed.success) {
      const lines = formatIssues(parsed.error.issues);
      throw badInput(`${path} has ${lines.length} problem${lines.length === 1 ? '' : 's'}`, { details: lines });
    }
    const config = parsed.data.dbus.moves[o.name];
    if (!config) throw badInput(`${path} declares no move ${JSON.stringify(o.name)} (under dbus.moves)`, { hint: movesHint(Object.keys(parsed.data.dbus.moves)) });
    // a topology file is optional with --spec: only a source or target named by cluster/zone needs it
    const needsTopology = [...config.sources, config.target].some((e) => e.dsn === undefined);
    const topology = needsTopology || o.config ? await topologyOf(ctx, o.config) : undefined;
    const credentials = { ...(topology?.file.credentials ?? {}), ...(parsed.data.credentials ?? {}) };
    return { config, origin: path, credentials, baseDir: dirname(path), topology };
  }
  const topology = await topologyOf(ctx, o.config);
  const moves = topology.file.dbus?.moves ?? {};
  const config = moves[o.name];
  if (!config) throw badInput(`${topology.path} declares no move ${JSON.stringify(o.name)} (under dbus.moves)`, { hint: movesHint(Object.keys(moves)) });
  return { config, origin: topology.path, credentials: topology.file.credentials, baseDir: topology.dir, topology };
}

const movesHint = (names: string[]) => (names.length ? `moves declared: ${names.join(', ')}` : 'declare it under dbus.moves.<name> in the topology file, or give --spec FILE.yaml');

async function topologyOf(ctx: Ctx, config: string | undefined): Promise<Topology> {
  if (config === undefined || config === ctx.opts.config) return ctx.topology();
  const { loadTopology } = await import('../config/load.js');
  return loadTopology(config);
}

/** The node of an endpoint: its zone's master, or the DSN's server with the file's credentials. */
function resolveRef(d: Declared, name: string, ref: DbusMoveConfig['target'], at: string): ResolvedNode {
  if (ref.dsn === undefined) {
    const topo = d.topology!;
    const cluster = ref.cluster ?? (topo.clusterNames.length === 1 ? topo.clusterNames[0]! : undefined);
    if (!cluster) throw badInput(`${d.origin}: ${at}.cluster: missing (the topology file has ${topo.clusterNames.length} clusters: ${topo.clusterNames.join(', ')})`);
    if (!topo.file.clusters[cluster]) throw badInput(`${d.origin}: ${at}.cluster: ${JSON.stringify(cluster)} is not a cluster of ${topo.path}`, { hint: `clusters: ${topo.clusterNames.join(', ')}` });
    if (!topo.zonesOf(cluster).includes(ref.zone!)) throw badInput(`${d.origin}: ${at}.zone: cluster ${cluster} has no zone ${JSON.stringify(ref.zone)}`, { hint: `zones: ${topo.zonesOf(cluster).join(', ')}` });
    return topo.master(cluster, ref.zone!);
  }
  const c = parseConnectionString(ref.dsn);
  const credentials: Credentials = { ...d.credentials };
  if (c.user) credentials.user = c.user;
  const node: ResolvedNode = {
    cluster: `dbus:${name}`,
    zone: ref.label,
    role: 'master',
    name: ref.label,
    host: c.host,
    port: c.port ?? 3306,
    credentials,
    baseDir: d.baseDir,
  };
  if (c.socket) node.socket = c.socket;
  return node;
}

// ---------------------------------------------------------------------------------------------
// Table patterns: [label:]db.table where db is a name or a glob, table a name, a glob (* ?) or a
// regular expression (orders_[0-9]+), always matched against the whole name.

const REGEX_CHARS = /[[\](){}+|^$\\]/;

export function namePattern(p: string): (name: string) => boolean {
  if (p === '*') return () => true;
  if (REGEX_CHARS.test(p)) {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${p})$`);
    } catch (e) {
      throw new Error(`${JSON.stringify(p)} is not a valid regular expression: ${(e as Error).message}`);
    }
    return (n) => re.test(n);
  }
  if (/[*?]/.test(p)) {
    const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    return (n) => re.test(n);
  }
  return (n) => n === p;
}

export interface FromPattern {
  label?: string;
  schema: string;
  table: string;
  /** true when the pattern names exactly one table */
  exact: boolean;
}

export function parseFrom(from: string): FromPattern {
  const m = /^(?:([A-Za-z0-9_-]+):)?([^.\s]+)\.(\S+)$/.exec(from.trim());
  if (!m) throw new Error(`${JSON.stringify(from)} is not [label:]db.table (db.*, db.orders_*, db.orders_[0-9]+)`);
  const out: FromPattern = { schema: m[2]!, table: m[3]!, exact: !/[*?]/.test(m[2]!) && !/[*?]/.test(m[3]!) && !REGEX_CHARS.test(m[3]!) };
  if (m[1]) out.label = m[1];
  // a pattern that does not compile is refused here, with the entry's path
  namePattern(out.schema);
  namePattern(out.table);
  return out;
}

/** `to`: db.table (one target), db.* (the same table names in db); undefined = the same names. */
export function parseTo(to: string | undefined): { schema: string; table: string | undefined } | undefined {
  if (to === undefined) return undefined;
  const m = /^([^.\s*?]+)(?:\.(\S+))?$/.exec(to.trim());
  if (!m || (m[2] !== undefined && /[*?]/.test(m[2]) && m[2] !== '*')) throw new Error(`${JSON.stringify(to)} is not db.table or db.* (a target is a name, not a pattern)`);
  return { schema: m[1]!, table: m[2] === undefined || m[2] === '*' ? undefined : m[2] };
}

/** Match a table entry against the sources' catalogs: the target tables and their source tables. */
export function resolveEntry(
  entry: { from: string; to?: string | undefined },
  labels: readonly string[],
  catalogs: ReadonlyMap<string, readonly TableRef[]>,
): { targets: Map<string, { target: TableRef; sources: DbusTableSource[] }>; matched: number } {
  const from = parseFrom(entry.from);
  if (from.label !== undefined && !labels.includes(from.label)) throw new Error(`${JSON.stringify(from.label)} is not a source of this move (sources: ${labels.join(', ')})`);
  const to = parseTo(entry.to);
  const inSchema = namePattern(from.schema);
  const inTable = namePattern(from.table);
  const targets = new Map<string, { target: TableRef; sources: DbusTableSource[] }>();
  let matched = 0;
  for (const label of from.label !== undefined ? [from.label] : labels) {
    for (const t of catalogs.get(label) ?? []) {
      if (!inSchema(t.schema) || !inTable(t.table)) continue;
      matched++;
      const target: TableRef = { schema: to?.schema ?? t.schema, table: to?.table ?? t.table };
      const key = `${target.schema}.${target.table}`;
      let got = targets.get(key);
      if (!got) targets.set(key, (got = { target, sources: [] }));
      got.sources.push({ source: label, table: { schema: t.schema, table: t.table } });
    }
  }
  return { targets, matched };
}

/**
 * The topology file's `dbus.moves.<name>` (or the --spec YAML's); errors exit 2 naming the path in
 * the spec ("dbus.moves.x.tables.1.from: ..."). Resolving patterns reads the sources' catalogs.
 */
export async function loadMove(ctx: Ctx, o: { name: string; config?: string; spec?: string }): Promise<DbusMove> {
  const d = await declared(ctx, o);
  const { sources, target } = serversOf(d, o.name);
  const base = `dbus.moves.${o.name}`;
  const labels = sources.map((s) => s.label);
  // the entries' patterns first: a typo is bad input before any server is asked
  const froms = d.config.tables.map((t, i) => {
    try {
      parseTo(t.to);
      return parseFrom(t.from);
    } catch (e) {
      throw badInput(`${d.origin}: ${base}.tables.${i}: ${(e as Error).message}`);
    }
  });
  // which schemas each source must list
  const catalogs = new Map<string, TableRef[]>();
  for (const s of sources) {
    const wanted = froms.filter((f) => f.label === undefined || f.label === s.label);
    if (!wanted.length) continue;
    const literal = wanted.every((f) => !/[*?]/.test(f.schema) && !REGEX_CHARS.test(f.schema));
    const db: Db = await ctx.connect(s.node!);
    try {
      catalogs.set(s.label, await listTables(db, literal ? [...new Set(wanted.map((f) => f.schema))] : undefined));
    } finally {
      await db.close();
    }
  }
  const tables: DbusTable[] = [];
  const targetAt = new Map<string, string>();
  const sourceAt = new Map<string, string>();
  d.config.tables.forEach((entry, i) => {
    const at = `${base}.tables.${i}`;
    let r: ReturnType<typeof resolveEntry>;
    try {
      r = resolveEntry(entry, labels, catalogs);
    } catch (e) {
      throw badInput(`${d.origin}: ${at}: ${(e as Error).message}`);
    }
    if (!r.matched) throw badInput(`${d.origin}: ${at}.from: ${JSON.stringify(entry.from)} matches no table on ${froms[i]!.label ?? labels.join(', ')}`, { hint: 'the move names source tables as they are now: db.table, db.*, db.orders_[0-9]+ (a regular expression for the table name)' });
    for (const [key, t] of r.targets) {
      const prev = targetAt.get(key);
      if (prev) throw badInput(`${d.origin}: ${at}: target ${key} is also the target of ${prev}`, { hint: 'rows of several source tables meet in one target table only within one entry (a merge, with its merge: rule)' });
      targetAt.set(key, at);
      for (const s of t.sources) {
        const sk = `${s.source}:${s.table.schema}.${s.table.table}`;
        const p = sourceAt.get(sk);
        if (p) throw badInput(`${d.origin}: ${at}: source table ${sk} is also moved by ${p}`, { hint: 'a source table goes to one target' });
        sourceAt.set(sk, at);
      }
      const table: DbusTable = { target: t.target, sources: t.sources, declaredAt: at };
      if (entry.where !== undefined) table.where = entry.where;
      if (entry.merge !== undefined) table.merge = entry.merge as MergeRule;
      tables.push(table);
    }
  });
  return { name: o.name, sources, target, tables, createTarget: d.config.createTarget, origin: d.origin };
}

function serversOf(d: Declared, name: string): { sources: DbusEndpointRef[]; target: DbusEndpointRef } {
  const base = `dbus.moves.${name}`;
  const sources: DbusEndpointRef[] = d.config.sources.map((s, i) => ({ ...refOf(s), node: resolveRef(d, name, s, `${base}.sources.${i}`) }));
  const target: DbusEndpointRef = { ...refOf(d.config.target), node: resolveRef(d, name, d.config.target, `${base}.target`) };
  return { sources, target };
}

/** The move's servers only (no catalog is read): what status, abort and waitApplied need. */
export async function loadMoveServers(ctx: Ctx, o: { name: string; config?: string; spec?: string }): Promise<Pick<DbusMove, 'name' | 'sources' | 'target' | 'origin'>> {
  const d = await declared(ctx, o);
  return { name: o.name, ...serversOf(d, o.name), origin: d.origin };
}

function refOf(e: DbusMoveConfig['target']): DbusEndpointRef {
  const r: DbusEndpointRef = { label: e.label };
  if (e.cluster !== undefined) r.cluster = e.cluster;
  if (e.zone !== undefined) r.zone = e.zone;
  if (e.dsn !== undefined) r.dsn = e.dsn;
  return r;
}

/** "new (127.0.0.1:3310)" */
export function describeRef(r: DbusEndpointRef): string {
  const where = r.node ? describeAddress(r.node) : r.dsn ?? `${r.cluster ?? ''}/${r.zone ?? ''}`;
  return `${r.label} (${r.cluster && r.zone ? `${r.cluster}/${r.zone} master ` : ''}${where})`;
}
