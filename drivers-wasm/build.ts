// Builds the TypeScript/JavaScript drivers shipped with wasmnet into
// WebAssembly components.
//
//   node drivers-wasm/build.ts [--force] [name ...]
//
// A driver is a directory under drivers-wasm/ (or drivers-wasm/testing/) with
// src/index.ts and wit/world.wit. For each one (or only those named):
//   1. esbuild bundles src/index.ts into build/driver.js (ESM; the WIT imports,
//      `ns:pkg/iface@ver`, stay external for componentize-js to resolve);
//   2. componentize-js turns it into build/<name>.wasm against the driver's
//      wit/ directory and world, with every StarlingMonkey feature the driver
//      does not ask for disabled, so the component imports no WASI interface
//      it does not need (none at all by default).
// A driver whose inputs have not changed since its last build is skipped. The
// inputs are the bundled JavaScript (so every source file the bundle really
// includes, wherever it lives), the WIT files, the driver's build.json, this
// script and the versions of the build tools; their hash is kept in
// build/inputs.json next to the component's own hash.
//
// A driver may ask for StarlingMonkey features in <driver>/build.json:
//   { "features": ["clocks"] }   // any of stdio, random, clocks, http, fetch-event
//
// A driver in another language (a directory with its own build.ts and no
// src/index.ts, such as cbridge in C) builds itself: this script runs its
// build.ts (with --force when given), which skips unchanged inputs likewise;
// when all drivers are built, one whose toolchain is missing is skipped.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const FEATURES = ['stdio', 'random', 'clocks', 'http', 'fetch-event'] as const;
type Feature = (typeof FEATURES)[number];

const driversDir = dirname(fileURLToPath(import.meta.url));
const root = resolve(driversDir, '..');
const rel = (p: string): string => relative(root, p) || '.';

interface Driver {
  /** `bridge`, `testing/spin`, ... */
  name: string;
  dir: string;
  world: string;
  features: Feature[];
}

/** Version of an installed package, found the way Node resolves it from `fromDir`. */
async function pkgVersion(name: string, fromDir: string): Promise<{ version: string; dir: string }> {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const pj = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(pj)) return { version: JSON.parse(await readFile(pj, 'utf8')).version as string, dir: dirname(pj) };
    if (dirname(dir) === dir) throw new Error(`package ${name} not found from ${fromDir}`);
  }
}

async function toolVersions(): Promise<Record<string, string>> {
  const cjs = await pkgVersion('@bytecodealliance/componentize-js', root);
  const out: Record<string, string> = {
    esbuild: esbuild.version,
    '@bytecodealliance/componentize-js': cjs.version,
  };
  // What componentize-js itself runs on also shapes the output.
  for (const dep of ['@bytecodealliance/jco', '@bytecodealliance/preview2-shim', '@bytecodealliance/wizer', '@bytecodealliance/weval']) {
    try {
      out[dep] = (await pkgVersion(dep, cjs.dir)).version;
    } catch {
      out[dep] = 'absent';
    }
  }
  return out;
}

/** Every file under `dir` (symlinks followed), sorted, as [relative path, absolute path]. */
async function listFiles(dir: string, base = dir): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    const s = await stat(p);
    if (s.isDirectory()) out.push(...(await listFiles(p, base)));
    else if (s.isFile()) out.push([relative(base, p), p]);
  }
  return out;
}

async function findDrivers(): Promise<Driver[]> {
  const candidates: string[] = [];
  for (const parent of [driversDir, join(driversDir, 'testing')]) {
    if (!existsSync(parent)) continue;
    for (const name of (await readdir(parent)).sort()) candidates.push(join(parent, name));
  }
  const drivers: Driver[] = [];
  for (const dir of candidates) {
    const worldFile = join(dir, 'wit/world.wit');
    if (!existsSync(join(dir, 'src/index.ts')) || !existsSync(worldFile)) continue;
    const world = /\bworld\s+([a-z0-9-]+)/.exec(await readFile(worldFile, 'utf8'))?.[1];
    if (!world) throw new Error(`${rel(worldFile)}: no world`);
    let features: Feature[] = [];
    const cfgFile = join(dir, 'build.json');
    if (existsSync(cfgFile)) {
      const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as { features?: unknown };
      const asked = cfg.features ?? [];
      if (!Array.isArray(asked) || asked.some((f) => !FEATURES.includes(f as Feature))) {
        throw new Error(`${rel(cfgFile)}: "features" must be a list of ${FEATURES.join(', ')}`);
      }
      features = asked as Feature[];
    }
    drivers.push({ name: relative(driversDir, dir), dir, world, features });
  }
  return drivers;
}

/** Drivers that build themselves: a directory with build.ts and no src/index.ts. */
async function findBuildScripts(): Promise<{ name: string; dir: string }[]> {
  const out: { name: string; dir: string }[] = [];
  for (const parent of [driversDir, join(driversDir, 'testing')]) {
    if (!existsSync(parent)) continue;
    for (const name of (await readdir(parent)).sort()) {
      const dir = join(parent, name);
      if (existsSync(join(dir, 'build.ts')) && !existsSync(join(dir, 'src/index.ts'))) out.push({ name: relative(driversDir, dir), dir });
    }
  }
  return out;
}

/** WIT imports (`wasmnet:host/log@0.1.0`) stay imports of the component; Node built-ins do not exist there. */
const witImports: esbuild.Plugin = {
  name: 'wit-imports',
  setup(build) {
    build.onResolve({ filter: /^[a-z][a-z0-9-]*:/ }, (args) => {
      if (args.path.startsWith('node:')) {
        return { errors: [{ text: `${args.path}: Node built-ins are not available inside a component` }] };
      }
      return { path: args.path, external: true };
    });
  },
};

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');
const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

interface InputsRecord {
  inputsHash: string;
  wasmSha256: string;
  wasmBytes: number;
  world: string;
  disableFeatures: Feature[];
  tools: Record<string, string>;
  builtAt: string;
  componentizeMs: number;
}

async function buildDriver(d: Driver, tools: Record<string, string>, force: boolean): Promise<void> {
  const buildDir = join(d.dir, 'build');
  const outJs = join(buildDir, 'driver.js');
  const outWasm = join(buildDir, `${basename(d.dir)}.wasm`);
  const recordFile = join(buildDir, 'inputs.json');
  await mkdir(buildDir, { recursive: true });

  const t0 = performance.now();
  const bundle = await esbuild.build({
    entryPoints: [join(d.dir, 'src/index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2023',
    mainFields: ['module', 'main'],
    plugins: [witImports],
    write: false,
    outfile: outJs,
    logLevel: 'silent',
    legalComments: 'none',
  });
  const js = bundle.outputFiles[0]?.text ?? '';
  const bundleMs = performance.now() - t0;
  if (!existsSync(outJs) || (await readFile(outJs, 'utf8')) !== js) await writeFile(outJs, js);

  // The package is the component plus its manifest, side by side.
  const manifest = join(d.dir, 'manifest.json');
  if (!existsSync(manifest)) throw new Error(`${d.name}: no manifest.json (name, version, contract, capabilities)`);
  await writeFile(outWasm.replace(/\.wasm$/, '.manifest.json'), await readFile(manifest));

  const disableFeatures = FEATURES.filter((f) => !d.features.includes(f));
  const h = createHash('sha256');
  const feed = (label: string, data: string | Uint8Array): void => {
    h.update(`${label}\0${data.length}\0`);
    h.update(data);
  };
  feed('bundle', js);
  for (const [p, abs] of await listFiles(join(d.dir, 'wit'))) feed(`wit/${p}`, await readFile(abs));
  feed('world', d.world);
  feed('disableFeatures', disableFeatures.join(','));
  feed('tools', JSON.stringify(tools));
  feed('build.ts', await readFile(fileURLToPath(import.meta.url)));
  const inputsHash = h.digest('hex');

  if (!force && existsSync(recordFile) && existsSync(outWasm)) {
    const prev = JSON.parse(await readFile(recordFile, 'utf8')) as InputsRecord;
    if (prev.inputsHash === inputsHash) {
      const wasm = await readFile(outWasm);
      if (sha256(wasm) === prev.wasmSha256) {
        console.log(`${d.name}: up to date, ${rel(outWasm)} (${mb(wasm.length)}), inputs ${inputsHash.slice(0, 12)}`);
        return;
      }
      console.log(`${d.name}: ${rel(outWasm)} does not match its last build, rebuilding`);
    }
  }

  const { componentize } = await import('@bytecodealliance/componentize-js');
  const t1 = performance.now();
  const { component } = await componentize({
    sourcePath: outJs,
    witPath: join(d.dir, 'wit'),
    worldName: d.world,
    disableFeatures,
  });
  const componentizeMs = Math.round(performance.now() - t1);
  await writeFile(outWasm, component);
  const record: InputsRecord = {
    inputsHash,
    wasmSha256: sha256(component),
    wasmBytes: component.length,
    world: d.world,
    disableFeatures,
    tools,
    builtAt: new Date().toISOString(),
    componentizeMs,
  };
  await writeFile(recordFile, JSON.stringify(record, null, 2) + '\n');
  console.log(
    `${d.name}: bundled ${rel(outJs)} (${(js.length / 1024).toFixed(1)} KB, ${bundleMs.toFixed(0)} ms), ` +
      `componentized world ${d.world} -> ${rel(outWasm)} (${mb(component.length)}, ${(componentizeMs / 1000).toFixed(1)} s), ` +
      `features ${d.features.length ? d.features.join(', ') : 'none'}`,
  );
  await printImports(d, component);
}

/** Prints the component's imports; a WASI import is worth noticing, since the host must provide it. */
async function printImports(d: Driver, component: Uint8Array): Promise<void> {
  try {
    const { componentWit } = await import('@bytecodealliance/jco-transpile/wasm-tools');
    const wit = await componentWit(component);
    const imports = [...wit.matchAll(/^\s*import ([^;]+);/gm)].map((m) => m[1] ?? '');
    const wasi = imports.filter((i) => i.startsWith('wasi:'));
    console.log(`${d.name}: imports ${imports.join(', ') || 'nothing'}${wasi.length ? ` (WASI: ${wasi.join(', ')})` : ' (no WASI)'}`);
  } catch (e) {
    console.log(`${d.name}: could not list the component's imports: ${String(e)}`);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const force = args.includes('--force');
  const names = args.filter((a) => !a.startsWith('--'));
  const all = await findDrivers();
  const scripted = await findBuildScripts();
  const known = [...all.map((x) => x.name), ...scripted.map((x) => x.name)];
  const matches = (x: { name: string; dir: string }, n: string): boolean => x.name === n || basename(x.dir) === n;
  const unknown = names.filter((n) => !all.some((x) => matches(x, n)) && !scripted.some((x) => matches(x, n)));
  if (unknown.length) throw new Error(`no driver "${unknown[0]}" (known: ${known.join(', ') || 'none'})`);
  const selected = names.length ? all.filter((x) => names.some((n) => matches(x, n))) : all;
  const selectedScripts = names.length ? scripted.filter((x) => names.some((n) => matches(x, n))) : scripted;
  for (const s of selectedScripts) {
    const r = spawnSync(process.execPath, [join(s.dir, 'build.ts'), ...(force ? ['--force'] : [])], { stdio: 'inherit', cwd: root });
    // Status 2: its toolchain is missing; fatal only for a driver asked for by name.
    if (r.status === 2 && !names.length) console.log(`${s.name}: skipped, its toolchain is missing`);
    else if (r.status !== 0) throw new Error(`${rel(join(s.dir, 'build.ts'))} failed`);
  }
  if (selected.length === 0) {
    if (selectedScripts.length) return;
    console.log('no drivers to build');
    return;
  }

  // The drivers' TypeScript types come from the WIT; generate them if a checkout has none yet.
  if (selected.some((d) => !existsSync(join(d.dir, 'gen')))) {
    console.log('generating WIT types (runtime/wit/generate.ts)');
    const r = spawnSync(process.execPath, [join(root, 'runtime/wit/generate.ts')], { stdio: 'inherit', cwd: root });
    if (r.status !== 0) throw new Error('runtime/wit/generate.ts failed');
  }

  const tools = await toolVersions();
  for (const d of selected) await buildDriver(d, tools, force);
}

main().catch((e: unknown) => {
  console.error(`build failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
