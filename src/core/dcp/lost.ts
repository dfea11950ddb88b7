// A server lost in the middle of a check or a repair: the driver's own words ("Can't add new
// command when connection is in closed state", "Connection lost: The server closed the
// connection.") name neither the server nor what to do. This turns them into an error that names
// the node, what was under way, and the fix, with exit 3.
import { QueryError, type Db } from '../db/connect.js';
import { EzError, runtimeError } from '../exit.js';
import { errorChain as chain, isLostConnection } from '../db/lost.js';

/** Whether this connection is broken (mysql2 keeps the fatal error on its core connection). */
function broken(db: Db): boolean {
  const core = (db.conn as unknown as { connection?: { state?: string; stream?: { destroyed?: boolean } } }).connection;
  if (!core) return false;
  return core.state === 'error' || core.stream?.destroyed === true;
}

/** The node whose connection broke: the broken connection among these, else the one the message names. */
export function lostNode(e: unknown, conns: readonly { db: Db }[]): string | undefined {
  const dead = conns.find((c) => broken(c.db));
  if (dead) return dead.db.ep.label;
  const msg = String((e as Error)?.message ?? '');
  return conns.find((c) => msg.startsWith(c.db.ep.label))?.db.ep.label;
}

/**
 * The error to report when `e` is a lost connection (undefined otherwise): "lost connection to
 * sh-master 127.0.0.1:3307 during check full; <next>", the driver's words as a detail. `next`
 * and `hint` are given the lost node's name (undefined when no connection tells which it was).
 */
export function lostConnectionError(
  e: unknown,
  conns: readonly { db: Db }[],
  during: string,
  next: (node: string | undefined) => string,
  hint?: (node: string | undefined) => string,
): EzError | undefined {
  if (e instanceof EzError && e.message.startsWith('lost connection to')) return e;
  // a statement on an open connection failed; a connection that could not be made (no
  // QueryError) is already named by connectError
  if (![...chain(e)].some((x) => x instanceof QueryError) || !isLostConnection(e)) return undefined;
  const label = lostNode(e, conns);
  const name = label?.split(' ')[0];
  const cause = [...chain(e)].map((x) => x.message).filter((m): m is string => typeof m === 'string').pop();
  return runtimeError(`lost connection to ${label ?? 'a zone master'} during ${during}; ${next(name)}`, {
    details: cause ? [`cause: ${cause}`] : [],
    hint: hint?.(name) ?? `start ${name ?? 'the server'} again (or restore the network to it), then ${next(name)}`,
    cause: e,
  });
}

/**
 * A server that stops answering without closing its connections (a hung or SIGSTOPped
 * mariadbd, a network path that drops packets) leaves a query waiting forever: nothing on the
 * connection ever fails. The watchdog probes each zone master on a fresh connection every
 * `intervalMs`; when a master fails `failures` probes in a row (no connection within the connect
 * timeout, or no answer to SELECT 1 within `answerMs`), the run's connections to it are broken
 * on purpose, so whatever waits on them fails as a lost connection that names the node.
 */
export interface WatchedZone {
  label: string;
  /** a fresh connection to the zone's master (the connect timeout applies) */
  connect: () => Promise<Db>;
  /** the run's connections to that master, now */
  conns: () => Db[];
}

/**
 * The watchdog's pace from --connect-timeout: a probe every twice the connect timeout, and as long
 * for its SELECT 1 to answer (10 s at the default 5 s, never under 1 s): an operator who allows a
 * slow connect allows a slow probe, and one who asks for 1 s learns of a hung master in seconds.
 */
export function watchPace(connectTimeoutS: number): { intervalMs: number; answerMs: number } {
  const ms = Math.max(1000, Math.round(connectTimeoutS * 2000));
  return { intervalMs: ms, answerMs: ms };
}

export function watchZones(zones: WatchedZone[], opts: { intervalMs?: number; answerMs?: number; failures?: number } = {}): () => void {
  const intervalMs = opts.intervalMs ?? 10_000;
  const answerMs = opts.answerMs ?? 10_000;
  const failures = opts.failures ?? 2;
  const failed = zones.map(() => 0);
  let stopped = false;
  let busy = false;
  /** false only when the server gave no answer in time (or refused the connection): an error it sent proves it alive */
  const probe = async (z: WatchedZone): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    const attempt = (async () => {
      const db = await z.connect();
      try {
        await db.value('SELECT 1');
        return true;
      } finally {
        (db.conn as unknown as { destroy(): void }).destroy();
      }
    })().catch((e: unknown) => ![...chain(e)].some((x) => x.code === 'ETIMEDOUT' || x.code === 'ECONNREFUSED' || x.code === 'EHOSTUNREACH'));
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), answerMs);
    });
    try {
      return await Promise.race([attempt, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  const tick = async () => {
    if (stopped || busy) return;
    busy = true;
    try {
      await Promise.all(
        zones.map(async (z, i) => {
          if (failed[i]! >= failures) return;
          failed[i] = (await probe(z)) ? 0 : failed[i]! + 1;
          if (failed[i]! < failures || stopped) return;
          const err = Object.assign(new Error(`no answer from ${z.label} to ${failures} probes on new connections, ${intervalMs % 1000 ? `${intervalMs} ms` : `${intervalMs / 1000} s`} apart (it does not close its connections either: hung, stopped, or cut off)`), { code: 'ETIMEDOUT', fatal: true });
          for (const db of z.conns()) (db.conn as unknown as { connection?: { stream?: { destroy(e?: Error): void } } }).connection?.stream?.destroy(err);
        }),
      );
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
