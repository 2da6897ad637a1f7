import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readComponent } from './component.ts';

const BRIDGE = fileURLToPath(new URL('../drivers-wasm/bridge/build/bridge.wasm', import.meta.url));
const unbuilt = existsSync(BRIDGE) ? false : 'needs the built bridge driver (npm run build)';

test('readComponent hashes the bytes it hands back and reads the world, on a worker thread', { skip: unbuilt }, async () => {
  const file = readFileSync(BRIDGE);
  const expected = 'sha256:' + createHash('sha256').update(file).digest('hex');
  const first = await readComponent(new Uint8Array(file));
  assert.equal(first.digest, expected);
  assert.deepEqual(Buffer.from(first.bytes), file, 'the bytes come back whole');
  assert.ok(first.imports.includes('wasmnet:host/netlink@0.1.0'), first.imports.join(', '));
  assert.ok(first.exports.some((e) => e.startsWith('wasmnet:driver/driver@')), first.exports.join(', '));
  // A second read (from a Buffer slice of a larger one) finds the same digest and world.
  const padded = Buffer.concat([Buffer.from('xx'), file]).subarray(2);
  const again = await readComponent(padded);
  assert.equal(again.digest, expected);
  assert.deepEqual({ i: again.imports, e: again.exports }, { i: first.imports, e: first.exports });
});

test('readComponent refuses what is not a component, and says so', async () => {
  await assert.rejects(readComponent(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])), /not a WebAssembly component: a core module/);
  await assert.rejects(readComponent(new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 0xff])), /not a WebAssembly component/);
  await assert.rejects(readComponent(new TextEncoder().encode('hello')), /not a WebAssembly component/);
});
