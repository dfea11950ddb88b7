// The ledger of a drill: the reference workload's ack log (one line per write whose COMMIT
// returned OK) against the rows of every zone afterwards. An acknowledged write is lost when a
// zone does not show it (an inserted row missing, a row holding a token that is not among its last
// writes), and applied twice when its token is in more than one row (an insert committed twice: a
// retry of a write that had committed).
//
// "Its last writes": the write acknowledged last, and every write that may have committed after
// it: one of the same zone whose span (from its slot to its COMMIT: `at - ms`) overlaps the last
// one's (a pool of connections commits in any order), and one landing in another zone within the
// conflict window (DRC had not carried either to the other zone yet: a conflict, resolved by
// last writer wins on the DRC timestamp, the same in every zone).
import { readFileSync, existsSync } from 'node:fs';

export interface AckLine {
  zone: string;
  from: string;
  table: string;
  key: { id: number | null };
  op: 'insert' | 'update' | 'delete';
  token: string;
  at: string;
  /** from the write's slot to its COMMIT */
  ms?: number;
}

/** What a zone must show for one row after the drill. */
export interface Expected {
  /** the tokens a zone may hold (the last writes), with the zone each landed in */
  tokens: Record<string, string>;
  /** the token of the write acknowledged last (null: it was a delete) */
  lastToken: string | null;
  /** the row may be absent: deleted, or a loaded row the drill only updated (an earlier run may have deleted it) */
  absentOk: boolean;
  /** the last writes landed in more than one zone */
  conflict: boolean;
  op: AckLine['op'];
  at: string;
  landed: string;
}

export function readAckLog(path: string): AckLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as AckLine);
}

const keyOf = (a: Pick<AckLine, 'table' | 'key'>) => `${a.table}#${a.key.id}`;

/** The state each row written by the drill must have in every zone; conflictMs: how long a write may stay unseen by another zone (DRC's lag, bounded below). */
export function expectations(acks: readonly AckLine[], o: { conflictMs?: number } = {}): Map<string, Expected> {
  const conflictMs = o.conflictMs ?? 1000;
  const byKey = new Map<string, Array<AckLine & { end: number; start: number }>>();
  for (const a of acks) {
    if (a.key?.id === null || a.key?.id === undefined) continue;
    const end = Date.parse(a.at);
    const list = byKey.get(keyOf(a)) ?? [];
    list.push({ ...a, end, start: end - (a.ms ?? 0) });
    byKey.set(keyOf(a), list);
  }
  const out = new Map<string, Expected>();
  for (const [key, list] of byKey) {
    list.sort((x, y) => x.end - y.end);
    const last = list.at(-1)!;
    const candidates = list.filter((w) => w === last || (w.zone === last.zone ? w.end >= last.start : w.end >= last.end - conflictMs));
    const tokens: Record<string, string> = {};
    for (const w of candidates) if (w.op !== 'delete') tokens[w.token] = w.zone;
    const inserted = list.some((w) => w.op === 'insert');
    out.set(key, {
      tokens,
      lastToken: last.op === 'delete' ? null : last.token,
      absentOk: list.some((w) => w.op === 'delete') || !inserted,
      conflict: new Set(candidates.map((w) => w.zone)).size > 1,
      op: last.op, at: last.at, landed: last.zone,
    });
  }
  return out;
}

/** A row as a zone has it: the token it carries (orders.note; users.email up to its '@'), or absent. */
export type ZoneRows = Map<string /* key */, string | null /* token, null: absent */>;

export interface LedgerFinding { key: string; zone: string; expected: string; found: string; landed: string; at: string }

/** Lost acknowledged writes: per zone, each row whose state is not one the ledger allows. */
export function lostWrites(expected: ReadonlyMap<string, Expected>, zones: ReadonlyMap<string, ZoneRows>): LedgerFinding[] {
  const out: LedgerFinding[] = [];
  for (const [zone, rows] of zones) {
    for (const [key, e] of expected) {
      const found = rows.has(key) ? rows.get(key)! : null;
      const ok = found === null ? e.absentOk : found in e.tokens;
      if (ok) continue;
      const allowed = Object.keys(e.tokens);
      const want = [allowed.length ? `token ${allowed.join(' or ')}` : '', e.absentOk || !allowed.length ? 'absent' : ''].filter(Boolean).join(', or ');
      out.push({ key, zone, expected: `${want} (last: ${e.op})`, found: found === null ? 'absent' : `token ${found}`, landed: e.landed, at: e.at });
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

/** Rows whose last writes landed in several zones: which zone's write each zone kept, and whether it was the one acknowledged last. */
export function conflictOutcomes(expected: ReadonlyMap<string, Expected>, zones: ReadonlyMap<string, ZoneRows>): ConflictOutcome[] {
  const out: ConflictOutcome[] = [];
  for (const [key, e] of expected) {
    if (!e.conflict) continue;
    const winner: Record<string, string | null> = {};
    const held: Array<string | null> = [];
    for (const [zone, rows] of zones) {
      const t = rows.get(key) ?? null;
      held.push(t);
      winner[zone] = t === null ? null : (e.tokens[t] ?? '?');
    }
    out.push({ key, winner, lastWriter: e.landed, sameEverywhere: held.every((t) => t === held[0]), lastWriterWon: held.every((t) => t === e.lastToken) });
  }
  return out;
}
