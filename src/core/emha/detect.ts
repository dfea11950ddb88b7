// Is a zone's master dead? Asked from more than one vantage point, as orchestrator does: ezctl's
// own connection, and every replica's IO thread. Each probe is bounded: mysql2 has no read timeout,
// so a query to a server that accepted the connection and then stopped answering (SIGSTOP, hung
// host) would wait for good; every wait here is raced against a timer and the connection destroyed.
import type { Ctx } from '../context.js';
import type { ResolvedNode, Topology } from '../config/load.js';
import { connect, describeDbError, type Db } from '../db/connect.js';
import { flavorOf, replicaStatus, type ReplicaStatus } from '../db/server.js';
import { errorChain } from '../db/lost.js';
import { sameHost } from '../config/dsn.js';

export interface Vantage {
  /** 'ezctl' or a replica's node name */
  from: string;
  sees: 'alive' | 'unreachable' | 'unknown';
  detail: string;
}

export interface MasterAssessment {
  cluster: string;
  zone: string;
  master: string;
  verdict: 'alive' | 'unreachable' | 'dead';
  vantages: Vantage[];
  tookMs: number;
}

export interface AssessOptions {
  /** per connection attempt and per query (default 2000 ms) */
  connectTimeoutMs?: number;
  /** ezctl's own attempts on new connections before it calls the master unreachable (default 2) */
  tries?: number;
  signal?: AbortSignal;
}

export const DEFAULT_ASSESS_TIMEOUT_MS = 2000;
export const DEFAULT_ASSESS_TRIES = 2;

class Timeout extends Error {
  constructor(readonly what: string, readonly ms: number) {
    super(`no answer to ${what} within ${ms} ms`);
  }
}

/** `p`, or a Timeout after `ms` (or on abort); `onLate` cleans up what `p` yields too late. */
function bounded<T>(p: Promise<T>, ms: number, what: string, signal: AbortSignal | undefined, onLate?: (v: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = () => {
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      if (done) return;
      finish();
      reject(new Timeout(`${what} (aborted)`, ms));
    };
    const timer = setTimeout(() => {
      if (done) return;
      finish();
      reject(new Timeout(what, ms));
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    p.then(
      (v) => {
        if (done) {
          onLate?.(v);
          return;
        }
        finish();
        resolve(v);
      },
      (e) => {
        if (done) return;
        finish();
        reject(e);
      },
    );
  });
}

/** A connection whose every query is bounded; a late or hung one is destroyed, never awaited. */
export async function openBounded(ctx: Ctx, node: ResolvedNode, ms: number, signal: AbortSignal | undefined): Promise<Db> {
  const ep = await ctx.endpoint(node);
  // mysql2's connectTimeout covers the handshake too (measured: a SIGSTOPped server gives ETIMEDOUT
  // after the timeout, though the kernel accepted the TCP connection); the race adds the abort.
  return bounded(connect(ep, { timeoutMs: ms }), ms + 500, `connect to ${node.name}`, signal, (db) => db.conn.destroy());
}

export async function boundedQuery<T>(db: Db, ms: number, what: string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
  try {
    return await bounded(run(), ms, what, signal);
  } catch (e) {
    if (e instanceof Timeout) db.conn.destroy();
    throw e;
  }
}

function close(db: Db | undefined): void {
  if (!db) return;
  // end() waits for the server's answer to COM_QUIT: never wait on a probe's connection
  db.conn.destroy();
}

/** An error the server itself sent (access denied, too many connections...) proves it is alive. */
export function serverAnswered(e: unknown): boolean {
  for (const c of errorChain(e)) {
    const errno = c.errno;
    const code = typeof c.code === 'string' ? c.code : '';
    if (typeof errno === 'number' && errno > 0 && errno < 2000 && typeof c.sqlMessage === 'string') return true;
    if (code.startsWith('ER_') && typeof c.sqlMessage === 'string') return true;
  }
  return false;
}

function message(e: unknown): string {
  if (e instanceof Timeout) return e.message;
  return describeDbError(e);
}

/** ezctl's own look: up to `tries` new connections, each with SELECT 1, each bounded. */
async function ezctlVantage(ctx: Ctx, master: ResolvedNode, ms: number, tries: number, signal: AbortSignal | undefined): Promise<Vantage> {
  const failures: string[] = [];
  for (let i = 0; i < tries; i++) {
    if (signal?.aborted) break;
    let db: Db | undefined;
    try {
      db = await openBounded(ctx, master, ms, signal);
      const d = db;
      await boundedQuery(d, ms, `SELECT 1 on ${master.name}`, signal, () => d.value('SELECT 1'));
      return { from: 'ezctl', sees: 'alive', detail: i === 0 ? 'SELECT 1 answered' : `SELECT 1 answered on try ${i + 1} (before: ${failures.join('; ')})` };
    } catch (e) {
      if (serverAnswered(e)) return { from: 'ezctl', sees: 'alive', detail: `the server answered with an error: ${message(e)}` };
      failures.push(message(e));
    } finally {
      close(db);
    }
  }
  return { from: 'ezctl', sees: 'unreachable', detail: `${failures.length} tr${failures.length === 1 ? 'y' : 'ies'} on new connections failed: ${failures.join('; ') || 'aborted'}` };
}

/** The replication channel of `st` that reads from `master`, if any. */
export function channelFrom(st: ReplicaStatus[], master: Pick<ResolvedNode, 'host' | 'port'>): ReplicaStatus | undefined {
  return st.find((c) => c.sourcePort === master.port && sameHost(c.sourceHost, master.host));
}

/** What a replica's IO thread says about its master (pure: from SHOW SLAVE STATUS). */
export function replicaSees(ch: ReplicaStatus | undefined, from: string, channels: ReplicaStatus[]): Vantage {
  if (!ch) {
    const src = channels.length ? channels.map((c) => `${c.sourceHost}:${c.sourcePort}`).join(', ') : 'nobody';
    return { from, sees: 'unknown', detail: `does not replicate from this master (replicates from ${src})` };
  }
  if (ch.ioState === 'Yes') return { from, sees: 'alive', detail: 'IO thread connected (Slave_IO_Running: Yes)' };
  if (ch.lastIoError) return { from, sees: 'unreachable', detail: `IO thread ${ch.ioState === 'Connecting' ? 'reconnecting' : 'stopped'}: ${ch.lastIoError}` };
  if (ch.ioState === 'Connecting') return { from, sees: 'unreachable', detail: 'IO thread reconnecting (Slave_IO_Running: Connecting)' };
  // stopped by someone, without an error: it says nothing about the master
  return { from, sees: 'unknown', detail: 'IO thread stopped without an error (STOP SLAVE?): no opinion' };
}

async function replicaVantage(ctx: Ctx, master: ResolvedNode, r: ResolvedNode, ms: number, signal: AbortSignal | undefined): Promise<Vantage> {
  let db: Db | undefined;
  try {
    db = await openBounded(ctx, r, ms, signal);
    const d = db;
    const st = await boundedQuery(d, ms, `SHOW SLAVE STATUS on ${r.name}`, signal, async () => {
      const version = String(await d.value('SELECT @@version'));
      return replicaStatus(d, flavorOf(version));
    });
    return replicaSees(channelFrom(st, master), r.name, st);
  } catch (e) {
    return { from: r.name, sees: 'unknown', detail: `replica not reached: ${message(e)}` };
  } finally {
    close(db);
  }
}

/**
 * The verdict from the vantages (pure). 'dead' only when ezctl cannot reach the master AND at least
 * one replica of it was asked AND none of those says its IO thread is connected (orchestrator's
 * DeadMaster: replicas reached, none replicating). A replica not reached, or not reading from this
 * master, or stopped by hand, has no vote; a zone with no voting replica is never 'dead', only
 * 'unreachable' (no second vantage point).
 */
export function verdictOf(vantages: Vantage[]): MasterAssessment['verdict'] {
  const own = vantages.find((v) => v.from === 'ezctl');
  if (own?.sees === 'alive') return 'alive';
  const votes = vantages.filter((v) => v.from !== 'ezctl' && v.sees !== 'unknown');
  if (votes.length === 0) return 'unreachable';
  return votes.every((v) => v.sees === 'unreachable') ? 'dead' : 'unreachable';
}

export async function assessMaster(
  ctx: Ctx,
  topo: Topology,
  cluster: string,
  zone: string,
  o: AssessOptions = {},
): Promise<MasterAssessment> {
  const t0 = Date.now();
  const ms = o.connectTimeoutMs ?? DEFAULT_ASSESS_TIMEOUT_MS;
  const tries = Math.max(1, o.tries ?? DEFAULT_ASSESS_TRIES);
  const master = topo.master(cluster, zone);
  const replicas = topo.nodes(cluster).filter((n) => n.zone === zone && n.role === 'replica');
  // the replicas are asked at the same time as ezctl tries: the whole look takes one bounded wait
  const [own, ...others] = await Promise.all([
    ezctlVantage(ctx, master, ms, tries, o.signal),
    ...replicas.map((r) => replicaVantage(ctx, master, r, ms, o.signal)),
  ]);
  const vantages = [own!, ...others];
  return { cluster, zone, master: master.name, verdict: verdictOf(vantages), vantages, tookMs: Date.now() - t0 };
}

export function renderAssessment(a: MasterAssessment): string {
  const lines = [`${a.cluster}/${a.zone} master ${a.master}: ${a.verdict} (${a.tookMs} ms)`];
  for (const v of a.vantages) lines.push(`  ${v.from.padEnd(14)} ${v.sees.padEnd(11)} ${v.detail}`);
  return lines.join('\n');
}
