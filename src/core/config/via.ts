// The one place an address is chosen for a caller's zone. A node (or a zone's proxy) may be
// reached differently from another zone than from its own (`via:` in the topology file: a relay,
// a NAT, a cross-zone VIP). Every connection ezctl opens to a node goes through addressFrom
// (db/connect.ts resolveEndpoint, hence ctx.endpoint and ctx.connect): inside a zone, or from a
// zone the node has no `via` for, it is the node's own host:port (or socket); from another zone
// with a `via`, that address.
//
// Whose zone: a DRC direction A -> B runs on B's side (its applier writes B's master locally, its
// replicator reads A's binlog across the distance); each zone's heartbeat writer and workload
// clients are in their zone; any other ezctl connection is the operator's, from --from-zone,
// then $EZCTL_ZONE, then the topology's first zone.
import { parseHostPort } from './dsn.js';

export interface HostPort { host: string; port: number }

export interface ViaAddressable {
  zone: string;
  host: string;
  port: number;
  socket?: string | undefined;
  /** zone -> address seen from it */
  via?: Record<string, HostPort> | undefined;
}

export interface AddressFrom extends HostPort {
  socket?: string;
  /** set when the address is another zone's view of the node: the zone it is seen from */
  seenFrom?: string;
}

/** Where a caller in zone `from` connects to reach the node (its own address when from is its zone, unknown, or has no via). */
export function addressFrom(node: ViaAddressable, from: string | undefined): AddressFrom {
  const v = from !== undefined && from !== node.zone ? node.via?.[from] : undefined;
  if (v) return { host: v.host, port: v.port, seenFrom: from! };
  return { host: node.host, port: node.port, ...(node.socket ? { socket: node.socket } : {}) };
}

/** A zone's proxy listener as a caller in zone `from` reaches it (its own address from its zone or without a via). */
export function proxyAddressFrom(
  p: { zone: string; write: HostPort; read: HostPort | null; via?: Record<string, { write: HostPort; read: HostPort | null }> | undefined },
  which: 'write' | 'read',
  from: string | undefined,
): HostPort | null {
  const v = from !== undefined && from !== p.zone ? p.via?.[from] : undefined;
  return (v ?? p)[which];
}

/** "host:port" strings of the file's `via` -> addresses. */
export function parseVia(v: Record<string, string> | undefined): Record<string, HostPort> | undefined {
  if (!v) return undefined;
  const out: Record<string, HostPort> = {};
  for (const [zone, s] of Object.entries(v)) {
    const a = parseHostPort(s);
    out[zone] = { host: a.host, port: a.port! };
  }
  return out;
}

/**
 * The operator's zone: the explicit one (--from-zone), then $EZCTL_ZONE, then the topology's
 * first zone. An explicit or environment zone the topology does not declare is refused by the
 * caller (undefined here means "no zone known": every address is the node's own).
 */
export function operatorZone(zones: readonly string[], explicit?: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return explicit ?? (env.EZCTL_ZONE || undefined) ?? zones[0];
}
