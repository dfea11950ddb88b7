// Helpers for DRC tests: the real daemon (detached, as an operator runs it), zone comparison
// row by row, and reading a master's binlog to count what each GTID domain wrote.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { show } from './cli.js';
import type { TestSandbox } from './sandbox.js';
import { BinlogStream } from '../../src/core/binlog/stream.js';
import { SourcePosition } from '../../src/core/binlog/position.js';
import { serverInfo } from '../../src/core/db/server.js';
import { parseMariaPos } from '../../src/core/db/gtid.js';
import { quoteId, quoteTable } from '../../src/core/db/quote.js';
import { makeCtx, jsonReplacer } from '../../src/core/context.js';
import { drcStatus as drcStatusOf, drcWait } from '../../src/core/drc/manage.js';
import { EzError } from '../../src/core/exit.js';

/** Run statements on one node, in order, on one connection. */
export async function sqlOn(sb: TestSandbox, node: string, ...stmts: string[]): Promise<void> {
  const db = await sb.db(node);
  try {
    for (const s of stmts) await db.exec(s);
  } finally {
    await db.close();
  }
}

/** Edit the sandbox's topology file (e.g. to add drc rules). */
export function patchTopology(sb: TestSandbox, edit: (doc: ReturnType<typeof parseDocument>) => void): void {
  const doc = parseDocument(readFileSync(sb.config, 'utf8'));
  edit(doc);
  writeFileSync(sb.config, doc.toString());
}

export async function drcStart(sb: TestSandbox, args: string[] = []): Promise<number> {
  const r = await sb.run(['--json', 'drc', 'start', '--detach', ...args]);
  assert.equal(r.code, 0, show(r));
  return r.json().pid as number;
}

/**
 * What `drc status --json` prints, asked in this process: a CLI run costs about half a second of CPU
 * to start (measured: the suite's 60 `drc wait` and 30 `drc status` runs were 50 s of CPU on a
 * 2-core machine); the CLI itself is tested in drc.test.ts.
 */
export async function drcStatus(sb: TestSandbox): Promise<any> {
  return JSON.parse(JSON.stringify(await drcStatusOf(ctxOf(sb), {}), jsonReplacer));
}

function ctxOf(sb: TestSandbox) {
  return makeCtx({ config: sb.config, json: false, verbose: 0, quiet: true, color: false, askPass: false, connectTimeout: 5 });
}

/** Stop the daemon; if it does not answer, kill it by pid (tests must never leave one behind). */
export async function drcStop(sb: TestSandbox, pid?: number): Promise<void> {
  const r = await sb.run(['drc', 'stop']);
  if (r.code !== 0 && pid) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** `drc wait` for every direction, in this process (see drcStatus); on a timeout, fails with DRC's status. */
export async function drcWaitAll(sb: TestSandbox, zones: string[], timeout = '30s'): Promise<void> {
  const timeoutMs = Number(timeout.replace(/s$/, '')) * 1000;
  for (const from of zones) {
    for (const to of zones) {
      if (from === to) continue;
      try {
        await drcWait(ctxOf(sb), { from, to, timeoutMs });
      } catch (e) {
        if (!(e instanceof EzError)) throw e;
        let dirs: string;
        try {
          dirs = JSON.stringify((await drcStatus(sb)).directions.map((d: any) => ({ dir: `${d.from}->${d.to}`, state: d.state, applied: d.appliedPosition, lastError: d.lastError })), null, 1);
        } catch (s) {
          dirs = String(s);
        }
        assert.fail(`drc wait --from ${from} --to ${to}: ${e.message}\n--- drc status:\n${dirs}`);
      }
    }
  }
}

/** Every row of the table on one node, ordered by the primary key. */
export async function tableRows(sb: TestSandbox, node: string, schema: string, table: string): Promise<Record<string, unknown>[]> {
  const db = await sb.db(node);
  try {
    const pk = await db.query<{ c: string }>(
      "SELECT COLUMN_NAME AS c FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
      [schema, table],
    );
    return await db.query(`SELECT * FROM ${quoteTable(schema, table)} ORDER BY ${pk.map((r) => quoteId(r.c)).join(', ')}`);
  } finally {
    await db.close();
  }
}

/** Assert that the tables are identical, row by row, on the given masters. */
export async function assertZonesIdentical(sb: TestSandbox, nodes: string[], tables: Array<[string, string]>): Promise<void> {
  for (const [schema, table] of tables) {
    const [first, ...rest] = await Promise.all(nodes.map((n) => tableRows(sb, n, schema, table)));
    for (const [i, rows] of rest.entries()) {
      if (rows.length !== first!.length) {
        // name the rows one side lacks: a count alone does not say lost, late or doubled
        const key = (r: Record<string, unknown>) => JSON.stringify(Object.values(r)[0]);
        const a = new Map(first!.map((r) => [key(r), r]));
        const b = new Map(rows.map((r) => [key(r), r]));
        const only = (x: Map<string, unknown>, y: Map<string, unknown>) => [...x].filter(([k]) => !y.has(k)).slice(0, 5).map(([, r]) => JSON.stringify(r));
        assert.fail(`${schema}.${table}: ${nodes[0]} has ${first!.length} rows, ${nodes[i + 1]} has ${rows.length}; only at ${nodes[0]}: ${only(a, b).join(' ') || '-'}; only at ${nodes[i + 1]}: ${only(b, a).join(' ') || '-'}`);
      }
      for (let j = 0; j < rows.length; j++) {
        assert.deepEqual(rows[j], first![j], `${schema}.${table} row ${j} differs between ${nodes[0]} (${JSON.stringify(first![j])}) and ${nodes[i + 1]} (${JSON.stringify(rows[j])})`);
      }
    }
  }
}

/**
 * Read a node's binlog from `from` up to its current end and count row changes on one table by
 * GTID domain: which writer (the zone itself, or DRC from another zone) put them there.
 */
export async function rowCountsByDomain(sb: TestSandbox, node: string, from: string, schema: string, table: string): Promise<Map<number, number>> {
  const db = await sb.db(node);
  const info = await serverInfo(db);
  await db.close();
  const end = parseMariaPos(info.gtidBinlogPos);
  const counts = new Map<number, number>();
  const seen = new SourcePosition('mariadb', from);
  const n = sb.node(node);
  // zongji must not be stopped while it is still starting: stop once, after start resolved
  await new Promise<void>((resolve, reject) => {
    const done = () => [...end].every(([d, g]) => seen.seqOf(d) >= g.seq);
    let started = false;
    let stopping = false;
    const finish = () => {
      if (stopping || !started || !done()) return;
      stopping = true;
      void stream.stop().then(resolve);
    };
    const stream: BinlogStream = new BinlogStream({
      endpoint: { label: node, host: n.host, port: n.port, user: 'ezctl', password: sb.adminPassword, passwordSource: 'test' },
      flavor: 'mariadb',
      from,
      serverId: 900_000 + Math.floor(Math.random() * 10_000),
      onTx: (tx) => {
        seen.advance(tx.gtid);
        for (const c of tx.changes) if (c.schema === schema && c.table === table) counts.set(tx.domain!, (counts.get(tx.domain!) ?? 0) + 1);
        setImmediate(finish);
      },
      onError: reject,
    });
    stream.start().then(() => {
      started = true;
      finish();
    }, reject);
  });
  return counts;
}

export async function binlogPos(sb: TestSandbox, node: string): Promise<string> {
  const db = await sb.db(node);
  try {
    return (await serverInfo(db)).gtidBinlogPos;
  } finally {
    await db.close();
  }
}
