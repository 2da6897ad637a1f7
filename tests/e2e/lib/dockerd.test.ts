// Self-test of the private-dockerd harness (no wasm involved):
// start dockerd, import busybox, run containers with --network none and on a
// network of Docker's built-in bridge driver, stop, and check nothing is left.
//
//   node_modules/.bin/node --test tests/e2e/lib/dockerd.test.ts
//   node_modules/.bin/deno test -A tests/e2e/lib/dockerd.test.ts

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { BUSYBOX_IMAGE, canRunDockerd, startDockerd } from './dockerd.ts';
import type { Dockerd } from './dockerd.ts';

const reason = canRunDockerd();

function linkNames(): string[] {
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[];
  return links.map((l) => l.ifname);
}

if (reason) {
  console.log(`e2e: needs root and dockerd: ${reason}`);
  test('dockerd harness', { skip: `needs root and dockerd: ${reason}` }, () => {});
} else {
  describe('dockerd harness', { timeout: 240_000 }, () => {
    let d: Dockerd | undefined;
    const hex = randomBytes(3).toString('hex');
    const bridge = `dkh${hex}`; // not starting with "wn", the wasm driver's link prefix the e2e test watches
    const net = `harness-${hex}`;

    before(async () => {
      d = await startDockerd();
    }, { timeout: 90_000 });

    after(async () => {
      await d?.stop();
    }, { timeout: 90_000 });

    test('dockerd answers on its private socket', async () => {
      assert.ok(d);
      const v = (await d.docker('version', '--format', '{{.Server.Version}}')).trim();
      assert.match(v, /^\d+\.\d+/);
      assert.ok(fs.existsSync(d.socket));
      const info = JSON.parse(await d.docker('info', '--format', '{{json .}}')) as { Driver: string; DockerRootDir: string };
      assert.ok(info.DockerRootDir.startsWith(d.dir), `data root ${info.DockerRootDir} under ${d.dir}`);
      console.log(`dockerd ${v}, storage driver ${info.Driver}, dir ${d.dir}`);
    });

    test('importBusybox builds the image without a registry', { timeout: 60_000 }, async () => {
      assert.ok(d);
      const id = await d.importBusybox();
      assert.match(id, /^sha256:[0-9a-f]{64}$/);
      const tags = await d.docker('image', 'ls', '--format', '{{.Repository}}:{{.Tag}}');
      assert.ok(tags.split('\n').includes(BUSYBOX_IMAGE), tags);
    });

    test('a container with --network none runs and prints', { timeout: 60_000 }, async () => {
      assert.ok(d);
      const out = await d.docker('run', '--rm', '--network', 'none', BUSYBOX_IMAGE, 'echo', 'hello from busybox');
      assert.equal(out.trim(), 'hello from busybox');
      const links = await d.docker('run', '--rm', '--network', 'none', BUSYBOX_IMAGE, 'ip', '-o', 'link');
      assert.match(links, /\blo\b/);
      assert.doesNotMatch(links, /\beth0\b/);
    });

    test('docker() throws with stderr on failure', async () => {
      assert.ok(d);
      await assert.rejects(d.docker('inspect', 'no-such-container-xyz'), /No such object/);
    });

    test('containers on a built-in bridge network ping each other', { timeout: 120_000 }, async () => {
      assert.ok(d);
      await d.docker(
        'network', 'create', '-d', 'bridge', '--subnet', '10.209.0.0/24', '--gateway', '10.209.0.1',
        '-o', `com.docker.network.bridge.name=${bridge}`, net,
      );
      assert.ok(linkNames().includes(bridge));
      await d.docker('run', '-d', '--network', net, '--name', 'h1', BUSYBOX_IMAGE, 'sleep', '300');
      await d.docker('run', '-d', '--network', net, '--name', 'h2', BUSYBOX_IMAGE, 'sleep', '300');
      const nets = JSON.parse(await d.docker('inspect', '-f', '{{json .NetworkSettings.Networks}}', 'h2')) as Record<
        string,
        { IPAddress: string; IPPrefixLen: number }
      >;
      const ip2 = nets[net]?.IPAddress;
      assert.ok(ip2, JSON.stringify(nets));
      const addr = await d.docker('exec', 'h2', 'ip', '-4', 'addr', 'show', 'eth0');
      assert.ok(addr.includes(`inet ${ip2}/${nets[net]?.IPPrefixLen}`), addr);
      const routes = await d.docker('exec', 'h1', 'ip', '-4', 'route');
      assert.match(routes, /^default via 10\.209\.0\.1 dev eth0/m);
      const ping = await d.docker('exec', 'h1', 'ping', '-c', '1', '-W', '2', ip2);
      assert.match(ping, /1 packets received/);
      await d.docker('rm', '-f', 'h1', 'h2');
      await d.docker('network', 'rm', net);
      assert.ok(!linkNames().includes(bridge), 'bridge removed with the network');
    });

    test('stop() removes dockerd, containerd, mounts and the temp dir', { timeout: 90_000 }, async () => {
      assert.ok(d);
      // leave a running container behind on purpose: stop() must cope
      await d.docker('network', 'create', '-d', 'bridge', '--subnet', '10.209.1.0/24', '-o', `com.docker.network.bridge.name=${bridge}`, net);
      await d.docker('run', '-d', '--network', net, '--name', 'leftover', BUSYBOX_IMAGE, 'sleep', '300');
      const dir = d.dir;
      const t0 = Date.now();
      await d.stop();
      console.log(`stop() took ${Date.now() - t0} ms`);
      assert.ok(!fs.existsSync(dir), `${dir} removed`);
      const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
      assert.ok(!mounts.includes(dir), 'no mounts left');
      const procs = fs
        .readdirSync('/proc')
        .filter((e) => /^\d+$/.test(e))
        .filter((e) => {
          try {
            return fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(dir);
          } catch {
            return false;
          }
        });
      assert.deepEqual(procs, [], 'no processes of this instance left');
      assert.ok(!linkNames().includes(bridge), 'bridge of the built-in network removed');
      await d.stop(); // idempotent
    });
  });
}
