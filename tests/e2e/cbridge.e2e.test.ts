// End to end: a private dockerd uses the C bridge driver (drivers-wasm/cbridge,
// a component built from C with wit-bindgen and clang) served by the wasmnet
// host on /run/docker/plugins/<unique name>.sock.
//
//   node_modules/.bin/node --test tests/e2e/cbridge.e2e.test.ts
//   node_modules/.bin/deno test --no-check -A tests/e2e/cbridge.e2e.test.ts
//
// Needs root, Debian's docker.io and busybox-static, and the C toolchain the
// driver's build needs (clang, lld, wit-bindgen). The component is (re)built
// from the current sources first (a no-op when up to date). The host runs on
// the same runtime as the test unless WASMNET_RUNTIME=node|deno says otherwise.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { BUSYBOX_IMAGE, canRunDockerd, runCommand, startDockerd } from './lib/dockerd.ts';
import type { Dockerd } from './lib/dockerd.ts';
import { describeLink, hostLinks, linkExists, linksLeft } from './lib/links.ts';
import { containerChecks, type NetSettings } from './lib/containers.ts';
import { NODE_BIN, REPO_ROOT, WasmnetHost, defaultRuntime, uniquePluginName } from '../lib/wasmnet-host.ts';

const SUBNET = '10.203.0.0/24';
const GATEWAY = '10.203.0.1';
/** The driver's link prefix (its manifest's linkPrefix). */
const LINK_PREFIX = 'wc';
const DRIVER_DIR = path.join(REPO_ROOT, 'drivers-wasm/cbridge');
const COMPONENT = path.join(DRIVER_DIR, 'build/cbridge.wasm');



const reason = canRunDockerd();

if (reason) {
  console.log(`e2e: needs root and dockerd: ${reason}`);
  test('C bridge driver end to end', { skip: `needs root and dockerd: ${reason}` }, () => {});
} else {
  describe('C bridge driver end to end', { timeout: 600_000 }, () => {
    const hex = randomBytes(3).toString('hex');
    const plugin = uniquePluginName('wasmnet-e2e-c');
    const bridge = `${LINK_PREFIX}br${hex}`; // at most 15 characters
    const net = `e2e-cnet-${hex}`;
    const containers = ['e2e-ca', 'e2e-cb'];
    const runtime = defaultRuntime();
    let d: Dockerd | undefined;
    let host: WasmnetHost | undefined;
    let linksBefore = new Set<string>();
    let networkCreated = false;

    const { assertAddressAndRoute, assertPing, diagnostics, withDiagnostics } = containerChecks({ network: net, subnet: SUBNET, gateway: GATEWAY, dockerd: () => d, host: () => host });

    /** Address and route, and the driver's MAC: 02:42 and the four bytes of the IPv4 address. */
    async function assertAddressRouteMac(name: string): Promise<NetSettings> {
      assert.ok(d);
      const s = await assertAddressAndRoute(name);
      const mac = `02:42:${s.IPAddress.split('.').map((b) => Number(b).toString(16).padStart(2, '0')).join(':')}`;
      const link = await d.docker('exec', name, 'ip', 'link', 'show', 'eth0');
      assert.ok(link.includes(`link/ether ${mac}`), `eth0 of ${name} has MAC ${mac}:\n${link}`);
      return s;
    }

    before(async () => {
      linksBefore = new Set(hostLinks().map((l) => l.ifname).filter((n) => n.startsWith(LINK_PREFIX)));
      console.log(`e2e: plugin ${plugin}, host runtime ${runtime}, bridge ${bridge}, network ${net}`);
      const build = await runCommand(NODE_BIN, [path.join(DRIVER_DIR, 'build.ts')], { timeoutMs: 300_000, cwd: REPO_ROOT });
      assert.equal(build.code, 0, `building the C bridge driver failed:\n${build.stdout}${build.stderr}`);
      console.log(`e2e: ${build.stdout.trim().split('\n').join('; ')}`);
      d = await startDockerd();
      await d.importBusybox();
      // The manifest is found beside the component (build/cbridge.manifest.json).
      host = new WasmnetHost({ runtime, name: plugin, extraArgs: ['--driver', COMPONENT] });
      await host.start();
    }, { timeout: 480_000 });

    after(async () => {
      if (d?.running) {
        await d.dockerResult(['rm', '-f', ...containers], { timeoutMs: 60_000 });
        if (networkCreated) await d.dockerResult(['network', 'rm', net], { timeoutMs: 60_000 });
      }
      await host?.dispose();
      await d?.stop();
      // a failed run must not leave its links (the bridge has 10.203.0.1) for the next one
      for (const l of hostLinks().filter((x) => x.ifname === bridge || (x.ifname.startsWith(LINK_PREFIX) && !linksBefore.has(x.ifname)))) {
        console.error(`e2e: removing leftover link ${l.ifname}`);
        try {
          execFileSync('ip', ['link', 'del', l.ifname], { stdio: 'inherit' });
        } catch {
          // reported by the test already (a veth may have gone with its peer)
        }
      }
    }, { timeout: 240_000 });

    test('docker network create -d <plugin> uses the C driver and makes its bridge', { timeout: 120_000 }, async () => {
      assert.ok(d && host, 'setup failed');
      await withDiagnostics(() =>
        d!.dockerWith(
          { timeoutMs: 90_000 },
          'network', 'create', '-d', plugin,
          '--subnet', SUBNET, '--gateway', GATEWAY,
          '-o', `com.docker.network.bridge.name=${bridge}`,
          net,
        ),
      );
      networkCreated = true;
      assert.equal((await d.docker('network', 'inspect', '-f', '{{.Driver}}', net)).trim(), plugin);
      assert.ok(linkExists(bridge), `bridge ${bridge} exists on the host`);
      const addrs = execFileSync('ip', ['-4', 'addr', 'show', 'dev', bridge], { encoding: 'utf8' });
      assert.ok(addrs.includes(`inet ${GATEWAY}/24`), `bridge ${bridge} has the gateway:\n${addrs}`);
    });

    test('two containers get addresses, the driver\'s MAC, the gateway route, and ping each other', { timeout: 180_000 }, async () => {
      assert.ok(d && host && networkCreated, 'network was not created');
      await withDiagnostics(async () => {
        for (const c of containers) {
          await d!.dockerWith({ timeoutMs: 90_000 }, 'run', '-d', '--network', net, '--name', c, BUSYBOX_IMAGE, 'sleep', '300');
        }
      });
      const [a, b] = [await assertAddressRouteMac('e2e-ca'), await assertAddressRouteMac('e2e-cb')];
      assert.equal(a.Gateway, GATEWAY);
      assert.notEqual(a.IPAddress, b.IPAddress);
      // the host ends of the veths, enslaved to the bridge
      const ports = hostLinks().filter((l) => l.ifname.startsWith('wch') && l.master === bridge);
      assert.equal(ports.length, 2, `two wch* ports on ${bridge}: ${ports.map((l) => l.ifname).join(', ')}`);
      await withDiagnostics(async () => {
        await assertPing('e2e-ca', 'e2e-cb');
        await assertPing('e2e-cb', 'e2e-ca');
      });
    });

    test('removing containers and the network leaves no link of the driver behind', { timeout: 180_000 }, async () => {
      assert.ok(d && host && networkCreated, 'network was not created');
      await d.dockerWith({ timeoutMs: 90_000 }, 'rm', '-f', ...containers);
      await d.dockerWith({ timeoutMs: 90_000 }, 'network', 'rm', net);
      networkCreated = false;
      const left = await linksLeft((l) => l.ifname === bridge || (l.ifname.startsWith(LINK_PREFIX) && !linksBefore.has(l.ifname)));
      assert.deepEqual(left.map(describeLink), [], `links left by the driver:\n${diagnostics()}`);
    });
  });
}
