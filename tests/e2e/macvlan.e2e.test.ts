// End to end: a private dockerd uses the wasm macvlan driver
// (drivers-wasm/macvlan) served by the wasmnet host on
// /run/docker/plugins/<unique name>.sock.
//
//   node_modules/.bin/node --test tests/e2e/macvlan.e2e.test.ts
//   node_modules/.bin/deno test --no-check -A tests/e2e/macvlan.e2e.test.ts
//
// Needs root, Debian's docker.io and busybox-static. The host runs on the same
// runtime as the test unless WASMNET_RUNTIME=node|deno says otherwise.
//
// The parent is a veth pair made for the run (never a real uplink), both ends
// up. The bundled manifest grants no parent; like an operator, the test writes
// a copy of it that lists this one and serves the driver with
// `--driver <macvlan.wasm> --manifest <copy>`. The component is (re)built
// from the current sources first (a no-op when up to date).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUSYBOX_IMAGE, canRunDockerd, runCommand, startDockerd } from './lib/dockerd.ts';
import type { Dockerd } from './lib/dockerd.ts';
import { describeLink, hostLinks, linkExists, linksLeft, type Link } from './lib/links.ts';
import { containerChecks } from './lib/containers.ts';
import { NODE_BIN, NODE_ENTRY, REPO_ROOT, WasmnetHost, defaultRuntime, uniquePluginName } from '../lib/wasmnet-host.ts';

const SUBNET = '10.202.0.0/24';
const GATEWAY = '10.202.0.1';
/** The driver's link prefix (its manifest's linkPrefix). */
const LINK_PREFIX = 'mv';
const DRIVER_DIR = path.join(REPO_ROOT, 'drivers-wasm/macvlan');
const COMPONENT = path.join(DRIVER_DIR, 'build/macvlan.wasm');



/** What must not change on the parent: the link as `ip -d link` shows it, and its IPv4 addresses. */
function parentSnapshot(name: string): string {
  const link = JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show', 'dev', name], { encoding: 'utf8' })) as unknown[];
  const addrs = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr', 'show', 'dev', name], { encoding: 'utf8' })) as { addr_info?: unknown[] }[];
  return JSON.stringify({ link, ipv4: addrs.map((a) => a.addr_info ?? []) }, null, 1);
}


const reason = canRunDockerd();

if (reason) {
  console.log(`e2e: needs root and dockerd: ${reason}`);
  test('wasm macvlan driver end to end', { skip: `needs root and dockerd: ${reason}` }, () => {});
} else {
  describe('wasm macvlan driver end to end', { timeout: 900_000 }, () => {
    const hex = randomBytes(3).toString('hex');
    const plugin = uniquePluginName('wasmnet-e2e-mv');
    // A veth pair for the run: e2ep<hex> is the parent, e2eq<hex> its peer.
    const parent = `e2ep${hex}`;
    const peer = `e2eq${hex}`;
    const net = `e2e-mv-${hex}`;
    const containers = ['e2e-mv-a', 'e2e-mv-b'];
    const runtime = defaultRuntime();
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wnmv-'));
    const manifestCopy = path.join(workDir, 'macvlan.manifest.json');
    let d: Dockerd | undefined;
    let host: WasmnetHost | undefined;
    let linksBefore = new Set<string>();
    let parentBefore = '';
    let parentCreated = false;
    let networkCreated = false;

    /** Links of the driver in the host namespace that this run made (macvlans on our parent). */
    const ourMacvlans = (): Link[] => hostLinks().filter((l) => l.ifname.startsWith(LINK_PREFIX) && !linksBefore.has(l.ifname));

    const { settingsOf, assertAddressAndRoute, assertPing, diagnostics, withDiagnostics } = containerChecks({ network: net, subnet: SUBNET, gateway: GATEWAY, dockerd: () => d, host: () => host });

    /** eth0 of the container, as the host's iproute2 shows it from inside the container's namespace. */
    async function eth0Of(name: string): Promise<Link> {
      assert.ok(d);
      const pid = (await d.docker('inspect', '-f', '{{.State.Pid}}', name)).trim();
      assert.match(pid, /^[1-9][0-9]*$/, `pid of ${name}`);
      const r = await runCommand('nsenter', ['-t', pid, '-n', 'ip', '-j', '-d', 'link', 'show', 'dev', 'eth0'], { timeoutMs: 20_000 });
      assert.equal(r.code, 0, `ip link in ${name}: ${r.stderr}`);
      const [l] = JSON.parse(r.stdout) as Link[];
      assert.ok(l, `${name} has eth0`);
      return l;
    }

    before(async () => {
      linksBefore = new Set(hostLinks().map((l) => l.ifname).filter((n) => n.startsWith(LINK_PREFIX)));
      console.log(`e2e: plugin ${plugin}, host runtime ${runtime}, parent ${parent} (veth, peer ${peer}), network ${net}`);

      const build = await runCommand(NODE_BIN, [path.join(REPO_ROOT, 'drivers-wasm/build.ts'), 'macvlan'], { timeoutMs: 300_000, cwd: REPO_ROOT });
      assert.equal(build.code, 0, `building the macvlan driver failed:\n${build.stdout}${build.stderr}`);
      console.log(`e2e: ${build.stdout.trim().split('\n').join('; ')}`);

      // The operator's manifest: the bundled one, with this run's parent granted.
      const manifest = JSON.parse(fs.readFileSync(path.join(DRIVER_DIR, 'manifest.json'), 'utf8')) as {
        capabilities: { netlink: { parents: string[] } };
      };
      assert.deepEqual(manifest.capabilities.netlink.parents, [], 'the bundled manifest grants no parent');
      manifest.capabilities.netlink.parents = [parent];
      fs.writeFileSync(manifestCopy, JSON.stringify(manifest, null, 2) + '\n');

      execFileSync('ip', ['link', 'add', parent, 'type', 'veth', 'peer', 'name', peer]);
      parentCreated = true;
      execFileSync('ip', ['link', 'set', parent, 'up']);
      execFileSync('ip', ['link', 'set', peer, 'up']);
      parentBefore = parentSnapshot(parent);

      d = await startDockerd();
      await d.importBusybox();
      host = new WasmnetHost({ runtime, name: plugin, extraArgs: ['--driver', COMPONENT, '--manifest', manifestCopy] });
      await host.start();
    }, { timeout: 480_000 });

    after(async () => {
      if (d?.running) {
        await d.dockerResult(['rm', '-f', ...containers], { timeoutMs: 60_000 });
        if (networkCreated) await d.dockerResult(['network', 'rm', net], { timeoutMs: 60_000 });
      }
      await host?.dispose();
      await d?.stop();
      // a failed run must not leave macvlans on its parent, nor the parent
      for (const l of hostLinks().filter((x) => x.ifname.startsWith(LINK_PREFIX) && !linksBefore.has(x.ifname) && x.link === parent)) {
        console.error(`e2e: removing leftover macvlan ${l.ifname}`);
        try {
          execFileSync('ip', ['link', 'del', l.ifname], { stdio: 'inherit' });
        } catch {
          // reported by the test already
        }
      }
      if (parentCreated && linkExists(parent)) {
        try {
          execFileSync('ip', ['link', 'del', parent], { stdio: 'inherit' });
        } catch (err) {
          console.error(`e2e: cannot remove the test parent ${parent}: ${(err as Error).message}`);
        }
      }
      if (process.env.WASMNET_KEEP_TMP !== '1') fs.rmSync(workDir, { recursive: true, force: true });
    }, { timeout: 240_000 });

    test('create-network refuses what it must, with the reason: no parent, a parent not granted, an unknown option', { timeout: 120_000 }, async () => {
      assert.ok(d && host, 'setup failed');
      const cases: [string[], RegExp][] = [
        [[], /needs the parent link/],
        [['-o', 'parent=lo'], /parent lo is not granted to wasmnet-macvlan/],
        [['-o', `parent=${parent}`, '-o', 'macvlan_mode=l2'], /macvlan_mode "l2" is not one of bridge, private, vepa, passthru/],
        [['-o', `parent=${parent}`, '-o', 'ipvlan_mode=l2'], /driver option "ipvlan_mode" is not supported by wasmnet-macvlan/],
      ];
      for (const [opts, expected] of cases) {
        const r = await d.dockerResult(['network', 'create', '-d', plugin, '--subnet', SUBNET, '--gateway', GATEWAY, ...opts, `${net}-bad`], { timeoutMs: 90_000 });
        assert.notEqual(r.code, 0, `docker network create ${opts.join(' ')} must fail:\n${r.stdout}`);
        assert.match(r.stderr, expected, `docker network create ${opts.join(' ')}`);
      }
      assert.deepEqual(ourMacvlans(), [], 'a refused network creates nothing');
    });

    test('docker network create -d <plugin> -o parent=<granted link> creates no link', { timeout: 120_000 }, async () => {
      assert.ok(d && host, 'setup failed');
      await withDiagnostics(() =>
        d!.dockerWith({ timeoutMs: 90_000 }, 'network', 'create', '-d', plugin, '--subnet', SUBNET, '--gateway', GATEWAY, '-o', `parent=${parent}`, net),
      );
      networkCreated = true;
      assert.equal((await d.docker('network', 'inspect', '-f', '{{.Driver}}', net)).trim(), plugin);
      assert.deepEqual(ourMacvlans(), []);
      assert.equal(parentSnapshot(parent), parentBefore, 'the parent is unchanged');
    });

    test('two containers get a macvlan on the parent as eth0, dockerd\'s addresses and gateway, and ping each other', { timeout: 180_000 }, async () => {
      assert.ok(d && host && networkCreated, 'network was not created');
      await withDiagnostics(async () => {
        for (const c of containers) await d!.dockerWith({ timeoutMs: 90_000 }, 'run', '-d', '--network', net, '--name', c, BUSYBOX_IMAGE, 'sleep', '600');
      });
      const [a, b] = [await assertAddressAndRoute('e2e-mv-a'), await assertAddressAndRoute('e2e-mv-b')];
      assert.notEqual(a.IPAddress, b.IPAddress);
      for (const [name, s] of [['e2e-mv-a', a], ['e2e-mv-b', b]] as const) {
        const eth0 = await eth0Of(name);
        assert.equal(eth0.linkinfo?.info_kind, 'macvlan', `eth0 of ${name} is a macvlan: ${JSON.stringify(eth0)}`);
        assert.equal(eth0.linkinfo?.info_data?.mode, 'bridge');
        assert.equal(eth0.operstate, 'UP');
        // the MAC follows the address, as with Docker's drivers
        const mac = `02:42:${s.IPAddress.split('.').map((n) => Number(n).toString(16).padStart(2, '0')).join(':')}`;
        assert.equal(eth0.address, mac, `MAC of ${name}`);
        assert.equal(s.MacAddress, mac);
      }
      // the macvlans live in the containers, not in the host namespace
      assert.deepEqual(ourMacvlans().map((l) => l.ifname), []);
      await withDiagnostics(async () => {
        await assertPing('e2e-mv-a', 'e2e-mv-b');
        await assertPing('e2e-mv-b', 'e2e-mv-a');
      });
    });

    test('a stopped container\'s macvlan is deleted once dockerd returns it (Leave, then DeleteEndpoint); started again, it gets a new one', { timeout: 180_000 }, async () => {
      assert.ok(d && host && networkCreated, 'network was not created');
      await withDiagnostics(() => d!.dockerWith({ timeoutMs: 90_000 }, 'stop', '-t', '1', 'e2e-mv-a'));
      assert.deepEqual(ourMacvlans().map((l) => l.ifname), [], 'no macvlan left in the host namespace after the stop');
      await withDiagnostics(() => d!.dockerWith({ timeoutMs: 90_000 }, 'start', 'e2e-mv-a'));
      await assertAddressAndRoute('e2e-mv-a');
      assert.equal((await eth0Of('e2e-mv-a')).linkinfo?.info_kind, 'macvlan');
      await withDiagnostics(async () => {
        await assertPing('e2e-mv-a', 'e2e-mv-b');
        await assertPing('e2e-mv-b', 'e2e-mv-a');
      });
    });

    test('removing the containers and the network leaves no macvlan behind and the parent as it was', { timeout: 180_000 }, async () => {
      assert.ok(d && host && networkCreated, 'network was not created');
      await d.dockerWith({ timeoutMs: 90_000 }, 'rm', '-f', ...containers);
      await d.dockerWith({ timeoutMs: 90_000 }, 'network', 'rm', net);
      networkCreated = false;
      const left = await linksLeft((l) => l.ifname.startsWith(LINK_PREFIX) && !linksBefore.has(l.ifname));
      assert.deepEqual(left.map(describeLink), [], `links left by the driver:\n${diagnostics()}`);
      assert.equal(parentSnapshot(parent), parentBefore, 'the parent is unchanged');
    });

    test('the audit log shows the driver used only its own links and the granted parent', { timeout: 60_000 }, async () => {
      assert.ok(host, 'setup failed');
      const r = await runCommand(NODE_BIN, [NODE_ENTRY, 'audit', '--state-dir', host.stateDir, '--driver', 'wasmnet-macvlan', '--limit', '10000', '--json'], {
        timeoutMs: 30_000,
        cwd: REPO_ROOT,
      });
      assert.equal(r.code, 0, `wasmnet audit: ${r.stderr}`);
      const entries = JSON.parse(r.stdout) as { op: string; args: Record<string, unknown>; allowed: boolean; error?: string }[];
      const show = (e: (typeof entries)[number]) => `${e.allowed ? 'allowed' : 'denied'} ${e.op} ${JSON.stringify(e.args)}${e.error ? `: ${e.error}` : ''}`;
      const created = entries.filter((e) => e.op === 'create-macvlan' && e.allowed);
      // two containers, and one of them started again
      assert.equal(created.length, 3, entries.map(show).join('\n'));
      for (const e of created) {
        assert.equal(e.args.parent, parent);
        assert.equal(e.args.mode, 'bridge');
        assert.match(String(e.args.name), /^mv[0-9a-f]{10}$/);
      }
      assert.equal(entries.filter((e) => e.op === 'delete-link' && e.allowed).length, 3, entries.map(show).join('\n'));
      // the refused parent: looked up, denied by the policy
      assert.ok(entries.some((e) => e.op === 'get-link' && !e.allowed && e.args.name === 'lo'), entries.map(show).join('\n'));
      // every allowed call named one of its own links or the granted parent, nothing else
      for (const e of entries.filter((x) => x.allowed)) {
        const names = [e.args.name, e.args.parent].filter((n) => n !== undefined).map(String);
        assert.ok(names.length > 0 && names.every((n) => n === parent || /^mv[0-9a-f]{10}$/.test(n)), show(e));
      }
      console.log(`e2e: audit: ${entries.length} privileged calls, ${entries.filter((e) => !e.allowed).length} denied`);
    });
  });
}
