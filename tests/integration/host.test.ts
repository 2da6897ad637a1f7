// The host over its socket, with the bundled bridge driver, in a private
// network namespace: the bodies dockerd sends go in, real links and addresses
// come out, checked with `ip -j`. Includes a host restart between calls, since
// dockerd never replays CreateNetwork, CreateEndpoint or Join.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import { callOk, callPlugin, requestJson } from '../lib/plugin-client.ts';
import { cliCommand, defaultRuntime } from '../lib/wasmnet-host.ts';
import { REPO_ROOT, WasmnetHost } from '../lib/wasmnet-host.ts';

const component = join(REPO_ROOT, 'drivers-wasm/bridge/build/bridge.wasm');
const reason = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync(component) ? `needs the built bridge driver (${component}); run npm run build` : undefined;

interface IpLink {
  ifname: string;
  mtu: number;
  address?: string;
  master?: string;
  flags: string[];
  linkinfo?: { info_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

function ipJson(ns: string, ...args: string[]): IpLink[] {
  return JSON.parse(execFileSync('ip', ['-n', ns, '-j', '-d', ...args], { encoding: 'utf8' }) || '[]') as IpLink[];
}
const links = (ns: string) => ipJson(ns, 'link', 'show');
const link = (ns: string, name: string) => links(ns).find((l) => l.ifname === name);
const addrs = (ns: string, name: string) => (ipJson(ns, 'addr', 'show', 'dev', name)[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);

const nid = (c: string) => c.repeat(64);

if (reason) {
  console.log(`host integration tests: ${reason}: skipped`);
  test('host integration', { skip: reason }, () => {});
} else {
  describe('host with the bridge driver, in a network namespace', () => {
    const ns = `wasmnet-it-${randomBytes(3).toString('hex')}`;
    const dir = mkdtempSync(join(tmpdir(), 'wasmnet-it-'));
    const host = new WasmnetHost({ socketDir: join(dir, 'plugins'), stateDir: join(dir, 'state'), name: 'wasmnet-it', netns: ns });
    const sock = () => host.socketPath;
    const net1 = nid('1');
    const ep1 = nid('a');
    const ep2 = nid('b');

    before(async () => {
      execFileSync('ip', ['netns', 'add', ns]);
      execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await host.start();
    });

    after(async () => {
      await host.dispose();
      execFileSync('ip', ['netns', 'del', ns]);
      rmSync(dir, { recursive: true, force: true });
    });

    test('handshake: Activate and GetCapabilities', async () => {
      assert.deepEqual((await callPlugin(sock(), '/Plugin.Activate')).json, { Implements: ['NetworkDriver'] });
      assert.deepEqual((await callPlugin(sock(), '/NetworkDriver.GetCapabilities')).json, { Scope: 'local', ConnectivityScope: 'local', GwAllocChecker: false });
    });

    test('any Host header is accepted (dockerd before v25 sends the socket path)', async () => {
      for (const host of [sock(), encodeURIComponent(sock()), 'plugin.moby.localhost']) {
        assert.deepEqual(await callPlugin(sock(), '/Plugin.Activate', undefined, { host }), { status: 200, json: { Implements: ['NetworkDriver'] } }, host);
      }
    });

    test('CreateNetwork with an unknown or invalid -o option is refused and creates nothing', async () => {
      const before = links(ns).map((l) => l.ifname);
      for (const generic of [{ 'com.docker.network.bridge.nope': 'x' }, { 'com.docker.network.driver.mtu': '70000' }, { 'com.docker.network.bridge.name': 'bad/name' }]) {
        const r = await callPlugin(sock(), '/NetworkDriver.CreateNetwork', {
          NetworkID: nid('9'),
          Options: { 'com.docker.network.generic': generic },
          IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.77.0.0/24', Gateway: '10.77.0.1/24' }],
          IPv6Data: [],
        });
        assert.equal(typeof r.json.Err, 'string', JSON.stringify(generic));
      }
      assert.deepEqual(links(ns).map((l) => l.ifname), before);
    });

    test('CreateNetwork makes the bridge with the gateway address and MTU', async () => {
      await callOk(sock(), 'CreateNetwork', {
        NetworkID: net1,
        Options: { 'com.docker.network.generic': { 'com.docker.network.bridge.name': 'wnit0', 'com.docker.network.driver.mtu': '1400' }, 'com.docker.network.enable_ipv6': false },
        IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.77.0.0/24', Gateway: '10.77.0.1/24' }],
        IPv6Data: [],
      });
      const br = link(ns, 'wnit0');
      assert.ok(br, 'bridge wnit0 exists');
      assert.equal(br.linkinfo?.info_kind, 'bridge');
      assert.equal(br.mtu, 1400);
      assert.ok(br.flags.includes('UP'));
      assert.deepEqual(addrs(ns, 'wnit0').filter((a) => !a.startsWith('fe80')), ['10.77.0.1/24']);
    });

    test('CreateEndpoint reports a MAC only when dockerd left it empty', async () => {
      const r = await callOk(sock(), 'CreateEndpoint', { NetworkID: net1, EndpointID: ep1, Interface: { Address: '10.77.0.2/24', AddressIPv6: '', MacAddress: '' }, Options: {} });
      assert.deepEqual(r, { Interface: { Address: '', AddressIPv6: '', MacAddress: '02:42:0a:4d:00:02' } });
      const given = await callOk(sock(), 'CreateEndpoint', { NetworkID: net1, EndpointID: ep2, Interface: { Address: '10.77.0.3/24', AddressIPv6: '', MacAddress: '02:00:00:00:00:33' }, Options: {} });
      assert.deepEqual(given, {});
    });

    test('Join creates the veth pair on the bridge and answers with names and gateway', async () => {
      const r = await callOk(sock(), 'Join', { NetworkID: net1, EndpointID: ep1, SandboxKey: '/var/run/docker/netns/0123456789ab', Options: {} });
      const names = r.InterfaceName as { SrcName: string; DstPrefix: string };
      assert.equal(names.DstPrefix, 'eth');
      assert.equal(r.Gateway, '10.77.0.1');
      const peer = link(ns, names.SrcName);
      assert.ok(peer, `container end ${names.SrcName} exists`);
      assert.equal(peer.address, '02:42:0a:4d:00:02');
      assert.equal(peer.mtu, 1400);
      const hostEnd = links(ns).find((l) => l.master === 'wnit0');
      assert.ok(hostEnd, 'a veth end is enslaved to wnit0');
      assert.ok(hostEnd.flags.includes('UP'));
      assert.ok(hostEnd.ifname.startsWith('wn'));
    });

    test('after a host restart the network, endpoints and joins are still known', async () => {
      await host.stop();
      // A clean stop removes the socket (exit codes are not comparable: Deno reports a signal).
      assert.equal(existsSync(host.socketPath), false, 'socket removed on SIGTERM');
      await host.start();
      // Join of the second endpoint works: the network came from the store.
      const r = await callOk(sock(), 'Join', { NetworkID: net1, EndpointID: ep2, SandboxKey: '/var/run/docker/netns/ba9876543210', Options: {} });
      const names = r.InterfaceName as { SrcName: string };
      assert.equal(link(ns, names.SrcName)?.address, '02:00:00:00:00:33');
      assert.deepEqual(await callOk(sock(), 'EndpointOperInfo', { NetworkID: net1, EndpointID: ep1 }), { Value: { 'com.docker.network.endpoint.macaddress': '02:42:0a:4d:00:02' } });
    });

    test('Leave, DeleteEndpoint and DeleteNetwork remove every link the driver made', async () => {
      for (const ep of [ep1, ep2]) {
        await callOk(sock(), 'Leave', { NetworkID: net1, EndpointID: ep });
        await callOk(sock(), 'DeleteEndpoint', { NetworkID: net1, EndpointID: ep });
      }
      assert.equal(links(ns).filter((l) => l.master === 'wnit0').length, 0);
      await callOk(sock(), 'DeleteNetwork', { NetworkID: net1 });
      assert.deepEqual(links(ns).map((l) => l.ifname), ['lo']);
    });

    test('every netlink call of the driver is audited, readable through the admin API and `wasmnet audit`', async () => {
      const admin = join(dir, 'state', 'admin.sock');
      const api = await requestJson(admin, 'GET', '/v1/audit?driver=wasmnet-bridge&op=create-bridge');
      assert.equal(api.status, 200);
      const entries = api.json as { op: string; allowed: boolean; args: { name: string }; version: string }[];
      assert.ok(entries.some((e) => e.op === 'create-bridge' && e.allowed && e.args.name === 'wnit0' && e.version === '0.1.0'), JSON.stringify(entries));
      assert.equal((await requestJson(admin, 'GET', '/v1/audit?limit=abc')).status, 400);
      const cmd = cliCommand(defaultRuntime(), ['audit', '--state-dir', join(dir, 'state'), '--op', 'delete-link', '--json']);
      const out = execFileSync(cmd.file, cmd.args, { encoding: 'utf8' });
      const deletes = JSON.parse(out) as { op: string; allowed: boolean }[];
      assert.ok(deletes.length >= 1 && deletes.every((e) => e.op === 'delete-link' && e.allowed));
      const grants = (await requestJson(admin, 'GET', '/v1/grants')).json as { driver: string; digest: string }[];
      assert.deepEqual(grants.map((g) => g.driver), ['wasmnet-bridge']);
    });

    test('deletes and leaves of unknown IDs answer {}', async () => {
      assert.deepEqual(await callOk(sock(), 'Leave', { NetworkID: nid('7'), EndpointID: nid('8') }), {});
      assert.deepEqual(await callOk(sock(), 'DeleteEndpoint', { NetworkID: nid('7'), EndpointID: nid('8') }), {});
      assert.deepEqual(await callOk(sock(), 'DeleteNetwork', { NetworkID: nid('7') }), {});
    });

    test('CreateEndpoint on an unknown network is an error', async () => {
      const r = await callPlugin(sock(), '/NetworkDriver.CreateEndpoint', { NetworkID: nid('7'), EndpointID: ep1, Interface: { Address: '10.77.0.2/24' }, Options: {} });
      assert.match(String(r.json.Err), /not|unknown/i);
    });
  });
}
