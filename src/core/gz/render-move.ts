// Text rendering of `gz move`: the preflight (the shards and their owners, source, target, DRC both
// ways), the steps, and after a run the timeline with the write-unavailable window of the moved
// shards split (block, drain, verify, flip), the DRC lag at the block, the final GTID position, the
// clients that acknowledged, and with --force-dead-source what may not have arrived.
import type { GzMoveReport } from './move.js';
import { renderJobCore } from './common.js';

export function renderGzMove(r: GzMoveReport): string {
  const out: string[] = [];
  if (r.resumedDeadJob) out.push(`move job ${r.resumedDeadJob} had died holding cluster ${r.cluster}: resumed`);
  const a = r.assessment;
  if (a) {
    out.push(`gz move ${a.cluster}: shards ${a.moving || a.requested} ${a.from ?? '?'} -> ${a.to}${a.alreadyThere ? ` (${a.alreadyThere} at ${a.to} already)` : ''}`);
    if (a.routes) out.push(`  routing table: version ${a.routes.version}; ${a.routes.shards.map((s) => `${s.zone} ${s.from === s.to ? s.from : `${s.from}-${s.to}`}${s.state === 'blocked' ? ' BLOCKED' : ''}`).join(', ')}${a.routes.stale.length ? `; stale at ${a.routes.stale.join(', ')}` : ''}${a.routes.unreachable.length ? `; unreachable: ${a.routes.unreachable.join(', ')}` : ''}`);
    if (a.source) out.push(`  source: ${a.source.name} (${a.source.address})${a.source.reachable ? ` gtid_binlog_pos ${a.source.gtidBinlogPos || '(empty)'}, domain ${a.source.domainId ?? '-'}` : ' UNREACHABLE'}`);
    if (a.target) out.push(`  target: ${a.target.name} (${a.target.address})${a.target.reachable ? '' : ' UNREACHABLE'}`);
    for (const d of a.drc) out.push(`  DRC ${d.direction}: ${d.state}, lag ${d.lagMs ?? '-'} ms${d.lastError ? `, last error: ${d.lastError}` : ''}`);
  }
  const core = renderJobCore(r, 'move');
  out.push(...core.lines);
  if (core.ended || !r.result) return out.join('\n');
  const o = r.outcomeDetail;
  if (o) {
    if (o.clients) out.push(`clients acknowledged the block: ${o.clients.acked.join(', ') || '(none following the table)'}${o.clients.stale.length ? `; stale, not waited for: ${o.clients.stale.join(', ')}` : ''}`);
    if (o.verify) out.push(`verified: ${o.verify.keysCompared} keys in ${o.verify.tablesCompared} tables, ${o.verify.differences.length} difference${o.verify.differences.length === 1 ? '' : 's'}${o.verify.differences.length ? ` (--force): ${o.verify.differences.slice(0, 5).map((d) => `${d.table} ${JSON.stringify(d.key)}`).join('; ')}` : ''}`);
    if (o.deadSource) {
      out.push(`the source ${r.from} is dead: not drained, not verified`);
      out.push(`  last position of ${r.from} DRC applied at ${r.to}: ${o.deadSource.lastAppliedAtTarget ?? '(no checkpoint)'}`);
      out.push(`  last position DRC read at ${r.from}: ${o.deadSource.lastReadPosition ?? '(unknown: no daemon here)'}`);
      out.push(`  ${o.deadSource.note}`);
    }
  }
  out.push(`routing table version ${r.routesVersion}`);
  if (r.result.outcome === 'done') out.push(`${r.to} owns shards ${r.shards} of ${r.cluster}`);
  return out.join('\n');
}
