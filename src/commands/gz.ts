// ezctl gz: the routing table (GZS) of each cluster and the zone switches that change it: a global
// cluster's write zone (`gz switch`), a sharding cluster's shard ranges (`gz move`).
import type { Command } from 'commander';
import { action, examples, CLUSTER_OPTION, durationOption, leaseOption } from './common.js';
import { ExitCode, badInput, refused } from '../core/exit.js';

export function registerGz(program: Command): void {
  const gz = program
    .command('gz')
    .description("the routing table (GZS: a global cluster's write zone, a sharding cluster's shard ranges) and the zone switches that change it: block writes, drain, verify, flip, roll back")
    .addHelpText('after', examples('ezctl gz routes --cluster orders', 'ezctl gz switch --cluster users --to sh', 'ezctl gz move --cluster orders --shards 0-31 --to sh --execute'));
  void gz;
  registerGzMove(gz);
}

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
