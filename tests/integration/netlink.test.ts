// Integration tests of the real rtnetlink backend against the kernel. Every
// change happens in private network namespaces created for the run and
// deleted afterwards; each result is checked against what iproute2 reports
// (`ip -j`, `bridge -j`). Needs root: without it the suite is reported as
// skipped.
//
// The tests in the namespace suite build on each other (bridge, then veth,
// then master, addresses, kind-specific links, routes...), in order. Link
// kinds the kernel may lack (dummy, vxlan, macvlan, ipvlan) are probed first
// with iproute2; for a missing kind the test checks that creating it fails
// cleanly with the kernel's errno instead.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import {
  NetlinkError,
  type CreateLinkRequest,
  type FdbEntry,
  type NeighborInfo,
  type RouteInfo,
} from '../../runtime/netlink/backend.ts';
import { RtNetlink } from '../../runtime/netlink/rtnetlink.ts';
import { NetlinkSocket } from '../../runtime/netlink/socket.ts';

/** The parts of `ip -j -d link show` output these tests look at. */
interface IpLink {
  ifindex: number;
  ifname: string;
  mtu: number;
  address?: string;
  flags: string[];
  master?: string;
  /** The parent (macvlan/ipvlan) or peer (veth), by name. */
  link?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: Record<string, unknown>;
    info_slave_kind?: string;
    info_slave_data?: Record<string, unknown>;
  };
}

/** The parts of `ip -j addr show` output these tests look at. */
interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

/** The parts of `ip -j route show` output these tests look at. */
interface IpRoute {
  dst: string;
  gateway?: string;
  metric?: number;
  protocol?: string;
  scope?: string;
}

/** The parts of `ip -j neigh show` output these tests look at. */
interface IpNeigh {
  dst: string;
  lladdr?: string;
  state: string[];
}

/** The parts of `bridge -j fdb show` output these tests look at. */
interface BridgeFdb {
  mac: string;
  dst?: string;
  vni?: number;
  flags: string[];
  state?: string;
}

/** The parts of `bridge -j -d link show` output these tests look at. */
interface BridgeLink {
  ifname: string;
  master?: string;
  hairpin?: boolean;
  isolated?: boolean;
  learning?: boolean;
}

/** Runs `ip -j ...` (in namespace `ns` when given) and parses its JSON. */
function ipJson<T>(ns: string | undefined, args: string[]): T {
  const nsArgs = ns === undefined ? [] : ['-n', ns];
  return JSON.parse(execFileSync('ip', [...nsArgs, '-j', ...args], { encoding: 'utf8' })) as T;
}

/** Runs `bridge -j ...` in namespace `ns` and parses its JSON. */
function bridgeJson<T>(ns: string, args: string[]): T {
  return JSON.parse(execFileSync('bridge', ['-n', ns, '-j', ...args], { encoding: 'utf8' })) as T;
}

function ipLinks(ns: string | undefined): IpLink[] {
  return ipJson<IpLink[]>(ns, ['-d', 'link', 'show']);
}

function ipLink(ns: string, name: string): IpLink | undefined {
  return ipLinks(ns).find((l) => l.ifname === name);
}

/** Addresses of one link as `addr/len`, IPv4 first (the order listAddresses promises). */
function ipAddresses(ns: string, name: string): string[] {
  const [link] = ipJson<IpAddr[]>(ns, ['addr', 'show', 'dev', name]);
  const cidrs = (family: string) =>
    (link?.addr_info ?? []).filter((a) => a.family === family).map((a) => `${a.local}/${a.prefixlen}`);
  return [...cidrs('inet'), ...cidrs('inet6')];
}

/** Main-table routes out of one link, as `ip route show dev` reports them, in RouteInfo form, IPv4 first. */
function ipRoutes(ns: string, link: string): RouteInfo[] {
  const family = (flag: '-4' | '-6', bits: number) =>
    ipJson<IpRoute[]>(ns, [flag, 'route', 'show', 'dev', link]).map((r) => {
      const destination = r.dst === 'default' ? (bits === 32 ? '0.0.0.0/0' : '::/0') : r.dst.includes('/') ? r.dst : `${r.dst}/${bits}`;
      const info: RouteInfo = { destination, link };
      if (r.gateway !== undefined) info.gateway = r.gateway;
      if (r.metric !== undefined) info.metric = r.metric;
      return info;
    });
  return [...family('-4', 32), ...family('-6', 128)];
}

/** The raw `ip route show` entry for one destination (to look at protocol and scope). */
function ipRoute(ns: string, flag: '-4' | '-6', link: string, dst: string): IpRoute | undefined {
  return ipJson<IpRoute[]>(ns, [flag, 'route', 'show', 'dev', link]).find((r) => r.dst === dst);
}

/** ARP/NDP entries with a MAC on one link, as NeighborInfo, IPv4 first. */
function ipNeighbors(ns: string, link: string): NeighborInfo[] {
  const family = (flag: '-4' | '-6') =>
    ipJson<IpNeigh[]>(ns, [flag, 'neigh', 'show', 'dev', link])
      .filter((n) => n.lladdr !== undefined)
      .map((n) => ({ link, ip: n.dst, mac: n.lladdr! }));
  return [...family('-4'), ...family('-6')];
}

/** The link's own ("self") FDB entries, as FdbEntry. */
function bridgeFdbSelf(ns: string, link: string): FdbEntry[] {
  return bridgeJson<BridgeFdb[]>(ns, ['fdb', 'show', 'dev', link])
    .filter((e) => e.flags.includes('self'))
    .map((e) => {
      const entry: FdbEntry = { link, mac: e.mac };
      if (e.dst !== undefined) entry.dst = e.dst;
      if (e.vni !== undefined) entry.vni = e.vni;
      return entry;
    });
}

/** Sorts for comparisons where only membership matters. */
function sorted<T>(items: T[]): T[] {
  return [...items].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** Link names and addresses this suite creates; none may ever appear in the host namespace. */
const OUR_NAMES = [
  'nlt-br',
  'nlt-va',
  'nlt-vb',
  'nlt-vr',
  'nlt-dummy',
  'nlt-vx4',
  'nlt-vx6',
  'nlt-mv',
  'nlt-mv2',
  'nlt-iv',
  'nlt-ma',
  'nlt-mb',
  'nlt-mc',
  'nlt-md',
  'nlt-lk',
  'nlt-lk2',
];
const OUR_ADDRESSES = ['10.77.0.1', '10.78.0.1', 'fd77::1', 'fd78::1', '10.76.0.1', '10.76.0.2'];

/** The calling thread's effective capabilities, as /proc shows them (hex). */
function threadCapEff(): string | undefined {
  return /^CapEff:\s*(\w+)$/m.exec(readFileSync('/proc/thread-self/status', 'utf8'))?.[1];
}

/** Which of our names and addresses the host namespace holds (expected: none). */
function oursInHost(): string[] {
  const names = ipLinks(undefined).map((l) => l.ifname);
  const addrs = ipJson<IpAddr[]>(undefined, ['addr', 'show']).flatMap((l) => l.addr_info.map((a) => a.local));
  return [...OUR_NAMES.filter((n) => names.includes(n)), ...OUR_ADDRESSES.filter((a) => addrs.includes(a))];
}

/** Asserts that `fn` fails with a NetlinkError carrying errno name `code`. */
function assertNetlinkError(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof NetlinkError, `expected a NetlinkError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, new RegExp(`\\(${code}\\)`));
    return true;
  });
}

/** Namespace names are random so that parallel runs do not collide. */
function namespaceName(): string {
  return `wasmnet-nl-${crypto.randomUUID().slice(0, 8)}`;
}

/** iproute2 arguments creating each optional kind; `probe-parent` is a veth that exists in the probe namespace. */
const KIND_PROBES = {
  dummy: ['type', 'dummy'],
  vxlan: ['type', 'vxlan', 'id', '42', 'dstport', '4789', 'local', '10.0.0.1'],
  macvlan: ['link', 'probe-parent', 'type', 'macvlan', 'mode', 'bridge'],
  ipvlan: ['link', 'probe-parent', 'type', 'ipvlan', 'mode', 'l2'],
} as const;
type OptionalKind = keyof typeof KIND_PROBES;

/**
 * For each optional link kind, why it cannot be created here (undefined when
 * it can): some kernels (e.g. minimal VM kernels) are built without some
 * drivers. Probed with iproute2 in a throwaway namespace.
 */
function missingKinds(): Record<OptionalKind, string | undefined> {
  const probeNs = namespaceName();
  execFileSync('ip', ['netns', 'add', probeNs]);
  try {
    execFileSync('ip', ['-n', probeNs, 'link', 'add', 'probe-parent', 'type', 'veth', 'peer', 'name', 'probe-peer']);
    const result = {} as Record<OptionalKind, string | undefined>;
    for (const kind of Object.keys(KIND_PROBES) as OptionalKind[]) {
      const probe = spawnSync('ip', ['-n', probeNs, 'link', 'add', `probe-${kind}`, ...KIND_PROBES[kind]], { encoding: 'utf8' });
      result[kind] = probe.status === 0 ? undefined : `ip: ${probe.stderr.trim()}`;
    }
    return result;
  } finally {
    execFileSync('ip', ['netns', 'delete', probeNs]);
  }
}

const SKIP_REASON = 'netlink integration tests need root: skipped';

if (process.getuid?.() !== 0) {
  console.log(SKIP_REASON);
  test('netlink integration', { skip: SKIP_REASON }, () => {});
} else {
  const missing = missingKinds();
  for (const [kind, reason] of Object.entries(missing)) {
    if (reason !== undefined) console.log(`this kernel has no ${kind} links (${reason}): checking that creating one fails cleanly instead`);
  }

  describe('RtNetlink in a private network namespace', () => {
    const ns = namespaceName();
    /** The namespace links are moved into. */
    const ns2 = namespaceName();
    let nl: RtNetlink;
    let threadNetnsBefore: string;

    before(() => {
      assert.deepEqual(oursInHost(), [], 'the host already has links or addresses this suite uses');
      threadNetnsBefore = readlinkSync('/proc/thread-self/ns/net');
      execFileSync('ip', ['netns', 'add', ns]);
      execFileSync('ip', ['netns', 'add', ns2]);
      nl = new RtNetlink({ netns: `/var/run/netns/${ns}` });
    });

    after(() => {
      nl?.close();
      execFileSync('ip', ['netns', 'delete', ns]);
      execFileSync('ip', ['netns', 'delete', ns2]);
    });

    test('the thread is back in its own namespace after opening the socket', () => {
      assert.equal(readlinkSync('/proc/thread-self/ns/net'), threadNetnsBefore);
    });

    test('a new namespace holds only lo', () => {
      const links = nl.listLinks();
      assert.deepEqual(
        links.map((l) => l.name),
        ['lo'],
      );
      assert.equal(links[0]?.kind, 'other');
    });

    test('create a bridge with an mtu', () => {
      const br = nl.createLink({ name: 'nlt-br', kind: 'bridge', mtu: 1400 });
      const ip = ipLink(ns, 'nlt-br');
      assert.ok(ip, 'ip does not see nlt-br');
      assert.equal(ip.linkinfo?.info_kind, 'bridge');
      assert.deepEqual(br, { index: ip.ifindex, name: 'nlt-br', kind: 'bridge', mtu: 1400, mac: ip.address, up: false });
    });

    test('create a veth pair with mtu and MACs on both ends', () => {
      const veth = nl.createLink({
        name: 'nlt-va',
        kind: 'veth',
        mtu: 1400,
        mac: '02:42:ac:11:00:0a',
        peer: { name: 'nlt-vb', mtu: 1400, mac: '02:42:ac:11:00:0b' },
      });
      const a = ipLink(ns, 'nlt-va');
      const b = ipLink(ns, 'nlt-vb');
      assert.ok(a && b, 'ip does not see both ends');
      assert.deepEqual(veth, { index: a.ifindex, name: 'nlt-va', kind: 'veth', mtu: 1400, mac: '02:42:ac:11:00:0a', up: false });
      assert.equal(a.address, '02:42:ac:11:00:0a');
      assert.equal(b.address, '02:42:ac:11:00:0b');
      assert.equal(b.mtu, 1400);
      assert.equal(b.linkinfo?.info_kind, 'veth');
      assert.deepEqual(nl.getLink('nlt-vb'), { index: b.ifindex, name: 'nlt-vb', kind: 'veth', mtu: 1400, mac: '02:42:ac:11:00:0b', up: false });
    });

    // Whether the kernel has the dummy driver is a fact of the machine: the
    // test checks whichever behaviour the kernel has.
    if (missing.dummy === undefined) {
      test('create a dummy link', () => {
        const dummy = nl.createLink({ name: 'nlt-dummy', kind: 'dummy', mtu: 2000 });
        const ip = ipLink(ns, 'nlt-dummy');
        assert.ok(ip, 'ip does not see nlt-dummy');
        assert.equal(ip.linkinfo?.info_kind, 'dummy');
        assert.deepEqual(dummy, { index: ip.ifindex, name: 'nlt-dummy', kind: 'dummy', mtu: 2000, mac: ip.address, up: false });
        nl.deleteLink('nlt-dummy');
        assert.equal(ipLink(ns, 'nlt-dummy'), undefined);
      });
    } else {
      test('without the dummy driver, creating a dummy link fails with EOPNOTSUPP', () => {
        assertNetlinkError(() => nl.createLink({ name: 'nlt-dummy', kind: 'dummy' }), 'EOPNOTSUPP');
        assert.equal(ipLink(ns, 'nlt-dummy'), undefined);
      });
    }

    test('set master, then nomaster', () => {
      nl.setLinkMaster('nlt-va', 'nlt-br');
      assert.equal(ipLink(ns, 'nlt-va')?.master, 'nlt-br');
      assert.equal(nl.getLink('nlt-va')?.master, 'nlt-br');
      nl.setLinkMaster('nlt-vb', 'nlt-br');
      assert.equal(ipLink(ns, 'nlt-vb')?.master, 'nlt-br');
      nl.setLinkMaster('nlt-vb', null);
      assert.equal(ipLink(ns, 'nlt-vb')?.master, undefined);
      assert.equal(nl.getLink('nlt-vb')?.master, undefined);
    });

    test('set links up and down', () => {
      nl.setLinkUp('nlt-br', true);
      nl.setLinkUp('nlt-va', true);
      assert.ok(ipLink(ns, 'nlt-br')?.flags.includes('UP'));
      assert.ok(ipLink(ns, 'nlt-va')?.flags.includes('UP'));
      assert.equal(nl.getLink('nlt-va')?.up, true);
      nl.setLinkUp('nlt-va', false);
      assert.ok(!ipLink(ns, 'nlt-va')?.flags.includes('UP'));
      assert.equal(nl.getLink('nlt-va')?.up, false);
      nl.setLinkUp('nlt-va', true);
    });

    test('set the mtu', () => {
      nl.setLinkMtu('nlt-vb', 9000);
      assert.equal(ipLink(ns, 'nlt-vb')?.mtu, 9000);
      assert.equal(nl.getLink('nlt-vb')?.mtu, 9000);
    });

    test('set the MAC', () => {
      nl.setLinkMac('nlt-vb', '02:42:ac:11:00:bb');
      assert.equal(ipLink(ns, 'nlt-vb')?.address, '02:42:ac:11:00:bb');
      assert.equal(nl.getLink('nlt-vb')?.mac, '02:42:ac:11:00:bb');
    });

    test('rename a link, and back', () => {
      const index = ipLink(ns, 'nlt-vb')?.ifindex;
      nl.renameLink('nlt-vb', 'nlt-vr');
      assert.equal(ipLink(ns, 'nlt-vb'), undefined);
      assert.equal(ipLink(ns, 'nlt-vr')?.ifindex, index);
      assert.equal(nl.getLink('nlt-vr')?.index, index);
      assert.equal(nl.getLink('nlt-vb'), undefined);
      nl.renameLink('nlt-vr', 'nlt-vb');
      assert.equal(ipLink(ns, 'nlt-vb')?.ifindex, index);
    });

    test('bridge-port settings: hairpin, isolated, learning', () => {
      const port = () => {
        const [link] = bridgeJson<BridgeLink[]>(ns, ['-d', 'link', 'show', 'dev', 'nlt-va']);
        assert.ok(link, 'bridge does not see nlt-va as a port');
        return { hairpin: link.hairpin, isolated: link.isolated, learning: link.learning };
      };
      assert.deepEqual(port(), { hairpin: false, isolated: false, learning: true });
      nl.setBridgePort('nlt-va', { hairpin: true, isolated: true, learning: false });
      assert.deepEqual(port(), { hairpin: true, isolated: true, learning: false });
      const slave = ipLink(ns, 'nlt-va')?.linkinfo;
      assert.equal(slave?.info_slave_kind, 'bridge');
      assert.equal(slave?.info_slave_data?.['hairpin'], true);
      assert.equal(slave?.info_slave_data?.['isolated'], true);
      assert.equal(slave?.info_slave_data?.['learning'], false);
      // Settings left out stay as they are.
      nl.setBridgePort('nlt-va', { learning: true });
      assert.deepEqual(port(), { hairpin: true, isolated: true, learning: true });
      nl.setBridgePort('nlt-va', { hairpin: false, isolated: false });
      assert.deepEqual(port(), { hairpin: false, isolated: false, learning: true });
      nl.setBridgePort('nlt-va', {});
      assert.deepEqual(port(), { hairpin: false, isolated: false, learning: true });
    });

    test('listLinks agrees with ip link show', () => {
      const expected = ipLinks(ns).map((l) => ({
        index: l.ifindex,
        name: l.ifname,
        mtu: l.mtu,
        up: l.flags.includes('UP'),
        master: l.master,
      }));
      const actual = nl.listLinks().map((l) => ({ index: l.index, name: l.name, mtu: l.mtu, up: l.up, master: l.master }));
      assert.deepEqual(actual, expected);
    });

    test('add IPv4 and IPv6 addresses and list them', () => {
      nl.addAddress('nlt-br', '10.77.0.1/24');
      nl.addAddress('nlt-br', 'fd77::1/64');
      nl.addAddress('nlt-br', '10.78.0.1/16');
      const listed = nl.listAddresses('nlt-br');
      assert.deepEqual(listed, ipAddresses(ns, 'nlt-br'));
      for (const cidr of ['10.77.0.1/24', '10.78.0.1/16', 'fd77::1/64']) assert.ok(listed.includes(cidr), `${cidr} missing`);
      assert.ok(listed.indexOf('10.78.0.1/16') < listed.indexOf('fd77::1/64'), 'IPv4 comes before IPv6');
    });

    test('delete an address', () => {
      nl.deleteAddress('nlt-br', '10.77.0.1/24');
      nl.deleteAddress('nlt-br', 'fd77::1/64');
      const listed = nl.listAddresses('nlt-br');
      assert.deepEqual(listed, ipAddresses(ns, 'nlt-br'));
      assert.ok(!listed.includes('10.77.0.1/24') && !listed.includes('fd77::1/64'));
      assert.ok(listed.includes('10.78.0.1/16'));
      nl.addAddress('nlt-br', 'fd78::1/64');
    });

    test('a link is looked up afresh for every operation: renamed and replaced behind our back', () => {
      execFileSync('ip', ['-n', ns, 'link', 'add', 'nlt-lk', 'type', 'bridge']);
      nl.addAddress('nlt-lk', '10.76.0.1/32');
      const first = ipLink(ns, 'nlt-lk')?.ifindex;
      // Someone else (dockerd) renames the link and gives its name to a new one.
      execFileSync('ip', ['-n', ns, 'link', 'set', 'nlt-lk', 'name', 'nlt-lk2']);
      execFileSync('ip', ['-n', ns, 'link', 'add', 'nlt-lk', 'type', 'bridge']);
      assert.notEqual(ipLink(ns, 'nlt-lk')?.ifindex, first);
      nl.addAddress('nlt-lk', '10.76.0.2/32');
      assert.deepEqual(ipAddresses(ns, 'nlt-lk'), ['10.76.0.2/32']);
      assert.deepEqual(ipAddresses(ns, 'nlt-lk2'), ['10.76.0.1/32']);
      assert.equal(nl.getLink('nlt-lk')?.index, ipLink(ns, 'nlt-lk')?.ifindex);
      // And then deletes it.
      execFileSync('ip', ['-n', ns, 'link', 'del', 'nlt-lk']);
      assertNetlinkError(() => nl.deleteAddress('nlt-lk', '10.76.0.2/32'), 'ENODEV');
      nl.deleteAddress('nlt-lk2', '10.76.0.1/32');
      assert.deepEqual(ipAddresses(ns, 'nlt-lk2'), []);
      execFileSync('ip', ['-n', ns, 'link', 'del', 'nlt-lk2']);
    });

    test('looking links up leaves the thread with the capabilities it had, for a missing link too', () => {
      const before = threadCapEff();
      assert.ok(before !== undefined && before !== '0000000000000000', 'the test runs with capabilities');
      assertNetlinkError(() => nl.addAddress('no-such-link', '10.0.0.1/24'), 'ENODEV');
      assert.deepEqual(nl.listAddresses('nlt-br'), ipAddresses(ns, 'nlt-br'));
      assert.equal(threadCapEff(), before);
    });

    if (missing.vxlan === undefined) {
      test('create an IPv4 vxlan: VNI, local, port, no learning, mtu, MAC', () => {
        const vx = nl.createLink({
          name: 'nlt-vx4',
          kind: 'vxlan',
          mtu: 1450,
          mac: '02:42:0a:00:00:04',
          vxlan: { vni: 4242, local: '10.78.0.1', port: 4789, learning: false },
        });
        const ip = ipLink(ns, 'nlt-vx4');
        assert.ok(ip, 'ip does not see nlt-vx4');
        assert.deepEqual(vx, { index: ip.ifindex, name: 'nlt-vx4', kind: 'vxlan', mtu: 1450, mac: '02:42:0a:00:00:04', up: false });
        assert.equal(ip.linkinfo?.info_kind, 'vxlan');
        const data = ip.linkinfo?.info_data ?? {};
        assert.equal(data['id'], 4242);
        assert.equal(data['local'], '10.78.0.1');
        assert.equal(data['port'], 4789);
        assert.equal(data['learning'], false);
        assert.equal(data['link'], undefined);
      });

      test('create an IPv6 vxlan: largest VNI, multicast group on an underlay, kernel default port, learning', () => {
        const vx = nl.createLink({ name: 'nlt-vx6', kind: 'vxlan', vxlan: { vni: 16777215, group: 'ff05::42', underlay: 'nlt-br', learning: true } });
        const ip = ipLink(ns, 'nlt-vx6');
        assert.ok(ip, 'ip does not see nlt-vx6');
        assert.equal(vx.kind, 'vxlan');
        assert.equal(vx.index, ip.ifindex);
        const data = ip.linkinfo?.info_data ?? {};
        assert.equal(data['id'], 16777215);
        assert.equal(data['group6'], 'ff05::42');
        assert.equal(data['link'], 'nlt-br');
        assert.equal(data['port'], 8472);
        assert.equal(data['learning'], true);
      });

      test('vxlan refusals by the kernel are NetlinkErrors', () => {
        // Another vxlan with the same VNI and local address.
        assertNetlinkError(
          () => nl.createLink({ name: 'nlt-mv', kind: 'vxlan', vxlan: { vni: 4242, local: '10.78.0.1', port: 4789, learning: false } }),
          'EEXIST',
        );
        // A multicast group needs an underlay link.
        assertNetlinkError(() => nl.createLink({ name: 'nlt-mv', kind: 'vxlan', vxlan: { vni: 7, group: '239.1.1.1', learning: true } }), 'EINVAL');
        assertNetlinkError(
          () => nl.createLink({ name: 'nlt-mv', kind: 'vxlan', vxlan: { vni: 7, underlay: 'no-such-link', learning: true } }),
          'ENODEV',
        );
        assert.equal(ipLink(ns, 'nlt-mv'), undefined);
      });
    } else {
      test('without the vxlan driver, creating a vxlan link fails with EOPNOTSUPP', () => {
        assertNetlinkError(() => nl.createLink({ name: 'nlt-vx4', kind: 'vxlan', vxlan: { vni: 4242, learning: false } }), 'EOPNOTSUPP');
        assert.equal(ipLink(ns, 'nlt-vx4'), undefined);
      });
    }

    if (missing.macvlan === undefined) {
      test('create macvlan links in bridge and vepa mode on a parent', () => {
        const mv = nl.createLink({ name: 'nlt-mv', kind: 'macvlan', mac: '02:42:0a:00:00:0c', macvlan: { parent: 'nlt-vb', mode: 'bridge' } });
        const ip = ipLink(ns, 'nlt-mv');
        assert.ok(ip, 'ip does not see nlt-mv');
        assert.deepEqual(mv, { index: ip.ifindex, name: 'nlt-mv', kind: 'macvlan', mtu: 9000, mac: '02:42:0a:00:00:0c', up: false });
        assert.equal(ip.linkinfo?.info_kind, 'macvlan');
        assert.equal(ip.linkinfo?.info_data?.['mode'], 'bridge');
        assert.equal(ip.link, 'nlt-vb');
        nl.createLink({ name: 'nlt-mv2', kind: 'macvlan', macvlan: { parent: 'nlt-vb', mode: 'vepa' } });
        assert.equal(ipLink(ns, 'nlt-mv2')?.linkinfo?.info_data?.['mode'], 'vepa');
        assert.equal(nl.getLink('nlt-mv2')?.kind, 'macvlan');
        nl.deleteLink('nlt-mv2');
        nl.createLink({ name: 'nlt-mv2', kind: 'macvlan', macvlan: { parent: 'nlt-vb', mode: 'private' } });
        assert.equal(ipLink(ns, 'nlt-mv2')?.linkinfo?.info_data?.['mode'], 'private');
        nl.deleteLink('nlt-mv2');
      });

      test('macvlan refusals by the kernel are NetlinkErrors', () => {
        // passthru takes the parent over: not while it has other macvlans.
        assertNetlinkError(() => nl.createLink({ name: 'nlt-mv2', kind: 'macvlan', macvlan: { parent: 'nlt-vb', mode: 'passthru' } }), 'EINVAL');
        assertNetlinkError(() => nl.createLink({ name: 'nlt-mv2', kind: 'macvlan', macvlan: { parent: 'no-such-link', mode: 'bridge' } }), 'ENODEV');
        assertNetlinkError(() => nl.createLink({ name: 'nlt-mv', kind: 'macvlan', macvlan: { parent: 'nlt-vb', mode: 'bridge' } }), 'EEXIST');
        assert.equal(ipLink(ns, 'nlt-mv2'), undefined);
      });
    } else {
      test('without the macvlan driver, creating a macvlan link fails with EOPNOTSUPP', () => {
        assertNetlinkError(() => nl.createLink({ name: 'nlt-mv', kind: 'macvlan', macvlan: { parent: 'nlt-vb', mode: 'bridge' } }), 'EOPNOTSUPP');
        assert.equal(ipLink(ns, 'nlt-mv'), undefined);
      });
    }

    if (missing.ipvlan === undefined) {
      test('create an ipvlan link in l3 mode on a parent', () => {
        // ipvlan cannot share a parent with macvlans (nlt-vb) nor sit on a bridge port (nlt-va): a fresh veth.
        nl.createLink({ name: 'nlt-ma', kind: 'veth', peer: { name: 'nlt-mb' } });
        const iv = nl.createLink({ name: 'nlt-iv', kind: 'ipvlan', ipvlan: { parent: 'nlt-ma', mode: 'l3' } });
        const ip = ipLink(ns, 'nlt-iv');
        assert.ok(ip, 'ip does not see nlt-iv');
        assert.equal(iv.kind, 'ipvlan');
        assert.equal(ip.linkinfo?.info_kind, 'ipvlan');
        assert.equal(ip.linkinfo?.info_data?.['mode'], 'l3');
        assert.equal(ip.link, 'nlt-ma');
        nl.deleteLink('nlt-iv');
        nl.deleteLink('nlt-ma');
      });
    } else {
      test('without the ipvlan driver, creating an ipvlan link fails with EOPNOTSUPP', () => {
        assertNetlinkError(() => nl.createLink({ name: 'nlt-iv', kind: 'ipvlan', ipvlan: { parent: 'nlt-vb', mode: 'l3' } }), 'EOPNOTSUPP');
        assert.equal(ipLink(ns, 'nlt-iv'), undefined);
      });
    }

    test('add routes: through a gateway, on a link with a metric, IPv6, default', () => {
      nl.addRoute({ destination: '10.79.0.0/16', gateway: '10.78.0.254' });
      nl.addRoute({ destination: '10.80.0.0/24', link: 'nlt-br', metric: 20 });
      nl.addRoute({ destination: '10.81.0.7/32', gateway: '10.78.0.253', link: 'nlt-br' });
      nl.addRoute({ destination: 'fd79::/48', gateway: 'fd78::fe', link: 'nlt-br' });
      nl.addRoute({ destination: '0.0.0.0/0', gateway: '10.78.0.254', metric: 100 });
      const gw = ipRoute(ns, '-4', 'nlt-br', '10.79.0.0/16');
      assert.deepEqual([gw?.gateway, gw?.protocol, gw?.scope, gw?.metric], ['10.78.0.254', 'static', undefined, undefined]);
      assert.equal(ipRoute(ns, '-4', 'nlt-br', '10.80.0.0/24')?.scope, 'link');
      assert.equal(ipRoute(ns, '-4', 'nlt-br', '10.80.0.0/24')?.metric, 20);
      assert.equal(ipRoute(ns, '-4', 'nlt-br', '10.81.0.7')?.gateway, '10.78.0.253');
      assert.equal(ipRoute(ns, '-6', 'nlt-br', 'fd79::/48')?.gateway, 'fd78::fe');
      assert.equal(ipRoute(ns, '-4', 'nlt-br', 'default')?.metric, 100);
    });

    test('listRoutes agrees with ip route show dev, kernel prefix routes included', () => {
      const listed = nl.listRoutes('nlt-br');
      assert.deepEqual(listed, ipRoutes(ns, 'nlt-br'));
      for (const expected of [
        { destination: '0.0.0.0/0', gateway: '10.78.0.254', link: 'nlt-br', metric: 100 },
        { destination: '10.78.0.0/16', link: 'nlt-br' },
        { destination: '10.79.0.0/16', gateway: '10.78.0.254', link: 'nlt-br' },
        { destination: '10.80.0.0/24', link: 'nlt-br', metric: 20 },
        { destination: '10.81.0.7/32', gateway: '10.78.0.253', link: 'nlt-br' },
        { destination: 'fd78::/64', link: 'nlt-br', metric: 256 },
        { destination: 'fd79::/48', gateway: 'fd78::fe', link: 'nlt-br', metric: 1024 },
      ]) {
        assert.ok(
          listed.some((r) => JSON.stringify(sorted(Object.entries(r))) === JSON.stringify(sorted(Object.entries(expected)))),
          `missing ${JSON.stringify(expected)} in ${JSON.stringify(listed)}`,
        );
      }
      assert.deepEqual(nl.listRoutes('nlt-va'), ipRoutes(ns, 'nlt-va'));
    });

    test('delete routes', () => {
      nl.deleteRoute({ destination: '10.79.0.0/16', gateway: '10.78.0.254' });
      nl.deleteRoute({ destination: '10.80.0.0/24', link: 'nlt-br', metric: 20 });
      nl.deleteRoute({ destination: 'fd79::/48', gateway: 'fd78::fe', link: 'nlt-br' });
      nl.deleteRoute({ destination: '0.0.0.0/0', gateway: '10.78.0.254' });
      const listed = nl.listRoutes('nlt-br');
      assert.deepEqual(listed, ipRoutes(ns, 'nlt-br'));
      assert.deepEqual(
        listed.map((r) => r.destination).filter((d) => ['10.79.0.0/16', '10.80.0.0/24', 'fd79::/48', '0.0.0.0/0'].includes(d)),
        [],
      );
      assert.ok(listed.some((r) => r.destination === '10.81.0.7/32'));
    });

    test('route refusals by the kernel are NetlinkErrors', () => {
      assertNetlinkError(() => nl.addRoute({ destination: '10.81.0.7/32', gateway: '10.78.0.253', link: 'nlt-br' }), 'EEXIST');
      assertNetlinkError(() => nl.addRoute({ destination: '10.82.0.0/24', gateway: '192.168.250.1' }), 'ENETUNREACH');
      assertNetlinkError(() => nl.addRoute({ destination: '10.82.0.0/24', link: 'no-such-link' }), 'ENODEV');
      assertNetlinkError(() => nl.deleteRoute({ destination: '10.79.0.0/16', gateway: '10.78.0.254' }), 'ESRCH');
      assertNetlinkError(() => nl.deleteRoute({ destination: 'fd79::/48', link: 'nlt-br' }), 'ESRCH');
      assertNetlinkError(() => nl.listRoutes('no-such-link'), 'ENODEV');
    });

    test('add permanent IPv4 and IPv6 neighbours and list them', () => {
      nl.addNeighbor({ link: 'nlt-br', ip: '10.78.0.9', mac: '02:42:0a:4e:00:09' });
      nl.addNeighbor({ link: 'nlt-br', ip: 'fd78::9', mac: '02:42:0a:4e:00:99' });
      nl.addNeighbor({ link: 'nlt-br', ip: '10.78.0.10', mac: '02:42:0a:4e:00:0a' });
      const states = ipJson<IpNeigh[]>(ns, ['neigh', 'show', 'dev', 'nlt-br']).map((n) => [n.dst, n.state]);
      assert.deepEqual(sorted(states), sorted([['10.78.0.9', ['PERMANENT']], ['10.78.0.10', ['PERMANENT']], ['fd78::9', ['PERMANENT']]]));
      const listed = nl.listNeighbors('nlt-br');
      assert.deepEqual(sorted(listed), sorted(ipNeighbors(ns, 'nlt-br')));
      assert.deepEqual(sorted(listed), sorted([
        { link: 'nlt-br', ip: '10.78.0.9', mac: '02:42:0a:4e:00:09' },
        { link: 'nlt-br', ip: '10.78.0.10', mac: '02:42:0a:4e:00:0a' },
        { link: 'nlt-br', ip: 'fd78::9', mac: '02:42:0a:4e:00:99' },
      ]));
      assert.equal(listed.at(-1)?.ip, 'fd78::9', 'IPv4 comes before IPv6');
    });

    test('delete a neighbour', () => {
      nl.deleteNeighbor({ link: 'nlt-br', ip: '10.78.0.10', mac: '02:42:0a:4e:00:0a' });
      nl.deleteNeighbor({ link: 'nlt-br', ip: 'fd78::9', mac: '02:42:0a:4e:00:99' });
      assert.deepEqual(nl.listNeighbors('nlt-br'), [{ link: 'nlt-br', ip: '10.78.0.9', mac: '02:42:0a:4e:00:09' }]);
      assert.deepEqual(ipNeighbors(ns, 'nlt-br'), [{ link: 'nlt-br', ip: '10.78.0.9', mac: '02:42:0a:4e:00:09' }]);
    });

    test('neighbour refusals by the kernel are NetlinkErrors', () => {
      assertNetlinkError(() => nl.addNeighbor({ link: 'nlt-br', ip: '10.78.0.9', mac: '02:42:0a:4e:00:08' }), 'EEXIST');
      assertNetlinkError(() => nl.deleteNeighbor({ link: 'nlt-br', ip: '10.78.0.10', mac: '02:42:0a:4e:00:0a' }), 'ENOENT');
      assertNetlinkError(() => nl.addNeighbor({ link: 'no-such-link', ip: '10.78.0.11', mac: '02:42:0a:4e:00:0b' }), 'ENODEV');
      assertNetlinkError(() => nl.listNeighbors('no-such-link'), 'ENODEV');
    });

    test('FDB entries on a plain link (its own address list)', () => {
      nl.addFdbEntry({ link: 'nlt-vb', mac: '02:42:0a:4e:00:77' });
      const listed = nl.listFdbEntries('nlt-vb');
      assert.deepEqual(sorted(listed), sorted(bridgeFdbSelf(ns, 'nlt-vb')));
      assert.ok(listed.some((e) => e.mac === '02:42:0a:4e:00:77' && e.dst === undefined));
      nl.deleteFdbEntry({ link: 'nlt-vb', mac: '02:42:0a:4e:00:77' });
      assert.ok(!nl.listFdbEntries('nlt-vb').some((e) => e.mac === '02:42:0a:4e:00:77'));
      assert.ok(!bridgeFdbSelf(ns, 'nlt-vb').some((e) => e.mac === '02:42:0a:4e:00:77'));
      assertNetlinkError(() => nl.addFdbEntry({ link: 'no-such-link', mac: '02:42:0a:4e:00:77' }), 'ENODEV');
    });

    if (missing.vxlan === undefined) {
      test('vxlan FDB entries: default destinations appended, a unicast MAC, a VNI', () => {
        nl.addFdbEntry({ link: 'nlt-vx4', mac: '00:00:00:00:00:00', dst: '10.78.0.2' });
        nl.addFdbEntry({ link: 'nlt-vx4', mac: '00:00:00:00:00:00', dst: '10.78.0.3', vni: 99 });
        nl.addFdbEntry({ link: 'nlt-vx4', mac: '02:42:0a:4e:00:44', dst: '10.78.0.4' });
        // Appending the same remote again is not an error.
        nl.addFdbEntry({ link: 'nlt-vx4', mac: '00:00:00:00:00:00', dst: '10.78.0.2' });
        const states = bridgeJson<BridgeFdb[]>(ns, ['fdb', 'show', 'dev', 'nlt-vx4']).map((e) => [e.mac, e.dst, e.flags, e.state]);
        assert.deepEqual(sorted(states), sorted([
          ['00:00:00:00:00:00', '10.78.0.2', ['self'], 'permanent'],
          ['00:00:00:00:00:00', '10.78.0.3', ['self'], 'permanent'],
          ['02:42:0a:4e:00:44', '10.78.0.4', ['self'], 'permanent'],
        ]));
        const listed = nl.listFdbEntries('nlt-vx4');
        assert.deepEqual(sorted(listed), sorted(bridgeFdbSelf(ns, 'nlt-vx4')));
        assert.deepEqual(sorted(listed), sorted([
          { link: 'nlt-vx4', mac: '00:00:00:00:00:00', dst: '10.78.0.2' },
          { link: 'nlt-vx4', mac: '00:00:00:00:00:00', dst: '10.78.0.3', vni: 99 },
          { link: 'nlt-vx4', mac: '02:42:0a:4e:00:44', dst: '10.78.0.4' },
        ]));
      });

      test('delete vxlan FDB entries: one remote, then a whole MAC', () => {
        nl.deleteFdbEntry({ link: 'nlt-vx4', mac: '00:00:00:00:00:00', dst: '10.78.0.2' });
        nl.deleteFdbEntry({ link: 'nlt-vx4', mac: '02:42:0a:4e:00:44' });
        const listed = nl.listFdbEntries('nlt-vx4');
        assert.deepEqual(listed, bridgeFdbSelf(ns, 'nlt-vx4'));
        assert.deepEqual(listed, [{ link: 'nlt-vx4', mac: '00:00:00:00:00:00', dst: '10.78.0.3', vni: 99 }]);
      });

      test('vxlan FDB refusals by the kernel are NetlinkErrors', () => {
        assertNetlinkError(() => nl.deleteFdbEntry({ link: 'nlt-vx4', mac: '02:42:0a:4e:00:45' }), 'ENOENT');
        // An IPv6 remote on an IPv4 vxlan.
        assertNetlinkError(() => nl.addFdbEntry({ link: 'nlt-vx4', mac: '02:42:0a:4e:00:45', dst: 'fd78::45' }), 'EAFNOSUPPORT');
        // A vxlan entry needs a remote.
        assertNetlinkError(() => nl.addFdbEntry({ link: 'nlt-vx4', mac: '02:42:0a:4e:00:45' }), 'EINVAL');
      });
    }

    test('move a link into another namespace', () => {
      // A fresh veth pair: nlt-vb has macvlans on it, which the kernel would
      // delete when their parent leaves.
      nl.createLink({ name: 'nlt-ma', kind: 'veth', peer: { name: 'nlt-mb', mac: '02:42:0a:4e:00:bb' } });
      nl.moveLinkToNetns('nlt-mb', `/var/run/netns/${ns2}`);
      assert.equal(ipLink(ns, 'nlt-mb'), undefined);
      assert.equal(nl.getLink('nlt-mb'), undefined);
      const moved = ipLink(ns2, 'nlt-mb');
      assert.ok(moved, 'ip does not see nlt-mb in the second namespace');
      assert.equal(moved.address, '02:42:0a:4e:00:bb');
      const nl2 = new RtNetlink({ netns: `/var/run/netns/${ns2}` });
      try {
        assert.deepEqual(nl2.getLink('nlt-mb'), { index: moved.ifindex, name: 'nlt-mb', kind: 'veth', mtu: 1500, mac: '02:42:0a:4e:00:bb', up: false });
        // And it can be worked on there.
        nl2.addAddress('nlt-mb', '10.90.0.2/24');
        assert.deepEqual(ipAddresses(ns2, 'nlt-mb'), ['10.90.0.2/24']);
      } finally {
        nl2.close();
      }
      // The peer stays behind.
      assert.equal(nl.getLink('nlt-ma')?.kind, 'veth');
      assert.equal(readlinkSync('/proc/thread-self/ns/net'), threadNetnsBefore);
    });

    test('move refusals are NetlinkErrors', () => {
      // A link of the same name already in the target namespace.
      execFileSync('ip', ['-n', ns2, 'link', 'add', 'nlt-mc', 'type', 'veth', 'peer', 'name', 'nlt-md']);
      nl.createLink({ name: 'nlt-mc', kind: 'veth', peer: { name: 'nlt-md' } });
      assertNetlinkError(() => nl.moveLinkToNetns('nlt-mc', `/var/run/netns/${ns2}`), 'EEXIST');
      assert.ok(ipLink(ns, 'nlt-mc'), 'nlt-mc left despite the refusal');
      nl.deleteLink('nlt-mc');
      // A bridge is bound to its namespace (the kernel says "The interface netns is immutable").
      assertNetlinkError(() => nl.moveLinkToNetns('nlt-br', `/var/run/netns/${ns2}`), 'EINVAL');
      assert.ok(ipLink(ns, 'nlt-br'));
      // Not a namespace file, and no file.
      assertNetlinkError(() => nl.moveLinkToNetns('nlt-ma', '/etc/hostname'), 'EINVAL');
      assertNetlinkError(() => nl.moveLinkToNetns('nlt-ma', `/var/run/netns/${ns}-none`), 'ENOENT');
      assertNetlinkError(() => nl.moveLinkToNetns('no-such-link', `/var/run/netns/${ns2}`), 'ENODEV');
      assert.ok(ipLink(ns, 'nlt-ma'));
    });

    test('kernel refusals are NetlinkErrors with the errno name', () => {
      assertNetlinkError(() => nl.createLink({ name: 'nlt-br', kind: 'bridge' }), 'EEXIST');
      assertNetlinkError(() => nl.deleteLink('no-such-link'), 'ENODEV');
      assertNetlinkError(() => nl.setLinkUp('no-such-link', true), 'ENODEV');
      assertNetlinkError(() => nl.setLinkMaster('nlt-vb', 'no-such-br'), 'ENODEV');
      assertNetlinkError(() => nl.setLinkMac('no-such-link', '02:00:00:00:00:01'), 'ENODEV');
      assertNetlinkError(() => nl.renameLink('nlt-vb', 'nlt-va'), 'EEXIST');
      assertNetlinkError(() => nl.renameLink('no-such-link', 'nlt-vz'), 'ENODEV');
      // Bridge-port settings on a link that is not a bridge port.
      assertNetlinkError(() => nl.setBridgePort('nlt-vb', { hairpin: true }), 'EOPNOTSUPP');
      assertNetlinkError(() => nl.setBridgePort('no-such-link', { hairpin: true }), 'ENODEV');
      assertNetlinkError(() => nl.addAddress('no-such-link', '10.0.0.1/24'), 'ENODEV');
      assertNetlinkError(() => nl.addAddress('nlt-br', '10.78.0.1/16'), 'EEXIST');
      assertNetlinkError(() => nl.deleteAddress('nlt-br', '10.99.0.1/24'), 'EADDRNOTAVAIL');
      assert.equal(nl.getLink('no-such-link'), undefined);
      assert.throws(() => nl.createLink({ name: 'nlt-br', kind: 'bridge' }), {
        message: 'create link nlt-br: File exists (EEXIST)',
      });
    });

    test('bad input is rejected before anything is sent', () => {
      const state = () =>
        JSON.stringify([
          ipLinks(ns).map((l) => [l.ifindex, l.ifname, l.mtu, l.address, l.master, l.linkinfo?.info_slave_data?.['hairpin']]),
          ipJson<IpAddr[]>(ns, ['addr', 'show']).map((l) => [l.ifname, l.addr_info.map((a) => `${a.local}/${a.prefixlen}`)]),
          ipJson<unknown[]>(ns, ['route', 'show', 'table', 'all']),
          ipJson<unknown[]>(ns, ['-6', 'route', 'show', 'table', 'main']),
          ipJson<unknown[]>(ns, ['neigh', 'show']),
          bridgeJson<BridgeFdb[]>(ns, ['fdb', 'show']).filter((e) => e.flags.includes('self')),
          ipLinks(ns2).map((l) => l.ifname),
        ]);
      const before = state();
      const vx = (vxlan: Partial<NonNullable<CreateLinkRequest['vxlan']>>) =>
        nl.createLink({ name: 'ok0', kind: 'vxlan', vxlan: { vni: 1, learning: true, ...vxlan } as CreateLinkRequest['vxlan'] });
      const mv = (macvlan: unknown) => nl.createLink({ name: 'ok0', kind: 'macvlan', macvlan } as CreateLinkRequest);
      const iv = (ipvlan: unknown) => nl.createLink({ name: 'ok0', kind: 'ipvlan', ipvlan } as CreateLinkRequest);
      const route = (r: Partial<RouteInfo>) => nl.addRoute({ destination: '10.95.0.0/24', link: 'nlt-br', ...r });
      const neigh = (n: Partial<NeighborInfo>) => nl.addNeighbor({ link: 'nlt-br', ip: '10.78.0.50', mac: '02:00:00:00:00:50', ...n });
      const fdb = (e: Partial<FdbEntry>) => nl.addFdbEntry({ link: 'nlt-vb', mac: '02:00:00:00:00:51', ...e });
      const bad: [string, () => unknown][] = [
        ['empty name', () => nl.createLink({ name: '', kind: 'bridge' })],
        ['16-byte name', () => nl.createLink({ name: 'a234567890123456', kind: 'bridge' })],
        ['slash in name', () => nl.createLink({ name: 'a/b', kind: 'bridge' })],
        ['space in name', () => nl.createLink({ name: 'a b', kind: 'bridge' })],
        ['mtu too small', () => nl.createLink({ name: 'ok0', kind: 'bridge', mtu: 67 })],
        ['mtu too large', () => nl.setLinkMtu('nlt-vb', 65536)],
        ['fractional mtu', () => nl.setLinkMtu('nlt-vb', 1500.5)],
        ['bad mac', () => nl.createLink({ name: 'ok0', kind: 'bridge', mac: '02:42:ac:11:00' })],
        ['multicast mac', () => nl.createLink({ name: 'ok0', kind: 'bridge', mac: '01:00:5e:00:00:01' })],
        ['bad peer mac', () => nl.createLink({ name: 'ok0', kind: 'veth', peer: { name: 'ok1', mac: 'zz:zz:zz:zz:zz:zz' } })],
        ['peer with the same name', () => nl.createLink({ name: 'ok0', kind: 'veth', peer: { name: 'ok0' } })],
        ['veth without peer', () => nl.createLink({ name: 'ok0', kind: 'veth' })],
        ['peer on a bridge', () => nl.createLink({ name: 'ok0', kind: 'bridge', peer: { name: 'ok1' } })],
        ['unknown kind', () => nl.createLink({ name: 'ok0', kind: 'wireguard' } as unknown as CreateLinkRequest)],
        ['"other" is not creatable', () => nl.createLink({ name: 'ok0', kind: 'other' } as unknown as CreateLinkRequest)],
        ['vxlan settings on a bridge', () => nl.createLink({ name: 'ok0', kind: 'bridge', vxlan: { vni: 1, learning: true } })],
        ['macvlan settings on a veth', () => nl.createLink({ name: 'ok0', kind: 'veth', peer: { name: 'ok1' }, macvlan: { parent: 'nlt-vb', mode: 'bridge' } })],
        ['vxlan without settings', () => nl.createLink({ name: 'ok0', kind: 'vxlan' })],
        ['negative vni', () => vx({ vni: -1 })],
        ['vni above 24 bits', () => vx({ vni: 16777216 })],
        ['fractional vni', () => vx({ vni: 1.5 })],
        ['vni as a string', () => vx({ vni: '5' as unknown as number })],
        ['port 0', () => vx({ port: 0 })],
        ['port 65536', () => vx({ port: 65536 })],
        ['unicast group', () => vx({ group: '10.0.0.1', underlay: 'nlt-br' })],
        ['group not an IP', () => vx({ group: 'ff05::zz', underlay: 'nlt-br' })],
        ['multicast local', () => vx({ local: '239.0.0.1' })],
        ['unspecified local', () => vx({ local: '0.0.0.0' })],
        ['short IPv4 local', () => vx({ local: '10.1' })],
        ['local and group of different families', () => vx({ local: '10.78.0.1', group: 'ff05::1', underlay: 'nlt-br' })],
        ['learning missing', () => vx({ learning: undefined })],
        ['learning not a boolean', () => vx({ learning: 1 as unknown as boolean })],
        ['bad underlay name', () => vx({ underlay: 'x'.repeat(16) })],
        ['macvlan without settings', () => mv(undefined)],
        ['unknown macvlan mode', () => mv({ parent: 'nlt-vb', mode: 'source' })],
        ['prototype key as macvlan mode', () => mv({ parent: 'nlt-vb', mode: 'constructor' })],
        ['bad macvlan parent', () => mv({ parent: 'a/b', mode: 'bridge' })],
        ['macvlan as its own parent', () => mv({ parent: 'ok0', mode: 'bridge' })],
        ['unknown ipvlan mode', () => iv({ parent: 'nlt-vb', mode: 'l4' })],
        ['ipvlan mode with another case', () => iv({ parent: 'nlt-vb', mode: 'L2' })],
        ['ipvlan without settings', () => iv(undefined)],
        ['up not a boolean', () => nl.setLinkUp('nlt-vb', 'yes' as unknown as boolean)],
        ['multicast mac for a link', () => nl.setLinkMac('nlt-vb', '33:33:00:00:00:01')],
        ['zero mac for a link', () => nl.setLinkMac('nlt-vb', '00:00:00:00:00:00')],
        ['malformed mac for a link', () => nl.setLinkMac('nlt-vb', '02-42-ac-11-00-02')],
        ['new name too long', () => nl.renameLink('nlt-vb', 'x'.repeat(16))],
        ['new name with a colon', () => nl.renameLink('nlt-vb', 'a:b')],
        ['relative namespace path', () => nl.moveLinkToNetns('nlt-ma', `var/run/netns/${ns2}`)],
        ['empty namespace path', () => nl.moveLinkToNetns('nlt-ma', '')],
        ['NUL in the namespace path', () => nl.moveLinkToNetns('nlt-ma', `/var/run/netns/${ns2}\0x`)],
        ['bad name to move', () => nl.moveLinkToNetns('..', `/var/run/netns/${ns2}`)],
        ['bridge-port settings not an object', () => nl.setBridgePort('nlt-va', null as unknown as object)],
        ['hairpin not a boolean', () => nl.setBridgePort('nlt-va', { hairpin: 'on' as unknown as boolean })],
        ['route destination with host bits', () => route({ destination: '10.95.0.1/24' })],
        ['IPv6 route destination with host bits', () => route({ destination: 'fd95::1/64' })],
        ['route destination without a prefix', () => route({ destination: '10.95.0.0' })],
        ['route destination "default"', () => route({ destination: 'default' })],
        ['route with neither gateway nor link', () => nl.addRoute({ destination: '10.95.0.0/24' })],
        ['route gateway of the other family', () => route({ gateway: 'fd78::1' })],
        ['multicast route gateway', () => route({ gateway: '224.0.0.1' })],
        ['negative metric', () => route({ metric: -1 })],
        ['metric above 32 bits', () => route({ metric: 2 ** 32 })],
        ['bad route link name', () => route({ link: 'a b' })],
        ['bad route to delete', () => nl.deleteRoute({ destination: '10.78.0.0/33', link: 'nlt-br' })],
        ['neighbour ip multicast', () => neigh({ ip: '224.0.0.5' })],
        ['neighbour ip unspecified', () => neigh({ ip: '::' })],
        ['neighbour ip with a zone', () => neigh({ ip: 'fe80::1%nlt-br' })],
        ['neighbour ip a CIDR', () => neigh({ ip: '10.78.0.50/32' })],
        ['neighbour mac multicast', () => neigh({ mac: '01:00:5e:00:00:05' })],
        ['neighbour mac zero', () => neigh({ mac: '00:00:00:00:00:00' })],
        ['bad neighbour link', () => neigh({ link: '' })],
        ['bad neighbour to delete', () => nl.deleteNeighbor({ link: 'nlt-br', ip: '10.78.0.9', mac: 'nope' })],
        ['fdb mac multicast', () => fdb({ mac: 'ff:ff:ff:ff:ff:ff' })],
        ['fdb vni above 24 bits', () => fdb({ vni: 2 ** 24 })],
        ['fdb dst not an IP', () => fdb({ dst: '10.78.0.300' })],
        ['fdb dst unspecified', () => fdb({ dst: '0.0.0.0' })],
        ['bad fdb link', () => fdb({ link: 'x'.repeat(20) })],
        ['bad fdb entry to delete', () => nl.deleteFdbEntry({ link: 'nlt-vb', mac: '02:00:00:00:00:51', vni: -1 })],
        ['prefix too long', () => nl.addAddress('nlt-br', '10.0.0.1/33')],
        ['IPv6 prefix too long', () => nl.addAddress('nlt-br', 'fd00::1/129')],
        ['short IPv4 form', () => nl.addAddress('nlt-br', '10.1/8')],
        ['no prefix', () => nl.addAddress('nlt-br', '10.0.0.1')],
        ['not an address', () => nl.deleteAddress('nlt-br', 'bridge/24')],
        ['bad link name for an address', () => nl.listAddresses('x'.repeat(20))],
        ['bad link name for routes', () => nl.listRoutes('a/b')],
        ['bad link name for neighbours', () => nl.listNeighbors('')],
        ['bad link name for FDB entries', () => nl.listFdbEntries('.')],
      ];
      for (const [what, fn] of bad) {
        assert.throws(
          fn,
          (err: unknown) => {
            assert.ok(err instanceof Error, what);
            assert.ok(!(err instanceof NetlinkError), `${what}: reached the kernel: ${String(err)}`);
            return true;
          },
          what,
        );
      }
      assert.equal(state(), before, 'bad input changed the namespaces');
    });

    test('deleting links: a veth end removes its peer, the parent its macvlan', () => {
      nl.deleteLink('nlt-va');
      assert.equal(ipLink(ns, 'nlt-va'), undefined);
      assert.equal(ipLink(ns, 'nlt-vb'), undefined);
      assert.equal(nl.getLink('nlt-vb'), undefined);
      assert.equal(ipLink(ns, 'nlt-mv'), undefined);
      for (const name of ['nlt-br', 'nlt-ma', 'nlt-vx4', 'nlt-vx6']) {
        if (ipLink(ns, name)) nl.deleteLink(name);
      }
      assert.deepEqual(
        ipLinks(ns).map((l) => l.ifname),
        ['lo'],
      );
    });

    test('nothing changed in the host namespace', () => {
      assert.deepEqual(oursInHost(), []);
      assert.equal(readlinkSync('/proc/thread-self/ns/net'), threadNetnsBefore);
    });
  });

  describe('NetlinkSocket link look-ups', () => {
    const ns = namespaceName();
    let socket: NetlinkSocket;

    before(() => {
      execFileSync('ip', ['netns', 'add', ns]);
      execFileSync('ip', ['-n', ns, 'link', 'add', 'nlt-lk', 'type', 'bridge']);
      socket = new NetlinkSocket({ netns: `/var/run/netns/${ns}` });
    });

    after(() => {
      socket?.close();
      execFileSync('ip', ['netns', 'delete', ns]);
    });

    test('by name and by index, in the namespace of the socket (not that of the thread)', () => {
      const index = ipLink(ns, 'nlt-lk')?.ifindex;
      assert.ok(index !== undefined);
      assert.equal(socket.linkIndex('nlt-lk', 'look up'), index);
      assert.equal(socket.linkIndex('lo', 'look up'), 1);
      assert.equal(socket.linkName(index, 'look up'), 'nlt-lk');
      assert.ok(!ipLinks(undefined).some((l) => l.ifname === 'nlt-lk'), 'the host has no nlt-lk');
    });

    test('a missing link is ENODEV by name, and absent by index', () => {
      assert.throws(() => socket.linkIndex('no-such-link', 'look up'), { name: 'NetlinkError', message: 'look up: No such device (ENODEV)' });
      assert.equal(socket.linkName(999_999, 'look up'), undefined);
    });

    test('names the kernel would cut short or at a colon are refused, not looked up', () => {
      for (const name of ['', 'nlt-lk:0', 'a\0b', 'x'.repeat(16), 'é'.repeat(8)]) {
        assert.throws(() => socket.linkIndex(name, 'look up'), /look up: link name .* cannot be looked up/, JSON.stringify(name));
      }
    });

    test('a closed socket refuses', () => {
      const closed = new NetlinkSocket({ netns: `/var/run/netns/${ns}` });
      closed.close();
      assert.throws(() => closed.linkIndex('lo', 'look up'), /netlink socket is closed/);
      assert.throws(() => closed.linkName(1, 'look up'), /netlink socket is closed/);
    });
  });

  describe('RtNetlink without a namespace option', () => {
    test('sees the host namespace, like ip link show', () => {
      const nl = new RtNetlink();
      try {
        const actual = nl.listLinks().map((l) => [l.index, l.name, l.mtu]);
        assert.deepEqual(
          actual,
          ipLinks(undefined).map((l) => [l.ifindex, l.ifname, l.mtu]),
        );
      } finally {
        nl.close();
      }
    });
  });
}
