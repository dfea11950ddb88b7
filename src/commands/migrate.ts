// ezctl migrate: one-off data-preserving migrations run in every zone (the DRC timestamp
// column; INT→BIGINT key widening, its report and plan). Each subcommand is registered by its own
// function below, so a new one is one more register call in registerMigrate.
import type { Command } from 'commander';
import { action, CLUSTER_OPTION, addCopyOptions, copyOptionsFrom, decimal, duration, durationOption, examples, integer, nameList, type CopyFlags } from './common.js';
import { addThrottleOptions, throttleOptionsFrom, type ThrottleFlags } from '../core/throttle/options.js';
import { ExitCode } from '../core/exit.js';
import { leaseOption } from './common.js';

export function registerMigrate(program: Command): void {
  const migrate = program
    .command('migrate')
    .description('migrations run in every zone that keep the zones identical: the DRC timestamp column (drc-ts); integer keys running out of values, and the plan to widen them to BIGINT (int2bigint)')
    .addHelpText('after', examples('ezctl migrate drc-ts --cluster demo', 'ezctl migrate drc-ts --cluster demo --execute', 'ezctl migrate int2bigint --cluster demo --threshold 0.5'));
  registerDrcTs(migrate);
  registerInt2Bigint(migrate);
}

interface DrcTsFlags {
  cluster?: string;
  zones?: string[];
  tables?: string;
  exclude?: string;
  execute?: boolean;
  value?: string;
  lockWaitTimeout?: number;
  lease: number;
}

function registerDrcTs(migrate: Command): void {
  const drcTs = migrate
    .command('drc-ts')
    .description('add the DRC timestamp column (TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)) where it is missing or wrong, so that every row has the same value in every zone; prints the plan and SQL unless --execute')
    .option(...CLUSTER_OPTION)
    .option('--zones <list>', 'only these zones, comma-separated, in this order (default: all)', nameList)
    .option('--tables <patterns>', 'only these tables: db.table, db.*, /regex/ (comma-separated; default: what DRC replicates)')
    .option('--exclude <patterns>', 'leave out these tables (same patterns)')
    .option('--value <utc>', "the value existing rows get, 'YYYY-MM-DD HH:MM:SS[.fff]' UTC (default: now, to the second); give the printed one to continue an interrupted run")
    .option('--lock-wait-timeout <duration>', 'how long each ALTER waits for the table\'s metadata lock before it tries again, whole seconds (default 5s; a bare number is seconds)', duration({ bare: 's', as: 's', min: '1s', max: '1h', whole: true }))
    .option('--execute', 'run it, then verify definitions (masters and replicas) and values (across zones)')
    .addOption(leaseOption())
    .addHelpText(
      'after',
      '\nPer table: (1) ADD COLUMN ... NOT NULL DEFAULT \'<fixed UTC value>\' in every zone, ALGORITHM=INSTANT\n' +
        '(existing rows read that one value; falls back to INPLACE, then COPY, which fill the same constant);\n' +
        '(2) a zone without the column while another zone has one gets that zone\'s values by primary key;\n' +
        '(3) MODIFY COLUMN to the final definition: metadata only (INSTANT), existing values kept.\n' +
        'A wrong definition is fixed when every value survives (TIMESTAMP(0) widened by a table copy; NULLs set\n' +
        'to the fixed value first) and refused otherwise (DATETIME, other types, a finer precision): exit 4.\n' +
        'DDL runs at each zone master (its replicas follow) with time_zone \'+00:00\' and DRC\'s marker comment.\n' +
        'A DRC direction that stopped because its target lacked the column is resumed afterwards (daemon on this host).\n' +
        'While --execute runs it answers `ezctl migrate drc-ts status|pause|resume|stop` (one per cluster on a\n' +
        'host at a time: a second is refused, exit 4); after `stop` it exits 130, unverified, as after Ctrl-C.\n' +
        'It is a job (`ezctl jobs`, kind migrate-drc-ts) holding the lease of every table it changes, on any host.\n' +
        'Exit 0 when verified (or the plan printed), 1 when the verification finds differences, 4 when refused.\n' +
        examples(
          'ezctl migrate drc-ts --cluster demo',
          "ezctl migrate drc-ts --cluster demo --tables 'shop.*' --execute",
          "ezctl --json migrate drc-ts --exclude 'shop.audit_*' --execute",
        ),
    )
    .action(action(async (ctx, o: DrcTsFlags) => {
      const { migrateDrcTs, drcTsExitCode } = await import('../core/migrate/drc-ts.js');
      const { renderDrcTs } = await import('../core/migrate/drc-ts-render.js');
      const opts: import('../core/migrate/drc-ts.js').DrcTsOptions = {};
      for (const k of ['cluster', 'zones', 'tables', 'exclude', 'value', 'lockWaitTimeout'] as const) if (o[k] !== undefined) (opts as Record<string, unknown>)[k] = o[k];
      if (o.execute) opts.execute = true;
      opts.leaseMs = o.lease;
      const r = await migrateDrcTs(ctx, opts);
      ctx.result(r, () => renderDrcTs(r));
      return drcTsExitCode(r);
    }));

  // the running migration's control socket, as `ezctl osc status|pause|resume`: subcommands of the job's own command
  const verbs = [
    ['status', 'progress of the running migrate drc-ts --execute: steps done of all, the step under way, ETA, paused'],
    ['pause', 'pause the running migration before its next step (until resume)'],
    ['resume', 'resume a paused migration'],
    ['stop', 'stop the running migration after the step under way (each step is whole): it exits 130 unverified; the same command with the printed --value continues it'],
  ] as const;
  for (const [name, description] of verbs) {
    drcTs
      .command(name)
      .description(description)
      .option(...CLUSTER_OPTION)
      .addHelpText('after', `\nExit 0 answered; 3 no migrate drc-ts of the cluster answers on this host.\n${examples(`ezctl migrate drc-ts ${name} --cluster demo`)}`)
      .action(action(async (ctx, o: { cluster?: string }) => {
        const [{ drcTsControl }, { renderRunStatus }] = await Promise.all([import('../core/migrate/drc-ts-control.js'), import('../core/control/run.js')]);
        const r = await drcTsControl(ctx, { cmd: name, ...(o.cluster ? { cluster: o.cluster } : {}) });
        ctx.result(r, () => renderRunStatus(r));
      }, { parentOptions: true }));
  }
}

interface Int2BigintFlags extends ThrottleFlags, CopyFlags {
  cluster?: string;
  zones?: string[];
  tables?: string;
  exclude?: string;
  threshold?: number;
  execute?: boolean;
  lease: number;
  resume?: boolean;
  dropOldTable?: boolean;
  includeTriggers?: boolean;
  lockWaitTimeout?: number;
}

function registerInt2Bigint(migrate: Command): void {
  const cmd = migrate
    .command('int2bigint')
    .description('report every integer key (AUTO_INCREMENT, single-column PRIMARY/UNIQUE, referenced by a foreign key): type, largest value and AUTO_INCREMENT over all zones, share of capacity used, the foreign keys referencing it; and plan the widening to BIGINT of each key at or above --threshold together with its foreign-key family (signedness and AUTO_INCREMENT kept), most urgent first. Changes nothing')
    .option(...CLUSTER_OPTION)
    .option('--zones <list>', 'only these zones, comma-separated (default: all); where definitions differ the first zone\'s is used', nameList)
    .option('--tables <patterns>', 'only these tables: db.table, db.*, /regex/ (comma-separated; default: what DRC replicates)')
    .option('--exclude <patterns>', 'leave out these tables (same patterns)')
    .option('--threshold <share>', 'plan the keys that have used this share of their capacity or more, 0..1', decimal(0, 1), 0.5)
    .option('--execute', 'run the plan, most urgent family first, through the online schema change in every zone')
    .option('--resume', 'with --execute: continue the family whose process died (kill -9, a crash) from each zone\'s saved copy keys and binlog position')
    .option('--drop-old-table', 'with --execute: after each cut-over drop the old tables (kept as <t>_ezdel by default) in every zone, once the throttle lets it through')
    .option('--include-triggers', 'carry each table\'s triggers to its new table at the cut-over, as `ezctl osc --include-triggers` does (without it a table with triggers is refused)')
    .addOption(durationOption('--lock-wait-timeout <duration>', 'how long any DDL or lock other than the cut-over waits for a metadata lock (the plan\'s twins, ghosts, index build, copy, the old tables\' foreign keys, drops) before stopping and naming the session that holds it', { bare: 's', as: 's', whole: true, min: '1s', max: '1h', default: '10s' }))
    .addOption(leaseOption());
  addCopyOptions(cmd);
  addThrottleOptions(cmd);
  cmd
    .addHelpText(
      'after',
      '\nUsed share: max(largest value, AUTO_INCREMENT - 1) / the type\'s largest value, the larger over all\n' +
        'zone masters (each zone hands out its own ids). The largest value is read with SELECT MAX(col), one\n' +
        'index dive; a column that leads no index is not read (that would scan the table).\n' +
        'A family: the key, every foreign-key column referencing it and, recursively, those referencing them,\n' +
        'each widened to BIGINT with its own signedness, NULL, DEFAULT, AUTO_INCREMENT and COMMENT kept; plus\n' +
        'every table with a foreign key into the family, rebuilt unchanged (its foreign keys must follow the\n' +
        'rebuilt tables). Families that would share a table are planned as one (a table changes once).\n' +
        'Exit 0 with the report and the plan.\n' +
        'With --execute: each family, most urgent first, in every zone at once: a table alone through `ezctl osc`\n' +
        '(instant where the server can, a ghost copy otherwise); a family linked by foreign keys through one\n' +
        'change of all its tables (ghosts with their foreign keys, cascades followed, one RENAME per zone; the\n' +
        'old tables are kept as <t>_ezdel without foreign keys, or dropped with --drop-old-table; `ezctl osc\n' +
        'cleanup` drops kept ones). Every family\'s plan is checked first: a refusal changes nothing (exit 4).\n' +
        'Exit 0 when every family is done; 3 when the run stopped part-way: the error names the families done,\n' +
        'the one that failed and those not started.\n' +
        'Each family is a job (`ezctl jobs`, kind migrate-int2bigint) holding the lease of its tables, as osc\'s.\n' +
        examples(
          'ezctl migrate int2bigint --cluster demo',
          "ezctl migrate int2bigint --tables 'shop.*' --threshold 0.3",
          'ezctl --json migrate int2bigint --threshold 0',
          "ezctl migrate int2bigint --tables 'shop.*' --threshold 0.5 --execute --max-load Threads_running=50",
        ),
    )
    .action(action(async (ctx, o: Int2BigintFlags) => {
      const { int2bigintReport } = await import('../core/migrate/int2bigint.js');
      const { renderInt2Bigint, renderInt2BigintRun } = await import('../core/migrate/int2bigint-render.js');
      const opts: import('../core/migrate/int2bigint-run.js').Int2BigintRunOptions = {};
      for (const k of ['cluster', 'zones', 'tables', 'exclude', 'threshold'] as const) if (o[k] !== undefined) (opts as Record<string, unknown>)[k] = o[k];
      if (!o.execute) {
        const r = await int2bigintReport(ctx, opts);
        ctx.result(r, () => renderInt2Bigint(r));
        return ExitCode.ok;
      }
      const { runInt2Bigint } = await import('../core/migrate/int2bigint-run.js');
      Object.assign(opts, copyOptionsFrom(o));
      if (o.resume) opts.resume = true;
      if (o.dropOldTable) opts.dropOldTable = true;
      if (o.includeTriggers) opts.includeTriggers = true;
      if (o.lockWaitTimeout !== undefined) opts.lockWaitTimeoutS = o.lockWaitTimeout;
      opts.leaseMs = o.lease;
      opts.throttle = throttleOptionsFrom(o);
      opts.onProgress = (line) => {
        if (!ctx.opts.quiet) ctx.log.info(line);
      };
      const r = await runInt2Bigint(ctx, opts);
      ctx.result(r, () => renderInt2BigintRun(r));
      return ExitCode.ok;
    }));
}
