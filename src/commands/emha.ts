// ezctl emha: master switch and failover in a zone (to come), and MHA's configuration kept true.
import type { Command } from 'commander';
import { action, examples, CLUSTER_OPTION, durationOption, leaseOption } from './common.js';
import { ExitCode, refused, badInput } from '../core/exit.js';

export function registerEmha(program: Command): void {
  const emha = program
    .command('emha')
    .description('master switch / failover in one zone, notifying DRC and the proxy; MHA configuration upkeep')
    .addHelpText('after', examples('ezctl emha mha-config --cluster orders', 'ezctl emha mha-config --cluster orders --out /etc/mha'));

  emha
    .command('mha-config')
    .description("MHA manager configs, one file per zone ([server default] + one [serverN] per node) that MHA 0.58's reader accepts; printed, or written with --out (only files whose content changed, atomically; MHA keys you add are kept). The password is not written: MHA's init_conf_load_script asks `emha mha-secrets` for it")
    .option(...CLUSTER_OPTION)
    .option('--out <dir>', 'write the files into this folder (created mode 0700); without it they are printed and nothing is written')
    .option('--ssh-user <user>', 'ssh_user of [server default] (default: MHA\'s, the user running it; a value already in the file is kept)')
    .option('--repl-user <user>', 'repl_user of [server default] (default: MHA reads it from the replicas\' Master_User)')
    .option('--repl-password-env <name>', 'environment variable holding the replication password: init_conf_load_script gives it to MHA as repl_password')
    .option('--remote-workdir <dir>', 'remote_workdir on the database hosts (default /var/tmp/mha-<cluster>-<zone>)')
    .addHelpText('after', examples('ezctl emha mha-config --cluster orders', 'ezctl emha mha-config --cluster orders --out /etc/mha --ssh-user mha', 'ezctl --json emha mha-config --out /etc/mha'))
    .action(action(async (ctx, o: { cluster?: string; out?: string; sshUser?: string; replUser?: string; replPasswordEnv?: string; remoteWorkdir?: string }) => {
      const { mhaConfig, renderMhaConfig } = await import('../core/emha/index.js');
      const r = await mhaConfig(ctx, o);
      ctx.result(r, () => renderMhaConfig(r));
      if (r.unreachable.length) ctx.log.warn(`${r.unreachable.length} node${r.unreachable.length === 1 ? '' : 's'} not reached (${r.unreachable.map((u) => u.node).join(', ')}): their master_binlog_dir and candidate flags are left to MHA`);
      return r.unreachable.length ? ExitCode.runtime : ExitCode.ok;
    }));

  emha
    .command('mha-secrets')
    .description("print password= (and repl_password=) for MHA's init_conf_load_script; refuses a terminal")
    .option(...CLUSTER_OPTION)
    .requiredOption('--zone <name>', 'the zone whose credentials MHA uses')
    .option('--repl-password-env <name>', 'also print repl_password= from this environment variable')
    .action(action(async (ctx, o: { cluster?: string; zone: string; replPasswordEnv?: string }) => {
      const { mhaSecrets } = await import('../core/emha/index.js');
      process.stdout.write(await mhaSecrets(ctx, o));
      return ExitCode.ok;
    }));

  // ---- emha switch (part M3) ----
  emha
    .command('switch')
    .description("planned online master switch of one zone: preflight (all refusals at once, exit 4), then block writes on the old master (everyone, root included), wait until the candidate applied its final GTID, promote it (the point of no return), move the proxy, demote the old master under it, repoint the replicas, rewrite the topology file, drc repoint, rewrite MHA's config; rolled back before the point of no return, resumed after it")
    .option(...CLUSTER_OPTION)
    .option('--zone <name>', 'the zone whose master is switched')
    .option('--to <node>', "the new master, a replica of the zone (default: the best one: replicating from the master, no delay, least behind)")
    .option('--execute', 'switch (without it: the preflight and every step it would take; nothing changed)')
    .addOption(durationOption('--max-lag <duration>', 'refuse a candidate further behind than this', { default: '1s' }))
    .addOption(durationOption('--running-updates-limit <duration>', 'refuse while a write transaction on the master has run longer than this', { default: '10s' }))
    .addOption(durationOption('--lock-wait <duration>', 'the bound of the write block: past it the block is given up, the master left as it was (exit 4)', { default: '3s' }))
    .addOption(durationOption('--grace <duration>', 'after this long, client sessions holding the block back by writing are killed', { default: '1s' }))
    .addOption(durationOption('--timeout <duration>', 'the bound of the wait until the candidate applied the final position', { default: '10s' }))
    .option('--mha-dir <dir>', "MHA's config folder (emha mha-config --out) to rewrite (default <stateDir>/mha; nothing when the zone's file is not there)")
    .option('--resume <job>', 'continue a switch that died: forward past its point of no return, rolled back before it')
    .option('--rollback <job>', 'roll back a switch that died before its point of no return')
    .addOption(leaseOption())
    .addHelpText('after', examples('ezctl emha switch --cluster orders --zone bj', 'ezctl emha switch --cluster orders --zone bj --to bj-replica2 --execute', 'ezctl emha switch --cluster orders --resume 20261204-120102-3fa9c1'))
    .action(action(async (ctx, o: { cluster?: string; zone?: string; to?: string; execute?: boolean; maxLag: number; runningUpdatesLimit: number; lockWait: number; grace: number; timeout: number; mhaDir?: string; resume?: string; rollback?: string; lease: number }) => {
      const { emhaSwitch, emhaSwitchAgain, renderSwitch } = await import('../core/emha/index.js');
      const { resultError } = await import('../core/steps/engine.js');
      let r;
      if (o.resume !== undefined || o.rollback !== undefined) {
        if (o.resume !== undefined && o.rollback !== undefined) throw badInput('--resume and --rollback: give one');
        const jobId = (o.resume ?? o.rollback)!;
        r = await emhaSwitchAgain(ctx, { ...(o.cluster !== undefined ? { cluster: o.cluster } : {}), jobId, mode: o.resume !== undefined ? 'resume' : 'rollback', leaseMs: o.lease });
      } else {
        if (o.zone === undefined) throw badInput('emha switch needs --zone (or --resume/--rollback JOB)');
        r = await emhaSwitch(ctx, {
          ...(o.cluster !== undefined ? { cluster: o.cluster } : {}),
          zone: o.zone,
          ...(o.to !== undefined ? { to: o.to } : {}),
          execute: !!o.execute,
          maxLagMs: o.maxLag,
          runningUpdatesLimitMs: o.runningUpdatesLimit,
          lockWaitMs: o.lockWait,
          graceMs: o.grace,
          timeoutMs: o.timeout,
          ...(o.mhaDir !== undefined ? { mhaDir: o.mhaDir } : {}),
          leaseMs: o.lease,
        });
      }
      const refusals = r.assessment?.refusals ?? [];
      const err = refusals.length
        ? refused(`emha switch ${r.cluster}/${r.zone} refused: ${refusals.length === 1 ? refusals[0]! : `${refusals.length} reasons`}; nothing was changed`, { details: refusals.length > 1 ? refusals : [] })
        : r.result ? resultError(r.result) : undefined;
      ctx.result(r, () => renderSwitch(r));
      // --json: the report is the one document (its result says why); text: the error on stderr too
      if (err && !ctx.opts.json) throw err;
      return err ? err.exitCode : ExitCode.ok;
    }));
  // ---- end emha switch ----
}
