// Visit every node of the topology in parallel and read what it is and what it replicates from.
import pLimit from 'p-limit';
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import type { Db } from '../db/connect.js';
import { EzError, ExitCode } from '../exit.js';
import { serverInfo, replicaStatus, type ReplicaStatus, type ServerInfo } from '../db/server.js';

export interface NodeProbe {
  node: ResolvedNode;
  info?: ServerInfo;
  replication?: ReplicaStatus[];
  error?: string;
}

/** Probe nodes with at most `concurrency` connections open; `extra` runs while connected. */
export async function probeNodes(ctx: Ctx, nodes: ResolvedNode[], extra?: (db: Db, p: NodeProbe) => Promise<void>, concurrency = 16): Promise<NodeProbe[]> {
  const limit = pLimit(concurrency);
  return Promise.all(nodes.map((node) => limit(async () => {
    const p: NodeProbe = { node };
    let db: Db | undefined;
    try {
      db = await ctx.connect(node);
      p.info = await serverInfo(db);
      p.replication = await replicaStatus(db, p.info.flavor);
      if (extra) await extra(db, p);
    } catch (e) {
      // Bad input (an unset password variable, --ask-pass without a terminal) is not a node
      // failure: stop with exit 2 instead of reporting every node unreachable.
      if (e instanceof EzError && e.exitCode === ExitCode.badInput) throw e;
      p.error = (e as Error).message;
      ctx.log.warn(`${node.name}: ${p.error}`);
    } finally {
      await db?.close();
    }
    return p;
  })));
}
