// The WAN relay: distance and partitions between a sandbox's zones, made in user space (this
// kernel has no netem). For every ordered zone pair (A, B) and every server and proxy listener of
// zone B it listens on one loopback port that zone A's side uses to reach that server; each chunk
// read from either end is held half the configured round trip (plus jitter) before it is written
// to the other, so a request and its answer together pay the whole round trip. Bytes of one
// connection are never reordered: a chunk is never released before the one read before it.
//
// A cut link (a partition) behaves as a real one does: established connections stop carrying
// bytes (what arrives is held, not delivered), new connections are accepted and get no answer
// (nothing is connected behind them), so callers' own timeouts decide; on heal, or once a
// connection has been held for CUT_RESET_MS, those connections are reset (TCP RST), as a peer
// that lost its state would.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface RelayListener {
  /** the zone whose side connects to this port */
  from: string;
  /** the zone of the server behind it */
  to: string;
  /** what is behind it: a node name, or proxy-<zone>-write/read */
  target: string;
  listen: number;
  host: string;
  port: number;
}

export interface LinkState { latencyMs: number; jitterMs: number; cut: boolean }

/** The relay's whole configuration: the listeners, and the state of each ordered zone pair ("a>b"). */
export interface RelayConfig {
  version: 1;
  bind: string;
  listeners: RelayListener[];
  links: Record<string, LinkState>;
}

export const linkKey = (from: string, to: string) => `${from}>${to}`;

/** A connection held by a cut link is reset after this long even without a heal. */
export const CUT_RESET_MS = 60_000;
/** Past this many bytes waiting for their release time, the sending side is paused (backpressure). */
const HIGH_WATER = 4 * 1024 * 1024;

interface Chunk { at: number; data: Buffer }

/** One direction of one relayed connection: chunks wait for their release time, in order. */
class Lane {
  private q: Chunk[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private paused = false;
  /** the sending side ended: end the other once every chunk before it is out */
  private ending = false;
  constructor(
    private readonly src: () => Socket | undefined,
    private readonly dst: () => Socket | undefined,
    private readonly delay: () => number,
    private readonly held: () => boolean,
  ) {}

  push(data: Buffer): void {
    const d = this.delay();
    const dst = this.dst();
    if (this.ending) return;
    if (d <= 0 && this.q.length === 0 && !this.held() && dst) {
      // no delay configured: straight through, the cost of the relay alone
      if (!dst.write(data)) this.pauseUntilDrain(dst);
      return;
    }
    // never before the chunk read before it: bytes of a connection are not reordered
    const at = Math.max(Date.now() + d, this.last);
    this.last = at;
    this.q.push({ at, data });
    this.bytes += data.length;
    if (this.bytes > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.src()?.pause();
    }
    this.schedule();
  }

  /** Release what is due (called by its timer, and when a link is healed or re-timed). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const dst = this.dst();
    if (this.held() || !dst) return;
    const now = Date.now();
    while (this.q.length && this.q[0]!.at <= now) {
      const c = this.q.shift()!;
      this.bytes -= c.data.length;
      if (!dst.write(c.data)) this.pauseUntilDrain(dst);
    }
    if (this.paused && this.bytes < HIGH_WATER / 2) {
      this.paused = false;
      this.src()?.resume();
    }
    if (this.ending && this.q.length === 0) {
      dst.end();
      return;
    }
    this.schedule();
  }

  /** The sending side half-closed: the FIN travels behind the bytes sent before it. */
  end(): void {
    this.ending = true;
    this.flush();
  }

  private schedule(): void {
    if (this.timer || !this.q.length || this.held()) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, this.q[0]!.at - Date.now()));
  }

  private pauseUntilDrain(dst: Socket): void {
    if (this.paused) return;
    this.paused = true;
    this.src()?.pause();
    dst.once('drain', () => {
      if (this.bytes < HIGH_WATER / 2) {
        this.paused = false;
        this.src()?.resume();
      }
    });
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.q = [];
    this.bytes = 0;
  }
}

class Conn {
  upstream: Socket | undefined;
  /** since when it has been held by a cut (undefined: not held) */
  heldSince: number | undefined;
  /** it was held by a cut: reset on heal */
  sawCut = false;
  readonly up: Lane;
  readonly down: Lane;
  closed = false;
  constructor(
    readonly relay: Relay,
    readonly l: RelayListener,
    readonly client: Socket,
  ) {
    const oneWay = () => relay.oneWayDelay(l.from, l.to);
    const held = () => relay.isCut(l.from, l.to);
    this.up = new Lane(() => client, () => this.upstream, oneWay, held);
    this.down = new Lane(() => this.upstream, () => client, oneWay, held);
  }
}

export class Relay {
  private servers: Server[] = [];
  private conns = new Set<Conn>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private config: RelayConfig,
    private readonly onChange: (c: RelayConfig) => void = () => {},
  ) {}

  link(from: string, to: string): LinkState {
    return (this.config.links[linkKey(from, to)] ??= { latencyMs: 0, jitterMs: 0, cut: false });
  }

  isCut(from: string, to: string): boolean {
    return this.link(from, to).cut;
  }

  /** Half the round trip, plus or minus half the jitter, never below 0. */
  oneWayDelay(from: string, to: string): number {
    const s = this.link(from, to);
    const j = s.jitterMs > 0 ? (Math.random() - 0.5) * s.jitterMs : 0;
    return Math.max(0, s.latencyMs / 2 + j);
  }

  async start(): Promise<void> {
    for (const l of this.config.listeners) {
      // half-open: each side's FIN is passed on behind its bytes (Lane.end), not answered at once
      const srv = createServer({ noDelay: true, allowHalfOpen: true }, (c) => this.accept(l, c));
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ port: l.listen, host: this.config.bind, exclusive: true }, () => resolve());
      });
      this.servers.push(srv);
    }
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const c of this.conns) this.close(c, true);
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
  }

  private accept(l: RelayListener, client: Socket): void {
    const c = new Conn(this, l, client);
    this.conns.add(c);
    client.setNoDelay(true);
    client.on('error', () => this.close(c, true));
    client.on('close', () => this.close(c, false));
    client.on('data', (d: Buffer) => c.up.push(d));
    client.on('end', () => c.up.end());
    if (this.isCut(l.from, l.to)) {
      // accepted, and no answer: nothing is behind it until the link heals (then it is reset)
      c.heldSince = Date.now();
      c.sawCut = true;
      return;
    }
    this.connectUpstream(c);
  }

  private connectUpstream(c: Conn): void {
    const u = createConnection({ host: c.l.host, port: c.l.port, noDelay: true, allowHalfOpen: true });
    c.upstream = u;
    u.on('connect', () => c.up.flush());
    u.on('data', (d: Buffer) => c.down.push(d));
    u.on('end', () => c.down.end());
    u.on('error', () => this.close(c, true));
    u.on('close', () => this.close(c, false));
  }

  private close(c: Conn, reset: boolean): void {
    if (c.closed) return;
    c.closed = true;
    this.conns.delete(c);
    c.up.stop();
    c.down.stop();
    for (const s of [c.client, c.upstream]) {
      if (!s || s.destroyed) continue;
      if (reset) s.resetAndDestroy();
      else s.destroy();
    }
  }

  /** Connections held by a cut for longer than CUT_RESET_MS are reset. */
  private sweep(): void {
    const now = Date.now();
    for (const c of this.conns) {
      if (this.isCut(c.l.from, c.l.to)) {
        c.heldSince ??= now;
        c.sawCut = true;
        if (now - c.heldSince > CUT_RESET_MS) this.close(c, true);
      }
    }
  }

  zones(): string[] {
    const s = new Set<string>();
    for (const l of this.config.listeners) s.add(l.from).add(l.to);
    return [...s];
  }

  /** Every ordered pair of zones, its state and its open connections. */
  status(): Array<{ from: string; to: string; latencyMs: number; jitterMs: number; cut: boolean; connections: number }> {
    const zones = this.zones();
    const out = [];
    for (const from of zones) {
      for (const to of zones) {
        if (from === to) continue;
        const s = this.link(from, to);
        let connections = 0;
        for (const c of this.conns) if (c.l.from === from && c.l.to === to) connections++;
        out.push({ from, to, latencyMs: s.latencyMs, jitterMs: s.jitterMs, cut: s.cut, connections });
      }
    }
    return out;
  }

  private known(z: string): void {
    if (!this.zones().includes(z)) throw new Error(`zone ${JSON.stringify(z)} has no relayed link (zones: ${this.zones().join(', ')})`);
  }

  /** Cut both directions of a zone pair at once. */
  partition(a: string, b: string): void {
    this.known(a);
    this.known(b);
    if (a === b) throw new Error(`a partition is between two zones (got ${a} twice)`);
    const now = Date.now();
    this.link(a, b).cut = true;
    this.link(b, a).cut = true;
    for (const c of this.conns) {
      if ((c.l.from === a && c.l.to === b) || (c.l.from === b && c.l.to === a)) {
        c.heldSince ??= now;
        c.sawCut = true;
      }
    }
    this.onChange(this.config);
  }

  /** Heal one zone pair (both directions), or every link: connections the cut held are reset. */
  heal(a?: string, b?: string): void {
    if ((a === undefined) !== (b === undefined)) throw new Error('heal takes a zone pair, or nothing (every link)');
    if (a !== undefined) {
      this.known(a);
      this.known(b!);
    }
    const pair = (from: string, to: string) => a === undefined || (from === a && to === b) || (from === b && to === a);
    for (const [k, s] of Object.entries(this.config.links)) {
      const [from, to] = k.split('>') as [string, string];
      if (pair(from, to)) s.cut = false;
    }
    for (const c of [...this.conns]) {
      if (c.sawCut && pair(c.l.from, c.l.to)) this.close(c, true);
    }
    this.onChange(this.config);
  }

  /** Set the round trip (and jitter) of one zone pair, both directions, or of every link. */
  setLatency(o: { latencyMs: number; jitterMs?: number; link?: [string, string] }): void {
    if (!(o.latencyMs >= 0) || !((o.jitterMs ?? 0) >= 0)) throw new Error('latency and jitter are durations of 0 ms or more');
    if (o.link) {
      this.known(o.link[0]);
      this.known(o.link[1]);
    }
    const zones = this.zones();
    for (const from of zones) {
      for (const to of zones) {
        if (from === to) continue;
        if (o.link && !((from === o.link[0] && to === o.link[1]) || (from === o.link[1] && to === o.link[0]))) continue;
        const s = this.link(from, to);
        s.latencyMs = o.latencyMs;
        s.jitterMs = o.jitterMs ?? 0;
      }
    }
    for (const c of this.conns) {
      c.up.flush();
      c.down.flush();
    }
    this.onChange(this.config);
  }
}
