// DRC's contract with every other tool, part 1: its tables in `_ezctl`, the GTID domain offset it
// writes under, and the marker of a statement that is DRC's own (or run by ezctl in every zone by
// itself). Imported by osc, dcp, migrate and the throttle without loading the daemon.

/** Where each zone's heartbeat row is written; it travels through DRC on purpose, to measure lag. */
export const HEARTBEAT_TABLE = 'drc_heartbeat';
/** Per direction ("cluster:from->to"), at its target: the source position applied, in the apply's own transaction. */
export const CHECKPOINT_TABLE = 'drc_checkpoint';
/** Last-writer-wins conflicts DRC resolved, at the target. */
export const CONFLICTS_TABLE = 'drc_conflicts';
/** Writes to a shard owned by another zone, at the target. */
export const ILLEGAL_WRITES_TABLE = 'drc_illegal_writes';
/** Transactions skipped (--skip-errors) and DDL seen, at the target. */
export const EVENTS_TABLE = 'drc_events';

/** DRC writes what it applies under the source zone's GTID domain + this offset. */
export const DEFAULT_DRC_DOMAIN_OFFSET = 1000;

const OWN_DDL_PREFIX = '/* ezctl-drc ';

/**
 * The comment that marks a statement as DRC's own (or run by ezctl in every zone by itself): DRC
 * neither reports nor forwards it, even with --replicate-ddl. `what` says who wrote it.
 */
export function ownDdlMarker(what: string): string {
  return `${OWN_DDL_PREFIX}${what.replace(/[^A-Za-z0-9_ =-]/g, '')} */ `;
}

export function hasOwnDdlMarker(query: string): boolean {
  return query.includes(OWN_DDL_PREFIX);
}
