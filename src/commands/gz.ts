// ezctl gz: the routing table (GZS) of each cluster and the zone switches that change it: a global
// cluster's write zone (`gz switch`), a sharding cluster's shard ranges (`gz move`).
import type { Command } from 'commander';
import { action, CLUSTER_OPTION, durationOption, examples, integer, leaseOption } from './common.js';
import { ExitCode, badInput, refused } from '../core/exit.js';

export function registerGz(program: Command): void {
  const gz = program
    .command('gz')
    .description("the routing table (GZS: a global cluster's write zone, a sharding cluster's shard ranges) and the zone switches that change it: block writes, drain, verify, flip, roll back")
    .addHelpText('after', examples('ezctl gz routes --cluster orders', 'ezctl gz switch --cluster users --to sh', 'ezctl gz move --cluster orders --shards 0-31 --to sh --execute'));
  registerRoutes(gz);
  registerGzSwitch(gz);
  registerGzMove(gz);
}

// ---- gz routes, gz serve (part R1): the routing table, its watch and its HTTP server ----
function registerRoutes(gz: Command): void {
  gz
    .command('routes')
    .description("the cluster's routing table as the zones hold it (one versioned row per cluster in _ezctl.gz_routes at every zone master, the highest version winning): the write zone or each shard range's owner and state, each zone's version, stale and unreachable zones, the job that published it, the clients and the version each acknowledged. --watch streams a line per version change (a JSON line with --json) until interrupted; --history lists the published versions; --sync writes the highest version to stale zones and the owners to the topology file (with --execute)")
    .option(...CLUSTER_OPTION)
    .option('--watch', 'follow the table: one line per version change (the current one first) until SIGINT', false)
    .option('--history', 'every published version, newest first (from _ezctl.gz_routes_log in each zone)', false)
    .option('--limit <n>', 'versions --history lists', integer(1, 10_000), 50)
    .option('--sync', 'write the highest version to the zones holding a lower one (a zone that was down at a publish), and its owners into the topology file', false)
    .option('--execute', 'with --sync: do it (without: the plan)', false)
    .addOption(durationOption('--interval <duration>', 'with --watch: how often each zone master is asked', { bare: 'ms', as: 'ms', min: '10ms', max: '1m', default: '100ms' }))
    .addHelpText('after', examples('ezctl gz routes --cluster orders', 'ezctl --json gz routes --cluster orders --watch', 'ezctl gz routes --cluster orders --history', 'ezctl gz routes --cluster orders --sync --execute'))
    .action(action(async (ctx, o: { cluster?: string; watch: boolean; history: boolean; limit: number; sync: boolean; execute: boolean; interval: number }) => {
      if ([o.watch, o.history, o.sync].filter(Boolean).length > 1) throw badInput('--watch, --history and --sync are separate uses of gz routes: give one');
      if (o.execute && !o.sync) throw badInput('--execute goes with --sync (gz routes only reads otherwise)');
      const show = await import('../core/routes/show.js');
      const render = await import('../core/routes/render.js');
      const cluster = o.cluster ? { cluster: o.cluster } : {};
      if (o.watch) {
        await show.watchRoutes(ctx, { ...cluster, intervalMs: o.interval }, (l) => {
          process.stdout.write((ctx.opts.json ? JSON.stringify(l) : render.renderWatchLine(l)) + '\n');
        });
        return ExitCode.interrupted;
      }
      if (o.history) {
        const h = await show.routesHistory(ctx, { ...cluster, limit: o.limit });
        ctx.result(h, () => render.renderHistory(h));
        return;
      }
      if (o.sync) {
        const s = await show.syncRoutes(ctx, { ...cluster, execute: o.execute });
        ctx.result(s, () => render.renderSync(s));
        return s.exitCode;
      }
      const r = await show.showRoutes(ctx, cluster);
      ctx.result(r, () => render.renderRoutes(r));
      // no zone answered: the table shown is the file's view, not what the zones hold
      return r.unreachable.length === Object.keys(r.zones).length ? ExitCode.runtime : ExitCode.ok;
    }));

  gz
    .command('serve')
    .description("serve the routing tables over HTTP for application SDK caches: GET /v1/routes/<cluster> answers the table with ETag \"<cluster>-<version>\" (304 to an equal If-None-Match; ?wait=30s holds the request until the version changes, else 304), GET /v1/routes lists the clusters, GET /healthz (503 when no zone of a cluster answers). One follower per cluster polls the zone masters; requests never query them. Binds loopback unless --allow-remote; SIGINT/SIGTERM end it cleanly (exit 130)")
    .option('--listen <host:port>', 'address to listen on (port 0: a free one, printed)', '127.0.0.1:8077')
    .option('--cluster <name>', 'serve only this cluster (default: every cluster of the topology file)')
    .option('--allow-remote', 'allow a non-loopback --listen address (put your own access control in front)', false)
    .addOption(durationOption('--interval <duration>', 'how often each zone master is asked', { bare: 'ms', as: 'ms', min: '10ms', max: '1m', default: '100ms' }))
    .addOption(durationOption('--max-wait <duration>', 'the longest ?wait= a request may ask', { bare: 's', as: 'ms', min: '1s', max: '10m', default: '60s' }))
    .addHelpText('after', examples('ezctl gz serve', 'ezctl gz serve --listen 127.0.0.1:0 --cluster orders', 'curl -H \'If-None-Match: "orders-7"\' \'http://127.0.0.1:8077/v1/routes/orders?wait=30s\''))
    .action(action(async (ctx, o: { listen: string; cluster?: string; allowRemote: boolean; interval: number; maxWait: number }) => {
      const { serveRoutes } = await import('../core/routes/serve.js');
      await serveRoutes(ctx, {
        listen: o.listen, allowRemote: o.allowRemote, intervalMs: o.interval, maxWaitMs: o.maxWait, ...(o.cluster ? { clusters: [o.cluster] } : {}),
        onListening: (a) => process.stdout.write((ctx.opts.json ? JSON.stringify({ listening: a.url, host: a.host, port: a.port, clusters: a.clusters }) : `listening on ${a.url} (${a.clusters.join(', ')})`) + '\n'),
      });
      return ExitCode.interrupted;
    }));
}
// ---- end gz routes, gz serve ----

// ---- gz switch (part S4) ----
function registerGzSwitch(gz: Command): void {
  gz
    .command('switch')
    .description("move a global cluster's write zone: preflight (all refusals at once, exit 4, nothing blocked), then verify the rows changed since the last verified point, block the routes, wait until every live client following them has acknowledged that, block every write at the write zone's master, wait until DRC applied its final GTID at the target, verify the last rows (a difference stops it unless --force), check DRC runs the other way, flip the routing table (the point of no return), move every zone's proxy to the target's master, release the source (read_only as it was); rolled back before the flip, resumed after it")
    .option(...CLUSTER_OPTION)
    .option('--to <zone>', 'the zone that takes the writes')
    .option('--execute', 'switch (without it: the preflight and every step it would take; nothing changed)')
    .addOption(durationOption('--max-lag <duration>', 'refuse while DRC from the write zone to --to lags more than this', { bare: 's', as: 'ms', default: '1s' }))
    .addOption(durationOption('--timeout <duration>', "the bound of the drain (DRC applying the source's final position at the target): past it the switch is rolled back", { bare: 's', as: 'ms', min: '100ms', default: '30s' }))
    .addOption(durationOption('--client-timeout <duration>', 'the bound of the wait for every live client following the routing table to acknowledge the blocked route: past it the switch is rolled back', { bare: 's', as: 'ms', min: '100ms', default: '5s' }))
    .addOption(durationOption('--lock-wait <duration>', 'the bound of the write block at the source: past it the block is given up, the route restored (exit 4)', { bare: 's', as: 'ms', default: '3s' }))
    .addOption(durationOption('--grace <duration>', 'after this long, client sessions holding the block back by writing are killed', { bare: 's', as: 'ms', default: '1s' }))
    .addOption(durationOption('--running-updates-limit <duration>', 'refuse while a write transaction at the source has run longer than this', { bare: 's', as: 'ms', default: '10s' }))
    .option('--verify-tables <list>', 'also compare these tables in full inside the window (db.t,db.u): the window grows with them')
    .option('--force', 'flip even when rows differ (they are named in the report)')
    .option('--resume <job>', 'continue a switch that died: forward past its flip, rolled back before it (the same command again does this too)')
    .option('--rollback <job>', 'roll back a switch: before its flip undone; after it, a switch back to the old write zone (carrying what the target took)')
    .addOption(leaseOption())
    .addHelpText('after', examples('ezctl gz switch --cluster users --to sh', 'ezctl gz switch --cluster users --to sh --execute', 'ezctl --json gz switch --cluster users --to sh --execute --timeout 10s', 'ezctl gz switch --cluster users --rollback 20261204-120102-3fa9c1'))
    .action(action(async (ctx, o: { cluster?: string; to?: string; execute?: boolean; maxLag: number; timeout: number; clientTimeout: number; lockWait: number; grace: number; runningUpdatesLimit: number; verifyTables?: string; force?: boolean; resume?: string; rollback?: string; lease: number }) => {
      const { gzSwitch, gzSwitchAgain, renderGzSwitch } = await import('../core/gz/index.js');
      const { resultError } = await import('../core/steps/engine.js');
      const tuning = { maxLagMs: o.maxLag, timeoutMs: o.timeout, clientTimeoutMs: o.clientTimeout, lockWaitMs: o.lockWait, graceMs: o.grace, runningUpdatesLimitMs: o.runningUpdatesLimit, force: !!o.force, ...(o.verifyTables !== undefined ? { verifyTables: o.verifyTables } : {}) };
      let r;
      if (o.resume !== undefined || o.rollback !== undefined) {
        if (o.resume !== undefined && o.rollback !== undefined) throw badInput('--resume and --rollback: give one');
        r = await gzSwitchAgain(ctx, { ...(o.cluster !== undefined ? { cluster: o.cluster } : {}), jobId: (o.resume ?? o.rollback)!, mode: o.resume !== undefined ? 'resume' : 'rollback', leaseMs: o.lease, switchBack: tuning });
      } else {
        if (o.to === undefined) throw badInput('gz switch needs --to ZONE (or --resume/--rollback JOB)');
        r = await gzSwitch(ctx, { ...(o.cluster !== undefined ? { cluster: o.cluster } : {}), to: o.to, execute: !!o.execute, leaseMs: o.lease, ...tuning });
      }
      const err = r.result ? resultError(r.result) : r.refusals.length ? refused(r.message ?? 'refused', { details: r.refusals.length > 1 ? r.refusals : [] }) : undefined;
      ctx.result(r, () => renderGzSwitch(r));
      // --json: the report is the one document (its result says why); text: the error on stderr too
      if (err && !ctx.opts.json) throw err;
      return err ? err.exitCode : ExitCode.ok;
    }));
}
// ---- end gz switch ----

// ---- gz move (part M5) ----
function registerGzMove(gz: Command): void {
  gz
    .command('move')
    .description("move shard ranges of a sharding cluster to another zone: preflight (all refusals at once, exit 4, nothing changed), then block those shards in the routing table (the other shards keep writing), wait until every live client has acknowledged it, take the source's GTID position, wait until DRC applied it at the target, verify those shards' rows (a difference stops it unless --force), flip the owner to the target (the point of no return); rolled back before the flip (the shards active at the source again), resumed after it. --force-dead-source: the source zone is down: block and flip in the reachable zones only, no drain, no verify; what may not have arrived is named")
    .option(...CLUSTER_OPTION)
    .option('--shards <list>', 'shard ids and ranges, e.g. 0-31,40-47 (those --to owns already are left alone)')
    .option('--to <zone>', 'the zone that owns them afterwards')
    .option('--execute', 'move (without it: the preflight and every step it would take; nothing changed)')
    .addOption(durationOption('--max-lag <duration>', 'refuse while DRC from the source to --to lags more than this', { bare: 's', as: 'ms', default: '1s' }))
    .addOption(durationOption('--timeout <duration>', "the bound of the drain (DRC applying the source's final position at the target): past it the move is rolled back", { bare: 's', as: 'ms', min: '100ms', default: '30s' }))
    .addOption(durationOption('--client-timeout <duration>', 'the bound of the wait for every live client to acknowledge the blocked shards: past it the move is rolled back', { bare: 's', as: 'ms', min: '100ms', default: '5s' }))
    .option('--force', 'flip even when rows differ (they are named in the report)')
    .option('--force-dead-source', 'the source zone is down: move without drain and verify (refused while its master answers)')
    .option('--resume <job>', 'continue a move that died: forward past its flip, rolled back before it (the same command again does this too)')
    .option('--rollback <job>', 'roll back a move that died before its flip (after it: move the shards back)')
    .addOption(leaseOption())
    .addHelpText('after', examples('ezctl gz move --cluster orders --shards 0-31 --to sh', 'ezctl gz move --cluster orders --shards 0-31 --to sh --execute', 'ezctl --json gz move --cluster orders --shards 0-15,40 --to sh --execute --timeout 10s', 'ezctl gz move --cluster orders --shards 0-31 --to sh --execute --force-dead-source'))
    .action(action(async (ctx, o: { cluster?: string; shards?: string; to?: string; execute?: boolean; maxLag: number; timeout: number; clientTimeout: number; force?: boolean; forceDeadSource?: boolean; resume?: string; rollback?: string; lease: number }) => {
      const { gzMove, gzMoveAgain, renderGzMove } = await import('../core/gz/index.js');
      const { resultError } = await import('../core/steps/engine.js');
      const cluster = o.cluster !== undefined ? { cluster: o.cluster } : {};
      let r;
      if (o.resume !== undefined || o.rollback !== undefined) {
        if (o.resume !== undefined && o.rollback !== undefined) throw badInput('--resume and --rollback: give one');
        r = await gzMoveAgain(ctx, { ...cluster, jobId: (o.resume ?? o.rollback)!, mode: o.resume !== undefined ? 'resume' : 'rollback', leaseMs: o.lease });
      } else {
        if (o.shards === undefined || o.to === undefined) throw badInput('gz move needs --shards LIST and --to ZONE (or --resume/--rollback JOB)');
        r = await gzMove(ctx, { ...cluster, shards: o.shards, to: o.to, execute: !!o.execute, maxLagMs: o.maxLag, timeoutMs: o.timeout, clientTimeoutMs: o.clientTimeout, force: !!o.force, forceDeadSource: !!o.forceDeadSource, leaseMs: o.lease });
      }
      const err = r.result ? resultError(r.result) : r.refusals.length ? refused(r.message ?? 'refused', { details: r.refusals.length > 1 ? r.refusals : [] }) : undefined;
      ctx.result(r, () => renderGzMove(r));
      // --json: the report is the one document (its result says why); text: the error on stderr too
      if (err && !ctx.opts.json) throw err;
      return err ? err.exitCode : ExitCode.ok;
    }));
}
// ---- end gz move ----
