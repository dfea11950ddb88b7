// DRC's contract with every other tool, part 4: writing so that DRC does not carry a write back.
//
// DRC applies zone Z's writes in another zone under Z's GTID domain + the offset, and the
// replicator of a zone forwards only that zone's own domain: a write logged under
// (origin's domain + offset) reads, to every DRC direction, as DRC's apply of the origin's write,
// and travels nowhere. Who the origin is, is the caller's choice:
//   - DRC's applier: the direction's source zone;
//   - DRC's heartbeat writer creating `_ezctl`: the zone itself;
//   - `ezctl repair`: the winning zone (the repaired row reads as the winner's write applied by DRC);
//   - `ezctl migrate drc-ts`: the zone whose values are copied (or the peer zone for a NULL fill).
// MariaDB only: MySQL has no session domain (undefined everywhere below: nothing to set; DRC
// recognises its own writes there by other means).
import type { Db } from '../db/connect.js';
import { badInput } from '../exit.js';

/** gtid_domain_id is a 32-bit unsigned integer */
const MAX_DOMAIN = 0xffff_ffff;

function checked(what: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_DOMAIN) throw badInput(`${what} ${n} is not a GTID domain (an integer from 0 to ${MAX_DOMAIN})`, { hint: 'check drc.drcDomainOffset and the zone masters\' gtid_domain_id' });
  return n;
}

/**
 * The domain DRC logs its apply of a write from the zone whose domain is `originDomain` under
 * (undefined when the origin is not MariaDB).
 */
export function drcDomainFor(originDomain: number | undefined, offset: number): number | undefined {
  if (originDomain === undefined) return undefined;
  return checked('GTID domain', checked('gtid_domain_id', originDomain) + checked('DRC domain offset', offset));
}

/** From now on this session's writes are logged under `domain` (from drcDomainFor): DRC does not carry them. */
export async function writeAsDrc(db: Db, domain: number | undefined): Promise<void> {
  if (domain === undefined) return;
  await db.exec('SET SESSION gtid_domain_id = ?', [checked('GTID domain', domain)]);
}

/** From now on this session's writes are the zone's own again: DRC carries them to the other zones. */
export async function writeAsZone(db: Db): Promise<void> {
  await db.exec(OWN_DOMAIN_SQL);
}

/**
 * `fn`'s writes under `domain` (unreplicated by DRC), then the session's own domain again. When fn
 * fails, its error is thrown (switching back is tried); when fn succeeds and switching back fails,
 * that error is thrown: the session's later writes would otherwise silently stay unreplicated.
 */
export async function withDrcWrites<T>(db: Db, domain: number | undefined, fn: () => Promise<T>): Promise<T> {
  if (domain === undefined) return fn();
  await writeAsDrc(db, domain);
  let out: T;
  try {
    out = await fn();
  } catch (e) {
    await writeAsZone(db).catch(() => undefined);
    throw e;
  }
  await writeAsZone(db);
  return out;
}

/** The statement writeAsDrc runs, as text for a plan printed to be run by hand (no `;`). */
export function writeAsDrcSql(domain: number): string {
  return `SET SESSION gtid_domain_id = ${checked('GTID domain', domain)}`;
}

/** The statement writeAsZone runs (no `;`). */
export const OWN_DOMAIN_SQL = 'SET SESSION gtid_domain_id = @@GLOBAL.gtid_domain_id';
