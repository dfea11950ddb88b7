// The ledger of a drill: the reference workload's ack log (one line per write whose COMMIT
// returned OK) against the rows of every zone afterwards. An acknowledged write is lost when a
// zone does not show it (the inserted row missing, the row holding an older acknowledged token
// than the last update of it, a deleted row back), and applied twice when its token is in more
// than one row (an insert committed twice: a retry of a write that had committed).
import { readFileSync, existsSync } from 'node:fs';

export interface AckLine {
  zone: string;
  from: string;
  table: string;
  key: { id: number | null };
  op: 'insert' | 'update' | 'delete';
  token: string;
  at: string;
}

/** What a zone must show for one row after the drill, from the acknowledged writes to it in order. */
export type Expected =
  /** the row exists with this token (its last acknowledged insert or update) */
  | { state: 'present'; token: string; op: 'insert' | 'update'; at: string; landed: string }
  /** the row was deleted last */
  | { state: 'absent'; at: string; landed: string }
  /** an update of a row the drill did not insert (it may have been deleted before): absent, or present with this token */
  | { state: 'if-present'; token: string; at: string; landed: string }
  /**
   * written in more than one zone (a conflict DRC resolves by last writer wins on the DRC
   * timestamp): any of the tokens, the same in every zone (check full says whether they agree);
   * lastToken is the write acknowledged last in real time
   */
  | { state: 'conflict'; tokens: Record<string, string /* landing zone */>; lastToken: string; at: string; landed: string };

export function readAckLog(path: string): AckLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as AckLine);
}

const keyOf = (a: Pick<AckLine, 'table' | 'key'>) => `${a.table}#${a.key.id}`;

/** The state each row written by the drill must have in every zone. */
export function expectations(acks: readonly AckLine[]): Map<string, Expected> {
  const out = new Map<string, Expected>();
  const ordered = acks.filter((a) => a.key?.id !== null && a.key?.id !== undefined).map((a, i) => ({ a, i })).sort((x, y) => (x.a.at < y.a.at ? -1 : x.a.at > y.a.at ? 1 : x.i - y.i));
  for (const { a } of ordered) {
    const k = keyOf(a);
    const prev = out.get(k);
    if (prev?.state === 'conflict' || (prev && prev.landed !== a.zone && a.op !== 'insert')) {
      const tokens = prev.state === 'conflict' ? prev.tokens : 'token' in prev ? { [prev.token]: prev.landed } : {};
      if (a.op !== 'delete') tokens[a.token] = a.zone;
      out.set(k, { state: 'conflict', tokens, lastToken: a.op === 'delete' ? '' : a.token, at: a.at, landed: a.zone });
      continue;
    }
    if (a.op === 'insert') out.set(k, { state: 'present', token: a.token, op: 'insert', at: a.at, landed: a.zone });
    else if (a.op === 'delete') out.set(k, { state: 'absent', at: a.at, landed: a.zone });
    else if (prev?.state === 'absent') continue; // an update of a deleted row changes nothing
    else if (prev?.state === 'present') out.set(k, { state: 'present', token: a.token, op: 'update', at: a.at, landed: a.zone });
    else out.set(k, { state: 'if-present', token: a.token, at: a.at, landed: a.zone });
  }
  return out;
}

/** A row as a zone has it: the token it carries (orders.note; users.email up to its '@'), or absent. */
export type ZoneRows = Map<string /* key */, string | null /* token, null: absent */>;

export interface LedgerFinding { key: string; zone: string; expected: string; found: string; landed: string; at: string }

/** Lost acknowledged writes: per zone, each row whose state is not the one the ledger expects. */
export function lostWrites(expected: ReadonlyMap<string, Expected>, zones: ReadonlyMap<string, ZoneRows>): LedgerFinding[] {
  const out: LedgerFinding[] = [];
  for (const [zone, rows] of zones) {
    for (const [key, e] of expected) {
      const found = rows.has(key) ? rows.get(key)! : null;
      const show = (t: string | null) => (t === null ? 'absent' : `token ${t}`);
      if (e.state === 'present' && found !== e.token) out.push({ key, zone, expected: `token ${e.token} (${e.op})`, found: show(found), landed: e.landed, at: e.at });
      else if (e.state === 'absent' && found !== null) out.push({ key, zone, expected: 'absent (deleted)', found: show(found), landed: e.landed, at: e.at });
      else if (e.state === 'if-present' && found !== null && found !== e.token) out.push({ key, zone, expected: `token ${e.token} (update)`, found: show(found), landed: e.landed, at: e.at });
      else if (e.state === 'conflict' && found !== null && !(found in e.tokens)) out.push({ key, zone, expected: `one of ${Object.keys(e.tokens).join(', ')} (a conflict)`, found: show(found), landed: e.landed, at: e.at });
    }
  }
  return out;
}

/** The token of a users.email the workload wrote (`<token>@<zone>.example.com`). */
export function tokenOfEmail(email: string | null): string | null {
  if (email === null) return null;
  const at = email.indexOf('@');
  return at > 0 ? email.slice(0, at) : email;
}

export interface ConflictOutcome { key: string; winner: Record<string /* zone */, string | null /* the landing zone of the token it holds */>; lastWriter: string; sameEverywhere: boolean; lastWriterWon: boolean }

/** Rows written in several zones: which zone's write each zone kept, and whether it was the one acknowledged last. */
export function conflictOutcomes(expected: ReadonlyMap<string, Expected>, zones: ReadonlyMap<string, ZoneRows>): ConflictOutcome[] {
  const out: ConflictOutcome[] = [];
  for (const [key, e] of expected) {
    if (e.state !== 'conflict') continue;
    const winner: Record<string, string | null> = {};
    for (const [zone, rows] of zones) {
      const t = rows.get(key) ?? null;
      winner[zone] = t === null ? null : (e.tokens[t] ?? '?');
    }
    const vals = Object.values(winner);
    const lastWriter = e.lastToken ? e.tokens[e.lastToken]! : e.landed;
    out.push({ key, winner, lastWriter, sameEverywhere: vals.every((v) => v === vals[0]), lastWriterWon: vals.every((v) => v === lastWriter || (v === null && !e.lastToken)) });
  }
  return out;
}
