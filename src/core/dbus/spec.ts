// D-Bus moves: what a move is (sources, a target, the tables and how they map), as declared in the
// topology file's `dbus.moves.<name>` or in a `--spec` YAML, validated with zod and resolved
// against the sources' catalogs into a DbusMove (every `db.*` and name pattern expanded).
import type { Ctx } from '../context.js';
import type { TableRef } from '../apply/mapping.js';

export type { TableRef } from '../apply/mapping.js';

/**
 * A server of the move: a zone master by cluster/zone, or any instance by DSN. A DSN carries no
 * password: it comes from the defaults/secret rules (--defaults-file, --ask-pass, passwordEnv).
 */
export interface DbusEndpointRef {
  label: string;
  cluster?: string;
  zone?: string;
  dsn?: string;
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

/**
 * The topology file's `dbus.moves.<name>` (or the --spec YAML's); errors exit 2 naming the path in
 * the spec ("dbus.moves.x.tables.1.from: ..."). Resolving patterns reads the sources' catalogs.
 */
export async function loadMove(ctx: Ctx, o: { name: string; config?: string; spec?: string }): Promise<DbusMove> {
  void ctx;
  throw new Error(`dbus: loadMove(${o.name}) is not written yet`);
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
  error: string | null;
}

