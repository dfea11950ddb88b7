// ezctl check: consistency checks between zones (full, incremental, schema).
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { action, examples, integer, nameList, parseDurationMs } from './common.js';
import { registerCheckSchema } from './check-schema.js';
import { addThrottleOptions } from '../core/throttle/options.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

function mode(v: string): 'count' | 'checksum' | 'rows' {
  if (v === 'count' || v === 'checksum' || v === 'rows') return v;
  throw new InvalidArgumentError(`${JSON.stringify(v)} is not a mode (count, checksum or rows)`);
}

export function registerCheck(program: Command): void {
  const check = program
    .command('check')
    .description('consistency checks between zones: full, incremental, schema')
    .addHelpText('after', examples('ezctl check full --cluster demo', 'ezctl check incr --cluster demo --until-now', 'ezctl check schema --cluster demo'));

  const full = check
    .command('full')
    .description('compare every row of the selected tables across zones: chunk checksums computed by each server, differing chunks narrowed to rows; exit 1 on differences')
    .option('--cluster <name>', 'cluster (default: the only one)')
    .option('--zones <list>', 'only these zones, comma-separated; the first gives the chunk bounds and keeps the results (default: all)', nameList)
    .option('--tables <patterns>', 'only these tables: db.table, db.*, /regex/ (comma-separated)')
    .option('--exclude <patterns>', 'leave out these tables (same patterns)')
    .option('--where <[db.t:]condition>', 'check only rows matching an SQL condition; prefix db.t: for one table (repeatable)', collect)
    .option('--ignore-columns <[db.t:]a,b>', 'do not compare these columns; prefix db.t: for one table (repeatable)', collect)
    .option('--mode <mode>', 'count: row counts only; checksum: chunk checksums (default); rows: every row hash compared', mode)
    .option('--concurrency <n>', 'tables checked at once (default 2)', integer(1, 64))
    .option('--chunk-time <duration>', 'target time per chunk; the chunk size adapts to it (default 0.5s)', parseDurationMs)
    .option('--run-time <duration>', 'stop at a chunk boundary after this long; --resume continues', parseDurationMs)
    .option('--resume', 'continue the latest unfinished run of this cluster (a new run when there is none)')
    .option('--delay <duration>', 'at least this long before a difference is re-checked (default: measured DRC lag + 1s)', parseDurationMs)
    .option('--rechecks <n>', 'times a difference is re-checked, with backoff, before it is reported (default 5)', integer(0, 20))
    .option('--keyless-max-rows <n>', 'tables without a key up to this many rows are compared as a multiset (default 100000)', integer(0))
    .option('--report <file>', 'also write the JSON report to this file');
  addThrottleOptions(full);
  full
    .addHelpText(
      'after',
      '\nDefaults for every option can live in the topology file under clusters.<name>.check.\n' +
        'Results are kept in _ezctl (check_runs, check_tables, check_diffs) at the first zone\'s master;\n' +
        '`ezctl repair` reads them from there.\n' +
        examples(
          'ezctl check full --cluster demo',
          "ezctl check full --tables 'ezdemo.*' --exclude 'ezdemo.tmp_*' --mode rows",
          "ezctl check full --where 'ezdemo.orders:created_at >= NOW() - INTERVAL 1 DAY' --ignore-columns 'ezdemo.users:last_login'",
          'ezctl check full --run-time 30m --resume --max-load Threads_running=25   # nightly cron',
        ),
    )
    .action(action(async (ctx, o: import('../core/dcp/options.js').CheckFlags & { report?: string }) => {
      const { checkFull, checkExitCode } = await import('../core/dcp/check-full.js');
      const { checkOptions } = await import('../core/dcp/options.js');
      const { renderCheckReport, progressPrinter } = await import('../core/dcp/render.js');
      const topo = await ctx.topology();
      const opts = checkOptions(o, topo.cluster(o.cluster).config.check);
      const progress = ctx.opts.quiet ? undefined : progressPrinter();
      let r;
      try {
        r = await checkFull(ctx, opts, progress ? (p) => progress.update(p) : undefined);
      } finally {
        progress?.end();
      }
      if (o.report) {
        const { writeFileSync } = await import('node:fs');
        const { jsonReplacer } = await import('../core/context.js');
        writeFileSync(o.report, JSON.stringify(r, jsonReplacer, 2) + '\n');
      }
      ctx.result(r, () => renderCheckReport(r));
      return r.stoppedBy === 'interrupt' ? 130 : checkExitCode(r);
    }));

  registerCheckSchema(check);
}
