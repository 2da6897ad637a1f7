// The jco engine with the real bridge component and fake host imports: the
// contract's values and errors cross both ways, and a callback that refuses a
// value reaches the driver as err(driver-error) without trapping it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JcoEngine } from './jco.ts';
import { digestOf } from './engine.ts';
import { callbacksImport, InterfaceInfo, NetworkInfo } from '../callbacks.ts';
import { CONTRACT_VERSION as V, DriverCallError, type DriverExports, type DriverImports } from '../contract.ts';
import { driverErrorOf } from '../invoker.ts';

const component = join(dirname(fileURLToPath(import.meta.url)), '../../drivers-wasm/bridge/build/bridge.wasm');

class RefusingInterfaceInfo extends InterfaceInfo {
  override setMacAddress(_mac: string): void {
    throw new DriverCallError('forbidden', 'no MAC for you');
  }
}

if (!existsSync(component)) {
  test('jco engine', { skip: `needs ${component} (npm run build)` }, () => {});
} else {
  describe('jco engine with the bridge component', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmnet-jco-'));
    let exports: DriverExports;
    const kv = new Map<string, string>();
    const made: string[] = [];
    const link = (name: string) => ({ index: 7, name, kind: 'bridge' as const, mtu: 1500, mac: '02:00:00:00:00:01', up: true, master: undefined });

    before(async () => {
      const bytes = readFileSync(component);
      const engine = new JcoEngine(dir, { memoryMaxBytes: 256 * 1024 * 1024 });
      const prepared = await engine.prepare({ bytes, digest: await digestOf(bytes) });
      assert.deepEqual(prepared.imports.sort(), [`wasmnet:driver/callbacks@${V}`, `wasmnet:driver/types@${V}`, `wasmnet:host/log@${V}`, `wasmnet:host/netlink@${V}`, `wasmnet:host/store@${V}`]);
      const imports = {
        [`wasmnet:host/log@${V}`]: { log: () => {} },
        [`wasmnet:host/store@${V}`]: {
          get: (k: string) => kv.get(k),
          set: (k: string, v: string) => void kv.set(k, v),
          delete: (k: string) => kv.delete(k),
          entries: (p: string) => [...kv].filter(([k]) => k.startsWith(p)),
        },
        // The calls the bridge makes here; any other one fails the test.
        [`wasmnet:host/netlink@${V}`]: new Proxy(
          {
            createBridge: (spec: { name: string }) => (made.push(spec.name), link(spec.name)),
            addAddress: () => {},
            setLinkUp: () => {},
            getLink: () => undefined,
            deleteLink: () => {},
          } as Record<string, unknown>,
          { get: (t, k: string) => t[k] ?? (() => assert.fail(`unexpected netlink call ${k}`)) },
        ),
        [`wasmnet:driver/callbacks@${V}`]: callbacksImport,
        [`wasmnet:driver/types@${V}`]: {},
      } as unknown as DriverImports;
      exports = (await engine.instantiate(prepared, imports)).exports;
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const ctx = () => ({ deadlineMs: BigInt(Date.now() + 10_000) });
    const nid = 'a'.repeat(64);

    test('values cross: registration, options, IPAM data, a bridge made through the host', () => {
      assert.deepEqual(exports.registration.describe(), { name: 'wasmnet-bridge', capability: { dataScope: 'local', connectivityScope: 'local' } });
      exports.driver.createNetwork(ctx(), nid, [{ key: 'com.docker.network.generic', value: '{"com.docker.network.bridge.name":"wnjco0"}' }], new NetworkInfo() as never, [{ addressSpace: 'x', pool: '10.9.0.0/24', gateway: '10.9.0.1/24', auxAddresses: [] }], []);
      assert.deepEqual(made, ['wnjco0']);
      assert.ok([...kv.keys()].some((k) => k.startsWith('network/')));
    });

    test("a driver's err(driver-error) reaches the host with its kind", () => {
      try {
        exports.driver.createEndpoint(ctx(), 'f'.repeat(64), 'b'.repeat(64), new InterfaceInfo({ address: '10.9.0.5/24', addressIpv6: '', macAddress: '' }) as never, []);
        assert.fail('expected an error');
      } catch (e) {
        assert.equal(driverErrorOf(e)?.kind, 'not-found');
      }
    });

    test('a callback that refuses a value is an err for the driver, not a trap', () => {
      try {
        exports.driver.createEndpoint(ctx(), nid, 'b'.repeat(64), new RefusingInterfaceInfo({ address: '10.9.0.5/24', addressIpv6: '', macAddress: '' }) as never, []);
        assert.fail('expected an error');
      } catch (e) {
        assert.equal(driverErrorOf(e)?.kind, 'forbidden', String(e));
      }
      // The instance still answers.
      assert.equal(exports.driver.type(), 'wasmnet-bridge');
    });
  });
}
