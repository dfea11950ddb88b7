// The topology-file editor: comments survive an edit, an edit that would not load is refused and
// leaves the old file byte-identical, the new file replaces the old one whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ezErrorOf } from '../helpers/errors.js';
import { editTopologyFile, setZoneMaster } from '../../src/core/config/editor.js';
import { loadTopology } from '../../src/core/config/load.js';
import { ExitCode } from '../../src/core/exit.js';

const TEXT = `# the production topology: ask the DBA team before editing
zones: [bj, sh]
clusters:
  orders:
    zones:
      bj:
        master: {host: 10.0.0.1, port: 3306} # rack 4
        replicas:
          - {host: 10.0.0.2, port: 3306} # the promotable one
      sh:
        master: {host: 10.1.0.1, port: 3307}
`;

function withFile(fn: (path: string, dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-editor-'));
  try {
    const path = join(dir, 'ezctl.yaml');
    writeFileSync(path, TEXT, { mode: 0o640 });
    chmodSync(path, 0o640);
    fn(path, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('an edit keeps the comments, and the file loads with the change', () => {
  withFile((path, dir) => {
    const r = editTopologyFile(path, (doc) => setZoneMaster(doc, 'orders', 'bj', { host: '10.0.0.2', port: 3306 }));
    assert.equal(r.changed, true);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^# the production topology: ask the DBA team before editing$/m);
    assert.match(text, /# the promotable one/);
    assert.match(text, /# rack 4/);
    const topo = loadTopology(path);
    assert.equal(topo.master('orders', 'bj').host, '10.0.0.2');
    assert.deepEqual(topo.nodes('orders').filter((n) => n.zone === 'bj' && n.role !== 'master').map((n) => n.host), ['10.0.0.1'], 'the old master takes the promoted replica\'s place');
    assert.equal(r.topology.master('orders', 'bj').host, '10.0.0.2');
    assert.equal(statSync(path).mode & 0o777, 0o640, 'the file\'s mode is kept');
    assert.deepEqual(readdirSync(dir), ['ezctl.yaml'], 'no temp file is left');
  });
});

test('an edit that would not load is refused and the old file stays byte-identical', () => {
  withFile((path, dir) => {
    const e = ezErrorOf(() => editTopologyFile(path, (doc) => doc.setIn(['clusters', 'orders', 'zones', 'bj', 'master', 'port'], 'not-a-port')));
    assert.equal(e.exitCode, ExitCode.badInput);
    assert.match(e.message, /would leave .*ezctl\.yaml unable to load, so it was not written/);
    assert.ok(e.details.some((d) => /port/.test(d)), e.details.join('\n'));
    assert.equal(readFileSync(path, 'utf8'), TEXT);
    assert.deepEqual(readdirSync(dir), ['ezctl.yaml']);
    // a zone the file does not declare
    ezErrorOf(() => editTopologyFile(path, (doc) => setZoneMaster(doc, 'orders', 'gz', { host: '10.2.0.1', port: 3306 })));
    assert.equal(readFileSync(path, 'utf8'), TEXT);
  });
});

test('a file changed on disk during the edit is not overwritten (exit 4)', () => {
  withFile((path) => {
    const theirs = TEXT.replace('10.1.0.1', '10.1.0.9');
    const e = ezErrorOf(() => editTopologyFile(path, (doc) => {
      writeFileSync(path, theirs); // another editor wins the race
      setZoneMaster(doc, 'orders', 'bj', { host: '10.0.0.2', port: 3306 });
    }));
    assert.equal(e.exitCode, ExitCode.refused);
    assert.match(e.message, /changed on disk while this command edited it; nothing was written/);
    assert.equal(readFileSync(path, 'utf8'), theirs);
  });
});

test('a symlinked topology file is edited where it lives; the link stays a link', () => {
  withFile((path, dir) => {
    const link = join(dir, 'link.yaml');
    symlinkSync(path, link);
    editTopologyFile(link, (doc) => setZoneMaster(doc, 'orders', 'sh', { host: '10.1.0.2', port: 3307 }));
    assert.ok(statSync(link).isFile());
    assert.equal(loadTopology(path).master('orders', 'sh').host, '10.1.0.2');
    assert.equal(readdirSync(dir).sort().join(','), 'ezctl.yaml,link.yaml');
  });
});

test('an edit that changes nothing writes nothing', () => {
  withFile((path) => {
    const before = statSync(path).mtimeMs;
    const r = editTopologyFile(path, () => undefined);
    assert.equal(r.changed, false);
    assert.equal(statSync(path).mtimeMs, before);
  });
});
