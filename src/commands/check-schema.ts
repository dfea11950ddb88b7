// ezctl check schema: compare table structure between zones (and each replica with its master).
import type { Command } from 'commander';
import { action, CLUSTER_OPTION, examples, nameList } from './common.js';
import { ExitCode } from '../core/exit.js';

export function registerCheckSchema(check: Command): void {
  check
    .command('schema')
    .description('compare table structure: every zone master against the reference (the first zone), every replica against its master; exit 1 on differences')
    .option(...CLUSTER_OPTION)
    .option('--zones <list>', 'only these zones, comma-separated; the first is the reference (default: all, a global cluster\'s writer zone first)', nameList)
    .option('--tables <patterns>', 'only these tables: db.table, db.*, db.tmp_*, /regex/ (comma-separated)')
    .option('--exclude <patterns>', 'leave out these tables (same patterns)')
    .option('--no-replicas', 'compare zone masters only')
    .addHelpText(
      'after',
      '\nCompares the tables DRC replicates (the cluster\'s databases and drc include/exclude rules):\n' +
        'columns (type, NULL, default, charset, collation, extra, generation, order), primary key,\n' +
        'indexes (with prefix lengths), foreign keys, engine and table collation. Integer display\n' +
        'widths, comments and row formats are not compared.\n' +
        examples('ezctl check schema --cluster demo', 'ezctl check schema --zones sh,bj --tables \'ezdemo.*\' --exclude \'ezdemo.tmp_*\'', 'ezctl --json check schema --no-replicas'),
    )
    .action(action(async (ctx, o: { cluster?: string; zones?: string[]; tables?: string; exclude?: string; replicas: boolean }) => {
      const { checkSchema, renderSchemaReport } = await import('../core/dcp/structure.js');
      const r = await checkSchema(ctx, o);
      ctx.result(r, () => renderSchemaReport(r));
      return r.consistent ? ExitCode.ok : ExitCode.differences;
    }));
}
