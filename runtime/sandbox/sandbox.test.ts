import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeBody, encodeFrame, FrameReader } from './wire.ts';
import { capMemory } from '../engine/memory-cap.ts';
import { sandboxCommand } from './process-sandbox.ts';

describe('sandbox wire format', () => {
  test('contract values cross unchanged: bigint, bytes, undefined in lists, nesting', () => {
    const value = { a: 1n << 62n, b: new Uint8Array([0, 1, 255]), c: ['x', undefined, null], d: { e: undefined, f: [{ g: -5n }] } };
    const back = decodeBody(encodeFrame(value).subarray(4)) as typeof value;
    assert.equal(back.a, 1n << 62n);
    assert.deepEqual(back.b, new Uint8Array([0, 1, 255]));
    assert.equal(back.c.length, 3);
    assert.equal(back.c[0], 'x');
    assert.equal(back.c[1], undefined);
    assert.equal(back.c[2], null);
    assert.equal(back.d.e, undefined);
    assert.equal(back.d.f[0]!.g, -5n);
  });

  test('frames are reassembled from any chunking; an oversized one is reported, not buffered', () => {
    const got: unknown[] = [];
    const over: number[] = [];
    const reader = new FrameReader(64, (m) => got.push(m), (n) => over.push(n));
    const bytes = Buffer.concat([encodeFrame({ n: 1 }), encodeFrame({ n: 2 })]);
    for (const b of bytes) reader.push(Buffer.from([b]));
    assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);
    const big = encodeFrame({ big: 'x'.repeat(100) });
    reader.push(big);
    assert.deepEqual(over, [big.length - 4]);
    assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);
  });
});

/** A core module with one exported memory of `min` pages and no maximum. */
function moduleWithMemory(min: number): Uint8Array {
  return new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 0x00, min, 7, 5, 1, 1, 0x6d, 2, 0]);
}

describe('memory cap', () => {
  test('a module may not grow its memory past the cap', () => {
    const capped = capMemory(moduleWithMemory(1), 4 * 65536);
    const memory = (new WebAssembly.Instance(new WebAssembly.Module(capped as Uint8Array<ArrayBuffer>)).exports as { m: WebAssembly.Memory }).m;
    assert.equal(memory.grow(3), 1);
    assert.throws(() => memory.grow(1), RangeError);
    assert.equal(memory.buffer.byteLength, 4 * 65536);
  });

  test('a module whose initial memory is over the cap is refused', () => {
    assert.throws(() => capMemory(moduleWithMemory(10), 4 * 65536), /over the driver's memory cap/);
  });

  test('modules without memory are unchanged', () => {
    const empty = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    assert.deepEqual(capMemory(empty, 65536), empty);
  });
});

describe('sandbox permissions', () => {
  test('the sandbox process cannot read other files, write, open sockets or start processes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmnet-perm-'));
    try {
      const probe = join(dir, 'probe.mjs');
      writeFileSync(
        probe,
        `import fs from 'node:fs'; import net from 'node:net'; import cp from 'node:child_process';
const tries = {
  read: () => fs.readFileSync('/etc/hostname', 'utf8'),
  write: () => fs.writeFileSync(${JSON.stringify(join(dir, 'written'))}, 'x'),
  spawn: () => cp.spawnSync('/bin/true').error ? (() => { throw cp.spawnSync('/bin/true').error })() : 'ran',
  net: () => new Promise((res, rej) => { const s = net.connect(1, '127.0.0.1'); s.on('error', rej); s.on('connect', () => res('connected')); }),
};
const out = {};
for (const [k, f] of Object.entries(tries)) {
  try { await f(); out[k] = 'allowed'; } catch (e) { out[k] = String(e.code ?? e.name ?? e); }
}
console.log(JSON.stringify(out));`,
      );
      const [file, args] = sandboxCommand(dir, 64, probe);
      const r = spawnSync(file, args, { encoding: 'utf8', timeout: 30_000 });
      const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, string>;
      for (const k of ['read', 'write', 'spawn']) assert.notEqual(out[k], 'allowed', `${k}: ${JSON.stringify(out)} ${r.stderr}`);
      // A refused connection (nothing listens on port 1) would also not be 'allowed'; what matters is that no socket was opened by permission.
      assert.notEqual(out.net, 'allowed', JSON.stringify(out));
      assert.match(JSON.stringify(out), /ERR_ACCESS_DENIED|NotCapable|PermissionDenied/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
