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
  registerGzSwitch(gz);
}

// ---- gz switch (part S4) ----
function registerGzSwitch(gz: Command): void {
  gz
    .command('switch')
    .description("move a global cluster's write zone: preflight (all refusals at once, exit 4, nothing blocked), then verify the rows changed since the last verified point, block the routes and every write at the write zone's master, wait until DRC applied its final GTID at the target, verify the last rows (a difference stops it unless --force), check DRC runs the other way, flip the routing table (the point of no return), move every zone's proxy to the target's master, release the source (read_only as it was); rolled back before the flip, resumed after it")
    .option(...CLUSTER_OPTION)
    .option('--to <zone>', 'the zone that takes the writes')
    .option('--execute', 'switch (without it: the preflight and every step it would take; nothing changed)')
    .addOption(durationOption('--max-lag <duration>', 'refuse while DRC from the write zone to --to lags more than this', { bare: 's', as: 'ms', default: '1s' }))
    .addOption(durationOption('--timeout <duration>', "the bound of the drain (DRC applying the source's final position at the target): past it the switch is rolled back", { bare: 's', as: 'ms', min: '100ms', default: '30s' }))
    .addOption(durationOption('--lock-wait <duration>', 'the bound of the write block at the source: past it the block is given up, the route restored (exit 4)', { bare: 's', as: 'ms', default: '3s' }))
    .addOption(durationOption('--grace <duration>', 'after this long, client sessions holding the block back by writing are killed', { bare: 's', as: 'ms', default: '1s' }))
    .addOption(durationOption('--running-updates-limit <duration>', 'refuse while a write transaction at the source has run longer than this', { bare: 's', as: 'ms', default: '10s' }))
    .option('--verify-tables <list>', 'also compare these tables in full inside the window (db.t,db.u): the window grows with them')
    .option('--force', 'flip even when rows differ (they are named in the report)')
    .option('--resume <job>', 'continue a switch that died: forward past its flip, rolled back before it (the same command again does this too)')
    .option('--rollback <job>', 'roll back a switch: before its flip undone; after it, a switch back to the old write zone (carrying what the target took)')
    .addOption(leaseOption())
    .addHelpText('after', examples('ezctl gz switch --cluster users --to sh', 'ezctl gz switch --cluster users --to sh --execute', 'ezctl --json gz switch --cluster users --to sh --execute --timeout 10s', 'ezctl gz switch --cluster users --rollback 20261204-120102-3fa9c1'))
    .action(action(async (ctx, o: { cluster?: string; to?: string; execute?: boolean; maxLag: number; timeout: number; lockWait: number; grace: number; runningUpdatesLimit: number; verifyTables?: string; force?: boolean; resume?: string; rollback?: string; lease: number }) => {
      const { gzSwitch, gzSwitchAgain, renderGzSwitch } = await import('../core/gz/index.js');
      const { resultError } = await import('../core/steps/engine.js');
      const tuning = { maxLagMs: o.maxLag, timeoutMs: o.timeout, lockWaitMs: o.lockWait, graceMs: o.grace, runningUpdatesLimitMs: o.runningUpdatesLimit, force: !!o.force, ...(o.verifyTables !== undefined ? { verifyTables: o.verifyTables } : {}) };
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
