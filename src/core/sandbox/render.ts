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
  return `${head}\n${t}${proxies}\ntopology: ${r.config}  (cluster ${r.cluster})`;
}

/** One line per zone: what was written, and what failed by kind. */
export function renderWorkload(r: WorkloadReport): string {
  const lines = r.zones.map((z) => `${z.zone}${z.through.startsWith('proxy') ? ` (through the ${z.through})` : ''}: ${z.transactions} tx in ${(z.ms / 1000).toFixed(1)} s (${z.tps.toFixed(0)}/s): ${z.inserts} inserts, ${z.updates} updates, ${z.deletes} deletes, ${z.foreign} to other zones' shards, ${z.retries} retried, ${z.errors} errors${z.errors ? ` (${kindsText(z.errorsByKind)}; last: ${z.lastError})` : ''}${z.reconnects ? `, ${z.reconnects} reconnects` : ''}`);
  if (r.interrupted) lines.push('interrupted: stopped before the end of its schedule');
  return lines.join('\n');
}
