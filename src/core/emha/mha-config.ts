// MHA manager configuration from the topology: one file per (cluster, zone), since MHA manages one
// master and its replicas, which is a zone of a cluster here. The mapping is a pure function
// (zone facts → sections), the merge keeps the MHA keys a DBA added, and the writer replaces a file
// only when its content changed, atomically. The password never lands in the file: MHA's own
// init_conf_load_script (MHA::Config::read_config runs it and takes its name=value lines) points
// at a small script that asks `ezctl emha mha-secrets` for it at the moment MHA reads the file.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, chmodSync, writeSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** The keys MHA 0.58's reader accepts (MHA::Config @PARAM_ARRAY): any other key makes it croak. */
export const MHA_KEYS: ReadonlySet<string> = new Set(
  'hostname ip port ssh_host ssh_ip ssh_port ssh_connection_timeout ssh_options node_label candidate_master no_master ignore_fail skip_init_ssh_check skip_reset_slave user password repl_user repl_password disable_log_bin master_pid_file handle_raw_binlog ssh_user remote_workdir master_binlog_dir log_level manager_workdir manager_log check_repl_delay check_repl_filter latest_priority multi_tier_slave ping_interval ping_type secondary_check_script master_ip_failover_script master_ip_online_change_script shutdown_script report_script init_conf_load_script client_bindir client_libdir use_gtid_auto_pos'.split(' '),
);

const SECRET_KEYS = new Set(['password', 'repl_password']);

/** What ezctl knows of one node of a zone; facts are undefined when the node could not be asked. */
export interface MhaNode {
  name: string;
  role: 'master' | 'replica';
  host: string;
  port: number;
  /** false when the node could not be reached: no candidate/no_master decision, no binlog dir */
  probed: boolean;
  /** @@log_bin */
  logBin?: boolean;
  /** dirname(@@log_bin_basename) */
  binlogDir?: string;
  /** SQL_Delay of its replication (seconds); 0 or undefined when not delayed */
  sqlDelay?: number;
}

export interface MhaZone {
  cluster: string;
  zone: string;
  /** the MySQL user MHA connects as (ezctl's resolved user for the zone's nodes) */
  user: string;
  /** master first, then replicas in the topology file's order */
  nodes: MhaNode[];
}

export interface MhaSettings {
  /** where the files go (absolute) */
  dir: string;
  /** the topology file they are generated from (named in the header) */
  topologyPath: string;
  sshUser?: string;
  replUser?: string;
  /** the secrets script also gives repl_password */
  replPassword?: boolean;
  /** default /var/tmp/mha-<cluster>-<zone> */
  remoteWorkdir?: string;
}

export type Section = { name: string; keys: Array<[string, string]> };

export interface MhaFilePlan {
  cluster: string;
  zone: string;
  /** <dir>/<cluster>-<zone>.cnf */
  configPath: string;
  /** <dir>/<cluster>-<zone>.secrets: MHA's init_conf_load_script */
  scriptPath: string;
  /** manager_workdir */
  workdir: string;
  sections: Section[];
  /** keys this run owns: replaced on every run, never kept from the old file */
  owned: { default: string[]; server: string[] };
  /** why a node is or is not a candidate, for the report */
  notes: string[];
}

// A path MHA hands to a shell (init_conf_load_script runs in backticks) or strips of whitespace
// (master_binlog_dir): quoting cannot help, since MHA strips a leading and trailing quote itself.
const SHELL_SAFE = /^[A-Za-z0-9_.\/@%+=:,-]+$/;

export function zoneFileBase(cluster: string, zone: string): string {
  return `${cluster}-${zone}`;
}

/** Problems that make a zone's file unusable by MHA, one line each (empty when none). */
export function mhaProblems(zone: MhaZone, settings: MhaSettings): string[] {
  const out: string[] = [];
  const script = join(settings.dir, `${zoneFileBase(zone.cluster, zone.zone)}.secrets`);
  if (!SHELL_SAFE.test(script)) out.push(`${script}: MHA runs init_conf_load_script through a shell without quotes; choose --out and names of letters, digits and _ . / - only`);
  for (const n of zone.nodes) {
    if (/\s|;/.test(n.host)) out.push(`${n.name}: host ${JSON.stringify(n.host)} cannot be written in an MHA file`);
    if (n.binlogDir !== undefined && /\s|,/.test(n.binlogDir)) out.push(`${n.name}: binlog directory ${JSON.stringify(n.binlogDir)} has whitespace or a comma, which MHA's master_binlog_dir strips or splits`);
  }
  return out;
}

/** The pure mapping: one zone of a cluster → MHA's [server default] and one [serverN] per node. */
export function mhaZonePlan(zone: MhaZone, settings: MhaSettings): MhaFilePlan {
  const base = zoneFileBase(zone.cluster, zone.zone);
  const configPath = join(settings.dir, `${base}.cnf`);
  const scriptPath = join(settings.dir, `${base}.secrets`);
  const workdir = join(settings.dir, base);
  const def: Array<[string, string]> = [
    ['user', zone.user],
    ['init_conf_load_script', scriptPath],
    ['manager_workdir', workdir],
    ['manager_log', join(workdir, 'manager.log')],
    ['remote_workdir', settings.remoteWorkdir ?? `/var/tmp/mha-${base}`],
  ];
  const ownedDefault = ['user', 'password', 'init_conf_load_script', 'manager_workdir', 'manager_log', 'remote_workdir'];
  if (settings.sshUser !== undefined) {
    def.push(['ssh_user', settings.sshUser]);
    ownedDefault.push('ssh_user');
  }
  if (settings.replUser !== undefined) {
    def.push(['repl_user', settings.replUser]);
    ownedDefault.push('repl_user');
  }
  if (settings.replPassword) ownedDefault.push('repl_password');
  const sections: Section[] = [{ name: 'server default', keys: def }];
  const notes: string[] = [];
  zone.nodes.forEach((n, i) => {
    const keys: Array<[string, string]> = [
      ['hostname', n.host],
      ['port', String(n.port)],
    ];
    if (n.binlogDir) keys.push(['master_binlog_dir', n.binlogDir]);
    if (!n.probed) notes.push(`${n.name}: not reached, so neither candidate_master nor no_master (MHA decides)`);
    else if (n.logBin === false) {
      keys.push(['no_master', '1']);
      notes.push(`${n.name}: no_master (binary log off: it cannot serve replicas)`);
    } else if (n.sqlDelay && n.sqlDelay > 0) {
      keys.push(['no_master', '1']);
      notes.push(`${n.name}: no_master (a delayed replica: MASTER_DELAY ${n.sqlDelay} s)`);
    } else keys.push(['candidate_master', '1']);
    sections.push({ name: `server${i + 1}`, keys });
  });
  return {
    cluster: zone.cluster,
    zone: zone.zone,
    configPath,
    scriptPath,
    workdir,
    sections,
    owned: { default: ownedDefault, server: ['hostname', 'port', 'candidate_master', 'no_master', 'master_binlog_dir'] },
    notes,
  };
}

/** An ini file read the way MHA's Config::Tiny reads it: comments and blank lines skipped, last key wins. */
export function parseIni(text: string): Section[] {
  const out: Section[] = [];
  let cur: Section | undefined;
  for (let line of text.split(/\r\n|\r|\n/)) {
    if (/^\s*(#|;|$)/.test(line)) continue;
    line = line.replace(/\s;\s.+$/, '');
    const sec = /^\s*\[\s*(.+?)\s*\]\s*$/.exec(line);
    if (sec) {
      cur = out.find((s) => s.name === sec[1]);
      if (!cur) out.push((cur = { name: sec[1]!, keys: [] }));
      continue;
    }
    const kv = /^\s*([^=]+?)\s*=\s*(.*?)\s*$/.exec(line);
    if (!kv) continue;
    if (!cur) out.push((cur = { name: '_', keys: [] }));
    const i = cur.keys.findIndex(([k]) => k === kv[1]);
    if (i >= 0) cur.keys.splice(i, 1);
    cur.keys.push([kv[1]!, kv[2]!]);
  }
  return out;
}

export interface Merged {
  sections: Section[];
  /** "[server default] ping_interval", "[server2] ignore_fail" */
  kept: string[];
  /** what was in the old file and is not in the new one, with why */
  dropped: string[];
}

/**
 * The generated sections with the MHA keys a DBA added to the old file: in [server default], and in
 * the [serverN] of the same hostname and port (numbers shift when nodes come and go); [binlogN]
 * sections (MHA's binlog servers) are kept whole. Keys ezctl owns are never kept; keys MHA does
 * not accept are dropped (MHA would refuse the file), and so is a server no longer in the zone.
 */
export function mergeExisting(plan: MhaFilePlan, oldText: string | undefined): Merged {
  const sections = plan.sections.map((s) => ({ name: s.name, keys: [...s.keys] }));
  const kept: string[] = [];
  const dropped: string[] = [];
  if (oldText === undefined) return { sections, kept, dropped };
  const byAddress = new Map<string, Section>();
  for (const s of sections) {
    if (s.name === 'server default') continue;
    const get = (k: string) => s.keys.find(([x]) => x === k)?.[1];
    byAddress.set(`${get('hostname')}:${get('port')}`, s);
  }
  const oldDefault = parseIni(oldText).find((s) => s.name === 'server default');
  const oldDefaultPort = oldDefault?.keys.find(([k]) => k === 'port')?.[1] ?? '3306';
  for (const old of parseIni(oldText)) {
    if (old.name === '_') {
      dropped.push(`${old.keys.map(([k]) => k).join(', ')} (before any [section]: MHA refuses such keys)`);
      continue;
    }
    let target: Section | undefined;
    let owned: string[] = [];
    if (old.name === 'server default') {
      target = sections[0]!;
      owned = plan.owned.default;
    } else if (/^server\S+/.test(old.name)) {
      const host = old.keys.find(([k]) => k === 'hostname')?.[1];
      const port = old.keys.find(([k]) => k === 'port')?.[1] ?? oldDefaultPort;
      target = byAddress.get(`${host}:${port}`);
      owned = plan.owned.server;
      const extra = old.keys.filter(([k]) => !owned.includes(k));
      if (!target) {
        dropped.push(`[${old.name}] ${host}:${port} (no longer in the zone)${extra.length ? `, with ${extra.map(([k]) => k).join(', ')}` : ''}`);
        continue;
      }
    } else if (/^binlog\S+/.test(old.name)) {
      const keys = old.keys.filter(([k]) => MHA_KEYS.has(k));
      for (const [k] of old.keys) if (!MHA_KEYS.has(k)) dropped.push(`[${old.name}] ${k} (not a key MHA accepts)`);
      sections.push({ name: old.name, keys });
      kept.push(`[${old.name}]`);
      continue;
    } else {
      dropped.push(`[${old.name}] (MHA accepts only [server default], [server...] and [binlog...])`);
      continue;
    }
    for (const [k, v] of old.keys) {
      if (owned.includes(k)) {
        if (SECRET_KEYS.has(k)) dropped.push(`[${old.name}] ${k} (init_conf_load_script gives it)`);
        else {
          const now = target.keys.find(([x]) => x === k)?.[1];
          if (now !== undefined && now !== v) dropped.push(`[${old.name}] ${k}=${v} (ezctl writes ${now})`);
        }
        continue;
      }
      if (!MHA_KEYS.has(k)) {
        dropped.push(`[${old.name}] ${k} (not a key MHA accepts)`);
        continue;
      }
      target.keys.push([k, v]);
      kept.push(`[${target.name}] ${k}`);
    }
  }
  return { sections, kept, dropped };
}

export function renderIni(header: string[], sections: Section[]): string {
  const out = header.map((l) => `# ${l}`.trimEnd());
  for (const s of sections) {
    out.push('', `[${s.name}]`);
    for (const [k, v] of s.keys) out.push(`${k}=${v}`);
  }
  return out.join('\n') + '\n';
}

export function configHeader(plan: MhaFilePlan, topologyPath: string): string[] {
  return [
    `MHA manager configuration of cluster ${plan.cluster}, zone ${plan.zone}, generated by`,
    `\`ezctl emha mha-config\` from ${topologyPath}.`,
    'A rerun replaces the keys ezctl writes (hostname, port, candidate_master, no_master,',
    'master_binlog_dir, user, init_conf_load_script, manager_workdir, manager_log, remote_workdir,',
    'and ssh_user, repl_user when given). Any other MHA key you add is kept: in [server default],',
    'or in the [serverN] of the same hostname and port. Comments are not kept.',
    `No password here: MHA gets it from ${plan.scriptPath} (init_conf_load_script).`,
  ];
}

/** Values of password keys shown as ***: for --json and printed previews. */
export function maskSecrets(text: string): string {
  return text.replace(/^(\s*(?:repl_)?password\s*=\s*).+$/gm, '$1***');
}

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The init_conf_load_script: a shell script that runs `ezctl emha mha-secrets` (no secret inside). */
export function secretsScript(plan: MhaFilePlan, run: { node: string; ezctl: string; topologyPath: string; defaultsFile?: string; replPasswordEnv?: string; passwordFrom: string }): string {
  const args = [run.node, run.ezctl, '--config', run.topologyPath];
  if (run.defaultsFile) args.push('--defaults-file', run.defaultsFile);
  args.push('emha', 'mha-secrets', '--cluster', plan.cluster, '--zone', plan.zone);
  if (run.replPasswordEnv) args.push('--repl-password-env', run.replPasswordEnv);
  return [
    '#!/bin/sh',
    `# MHA's init_conf_load_script for ${plan.configPath}, written by \`ezctl emha mha-config\`.`,
    '# MHA runs it when it reads the file and takes its name=value lines (password=, repl_password=),',
    `# so no password is written to disk. The password comes from ${run.passwordFrom},`,
    `# read when MHA runs this${run.replPasswordEnv ? `; repl_password from $${run.replPasswordEnv}` : ''}.`,
    `exec ${args.map(sq).join(' ')}`,
    '',
  ].join('\n');
}

/**
 * A password as MHA's init_conf_load_script reader takes it (split on '=', a trailing quote
 * stripped, one line): undefined when it survives, else why not.
 */
export function mhaPasswordProblem(password: string): string | undefined {
  if (/[\r\n]/.test(password)) return 'it has a line break (MHA reads the script line by line)';
  if (password.includes('=')) return "it has '=' (MHA splits the script's lines on every '=' and keeps the part before the second)";
  if (/['"]$/.test(password)) return 'it ends with a quote (MHA strips a trailing quote from every value)';
  return undefined;
}

export type WriteStatus = 'created' | 'updated' | 'unchanged';

/**
 * Replace a file only when its content changed: written to a temporary file in the same folder,
 * flushed, then renamed over the old one (a reader sees the old file or the new, never half of
 * one). The mode is set before the content is written; an unchanged file gets its mode corrected.
 */
export function writeIfChanged(path: string, content: string, mode: number): WriteStatus {
  let old: string | undefined;
  try {
    old = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (old === content) {
    if ((statSync(path).mode & 0o777) !== mode) chmodSync(path, mode);
    return 'unchanged';
  }
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  chmodSync(tmp, mode); // the umask may have narrowed or (never) widened it
  renameSync(tmp, path);
  try {
    const dfd = openSync(dirname(path), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    /* a folder that cannot be opened for fsync: the rename is still atomic */
  }
  return old === undefined ? 'created' : 'updated';
}

export function ensureDir(path: string): void {
  if (!existsSync(path)) mkdirSync(path, { recursive: true, mode: 0o700 });
}
