// The chunk loop of an online copy, within one server (osc's ghost) or between two (data moves):
// chunks handed out one at a time by the shared chunker, each copied by one of the sessions (one
// per thread: chunks of disjoint key ranges side by side), every chunk behind the throttle gate,
// its rows and time fed back to the chunker, and a checkpoint on a timer: the end of the chunks
// finished in key order (the frontier), so a resume copies nothing twice and misses nothing
// however the threads finished.
import type { Chunk, Chunker } from '../chunk/chunker.js';
import { ChunkFrontier } from '../chunk/chunker.js';
import type { KeyValue } from '../chunk/keys.js';

/** What the loop waits on before each chunk (a Throttler, or anything with its gate). */
export interface CopyGate {
  gate(signal?: AbortSignal): Promise<void>;
}

export interface CopyLoop<S> {
  chunker: Chunker;
  /** one per thread; a chunk runs on one of them */
  sessions: S[];
  /** copy one chunk on a session; the rows it copied */
  copyChunk: (session: S, chunk: Chunk) => Promise<number>;
  /** where a resumed copy starts (after this key; undefined: from the start) */
  after?: KeyValue | undefined;
  throttle?: CopyGate | undefined;
  /** stops a copy that waits on the throttle */
  signal?: AbortSignal | undefined;
  /** throws to stop the copy (a failed binlog applier beside it) */
  check?: (() => void) | undefined;
  /** after each chunk: its rows */
  onChunk?: ((rows: number) => void) | undefined;
  /** the frontier, at most every checkpointMs while copying (with the last chunk: undefined, the copy is done) */
  checkpoint?: ((after: KeyValue | undefined, done: boolean) => Promise<void>) | undefined;
  /** default 1000 */
  checkpointMs?: number | undefined;
}

/** Copy every chunk; resolves when the last one is done and its final checkpoint written. */
export async function runCopyLoop<S>(o: CopyLoop<S>): Promise<void> {
  // chunk bounds are handed out one at a time (the offset strategy asks the server)
  let handing: Promise<unknown> = Promise.resolve();
  const nextChunk = () => {
    const got = handing.then(() => o.chunker.next());
    handing = got.catch(() => undefined);
    return got;
  };
  // chunks finished out of order: the checkpoint covers a chunk once every one before it is done
  const frontier = new ChunkFrontier(o.after);
  const every = o.checkpointMs ?? 1000;
  let lastCheckpoint = 0;
  let failed = false;
  const worker = async (s: S) => {
    while (!failed) {
      o.check?.();
      await o.throttle?.gate(o.signal);
      const chunk = await nextChunk();
      if (!chunk) return;
      const t0 = Date.now();
      const copied = await o.copyChunk(s, chunk);
      // the rows really there: an empty stretch of a sparse key must widen the next steps
      o.chunker.record(Math.max(copied, 1), Date.now() - t0);
      o.onChunk?.(copied);
      const at = frontier.finished(chunk);
      if (o.checkpoint && Date.now() - lastCheckpoint >= every) {
        lastCheckpoint = Date.now();
        await o.checkpoint(at, false);
      }
    }
  };
  const results = await Promise.allSettled(o.sessions.map((s) =>
    worker(s).catch((e) => {
      failed = true; // the others stop at their next chunk
      throw e;
    }),
  ));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
  await o.checkpoint?.(undefined, true);
}
