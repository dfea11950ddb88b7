// The plain secondary indexes a copy's target goes without while its rows arrive, built after it
// in one online ALTER: inserting rows into an index costs a copy more than building it sorted once
// (osc's ghost, a D-Bus move's created target tables).
import type { Db } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';

export interface DeferredIndex {
  name: string;
  /** its definition as SHOW CREATE TABLE prints it: KEY `name` (...) ... */
  definition: string;
}

/**
 * The plain (non-unique, not full-text, not spatial) indexes of a SHOW CREATE TABLE text, or none
 * when the table has a full-text or spatial index (the server orders those among the others, and
 * adding them online has its own limits) or a foreign key (an index may be what it needs).
 */
export function deferrableIndexes(createTable: string): DeferredIndex[] {
  const lines = createTable.split('\n').map((l) => l.trim().replace(/,$/, ''));
  if (lines.some((l) => /^(FULLTEXT|SPATIAL) KEY /.test(l) || /^(CONSTRAINT .*)?FOREIGN KEY /.test(l))) return [];
  const out: DeferredIndex[] = [];
  for (const l of lines) {
    const m = /^KEY `((?:[^`]|``)+)` \(/.exec(l);
    if (m) out.push({ name: m[1]!.replace(/``/g, '`'), definition: l });
  }
  return out;
}

/** A table's statements for them: dropped while it is empty, added after the copy, online. */
export function leaveOutIndexesSql(table: string, indexes: DeferredIndex[]): string {
  return `ALTER TABLE ${table} ${indexes.map((ix) => `DROP INDEX ${quoteId(ix.name)}`).join(', ')}`;
}

export function buildIndexesSql(table: string, indexes: DeferredIndex[]): string {
  return `ALTER TABLE ${table} ${indexes.map((ix) => `ADD ${ix.definition}`).join(', ')}, ALGORITHM=INPLACE, LOCK=NONE`;
}

/** Those of the indexes the table lacks now (by name). */
export async function missingIndexes(db: Db, schema: string, table: string, indexes: readonly DeferredIndex[]): Promise<DeferredIndex[]> {
  const have = new Set((await db.query<{ n: string }>(
    'SELECT DISTINCT INDEX_NAME AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [schema, table],
  )).map((r) => r.n));
  return indexes.filter((ix) => !have.has(ix.name));
}

/** Add them in one online ALTER; a killed run's ALTER that finished first (ER_DUP_KEYNAME) is no error. */
export async function addIndexes(db: Db, schema: string, table: string, indexes: readonly DeferredIndex[]): Promise<void> {
  try {
    await db.exec(buildIndexesSql(quoteTable(schema, table), [...indexes]));
  } catch (e) {
    if ((e as { code?: string }).code !== 'ER_DUP_KEYNAME') throw e;
  }
}
