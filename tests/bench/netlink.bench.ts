// Benchmark: one netlink operation (add, then delete, an address on a bridge)
// through the capability broker (policy check + kernel call + audit record),
// against the kernel's floor (`ip -batch`, one process for all operations),
// against spawning `ip` per operation, and against the bare rtnetlink backend,
// alternating in one run inside a private network namespace. Prints medians
// per operation and the ratios. Target: broker ≤ 1.5× `ip -batch`.
//
//   node tests/bench/netlink.bench.ts [--ops N] [--rounds N]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import pino from 'pino';
import { RtNetlink } from '../../runtime/netlink/rtnetlink.ts';
import { SqliteStateStore } from '../../runtime/store/sqlite.ts';
import { netlinkImport } from '../../runtime/broker/netlink.ts';
import { parseManifest } from '../../runtime/manifest.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} takes a positive whole number`);
  return n;
}
const ops = arg('--ops', 500);
const rounds = arg('--rounds', 5);
const spawnOps = Math.min(ops, 100);

if (process.getuid?.() !== 0) {
  console.log('netlink bench: needs root (network namespaces): not run');
  process.exit(0);
}

const ns = `wasmnet-bench-${randomBytes(3).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'wasmnet-nlbench-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// Host addresses (/32), so that deleting one never takes others with it as secondaries.
const addr = (i: number) => `10.99.${Math.floor(i / 250)}.${(i % 250) + 1}/32`;

execFileSync('ip', ['netns', 'add', ns]);
try {
  execFileSync('ip', ['-n', ns, 'link', 'add', 'bnbr0', 'type', 'bridge']);
  const netnsPath = `/var/run/netns/${ns}`;
  const backend = new RtNetlink({ netns: netnsPath });
  const state = new SqliteStateStore(join(dir, 'state.db'));
  const manifest = parseManifest({ name: 'bench', version: '1.0.0', contract: '0.1.0', capabilities: { netlink: { linkPrefix: 'bn', linkKinds: ['bridge'], callsPerSecond: 10_000 } } });
  state.ledger.add('bench', 'bnbr0', backend.getLink('bnbr0')!.index);
  state.scopes.setPools('bench', 'n1', ['10.99.0.0/16']);
  const broker = netlinkImport({ backend, grant: manifest.capabilities.netlink!, who: { driver: 'bench', version: '1.0.0' }, ledger: state.ledger, scopes: state.scopes, audit: state.audit, logger: pino({ level: 'silent' }) });

  const variants: Record<string, () => number> = {
    'ip -batch': () => {
      const file = join(dir, 'batch');
      const lines: string[] = [];
      for (let i = 0; i < ops; i++) lines.push(`addr add ${addr(i)} dev bnbr0`);
      for (let i = 0; i < ops; i++) lines.push(`addr del ${addr(i)} dev bnbr0`);
      writeFileSync(file, lines.join('\n') + '\n');
      const t = performance.now();
      execFileSync('ip', ['-n', ns, '-batch', file]);
      return (performance.now() - t) / (2 * ops);
    },
    'ip per operation': () => {
      const t = performance.now();
      for (let i = 0; i < spawnOps; i++) spawnSync('ip', ['-n', ns, 'addr', 'add', addr(i), 'dev', 'bnbr0']);
      for (let i = 0; i < spawnOps; i++) spawnSync('ip', ['-n', ns, 'addr', 'del', addr(i), 'dev', 'bnbr0']);
      return (performance.now() - t) / (2 * spawnOps);
    },
    'rtnetlink backend': () => {
      const t = performance.now();
      for (let i = 0; i < ops; i++) backend.addAddress('bnbr0', addr(i));
      for (let i = 0; i < ops; i++) backend.deleteAddress('bnbr0', addr(i));
      return (performance.now() - t) / (2 * ops);
    },
    'broker (policy + audit)': () => {
      const t = performance.now();
      for (let i = 0; i < ops; i++) broker.addAddress('bnbr0', addr(i));
      for (let i = 0; i < ops; i++) broker.deleteAddress('bnbr0', addr(i));
      state.audit.flush(); // the host flushes after each driver call; count the writes here
      return (performance.now() - t) / (2 * ops);
    },
  };

  const results: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (const f of Object.values(variants)) f(); // warm-up, uncounted
  for (let r = 0; r < rounds; r++) {
    const names = Object.keys(variants);
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + r) % names.length]!;
      results[name]!.push(variants[name]!());
    }
  }
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
  console.log(`netlink bench: address add + delete, ${ops} of each per round (${spawnOps} when spawning), ${rounds} rounds, runtime ${'Deno' in globalThis ? 'deno' : 'node'}`);
  for (const [k, v] of Object.entries(m)) console.log(`${k.padEnd(26)} ${(v * 1000).toFixed(1).padStart(8)} µs/op`);
  console.log(`broker / ip -batch          ${(m['broker (policy + audit)']! / m['ip -batch']!).toFixed(2)}x  (target ≤ 1.5x)`);
  console.log(`backend / ip -batch         ${(m['rtnetlink backend']! / m['ip -batch']!).toFixed(2)}x`);
  console.log(`ip per operation / broker   ${(m['ip per operation']! / m['broker (policy + audit)']!).toFixed(1)}x`);
  backend.close();
  state.close();
} finally {
  execFileSync('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
}
