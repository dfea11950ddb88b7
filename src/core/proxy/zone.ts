// A zone's proxy as the topology file records it (clusters.<c>.zones.<z>.proxy), with its paths
// resolved from the file's folder, and the routing target that drives it.
import type { Topology } from '../config/load.js';
import { expandPath } from '../config/load.js';
import { parseHostPort } from '../config/dsn.js';
import { HaproxyTarget, type HaproxyTargetOptions } from './haproxy.js';
import type { RouteNode, RoutingTarget } from './routing.js';
import { addressFrom } from '../config/via.js';

export interface ZoneProxy {
  cluster: string;
  zone: string;
  kind: 'haproxy';
  write: { host: string; port: number };
  read: { host: string; port: number } | null;
  admin: string;
  config: string;
  /** its listeners as seen from other zones (`via:`), when they are reached differently there */
  via?: Record<string, { write: { host: string; port: number }; read: { host: string; port: number } | null }>;
}

const hp = (s: string) => {
  const a = parseHostPort(s);
  return { host: a.host, port: a.port! };
};

/** The zone's proxy, or undefined when the file names none. */
export function zoneProxy(topo: Topology, cluster: string, zone: string): ZoneProxy | undefined {
  const p = topo.cluster(cluster).config.zones[zone]?.proxy;
  if (!p) return undefined;
  const out: ZoneProxy = { cluster, zone, kind: p.kind, write: hp(p.write), read: p.read ? hp(p.read) : null, admin: expandPath(p.admin, topo.dir), config: expandPath(p.config, topo.dir) };
  if (p.via) out.via = Object.fromEntries(Object.entries(p.via).map(([z, v]) => [z, { write: hp(v.write), read: v.read ? hp(v.read) : null }]));
  return out;
}

export function targetOf(p: ZoneProxy, seen?: HaproxyTargetOptions['seen']): RoutingTarget {
  return new HaproxyTarget({ config: p.config, admin: p.admin, label: `proxy ${p.cluster}/${p.zone} (${p.write.host}:${p.write.port})`, ...(seen ? { seen } : {}) });
}

/**
 * Nodes of the cluster as the zone's proxy reaches them: another zone's node at its address seen
 * from this zone (`via:`, config/via.ts), and back. Undefined when no node has a via for the zone.
 */
export function seenFromZone(topo: Topology, cluster: string, zone: string): HaproxyTargetOptions['seen'] {
  const to = new Map<string, { host: string; port: number }>();
  const back = new Map<string, { host: string; port: number }>();
  const key = (a: { host: string; port: number }) => `${a.host}:${a.port}`;
  for (const n of topo.nodes(cluster)) {
    const a = addressFrom(n, zone);
    if (!a.seenFrom) continue;
    to.set(key(n), { host: a.host, port: a.port });
    back.set(key(a), { host: n.host, port: n.port });
  }
  if (!to.size) return undefined;
  return {
    to: (n: RouteNode) => ({ ...n, ...(to.get(key(n)) ?? {}) }),
    back: (n: RouteNode) => ({ ...n, ...(back.get(key(n)) ?? {}) }),
  };
}

/** The routing target of a zone, or undefined when it has no proxy in the file. */
export function routingTarget(topo: Topology, cluster: string, zone: string): RoutingTarget | undefined {
  const p = zoneProxy(topo, cluster, zone);
  return p ? targetOf(p, seenFromZone(topo, cluster, zone)) : undefined;
}
