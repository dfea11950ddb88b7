// Prometheus metrics of the DRC daemon at http://host:port/metrics (prom-client).
import { createServer, type Server } from 'node:http';
import { Registry, Gauge, collectDefaultMetrics } from 'prom-client';
import { runtimeError } from '../exit.js';
import type { Pipeline } from './pipeline.js';

export async function serveMetrics(port: number, cluster: string): Promise<{ server: Server; update: (p: Pipeline[]) => void; onBatch: (p: Pipeline) => void }> {
  const registry = new Registry();
  registry.setDefaultLabels({ cluster });
  collectDefaultMetrics({ register: registry, prefix: 'ezctl_drc_' });
  const labels = ['from', 'to'] as const;
  const g = (name: string, help: string) => new Gauge({ name, help, labelNames: labels, registers: [registry] });
  const lag = g('ezctl_drc_lag_ms', 'End-to-end lag of the direction, from heartbeats (ms)');
  const p99 = g('ezctl_drc_lag_p99_ms', 'p99 of the lag over the last minute (ms)');
  const tx = g('ezctl_drc_applied_transactions', 'Source transactions applied since the daemon started');
  const rows = g('ezctl_drc_applied_rows', 'Row changes applied since the daemon started');
  const conflicts = g('ezctl_drc_conflicts', 'Conflicts resolved by last-writer-wins since the daemon started');
  const retries = new Gauge({ name: 'ezctl_drc_apply_retries_total', help: 'Deadlocks, lock wait timeouts and rows inserted at the target between a batch\'s read and its write, met while applying, each retried in place, since the daemon started', labelNames: ['from', 'to', 'reason'] as const, registers: [registry] });
  const illegal = g('ezctl_drc_illegal_writes', 'Writes the routing table did not give the source zone (another zone\'s or a blocked shard, not the write zone), since the daemon started');
  const routes = g('ezctl_drc_routes_version', 'The routing table version the direction judges its source\'s writes by (0: the topology file)');
  const up = g('ezctl_drc_running', '1 while the direction is running, 0 otherwise');
  const queue = g('ezctl_drc_queue_transactions', 'Transactions read and waiting to be applied');
  const update = (ps: Pipeline[]) => {
    for (const p of ps) {
      const s = p.status();
      const l = { from: s.from, to: s.to };
      if (s.lagMs !== null) lag.set(l, s.lagMs);
      if (s.p99LagMs !== null) p99.set(l, s.p99LagMs);
      tx.set(l, s.appliedTx);
      rows.set(l, s.appliedRows);
      conflicts.set(l, s.conflicts);
      if (s.retries) {
        retries.set({ ...l, reason: 'deadlock' }, s.retries.deadlock);
        retries.set({ ...l, reason: 'lock_wait' }, s.retries.lockWait);
        retries.set({ ...l, reason: 'row_appeared' }, s.retries.rowAppeared ?? 0);
      }
      illegal.set(l, s.illegalWrites);
      if (s.routesVersion !== null && s.routesVersion !== undefined) routes.set(l, s.routesVersion);
      up.set(l, s.state === 'running' ? 1 : 0);
      queue.set(l, s.queue);
    }
  };
  const server = await serveRegistry(registry, port);
  return { server, update, onBatch: () => {} };
}

/** A registry's metrics at http://127.0.0.1:port/metrics (404 elsewhere); refused with exit 3 when the port is taken. */
export async function serveRegistry(registry: Registry, port: number, hint?: string): Promise<Server> {
  const server = createServer(async (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('see /metrics\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': registry.contentType });
    res.end(await registry.metrics());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(runtimeError(`cannot serve metrics on port ${port}: ${(e as Error).message}`, hint ? { hint } : {})));
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}
