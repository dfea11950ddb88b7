// `check schema`: read every table's shape on every node (db/introspect), compare each with its
// reference (db/shape-compare) and report the differences. `check full` compares structure first
// too, with the same filter (tableFilter).
import pLimit from 'p-limit';
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import { readShapes, type TableShape } from '../db/introspect.js';
import { compareShapes, describeDiff, type ShapeDiff, type ShapeDiffKind } from '../db/shape-compare.js';
import { compilePatterns, type TableMatcher } from '../config/patterns.js';
import { compileRules } from '../cluster/rules.js';
import { badInput } from '../exit.js';

// ---------------------------------------------------------------------------------------------
// check schema

export interface SchemaDiff {
  /** the node whose structure differs */
  node: string;
  /** the node it was compared against (the reference master, or the replica's own master) */
  against: string;
  kind: ShapeDiffKind;
  object: string;
  /** the value on `against`; null when `against` lacks the object */
  left: string | null;
  /** the value on `node`; null when `node` lacks the object */
  right: string | null;
}

export interface SchemaReport {
  consistent: boolean;
  cluster: string;
  /** the master every other zone's master is compared against */
  reference: string;
  nodes: string[];
  comparisons: { node: string; against: string }[];
  /** distinct tables seen on any node (after the filters) */
  tablesCompared: number;
  /** only the tables that differ, in name order */
  tables: Array<{ table: string; diffs: SchemaDiff[] }>;
}

export interface CheckSchemaOptions {
  cluster?: string;
  zones?: string[];
  tables?: string;
  exclude?: string;
  /** false: masters only */
  replicas?: boolean;
}

/** What a structure check covers: what DRC replicates (the cluster's databases and drc rules), narrowed by --tables/--exclude. */
export function tableFilter(cluster: { databases?: string[] | undefined; drc?: { include?: string[] | undefined; exclude?: string[] | undefined } | undefined }, o: { tables?: string; exclude?: string }): TableMatcher {
  const replicated = compileRules({ databases: cluster.databases, include: cluster.drc?.include, exclude: cluster.drc?.exclude });
  const include = compilePatterns(o.tables);
  const exclude = compilePatterns(o.exclude);
  return (s, t) => replicated(s, t) && (!include || include(s, t)) && !(exclude && exclude(s, t));
}

export async function checkSchema(ctx: Ctx, opts: CheckSchemaOptions): Promise<SchemaReport> {
  // Everything the user typed is checked before any server is contacted.
  const topo = await ctx.topology();
  const cluster = topo.cluster(opts.cluster);
  topo.zonesChosen(cluster.name, opts.zones);
  const known = topo.zonesOf(cluster.name);
  const filter = tableFilter(cluster.config, opts);
  // The reference: the first zone asked for, else a global cluster's writer zone, else the first zone.
  const writer = cluster.config.writerZone;
  const zones = opts.zones ?? (writer && known.includes(writer) ? [writer, ...known.filter((z) => z !== writer)] : known);
  const all = topo.nodes(cluster.name);
  const masters = zones.map((z) => topo.master(cluster.name, z));
  const replicas = opts.replicas === false ? [] : zones.flatMap((z) => all.filter((n) => n.zone === z && n.role === 'replica'));
  const reference = masters[0]!;
  const comparisons: { node: ResolvedNode; against: ResolvedNode }[] = [
    ...masters.slice(1).map((m) => ({ node: m, against: reference })),
    ...replicas.map((r) => ({ node: r, against: masters.find((m) => m.zone === r.zone)! })),
  ];
  if (comparisons.length === 0) {
    throw badInput(`nothing to compare: only ${reference.name} is selected`, { hint: 'name two zones with --zones, or leave out --no-replicas' });
  }
  const nodes = masters.flatMap((m) => [m, ...replicas.filter((r) => r.zone === m.zone)]);

  ctx.log.info(`reading table structure on ${nodes.map((n) => n.name).join(', ')}`);
  const limit = pLimit(8);
  const shapesByNode = new Map<string, Map<string, TableShape>>();
  await Promise.all(nodes.map((node) => limit(async () => {
    const started = Date.now();
    const db = await ctx.connect(node);
    try {
      const shapes = await readShapes(db, filter);
      shapesByNode.set(node.name, shapes);
      ctx.log.debug(`${node.name}: ${shapes.size} tables in ${Date.now() - started} ms`);
    } finally {
      await db.close();
    }
  })));

  const allTables = new Set<string>();
  for (const shapes of shapesByNode.values()) for (const t of shapes.keys()) allTables.add(t);
  const byTable = new Map<string, SchemaDiff[]>();
  for (const { node, against } of comparisons) {
    const mine = shapesByNode.get(node.name)!;
    const theirs = shapesByNode.get(against.name)!;
    const push = (table: string, d: ShapeDiff) => {
      const list = byTable.get(table) ?? [];
      list.push({ node: node.name, against: against.name, ...d });
      byTable.set(table, list);
    };
    for (const table of allTables) {
      const a = theirs.get(table);
      const b = mine.get(table);
      if (!a && !b) continue;
      if (!a || !b) push(table, { kind: 'table-missing', object: table, left: a ? 'table' : null, right: b ? 'table' : null });
      else for (const d of compareShapes(a, b)) push(table, d);
    }
  }
  if (allTables.size === 0) ctx.log.warn('no table matched: check --tables/--exclude and the cluster\'s databases');
  const tables = [...byTable].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([table, diffs]) => ({ table, diffs }));
  return {
    consistent: tables.length === 0,
    cluster: cluster.name,
    reference: reference.name,
    nodes: nodes.map((n) => n.name),
    comparisons: comparisons.map((c) => ({ node: c.node.name, against: c.against.name })),
    tablesCompared: allTables.size,
    tables,
  };
}

// ---------------------------------------------------------------------------------------------
// Rendering

export function renderSchemaReport(r: SchemaReport): string {
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  if (r.consistent) return `consistent: ${plural(r.tablesCompared, 'table')} identical on ${plural(r.nodes.length, 'node')} (reference ${r.reference})`;
  const lines: string[] = [];
  for (const t of r.tables) {
    lines.push(t.table);
    for (const d of t.diffs) lines.push(`  ${d.node} vs ${d.against}: ${describeDiff(d, d.against)}`);
  }
  lines.push(`${plural(r.tables.length, 'table')} differ${r.tables.length === 1 ? 's' : ''} out of ${r.tablesCompared} compared (reference ${r.reference})`);
  return lines.join('\n');
}
