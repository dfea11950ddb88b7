// What DRC replicates: the cluster's schemas minus what its rules exclude. Never: system
// schemas, the `_ezctl` state (except the heartbeat, which travels on purpose), and the online
// schema change's ghost, changelog and sentry tables (ezctl osc's t_ezgho, t_ezdel, t_ezcut,
// t_ezcut0; gh-ost's
// _t_gho, _t_ghc, _t_del).
import { compilePatterns, type TableMatcher } from '../config/patterns.js';
import { SYSTEM_SCHEMAS } from '../db/introspect.js';
import { STATE_SCHEMA } from '../state/schema.js';

export const HEARTBEAT_TABLE = 'drc_heartbeat';
export const CHECKPOINT_TABLE = 'drc_checkpoint';
/** a helper table's name around its table's name (`name`, a regex source) */
const helperName = (name: string) => `(?:_${name}_(?:gho|ghc|del)|${name}_ez(?:gho|del|cut|cut0))`;
const HELPER_TABLE = new RegExp(`^${helperName('.+')}$`);
/** the same names inside a statement's text, quoted or not */
const HELPER_IN_STATEMENT = new RegExp(`(?:^|[\\s\`.,(])${helperName('\\w+')}(?=[\\s\`.,();]|$)`);
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

/**
 * A statement about a schema change's helper tables (creating or altering the ghost, the
 * cut-over's RENAME and sentry): each zone runs its own, so DRC never forwards one, even with
 * --replicate-ddl.
 */
export function namesHelperTable(query: string): boolean {
  return HELPER_IN_STATEMENT.test(query);
}

export interface ReplicationRules {
  databases?: string[];
  include?: string[];
  exclude?: string[];
}

export function compileRules(r: ReplicationRules): TableMatcher {
  const include = compilePatterns(r.include);
  const exclude = compilePatterns(r.exclude);
  const dbs = r.databases ? new Set(r.databases) : undefined;
  return (schema, table) => {
    if (schema === STATE_SCHEMA) return table === HEARTBEAT_TABLE;
    if (SYSTEM_SCHEMAS.includes(schema)) return false;
    if (HELPER_TABLE.test(table)) return false;
    if (dbs && !dbs.has(schema)) return false;
    if (include && !include(schema, table)) return false;
    if (exclude && exclude(schema, table)) return false;
    return true;
  };
}
