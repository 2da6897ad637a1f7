// The wasmtime engine with the real bridge component and fake host imports
// (log, store, netlink) plus the real callback classes, and with a tiny
// hand-written component (WAT, made into a component at run time) for the
// deadline and the memory cap, which the bridge cannot be made to exceed.
// Run with either runtime:
//   node_modules/.bin/node --test runtime/engine/wasmtime/
//   node_modules/.bin/deno test --no-check -A runtime/engine/wasmtime/
// Needs the addon (node runtime/engine/wasmtime/build.ts) and the bridge
// component (node drivers-wasm/build.ts); without them it fails and says so.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callbacksImport, InterfaceInfo, JoinInfo, NetworkInfo } from '../../callbacks.ts';
import { DriverCallError, witError, type DriverImports } from '../../contract.ts';
import { toDriverCallError } from '../../driver-host.ts';
import { digestOf } from '../engine.ts';
import { addonBuildCommand, addonPath, ComponentError, WasmEngineError, WasmtimeEngine, type WasmtimeInstance, type WasmtimePrepared } from './index.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const bridgeWasm = join(root, 'drivers-wasm/bridge/build/bridge.wasm');
const V = '0.1.0';

const missing = !existsSync(addonPath)
  ? `the wasmtime engine's addon is not built (${addonPath}): run \`${addonBuildCommand}\``
  : !existsSync(bridgeWasm)
    ? `the bridge component is not built (${bridgeWasm}): run \`node drivers-wasm/build.ts\``
    : undefined;

// --- fake host imports -------------------------------------------------------

interface FakeLink {
  index: number;
  name: string;
  kind: string;
  mtu: number;
  mac: string;
  up: boolean;
  master?: string;
  peer?: string;
  addresses: string[];
}

const kernel = (code: number, name: string, message: string) => witError({ tag: 'kernel', val: { code, name, message } });

function fakeHost() {
  const calls: unknown[][] = [];
  const logs: { level: string; message: string }[] = [];
  const kv = new Map<string, string>();
  const links = new Map<string, FakeLink>();
  const failures = new Map<string, unknown>();
  let next = 10;
  const track = (op: string, ...args: unknown[]) => {
    calls.push([op, ...args]);
    const f = failures.get(op);
    if (f !== undefined) {
      failures.delete(op);
      throw f;
    }
  };
  const must = (name: string) => {
    const l = links.get(name);
    if (!l) throw kernel(19, 'ENODEV', 'No such device');
    return l;
  };
  const add = (name: string, kind: string, mtu?: number, mac?: string): FakeLink => {
    if (links.has(name)) throw kernel(17, 'EEXIST', 'File exists');
    const l: FakeLink = { index: next++, name, kind, mtu: mtu ?? 1500, mac: mac ?? '', up: false, addresses: [] };
    links.set(name, l);
    return l;
  };
  const view = (l: FakeLink) => ({ index: l.index, name: l.name, kind: l.kind, mtu: l.mtu, mac: l.mac, up: l.up, master: l.master });
  const denied = (op: string) => () => {
    track(op);
    throw witError({ tag: 'denied', val: `${op} is not offered by this fake` });
  };
  const netlink: Record<string, (...args: never[]) => unknown> = {
    createBridge(spec: { name: string; mtu?: number; mac?: string }) {
      track('createBridge', spec);
      return view(add(spec.name, 'bridge', spec.mtu, spec.mac));
    },
    createVeth(spec: { name: string; peerName: string; mtu?: number; peerMac?: string }) {
      track('createVeth', spec);
      if (links.has(spec.peerName)) throw kernel(17, 'EEXIST', 'File exists');
      const a = add(spec.name, 'veth', spec.mtu);
      const b = add(spec.peerName, 'veth', spec.mtu, spec.peerMac);
      a.peer = b.name;
      b.peer = a.name;
      return view(a);
    },
    getLink(name: string) {
      track('getLink', name);
      const l = links.get(name);
      return l ? view(l) : undefined;
    },
    listLinks() {
      track('listLinks');
      return [...links.values()].map(view);
    },
    setLinkUp(name: string, up: boolean) {
      track('setLinkUp', name, up);
      must(name).up = up;
    },
    setLinkMtu(name: string, mtu: number) {
      track('setLinkMtu', name, mtu);
      must(name).mtu = mtu;
    },
    setLinkMaster(name: string, master: string | undefined) {
      track('setLinkMaster', name, master);
      if (master !== undefined) must(master);
      must(name).master = master;
    },
    deleteLink(name: string) {
      track('deleteLink', name);
      const l = must(name);
      links.delete(name);
      if (l.peer) links.delete(l.peer);
    },
    addAddress(name: string, cidr: string) {
      track('addAddress', name, cidr);
      must(name).addresses.push(cidr);
    },
    deleteAddress(name: string, cidr: string) {
      track('deleteAddress', name, cidr);
      const l = must(name);
      l.addresses = l.addresses.filter((a) => a !== cidr);
    },
    listAddresses(name: string) {
      track('listAddresses', name);
      return [...must(name).addresses];
    },
  };
  // The rest of the netlink interface (the component may import an older, smaller one).
  for (const op of ['createDummy', 'createVxlan', 'createMacvlan', 'createIpvlan', 'setLinkMac', 'renameLink', 'moveLinkToSandbox', 'setBridgePort', 'addRoute', 'deleteRoute', 'listRoutes', 'addNeighbor', 'deleteNeighbor', 'listNeighbors', 'addFdbEntry', 'deleteFdbEntry', 'listFdbEntries']) {
    netlink[op] = denied(op);
  }
  const store = {
    get: (key: string) => {
      track('store.get', key);
      return kv.get(key);
    },
    set: (key: string, value: string) => {
      track('store.set', key);
      kv.set(key, value);
    },
    delete: (key: string) => {
      track('store.delete', key);
      return kv.delete(key);
    },
    entries: (prefix: string) => {
      track('store.entries', prefix);
      return [...kv.entries()].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    },
  };
  const imports = {
    [`wasmnet:host/log@${V}`]: { log: (level: string, message: string) => void logs.push({ level, message }) },
    [`wasmnet:host/store@${V}`]: store,
    [`wasmnet:host/netlink@${V}`]: netlink,
    [`wasmnet:driver/callbacks@${V}`]: callbacksImport,
    [`wasmnet:driver/types@${V}`]: {},
  };
  const ops = () => calls.map((c) => c[0] as string).filter((op) => !op.startsWith('store.'));
  return { imports: imports as unknown as DriverImports, calls, ops, logs, kv, links, failures, store };
}

const ctx = () => ({ deadlineMs: BigInt(Date.now() + 10_000) });
const nid = 'a'.repeat(64);
const eid = 'b'.repeat(64);
const netOptions = (generic: Record<string, string>) => [{ key: 'com.docker.network.generic', value: JSON.stringify(generic) }];
const ipv4 = [{ addressSpace: 'LocalDefault', pool: '10.9.0.0/24', gateway: '10.9.0.1/24', auxAddresses: [] as [string, string][] }];

/** The err(driver-error) an export threw. */
function driverError(f: () => unknown): { kind: string; message: string } {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ComponentError, `expected a ComponentError, got ${String(e)}`);
    return e.payload as { kind: string; message: string };
  }
  assert.fail('expected the call to fail');
}

// --- a tiny component for the limits ------------------------------------------

const limitsWit = `package test:limits@0.1.0;
interface run {
  spin: func();
  grow: func(pages: u32) -> u32;
  add: func(a: u32, b: u32) -> u32;
  oob: func() -> u32;
  recurse: func(n: u32) -> u32;
}
world limits {
  export run;
}
`;

const limitsWat = `(module
  (memory (export "memory") 1)
  (func (export "test:limits/run@0.1.0#spin")
    (loop $l (br $l)))
  (func (export "test:limits/run@0.1.0#grow") (param $n i32) (result i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (drop (memory.grow (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (memory.size))
  (func (export "test:limits/run@0.1.0#add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  (func (export "test:limits/run@0.1.0#oob") (result i32)
    (i32.load (i32.const 0xfffffff0)))
  (func $recurse (export "test:limits/run@0.1.0#recurse") (param i32) (result i32)
    (i32.add (i32.const 1) (call $recurse (local.get 0)))))
`;

async function limitsComponent(): Promise<Uint8Array> {
  const { parse, componentEmbed, componentNew } = await import('@bytecodealliance/jco-transpile/wasm-tools');
  const core = await parse(limitsWat);
  const embedded = await componentEmbed({ binary: core, witSource: limitsWit, world: 'limits' });
  return componentNew(embedded);
}

interface LimitsExports {
  run: { spin(): void; grow(pages: number): number; add(a: number, b: number): number; oob(): number; recurse(n: number): number };
}

// --- tests ---------------------------------------------------------------------

if (missing) {
  test('wasmtime engine', () => {
    assert.fail(missing);
  });
} else {
  describe('wasmtime engine with the bridge component', () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'wasmnet-wasmtime-'));
    let bytes: Uint8Array;
    let digest: string;
    let engine: WasmtimeEngine;
    let prepared: WasmtimePrepared;

    before(async () => {
      bytes = await readFile(bridgeWasm);
      digest = await digestOf(bytes);
      engine = new WasmtimeEngine(cacheDir);
    });

    after(() => rmSync(cacheDir, { recursive: true, force: true }));

    test('prepare compiles the component and reads its versioned world', async (t) => {
      const started = performance.now();
      prepared = (await engine.prepare({ bytes, digest })) as WasmtimePrepared;
      t.diagnostic(`compile: ${(performance.now() - started).toFixed(0)} ms`);
      assert.equal(prepared.origin, 'compiled');
      assert.deepEqual(engine.stats, { compiled: 1, loadedFromCache: 0 });
      assert.ok(existsSync(prepared.cacheFile), 'the precompiled artifact was written');
      for (const i of ['wasmnet:host/log', 'wasmnet:host/store', 'wasmnet:host/netlink', 'wasmnet:driver/callbacks']) {
        assert.ok(prepared.imports.includes(`${i}@${V}`), `imports ${i}: ${prepared.imports.join(', ')}`);
      }
      assert.deepEqual([...prepared.exports].sort(), [`wasmnet:driver/driver@${V}`, `wasmnet:driver/ext-conner@${V}`, `wasmnet:driver/registration@${V}`]);
      assert.ok(!prepared.imports.some((i) => i.startsWith('wasi:')), 'no WASI');
      // The same digest again is the same preparation.
      assert.equal(await engine.prepare({ bytes, digest }), prepared);
    });

    test('create-network → create-endpoint → join → leave → delete-endpoint → delete-network', async () => {
      const host = fakeHost();
      const instance = (await engine.instantiate(prepared, host.imports)) as WasmtimeInstance;
      const { driver, registration, extConner } = instance.exports;
      assert.ok(extConner, 'ext-conner is exported');
      assert.equal(instance.exports, instance.exports);

      const info = registration.describe();
      assert.deepEqual(info, { name: 'wasmnet-bridge', capability: { dataScope: 'local', connectivityScope: 'local' } });
      assert.equal(driver.type(), 'wasmnet-bridge');
      assert.equal(driver.isBuiltIn(), false);

      // create-network
      const networkInfo = new NetworkInfo();
      const r = driver.createNetwork(ctx(), nid, netOptions({ 'com.docker.network.bridge.name': 'wt0', 'com.docker.network.driver.mtu': '1400' }), networkInfo as never, ipv4, []);
      assert.equal(r, undefined);
      const bridgeCall = host.calls.find((c) => c[0] === 'createBridge')![1] as { name: string; mtu?: number };
      assert.equal(bridgeCall.name, 'wt0');
      assert.equal(bridgeCall.mtu, 1400);
      assert.deepEqual(host.ops(), ['createBridge', 'addAddress', 'setLinkUp']);
      assert.deepEqual(host.calls.filter((c) => c[0] === 'addAddress'), [['addAddress', 'wt0', '10.9.0.1/24']]);
      assert.deepEqual(host.calls.filter((c) => c[0] === 'setLinkUp'), [['setLinkUp', 'wt0', true]]);
      assert.ok(host.kv.has(`network/${nid}`));
      assert.equal(instance.liveResources, 0, 'the borrow of network-info ended with the call');

      // create-endpoint: the driver sets the MAC dockerd left empty.
      const ifInfo = new InterfaceInfo({ address: '10.9.0.2/24', addressIpv6: '', macAddress: '' });
      driver.createEndpoint(ctx(), nid, eid, ifInfo as never, []);
      assert.deepEqual(ifInfo.set, { macAddress: '02:42:0a:09:00:02' });
      assert.deepEqual(driver.endpointOperInfo(nid, eid), [{ key: 'com.docker.network.endpoint.macaddress', value: '"02:42:0a:09:00:02"' }]);

      // join: veth on the bridge, names through an own interface-name-info, the gateway.
      host.calls.length = 0;
      const joinInfo = new JoinInfo();
      driver.join(ctx(), nid, eid, '/var/run/docker/netns/0123456789ab', joinInfo as never, [], []);
      const veth = host.calls.find((c) => c[0] === 'createVeth')![1] as { name: string; peerName: string; mtu?: number; peerMac?: string };
      assert.equal(veth.mtu, 1400);
      assert.equal(veth.peerMac, '02:42:0a:09:00:02');
      assert.deepEqual(host.links.get(veth.name)?.master, 'wt0');
      assert.deepEqual(joinInfo.names, { srcName: veth.peerName, dstPrefix: 'eth', dstName: '' });
      assert.equal(joinInfo.gateway, '10.9.0.1');
      assert.equal(joinInfo.gatewayIpv6, undefined);
      assert.equal(instance.liveResources, 0, 'the interface-name-info the driver dropped is released');

      extConner.programExternalConnectivity(ctx(), nid, eid, '', '');

      // leave, delete-endpoint, delete-network: everything goes.
      host.calls.length = 0;
      driver.leave(nid, eid);
      assert.deepEqual(host.calls.filter((c) => c[0] === 'deleteLink'), [['deleteLink', veth.name]]);
      driver.deleteEndpoint(nid, eid);
      driver.deleteNetwork(nid);
      assert.deepEqual(host.calls.filter((c) => c[0] === 'deleteLink').at(-1), ['deleteLink', 'wt0']);
      assert.deepEqual([...host.links.keys()], []);
      assert.deepEqual([...host.kv.keys()], []);
      assert.ok(host.logs.some((l) => l.level === 'info' && l.message.includes('bridge wt0 created')), JSON.stringify(host.logs));
      assert.equal(instance.trapped, false);
      instance.dispose();
    });

    test('errors keep their kinds, in both directions', async () => {
      const host = fakeHost();
      const instance = (await engine.instantiate(prepared, host.imports)) as WasmtimeInstance;
      const { driver } = instance.exports;

      // The driver's own err(driver-error).
      const e1 = driverError(() => driver.createEndpoint(ctx(), nid, eid, new InterfaceInfo({ address: '', addressIpv6: '', macAddress: '' }) as never, []));
      assert.equal(e1.kind, 'not-found');
      assert.match(e1.message, /not found/);
      try {
        driver.networkFree(nid);
        assert.fail('network-free must fail');
      } catch (e) {
        const d = toDriverCallError('network-free', e);
        assert.equal(d.kind, 'not-implemented');
      }

      // A host import's err(netlink-error): a kernel errno as a variant with a record payload.
      host.links.set('wt1', { index: 1, name: 'wt1', kind: 'bridge', mtu: 1500, mac: '', up: false, addresses: [] });
      const e2 = driverError(() => driver.createNetwork(ctx(), nid, netOptions({ 'com.docker.network.bridge.name': 'wt1' }), new NetworkInfo() as never, ipv4, []));
      assert.equal(e2.kind, 'forbidden');
      assert.match(e2.message, /already exists on the host/);
      host.failures.set('createBridge', witError({ tag: 'denied', val: 'policy says no' }));
      const e3 = driverError(() => driver.createNetwork(ctx(), nid, netOptions({ 'com.docker.network.bridge.name': 'wt2' }), new NetworkInfo() as never, ipv4, []));
      assert.match(e3.message, /policy says no/);

      // A callback's DriverCallError reaches the driver as err(driver-error).
      driver.createNetwork(ctx(), nid, netOptions({ 'com.docker.network.bridge.name': 'wt3' }), new NetworkInfo() as never, ipv4, []);
      class RefusingInterfaceInfo extends InterfaceInfo {
        override setMacAddress(_mac: string): void {
          throw new DriverCallError('forbidden', 'the host refuses this MAC');
        }
      }
      const e4 = driverError(() => driver.createEndpoint(ctx(), nid, eid, new RefusingInterfaceInfo({ address: '10.9.0.5/24', addressIpv6: '', macAddress: '' }) as never, []));
      assert.equal(e4.kind, 'forbidden');
      assert.match(e4.message, /cannot set MAC address .*the host refuses this MAC/);
      assert.equal(instance.trapped, false, 'err results do not trap');

      // Not a resource of the right class; not a string.
      assert.throws(() => driver.createEndpoint(ctx(), nid, eid, new JoinInfo() as never, []), TypeError);
      assert.throws(() => driver.deleteNetwork(42 as never), /argument nid: expected a string/);
      assert.equal(instance.trapped, false, 'bad arguments are refused before the call');

      // A host import that fails without a payload traps the instance; the caller gets the original exception.
      const boom = new Error('the disk is on fire');
      host.failures.set('store.get', boom);
      assert.throws(() => driver.endpointOperInfo(nid, eid), (e) => e === boom);
      assert.equal(instance.trapped, true);
      assert.throws(() => registration(instance).describe(), (e) => e instanceof WasmEngineError && e.code === 'ERR_WASM_INSTANCE_TRAPPED');
      assert.equal(toDriverCallError('describe', (() => { try { registration(instance).describe(); } catch (e) { return e; } })()).kind, 'internal');
      instance.dispose();
    });

    test('a second engine starts from the precompiled file', async (t) => {
      const started = performance.now();
      const second = new WasmtimeEngine(cacheDir);
      const p = (await second.prepare({ bytes, digest })) as WasmtimePrepared;
      const loadMs = performance.now() - started;
      t.diagnostic(`load from cache: ${loadMs.toFixed(1)} ms (native ${p.loadMs.toFixed(1)} ms); compile was ${prepared.loadMs.toFixed(0)} ms`);
      assert.equal(p.origin, 'cache');
      assert.deepEqual(second.stats, { compiled: 0, loadedFromCache: 1 });
      assert.ok(p.loadMs < prepared.loadMs / 10, `loading (${p.loadMs} ms) is much faster than compiling (${prepared.loadMs} ms)`);
      assert.deepEqual(p.imports, prepared.imports);
      const i0 = performance.now();
      const instance = (await second.instantiate(p, fakeHost().imports)) as WasmtimeInstance;
      t.diagnostic(`instantiate: ${(performance.now() - i0).toFixed(2)} ms`);
      assert.equal(instance.exports.registration.describe().name, 'wasmnet-bridge');
      instance.dispose();
    });

    test('a preparation handed over as plain data (as to a sandbox process) instantiates from the cache', async () => {
      const other = new WasmtimeEngine(cacheDir);
      const record = JSON.parse(JSON.stringify({ digest, imports: prepared.imports, exports: prepared.exports }));
      const instance = (await other.instantiate(record, fakeHost().imports)) as WasmtimeInstance;
      assert.equal(instance.exports.registration.describe().name, 'wasmnet-bridge');
      assert.deepEqual(other.stats, { compiled: 0, loadedFromCache: 1 });
      await assert.rejects(other.instantiate({ ...record, digest: `sha256:${'0'.repeat(64)}` }, fakeHost().imports), /was not prepared by this wasmtime engine/);
    });

    test('an instance whose memory does not fit under the cap is refused at instantiation', async () => {
      const small = new WasmtimeEngine(cacheDir, { memoryLimitBytes: 1024 * 1024 });
      const p = await small.prepare({ bytes, digest });
      await assert.rejects(small.instantiate(p, fakeHost().imports), /memory limit of 1048576 bytes/);
    });

    test('a host import that calls back into the same instance is refused', async () => {
      const host = fakeHost();
      let instance: WasmtimeInstance | undefined;
      let inner: unknown;
      (host.imports as unknown as Record<string, { log: unknown }>)[`wasmnet:host/log@${V}`]!.log = () => {
        try {
          instance!.exports.registration.describe();
        } catch (e) {
          inner = e;
          throw e;
        }
      };
      instance = (await engine.instantiate(prepared, host.imports)) as WasmtimeInstance;
      // create-endpoint on an unknown network logs nothing; create-network logs once it is done.
      assert.throws(() => instance!.exports.driver.createNetwork(ctx(), nid, netOptions({ 'com.docker.network.bridge.name': 'wt9' }), new NetworkInfo() as never, ipv4, []));
      assert.ok(inner instanceof WasmEngineError && inner.code === 'ERR_WASM_REENTRANT', String(inner));
    });
  });

  describe('wasmtime engine limits', () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'wasmnet-wasmtime-limits-'));
    let bytes: Uint8Array;
    let digest: string;

    before(async () => {
      bytes = await limitsComponent();
      digest = await digestOf(bytes);
    });

    after(() => rmSync(cacheDir, { recursive: true, force: true }));

    test('an endless loop is interrupted at the deadline; the instance then refuses calls', async () => {
      const engine = new WasmtimeEngine(cacheDir, { callTimeoutMs: 200 });
      const p = await engine.prepare({ bytes, digest });
      assert.deepEqual(p.exports, ['test:limits/run@0.1.0']);
      const instance = (await engine.instantiate(p, {} as DriverImports)) as WasmtimeInstance;
      const run = (instance.exports as unknown as LimitsExports).run;
      assert.equal(run.add(2, 3), 5);
      const started = performance.now();
      assert.throws(() => run.spin(), (e) => e instanceof WasmEngineError && e.code === 'ERR_WASM_DEADLINE' && e.kind === 'timeout');
      const took = performance.now() - started;
      assert.ok(took >= 190 && took < 2000, `interrupted after ${took.toFixed(0)} ms`);
      assert.equal(instance.trapped, true);
      assert.throws(() => run.add(1, 1), (e) => e instanceof WasmEngineError && e.code === 'ERR_WASM_INSTANCE_TRAPPED');
      // The host's view of a call into a trapped instance: an internal error.
      try {
        run.add(1, 1);
      } catch (e) {
        assert.equal(toDriverCallError('add', e).kind, 'internal');
      }
      // A fresh instance works.
      const again = (await engine.instantiate(p, {} as DriverImports)) as WasmtimeInstance;
      assert.equal((again.exports as unknown as LimitsExports).run.add(20, 22), 42);
    });

    test('a call-context deadline earlier than the engine timeout wins', async () => {
      // The spin export takes no call-context; the engine reads one only from a first argument shaped like it.
      const engine = new WasmtimeEngine(cacheDir, { callTimeoutMs: 60_000 });
      const p = await engine.prepare({ bytes, digest });
      const instance = (await engine.instantiate(p, {} as DriverImports)) as WasmtimeInstance;
      const run = (instance.exports as unknown as LimitsExports).run;
      const started = performance.now();
      let caught: unknown;
      try {
        // Extra arguments are ignored by the call; the first is read for a deadline.
        (run.spin as (...a: unknown[]) => void)({ deadlineMs: BigInt(Date.now() + 100) });
      } catch (e) {
        caught = e;
      }
      assert.ok(caught instanceof WasmEngineError && caught.code === 'ERR_WASM_DEADLINE', String(caught));
      assert.equal(toDriverCallError('spin', caught).kind, 'timeout');
      assert.ok(performance.now() - started < 5000);
    });

    test('a damaged cache file is replaced by a fresh compile', async () => {
      const first = new WasmtimeEngine(cacheDir);
      const p = (await first.prepare({ bytes, digest })) as WasmtimePrepared;
      // Replaced, not written in place: the file is mapped by the engines that loaded it, and
      // the engine itself only ever replaces cache files by renaming.
      await writeFile(`${p.cacheFile}.damaged`, 'not a precompiled component');
      await rename(`${p.cacheFile}.damaged`, p.cacheFile);
      const second = new WasmtimeEngine(cacheDir);
      const again = (await second.prepare({ bytes, digest })) as WasmtimePrepared;
      assert.equal(again.origin, 'compiled');
      assert.deepEqual(second.stats, { compiled: 1, loadedFromCache: 0 });
      const third = new WasmtimeEngine(cacheDir);
      assert.equal(((await third.prepare({ bytes, digest })) as WasmtimePrepared).origin, 'cache');
    });

    test('out-of-bounds access and stack exhaustion trap the instance, not the process; jco still works beside it', async () => {
      const engine = new WasmtimeEngine(cacheDir);
      const p = await engine.prepare({ bytes, digest });
      const trap = (f: () => unknown, what: RegExp) =>
        assert.throws(f, (e) => e instanceof WasmEngineError && e.code === 'ERR_WASM_TRAP' && what.test(e.message));
      // The signal handlers of wasmtime and of V8 (which runs jco's wasm) share the process.
      const a = (await engine.instantiate(p, {} as DriverImports)) as WasmtimeInstance;
      trap(() => (a.exports as unknown as LimitsExports).run.oob(), /out of bounds/);
      const b = (await engine.instantiate(p, {} as DriverImports)) as WasmtimeInstance;
      trap(() => (b.exports as unknown as LimitsExports).run.recurse(1), /stack/);
      const { JcoEngine } = await import('../jco.ts');
      const jco = new JcoEngine(join(cacheDir, 'jco'));
      const j = await jco.instantiate(await jco.prepare({ bytes, digest }), {} as DriverImports);
      const jrun = (j.exports as unknown as LimitsExports).run;
      assert.equal(jrun.add(1, 2), 3);
      assert.throws(() => jrun.oob(), WebAssembly.RuntimeError);
      const c = (await engine.instantiate(p, {} as DriverImports)) as WasmtimeInstance;
      trap(() => (c.exports as unknown as LimitsExports).run.oob(), /out of bounds/);
      assert.equal(((await engine.instantiate(p, {} as DriverImports)).exports as unknown as LimitsExports).run.add(2, 2), 4);
    });

    test('a memory bomb is stopped at the memory cap without harm to the process', async () => {
      const engine = new WasmtimeEngine(cacheDir, { memoryLimitBytes: 8 * 1024 * 1024 });
      const p = await engine.prepare({ bytes, digest });
      const instance = (await engine.instantiate(p, {} as DriverImports)) as WasmtimeInstance;
      const run = (instance.exports as unknown as LimitsExports).run;
      assert.equal(run.grow(10), 11, 'growing under the cap works');
      assert.throws(() => run.grow(100_000), (e) => e instanceof WasmEngineError && e.code === 'ERR_WASM_MEMORY_LIMIT' && /8388608/.test(e.message));
      assert.equal(instance.trapped, true);
      assert.throws(() => run.add(1, 1), (e) => e instanceof WasmEngineError && e.code === 'ERR_WASM_INSTANCE_TRAPPED');
      const again = (await engine.instantiate(p, {} as DriverImports)) as WasmtimeInstance;
      assert.equal((again.exports as unknown as LimitsExports).run.grow(1), 2);
    });
  });
}

function registration(instance: WasmtimeInstance) {
  return instance.exports.registration;
}
