// The state store: where drivers keep what they must remember across calls,
// host restarts and driver versions (dockerd never replays CreateNetwork,
// CreateEndpoint or Join). Kept behind this small interface, as moby's bridge
// driver keeps bridge_store.go behind its own, so that another backend can
// replace the embedded SQLite one.

/** One driver's view of the store: its own keys, nobody else's. */
export interface KeyValueStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  /** Returns whether the key existed. */
  delete(key: string): boolean;
  /** Entries whose keys start with `prefix`, ordered by key. */
  entries(prefix: string): [string, string][];
}

export interface StateStore {
  /** The key space of one driver (by driver name). */
  forDriver(driver: string): KeyValueStore;
  close(): void;
}

/** Limits a driver cannot exceed, whatever it sends. */
export const storeLimits = {
  maxKeyBytes: 512,
  maxValueBytes: 256 * 1024,
  maxKeysPerDriver: 100_000,
};

export class StoreLimitError extends Error {
  override name = 'StoreLimitError';
}
