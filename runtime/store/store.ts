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
  /** All of a driver's keys and values together. */
  maxBytesPerDriver: 64 * 1024 * 1024,
  /** What one `entries` answer may hold; a larger one is refused (ask with a narrower prefix). */
  maxEntriesBytes: 4 * 1024 * 1024,
};

export class StoreLimitError extends Error {
  override name = 'StoreLimitError';
}

/** A grant: the operator's yes to a manifest, for one component digest. */
export interface Grant {
  digest: string;
  driver: string;
  version: string;
  /** The granted manifest, as JSON text. */
  manifest: string;
  grantedAt: string;
}

export interface GrantStore {
  put(grant: Grant): void;
  get(digest: string): Grant | undefined;
  /** All grants, or one driver's, newest first. */
  list(driver?: string): Grant[];
  /** Returns whether there was a grant. */
  revoke(digest: string): boolean;
}

/**
 * Which links each driver created: the broker lets a driver change or delete
 * only these. Survives restarts, so ownership is not forgotten.
 */
export interface LinkLedger {
  /**
   * Records a link the driver created, with its interface index, which is
   * what identifies the link (a name can be taken by another link later);
   * `peer` is the other end of a veth, which goes when either end is deleted.
   */
  add(driver: string, link: string, index: number, peer?: string): void;
  /** Forgets a link and its peer. */
  remove(driver: string, link: string): void;
  rename(driver: string, from: string, to: string): void;
  /** The index the link had when the driver created it, if the driver owns that name. */
  indexOf(driver: string, link: string): number | undefined;
  list(driver: string): string[];
}

/**
 * What dockerd handed each driver: the address pools of its networks and the
 * sandbox keys of its joins. The broker keeps a driver inside them.
 */
export interface DriverScopes {
  setPools(driver: string, nid: string, cidrs: string[]): void;
  /** The pools recorded for one network (empty if none). */
  networkPools(driver: string, nid: string): string[];
  /** The sandbox key recorded for one endpoint's join, if any. */
  sandboxOf(driver: string, nid: string, eid: string): string | undefined;
  removeNetwork(driver: string, nid: string): void;
  pools(driver: string): string[];
  addSandbox(driver: string, nid: string, eid: string, key: string): void;
  removeSandbox(driver: string, nid: string, eid: string): void;
  hasSandbox(driver: string, key: string): boolean;
}

export interface AuditEntry {
  id?: number;
  /** ISO time. */
  time: string;
  driver: string;
  version: string;
  op: string;
  args: unknown;
  allowed: boolean;
  /** Kernel errno when the kernel refused. */
  errno?: number;
  error?: string;
  durationMs: number;
}

export interface AuditFilter {
  driver?: string;
  op?: string;
  allowed?: boolean;
  /** ISO time: entries at or after it. */
  since?: string;
  /** Newest first, at most this many. */
  limit?: number;
}

export interface AuditLog {
  /** Records an entry; it is written at the latest by the next flush. */
  record(entry: AuditEntry): void;
  /** Writes what was recorded (the host flushes after every driver call). */
  flush(): void;
  query(filter?: AuditFilter): AuditEntry[];
}

/** Everything the host keeps, behind small interfaces. */
export interface HostState extends StateStore {
  versions: VersionStore;
  /** Opens a transaction around an asynchronous step; what it returns decides commit or rollback. */
  transaction<T>(fn: () => Promise<T>, commit: (result: T) => boolean): Promise<T>;
  grants: GrantStore;
  ledger: LinkLedger;
  scopes: DriverScopes;
  audit: AuditLog;
}

/** A version of a driver installed in the state directory, content-addressed by digest. */
export interface InstalledVersion {
  driver: string;
  digest: string;
  version: string;
  /** The component and its manifest, as kept in the state directory. */
  component: string;
  manifest: string;
  installedAt: string;
  active: boolean;
}

/** Versions side by side, which one is active, and which version owns each network. */
export interface VersionStore {
  add(v: Omit<InstalledVersion, 'active'>): void;
  list(driver?: string): InstalledVersion[];
  active(driver: string): InstalledVersion | undefined;
  setActive(driver: string, digest: string): void;
  /** The version (digest) a network was created under (strategy new-networks). */
  networkVersion(driver: string, nid: string): string | undefined;
  setNetworkVersion(driver: string, nid: string, digest: string): void;
  removeNetworkVersion(driver: string, nid: string): void;
  /** The driver version that last took over the store (for migrations). */
  storeVersion(driver: string): string | undefined;
  setStoreVersion(driver: string, version: string): void;
}
