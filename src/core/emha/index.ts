// EMHA's entry: `emha mha-config` (MHA manager configs from the topology, one file per zone) and
// `emha mha-secrets` (what MHA's init_conf_load_script prints: the password, never on disk).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import type { Endpoint } from '../db/connect.js';
import { flavorOf } from '../db/server.js';
import { badInput } from '../exit.js';
import {
  configHeader, ensureDir, maskSecrets, mergeExisting, mhaPasswordProblem, mhaProblems, mhaZonePlan, renderIni, secretsScript, writeIfChanged,
  type MhaNode, type MhaSettings, type WriteStatus,
} from './mha-config.js';

export * from './mha-config.js';

export interface MhaConfigOptions {
  cluster?: string;
  /** write the files here; without it they are printed, nothing is written */
  out?: string;
  sshUser?: string;
  replUser?: string;
  replPasswordEnv?: string;
  remoteWorkdir?: string;
}

export interface MhaFileReport {
  path: string;
  mode: string;
  /** preview: printed, not written (no --out) */
  status: WriteStatus | 'preview';
  /** password values masked */
  content: string;
}

export interface MhaZoneReport {
  zone: string;
  config: MhaFileReport;
  script: MhaFileReport;
  workdir: string;
  servers: Array<{ section: string; node: string; hostname: string; port: number; candidateMaster: boolean; noMaster: boolean }>;
  notes: string[];
  kept: string[];
  dropped: string[];
}

export interface MhaConfigReport {
  cluster: string;
  dir: string;
  written: boolean;
  zones: MhaZoneReport[];
  /** nodes that could not be asked for their binlog folder and replication delay */
  unreachable: Array<{ node: string; error: string }>;
}

/** The one set of credentials MHA will use for a zone: MHA's script gives one password per file. */
async function zoneCredentials(ctx: Ctx, zone: string, nodes: ResolvedNode[]): Promise<{ ep: Endpoint; eps: Endpoint[] }> {
  const eps = await Promise.all(nodes.map((n) => ctx.endpoint(n)));
  const first = eps[0]!;
  const differ = eps.filter((e) => e.user !== first.user || e.passwordSource !== first.passwordSource || e.password !== first.password);
  if (differ.length) {
    throw badInput(`zone ${zone}: its nodes use different credentials, and MHA's init_conf_load_script gives one user and password per file`, {
      details: eps.map((e, i) => `${nodes[i]!.name}: user ${e.user}, password from ${e.passwordSource}`),
      hint: 'give the zone\'s nodes one user and password (cluster- or file-level credentials)',
    });
  }
  return { ep: first, eps };
}

async function probe(ctx: Ctx, n: ResolvedNode): Promise<{ facts: Omit<MhaNode, 'name' | 'role' | 'host' | 'port'>; error?: string }> {
  let db;
  try {
    db = await ctx.connect(n);
    const v = await db.one<{ version: string; log_bin: unknown; basename: string | null }>('SELECT @@version AS version, @@log_bin AS log_bin, @@log_bin_basename AS basename');
    const logBin = v?.log_bin === 1 || v?.log_bin === '1' || v?.log_bin === 1n;
    const rows = await db.query(flavorOf(String(v?.version ?? '')) === 'mariadb' ? 'SHOW ALL SLAVES STATUS' : 'SHOW REPLICA STATUS');
    const sqlDelay = Math.max(0, ...rows.map((r) => Number(r.SQL_Delay ?? 0) || 0));
    const facts: Omit<MhaNode, 'name' | 'role' | 'host' | 'port'> = { probed: true, logBin, sqlDelay };
    if (logBin && v?.basename) facts.binlogDir = String(v.basename).replace(/\/[^/]*$/, '') || '/';
    return { facts };
  } catch (e) {
    return { facts: { probed: false }, error: (e as Error).message };
  } finally {
    await db?.close();
  }
}

export async function mhaConfig(ctx: Ctx, o: MhaConfigOptions): Promise<MhaConfigReport> {
  if (ctx.opts.askPass) throw badInput('--ask-pass cannot serve MHA: it reads the password later, without a terminal, through init_conf_load_script', { hint: 'use credentials.passwordEnv or a defaults file (credentials.defaultsFile or --defaults-file)' });
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster).name;
  const dir = resolve(o.out ?? join(topo.stateDir(), 'mha'));
  const settings: MhaSettings = { dir, topologyPath: topo.path };
  if (o.sshUser !== undefined) settings.sshUser = o.sshUser;
  if (o.replUser !== undefined) settings.replUser = o.replUser;
  if (o.replPasswordEnv !== undefined) settings.replPassword = true;
  if (o.remoteWorkdir !== undefined) settings.remoteWorkdir = o.remoteWorkdir;
  const all = topo.nodes(cluster);
  const unreachable: MhaConfigReport['unreachable'] = [];
  const zones = [];
  // every zone is checked before anything is written
  for (const zone of topo.zonesOf(cluster)) {
    // a fenced node (an old master after a failover) is no part of the zone MHA manages: MHA would
    // check it and could even promote it
    const nodes = all.filter((n) => n.zone === zone && !n.fenced);
    const { ep } = await zoneCredentials(ctx, zone, nodes);
    const pwProblem = ep.password === undefined ? undefined : mhaPasswordProblem(ep.password);
    if (pwProblem) throw badInput(`zone ${zone}: the password of user ${ep.user} (from ${ep.passwordSource}) cannot pass through MHA's init_conf_load_script: ${pwProblem}`);
    const probed = await Promise.all(nodes.map((n) => probe(ctx, n)));
    const mhaNodes: MhaNode[] = nodes.map((n, i) => {
      const p = probed[i]!;
      if (p.error) unreachable.push({ node: n.name, error: p.error });
      return { name: n.name, role: n.role, host: n.host, port: n.port, ...p.facts };
    });
    const mz = { cluster, zone, user: ep.user, nodes: mhaNodes };
    const problems = mhaProblems(mz, settings);
    if (problems.length) throw badInput(`cannot write MHA's configuration of cluster ${cluster}, zone ${zone}`, { details: problems });
    zones.push({ mz, ep, plan: mhaZonePlan(mz, settings) });
  }
  if (o.replPasswordEnv !== undefined) {
    const v = process.env[o.replPasswordEnv];
    if (v === undefined) throw badInput(`environment variable ${o.replPasswordEnv} (named by --repl-password-env) is not set`, { hint: `export it with the replication user's password here and in the environment MHA runs in` });
    const p = mhaPasswordProblem(v);
    if (p) throw badInput(`the replication password in $${o.replPasswordEnv} cannot pass through MHA's init_conf_load_script: ${p}`);
  }
  const defaultsFile = ctx.opts.defaultsFile ? resolve(ctx.opts.defaultsFile) : undefined;
  const report: MhaConfigReport = { cluster, dir, written: o.out !== undefined, zones: [], unreachable };
  if (o.out !== undefined) ensureDir(dir);
  for (const { mz, ep, plan } of zones) {
    const old = existsSync(plan.configPath) ? readFileSync(plan.configPath, 'utf8') : undefined;
    const merged = mergeExisting(plan, old);
    const config = renderIni(configHeader(plan, topo.path), merged.sections);
    const run: Parameters<typeof secretsScript>[1] = { node: process.execPath, ezctl: resolve(process.argv[1] ?? 'ezctl'), topologyPath: topo.path, passwordFrom: ep.password === undefined ? 'nowhere (no password is configured)' : ep.passwordSource };
    if (defaultsFile) run.defaultsFile = defaultsFile;
    if (o.replPasswordEnv) run.replPasswordEnv = o.replPasswordEnv;
    const script = secretsScript(plan, run);
    let scriptStatus: MhaFileReport['status'] = 'preview';
    let configStatus: MhaFileReport['status'] = 'preview';
    if (o.out !== undefined) {
      ensureDir(plan.workdir);
      // the script first: the config names it
      scriptStatus = writeIfChanged(plan.scriptPath, script, 0o700);
      configStatus = writeIfChanged(plan.configPath, config, 0o600);
    }
    const notes = [...plan.notes];
    if (mz.nodes.length < 2) notes.push(`zone ${mz.zone} has no replica: MHA has nothing to promote`);
    report.zones.push({
      zone: mz.zone,
      config: { path: plan.configPath, mode: '0600', status: configStatus, content: maskSecrets(config) },
      script: { path: plan.scriptPath, mode: '0700', status: scriptStatus, content: script },
      workdir: plan.workdir,
      servers: plan.sections.slice(1).map((s, i) => {
        const get = (k: string) => s.keys.find(([x]) => x === k)?.[1];
        const n = mz.nodes[i]!;
        return { section: s.name, node: n.name, hostname: n.host, port: n.port, candidateMaster: get('candidate_master') === '1', noMaster: get('no_master') === '1' };
      }),
      notes,
      kept: merged.kept,
      dropped: merged.dropped,
    });
  }
  return report;
}

export function renderMhaConfig(r: MhaConfigReport): string {
  const out: string[] = [];
  if (!r.written) {
    for (const z of r.zones) {
      for (const f of [z.config, z.script]) out.push(`# ==> ${f.path} (mode ${f.mode}) <==`, f.content);
    }
    out.push(`# printed only: nothing was written (pass --out ${r.dir} to write these files)`);
  } else {
    for (const z of r.zones) for (const f of [z.config, z.script]) out.push(`${f.status.padEnd(9)} ${f.path}`);
  }
  for (const z of r.zones) {
    for (const n of z.notes) out.push(`# ${z.zone}: ${n}`);
    if (z.kept.length) out.push(`# ${z.zone}: kept your keys ${z.kept.join(', ')}`);
    for (const d of z.dropped) out.push(`# ${z.zone}: dropped ${d}`);
  }
  for (const u of r.unreachable) out.push(`# ${u.node} unreachable: ${u.error}`);
  return out.join('\n');
}

export interface MhaSecretsOptions {
  cluster?: string;
  zone: string;
  replPasswordEnv?: string;
}

/** password= (and repl_password=) lines for MHA's init_conf_load_script. */
export async function mhaSecrets(ctx: Ctx, o: MhaSecretsOptions): Promise<string> {
  if (process.stdout.isTTY) throw badInput('emha mha-secrets prints a password: it is meant for MHA\'s init_conf_load_script, not a terminal', { hint: 'MHA runs it through the script `ezctl emha mha-config` writes' });
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster).name;
  const [zone] = topo.zonesChosen(cluster, [o.zone]);
  const { ep } = await zoneCredentials(ctx, zone!, topo.nodes(cluster).filter((n) => n.zone === zone));
  const lines: string[] = [];
  if (ep.password !== undefined) {
    const p = mhaPasswordProblem(ep.password);
    if (p) throw badInput(`the password of user ${ep.user} (from ${ep.passwordSource}) cannot pass through MHA's init_conf_load_script: ${p}`);
    lines.push(`password=${ep.password}`);
  }
  if (o.replPasswordEnv !== undefined) {
    const v = process.env[o.replPasswordEnv];
    if (v === undefined) throw badInput(`environment variable ${o.replPasswordEnv} (named by --repl-password-env) is not set in MHA's environment`);
    const p = mhaPasswordProblem(v);
    if (p) throw badInput(`the replication password in $${o.replPasswordEnv} cannot pass through MHA's init_conf_load_script: ${p}`);
    lines.push(`repl_password=${v}`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}
export * from './takeover.js';
export * from './switch.js';
export { renderSwitch } from './render.js';
// drills run the watch (and its failover) inside them, and rejoin the old master afterwards
export { watch, watchControl, type WatchEvent, type WatchReport } from './watch.js';
export { emhaRejoin, type RejoinReport } from './rejoin.js';
