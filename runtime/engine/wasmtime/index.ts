// The wasmtime engine: components run natively in wasmtime, through a
// Node-API addon built from this directory's Rust crate (build.ts), which Node
// and Deno both load. Against the jco engine it adds:
// - a deadline per call that really interrupts the guest (epoch interruption:
//   a runaway call traps instead of blocking the event loop forever);
// - a memory cap per instance (store limits);
// - precompiled components, cached on disk by component digest and wasmtime
//   version plus compilation settings, so a start from the cache maps native
//   code instead of compiling.
// Values cross the boundary as with jco (records as camelCase objects, enums
// as strings, variants as { tag, val }, options as value | undefined, u64 as
// BigInt, list<u8> as Uint8Array, host resources as the JavaScript objects),
// so the rest of the host cannot tell the engines apart. After a trap an
// instance refuses every later call (code ERR_WASM_INSTANCE_TRAPPED): the host
// re-instantiates.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DriverExports, DriverImports } from '../../contract.ts';
import type { ComponentSource, DriverInstance, Engine, PreparedComponent } from '../engine.ts';

export const addonPath = join(dirname(fileURLToPath(import.meta.url)), 'wasmnet_wasmtime.node');
export const addonBuildCommand = 'node runtime/engine/wasmtime/build.ts';

/** [status, value]: see the top of src/lib.rs. */
type Outcome = [0 | 1 | 3 | 4, unknown] | [2, { code: string; message: string }];

interface NativeInstance {
  call(index: number, args: unknown[], timeoutMs: number): Outcome;
  readonly trapped: boolean;
  readonly liveResources: number;
  dispose(): void;
}

interface NativeComponent {
  readonly origin: 'compiled' | 'cache';
  readonly loadMs: number;
  readonly imports: string[];
  readonly exports: string[];
  readonly exportFunctions: [string, string][];
  instantiate(imports: Record<string, unknown>, options?: { memoryLimitBytes?: number; timeoutMs?: number }): NativeInstance;
}

interface NativeEngine {
  readonly cacheKey: string;
  readonly wasmtimeVersion: string;
  compile(bytes: Uint8Array, cachePath?: string): Promise<NativeComponent>;
  load(path: string): NativeComponent;
}

interface Addon {
  NativeEngine: new (options?: { epochTickMs?: number; optLevel?: string }) => NativeEngine;
}

let addon: Addon | undefined;

/** Loads the addon, or says how to build it. */
export function loadAddon(): Addon {
  if (addon) return addon;
  if (!existsSync(addonPath)) {
    throw new Error(`the wasmtime engine's native addon is not built (${addonPath} is missing): run \`${addonBuildCommand}\` (needs cargo)`);
  }
  addon = createRequire(import.meta.url)('./wasmnet_wasmtime.node') as Addon;
  return addon;
}

export interface WasmtimeEngineOptions {
  /** Cap on each instance's linear memory (all its memories together, as jco counts), in bytes (default 256 MiB). */
  memoryLimitBytes?: number;
  /** The same, under the jco engine's option name; memoryLimitBytes wins when both are given. */
  memoryMaxBytes?: number;
  /** Deadline of one export call (and of instantiation), in milliseconds (default 30 s); a call's own call-context deadline, when earlier, wins. */
  callTimeoutMs?: number;
  /** How often the epoch advances, in milliseconds: the granularity of deadlines (default 10). */
  epochTickMs?: number;
  /** Cranelift's optimization level (default 'speed'); 'none' compiles faster and runs slower. */
  optLevel?: 'speed' | 'none' | 'speed-and-size';
}

export interface WasmtimePrepared extends PreparedComponent {
  /** Whether this load compiled the component or mapped the precompiled file. */
  readonly origin: 'compiled' | 'cache';
  /** Milliseconds spent compiling or loading. */
  readonly loadMs: number;
  /** The precompiled file. */
  readonly cacheFile: string;
}

export interface WasmtimeInstance extends DriverInstance {
  /** Whether a trap has made the instance unusable. */
  readonly trapped: boolean;
  /** Host objects the guest currently holds handles to. */
  readonly liveResources: number;
  /** Frees the instance's store now rather than at garbage collection. */
  dispose(): void;
}

/** What an export throws for err(payload), as jco's ComponentError. */
export class ComponentError extends Error {
  declare readonly payload: unknown;
  constructor(value: unknown) {
    const enumerable = typeof value !== 'string';
    super(enumerable ? `${String(value)} (see error.payload)` : (value as string));
    Object.defineProperty(this, 'payload', { value, enumerable });
  }
}

/**
 * A failure of the engine rather than of the driver: a trap, the deadline, the
 * memory cap, or a call into an instance that trapped before. A passed
 * deadline carries kind 'timeout', so the host reports it as a driver timeout.
 */
export class WasmEngineError extends Error {
  override name = 'WasmEngineError';
  readonly code: string;
  readonly kind?: 'timeout';
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    if (code === 'ERR_WASM_DEADLINE') this.kind = 'timeout';
  }
}

/** camelCase of a kebab-case WIT name, as jco writes it. */
function camel(name: string): string {
  return name.replace(/-([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}

export class WasmtimeEngine implements Engine {
  readonly name = 'wasmtime';
  /** How components were prepared by this engine: compiled, or loaded from the precompiled cache. */
  readonly stats = { compiled: 0, loadedFromCache: 0 };
  private readonly cacheDir: string;
  private readonly options: { memoryLimitBytes: number; callTimeoutMs: number };
  private readonly native: NativeEngine;
  private readonly prepared = new Map<string, Promise<WasmtimePrepared>>();
  private readonly components = new WeakMap<PreparedComponent, NativeComponent>();

  constructor(cacheDir: string, options: WasmtimeEngineOptions = {}) {
    this.cacheDir = cacheDir;
    this.options = { memoryLimitBytes: options.memoryLimitBytes ?? options.memoryMaxBytes ?? 256 * 1024 * 1024, callTimeoutMs: options.callTimeoutMs ?? 30_000 };
    const { NativeEngine } = loadAddon();
    this.native = new NativeEngine({
      ...(options.epochTickMs === undefined ? {} : { epochTickMs: options.epochTickMs }),
      ...(options.optLevel === undefined ? {} : { optLevel: options.optLevel }),
    });
  }

  /** The wasmtime crate version the addon was built with. */
  get wasmtimeVersion(): string {
    return this.native.wasmtimeVersion;
  }

  prepare(source: ComponentSource): Promise<PreparedComponent> {
    let p = this.prepared.get(source.digest);
    if (!p) {
      p = this.load(source);
      this.prepared.set(source.digest, p);
      p.catch(() => this.prepared.delete(source.digest));
    }
    return p;
  }

  private async load(source: ComponentSource): Promise<WasmtimePrepared> {
    if (!/^sha256:[0-9a-f]{64}$/.test(source.digest)) throw new Error(`bad component digest ${source.digest}`);
    await mkdir(this.cacheDir, { recursive: true });
    const cacheFile = this.cacheFileFor(source.digest);
    let component: NativeComponent | undefined;
    if (existsSync(cacheFile)) {
      try {
        // Only files this engine wrote are ever loaded: the name carries the digest, the wasmtime version and the settings.
        component = this.native.load(cacheFile);
        this.stats.loadedFromCache++;
      } catch {
        // Unreadable or stale (wasmtime checks the artifact's version and settings): compile again.
        await rm(cacheFile, { force: true });
      }
    }
    if (!component) {
      component = await this.native.compile(source.bytes, cacheFile);
      this.stats.compiled++;
    }
    const prepared: WasmtimePrepared = {
      digest: source.digest,
      imports: component.imports,
      exports: component.exports,
      origin: component.origin,
      loadMs: component.loadMs,
      cacheFile,
    };
    this.components.set(prepared, component);
    return prepared;
  }

  /**
   * The compiled component behind a preparation: the one this engine made, or,
   * for a preparation made elsewhere (another process handing over its
   * digest), the precompiled file this engine's cache holds for the digest.
   */
  private componentFor(prepared: PreparedComponent): NativeComponent {
    const known = this.components.get(prepared);
    if (known) return known;
    if (!/^sha256:[0-9a-f]{64}$/.test(prepared.digest)) throw new Error(`bad component digest ${prepared.digest}`);
    const file = this.cacheFileFor(prepared.digest);
    if (!existsSync(file)) throw new Error(`component ${prepared.digest} was not prepared by this wasmtime engine (no ${file})`);
    const component = this.native.load(file);
    this.stats.loadedFromCache++;
    this.components.set(prepared, component);
    return component;
  }

  private cacheFileFor(digest: string): string {
    return join(this.cacheDir, `${digest.replace(':', '-')}.${this.native.cacheKey}.cwasm`);
  }

  async instantiate(prepared: PreparedComponent, imports: DriverImports): Promise<WasmtimeInstance> {
    const component = this.componentFor(prepared);
    const native = component.instantiate(imports as unknown as Record<string, unknown>, {
      memoryLimitBytes: this.options.memoryLimitBytes,
      timeoutMs: this.options.callTimeoutMs,
    });
    const callTimeoutMs = this.options.callTimeoutMs;
    const call = (index: number, args: unknown[]): unknown => {
      let timeoutMs = callTimeoutMs;
      // A call-context argument carries the caller's deadline.
      const ctx = args[0] as { deadlineMs?: unknown } | undefined;
      if (ctx !== null && typeof ctx === 'object' && typeof ctx.deadlineMs === 'bigint') {
        timeoutMs = Math.max(0, Math.min(timeoutMs, Number(ctx.deadlineMs) - Date.now()));
      }
      const [status, value] = native.call(index, args, timeoutMs);
      switch (status) {
        case 0:
          return value;
        case 1:
          throw new ComponentError(value);
        case 2:
          throw new WasmEngineError(value.code, value.message);
        case 3:
          throw value;
        case 4:
          throw new TypeError(String(value));
      }
    };
    // Keyed as jco keys them: by camelCase interface name and by full versioned name.
    const exports: Record<string, Record<string, (...args: unknown[]) => unknown>> = {};
    for (const iface of component.exports) {
      const obj = {};
      exports[iface] = obj;
      exports[camel(iface.replace(/^[^/]*\//, '').replace(/@.*$/, ''))] = obj;
    }
    component.exportFunctions.forEach(([iface, fname], index) => {
      if (fname.startsWith('[')) return; // methods of the guest's own resources: not supported
      exports[iface]![camel(fname)] = (...args: unknown[]) => call(index, args);
    });
    return {
      exports: exports as unknown as DriverExports,
      get trapped() {
        return native.trapped;
      },
      get liveResources() {
        return native.liveResources;
      },
      dispose: () => native.dispose(),
    };
  }
}
