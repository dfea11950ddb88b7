// Text rendering of `emha switch`: the plan (preflight, candidates, proxy, DRC, steps) and the
// timeline of a run (every step in ms, the final GTID, the write-blocked window, who was killed,
// DRC and the files rewritten).
import type { SwitchReport } from './switch.js';
import type { SessionInfo } from '../db/write-block.js';
import { describeWriteZone } from './global.js';

const who = (s: SessionInfo) => `${s.id} ${s.user}@${s.host} (${s.command}${s.info ? `: ${s.info.slice(0, 80)}` : ''})`;

export function renderSwitch(r: SwitchReport): string {
  const out: string[] = [];
  const a = r.assessment;
  if (a) {
    out.push(`emha switch ${a.cluster}/${a.zone}: ${a.oldMaster.name} (${a.oldMaster.address}) -> ${a.candidate ? `${a.candidate.name} (${a.candidate.address})` : '(no candidate)'}`);
    out.push(`  old master: gtid_binlog_pos ${a.oldMaster.gtidBinlogPos || '(empty)'}, domain ${a.oldMaster.domainId ?? '-'}, read_only ${a.oldMaster.readOnly ? 1 : 0}`);
    for (const c of a.candidates) {
      out.push(`  ${c.chosen ? '*' : ' '} ${c.name} (${c.address}) lag ${c.lagSeconds ?? '-'} s${c.problems.length ? `: ${c.problems.join('; ')}` : ''}`);
    }
    if (a.global) out.push(`  global cluster: ${describeWriteZone(a.global)}${a.global.writeZone === a.zone ? ': every zone\'s proxy writes to this zone\'s master and moves with it' : `: the zone's proxy writes to ${a.global.writeZone}'s master and keeps doing so (only its read pool moves)`}`);
    if (!a.proxies.length) out.push('  proxy: none in the topology file (route through hooks)');
    for (const x of a.proxies) out.push(`  proxy: ${x.label} ${x.up ? 'up' : 'DOWN'}, writes to ${x.write ?? 'nowhere'}${x.movesWrite ? ' (write route moves)' : ' (read pool only)'}`);
    if (a.drc.length) for (const d of a.drc) out.push(`  DRC ${d.direction}: ${d.state}, lag ${d.lagMs ?? '-'} ms${d.lastError ? `, last error: ${d.lastError}` : ''}`);
    else out.push('  DRC: no direction touches this zone');
    out.push(`  DRC daemon on this host: ${a.drcDaemonHere ? 'yes (repointed by the switch)' : 'no (a daemon elsewhere must be repointed there: ezctl drc repoint)'}`);
    out.push(`  MHA config: ${a.mhaConfig ?? 'none written (nothing to rewrite)'}`);
    out.push(`  journal and lease: ${a.state.node} (${a.state.address}, zone ${a.state.zone}${a.state.noBinlog ? ', sql_log_bin=0: a one-zone cluster' : ''})`);
    if (a.leases.length) for (const l of a.leases) out.push(`  lease: ${l}`);
  }
  if (r.mode === 'plan' || !r.result) {
    if (r.steps.length) {
      out.push('steps:');
      r.steps.forEach((s, i) => out.push(`  ${i + 1}. ${s.name}${s.pointOfNoReturn ? ' (POINT OF NO RETURN)' : ''}: ${s.does}`));
    }
    if (a?.refusals.length) {
      out.push(`refused (${a.refusals.length}):`);
      for (const x of a.refusals) out.push(`  - ${x}`);
    } else if (r.mode === 'plan') out.push('preflight passed; nothing was changed (add --execute to switch)');
    return out.join('\n');
  }
  const res = r.result;
  out.push(`job ${res.jobId} (${res.kind}${res.resumed ? `, ${r.mode}` : ''}): ${res.outcome} in ${res.totalMs} ms${res.ponrPassed ? ' (past the point of no return)' : ''}`);
  out.push('timeline:');
  for (const t of res.timeline) out.push(`  +${String(t.startMs).padStart(6)} ms ${String(t.durationMs).padStart(6)} ms  ${t.step}${t.action !== 'do' ? ` (${t.action})` : ''}: ${t.outcome}${t.error ? `: ${t.error}` : ''}`);
  for (const h of res.hooks) out.push(`  hook ${h.hook} (${h.event}): ${h.ok ? 'ok' : `failed: ${h.error}`} ${h.ms} ms`);
  const o = r.outcome;
  if (o) {
    if (o.finalPosition !== null) out.push(`final GTID position: ${o.finalPosition || '(empty: nothing written yet)'}`);
    if (o.blockMechanism) out.push(`write block: ${o.blockMechanism}, in place after ${o.blockTookMs} ms`);
    if (o.writeBlockedMs !== null) out.push(`writes blocked for ${o.writeBlockedMs} ms (block -> proxy moved)`);
    if (o.killedDuringGrace.length) out.push(`killed while blocked (grace period, waiting writers): ${o.killedDuringGrace.map(who).join(', ')}`);
    if (o.killedOnDemotion.length) out.push(`killed on the demoted master: ${o.killedOnDemotion.map(who).join(', ')}`);
    if (o.proxy) out.push(`proxy: ${o.proxy}`);
    if (o.drc) out.push(`DRC: ${o.drc}`);
    if (o.files.length) out.push(`files rewritten: ${o.files.join(', ')}`);
    if (o.mha) out.push(`MHA: ${o.mha}`);
    if (res.outcome === 'done') out.push(`${o.newMaster} is the master of ${r.cluster}/${r.zone}; ${o.oldMaster} replicates from it (read_only)`);
  }
  if (res.error && res.outcome !== 'done') {
    out.push(`error: ${res.error.step ? `${res.error.step}: ` : ''}${res.error.message}`);
    if (res.error.hint) out.push(`hint: ${res.error.hint}`);
  }
  return out.join('\n');
}
