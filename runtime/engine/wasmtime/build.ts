// Builds the wasmtime engine's Node-API addon from this directory's Rust crate:
//
//   node runtime/engine/wasmtime/build.ts
//
// runs `cargo build --release --locked` (crates from crates.io, pinned by
// Cargo.lock; wasmtime 48 needs Rust 1.95 or later; CARGO_TARGET_DIR is honoured)
// and installs target/release/libwasmnet_wasmtime.so as wasmnet_wasmtime.node
// beside index.ts, through a temporary file and a rename, so that a process
// that has the old addon loaded keeps a valid mapping. Cargo decides what is
// up to date: a second run with no change takes a second or two.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';

const dir = dirname(fileURLToPath(import.meta.url));
const started = performance.now();
// rustup installs cargo under ~/.cargo/bin, which a non-login shell may not have on PATH.
const rustupCargo = join(homedir(), '.cargo', 'bin', 'cargo');
const cargo = process.env.CARGO ?? (spawnSync('cargo', ['--version']).error && existsSync(rustupCargo) ? rustupCargo : 'cargo');
const args = ['build', '--release', '--locked', '--manifest-path', join(dir, 'Cargo.toml')];
console.log(`wasmtime addon: ${cargo} ${args.join(' ')}`);
const r = spawnSync(cargo, args, { stdio: 'inherit' });
if (r.error) {
  console.error(`wasmtime addon: cannot run ${cargo}: ${r.error.message} (install Rust 1.95 or later with cargo, e.g. by rustup)`);
  process.exit(1);
}
if (r.status !== 0) {
  console.error(`wasmtime addon: cargo failed (exit ${r.status ?? r.signal})`);
  process.exit(1);
}
const targetDir = process.env.CARGO_TARGET_DIR ?? join(dir, 'target');
const built = join(targetDir, 'release', process.platform === 'darwin' ? 'libwasmnet_wasmtime.dylib' : 'libwasmnet_wasmtime.so');
if (!existsSync(built)) {
  console.error(`wasmtime addon: cargo succeeded but ${built} is missing`);
  process.exit(1);
}
const out = join(dir, 'wasmnet_wasmtime.node');
const tmp = `${out}.tmp-${process.pid}`;
copyFileSync(built, tmp);
renameSync(tmp, out);
console.log(`wasmtime addon: ${out} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
