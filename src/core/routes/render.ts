// Text output of `gz routes` (the table, --history, --sync, --watch lines).
import { table } from '../ui/table.js';
import type { Routes } from './index.js';
import type { HistoryReport, RoutesReport, SyncReport, WatchLine } from './show.js';

function routeRows(r: Routes): string[][] {
  if (r.model === 'global') return [['writes', r.writeZone ?? '(none)', r.state]];
  return r.shards.map((s) => [s.from === s.to ? String(s.from) : `${s.from}-${s.to}`, s.zone, s.state]);
}

function published(r: Routes): string {
  if (r.version === 0) return 'never published (derived from the topology file)';
  return `published ${r.publishedAt}${r.job ? ` by job ${r.job}` : ''}${r.reason ? `: ${r.reason}` : ''}${r.missedBy.length ? ` (missed by ${r.missedBy.join(', ')}: down then)` : ''}`;
}

export function renderRoutes(rep: RoutesReport): string {
  const r = rep.routes;
  const out: string[] = [];
  out.push(`cluster ${rep.cluster} (${r.model}): routing table version ${r.version}, ${published(r)}`);
  out.push(table([r.model === 'global' ? 'route' : 'shards', 'zone', 'state'], routeRows(r)));
  out.push(
    table(
      ['zone', 'version', 'note'],
      Object.entries(rep.zones).map(([z, s]) => [z, s.version === null ? '-' : String(s.version), s.error ? `unreachable: ${s.error}` : rep.stale.includes(z) ? 'stale (ezctl gz routes --sync --execute)' : '']),
    ),
  );
  if (!rep.fileAgrees) out.push(`the topology file names other owners (${fileView(rep.file)}): ezctl gz routes --sync --execute rewrites it`);
  if (rep.clients.length) {
    out.push(table(['client', 'zone', 'acked version', 'in flight', 'last heard'], rep.clients.map((c) => [c.client, c.zone, String(c.version), String(c.inFlight), `${(c.ageMs / 1000).toFixed(1)} s ago`])));
  }
  return out.join('\n');
}

function fileView(f: Routes): string {
  if (f.model === 'global') return `writerZone ${f.writeZone}`;
  return f.shards.map((s) => `${s.from === s.to ? s.from : `${s.from}-${s.to}`} ${s.zone}`).join(', ');
}

export function renderHistory(h: HistoryReport): string {
  if (!h.versions.length) return `cluster ${h.cluster}: no routing table was published${h.unreachable.length ? ` (unreachable: ${h.unreachable.join(', ')})` : ''}`;
  const rows = h.versions.map((v) => [
    String(v.version),
    v.publishedAt,
    v.model === 'global' ? `${v.writeZone}${v.state === 'blocked' ? ' (blocked)' : ''}` : v.shards.map((s) => `${s.from === s.to ? s.from : `${s.from}-${s.to}`} ${s.zone}${s.state === 'blocked' ? ' (blocked)' : ''}`).join(', '),
    v.job ?? '',
    v.reason,
    v.zones.join(','),
    v.missedBy.join(','),
  ]);
  return [table(['version', 'published', 'routes', 'job', 'reason', 'logged at', 'missed by'], rows), ...(h.unreachable.length ? [`unreachable: ${h.unreachable.join(', ')}`] : [])].join('\n');
}

export function renderSync(s: SyncReport): string {
  const out: string[] = [];
  if (!s.zones.length && s.file.agrees) out.push(`cluster ${s.cluster}: every reachable zone holds version ${s.routes.version} and the topology file agrees; nothing to do`);
  for (const z of s.zones) {
    const what = `zone ${z.zone}: version ${z.before ?? 'none'} -> ${s.routes.version}`;
    if (!s.execute) out.push(`would write ${what}`);
    else out.push(`${what}: ${z.outcome === 'failed' ? `FAILED: ${z.error}` : z.outcome === 'higher' ? 'a higher version is there now (left as it is)' : z.outcome === 'conflict' ? 'another document of this version is there (left as it is)' : z.outcome === 'same' ? 'already there' : 'written'}`);
  }
  if (!s.file.agrees) out.push(s.execute ? (s.file.error ? `topology file: FAILED: ${s.file.error}` : `topology file: owners rewritten from version ${s.routes.version}`) : `would rewrite the topology file's owners from version ${s.routes.version}`);
  if (s.unreachable.length) out.push(`unreachable (not synced): ${s.unreachable.join(', ')}`);
  if (!s.execute && (s.zones.length || !s.file.agrees)) out.push(`each zone would run: ${s.sql}\nnothing was changed: add --execute`);
  return out.join('\n');
}

export function renderWatchLine(l: WatchLine): string {
  const r = l.routes;
  const body = r.model === 'global' ? `writes to ${r.writeZone ?? '(none)'} (${r.state})` : r.shards.map((s) => `${s.from === s.to ? s.from : `${s.from}-${s.to}`} ${s.zone}${s.state === 'blocked' ? ' (blocked)' : ''}`).join(', ');
  return `${l.seenAt} ${l.cluster} v${l.version}: ${body}${r.version ? ` [${r.reason}${r.job ? `, job ${r.job}` : ''}]` : ' [from the topology file]'}`;
}
