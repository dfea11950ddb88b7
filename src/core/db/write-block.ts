// PROVISIONAL (part M3's stand-in until part M1's write-block.ts lands; M1's replaces this file
// whole). Same contract: block every write on a server, privileged sessions included.
// Mechanism here: SET GLOBAL read_only=1 (the application user), then FLUSH TABLES WITH READ LOCK
// on a connection of its own (everyone, root and DRC's applier included), bounded by lock_wait_timeout.
import { connect, type Db, type Endpoint } from './connect.js';
import { refused } from '../exit.js';

export interface WriteBlockOptions {
  lockWaitMs: number;
  graceMs?: number;
  connectTimeoutMs?: number;
  signal?: AbortSignal;
  log?: (message: string) => void;
}
export interface SessionInfo { id: number; user: string; host: string; db: string | null; command: string; timeS: number; info: string | null; rowsModified?: number }
export interface WriteBlock {
  readonly label: string;
  readonly mechanism: string;
  readonly tookMs: number;
  readonly killed: SessionInfo[];
  readonly readOnlyBefore: boolean;
  finalPosition(): Promise<string>;
  held(): Promise<boolean>;
  killClients(): Promise<SessionInfo[]>;
  release(opts: { restoreReadOnly: boolean }): Promise<void>;
}

type Row = Record<string, unknown>;
const SYSTEM_COMMANDS = ['Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker'];

function session(r: Row): SessionInfo {
  const s: SessionInfo = { id: Number(r.ID), user: String(r.USER ?? ''), host: String(r.HOST ?? ''), db: r.DB == null ? null : String(r.DB), command: String(r.COMMAND ?? ''), timeS: Number(r.TIME ?? 0), info: r.INFO == null ? null : String(r.INFO) };
  if (r.rows != null) s.rowsModified = Number(r.rows);
  return s;
}

async function clientSessions(db: Db, exclude: number[]): Promise<SessionInfo[]> {
  const rows = await db.query<Row>(
    `SELECT ID, USER, HOST, DB, COMMAND, TIME, INFO FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler') AND COMMAND NOT IN (${SYSTEM_COMMANDS.map(() => '?').join(', ')})`,
    SYSTEM_COMMANDS,
  );
  return rows.map(session).filter((s) => !exclude.includes(s.id));
}

/** Client sessions with a write transaction open for at least minSeconds. */
export async function runningWrites(db: Db, minSeconds: number): Promise<SessionInfo[]> {
  const rows = await db.query<Row>(
    `SELECT p.ID, p.USER, p.HOST, p.DB, p.COMMAND, p.TIME, p.INFO, t.trx_rows_modified AS \`rows\`
       FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
      WHERE p.ID <> CONNECTION_ID() AND (t.trx_rows_modified > 0 OR t.trx_rows_locked > 0)
        AND TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) >= ? * 1000000`,
    [minSeconds],
  );
  return rows.map(session).filter((s) => !SYSTEM_COMMANDS.includes(s.command) && s.user !== 'system user');
}

export async function blockWrites(ep: Endpoint, o: WriteBlockOptions): Promise<WriteBlock> {
  const t0 = Date.now();
  const opt = o.connectTimeoutMs ? { timeoutMs: o.connectTimeoutMs } : {};
  const holder = await connect(ep, opt);
  const watch = await connect(ep, opt);
  const holderId = Number(await holder.value('SELECT CONNECTION_ID()'));
  const watchId = Number(await watch.value('SELECT CONNECTION_ID()'));
  const readOnlyBefore = Number(await holder.value('SELECT @@global.read_only')) === 1;
  const killed: SessionInfo[] = [];
  let ended = false;
  const closeAll = async () => {
    await holder.close().catch(() => undefined);
    await watch.close().catch(() => undefined);
  };
  try {
    // SET GLOBAL read_only=1 takes the global read lock too (a LOCK TABLES ... WRITE holds it back): bounded alike
    await holder.exec('SET SESSION lock_wait_timeout = ?', [Math.max(1, Math.ceil(o.lockWaitMs / 1000))]);
    await holder.exec('SET GLOBAL read_only = 1');
    let done = false;
    const grace = (async () => {
      if (o.graceMs === undefined) return;
      const until = Date.now() + o.graceMs;
      while (!done && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      while (!done) {
        for (const s of await runningWrites(watch, 0)) {
          if (s.id === holderId || s.id === watchId) continue;
          await watch.exec(`KILL CONNECTION ${s.id}`).catch(() => undefined);
          killed.push(s);
          o.log?.(`killed session ${s.id} (${s.user}@${s.host}) holding the block back by writing`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await holder.exec('FLUSH TABLES WITH READ LOCK');
    } finally {
      done = true;
      await grace.catch(() => undefined);
    }
  } catch (e) {
    const blockers = await clientSessions(watch, [holderId, watchId]).catch(() => []);
    await watch.exec('SET GLOBAL read_only = ?', [readOnlyBefore ? 1 : 0]).catch(() => undefined);
    await closeAll();
    throw refused(`cannot block writes on ${ep.label} within ${o.lockWaitMs} ms: ${(e as Error).message}; read_only put back to ${readOnlyBefore ? 1 : 0}`, {
      details: blockers.map((s) => `session ${s.id} ${s.user}@${s.host} ${s.command} ${s.timeS} s: ${s.info ?? ''}`),
      hint: 'raise --lock-wait, or end those sessions',
    });
  }
  const tookMs = Date.now() - t0;
  return {
    label: ep.label,
    mechanism: 'read_only=1 + FLUSH TABLES WITH READ LOCK',
    tookMs,
    killed,
    readOnlyBefore,
    async finalPosition() {
      return String((await holder.value('SELECT @@global.gtid_binlog_pos')) ?? '');
    },
    async held() {
      if (ended) return false;
      try {
        await holder.value('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    async killClients() {
      const out: SessionInfo[] = [];
      for (const s of await clientSessions(watch, [holderId, watchId])) {
        await watch.exec(`KILL CONNECTION ${s.id}`).catch(() => undefined);
        out.push(s);
      }
      return out;
    },
    async release({ restoreReadOnly }) {
      if (ended) return;
      ended = true;
      await holder.exec('UNLOCK TABLES').catch(() => undefined);
      if (restoreReadOnly) await watch.exec('SET GLOBAL read_only = ?', [readOnlyBefore ? 1 : 0]);
      await closeAll();
    },
  };
}
