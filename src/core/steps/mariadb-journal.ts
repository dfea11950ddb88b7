// The journal in `_ezctl.job_steps` on a server the caller names (for a switch: a server that
// outlives the switch), so a job killed on one host is resumed or rolled back from another.
// Each event is its own autocommitted INSERT: it is on disk before the step it announces runs.
import type { Db } from '../db/connect.js';
import { QueryError } from '../db/connect.js';
import { quoteTable } from '../db/quote.js';
import { runtimeError } from '../exit.js';
import { STATE_SCHEMA, ensureStateSchema } from '../state/schema.js';
import { JOB_EVENT, headerDetail, headerFrom, whoAmI, type Journal, type JournalEntry, type JournalEvent, type JobHeader } from './journal.js';

const T = () => quoteTable(STATE_SCHEMA, 'job_steps');

export class MariaDbJournal implements Journal {
  readonly where: string;
  private constructor(private readonly db: Db) {
    this.where = `${STATE_SCHEMA}.job_steps at ${db.ep.label}`;
  }

  /** A journal on this connection's server; creates `_ezctl` and its tables where missing. */
  static async open(db: Db): Promise<MariaDbJournal> {
    await ensureStateSchema(db);
    return new MariaDbJournal(db);
  }

  async create(header: JobHeader, atMs: number): Promise<boolean> {
    const me = whoAmI();
    try {
      await this.db.exec(`INSERT INTO ${T()} (job_id, seq, step, state, at_ms, host, pid, detail) VALUES (?, 1, ?, 'planned', ?, ?, ?, ?)`, [
        header.id, JOB_EVENT, atMs, me.host, me.pid, JSON.stringify(headerDetail(header)),
      ]);
      return true;
    } catch (e) {
      if (e instanceof QueryError && e.code === 'ER_DUP_ENTRY') return false;
      throw e;
    }
  }

  async load(jobId: string): Promise<{ header: JobHeader; events: JournalEvent[] } | undefined> {
    const rows = await this.db.query<{ seq: string | number; step: string; state: string; at_ms: string | number; host: string; pid: string | number; detail: string }>(
      `SELECT seq, step, state, at_ms, host, pid, detail FROM ${T()} WHERE job_id = ? ORDER BY seq`,
      [jobId],
    );
    if (!rows.length) return undefined;
    const events: JournalEvent[] = rows.map((r) => ({
      seq: Number(r.seq),
      step: r.step,
      state: r.state as JournalEvent['state'],
      atMs: Number(r.at_ms),
      host: r.host,
      pid: Number(r.pid),
      detail: JSON.parse(r.detail) as Record<string, unknown>,
    }));
    return { header: headerFrom(jobId, events[0]!.detail), events };
  }

  async append(jobId: string, e: JournalEntry): Promise<void> {
    const me = whoAmI();
    // the next seq is taken in the INSERT itself: two writers at once collide on the primary key
    // instead of interleaving their events unseen
    try {
      await this.db.exec(
        `INSERT INTO ${T()} (job_id, seq, step, state, at_ms, host, pid, detail) SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ? FROM ${T()} WHERE job_id = ?`,
        [jobId, e.step, e.state, e.atMs, me.host, me.pid, JSON.stringify(e.detail ?? {}), jobId],
      );
    } catch (err) {
      if (err instanceof QueryError && err.code === 'ER_DUP_ENTRY') {
        throw runtimeError(`job ${jobId}: another process wrote to its journal (${this.where}) at the same time`, {
          hint: 'two processes must never drive one job: stop the other one (its host and pid are in the journal) before resuming',
        });
      }
      throw err;
    }
  }
}
