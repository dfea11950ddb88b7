// A bounded look at a node: a SIGSTOPped or killed server must not hang the drill.
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';

/** Probe a node with a bounded query: a SIGSTOPped server answers nothing, and mysql2 has no read timeout. */
export async function readOnlyOf(ctx: Ctx, n: ResolvedNode, timeoutMs = 1000): Promise<boolean | null> {
  let db: Awaited<ReturnType<Ctx['connect']>> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), timeoutMs)));
  const probe = (async () => {
    db = await ctx.connect(n);
    const v = await db.value<number | string>('SELECT @@global.read_only');
    return Number(v) === 1;
  })().catch(() => null);
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
    // destroyed, not ended: ending waits for an answer a stopped server never sends
    const kill = (d: unknown) => (d as { conn?: { destroy?: () => void } } | undefined)?.conn?.destroy?.();
    if (db) kill(db);
    else probe.then(() => kill(db)).catch(() => undefined);
  }
}

