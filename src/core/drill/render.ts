// Text reports of the drills (--json gives the report objects as they are).
import type { DrillReport } from './run.js';
import type { CleanupReport } from './cleanup.js';
import { DRILLS } from './drills.js';

const ms = (v: number | null) => (v === null ? '-' : `${v} ms`);

export function renderDrill(r: DrillReport): string {
  const out: string[] = [];
  out.push(`drill ${r.drill} on cluster ${r.cluster}${r.zone ? `, zone ${r.zone}` : ''}: ${r.passed ? 'PASSED' : 'FAILED'} in ${(r.ms / 1000).toFixed(1)} s`);
  for (const l of r.leftovers) out.push(`  leftover of an earlier drill reverted: ${l.fault}: ${l.done}`);
  out.push(`  time to detect: ${ms(r.detectMs)}   time to recover: ${ms(r.recoverMs)}`);
  const w = r.writes;
  out.push(`  writes: ${w.acknowledged} acknowledged, ${w.lost} lost, ${w.appliedTwice} applied twice, ${w.unknown} unknown, ${w.errors} failed, ${w.retries} retried; longest stretch without a commit: ${Object.entries(w.windowMs).map(([z, v]) => `${z} ${v} ms`).join(', ')}`);
  out.push(`  DRC lag: before ${ms(r.drcLag.beforeMs)}, peak ${ms(r.drcLag.peakMs)}, after ${ms(r.drcLag.afterMs)}`);
  if (r.check) out.push(`  check full: ${r.check.consistent ? 'consistent' : `${r.check.differences} differences`} (${r.check.ms} ms)`);
  if (r.conflicts) out.push(`  conflicts (rows written in both zones): ${r.conflicts.total}, the same write kept everywhere: ${r.conflicts.sameEverywhere}, the last acknowledged write kept: ${r.conflicts.lastWriterWon}`);
  out.push('  timeline:');
  for (const t of r.timeline) out.push(`    +${String(t.atMs).padStart(6)} ms  ${t.event}${t.detail ? `: ${t.detail}` : ''}`);
  out.push('  invariants:');
  for (const i of r.invariants) {
    out.push(`    ${i.pass ? 'pass' : 'FAIL'}  ${i.name}: ${i.detail}`);
    if (!i.pass) for (const e of i.evidence ?? []) out.push(`          ${e}`);
  }
  for (const n of r.notes) out.push(`  note: ${n}`);
  return out.join('\n');
}

export function renderCleanup(r: CleanupReport): string {
  if (!r.drill) return `no drill left anything in ${r.dir}`;
  const out = [`drill ${r.drill} left faults in ${r.dir}:`];
  for (const x of r.reverted) out.push(`  reverted: ${x.fault}: ${x.done}`);
  for (const f of r.failed) out.push(`  NOT reverted: ${f}`);
  return out.join('\n');
}

export function renderDrillList(): string {
  return Object.entries(DRILLS).map(([n, d]) => `${n.padEnd(18)} ${d.summary}${d.hostAccess ? '' : ' (runs with --allow-non-sandbox)'}`).join('\n');
}
