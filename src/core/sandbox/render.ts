import type { SandboxReport } from './up.js';
import { table } from '../ui/table.js';

export function renderSandbox(r: SandboxReport): string {
  const t = table(['zone', 'node', 'role', 'address', 'server_id', 'pid', 'state'], r.nodes.map((n) => [
    n.zone, n.name, n.role, `${n.host}:${n.port}`, String(n.serverId), n.pid === null ? '-' : String(n.pid), n.running ? 'running' : 'stopped',
  ]));
  const head = r.alreadyRunning
    ? r.startedNodes.length ? `sandbox ${r.dir}: restarted ${r.startedNodes.join(', ')}` : `sandbox ${r.dir}`
    : `sandbox ${r.dir}: ${r.nodes.length} ${r.flavor} ${r.serverVersion} servers up in ${(r.ms / 1000).toFixed(1)} s`;
  return `${head}\n${t}\ntopology: ${r.config}  (cluster ${r.cluster})`;
}
