// What a move does, before it does anything: the table mappings (source table -> target table,
// column by column, by one key), the target DDL to create, row estimates, and the refusals.
import type { TableMapping } from '../apply/mapping.js';
import type { TableShape } from '../db/introspect.js';
import type { DbusMove } from './spec.js';

/** The catalogs a plan is built from: each source's shapes by label, and the target's, keyed "db.table". */
export interface MoveShapes {
  sources: Map<string /* source label */, Map<string /* "db.table" */, TableShape>>;
  target: Map<string /* "db.table" */, TableShape>;
}

/** One apply/copy mapping of a move: a TableMapping plus the source it reads (its label). */
export interface DbusMapping extends TableMapping {
  /** the label of the source whose table this maps */
  label: string;
}

/**
 * The apply/copy mappings of a move (contract C1 -> C2): C1 writes the 1:1 case (a moved or
 * renamed table: every source column to the same-named target column, keyed by the source's row
 * key); C2 extends it for `merge` and `where`. `problems` are plan refusals (exit 4).
 * `shapes.target` holds the target tables that exist; a missing one is mapped from the source's
 * shape (it will be created like it).
 */
export function tableMappings(move: DbusMove, shapes: MoveShapes): { mappings: DbusMapping[]; problems: string[] } {
  void move;
  void shapes;
  throw new Error('dbus: tableMappings is not written yet');
}
