// MHA 0.58 (Debian's mha4mysql-manager/-node) driven against the sandbox, for the EMHA benchmark.
//
// Everything here is bench-only and lives in the bench's temporary folder; no system file is
// touched:
//  - MHA 0.58 on Perl >= 5.22 dies parsing MariaDB's version string ("10.11.19-MariaDB-0+deb12u1"
//    has six numbers; MHA::NodeUtil::parse_mysql_version hands all of them to a three-field
//    sprintf, and MHA's `use warnings FATAL => 'all'` makes the "Redundant argument in sprintf"
//    warning fatal: an upstream bug). A copy of that one module with the two parsers taking only
//    the first three (two) numbers goes first on PERL5LIB.
//  - The MHA config is the one `ezctl emha mha-config` writes for the zone; the bench's copy
//    replaces its init_conf_load_script (which runs `ezctl emha mha-secrets`, a Node start-up of
//    about 0.45 s here, that would count in MHA's command time) by a `cat` of a mode-0600 file,
//    and adds the master_ip_online_change_script below.
//  - The master_ip_online_change_script (MHA calls it with --command=stop before it locks the old
//    master, --command=start before it sets read_only=0 on the new one): `stop`/`stopssh` set
//    read_only=1 on the old master (the application user is then refused), `start` moves the
//    zone's HAProxy write route to the new master through its runtime API, the same request
//    ezctl's routing target sends (disable and shut the sessions of the old slot, enable the new
//    one), so both tools move the same proxy. It uses socat when installed, else a node one-liner.
//    MHA passes the MySQL passwords to it in argv (MHA's design); the script ignores them.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { readDefaultsFile } from '../src/core/config/defaults-file.js';
import { EZCTL } from '../test/helpers/cli.js';

export interface MhaRig {
  dir: string;
  /** the MHA config the bench runs with */
  conf: string;
  env: NodeJS.ProcessEnv;
  /** what was done to make MHA run here, for the report */
  notes: string[];
  /** the change script's trace file */
  trace: string;
}

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** Why MHA cannot be run here, or undefined. */
export function mhaMissing(): string | undefined {
  const need = ['masterha_master_switch', 'masterha_check_repl', 'perl', 'mariadb'].filter((c) => !have(c));
  if (need.length) return `missing ${need.join(', ')} (scripts/ensure-bench-peers.sh installs mha4mysql-manager and mha4mysql-node as root)`;
  return undefined;
}

/** The system's MHA/NodeUtil.pm, rewritten so that its version parsers take only the numbers they format. */
export function fixedNodeUtil(): { text: string; from: string; fixed: boolean } {
  const r = spawnSync('perl', ['-MMHA::NodeUtil', '-e', 'print $INC{"MHA/NodeUtil.pm"}'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`perl cannot load MHA::NodeUtil: ${r.stderr.trim()}`);
  const from = r.stdout.trim();
  const orig = readFileSync(from, 'utf8');
  let n = 0;
  const text = orig.replace(/sprintf\(\s*'((?:%03d)+)',\s*\$str\s*=~\s*m\/\(\\d\+\)\/g\s*\)/g, (_m, fmt: string) => {
    n++;
    const fields = fmt.length / 4;
    return `sprintf( '${fmt}', map { defined $_ ? $_ : 0 } ( $str =~ m/(\\d+)/g )[ 0 .. ${fields - 1} ] )`;
  });
  return { text, from, fixed: n > 0 };
}

const CHANGE_SCRIPT = (o: { cnf: string; admin: string; slots: Array<{ port: number; name: string }>; trace: string }) => `#!/bin/bash
# master_ip_online_change_script for the EMHA benchmark (bench-only, written by bench/emha.ts).
# stop|stopssh: read_only=1 on the old master. start: the zone's HAProxy write route moves to the
# new master (the old slot disabled and its sessions shut, the new one enabled, in one request).
# Lean on purpose (builtins only, one process per command: a process start costs 15-40 ms on the
# loaded 2-core bench machine, and this runs inside MHA's write-unavailable window).
cmd=; op=; np=
for a in "$@"; do
  case "$a" in
    --command=*) cmd=\${a#*=} ;;
    --orig_master_port=*) op=\${a#*=} ;;
    --new_master_port=*) np=\${a#*=} ;;
  esac
done
slot() {
  REPLY=
  case "$1" in
${o.slots.map((x) => `    ${x.port}) REPLY=${x.name} ;;`).join('\n')}
  esac
}
# when each command began and ended (µs since the epoch, a bash builtin), for the bench's breakdown
mark() { echo "$cmd $1 \${EPOCHREALTIME/./}" >> '${o.trace}'; }
mark begin
trap 'mark end' EXIT
case "$cmd" in
  stop|stopssh)
    mariadb --defaults-file='${o.cnf}' -h 127.0.0.1 -P "$op" -e 'SET GLOBAL read_only = 1' ;;
  start)
    slot "$op"; o=$REPLY; slot "$np"; n=$REPLY
    [[ -n $o && -n $n ]] || { echo "no proxy slot for port $op or $np" >&2; exit 1; }
    req="disable server write/$o; shutdown sessions server write/$o; enable server write/$n"
    if command -v socat >/dev/null 2>&1; then
      out=$(socat - UNIX-CONNECT:'${o.admin}' <<< "$req")
    else
      out=$(node -e 'const c=require("net").createConnection(process.argv[1]);let o="";c.on("data",d=>o+=d);c.on("close",()=>process.stdout.write(o));c.end(process.argv[2]+"\\n")' '${o.admin}' "$req")
    fi
    # the runtime API answers nothing on success
    [[ -z \${out//[[:space:]]/} ]] || { echo "haproxy: $out" >&2; exit 1; } ;;
  *) exit 0 ;;
esac
`;

/**
 * Set up MHA for one zone of the sandbox in `dir`: the fixed module, the config (from
 * `ezctl emha mha-config`), the secrets file and the change script.
 */
export function setupMha(o: {
  dir: string;
  topology: string;
  sandboxDir: string;
  cluster: string;
  zone: string;
  admin: string;
  /** port → proxy slot (node name) */
  slots: Array<{ port: number; name: string }>;
}): MhaRig {
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const notes: string[] = [];
  const perl5 = join(o.dir, 'perl5');
  mkdirSync(join(perl5, 'MHA'), { recursive: true });
  const nu = fixedNodeUtil();
  writeFileSync(join(perl5, 'MHA', 'NodeUtil.pm'), nu.text);
  notes.push(nu.fixed
    ? `MHA::NodeUtil from ${nu.from} with its version parsers fixed, first on PERL5LIB (${perl5})`
    : `MHA::NodeUtil at ${nu.from} has no version parser to fix (already fixed upstream?)`);

  // the config ezctl writes for the zone
  const mhaDir = join(o.dir, 'ezctl-mha');
  const r = spawnSync(process.execPath, [EZCTL, '--config', o.topology, 'emha', 'mha-config', '--cluster', o.cluster, '--out', mhaDir, '--repl-user', 'repl'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ezctl emha mha-config failed (exit ${r.status}): ${r.stderr}`);
  const generated = readFileSync(join(mhaDir, `${o.cluster}-${o.zone}.cnf`), 'utf8');

  // passwords: a mode-0600 file, printed by a bench-only init_conf_load_script
  const admin = readDefaultsFile(join(o.sandboxDir, 'client.cnf')).password!;
  // the replication user's password: repl.cnf (older sandboxes: .repl)
  const repl = existsSync(join(o.sandboxDir, 'repl.cnf'))
    ? readDefaultsFile(join(o.sandboxDir, 'repl.cnf')).password!
    : readFileSync(join(o.sandboxDir, '.repl'), 'utf8').trim();
  for (const p of [admin, repl]) if (/[=\n'"\\$`]/.test(p)) throw new Error('a sandbox password holds a character MHA cannot take from init_conf_load_script');
  const pw = join(o.dir, 'mha.secrets');
  writeFileSync(pw, `password=${admin}\nrepl_password=${repl}\n`, { mode: 0o600 });
  const load = join(o.dir, 'mha-load.sh');
  writeFileSync(load, `#!/bin/sh\nexec cat '${pw}'\n`, { mode: 0o700 });

  const change = join(o.dir, 'mha-online-change.sh');
  const trace = join(o.dir, 'change-trace');
  writeFileSync(change, CHANGE_SCRIPT({ cnf: join(o.sandboxDir, 'client.cnf'), admin: o.admin, slots: o.slots, trace }), { mode: 0o700 });
  chmodSync(change, 0o700);

  const conf = join(o.dir, `${o.cluster}-${o.zone}.cnf`);
  let replaced = false;
  const text = generated.replace(/^init_conf_load_script=.*$/m, () => {
    replaced = true;
    return `init_conf_load_script=${load}\nmaster_ip_online_change_script=${change}`;
  });
  if (!replaced) throw new Error(`the config ezctl wrote has no init_conf_load_script line:\n${generated}`);
  writeFileSync(conf, text, { mode: 0o600 });
  notes.push(`config: ezctl emha mha-config's ${o.cluster}-${o.zone}.cnf, init_conf_load_script a cat of a 0600 file, plus master_ip_online_change_script (read_only at stop, HAProxy write route at start)`);

  const env = { ...process.env, PERL5LIB: [perl5, process.env.PERL5LIB].filter(Boolean).join(':') };
  return { dir: o.dir, conf, env, notes, trace };
}

/** The change script's trace: each command's begin and end, wall-clock ms, in order. */
export function readTrace(rig: MhaRig): Array<{ cmd: string; edge: 'begin' | 'end'; at: number }> {
  let text = '';
  try {
    text = readFileSync(rig.trace, 'utf8');
  } catch {
    return [];
  }
  return text.trim().split('\n').filter(Boolean).map((l) => {
    const [cmd, edge, us] = l.split(' ');
    return { cmd: cmd!, edge: edge as 'begin' | 'end', at: Number(us) / 1000 };
  });
}

/** `masterha_master_switch --master_state=alive --orig_master_is_new_slave` to a new master; wall time in ms. */
export function mhaSwitch(rig: MhaRig, to: { host: string; port: number }, log: string): Promise<{ ms: number; code: number | null; tail: string }> {
  const args = [
    '--master_state=alive', `--conf=${rig.conf}`, `--new_master_host=${to.host}`, `--new_master_port=${to.port}`,
    '--orig_master_is_new_slave', '--interactive=0',
  ];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('masterha_master_switch', args, { env: rig.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      writeFileSync(log, out);
      resolve({ ms, code, tail: out.trim().split('\n').slice(-6).join('\n') });
    });
  });
}

/**
 * `masterha_check_repl` with the fixed module: how far it gets. With --skip_check_ssh it still
 * asks every node's MHA version over ssh, so without sshd it stops there.
 */
export function mhaCheckRepl(rig: MhaRig): { code: number | null; ok: boolean; pastVersionParsing: boolean; stoppedAt: string } {
  const r = spawnSync('masterha_check_repl', [`--conf=${rig.conf}`, '--skip_check_ssh'], { env: rig.env, encoding: 'utf8', timeout: 120_000 });
  const out = `${r.stdout}${r.stderr}`;
  writeFileSync(join(rig.dir, 'check_repl.log'), out);
  const first = out.split('\n').find((l) => /\[error\]/.test(l))?.replace(/^.*?\[error\]\[[^\]]*\]/, '').trim() ?? '';
  const ssh = /^ssh: .*$/m.exec(out)?.[0];
  return {
    code: r.status,
    ok: /Health is OK/.test(out),
    // MHA prints the replicas' versions once it has parsed them
    pastVersionParsing: /Version=.*\(oldest major version between slaves\)/.test(out),
    stoppedAt: `${first}${ssh ? ` (${ssh})` : ''}`,
  };
}
