// The version router of one driver: which version serves each call, and how
// a new version takes over between two calls with the socket open throughout.
// An upgrade loads and checks the new version first (its capabilities must
// answer as the first GetCapabilities did, which dockerd asks only once; its
// self-check, if it has one), runs its migration in a store transaction if
// it has one, then switches: calls that arrive after the switch go to it,
// calls in flight finish on the old one, which is then drained and stopped.
// A version that fails too many calls soon after taking over is rolled back.
import type { Logger } from 'pino';
import { DriverCallError } from '../contract.ts';
import type { DriverDescription, DriverHost } from '../driver-host.ts';
import type { HostState, InstalledVersion } from '../store/store.ts';

export type Strategy = 'all' | 'new-networks';

interface Loaded {
  v: InstalledVersion;
  host: DriverHost;
  inflight: number;
  draining: boolean;
}

export interface RouterOptions {
  driver: string;
  state: HostState;
  /** Loads a version: its sandbox started, its registration read. */
  load: (v: InstalledVersion) => Promise<DriverHost>;
  logger: Logger;
  /** Failed calls within the window after a switch that roll the version back. */
  rollbackAfterFailures?: number;
  rollbackWindowMs?: number;
}

export interface SwitchReport {
  driver: string;
  from: string;
  to: string;
  strategy: Strategy;
  migrated: boolean;
  ms: number;
}

export interface VersionStatus {
  digest: string;
  version: string;
  active: boolean;
  loaded: boolean;
  inflight: number;
  draining: boolean;
}

/** Orders semantic versions by major, minor, patch (pre-release tags sort before the release). */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre] = v.split(/[-+]/, 2) as [string, string | undefined];
    return { nums: core.split('.').map((n) => Number(n) || 0), pre: v.includes('-') ? (pre ?? '') : undefined };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) if ((x.nums[i] ?? 0) !== (y.nums[i] ?? 0)) return (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}

/** Failures that mean the version itself is broken, not that the request was bad. */
const isVersionFailure = (e: unknown) => e instanceof DriverCallError && (e.kind === 'internal' || e.kind === 'timeout');

export class DriverRouter {
  /** The capabilities of the first version served: what dockerd was told, for good. */
  readonly description: DriverDescription;
  private readonly opts: RouterOptions;
  private readonly loaded = new Map<string, Loaded>();
  private active: Loaded;
  private strategy: Strategy = 'all';
  /** Digests that were active before, newest last (for rollback). */
  private readonly history: string[] = [];
  /** While set, new calls wait (a migration is running). */
  private gate: Promise<void> | undefined;
  private watch: { since: number; failures: number } | undefined;
  private switching = false;

  private constructor(opts: RouterOptions, first: Loaded) {
    this.opts = opts;
    this.active = first;
    this.description = first.host.description;
    this.loaded.set(first.v.digest, first);
  }

  static async start(opts: RouterOptions, initial: InstalledVersion): Promise<DriverRouter> {
    const host = await opts.load(initial);
    opts.state.versions.setActive(opts.driver, initial.digest);
    if (opts.state.versions.storeVersion(opts.driver) === undefined) opts.state.versions.setStoreVersion(opts.driver, initial.version);
    return new DriverRouter(opts, { v: initial, host, inflight: 0, draining: false });
  }

  get activeVersion(): InstalledVersion {
    return this.active.v;
  }

  status(): VersionStatus[] {
    return this.opts.state.versions.list(this.opts.driver).map((v) => {
      const l = this.loaded.get(v.digest);
      return { digest: v.digest, version: v.version, active: v.digest === this.active.v.digest, loaded: l !== undefined, inflight: l?.inflight ?? 0, draining: l?.draining ?? false };
    });
  }

  /** The version that serves a call: the network's own under new-networks, else the active one. */
  private pick(nid: string | undefined): Loaded {
    if (this.strategy === 'new-networks' && nid !== undefined) {
      const digest = this.opts.state.versions.networkVersion(this.opts.driver, nid);
      const owner = digest === undefined ? undefined : this.loaded.get(digest);
      if (owner) return owner;
    }
    return this.active;
  }

  /** Runs one protocol call on the version that should serve it. */
  async call<T>(method: string, nid: string | undefined, fn: (host: DriverHost) => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    const l = this.pick(nid);
    l.inflight++;
    try {
      const result = await fn(l.host);
      if (nid !== undefined && method === 'CreateNetwork') this.opts.state.versions.setNetworkVersion(this.opts.driver, nid, l.v.digest);
      if (nid !== undefined && method === 'DeleteNetwork') this.opts.state.versions.removeNetworkVersion(this.opts.driver, nid);
      return result;
    } catch (e) {
      if (nid !== undefined && method === 'DeleteNetwork') this.opts.state.versions.removeNetworkVersion(this.opts.driver, nid);
      if (l === this.active && this.watch && isVersionFailure(e)) this.countFailure();
      throw e;
    } finally {
      l.inflight--;
      this.maybeRetire(l);
    }
  }

  private countFailure(): void {
    const w = this.watch!;
    const window = this.opts.rollbackWindowMs ?? 30_000;
    if (performance.now() - w.since > window) {
      this.watch = undefined;
      return;
    }
    w.failures++;
    if (w.failures >= (this.opts.rollbackAfterFailures ?? 3) && !this.switching && this.history.length > 0) {
      this.opts.logger.error({ driver: this.opts.driver, version: this.active.v.version, failures: w.failures }, 'new version failing: rolling back');
      this.watch = undefined;
      void this.rollback().catch((e) => this.opts.logger.error({ driver: this.opts.driver, err: (e as Error).message }, 'automatic rollback failed'));
    }
  }

  /** Stops a drained version that no network still needs. */
  private maybeRetire(l: Loaded): void {
    if (!l.draining || l.inflight > 0 || l === this.active) return;
    this.loaded.delete(l.v.digest);
    void l.host.close();
    this.opts.logger.info({ driver: this.opts.driver, version: l.v.version, digest: l.v.digest }, 'old version drained and stopped');
  }

  private async drained(): Promise<void> {
    while ([...this.loaded.values()].some((l) => l.inflight > 0)) await new Promise((r) => setTimeout(r, 1));
  }

  /** Makes `target` the active version (an upgrade, or a rollback with `migrate` false). */
  async switchTo(target: InstalledVersion, strategy: Strategy, migrate = true): Promise<SwitchReport> {
    if (this.switching) throw new Error(`driver ${this.opts.driver} is already switching versions`);
    if (target.driver !== this.opts.driver) throw new Error(`${target.digest} is a version of ${target.driver}, not ${this.opts.driver}`);
    if (target.digest === this.active.v.digest) throw new Error(`${this.opts.driver} ${target.version} (${target.digest}) is already active`);
    this.switching = true;
    const started = performance.now();
    const from = this.active;
    let next = this.loaded.get(target.digest);
    const fresh = next === undefined;
    try {
      if (!next) next = { v: target, host: await this.opts.load(target), inflight: 0, draining: false };
      next.draining = false;
      // dockerd asked GetCapabilities once; the answer must stay true.
      const a = this.description;
      const b = next.host.description;
      if (b.name !== a.name || b.capability.dataScope !== a.capability.dataScope || b.capability.connectivityScope !== a.capability.connectivityScope || b.gwAllocChecker !== a.gwAllocChecker) {
        throw new Error(`version ${target.version} answers capabilities differently (${JSON.stringify({ name: b.name, ...b.capability, gwAllocChecker: b.gwAllocChecker })}) from what dockerd was told (${JSON.stringify({ name: a.name, ...a.capability, gwAllocChecker: a.gwAllocChecker })})`);
      }
      await next.host.selfCheck();

      let migrated = false;
      const storeVersion = this.opts.state.versions.storeVersion(this.opts.driver) ?? from.v.version;
      // A migration runs once, when a newer version first takes over the store.
      const newer = compareVersions(target.version, storeVersion) > 0;
      if (migrate && next.host.description.lifecycle && newer) {
        // New calls wait while the store changes under the migration; in-flight calls finish first.
        let open!: () => void;
        this.gate = new Promise((r) => (open = r));
        try {
          await this.drained();
          const host = next.host;
          await this.opts.state.transaction(() => host.migrate(storeVersion), () => true);
          migrated = true;
        } finally {
          this.gate = undefined;
          open();
        }
      }
      if (newer) this.opts.state.versions.setStoreVersion(this.opts.driver, target.version);

      // The switch itself: everything after this line sees the new version.
      this.loaded.set(target.digest, next);
      this.active = next;
      this.strategy = strategy;
      this.opts.state.versions.setActive(this.opts.driver, target.digest);
      this.history.push(from.v.digest);
      if (strategy === 'all') from.draining = true;
      this.maybeRetire(from);
      this.watch = { since: performance.now(), failures: 0 };
      const report = { driver: this.opts.driver, from: from.v.version, to: target.version, strategy, migrated, ms: +(performance.now() - started).toFixed(1) };
      this.opts.logger.info(report, 'version switched');
      return report;
    } catch (e) {
      if (fresh && next) await next.host.close();
      this.opts.logger.warn({ driver: this.opts.driver, version: target.version, err: (e as Error).message }, 'version not switched: the old version keeps serving');
      throw e;
    } finally {
      this.switching = false;
    }
  }

  /** Back to the version that was active before this one. */
  async rollback(): Promise<SwitchReport> {
    const digest = this.history.at(-1);
    const target = digest === undefined ? undefined : this.opts.state.versions.list(this.opts.driver).find((v) => v.digest === digest);
    if (!target) throw new Error(`driver ${this.opts.driver} has no earlier version to roll back to`);
    const report = await this.switchTo(target, this.strategy, false);
    // The rolled-back version is not a rollback target itself.
    this.history.splice(this.history.length - 2, 2);
    return report;
  }

  async close(): Promise<void> {
    for (const l of this.loaded.values()) await l.host.close();
    this.loaded.clear();
  }
}
