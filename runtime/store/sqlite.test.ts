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

describe('store budgets', () => {
  test('a driver cannot hold more than its byte quota, and deletes give the room back', () => {
    const kv = new SqliteStateStore(':memory:').forDriver('d');
    const big = 'x'.repeat(storeLimits.maxValueBytes - 16);
    let n = 0;
    assert.throws(() => {
      for (;;) kv.set(`k${n++}`, big);
    }, /would hold over/);
    assert.ok(n > 100 && kv.get(`k${n - 1}`) === undefined, 'the write over the quota was refused and left nothing');
    kv.delete('k0');
    kv.set('k0', big);
    assert.throws(() => kv.set('extra', big), /would hold over/);
  });

  test('entries stops at its byte budget instead of reading the whole store', () => {
    const kv = new SqliteStateStore(':memory:').forDriver('d');
    const value = 'v'.repeat(100 * 1024);
    for (let i = 0; i < Math.ceil(storeLimits.maxEntriesBytes / value.length) + 2; i++) kv.set(`big/${String(i).padStart(4, '0')}`, value);
    kv.set('small/a', '1');
    assert.throws(() => kv.entries('big/'), /ask with a narrower prefix/);
    assert.throws(() => kv.entries(''), /ask with a narrower prefix/);
    assert.deepEqual(kv.entries('small/'), [['small/a', '1']]);
  });
});
