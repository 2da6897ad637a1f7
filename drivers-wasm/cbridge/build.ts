// Builds the C bridge driver (wasmnet-cbridge) into a WebAssembly component.
//
//   node drivers-wasm/cbridge/build.ts [--force]
//
// (drivers-wasm/build.ts runs this script for the driver too.)
//
//   1. wit-bindgen's C generator writes the bindings for wit/world.wit into
//      build/gen/ (cbridge_driver.{h,c} and the component-type object);
//   2. Debian's clang compiles src/*.c with them for wasm32, freestanding:
//      no libc, no WASI; src/rt.c is the allocator and memory functions, and
//      src/include/ stands in for the two libc headers the bindings include;
//      wasm-ld links a core module exporting the canonical-ABI functions, with
//      the component type embedded as a custom section;
//   3. jco's wasm-tools (componentNew, no adapters) turns it into
//      build/cbridge.wasm; build/cbridge.manifest.json is the manifest beside it.
//
// A build whose inputs (sources, WIT, this script, the tools' versions) have
// not changed is skipped; their hash is in build/inputs.json.
//
// Needs: clang and lld (Debian: apt-get install clang lld) and wit-bindgen
// (cargo install wit-bindgen-cli --locked). Without them it exits with status 2
// (drivers-wasm/build.ts then skips this driver when building all of them).
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { homedir } from 'node:os';

const dir = dirname(fileURLToPath(import.meta.url));
const root = resolve(dir, '../..');
const buildDir = join(dir, 'build');
const genDir = join(buildDir, 'gen');
const outCore = join(buildDir, 'cbridge.core.wasm');
const outWasm = join(buildDir, 'cbridge.wasm');
const recordFile = join(buildDir, 'inputs.json');
const WORLD = 'cbridge-driver';
const rel = (p: string): string => relative(root, p) || '.';
const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

class MissingTool extends Error {}

/** A tool on PATH, or in ~/.cargo/bin for the cargo-installed ones. */
function findTool(names: string[], hint: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), join(homedir(), '.cargo/bin'), '/usr/local/cargo/bin'];
  for (const name of names) {
    for (const d of dirs) {
      const p = join(d, name);
      if (existsSync(p)) return p;
    }
  }
  throw new MissingTool(`${names[0]} not found (${hint})`);
}

function run(file: string, args: string[]): string {
  const r = spawnSync(file, args, { encoding: 'utf8', cwd: dir });
  if (r.error) throw new Error(`${file}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

async function listFiles(d: string, base = d): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const name of (await readdir(d)).sort()) {
    const p = join(d, name);
    const s = await stat(p);
    if (s.isDirectory()) out.push(...(await listFiles(p, base)));
    else if (s.isFile()) out.push([relative(base, p), p]);
  }
  return out;
}

async function main(): Promise<void> {
  const force = process.argv.includes('--force');
  const clang = findTool(['clang', 'clang-19', 'clang-16', 'clang-14'], 'Debian: apt-get install clang lld');
  findTool(['wasm-ld', 'wasm-ld-19', 'wasm-ld-16', 'wasm-ld-14'], 'Debian: apt-get install lld');
  const witBindgen = findTool(['wit-bindgen'], 'cargo install wit-bindgen-cli --locked');
  const jcoPkg = JSON.parse(await readFile(join(root, 'node_modules/@bytecodealliance/jco-transpile/package.json'), 'utf8')) as { version: string };
  const tools = {
    clang: run(clang, ['--version']).split('\n')[0] ?? '',
    'wit-bindgen': run(witBindgen, ['--version']).trim(),
    '@bytecodealliance/jco-transpile': jcoPkg.version,
  };

  await mkdir(buildDir, { recursive: true });
  await writeFile(join(buildDir, 'cbridge.manifest.json'), await readFile(join(dir, 'manifest.json')));

  const h = createHash('sha256');
  const feed = (label: string, data: string | Uint8Array): void => {
    h.update(`${label}\0${data.length}\0`);
    h.update(data);
  };
  for (const sub of ['src', 'wit']) for (const [p, abs] of await listFiles(join(dir, sub))) feed(`${sub}/${p}`, await readFile(abs));
  feed('manifest.json', await readFile(join(dir, 'manifest.json')));
  feed('tools', JSON.stringify(tools));
  feed('build.ts', await readFile(fileURLToPath(import.meta.url)));
  const inputsHash = h.digest('hex');

  if (!force && existsSync(recordFile) && existsSync(outWasm)) {
    const prev = JSON.parse(await readFile(recordFile, 'utf8')) as { inputsHash: string; wasmSha256: string };
    const wasm = await readFile(outWasm);
    if (prev.inputsHash === inputsHash && sha256(wasm) === prev.wasmSha256) {
      console.log(`cbridge: up to date, ${rel(outWasm)} (${(wasm.length / 1024).toFixed(1)} KB), inputs ${inputsHash.slice(0, 12)}`);
      return;
    }
  }

  const t0 = performance.now();
  await rm(genDir, { recursive: true, force: true });
  run(witBindgen, ['c', '--world', WORLD, '--out-dir', genDir, join(dir, 'wit')]);
  const sources = (await readdir(join(dir, 'src'))).filter((f) => f.endsWith('.c')).sort().map((f) => join(dir, 'src', f));
  const typeObj = (await readdir(genDir)).find((f) => f.endsWith('_component_type.o'));
  if (!typeObj) throw new Error(`wit-bindgen wrote no component-type object in ${rel(genDir)}`);
  const genC = (await readdir(genDir)).filter((f) => f.endsWith('.c')).map((f) => join(genDir, f));
  run(clang, [
    '--target=wasm32', '-nostdlib', '-ffreestanding', '-fno-builtin', '-O2', '-Wall', '-Wno-unused-function',
    '-mbulk-memory', '-msign-ext', '-mmutable-globals',
    '-I', join(dir, 'src/include'), '-I', genDir,
    ...sources, ...genC, join(genDir, typeObj),
    '-Wl,--no-entry', '-Wl,--export-dynamic', '-Wl,--strip-debug', '-Wl,--stack-first', '-Wl,-z,stack-size=65536',
    '-o', outCore,
  ]);
  const core = await readFile(outCore);
  const imports = checkCoreImports(core);
  const { componentNew } = await import('@bytecodealliance/jco-transpile/wasm-tools');
  const component = await componentNew(core);
  await writeFile(outWasm, component);
  const ms = Math.round(performance.now() - t0);
  await writeFile(recordFile, JSON.stringify({
    inputsHash,
    wasmSha256: sha256(component),
    wasmBytes: component.length,
    world: WORLD,
    tools,
    builtAt: new Date().toISOString(),
    buildMs: ms,
  }, null, 2) + '\n');
  console.log(`cbridge: ${rel(outWasm)} (${(component.length / 1024).toFixed(1)} KB, ${ms} ms); core module imports ${imports.join(', ') || 'nothing'} (no WASI)`);
}

/** Module names the core module imports; a WASI one fails the build (the host offers none). */
function checkCoreImports(core: Uint8Array<ArrayBuffer>): string[] {
  const mod = new WebAssembly.Module(core);
  const modules = [...new Set(WebAssembly.Module.imports(mod).map((i) => i.module))];
  const wasi = modules.filter((m) => m.startsWith('wasi'));
  if (wasi.length) throw new Error(`the core module imports WASI (${wasi.join(', ')}); the host offers none`);
  return modules;
}

main().catch((e: unknown) => {
  console.error(`cbridge build failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = e instanceof MissingTool ? 2 : 1;
});
