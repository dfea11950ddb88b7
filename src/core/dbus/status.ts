// A move's state for `dbus status` and for cut-over: over the control socket when the job runs on
// this host, else from its job row in the target's `_ezctl` (any host).
import type { Ctx } from '../context.js';
import type { DbusStatus } from './spec.js';

export type { DbusStatus } from './spec.js';

export async function dbusStatus(ctx: Ctx, name: string): Promise<DbusStatus> {
  void ctx;
  throw new Error(`dbus: dbusStatus(${name}) is not written yet`);
}

/**
 * Wait until the running job of `name` has applied, for each source label, that source's GTID
 * position (cut-over's final positions). behind: the labels not reached at the timeout.
 */
export async function waitApplied(
  ctx: Ctx,
  name: string,
  positions: Record<string /* source label */, string /* gtid */>,
  o: { timeoutMs: number; signal?: AbortSignal },
): Promise<{ reached: boolean; behind: string[] }> {
  void ctx;
  void o;
  throw new Error(`dbus: waitApplied(${name}, ${Object.keys(positions).join(',')}) is not written yet`);
}
