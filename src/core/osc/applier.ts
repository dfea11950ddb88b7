// One zone's binlog applier for an online schema change: the shared applier (apply/) with one
// reader for every table of the change (one table, or a family linked by foreign keys), applying
// their changes to the ghosts in binlog order, in batches, as the final state of each key.
//
// Ghost writes run with foreign_key_checks = 0 (a child row may be copied before its parent), so
// InnoDB cascades nothing in the ghosts; and the server never writes a cascade's changes to the
// binlog (the child rows an ON DELETE CASCADE removes appear nowhere). So a parent's delete or key
// change is followed here by what its foreign keys do (CASCADE, SET NULL) in the child ghosts, at
// that point of the order: a batch is cut after such a change, so a child row written before it
// in the batch is removed and one written after it stays.
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import type { Row, RowChange } from '../binlog/stream.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { DEFAULT_LOCK_WAIT_S } from '../db/lockwait.js';
import { toParam } from '../binlog/values.js';
import { keyText, type KeyValue } from '../chunk/keys.js';
import { BatchApplier } from '../apply/applier.js';
import type { ZoneProgress } from './zone.js';

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

export class ZoneApplier extends BatchApplier {
  private readonly byTable: Map<string, ApplierTable>;

  constructor(
    ctx: Ctx,
    readonly zone: string,
    node: ResolvedNode,
    private readonly schema: string,
    tables: ApplierTable[],
    private readonly rules: CascadeRule[],
    serverId: number,
    /** the bound on a batch's metadata lock waits (a session's DDL or LOCK TABLES on a ghost) */
    lockWaitS = DEFAULT_LOCK_WAIT_S,
  ) {
    super({
      label: `zone ${zone}`,
      targetsName: 'the ghost table(s)',
      lockWaitFix: 'or wait; then --resume continues the job',
      source: () => ctx.endpoint(node),
      serverId,
      connectTarget: () => ctx.connect(node),
      lockWaitS,
      // original -> ghost in the zone's own server; the progress counts each table's changes
      mappings: tables.map((t) => ({ source: { schema, table: t.table }, target: { schema, table: t.ghost }, columns: t.columns, key: t.key, counters: t.progress })),
    });
    this.byTable = new Map(tables.map((t) => [t.table, t]));
  }

  protected override followUps(c: RowChange): CascadeOp[] {
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

  protected override applyFollowUp(op: unknown): Promise<void> {
    return this.cascade(op as CascadeOp, 0);
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
}
