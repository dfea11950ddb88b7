import assert from 'node:assert/strict';
import { EzError } from '../../src/core/exit.js';

/** The EzError thrown by f; fails the test when nothing (or something else) is thrown. */
export function ezErrorOf(f: () => unknown): EzError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof EzError, `expected an EzError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}
