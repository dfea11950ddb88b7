// A zone's proxy as the topology file records it (clusters.<c>.zones.<z>.proxy), with its paths
// resolved from the file's folder, and the routing target that drives it.
import type { Topology } from '../config/load.js';
import { expandPath } from '../config/load.js';
import { parseHostPort } from '../config/dsn.js';
import { HaproxyTarget } from './haproxy.js';
import type { RoutingTarget } from './routing.js';

export interface ZoneProxy {
  cluster: string;
  zone: string;
  kind: 'haproxy';
  write: { host: string; port: number };
  read: { host: string; port: number } | null;
  admin: string;
  config: string;
}

const hp = (s: string) => {
  const a = parseHostPort(s);
  return { host: a.host, port: a.port! };
};

/** The zone's proxy, or undefined when the file names none. */
export function zoneProxy(topo: Topology, cluster: string, zone: string): ZoneProxy | undefined {
  const p = topo.cluster(cluster).config.zones[zone]?.proxy;
  if (!p) return undefined;
  return { cluster, zone, kind: p.kind, write: hp(p.write), read: p.read ? hp(p.read) : null, admin: expandPath(p.admin, topo.dir), config: expandPath(p.config, topo.dir) };
}

export function targetOf(p: ZoneProxy): RoutingTarget {
  return new HaproxyTarget({ config: p.config, admin: p.admin, label: `proxy ${p.cluster}/${p.zone} (${p.write.host}:${p.write.port})` });
}

/** The routing target of a zone, or undefined when it has no proxy in the file. */
export function routingTarget(topo: Topology, cluster: string, zone: string): RoutingTarget | undefined {
  const p = zoneProxy(topo, cluster, zone);
  return p ? targetOf(p) : undefined;
}
