// Benchmark: what a hot swap costs the calls around it. A steady stream of
// EndpointOperInfo calls (a fixed rate, --rate per second, as a busy dockerd
// would send; not a saturating loop) goes to the bridge driver while versions are swapped
// (0.1.0 <-> 0.2.0) every --seconds / --swaps seconds (2 s by default); the latency of calls made
// during the swapping phase is compared with a phase without swaps, in the
// same run. Also: the time from the upgrade request to the new version
// answering. Target: ≤ 10 ms added at p99.
//
//   node tests/bench/swap.bench.ts [--seconds N] [--swaps N] [--rate N]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import { callPlugin, requestJson } from '../lib/plugin-client.ts';
import { REPO_ROOT, WasmnetHost, cliCommand, defaultRuntime, engineUnderTest } from '../lib/wasmnet-host.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} takes a positive whole number`);
  return n;
}
const seconds = arg('--seconds', 16);
const swaps = arg('--swaps', 8);
const rate = arg('--rate', 200);
const v2 = join(REPO_ROOT, 'drivers-wasm/testing/bridge-v2/build/bridge-v2.wasm');

if (process.getuid?.() !== 0) {
  console.log('swap bench: needs root (network namespaces): not run');
  process.exit(0);
}
if (!existsSync(v2)) {
  console.log(`swap bench: needs ${v2} (npm run build)`);
  process.exit(1);
}

const hex = (n: number) => randomBytes(n).toString('hex');
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
const ns = `wasmnet-swb-${hex(3)}`;
const dir = mkdtempSync(join(tmpdir(), 'wasmnet-swapbench-'));
execFileSync('ip', ['netns', 'add', ns]);
const host = new WasmnetHost({ socketDir: join(dir, 'p'), stateDir: join(dir, 's'), name: 'swap-bench', netns: ns });
try {
  await host.start();
  const admin = join(dir, 's', 'admin.sock');
  const cmd = cliCommand(defaultRuntime(), ['install', v2, '--grant-all', '--state-dir', join(dir, 's')]);
  execFileSync(cmd.file, cmd.args);
  const nid = hex(32);
  const eid = hex(32);
  const call = async (m: string, b: unknown) => {
    const r = await callPlugin(host.socketPath, `/NetworkDriver.${m}`, b);
    if (r.status !== 200 || 'Err' in r.json) throw new Error(`${m}: ${JSON.stringify(r.json)}`);
    return r.json;
  };
  await call('CreateNetwork', { NetworkID: nid, Options: {}, IPv4Data: [{ AddressSpace: 'x', Pool: '10.71.0.0/16', Gateway: '10.71.0.1/16' }], IPv6Data: [] });
  await call('CreateEndpoint', { NetworkID: nid, EndpointID: eid, Interface: { Address: '10.71.0.2/16' }, Options: {} });

  /** Sends EndpointOperInfo at `rate` calls per second for `ms` (each call on its own, however long others take); returns each latency. */
  let refused = 0;
  async function stream(ms: number, during?: () => Promise<void>): Promise<number[]> {
    const lat: number[] = [];
    const inflight: Promise<void>[] = [];
    const started = performance.now();
    const work = during ? during() : Promise.resolve();
    for (let i = 0; performance.now() - started < ms; i++) {
      const due = started + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      inflight.push(
        call('EndpointOperInfo', { NetworkID: nid, EndpointID: eid }).then(
          () => void lat.push(performance.now() - due),
          () => void refused++,
        ),
      );
    }
    await work;
    await Promise.all(inflight);
    return lat;
  }

  await stream(1000); // warm-up
  const baseline = await stream(seconds * 1000);
  const switchMs: number[] = [];
  const serveMs: number[] = [];
  const during = await stream(seconds * 1000, async () => {
    for (let i = 0; i < swaps; i++) {
      const target = i % 2 === 0 ? '0.2.0' : '0.1.0';
      const t = performance.now();
      const r = await requestJson(admin, 'POST', '/v1/drivers/wasmnet-bridge/upgrade', { target });
      if (r.status !== 200) throw new Error(JSON.stringify(r.json));
      // The new version answers: 0.2.0 names itself in endpoint-oper-info, 0.1.0 does not.
      const v = ((await call('EndpointOperInfo', { NetworkID: nid, EndpointID: eid })) as { Value: Record<string, unknown> }).Value['wasmnet.version'];
      if ((v === '0.2.0') !== (target === '0.2.0')) throw new Error(`after the upgrade to ${target}, version ${String(v)} answered`);
      serveMs.push(performance.now() - t);
      switchMs.push((r.json as { ms: number }).ms);
      await new Promise((r2) => setTimeout(r2, Math.max(50, (seconds * 1000) / swaps - (performance.now() - t))));
    }
  });
  const row = (name: string, xs: number[]) => console.log(`${name.padEnd(24)} n=${String(xs.length).padStart(6)}  p50 ${pct(xs, 50).toFixed(2).padStart(7)} ms  p99 ${pct(xs, 99).toFixed(2).padStart(7)} ms  max ${Math.max(...xs).toFixed(2).padStart(7)} ms`);
  console.log(`swap bench: EndpointOperInfo at ${rate}/s, ${seconds} s without and ${seconds} s with ${swaps} swaps, runtime ${defaultRuntime()}, engine ${engineUnderTest()}`);
  row('calls, no swaps', baseline);
  row('calls, during swaps', during);
  row('upgrade request to serving', serveMs);
  row('switch (host-side)', switchMs);
  console.log(`calls refused (the driver's queue full): ${refused}`);
  console.log(`added latency during swaps: p50 ${(pct(during, 50) - pct(baseline, 50)).toFixed(2)} ms, p99 ${(pct(during, 99) - pct(baseline, 99)).toFixed(2)} ms (target ≤ 10 ms at p99)`);
  await call('DeleteEndpoint', { NetworkID: nid, EndpointID: eid });
  await call('DeleteNetwork', { NetworkID: nid });
} finally {
  await host.dispose();
  execFileSync('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
}
