// ezctl emha: master switch and failover in a zone (to come), and MHA's configuration kept true.
import type { Command } from 'commander';
import { action, examples, CLUSTER_OPTION } from './common.js';
import { ExitCode } from '../core/exit.js';

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
}
