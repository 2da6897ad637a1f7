// End to end: a private dockerd uses the wasm bridge driver served by the
// wasmnet host on /run/docker/plugins/<unique name>.sock.
//
//   node_modules/.bin/node --test tests/e2e/bridge.e2e.test.ts
//   node_modules/.bin/deno test -A tests/e2e/bridge.e2e.test.ts
//
// Needs root, Debian's docker.io and busybox-static. The host runs on the same
// runtime as the test unless WASMNET_RUNTIME=node|deno says otherwise.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BUSYBOX_IMAGE, canRunDockerd, startDockerd } from './lib/dockerd.ts';
import type { Dockerd } from './lib/dockerd.ts';
import { describeLink, hostLinks, linkExists, linksLeft } from './lib/links.ts';
import { containerChecks } from './lib/containers.ts';
import { REPO_ROOT, WasmnetHost, cliCommand, defaultRuntime, uniquePluginName } from '../lib/wasmnet-host.ts';

const SUBNET = '10.201.0.0/24';
const GATEWAY = '10.201.0.1';
/** Name prefix of the links the driver creates (configurable in the driver later). */
const LINK_PREFIX = process.env.WASMNET_E2E_LINK_PREFIX ?? 'wn';



const reason = canRunDockerd();

if (reason) {
  console.log(`e2e: needs root and dockerd: ${reason}`);
  test('wasm bridge driver end to end', { skip: `needs root and dockerd: ${reason}` }, () => {});
} else {
  describe('wasm bridge driver end to end', { timeout: 600_000 }, () => {
    const hex = randomBytes(3).toString('hex');
    const plugin = uniquePluginName('wasmnet-e2e');
    const bridge = `${LINK_PREFIX}br${hex}`; // at most 15 characters
    const net = `e2e-net-${hex}`;
    const containers = ['e2e-a', 'e2e-b', 'e2e-c', 'e2e-d'];
    const runtime = defaultRuntime();
    let d: Dockerd | undefined;
    let host: WasmnetHost | undefined;
    let linksBefore = new Set<string>();
    let networkCreated = false;

    const { settingsOf, assertAddressAndRoute, assertPing, diagnostics } = containerChecks({ network: net, subnet: SUBNET, gateway: GATEWAY, dockerd: () => d, host: () => host });

    before(async () => {
      linksBefore = new Set(hostLinks().map((l) => l.ifname).filter((n) => n.startsWith(LINK_PREFIX)));
      console.log(`e2e: plugin ${plugin}, host runtime ${runtime}, bridge ${bridge}, network ${net}`);
      d = await startDockerd();
      await d.importBusybox();
      host = new WasmnetHost({ runtime, name: plugin });
      await host.start();
    }, { timeout: 180_000 });

    after(async () => {
      if (d?.running) {
        await d.dockerResult(['rm', '-f', ...containers], { timeoutMs: 60_000 });
        if (networkCreated) await d.dockerResult(['network', 'rm', net], { timeoutMs: 60_000 });
      }
      await host?.dispose();
      await d?.stop();
      // a failed run must not leave its bridge (with 10.201.0.1 on it) for the next one
      if (linkExists(bridge)) {
        console.error(`e2e: removing leftover bridge ${bridge}`);
        try {
          execFileSync('ip', ['link', 'del', bridge], { stdio: 'inherit' });
        } catch {
          // reported by the test already
        }
      }
    }, { timeout: 240_000 });

    test('docker network create -d <plugin> uses the wasm driver', { timeout: 120_000 }, async () => {
      assert.ok(d && host, 'setup failed');
      try {
        await d.dockerWith(
          { timeoutMs: 90_000 },
          'network', 'create', '-d', plugin,
          '--subnet', SUBNET, '--gateway', GATEWAY,
          '-o', `com.docker.network.bridge.name=${bridge}`,
          net,
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${diagnostics()}`);
      }
      networkCreated = true;
      const driver = (await d.docker('network', 'inspect', '-f', '{{.Driver}}', net)).trim();
      assert.equal(driver, plugin);
    });

    test('two containers get dockerd\'s addresses, the gateway route, and ping each other', { timeout: 180_000 }, async () => {
      assert.ok(d && host && networkCreated, 'network was not created');
      try {
        await d.dockerWith({ timeoutMs: 90_000 }, 'run', '-d', '--network', net, '--name', 'e2e-a', BUSYBOX_IMAGE, 'sleep', '300');
        await d.dockerWith({ timeoutMs: 90_000 }, 'run', '-d', '--network', net, '--name', 'e2e-b', BUSYBOX_IMAGE, 'sleep', '300');
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${diagnostics()}`);
      }
      assert.ok(linkExists(bridge), `bridge ${bridge} exists on the host`);
      const a = await assertAddressAndRoute('e2e-a');
      const b = await assertAddressAndRoute('e2e-b');
      assert.equal(a.Gateway, GATEWAY);
      assert.notEqual(a.IPAddress, b.IPAddress);
      await assertPing('e2e-a', 'e2e-b');
      await assertPing('e2e-b', 'e2e-a');
    });

    test('after a restart of the host, a new container still gets connectivity (state persisted)', { timeout: 180_000 }, async () => {
      assert.ok(d && host && networkCreated, 'network was not created');
      const how = await host.stop();
      assert.ok(!host.running);
      console.log(`e2e: host stopped (${how}); starting it again with state dir ${host.stateDir}`);
      await host.start();
      try {
        await d.dockerWith({ timeoutMs: 90_000 }, 'run', '-d', '--network', net, '--name', 'e2e-c', BUSYBOX_IMAGE, 'sleep', '300');
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${diagnostics()}`);
      }
      await assertAddressAndRoute('e2e-c');
      await assertPing('e2e-c', 'e2e-a');
      await assertPing('e2e-a', 'e2e-c');
      await assertPing('e2e-c', 'e2e-b');
    });

    test('hot-swap: after an upgrade with containers running, they keep connectivity and a new container is served by the new version', { timeout: 240_000 }, async () => {
      assert.ok(d && host && networkCreated, 'network was not created');
      const v2 = join(REPO_ROOT, 'drivers-wasm/testing/bridge-v2/build/bridge-v2.wasm');
      const cmd = cliCommand(runtime, ['upgrade', 'wasmnet-bridge', v2, '--grant-all', '--state-dir', host.stateDir]);
      const up = spawnSync(cmd.file, cmd.args, { encoding: 'utf8', timeout: 120_000 });
      assert.equal(up.status, 0, `${up.stdout}${up.stderr}\n${diagnostics()}`);
      assert.match(up.stdout, /wasmnet-bridge: 0\.1\.0 -> 0\.2\.0/);
      // Containers started before the swap still talk.
      await assertPing('e2e-a', 'e2e-b');
      await assertPing('e2e-c', 'e2e-a');
      // A container started after it gets its interface from 0.2.0 (the audit log says which version made its veth).
      await d.dockerWith({ timeoutMs: 90_000 }, 'run', '-d', '--network', net, '--name', 'e2e-d', BUSYBOX_IMAGE, 'sleep', '300');
      await assertAddressAndRoute('e2e-d');
      await assertPing('e2e-d', 'e2e-a');
      const audit = spawnSync(...((c) => [c.file, c.args] as const)(cliCommand(runtime, ['audit', '--json', '--op', 'create-veth', '--state-dir', host.stateDir])), { encoding: 'utf8' });
      const veths = JSON.parse(audit.stdout) as { version: string; allowed: boolean }[];
      assert.equal(veths[0]?.version, '0.2.0', JSON.stringify(veths));
      assert.ok(veths.slice(1).every((e) => e.version === '0.1.0'), 'the earlier containers were made by 0.1.0');
      // A container made under 0.1.0 stops cleanly under 0.2.0, its veth gone.
      await d.dockerWith({ timeoutMs: 90_000 }, 'rm', '-f', 'e2e-b');
      await assertPing('e2e-d', 'e2e-c');
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
