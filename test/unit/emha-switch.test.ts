// emha switch's candidate rules, pure: what makes a replica unfit to take over, one line each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { candidateProblems, type NodeFacts } from '../../src/core/emha/switch.js';
import type { NodeReplState } from '../../src/core/db/replication.js';
import type { ResolvedNode } from '../../src/core/config/load.js';
import type { ReplicaStatus } from '../../src/core/db/server.js';

const node = (name: string, port: number, role: 'master' | 'replica' = 'replica'): ResolvedNode => ({ cluster: 'demo', zone: 'bj', role, name, host: '127.0.0.1', port, credentials: {}, baseDir: '/' });

const MASTER: NodeFacts = {
  node: node('bj-master', 3306, 'master'),
  state: {
    label: 'bj-master', flavor: 'mariadb', serverId: 101, domainId: 1, readOnly: false, logBin: true, logSlaveUpdates: true, binlogFormat: 'ROW',
    gtidBinlogPos: '1-101-50,1002-101-20', gtidCurrentPos: '1-101-50,1002-101-20', gtidSlavePos: '', replica: null, delaySeconds: 0,
  },
};

function replicaStatus(o: Partial<ReplicaStatus> = {}): ReplicaStatus {
  return { channel: '', sourceHost: '127.0.0.1', sourcePort: 3306, ioState: 'Yes', sqlState: 'Yes', lagSeconds: 0, usingGtid: 'Slave_Pos', retrievedGtid: '', executedGtid: '', lastIoError: '', lastSqlError: '', ...o };
}

function replica(o: Partial<NodeReplState> = {}, r: Partial<ReplicaStatus> = {}): NodeFacts {
  return {
    node: node('bj-replica1', 3307),
    state: {
      label: 'bj-replica1', flavor: 'mariadb', serverId: 102, domainId: 1, readOnly: true, logBin: true, logSlaveUpdates: true, binlogFormat: 'ROW',
      gtidBinlogPos: '1-101-50,1002-101-20', gtidCurrentPos: '1-101-50,1002-101-20', gtidSlavePos: '1-101-50,1002-101-20', replica: replicaStatus(r), delaySeconds: 0, ...o,
    },
  };
}

test('a healthy replica of the master, caught up: no problem', () => {
  assert.deepEqual(candidateProblems(replica(), MASTER, 1000), { problems: [], errant: [] });
});

test('each reason a replica cannot take over is one line naming it', () => {
  const one = (f: NodeFacts, re: RegExp, maxLag = 1000) => {
    const p = candidateProblems(f, MASTER, maxLag).problems;
    assert.equal(p.length, 1, JSON.stringify(p));
    assert.match(p[0]!, re);
  };
  one(replica({}, { sqlState: 'No', lastSqlError: 'Duplicate entry' }), /bj-replica1's replication is broken: IO Yes, SQL No; SQL error: Duplicate entry/);
  one(replica({}, { sourcePort: 4000 }), /replicates from 127\.0\.0\.1:4000, not from the master bj-master/);
  one(replica({ replica: null }), /replicates from nobody/);
  one(replica({}, { lagSeconds: 3 }), /lags 3 s behind the master, more than --max-lag 1s/);
  one(replica({ delaySeconds: 3600 }), /delayed replica \(MASTER_DELAY 3600 s\)/);
  one(replica({ domainId: 2 }), /gtid_domain_id is 2, the master's 1/);
  one(replica({ logSlaveUpdates: false }), /log_slave_updates OFF/);
  one(replica({ logBin: false }), /no binary log/);
  one(replica({ binlogFormat: 'MIXED' }), /binlog_format is MIXED, not ROW/);
  const e = candidateProblems(replica({ gtidBinlogPos: '1-101-50,1002-101-20,77-102-3', gtidCurrentPos: '1-101-50,1002-101-20,77-102-3' }), MASTER, 1000);
  assert.equal(e.problems.length, 1, JSON.stringify(e));
  assert.match(e.problems[0]!, /has 3 errant GTIDs .*77-102-1\.\.3/);
  assert.deepEqual(e.errant, ['77-102-1..3']);
  one({ node: node('bj-replica2', 3308), error: 'connect ECONNREFUSED' }, /bj-replica2 cannot be reached: connect ECONNREFUSED/);
});
