// Driver manifests (manifest.ts): what parses, what is refused and why, the
// check of a component's imports against its manifest, and the privilege
// lines shown before granting.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONTRACT_VERSION } from './contract.ts';
import { checkImports, contractImports, describePrivileges, type Manifest, ManifestError, parseManifest, witName } from './manifest.ts';

const repo = new URL('../', import.meta.url);
const readJson = (path: string) => JSON.parse(readFileSync(new URL(path, repo), 'utf8')) as Record<string, unknown>;

const base = () => ({
  name: 'wasmnet-test',
  version: '1.2.3',
  contract: CONTRACT_VERSION,
  capabilities: {
    log: {},
    store: {},
    netlink: { linkPrefix: 'hx', linkKinds: ['bridge', 'veth'] },
  },
});

/** A copy of the base manifest with the netlink grant changed. */
const withNetlink = (netlink: Record<string, unknown>) => ({ ...base(), capabilities: { ...base().capabilities, netlink: { ...base().capabilities.netlink, ...netlink } } });

function refused(json: unknown, message: RegExp) {
  assert.throws(() => parseManifest(json, 'm.json'), (e: unknown) => e instanceof ManifestError && e.message.startsWith('m.json: ') && message.test(e.message), JSON.stringify(json));
}

describe('parseManifest', () => {
  test('accepts the bundled bridge manifest and the hostile test driver\'s', () => {
    const bridge = parseManifest(readJson('drivers-wasm/bridge/manifest.json'));
    assert.equal(bridge.name, 'wasmnet-bridge');
    assert.equal(bridge.contract, CONTRACT_VERSION);
    assert.deepEqual(bridge.capabilities.netlink, { linkPrefix: 'wn', linkKinds: ['bridge', 'veth'], parents: [], vxlanPorts: [4789, 8472], callsPerSecond: 500 });
    const hostile = parseManifest(readJson('drivers-wasm/testing/hostile/manifest.json'));
    assert.deepEqual(hostile.capabilities.netlink, { linkPrefix: 'hx', linkKinds: ['bridge', 'veth', 'macvlan'], parents: [], vxlanPorts: [4789, 8472], callsPerSecond: 50 });
  });

  test('fills in the defaults: no parents, 200 calls per second; nothing else is granted by default', () => {
    const m = parseManifest(base());
    assert.deepEqual(m.capabilities.netlink, { linkPrefix: 'hx', linkKinds: ['bridge', 'veth'], parents: [], vxlanPorts: [4789, 8472], callsPerSecond: 200 });
    const bare = parseManifest({ ...base(), capabilities: {} });
    assert.deepEqual(bare.capabilities, {});
  });

  test('refuses prefixes that reach the host\'s links or other software\'s', () => {
    for (const prefix of ['eth', 'lo', 'docker', 'en', 'br-', 'veth', 'vxlan', 'wg', 'tap', 'kube']) refused(withNetlink({ linkPrefix: prefix }), /linkPrefix/);
    // Nor an extension of one ("eth1" reaches eth1), nor a prefix of one ("do" reaches docker0, "e" everything).
    for (const prefix of ['eth1', 'lo0', 'docker1', 'dock', 'do', 'vet', 'et']) refused(withNetlink({ linkPrefix: prefix }), /reserved prefix/);
    // Nor a bad shape: too short, too long, upper case, not starting with a letter, punctuation.
    for (const prefix of ['h', 'hxhxhxhxh', 'Hx', '0x', 'h-x', 'h_', '']) refused(withNetlink({ linkPrefix: prefix }), /linkPrefix: must be 2 to 8/);
    for (const ok of ['hx', 'wn', 'mv', 'abcdefgh']) assert.equal(parseManifest(withNetlink({ linkPrefix: ok })).capabilities.netlink?.linkPrefix, ok);
  });

  test('refuses unknown keys, at the top and inside capabilities', () => {
    refused({ ...base(), privileged: true }, /privileged/);
    refused({ ...base(), capabilities: { ...base().capabilities, net_admin: {} } }, /net_admin/);
    refused(withNetlink({ hostNetwork: true }), /hostNetwork/);
    refused({ ...base(), capabilities: { ...base().capabilities, log: { level: 'debug' } } }, /level/);
  });

  test('refuses another contract version, bad names and versions', () => {
    for (const contract of ['0.0.1', '0.2.0', '1', '', undefined]) refused({ ...base(), contract }, /contract: must be/);
    for (const name of ['Wasmnet', '-x', '', 'a'.repeat(64), 'a b', 'a/b']) refused({ ...base(), name }, /name: must be/);
    for (const version of ['1', '1.2', 'v1.2.3', '1.2.3.4']) refused({ ...base(), version }, /version: must be a semantic version/);
    refused({ ...base(), capabilities: undefined }, /capabilities/);
  });

  test('refuses kinds that cannot be created, an empty or oversized kind list, parents that are not link names, a bad rate', () => {
    for (const kind of ['other', 'tun', 'wireguard', 'Bridge', '']) refused(withNetlink({ linkKinds: ['bridge', kind] }), /linkKinds/);
    refused(withNetlink({ linkKinds: [] }), /linkKinds/);
    refused(withNetlink({ linkKinds: ['bridge', 'veth', 'dummy', 'vxlan', 'macvlan', 'ipvlan', 'bridge'] }), /linkKinds/);
    refused(withNetlink({ linkKinds: 'bridge' }), /linkKinds/);
    for (const parent of ['', 'a/b', 'x'.repeat(16), 'eth 0']) refused(withNetlink({ parents: [parent] }), /parents/);
    refused(withNetlink({ parents: Array.from({ length: 17 }, (_, i) => `eth${i}`) }), /parents/);
    for (const rate of [0, -1, 1.5, 10_001, '50']) refused(withNetlink({ callsPerSecond: rate }), /callsPerSecond/);
  });

  test('refuses what is not an object', () => {
    for (const json of [null, 'manifest', 42, []]) assert.throws(() => parseManifest(json), ManifestError);
  });
});

describe('checkImports', () => {
  const all = ['log', 'store', 'netlink'] as const;

  test('passes a component importing what its manifest requests, and the contract\'s own interfaces', () => {
    const m = parseManifest(base());
    checkImports([...all.map(witName), ...contractImports], m);
    checkImports([witName('log')], m);
    checkImports([], m);
  });

  test('refuses a host interface the manifest does not request, and says which', () => {
    const m = parseManifest({ ...base(), capabilities: { log: {} } });
    assert.throws(() => checkImports([witName('log'), witName('netlink')], m), (e: unknown) => e instanceof ManifestError && e.message === `the component imports ${witName('netlink')}, which its manifest does not request`);
    assert.throws(() => checkImports([witName('store')], m), /imports wasmnet:host\/store@.*which its manifest does not request/);
  });

  test('refuses interfaces this host does not offer, and other versions of its own', () => {
    const m = parseManifest(base());
    for (const i of ['wasi:filesystem/types@0.2.0', 'wasi:sockets/tcp@0.2.0', 'wasmnet:host/netlink@0.0.9', 'wasmnet:host/exec@0.1.0', 'wasmnet:driver/types@9.9.9']) {
      assert.throws(() => checkImports([i], m), (e: unknown) => e instanceof ManifestError && e.message === `the component imports ${i}, which this host does not offer`, i);
    }
  });
});

describe('describePrivileges', () => {
  test('the bundled bridge driver, line by line', () => {
    assert.deepEqual(describePrivileges(parseManifest(readJson('drivers-wasm/bridge/manifest.json'))), [
      'log: [write to the host log]',
      'store: [a key-value store of its own]',
      'netlink links: [create bridge, veth named wn*; change and delete only links it created]',
      'netlink addresses, routes, neighbours: [inside the pools dockerd gives its networks]',
      'netlink namespaces: [only sandboxes dockerd joins to it]',
      'netlink rate: [500 calls per second]',
    ]);
  });

  test('granted parents get their own line; nothing requested is "none"', () => {
    const m: Manifest = parseManifest({ ...base(), capabilities: { netlink: { linkPrefix: 'mv', linkKinds: ['macvlan'], parents: ['eth1', 'bond0'], callsPerSecond: 100 } } });
    assert.deepEqual(describePrivileges(m), [
      'netlink links: [create macvlan named mv*; change and delete only links it created]',
      'netlink parents: [eth1, bond0] (as parent or underlay, unchanged)',
      'netlink addresses, routes, neighbours: [inside the pools dockerd gives its networks]',
      'netlink namespaces: [only sandboxes dockerd joins to it]',
      'netlink rate: [100 calls per second]',
    ]);
    assert.deepEqual(describePrivileges(parseManifest({ ...base(), capabilities: {} })), ['none']);
  });
});
