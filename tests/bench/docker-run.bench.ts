// Benchmark (not a test): wall time of `docker run --rm wasmnet-busybox true`
// on a network of the wasm bridge driver, on a network of Docker's built-in
// bridge driver, and with --network none, alternating the three in one run.
//
//   node_modules/.bin/node tests/bench/docker-run.bench.ts [--rounds 15] [--only wasm,builtin,none]
//                                                         [--runtime node|deno] [--json]
//   node_modules/.bin/deno run -A tests/bench/docker-run.bench.ts ...
//
// Needs root and Debian's docker.io; otherwise prints why and exits 0.
// Exits 1 if a requested variant could not be measured (the others are still reported).

import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { BUSYBOX_IMAGE, canRunDockerd, startDockerd } from '../e2e/lib/dockerd.ts';
import type { Dockerd } from '../e2e/lib/dockerd.ts';
import { WasmnetHost, defaultRuntime } from '../lib/wasmnet-host.ts';
import type { Runtime } from '../lib/wasmnet-host.ts';

type Variant = 'wasm' | 'builtin' | 'none';
const ALL: Variant[] = ['wasm', 'builtin', 'none'];

const USAGE = `usage: docker-run.bench.ts [--rounds N] [--only wasm,builtin,none] [--runtime node|deno] [--json]`;

function fail(msg: string): never {
  console.error(`${msg}\n${USAGE}`);
  process.exit(2);
}

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rounds: { type: 'string', default: '15' },
    only: { type: 'string', default: ALL.join(',') },
    runtime: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10_000) fail(`--rounds: expected a whole number from 1, not ${values.rounds}`);
const only = values.only.split(',').map((s) => s.trim()).filter(Boolean);
for (const v of only) if (!ALL.includes(v as Variant)) fail(`--only: unknown variant ${JSON.stringify(v)}`);
const requested = ALL.filter((v) => only.includes(v));
if (requested.length === 0) fail('--only: nothing to run');
if (values.runtime !== undefined && values.runtime !== 'node' && values.runtime !== 'deno') fail('--runtime: node or deno');
const runtime: Runtime = (values.runtime as Runtime | undefined) ?? defaultRuntime();

const reason = canRunDockerd();
if (reason) {
  console.log(`docker-run bench: needs root and dockerd: ${reason}`);
  process.exit(0);
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  // nearest-rank
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

function median(sorted: number[]): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const mid = Math.floor(n / 2);
  return n % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const hex = randomBytes(3).toString('hex');
const networks: Record<Variant, string> = { wasm: `bench-wasm-${hex}`, builtin: `bench-builtin-${hex}`, none: 'none' };
const unavailable = new Map<Variant, string>();
const samples: Record<Variant, number[]> = { wasm: [], builtin: [], none: [] };
let d: Dockerd | undefined;
let host: WasmnetHost | undefined;
let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  console.error('docker-run bench: interrupted, cleaning up (Ctrl-C again to abort)');
});

function firstLines(msg: string, n = 6): string {
  return msg.split('\n').slice(0, n).join('\n    ');
}

async function runOnce(v: Variant): Promise<number> {
  if (!d) throw new Error('no dockerd');
  const t0 = performance.now();
  await d.dockerWith({ timeoutMs: 60_000 }, 'run', '--rm', '--network', networks[v], BUSYBOX_IMAGE, 'true');
  return performance.now() - t0;
}

let exitCode = 0;
try {
  console.error(`docker-run bench: starting a private dockerd`);
  d = await startDockerd();
  await d.importBusybox();

  if (requested.includes('builtin')) {
    try {
      await d.docker(
        'network', 'create', '-d', 'bridge', '--subnet', '10.204.0.0/24', '--gateway', '10.204.0.1',
        '-o', `com.docker.network.bridge.name=wbb${hex}`, networks.builtin,
      );
    } catch (err) {
      unavailable.set('builtin', (err as Error).message);
    }
  }
  if (requested.includes('wasm')) {
    try {
      host = new WasmnetHost({ runtime, name: `wasmnet-bench-${hex}` });
      console.error(`docker-run bench: starting the wasmnet host (${runtime}) as plugin ${host.name}`);
      await host.start();
      await d.dockerWith(
        { timeoutMs: 90_000 },
        'network', 'create', '-d', host.name, '--subnet', '10.203.0.0/24', '--gateway', '10.203.0.1',
        '-o', `com.docker.network.bridge.name=wnbn${hex}`, networks.wasm,
      );
    } catch (err) {
      unavailable.set('wasm', (err as Error).message);
    }
  }

  let active = requested.filter((v) => !unavailable.has(v));
  // one warm-up run each, not counted
  for (const v of active) {
    try {
      await runOnce(v);
    } catch (err) {
      unavailable.set(v, (err as Error).message);
    }
  }
  active = active.filter((v) => !unavailable.has(v));
  console.error(`docker-run bench: ${rounds} rounds of ${active.join(', ') || 'nothing'}`);

  for (let r = 0; r < rounds && !interrupted && active.length; r++) {
    // rotate the order every round so no variant always runs first
    const order = active.map((_, i) => active[(i + r) % active.length] as Variant);
    for (const v of order) {
      if (unavailable.has(v)) continue;
      try {
        samples[v].push(await runOnce(v));
      } catch (err) {
        unavailable.set(v, `round ${r + 1}: ${(err as Error).message}`);
      }
    }
    active = active.filter((v) => !unavailable.has(v));
  }
} catch (err) {
  console.error(`docker-run bench: ${(err as Error).message}`);
  exitCode = 1;
} finally {
  if (d?.running) {
    await d.dockerResult(['network', 'rm', networks.builtin], { timeoutMs: 60_000 });
    if (host?.running) await d.dockerResult(['network', 'rm', networks.wasm], { timeoutMs: 60_000 });
  }
  await host?.dispose();
  await d?.stop();
}

const stats = requested.map((v) => {
  const s = [...samples[v]].sort((a, b) => a - b);
  return { variant: v, n: s.length, median: median(s), p90: quantile(s, 0.9), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
});
const med = (v: Variant) => stats.find((s) => s.variant === v)?.median ?? NaN;
const ratios = {
  'wasm/builtin': med('wasm') / med('builtin'),
  'wasm/none': med('wasm') / med('none'),
};

const label: Record<Variant, string> = {
  wasm: 'wasm bridge (wasmnet)',
  builtin: 'built-in bridge',
  none: '--network none',
};
const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(0).padStart(7) : '      -');
console.log(`docker run --rm ${BUSYBOX_IMAGE} true, ${rounds} rounds${interrupted ? ' (interrupted)' : ''}, host runtime ${runtime}`);
console.log(`${'variant'.padEnd(24)}${'n'.padStart(4)}${'median'.padStart(9)}${'p90'.padStart(9)}${'min'.padStart(9)}${'max'.padStart(9)}   (ms)`);
for (const s of stats) {
  console.log(`${label[s.variant].padEnd(24)}${String(s.n).padStart(4)}  ${fmt(s.median)}  ${fmt(s.p90)}  ${fmt(s.min)}  ${fmt(s.max)}`);
}
for (const [k, x] of Object.entries(ratios)) {
  if (Number.isFinite(x)) console.log(`${k.padEnd(14)} ${x.toFixed(2)}x (medians)`);
}
for (const [v, why] of unavailable) {
  console.log(`${v}: NOT MEASURED: ${firstLines(why)}`);
  if (v === 'wasm') console.log('  (run with --only builtin,none to measure only Docker\'s own drivers)');
}
if (values.json) console.log(JSON.stringify({ rounds, runtime, stats, ratios, unavailable: Object.fromEntries(unavailable) }));
if (unavailable.size || interrupted) exitCode = 1;
process.exit(exitCode);
