// Typed control commands. A job kind declares once the commands it answers, each with its
// arguments and its reply type (jobKind below); the job serves them with a handler object, one
// method per command (serveJob), and a client sends them by name with checked arguments and gets
// the typed reply back (sendJob). An unknown command or a bad argument gets one uniform answer
// naming what the job accepts. `ping` is answered by every job, for controlAlive.
import type { Server } from 'node:net';
import { serveControl, sendControl, type ControlRequest } from './socket.js';
import { badInput, runtimeError } from '../exit.js';

/** One argument of a command: its JSON type, the words it may take, whether it may be left out. */
export type ArgSpec =
  | { type: 'string'; oneOf?: readonly string[]; optional?: boolean }
  | { type: 'number'; integer?: boolean; optional?: boolean }
  | { type: 'boolean'; optional?: boolean };

type ValueOf<S extends ArgSpec> = S extends { type: 'string'; oneOf: readonly (infer E)[] } ? E : S extends { type: 'string' } ? string : S extends { type: 'number' } ? number : boolean;
type Required<A extends Record<string, ArgSpec>> = { [K in keyof A as A[K] extends { optional: true } ? never : K]: ValueOf<A[K]> };
type Optional<A extends Record<string, ArgSpec>> = { [K in keyof A as A[K] extends { optional: true } ? K : never]?: ValueOf<A[K]> };
type Flat<T> = { [K in keyof T]: T[K] };
export type ArgsFrom<A extends Record<string, ArgSpec>> = Flat<Required<A> & Optional<A>>;

/** A command: its arguments (checked on both sides) and, as a type only, its reply. */
export interface CommandDecl<Args extends Record<string, ArgSpec> = Record<string, ArgSpec>, Reply = unknown> {
  readonly args: Args;
  readonly about: string;
  /** type only: never set */
  readonly reply?: Reply;
}

/** command<Reply>()('what it does', { arg: { type: 'string' } }) */
export function command<Reply>() {
  return <const Args extends Record<string, ArgSpec> = Record<never, ArgSpec>>(about: string, args?: Args): CommandDecl<Args, Reply> => ({ about, args: (args ?? {}) as Args });
}

export type Protocol = Record<string, CommandDecl<Record<string, ArgSpec>, unknown>>;
export type ArgsOf<C> = C extends CommandDecl<infer A, unknown> ? ArgsFrom<A> : never;
export type ReplyOf<C> = C extends CommandDecl<Record<string, ArgSpec>, infer R> ? R : never;

/** The commands a kind of job answers, and how its messages name it ("osc job", "check full"). */
export interface JobKind<P extends Protocol> {
  readonly name: string;
  readonly commands: P;
}

export function jobKind<const P extends Protocol>(name: string, commands: P): JobKind<P> {
  return { name, commands };
}

/** One method per command of the kind. */
export type Handlers<P extends Protocol> = { [K in keyof P]: (args: ArgsOf<P[K]>) => Promise<ReplyOf<P[K]>> | ReplyOf<P[K]> };

/** What a kind accepts, for the uniform error: "status, pause, set key=<chunk-time> value=<string>". */
export function accepted(kind: JobKind<Protocol>): string {
  return Object.entries(kind.commands)
    .map(([name, c]) => [name, ...Object.entries(c.args).map(([a, s]) => `${s.optional ? '[' : ''}${a}=<${s.type === 'string' && s.oneOf ? s.oneOf.join('|') : s.type}>${s.optional ? ']' : ''}`)].join(' '))
    .join(', ');
}

/**
 * The request checked against the kind's declaration: the command exists, every argument it
 * takes is there with its type (and one of its words), none other is given. Throws one error
 * naming the job kind, what was wrong and what the job accepts.
 */
export function checkRequest(kind: JobKind<Protocol>, req: ControlRequest): Record<string, unknown> {
  const fail = (what: string) => new Error(`${kind.name}: ${what}; it accepts: ${accepted(kind)}`);
  if (typeof req?.cmd !== 'string' || !Object.hasOwn(kind.commands, req.cmd)) throw fail(`unknown command ${JSON.stringify(req?.cmd)}`);
  const decl = kind.commands[req.cmd]!;
  const given = req.args ?? {};
  if (typeof given !== 'object' || Array.isArray(given)) throw fail(`${req.cmd}: its arguments are not an object`);
  for (const a of Object.keys(given)) if (!Object.hasOwn(decl.args, a)) throw fail(`${req.cmd} takes no argument ${JSON.stringify(a)}`);
  const out: Record<string, unknown> = {};
  for (const [a, spec] of Object.entries(decl.args)) {
    const v = (given as Record<string, unknown>)[a];
    if (v === undefined || v === null) {
      if (!spec.optional) throw fail(`${req.cmd} needs ${a}`);
      continue;
    }
    const bad = () => fail(`${req.cmd}: ${a} ${JSON.stringify(v)} is not ${spec.type === 'string' && spec.oneOf ? `one of ${spec.oneOf.join(', ')}` : spec.type === 'number' && spec.integer ? 'a whole number' : `a ${spec.type}`}`);
    if (typeof v !== spec.type) throw bad();
    if (spec.type === 'string' && spec.oneOf && !spec.oneOf.includes(v as string)) throw bad();
    if (spec.type === 'number' && (!Number.isFinite(v) || (spec.integer && !Number.isInteger(v)))) throw bad();
    out[a] = v;
  }
  return out;
}

/** The dispatch of one request to its handler (checked first); `ping` answers 'pong'. */
export async function dispatch<P extends Protocol>(kind: JobKind<P>, handlers: Handlers<P>, req: ControlRequest): Promise<unknown> {
  if (req?.cmd === 'ping') return 'pong';
  const args = checkRequest(kind, req);
  const h = handlers[req.cmd as keyof P] as (a: Record<string, unknown>) => unknown;
  return h.call(handlers, args);
}

/** Serve the kind's commands on the control socket at path (mode 0600). */
export function serveJob<P extends Protocol>(path: string, kind: JobKind<P>, handlers: Handlers<P>): Promise<Server> {
  return serveControl(path, (req) => dispatch(kind, handlers, req));
}

/** The job a client speaks to: its kind, its socket, and how the messages name it and the fix. */
export interface JobAddress<P extends Protocol> {
  kind: JobKind<P>;
  path: string;
  /** "the check full of cluster demo" */
  job: string;
  /** what to do when it does not answer: "start one with `ezctl check full --cluster demo`" */
  fix: string;
}

/** No job answers at the address: no socket, or one left by a job that died (connection refused). */
export function noJobAnswers(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === 'ENOENT' || code === 'ECONNREFUSED';
}

/**
 * Send one command, its arguments checked against the kind before anything is sent (a bad or
 * missing one is bad input, exit 2); resolves with the typed reply. A socket nobody answers on is an error naming the job and the fix (its `code`
 * kept: ENOENT, ECONNREFUSED); the job's own refusal is an error with the job's message.
 */
export async function sendJob<P extends Protocol, K extends keyof P & string>(
  to: JobAddress<P>, cmd: K, args?: ArgsOf<P[K]>, timeoutMs?: number,
): Promise<ReplyOf<P[K]>> {
  const req: ControlRequest = args && Object.keys(args).length ? { cmd, args: args as Record<string, unknown> } : { cmd };
  let checked: Record<string, unknown>;
  try {
    checked = checkRequest(to.kind, req);
  } catch (e) {
    throw badInput((e as Error).message); // nothing was sent
  }
  try {
    return (await sendControl(to.path, Object.keys(checked).length ? { cmd, args: checked } : { cmd }, timeoutMs)) as ReplyOf<P[K]>;
  } catch (e) {
    if (noJobAnswers(e)) {
      const err = runtimeError(`no ${to.job} answers on this host (${(e as Error).message})`, { hint: to.fix, cause: e });
      throw Object.assign(err, { code: (e as { code?: string }).code });
    }
    throw e;
  }
}
