// The engines by name. The wasmtime engine is loaded only when chosen, so the
// jco engine needs no native addon.
import { join } from 'node:path';
import type { Engine } from './engine.ts';
import { JcoEngine } from './jco.ts';

export type EngineName = 'jco' | 'wasmtime';
export const engineNames: readonly EngineName[] = ['jco', 'wasmtime'];
/**
 * The engine used when none is chosen: wasmtime, which starts from its cache
 * and calls faster than jco and passes every test (see tests/bench/engines.bench.ts).
 */
export const defaultEngine: EngineName = 'wasmtime';

export interface EngineOptions {
  /** Cap on a driver's linear memory, in bytes. */
  memoryMaxBytes: number;
  /** Deadline of one call, in milliseconds (wasmtime interrupts a call past it itself). */
  callTimeoutMs: number;
}

/** The cache directory of an engine under the host's cache root. */
export const engineCacheDir = (cacheRoot: string, name: EngineName) => join(cacheRoot, name);

export async function createEngine(name: EngineName, cacheRoot: string, options: EngineOptions): Promise<Engine> {
  if (name === 'wasmtime') {
    const { WasmtimeEngine } = await import('./wasmtime/index.ts');
    return new WasmtimeEngine(engineCacheDir(cacheRoot, name), { memoryMaxBytes: options.memoryMaxBytes, callTimeoutMs: options.callTimeoutMs });
  }
  return new JcoEngine(engineCacheDir(cacheRoot, name), { memoryMaxBytes: options.memoryMaxBytes });
}
