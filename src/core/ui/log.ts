// Logs and progress go to stderr; stdout carries only the result. Without a TTY (cron, CI,
// pipes) lines are plain and timestamped, with no colour.
export type Level = 'error' | 'warn' | 'info' | 'debug';

export interface LogOptions {
  verbose: number;
  quiet: boolean;
  color: boolean;
  stream?: NodeJS.WriteStream;
}

const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };
const COLOR: Record<Level, string> = { error: '31', warn: '33', info: '36', debug: '90' };

/** True when a live view (spinners, ink) may draw: stderr is a terminal and this is not CI. */
export function isInteractive(stream: NodeJS.WriteStream = process.stderr, env = process.env): boolean {
  return Boolean(stream.isTTY) && !env.CI;
}

export function colorAllowed(wanted: boolean, stream: NodeJS.WriteStream = process.stderr, env = process.env): boolean {
  return wanted && Boolean(stream.isTTY) && env.NO_COLOR === undefined && env.TERM !== 'dumb';
}

export class Logger {
  readonly stream: NodeJS.WriteStream;
  private readonly max: number;
  private readonly tty: boolean;
  private readonly color: boolean;

  constructor(opts: LogOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.max = opts.quiet ? RANK.warn : opts.verbose > 0 ? RANK.debug : RANK.info;
    this.tty = isInteractive(this.stream);
    this.color = colorAllowed(opts.color, this.stream);
  }

  enabled(level: Level): boolean {
    return RANK[level] <= this.max;
  }

  log(level: Level, msg: string): void {
    if (!this.enabled(level)) return;
    let line: string;
    if (this.tty) {
      const tag = level === 'info' ? '' : `${level}: `;
      line = this.color && tag ? `\x1b[${COLOR[level]}m${tag}\x1b[0m${msg}` : `${tag}${msg}`;
    } else {
      line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}`;
    }
    this.stream.write(line + '\n');
  }

  error(msg: string): void { this.log('error', msg); }
  warn(msg: string): void { this.log('warn', msg); }
  info(msg: string): void { this.log('info', msg); }
  debug(msg: string): void { this.log('debug', msg); }
}
