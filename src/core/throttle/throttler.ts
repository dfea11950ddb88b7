// The one throttle every long job obeys (as in gh-ost and pt-online-schema-change): signals
// (replica lag, DRC lag, server load, a flag file, time windows) are polled in the background,
// and the job calls gate() before each unit of work. A manual pause (osc pause, the control
// socket) sits beside the signals. A critical signal does not pause: it stops the job cleanly.
import { EzError, refused } from '../exit.js';
import type { Logger } from '../ui/log.js';
import { formatDuration } from './duration.js';

export interface Verdict {
  throttle: boolean;
  /** with throttle: stop the job instead of waiting (critical load) */
  critical?: boolean;
  /** human text: "replica lag bj-replica1 3.2s > 1.5s"; with throttle false, a note for status() */
  reason?: string;
}

export interface ThrottleSignal {
  name: string;
  check(): Promise<Verdict>;
}

export interface ThrottleStatus {
  throttled: boolean;
  /** why, when throttled: every throttling signal's reason, joined by "; " */
  reason: string | null;
  /** when the current throttled stretch began (ms since the epoch) */
  since: number | null;
  /** when the signals were last evaluated */
  checkedAt: number | null;
  /** total time spent throttled so far, including the current stretch */
  throttledMs: number;
  /** a critical signal fired: every gate() now rejects */
  critical: boolean;
  /** paused by pause() (the operator) */
  paused: boolean;
  /** what signals said without throttling, e.g. "DRC lag unknown (no heartbeat from bj at sh)" */
  notes: string[];
}

/** One transition: into throttling (with its reason) or out of it (with how long it lasted). */
export interface ThrottleChange {
  throttled: boolean;
  reason: string | null;
  critical: boolean;
  at: number;
  /** on release: how long the throttled stretch lasted */
  durationMs: number | null;
}

export interface ThrottlerOptions {
  /** how often start() polls, and how old a verdict gate() still trusts (default 500 ms) */
  intervalMs?: number;
  /** a signal that has not answered after this long counts as throttling (default 5 s) */
  checkTimeoutMs?: number;
  now?: () => number;
}

export const DEFAULT_THROTTLE_INTERVAL_MS = 500;
export const DEFAULT_CHECK_TIMEOUT_MS = 5000;

interface Evaluation {
  at: number;
  reasons: string[];
  critical: string[];
  notes: string[];
}

export class Throttler {
  readonly intervalMs: number;
  readonly checkTimeoutMs: number;
  private readonly now: () => number;
  private last: Evaluation | null = null;
  private refreshing: Promise<void> | null = null;
  /** a check still running from an earlier poll: not started again (its connection is busy) */
  private readonly pending = new Map<ThrottleSignal, Promise<Verdict>>();
  private manual: string | null = null;
  private fatal: EzError | null = null;
  private fatalAnnounced = false;
  private since: number | null = null;
  private accumulatedMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners = new Set<(c: ThrottleChange) => void>();
  /** gates waiting for the state to change */
  private readonly wakers = new Set<() => void>();

  constructor(
    readonly signals: readonly ThrottleSignal[],
    opts: ThrottlerOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? DEFAULT_THROTTLE_INTERVAL_MS;
    this.checkTimeoutMs = opts.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
    this.now = opts.now ?? Date.now;
  }

  /** Poll every signal now and then every intervalMs, in the background (never keeps the process alive). */
  start(): void {
    if (this.timer) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.timer.unref();
  }

  /** Stop polling; resolves once a poll in flight has finished, so its connections can be closed. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.refreshing;
  }

  pause(reason = 'paused by operator'): void {
    this.manual = reason;
    this.apply();
  }

  resume(): void {
    this.manual = null;
    this.apply();
  }

  /** Subscribe to transitions (into and out of throttling); returns the unsubscribe function. */
  onChange(cb: (c: ThrottleChange) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  status(): ThrottleStatus {
    const throttled = this.isThrottled();
    return {
      throttled,
      reason: throttled ? this.reason() : null,
      since: this.since,
      checkedAt: this.last?.at ?? null,
      throttledMs: this.accumulatedMs + (this.since === null ? 0 : Math.max(0, this.now() - this.since)),
      critical: this.fatal !== null,
      paused: this.manual !== null,
      notes: [...(this.last?.notes ?? [])],
    };
  }

  /**
   * Resolve when work may go on: at once when nothing throttles (checking afresh when the last
   * verdict is older than intervalMs), otherwise once the throttle is released. Rejects with a
   * refused (exit 4) error once a critical signal has fired, and with abort's reason on abort.
   */
  async gate(abort?: AbortSignal): Promise<void> {
    for (;;) {
      abort?.throwIfAborted();
      if (this.fatal) throw this.fatal;
      if (this.isStale()) await this.refresh();
      abort?.throwIfAborted();
      if (this.fatal) throw this.fatal;
      if (!this.isThrottled()) return;
      await this.waitForChange(abort);
    }
  }

  /** Evaluate every signal now (a poll already running is joined, not doubled). */
  refresh(): Promise<void> {
    this.refreshing ??= this.evaluate().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async evaluate(): Promise<void> {
    const verdicts = await Promise.all(this.signals.map((s) => this.checkOne(s).then((v) => [s, v] as const)));
    const ev: Evaluation = { at: this.now(), reasons: [], critical: [], notes: [] };
    for (const [s, v] of verdicts) {
      if (v.throttle) {
        const reason = v.reason || s.name;
        ev.reasons.push(reason);
        if (v.critical) ev.critical.push(reason);
      } else if (v.reason) {
        ev.notes.push(v.reason);
      }
    }
    this.last = ev;
    // Critical is sticky: a job told to stop must stop, even if the spike is over by its next gate.
    if (ev.critical.length > 0 && !this.fatal) {
      this.fatal = refused(`stopped: ${ev.critical.join('; ')}`, {
        hint: 'nothing more was done after the critical limit was crossed; run the job again once the load has dropped, or raise --critical-load',
      });
    }
    this.apply();
  }

  /** One signal's verdict; an error or no answer in time counts as throttling, never as clear. */
  private checkOne(s: ThrottleSignal): Promise<Verdict> {
    let p = this.pending.get(s);
    if (!p) {
      p = Promise.resolve()
        .then(() => s.check())
        .catch((e: unknown): Verdict => ({ throttle: true, reason: `${s.name}: ${(e as Error)?.message ?? String(e)}` }))
        .finally(() => this.pending.delete(s));
      this.pending.set(s, p);
    }
    let timer: NodeJS.Timeout | undefined;
    // kept ref'd: a gate may be waiting on this answer; it delays exit by checkTimeoutMs at most
    const late = new Promise<Verdict>((resolve) => {
      timer = setTimeout(() => resolve({ throttle: true, reason: `${s.name}: no answer within ${formatDuration(this.checkTimeoutMs)}` }), this.checkTimeoutMs);
    });
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  }

  private isStale(): boolean {
    return this.last === null || this.now() - this.last.at >= this.intervalMs;
  }

  private isThrottled(): boolean {
    return this.fatal !== null || this.manual !== null || (this.last?.reasons.length ?? 0) > 0;
  }

  private reason(): string {
    if (this.fatal) return this.fatal.message;
    const parts = [...(this.manual === null ? [] : [this.manual]), ...(this.last?.reasons ?? [])];
    return parts.join('; ');
  }

  /** Account for a possible transition, tell the listeners once, and wake waiting gates. */
  private apply(): void {
    const now = this.now();
    const throttled = this.isThrottled();
    let change: ThrottleChange | null = null;
    if (throttled && this.since === null) {
      this.since = now;
      change = { throttled: true, reason: this.reason(), critical: this.fatal !== null, at: now, durationMs: null };
      if (this.fatal) this.fatalAnnounced = true;
    } else if (throttled && this.fatal && !this.fatalAnnounced) {
      // already throttled, now critical: a different state the job must hear about
      this.fatalAnnounced = true;
      change = { throttled: true, reason: this.reason(), critical: true, at: now, durationMs: null };
    } else if (!throttled && this.since !== null) {
      const durationMs = now - this.since;
      this.accumulatedMs += durationMs;
      this.since = null;
      change = { throttled: false, reason: null, critical: false, at: now, durationMs };
    }
    if (change) {
      for (const cb of [...this.listeners]) {
        try {
          cb(change);
        } catch {
          // a listener's failure (a closed log stream) must not break throttling
        }
      }
    }
    for (const wake of [...this.wakers]) wake();
  }

  /** Wait for the next evaluation or pause/resume, or intervalMs, whichever comes first. */
  private waitForChange(abort?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        abort?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        reject(abort?.reason);
      };
      // not unref'd: a job waiting at the gate is work in progress and keeps the process alive
      const timer = setTimeout(done, this.intervalMs);
      this.wakers.add(done);
      abort?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** "throttled: <reason>" or "throttle released after 3.1s", for a job's log. */
export function describeChange(c: ThrottleChange): string {
  if (c.throttled) return c.critical ? `critical: ${c.reason ?? ''}` : `throttled: ${c.reason ?? ''}`;
  return `throttle released after ${formatDuration(c.durationMs ?? 0)}`;
}

/** Log every transition of a throttler once; returns the unsubscribe function. */
export function logThrottleChanges(t: Throttler, log: Logger, prefix = ''): () => void {
  return t.onChange((c) => {
    const text = prefix + describeChange(c);
    // throttling is the job doing its duty, not a fault: info, except the critical stop
    if (c.critical) log.error(text);
    else log.info(text);
  });
}
