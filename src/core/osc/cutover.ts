// One zone's cut-over of one or more tables (a table, or a family linked by foreign keys) in a
// single atomic RENAME, without ever letting a write reach an original after its ghost caught up.
//
// MariaDB refuses RENAME under LOCK TABLES, so a second session's RENAME has to be queued behind
// a lock and let through. A RENAME takes its metadata locks one name at a time, in name order, and
// a waiting RENAME (exclusive) is granted before waiting writes only on the name it is queued on.
// With several tables it can be queued on one only: when the lock is released, a write waiting on
// another table can get in before the RENAME reaches it. So the RENAME is not let through on the
// unlock but held once more, by a sentry whose name sorts after every table's:
//
//  1. the sentry session creates the sentry S and a stand-in S0 and takes LOCK TABLES S WRITE;
//  2. the lock session takes LOCK TABLES t1, t2, ... WRITE (all at once: the server sees every
//     wait, no deadlock with the application), every ghost catches up to the binlog position under
//     it, AUTO_INCREMENT counters are carried to the ghosts;
//  3. the RENAME "S0 TO S, t1 TO t1_ezdel, t1_ezgho TO t1, ..." is queued: it waits on the first
//     table in name order (S exists: it cannot complete while S does); and for every further table
//     a session of its own queues LOCK TABLES ti WRITE (a waiting table lock goes before waiting
//     writes);
//  4. the lock session unlocks: the RENAME takes the first table, the other sessions theirs. Then
//     those are unlocked one at a time in name order, each only once the RENAME holds every name
//     before it (information_schema's high-priority lock is refused only by a granted exclusive
//     lock, not a waiting one): the RENAME is then queued on that very table, and a waiting RENAME
//     goes before waiting writes. In the end it holds every table and waits for S;
//  5. no more writes can reach the originals: the binlog is read up to the position now, and if
//     any change to the tables arrived after step 2 anyway, the attempt is undone and retried (the
//     appliers carry that write into the ghosts like any other);
//  6. otherwise the sentry session drops S and unlocks: the RENAME completes.
// If a session dies at any point, S still exists and the RENAME fails (the first pair), renaming
// nothing: the originals stay. (One unlock for all tables would let a write waiting on the second
// table in before the RENAME reached it: under steady writes, every attempt.)
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import type { ResolvedNode } from '../config/load.js';
import { quoteTable } from '../db/quote.js';
import { runtimeError } from '../exit.js';
import { withLockWait } from '../db/lockwait.js';
import { oscSentryNames } from '../cluster/helper-tables.js';
import type { ZoneOsc } from './zone.js';
import type { ZoneApplier } from './applier.js';

/** The sentry and its stand-in: both sort after every table of the change (they start with the last name). */
export function sentryNames(tables: string[]): { sentry: string; standIn: string } {
  const last = [...tables].sort(compareNames).at(-1)!;
  return oscSentryNames(last);
}

/** Name order as the server's metadata locks see it: bytes of the UTF-8 name. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export class ZoneCutOver {
  private lockDb: Db | undefined;
  /** for every table after the first (name order): a session that takes it over from lockDb */
  private holds: Array<{ table: string; db: Db; connId: number; locking: Promise<unknown> }> = [];
  private sentryDb: Db | undefined;
  private renameDb: Db | undefined;
  /** not under LOCK TABLES (which would hide other tables from information_schema), never waits for a lock */
  private probeDb: Db | undefined;
  private renameConnId = 0;
  private renaming: Promise<unknown> | undefined;
  private changesAtLock = 0;
  private readonly schema: string;
  private readonly names: { sentry: string; standIn: string };

  constructor(
    private readonly ctx: Ctx,
    readonly zone: string,
    private readonly node: ResolvedNode,
    private readonly jobs: ZoneOsc[],
    private readonly applier: ZoneApplier,
  ) {
    this.schema = jobs[0]!.plan.schema;
    this.names = sentryNames(jobs.map((j) => j.plan.table));
  }

  private q(table: string): string {
    return quoteTable(this.schema, table);
  }

  private get changesSeen(): number {
    return this.applier.changesSeen;
  }

  /** Steps 1-2: the sentry held; every table locked (waiting at most lockWaitS), the ghosts caught up. */
  async lockAndCatchUp(lockWaitS: number, catchUpMs: number): Promise<void> {
    for (const j of this.jobs) j.progress.phase = 'cutting-over';
    this.sentryDb = await this.ctx.connect(this.node);
    await this.sentryDb.exec(`DROP TABLE IF EXISTS ${this.q(this.names.sentry)}, ${this.q(this.names.standIn)}`);
    await this.sentryDb.exec(`CREATE TABLE ${this.q(this.names.sentry)} (id INT NOT NULL PRIMARY KEY) ENGINE=InnoDB COMMENT='ezctl osc cut-over sentry'`);
    await this.sentryDb.exec(`CREATE TABLE ${this.q(this.names.standIn)} (id INT NOT NULL PRIMARY KEY) ENGINE=InnoDB COMMENT='ezctl osc cut-over sentry stand-in'`);
    await this.sentryDb.exec(`LOCK TABLES ${this.q(this.names.sentry)} WRITE`);
    this.lockDb = await this.ctx.connect(this.node);
    await this.lockDb.exec('SET SESSION lock_wait_timeout = ?', [lockWaitS]);
    const lockDb = this.lockDb;
    await withLockWait(lockDb, {
      seconds: lockWaitS, schema: this.schema, tables: this.jobs.map((j) => j.plan.table), what: `zone ${this.zone}: the cut-over lock`,
      fix: 'or raise --cut-over-lock-timeout',
    }, () => lockDb.exec(`LOCK TABLES ${this.jobs.map((j) => `${this.q(j.plan.table)} WRITE`).join(', ')}`));
    await Promise.all(this.jobs.map((j) => j.caughtUp(catchUpMs)));
    this.changesAtLock = this.changesSeen;
    for (const j of this.jobs) await j.carryAutoIncrement(lockDb, lockWaitS);
    // --include-triggers: the triggers go on the ghosts now, with the applier held until the
    // RENAME (or until the attempt is undone and they are gone again): no ghost write by the
    // applier ever fires them (see ZoneOsc.createGhostTriggers)
    if (this.jobs.some((j) => j.plan.triggers.length)) {
      this.releaseApplier = await this.applier.hold();
      for (const j of this.jobs) await j.createGhostTriggers(lockWaitS);
    }
  }

  /** while the ghosts have the triggers: lets the zone's applier write again */
  private releaseApplier: (() => void) | undefined;

  /** Step 3: the RENAME, from its own session, waits behind the locks. */
  async queueRename(lockWaitS: number): Promise<void> {
    this.renameDb = await this.ctx.connect(this.node);
    await this.renameDb.exec('SET SESSION lock_wait_timeout = ?', [lockWaitS]);
    this.renameConnId = Number(await this.renameDb.value('SELECT CONNECTION_ID()'));
    // the sentry pair first: while the sentry exists, it fails before anything is renamed
    const pairs = [`${this.q(this.names.standIn)} TO ${this.q(this.names.sentry)}`];
    for (const j of this.jobs) pairs.push(`${this.q(j.plan.table)} TO ${this.q(j.plan.names.old)}`, `${this.q(j.plan.names.ghost)} TO ${this.q(j.plan.table)}`);
    this.renaming = this.renameDb.exec(`RENAME TABLE ${pairs.join(', ')}`).then(
      () => {
        const at = Date.now();
        for (const j of this.jobs) j.progress.cutOverAt = at;
        return at;
      },
      (e: Error) => e,
    );
    this.probeDb = await this.ctx.connect(this.node);
    await this.probeDb.exec('SET SESSION lock_wait_timeout = 0');
    await this.waitForState(this.renameConnId, lockWaitS * 1000, 'the cut-over RENAME did not queue behind the cut-over lock');
    // the sessions that take over the further tables, queued behind the lock too; not for a
    // table that another table of the change references (see referencedWithin)
    const rest = this.jobs.map((j) => j.plan.table).sort(compareNames).slice(1).filter((t) => !referencedWithin(this.jobs).has(t));
    for (const table of rest) {
      const db = await this.ctx.connect(this.node);
      await db.exec('SET SESSION lock_wait_timeout = ?', [Math.max(lockWaitS, 10)]);
      const connId = Number(await db.value('SELECT CONNECTION_ID()'));
      const locking = db.exec(`LOCK TABLES ${this.q(table)} WRITE`).then(() => undefined, (e: Error) => e);
      this.holds.push({ table, db, connId, locking });
      await this.waitForState(connId, lockWaitS * 1000, `the session taking over ${this.schema}.${table} did not queue behind the cut-over lock`);
    }
  }

  private async waitForState(connId: number, ms: number, failure: string): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const st = await this.probeDb!.value<string>('SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = ?', [connId]);
      if (st && /metadata lock|table lock/i.test(st)) return;
      if (Date.now() > deadline) throw runtimeError(`zone ${this.zone}: ${failure} (state ${st ?? 'gone'})`);
      await sleep(5);
    }
  }

  /**
   * Steps 4-5: unlock the tables; the RENAME takes them all and waits for the sentry. Throws (and
   * the attempt is undone) if a write reached an original in between.
   */
  async unlockAndSettle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // the names the RENAME takes that exist now, besides the sentry pair (which sorts last)
    const existing = [...this.jobs.map((j) => j.plan.table), ...this.jobs.map((j) => j.plan.names.ghost)];
    await this.lockDb!.exec('UNLOCK TABLES');
    for (const h of this.holds) {
      const r = await h.locking;
      if (r instanceof Error) throw runtimeError(`zone ${this.zone}: taking over ${this.schema}.${h.table} from the cut-over lock failed: ${r.message}`, { cause: r });
    }
    for (const h of this.holds) {
      for (const name of existing.filter((n) => compareNames(n, h.table) < 0)) await this.untilHeld(name, deadline);
      await h.db.exec('UNLOCK TABLES');
    }
    for (const j of this.jobs) await this.untilHeld(j.plan.table, deadline);
    // every table is held: nothing more can be written to the originals
    const now = String(await this.probeDb!.value('SELECT @@global.gtid_binlog_pos'));
    await this.applier.readUpTo(now, timeoutMs);
    const sneaked = this.changesSeen - this.changesAtLock;
    if (sneaked > 0) throw runtimeError(`zone ${this.zone}: ${sneaked} row change(s) reached the original table(s) between the unlock and the RENAME; trying again`);
  }

  private async untilHeld(name: string, deadline: number): Promise<void> {
    while (!(await this.heldByRename(name))) {
      const r = await Promise.race([this.renaming, sleep(5).then(() => undefined)]);
      if (r instanceof Error) throw runtimeError(`zone ${this.zone}: the cut-over RENAME failed: ${r.message}`, { cause: r });
      if (Date.now() > deadline) throw runtimeError(`zone ${this.zone}: the cut-over RENAME did not take ${this.schema}.${name} in time (a session holds it)`);
    }
  }

  /** Whether the RENAME holds the table: only a granted exclusive lock refuses information_schema's high-priority one. */
  private async heldByRename(table: string): Promise<boolean> {
    const n = await this.probeDb!.value<string | number>('SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [this.schema, table]);
    return Number(n) === 0;
  }

  /** Step 6: drop the sentry and unlock; the RENAME completes. Resolves with the time it did. */
  async release(): Promise<number> {
    await this.sentryDb!.exec(`DROP TABLE ${this.q(this.names.sentry)}`);
    await this.sentryDb!.exec('UNLOCK TABLES');
    const r = await this.renaming;
    if (r instanceof Error) throw runtimeError(`zone ${this.zone}: the cut-over RENAME failed: ${r.message}`, { cause: r });
    for (const j of this.jobs) j.progress.phase = 'done';
    // the ghosts are the tables now; the applier has nothing left to write (its job stops it)
    this.releaseApplier?.();
    this.releaseApplier = undefined;
    // the stand-in, renamed to the sentry's name
    await this.sentryDb!.exec(`DROP TABLE IF EXISTS ${this.q(this.names.sentry)}`).catch(() => undefined);
    await this.close();
    return r as number;
  }

  /** A failed attempt: cancel the RENAME, unlock, drop the sentry. The originals are untouched. */
  async undo(): Promise<void> {
    if (this.renaming && this.renameConnId) {
      const killer = this.sentryDb ?? (await this.ctx.connect(this.node));
      await killer.exec(`KILL QUERY ${Number(this.renameConnId)}`).catch(() => undefined);
      if (killer !== this.sentryDb) await killer.close();
      await this.renaming.catch(() => undefined);
    }
    for (const h of this.holds) {
      const killer = this.probeDb ?? this.sentryDb;
      await killer?.exec(`KILL QUERY ${Number(h.connId)}`).catch(() => undefined);
      await h.locking;
      await h.db.exec('UNLOCK TABLES').catch(() => undefined);
    }
    await this.lockDb?.exec('UNLOCK TABLES').catch(() => undefined);
    if (this.releaseApplier) {
      // the ghosts lose the triggers before the applier writes them again (a failure here fails
      // the job, whose ghosts are then dropped with their triggers)
      for (const j of this.jobs) await j.dropGhostTriggers();
      this.releaseApplier();
      this.releaseApplier = undefined;
    }
    if (this.sentryDb) {
      await this.sentryDb.exec('UNLOCK TABLES').catch(() => undefined);
      await this.sentryDb.exec(`DROP TABLE IF EXISTS ${this.q(this.names.sentry)}, ${this.q(this.names.standIn)}`).catch(() => undefined);
    }
    await this.close();
    this.renaming = undefined;
    for (const j of this.jobs) if (j.progress.phase === 'cutting-over') j.progress.phase = 'ready';
  }

  private async close(): Promise<void> {
    await Promise.all([this.lockDb, ...this.holds.map((h) => h.db), this.sentryDb, this.renameDb, this.probeDb].map((d) => d?.close().catch(() => undefined)));
    this.holds = [];
    this.lockDb = this.sentryDb = this.renameDb = this.probeDb = undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The tables of the change that another of its tables references by a foreign key. Measured on
 * MariaDB 10.11: LOCK TABLES t WRITE also locks t's foreign-key children (with or without
 * foreign_key_checks), so a session taking over a parent would wait for its child, held by the
 * RENAME or by the child's own session, until its lock wait timed out: every attempt failed for a
 * parent that sorts after its child (parent/child, a three-level chain). A parent gets no session
 * of its own: a write to it needs its children's metadata locks too, held throughout by the lock
 * session, then the RENAME or their sessions, so it waits (or, holding the parent, loses the
 * deadlock to the RENAME, a DDL); and any write that reached an original all the same is caught
 * before the sentry goes (step 5).
 */
export function referencedWithin(jobs: ReadonlyArray<{ plan: { schema: string; table: string; before: { foreignKeys: ReadonlyArray<{ references: string }> } } }>): Set<string> {
  const names = new Set(jobs.map((j) => `${j.plan.schema}.${j.plan.table}`));
  const out = new Set<string>();
  for (const j of jobs) {
    for (const fk of j.plan.before.foreignKeys) {
      if (fk.references !== `${j.plan.schema}.${j.plan.table}` && names.has(fk.references)) out.add(fk.references.slice(j.plan.schema.length + 1));
    }
  }
  return out;
}
