// Generates man/ezctl.1 from the commander definitions, so the man page cannot drift from the
// commands: `npm run man` writes it, and a test fails when the committed page is stale.
import type { Command, Option } from 'commander';
import { buildProgram, VERSION } from '../program.js';
import { exitCodeDocs } from '../core/exit.js';

const esc = (s: string) => s.replace(/\\/g, '\\e').replace(/^([.'])/gm, '\\&$1').replace(/-/g, '\\-');

function helpAfter(cmd: Command): string {
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: () => {} });
  cmd.outputHelp();
  return out;
}

function examplesOf(cmd: Command): string[] {
  const text = helpAfter(cmd);
  const i = text.indexOf('\nExamples:\n');
  if (i < 0) return [];
  return text.slice(i + 11).split('\n').map((l) => l.trim()).filter((l) => l.startsWith('$ ')).map((l) => l.slice(2));
}

/** Text a command adds after its options (exit statuses, notes), before its examples. */
function notesOf(cmd: Command): string[] {
  const text = helpAfter(cmd);
  const end = text.indexOf('\nExamples:\n');
  const paras = (end < 0 ? text : text.slice(0, end)).split(/\n\s*\n/);
  const last = paras.findLastIndex((p) => /^(Global Options|Options|Commands|Usage):/m.test(p.trimStart().split('\n')[0] ?? ''));
  return paras.slice(last + 1).map((p) => p.replace(/^\n+|\s+$/g, '')).filter(Boolean);
}

function optionLines(opts: readonly Option[]): string[] {
  const out: string[] = [];
  for (const o of opts) {
    if (o.hidden) continue;
    out.push('.TP', `.B ${esc(o.flags)}`);
    let d = o.description;
    // the default as --help shows it (a duration option describes its default as "5s", not 5)
    if (o.defaultValue !== undefined && o.defaultValue !== false && !o.negate) d += ` (default: ${o.defaultValueDescription ?? (Array.isArray(o.defaultValue) ? o.defaultValue.join(',') : String(o.defaultValue))})`;
    out.push(esc(d));
  }
  return out;
}

function fullName(cmd: Command): string {
  const parts: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) parts.unshift(c.name());
  return parts.join(' ');
}

function commandSection(cmd: Command, out: string[]): void {
  for (const sub of cmd.commands) {
    if (sub.name() === 'help') continue;
    const args = sub.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`)).join(' ');
    out.push(`.SS ${esc(fullName(sub))}${args ? ' ' + esc(args) : ''}`);
    out.push(esc(sub.description()));
    out.push(...optionLines(sub.options));
    for (const note of notesOf(sub)) out.push('.PP', '.nf', esc(note), '.fi');
    const ex = examplesOf(sub);
    if (ex.length) {
      out.push('.PP', 'Examples:', '.RS', '.nf', ...ex.map((e) => esc(e)), '.fi', '.RE');
    }
    commandSection(sub, out);
  }
}

export function generateMan(): string {
  const program = buildProgram();
  const out: string[] = [];
  out.push(`.TH EZCTL 1 "" "ezctl ${VERSION}" "User Commands"`);
  out.push('.SH NAME', `ezctl \\- ${esc(program.description())}`);
  out.push('.SH SYNOPSIS', '.B ezctl', '[\\fIglobal options\\fR] \\fIgroup\\fR \\fIcommand\\fR [\\fIoptions\\fR]');
  out.push(
    '.SH DESCRIPTION',
    'ezctl is one program for DBAs who run MySQL/MariaDB in two or more data centers ("zones") that replicate to each other.',
    'Mutating commands change nothing without \\fB\\-\\-execute\\fR and print their plan instead; daemons are the exception.',
    'Results go to stdout (one JSON document with \\fB\\-\\-json\\fR, errors included: usage errors too come as {"error": ...}); logs and progress go to stderr.',
    'Durations are written 500ms, 10s, 2m or 1h; a bare number keeps the unit the option always had (seconds).',
    'Server errors read as the mysql client prints them, ERROR number (SQLSTATE): the server\'s own message.',
    'Without a terminal (cron, CI) there are no spinners and no colours, and log lines carry timestamps.',
  );
  out.push('.SH GLOBAL OPTIONS', ...optionLines(program.options));
  out.push('.SH COMMANDS');
  commandSection(program, out);
  out.push('.SH EXIT STATUS');
  for (const [code, doc] of exitCodeDocs) out.push('.TP', `.B ${code}`, esc(doc));
  out.push(
    '.SH FILES',
    '.TP', '.B ezctl.yaml',
    'The topology file: zones, clusters, nodes, credentials, the DRC timestamp column and the shard map. Found through \\fB\\-\\-config\\fR, \\fB$EZCTL_CONFIG\\fR, \\fI./ezctl.yaml\\fR, then \\fI./.ezctl/sandbox/ezctl.yaml\\fR.',
    '.TP', '.B ~/.my.cnf-style defaults files',
    'Credentials: \\fB[client]\\fR user= and password=, named by credentials.defaultsFile or \\fB\\-\\-defaults\\-file\\fR. As with the mysql client, a world\\-writable file is ignored with a warning (fix: chmod o\\-w).',
  );
  out.push(
    '.SH ENVIRONMENT',
    '.TP', '.B EZCTL_CONFIG', 'Path of the topology file when \\fB\\-\\-config\\fR is not given.',
    '.TP', '.B EZCTL_CACHE_DIR', 'Where the sandbox keeps its initialised template datadirs (default ~/.cache/ezctl).',
    '.TP', '.B EZCTL_SERVER_BIN', 'The mariadbd or mysqld binary the sandbox runs.',
    '.TP', '.B EZCTL_SERVER_PATH', 'Folders to search for the server binaries, instead of PATH and /usr/sbin.',
    '.TP', '.B NO_COLOR, CI', 'No colours; no live views (plain timestamped lines).',
  );
  out.push('.SH SECURITY', 'Passwords are never accepted in argv or in connection strings, and never logged. Give them through an environment variable named in the topology file (credentials.passwordEnv), a defaults file, or \\fB\\-\\-ask\\-pass\\fR.');
  return out.join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(generateMan());
