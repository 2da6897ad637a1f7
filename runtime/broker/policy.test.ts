// The netlink policy (policy.ts) on an in-memory store: prefix, kinds, the
// ownership ledger (veth peers, renames, restarts), pools (IPv4 and IPv6,
// route containment), sandbox keys and the token bucket; then the broker
// (netlink.ts) with a recording fake backend: a refused call never reaches
// the backend, and every call is audited.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { NetlinkPolicy, PolicyDenied, RateLimited, TokenBucket } from './policy.ts';
import { netlinkImport } from './netlink.ts';
import { SqliteStateStore } from '../store/sqlite.ts';
import type { NetlinkGrant } from '../manifest.ts';
import type { CreateLinkRequest, LinkInfo, NetlinkBackend } from '../netlink/backend.ts';

const D = 'wasmnet-test';

function grantOf(g: Partial<NetlinkGrant> = {}): NetlinkGrant {
  return { linkPrefix: 'hx', linkKinds: ['bridge', 'veth'], parents: ['eth1'], vxlanPorts: [4789], callsPerSecond: 10_000, ...g };
}

/** Interface indexes the fake kernel has now, by name (a name absent here has no link). */
type Kernel = Map<string, number>;

function setup(g: Partial<NetlinkGrant> = {}, kernel: Kernel = new Map()) {
  const state = new SqliteStateStore(':memory:');
  return { state, kernel, policy: new NetlinkPolicy(D, grantOf(g), state.ledger, state.scopes, (n) => kernel.get(n)) };
}

const denied = (f: () => void, message?: RegExp) => assert.throws(f, (e: unknown) => e instanceof PolicyDenied && (!message || message.test(e.message)));

describe('NetlinkPolicy', () => {
  test('new links only under the prefix', () => {
    const { policy } = setup();
    for (const ok of ['hx', 'hx0', 'hxbr-1', 'hxverylongname']) policy.newName(ok);
    for (const bad of ['evil0', 'xhx0', 'Hx0', 'h', '', 'eth0', 'lo']) denied(() => policy.newName(bad), /outside the driver's prefix "hx"/);
    denied(() => policy.newName(undefined as unknown as string));
  });

  test('only the granted kinds', () => {
    const { policy } = setup({ linkKinds: ['bridge', 'macvlan'] });
    policy.kind('bridge');
    policy.kind('macvlan');
    for (const bad of ['veth', 'dummy', 'vxlan', 'ipvlan', 'other', 'tun', '']) denied(() => policy.kind(bad), /not granted \(granted: bridge, macvlan\)/);
  });

  test('changes only links it created, not those of other drivers nor the host', () => {
    const { state, policy } = setup();
    denied(() => policy.owned('hxa'), /not created by this driver/);
    state.ledger.add(D, 'hxa', 1);
    policy.owned('hxa');
    // Another driver's link, and host links, whatever their names.
    state.ledger.add('other-driver', 'wn0', 1);
    state.ledger.add('other-driver', 'hxb', 1);
    for (const name of ['wn0', 'hxb', 'lo', 'eth0', 'docker0']) denied(() => policy.owned(name));
    denied(() => policy.owned(undefined as unknown as string));
    assert.equal(state.ledger.indexOf('other-driver', 'hxa'), undefined);
  });

  test('a link that went away and whose name another link took is not the driver\'s', () => {
    const { state, kernel, policy } = setup();
    state.ledger.add(D, 'hxa', 7);
    kernel.set('hxa', 7);
    policy.owned('hxa');
    kernel.set('hxa', 9); // replaced behind the host's back
    denied(() => policy.owned('hxa'), /not the link this driver created/);
    // The stale entry is gone: the name is simply not the driver's any more.
    kernel.set('hxa', 7);
    denied(() => policy.owned('hxa'), /not created by this driver/);
  });

  test('addresses must fit in a pool with their prefix (no wider prefix, so no route outside it)', () => {
    const { state, policy } = setup();
    state.scopes.setPools(D, 'n1', ['10.88.0.0/24', 'fd88::/64']);
    policy.addressInPools('10.88.0.5/24', 'address');
    policy.addressInPools('10.88.0.5/32', 'address');
    policy.addressInPools('fd88::5/64', 'address');
    for (const bad of ['10.88.0.5/8', '10.88.0.5/23', 'fd88::5/0', 'fd88::5/48', '012.88.0.5/24', '10.88.0.5', '10.88.0.5/33']) denied(() => policy.addressInPools(bad, 'address'));
  });

  test('a veth pair is owned as two ends, and goes as one', () => {
    const { state, policy } = setup();
    // What the broker records for create-veth.
    state.ledger.add(D, 'hxv0', 1, 'hxv1');
    state.ledger.add(D, 'hxv1', 1, 'hxv0');
    policy.owned('hxv0');
    policy.owned('hxv1');
    state.ledger.remove(D, 'hxv1');
    denied(() => policy.owned('hxv0'));
    denied(() => policy.owned('hxv1'));
    assert.deepEqual(state.ledger.list(D), []);
  });

  test('a rename moves ownership to the new name, peers included', () => {
    const { state, policy } = setup();
    state.ledger.add(D, 'hxv0', 1, 'hxv1');
    state.ledger.add(D, 'hxv1', 1, 'hxv0');
    state.ledger.rename(D, 'hxv1', 'hxc1');
    policy.owned('hxc1');
    denied(() => policy.owned('hxv1'));
    // Deleting the other end forgets the renamed peer too.
    state.ledger.remove(D, 'hxv0');
    denied(() => policy.owned('hxc1'));
    assert.deepEqual(state.ledger.list(D), []);
  });

  test('ownership survives a restart (the ledger is in the store)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmnet-policy-'));
    try {
      const path = join(dir, 'state.db');
      const a = new SqliteStateStore(path);
      a.ledger.add(D, 'hxa', 1);
      a.close();
      const b = new SqliteStateStore(path);
      new NetlinkPolicy(D, grantOf(), b.ledger, b.scopes, () => 1).owned('hxa');
      denied(() => new NetlinkPolicy('other-driver', grantOf(), b.ledger, b.scopes, () => 1).owned('hxa'));
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('parents: only the host links the operator granted; visible means owned or parent', () => {
    const { state, policy } = setup({ parents: ['eth1', 'bond0'] });
    policy.parent('eth1');
    policy.parent('bond0');
    for (const bad of ['eth0', 'lo', 'hxa']) denied(() => policy.parent(bad), /not a parent link granted to this driver \(granted: eth1, bond0\)/);
    denied(() => setup({ parents: [] }).policy.parent('eth1'), /granted: none/);
    state.ledger.add(D, 'hxa', 1);
    assert.equal(policy.visible('hxa'), true);
    assert.equal(policy.visible('eth1'), true);
    assert.equal(policy.visible('eth0'), false);
    assert.equal(policy.visible('lo'), false);
  });

  test('addresses and neighbours only inside the pools of its own networks, IPv4 and IPv6', () => {
    const { state, policy } = setup();
    denied(() => policy.ipInPools('10.88.0.5', 'address'), /outside the pools/);
    state.scopes.setPools(D, 'n1', ['10.88.0.0/24', 'fd88::/64']);
    state.scopes.setPools('other-driver', 'n2', ['10.77.0.0/24']);
    for (const ok of ['10.88.0.1', '10.88.0.255', 'fd88::1', 'fd88::ffff:1']) policy.ipInPools(ok, 'address');
    for (const bad of ['10.88.1.1', '10.77.0.5', '192.0.2.1', 'fd89::1', 'fe80::1', '::ffff:10.88.0.5', '::']) denied(() => policy.ipInPools(bad, 'address'), /outside the pools/);
    for (const garbage of ['', 'x', '10.88.0.5/24', '10.88.0.256']) denied(() => policy.ipInPools(garbage, 'neighbour'), /is not an IP address/);
    policy.addressInPools('10.88.0.1/24', 'address');
    policy.addressInPools('fd88::1/64', 'address');
    for (const bad of ['10.99.0.5/24', '10.77.0.9/24', 'fd99::5/64']) denied(() => policy.addressInPools(bad, 'address'), /outside the pools/);
    for (const garbage of ['10.88.0.1', 'fd88::1', '10.88.0.1/33', 'nope/24']) denied(() => policy.addressInPools(garbage, 'address'), /is not a CIDR/);
    // The network goes, and its pools with it.
    state.scopes.removeNetwork(D, 'n1');
    denied(() => policy.ipInPools('10.88.0.1', 'address'));
    denied(() => policy.addressInPools('fd88::1/64', 'address'));
  });

  test('routes: the destination network wholly inside one pool', () => {
    const { state, policy } = setup();
    state.scopes.setPools(D, 'n1', ['10.88.0.0/24']);
    state.scopes.setPools(D, 'n2', ['fd88::/64']);
    for (const ok of ['10.88.0.0/24', '10.88.0.128/25', '10.88.0.7/32', 'fd88::/64', 'fd88::1:0/112', 'fd88::1/128']) policy.networkInPools(ok, 'route destination');
    for (const bad of ['0.0.0.0/0', '10.88.0.0/23', '10.88.0.0/16', '10.0.0.0/8', '10.89.0.0/24', '::/0', 'fd88::/48', 'fd89::/64', '::ffff:10.88.0.0/120']) {
      denied(() => policy.networkInPools(bad, 'route destination'), /outside the pools/);
    }
    // Two pools side by side are not one pool.
    state.scopes.setPools(D, 'n3', ['10.88.1.0/24']);
    denied(() => policy.networkInPools('10.88.0.0/23', 'route destination'));
  });

  test('namespaces only by the sandbox keys dockerd passed to its joins', () => {
    const { state, policy } = setup();
    const key = '/var/run/docker/netns/0123456789ab';
    denied(() => policy.sandbox(key), /not a sandbox dockerd joined to this driver/);
    state.scopes.addSandbox(D, 'n1', 'e1', key);
    state.scopes.addSandbox('other-driver', 'n2', 'e2', '/var/run/docker/netns/ba9876543210');
    policy.sandbox(key);
    for (const bad of ['/var/run/docker/netns/ba9876543210', '/proc/1/ns/net', '/run/netns/x', '', `${key}/`]) denied(() => policy.sandbox(bad));
    denied(() => policy.sandbox(undefined as unknown as string));
    state.scopes.removeSandbox(D, 'n1', 'e1');
    denied(() => policy.sandbox(key));
    // Removing the network removes its sandboxes too.
    state.scopes.addSandbox(D, 'n1', 'e1', key);
    state.scopes.removeNetwork(D, 'n1');
    denied(() => policy.sandbox(key));
  });

  test('the rate limit: bursts of twice the rate, then rate-limited', () => {
    const { policy } = setup({ callsPerSecond: 1 });
    policy.rate();
    policy.rate();
    assert.throws(() => policy.rate(), (e: unknown) => e instanceof RateLimited && /over 1 netlink calls per second/.test(e.message));
  });
});

describe('TokenBucket', () => {
  test('bursts up to `burst`, refills at `rate` per second, never above the burst', () => {
    let now = 1_000;
    const bucket = new TokenBucket(10, 20, () => now);
    for (let i = 0; i < 20; i++) assert.equal(bucket.take(), true, `call ${i}`);
    assert.equal(bucket.take(), false);
    now += 50; // half a token
    assert.equal(bucket.take(), false);
    now += 50; // one
    assert.equal(bucket.take(), true);
    assert.equal(bucket.take(), false);
    now += 60_000; // a long pause fills the bucket only to the burst
    let n = 0;
    while (bucket.take()) n++;
    assert.equal(n, 20);
  });

  test('the default burst is twice the rate', () => {
    const now = 0;
    const bucket = new TokenBucket(3, undefined, () => now);
    let n = 0;
    while (bucket.take()) n++;
    assert.equal(n, 6);
  });
});

/** A backend that records what reaches it and keeps links in a map. */
function fakeBackend() {
  const calls: string[] = [];
  const links = new Map<string, LinkInfo>();
  let index = 10;
  const record = (name: string) => (...args: unknown[]) => void calls.push(`${name} ${JSON.stringify(args)}`);
  const backend = {
    createLink(req: CreateLinkRequest) {
      calls.push(`createLink ${req.name}`);
      const make = (name: string): LinkInfo => ({ index: index++, name, kind: req.kind, mtu: 1500, mac: '', up: false });
      links.set(req.name, make(req.name));
      if (req.peer) links.set(req.peer.name, make(req.peer.name));
      return links.get(req.name)!;
    },
    getLink: (name: string) => links.get(name),
    linkIndex: (name: string) => links.get(name)?.index,
    listLinks: () => [...links.values()],
    deleteLink(name: string) {
      calls.push(`deleteLink ${name}`);
      links.delete(name);
    },
    renameLink(name: string, newName: string) {
      calls.push(`renameLink ${name} ${newName}`);
      const l = links.get(name)!;
      links.delete(name);
      links.set(newName, { ...l, name: newName });
    },
    setLinkUp: record('setLinkUp'),
    setLinkMtu: record('setLinkMtu'),
    setLinkMaster: record('setLinkMaster'),
    setLinkMac: record('setLinkMac'),
    moveLinkToNetns: record('moveLinkToNetns'),
    setBridgePort: record('setBridgePort'),
    addAddress: record('addAddress'),
    deleteAddress: record('deleteAddress'),
    listAddresses: () => [],
    addRoute: record('addRoute'),
    deleteRoute: record('deleteRoute'),
    listRoutes: () => [],
    addNeighbor: record('addNeighbor'),
    deleteNeighbor: record('deleteNeighbor'),
    listNeighbors: () => [],
    addFdbEntry: record('addFdbEntry'),
    deleteFdbEntry: record('deleteFdbEntry'),
    listFdbEntries: () => [],
    close() {},
  } satisfies NetlinkBackend;
  return { backend, calls, links };
}

function brokerSetup(g: Partial<NetlinkGrant> = {}) {
  const state = new SqliteStateStore(':memory:');
  const fake = fakeBackend();
  const nl = netlinkImport({
    backend: fake.backend,
    grant: grantOf(g),
    who: { driver: D, version: '1.0.0' },
    ledger: state.ledger,
    scopes: state.scopes,
    audit: state.audit,
    logger: pino({ level: 'silent' }),
  });
  return { state, nl, ...fake };
}

/** The WIT error a host import threw, as the guest would see it. */
function witErr(f: () => unknown): { tag: string; val: unknown } {
  try {
    f();
  } catch (e) {
    const payload = (e as { payload?: { tag: string; val: unknown } }).payload;
    assert.ok(payload, `threw without a payload: ${String(e)}`);
    return payload;
  }
  assert.fail('the call succeeded');
}

describe('the netlink broker with the policy', () => {
  test('a refused call never reaches the backend, answers denied and is audited as refused', () => {
    const { state, nl, calls } = brokerSetup();
    const refused: [string, () => unknown][] = [
      ['delete-link', () => nl.deleteLink('lo')],
      ['rename-link', () => nl.renameLink('eth0', 'hxeth0')],
      ['set-link-up', () => nl.setLinkUp('eth0', false)],
      ['create-bridge', () => nl.createBridge({ name: 'evil0' })],
      ['create-dummy', () => nl.createDummy({ name: 'hxd0' })],
      ['create-veth', () => nl.createVeth({ name: 'hxv0', peerName: 'evil1' })],
      ['add-address', () => nl.addAddress('eth0', '10.88.0.5/24')],
      ['add-route', () => nl.addRoute({ destination: '0.0.0.0/0', link: 'eth0' })],
      ['move-link-to-sandbox', () => nl.moveLinkToSandbox('eth0', '/run/netns/x')],
      ['get-link', () => nl.getLink('eth0')],
    ];
    for (const [op, f] of refused) assert.equal(witErr(f).tag, 'denied', op);
    assert.deepEqual(calls, [], 'nothing reached the backend');
    const audit = state.audit.query({ driver: D, limit: 1000 });
    assert.deepEqual(audit.map((e) => e.op).reverse(), refused.map(([op]) => op));
    assert.ok(audit.every((e) => !e.allowed && e.version === '1.0.0' && e.error && e.durationMs >= 0));
  });

  test('its own links: created, owned (both veth ends), renamed, deleted; each call audited as allowed', () => {
    const { state, nl, calls } = brokerSetup();
    state.scopes.setPools(D, 'n1', ['10.88.0.0/24']);
    nl.createBridge({ name: 'hxbr0' });
    nl.createVeth({ name: 'hxv0', peerName: 'hxv1' });
    assert.deepEqual(state.ledger.list(D), ['hxbr0', 'hxv0', 'hxv1']);
    nl.setLinkMaster('hxv0', 'hxbr0');
    nl.addAddress('hxbr0', '10.88.0.1/24');
    nl.addRoute({ destination: '10.88.0.128/25', link: 'hxbr0', gateway: '10.88.0.2' });
    nl.renameLink('hxv1', 'hxc1');
    assert.deepEqual(state.ledger.list(D), ['hxbr0', 'hxc1', 'hxv0']);
    assert.equal(witErr(() => nl.setLinkUp('hxv1', true)).tag, 'denied');
    nl.setLinkUp('hxc1', true);
    assert.deepEqual((nl.listLinks() as { name: string }[]).map((l) => l.name).sort(), ['hxbr0', 'hxc1', 'hxv0']); // synchronous: no workers
    nl.deleteLink('hxv0');
    assert.deepEqual(state.ledger.list(D), ['hxbr0']);
    assert.deepEqual(calls.map((c) => c.split(' ')[0]), ['createLink', 'createLink', 'setLinkMaster', 'addAddress', 'addRoute', 'renameLink', 'setLinkUp', 'deleteLink']);
    const audit = state.audit.query({ driver: D, limit: 1000 });
    // The eight above and list-links.
    assert.equal(audit.filter((e) => e.allowed).length, 9);
    assert.equal(audit.filter((e) => !e.allowed).length, 1);
  });

  test('over the rate limit: rate-limited, before any other check, and audited', () => {
    const { state, nl, calls } = brokerSetup({ callsPerSecond: 2 });
    nl.createBridge({ name: 'hxbr0' });
    assert.equal(witErr(() => nl.deleteLink('lo')).tag, 'denied');
    nl.listLinks();
    nl.listLinks();
    const over = witErr(() => nl.createBridge({ name: 'hxbr1' }));
    assert.equal(over.tag, 'rate-limited');
    assert.match(String(over.val), /over 2 netlink calls per second/);
    assert.deepEqual(calls, ['createLink hxbr0']);
    const [last] = state.audit.query({ driver: D, limit: 1 });
    assert.equal(last!.op, 'create-bridge');
    assert.equal(last!.allowed, false);
  });
});
