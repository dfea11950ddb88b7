// The application of the EMHA benchmark: one session writing autocommit INSERTs through a zone's
// proxy as the application user (no SUPER, no READ_ONLY ADMIN), as fast as a short pause allows,
// each acknowledgement stamped (performance.now(), ms) with the server that made it. The server is
// asked once per connection (`SELECT @@server_id`): a TCP session through HAProxy stays on one
// backend for its life, so every acknowledgement on it comes from that server.
//
// What it does on errors is what a connection pool does: a statement refused on a live session
// (read_only, a lock wait) is retried on the same session after the pause; a session that broke
// (killed, reset, refused by the proxy) is dropped and a new one opened through the proxy. Each id
// is tried once: a statement that failed may or may not have committed, so only acknowledged ids
// are promised (and checked afterwards).
import { performance } from 'node:perf_hooks';
import { connect, type Db, type Endpoint } from '../src/core/db/connect.js';

export interface Ack { id: number; t: number; server: number }

/** Server errors that leave the session usable: the write is refused, the application retries. */
const SAME_SESSION = new Set([
  1290, // ER_OPTION_PREVENTS_STATEMENT (read_only)
  1223, // ER_CANT_UPDATE_WITH_READLOCK (FLUSH TABLES WITH READ LOCK)
  1205, // ER_LOCK_WAIT_TIMEOUT
  1213, // ER_LOCK_DEADLOCK
  4151, // ER_LOCK_WAIT_TIMEOUT variants of MariaDB (backup locks)
]);

/** Longest an INSERT may hang before the session is treated as broken (a bug, never expected). */
const STUCK_MS = 20_000;

export class AppWriter {
  readonly acks: Ack[] = [];
  /** error kind → count */
  readonly errors = new Map<string, number>();
  attempts = 0;
  reconnects = 0;
  stuck = 0;
  private on = false;
  private done: Promise<void> | undefined;
  private nextId: number;

  constructor(
    private readonly ep: Endpoint,
    /** quoted (quoteTable) */
    private readonly table: string,
    private readonly o: { firstId: number; run: number; pauseMs: number },
  ) {
    this.nextId = o.firstId;
  }

  start(): void {
    this.on = true;
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.on = false;
    await this.done;
  }

  /** Resolves at the first acknowledgement made by `server` (or after timeoutMs, false). */
  async waitForAckOn(server: number, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (this.acks.some((a) => a.server === server)) return true;
      await sleep(10);
    }
    return false;
  }

  private count(kind: string): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }

  private async loop(): Promise<void> {
    let db: Db | undefined;
    let server = 0;
    const drop = () => {
      db?.conn.destroy();
      db = undefined;
    };
    while (this.on) {
      if (!db) {
        try {
          db = await connect(this.ep, { timeoutMs: 2_000 });
          server = Number(await db.value('SELECT @@server_id'));
          this.reconnects++;
        } catch (e) {
          this.count(kindOf(e));
          drop();
          await sleep(this.o.pauseMs);
          continue;
        }
      }
      const id = this.nextId++;
      this.attempts++;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          db.exec(`INSERT INTO ${this.table} (id, run, server_id) VALUES (?, ?, @@server_id)`, [id, this.o.run]),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(Object.assign(new Error(`an INSERT hung for ${STUCK_MS} ms`), { code: 'STUCK' })), STUCK_MS);
          }),
        ]);
        this.acks.push({ id, t: performance.now(), server });
      } catch (e) {
        const kind = kindOf(e);
        this.count(kind);
        if (kind === 'STUCK') this.stuck++;
        if (!SAME_SESSION.has((e as { errno?: number }).errno ?? -1)) drop();
      } finally {
        clearTimeout(timer);
      }
      await sleep(this.o.pauseMs);
    }
    drop();
  }
}

function kindOf(e: unknown): string {
  const x = e as { code?: string; errno?: number; cause?: { code?: string } };
  if (x.errno) return `${x.errno}${x.code ? ` ${x.code}` : ''}`;
  return x.code ?? x.cause?.code ?? (e as Error).message.slice(0, 60);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The write-unavailable window of one switch, from the writer's acknowledgements. */
export interface Window {
  /** last acknowledgement on the old master → first on the new one, ms */
  windowMs: number;
  lastOldAt: number;
  firstNewAt: number;
  /** acknowledgements on the old master after the first on the new one (two writable masters) */
  overlap: number;
  acksOld: number;
  acksNew: number;
}

export function windowOf(acks: Ack[], oldServer: number, newServer: number): Window | undefined {
  const old = acks.filter((a) => a.server === oldServer);
  const nu = acks.filter((a) => a.server === newServer);
  if (!old.length || !nu.length) return undefined;
  const lastOldAt = Math.max(...old.map((a) => a.t));
  const firstNewAt = Math.min(...nu.map((a) => a.t));
  return {
    windowMs: firstNewAt - lastOldAt,
    lastOldAt,
    firstNewAt,
    overlap: old.filter((a) => a.t > firstNewAt).length,
    acksOld: old.length,
    acksNew: nu.length,
  };
}

/** Acknowledged ids missing on a node (one query per 5,000 ids). */
export async function missingIds(db: Db, /** quoted */ table: string, ids: number[]): Promise<number[]> {
  const missing: number[] = [];
  for (let i = 0; i < ids.length; i += 5_000) {
    const part = ids.slice(i, i + 5_000);
    const rows = await db.query<{ id: string | number }>(`SELECT id FROM ${table} WHERE id IN (${part.map(() => '?').join(',')})`, part);
    const have = new Set(rows.map((r) => Number(r.id)));
    for (const id of part) if (!have.has(id)) missing.push(id);
  }
  return missing;
}
