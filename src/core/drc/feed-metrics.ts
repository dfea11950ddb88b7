// Prometheus metrics of a running change feed at http://127.0.0.1:port/metrics (prom-client, as the
// DRC daemon's metrics.ts): read from the feed's status at each scrape, nothing kept twice.
import type { Server } from 'node:http';
import { Registry, Gauge, collectDefaultMetrics } from 'prom-client';
import { serveRegistry } from './metrics.js';
import type { FeedStatus } from './feed.js';

export async function serveFeedMetrics(port: number, labels: { cluster: string; zone: string; feed: string }, status: () => FeedStatus): Promise<Server> {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry, prefix: 'ezctl_feed_' });
  const gauge = (name: string, help: string, value: (s: FeedStatus) => number | null) =>
    new Gauge({
      name, help, registers: [registry],
      collect() {
        const v = value(status());
        if (v === null) this.reset();
        else this.set(v);
      },
    });
  gauge('ezctl_feed_events_per_second', 'Row events acknowledged by the sink per second, over the last 10 s', (s) => s.eventsPerSecond);
  gauge('ezctl_feed_lag_ms', 'Commit (binlog timestamp, whole seconds) to the sink\'s acknowledgement, of the last batch (ms)', (s) => s.lagMs);
  gauge('ezctl_feed_delivery_ms', 'Read to the sink\'s acknowledgement, of the last batch (ms)', (s) => s.deliveryMs);
  gauge('ezctl_feed_events_delivered', 'Row events acknowledged by the sink since the feed started', (s) => s.eventsDelivered);
  gauge('ezctl_feed_batches_delivered', 'Batches acknowledged by the sink since the feed started', (s) => s.batchesDelivered);
  gauge('ezctl_feed_queued_events', 'Events read and not yet acknowledged', (s) => s.queuedEvents);
  gauge('ezctl_feed_retries', 'Sink deliveries retried since the feed started', (s) => s.retries);
  gauge('ezctl_feed_running', '1 while the feed reads and delivers, 0 otherwise (paused, retrying, starting)', (s) => (s.state === 'running' ? 1 : 0));
  gauge('ezctl_feed_lease_held', '1 while the feed holds its job lease on the zone\'s master', (s) => (s.jobId ? 1 : 0));
  return serveRegistry(registry, port, 'choose another --metrics-port');
}
