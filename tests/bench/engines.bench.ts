// Benchmark: the two engines side by side in one run, with the bundled bridge
// driver and in-memory host imports (no kernel, no sandbox process): cold
// compile, start from the precompiled cache, an export call that does nothing
// (`type`), a join, and memory per idle instance. Prints figures and the
// ratios jco/wasmtime. Targets (wasmtime): start from cache ≤ 5 ms, ≤ 10 MB
// per idle instance.
//
//   node tests/bench/engines.bench.ts [--calls N] [--instances N]
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { createEngine, type EngineName } from '../../runtime/engine/select.ts';
import { digestOf, type Engine } from '../../runtime/engine/engine.ts';
import { callbacksImport, JoinInfo, NetworkInfo, InterfaceInfo } from '../../runtime/callbacks.ts';
import { CONTRACT_VERSION as V, type DriverExports, type DriverImports } from '../../runtime/contract.ts';
import { REPO_ROOT } from '../lib/wasmnet-host.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} takes a positive whole number`);
  return n;
}
const calls = arg('--calls', 2000);
const instances = arg('--instances', 20);
const component = join(REPO_ROOT, 'drivers-wasm/bridge/build/bridge.wasm');
if (!existsSync(component)) {
  console.log(`engines bench: needs ${component} (npm run build)`);
  process.exit(1);
}

const bytes = readFileSync(component);
const digest = await digestOf(bytes);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Host imports kept in memory: a store map and a netlink that only pretends. */
function fakeImports(): DriverImports {
  const kv = new Map<string, string>();
  let index = 10;
  const link = (name: string) => ({ index: index++, name, kind: 'bridge' as const, mtu: 1500, mac: '02:00:00:00:00:01', up: true, master: undefined });
  const netlink: Record<string, unknown> = {
    createBridge: (s: { name: string }) => link(s.name),
    createVeth: (s: { name: string }) => ({ ...link(s.name), kind: 'veth' as const }),
    getLink: () => undefined,
  };
  return {
    [`wasmnet:host/log@${V}`]: { log: () => {} },
    [`wasmnet:host/store@${V}`]: { get: (k: string) => kv.get(k), set: (k: string, v: string) => void kv.set(k, v), delete: (k: string) => kv.delete(k), entries: (p: string) => [...kv].filter(([k]) => k.startsWith(p)) },
    [`wasmnet:host/netlink@${V}`]: new Proxy(netlink, { get: (t, k: string) => t[k] ?? (() => undefined) }),
    [`wasmnet:driver/callbacks@${V}`]: callbacksImport,
    [`wasmnet:driver/types@${V}`]: {},
  } as unknown as DriverImports;
}

interface Figures {
  coldMs: number;
  cachedMs: number;
  instantiateMs: number;
  noopUs: number;
  joinUs: number;
  mbPerInstance: number;
}

async function measure(name: EngineName): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), `wasmnet-engines-${name}-`));
  try {
    const opts = { memoryMaxBytes: 256 * 1024 * 1024, callTimeoutMs: 30_000 };
    let t = performance.now();
    const cold: Engine = await createEngine(name, dir, opts);
    const prepared = await cold.prepare({ bytes, digest });
    const coldMs = performance.now() - t;
    // A new engine over the same cache: what a restarted host pays.
    t = performance.now();
    const warm = await createEngine(name, dir, opts);
    const again = await warm.prepare({ bytes, digest });
    const cachedMs = performance.now() - t;
    t = performance.now();
    const first = await warm.instantiate(again, fakeImports());
    const instantiateMs = performance.now() - t;
    const d = first.exports as DriverExports;
    const ctx = () => ({ deadlineMs: BigInt(Date.now() + 30_000) });
    const nid = 'a'.repeat(64);
    d.driver.createNetwork(ctx(), nid, [], new NetworkInfo() as never, [{ addressSpace: 'x', pool: '10.9.0.0/16', gateway: '10.9.0.1/16', auxAddresses: [] }], []);
    // A call that does nothing.
    for (let i = 0; i < 200; i++) d.driver.type();
    t = performance.now();
    for (let i = 0; i < calls; i++) d.driver.type();
    const noopUs = ((performance.now() - t) / calls) * 1000;
    // Joins (create-endpoint first, outside the timing; leave after, outside too).
    const joins: number[] = [];
    for (let i = 0; i < Math.min(calls, 500); i++) {
      const eid = i.toString(16).padStart(64, '0');
      d.driver.createEndpoint(ctx(), nid, eid, new InterfaceInfo({ address: `10.9.${1 + (i >> 7)}.${(i & 127) + 2}/16`, addressIpv6: '', macAddress: '' }) as never, []);
      const s = performance.now();
      d.driver.join(ctx(), nid, eid, '/var/run/docker/netns/x', new JoinInfo() as never, [], []);
      joins.push(performance.now() - s);
      d.driver.leave(nid, eid);
      d.driver.deleteEndpoint(nid, eid);
    }
    // Memory per idle instance: RSS over `instances` more of them.
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const before = process.memoryUsage().rss;
    const kept = [];
    for (let i = 0; i < instances; i++) kept.push(await warm.instantiate(again, fakeImports()));
    gc?.();
    const mbPerInstance = (process.memoryUsage().rss - before) / instances / 1024 / 1024;
    void prepared;
    return { coldMs, cachedMs, instantiateMs, noopUs, joinUs: median(joins) * 1000, mbPerInstance };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const jco = await measure('jco');
const wasmtime = await measure('wasmtime');
const row = (label: string, j: number, w: number, unit: string) =>
  console.log(`${label.padEnd(34)} jco ${j.toFixed(2).padStart(10)} ${unit.padEnd(3)} wasmtime ${w.toFixed(2).padStart(10)} ${unit.padEnd(3)} jco/wasmtime ${(j / w).toFixed(2)}x`);
console.log(`engines bench: the bridge driver (${(bytes.length / 1024 / 1024).toFixed(1)} MB), ${calls} calls, ${instances} instances, runtime ${'Deno' in globalThis ? 'deno' : 'node'}`);
row('cold compile', jco.coldMs, wasmtime.coldMs, 'ms');
row('start from the cache (new engine)', jco.cachedMs, wasmtime.cachedMs, 'ms');
row('first instantiate', jco.instantiateMs, wasmtime.instantiateMs, 'ms');
row('export call that does nothing', jco.noopUs, wasmtime.noopUs, 'µs');
row('join (median)', jco.joinUs, wasmtime.joinUs, 'µs');
row('memory per idle instance (RSS, noisy)', jco.mbPerInstance, wasmtime.mbPerInstance, 'MB');
console.log(`wasmtime targets: start from cache ${(wasmtime.cachedMs + wasmtime.instantiateMs).toFixed(1)} ms (≤ 5 ms), ${wasmtime.mbPerInstance.toFixed(1)} MB per idle instance (≤ 10 MB)`);
