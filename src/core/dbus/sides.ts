// The servers of a move as a cut-over or rollback sees them: each source and the target resolved to
// a node (a zone master by cluster/zone, or an instance by DSN with the topology file's
// credentials), the moved tables on each side (what the fence covers), and the forward mappings
// the reverse stream turns around (plan.ts reverseMappings: a merge routed back shard by shard).
import type { Topology, ResolvedNode } from '../config/load.js';
import { parseConnectionString } from '../config/dsn.js';
import type { Db } from '../db/connect.js';
import { readShapes } from '../db/introspect.js';
import { badInput } from '../exit.js';
import type { DbusEndpointRef, DbusMove } from './spec.js';
import { tableMappings, type DbusMapping } from './plan.js';
import type { FenceTable } from './fence.js';
import type { DbusServerRef } from './route.js';

/** The node a move's endpoint names (its credentials: the cluster's, or the file's for a DSN). */
export function refNode(topo: Topology, ref: DbusEndpointRef): ResolvedNode {
  if (ref.dsn) {
    const d = parseConnectionString(ref.dsn);
    const credentials = { ...topo.file.credentials, ...(d.user ? { user: d.user } : {}) };
    const n: ResolvedNode = { cluster: ref.cluster ?? `dbus`, zone: ref.zone ?? ref.label, role: 'master', name: ref.label, host: d.host, port: d.port ?? 3306, credentials, baseDir: topo.dir };
    if (d.socket) n.socket = d.socket;
    return n;
  }
  if (!ref.cluster || !ref.zone) throw badInput(`dbus endpoint ${ref.label} names neither a DSN nor a cluster and zone`);
  const m = topo.master(ref.cluster, ref.zone);
  return { ...m, name: `${ref.label} (${m.name})` };
}


/** Each source's moved tables (the fence on the sources), keyed by source label. */
export function sourceTables(move: DbusMove): Map<string, FenceTable[]> {
  const out = new Map<string, FenceTable[]>();
  for (const s of move.sources) out.set(s.label, []);
  for (const t of move.tables) {
    for (const s of t.sources) {
      const list = out.get(s.source) ?? [];
      if (!list.some((x) => x.schema === s.table.schema && x.table === s.table.table)) list.push({ schema: s.table.schema, table: s.table.table });
      out.set(s.source, list);
    }
  }
  return out;
}

/** The target's moved tables (the fence on the target). */
export function targetTables(move: DbusMove): FenceTable[] {
  const seen = new Set<string>();
  const out: FenceTable[] = [];
  for (const t of move.tables) {
    const k = `${t.target.schema}.${t.target.table}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push({ schema: t.target.schema, table: t.target.table });
    }
  }
  return out;
}

/**
 * Why the move cannot be streamed back (target -> sources): a filter (the target's other rows
 * would be written back too), a merge without a rule (which shard a row goes back to is not
 * known). A merge with a shard-column or offset rule is routed back shard by shard (plan.ts
 * reverseMappings).
 */
export function reverseProblems(move: DbusMove): string[] {
  const out: string[] = [];
  for (const t of move.tables) {
    const name = `${t.target.schema}.${t.target.table}`;
    if (t.where) out.push(`${name} moves only the rows WHERE ${t.where}: a reverse stream would write the target's other rows back too`);
    else if (t.sources.length > 1 && !t.merge) out.push(`${name} is a merge of ${t.sources.length} source tables without a merge rule: which shard table a target row goes back to cannot be told (declare merge: shard-column or offset)`);
  }
  return out;
}

/** The move's forward mappings, from the sources' and the target's catalogs as they are now. */
export async function forwardMappings(move: DbusMove, dbs: { sources: Map<string, Db>; target: Db }): Promise<DbusMapping[]> {
  const sources = new Map<string, Map<string, import('../db/introspect.js').TableShape>>();
  for (const [label, db] of dbs.sources) sources.set(label, await readShapes(db));
  const target = await readShapes(dbs.target);
  const { mappings, problems } = tableMappings(move, { sources, target });
  if (problems.length) throw badInput(`dbus ${move.name}: the mappings cannot be built`, { details: problems });
  return mappings;
}

/** The reverse stream's name for one source (its checkpoint row at that source). */
export const reverseStreamName = (move: string, label: string) => `dbus-reverse:${move}:${label}`.slice(0, 191);
