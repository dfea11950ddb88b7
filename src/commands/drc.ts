// ezctl drc: the replication daemon between zones.
import type { Command } from 'commander';
import { action, CLUSTER_OPTION, durationOption, examples, integer } from './common.js';
import { ExitCode } from '../core/exit.js';

export function registerDrc(program: Command): void {
  const drc = program
    .command('drc')
    .description('bidirectional replication between zones: no loops, last writer wins on the DRC timestamp, heartbeat lag')
    .addHelpText('after', examples('ezctl drc start --cluster demo --detach', 'ezctl drc status --cluster demo', 'ezctl drc wait --cluster demo --from bj --to sh --timeout 10s', 'ezctl drc stop --cluster demo'));

  drc
    .command('start')
    .description('run one pipeline per ordered zone pair (foreground; --detach for the background)')
    .option(...CLUSTER_OPTION)
    .option('--detach', 'run in the background; pid, log and control socket under the state dir')
    .option('--metrics-port <port>', 'serve Prometheus metrics on 127.0.0.1:<port>/metrics', integer(1, 65535))
    .option('--replicate-ddl', 'replicate DDL too (default: report it; schema changes go through ezctl osc)')
    .option('--block-illegal', 'do not replicate illegal writes (a shard another zone owns or a blocked one, a global cluster\'s write at a zone other than the write zone, by the routing table as of each write); they are always reported')
    .option('--skip-errors', 'log and skip a transaction the target refuses, instead of stopping that direction')
    .addHelpText('after', examples('ezctl drc start --cluster demo', 'ezctl drc start --cluster demo --detach --metrics-port 9104'))
    .action(action(async (ctx, o: { cluster?: string; detach?: boolean; metricsPort?: number; replicateDdl?: boolean; blockIllegal?: boolean; skipErrors?: boolean }) => {
      const { drcStart } = await import('../core/drc/daemon.js');
      const { renderDrcStatus } = await import('../core/drc/render.js');
      const s = await drcStart(ctx, o);
      ctx.result(s, () => renderDrcStatus(s));
    }));

  drc
    .command('status')
    .description('per direction: state, positions, lag now and p99, rates, conflicts, illegal writes, the routing table version it judges them by, last error and its time; exit 3 unless every direction runs')
    .option(...CLUSTER_OPTION)
    .option('--watch', 'refresh every --interval (live view on a terminal, plain lines otherwise)')
    .addOption(durationOption('--interval <duration>', 'refresh interval for --watch', { bare: 's', default: '1s' }))
    .addHelpText('after', `
Exit status (for monitoring; the status, or its JSON with healthy and problems, is on stdout either way):
  0  the daemon runs and every direction is running
  3  no daemon runs here, or a direction is not running: starting, paused, retrying
     (a master unreachable), error (a transaction the target refused), stopped
${examples('ezctl drc status', 'ezctl --json drc status --cluster demo', 'ezctl drc status --watch --interval 5s')}`)
    .action(action(async (ctx, o: { cluster?: string; watch?: boolean; interval: number }) => {
      const { drcStatus } = await import('../core/drc/manage.js');
      if (o.watch) {
        const { watchDrc } = await import('../core/drc/watch.js');
        return watchDrc(ctx, o);
      }
      const { renderDrcStatus } = await import('../core/drc/render.js');
      const s = await drcStatus(ctx, o);
      ctx.result(s, () => renderDrcStatus(s));
      return s.healthy ? ExitCode.ok : ExitCode.runtime;
    }));

  for (const cmd of ['pause', 'resume'] as const) {
    drc
      .command(cmd)
      .description(cmd === 'pause' ? 'stop applying (reading pauses when the queue fills); heartbeats go on, so lag shows' : 'apply again; a direction stopped by an error tries again')
      .option(...CLUSTER_OPTION)
      .option('--direction <from->to>', 'only this direction (e.g. bj->sh), or every direction from a zone (e.g. bj)')
      .addHelpText('after', examples(`ezctl drc ${cmd} --cluster demo`, `ezctl drc ${cmd} --direction bj->sh`))
      .action(action(async (ctx, o: { cluster?: string; direction?: string }) => {
        const { drcControl } = await import('../core/drc/manage.js');
        const { renderDrcStatus } = await import('../core/drc/render.js');
        const s = await drcControl(ctx, o, cmd);
        ctx.result(s, () => renderDrcStatus(s));
      }));
  }

  drc
    .command('stop')
    .description('stop the daemon cleanly (current batches finish; checkpoints are in the target zones)')
    .option(...CLUSTER_OPTION)
    .addHelpText('after', examples('ezctl drc stop --cluster demo'))
    .action(action(async (ctx, o: { cluster?: string }) => {
      const { drcStop } = await import('../core/drc/manage.js');
      const r = await drcStop(ctx, o);
      ctx.result(r, () => (r.stopped ? `DRC ${r.cluster} stopped (pid ${r.pid})` : `DRC ${r.cluster} was not running`));
    }));

  drc
    .command('repoint')
    .description('after a master switch in a zone: name the new master in the topology file; the daemon reconnects from its checkpoints')
    .option(...CLUSTER_OPTION)
    .requiredOption('--zone <zone>', 'the zone whose master changed')
    .requiredOption('--master <host:port>', 'the new master (host:port or a connection string)')
    .addHelpText('after', examples('ezctl drc repoint --cluster demo --zone sh --master 127.0.0.1:3310'))
    .action(action(async (ctx, o: { cluster?: string; zone: string; master: string }) => {
      const { drcRepoint } = await import('../core/drc/manage.js');
      const r = await drcRepoint(ctx, o);
      ctx.result(r, () => `zone ${r.zone}: master ${r.oldMaster} → ${r.newMaster}${r.daemon ? '; the daemon reconnected its directions' : '; no daemon running here (the next start uses the new master)'}`);
    }));

  drc
    .command('wait')
    .description('wait until everything A\'s master had committed when the command started is applied at B (exit 4 on timeout)')
    .option(...CLUSTER_OPTION)
    .requiredOption('--from <zone>', 'source zone')
    .requiredOption('--to <zone>', 'target zone')
    .addOption(durationOption('--timeout <duration>', 'give up after this long (exit 4)', { bare: 's', default: '10s' }))
    .addHelpText('after', examples('ezctl drc wait --from bj --to sh', 'ezctl drc wait --cluster demo --from sh --to bj --timeout 30s'))
    .action(action(async (ctx, o: { cluster?: string; from: string; to: string; timeout: number }) => {
      const { drcWait } = await import('../core/drc/manage.js');
      const r = await drcWait(ctx, { ...o, timeoutMs: o.timeout });
      ctx.result(r, () => `${r.to} has applied everything ${r.from} had committed (${r.target}); waited ${r.waitedMs} ms`);
    }));

  drc
    .command('feed')
    .description("the change feed of one zone: one JSON event per changed row of its master's binlog (local and DRC-applied writes), a commit marker after each transaction; at least once, resumable")
    .argument('[action]', 'run (default) the feed in the foreground; status, pause, resume or stop a running one', 'run')
    .option(...CLUSTER_OPTION)
    .option('--zone <zone>', 'the zone whose master binlog the feed reads (caches of that zone are invalidated after it has the row)')
    .option('--name <name>', 'the feed: its stored position in _ezctl.drc_feed_position and its control socket (default <cluster>-<zone>)')
    .option('--tables <patterns>', "comma-separated db.table patterns (globs, /regex/); default: the cluster's databases")
    .option('--from-gtid <position>', 'a new feed starts after this GTID position (default: the master\'s current one); a stored position wins')
    .option('--sink <target>', 'stdout (JSON lines), http(s)://... (POST {"events":[...]} per batch) or redis://host:port', 'stdout')
    .option('--redis-del <db.table=template>', 'Redis sink: DEL the key rendered from the row, e.g. shop.users=user:{id} (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--redis-stream <key>', 'Redis sink: XADD every event (field "event", its JSON) to this stream')
    .option('--batch <events>', 'events per batch (whole transactions; a larger one goes alone)', integer(1, 1_000_000), 500)
    .option('--max-queue <events>', 'events read ahead of the sink\'s acknowledgement before reading pauses', integer(100, 10_000_000), 20_000)
    .option('--metrics-port <port>', 'serve Prometheus metrics (events/s, lag commit→ack) on 127.0.0.1:<port>/metrics', integer(1, 65535))
    .addHelpText('after', `
Events (one JSON line each): type insert|update|delete, database, table, key (primary key),
data, old (changed columns, on update), gtid, index (row within the transaction), ts (commit,
ms), origin (zone, from the GTID domain); then {"type":"commit","gtid",...,"rows"}. The stored
position advances only after the sink acknowledged a batch: after a crash the last batch may come
again (same gtid + index). A stored position whose binlog is purged is refused (exit 4).
A feed is a job (\`ezctl jobs\`): it holds the lease feed:<name> on its zone's master, so a
second feed of that name is refused on any host (exit 4, naming the holder) and a dead one is
taken over by the next run. It rides out a master outage and follows a master switch in the
topology file (emha switch, drc repoint), reading the new master from its acknowledged position.
status|pause|resume|stop go through the control socket on the feed's host; elsewhere they name
the host it runs on (exit 3).
${examples('ezctl drc feed --cluster demo --zone sh', 'ezctl drc feed --zone sh --sink http://127.0.0.1:8080/invalidate', "ezctl drc feed --zone sh --name sh-cache --sink redis://127.0.0.1:6379 --redis-del 'ezdemo.users=user:{id}'", 'ezctl drc feed status --name sh-cache', 'ezctl drc feed pause --name sh-cache')}`)
    .action(action(async (ctx, o: { cluster?: string; zone?: string; name?: string; tables?: string; fromGtid?: string; sink: string; redisDel?: string[]; redisStream?: string; batch: number; maxQueue: number; metricsPort?: number }, args: string[]) => {
      const action0 = args[0] ?? 'run';
      const { drcFeed, drcFeedControl, renderFeedStatus } = await import('../core/drc/feed.js');
      const { badInput } = await import('../core/exit.js');
      if (action0 === 'run') {
        if (!o.zone) throw badInput('drc feed needs --zone: the zone whose binlog it reads');
        const s = await drcFeed(ctx, { ...o, zone: o.zone });
        if (o.sink !== 'stdout' && o.sink !== '-') ctx.result(s, () => renderFeedStatus(s));
        return;
      }
      if (action0 !== 'status' && action0 !== 'pause' && action0 !== 'resume' && action0 !== 'stop') throw badInput(`drc feed ${action0}: the action is run, status, pause, resume or stop`);
      const s = await drcFeedControl(ctx, o, action0);
      ctx.result(s, () => renderFeedStatus(s));
    }));
}
