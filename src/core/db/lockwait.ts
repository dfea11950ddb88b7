// Bounded waits for metadata locks. Every DDL or table lock a tool takes runs with the session's
// lock_wait_timeout set for that statement (the server's default is a year: a forgotten open
// transaction would hold the tool for good), and a wait that runs out names who holds the table:
// from information_schema.METADATA_LOCK_INFO where the metadata_lock_info plugin is loaded, else
// the open transactions (INNODB_TRX) and the statements that name the table (PROCESSLIST).
import type { Db } from './connect.js';
import { EzError, ExitCode } from '../exit.js';
import { TRX_AGE_SECONDS } from './write-block.js';

/** The bound for a tool's DDL when the user gives none: long enough for a busy server, never forever. */
export const DEFAULT_LOCK_WAIT_S = 10;

export interface LockHolder {
  id: number;
  user: string;
  host: string;
  /** seconds: of its open transaction where known, else since its last statement began */
  seconds: number;
  /** its statement now ("" when idle), or what it holds (METADATA_LOCK_INFO's lock mode) */
  statement: string;
  lockMode?: string;
}

/** A wait for a metadata lock that ran out; holders: who may hold it (see lockHolders). */
export class LockWaitError extends EzError {
  constructor(
    message: string,
    readonly holders: LockHolder[],
    opts: { hint?: string; cause?: unknown },
  ) {
    super(ExitCode.runtime, message, opts);
    this.name = 'LockWaitError';
  }
}

export function isLockWaitTimeout(e: unknown): boolean {
  return (e as { code?: string }).code === 'ER_LOCK_WAIT_TIMEOUT';
}

/**
 * Run fn (statements on db) with lock_wait_timeout = seconds in db's session, restored afterwards
 * to what it was (not to DEFAULT: the caller's own bound stays). A wait that runs out throws a
 * LockWaitError naming the sessions that hold the tables and the fix.
 */
export async function withLockWait<T>(
  db: Db,
  o: { seconds: number; schema: string; tables: string[]; what: string; fix?: string },
  fn: () => Promise<T>,
): Promise<T> {
  const before = await db.value<number | string>('SELECT @@SESSION.lock_wait_timeout');
  await db.exec('SET SESSION lock_wait_timeout = ?', [Math.max(0, Math.ceil(o.seconds))]);
  try {
    return await fn();
  } catch (e) {
    if (!isLockWaitTimeout(e)) throw e;
    throw await lockWaitError(db, o, e);
  } finally {
    await db.exec('SET SESSION lock_wait_timeout = ?', [Number(before ?? 31536000)]).catch(() => undefined);
  }
}

/** The LockWaitError for a wait on these tables that ran out (e: the server's error). */
export async function lockWaitError(db: Db, o: { seconds: number; schema: string; tables: string[]; what: string; fix?: string }, e: unknown): Promise<LockWaitError> {
  const holders = await lockHolders(db, o.schema, o.tables).catch(() => ({ holders: [] as LockHolder[], exact: false }));
  const names = o.tables.map((t) => `${o.schema}.${t}`).join(', ');
  // the longest-open first; a busy server's other sessions are counted, not listed
  const shown = holders.holders.slice(0, 5).map(describeHolder).join('; ') + (holders.holders.length > 5 ? `; and ${holders.holders.length - 5} more` : '');
  const who = holders.holders.length
    ? `${holders.exact ? 'held by' : 'open transactions or statements that may hold it:'} ${shown}`
    : 'no holder found (it may have ended since)';
  const first = holders.holders[0];
  const fix = o.fix ?? 'or wait and run it again';
  return new LockWaitError(
    `${o.what}: waited ${o.seconds} s for a metadata lock on ${names}, ${who}`,
    holders.holders,
    { hint: first ? `KILL ${first.id} (or end that session's transaction), ${fix}` : `end the transaction holding ${names}, ${fix}`, cause: e },
  );
}

export function describeHolder(h: LockHolder): string {
  const stmt = h.statement ? `"${h.statement.replace(/\s+/g, ' ').slice(0, 120)}"` : 'idle in transaction';
  return `session ${h.id} (${h.user}@${h.host}, ${h.seconds} s${h.lockMode ? `, ${h.lockMode}` : ''}, ${stmt})`;
}

/**
 * Who holds metadata locks on the tables: exact from METADATA_LOCK_INFO (the plugin), else every
 * open transaction (any of them may have read the table: the server does not say which) and every
 * statement naming a table. The asking session itself is left out.
 */
export async function lockHolders(db: Db, schema: string, tables: string[]): Promise<{ holders: LockHolder[]; exact: boolean }> {
  const marks = tables.map(() => '?').join(', ');
  try {
    const rows = await db.query<{ id: number; user: string; host: string; time: number; info: string | null; mode: string; trx: number | null }>(
      `SELECT m.THREAD_ID AS id, p.USER AS user, p.HOST AS host, p.TIME AS time, p.INFO AS info, GROUP_CONCAT(DISTINCT m.LOCK_MODE) AS mode,
              (SELECT ${TRX_AGE_SECONDS} FROM information_schema.INNODB_TRX t WHERE t.trx_mysql_thread_id = m.THREAD_ID) AS trx
         FROM information_schema.METADATA_LOCK_INFO m JOIN information_schema.PROCESSLIST p ON p.ID = m.THREAD_ID
        WHERE m.TABLE_SCHEMA = ? AND m.TABLE_NAME IN (${marks}) AND m.THREAD_ID <> CONNECTION_ID()
        GROUP BY m.THREAD_ID, p.USER, p.HOST, p.TIME, p.INFO ORDER BY p.TIME DESC`,
      [schema, ...tables],
    );
    return { holders: rows.map((r) => ({ id: Number(r.id), user: r.user, host: r.host, seconds: Number(r.trx ?? r.time), statement: r.info ?? '', lockMode: r.mode })), exact: true };
  } catch (e) {
    // ER_UNKNOWN_TABLE: the plugin is not loaded
    if ((e as { code?: string }).code !== 'ER_UNKNOWN_TABLE') throw e;
  }
  const open = await db.query<{ id: number; user: string; host: string; secs: number; info: string | null }>(
    `SELECT t.trx_mysql_thread_id AS id, p.USER AS user, p.HOST AS host, ${TRX_AGE_SECONDS} AS secs, p.INFO AS info
       FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
      WHERE t.trx_mysql_thread_id <> CONNECTION_ID() ORDER BY t.trx_started`,
  );
  const naming = await db.query<{ id: number; user: string; host: string; secs: number; info: string | null }>(
    `SELECT ID AS id, USER AS user, HOST AS host, TIME AS secs, INFO AS info FROM information_schema.PROCESSLIST
      WHERE ID <> CONNECTION_ID() AND INFO IS NOT NULL AND (${tables.map(() => 'INSTR(INFO, ?) > 0').join(' OR ')}) ORDER BY TIME DESC`,
    tables,
  );
  const seen = new Set<number>();
  const holders: LockHolder[] = [];
  for (const r of [...open, ...naming]) {
    if (seen.has(Number(r.id))) continue;
    seen.add(Number(r.id));
    holders.push({ id: Number(r.id), user: r.user, host: r.host, seconds: Number(r.secs), statement: r.info ?? '' });
  }
  return { holders, exact: false };
}
