// The topology-file editor: commands that change the file (`drc repoint` today; the master and
// Global Zone switches next) rewrite it through its YAML document, so the operator's comments,
// key order and layout survive. The new text must load (YAML and schema, as every command reads
// it) before it replaces the old file, and it replaces it atomically: a reader sees the old file
// or the new one, never a half-written one, and a refused edit leaves the old file byte-identical.
import { closeSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { parseDocument, type Document } from 'yaml';
import { EzError, badInput, refused, runtimeError } from '../exit.js';
import { parseTopology, type Topology } from './load.js';
import { parseConnectionString } from './dsn.js';

export interface TopologyEdit {
  /** the file as it loads after the edit */
  topology: Topology;
  /** false when the edit left the text as it was (nothing was written) */
  changed: boolean;
}

/**
 * Edit the topology file at `path`: `edit` changes its YAML document (doc.setIn and friends);
 * the new text is loaded as every command loads it, and only a file that loads replaces the old
 * one (temp file in the same folder, fsync, rename; the file's mode is kept, a symlink keeps
 * pointing at the edited file). Refused (exit 4, nothing written) when the file changed on disk
 * during the edit; an edit that would not load throws that load's error (its exit code and
 * details), saying nothing was written.
 */
export function editTopologyFile(path: string, edit: (doc: Document) => void): TopologyEdit {
  let target: string;
  let before: string;
  try {
    target = realpathSync(path);
    before = readFileSync(target, 'utf8');
  } catch (e) {
    throw badInput(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const doc = parseDocument(before);
  if (doc.errors.length) parseTopology(before, path); // says where the YAML is broken
  // the document prints some layout its own way (spaces in flow maps): compare like with like
  const untouched = doc.toString();
  edit(doc);
  const text = doc.toString();
  let topology: Topology;
  try {
    topology = parseTopology(text, path);
  } catch (e) {
    if (!(e instanceof EzError)) throw e;
    throw new EzError(e.exitCode, `the edit would leave ${path} unable to load, so it was not written: ${e.message}`, { details: e.details, hint: e.hint ?? `${path} is unchanged` });
  }
  if (text === untouched) return { topology, changed: false };
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = openSync(tmp, 'wx', statSync(target).mode & 0o7777);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // another editor (a second ezctl, an operator) wrote the file meanwhile: theirs stays
    if (readFileSync(target, 'utf8') !== before) {
      throw refused(`${path} changed on disk while this command edited it; nothing was written`, { hint: 'run the command again: it reads the file anew' });
    }
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    if (e instanceof EzError) throw e;
    throw runtimeError(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { hint: `${path} is unchanged` });
  }
  return { topology, changed: true };
}

/**
 * Make host:port the master of a cluster's zone in the document: when it is one of the zone's
 * replicas, the old master takes its place among them (its entry as written, comments and all);
 * otherwise it is a new entry `{host, port}`. The caller checks the server first.
 */
export function setZoneMaster(doc: Document, cluster: string, zone: string, addr: { host: string; port: number }): void {
  const zonePath = ['clusters', cluster, 'zones', zone];
  const replicas = (doc.getIn([...zonePath, 'replicas']) as { items?: unknown[] } | undefined)?.items ?? [];
  const oldNode = doc.getIn([...zonePath, 'master']);
  const idx = replicas.findIndex((r) => {
    const js = (r as { toJSON?: () => unknown }).toJSON?.() ?? r;
    try {
      const n = typeof js === 'string' ? parseConnectionString(js) : (js as { host?: string; port?: number });
      return n.host === addr.host && (n.port ?? 3306) === addr.port;
    } catch {
      return false;
    }
  });
  const newNode = idx >= 0 ? replicas[idx] : doc.createNode({ host: addr.host, port: addr.port });
  if (idx >= 0) doc.setIn([...zonePath, 'replicas', idx], oldNode);
  doc.setIn([...zonePath, 'master'], newNode);
}

/**
 * Add a node (by name) to its zone's `fenced` list: it must never take writes again (an old master
 * after a failover). Idempotent; the caller checks the node is in the zone.
 */
export function fenceNode(doc: Document, cluster: string, zone: string, name: string): void {
  const path = ['clusters', cluster, 'zones', zone, 'fenced'];
  const now = fencedIn(doc, path);
  if (now.includes(name)) return;
  if (doc.hasIn(path)) doc.addIn(path, name);
  else doc.setIn(path, doc.createNode([name], { flow: true }));
}

/** Take a node off its zone's `fenced` list (the key goes when the list is left empty). Idempotent. */
export function unfenceNode(doc: Document, cluster: string, zone: string, name: string): void {
  const path = ['clusters', cluster, 'zones', zone, 'fenced'];
  const now = fencedIn(doc, path);
  const i = now.indexOf(name);
  if (i < 0) return;
  if (now.length === 1) doc.deleteIn(path);
  else doc.deleteIn([...path, i]);
}

function fencedIn(doc: Document, path: string[]): string[] {
  const v = doc.getIn(path) as { toJSON?: () => unknown } | undefined;
  const js = v?.toJSON?.() ?? v;
  return Array.isArray(js) ? js.map(String) : [];
}
