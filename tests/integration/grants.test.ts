// Grants as an operator uses them: `wasmnet install` shows what a driver asks
// for and records the grant for that component digest; `wasmnet serve`
// refuses a driver without a grant, or whose manifest asks for more than was
// granted; `wasmnet grants` shows and revokes.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliCommand, defaultRuntime, REPO_ROOT } from '../lib/wasmnet-host.ts';

const component = join(REPO_ROOT, 'drivers-wasm/bridge/build/bridge.wasm');
const manifest = join(REPO_ROOT, 'drivers-wasm/bridge/build/bridge.manifest.json');

function wasmnet(...args: string[]): { code: number | null; out: string } {
  const cmd = cliCommand(defaultRuntime(), args);
  const r = spawnSync(cmd.file, cmd.args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  return { code: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

if (!existsSync(component)) {
  const reason = `needs the built bridge driver (${component}); run npm run build`;
  console.log(`grants tests: ${reason}`);
  test('grants', { skip: reason }, () => {});
} else {
  describe('install, grants and serve', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmnet-grants-'));
    const state = join(dir, 'state');
    const digest = 'sha256:' + createHash('sha256').update(readFileSync(component)).digest('hex');
    // A package of our own: the bundled component with a copy of its manifest we can change.
    const pkgWasm = join(dir, 'bridge.wasm');
    const pkgManifest = join(dir, 'bridge.manifest.json');
    const original = JSON.parse(readFileSync(manifest, 'utf8'));

    before(() => {
      copyFileSync(component, pkgWasm);
      writeFileSync(pkgManifest, JSON.stringify(original));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('install without a terminal and without --grant-all shows the privileges and grants nothing', () => {
      const r = wasmnet('install', pkgWasm, '--state-dir', state);
      assert.equal(r.code, 1);
      assert.match(r.out, /Driver "wasmnet-bridge" 0\.1\.0 from wasmnet \(sha256:[0-9a-f]{64}\) is requesting the following privileges:/);
      assert.match(r.out, / - netlink links: \[create bridge, veth named wn\*; change and delete only links it created\]/);
      assert.match(r.out, /not granted/);
      assert.match(wasmnet('grants', '--state-dir', state).out, /no grants/);
    });

    test('a manifest that does not request what the component imports is refused at install', () => {
      const m = structuredClone(original);
      delete m.capabilities.netlink;
      const bad = join(dir, 'narrow.manifest.json');
      writeFileSync(bad, JSON.stringify(m));
      const r = wasmnet('install', pkgWasm, '--manifest', bad, '--grant-all', '--state-dir', state);
      assert.equal(r.code, 1);
      assert.match(r.out, /imports wasmnet:host\/netlink@0\.1\.0, which its manifest does not request/);
    });

    test('a manifest with a reserved prefix is refused', () => {
      const m = structuredClone(original);
      m.capabilities.netlink.linkPrefix = 'eth';
      const bad = join(dir, 'eth.manifest.json');
      writeFileSync(bad, JSON.stringify(m));
      const r = wasmnet('install', pkgWasm, '--manifest', bad, '--grant-all', '--state-dir', state);
      assert.equal(r.code, 1);
      assert.match(r.out, /linkPrefix: must not overlap a reserved prefix/);
    });

    test('install --grant-all records the grant for the component digest', () => {
      const r = wasmnet('install', pkgWasm, '--grant-all', '--state-dir', state);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`Granted wasmnet-bridge 0\\.1\\.0 \\(${digest}\\)`));
      const list = JSON.parse(wasmnet('grants', 'wasmnet-bridge', '--json', '--state-dir', state).out) as { digest: string; manifest: unknown }[];
      assert.deepEqual(list.map((g) => g.digest), [digest]);
      // The grant holds the manifest as the host read it, defaults filled in.
      assert.deepEqual(list[0]!.manifest, { ...original, capabilities: { ...original.capabilities, netlink: { parents: [], vxlanPorts: [4789, 8472], ...original.capabilities.netlink } } });
      assert.match(wasmnet('grants', '--state-dir', state).out, /wasmnet-bridge 0\.1\.0 sha256:[0-9a-f]{64} granted .*\n {2}- log: \[write to the host log\]/);
    });

    test('a manifest that asks for more than was granted is asked again, and refused without an answer', () => {
      const wider = structuredClone(original);
      wider.capabilities.netlink.linkKinds = ['bridge', 'veth', 'macvlan'];
      writeFileSync(pkgManifest, JSON.stringify(wider));
      try {
        const r = wasmnet('serve', '--driver', pkgWasm, '--socket-dir', join(dir, 'plugins'), '--state-dir', state, '--name', 'wasmnet-grants-test');
        assert.equal(r.code, 1);
        assert.match(r.out, / - netlink links: \[create bridge, veth, macvlan named wn\*/);
        assert.match(r.out, /not granted/);
        const again = wasmnet('install', pkgWasm, '--state-dir', state);
        assert.equal(again.code, 1, 'install asks again for the changed manifest');
        assert.match(again.out, /is requesting the following privileges/);
      } finally {
        writeFileSync(pkgManifest, JSON.stringify(original));
      }
    });

    test('grants --revoke removes the grant, and serve then refuses the driver', () => {
      assert.match(wasmnet('grants', '--revoke', 'sha256:nothex', '--state-dir', state).out, /--revoke: expected a digest/);
      const r = wasmnet('grants', '--revoke', digest, '--state-dir', state);
      assert.equal(r.code, 0, r.out);
      assert.match(wasmnet('grants', '--state-dir', state).out, /no grants/);
      const s = wasmnet('serve', '--driver', pkgWasm, '--socket-dir', join(dir, 'plugins'), '--state-dir', state, '--name', 'wasmnet-grants-test');
      assert.equal(s.code, 1);
      assert.match(s.out, /not granted/);
      assert.equal(existsSync(join(dir, 'plugins', 'wasmnet-grants-test.sock')), false);
    });

    test('audit refuses bad filters with a clear message', () => {
      const r = wasmnet('audit', '--since', 'yesterday-ish', '--state-dir', state);
      assert.equal(r.code, 1);
      assert.match(r.out, /--since.*expected a time/);
      assert.match(wasmnet('audit', '--denied', '--allowed', '--state-dir', state).out, /cannot be used with/);
    });
  });
}
