// Text rendering of `gz switch`: the preflight (routes, source, target, DRC both ways, proxies),
// the steps, and after a run the timeline with the write-unavailable window split, the DRC lag at
// the block, the source's final GTID and its own-domain GTID after the run.
import type { GzSwitchReport } from './switch.js';
import { renderJobCore } from './common.js';
import type { SessionInfo } from '../db/write-block.js';

const who = (s: SessionInfo) => `${s.id} ${s.user}@${s.host} (${s.command}${s.info ? `: ${s.info.slice(0, 80)}` : ''})`;

export function renderGzSwitch(r: GzSwitchReport): string {
  const out: string[] = [];
  if (r.rollbackOf) out.push(`job ${r.rollbackOf} had passed its flip: rolled back by switching back`);
  if (r.finishedFirst) out.push(renderGzSwitch(r.finishedFirst), '');
  if (r.resumedDeadJob) out.push(`switch job ${r.resumedDeadJob} had died holding cluster ${r.cluster}: resumed`);
  const a = r.assessment;
  if (a) {
    out.push(`gz switch ${a.cluster}: write zone ${a.from ?? '(none)'} -> ${a.to}`);
    if (a.routes) out.push(`  routing table: version ${a.routes.version}, write zone ${a.routes.writeZone ?? '-'}, ${a.routes.state}${a.routes.stale.length ? `; stale at ${a.routes.stale.join(', ')}` : ''}${a.routes.unreachable.length ? `; unreachable: ${a.routes.unreachable.join(', ')}` : ''}`);
    if (a.source) out.push(`  source: ${a.source.name} (${a.source.address}) gtid_binlog_pos ${a.source.gtidBinlogPos || '(empty)'}, domain ${a.source.domainId ?? '-'}, read_only ${a.source.readOnly ? 1 : 0}`);
    if (a.target) out.push(`  target: ${a.target.name} (${a.target.address})${a.target.reachable ? '' : ' UNREACHABLE'}`);
    for (const d of a.drc) out.push(`  DRC ${d.direction}: ${d.state}, lag ${d.lagMs ?? '-'} ms${d.lastError ? `, last error: ${d.lastError}` : ''}`);
    for (const p of a.proxies) out.push(`  ${p.label}: ${p.up ? 'up' : 'DOWN'}, writes to ${p.write ?? 'nowhere'}`);
    if (!a.proxies.length && r.mode !== 'noop') out.push('  proxies: none in the topology file (route through hooks, or clients following the routing table)');
  }
  const core = renderJobCore(r, 'switch');
  out.push(...core.lines);
  if (core.ended || !r.result) return out.join('\n');
  const o = r.outcomeDetail;
  if (o) {
    if (o.blockMechanism) out.push(`write block: ${o.blockMechanism}`);
    if (o.sourceOwnAtBlock !== null || o.sourceOwnAfter !== null) {
      out.push(`source's own-domain GTID: ${o.sourceOwnAtBlock || '-'} at the block, ${o.sourceOwnAfter || '-'} after the run (the application's writes stopped at the first; DRC's heartbeats and the routing table's row are written there in that domain too)`);
    }
    if (o.verify) out.push(`verified: ${o.verify.keysCompared} keys in ${o.verify.tablesCompared} tables, ${o.verify.differences.length} difference${o.verify.differences.length === 1 ? '' : 's'}`);
    if (o.killedDuringGrace.length) out.push(`killed while blocking: ${o.killedDuringGrace.map(who).join(', ')}`);
    if (o.killedAtSource.length) out.push(`killed at the source on release: ${o.killedAtSource.map(who).join(', ')}`);
    if (o.proxies.length) out.push(`proxies moved: ${o.proxies.join(', ')}`);
    if (o.clients) out.push(`clients acknowledged the block: ${o.clients.acked.join(', ') || '(none following the table)'}${o.clients.stale.length ? `; stale, not waited for: ${o.clients.stale.join(', ')}` : ''}`);
  }
  out.push(`routing table version ${r.routesVersion}`);
  if (r.result.outcome === 'done') out.push(`${r.to} takes the writes of ${r.cluster}`);
  return out.join('\n');
}
