// `ezctl gz serve`: the routing tables over HTTP for application SDK caches. One follower per
// cluster inside (the zones are asked every interval, not per request); GET /v1/routes/<cluster>
// answers the document with `ETag: "<cluster>-<version>"`, 304 to an equal If-None-Match, and with
// `?wait=30s` holds the request until the version changes (then 200) or the wait ends (304).
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { isIP } from 'node:net';
import type { Ctx } from '../context.js';
import { onInterrupt } from '../signals.js';
import { badInput, refused, runtimeError } from '../exit.js';
import { RoutesFollower } from './follower.js';

export interface ServeOptions {
  /** host:port; port 0 takes a free one (printed) */
  listen: string;
  /** clusters to serve (default: every cluster of the topology file) */
  clusters?: string[];
  allowRemote?: boolean;
  intervalMs?: number;
  /** the longest ?wait= a client may ask (default 60 s) */
  maxWaitMs?: number;
  /** called once listening */
  onListening?: (addr: { host: string; port: number; url: string; clusters: string[] }) => void;
  signal?: AbortSignal;
}

export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(s.trim());
  if (!m) throw badInput(`${JSON.stringify(s)} is not host:port (like 127.0.0.1:8080)`);
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) throw badInput(`${port} is not a port (0-65535)`);
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

/** "30s", "500ms", "2m", a bare number of seconds -> ms; undefined when absent, NaN when bad. */
export function parseWait(v: string | null): number | undefined {
  if (v === null || v === '') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

const etagOf = (cluster: string, version: number) => `"${cluster}-${version}"`;

/** Serve until SIGINT/SIGTERM (or `signal`): stops the followers and closes every connection first. */
export async function serveRoutes(ctx: Ctx, o: ServeOptions): Promise<void> {
  const { host, port } = parseListen(o.listen);
  if (!isLoopback(host) && !o.allowRemote) {
    throw refused(`gz serve binds ${host}, which is not a loopback address: the routing table would be readable from the network`, { hint: 'bind 127.0.0.1 (the default), or add --allow-remote behind your own access control' });
  }
  const topo = await ctx.topology();
  const clusters = o.clusters?.length ? o.clusters.map((c) => topo.cluster(c).name) : topo.clusterNames;
  const maxWait = o.maxWaitMs ?? 60_000;
  const followers = new Map<string, RoutesFollower>();
  try {
    for (const c of clusters) followers.set(c, await RoutesFollower.start(ctx, topo, c, { intervalMs: o.intervalMs ?? 100 }));
  } catch (e) {
    for (const f of followers.values()) await f.stop();
    throw e;
  }
  const closing = new AbortController();

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = body === undefined ? '' : JSON.stringify(body) + '\n';
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-cache', ...headers, ...(text ? { 'content-length': String(Buffer.byteLength(text)) } : {}) });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: `${req.method} is not served (GET only)` }, { allow: 'GET, HEAD' });
    if (url.pathname === '/healthz') {
      const out: Record<string, unknown> = {};
      let ok = true;
      for (const [c, f] of followers) {
        const zones = f.zoneVersions;
        const reachable = Object.values(zones).filter((z) => !z.error).length;
        if (reachable === 0) ok = false;
        out[c] = { version: f.routes.version, zones };
      }
      return send(res, ok ? 200 : 503, { ok, clusters: out });
    }
    if (url.pathname === '/v1/routes' || url.pathname === '/v1/routes/') {
      return send(res, 200, { clusters: [...followers].map(([c, f]) => ({ cluster: c, version: f.routes.version, etag: etagOf(c, f.routes.version), url: `/v1/routes/${encodeURIComponent(c)}` })) });
    }
    const m = /^\/v1\/routes\/([^/]+)$/.exec(url.pathname);
    if (!m) return send(res, 404, { error: `no such resource ${url.pathname} (try /v1/routes, /v1/routes/<cluster>, /healthz)` });
    const cluster = decodeURIComponent(m[1]!);
    const f = followers.get(cluster);
    if (!f) return send(res, 404, { error: `cluster ${JSON.stringify(cluster)} is not served here`, clusters: [...followers.keys()] });
    const wait = parseWait(url.searchParams.get('wait'));
    if (wait !== undefined && (Number.isNaN(wait) || wait > maxWait)) return send(res, 400, { error: `wait=${url.searchParams.get('wait')} is not a duration up to ${maxWait / 1000}s (like 30s or 500ms)` });
    const inm = req.headers['if-none-match'];
    const matches = (v: number) => typeof inm === 'string' && inm.split(',').map((s) => s.trim().replace(/^W\//, '')).includes(etagOf(cluster, v));
    if (matches(f.routes.version) && wait) {
      // long poll: until the version changes, the wait ends, the client leaves or the server stops
      const gone = new AbortController();
      const onClose = () => gone.abort();
      res.on('close', onClose);
      const onStop = () => gone.abort();
      closing.signal.addEventListener('abort', onStop, { once: true });
      const until = Date.now() + wait;
      while (matches(f.routes.version) && !gone.signal.aborted && Date.now() < until) await f.waitChange(until - Date.now(), gone.signal);
      res.off('close', onClose);
      closing.signal.removeEventListener('abort', onStop);
      if (res.destroyed) return;
    }
    const r = f.routes;
    const etag = etagOf(cluster, r.version);
    if (matches(r.version)) return send(res, 304, undefined, { etag });
    return send(res, 200, req.method === 'HEAD' ? undefined : r, { etag, 'x-ezctl-routes-version': String(r.version) });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      ctx.log.warn(`gz serve: ${req.method} ${req.url}: ${(e as Error).message}`);
      if (!res.headersSent) send(res, 500, { error: (e as Error).message });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(runtimeError(`gz serve cannot listen on ${o.listen}: ${e.code ?? e.message}`, { hint: e.code === 'EADDRINUSE' ? 'another process holds the port: pick another (port 0 takes a free one)' : '' })));
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  const shown = host.includes(':') ? `[${host}]` : host;
  o.onListening?.({ host, port: bound, url: `http://${shown}:${bound}`, clusters });
  ctx.log.info(`gz serve: listening on http://${shown}:${bound} (${clusters.join(', ')})`);

  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const shutdown = async () => {
    if (closing.signal.aborted) return;
    closing.abort();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 200).unref();
    });
    for (const f of followers.values()) await f.stop();
    done();
  };
  const off = onInterrupt(shutdown);
  o.signal?.addEventListener('abort', () => void shutdown(), { once: true });
  await finished;
  off();
}
