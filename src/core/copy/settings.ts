// The settings of a job that copies a table online, as one type from the flags (commands/common.ts
// addCopyOptions/copyOptionsFrom) through the capability's options (osc, migrate int2bigint) to the
// chunk loop (copy/loop.ts) and the cut-over: a new setting is one field here, its flag, and its use.
export interface CopySettings {
  /** target time per copied chunk (default 500 ms) */
  chunkTimeMs?: number;
  /** chunks of disjoint key ranges copied at once (default 1) */
  copyThreads?: number;
  /** false: the target keeps its plain secondary indexes during the copy (default: built after it) */
  deferIndexes?: boolean;
  /** how long a cut-over waits for the table locks per attempt, in seconds (default 3) */
  cutOverLockTimeoutS?: number;
  /** cut-over attempts before giving up (default 5) */
  cutOverRetries?: number;
}

export const DEFAULT_CHUNK_TIME_MS = 500;

/** The names of CopySettings, to take them out of a wider options object. */
const COPY_SETTINGS: ReadonlyArray<keyof CopySettings> = ['chunkTimeMs', 'copyThreads', 'deferIndexes', 'cutOverLockTimeoutS', 'cutOverRetries'];

/** The copy settings of a wider options object (only those given). */
export function copySettingsOf(o: CopySettings): CopySettings {
  const out: Record<string, unknown> = {};
  for (const k of COPY_SETTINGS) if (o[k] !== undefined) out[k] = o[k];
  return out as CopySettings;
}
