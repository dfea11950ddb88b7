// Entry point: parse argv, run one command, map every outcome to the shared exit codes.
import { CommanderError, type Command } from 'commander';
import { buildProgram } from './program.js';
import { EzError, ExitCode } from './core/exit.js';
import { install as installSignals } from './core/signals.js';

// `ezctl ... | head`: the reader went away; the output is not wanted any more, which is no error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

function forEachCommand(cmd: Command, fn: (c: Command) => void): void {
  fn(cmd);
  for (const c of cmd.commands) forEachCommand(c, fn);
}

function wantsJson(argv: string[]): boolean {
  return argv.includes('--json');
}

function reportError(err: unknown, argv: string[]): number {
  const json = wantsJson(argv);
  const verbose = argv.some((a) => a === '-v' || a === '--verbose' || /^-v+$/.test(a));
  if (err instanceof EzError) {
    const lines = [`ezctl: ${err.message}`, ...err.details.map((d) => `  ${d}`)];
    if (err.hint) lines.push(`hint: ${err.hint}`);
    process.stderr.write(lines.join('\n') + '\n');
    if (verbose && err.cause instanceof Error && err.cause.stack) process.stderr.write(err.cause.stack + '\n');
    if (json) process.stdout.write(JSON.stringify({ error: { exitCode: err.exitCode, message: err.message, details: err.details, hint: err.hint ?? null } }) + '\n');
    return err.exitCode;
  }
  const e = err as Error;
  process.stderr.write(`ezctl: unexpected failure: ${e?.message ?? String(err)}\n`);
  if (verbose && e?.stack) process.stderr.write(e.stack + '\n');
  else process.stderr.write('hint: run again with -v for the stack trace, and report it if it is a bug\n');
  if (json) process.stdout.write(JSON.stringify({ error: { exitCode: ExitCode.runtime, message: e?.message ?? String(err) } }) + '\n');
  return ExitCode.runtime;
}

/** The command's full name for messages: "ezctl osc status". */
function commandPath(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

/**
 * A usage error (exit 2): commander has printed its message unless the error was thrown by an
 * action (a missing required value the action checks itself); print it then, and with --json
 * put the same error on stdout as one document, like every other error.
 */
function reportUsageError(err: CommanderError, argv: string[], printed: boolean, helped: Command | undefined): number {
  let message: string;
  let hint: string | null = null;
  if (err.code === 'commander.help' && helped) {
    // a command group given without its command (`ezctl topo`): commander printed the group's help
    const subs = helped.commands.map((c) => c.name());
    message = `${commandPath(helped)} needs a command: ${subs.join(', ')}`;
    hint = `run \`${commandPath(helped)} <command> --help\` for that command's options`;
    process.stderr.write(`error: ${message}\n`);
  } else {
    const [first = '', ...rest] = err.message.split('\n');
    message = first.replace(/^error: /, '');
    const more = rest.map((l) => l.trim()).filter(Boolean).map((l) => l.replace(/^\((.*)\)$/, '$1'));
    hint = more.length ? more.join(' ') : 'run with --help for usage';
    // commander's own form for the ones it prints: "error: ..." then how to get help
    if (!printed) process.stderr.write(`error: ${message}\n(${hint})\n`);
  }
  if (wantsJson(argv)) process.stdout.write(JSON.stringify({ error: { exitCode: ExitCode.badInput, message, details: [], hint } }) + '\n');
  return ExitCode.badInput;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // What commander itself printed: an error message, or (for a group without its command) help.
  let printed = false;
  let helped: Command | undefined;
  forEachCommand(program, (c) => {
    c.exitOverride();
    c.configureOutput({
      outputError: (str, write) => {
        printed = true;
        write(str);
      },
      writeErr: (str) => {
        helped = c;
        process.stderr.write(str);
      },
    });
  });
  installSignals();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every usage error (unknown command/flag, bad value, missing
      // required option or command) is bad input.
      return err.exitCode === 0 ? ExitCode.ok : reportUsageError(err, argv, printed, helped);
    }
    return reportError(err, argv);
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Leftover sockets or timers must not keep a finished command alive; but stdout and stderr are
// flushed first: into a pipe, Node writes what the pipe takes (64 KiB) and queues the rest, and an
// exit right away cut a longer --json report there (seen: `check full --json | jq`).
let unflushed = 2;
const exit = () => {
  if (--unflushed === 0) setImmediate(() => process.exit(code)).unref();
};
process.stdout.write('', exit);
process.stderr.write('', exit);
