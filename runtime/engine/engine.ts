// The engine interface: how the host runs a driver component. The first
// engine is jco (jco.ts): the component is transpiled to JavaScript plus core
// wasm and runs on the host runtime's own JavaScript engine.
import type { DriverExports, DriverImports } from '../contract.ts';

export interface ComponentSource {
  bytes: Uint8Array;
  /** `sha256:<hex>` of bytes. */
  digest: string;
}

/** A component made ready to instantiate (compiled, cached by digest). */
export interface PreparedComponent {
  digest: string;
  /** Interfaces the component imports, e.g. `wasmnet:host/netlink@0.1.0`. */
  imports: string[];
  /** Interfaces the component exports, e.g. `wasmnet:driver/driver@0.1.0`. */
  exports: string[];
}

export interface DriverInstance {
  readonly exports: DriverExports;
}

export interface Engine {
  readonly name: string;
  prepare(source: ComponentSource): Promise<PreparedComponent>;
  /** Instantiates with exactly the given imports; nothing else is reachable. */
  instantiate(prepared: PreparedComponent, imports: DriverImports): Promise<DriverInstance>;
}

export async function digestOf(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return 'sha256:' + Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
}
