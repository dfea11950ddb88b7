// Fencing a node: an old master after a failover must never take writes again, even when it comes
// back. Three places hold the fence, each checked by whoever would send it traffic:
//   - the topology file (`clusters.<c>.zones.<z>.fenced`): DRC neither reads from nor writes to a
//     fenced node, `drc repoint` refuses it, and the sandbox restarts it read_only (its "config");
//   - the zone's proxy (RoutingTarget.fence): out of the write route and the read pool, sessions shut;
//   - the server itself when it answers: read_only (the application user has no READ_ONLY ADMIN).
// `emha rejoin` lifts all three once the node replicates from the zone's master.
import type { Ctx } from '../context.js';
import type { Topology, ResolvedNode } from '../config/load.js';
import { editTopologyFile, fenceNode, unfenceNode } from '../config/editor.js';
import { routingTarget } from '../proxy/index.js';

export interface FenceReport {
  node: string;
  /** the topology file changed (false: it already said so) */
  file: boolean;
  /** the proxy's fence, when the zone has one: 'done', 'none' (no proxy), or why it failed */
  proxy: 'done' | 'none' | string;
}

/** Add the node to its zone's fenced list in the topology file (idempotent); the file as it loads now. */
export function fenceInFile(topo: Topology, cluster: string, zone: string, node: string): { topology: Topology; changed: boolean } {
  return editTopologyFile(topo.path, (doc) => fenceNode(doc, cluster, zone, node));
}

/** Take the node off its zone's fenced list (idempotent). */
export function unfenceInFile(topo: Topology, cluster: string, zone: string, node: string): { topology: Topology; changed: boolean } {
  return editTopologyFile(topo.path, (doc) => unfenceNode(doc, cluster, zone, node));
}

/**
 * Fence the node everywhere: the file first (what every later reader and a restarted sandbox node
 * go by), then the zone's proxy. A proxy that cannot be told throws: a failover must not go on
 * believing the node is out of the routes.
 */
export async function fenceNodeEverywhere(ctx: Ctx, topo: Topology, node: Pick<ResolvedNode, 'cluster' | 'zone' | 'name'>): Promise<FenceReport> {
  const f = fenceInFile(topo, node.cluster, node.zone, node.name);
  const proxy = routingTarget(f.topology, node.cluster, node.zone);
  if (proxy) {
    await proxy.fence(node.name);
    ctx.log.info(`${proxy.label}: ${node.name} fenced (out of every route, its sessions shut)`);
  }
  return { node: node.name, file: f.changed, proxy: proxy ? 'done' : 'none' };
}

/**
 * Lift the fence everywhere: the proxy first (it only lets the node be routed to again; it puts it
 * in no route), then the file.
 */
export async function unfenceNodeEverywhere(ctx: Ctx, topo: Topology, node: Pick<ResolvedNode, 'cluster' | 'zone' | 'name'>): Promise<FenceReport> {
  const proxy = routingTarget(topo, node.cluster, node.zone);
  if (proxy) {
    await proxy.unfence(node.name);
    ctx.log.info(`${proxy.label}: ${node.name} unfenced`);
  }
  const f = unfenceInFile(topo, node.cluster, node.zone, node.name);
  return { node: node.name, file: f.changed, proxy: proxy ? 'done' : 'none' };
}
