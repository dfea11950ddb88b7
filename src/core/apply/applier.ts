// The binlog batch applier: one binlog reader on a source for a set of mapped tables, their changes
// applied to the targets (on the same server or another) in binlog order, in batches, each batch
// as the final state of each key (DELETE, REPLACE) in one transaction of the target. A caller's
// checkpoint (the position after the batch) can be written in that same transaction, so a process
// killed at any point (kill -9) resumes from exactly what the target has: no batch applied twice
// or lost.
//
// Writers to the targets take turns with it (exclusive/shared): a copy chunk and a batch never run
// at once, as in gh-ost (see exclusive).
import type { Db, Endpoint, QueryError } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { gtidCovers } from '../db/gtid.js';
import { badInput, runtimeError } from '../exit.js';
import { DEFAULT_LOCK_WAIT_S, isLockWaitTimeout, lockWaitError } from '../db/lockwait.js';
import { BinlogStream, type BinlogTx, type RowChange } from '../binlog/stream.js';
import { SourcePosition } from '../binlog/position.js';
import { toParam } from '../binlog/values.js';
import { keyIn } from '../chunk/keys.js';
import { finalStates } from './final-state.js';
import { mappingProblems, readColumns, sourceValue, tableId, targetKey, type TableMapping } from './mapping.js';
import { splitCollisions, type Collision } from './collisions.js';
import type { Row } from '../binlog/stream.js';

const APPLY_BATCH = 1000;

export interface BatchApplierOptions {
  /** what messages start with ("zone bj") */
  label: string;
  /** the targets, as messages name them ("the ghost table(s)") */
  targetsName: string;
  /** what a lock wait that ran out tells the operator to do */
  lockWaitFix: string;
  /** the binlog's server */
  source: () => Promise<Endpoint>;
  /** the replica server id the reader announces (unique per reader on the source) */
  serverId: number;
  /** a new session on the target server (the applier sets it up and closes it) */
  connectTarget: () => Promise<Db>;
  mappings: TableMapping[];
  /** the bound on a batch's metadata lock waits (a session's DDL or LOCK TABLES on a target) */
  lockWaitS?: number;
  /** written in each batch's transaction, after its rows: the position the target now has */
  checkpoint?: ((target: Db, pos: string) => Promise<void>) | undefined;
  /** changes per batch (default 1000) */
  batchSize?: number;
  /**
   * A statement (DDL) the source logged: what to do before the stream goes past it. 'pass' goes
   * on (nothing is applied for it); an Error stops the applier there (its position stays before
   * the statement, nothing after it is read); a Promise holds the stream before it (later
   * transactions are kept, unapplied) until it settles with one of those. Default: 'pass'.
   */
  onStatement?: ((tx: BinlogTx) => 'pass' | Error | Promise<'pass' | Error>) | undefined;
  /**
   * While a statement is held: each later statement read (in order), seen before it is passed (a
   * merge's DDL hold learns what the other shard tables of the same source do). When given, the
   * reader keeps reading while held (up to HELD_MAX transactions kept in memory), else it pauses.
   */
  onHeldStatement?: ((tx: BinlogTx) => void) | undefined;
  /**
   * A row of a mapping with uniqueKeys that would overwrite another source's row in the target:
   * it is not written; this records it, in the batch's transaction (default: the batch fails).
   */
  onCollision?: ((target: Db, c: Collision) => Promise<void>) | undefined;
  /**
   * A routed table's row image that no mapping of the whole routing takes (`orphanWhere`): called
   * with the message naming it, and the image goes nowhere (the caller says where it stays and what
   * catches it). Without it the apply stops with that message.
   */
  onOrphan?: ((message: string) => void) | undefined;
}

/** A queued transaction's commit time in ms: its binlog second's last millisecond, or when it was read if earlier. */
export function commitEstimate(q: { timestampMs: number; readAtMs: number }): number {
  return Math.min(q.timestampMs + 999, q.readAtMs);
}

/** Transactions kept in memory while a statement is held and the reader goes on (onHeldStatement). */
const HELD_MAX = 100_000;

export class BatchApplier {
  protected db!: Db;
  private stream: BinlogStream | undefined;
  private readPos!: SourcePosition;
  appliedPos = '';
  private queue: Array<{ changes: RowChange[]; posAfter: string; timestampMs: number; readAtMs: number }> = [];
  /** while a statement is held (onStatement's Promise): the transactions read after it, in order */
  private held: BinlogTx[] | undefined;
  /** the commit time (binlog, whole seconds) of the transaction being applied, when one is */
  private applyingTs: number | undefined;
  /** while a batch is being applied: the position reached once it is committed */
  private applyingPos: string | undefined;
  private applying: Promise<void> | undefined;
  private failure: Error | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  /** changes to the tables read from the binlog so far (the cut-over compares it across its steps) */
  changesSeen = 0;
  protected readonly bySource: Map<string, TableMapping>;
  /** settles when every target writer queued so far is done (see exclusive); never rejects */
  private writersDone: Promise<void> = Promise.resolve();
  /** copy chunks running side by side since the last exclusive writer (see shared) */
  private sharedGroup: { start: Promise<void>; running: Set<Promise<void>> } | undefined;
  protected readonly lockWaitS: number;

  constructor(protected readonly o: BatchApplierOptions) {
    const problems = mappingProblems(o.mappings);
    if (problems.length) throw badInput(`${o.label}: the table mapping cannot be applied`, { details: problems });
    for (const m of o.mappings) {
      const list = this.routes.get(tableId(m.source));
      if (list) list.push(m);
      else this.routes.set(tableId(m.source), [m]);
    }
    this.bySource = new Map([...this.routes].map(([id, list]) => [id, list[0]!]));
    this.lockWaitS = o.lockWaitS ?? DEFAULT_LOCK_WAIT_S;
  }

  /** The mapping of a change's table (a change read is always of a mapped table), or the one a routed change was given. */
  protected mappingOf(c: RowChange): TableMapping {
    return this.routed.get(c) ?? this.bySource.get(`${c.schema}\0${c.table}`)!;
  }

  /** source table -> its mappings (several: routed by their row filters) */
  private readonly routes = new Map<string, TableMapping[]>();
  /** a change routed to one of several mappings of its table (filtered) */
  private readonly routed = new WeakMap<RowChange, TableMapping>();

  async start(from: string): Promise<void> {
    this.db = await this.o.connectTarget();
    await this.db.exec('SET SESSION sql_mode = @@GLOBAL.sql_mode');
    await this.db.exec("SET SESSION binlog_format = 'ROW'");
    await this.db.exec('SET SESSION innodb_lock_wait_timeout = 10');
    await this.db.exec('SET SESSION foreign_key_checks = 0');
    await this.db.exec('SET SESSION lock_wait_timeout = ?', [this.lockWaitS]);
    this.readPos = new SourcePosition('mariadb', from);
    this.appliedPos = from;
    this.stream = new BinlogStream({
      endpoint: await this.o.source(),
      flavor: 'mariadb',
      from,
      serverId: this.o.serverId,
      // the copy's own writes into the targets would otherwise be decoded row by row (half the CPU)
      decodeTable: (schema, table) => this.bySource.has(`${schema}\0${table}`),
      onTx: (tx) => this.onTx(tx),
      onError: (e) => this.fail(runtimeError(`${this.o.label}: reading the binlog: ${e.message}`, { cause: e })),
    });
    await this.stream.start();
    this.applying = this.loop();
  }

  /** The position of the last transaction read from the source. */
  get readPosition(): string {
    return this.readPos?.toString() ?? '';
  }

  /**
   * How far the targets are behind the source: now minus the oldest unapplied transaction's commit
   * time (0 when none waits). The binlog gives that time in whole seconds: it is taken as the
   * latest it can be, the second's end or when the transaction was read, whichever comes first (a
   * stream reading live reads a commit within milliseconds; the second's start overstated the lag
   * by up to a second).
   */
  lagMs(): number {
    const oldest = this.applyingTs ?? (this.queue[0] ? commitEstimate(this.queue[0]) : undefined);
    return oldest === undefined ? 0 : Math.max(0, Date.now() - oldest);
  }

  private onTx(tx: BinlogTx): void {
    if (this.failure || this.stopped) return;
    if (this.held) {
      this.held.push(tx);
      if (tx.statement) this.o.onHeldStatement?.(tx);
      if (this.held.length === HELD_MAX) this.stream?.pause();
      return;
    }
    if (tx.statement && this.o.onStatement) {
      const v = this.o.onStatement(tx);
      if (v instanceof Error) return this.fail(v);
      if (v !== 'pass') {
        this.held = [];
        if (!this.o.onHeldStatement) this.stream?.pause();
        void v.then((r) => r, (e: Error) => e).then((r) => {
          const later = this.held ?? [];
          this.held = undefined;
          if (r instanceof Error) return this.fail(r);
          this.pass(tx);
          this.stream?.resume();
          for (const t of later) this.onTx(t);
        });
        return;
      }
    }
    this.pass(tx);
  }

  private pass(tx: BinlogTx): void {
    this.readPos.advance(tx.gtid);
    const changes = tx.changes.filter((c) => this.bySource.has(`${c.schema}\0${c.table}`));
    const posAfter = this.readPos.toString();
    if (changes.length === 0) {
      // a transaction on other tables: the applied position may pass it only once everything
      // queued or being applied before it is in the targets (a cut-over waits on this position)
      if (this.queue.length) this.queue.at(-1)!.posAfter = posAfter;
      else if (this.applyingPos !== undefined) this.applyingPos = posAfter;
      else this.appliedPos = posAfter;
      return;
    }
    this.queue.push({ changes, posAfter, timestampMs: tx.timestampMs, readAtMs: Date.now() });
    this.changesSeen += changes.length;
    for (const c of changes) {
      const n = this.mappingOf(c).counters;
      if (n) n.backlog++;
    }
    this.wake?.();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.wake?.();
  }

  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Wait until everything the source's binlog held when this was called is in the targets (db: a session on the source). */
  async caughtUp(db: Db, timeoutMs: number): Promise<void> {
    const target = String(await db.value('SELECT @@global.gtid_binlog_pos'));
    const deadline = Date.now() + timeoutMs;
    while (!gtidCovers('mariadb', this.appliedPos, target)) {
      this.check();
      if (Date.now() > deadline) throw runtimeError(`${this.o.label}: the binlog applier did not catch up within ${timeoutMs} ms (${this.backlog()} changes queued)`);
      await sleep(20);
    }
  }

  /** Wait until the reader has read everything up to target (applied or not). */
  async readUpTo(target: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!gtidCovers('mariadb', this.readPos.toString(), target)) {
      this.check();
      if (Date.now() > deadline) throw runtimeError(`${this.o.label}: the binlog reader did not reach ${target} within ${timeoutMs} ms`);
      await sleep(5);
    }
  }

  /**
   * Run fn as the only writer to the targets: a copy chunk and an applier batch never run at once
   * (as in gh-ost). Run together they wait on each other's row locks (or deadlock), and a copy
   * chunk waiting holds its shared locks on the source's rows all the while, so the application's
   * writes to them wait too: measured, the application waited three times longer than with
   * pt-online-schema-change until the two were taken in turn.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.sharedGroup = undefined;
    const run = this.writersDone.then(fn);
    this.writersDone = run.then(() => undefined, () => undefined);
    return run;
  }

  /**
   * Run fn beside other shared writers (copy chunks of disjoint key ranges: they touch different
   * target rows) but never beside an exclusive one (an applier batch). Queued in order: a shared
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
   * Hold the targets for the caller: no batch is applied until the returned release is called
   * (osc's cut-over, while the ghosts have the triggers). Resolves once a batch being applied is done.
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
    return this.o.mappings.reduce((n, m) => n + (m.counters?.backlog ?? 0), 0);
  }

  /**
   * After which changes a batch is cut, and what then follows in the targets (osc: the foreign
   * keys' cascades in the child ghosts, which the binlog does not carry). None by default.
   */
  protected followUps(_c: RowChange): unknown[] {
    return [];
  }

  protected async applyFollowUp(_op: unknown): Promise<void> {
    /* none by default */
  }

  private async loop(): Promise<void> {
    const size = this.o.batchSize ?? APPLY_BATCH;
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
      this.applyingTs = commitEstimate(this.queue[0]!);
      while (this.queue.length && batch.length < size) {
        const q = this.queue.shift()!;
        batch.push(...q.changes);
        end = q.posAfter;
      }
      this.applyingPos = end;
      let segments: ReturnType<BatchApplier['segments']>;
      try {
        segments = this.segments(await this.filtered(batch));
      } catch (e) {
        this.fail(runtimeError((e as { orphan?: boolean }).orphan ? `${this.o.label}: ${(e as Error).message}` : `${this.o.label}: evaluating the row filter (where) of ${this.o.targetsName}: ${(e as Error).message}`, { cause: e }));
        return;
      }
      try {
        await this.exclusive(() => retryOnLockConflict(async () => {
          await this.db.exec('BEGIN');
          for (const s of segments) {
            await this.applyFinalStates(s.changes);
            for (const op of s.followUps) await this.applyFollowUp(op);
          }
          if (this.o.checkpoint) await this.o.checkpoint(this.db, end);
          await this.db.exec('COMMIT');
        }, () => this.db.exec('ROLLBACK').then(() => undefined)));
      } catch (e) {
        await this.db.exec('ROLLBACK').catch(() => undefined);
        const targets = [...new Set(this.o.mappings.map((m) => m.target))];
        this.fail(isLockWaitTimeout(e)
          ? await lockWaitError(this.db, { seconds: this.lockWaitS, schema: targets[0]!.schema, tables: [...new Set(targets.map((t) => t.table))], what: `${this.o.label}: applying binlog changes to ${this.o.targetsName}`, fix: this.o.lockWaitFix }, e)
          : runtimeError(`${this.o.label}: applying binlog changes to ${this.o.targetsName} failed: ${(e as Error).message}`, { cause: e }));
        return;
      }
      for (const c of batch) {
        const n = this.mappingOf(c).counters;
        if (!n) continue;
        n.eventsApplied++;
        n.backlog--;
      }
      this.appliedPos = this.applyingPos;
      this.applyingPos = undefined;
      this.applyingTs = undefined;
    }
  }

  /** The batch cut after every change with follow-ups. */
  private segments(batch: RowChange[]): Array<{ changes: RowChange[]; followUps: unknown[] }> {
    const out: Array<{ changes: RowChange[]; followUps: unknown[] }> = [{ changes: [], followUps: [] }];
    for (const c of batch) {
      out.at(-1)!.changes.push(c);
      const ops = this.followUps(c);
      if (ops.length) {
        out.at(-1)!.followUps = ops;
        out.push({ changes: [], followUps: [] });
      }
    }
    return out;
  }

  /**
   * The batch through the mappings' row filters (where): a row image outside its filter is not
   * carried, so an update moving a row into the filter becomes an insert, one moving it out a
   * delete. The filter is evaluated by the target server on the images' values (one query per
   * 200 images), so it means what it means in the copy's SELECT.
   */
  private async filtered(batch: RowChange[]): Promise<RowChange[]> {
    // every (image, filter) to evaluate: a table's one mapping with a where, or each of a routed
    // table's mappings, and a routed table's orphan condition
    type Probe = { row: Row; m: TableMapping; orphan: boolean; ok: boolean };
    const probes: Probe[] = [];
    const slot = new Map<TableMapping, Map<Row, number>>();
    const orphanSlot = new Map<Row, number>();
    const routesOf = (c: RowChange) => this.routes.get(`${c.schema}\0${c.table}`) ?? [];
    for (const c of batch) {
      const ms = routesOf(c).filter((m) => m.where !== undefined);
      for (const r of [c.before, c.after]) {
        if (!r) continue;
        for (const m of ms) {
          let byRow = slot.get(m);
          if (!byRow) slot.set(m, (byRow = new Map()));
          if (!byRow.has(r)) (byRow.set(r, probes.length), probes.push({ row: r, m, orphan: false, ok: false }));
        }
        // only a row's new image can be left without a table (an old one of no shard leaving
        // that state, by an update giving it a shard or a delete, has nothing to undo anywhere)
        const orphan = r === c.after ? ms.find((m) => m.orphanWhere) : undefined;
        if (orphan && !orphanSlot.has(r)) (orphanSlot.set(r, probes.length), probes.push({ row: r, m: orphan, orphan: true, ok: false }));
      }
    }
    if (!probes.length) return batch;
    // the filter sees the columns the mapping reads; a routing filter every column of the image
    // (a merged table's shard column is routed on, not written back where the shard lacks it)
    const columnsOf = (x: Probe) => {
      const read = readColumns(x.m).map((c) => c.from);
      return x.orphan || x.m.whereParams !== undefined ? [...new Set([...read, ...Object.keys(x.row)])] : read;
    };
    const groups = new Map<string, { idx: number[]; cols: string[] }>();
    probes.forEach((x, i) => {
      const cols = columnsOf(x);
      const k = `${x.orphan ? 'o' : 'w'}\0${this.o.mappings.indexOf(x.m)}\0${cols.join('\0')}`;
      const g = groups.get(k);
      if (g) g.idx.push(i);
      else groups.set(k, { idx: [i], cols });
    });
    for (const { idx, cols } of groups.values()) {
      const { m, orphan } = probes[idx[0]!]!;
      const cond = orphan ? m.orphanWhere!.sql : m.where!;
      const condParams = orphan ? m.orphanWhere!.params : m.whereParams ?? [];
      for (let at = 0; at < idx.length; at += 200) {
        const part = idx.slice(at, at + 200);
        const sel = (n: number) => `SELECT ? AS ${quoteId('__ezctl_image')}${cols.map((c) => `, ${n === 0 ? `? AS ${quoteId(c)}` : '?'}`).join('')}`;
        const rows = await this.db.query<{ i: unknown; ok: unknown }>(
          `SELECT x.${quoteId('__ezctl_image')} AS i, (${cond}) AS ok FROM (${part.map((_, n) => sel(n)).join(' UNION ALL ')}) AS x`,
          [...condParams, ...part.flatMap((i) => [i, ...cols.map((c) => toParam(probes[i]!.row[c]))])],
        );
        for (const r of rows) if (Number(r.ok) === 1 || r.ok === true) probes[Number(r.i)]!.ok = true;
      }
    }
    const inside = (m: TableMapping, r: Row | undefined) => !!r && probes[slot.get(m)!.get(r)!]!.ok;
    const orphaned = [...orphanSlot].filter(([, i]) => probes[i]!.ok).map(([r]) => r);
    const show = (v: unknown) => (v === null || v === undefined ? 'NULL' : typeof v === 'string' ? JSON.stringify(v) : Buffer.isBuffer(v) ? `0x${v.toString('hex')}` : String(v));
    for (const row of orphaned) {
      const c = batch.find((x) => x.after === row || x.before === row)!;
      const m = routesOf(c)[0]!;
      const keyCols = c.pk.length ? c.pk : m.key;
      const key = keyCols.map((k) => `${k} = ${show(row[k])}`).join(', ');
      const message = `a row of ${c.schema}.${c.table} (${key}) goes to no table: ${m.orphanWhere!.why}`;
      if (!this.o.onOrphan) throw Object.assign(new Error(`${message}; it is not dropped: the stream stops before it`), { orphan: true });
      this.o.onOrphan(message);
    }
    const out: RowChange[] = [];
    for (const c of batch) {
      const ms = routesOf(c);
      if (!ms.some((m) => m.where !== undefined)) {
        out.push(c);
        continue;
      }
      for (const m of ms) {
        if (m.where === undefined) continue;
        const b = c.kind !== 'insert' && inside(m, c.before);
        const a = c.kind !== 'delete' && inside(m, c.after);
        let routed: RowChange | undefined;
        if (c.kind === 'update' && b && a) routed = ms.length > 1 ? { ...c } : c;
        else if (b) routed = { ...c, kind: 'delete', after: undefined } as RowChange;
        else if (a) routed = { ...c, kind: 'insert', before: undefined } as RowChange;
        if (!routed) continue;
        if (ms.length > 1) this.routed.set(routed, m);
        out.push(routed);
      }
    }
    return out;
  }

  /** A segment's changes as the final state of each key, target by target: deletes, then REPLACEs. */
  private async applyFinalStates(changes: RowChange[]): Promise<void> {
    for (const states of finalStates(changes, (c) => this.mappingOf(c)).values()) {
      const all = [...states.values()];
      const target = all[0]!.mapping.target;
      const t = quoteTable(target.schema, target.table);
      const deletes = all.filter((s) => !s.row);
      if (deletes.length) {
        const k = keyIn(targetKey(all[0]!.mapping), deletes.map((d) => d.key));
        await this.db.exec(`DELETE FROM ${t} WHERE ${k.sql}`, k.params);
      }
      // one REPLACE per source mapping (their columns may differ), in the order of their first row
      const rowsBy = new Map<TableMapping, typeof all>();
      for (const s of all) {
        if (!s.row) continue;
        let list = rowsBy.get(s.mapping);
        if (!list) rowsBy.set(s.mapping, (list = []));
        list.push(s);
      }
      for (const [m, states] of rowsBy) {
        let rows = states.map((s) => s.row!);
        if (m.uniqueKeys?.length) {
          const split = await splitCollisions(this.db, m, rows);
          for (const c of split.collisions) {
            if (!this.o.onCollision) throw new Error(`a row of ${m.source.schema}.${m.source.table} would overwrite another source's row in ${target.schema}.${target.table} (unique key ${c.uniqueKey.join(', ')})`);
            await this.o.onCollision(this.db, c);
          }
          rows = split.write;
        }
        // rows of one shape in one REPLACE: a row logged before a column was added (a merge's
        // held DDL) lacks it, and the target's default fills it, as the source's ALTER did
        const byShape = new Map<string, { cols: TableMapping['columns']; rows: Row[] }>();
        for (const r of rows) {
          const cols = m.columns.filter((c) => m.constants?.[c.from] !== undefined || c.from in r);
          const k = cols.map((c) => c.to).join('\0');
          let g = byShape.get(k);
          if (!g) byShape.set(k, (g = { cols, rows: [] }));
          g.rows.push(r);
        }
        for (const g of byShape.values()) {
          const one = `(${g.cols.map(() => '?').join(', ')})`;
          await this.db.exec(
            `REPLACE INTO ${t} (${g.cols.map((c) => quoteId(c.to)).join(', ')}) VALUES ${g.rows.map(() => one).join(', ')}`,
            g.rows.flatMap((r) => g.cols.map((c) => toParam(sourceValue(m, r, c.from)))),
          );
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.stream?.stop().catch(() => undefined);
    // a loop held by a caller (hold) ends when it is let go; stopping does not wait for that
    await Promise.race([this.applying?.catch(() => undefined), sleep(5000)]);
    await this.db?.close().catch(() => undefined);
  }
}

/**
 * The copy, the binlog applier and the application touch the same rows: a deadlock or a lock
 * wait timeout rolls one of them back, and it simply runs again (as gh-ost does).
 */
export async function retryOnLockConflict<T>(fn: () => Promise<T>, rollback?: () => Promise<void>, attempts = 10, onRetry?: (reason: 'deadlock' | 'lockWait') => void): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      const code = (e as QueryError).code;
      if (i >= attempts || (code !== 'ER_LOCK_DEADLOCK' && code !== 'ER_LOCK_WAIT_TIMEOUT')) throw e;
      onRetry?.(code === 'ER_LOCK_DEADLOCK' ? 'deadlock' : 'lockWait');
      await rollback?.().catch(() => undefined);
      await sleep(20 * i);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
