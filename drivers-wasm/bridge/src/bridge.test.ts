// Unit tests of the bridge driver's logic with in-memory fakes of the host
// capabilities. Run with either runtime:
//   node_modules/.bin/node --test drivers-wasm/bridge/src/
//   node_modules/.bin/deno test -A drivers-wasm/bridge/src/
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  BridgeDriver,
  DriverFailure,
  DRIVER_NAME,
  guard,
  OPT_BRIDGE_NAME,
  OPT_ENDPOINT_MAC,
  OPT_GENERIC,
  OPT_MTU,
  parseNetworkOptions,
  toDriverError,
  type ErrorKind,
  type Host,
  type InterfaceInfo,
  type InterfaceNameInfo,
  type IpamData,
  type JoinInfo,
  type Link,
  type Netlink,
  type Options,
  type Store,
} from './bridge.ts';
import { cidrContains, macFromIPv4, macFromString, parseCidr, parseIPv6 } from './net.ts';

// --- fakes -----------------------------------------------------------------

/** What componentize-js throws in the guest when a host import returns err(E). */
class ComponentError extends Error {
  payload: unknown;
  constructor(payload: unknown) {
    super(`${String(payload)} (see error.payload)`);
    this.payload = payload;
  }
}
const kernelError = (code: number, name: string, message: string) =>
  new ComponentError({ tag: 'kernel', val: { code, name, message } });
const ENODEV = () => kernelError(19, 'ENODEV', 'No such device');
const EEXIST = () => kernelError(17, 'EEXIST', 'File exists');

interface FakeLink extends Link {
  peer?: string;
  addresses: string[];
}

type NetlinkOp = keyof Netlink;

function makeHost() {
  const links = new Map<string, FakeLink>();
  const kv = new Map<string, string>();
  const logs: { level: string; message: string }[] = [];
  const calls: string[] = [];
  const failures = new Map<string, unknown>();
  let nextIndex = 10;

  /** Makes the next call of `op` (optionally only for the link `name`) throw `err`. */
  const failOn = (op: string, err: unknown, name?: string) => failures.set(name ? `${op}:${name}` : op, err);
  const maybeFail = (op: string, name?: string) => {
    for (const k of name ? [`${op}:${name}`, op] : [op]) {
      if (failures.has(k)) {
        const e = failures.get(k);
        failures.delete(k);
        throw e;
      }
    }
  };
  const mustGet = (name: string): FakeLink => {
    const l = links.get(name);
    if (!l) throw ENODEV();
    return l;
  };
  const newLink = (name: string, kind: Link['kind'], mtu: number | undefined, mac: string | undefined): FakeLink => ({
    index: nextIndex++,
    name,
    kind,
    mtu: mtu ?? 1500,
    mac: mac ?? '',
    up: false,
    addresses: [],
  });
  const track = (op: NetlinkOp, ...args: unknown[]) => calls.push(`${op}(${args.map((a) => JSON.stringify(a)).join(', ')})`);

  const netlink: Netlink = {
    createBridge(spec) {
      track('createBridge', spec);
      maybeFail('createBridge', spec.name);
      if (links.has(spec.name)) throw EEXIST();
      const l = newLink(spec.name, 'bridge', spec.mtu, spec.mac);
      links.set(spec.name, l);
      return { ...l };
    },
    createVeth(spec) {
      track('createVeth', spec);
      maybeFail('createVeth', spec.name);
      if (links.has(spec.name) || links.has(spec.peerName)) throw EEXIST();
      const a = newLink(spec.name, 'veth', spec.mtu, undefined);
      const b = newLink(spec.peerName, 'veth', spec.mtu, spec.peerMac);
      a.peer = b.name;
      b.peer = a.name;
      links.set(a.name, a);
      links.set(b.name, b);
      return { ...a };
    },
    getLink(name) {
      maybeFail('getLink', name);
      const l = links.get(name);
      return l ? { ...l } : undefined;
    },
    setLinkUp(name, up) {
      track('setLinkUp', name, up);
      maybeFail('setLinkUp', name);
      mustGet(name).up = up;
    },
    setLinkMtu(name, mtu) {
      track('setLinkMtu', name, mtu);
      maybeFail('setLinkMtu', name);
      mustGet(name).mtu = mtu;
    },
    setLinkMaster(name, master) {
      track('setLinkMaster', name, master);
      maybeFail('setLinkMaster', name);
      const l = mustGet(name);
      if (master !== undefined && mustGet(master).kind !== 'bridge') throw kernelError(22, 'EINVAL', 'Invalid argument');
      l.master = master;
    },
    deleteLink(name) {
      track('deleteLink', name);
      maybeFail('deleteLink', name);
      const l = mustGet(name);
      links.delete(name);
      if (l.peer) links.delete(l.peer);
      for (const other of links.values()) if (other.master === name) delete other.master;
    },
    addAddress(name, cidr) {
      track('addAddress', name, cidr);
      maybeFail('addAddress', name);
      const l = mustGet(name);
      if (l.addresses.includes(cidr)) throw EEXIST();
      l.addresses.push(cidr);
    },
    deleteAddress(name, cidr) {
      track('deleteAddress', name, cidr);
      maybeFail('deleteAddress', name);
      const l = mustGet(name);
      l.addresses = l.addresses.filter((a) => a !== cidr);
    },
    listAddresses(name) {
      return [...mustGet(name).addresses];
    },
  };

  const store: Store = {
    get: (key) => kv.get(key),
    set(key, value) {
      maybeFail('store.set', key.split('/')[0]);
      kv.set(key, value);
    },
    delete(key) {
      maybeFail('store.delete', key.split('/')[0]);
      return kv.delete(key);
    },
    entries: (prefix) => [...kv.entries()].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  };

  const host: Host = {
    netlink,
    store,
    log: { log: (level, message) => void logs.push({ level, message }) },
  };
  return { host, links, kv, logs, calls, failOn };
}

class FakeInterfaceInfo implements InterfaceInfo {
  mac: string | undefined;
  addr: string | undefined;
  addr6: string | undefined;
  setMacCalls = 0;
  constructor(init: { mac?: string; address?: string; addressIpv6?: string } = {}) {
    this.mac = init.mac;
    this.addr = init.address;
    this.addr6 = init.addressIpv6;
  }
  setMacAddress(mac: string): void {
    this.setMacCalls++;
    if (this.mac) throw new ComponentError({ kind: 'forbidden', message: 'endpoint interface MAC address present' });
    this.mac = mac;
  }
  setIpAddress(_cidr: string): void {
    throw new ComponentError({ kind: 'forbidden', message: 'not expected in these tests' });
  }
  macAddress() {
    return this.mac;
  }
  address() {
    return this.addr;
  }
  addressIpv6() {
    return this.addr6;
  }
  netnsPath() {
    return '';
  }
  setCreatedInContainer(_created: boolean): void {}
  [Symbol.dispose](): void {}
}

class FakeJoinInfo implements JoinInfo {
  names: [string, string, string] | undefined;
  gateway: string | undefined;
  gateway6: string | undefined;
  disposedNames = 0;
  failSetNames = false;
  interfaceName(): InterfaceNameInfo {
    return {
      setNames: (src: string, prefix: string, dst: string) => {
        if (this.failSetNames) throw new ComponentError({ kind: 'invalid-parameter', message: 'bad names' });
        this.names = [src, prefix, dst];
      },
      [Symbol.dispose]: () => void this.disposedNames++,
    } as InterfaceNameInfo;
  }
  setGateway(ip: string): void {
    this.gateway = ip;
  }
  setGatewayIpv6(ip: string): void {
    this.gateway6 = ip;
  }
  addStaticRoute(): void {}
  disableGatewayService(): void {}
  addTableEntry(): void {}
  [Symbol.dispose](): void {}
}

// --- fixtures ----------------------------------------------------------------

const NID = '3f1d2c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f60718293a4b5c6d7e8f9012';
const NID2 = '9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9';
const EID = 'e1d2c3b4a5968778695a4b3c2d1e0f0e1d2c3b4a5968778695a4b3c2d1e0f01';
const EID2 = 'a0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf';

const generic = (o: Record<string, unknown>): Options => [{ key: OPT_GENERIC, value: JSON.stringify(o) }];
const v4: IpamData[] = [{ addressSpace: 'LocalDefault', pool: '172.18.0.0/16', gateway: '172.18.0.1/16', auxAddresses: [] }];
const v6: IpamData[] = [{ addressSpace: 'LocalDefault', pool: 'fd00:1::/64', gateway: 'fd00:1::1/64', auxAddresses: [] }];

function expectFailure(f: () => unknown, kind: ErrorKind, re?: RegExp): DriverFailure {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof DriverFailure, `expected a DriverFailure, got ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  if (re) assert.match(caught.message, re);
  return caught;
}

function setup() {
  const h = makeHost();
  return { ...h, d: new BridgeDriver(h.host) };
}

// --- tests -----------------------------------------------------------------------

describe('identity', () => {
  test('describe, type and is-built-in', () => {
    const { d } = setup();
    assert.deepEqual(d.describe(), { name: 'wasmnet-bridge', capability: { dataScope: 'local', connectivityScope: 'local' } });
    assert.equal(d.type(), 'wasmnet-bridge');
    assert.equal(d.isBuiltIn(), false);
  });

  test('network-allocate and network-free are not implemented (local scope)', () => {
    const { d } = setup();
    expectFailure(() => d.networkAllocate(NID, [], v4, []), 'not-implemented');
    expectFailure(() => d.networkFree(NID), 'not-implemented');
  });

  test('ext-conner succeeds without touching anything', () => {
    const { d, calls } = setup();
    d.programExternalConnectivity(NID, EID, EID, '');
    assert.deepEqual(calls, []);
  });
});

describe('network options', () => {
  test('defaults: bridge "wn" + 12 chars of the network ID, MTU 1500', () => {
    assert.deepEqual(parseNetworkOptions(NID, []), { bridge: 'wn3f1d2c4b5a69', mtu: 1500 });
    assert.deepEqual(parseNetworkOptions(NID, generic({})), { bridge: 'wn3f1d2c4b5a69', mtu: 1500 });
    assert.deepEqual(parseNetworkOptions(NID, [{ key: OPT_GENERIC, value: 'null' }]), { bridge: 'wn3f1d2c4b5a69', mtu: 1500 });
  });

  test('bridge name and MTU from -o', () => {
    assert.deepEqual(parseNetworkOptions(NID, generic({ [OPT_BRIDGE_NAME]: 'wn-web.0_x', [OPT_MTU]: '9000' })), { bridge: 'wn-web.0_x', mtu: 9000 });
    assert.deepEqual(parseNetworkOptions(NID, generic({ [OPT_BRIDGE_NAME]: 'a23456789012345', [OPT_MTU]: '68' })), { bridge: 'a23456789012345', mtu: 68 });
    assert.equal(parseNetworkOptions(NID, generic({ [OPT_MTU]: '65535' })).mtu, 65535);
  });

  test('other top-level options are ignored', () => {
    const opts: Options = [
      { key: 'com.docker.network.enable_ipv6', value: 'true' },
      { key: 'com.docker.network.enable_ipv4', value: 'true' },
      { key: 'com.docker.network.internal', value: 'false' },
      ...generic({ [OPT_MTU]: '1450' }),
    ];
    assert.deepEqual(parseNetworkOptions(NID, opts), { bridge: 'wn3f1d2c4b5a69', mtu: 1450 });
  });

  test('an unknown -o key is refused with the list of supported keys', () => {
    const e = expectFailure(() => parseNetworkOptions(NID, generic({ 'com.docker.network.bridge.enable_icc': 'false' })), 'invalid-parameter');
    assert.match(e.message, /com\.docker\.network\.bridge\.enable_icc/);
    assert.match(e.message, /com\.docker\.network\.bridge\.name/);
    assert.match(e.message, /com\.docker\.network\.driver\.mtu/);
  });

  test('bad bridge names are refused', () => {
    for (const name of ['', 'a234567890123456', 'has space', 'slash/x', 'colon:x', '.', '..', 'ünï', 'wn\n']) {
      expectFailure(() => parseNetworkOptions(NID, generic({ [OPT_BRIDGE_NAME]: name })), 'invalid-parameter', /not a valid interface name/);
    }
  });

  test('bad MTUs are refused', () => {
    for (const mtu of ['67', '65536', '0', '-1', '1e3', 'abc', '1500.0', ' 1500', '', '0x5dc', '999999']) {
      expectFailure(() => parseNetworkOptions(NID, generic({ [OPT_MTU]: mtu })), 'invalid-parameter', /between 68 and 65535/);
    }
  });

  test('malformed generic options are refused', () => {
    expectFailure(() => parseNetworkOptions(NID, [{ key: OPT_GENERIC, value: '{not json' }]), 'invalid-parameter', /not valid JSON/);
    expectFailure(() => parseNetworkOptions(NID, [{ key: OPT_GENERIC, value: '["x"]' }]), 'invalid-parameter', /object/);
    expectFailure(() => parseNetworkOptions(NID, generic({ [OPT_MTU]: 1500 })), 'invalid-parameter', /must be a string/);
  });
});

describe('create-network', () => {
  test('creates the bridge with MTU and gateways, brings it up, stores the record', () => {
    const { d, links, kv, calls, logs } = setup();
    d.createNetwork(NID, generic({ [OPT_MTU]: '1400' }), v4, v6);
    const br = links.get('wn3f1d2c4b5a69');
    assert.ok(br);
    assert.equal(br.kind, 'bridge');
    assert.equal(br.mtu, 1400);
    assert.equal(br.up, true);
    assert.deepEqual(br.addresses, ['172.18.0.1/16', 'fd00:1::1/64']);
    assert.deepEqual(calls, [
      'createBridge({"name":"wn3f1d2c4b5a69","mtu":1400})',
      'addAddress("wn3f1d2c4b5a69", "172.18.0.1/16")',
      'addAddress("wn3f1d2c4b5a69", "fd00:1::1/64")',
      'setLinkUp("wn3f1d2c4b5a69", true)',
    ]);
    assert.deepEqual(JSON.parse(kv.get(`network/${NID}`) ?? ''), {
      bridge: 'wn3f1d2c4b5a69',
      mtu: 1400,
      gateway4: '172.18.0.1/16',
      gateway6: 'fd00:1::1/64',
    });
    assert.ok(logs.some((l) => l.level === 'info' && l.message.includes('wn3f1d2c4b5a69')));
  });

  test('IPv4-only and address-less networks', () => {
    const { d, links, kv } = setup();
    d.createNetwork(NID, [], v4, []);
    assert.deepEqual(links.get('wn3f1d2c4b5a69')?.addresses, ['172.18.0.1/16']);
    assert.equal(JSON.parse(kv.get(`network/${NID}`) ?? '').gateway6, undefined);
    d.createNetwork(NID2, [], [], []);
    assert.deepEqual(links.get('wn9a8b7c6d5e4f')?.addresses, []);
  });

  test('IPAM data is validated before anything is created', () => {
    const { d, calls, kv } = setup();
    const gw = (gateway: string, pool = '172.18.0.0/16'): IpamData[] => [{ addressSpace: 'x', pool, gateway, auxAddresses: [] }];
    expectFailure(() => d.createNetwork(NID, [], [...v4, ...v4], []), 'invalid-parameter', /at most one IPv4/);
    expectFailure(() => d.createNetwork(NID, [], gw('172.18.0.1'), []), 'invalid-parameter', /not an IPv4 CIDR/);
    expectFailure(() => d.createNetwork(NID, [], gw('172.18.0.256/16'), []), 'invalid-parameter', /not an IPv4 CIDR/);
    expectFailure(() => d.createNetwork(NID, [], gw('172.18.0.1/33'), []), 'invalid-parameter', /not an IPv4 CIDR/);
    expectFailure(() => d.createNetwork(NID, [], gw('fd00::1/64'), []), 'invalid-parameter', /not an IPv4 CIDR/);
    expectFailure(() => d.createNetwork(NID, [], gw('10.0.0.1/16'), []), 'invalid-parameter', /outside the pool/);
    expectFailure(() => d.createNetwork(NID, [], gw('172.18.0.1/16', 'nonsense'), []), 'invalid-parameter', /pool/);
    expectFailure(() => d.createNetwork(NID, [], v4, v4), 'invalid-parameter', /not an IPv6 CIDR/);
    expectFailure(() => d.createNetwork(NID, [], v4, [...v6, ...v6]), 'invalid-parameter', /at most one IPv6/);
    expectFailure(() => d.createNetwork(NID, [], v4, [{ ...v6[0]!, gateway: 'fd00:2::1/64' }]), 'invalid-parameter', /outside the pool/);
    assert.deepEqual(calls, []);
    assert.equal(kv.size, 0);
  });

  test('a bridge name that exists on the host gives a clear error, and the existing link is left alone', () => {
    const { d, links, host, kv } = setup();
    host.netlink.createBridge({ name: 'wn-taken' });
    const e = expectFailure(() => d.createNetwork(NID, generic({ [OPT_BRIDGE_NAME]: 'wn-taken' }), v4, []), 'forbidden');
    assert.match(e.message, /"wn-taken"/);
    assert.match(e.message, /already exists/);
    assert.ok(links.has('wn-taken'));
    assert.equal(kv.size, 0);
  });

  test('a bridge name used by another network of the driver is refused', () => {
    const { d, calls } = setup();
    d.createNetwork(NID, generic({ [OPT_BRIDGE_NAME]: 'wn-shared' }), v4, []);
    calls.length = 0;
    const e = expectFailure(() => d.createNetwork(NID2, generic({ [OPT_BRIDGE_NAME]: 'wn-shared' }), [], []), 'forbidden');
    assert.match(e.message, new RegExp(NID));
    assert.deepEqual(calls, []);
  });

  test('the same network twice is refused', () => {
    const { d } = setup();
    d.createNetwork(NID, [], v4, []);
    expectFailure(() => d.createNetwork(NID, [], v4, []), 'forbidden', /already exists/);
  });

  for (const [what, arm] of [
    ['adding the IPv4 gateway', (h: ReturnType<typeof makeHost>) => h.failOn('addAddress', kernelError(99, 'EADDRNOTAVAIL', 'Cannot assign'))],
    ['setting the bridge up', (h: ReturnType<typeof makeHost>) => h.failOn('setLinkUp', kernelError(1, 'EPERM', 'Operation not permitted'))],
    ['saving the record', (h: ReturnType<typeof makeHost>) => h.failOn('store.set', new ComponentError({ tag: 'unavailable', val: 'disk full' }), 'network')],
  ] as const) {
    test(`rollback when ${what} fails: the bridge is deleted, nothing is stored`, () => {
      const h = setup();
      arm(h);
      const e = expectFailure(() => h.d.createNetwork(NID, [], v4, v6), what === 'saving the record' ? 'no-service' : 'internal');
      assert.ok(e.message.length > 0);
      assert.equal(h.links.size, 0);
      assert.equal(h.kv.size, 0);
      assert.ok(h.calls.includes('deleteLink("wn3f1d2c4b5a69")'));
      assert.ok(h.logs.some((l) => l.level === 'warn' && /rolled back/.test(l.message)));
    });
  }

  test('a policy refusal becomes a forbidden error', () => {
    const h = setup();
    h.failOn('createBridge', new ComponentError({ tag: 'denied', val: 'links must start with "wn"' }));
    const e = expectFailure(() => h.d.createNetwork(NID, generic({ [OPT_BRIDGE_NAME]: 'docker0' }), v4, []), 'forbidden');
    assert.match(e.message, /docker0/);
    assert.match(e.message, /links must start with "wn"/);
  });
});

describe('create-endpoint', () => {
  test('the MAC follows the IPv4 address the way Docker does it', () => {
    const { d, kv } = setup();
    d.createNetwork(NID, [], v4, []);
    const ii = new FakeInterfaceInfo({ address: '172.18.0.2/16' });
    d.createEndpoint(NID, EID, ii, []);
    assert.equal(ii.mac, '02:42:ac:12:00:02');
    assert.deepEqual(JSON.parse(kv.get(`endpoint/${NID}/${EID}`) ?? ''), { mac: '02:42:ac:12:00:02', macSetByDriver: true, address: '172.18.0.2/16' });
    assert.equal(macFromIPv4([10, 255, 0, 1]), '02:42:0a:ff:00:01');
  });

  test('without IPv4 the MAC comes from a hash of the endpoint ID: locally administered, unicast, stable', () => {
    const { d } = setup();
    d.createNetwork(NID, [], [], v6);
    const a = new FakeInterfaceInfo({ addressIpv6: 'fd00:1::2/64' });
    d.createEndpoint(NID, EID, a, []);
    const mac = a.mac ?? '';
    assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    const first = parseInt(mac.slice(0, 2), 16);
    assert.equal(first & 0x02, 0x02, 'locally administered');
    assert.equal(first & 0x01, 0, 'unicast');
    assert.equal(mac, macFromString(EID), 'deterministic');
    assert.notEqual(macFromString(EID), macFromString(EID2));
    assert.ok(!mac.startsWith('02:42:'));
    for (let i = 0; i < 2000; i++) {
      const m = macFromString(`endpoint-${i}`);
      const b0 = parseInt(m.slice(0, 2), 16);
      assert.equal(b0 & 0x03, 0x02);
      assert.ok(!m.startsWith('02:42:'));
    }
  });

  test('a MAC dockerd already set is kept and never set again', () => {
    const { d, kv } = setup();
    d.createNetwork(NID, [], v4, []);
    const ii = new FakeInterfaceInfo({ mac: '02:00:00:AA:BB:CC', address: '172.18.0.9/16' });
    d.createEndpoint(NID, EID, ii, [{ key: OPT_ENDPOINT_MAC, value: '"02:00:00:AA:BB:CC"' }]);
    assert.equal(ii.setMacCalls, 0);
    assert.equal(ii.mac, '02:00:00:AA:BB:CC');
    assert.equal(JSON.parse(kv.get(`endpoint/${NID}/${EID}`) ?? '').mac, '02:00:00:aa:bb:cc');
    assert.deepEqual(d.endpointOperInfo(NID, EID), [{ key: OPT_ENDPOINT_MAC, value: '"02:00:00:aa:bb:cc"' }]);
  });

  test('an empty string from the host counts as "not set"', () => {
    const { d } = setup();
    d.createNetwork(NID, [], v4, []);
    const ii = new FakeInterfaceInfo({ mac: '', address: '172.18.0.3/16', addressIpv6: '' });
    d.createEndpoint(NID, EID, ii, []);
    assert.equal(ii.mac, '02:42:ac:12:00:03');
  });

  test('unknown network: not-found; duplicate endpoint: forbidden', () => {
    const { d } = setup();
    expectFailure(() => d.createEndpoint(NID, EID, new FakeInterfaceInfo(), []), 'not-found', new RegExp(NID));
    d.createNetwork(NID, [], v4, []);
    d.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '172.18.0.2/16' }), []);
    expectFailure(() => d.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '172.18.0.2/16' }), []), 'forbidden');
  });

  test('a refused set-mac-address keeps its kind and stores nothing', () => {
    const { d, kv } = setup();
    d.createNetwork(NID, [], v4, []);
    const ii = new FakeInterfaceInfo({ address: '172.18.0.2/16' });
    ii.setMacAddress = () => {
      throw new ComponentError({ kind: 'forbidden', message: 'MAC already set' });
    };
    expectFailure(() => d.createEndpoint(NID, EID, ii, []), 'forbidden', /MAC already set/);
    assert.equal(kv.has(`endpoint/${NID}/${EID}`), false);
  });

  test('endpoint-oper-info returns the MAC as a JSON string; unknown endpoint: not-found', () => {
    const { d } = setup();
    d.createNetwork(NID, [], v4, []);
    d.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '172.18.0.2/16' }), []);
    const info = d.endpointOperInfo(NID, EID);
    assert.deepEqual(info, [{ key: 'com.docker.network.endpoint.macaddress', value: '"02:42:ac:12:00:02"' }]);
    assert.equal(JSON.parse(info[0]!.value), '02:42:ac:12:00:02');
    expectFailure(() => d.endpointOperInfo(NID, EID2), 'not-found');
  });
});

describe('join and leave', () => {
  function joined() {
    const s = setup();
    s.d.createNetwork(NID, generic({ [OPT_MTU]: '1450' }), v4, v6);
    s.d.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '172.18.0.2/16', addressIpv6: 'fd00:1::2/64' }), []);
    s.calls.length = 0;
    return s;
  }

  test('join creates the veth pair on the bridge and fills the join info', () => {
    const { d, links, kv, calls } = joined();
    const ji = new FakeJoinInfo();
    d.join(NID, EID, '/var/run/docker/netns/abc', ji);
    const hostEnd = links.get('wnhe1d2c3b4a');
    const ctrEnd = links.get('wnce1d2c3b4a');
    assert.ok(hostEnd && ctrEnd);
    assert.equal(hostEnd.master, 'wn3f1d2c4b5a69');
    assert.equal(hostEnd.up, true);
    assert.equal(hostEnd.mtu, 1450);
    assert.equal(ctrEnd.mtu, 1450);
    assert.equal(ctrEnd.mac, '02:42:ac:12:00:02');
    assert.deepEqual(ji.names, ['wnce1d2c3b4a', 'eth', '']);
    assert.equal(ji.disposedNames, 1, 'the interface-name-info handle is released');
    assert.equal(ji.gateway, '172.18.0.1');
    assert.equal(ji.gateway6, 'fd00:1::1');
    assert.deepEqual(JSON.parse(kv.get(`join/${NID}/${EID}`) ?? ''), {
      hostIf: 'wnhe1d2c3b4a',
      containerIf: 'wnce1d2c3b4a',
      sandboxKey: '/var/run/docker/netns/abc',
    });
    assert.deepEqual(calls, [
      'createVeth({"name":"wnhe1d2c3b4a","peerName":"wnce1d2c3b4a","mtu":1450,"peerMac":"02:42:ac:12:00:02"})',
      'setLinkMaster("wnhe1d2c3b4a", "wn3f1d2c4b5a69")',
      'setLinkUp("wnhe1d2c3b4a", true)',
    ]);
    for (const name of links.keys()) assert.ok(name.startsWith('wn'), `${name} starts with wn`);
  });

  test('a gateway only for the address families the endpoint has', () => {
    const s = setup();
    s.d.createNetwork(NID, [], v4, v6);
    s.d.createEndpoint(NID, EID, new FakeInterfaceInfo({ addressIpv6: 'fd00:1::5/64' }), []);
    const ji = new FakeJoinInfo();
    s.d.join(NID, EID, '/k', ji);
    assert.equal(ji.gateway, undefined);
    assert.equal(ji.gateway6, 'fd00:1::1');
  });

  test('no IPv6 gateway on an IPv4-only network', () => {
    const s = setup();
    s.d.createNetwork(NID, [], v4, []);
    s.d.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '172.18.0.2/16' }), []);
    const ji = new FakeJoinInfo();
    s.d.join(NID, EID, '/k', ji);
    assert.equal(ji.gateway, '172.18.0.1');
    assert.equal(ji.gateway6, undefined);
  });

  test('join of an unknown network or endpoint: not-found, nothing created', () => {
    const { d, calls } = joined();
    expectFailure(() => d.join(NID2, EID, '/k', new FakeJoinInfo()), 'not-found');
    expectFailure(() => d.join(NID, EID2, '/k', new FakeJoinInfo()), 'not-found');
    assert.deepEqual(calls, []);
  });

  for (const [what, arm] of [
    ['enslaving fails', (s: ReturnType<typeof joined>, _ji: FakeJoinInfo) => s.failOn('setLinkMaster', kernelError(22, 'EINVAL', 'Invalid argument'))],
    ['set-link-up fails', (s: ReturnType<typeof joined>, _ji: FakeJoinInfo) => s.failOn('setLinkUp', kernelError(1, 'EPERM', 'Operation not permitted'))],
    ['set-names fails', (_s: ReturnType<typeof joined>, ji: FakeJoinInfo) => void (ji.failSetNames = true)],
    ['the store fails', (s: ReturnType<typeof joined>, _ji: FakeJoinInfo) => s.failOn('store.set', new ComponentError({ tag: 'invalid', val: 'too big' }), 'join')],
  ] as const) {
    test(`join rollback when ${what}: the veth pair is deleted, no join recorded`, () => {
      const s = joined();
      const ji = new FakeJoinInfo();
      arm(s, ji);
      assert.throws(() => s.d.join(NID, EID, '/k', ji), DriverFailure);
      assert.equal(s.links.has('wnhe1d2c3b4a'), false);
      assert.equal(s.links.has('wnce1d2c3b4a'), false);
      assert.equal(s.kv.has(`join/${NID}/${EID}`), false);
      assert.ok(s.calls.includes('deleteLink("wnhe1d2c3b4a")'));
      // the network and the endpoint are untouched, and a later join works
      assert.ok(s.links.has('wn3f1d2c4b5a69'));
      s.d.join(NID, EID, '/k', new FakeJoinInfo());
      assert.ok(s.links.has('wnhe1d2c3b4a'));
    });
  }

  test('a veth name that already exists on the host: clear error, the existing link is not deleted', () => {
    const s = joined();
    s.host.netlink.createVeth({ name: 'wnhe1d2c3b4a', peerName: 'other' });
    s.calls.length = 0;
    expectFailure(() => s.d.join(NID, EID, '/k', new FakeJoinInfo()), 'forbidden', /wnhe1d2c3b4a.*already exists/);
    assert.ok(s.links.has('wnhe1d2c3b4a'));
    assert.ok(!s.calls.some((c) => c.startsWith('deleteLink')));
  });

  test('leave deletes the host end (the pair goes with it) and forgets the join', () => {
    const { d, links, kv } = joined();
    d.join(NID, EID, '/k', new FakeJoinInfo());
    d.leave(NID, EID);
    assert.equal(links.has('wnhe1d2c3b4a'), false);
    assert.equal(links.has('wnce1d2c3b4a'), false);
    assert.equal(kv.has(`join/${NID}/${EID}`), false);
    assert.ok(kv.has(`endpoint/${NID}/${EID}`));
  });

  test('leave is idempotent: unknown endpoint, not joined, link already gone, twice', () => {
    const { d, links, kv } = joined();
    d.leave(NID2, EID2);
    d.leave(NID, EID);
    d.join(NID, EID, '/k', new FakeJoinInfo());
    links.delete('wnhe1d2c3b4a'); // e.g. the sandbox went away and took the pair
    links.delete('wnce1d2c3b4a');
    d.leave(NID, EID);
    assert.equal(kv.has(`join/${NID}/${EID}`), false);
    d.leave(NID, EID);
  });

  test('leave tolerates a link that vanishes between the lookup and the delete', () => {
    const s = joined();
    s.d.join(NID, EID, '/k', new FakeJoinInfo());
    s.failOn('deleteLink', ENODEV(), 'wnhe1d2c3b4a');
    s.d.leave(NID, EID);
    assert.equal(s.kv.has(`join/${NID}/${EID}`), false);
  });

  test('leave reports a real failure and keeps the record for a later cleanup', () => {
    const s = joined();
    s.d.join(NID, EID, '/k', new FakeJoinInfo());
    s.failOn('deleteLink', new ComponentError({ tag: 'denied', val: 'not yours' }), 'wnhe1d2c3b4a');
    expectFailure(() => s.d.leave(NID, EID), 'forbidden', /wnhe1d2c3b4a/);
    assert.ok(s.kv.has(`join/${NID}/${EID}`));
    s.d.deleteNetwork(NID);
    assert.equal(s.links.size, 0);
    assert.equal(s.kv.size, 0);
  });
});

describe('deletes', () => {
  test('delete-endpoint forgets the endpoint; unknown endpoint succeeds', () => {
    const { d, kv } = setup();
    d.deleteEndpoint(NID, EID);
    d.createNetwork(NID, [], v4, []);
    d.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '172.18.0.2/16' }), []);
    d.deleteEndpoint(NID, EID);
    assert.equal(kv.has(`endpoint/${NID}/${EID}`), false);
    d.deleteEndpoint(NID, EID);
  });

  test('delete-endpoint of a still-joined endpoint removes its veth too', () => {
    const { d, links, kv } = setup();
    d.createNetwork(NID, [], v4, []);
    d.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '172.18.0.2/16' }), []);
    d.join(NID, EID, '/k', new FakeJoinInfo());
    d.deleteEndpoint(NID, EID);
    assert.equal(links.has('wnhe1d2c3b4a'), false);
    assert.deepEqual([...kv.keys()], [`network/${NID}`]);
  });

  test('delete-network deletes the bridge, leftover veths and every record of that network only', () => {
    const { d, links, kv } = setup();
    d.createNetwork(NID, [], v4, []);
    d.createNetwork(NID2, [], [{ addressSpace: 'x', pool: '172.19.0.0/16', gateway: '172.19.0.1/16', auxAddresses: [] }], []);
    d.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '172.18.0.2/16' }), []);
    d.createEndpoint(NID, EID2, new FakeInterfaceInfo({ address: '172.18.0.3/16' }), []);
    d.createEndpoint(NID2, EID, new FakeInterfaceInfo({ address: '172.19.0.2/16' }), []);
    d.join(NID, EID2, '/k', new FakeJoinInfo());
    d.deleteNetwork(NID);
    assert.deepEqual([...links.keys()].sort(), ['wn9a8b7c6d5e4f']);
    assert.deepEqual([...kv.keys()].sort(), [`endpoint/${NID2}/${EID}`, `network/${NID2}`]);
  });

  test('delete-network is idempotent: unknown network, bridge already gone, twice', () => {
    const { d, links, kv } = setup();
    d.deleteNetwork(NID);
    d.createNetwork(NID, [], v4, []);
    links.delete('wn3f1d2c4b5a69');
    d.deleteNetwork(NID);
    assert.equal(kv.size, 0);
    d.deleteNetwork(NID);
  });

  test('delete-network of an unknown network still clears stray records under its ID', () => {
    const { d, kv } = setup();
    kv.set(`endpoint/${NID}/${EID}`, JSON.stringify({ mac: '02:42:ac:12:00:02', macSetByDriver: true }));
    d.deleteNetwork(NID);
    assert.equal(kv.size, 0);
  });
});

describe('state lives only in the store', () => {
  test('a fresh driver object over the same store continues where the old one stopped', () => {
    const h = makeHost();
    const first = new BridgeDriver(h.host);
    first.createNetwork(NID, generic({ [OPT_BRIDGE_NAME]: 'wn-app', [OPT_MTU]: '1380' }), v4, []);
    first.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '172.18.0.7/16' }), []);

    const second = new BridgeDriver(h.host); // e.g. the instance was restarted or upgraded
    const ji = new FakeJoinInfo();
    second.join(NID, EID, '/k', ji);
    assert.equal(h.links.get('wnhe1d2c3b4a')?.master, 'wn-app');
    assert.equal(h.links.get('wnhe1d2c3b4a')?.mtu, 1380);
    assert.equal(h.links.get('wnce1d2c3b4a')?.mac, '02:42:ac:12:00:07');
    assert.equal(ji.gateway, '172.18.0.1');
    assert.deepEqual(second.endpointOperInfo(NID, EID), [{ key: OPT_ENDPOINT_MAC, value: '"02:42:ac:12:00:07"' }]);

    const third = new BridgeDriver(h.host);
    third.leave(NID, EID);
    third.deleteEndpoint(NID, EID);
    third.deleteNetwork(NID);
    assert.equal(h.links.size, 0);
    assert.equal(h.kv.size, 0);
  });

  test('a driver object keeps no state of its own', () => {
    const h = makeHost();
    const d = new BridgeDriver(h.host);
    d.createNetwork(NID, [], v4, []);
    h.kv.clear(); // the store is the truth: without it the network is unknown
    expectFailure(() => d.createEndpoint(NID, EID, new FakeInterfaceInfo(), []), 'not-found');
    assert.deepEqual(Object.keys(d), []);
  });
});

describe('errors crossing the boundary', () => {
  test('a DriverFailure carries the driver-error as an own `payload` (what componentize-js lowers to err)', () => {
    const e = new DriverFailure('not-found', 'x');
    assert.ok(Object.prototype.hasOwnProperty.call(e, 'payload'));
    assert.deepEqual(e.payload, { kind: 'not-found', message: 'x' });
  });

  test('toDriverError maps host errors and unexpected exceptions', () => {
    assert.deepEqual(toDriverError(new DriverFailure('timeout', 't')), { kind: 'timeout', message: 't' });
    assert.deepEqual(toDriverError(new ComponentError({ kind: 'forbidden', message: 'set' })), { kind: 'forbidden', message: 'set' });
    assert.equal(toDriverError(new ComponentError({ tag: 'denied', val: 'no' })).kind, 'forbidden');
    assert.equal(toDriverError(new ComponentError({ tag: 'invalid', val: 'bad mtu' })).kind, 'invalid-parameter');
    assert.equal(toDriverError(new ComponentError({ tag: 'unavailable', val: 'down' })).kind, 'no-service');
    assert.deepEqual(toDriverError(kernelError(17, 'EEXIST', 'File exists'), 'join'), { kind: 'internal', message: 'join: EEXIST (errno 17): File exists' });
    assert.deepEqual(toDriverError(new TypeError('oops'), 'op'), { kind: 'internal', message: 'op: TypeError: oops' });
    assert.deepEqual(toDriverError('a string'), { kind: 'internal', message: 'a string' });
    assert.deepEqual(toDriverError({ kind: 'bogus', message: 'm' }).kind, 'internal');
  });

  test('guard turns every exception into { payload: driver-error }, never anything that would trap', () => {
    const logs: string[] = [];
    const log = { log: (level: string, m: string) => void logs.push(`${level} ${m}`) };
    const thrown = (f: () => unknown): unknown => {
      try {
        f();
      } catch (e) {
        return e;
      }
      assert.fail('did not throw');
    };
    const boom = guard(log, 'join', (): void => {
      (null as unknown as { x: number }).x;
    });
    const e1 = thrown(boom) as { payload: unknown };
    assert.ok(!(e1 instanceof Error), 'a plain object: componentize-js lowers it as err, not a trap');
    assert.deepEqual(Object.keys(e1), ['payload']);
    assert.equal((e1.payload as { kind: string }).kind, 'internal');
    assert.match((e1.payload as { message: string }).message, /^join: TypeError/);
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /^error join failed/);

    const e2 = thrown(guard(log, 'leave', () => {
      throw new DriverFailure('not-found', 'no such endpoint');
    })) as { payload: unknown };
    assert.deepEqual(e2.payload, { kind: 'not-found', message: 'no such endpoint' });
    assert.equal(logs.length, 1, 'expected errors are not logged as internal');
    assert.equal(guard(log, 'x', (a: number, b: number) => a + b)(2, 3), 5);
  });

  test('a damaged store record gives an internal error, not a wrong link', () => {
    const { d, kv, calls } = setup();
    kv.set(`network/${NID}`, JSON.stringify({ bridge: 'eth0; rm', mtu: 1500 }));
    kv.set(`endpoint/${NID}/${EID}`, JSON.stringify({ mac: '02:42:ac:12:00:02', macSetByDriver: true }));
    expectFailure(() => d.join(NID, EID, '/k', new FakeJoinInfo()), 'internal', /corrupt state record network\//);
    kv.set(`network/${NID}`, '"just a string"');
    expectFailure(() => d.createEndpoint(NID, EID2, new FakeInterfaceInfo(), []), 'internal', /corrupt/);
    kv.set(`network/${NID}`, '{not json');
    expectFailure(() => d.endpointOperInfo(NID, EID2), 'not-found');
    kv.clear();
    kv.set(`network/${NID2}`, 'null');
    d.createNetwork(NID, [], v4, []); // a damaged record of another network does not block this one
    assert.deepEqual(calls.splice(0), ['createBridge({"name":"wn3f1d2c4b5a69","mtu":1500})', 'addAddress("wn3f1d2c4b5a69", "172.18.0.1/16")', 'setLinkUp("wn3f1d2c4b5a69", true)']);
  });

  test('the delete paths clean up even after a damaged record', () => {
    const { d, kv, links, logs, host } = setup();
    d.createNetwork(NID, [], v4, []);
    d.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '172.18.0.2/16' }), []);
    d.join(NID, EID, '/k', new FakeJoinInfo());
    kv.set(`join/${NID}/${EID}`, JSON.stringify({ hostIf: 5 }));
    d.leave(NID, EID); // falls back to the name join derives from the eid
    assert.equal(links.has('wnhe1d2c3b4a'), false);
    assert.equal(kv.has(`join/${NID}/${EID}`), false);
    assert.ok(logs.some((l) => l.level === 'error' && /corrupt state record join\//.test(l.message)));

    d.join(NID, EID, '/k', new FakeJoinInfo());
    kv.set(`join/${NID}/${EID}`, '{');
    kv.set(`network/${NID}`, '[]');
    d.deleteNetwork(NID);
    assert.equal(links.size, 0);
    assert.equal(kv.size, 0);

    host.netlink.createBridge({ name: 'wn-custom' });
    kv.set(`network/${NID}`, '{"bridge":"wn-custom"}'); // damaged: no mtu; the custom name cannot be trusted
    d.deleteNetwork(NID);
    assert.ok(links.has('wn-custom'));
    assert.equal(kv.size, 0);
  });

  test('a failing log never fails a call', () => {
    const h = makeHost();
    h.host.log = {
      log: () => {
        throw new Error('log down');
      },
    };
    const d = new BridgeDriver(h.host);
    d.createNetwork(NID, [], v4, []);
    d.deleteNetwork(NID);
  });
});

describe('address helpers', () => {
  test('CIDR and IPv6 parsing', () => {
    assert.deepEqual(parseCidr('172.18.0.1/16'), { family: 4, ip: '172.18.0.1', bytes: [172, 18, 0, 1], prefix: 16 });
    assert.equal(parseCidr('fd00::1/64')?.family, 6);
    assert.equal(parseCidr('::ffff:1.2.3.4/128')?.bytes.slice(10).join(','), '255,255,1,2,3,4');
    assert.deepEqual(parseIPv6('::'), new Array(16).fill(0));
    assert.deepEqual(parseIPv6('1:2:3:4:5:6:7:8'), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    assert.deepEqual(parseIPv6('1::8'), [0, 1, ...new Array(12).fill(0), 0, 8]);
    for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', ':::', '1:2', 'fe80::1%eth0', 'g::1', '12345::1', '1:2:3:4:5:6:7::8:9']) {
      assert.equal(parseIPv6(bad), null, bad);
    }
    for (const bad of ['172.18.0.1', '172.18.0.1/', '172.18.0.1/33', '01.2.3.4/8', '1.2.3/8', 'fd00::1/129', '1.2.3.4/8/8', 'x/8', '1.2.3.4/08']) {
      assert.equal(parseCidr(bad), null, bad);
    }
    const pool = parseCidr('10.1.0.0/20')!;
    assert.ok(cidrContains(pool, parseCidr('10.1.15.254/20')!));
    assert.ok(!cidrContains(pool, parseCidr('10.1.16.1/20')!));
    assert.ok(cidrContains(parseCidr('fd00:1::/64')!, parseCidr('fd00:1::abcd/64')!));
    assert.ok(!cidrContains(parseCidr('fd00:1::/64')!, parseCidr('fd00:2::1/64')!));
    assert.ok(!cidrContains(pool, parseCidr('fd00::1/64')!));
  });

  test('driver name is stable', () => {
    assert.equal(DRIVER_NAME, 'wasmnet-bridge');
  });
});
