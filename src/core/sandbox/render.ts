import type { SandboxReport } from './up.js';
import type { WorkloadReport } from './workload.js';
import { kindsText } from './workload.js';
import { table } from '../ui/table.js';

export function renderSandbox(r: SandboxReport): string {
  const t = table(['zone', 'node', 'role', 'address', 'server_id', 'pid', 'state'], r.nodes.map((n) => [
    n.zone, n.name, n.role, `${n.host}:${n.port}`, String(n.serverId), n.pid === null ? '-' : String(n.pid), n.running ? 'running' : 'stopped',
  ]));
  const head = r.alreadyRunning
    ? r.startedNodes.length ? `sandbox ${r.dir}: restarted ${r.startedNodes.join(', ')}` : `sandbox ${r.dir}`
    : `sandbox ${r.dir}: ${r.nodes.length} ${r.flavor} ${r.serverVersion} servers up in ${(r.ms / 1000).toFixed(1)} s`;
  const proxies = r.proxies.length
    ? '\n' + table(['zone', 'proxy write', 'proxy read', 'admin socket', 'pid', 'state'], r.proxies.map((p) => [
      p.zone, p.write, p.read, p.admin, p.pid === null ? '-' : String(p.pid), p.running ? 'running' : 'stopped',
    ]))
    : '';
  const relay = r.relay
    ? `\nWAN relay: ${r.relay.latencyMs} ms round trip${r.relay.jitterMs ? ` (jitter ${r.relay.jitterMs} ms)` : ''} between zones, ${r.relay.listeners} relayed ports, pid ${r.relay.pid ?? '-'} ${r.relay.running ? 'running' : 'stopped'} (\`ezctl sandbox net\`)`
    : '';
  return `${head}\n${t}${proxies}${relay}\ntopology: ${r.config}  (cluster ${r.cluster})`;
}

/** One line per zone: what was written, where it landed, what waited, and what failed by kind. */
export function renderWorkload(r: WorkloadReport): string {
  const lines = r.zones.map((z) => {
    const landed = Object.keys(z.landed).length > 1 || Object.keys(z.landed)[0] !== z.zone
      ? `; landed ${Object.entries(z.landed).map(([k, n]) => `${k} ${n}`).join(', ')}` : '';
    const waits = z.blockedWaits ? `, ${z.blockedWaits} waited for a blocked route (${(z.blockedMs / 1000).toFixed(1)} s in all)` : '';
    const shards = z.shardWaits.length ? `; shards that waited: ${z.shardWaits.slice(0, 8).map((s) => `${s.shard} ${s.maxMs} ms`).join(', ')}${z.shardWaits.length > 8 ? ', ...' : ''}` : '';
    return `${z.zone}${z.through.startsWith('proxy') ? ` (through the ${z.through})` : ''}: ${z.transactions} tx in ${(z.ms / 1000).toFixed(1)} s (${z.tps.toFixed(0)}/s): ${z.inserts} inserts, ${z.updates} updates, ${z.deletes} deletes, ${z.foreign} to other zones' shards, ${z.retries} retried${waits}, ${z.errors} errors${z.errors ? ` (${kindsText(z.errorsByKind)}; last: ${z.lastError})` : ''}${z.unknown ? `, ${z.unknown} unknown (COMMIT answer lost)` : ''}${z.reconnects ? `, ${z.reconnects} reconnects` : ''}${landed}`
      + `\n  latency p50 ${z.p50Ms} ms, p99 ${z.p99Ms} ms; longest without a commit ${z.window.ms} ms${z.window.from ? ` (${z.window.from.slice(11, 23)} to ${z.window.to!.slice(11, 23)})` : ''}${shards}`;
  });
  lines.push(`routing table ${r.model === 'global' ? 'of a global cluster' : 'of a sharding cluster'}: version ${r.routesVersion.start}${r.routesVersion.end !== r.routesVersion.start ? ` at the start, ${r.routesVersion.end} at the end` : ''}${r.ackLog ? `; acknowledged writes in ${r.ackLog}` : ''}`);
  if (r.interrupted) lines.push('interrupted: stopped before the end of its schedule');
  return lines.join('\n');
}
