// Hooks of a multi-step job: at each phase boundary, every hook configured for that event is given
// one JSON document: an executable (spawned without a shell, the document on stdin, EZCTL_* in its
// environment, killed at its timeout) or a URL (the document POSTed, bounded by its timeout). Like
// orchestrator's pre-/post-failover processes: the engine makes a failing hook before the point of
// no return abort the job (and roll back), and only reports one after it.
import { spawn } from 'node:child_process';
import type { HookConfig, HookEvent, TopologyFile } from '../config/schema.js';
import { expandPath } from '../config/load.js';
import { parseDuration } from '../throttle/duration.js';

export type { HookEvent } from '../config/schema.js';
export { HOOK_EVENTS } from '../config/schema.js';

export const DEFAULT_HOOK_TIMEOUT_MS = 10_000;
/** the last this many characters of a failing executable's stderr go into the report */
const STDERR_TAIL = 500;

/** The document every hook receives (and the fields its EZCTL_* variables repeat). */
export interface HookDocument {
  version: 1;
  event: HookEvent;
  /** ISO time and ms since the epoch, at this host */
  at: string;
  atMs: number;
  host: string;
  pid: number;
  job: { id: string; kind: string; cluster?: string; params: unknown; resumed: boolean };
  ponr: { step: string | null; passed: boolean };
  /** step-done, before-ponr, after-ponr: the step */
  step?: { name: string; index: number; outcome: string; durationMs: number; detail?: Record<string, unknown> };
  /** success, failure, rollback-done: how the job ended */
  outcome?: string;
  error?: { step?: string; message: string; hint?: string };
  /** success, failure, rollback-done: the steps so far */
  timeline?: unknown[];
}

export interface HookSpec {
  /** for reports: the executable's path or the URL */
  label: string;
  run?: string;
  args?: string[];
  url?: string;
  /** absent: every event */
  events?: HookEvent[];
  timeoutMs: number;
}

export interface HookReport {
  event: HookEvent;
  hook: string;
  ok: boolean;
  ms: number;
  error?: string;
  /** true when this failure stopped the job (before the point of no return) */
  aborted?: boolean;
}

export interface HookRunner {
  /**
   * Run the hooks of doc.event in order. With stopOnFailure (before the point of no return) the
   * first failure ends the event's run: the hooks after it are not called.
   */
  fire(doc: HookDocument, opts: { stopOnFailure: boolean }): Promise<HookReport[]>;
}

/** The hooks of a topology file for a cluster: the global ones first, then the cluster's own. */
export function hooksFromTopology(file: TopologyFile, dir: string, cluster?: string): HookSpec[] {
  const list: HookConfig[] = [...(file.hooks ?? []), ...((cluster !== undefined ? file.clusters[cluster]?.hooks : undefined) ?? [])];
  return list.map((h) => {
    const spec: HookSpec = { label: h.run ?? h.url ?? '', timeoutMs: h.timeout ? parseDuration(h.timeout) : DEFAULT_HOOK_TIMEOUT_MS };
    if (h.run) {
      spec.run = expandPath(h.run, dir);
      spec.label = spec.run;
    }
    if (h.args) spec.args = h.args;
    if (h.url) spec.url = h.url;
    if (h.events) spec.events = h.events;
    return spec;
  });
}

/** The EZCTL_* variables an executable hook sees. */
export function hookEnv(doc: HookDocument): Record<string, string> {
  const env: Record<string, string> = {
    EZCTL_HOOK_EVENT: doc.event,
    EZCTL_JOB_ID: doc.job.id,
    EZCTL_JOB_KIND: doc.job.kind,
    EZCTL_RESUMED: doc.job.resumed ? '1' : '0',
    EZCTL_PONR: doc.ponr.step ?? '',
    EZCTL_PONR_PASSED: doc.ponr.passed ? '1' : '0',
  };
  if (doc.job.cluster !== undefined) env.EZCTL_CLUSTER = doc.job.cluster;
  if (doc.step) env.EZCTL_STEP = doc.step.name;
  if (doc.outcome) env.EZCTL_OUTCOME = doc.outcome;
  if (doc.error) env.EZCTL_ERROR = doc.error.message;
  return env;
}

export function hookRunner(specs: HookSpec[]): HookRunner {
  return {
    async fire(doc, { stopOnFailure }) {
      const out: HookReport[] = [];
      for (const h of specs) {
        if (h.events && !h.events.includes(doc.event)) continue;
        const t0 = Date.now();
        let error: string | undefined;
        try {
          if (h.run) await runExecutable(h, doc);
          else await postUrl(h, doc);
        } catch (e) {
          error = (e as Error).message;
        }
        const r: HookReport = { event: doc.event, hook: h.label, ok: error === undefined, ms: Date.now() - t0 };
        if (error !== undefined) r.error = error;
        out.push(r);
        if (error !== undefined && stopOnFailure) break;
      }
      return out;
    },
  };
}

function runExecutable(h: HookSpec, doc: HookDocument): Promise<void> {
  return new Promise((resolve, reject) => {
    // its own process group, so a timeout ends the hook and anything it started
    const child = spawn(h.run!, h.args ?? [], { env: { ...process.env, ...hookEnv(doc) }, stdio: ['pipe', 'ignore', 'pipe'], detached: true, shell: false });
    let stderr = '';
    let timedOut = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-STDERR_TAIL);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, h.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${h.run}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const tail = stderr.trim() ? `: ${stderr.trim()}` : '';
      if (timedOut) reject(new Error(`${h.run} did not finish within ${h.timeoutMs} ms (killed)${tail}`));
      else if (code !== 0) reject(new Error(`${h.run} exited with ${code ?? signal}${tail}`));
      else resolve();
    });
    // a hook that does not read its stdin is fine
    child.stdin.on('error', () => {});
    child.stdin.end(JSON.stringify(doc) + '\n');
  });
}

async function postUrl(h: HookSpec, doc: HookDocument): Promise<void> {
  let res: Response;
  try {
    res = await fetch(h.url!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc), signal: AbortSignal.timeout(h.timeoutMs) });
  } catch (e) {
    const err = e as Error;
    if (err.name === 'TimeoutError') throw new Error(`POST ${h.url} got no answer within ${h.timeoutMs} ms`);
    const cause = (err.cause as Error | undefined)?.message;
    throw new Error(`POST ${h.url} failed: ${cause ?? err.message}`);
  }
  // read the body so the connection is released
  const body = (await res.text().catch(() => '')).slice(0, STDERR_TAIL).trim();
  if (!res.ok) throw new Error(`POST ${h.url} answered ${res.status}${body ? `: ${body}` : ''}`);
}
