// Blocking every write on a server, privileged sessions included (a master switch, a zone switch).
//
// The mechanism, measured on MariaDB 10.11 (README "Blocking writes" has the figures):
//  1. SET GLOBAL read_only = 1: stops every session without READ_ONLY ADMIN at once (their
//     statements and their COMMITs fail with ERROR 1290), and stays when ezctl dies: the safe side.
//     It waits for running write statements (not for idle open transactions, nor for SELECTs) and
//     for LOCK TABLES ... WRITE holders; lock_wait_timeout bounds that wait.
//  2. BACKUP STAGE START, BACKUP STAGE BLOCK_COMMIT on the same session: no commit of anyone
//     (root, the DRC applier, sessions opened before) gets through while it is held; it waits for
//     no running SELECT and no running DML (their commit is what waits), only for LOCK TABLES
//     holders. It goes when its session goes (ezctl killed): then read_only=1 is what stays.
// read_only must come first: set after BLOCK_COMMIT it waits for the DML queued behind the block
// and never returns. MySQL has no BACKUP STAGE: there step 2 is FLUSH TABLES WITH READ LOCK.
//
// The bound: every statement runs with lock_wait_timeout, and a watcher session kills our waiting
// statement (KILL QUERY) when lockWaitMs has passed (lock_wait_timeout counts whole seconds). Past
// graceMs the watcher kills the client sessions holding the block back by writing. Giving up
// puts back what was changed (the stage ended, read_only as it was) and refuses (exit 4).
import { connect, type Db, type Endpoint, type Row } from './connect.js';
import { flavorOf } from './server.js';
import type { Flavor } from './gtid.js';
import { EzError, ExitCode, refused, runtimeError } from '../exit.js';

export interface WriteBlockOptions {
  /** the bound (ms): every write blocked within it, or the block is given up and nothing stays changed */
  lockWaitMs: number;
  /** ms of waiting after which client sessions holding the block back by writing are killed; 0 at once; undefined never */
  graceMs?: number;
  connectTimeoutMs?: number;
  signal?: AbortSignal;
  log?: (message: string) => void;
  /** connection ids (CONNECTION_ID()) of the caller's own sessions on this server: never killed */
  keep?: number[];
}

export interface SessionInfo {
  id: number;
  user: string;
  host: string;
  db: string | null;
  command: string;
  timeS: number;
  info: string | null;
  rowsModified?: number;
}

export interface WriteBlock {
  readonly label: string;
  readonly mechanism: string;
  /** from the call until every write was blocked */
  readonly tookMs: number;
  /** from the first blocking statement (read_only=1) until every write was blocked: the part of
   *  tookMs in which some writers already wait or fail (an addition to the contract) */
  readonly blockingMs: number;
  readonly killed: SessionInfo[];
  readonly readOnlyBefore: boolean;
  /** CONNECTION_ID() of the session holding the block (an addition to the contract: tests, messages) */
  readonly holderId: number;
  /** the binlog position with every write blocked: MariaDB @@gtid_binlog_pos, MySQL @@gtid_executed */
  finalPosition(): Promise<string>;
  /** the block is still in place (its holding session alive and holding) */
  held(): Promise<boolean>;
  /** kill every client session but ours and replication/system threads (a demoted master: what waits behind
   *  the block must not commit there once it is lifted); returns whom it killed */
  killClients(): Promise<SessionInfo[]>;
  /** lift the block. restoreReadOnly: read_only back to readOnlyBefore (rollback); false: read_only stays ON */
  release(opts: { restoreReadOnly: boolean }): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Sessions: who they are and what they do (pure, unit-tested)

/** One row of PROCESSLIST joined with its InnoDB transaction and its metadata locks (where known). */
export interface SessionRow extends Omit<SessionInfo, 'rowsModified'> {
  state: string | null;
  /** INNODB_TRX, null without a transaction */
  trxRowsModified: number | null;
  trxRowsLocked: number | null;
  /** seconds since its transaction started, null without one */
  trxAgeS: number | null;
  /** metadata lock modes it holds (METADATA_LOCK_INFO, when that plugin is loaded), else undefined */
  mdlModes?: string[];
}

export type SessionKind = 'ours' | 'system' | 'waiting' | 'writer' | 'reader' | 'idle';

/** PROCESSLIST commands of replication and server threads: never killed. */
const SYSTEM_COMMANDS = new Set(['binlog dump', 'binlog dump gtid', 'slave_io', 'slave_sql', 'slave_worker', 'daemon', 'connect', 'register slave']);
const SYSTEM_USERS = new Set(['system user', 'event_scheduler']);
/** What a session waits for when a global read lock / backup lock (ours) stops it. */
const WAITING_ON_BLOCK = /waiting for (backup|global read|commit) lock/i;
/** Statements that write (data, schema, locks); a SELECT ... FOR UPDATE shows as rows locked. */
const WRITE_STATEMENT = /^(insert|update|delete|replace|load|alter|create|drop|rename|truncate|lock|optimize|repair|call|grant|revoke|xa|commit|handler|with\b[\s\S]*\b(update|delete|insert)\b)/i;
/** Metadata lock modes that a block of writes must wait for (a LOCK TABLES ... WRITE holder, DML, DDL). */
const WRITE_MDL = /^MDL_(SHARED_WRITE|SHARED_UPGRADABLE|SHARED_NO_WRITE|SHARED_NO_READ_WRITE|EXCLUSIVE|BACKUP_DML|BACKUP_TRANS_DML|BACKUP_SYS_DML|BACKUP_DDL|BACKUP_ALTER_COPY|BACKUP_COMMIT|BACKUP_FTWRL\d|BACKUP_START|BACKUP_FLUSH|BACKUP_WAIT\w*|BACKUP_BLOCK_DDL)/i;

/** The statement's first keyword, past comments, parentheses and spaces. */
export function statementHead(info: string): string {
  let s = info;
  for (;;) {
    const t = s.replace(/^\s+/, '').replace(/^\(+/, '');
    if (t.startsWith('/*')) {
      const end = t.indexOf('*/');
      s = end < 0 ? '' : t.slice(end + 2);
      continue;
    }
    if (t.startsWith('--') || t.startsWith('#')) {
      const end = t.indexOf('\n');
      s = end < 0 ? '' : t.slice(end + 1);
      continue;
    }
    return t;
  }
}

export function isWriteStatement(info: string | null): boolean {
  return info !== null && WRITE_STATEMENT.test(statementHead(info));
}

export function classifySession(r: SessionRow, ours: ReadonlySet<number>): SessionKind {
  if (ours.has(r.id)) return 'ours';
  if (SYSTEM_USERS.has(r.user.toLowerCase()) || SYSTEM_COMMANDS.has(r.command.toLowerCase())) return 'system';
  if (r.state && WAITING_ON_BLOCK.test(r.state)) return 'waiting';
  if ((r.trxRowsModified ?? 0) > 0 || (r.trxRowsLocked ?? 0) > 0) return 'writer';
  if (r.mdlModes?.some((m) => WRITE_MDL.test(m))) return 'writer';
  if (r.command.toLowerCase() === 'query' && isWriteStatement(r.info)) return 'writer';
  if (r.command.toLowerCase() === 'query' && r.info) return 'reader';
  return 'idle';
}

/** Client sessions that are not ours, not replication or server threads. */
export function isClient(r: SessionRow, ours: ReadonlySet<number>): boolean {
  const k = classifySession(r, ours);
  return k !== 'ours' && k !== 'system' && r.command.toLowerCase() !== 'killed';
}

export function sessionInfo(r: SessionRow): SessionInfo {
  const s: SessionInfo = { id: r.id, user: r.user, host: r.host, db: r.db, command: r.command, timeS: r.trxAgeS ?? r.timeS, info: r.info };
  if (r.trxRowsModified !== null) s.rowsModified = r.trxRowsModified;
  return s;
}

export function describeSession(s: SessionInfo): string {
  const stmt = s.info ? `"${s.info.replace(/\s+/g, ' ').slice(0, 120)}"` : s.rowsModified ? 'idle in a transaction' : 'idle';
  const rows = s.rowsModified ? `, ${s.rowsModified} row(s) modified` : '';
  return `session ${s.id} (${s.user}@${s.host}${s.db ? ` db ${s.db}` : ''}, ${s.command}, ${s.timeS} s${rows}, ${stmt})`;
}

/** A session whose statement waits for a lock someone else holds (a table's metadata lock, a row lock). */
export function waitsOnLock(r: SessionRow): boolean {
  return !!r.state && /^waiting for .*lock/i.test(r.state);
}

/**
 * Who holds a waiting block back, to name in a refusal: the writers, those not themselves waiting
 * on a lock first (a LOCK TABLES holder, not the DML queued behind it: that one has rows modified
 * and only waits); `holding` the writers that do not wait. Others: every other client session
 * doing something (a running statement, an open transaction).
 */
export function blockers(rows: SessionRow[], ours: ReadonlySet<number>): { writers: SessionRow[]; holding: SessionRow[]; others: SessionRow[] } {
  const all = rows.filter((r) => classifySession(r, ours) === 'writer');
  const holding = all.filter((r) => !waitsOnLock(r));
  const writers = [...holding, ...all.filter(waitsOnLock)];
  const others = rows.filter((r) => {
    const k = classifySession(r, ours);
    return k === 'reader' || (k === 'idle' && r.trxAgeS !== null);
  });
  return { writers, holding, others };
}

/** Whom a refusal names: the writers holding the block back; with none (every writer waits on a lock someone else holds), the others first, then those waiting writers. */
export function namedBlockers(b: ReturnType<typeof blockers>): SessionRow[] {
  if (b.holding.length) return b.writers;
  return [...b.others, ...b.writers];
}

// ---------------------------------------------------------------------------------------------
// Reading sessions from the server

const on = (v: unknown) => v === 1 || v === '1' || v === 'ON' || v === 1n;
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

async function metadataLocks(db: Db): Promise<Map<number, string[]> | undefined> {
  try {
    const rows = await db.query<{ id: number; mode: string }>('SELECT THREAD_ID AS id, LOCK_MODE AS mode FROM information_schema.METADATA_LOCK_INFO');
    const out = new Map<number, string[]>();
    for (const r of rows) out.set(Number(r.id), [...(out.get(Number(r.id)) ?? []), String(r.mode)]);
    return out;
  } catch (e) {
    // ER_UNKNOWN_TABLE: the metadata_lock_info plugin is not loaded (MySQL: no such table either)
    if ((e as { code?: string }).code === 'ER_UNKNOWN_TABLE') {
      return undefined;
    }
    throw e;
  }
}

/**
 * The age in seconds of an INNODB_TRX row aliased `t`. trx_started is in the server's system time
 * zone, not the session's (measured: with the session at +05:00 it did not move while NOW() did),
 * and ezctl's sessions are at +00:00: the age compares it with NOW() converted to 'SYSTEM', or a
 * server in Asia/Shanghai would show every transaction 8 hours in the future.
 */
export const TRX_AGE_SECONDS = "TIMESTAMPDIFF(SECOND, t.trx_started, CONVERT_TZ(NOW(), @@SESSION.time_zone, 'SYSTEM'))";

/** Every session of the server but the asking one, with its transaction and metadata locks. */
export async function listSessions(db: Db): Promise<{ rows: SessionRow[]; mdlKnown: boolean }> {
  const rows = await db.query<Row>(
    `SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.DB AS db, p.COMMAND AS command, p.TIME AS time, p.STATE AS state, p.INFO AS info,
            t.trx_rows_modified AS rows_modified, t.trx_rows_locked AS rows_locked,
            ${TRX_AGE_SECONDS} AS trx_age
       FROM information_schema.PROCESSLIST p LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
      WHERE p.ID <> CONNECTION_ID() ORDER BY p.ID`,
  );
  const mdl = await metadataLocks(db);
  return {
    mdlKnown: mdl !== undefined,
    rows: rows.map((r) => {
      const s: SessionRow = {
        id: Number(r.id),
        user: String(r.user ?? ''),
        host: String(r.host ?? ''),
        db: r.db === null || r.db === undefined ? null : String(r.db),
        command: String(r.command ?? ''),
        timeS: Number(r.time ?? 0),
        state: r.state === null || r.state === undefined ? null : String(r.state),
        info: r.info === null || r.info === undefined ? null : String(r.info),
        trxRowsModified: num(r.rows_modified),
        trxRowsLocked: num(r.rows_locked),
        trxAgeS: num(r.trx_age),
      };
      if (mdl) s.mdlModes = mdl.get(s.id) ?? [];
      return s;
    }),
  };
}

/** Client sessions with a write transaction open for at least minSeconds (preflight's --running-updates-limit) */
export async function runningWrites(db: Db, minSeconds: number): Promise<SessionInfo[]> {
  const ours = new Set<number>();
  const { rows } = await listSessions(db);
  return rows
    .filter((r) => isClient(r, ours) && classifySession(r, ours) === 'writer')
    .filter((r) => (r.trxAgeS ?? (isWriteStatement(r.info) ? r.timeS : -1)) >= minSeconds)
    .map(sessionInfo);
}

// ---------------------------------------------------------------------------------------------
// The block

const POLL_MS = 50;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

interface Plan {
  flavor: Flavor;
  mechanism: string;
  steps: string[];
  unlock: string;
  position: string;
}

function planFor(flavor: Flavor, readOnlyBefore: boolean): Plan {
  const ro = readOnlyBefore ? [] : ['SET GLOBAL read_only = 1'];
  return flavor === 'mariadb'
    ? { flavor, mechanism: 'read_only=1 + BACKUP STAGE BLOCK_COMMIT', steps: [...ro, 'BACKUP STAGE START', 'BACKUP STAGE BLOCK_COMMIT'], unlock: 'BACKUP STAGE END', position: 'SELECT @@GLOBAL.gtid_binlog_pos' }
    : { flavor, mechanism: 'read_only=1 + FLUSH TABLES WITH READ LOCK', steps: [...ro, 'FLUSH TABLES WITH READ LOCK'], unlock: 'UNLOCK TABLES', position: 'SELECT @@GLOBAL.gtid_executed' };
}

/**
 * A write block made ready: its two sessions open, who they are and the server's read_only known,
 * lock_wait_timeout set; nothing changed on the server yet. block() does the blocking statements
 * only, so a caller that measures a window (a master switch) opens the sessions outside it. close()
 * when block() is never called.
 */
export interface PreparedBlock {
  readonly label: string;
  readonly holderId: number;
  readonly readOnlyBefore: boolean;
  /** block now (once); the bound (lockWaitMs) counts from this call */
  block(): Promise<WriteBlock>;
  close(): Promise<void>;
}

/** Block every write on the server. Refused (exit 4) when the bound passes; nothing left changed then. */
export async function blockWrites(ep: Endpoint, o: WriteBlockOptions): Promise<WriteBlock> {
  const start = Date.now();
  const p = await prepareBlock(ep, o);
  return p.block(start);
}

/** Open the block's sessions and learn the server (no change on it); see PreparedBlock. */
export async function prepareBlock(ep: Endpoint, o: WriteBlockOptions): Promise<PreparedBlock & { block(startedAt?: number): Promise<WriteBlock> }> {
  const log = o.log ?? (() => {});
  const timeoutMs = o.connectTimeoutMs;
  const opts = timeoutMs === undefined ? {} : { timeoutMs };
  const [h, w] = await Promise.allSettled([connect(ep, opts), connect(ep, opts)]);
  if (h.status === 'rejected' || w.status === 'rejected') {
    if (h.status === 'fulfilled') await h.value.close();
    if (w.status === 'fulfilled') await w.value.close();
    throw (h.status === 'rejected' ? h.reason : (w as PromiseRejectedResult).reason) as unknown;
  }
  const holder = h.value;
  const watcher = w.value;
  let holderId: number;
  let watcherId: number;
  let ids: { h: number; v: string; ro: unknown } | undefined;
  // the server-side bound of every blocking statement (whole seconds); the watcher's KILL QUERY
  // is the exact one. Set here, outside the window; block() lowers it only when less is left.
  let lockWaitS = Math.max(1, Math.ceil(o.lockWaitMs / 1000));
  try {
    [ids, watcherId] = await Promise.all([
      holder.one<{ h: number; v: string; ro: unknown }>('SELECT CONNECTION_ID() AS h, @@version AS v, @@GLOBAL.read_only AS ro'),
      watcher.value('SELECT CONNECTION_ID()').then(Number),
      holder.exec('SET SESSION lock_wait_timeout = ?', [lockWaitS]),
    ]).then(([a, b]) => [a, b] as const);
    holderId = Number(ids!.h);
  } catch (e) {
    await holder.close().catch(() => undefined);
    await watcher.close().catch(() => undefined);
    throw e;
  }
  const ours = new Set<number>([holderId, watcherId, ...(o.keep ?? [])]);
  const readOnlyBefore = on(ids!.ro);
  const plan = planFor(flavorOf(String(ids!.v)), readOnlyBefore);
  let used = false;
  const closeAll = async () => {
    await holder.close();
    await watcher.close();
  };
  return {
    label: ep.label,
    holderId,
    readOnlyBefore,
    async close() {
      if (used) return;
      used = true;
      await closeAll();
    },
    async block(startedAt?: number): Promise<WriteBlock> {
  if (used) throw runtimeError(`${ep.label}: this prepared write block was used or closed already`);
  used = true;
  const start = startedAt ?? Date.now();
  const deadline = start + o.lockWaitMs;
  const killed: SessionInfo[] = [];
  let readOnlySet = false;
  let locked = false;

  /** SET GLOBAL read_only on the watcher session, else on a fresh one; a failure says what is left */
  const setReadOnly = async (value: 0 | 1, what: string): Promise<void> => {
    try {
      await watcher.exec('SET GLOBAL read_only = ?', [value]);
      return;
    } catch {
      // the watcher is gone (killed, network): try once more on a new session
    }
    const again = await connect(ep, timeoutMs === undefined ? {} : { timeoutMs }).catch((e: unknown) => e as Error);
    try {
      if (again instanceof Error) throw again;
      await again.exec('SET GLOBAL read_only = ?', [value]);
    } catch (e) {
      throw runtimeError(`${ep.label}: ${what}, read_only could not be set to ${value}: it is left ${value ? 'OFF' : 'ON'}`, {
        hint: `run SET GLOBAL read_only = ${value} on ${ep.label} once it answers`,
        cause: e,
      });
    } finally {
      if (!(again instanceof Error)) await again.close();
    }
  };
  const undo = async (): Promise<void> => {
    // put back what this call changed
    if (locked) await holder.exec(plan.unlock).catch(() => undefined);
    locked = false;
    if (readOnlySet) {
      await setReadOnly(0, 'putting back what the write block changed');
      readOnlySet = false;
    }
  };
  const killWriters = async (): Promise<void> => {
    const { rows } = await listSessions(watcher);
    for (const r of rows) {
      if (classifySession(r, ours) !== 'writer') continue;
      const s = sessionInfo(r);
      try {
        await watcher.exec('KILL CONNECTION ?', [r.id]);
      } catch (e) {
        // ER_NO_SUCH_THREAD: it ended by itself meanwhile
        if ((e as { code?: string }).code !== 'ER_NO_SUCH_THREAD') throw e;
        continue;
      }
      killed.push(s);
      log(`${ep.label}: killed ${describeSession(s)}: it held the write block back past the grace period`);
    }
  };

  const giveUp = async (step: string, why: 'bound' | 'interrupted'): Promise<never> => {
    let named: SessionInfo[] = [];
    let note = '';
    try {
      const { rows, mdlKnown } = await listSessions(watcher);
      const b = blockers(rows, ours);
      named = namedBlockers(b).map(sessionInfo);
      if (!b.holding.length && !mdlKnown) {
        note = ' (a LOCK TABLES holder shows as an idle session: load the metadata_lock_info plugin to have it named)';
      }
    } catch {
      // the server went away: say what we know
    }
    try {
      await undo();
    } finally {
      await closeAll();
    }
    if (why === 'interrupted') throw new EzError(ExitCode.interrupted, `${ep.label}: interrupted while blocking writes; nothing left changed`);
    const who = named.length
      ? `held back by ${named.slice(0, 5).map(describeSession).join('; ')}${named.length > 5 ? `; and ${named.length - 5} more` : ''}`
      : `no session found holding it${note}`;
    const first = named[0];
    throw refused(`${ep.label}: writes not blocked within ${o.lockWaitMs} ms (${step} still waiting), ${who}; nothing left changed (read_only ${readOnlyBefore ? 'ON' : 'OFF'} as before)`, {
      hint: `raise --lock-wait, or end ${first ? `those sessions (KILL ${first.id})` : 'the sessions holding locks'}${o.graceMs === undefined ? ', or give a grace period after which ezctl kills the writers' : ''}, and run it again`,
      details: named.map(describeSession),
    });
  };

  let blockingFrom = 0;
  try {
    for (const step of plan.steps) {
      blockingFrom ||= Date.now();
      const remaining = deadline - Date.now();
      if (remaining <= 0) await giveUp(step, 'bound');
      if (o.signal?.aborted) await giveUp(step, 'interrupted');
      const boundS = Math.max(1, Math.ceil(remaining / 1000));
      if (boundS < lockWaitS) {
        await holder.exec('SET SESSION lock_wait_timeout = ?', [boundS]);
        lockWaitS = boundS;
      }
      let timedOut = false;
      let interrupted = false;
      const run = holder.exec(step).then(
        () => ({ ok: true as const }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      for (;;) {
        const left = deadline - Date.now();
        const r = await Promise.race([run, sleep(Math.min(POLL_MS, left))]);
        if (r) {
          if (r.ok) break;
          const code = (r.e as { code?: string }).code;
          if (timedOut || code === 'ER_LOCK_WAIT_TIMEOUT') await giveUp(step, 'bound');
          if (interrupted) await giveUp(step, 'interrupted');
          throw r.e;
        }
        if (o.signal?.aborted && !interrupted) {
          interrupted = true;
          await watcher.exec('KILL QUERY ?', [holderId]).catch(() => undefined);
          continue;
        }
        if (Date.now() >= deadline && !timedOut) {
          timedOut = true;
          await watcher.exec('KILL QUERY ?', [holderId]).catch(() => undefined);
          continue;
        }
        if (!timedOut && !interrupted && o.graceMs !== undefined && Date.now() - start >= o.graceMs) await killWriters();
      }
      if (step.startsWith('SET GLOBAL read_only')) readOnlySet = true;
      else locked = true;
    }
  } catch (e) {
    if (e instanceof EzError && (e.exitCode === ExitCode.refused || e.exitCode === ExitCode.interrupted)) throw e;
    try {
      await undo();
    } finally {
      await closeAll();
    }
    throw e;
  }
  const tookMs = Date.now() - start;
  const blockingMs = Date.now() - blockingFrom;
  log(`${ep.label}: every write blocked (${plan.mechanism}) in ${tookMs} ms${killed.length ? `, ${killed.length} session(s) killed` : ''}`);

  let released = false;
  const held = async (): Promise<boolean> => {
    if (released) return false;
    try {
      const r = await Promise.race([holder.value('SELECT CONNECTION_ID()'), sleep(5000).then(() => undefined)]);
      return r !== undefined && Number(r) === holderId;
    } catch {
      return false;
    }
  };

  return {
    label: ep.label,
    mechanism: plan.mechanism,
    tookMs,
    blockingMs,
    killed,
    readOnlyBefore,
    holderId,
    held,
    async finalPosition() {
      // one round trip: the holder answering as itself is the block still held
      const gone = () =>
        runtimeError(`${ep.label}: the write block is no longer held (its session is gone): no final position can be read`, {
          hint: 'block the writes again before reading the final position',
        });
      if (released) throw gone();
      const r = await Promise.race([
        holder.one<{ h: unknown; p: unknown }>(`SELECT CONNECTION_ID() AS h, ${plan.position.replace(/^SELECT /, '')} AS p`).catch(() => undefined),
        sleep(5000).then(() => undefined),
      ]);
      if (!r || Number(r.h) !== holderId) throw gone();
      return String(r.p ?? '');
    },
    async killClients() {
      const { rows } = await listSessions(watcher);
      const out: SessionInfo[] = [];
      for (const r of rows) {
        if (!isClient(r, ours)) continue;
        try {
          await watcher.exec('KILL CONNECTION ?', [r.id]);
        } catch (e) {
          if ((e as { code?: string }).code !== 'ER_NO_SUCH_THREAD') throw e;
          continue;
        }
        out.push(sessionInfo(r));
      }
      if (out.length) log(`${ep.label}: killed ${out.length} client session(s) behind the write block: ${out.map((s) => s.id).join(', ')}`);
      return out;
    },
    async release(opts) {
      if (released) return;
      try {
        await holder.exec(plan.unlock).catch(() => undefined); // a dead holder's lock went with it
        locked = false;
        if (opts.restoreReadOnly && !readOnlyBefore) {
          await setReadOnly(0, 'releasing the write block');
        } else if (!opts.restoreReadOnly) {
          // read_only stays ON; set again only if someone turned it off meanwhile (setting it waits
          // for running writes, as when blocking)
          const ro = await watcher.value('SELECT @@GLOBAL.read_only').catch(() => undefined);
          if (ro === undefined || !on(ro)) await setReadOnly(1, 'releasing the write block of a demoted master');
        }
      } finally {
        await closeAll();
      }
      released = true;
      log(`${ep.label}: write block released, read_only ${opts.restoreReadOnly ? (readOnlyBefore ? 'ON' : 'OFF') : 'ON'}`);
    },
  };
},
  };
}
