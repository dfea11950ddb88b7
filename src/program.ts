// The commander program: global options and every command group. Kept free of heavy imports so
// that `ezctl --help` starts fast; each action loads what it needs when it runs.
import { Command } from 'commander';
import { durationOption } from './commands/common.js';
import { registerSandbox } from './commands/sandbox.js';
import { registerTopo } from './commands/topo.js';
import { registerDrc } from './commands/drc.js';
import { registerCheck, registerRepair } from './commands/check.js';
import { registerMigrate } from './commands/migrate.js';
import { registerOsc } from './commands/osc.js';
import { registerEmha } from './commands/emha.js';
import { registerGz } from './commands/gz.js';
import { registerJobs } from './commands/jobs.js';
import { registerDrill } from './commands/drill.js';
import { registerDbus } from './commands/dbus.js';
import { exitCodeDocs } from './core/exit.js';

export const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('ezctl');
  program
    .description('Operate MySQL/MariaDB active-active across zones: sandbox, topology, DRC replication, checks, schema change, switches.')
    .version(VERSION, '--version', 'print the version and exit')
    .option('-c, --config <file>', 'topology file (default: $EZCTL_CONFIG, ./ezctl.yaml, ./.ezctl/sandbox/ezctl.yaml)')
    .option('--json', 'print the result as one JSON document (JSON lines for streams)')
    .option('-v, --verbose', 'more log detail on stderr (repeat for more)', (_: string, prev: number) => prev + 1, 0)
    .option('-q, --quiet', 'only warnings and errors on stderr')
    .option('--no-color', 'no colours, even on a terminal')
    .option('--defaults-file <file>', 'read user and password from a ~/.my.cnf-style file (overrides the topology file)')
    .option('--ask-pass', 'prompt for the password on the terminal')
    .addOption(durationOption('--connect-timeout <duration>', 'give up connecting to a server after this long (a bare number is seconds)', { bare: 's', as: 's', min: '100ms', max: '10m', default: '5s' }))
    .option('--from-zone <zone>', 'the zone this command runs in: another zone\'s servers are reached at their address as seen from it (the topology file\'s via:, e.g. through `sandbox up --wan-latency` relays); default $EZCTL_ZONE, then the first zone')
    .showSuggestionAfterError(true)
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true })
    .addHelpText(
      'after',
      `
Exit codes:
${exitCodeDocs.map(([c, d]) => `  ${String(c).padEnd(4)}${d}`).join('\n')}

Examples:
  $ ezctl sandbox up --zones bj,sh --replicas 1
  $ ezctl topo show
  $ ezctl --json topo check
`,
    );
  registerSandbox(program);
  registerTopo(program);
  registerDrc(program);
  registerCheck(program);
  registerRepair(program);
  registerMigrate(program);
  registerOsc(program);
  registerEmha(program);
  registerGz(program);
  registerDbus(program);
  registerJobs(program);
  registerDrill(program);
  return program;
}
