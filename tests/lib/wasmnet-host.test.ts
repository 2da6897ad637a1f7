// Self-test of the wasmnet host harness, with a fake host entry script that
// follows the CLI contract (serve --socket-dir --state-dir --name, socket
// <dir>/<name>.sock, clean stop on SIGTERM). Needs neither root nor dockerd.
// Both runtimes are exercised whichever runtime runs the test.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WasmnetHost, canConnect, defaultRuntime, startWasmnetHost, uniquePluginName } from './wasmnet-host.ts';
import type { Runtime } from './wasmnet-host.ts';

const FAKE_HOST = `
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
const argv = process.argv.slice(2);
const opt = (k) => argv[argv.indexOf(k) + 1];
if (argv[0] !== 'serve') { console.error('usage: serve ...'); process.exit(2); }
const socketDir = opt('--socket-dir'), stateDir = opt('--state-dir'), name = opt('--name');
const mode = process.env.FAKE_MODE ?? '';
if (mode === 'crash') { console.error('fake host: cannot read driver component'); process.exit(3); }
fs.appendFileSync(path.join(stateDir, 'starts'), 'start\\n');
const socketPath = path.join(socketDir, name + '.sock');
const server = net.createServer((c) => { c.on('error', () => {}); c.end('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n{}'); });
server.listen(socketPath, () => console.log('fake host: serving ' + name + ' on ' + socketPath));
process.on('SIGTERM', () => {
  if (mode === 'ignore-term') { console.log('fake host: ignoring SIGTERM'); return; }
  server.close(() => { try { fs.unlinkSync(socketPath); } catch {} process.exit(0); });
});
`;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wnh-selftest-'));
const entry = path.join(tmp, 'fake-host.mjs');
fs.writeFileSync(entry, FAKE_HOST);

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('defaultRuntime follows WASMNET_RUNTIME, else the running runtime', () => {
  const saved = process.env.WASMNET_RUNTIME;
  try {
    delete process.env.WASMNET_RUNTIME;
    assert.equal(defaultRuntime(), 'Deno' in globalThis ? 'deno' : 'node');
    process.env.WASMNET_RUNTIME = 'deno';
    assert.equal(defaultRuntime(), 'deno');
    process.env.WASMNET_RUNTIME = 'bun';
    assert.throws(() => defaultRuntime(), /node or deno/);
  } finally {
    if (saved === undefined) delete process.env.WASMNET_RUNTIME;
    else process.env.WASMNET_RUNTIME = saved;
  }
});

test('uniquePluginName is unique and a valid plugin name', () => {
  const a = uniquePluginName();
  assert.match(a, /^wasmnet-e2e-[0-9a-f]{8}$/);
  assert.notEqual(a, uniquePluginName());
});

for (const runtime of ['node', 'deno'] as Runtime[]) {
  describe(`wasmnet host harness (${runtime})`, { timeout: 120_000 }, () => {
    const socketDir = path.join(tmp, `sockets-${runtime}`);

    test('start waits for the socket, restart keeps the state dir, dispose cleans up', async () => {
      const h = await startWasmnetHost({ runtime, socketDir, entry });
      try {
        assert.ok(h.running);
        assert.equal(h.socketPath, path.join(socketDir, `${h.name}.sock`));
        assert.ok(await canConnect(h.socketPath));
        assert.match(h.logTail(), new RegExp(`serving ${h.name} on ${h.socketPath}`));
        await h.restart();
        assert.ok(await canConnect(h.socketPath));
        assert.equal(fs.readFileSync(path.join(h.stateDir, 'starts'), 'utf8'), 'start\nstart\n');
        const how = await h.stop();
        assert.equal(how, 'exit code 0');
        assert.ok(!h.running);
        assert.ok(!(await canConnect(h.socketPath)));
      } finally {
        await h.dispose();
      }
      assert.ok(!fs.existsSync(h.socketPath));
      assert.ok(!fs.existsSync(h.stateDir), 'own state dir removed');
    });

    test('a host that exits during start fails with its output', async () => {
      await assert.rejects(
        startWasmnetHost({ runtime, socketDir, entry, env: { FAKE_MODE: 'crash' } }),
        /exited during start \(exit code 3\)[\s\S]*cannot read driver component/,
      );
    });

    test('a host that ignores SIGTERM is killed after the grace period', async () => {
      const stateDir = path.join(tmp, `state-${runtime}`);
      const h = new WasmnetHost({ runtime, socketDir, stateDir, entry, env: { FAKE_MODE: 'ignore-term' } });
      try {
        await h.start();
        const how = await h.stop(500);
        assert.match(how, /SIGKILL/);
        assert.ok(!h.running);
      } finally {
        await h.dispose();
      }
      assert.ok(fs.existsSync(stateDir), 'a state dir passed in is kept');
      assert.ok(!fs.existsSync(h.socketPath), 'socket removed by dispose');
    });

    test('a missing entry point is reported', async () => {
      await assert.rejects(startWasmnetHost({ runtime, socketDir, entry: path.join(tmp, 'nope.mjs') }), /entry point .*nope\.mjs not found/);
    });
  });
}
