// The write fence of a D-Bus cut-over: per-table BEFORE INSERT/UPDATE/DELETE triggers that SIGNAL
// (Vitess's "denied tables", in the server itself). Every client hits it (the application user,
// root and READ_ONLY ADMIN, sessions opened before it, prepared statements: a trigger change makes
// the server re-prepare them), except the move's own streams, which declare themselves on their
// session (`SET @ezctl_dbus_apply = '<move>'`, admitApplier). It survives ezctl (a kill -9 leaves it
// in place: the safe side) and only the moved tables are fenced, never the rest of the instance
// (read_only would stop every other database it serves).
//
// Created and dropped with sql_log_bin = 0: the trigger must not reach the server's binlog (a DDL
// there would stop the move's own stream, and its replicas would fence their copies for good).
// Creating a trigger takes the table's exclusive metadata lock: it waits for every transaction that
// has touched the table (bounded by lock_wait_timeout, the holders named when it runs out), and
// every later write to the table sees the trigger. So once fenceTables returned, every write made
// to the tables before it is committed (in the binlog) and no other one can commit: the server's
// @@gtid_binlog_pos read then is the final position of the tables.
import { createHash } from 'node:crypto';
import type { Db } from '../db/connect.js';
import { quoteTable } from '../db/quote.js';
import { withLockWait } from '../db/lockwait.js';

/** The session variable a move's streams set on their target sessions to pass the fence. */
export const FENCE_VAR = 'ezctl_dbus_apply';
/** The SQLSTATE the fence raises (a user-defined exception: MariaDB error 1644, ER_SIGNAL_EXCEPTION). */
export const FENCE_SQLSTATE = '45000';
export const FENCE_ERRNO = 1644;

const EVENTS = [
  ['INSERT', 'i'],
  ['UPDATE', 'u'],
  ['DELETE', 'd'],
] as const;

export interface FenceTable {
  schema: string;
  table: string;
}

const id = (t: FenceTable) => `${t.schema}.${t.table}`;

/** The fence's trigger names on a table: `ezctl_fence_<hash of the table>_<i|u|d>` (unique per schema, short). */
export function fenceTriggerNames(t: FenceTable): Array<{ event: 'INSERT' | 'UPDATE' | 'DELETE'; name: string }> {
  const h = createHash('sha1').update(`${t.schema}\0${t.table}`).digest('hex').slice(0, 12);
  return EVENTS.map(([event, s]) => ({ event, name: `ezctl_fence_${h}_${s}` }));
}

/** What the application is told (SIGNAL's MESSAGE_TEXT holds at most 128 characters). */
export function fenceMessage(move: string, t: FenceTable, why: string): string {
  return `ezctl dbus ${move}: ${id(t)} ${why}`.slice(0, 128);
}

/** The statements that fence one table (the dry run prints them; values inlined by the client's escaping). */
export function fenceStatements(move: string, t: FenceTable, why: string): Array<{ sql: string; params: string[] }> {
  return fenceTriggerNames(t).map(({ event, name }) => ({
    sql:
      `CREATE TRIGGER IF NOT EXISTS ${quoteTable(t.schema, name)} BEFORE ${event} ON ${quoteTable(t.schema, t.table)} FOR EACH ROW ` +
      `IF COALESCE(@${FENCE_VAR}, '') <> ? THEN SIGNAL SQLSTATE '${FENCE_SQLSTATE}' SET MESSAGE_TEXT = ?; END IF`,
    params: [move, fenceMessage(move, t, why)],
  }));
}

/** Let this session through the fence of `move` (the move's streams, on their target sessions). */
export async function admitApplier(db: Db, move: string): Promise<void> {
  await db.exec(`SET @${FENCE_VAR} = ?`, [move]);
}

export interface FenceState {
  /** every trigger of the fence is there */
  fenced: string[];
  /** none is */
  open: string[];
  /** some are (a fence cut short by a crash): fenceTables completes it, unfenceTables removes it */
  partial: string[];
  /** tables fenced by another move (its name) */
  otherMove: Array<{ table: string; move: string }>;
}

/** Which of the tables carry the fence now (read from information_schema.TRIGGERS). */
export async function fenceState(db: Db, move: string, tables: readonly FenceTable[]): Promise<FenceState> {
  const st: FenceState = { fenced: [], open: [], partial: [], otherMove: [] };
  if (!tables.length) return st;
  const schemas = [...new Set(tables.map((t) => t.schema))];
  const rows = await db.query<{ s: string; n: string; a: string }>(
    `SELECT TRIGGER_SCHEMA AS s, TRIGGER_NAME AS n, ACTION_STATEMENT AS a FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN (${schemas.map(() => '?').join(', ')}) AND TRIGGER_NAME LIKE 'ezctl\\_fence\\_%'`,
    schemas,
  );
  const have = new Map(rows.map((r) => [`${r.s}\0${r.n}`, r.a]));
  for (const t of tables) {
    const names = fenceTriggerNames(t);
    const bodies = names.map((n) => have.get(`${t.schema}\0${n.name}`));
    const present = bodies.filter((b): b is string => b !== undefined);
    const other = present.map(moveOfBody).find((m) => m !== null && m !== move);
    if (other) st.otherMove.push({ table: id(t), move: other });
    else if (present.length === names.length) st.fenced.push(id(t));
    else if (present.length === 0) st.open.push(id(t));
    else st.partial.push(id(t));
  }
  return st;
}

/** The move a fence trigger's body admits (its compared literal), null when unreadable. */
function moveOfBody(body: string): string | null {
  const m = /<>\s*'((?:[^'\\]|\\.|'')*)'/.exec(body);
  return m ? m[1]!.replace(/''/g, "'").replace(/\\(.)/g, '$1') : null;
}

/**
 * Fence the tables on this server (sql_log_bin = 0), each statement bounded by lockWaitS (its
 * metadata lock: the transactions that touched the table end first). Idempotent: a table fenced
 * already is left as it is. Throws a LockWaitError naming the holders when a wait runs out (the
 * caller undoes: unfenceTables).
 */
export async function fenceTables(db: Db, move: string, tables: readonly FenceTable[], o: { lockWaitS: number; why: string }): Promise<{ fenced: string[]; ms: number }> {
  const t0 = Date.now();
  const done: string[] = [];
  await db.exec('SET SESSION sql_log_bin = 0');
  try {
    for (const t of tables) {
      await withLockWait(db, { seconds: o.lockWaitS, schema: t.schema, tables: [t.table], what: `fencing ${id(t)} for dbus ${move}`, fix: 'or raise --lock-wait' }, async () => {
        for (const s of fenceStatements(move, t, o.why)) await db.exec(s.sql, s.params);
      });
      done.push(id(t));
    }
  } finally {
    await db.exec('SET SESSION sql_log_bin = 1').catch(() => undefined);
  }
  return { fenced: done, ms: Date.now() - t0 };
}

/** Remove the move's fence from the tables (sql_log_bin = 0); a table without it is left as it is. */
export async function unfenceTables(db: Db, move: string, tables: readonly FenceTable[], o: { lockWaitS: number }): Promise<{ unfenced: string[]; ms: number }> {
  const t0 = Date.now();
  const st = await fenceState(db, move, tables);
  const theirs = new Set(st.otherMove.map((x) => x.table));
  const done: string[] = [];
  await db.exec('SET SESSION sql_log_bin = 0');
  try {
    for (const t of tables) {
      if (theirs.has(id(t))) continue;
      await withLockWait(db, { seconds: o.lockWaitS, schema: t.schema, tables: [t.table], what: `lifting the fence of ${id(t)} for dbus ${move}`, fix: 'or raise --lock-wait' }, async () => {
        for (const { name } of fenceTriggerNames(t)) await db.exec(`DROP TRIGGER IF EXISTS ${quoteTable(t.schema, name)}`);
      });
      done.push(id(t));
    }
  } finally {
    await db.exec('SET SESSION sql_log_bin = 1').catch(() => undefined);
  }
  return { unfenced: done, ms: Date.now() - t0 };
}

/** Whether an error is the fence's refusal (the application's retry loop can tell it from others). */
export function isFenceError(e: unknown): boolean {
  const c = e as { errno?: number; cause?: { errno?: number; sqlState?: string; message?: string }; message?: string };
  const errno = c.errno ?? c.cause?.errno;
  const text = c.cause?.message ?? c.message ?? '';
  return errno === FENCE_ERRNO && text.includes('ezctl dbus');
}

