// Integration tests of the real rtnetlink backend against the kernel. Every
// change happens in a private network namespace created for the run and
// deleted afterwards; each result is checked against what iproute2 reports
// (`ip -j`). Needs root: without it the suite is reported as skipped.
//
// The tests in the namespace suite build on each other (bridge, then veth,
// then master, addresses...), in order.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { NetlinkError, type CreateLinkRequest } from '../../runtime/netlink/backend.ts';
import { RtNetlink } from '../../runtime/netlink/rtnetlink.ts';

/** The parts of `ip -j -d link show` output these tests look at. */
interface IpLink {
  ifindex: number;
  ifname: string;
  mtu: number;
  address?: string;
  flags: string[];
  master?: string;
  linkinfo?: { info_kind?: string };
}

/** The parts of `ip -j addr show` output these tests look at. */
interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

/** Runs `ip -j ...` (in namespace `ns` when given) and parses its JSON. */
function ipJson<T>(ns: string | undefined, args: string[]): T {
  const nsArgs = ns === undefined ? [] : ['-n', ns];
  return JSON.parse(execFileSync('ip', [...nsArgs, '-j', ...args], { encoding: 'utf8' })) as T;
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

/** Link names and addresses this suite creates; none may ever appear in the host namespace. */
const OUR_NAMES = ['nlt-br', 'nlt-va', 'nlt-vb', 'nlt-dummy'];
const OUR_ADDRESSES = ['10.77.0.1', '10.78.0.1', 'fd77::1'];

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
    assert.equal(err.code, code);
    assert.match(err.message, new RegExp(`\\(${code}\\)`));
    return true;
  });
}

/** Namespace names are random so that parallel runs do not collide. */
function namespaceName(): string {
  return `wasmnet-nl-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Why dummy links cannot be tested, or undefined when they can: some kernels
 * (e.g. minimal VM kernels) are built without the dummy driver. Probed with
 * iproute2 in a throwaway namespace.
 */
function noDummy(): string | undefined {
  const probeNs = namespaceName();
  execFileSync('ip', ['netns', 'add', probeNs]);
  try {
    const probe = spawnSync('ip', ['-n', probeNs, 'link', 'add', 'probe0', 'type', 'dummy'], { encoding: 'utf8' });
    return probe.status === 0 ? undefined : `this kernel has no dummy link type (ip: ${probe.stderr.trim()})`;
  } finally {
    execFileSync('ip', ['netns', 'delete', probeNs]);
  }
}

const SKIP_REASON = 'netlink integration tests need root: skipped';

if (process.getuid?.() !== 0) {
  console.log(SKIP_REASON);
  test('netlink integration', { skip: SKIP_REASON }, () => {});
} else {
  const noDummyReason = noDummy();
  if (noDummyReason !== undefined) console.log(`this kernel has no dummy links (${noDummyReason}): checking that creating one fails cleanly instead`);

  describe('RtNetlink in a private network namespace', () => {
    const ns = namespaceName();
    let nl: RtNetlink;
    let threadNetnsBefore: string;

    before(() => {
      assert.deepEqual(oursInHost(), [], 'the host already has links or addresses this suite uses');
      threadNetnsBefore = readlinkSync('/proc/thread-self/ns/net');
      execFileSync('ip', ['netns', 'add', ns]);
      nl = new RtNetlink({ netns: `/var/run/netns/${ns}` });
    });

    after(() => {
      nl?.close();
      execFileSync('ip', ['netns', 'delete', ns]);
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
    if (noDummyReason === undefined) test('create a dummy link', () => {
      const dummy = nl.createLink({ name: 'nlt-dummy', kind: 'dummy', mtu: 2000 });
      const ip = ipLink(ns, 'nlt-dummy');
      assert.ok(ip, 'ip does not see nlt-dummy');
      assert.equal(ip.linkinfo?.info_kind, 'dummy');
      assert.deepEqual(dummy, { index: ip.ifindex, name: 'nlt-dummy', kind: 'dummy', mtu: 2000, mac: ip.address, up: false });
      nl.deleteLink('nlt-dummy');
      assert.equal(ipLink(ns, 'nlt-dummy'), undefined);
    });

    if (noDummyReason !== undefined) {
      test('without the dummy driver, creating a dummy link fails with EOPNOTSUPP', () => {
        assertNetlinkError(() => nl.createLink({ name: 'nlt-dummy', kind: 'dummy' }), 'EOPNOTSUPP');
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
    });

    test('kernel refusals are NetlinkErrors with the errno name', () => {
      assertNetlinkError(() => nl.createLink({ name: 'nlt-br', kind: 'bridge' }), 'EEXIST');
      assertNetlinkError(() => nl.deleteLink('no-such-link'), 'ENODEV');
      assertNetlinkError(() => nl.setLinkUp('no-such-link', true), 'ENODEV');
      assertNetlinkError(() => nl.setLinkMaster('nlt-vb', 'no-such-br'), 'ENODEV');
      assertNetlinkError(() => nl.addAddress('no-such-link', '10.0.0.1/24'), 'ENODEV');
      assertNetlinkError(() => nl.addAddress('nlt-br', '10.78.0.1/16'), 'EEXIST');
      assertNetlinkError(() => nl.deleteAddress('nlt-br', '10.99.0.1/24'), 'EADDRNOTAVAIL');
      assert.equal(nl.getLink('no-such-link'), undefined);
      assert.throws(() => nl.createLink({ name: 'nlt-br', kind: 'bridge' }), {
        message: 'create link nlt-br: File exists (EEXIST)',
      });
    });

    test('bad input is rejected before anything is sent', () => {
      const state = () => JSON.stringify(ipLinks(ns).map((l) => [l.ifindex, l.ifname, l.mtu, l.address, l.master]));
      const before = state();
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
        ['unknown kind', () => nl.createLink({ name: 'ok0', kind: 'vxlan' } as unknown as CreateLinkRequest)],
        ['prefix too long', () => nl.addAddress('nlt-br', '10.0.0.1/33')],
        ['IPv6 prefix too long', () => nl.addAddress('nlt-br', 'fd00::1/129')],
        ['short IPv4 form', () => nl.addAddress('nlt-br', '10.1/8')],
        ['no prefix', () => nl.addAddress('nlt-br', '10.0.0.1')],
        ['not an address', () => nl.deleteAddress('nlt-br', 'bridge/24')],
        ['bad link name for an address', () => nl.listAddresses('x'.repeat(20))],
      ];
      for (const [what, fn] of bad) {
        assert.throws(fn, (err: unknown) => {
          assert.ok(err instanceof Error, what);
          assert.ok(!(err instanceof NetlinkError), `${what}: reached the kernel: ${String(err)}`);
          return true;
        }, what);
      }
      assert.equal(state(), before, 'bad input changed the namespace');
    });

    test('deleting one end of a veth removes its peer too', () => {
      nl.deleteLink('nlt-va');
      assert.equal(ipLink(ns, 'nlt-va'), undefined);
      assert.equal(ipLink(ns, 'nlt-vb'), undefined);
      assert.equal(nl.getLink('nlt-vb'), undefined);
      nl.deleteLink('nlt-br');
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
