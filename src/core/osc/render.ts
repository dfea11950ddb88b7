// The plan and the outcome of an online schema change, for a terminal.
import type { OscReport } from './engine.js';
import { table } from '../ui/table.js';

export function renderOsc(r: OscReport): string {
  const out: string[] = [];
  out.push(`${r.execute ? 'changed' : 'plan for'} ${r.table} in ${r.zones.join(', ')}: ${r.alter}`);
  out.push(`method: ${r.method === 'instant' ? 'in place, instantly, in every zone (the server can)' : 'copy to a ghost table, follow the binlog, checksum, cut over'}`);
  if (r.method === 'copy') {
    out.push(`copy by key (${r.plan.key.join(', ') || '-'}), about ${r.plan.rowsEstimate} rows per zone`);
    out.push(`columns carried over: ${r.plan.columns.map((c) => (c.from === c.to ? c.from : `${c.from}→${c.to}`)).join(', ')}`);
  }
  if (r.plan.added.length) out.push(`added: ${r.plan.added.join(', ')}`);
  if (r.plan.dropped.length) out.push(`dropped: ${r.plan.dropped.join(', ')}`);
  if (r.plan.retyped.length) out.push(`retyped: ${r.plan.retyped.join(', ')}`);
  if (!r.execute) {
    out.push('SQL, in every zone:', ...r.plan.ghostDdl.map((s) => `  ${s};`));
    out.push('checks:', ...r.plan.checks.map((c) => `  - ${c}`));
  }
  for (const n of r.plan.notes) out.push(`note: ${n}`);
  for (const x of r.refusals) out.push(`REFUSED: ${x}`);
  if (!r.execute) out.push(r.refusals.length ? 'refused: nothing would be changed' : 'run again with --execute to do it');
  if (r.progress) for (const z of r.progress) out.push(`${z.zone}: ${z.rowsCopied} rows copied in ${z.chunks} chunks, ${z.chunksRecopied} chunks copied again after the checksum, ${z.eventsApplied} binlog changes applied`);
  if (r.cutOver) out.push(`cut over in every zone within ${r.cutOver.skewMs} ms of each other (attempt ${r.cutOver.attempts}); ${r.oldTableDropped ? 'the original was dropped in every zone (--drop-old-table)' : 'the original is kept as <table>_ezdel (`ezctl osc cleanup` drops it)'}`);
  if (r.execute) out.push(`done in ${(r.ms / 1000).toFixed(1)} s`);
  return out.join('\n');
}

/** A control answer: the status of the running job (or a short acknowledgement). */
export function renderOscStatus(r: unknown): string {
  const s = r as { table?: string; zones?: Array<{ zone: string; phase: string; rowsCopied: number; chunks: number; backlog: number; eventsApplied: number }>; throttle?: { throttled: boolean; reason: string | null }; postponed?: boolean; aborting?: boolean };
  if (s.aborting) return 'aborting: the helper tables are being dropped';
  const a = r as { aborted?: boolean; table?: string; tables?: string[]; zones?: Array<{ zone: string; dropped: string[]; savedStateCleared: boolean }> };
  if (a.aborted && a.zones) {
    return [`no live job: aborted from what it left; ${(a.tables ?? [a.table]).join(', ')} untouched`, ...a.zones.map((z) => `${z.zone}: dropped ${z.dropped.join(', ') || 'nothing'}${z.savedStateCleared ? ', saved state deleted' : ''}`)].join('\n');
  }
  if (!s.zones) return JSON.stringify(r);
  const lines = s.zones.map((z) => `${z.zone}: ${z.phase}, ${z.rowsCopied} rows copied in ${z.chunks} chunks, binlog backlog ${z.backlog}, ${z.eventsApplied} changes applied`);
  if (s.throttle?.throttled) lines.push(`throttled: ${s.throttle.reason}`);
  if (s.postponed) lines.push('ready; the cut-over is postponed (flag file), `ezctl osc cut-over` releases it');
  return lines.join('\n');
}

/** `ezctl osc cleanup`: every helper table found, what is (or would be) done with it, and why. */
export function renderOscCleanup(r: import('./cleanup.js').CleanupReport): string {
  const out: string[] = [];
  if (!r.tables.length) return `no helper tables in ${r.zones.join(', ')} (cluster ${r.cluster})`;
  const outcome = (t: import('./cleanup.js').HelperTable) =>
    t.action === 'keep' ? 'kept' : t.error ? `FAILED: ${t.error}` : t.dropped ? 'dropped' : r.execute ? 'not dropped' : 'would drop';
  out.push(table(
    ['zone', 'table', 'kind', 'rows (est.)', 'size', 'outcome', 'why'],
    r.tables.map((t) => [t.zone, `${t.schema}.${t.table}`, t.kind, String(t.rowsEstimate), `${(t.bytes / 1048576).toFixed(1)} MiB`, outcome(t), t.why]),
    { stream: process.stdout },
  ));
  const drop = r.tables.filter((t) => t.action === 'drop');
  if (!r.execute) out.push(drop.length ? `run again with --execute to drop ${drop.length} table${drop.length === 1 ? '' : 's'} (each once the throttle lets it through); nothing was changed` : 'nothing to drop; nothing was changed');
  else {
    const failed = drop.filter((t) => t.error).length;
    out.push(`${drop.filter((t) => t.dropped).length} dropped${failed ? `, ${failed} failed` : ''}, ${r.tables.length - drop.length} kept, in ${(r.ms / 1000).toFixed(1)} s`);
  }
  return out.join('\n');
}
