// Which connection a chunk's query goes to on each zone. Every connection runs its queries one
// after the other, and the client sends a query only once the one before it has answered: a
// zone across the distance sits idle a whole round trip between two chunks however early the
// next chunk is queued. A far zone therefore gets a second walk connection and takes every
// other chunk on it, so its next chunk is at the server while the previous one's answer travels
// back and is compared. A near zone keeps one connection, one chunk at a time (the load a check
// puts on a server stays what it was).

/** A zone whose round trip is at least this far gets a second walk connection. */
export const FAR_ZONE_MS = 5;

/** Per zone, from its measured round trips (ms): far enough for a second walk connection. */
export function farZones(roundTripsMs: number[][], thresholdMs = FAR_ZONE_MS): boolean[] {
  return roundTripsMs.map((ts) => ts.length > 0 && Math.min(...ts) >= thresholdMs);
}

/** The connection of each zone that chunk number `index` (from 0) is computed on. */
export function chunkConns<T>(primary: T[], second: (T | undefined)[] | undefined, index: number): T[] {
  if (!second || index % 2 === 0) return primary;
  return primary.map((c, zi) => second[zi] ?? c);
}

/** A walk's second connections (one per far zone, in zone order) placed by zone: none for a near zone. */
export function secondsByZone<T>(far: boolean[], farConns: T[]): (T | undefined)[] {
  let next = 0;
  return far.map((f) => (f ? farConns[next++] : undefined));
}
