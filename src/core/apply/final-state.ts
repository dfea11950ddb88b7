// A batch of row changes reduced to the final state of each key: deleted, or the last row image.
// Applying final states (DELETE, REPLACE) is idempotent, and the order of keys does not matter,
// so a batch is a few statements however many changes it holds.
import type { RowChange, Row } from '../binlog/stream.js';
import { keyText, type KeyValue } from '../chunk/keys.js';
import { keyOfRow, tableId, type TableMapping } from './mapping.js';

export interface FinalState {
  key: KeyValue;
  /** null: the key is deleted */
  row: Row | null;
  /** the mapping the row came through (its columns) */
  mapping: TableMapping;
}

/**
 * Per target table (in the order of their first change), per key (in the order of each key's last
 * change): its final state. An update that changes the key deletes the old key.
 */
export function finalStates(changes: readonly RowChange[], mappingOf: (c: RowChange) => TableMapping): Map<string, Map<string, FinalState>> {
  const perTarget = new Map<string, Map<string, FinalState>>();
  for (const c of changes) {
    const m = mappingOf(c);
    const id = tableId(m.target);
    let states = perTarget.get(id);
    if (!states) perTarget.set(id, (states = new Map()));
    if (c.before && (c.kind === 'delete' || c.kind === 'update')) {
      const k = keyOfRow(m, c.before);
      states.set(keyText(k), { key: k, row: null, mapping: m });
    }
    if (c.after) {
      const k = keyOfRow(m, c.after);
      const t = keyText(k);
      states.delete(t); // re-inserted last: the order of writes follows the last change
      states.set(t, { key: k, row: c.after, mapping: m });
    }
  }
  return perTarget;
}
