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

  // ---- emha watch (part M6): the monitor, its status and stop ----
  emha
    .command('watch')
    .description("a long-running monitor of one cluster (one per cluster: a job lease). Every --interval it asks each zone's master from ezctl and from every replica's IO thread; a master dead at two looks in a row is failed over with --execute (else alerted), and topology drift (a replica added, moved or removed, a master changed by hand) is repaired in the topology file, the proxy, DRC and MHA's configs with --execute (else reported). One line per event (a JSON document with --json); `emha watch-status` / `emha watch-stop` reach it")
    .option(...CLUSTER_OPTION)
    .option('--execute', 'fail over dead masters and repair drift (without it: alert and report only, nothing changed)', false)
    .addOption(durationOption('--interval <duration>', 'time between two looks', { bare: 's', as: 'ms', min: '100ms', max: '10m', default: '1s' }))
    .addOption(durationOption('--timeout <duration>', 'each connection and query of a look gives up after this long (mysql2 has no read timeout: a hung master would hold the look for good)', { bare: 's', as: 'ms', min: '100ms', max: '1m', default: '2s' }))
    .addOption(durationOption('--drift-grace <duration>', 'drift must last this long (and two looks) before --execute repairs it: a switch done by hand takes a few statements', { bare: 's', as: 'ms', min: '0s', max: '1h', default: '5s' }))
    .addOption(durationOption('--anti-flap <duration>', "the failover it runs is refused while the zone's last failover is more recent than this (as `emha failover --anti-flap`; default: its 1h)", { bare: 's', as: 'ms' }))
    .option('--mha-dir <dir>', "MHA's config folder to keep current (default: <stateDir>/mha once `emha mha-config --out` wrote it)")
    .addOption(durationOption('--for <duration>', 'end after this long (drills, tests; default: until stopped)', { bare: 's', as: 'ms', min: '1s' }))
    .addOption(leaseOption())
    .addHelpText('after', examples('ezctl emha watch --cluster orders', 'ezctl emha watch --cluster orders --execute --interval 1s', 'ezctl --json emha watch --cluster orders --execute | tee watch.log', 'ezctl emha watch-status --cluster orders'))
    .action(action(async (ctx, o: { cluster?: string; execute: boolean; interval: number; timeout: number; driftGrace: number; antiFlap?: number; mhaDir?: string; for?: number; lease: number }) => {
      const { watch, renderWatchEvent, renderWatchReport } = await import('../core/emha/watch.js');
      const emit = (e: import('../core/emha/watch.js').WatchEvent) => {
        if (ctx.opts.json) process.stdout.write(JSON.stringify(e) + '\n');
        else if (/failed|dead$|alert|unreachable|lost|error|held|^drift$/.test(e.event)) ctx.log.warn(renderWatchEvent(e));
        else ctx.log.info(renderWatchEvent(e));
      };
      const r = await watch(ctx, {
        execute: o.execute, intervalMs: o.interval, timeoutMs: o.timeout, leaseMs: o.lease, driftGraceMs: o.driftGrace,
        ...(o.cluster ? { cluster: o.cluster } : {}), ...(o.mhaDir ? { mhaDir: o.mhaDir } : {}), ...(o.for ? { forMs: o.for } : {}), ...(o.antiFlap !== undefined ? { antiFlapMs: o.antiFlap } : {}),
      }, emit);
      if (!ctx.opts.json) process.stdout.write(renderWatchReport(r) + '\n');
      return r.stoppedBy === 'signal' ? ExitCode.interrupted : ExitCode.ok;
    }));

  for (const [name, cmd, what] of [['watch-status', 'status', "the running watch's looks: each zone's verdict, drift not repaired"], ['watch-stop', 'stop', 'end the running watch after its look under way']] as const) {
    emha
      .command(name)
      .description(what)
      .option(...CLUSTER_OPTION)
      .action(action(async (ctx, o: { cluster?: string }) => {
        const { watchControl, renderWatchStatus } = await import('../core/emha/watch.js');
        const s = await watchControl(ctx, { cmd, ...(o.cluster ? { cluster: o.cluster } : {}) });
        ctx.result(s, () => renderWatchStatus(s));
        return ExitCode.ok;
      }));
  }

  // ---- failover and rejoin (part M4) ----
  emha
    .command('failover')
    .description("the zone's master is dead: confirm it from more than one vantage point (ezctl cannot connect AND every replica's IO thread lost it), promote the most advanced replica once it applied its relay log, fence the old master (topology fenced list, proxy, DRC; read_only when it comes back), name the GTIDs lost, set DRC checkpoints back to the new master, repoint replicas, proxy, topology file and DRC. Without --execute: the assessment and the steps")
    .option(...CLUSTER_OPTION)
    .requiredOption('--zone <name>', 'the zone whose master is dead')
    .option('--to <node>', 'the replica to promote (default: the one that received most)')
    .option('--execute', 'run the failover (without it: the assessment, the candidate, the GTIDs known lost and the steps; nothing changed)')
    .addOption(durationOption('--anti-flap <duration>', "refused while the zone's last failover is more recent than this (0s: never refused)", { bare: 's', as: 'ms', default: '1h' }))
    .addOption(durationOption('--relay-timeout <duration>', 'how long the candidate gets to apply its relay log', { bare: 's', as: 'ms', min: '1s', default: '60s' }))
    .addOption(durationOption('--probe-timeout <duration>', "each of ezctl's two connection tries to the master, and each replica's answer", { bare: 's', as: 'ms', min: '100ms', max: '1m', default: '2s' }))
    .option('--resume <job>', 'continue a failover job from its journal (forward past its point of no return, else rolled back)')
    .option('--rollback <job>', 'undo a failover job that has not passed its point of no return')
    .addOption(leaseOption())
    .addHelpText('after', examples('ezctl emha failover --cluster orders --zone bj', 'ezctl emha failover --cluster orders --zone bj --execute', 'ezctl --json emha failover --zone bj --execute --anti-flap 10m', 'ezctl emha failover --zone bj --resume 20261204-120101-3fa9c1'))
    .action(action(async (ctx, o: { cluster?: string; zone: string; to?: string; execute?: boolean; antiFlap: number; relayTimeout: number; probeTimeout: number; resume?: string; rollback?: string; lease?: number }) => {
      const { emhaFailover, renderFailover, failoverError } = await import('../core/emha/failover.js');
      const fo: import('../core/emha/failover.js').FailoverOptions = { zone: o.zone, execute: !!o.execute || !!o.resume || !!o.rollback, antiFlapMs: o.antiFlap, relayTimeoutMs: o.relayTimeout, probeTimeoutMs: o.probeTimeout };
      if (o.cluster) fo.cluster = o.cluster;
      if (o.to) fo.to = o.to;
      if (o.resume) fo.resume = o.resume;
      if (o.rollback) fo.rollback = o.rollback;
      if (o.lease) fo.leaseMs = o.lease;
      const r = await emhaFailover(ctx, fo);
      ctx.result(r, () => renderFailover(r));
      const err = failoverError(r);
      // --json: the report is the one document (its result says why); text: the error on stderr too
      if (err && !ctx.opts.json) throw err;
      return err ? err.exitCode : ExitCode.ok;
    }));

  emha
    .command('rejoin')
    .description("a fenced old master (or a replica a failover could not repoint) becomes a read_only replica of its zone's master, only when it has no transaction the master lacks (per server, @@gtid_binlog_state), else refused naming them; its fence is lifted on success")
    .option(...CLUSTER_OPTION)
    .requiredOption('--node <name>', 'the node to rejoin (its name in the topology file)')
    .option('--execute', 'rejoin it (without it: the check and the steps; nothing changed)')
    .addOption(durationOption('--timeout <duration>', 'how long it gets to start replicating', { bare: 's', as: 'ms', min: '1s', default: '30s' }))
    .addHelpText('after', examples('ezctl emha rejoin --cluster orders --node bj-master', 'ezctl emha rejoin --cluster orders --node bj-master --execute'))
    .action(action(async (ctx, o: { cluster?: string; node: string; execute?: boolean; timeout: number }) => {
      const { emhaRejoin, renderRejoin } = await import('../core/emha/rejoin.js');
      const r = await emhaRejoin(ctx, { node: o.node, execute: !!o.execute, timeoutMs: o.timeout, ...(o.cluster ? { cluster: o.cluster } : {}) });
      ctx.result(r, () => renderRejoin(r));
      return ExitCode.ok;
    }));
}
