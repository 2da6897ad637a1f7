import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStateStore } from './sqlite.ts';
import { StoreLimitError, storeLimits } from './store.ts';

describe('SqliteStateStore', () => {
  test('keeps values across reopen, per driver', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmnet-store-'));
    try {
      const path = join(dir, 'state.db');
      const a = new SqliteStateStore(path);
      a.forDriver('one').set('network/n1', '{"bridge":"br1"}');
      a.forDriver('two').set('network/n1', 'other');
      a.close();
      const b = new SqliteStateStore(path);
      assert.equal(b.forDriver('one').get('network/n1'), '{"bridge":"br1"}');
      assert.equal(b.forDriver('two').get('network/n1'), 'other');
      assert.equal(b.forDriver('three').get('network/n1'), undefined);
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('prefix listing is a literal prefix, ordered', () => {
    const kv = new SqliteStateStore(':memory:').forDriver('d');
    kv.set('endpoint/n1/b', '2');
    kv.set('endpoint/n1/a', '1');
    kv.set('endpoint/n10/c', '3');
    kv.set('endpoint/n_/x', '4');
    assert.deepEqual(kv.entries('endpoint/n1/'), [['endpoint/n1/a', '1'], ['endpoint/n1/b', '2']]);
    assert.deepEqual(kv.entries('endpoint/n_/'), [['endpoint/n_/x', '4']]);
    assert.equal(kv.entries('').length, 4);
  });

  test('delete reports whether the key existed; upsert replaces', () => {
    const kv = new SqliteStateStore(':memory:').forDriver('d');
    kv.set('k', 'v1');
    kv.set('k', 'v2');
    assert.equal(kv.get('k'), 'v2');
    assert.equal(kv.delete('k'), true);
    assert.equal(kv.delete('k'), false);
  });

  test('refuses oversized keys and values and leaves state unchanged', () => {
    const kv = new SqliteStateStore(':memory:').forDriver('d');
    kv.set('k', 'v');
    assert.throws(() => kv.set('x'.repeat(storeLimits.maxKeyBytes + 1), 'v'), StoreLimitError);
    assert.throws(() => kv.set('', 'v'), StoreLimitError);
    assert.throws(() => kv.set('k', 'x'.repeat(storeLimits.maxValueBytes + 1)), StoreLimitError);
    assert.equal(kv.get('k'), 'v');
  });
});
