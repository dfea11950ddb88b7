// The exit codes every ezctl command shares (shared/DESIGN.md). Nothing else in the code
// may call process.exit with a literal: throw an EzError carrying one of these instead.
export const ExitCode = {
  ok: 0,
  differences: 1,
  badInput: 2,
  runtime: 3,
  refused: 4,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const exitCodeDocs: ReadonlyArray<[ExitCode, string]> = [
  [ExitCode.ok, 'done; for checks: consistent'],
  [ExitCode.differences, 'differences found (check commands)'],
  [ExitCode.badInput, 'bad input: usage, configuration or validation error; nothing was touched'],
  [ExitCode.runtime, 'runtime failure: a server unreachable, a query failed, a process died'],
  [ExitCode.refused, 'refused by a safety check: nothing changed, or it was rolled back; for checks: nothing found different, but some table could not be compared (named in the report)'],
  [ExitCode.interrupted, 'interrupted (SIGINT/SIGTERM, or `stop` over the control socket of a check full or a migration): the work so far is kept, to be resumed'],
];

/** An error meant for the user: a message naming the cause, optionally a hint naming the fix. */
export class EzError extends Error {
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;
  readonly details: string[];
  constructor(exitCode: ExitCode, message: string, opts: { hint?: string; details?: string[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'EzError';
    this.exitCode = exitCode;
    this.hint = opts.hint;
    this.details = opts.details ?? [];
  }
}

export const badInput = (message: string, opts: { hint?: string; details?: string[] } = {}) =>
  new EzError(ExitCode.badInput, message, opts);
export const runtimeError = (message: string, opts: { hint?: string; details?: string[]; cause?: unknown } = {}) =>
  new EzError(ExitCode.runtime, message, opts);
export const refused = (message: string, opts: { hint?: string; details?: string[] } = {}) =>
  new EzError(ExitCode.refused, message, opts);
