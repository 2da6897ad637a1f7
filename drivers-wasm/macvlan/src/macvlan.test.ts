// Unit tests of the macvlan driver's logic with in-memory fakes of the host
// capabilities; the fake netlink applies the broker's rules that matter here
// (a parent must be granted, only links the driver created may be deleted).
// Run with either runtime:
//   node_modules/.bin/node --test drivers-wasm/macvlan/src/
//   node_modules/.bin/deno test --no-check -A drivers-wasm/macvlan/src/
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  DriverFailure,
  DRIVER_NAME,
  guard,
  MacvlanDriver,
  macvlanName,
  OPT_ENDPOINT_MAC,
  OPT_GENERIC,
  OPT_MODE,
  OPT_MTU,
  OPT_PARENT,
  parseNetworkOptions,
  type ErrorKind,
  type InterfaceInfo,
  type InterfaceNameInfo,
  type IpamData,
  type JoinInfo,
  type Link,
  type Netlink,
  type Options,
  type Store,
  type Host,
} from './macvlan.ts';

// --- fakes -----------------------------------------------------------------

/** What componentize-js throws in the guest when a host import returns err(E). */
class ComponentError extends Error {
  payload: unknown;
  constructor(payload: unknown) {
    super(`${String(payload)} (see error.payload)`);
    this.payload = payload;
  }
}
const kernelError = (code: number, name: string, message: string) => new ComponentError({ tag: 'kernel', val: { code, name, message } });
const ENODEV = () => kernelError(19, 'ENODEV', 'No such device');
const EEXIST = () => kernelError(17, 'EEXIST', 'File exists');
const denied = (why: string) => new ComponentError({ tag: 'denied', val: why });

interface FakeLink extends Link {
  parent?: string;
  mode?: string;
}

const PARENT = 'eth9';
const PARENT_MAC = '52:54:00:12:34:56';

/**
 * A host with links (in its namespace), the driver's ledger, the granted
 * parents and the links dockerd moved into containers.
 */
function makeHost(opts: { granted?: string[] } = {}) {
  const links = new Map<string, FakeLink>();
  const inContainers = new Map<string, FakeLink>();
  const owned = new Set<string>();
  const granted = new Set(opts.granted ?? [PARENT, 'eth8']);
  const kv = new Map<string, string>();
  const logs: { level: string; message: string }[] = [];
  const calls: string[] = [];
  const failures = new Map<string, unknown>();
  let nextIndex = 10;

  const hostLink = (name: string, init: Partial<FakeLink> = {}): FakeLink => {
    const l: FakeLink = { index: nextIndex++, name, kind: 'other', mtu: 1500, mac: '', up: true, ...init };
    links.set(name, l);
    return l;
  };
  hostLink(PARENT, { mac: PARENT_MAC });
  hostLink('eth8', { mac: '52:54:00:00:00:08', mtu: 9000, up: false });
  hostLink('eth0', { mac: '52:54:00:00:00:01' });

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
  const track = (op: keyof Netlink, ...args: unknown[]) => calls.push(`${op}(${args.map((a) => JSON.stringify(a)).join(', ')})`);

  const netlink: Netlink = {
    createMacvlan(spec) {
      track('createMacvlan', spec);
      maybeFail('createMacvlan', spec.name);
      if (!spec.name.startsWith('mv')) throw denied(`link name "${spec.name}" is outside the driver's prefix "mv"`);
      if (!granted.has(spec.parent)) throw denied(`link "${spec.parent}" is not a parent link granted to this driver`);
      const p = links.get(spec.parent);
      if (!p) throw ENODEV();
      if (links.has(spec.name)) throw EEXIST();
      if (spec.mtu !== undefined && spec.mtu > p.mtu) throw kernelError(22, 'EINVAL', 'Invalid argument');
      const l: FakeLink = {
        index: nextIndex++,
        name: spec.name,
        kind: 'macvlan',
        mtu: spec.mtu ?? p.mtu,
        mac: spec.mode === 'passthru' ? p.mac : (spec.mac ?? '02:00:00:00:00:99'),
        up: false,
        parent: spec.parent,
        mode: spec.mode,
      };
      links.set(spec.name, l);
      owned.add(spec.name);
      return { ...l };
    },
    getLink(name) {
      maybeFail('getLink', name);
      if (!owned.has(name) && !granted.has(name)) throw denied(`link "${name}" was not created by this driver`);
      const l = links.get(name);
      return l ? { index: l.index, name: l.name, kind: l.kind, mtu: l.mtu, mac: l.mac, up: l.up } : undefined;
    },
    deleteLink(name) {
      track('deleteLink', name);
      maybeFail('deleteLink', name);
      if (!owned.has(name)) throw denied(`link "${name}" was not created by this driver`);
      if (!links.delete(name)) throw ENODEV();
      owned.delete(name);
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

  /** What dockerd does after Join: the macvlan leaves the host namespace. */
  const moveIntoContainer = (name: string) => {
    const l = links.get(name);
    assert.ok(l, `${name} exists`);
    links.delete(name);
    inContainers.set(name, l);
  };
  /** What dockerd does when the container stops: the macvlan comes back under its own name. */
  const moveBack = (name: string) => {
    const l = inContainers.get(name);
    assert.ok(l, `${name} is in a container`);
    inContainers.delete(name);
    links.set(name, l);
  };

  const host: Host = { netlink, store, log: { log: (level, message) => void logs.push({ level, message }) } };
  return { host, links, inContainers, owned, granted, kv, logs, calls, failOn, moveIntoContainer, moveBack, hostLink };
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
const SBX = '/var/run/docker/netns/0123456789ab';

const generic = (o: Record<string, unknown>): Options => [{ key: OPT_GENERIC, value: JSON.stringify(o) }];
const onParent = (more: Record<string, unknown> = {}): Options => generic({ [OPT_PARENT]: PARENT, ...more });
const v4: IpamData[] = [{ addressSpace: 'LocalDefault', pool: '10.202.0.0/24', gateway: '10.202.0.1/24', auxAddresses: [] }];
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

function setup(opts: { granted?: string[] } = {}) {
  const h = makeHost(opts);
  return { ...h, d: new MacvlanDriver(h.host) };
}

/** A network on PARENT with an IPv4 subnet, and one endpoint on it with 10.202.0.2. */
function withEndpoint(options: Options = onParent(), ipv6 = false) {
  const s = setup();
  s.d.createNetwork(NID, options, v4, ipv6 ? v6 : []);
  const ifInfo = new FakeInterfaceInfo({ address: '10.202.0.2/24', ...(ipv6 ? { addressIpv6: 'fd00:1::2/64' } : {}) });
  s.d.createEndpoint(NID, EID, ifInfo, []);
  s.calls.length = 0;
  return { ...s, ifInfo };
}

// --- tests -----------------------------------------------------------------------

describe('identity', () => {
  test('describe, type and is-built-in', () => {
    const { d } = setup();
    assert.deepEqual(d.describe(), { name: 'wasmnet-macvlan', capability: { dataScope: 'local', connectivityScope: 'local' } });
    assert.equal(d.type(), 'wasmnet-macvlan');
    assert.equal(DRIVER_NAME, 'wasmnet-macvlan');
    assert.equal(d.isBuiltIn(), false);
  });

  test('network-allocate and network-free are not implemented (local scope)', () => {
    const { d } = setup();
    expectFailure(() => d.networkAllocate(NID, [], v4, []), 'not-implemented');
    expectFailure(() => d.networkFree(NID), 'not-implemented');
  });

  test('the endpoint macvlan is "mv" + 10 characters of the endpoint ID', () => {
    assert.equal(macvlanName(EID), 'mve1d2c3b4a5');
    assert.equal(macvlanName(EID).length, 12);
  });
});

describe('network options', () => {
  test('parent is required; the mode defaults to bridge and the MTU to the parent\'s', () => {
    assert.deepEqual(parseNetworkOptions(onParent()), { parent: PARENT, mode: 'bridge' });
    for (const opts of [[], generic({}), [{ key: OPT_GENERIC, value: 'null' }], generic({ [OPT_MODE]: 'vepa' })]) {
      expectFailure(() => parseNetworkOptions(opts), 'invalid-parameter', /needs the parent link: .* -o parent=<host link>/);
    }
  });

  test('every mode and an MTU', () => {
    for (const mode of ['bridge', 'private', 'vepa', 'passthru']) {
      assert.deepEqual(parseNetworkOptions(onParent({ [OPT_MODE]: mode, [OPT_MTU]: '1400' })), { parent: PARENT, mode, mtu: 1400 });
    }
  });

  test('other top-level options are ignored', () => {
    const opts: Options = [
      { key: 'com.docker.network.enable_ipv6', value: 'true' },
      { key: 'com.docker.network.internal', value: 'false' },
      ...onParent(),
    ];
    assert.deepEqual(parseNetworkOptions(opts), { parent: PARENT, mode: 'bridge' });
  });

  test('an unknown -o key is refused with the list of supported keys', () => {
    const e = expectFailure(() => parseNetworkOptions(onParent({ ipvlan_mode: 'l2' })), 'invalid-parameter');
    assert.match(e.message, /"ipvlan_mode" is not supported by wasmnet-macvlan/);
    assert.match(e.message, /parent, macvlan_mode, com\.docker\.network\.driver\.mtu/);
    expectFailure(() => parseNetworkOptions(onParent({ 'com.docker.network.bridge.name': 'x' })), 'invalid-parameter', /not supported/);
  });

  test('bad parents, modes and MTUs are refused', () => {
    for (const p of ['', 'a234567890123456', 'has space', 'x/y', '.', '..']) {
      expectFailure(() => parseNetworkOptions(generic({ [OPT_PARENT]: p })), 'invalid-parameter', /not a valid interface name/);
    }
    for (const p of ['mv', 'mve1d2c3b4a5', 'mvparent']) {
      expectFailure(() => parseNetworkOptions(generic({ [OPT_PARENT]: p })), 'invalid-parameter', /own link prefix "mv"/);
    }
    for (const m of ['', 'Bridge', 'l2', 'source']) {
      expectFailure(() => parseNetworkOptions(onParent({ [OPT_MODE]: m })), 'invalid-parameter', /is not one of bridge, private, vepa, passthru/);
    }
    for (const mtu of ['67', '65536', '0', '-1', 'abc', '1500.0', '']) {
      expectFailure(() => parseNetworkOptions(onParent({ [OPT_MTU]: mtu })), 'invalid-parameter', /between 68 and 65535/);
    }
  });

  test('malformed generic options are refused', () => {
    expectFailure(() => parseNetworkOptions([{ key: OPT_GENERIC, value: '{not json' }]), 'invalid-parameter', /not valid JSON/);
    expectFailure(() => parseNetworkOptions([{ key: OPT_GENERIC, value: '["x"]' }]), 'invalid-parameter', /object/);
    expectFailure(() => parseNetworkOptions(generic({ [OPT_PARENT]: 7 })), 'invalid-parameter', /must be a string/);
  });
});

describe('create-network', () => {
  test('records parent, mode, MTU and gateways; creates no link', () => {
    const { d, kv, calls, links, logs } = setup();
    const before = [...links.keys()];
    d.createNetwork(NID, onParent({ [OPT_MODE]: 'private', [OPT_MTU]: '1400' }), v4, v6);
    assert.deepEqual(calls, []);
    assert.deepEqual([...links.keys()], before);
    assert.deepEqual(JSON.parse(kv.get(`network/${NID}`) ?? ''), {
      parent: PARENT,
      mode: 'private',
      mtu: 1400,
      gateway4: '10.202.0.1/24',
      gateway6: 'fd00:1::1/64',
    });
    assert.ok(logs.some((l) => l.level === 'info' && l.message.includes(`private on parent ${PARENT}`)));
  });

  test('without an MTU the record has none (the macvlans take the parent\'s)', () => {
    const { d, kv } = setup();
    d.createNetwork(NID, onParent(), v4, []);
    assert.deepEqual(JSON.parse(kv.get(`network/${NID}`) ?? ''), { parent: PARENT, mode: 'bridge', gateway4: '10.202.0.1/24' });
  });

  test('a parent that was not granted is refused with what the operator must do', () => {
    const { d, kv } = setup();
    const e = expectFailure(() => d.createNetwork(NID, generic({ [OPT_PARENT]: 'eth0' }), v4, []), 'forbidden');
    assert.match(e.message, /parent eth0 is not granted to wasmnet-macvlan/);
    assert.match(e.message, /capabilities\.netlink\.parents/);
    assert.match(e.message, /wasmnet install --manifest/);
    assert.equal(kv.size, 0);
  });

  test('a granted parent that does not exist: not-found', () => {
    const { d, kv, granted } = setup();
    granted.add('eth7');
    expectFailure(() => d.createNetwork(NID, generic({ [OPT_PARENT]: 'eth7' }), v4, []), 'not-found', /parent eth7 does not exist/);
    assert.equal(kv.size, 0);
  });

  test('an MTU above the parent\'s is refused; a parent that is down is accepted with a warning', () => {
    const { d, kv, logs } = setup();
    expectFailure(() => d.createNetwork(NID, onParent({ [OPT_MTU]: '1501' }), v4, []), 'invalid-parameter', /larger than the MTU of parent eth9 \(1500\)/);
    assert.equal(kv.size, 0);
    d.createNetwork(NID, generic({ [OPT_PARENT]: 'eth8', [OPT_MTU]: '9000' }), v4, []);
    assert.ok(logs.some((l) => l.level === 'warn' && /parent eth8 is down/.test(l.message)));
  });

  test('one network per parent, like Docker\'s macvlan; the same network twice is refused', () => {
    const { d } = setup();
    d.createNetwork(NID, onParent(), v4, []);
    expectFailure(() => d.createNetwork(NID2, onParent(), [], []), 'forbidden', new RegExp(`network ${NID} is already using parent interface eth9`));
    expectFailure(() => d.createNetwork(NID, generic({ [OPT_PARENT]: 'eth8' }), [], []), 'forbidden', /already exists/);
    d.createNetwork(NID2, generic({ [OPT_PARENT]: 'eth8' }), [], []);
  });

  test('IPAM data is validated before anything is looked up or stored', () => {
    const { d, kv } = setup();
    const gw = (gateway: string, pool = '10.202.0.0/24'): IpamData[] => [{ addressSpace: 'x', pool, gateway, auxAddresses: [] }];
    expectFailure(() => d.createNetwork(NID, onParent(), [...v4, ...v4], []), 'invalid-parameter', /at most one IPv4/);
    expectFailure(() => d.createNetwork(NID, onParent(), gw('10.202.0.1'), []), 'invalid-parameter', /not an IPv4 CIDR/);
    expectFailure(() => d.createNetwork(NID, onParent(), gw('10.9.0.1/24'), []), 'invalid-parameter', /outside the pool/);
    expectFailure(() => d.createNetwork(NID, onParent(), v4, v4), 'invalid-parameter', /not an IPv6 CIDR/);
    expectFailure(() => d.createNetwork('', onParent(), v4, []), 'invalid-parameter', /empty network ID/);
    assert.equal(kv.size, 0);
  });
});

describe('create-endpoint', () => {
  test('the MAC follows the IPv4 address the way Docker does it', () => {
    const { d, kv } = setup();
    d.createNetwork(NID, onParent(), v4, []);
    const ifInfo = new FakeInterfaceInfo({ address: '10.202.0.2/24' });
    d.createEndpoint(NID, EID, ifInfo, []);
    assert.equal(ifInfo.mac, '02:42:0a:ca:00:02');
    assert.deepEqual(JSON.parse(kv.get(`endpoint/${NID}/${EID}`) ?? ''), { mac: '02:42:0a:ca:00:02', macSetByDriver: true, address: '10.202.0.2/24' });
  });

  test('without IPv4 the MAC comes from the endpoint ID; a MAC dockerd set is kept and not set again', () => {
    const { d, kv } = setup();
    d.createNetwork(NID, onParent(), [], v6);
    const a = new FakeInterfaceInfo({ addressIpv6: 'fd00:1::2/64' });
    d.createEndpoint(NID, EID, a, []);
    assert.match(a.mac ?? '', /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.equal(parseInt((a.mac ?? '').slice(0, 2), 16) & 0x03, 0x02, 'locally administered, unicast');
    const b = new FakeInterfaceInfo({ mac: '02:AA:BB:CC:DD:EE', addressIpv6: 'fd00:1::3/64' });
    d.createEndpoint(NID, EID2, b, []);
    assert.equal(b.setMacCalls, 0);
    assert.equal(JSON.parse(kv.get(`endpoint/${NID}/${EID2}`) ?? '').mac, '02:aa:bb:cc:dd:ee');
    assert.equal(JSON.parse(kv.get(`endpoint/${NID}/${EID2}`) ?? '').macSetByDriver, false);
  });

  test('passthru: the endpoint takes the parent\'s MAC; another MAC would change the parent and is refused', () => {
    const { d } = setup();
    d.createNetwork(NID, onParent({ [OPT_MODE]: 'passthru' }), v4, []);
    const a = new FakeInterfaceInfo({ address: '10.202.0.2/24' });
    d.createEndpoint(NID, EID, a, []);
    assert.equal(a.mac, PARENT_MAC);
    expectFailure(() => d.createEndpoint(NID, EID2, new FakeInterfaceInfo({ mac: '02:aa:bb:cc:dd:ee' }), []), 'invalid-parameter', /passthru network: the container takes the MAC of parent eth9/);
    const c = new FakeInterfaceInfo({ mac: PARENT_MAC.toUpperCase() });
    d.createEndpoint(NID, EID2, c, []);
    assert.equal(c.setMacCalls, 0);
  });

  test('unknown network: not-found; duplicate endpoint: forbidden; malformed MAC or address: invalid', () => {
    const { d } = setup();
    expectFailure(() => d.createEndpoint(NID, EID, new FakeInterfaceInfo(), []), 'not-found');
    d.createNetwork(NID, onParent(), v4, []);
    d.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '10.202.0.2/24' }), []);
    expectFailure(() => d.createEndpoint(NID, EID, new FakeInterfaceInfo({ address: '10.202.0.3/24' }), []), 'forbidden', /already exists/);
    expectFailure(() => d.createEndpoint(NID, EID2, new FakeInterfaceInfo({ mac: 'nonsense' }), []), 'invalid-parameter', /malformed/);
    expectFailure(() => d.createEndpoint(NID, EID2, new FakeInterfaceInfo({ address: 'fd00::2/64' }), []), 'invalid-parameter', /not an IPv4 CIDR/);
  });

  test('endpoint-oper-info returns the MAC as a JSON string; unknown endpoint: not-found', () => {
    const { d } = withEndpoint();
    assert.deepEqual(d.endpointOperInfo(NID, EID), [{ key: OPT_ENDPOINT_MAC, value: '"02:42:0a:ca:00:02"' }]);
    expectFailure(() => d.endpointOperInfo(NID, EID2), 'not-found');
  });
});

describe('join and leave', () => {
  test('join creates the macvlan on the parent with the endpoint\'s MAC and mode, and fills the join info', () => {
    const { d, links, calls, kv } = withEndpoint(onParent({ [OPT_MODE]: 'vepa', [OPT_MTU]: '1400' }));
    const ji = new FakeJoinInfo();
    d.join(NID, EID, SBX, ji);
    assert.deepEqual(calls, ['createMacvlan({"name":"mve1d2c3b4a5","parent":"eth9","mode":"vepa","mac":"02:42:0a:ca:00:02","mtu":1400})']);
    const l = links.get('mve1d2c3b4a5');
    assert.ok(l);
    assert.equal(l.kind, 'macvlan');
    assert.equal(l.parent, PARENT);
    assert.equal(l.mode, 'vepa');
    assert.equal(l.mac, '02:42:0a:ca:00:02');
    assert.equal(l.mtu, 1400);
    assert.deepEqual(ji.names, ['mve1d2c3b4a5', 'eth', '']);
    assert.equal(ji.disposedNames, 1);
    assert.equal(ji.gateway, '10.202.0.1');
    assert.equal(ji.gateway6, undefined);
    assert.deepEqual(JSON.parse(kv.get(`join/${NID}/${EID}`) ?? ''), { link: 'mve1d2c3b4a5', sandboxKey: SBX });
  });

  test('without an MTU option the spec has none; an IPv6 gateway only for an endpoint with IPv6', () => {
    const { d, calls } = withEndpoint(onParent(), true);
    const ji = new FakeJoinInfo();
    d.join(NID, EID, SBX, ji);
    assert.deepEqual(calls, ['createMacvlan({"name":"mve1d2c3b4a5","parent":"eth9","mode":"bridge","mac":"02:42:0a:ca:00:02"})']);
    assert.equal(ji.gateway, '10.202.0.1');
    assert.equal(ji.gateway6, 'fd00:1::1');

    const s = setup();
    s.d.createNetwork(NID, onParent(), v4, v6);
    s.d.createEndpoint(NID, EID, new FakeInterfaceInfo({ addressIpv6: 'fd00:1::2/64' }), []);
    const ji2 = new FakeJoinInfo();
    s.d.join(NID, EID, SBX, ji2);
    assert.equal(ji2.gateway, undefined);
    assert.equal(ji2.gateway6, 'fd00:1::1');
  });

  test('join of an unknown network or endpoint: not-found, nothing created', () => {
    const { d, calls } = withEndpoint();
    expectFailure(() => d.join(NID2, EID, SBX, new FakeJoinInfo()), 'not-found');
    expectFailure(() => d.join(NID, EID2, SBX, new FakeJoinInfo()), 'not-found');
    assert.deepEqual(calls, []);
  });

  test('join rollback when the interface names cannot be set: the macvlan is deleted, no join recorded', () => {
    const { d, links, kv, logs } = withEndpoint();
    const ji = new FakeJoinInfo();
    ji.failSetNames = true;
    expectFailure(() => d.join(NID, EID, SBX, ji), 'invalid-parameter', /cannot set the interface names: .*bad names/);
    assert.ok(!links.has('mve1d2c3b4a5'));
    assert.equal(kv.get(`join/${NID}/${EID}`), undefined);
    assert.ok(logs.some((l) => l.level === 'warn' && /rolled back/.test(l.message)));
  });

  test('join rollback when the join cannot be stored', () => {
    const { d, links, kv, failOn } = withEndpoint();
    failOn('store.set', new ComponentError({ tag: 'unavailable', val: 'disk full' }), 'join');
    expectFailure(() => d.join(NID, EID, SBX, new FakeJoinInfo()), 'no-service', /disk full/);
    assert.ok(!links.has('mve1d2c3b4a5'));
    assert.equal(kv.get(`join/${NID}/${EID}`), undefined);
  });

  test('join errors keep their meaning: name taken, parent gone, grant withdrawn, kernel refusal', () => {
    const a = withEndpoint();
    a.hostLink('mve1d2c3b4a5', { kind: 'macvlan' });
    expectFailure(() => a.d.join(NID, EID, SBX, new FakeJoinInfo()), 'forbidden', /mve1d2c3b4a5: a link with that name already exists/);
    assert.ok(a.links.has('mve1d2c3b4a5'), 'the existing link is not deleted');

    const b = withEndpoint();
    b.links.delete(PARENT);
    expectFailure(() => b.d.join(NID, EID, SBX, new FakeJoinInfo()), 'not-found', /parent eth9 no longer exists/);

    const c = withEndpoint();
    c.granted.delete(PARENT);
    expectFailure(() => c.d.join(NID, EID, SBX, new FakeJoinInfo()), 'forbidden', /not a parent link granted.*grant withdrawn/);

    const e = withEndpoint();
    e.failOn('createMacvlan', kernelError(16, 'EBUSY', 'Device or resource busy'));
    expectFailure(() => e.d.join(NID, EID, SBX, new FakeJoinInfo()), 'internal', /cannot create macvlan mve1d2c3b4a5 \(bridge\) on eth9: EBUSY/);
    for (const s of [a, b, c, e]) assert.equal(s.kv.get(`join/${NID}/${EID}`), undefined);
  });

  test('passthru allows one joined endpoint per network; a left one does not count', () => {
    const { d, moveIntoContainer } = withEndpoint(onParent({ [OPT_MODE]: 'passthru' }));
    d.createEndpoint(NID, EID2, new FakeInterfaceInfo({ address: '10.202.0.3/24' }), []);
    d.join(NID, EID, SBX, new FakeJoinInfo());
    expectFailure(() => d.join(NID, EID2, SBX, new FakeJoinInfo()), 'forbidden', /passthru mode: parent eth9 already serves endpoint e1d2/);
    moveIntoContainer('mve1d2c3b4a5');
    d.leave(NID, EID);
    d.join(NID, EID2, SBX, new FakeJoinInfo());
  });

  test('dockerd\'s order on container stop: Leave while the macvlan is in the container, then it comes back, then DeleteEndpoint deletes it', () => {
    const { d, calls, links, owned, kv, inContainers, moveIntoContainer, moveBack, logs } = withEndpoint();
    d.join(NID, EID, SBX, new FakeJoinInfo());
    moveIntoContainer('mve1d2c3b4a5');
    calls.length = 0;
    d.leave(NID, EID);
    assert.deepEqual(calls, [], 'nothing to delete yet: the macvlan is out of sight');
    assert.ok(inContainers.has('mve1d2c3b4a5'));
    assert.deepEqual(JSON.parse(kv.get(`join/${NID}/${EID}`) ?? ''), { link: 'mve1d2c3b4a5', sandboxKey: SBX, left: true });
    assert.ok(logs.some((l) => /deleted when dockerd returns it/.test(l.message)));
    d.leave(NID, EID); // a second Leave changes nothing
    assert.deepEqual(calls, []);
    moveBack('mve1d2c3b4a5');
    d.deleteEndpoint(NID, EID);
    assert.deepEqual(calls, ['deleteLink("mve1d2c3b4a5")']);
    assert.ok(!links.has('mve1d2c3b4a5'));
    assert.ok(!owned.has('mve1d2c3b4a5'));
    assert.deepEqual([...kv.keys()], [`network/${NID}`]);
  });

  test('a macvlan already back in the host namespace (or never moved) is deleted by Leave itself', () => {
    const { d, links, owned, kv, moveIntoContainer, moveBack } = withEndpoint();
    d.join(NID, EID, SBX, new FakeJoinInfo());
    moveIntoContainer('mve1d2c3b4a5');
    moveBack('mve1d2c3b4a5');
    d.leave(NID, EID);
    assert.ok(!links.has('mve1d2c3b4a5'));
    assert.ok(!owned.has('mve1d2c3b4a5'));
    assert.equal(kv.get(`join/${NID}/${EID}`), undefined);
  });

  test('a macvlan that never comes back (gone with its namespace): delete-endpoint forgets it, nothing to delete', () => {
    const { d, calls, kv, moveIntoContainer, inContainers } = withEndpoint();
    d.join(NID, EID, SBX, new FakeJoinInfo());
    moveIntoContainer('mve1d2c3b4a5');
    d.leave(NID, EID);
    inContainers.clear();
    calls.length = 0;
    d.deleteEndpoint(NID, EID);
    assert.deepEqual(calls, []);
    assert.deepEqual([...kv.keys()], [`network/${NID}`]);
  });

  test('joined again after a Leave without DeleteEndpoint: the returned macvlan is replaced; a second Join without Leave is refused', () => {
    const { d, calls, links, moveIntoContainer, moveBack } = withEndpoint();
    d.join(NID, EID, SBX, new FakeJoinInfo());
    expectFailure(() => d.join(NID, EID, SBX, new FakeJoinInfo()), 'forbidden', /already joined to sandbox/);
    moveIntoContainer('mve1d2c3b4a5');
    d.leave(NID, EID);
    moveBack('mve1d2c3b4a5');
    const before = links.get('mve1d2c3b4a5')?.index;
    calls.length = 0;
    d.join(NID, EID, `${SBX}-2`, new FakeJoinInfo());
    assert.deepEqual(calls.map((c) => c.slice(0, c.indexOf('('))), ['deleteLink', 'createMacvlan']);
    assert.notEqual(links.get('mve1d2c3b4a5')?.index, before);
  });

  test('leave is idempotent: unknown endpoint, not joined, twice; a link vanishing between look-up and delete is fine', () => {
    const { d, failOn, kv } = withEndpoint();
    d.leave(NID2, EID2);
    d.leave(NID, EID);
    d.join(NID, EID, SBX, new FakeJoinInfo());
    failOn('deleteLink', ENODEV(), 'mve1d2c3b4a5');
    d.leave(NID, EID);
    d.leave(NID, EID);
    d.deleteEndpoint(NID, EID);
    assert.deepEqual([...kv.keys()], [`network/${NID}`]);
  });

  test('a link the host no longer counts as the driver\'s: warned, never deleted, forgotten with the endpoint', () => {
    const { d, owned, links, kv, logs, calls } = withEndpoint();
    d.join(NID, EID, SBX, new FakeJoinInfo());
    owned.delete('mve1d2c3b4a5');
    d.leave(NID, EID);
    d.deleteEndpoint(NID, EID);
    assert.ok(links.has('mve1d2c3b4a5'));
    assert.ok(!calls.some((c) => c.startsWith('deleteLink')));
    assert.deepEqual([...kv.keys()], [`network/${NID}`]);
    assert.ok(logs.some((l) => l.level === 'warn' && /no longer the driver's to delete/.test(l.message)));
  });

  test('leave reports a real failure and keeps the record for a later cleanup', () => {
    const { d, failOn, kv } = withEndpoint();
    d.join(NID, EID, SBX, new FakeJoinInfo());
    failOn('deleteLink', kernelError(16, 'EBUSY', 'Device or resource busy'), 'mve1d2c3b4a5');
    expectFailure(() => d.leave(NID, EID), 'internal', /leave .*cannot delete link mve1d2c3b4a5: EBUSY/);
    assert.ok(kv.get(`join/${NID}/${EID}`));
    d.leave(NID, EID);
    assert.equal(kv.get(`join/${NID}/${EID}`), undefined);
  });
});

describe('deletes', () => {
  test('delete-endpoint forgets the endpoint (and a still-joined macvlan); unknown endpoint succeeds', () => {
    const { d, kv, links } = withEndpoint();
    d.join(NID, EID, SBX, new FakeJoinInfo());
    d.deleteEndpoint(NID, EID);
    assert.ok(!links.has('mve1d2c3b4a5'));
    assert.equal(kv.get(`endpoint/${NID}/${EID}`), undefined);
    assert.equal(kv.get(`join/${NID}/${EID}`), undefined);
    d.deleteEndpoint(NID, EID);
    d.deleteEndpoint(NID2, EID2);
  });

  test('delete-network forgets every record of that network only, deletes leftover macvlans, never the parent', () => {
    const { d, kv, links } = withEndpoint();
    d.createNetwork(NID2, generic({ [OPT_PARENT]: 'eth8' }), [], []);
    d.createEndpoint(NID2, EID2, new FakeInterfaceInfo(), []);
    d.join(NID, EID, SBX, new FakeJoinInfo());
    d.deleteNetwork(NID);
    assert.ok(!links.has('mve1d2c3b4a5'));
    assert.ok(links.has(PARENT));
    assert.deepEqual([...kv.keys()].sort(), [`endpoint/${NID2}/${EID2}`, `network/${NID2}`]);
    d.deleteNetwork(NID);
    d.deleteNetwork('unknown');
    // the parent is free again
    d.createNetwork(NID, onParent(), v4, []);
  });
});

describe('state lives only in the store', () => {
  test('a fresh driver object over the same store continues where the old one stopped', () => {
    const s = withEndpoint();
    s.d.join(NID, EID, SBX, new FakeJoinInfo());
    const d2 = new MacvlanDriver(s.host);
    assert.deepEqual(d2.endpointOperInfo(NID, EID), [{ key: OPT_ENDPOINT_MAC, value: '"02:42:0a:ca:00:02"' }]);
    d2.leave(NID, EID);
    assert.ok(!s.links.has('mve1d2c3b4a5'));
    d2.deleteNetwork(NID);
    assert.equal(s.kv.size, 0);
  });

  test('a damaged record gives an internal error, not a wrong link; the delete paths still clean up', () => {
    const s = withEndpoint();
    s.d.join(NID, EID, SBX, new FakeJoinInfo());
    s.kv.set(`network/${NID}`, '{"parent": 5}');
    expectFailure(() => s.d.join(NID, EID2, SBX, new FakeJoinInfo()), 'internal', /corrupt state record network\//);
    s.kv.set(`join/${NID}/${EID}`, 'garbage');
    s.d.deleteNetwork(NID);
    assert.ok(!s.links.has('mve1d2c3b4a5'));
    assert.equal(s.kv.size, 0);
    assert.ok(s.logs.some((l) => l.level === 'error' && /corrupt state record join\/.*assuming mve1d2c3b4a5/.test(l.message)));
  });
});

describe('errors crossing the boundary', () => {
  test('guard turns every exception into { payload: driver-error }, never anything that would trap', () => {
    const { d } = setup();
    const logs: string[] = [];
    const log = { log: (_l: unknown, m: string) => void logs.push(m) } as Host['log'];
    const create = guard(log, 'create-network', (opts: Options) => d.createNetwork(NID, opts, v4, []));
    for (const [opts, kind] of [
      [generic({}), 'invalid-parameter'],
      [generic({ [OPT_PARENT]: 'eth0' }), 'forbidden'],
    ] as const) {
      let caught: unknown;
      try {
        create(opts);
      } catch (e) {
        caught = e;
      }
      assert.ok(caught !== null && typeof caught === 'object' && Object.hasOwn(caught, 'payload'));
      assert.ok(!(caught instanceof Error), 'a plain object, as componentize-js expects');
      assert.equal((caught as { payload: { kind: string } }).payload.kind, kind);
    }
    const boom = guard(log, 'join', () => {
      throw new TypeError('x is undefined');
    });
    assert.throws(boom, (e: unknown) => (e as { payload: { kind: string; message: string } }).payload.kind === 'internal');
    assert.ok(logs.includes('join failed: join: TypeError: x is undefined'), logs.join('\n'));
  });

  test('a failing log never fails a call', () => {
    const h = makeHost();
    h.host.log = {
      log: () => {
        throw new Error('log down');
      },
    };
    const d = new MacvlanDriver(h.host);
    d.createNetwork(NID, onParent(), v4, []);
    d.deleteNetwork(NID);
  });
});
