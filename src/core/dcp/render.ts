// How check results look on a terminal: a live progress line while it runs (TTY only), a
// table per run, the differences in a readable list. --json gets the report object itself.
import { table } from '../ui/table.js';
import { isInteractive } from '../ui/log.js';
import type { CheckReport, Progress, RowDiff } from './check-full.js';

const fmtMs = (ms: number) => (ms < 1000 ? `${ms}ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`);

const TEXT_DIFFS_PER_TABLE = 20;

export function renderCheckReport(r: CheckReport): string {
  const head = ['table', 'rows', 'chunks', 'missing', 'changed', 'skipped', 'time'];
  const rows = r.tables.map((t) => [
    t.table + (t.keyless ? ' (no key)' : ''),
    String(t.rows),
    String(t.chunks),
    String(t.missing),
    String(t.changed),
    t.missingIn?.length ? `table missing in ${t.missingIn.join(', ')}` : t.status === 'skipped' ? (t.reason ?? 'yes') : t.status === 'incomplete' ? 'not finished' : '',
    fmtMs(t.ms),
  ]);
  const out: string[] = [table(head, rows, { stream: process.stdout })];
  for (const t of r.tables) {
    if (t.missingIn?.length) out.push(`${t.table}: table missing in ${t.missingIn.join(', ')} (exists in ${(t.presentIn ?? []).join(', ')})`);
    else if (t.status === 'skipped') out.push(`${t.table}: not compared: ${t.reason ?? 'skipped'}`);
    for (const s of t.structure ?? []) out.push(`${t.table}: structure differs: ${s}`);
    for (const c of t.columnsExcluded ?? []) out.push(`${t.table}: column ${c.column} not compared: ${c.why}`);
    // a terminal gets the first few; --json and the stored run have them all
    for (const d of t.diffs.slice(0, TEXT_DIFFS_PER_TABLE)) out.push(`${t.table}: ${describeRowDiff(d, r.zones)}`);
    const listed = Math.min(t.diffs.length, TEXT_DIFFS_PER_TABLE);
    if (t.missing + t.changed > listed) out.push(`${t.table}: ${t.missing + t.changed - listed} more differences (all of them: --json, --report, or _ezctl.check_diffs run ${r.runId})`);
  }
  const missing = r.tables.reduce((s, t) => s + t.missing, 0);
  const changed = r.tables.reduce((s, t) => s + t.changed, 0);
  const n = (k: number, what: string) => `${k} table${k === 1 ? '' : 's'} ${what}`;
  const problems = [
    ...(missing || changed || (!r.missingTables.length && !r.structureDiffers.length && !r.skipped.length) ? [`${missing} missing, ${changed} changed`] : []),
    ...(r.missingTables.length ? [n(r.missingTables.length, 'missing in a zone')] : []),
    ...(r.structureDiffers.length ? [n(r.structureDiffers.length, 'with structure differences')] : []),
    ...(r.skipped.length ? [n(r.skipped.length, 'not compared')] : []),
  ];
  const verdict = r.consistent ? 'consistent' : `NOT consistent: ${problems.join(', ')}`;
  let tail = `${verdict}: ${r.tables.length} table${r.tables.length === 1 ? '' : 's'}, ${r.rows} rows in ${fmtMs(r.ms)} (${r.rowsPerSecond} rows/s) across ${r.zones.join(', ')}; run ${r.runId}`;
  if (r.hash === 'crc32') tail += '; 32-bit row hash (--hash crc32)';
  if (r.throttledMs > 0) tail += `; throttled ${fmtMs(r.throttledMs)}`;
  if (!r.complete) tail += `\nstopped by ${r.stoppedBy ?? 'a limit'} before every table was checked; continue with --resume`;
  out.push(tail);
  return out.join('\n');
}

export function describeRowDiff(d: RowDiff, zones: string[]): string {
  const key = Object.entries(d.key).map(([k, v]) => `${k}=${show(v)}`).join(', ');
  if (d.kind === 'missing') {
    const where = zones.map((z) => {
      const s = d.zones[z];
      if (!s) return `${z}: ?`;
      if (s.count !== undefined) return `${z}: ${s.count} copies`;
      return `${z}: ${s.present ? 'present' : 'missing'}`;
    });
    return `missing (${key}): ${where.join(', ')}${d.unstable ? ' (still changing)' : ''}`;
  }
  const cols = d.columns.map((c) => `${c} ${zones.map((z) => `${z}=${show(d.zones[z]?.values?.[c])}`).join(' ')}`);
  return `changed (${key}): ${cols.join('; ') || 'row hash differs'}${d.unstable ? ' (still changing)' : ''}`;
}

function show(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (Buffer.isBuffer(v)) return `0x${v.toString('hex')}`;
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v);
  return String(v);
}

/** A live progress line on a terminal; plain lines every 10 s without one. */
export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): { update(p: Progress): void; end(): void } {
  const live = isInteractive(stream);
  let lastPlain = 0;
  let drawn = false;
  const line = (p: Progress) => {
    const elapsed = Date.now() - p.startedAt;
    const rate = elapsed > 0 ? Math.round((p.rowsDone / elapsed) * 1000) : 0;
    const left = Math.max(0, p.rowsEstimate - p.rowsDone);
    const eta = rate > 0 && p.rowsEstimate > 0 ? fmtMs(Math.round((left / rate) * 1000)) : '?';
    const pct = p.rowsEstimate > 0 ? Math.min(100, Math.round((p.rowsDone / p.rowsEstimate) * 100)) : 0;
    let s = `tables ${p.tablesDone}/${p.tablesTotal}, rows ${p.rowsDone} (~${pct}%), ${rate} rows/s, ETA ${eta}`;
    if (p.current.length) s += `, on ${p.current.join(' ')}`;
    if (p.throttled) s += `, throttled: ${p.throttled}`;
    return s;
  };
  return {
    update(p) {
      if (live) {
        stream.write(`\r\x1b[K${line(p).slice(0, (stream.columns || 120) - 1)}`);
        drawn = true;
      } else if (p.tablesDone < p.tablesTotal && Date.now() - lastPlain >= 10_000) {
        lastPlain = Date.now();
        stream.write(`${new Date().toISOString()} check: ${line(p)}\n`);
      }
    },
    end() {
      if (live && drawn) stream.write('\r\x1b[K');
    },
  };
}
