// Generates the TypeScript types of both sides of the contract from the WIT:
// the host's (runtime/gen/, from the host-surface world) and each bundled
// driver's (drivers-wasm/<name>/gen/ and drivers-wasm/testing/<name>/gen/,
// from its own world). Nothing that crosses the boundary is typed by hand.
//
//   node runtime/wit/generate.ts
import { createRequire } from 'node:module';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// jco's type generator is itself a component running on preview2-shim, whose
// file system starts with no preopens (deny by default). It must read the WIT
// tree, so this build-time tool, and only it, opens the project directory.
const requireFromJco = createRequire(createRequire(join(root, 'package.json')).resolve('@bytecodealliance/jco-transpile'));
const shimFs = await import(pathToFileURL(requireFromJco.resolve('@bytecodealliance/preview2-shim/filesystem')).href);
shimFs._addPreopen(root, root);
const { generateHostTypes, generateGuestTypes, writeFiles } = await import('@bytecodealliance/jco-transpile');

async function generate(kind: 'host' | 'guest', witDir: string, world: string, outDir: string): Promise<void> {
  await rm(outDir, { recursive: true, force: true });
  const opts = { worldName: world, outDir: outDir + '/', instantiation: { tag: 'async' as const } };
  const files = kind === 'host' ? await generateHostTypes(witDir, opts) : await generateGuestTypes(witDir, opts);
  await writeFiles(files);
  console.log(`${kind} types for ${world} -> ${outDir.slice(root.length + 1)}`);
}

await generate('host', join(root, 'runtime/wit'), 'host-surface', join(root, 'runtime/gen'));

// Drivers are found where drivers-wasm/build.ts finds them: drivers-wasm/* and drivers-wasm/testing/*.
for (const driversDir of [join(root, 'drivers-wasm'), join(root, 'drivers-wasm/testing')]) {
  for (const name of await readdir(driversDir).catch(() => [])) {
    const worldFile = join(driversDir, name, 'wit/world.wit');
    if (!(await stat(worldFile).catch(() => null))) continue;
    const world = /\bworld\s+([a-z0-9-]+)/.exec(await readFile(worldFile, 'utf8'))?.[1];
    if (!world) throw new Error(`${worldFile}: no world`);
    await generate('guest', join(driversDir, name, 'wit'), world, join(driversDir, name, 'gen'));
  }
}
