// The jco engine: a component is transpiled once (at install or first load)
// into JavaScript glue plus core wasm modules, cached on disk by digest, and
// run on the host runtime's JavaScript engine. Transpiled with
// `--instantiation async`, so every import is supplied by the host at
// instantiation (jco's default WASI shim, which grants the host's files and
// environment, is never used), and without `--valid-lifting-optimization`, so
// every value the driver hands back is checked by the glue.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DriverExports, DriverImports } from '../contract.ts';
import type { ComponentSource, DriverInstance, Engine, PreparedComponent } from './engine.ts';
import { componentWorld } from '../component.ts';
import { capMemory } from './memory-cap.ts';

interface CacheMeta {
  digest: string;
  jco: string;
  imports: string[];
  exports: string[];
  files: string[];
}

type Instantiate = (
  getCoreModule: (path: string) => Promise<WebAssembly.Module>,
  imports: Record<string, unknown>,
) => Promise<DriverExports>;

interface JcoPrepared extends PreparedComponent {
  dir: string;
}

/** Bump when the transpile options change, so that old caches are not reused. */
const transpileRevision = 2;

/** The version of jco's transpiler, part of the cache key. */
async function jcoVersion(): Promise<string> {
  const pkg = new URL('../package.json', import.meta.resolve('@bytecodealliance/jco-transpile'));
  return (JSON.parse(await readFile(pkg, 'utf8')) as { version: string }).version;
}

export interface JcoEngineOptions {
  /** Cap on the linear memory of an instance (all its memories together), in bytes. */
  memoryMaxBytes?: number;
}

export class JcoEngine implements Engine {
  readonly name = 'jco';
  private readonly cacheDir: string;
  private readonly memoryMaxBytes: number | undefined;
  /** Compiled core modules, shared by every instance of the same component. */
  private readonly modules = new Map<string, Promise<WebAssembly.Module>>();

  constructor(cacheDir: string, options: JcoEngineOptions = {}) {
    this.cacheDir = cacheDir;
    this.memoryMaxBytes = options.memoryMaxBytes;
  }

  async prepare(source: ComponentSource): Promise<PreparedComponent> {
    const jco = `${await jcoVersion()}+r${transpileRevision}`;
    const dir = join(this.cacheDir, source.digest.replace(':', '-'));
    const meta = await readFile(join(dir, 'meta.json'), 'utf8')
      .then((t) => JSON.parse(t) as CacheMeta)
      .catch(() => undefined);
    if (meta && meta.digest === source.digest && meta.jco === jco) {
      return { digest: source.digest, imports: meta.imports, exports: meta.exports, dir } as JcoPrepared;
    }
    const { transpileBytes } = await import('@bytecodealliance/jco-transpile');
    const world = await componentWorld(source.bytes);
    const out = await transpileBytes(source.bytes, {
      name: 'driver',
      instantiation: 'async',
      validLiftingOptimization: false,
      nodejsCompat: false,
      tlaCompat: false,
      base64Cutoff: 0,
      emitTypescriptDeclarations: false,
    });
    // Write to a temporary directory and rename, so a crash never leaves a half cache.
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const files = Object.keys(out.files);
    for (const [name, bytes] of Object.entries(out.files)) await writeFile(join(tmp, name), bytes);
    const fresh: CacheMeta = { digest: source.digest, jco, imports: world.imports, exports: world.exports, files };
    await writeFile(join(tmp, 'meta.json'), JSON.stringify(fresh, null, 2));
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    return { digest: source.digest, imports: world.imports, exports: world.exports, dir } as JcoPrepared;
  }

  async instantiate(prepared: PreparedComponent, imports: DriverImports): Promise<DriverInstance> {
    const { dir } = prepared as JcoPrepared;
    const glue = (await import(pathToFileURL(join(dir, 'driver.js')).href)) as { instantiate: Instantiate };
    const getCoreModule = (path: string): Promise<WebAssembly.Module> => {
      if (!/^[\w.-]+\.wasm$/.test(path)) return Promise.reject(new Error(`unexpected core module path ${path}`));
      const key = `${prepared.digest}/${path}`;
      let module = this.modules.get(key);
      if (!module) {
        const cap = this.memoryMaxBytes;
        module = readFile(join(dir, path)).then((bytes) => WebAssembly.compile(cap === undefined ? bytes : (capMemory(bytes, cap) as Uint8Array<ArrayBuffer>)));
        this.modules.set(key, module);
      }
      return module;
    };
    // jco's glue looks imports up by interface name without the version.
    const unversioned: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(imports)) unversioned[name.replace(/@[^@/]+$/, '')] = value;
    const exports = await glue.instantiate(getCoreModule, unversioned);
    return { exports };
  }
}
