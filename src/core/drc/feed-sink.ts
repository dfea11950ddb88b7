// Where the change feed delivers: stdout (JSON lines), a webhook (POST of a batch), Redis (DEL of
// cache keys rendered from templates, or XADD to a stream). send() resolves only once the sink
// has the whole batch (the feed's position advances after it), and rejects otherwise (retried).
import { badInput } from '../exit.js';
import { eventJson, keysToInvalidate, parseKeyTemplates, type FeedEvent, type KeyTemplate } from './feed-event.js';

export interface FeedSink {
  readonly kind: 'stdout' | 'webhook' | 'redis';
  /** where it delivers, without credentials */
  readonly target: string;
  send(events: FeedEvent[]): Promise<void>;
  close(): Promise<void>;
}

export interface SinkOptions {
  /** 'stdout' (default), an http(s):// URL, or a redis:// URL */
  sink?: string;
  /** redis: db.table=template, the keys to DEL */
  redisDel?: string[];
  /** redis: XADD every event to this stream */
  redisStream?: string;
  /** webhook: per request */
  timeoutMs?: number;
}

function redact(url: URL): string {
  const u = new URL(url.href);
  if (u.password) u.password = '***';
  return u.href;
}

class StdoutSink implements FeedSink {
  readonly kind = 'stdout' as const;
  readonly target = 'stdout';
  send(events: FeedEvent[]): Promise<void> {
    const text = events.map((e) => eventJson(e) + '\n').join('');
    return new Promise((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
  }
  async close(): Promise<void> {}
}

class WebhookSink implements FeedSink {
  readonly kind = 'webhook' as const;
  readonly target: string;
  constructor(
    private readonly url: URL,
    private readonly timeoutMs: number,
  ) {
    this.target = redact(url);
  }
  async send(events: FeedEvent[]): Promise<void> {
    const body = `{"events":[${events.map(eventJson).join(',')}]}`;
    let res: Response;
    try {
      res = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      const c = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`webhook ${this.target}: ${c?.code ?? c?.message ?? (e as Error).message}`);
    }
    // read the body so the connection is reused
    await res.arrayBuffer().catch(() => undefined);
    if (res.status < 200 || res.status > 299) throw new Error(`webhook ${this.target} answered ${res.status}`);
  }
  async close(): Promise<void> {}
}

type RedisClient = {
  connect(): Promise<unknown>;
  on(ev: string, fn: (e: Error) => void): unknown;
  multi(): { del(keys: string[]): unknown; xAdd(key: string, id: string, msg: Record<string, string>): unknown; exec(): Promise<unknown> };
  destroy?(): void;
  quit?(): Promise<unknown>;
  close?(): Promise<unknown>;
  isReady: boolean;
};

class RedisSink implements FeedSink {
  readonly kind = 'redis' as const;
  readonly target: string;
  private client: RedisClient | undefined;
  constructor(
    private readonly url: URL,
    private readonly templates: Map<string, KeyTemplate>,
    private readonly stream: string | undefined,
  ) {
    this.target = redact(url);
  }
  private async open(): Promise<RedisClient> {
    if (this.client) return this.client;
    const redis = await import('redis');
    // a CommonJS package: node finds its named exports, the bundled build only under default
    const createClient = redis.createClient ?? (redis as unknown as { default: typeof redis }).default.createClient;
    // no offline queue: a command sent while Redis is down fails at once and the feed retries
    // it with backoff, instead of piling up in memory
    const c = createClient({ url: this.url.href, disableOfflineQueue: true, socket: { connectTimeout: 5000, reconnectStrategy: (n: number) => Math.min(5000, 100 * 2 ** n) } }) as unknown as RedisClient;
    c.on('error', () => {}); // reported through the failing send
    this.client = c;
    await c.connect();
    return c;
  }
  async send(events: FeedEvent[]): Promise<void> {
    const c = await this.open();
    const m = c.multi();
    let n = 0;
    // in commit order: a DEL per row event (the same key may be invalidated again by a later row,
    // which is what ordered per key means for DEL), an XADD per event
    for (const ev of events) {
      if (ev.type !== 'commit' && this.templates.size) {
        const t = this.templates.get(`${ev.database}.${ev.table}`);
        if (t) {
          m.del(keysToInvalidate(ev, t));
          n++;
        }
      }
      if (this.stream) {
        m.xAdd(this.stream, '*', { event: eventJson(ev) });
        n++;
      }
    }
    if (n === 0) return;
    try {
      await m.exec();
    } catch (e) {
      throw new Error(`redis ${this.target}: ${(e as Error).message}`);
    }
  }
  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    try {
      if (c.close) await c.close();
      else if (c.quit) await c.quit();
    } catch {
      c.destroy?.();
    }
  }
}

export function makeSink(o: SinkOptions): FeedSink {
  const s = o.sink ?? 'stdout';
  if (s === 'stdout' || s === '-') {
    if (o.redisDel?.length || o.redisStream) throw badInput('--redis-del and --redis-stream need --sink redis://host:port');
    return new StdoutSink();
  }
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw badInput(`--sink ${JSON.stringify(s)} is not stdout, an http(s):// URL or a redis:// URL`);
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    if (o.redisDel?.length || o.redisStream) throw badInput('--redis-del and --redis-stream need --sink redis://host:port');
    return new WebhookSink(url, o.timeoutMs ?? 10_000);
  }
  if (url.protocol === 'redis:' || url.protocol === 'rediss:') {
    const templates = parseKeyTemplates(o.redisDel ?? []);
    if (templates.size === 0 && !o.redisStream) throw badInput('a Redis sink needs --redis-del db.table=template (e.g. shop.users=user:{id}) or --redis-stream <key>, or both');
    return new RedisSink(url, templates, o.redisStream);
  }
  throw badInput(`--sink ${url.protocol}// is not supported: use stdout, http(s):// or redis://`);
}
