// DRC's contract with every other tool, part 3: what DRC replicates. The cluster's schemas minus
// what its rules exclude. Never: system schemas, the `_ezctl` state (except the heartbeat, which
// travels on purpose), and an online schema change's helper tables (cluster/helper-tables.ts).
// The daemon, the consistency check and `topo check` use this one matcher.
import { compilePatterns, type TableMatcher } from '../config/patterns.js';
import { SYSTEM_SCHEMAS } from '../db/introspect.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { HEARTBEAT_TABLE } from './tables.js';
import { isHelperTable } from './helper-tables.js';

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
    if (isHelperTable(table)) return false;
    if (dbs && !dbs.has(schema)) return false;
    if (include && !include(schema, table)) return false;
    if (exclude && exclude(schema, table)) return false;
    return true;
  };
}
