// The DRC ledger: writers that insert numbered rows into each zone's master and keep the ids the
// server acknowledged, and the check that every acknowledged row is in every zone exactly once (a
// trigger on each master counts the inserts it applied: one fire per row, or a row went in twice).
import assert from 'node:assert/strict';
import type { TestSandbox } from './sandbox.js';
import { assertZonesIdentical, patchTopology, sqlOn } from './drc.js';
import type { Db } from '../../src/core/db/connect.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The ledger table, its audit table and the counting trigger on each master; DRC told to leave the audit table alone. */
export async function createLedger(sb: TestSandbox, masters: string[]): Promise<void> {
  for (const m of masters) {
    await sqlOn(sb, m,
      'CREATE TABLE ezdemo.ledger (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, zone VARCHAR(8) NOT NULL, n INT NOT NULL, drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))',
      'CREATE DATABASE ezaudit',
      'CREATE TABLE ezaudit.fires (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, ledger_id BIGINT NOT NULL, KEY (ledger_id))',
      'CREATE TRIGGER ezdemo.ledger_fires BEFORE INSERT ON ezdemo.ledger FOR EACH ROW INSERT INTO ezaudit.fires (ledger_id) VALUES (NEW.id)',
    );
  }
  patchTopology(sb, (doc) => doc.setIn(['clusters', 'demo', 'drc'], doc.createNode({ exclude: ['ezaudit.*'] })));
}

/** Inserts ledger rows into a zone's current master until stopped; keeps the acknowledged ids. */
export class LedgerWriter {
  /** every writer ever started, so after() can stop those a failed test left running */
  static all: LedgerWriter[] = [];
  acked: number[] = [];
  errors = 0;
  private stop = false;
  private done: Promise<void> | undefined;
  private static next = 0;
  private readonly base = ++LedgerWriter.next * 1_000_000_000;
  /** master(): the zone's master now (a test may move it) */
  constructor(readonly sb: TestSandbox, readonly zone: string, readonly master: () => string) {}
  start(): void {
    LedgerWriter.all.push(this);
    this.stop = false;
    this.done = (async () => {
      let db: Db | undefined;
      let n = 0;
      while (!this.stop) {
        try {
          db ??= await this.sb.db(this.master());
          const id = this.base + ++n;
          await db.exec('INSERT INTO ezdemo.ledger (id, zone, n) VALUES (?, ?, ?)', [id, this.zone, n]);
          this.acked.push(id);
        } catch {
          this.errors++;
          await db?.close().catch(() => undefined);
          db = undefined;
          await sleep(100);
        }
        await sleep(4);
      }
      await db?.close().catch(() => undefined);
    })();
  }
  async halt(): Promise<void> {
    this.stop = true;
    await this.done;
  }
  static async haltAll(): Promise<void> {
    await Promise.all(LedgerWriter.all.map((w) => w.halt()));
  }
}

async function ledgerIds(sb: TestSandbox, node: string): Promise<Set<number>> {
  const db = await sb.db(node);
  try {
    return new Set((await db.query<{ id: string }>('SELECT id FROM ezdemo.ledger')).map((r) => Number(r.id)));
  } finally {
    await db.close();
  }
}

/** Each acknowledged ledger row is in every master, inserted exactly once (the trigger fired once per row); the zones' tables identical. */
export async function assertAppliedOnce(sb: TestSandbox, masters: string[], writers: LedgerWriter[], tables: Array<[string, string]> = [['ezdemo', 'ledger'], ['ezdemo', 'orders'], ['ezdemo', 'users']]): Promise<void> {
  const acked = writers.flatMap((w) => w.acked);
  const missingBy: Record<string, number[]> = {};
  for (const node of masters) {
    const ids = await ledgerIds(sb, node);
    missingBy[node] = acked.filter((id) => !ids.has(id));
  }
  assert.ok(Object.values(missingBy).every((m) => m.length === 0), `acknowledged ledger rows missing: ${JSON.stringify(missingBy)}`);
  for (const node of masters) {
    const db = await sb.db(node);
    try {
      const twice = await db.query('SELECT ledger_id, COUNT(*) AS c FROM ezaudit.fires GROUP BY ledger_id HAVING c <> 1 LIMIT 10');
      assert.deepEqual(twice, [], `${node}: ledger rows whose insert was applied more or less than once`);
      const counts = (await db.one<any>('SELECT (SELECT COUNT(*) FROM ezaudit.fires) AS f, (SELECT COUNT(*) FROM ezdemo.ledger) AS l'))!;
      assert.equal(counts.f, counts.l, `${node}: one trigger fire per ledger row`);
    } finally {
      await db.close();
    }
  }
  await assertZonesIdentical(sb, masters, tables);
}
