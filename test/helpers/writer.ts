// An application writing in one session until stopped, for tests that change tables under writes.
import type { Db } from '../../src/core/db/connect.js';

/** What an online change may make an application's transaction fail with, and the application retries. */
const RETRIED = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'ER_TABLE_DEF_CHANGED']);

/**
 * Runs `step(db, n)` (its own BEGIN ... COMMIT and whatever follows) every 10 ms on one session
 * until stopped; n counts the steps that succeeded. A failed step is rolled back; one that failed
 * with anything but a retried error is kept in `errors`.
 */
export function writeUntilStopped(open: () => Promise<Db>, step: (db: Db, n: number) => Promise<void>): { stop(): Promise<{ n: number; errors: string[] }> } {
  let on = true;
  let n = 0;
  const errors: string[] = [];
  const done = (async () => {
    const db = await open();
    try {
      while (on) {
        try {
          await step(db, n);
          n++;
        } catch (e) {
          await db.exec('ROLLBACK').catch(() => undefined);
          if (!RETRIED.has((e as { code?: string }).code ?? '')) errors.push((e as Error).message);
        }
        await new Promise((res) => setTimeout(res, 10));
      }
    } finally {
      await db.close();
    }
  })();
  return { stop: async () => ((on = false), await done, { n, errors }) };
}

/**
 * Inserts rows (id, v) = (id, id), ids from 100,000 up, into `table` on one session, one every
 * `pauseMs`, until stopped; `inserted` holds the ids the server acknowledged. An insert that fails
 * makes stop() throw (nothing here is retried: each id must land). stop() closes the session.
 */
export async function insertIdsUntilStopped(open: () => Promise<Db>, table: string, pauseMs: number): Promise<{ inserted: number[]; stop(): Promise<void> }> {
  const db = await open();
  const inserted: number[] = [];
  let on = true;
  const done = (async () => {
    for (let id = 100_000; on; id++) {
      await db.exec(`INSERT INTO ${table} (id, v) VALUES (?, ?)`, [id, id]);
      inserted.push(id);
      await new Promise((res) => setTimeout(res, pauseMs));
    }
  })();
  return {
    inserted,
    stop: async () => {
      on = false;
      try {
        await done;
      } finally {
        await db.close();
      }
    },
  };
}
