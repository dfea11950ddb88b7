// One zone's binlog applier for an online schema change: one reader for every table of the change
// (one table, or a family linked by foreign keys), applying their changes to the ghosts in binlog
// order, in batches, as the final state of each key (REPLACE / DELETE).
//
// Ghost writes run with foreign_key_checks = 0 (a child row may be copied before its parent), so
// InnoDB cascades nothing in the ghosts; and the server never writes a cascade's changes to the
// binlog (the child rows an ON DELETE CASCADE removes appear nowhere). So a parent's delete or key
// change is followed here by what its foreign keys do (CASCADE, SET NULL) in the child ghosts, at
// that point of the order: a batch is cut after such a change, so a child row written before it
// in the batch is removed and one written after it stays.
import type { Ctx } from '../context.js';
import type { Db, QueryError } from '../db/connect.js';
import type { ResolvedNode } from '../config/load.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { gtidCovers } from '../db/gtid.js';
import { runtimeError } from '../exit.js';
import { DEFAULT_LOCK_WAIT_S, isLockWaitTimeout, lockWaitError } from '../db/lockwait.js';
import { BinlogStream, type BinlogTx, type Row, type RowChange } from '../binlog/stream.js';
import { SourcePosition } from '../binlog/position.js';
import { toParam } from '../binlog/values.js';
import { keyIn, keyText, type KeyValue } from '../chunk/keys.js';
import type { ZoneProgress } from './zone.js';

const APPLY_BATCH = 1000;

export interface ApplierTable {
  table: string;
  ghost: string;
  /** original column -> ghost column */
  columns: Array<{ from: string; to: string }>;
  /** the key rows are identified by (original names, the same in the ghost) */
  key: string[];
  progress: ZoneProgress;
}

/** A foreign key between two tables of the change, as the ghosts must follow it. */
export interface CascadeRule {
  parent: string;
  parentColumns: string[];
  child: string;
  childColumns: string[];
  onDelete: string;
  onUpdate: string;
}

type CascadeOp =
  | { kind: 'delete'; rule: CascadeRule; values: KeyValue }
  | { kind: 'set-null'; rule: CascadeRule; values: KeyValue }
  | { kind: 'update'; rule: CascadeRule; values: KeyValue; to: KeyValue };

export class ZoneApplier {
  private db!: Db;
  private stream: BinlogStream | undefined;
  private readPos!: SourcePosition;
  appliedPos = '';
  private queue: Array<{ changes: RowChange[]; posAfter: string }> = [];
  /** while a batch is being applied: the position reached once it is committed */
  private applyingPos: string | undefined;
  private applying: Promise<void> | undefined;
  private failure: Error | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  /** changes to the tables read from the binlog so far (the cut-over compares it across its steps) */
  changesSeen = 0;
  private readonly byTable: Map<string, ApplierTable>;
  /** settles when every ghost writer queued so far is done (see exclusive); never rejects */
  private writersDone: Promise<void> = Promise.resolve();
  /** copy chunks running side by side since the last exclusive writer (see shared) */
  private sharedGroup: { start: Promise<void>; running: Set<Promise<void>> } | undefined;

  constructor(
    private readonly ctx: Ctx,
    readonly zone: string,
    private readonly node: ResolvedNode,
    private readonly schema: string,
    tables: ApplierTable[],
    private readonly rules: CascadeRule[],
    private readonly serverId: number,
    /** the bound on a batch's metadata lock waits (a session's DDL or LOCK TABLES on a ghost) */
    private readonly lockWaitS = DEFAULT_LOCK_WAIT_S,
  ) {
    this.byTable = new Map(tables.map((t) => [t.table, t]));
  }

  async start(from: string): Promise<void> {
    this.db = await this.ctx.connect(this.node);
    await this.db.exec('SET SESSION sql_mode = @@GLOBAL.sql_mode');
    await this.db.exec("SET SESSION binlog_format = 'ROW'");
    await this.db.exec('SET SESSION innodb_lock_wait_timeout = 10');
    await this.db.exec('SET SESSION foreign_key_checks = 0');
    await this.db.exec('SET SESSION lock_wait_timeout = ?', [this.lockWaitS]);
    this.readPos = new SourcePosition('mariadb', from);
    this.appliedPos = from;
    this.stream = new BinlogStream({
      endpoint: await this.ctx.endpoint(this.node),
      flavor: 'mariadb',
      from,
      serverId: this.serverId,
      // the copy's own writes into the ghosts would otherwise be decoded row by row (half the CPU)
      decodeTable: (schema, table) => schema === this.schema && this.byTable.has(table),
      onTx: (tx) => this.onTx(tx),
      onError: (e) => this.fail(runtimeError(`zone ${this.zone}: reading the binlog: ${e.message}`, { cause: e })),
    });
    await this.stream.start();
    this.applying = this.loop();
  }

  private onTx(tx: BinlogTx): void {
    this.readPos.advance(tx.gtid);
    const changes = tx.changes.filter((c) => c.schema === this.schema && this.byTable.has(c.table));
    const posAfter = this.readPos.toString();
    if (changes.length === 0) {
      // a transaction on other tables: the applied position may pass it only once everything
      // queued or being applied before it is in the ghosts (the cut-over waits on this position)
      if (this.queue.length) this.queue.at(-1)!.posAfter = posAfter;
      else if (this.applyingPos !== undefined) this.applyingPos = posAfter;
      else this.appliedPos = posAfter;
      return;
    }
    this.queue.push({ changes, posAfter });
    this.changesSeen += changes.length;
    for (const c of changes) this.byTable.get(c.table)!.progress.backlog++;
    this.wake?.();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.wake?.();
  }

  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Wait until everything the binlog held when this was called is in the ghosts. */
  async caughtUp(db: Db, timeoutMs: number): Promise<void> {
    const target = String(await db.value('SELECT @@global.gtid_binlog_pos'));
    const deadline = Date.now() + timeoutMs;
    while (!gtidCovers('mariadb', this.appliedPos, target)) {
      this.check();
      if (Date.now() > deadline) throw runtimeError(`zone ${this.zone}: the binlog applier did not catch up within ${timeoutMs} ms (${this.backlog()} changes queued)`);
      await sleep(20);
    }
  }

  /** Wait until the reader has read everything up to target (applied or not). */
  async readUpTo(target: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!gtidCovers('mariadb', this.readPos.toString(), target)) {
      this.check();
      if (Date.now() > deadline) throw runtimeError(`zone ${this.zone}: the binlog reader did not reach ${target} within ${timeoutMs} ms`);
      await sleep(5);
    }
  }

  /**
   * Run fn as the only writer to the zone's ghosts: a copy chunk and an applier batch never run
   * at once (as in gh-ost). Run together they wait on each other's ghost row locks (or deadlock),
   * and a copy chunk waiting holds its shared locks on the original's rows all the while, so the
   * application's writes to them wait too: measured, the application waited three times longer
   * than with pt-online-schema-change until the two were taken in turn.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.sharedGroup = undefined;
    const run = this.writersDone.then(fn);
    this.writersDone = run.then(() => undefined, () => undefined);
    return run;
  }

  /**
   * Run fn beside other shared writers (copy chunks of disjoint key ranges: they touch different
   * ghost rows) but never beside an exclusive one (an applier batch). Queued in order: a shared
   * writer that comes after an exclusive one waits for it, so batches are not starved.
   */
  shared<T>(fn: () => Promise<T>): Promise<T> {
    const g = (this.sharedGroup ??= { start: this.writersDone, running: new Set() });
    const run = g.start.then(fn);
    const settled = run.then(() => undefined, () => undefined);
    g.running.add(settled);
    void settled.then(() => g.running.delete(settled));
    // the next exclusive writer waits until none of the group is running (the set holds at most
    // one entry per copy thread, so this stays cheap however many chunks a copy has)
    this.writersDone = g.start.then(async () => {
      while (g.running.size) await Promise.all([...g.running]);
    });
    return run;
  }

  /**
   * Hold the ghosts for the caller: no batch is applied until the returned release is called
   * (the cut-over, while the ghosts have the triggers). Resolves once a batch being applied is done.
   */
  async hold(): Promise<() => void> {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await new Promise<void>((started) => {
      void this.exclusive(async () => {
        started();
        await gate;
      });
    });
    return release;
  }

  private backlog(): number {
    return [...this.byTable.values()].reduce((n, t) => n + t.progress.backlog, 0);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (this.queue.length === 0) {
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, 100);
        });
        this.wake = undefined;
        continue;
      }
      const batch: RowChange[] = [];
      let end = '';
      while (this.queue.length && batch.length < APPLY_BATCH) {
        const q = this.queue.shift()!;
        batch.push(...q.changes);
        end = q.posAfter;
      }
      this.applyingPos = end;
      const segments = this.segments(batch);
      try {
        await this.exclusive(() => retryOnLockConflict(async () => {
          await this.db.exec('BEGIN');
          for (const s of segments) {
            await this.applyFinalStates(s.changes);
            for (const op of s.cascades) await this.cascade(op, 0);
          }
          await this.db.exec('COMMIT');
        }, () => this.db.exec('ROLLBACK').then(() => undefined)));
      } catch (e) {
        await this.db.exec('ROLLBACK').catch(() => undefined);
        const ghosts = [...this.byTable.values()].map((t) => t.ghost);
        this.fail(isLockWaitTimeout(e)
          ? await lockWaitError(this.db, { seconds: this.lockWaitS, schema: this.schema, tables: ghosts, what: `zone ${this.zone}: applying binlog changes to the ghost table(s)`, fix: 'or wait; then --resume continues the job' }, e)
          : runtimeError(`zone ${this.zone}: applying binlog changes to the ghost table(s) failed: ${(e as Error).message}`, { cause: e }));
        return;
      }
      for (const c of batch) {
        const p = this.byTable.get(c.table)!.progress;
        p.eventsApplied++;
        p.backlog--;
      }
      this.appliedPos = this.applyingPos;
      this.applyingPos = undefined;
    }
  }

  /** The batch cut after every change whose foreign keys act on child ghosts. */
  private segments(batch: RowChange[]): Array<{ changes: RowChange[]; cascades: CascadeOp[] }> {
    const out: Array<{ changes: RowChange[]; cascades: CascadeOp[] }> = [{ changes: [], cascades: [] }];
    for (const c of batch) {
      out.at(-1)!.changes.push(c);
      const ops = this.cascadesOf(c);
      if (ops.length) {
        out.at(-1)!.cascades = ops;
        out.push({ changes: [], cascades: [] });
      }
    }
    return out;
  }

  private cascadesOf(c: RowChange): CascadeOp[] {
    const ops: CascadeOp[] = [];
    if (!c.before || (c.kind !== 'delete' && c.kind !== 'update')) return ops;
    for (const rule of this.rules) {
      if (rule.parent !== c.table) continue;
      const values = rule.parentColumns.map((col) => toParam(c.before![col]));
      if (values.some((v) => v === null)) continue;
      if (c.kind === 'delete') {
        if (rule.onDelete === 'CASCADE') ops.push({ kind: 'delete', rule, values });
        else if (rule.onDelete === 'SET NULL') ops.push({ kind: 'set-null', rule, values });
      } else {
        const to = rule.parentColumns.map((col) => toParam(c.after![col]));
        if (keyText(to) === keyText(values)) continue;
        if (rule.onUpdate === 'CASCADE') ops.push({ kind: 'update', rule, values, to });
        else if (rule.onUpdate === 'SET NULL') ops.push({ kind: 'set-null', rule, values });
      }
    }
    return ops;
  }

  /** One foreign key's action on a child ghost, and on to its own children (a delete cascades on). */
  private async cascade(op: CascadeOp, depth: number): Promise<void> {
    if (depth > 15) throw new Error('foreign keys cascade more than 15 levels deep');
    const child = this.byTable.get(op.rule.child)!;
    const ghost = quoteTable(this.schema, child.ghost);
    const ghostCol = (col: string) => quoteId(child.columns.find((c) => c.from === col)?.to ?? col);
    const where = op.rule.childColumns.map((col) => `${ghostCol(col)} = ?`).join(' AND ');
    if (op.kind === 'delete') {
      for (const next of this.rules.filter((r) => r.parent === child.table)) {
        const rows = await this.db.query<Row>(`SELECT ${next.parentColumns.map(ghostCol).join(', ')} FROM ${ghost} WHERE ${where}`, op.values);
        for (const r of rows) {
          const values = next.parentColumns.map((col) => toParam(r[child.columns.find((c) => c.from === col)?.to ?? col]));
          if (values.some((v) => v === null)) continue;
          if (next.onDelete === 'CASCADE') await this.cascade({ kind: 'delete', rule: next, values }, depth + 1);
          else if (next.onDelete === 'SET NULL') await this.cascade({ kind: 'set-null', rule: next, values }, depth + 1);
        }
      }
      await this.db.exec(`DELETE FROM ${ghost} WHERE ${where}`, op.values);
    } else if (op.kind === 'set-null') {
      await this.db.exec(`UPDATE ${ghost} SET ${op.rule.childColumns.map((col) => `${ghostCol(col)} = NULL`).join(', ')} WHERE ${where}`, op.values);
    } else {
      await this.db.exec(`UPDATE ${ghost} SET ${op.rule.childColumns.map((col) => `${ghostCol(col)} = ?`).join(', ')} WHERE ${where}`, [...op.to, ...op.values]);
    }
  }

  /** A segment's changes as the final state of each key, table by table: deletes, then REPLACEs. */
  private async applyFinalStates(changes: RowChange[]): Promise<void> {
    const perTable = new Map<string, Map<string, { key: KeyValue; row: Row | null }>>();
    for (const c of changes) {
      const t = this.byTable.get(c.table)!;
      let states = perTable.get(c.table);
      if (!states) perTable.set(c.table, (states = new Map()));
      const keyOf = (row: Row): KeyValue => t.key.map((k) => toParam(row[k]));
      if (c.before && (c.kind === 'delete' || c.kind === 'update')) {
        const k = keyOf(c.before);
        states.set(keyText(k), { key: k, row: null });
      }
      if (c.after) {
        const k = keyOf(c.after);
        const id = keyText(k);
        states.delete(id); // re-inserted last: the order of writes follows the last change
        states.set(id, { key: k, row: c.after });
      }
    }
    for (const [table, states] of perTable) {
      const t = this.byTable.get(table)!;
      const ghost = quoteTable(this.schema, t.ghost);
      const deletes = [...states.values()].filter((s) => !s.row);
      if (deletes.length) {
        const k = keyIn(t.key, deletes.map((d) => d.key));
        await this.db.exec(`DELETE FROM ${ghost} WHERE ${k.sql}`, k.params);
      }
      const rows = [...states.values()].filter((s) => s.row);
      if (rows.length) {
        const one = `(${t.columns.map(() => '?').join(', ')})`;
        await this.db.exec(
          `REPLACE INTO ${ghost} (${t.columns.map((c) => quoteId(c.to)).join(', ')}) VALUES ${rows.map(() => one).join(', ')}`,
          rows.flatMap((r) => t.columns.map((c) => toParam(r.row![c.from]))),
        );
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.stream?.stop().catch(() => undefined);
    // a loop held by the cut-over (hold) ends when it is let go; the job does not wait for that
    await Promise.race([this.applying?.catch(() => undefined), sleep(5000)]);
    await this.db?.close().catch(() => undefined);
  }
}

/**
 * The copy, the binlog applier and the application touch the same rows: a deadlock or a lock
 * wait timeout rolls one of them back, and it simply runs again (as gh-ost does).
 */
export async function retryOnLockConflict<T>(fn: () => Promise<T>, rollback?: () => Promise<void>, attempts = 10): Promise<T> {
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
