// One zone's part of an online schema change, gh-ost's way and without triggers:
//  - the ghost table (_t_gho) is created with the change applied;
//  - the table's binlog changes from that moment on are applied to the ghost (REPLACE / DELETE
//    of the final state per key, in batches), including what DRC writes into the table here;
//  - rows are copied in key order through the shared chunker (INSERT ... SELECT ... LOCK IN
//    SHARE MODE; a row the binlog applier already wrote is kept, being newer);
//  - before the cut-over, original and ghost are compared chunk by chunk and a differing chunk
//    is copied again (REPLACE), which is safe because later binlog changes still follow;
//  - the cut-over (cutover.ts, for all the tables of a change in a zone at once) locks the table,
//    waits here until the ghost has every change up to the lock, and renames.
// Only the ghost is ever written; the original is read, never changed.
import type { Ctx } from '../context.js';
import type { Db, QueryError } from '../db/connect.js';
import type { ResolvedNode } from '../config/load.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { gtidCovers } from '../db/gtid.js';
import { runtimeError } from '../exit.js';
import { BinlogStream, type BinlogTx, type Row } from '../binlog/stream.js';
import { SourcePosition } from '../binlog/position.js';
import { toParam } from '../binlog/values.js';
import { Chunker, chunkRange } from '../chunk/chunker.js';
import { decodeKey, encodeKey, keyIn, keyText, type KeyValue, type SqlPart } from '../chunk/keys.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { chunkChecksumSql, type CompareColumn, type TableTarget } from '../dcp/checksum.js';
import type { Throttler } from '../throttle/throttler.js';
import type { Logger } from '../ui/log.js';
import type { OscPlan } from './plan.js';

const APPLY_BATCH = 1000;

export interface ZoneProgress {
  zone: string;
  phase: 'starting' | 'copying' | 'verifying' | 'ready' | 'cutting-over' | 'done' | 'failed' | 'aborted';
  rowsCopied: number;
  chunks: number;
  chunksRecopied: number;
  eventsApplied: number;
  backlog: number;
  cutOverAt?: number;
}

export class ZoneOsc {
  readonly progress: ZoneProgress;
  private copyDb!: Db;
  private applyDb!: Db;
  private stream: BinlogStream | undefined;
  private readPos!: SourcePosition;
  private appliedPos = '';
  private queue: Array<{ changes: BinlogTx['changes']; posAfter: string }> = [];
  /** while a batch is being applied: the position reached once it is committed */
  private applyingPos: string | undefined;
  private applying: Promise<void> | undefined;
  private failure: Error | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly ctx: Ctx,
    readonly zone: string,
    readonly node: ResolvedNode,
    readonly plan: OscPlan,
    private readonly o: { chunkTimeMs: number; throttler?: Throttler | undefined; log: Logger; serverId: number; job: string },
  ) {
    this.progress = { zone, phase: 'starting', rowsCopied: 0, chunks: 0, chunksRecopied: 0, eventsApplied: 0, backlog: 0 };
  }

  private get t(): string {
    return quoteTable(this.plan.schema, this.plan.table);
  }

  private get ghost(): string {
    return quoteTable(this.plan.schema, this.plan.names.ghost);
  }

  private chunkers: Chunker[] = [];
  /** stop() ends a copy that waits on the throttle, too */
  private readonly halt = new AbortController();

  /** `osc set chunk-time=...`: the running copy and verify adapt to the new target. */
  setChunkTime(ms: number): void {
    this.o.chunkTimeMs = ms;
    for (const c of this.chunkers) c.setTargetMs(ms);
  }

  /** The ghost table, and the binlog applier from the position at which it was created. */
  /** The state a crashed run of this job saved here, if any (for --resume). */
  static async savedState(db: Db, job: string, zone: string): Promise<{ alter: string; lastKey: KeyValue | undefined; appliedPos: string; rowsCopied: number } | undefined> {
    const r = await db
      .one<{ alter_text: string; last_key: string | null; applied_pos: string; rows_copied: string | number }>(`SELECT alter_text, last_key, applied_pos, rows_copied FROM ${quoteTable(STATE_SCHEMA, 'osc_state')} WHERE job = ? AND zone = ?`, [job, zone])
      .catch(() => undefined);
    if (!r) return undefined;
    return { alter: r.alter_text, lastKey: r.last_key ? decodeKey(r.last_key) : undefined, appliedPos: r.applied_pos, rowsCopied: Number(r.rows_copied) };
  }

  private lastSave = 0;

  /** Where the copy and the binlog apply are: what --resume starts from after a crash. */
  private async saveState(lastKey: KeyValue | undefined, force = false): Promise<void> {
    if (!force && Date.now() - this.lastSave < 1000) return;
    this.lastSave = Date.now();
    await this.copyDb.exec(
      `INSERT INTO ${quoteTable(STATE_SCHEMA, 'osc_state')} (job, zone, alter_text, last_key, applied_pos, rows_copied, phase) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON DUPLICATE KEY UPDATE last_key = VALUES(last_key), applied_pos = VALUES(applied_pos), rows_copied = VALUES(rows_copied), phase = VALUES(phase)`,
      [this.o.job, this.zone, this.plan.alter, lastKey ? encodeKey(lastKey) : null, this.appliedPos, this.progress.rowsCopied, this.progress.phase],
    );
  }

  async clearState(): Promise<void> {
    const db = await this.ctx.connect(this.node);
    try {
      await db.exec(`DELETE FROM ${quoteTable(STATE_SCHEMA, 'osc_state')} WHERE job = ? AND zone = ?`, [this.o.job, this.zone]).catch(() => undefined);
    } finally {
      await db.close();
    }
  }

  async start(resume?: { lastKey: KeyValue | undefined; appliedPos: string; rowsCopied: number }): Promise<void> {
    this.copyDb = await this.ctx.connect(this.node);
    this.applyDb = await this.ctx.connect(this.node);
    for (const db of [this.copyDb, this.applyDb]) {
      // strict like the server's own default, so a value the new shape cannot hold fails the job
      // instead of being cut short; ROW binlogs for the ghost writes
      await db.exec('SET SESSION sql_mode = @@GLOBAL.sql_mode');
      await db.exec("SET SESSION binlog_format = 'ROW'");
      await db.exec('SET SESSION innodb_lock_wait_timeout = 10');
    }
    await ensureStateSchema(this.copyDb);
    let from: string;
    if (resume) {
      // the ghost is there: re-apply the binlog from the saved position (REPLACE and DELETE of
      // final states are idempotent) and copy on from the saved key
      from = resume.appliedPos;
      this.resumeAfter = resume.lastKey;
      this.progress.rowsCopied = resume.rowsCopied;
    } else {
      await this.copyDb.exec(`CREATE TABLE ${this.ghost} LIKE ${this.t}`);
      await this.copyDb.exec(`ALTER TABLE ${this.ghost} ${this.plan.alter}`);
      from = String(await this.copyDb.value('SELECT @@global.gtid_binlog_pos'));
    }
    this.readPos = new SourcePosition('mariadb', from);
    this.appliedPos = from;
    const ep = await this.ctx.endpoint(this.node);
    this.stream = new BinlogStream({
      endpoint: ep,
      flavor: 'mariadb',
      from,
      serverId: this.o.serverId,
      // the copy's own writes into the ghost would otherwise be decoded row by row (half the CPU)
      onlyTables: { [this.plan.schema]: [this.plan.table] },
      onTx: (tx) => this.onTx(tx),
      onError: (e) => this.fail(runtimeError(`zone ${this.zone}: reading the binlog: ${e.message}`, { cause: e })),
    });
    await this.stream.start();
    this.applying = this.applyLoop();
    await this.saveState(this.resumeAfter, true);
  }

  private resumeAfter: KeyValue | undefined;
  /** changes to the table read from the binlog so far (the cut-over compares it across its steps) */
  changesSeen = 0;

  private onTx(tx: BinlogTx): void {
    this.readPos.advance(tx.gtid);
    const changes = tx.changes.filter((c) => c.schema === this.plan.schema && c.table === this.plan.table);
    const posAfter = this.readPos.toString();
    if (changes.length === 0) {
      // a transaction on other tables: the applied position may pass it only once everything
      // queued or being applied before it is in the ghost (the cut-over waits on this position)
      if (this.queue.length) this.queue.at(-1)!.posAfter = posAfter;
      else if (this.applyingPos !== undefined) this.applyingPos = posAfter;
      else this.appliedPos = posAfter;
      return;
    }
    this.queue.push({ changes, posAfter });
    this.changesSeen += changes.length;
    this.progress.backlog += changes.length;
    this.wake?.();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.wake?.();
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  /** Apply queued binlog changes to the ghost: per batch, the final state of each key. */
  private async applyLoop(): Promise<void> {
    const cols = this.plan.columns;
    const key = this.plan.key.columns;
    while (!this.stopped) {
      if (this.queue.length === 0) {
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, 100);
        });
        this.wake = undefined;
        continue;
      }
      const batch: typeof this.queue = [];
      let n = 0;
      while (this.queue.length && n < APPLY_BATCH) {
        const q = this.queue.shift()!;
        batch.push(q);
        n += q.changes.length;
      }
      this.applyingPos = batch.at(-1)!.posAfter;
      const finalState = new Map<string, { key: KeyValue; row: Row | null }>();
      const keyOf = (row: Row): KeyValue => key.map((k) => toParam(row[k]));
      for (const q of batch) {
        for (const c of q.changes) {
          if (c.before && (c.kind === 'delete' || c.kind === 'update')) {
            const k = keyOf(c.before);
            finalState.set(keyText(k), { key: k, row: null });
          }
          if (c.after) {
            const k = keyOf(c.after);
            const id = keyText(k);
            finalState.delete(id); // re-inserted last: order of writes follows the last change
            finalState.set(id, { key: k, row: c.after });
          }
        }
      }
      try {
        await retryOnLockConflict(async () => {
          await this.applyDb.exec('BEGIN');
          const deletes = [...finalState.values()].filter((s) => !s.row);
          if (deletes.length) {
            const k = keyIn(key, deletes.map((d) => d.key));
            await this.applyDb.exec(`DELETE FROM ${this.ghost} WHERE ${k.sql}`, k.params);
          }
          const rows = [...finalState.values()].filter((s) => s.row);
          if (rows.length) {
            const one = `(${cols.map(() => '?').join(', ')})`;
            await this.applyDb.exec(
              `REPLACE INTO ${this.ghost} (${cols.map((c) => quoteId(c.to)).join(', ')}) VALUES ${rows.map(() => one).join(', ')}`,
              rows.flatMap((r) => cols.map((c) => toParam(r.row![c.from]))),
            );
          }
          await this.applyDb.exec('COMMIT');
        }, () => this.applyDb.exec('ROLLBACK').then(() => undefined));
      } catch (e) {
        await this.applyDb.exec('ROLLBACK').catch(() => undefined);
        this.fail(runtimeError(`zone ${this.zone}: applying binlog changes to ${this.plan.names.ghost} failed: ${(e as Error).message}`, { cause: e }));
        return;
      }
      this.progress.eventsApplied += n;
      this.progress.backlog -= n;
      this.appliedPos = this.applyingPos;
      this.applyingPos = undefined;
    }
  }

  /** Copy every row of the original into the ghost, in key order, in chunks sized to the time target. */
  async copy(): Promise<void> {
    this.progress.phase = 'copying';
    const p = this.plan;
    const target = this.checksumTarget(p.table);
    const chunker = await this.chunker(target, this.resumeAfter);
    const from = p.columns.map((c) => quoteId(c.from)).join(', ');
    const to = p.columns.map((c) => quoteId(c.to)).join(', ');
    const k0 = quoteId(p.key.columns[0]!);
    for (;;) {
      this.check();
      await this.o.throttler?.gate(this.halt.signal);
      const chunk = await chunker.next();
      if (!chunk) break;
      const range = chunkRange({ index: p.key.index, columns: p.key.columns }, chunk);
      const t0 = Date.now();
      // a row already written by the binlog applier is newer than this read: keep it
      const r = await retryOnLockConflict(() =>
        this.copyDb.exec(
          `INSERT INTO ${this.ghost} (${to}) SELECT ${from} FROM ${this.t} FORCE INDEX (${quoteId(p.key.index)}) WHERE ${range.sql} LOCK IN SHARE MODE ON DUPLICATE KEY UPDATE ${quoteId(p.columns.find((c) => c.from === p.key.columns[0])!.to)} = ${this.ghost}.${k0}`,
          range.params,
        ),
      );
      const copied = Number(r.affectedRows ?? 0);
      chunker.record(Math.max(copied, 1), Date.now() - t0);
      this.progress.rowsCopied += copied;
      this.progress.chunks++;
      await this.saveState(chunker.position);
    }
    await this.saveState(undefined, true);
  }

  /** The compared columns of the original (old names) or of the ghost (new names). */
  private checksumTarget(table: string): TableTarget {
    const p = this.plan;
    const original = table === p.table;
    const columns: CompareColumn[] = p.verifyColumns.map((name) => {
      const c = p.after.columns.find((x) => x.name === name)!;
      const from = p.columns.find((x) => x.to === name)!.from;
      const old = p.before.columns.find((x) => x.name === from);
      // one NULL bitmap for both tables: nullable if either shape allows NULL
      return { name: original ? from : name, dataType: c.dataType, nullable: c.nullable || !!old?.nullable };
    });
    return { schema: p.schema, table, index: p.key.index, keyColumns: p.key.columns, columns, hash: 'crc64' };
  }

  private async chunker(target: TableTarget, after?: KeyValue): Promise<Chunker> {
    const p = this.plan;
    const opts: ConstructorParameters<typeof Chunker>[4] = { targetMs: this.o.chunkTimeMs };
    if (after) opts.after = p.key.integer ? [BigInt(String(after[0]))] : after;
    if (p.key.integer) {
      const col = quoteId(p.key.columns[0]!);
      const b = await this.copyDb.one<{ lo: string | null; hi: string | null }>(`SELECT CAST(MIN(${col}) AS CHAR) AS lo, CAST(MAX(${col}) AS CHAR) AS hi FROM ${this.t}`);
      opts.numericMin = b?.lo ? BigInt(b.lo) : null;
      opts.numericMax = b?.hi ? BigInt(b.hi) : null;
    }
    const c = new Chunker(this.copyDb, target.schema, p.table, { index: p.key.index, columns: p.key.columns, integer: p.key.integer }, opts);
    this.chunkers.push(c);
    return c;
  }

  /** Compare original and ghost chunk by chunk on the carried-over columns; copy a differing chunk again. */
  async verify(): Promise<void> {
    this.progress.phase = 'verifying';
    await this.caughtUp(60_000);
    const p = this.plan;
    const orig = this.checksumTarget(p.table);
    const ghost = { ...this.checksumTarget(p.names.ghost), index: p.key.index };
    const chunker = await this.chunker(orig);
    for (;;) {
      this.check();
      await this.o.throttler?.gate(this.halt.signal);
      const chunk = await chunker.next();
      if (!chunk) break;
      const range = chunkRange({ index: p.key.index, columns: p.key.columns }, chunk);
      const t0 = Date.now();
      if (!(await this.sameChunk(orig, ghost, range))) {
        // the applier may just be behind: give it a moment, then copy the chunk again
        await this.caughtUp(10_000);
        if (!(await this.sameChunk(orig, ghost, range))) {
          await this.recopy(range);
          this.progress.chunksRecopied++;
        }
      }
      chunker.record(chunk.plannedRows, Date.now() - t0);
    }
    this.progress.phase = 'ready';
  }

  private async sameChunk(orig: TableTarget, ghost: TableTarget, range: SqlPart): Promise<boolean> {
    const a = chunkChecksumSql(orig, range, false);
    const b = chunkChecksumSql(ghost, range, false);
    const x = await this.copyDb.one(a.sql, a.params);
    const y = await this.copyDb.one(b.sql, b.params);
    return String(x?.cnt) === String(y?.cnt) && String(x?.crc) === String(y?.crc);
  }

  private async recopy(range: SqlPart): Promise<void> {
    const p = this.plan;
    const from = p.columns.map((c) => quoteId(c.from)).join(', ');
    const to = p.columns.map((c) => quoteId(c.to)).join(', ');
    await retryOnLockConflict(async () => {
      await this.copyDb.exec('BEGIN');
      // the original's rows, locked while they are read; rows the ghost has that the original no
      // longer has go too
      await this.copyDb.exec(`DELETE FROM ${this.ghost} WHERE ${range.sql}`, range.params);
      await this.copyDb.exec(`INSERT INTO ${this.ghost} (${to}) SELECT ${from} FROM ${this.t} FORCE INDEX (${quoteId(p.key.index)}) WHERE ${range.sql} LOCK IN SHARE MODE`, range.params);
      await this.copyDb.exec('COMMIT');
    }, () => this.copyDb.exec('ROLLBACK').then(() => undefined));
  }

  /** Wait until the applier has applied everything the binlog held when this was called. */
  async caughtUp(timeoutMs: number): Promise<void> {
    const target = String(await this.copyDb.value('SELECT @@global.gtid_binlog_pos'));
    const deadline = Date.now() + timeoutMs;
    while (!gtidCovers('mariadb', this.appliedPos, target)) {
      this.check();
      if (Date.now() > deadline) throw runtimeError(`zone ${this.zone}: the binlog applier did not catch up within ${timeoutMs} ms (${this.progress.backlog} changes queued)`);
      await sleep(20);
    }
  }

  /** Carry the original's AUTO_INCREMENT to the ghost, read under the cut-over lock (lockDb holds it). */
  async carryAutoIncrement(lockDb: Db): Promise<void> {
    // The ghost's counter only knows the ids copied into it; the original's may be higher (rows
    // at the end deleted): carry it over, so no id is handed out twice.
    const next = await lockDb.value<string | number | null>('SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [this.plan.schema, this.plan.table]);
    if (next !== null && next !== undefined) await this.copyDb.exec(`ALTER TABLE ${this.ghost} AUTO_INCREMENT = ${BigInt(String(next)).toString()}`);
  }

  /** Wait until the binlog reader has read everything up to target (applied or not). */
  async readUpTo(target: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!gtidCovers('mariadb', this.readPos.toString(), target)) {
      this.check();
      if (Date.now() > deadline) throw runtimeError(`zone ${this.zone}: the binlog reader did not reach ${target} within ${timeoutMs} ms`);
      await sleep(5);
    }
  }

  /** Stop the applier and close everything; with dropHelpers, the ghost and sentry go (abort). */
  async stop(dropHelpers: boolean): Promise<void> {
    this.stopped = true;
    this.halt.abort(new Error(`zone ${this.zone}: stopped`));
    this.wake?.();
    await this.stream?.stop().catch(() => undefined);
    await this.applying?.catch(() => undefined);
    if (dropHelpers && this.progress.phase !== 'done') {
      const db = this.copyDb ?? (await this.ctx.connect(this.node));
      await db.exec(`DROP TABLE IF EXISTS ${this.ghost}`).catch(() => undefined);
      if (db !== this.copyDb) await db.close();
      this.progress.phase = 'aborted';
    }
    await Promise.all([this.copyDb, this.applyDb].map((d) => d?.close().catch(() => undefined)));
  }
}

/**
 * The copy, the binlog applier and the application touch the same rows: a deadlock or a lock
 * wait timeout rolls one of them back, and it simply runs again (as gh-ost does).
 */
async function retryOnLockConflict<T>(fn: () => Promise<T>, rollback?: () => Promise<void>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      const code = (e as QueryError).code;
      if (i >= attempts || (code !== 'ER_LOCK_DEADLOCK' && code !== 'ER_LOCK_WAIT_TIMEOUT')) throw e;
      await rollback?.().catch(() => undefined);
      await sleep(20 * i);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
