import type { DaemonStatus } from './client.js';
import { table } from '../ui/table.js';

const ms = (v: number | null) => (v === null ? '-' : v < 10_000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`);

/** "2026-12-04T05:12:03.123Z" → "05:12:03Z", the time of day a last error happened */
const clock = (iso: string | null) => (iso ? `${iso.slice(11, 19)}Z ` : '');

/** The routing table version a direction judges by: "v3", "v3 missed" (published while the source was down), "file" (version 0), "-" */
const routes = (v: number | null | undefined, missed?: boolean) => (v === null || v === undefined ? '-' : v === 0 ? 'file' : `v${v}${missed ? ' missed' : ''}`);

/** Batches applied again in place: "0", "3 (2 deadlocks, 1 lock wait)", "1 (1 row appeared)" */
const retriesOf = (d: DaemonStatus['directions'][number]) => {
  const r = d.retries;
  const appeared = r?.rowAppeared ?? 0;
  if (!r || r.deadlock + r.lockWait + appeared === 0) return '0';
  const n = (k: number, one: string, many: string) => (k ? `${k} ${k > 1 ? many : one}` : '');
  return `${r.deadlock + r.lockWait + appeared} (${[n(r.deadlock, 'deadlock', 'deadlocks'), n(r.lockWait, 'lock wait', 'lock waits'), n(appeared, 'row appeared', 'rows appeared')].filter(Boolean).join(', ')})`;
};

export function renderDrcStatus(s: DaemonStatus & { problems?: string[] }): string {
  const head = s.running ? `DRC ${s.cluster}: running (pid ${s.pid}, since ${s.startedAt})` : `DRC ${s.cluster}: not running`;
  const t = table(
    ['direction', 'state', 'lag', 'p99 1m', 'tx/s', 'rows/s', 'applied tx', 'conflicts', 'retries', 'illegal', 'routes', 'queue', 'last error'],
    s.directions.map((d) => [
      `${d.from} → ${d.to}`, d.state, ms(d.lagMs), ms(d.p99LagMs), d.txPerSec.toFixed(0), d.rowsPerSec.toFixed(0), String(d.appliedTx),
      String(d.conflicts), retriesOf(d), String(d.illegalWrites), routes(d.routesVersion, d.routesMissed), String(d.queue), d.lastError ? `${clock(d.lastErrorAt)}${d.lastError}`.slice(0, 70) : '',
    ]),
  );
  const problems = s.problems?.length ? `\n${s.problems.map((p) => `not healthy: ${p}`).join('\n')}` : '';
  return `${head}\n${t}${problems}`;
}

/** One plain line per direction, for --watch without a terminal. */
export function drcStatusLines(s: DaemonStatus): string {
  return s.directions.map((d) => `${d.from}->${d.to} state=${d.state} lag_ms=${d.lagMs ?? '-'} p99_ms=${d.p99LagMs ?? '-'} tx_s=${d.txPerSec.toFixed(1)} applied_tx=${d.appliedTx} conflicts=${d.conflicts} retries_deadlock=${d.retries?.deadlock ?? 0} retries_lock_wait=${d.retries?.lockWait ?? 0} illegal=${d.illegalWrites} routes=${routes(d.routesVersion, d.routesMissed).replace(' ', '-')} queue=${d.queue}${d.lastError ? ` last_error=${JSON.stringify(d.lastError)} last_error_at=${d.lastErrorAt ?? '-'}` : ''}`).join('\n');
}
