// Names for the generated contract types (runtime/gen, from wit/ by
// `npm run gen`), so the rest of the host imports them from one place.
export type * from './gen/interfaces/wasmnet-driver-types.js';
export type { ImportObject as DriverImports, HostSurface } from './gen/host-surface.js';
import type { HostSurface } from './gen/host-surface.js';
import type { DriverError, ErrorKind } from './gen/interfaces/wasmnet-driver-types.js';

/** The contract version this host speaks (the version of the WIT packages). */
export const CONTRACT_VERSION = '0.1.0';

/** What a driver component exports: driver and registration always, the optional interfaces when it has them. */
export type DriverExports = Pick<HostSurface, 'driver' | 'registration'> & Partial<Pick<HostSurface, 'extConner' | 'gwAllocChecker' | 'tableWatcher' | 'lifecycle'>>;

export const errorKinds: readonly ErrorKind[] = ['invalid-parameter', 'not-found', 'forbidden', 'no-service', 'not-implemented', 'timeout', 'internal'];

/**
 * A `driver-error` crossing the boundary. Host code throws it from a callback
 * to return `err(driver-error)` to the driver; the engine turns a driver's
 * `err(driver-error)` into one.
 */
export class DriverCallError extends Error {
  override name = 'DriverCallError';
  readonly kind: ErrorKind;
  /** The WIT value, as an own property: jco's glue takes only an own `payload` as the error case of a result. */
  readonly payload: DriverError;
  constructor(kind: ErrorKind, message: string) {
    super(message);
    this.kind = kind;
    this.payload = { kind, message };
  }
}

/**
 * What a host import throws to return `err(payload)` to the driver: jco's glue
 * takes the `payload` of a thrown value as the error case of a result.
 */
export function witError(payload: unknown): Error & { payload: unknown } {
  return Object.assign(new Error(typeof payload === 'object' ? JSON.stringify(payload) : String(payload)), { payload });
}
