// ezctl sandbox: a real multi-zone topology of local server processes.
import { Option, type Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { action, CLUSTER_OPTION, decimal, duration, durationOption, examples, integer, nameList } from './common.js';
import { ExitCode } from '../core/exit.js';

const dirOption = () => new Option('--dir <dir>', 'sandbox directory').default('.ezctl/sandbox');

const ms = duration({ bare: 'ms', max: '10m' });
/** "30ms", "30ms,jitter 5ms" or "30ms,5ms": a round trip and its jitter */
export function parseLatency(value: string): { latencyMs: number; jitterMs: number } {
  const m = /^\s*([^,]+?)\s*(?:,\s*(?:jitter\s*)?([^,]+?)\s*)?$/.exec(value);
  if (!m) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a round trip (like 30ms, or 30ms,jitter 5ms)`);
  const latencyMs = ms(m[1]!);
  const jitterMs = m[2] !== undefined ? ms(m[2]) : 0;
  return { latencyMs, jitterMs };
}

/** "bj,sh": two different zones */
export function zonePair(value: string): [string, string] {
  const z = nameList(value);
  if (z.length !== 2) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a pair of zones (like bj,sh)`);
  return [z[0]!, z[1]!];
}

export function registerSandbox(program: Command): void {
  const sandbox = program
    .command('sandbox')
    .description('a local multi-zone topology of real MariaDB/MySQL processes, for demos, tests and drills')
    .addHelpText('after', examples('ezctl sandbox up --zones bj,sh --replicas 1', 'ezctl sandbox load --rows 10000', 'ezctl sandbox workload --tps 200 --seconds 30s --conflict-ratio 0.1', 'ezctl sandbox down'));

  sandbox
    .command('up')
    .description('start one master per zone plus replicas (GTID replication, ROW binlogs) and write <dir>/ezctl.yaml')
    .addOption(dirOption())
    .option('--zones <list>', 'zone names, comma separated', nameList, ['bj', 'sh'])
    .option('--replicas <n>', 'replicas per zone', integer(0, 5), 1)
    .option('--base-port <port>', 'first port; nodes take consecutive ports (default: free ports chosen by the system)', integer(1024, 65000))
    .option('--cluster <name>', 'cluster name written to the topology file', 'demo')
    .option('--shards <n>', 'logical shards, split evenly between the zones', integer(1, 4096), 64)
    .option('--proxy', 'also start one HAProxy per zone: a write listener routed to its master (a global cluster: the writer zone\'s master), a read listener over its replicas, its runtime API on a mode-0600 unix socket (needs haproxy: apt-get install haproxy)')
    .addOption(new Option('--model <model>', 'sharding: every zone writes the shards it owns; global: one zone takes every write').choices(['sharding', 'global']).default('sharding'))
    .option('--writer-zone <zone>', 'a global cluster\'s write zone (default: the first zone)')
    .option('--wan-latency <rtt[,jitter]>', 'put the zones at a distance: a relay process (user space, no netem) through which every cross-zone connection pays this round trip, e.g. 30ms or 30ms,jitter 5ms; the topology file records each node\'s address as seen from the other zones (via:); 0ms gives relays without delay; `ezctl sandbox net` changes it and cuts links', parseLatency)
    .addHelpText('after', examples('ezctl sandbox up', 'ezctl sandbox up --dir /tmp/sb --zones bj,sh,gz --replicas 0 --base-port 23306', 'ezctl sandbox up --proxy', 'ezctl sandbox up --model global --writer-zone sh --proxy', "ezctl sandbox up --wan-latency '30ms,jitter 5ms'"))
    .action(action(async (ctx, o: { dir: string; zones: string[]; replicas: number; basePort?: number; cluster: string; shards: number; proxy?: boolean; model: 'sharding' | 'global'; writerZone?: string; wanLatency?: { latencyMs: number; jitterMs: number } }) => {
      const { sandboxUp } = await import('../core/sandbox/up.js');
      const { renderSandbox } = await import('../core/sandbox/render.js');
      const { wanLatency, ...rest } = o;
      const r = await sandboxUp(ctx, { ...rest, ...(wanLatency ? { wan: wanLatency } : {}) });
      ctx.result(r, () => renderSandbox(r));
    }));

  sandbox
    .command('down')
    .description('stop what runs against the sandbox (a DRC daemon, osc jobs, ezctl processes using its topology file), then exactly its own proxy and server processes, all by pid, and remove its directory')
    .addOption(dirOption())
    .option('--keep-dir', 'shut the servers down cleanly and keep the data directory (without it they are killed and the directory removed)')
    .addHelpText('after', examples('ezctl sandbox down', 'ezctl sandbox down --dir /tmp/sb --keep-dir'))
    .action(action(async (ctx, o: { dir: string; keepDir: boolean }) => {
      const { sandboxDown } = await import('../core/sandbox/down.js');
      const r = await sandboxDown(ctx, o);
      ctx.result(r, () => [
        ...r.stoppedProcesses.map((p) => `stopped ${p.what} (pid ${p.pid}, ${p.signal})`),
        `stopped ${r.stopped.length} server${r.stopped.length === 1 ? '' : 's'}${r.stoppedProxies.length ? ` and ${r.stoppedProxies.length} prox${r.stoppedProxies.length === 1 ? 'y' : 'ies'}` : ''}${r.stoppedRelay ? ', the WAN relay' : ''}${r.removed ? `, removed ${r.dir}` : ''}`,
      ].join('\n'));
    }));

  sandbox
    .command('status')
    .description('show the sandbox\'s processes: node, port, pid, running or not, and each zone\'s proxy (exit 3 when one is down)')
    .addOption(dirOption())
    .addHelpText('after', examples('ezctl sandbox status', 'ezctl --json sandbox status'))
    .action(action(async (ctx, o: { dir: string }) => {
      const { sandboxStatus } = await import('../core/sandbox/up.js');
      const { renderSandbox } = await import('../core/sandbox/render.js');
      const r = await sandboxStatus(ctx, o);
      ctx.result(r, () => renderSandbox(r));
      return r.nodes.every((n) => n.running) && r.proxies.every((p) => p.running) && (r.relay?.running ?? true) ? ExitCode.ok : ExitCode.runtime;
    }));

  sandbox
    .command('net')
    .description('the distance between the sandbox\'s zones (`up --wan-latency`): show every link (round trip, jitter, cut, open connections), or cut a zone pair (a partition: both directions at once; established connections stop carrying bytes, new ones get no answer), heal it, or change its latency')
    .addOption(dirOption())
    .option('--partition <a,b>', 'cut the link between zones a and b, both directions', zonePair)
    .addOption(new Option('--heal [a,b]', 'heal the link between a and b (no zones: every link); connections the cut held are reset').argParser(zonePair))
    .option('--latency <rtt[,jitter]>', 'set the round trip (and jitter) of every link, or of --link a,b', parseLatency)
    .option('--link <a,b>', 'with --latency: only this zone pair', zonePair)
    .addHelpText('after', `
A cut link holds what arrives on its established connections (nothing is delivered) and accepts
new connections without answering: callers' own timeouts decide, as in a real partition. On heal,
or after 60 s of cut, those connections are reset. The relay is its own process: a cut outlives
the command that made it, until \`sandbox net --heal\` or \`sandbox down\`.
${examples('ezctl sandbox net', 'ezctl sandbox net --partition bj,sh', 'ezctl sandbox net --heal', "ezctl sandbox net --latency '80ms,jitter 5ms' --link bj,sh", 'ezctl --json sandbox net')}`)
    .action(action(async (ctx, o: { dir: string; partition?: [string, string]; heal?: true | [string, string]; latency?: { latencyMs: number; jitterMs: number }; link?: [string, string] }) => {
      const net = await import('../core/sandbox/net.js');
      const { table } = await import('../core/ui/table.js');
      const { badInput } = await import('../core/exit.js');
      const actions = [o.partition, o.heal, o.latency].filter((x) => x !== undefined).length;
      if (actions > 1) throw badInput('give one of --partition, --heal, --latency at a time');
      if (o.link && !o.latency) throw badInput('--link goes with --latency');
      if (o.partition) await net.partition(o.dir, ...o.partition);
      else if (o.heal === true) await net.heal(o.dir);
      else if (o.heal) await net.heal(o.dir, ...o.heal);
      else if (o.latency) await net.setLatency(o.dir, { ...o.latency, ...(o.link ? { link: o.link } : {}) });
      const links = await net.netStatus(o.dir);
      ctx.result({ links }, () => links.length
        ? table(['from', 'to', 'round trip', 'jitter', 'state', 'connections'], links.map((l) => [l.from, l.to, `${l.latencyMs} ms`, `${l.jitterMs} ms`, l.cut ? 'CUT' : 'up', String(l.connections)]))
        : 'this sandbox has no WAN relay (start it with `ezctl sandbox up --wan-latency 30ms`)');
    }));

  sandbox
    .command('load')
    .description('create the demo schema (users, merchants, riders, orders, order_items) with deterministic rows in every zone')
    .option('--rows <n>', 'orders and users to create (merchants and riders: a tenth)', integer(0, 10_000_000), 1000)
    .option('--database <name>', 'schema name', 'ezdemo')
    .option(...CLUSTER_OPTION)
    .addHelpText('after', examples('ezctl sandbox load --rows 100000'))
    .action(action(async (ctx, o: { rows: number; database: string; cluster?: string }) => {
      const { sandboxLoad } = await import('../core/sandbox/load.js');
      const r = await sandboxLoad(ctx, o);
      ctx.result(r, () => `loaded ${r.database} in zones ${r.zones.join(', ')}: ${Object.entries(r.rows).map(([t, n]) => `${t} ${n}`).join(', ')} (${(r.ms / 1000).toFixed(1)} s)`);
    }));

  sandbox
    .command('workload')
    .description('write inserts, updates and deletes at a fixed rate per zone, routed by the cluster\'s routing table (gz routes): sharding, each zone\'s shards to their current owner zone; global, every write to the write zone (through the zone\'s proxy when the topology file names one); waits while a route is blocked, retries a write a switch refused; reports progress and errors on stderr while it runs')
    .option('--tps <n>', 'transactions per second, per zone', integer(1, 100_000), 50)
    .addOption(durationOption('--seconds <duration>', 'how long to run (10s, 2m; a plain number is seconds)', { bare: 's', default: '10s' }))
    .option('--conflict-ratio <r>', 'share of writes that go deliberately to a zone that does not own their shard (0-1; sharding clusters)', decimal(0, 1), 0)
    .option('--database <name>', 'schema name', 'ezdemo')
    .option(...CLUSTER_OPTION)
    .option('--zones <list>', 'zones whose traffic to run (default: every zone)', nameList)
    .option('--seed <n>', 'random seed, for a repeatable run', integer(0))
    .addOption(durationOption('--max-wait <duration>', 'how long one write may wait for a blocked route and retry a refused one before it counts as an error', { bare: 's', default: '30s' }))
    .option('--ack-log <file>', 'append one JSON line per acknowledged write (a COMMIT that returned OK): zone it landed in, table, key, op, token, ms')
    .addOption(durationOption('--progress <duration>', 'a line per zone on stderr this often: tx/s, errors by kind (0: none)', { bare: 's', default: '5s' }))
    .addHelpText('after', `
Routing: the workload follows the routing table (\`ezctl gz routes\`) of the cluster, read from
every zone master every 100 ms. A sharding cluster's zone writes the shards it owned when the
workload started, each to the zone that owns it now (its proxy, or its master); a global
cluster's writes go through each zone's proxy (it routes to the write zone's master) or to the
write zone's master. A write whose route is blocked waits (a blocked wait, not an error); one
refused by a master a switch made read_only, or cut when its session was killed, is retried
until it commits or --max-wait passes. A write whose COMMIT lost its answer is looked up by its
token before it is retried (never written twice), or counted as unknown when it cannot be.
A connection that breaks otherwise (a master restarted) is opened again, backing off from 0.2s
to 5s; the transactions due meanwhile are not written and count as errors of kind 'no connection'.
SIGINT or SIGTERM stops it after the transactions in flight and still prints the summary (exit 130).
Exit status: 0 every transaction written; 3 some failed or are unknown (the summary counts them by kind).
${examples('ezctl sandbox workload --tps 100 --seconds 60s', 'ezctl sandbox workload --conflict-ratio 0.2 --zones bj --progress 2s', 'ezctl --json sandbox workload --seconds 2m --ack-log acks.jsonl --max-wait 10s')}`)
    .action(action(async (ctx, o: { tps: number; seconds: number; progress: number; maxWait: number; ackLog?: string; conflictRatio: number; database: string; cluster?: string; zones?: string[]; seed?: number }) => {
      const { sandboxWorkload } = await import('../core/sandbox/workload.js');
      const { renderWorkload } = await import('../core/sandbox/render.js');
      const { seconds, progress, maxWait, ...rest } = o;
      const r = await sandboxWorkload(ctx, { ...rest, durationMs: seconds, progressMs: progress, maxWaitMs: maxWait });
      ctx.result(r, () => renderWorkload(r));
      return r.interrupted ? ExitCode.interrupted : r.zones.some((z) => z.errors > 0 || z.unknown > 0) ? ExitCode.runtime : ExitCode.ok;
    }));
}
