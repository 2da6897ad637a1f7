// One loaded driver, seen from the protocol side: each method takes and
// returns plain values, hands the driver the callback objects it expects,
// enforces the per-call deadline (dockerd has none) and turns a driver's
// err(driver-error) into DriverCallError.
import ipaddr from 'ipaddr.js';
import { CONTRACT_VERSION, DriverCallError, errorKinds, type DriverExports, type IpamData, type Options, type SkipGwAlloc, type StringMap, type Capability } from './contract.ts';
import { type EndpointInterface, InterfaceInfo, JoinInfo, NetworkInfo, type InterfaceNames, type StaticRoute } from './callbacks.ts';
import type { DriverInstance, PreparedComponent } from './engine/engine.ts';
import type { DriverScopes } from './store/store.ts';

export interface JoinResult {
  names?: InterfaceNames;
  gateway?: string;
  gatewayIpv6?: string;
  staticRoutes: StaticRoute[];
  disableGatewayService: boolean;
}

export interface DriverDescription {
  name: string;
  capability: Capability;
  gwAllocChecker: boolean;
  extConner: boolean;
  tableWatcher: boolean;
}

export interface DriverHostOptions {
  /** Deadline of one call, in milliseconds. */
  callTimeoutMs: number;
  /**
   * Where the host records what dockerd hands this driver (its networks'
   * pools, its sandboxes), which bounds what the broker lets it touch.
   */
  scopes?: { driver: string; store: DriverScopes };
  /** Runs after every driver call, however it ended (the host flushes the audit log here). */
  afterCall?: () => void;
}

export const defaultCallTimeoutMs = 30_000;

export class DriverHost {
  readonly description: DriverDescription;
  private readonly exports: DriverExports;
  private readonly options: DriverHostOptions;

  private constructor(exports: DriverExports, description: DriverDescription, options: DriverHostOptions) {
    this.exports = exports;
    this.description = description;
    this.options = options;
  }

  /** Checks that the component speaks this contract and reads its registration. */
  static async start(prepared: PreparedComponent, instance: DriverInstance, options: Partial<DriverHostOptions> = {}): Promise<DriverHost> {
    const wanted = [`wasmnet:driver/driver@${CONTRACT_VERSION}`, `wasmnet:driver/registration@${CONTRACT_VERSION}`];
    const missing = wanted.filter((w) => !prepared.exports.includes(w));
    if (missing.length > 0) {
      throw new Error(`component ${prepared.digest} does not export ${missing.join(' and ')} (it exports: ${prepared.exports.join(', ') || 'nothing'})`);
    }
    const has = (iface: string) => prepared.exports.includes(`wasmnet:driver/${iface}@${CONTRACT_VERSION}`);
    const exports = instance.exports;
    const info = call('describe', () => exports.registration.describe());
    const name = info?.name;
    if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name)) throw new Error(`driver registered an invalid name ${JSON.stringify(name)}`);
    const scopes = ['local', 'global'];
    if (!scopes.includes(info.capability?.dataScope) || !scopes.includes(info.capability?.connectivityScope)) {
      throw new Error(`driver ${name} registered an invalid capability ${JSON.stringify(info.capability)}`);
    }
    const description: DriverDescription = {
      name,
      capability: { dataScope: info.capability.dataScope, connectivityScope: info.capability.connectivityScope },
      gwAllocChecker: has('gw-alloc-checker') && exports.gwAllocChecker !== undefined,
      extConner: has('ext-conner') && exports.extConner !== undefined,
      tableWatcher: has('table-watcher') && exports.tableWatcher !== undefined,
    };
    return new DriverHost(exports, description, { callTimeoutMs: options.callTimeoutMs ?? defaultCallTimeoutMs, scopes: options.scopes, afterCall: options.afterCall });
  }

  private deadline(): { ctx: { deadlineMs: bigint }; timeoutMs: number } {
    return { ctx: { deadlineMs: BigInt(Date.now() + this.options.callTimeoutMs) }, timeoutMs: this.options.callTimeoutMs };
  }

  /** Runs one driver call under the deadline. */
  private async run<T>(method: string, fn: () => T): Promise<T> {
    const { timeoutMs } = this.deadline();
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DriverCallError('timeout', `${method}: no answer from driver ${this.description.name} within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const result = await Promise.race([Promise.resolve().then(() => call(method, fn)), expired]);
      // A call that ran synchronously past its deadline is still answered as a timeout.
      if (performance.now() - started > timeoutMs) throw new DriverCallError('timeout', `${method}: driver ${this.description.name} took longer than ${timeoutMs} ms`);
      return result;
    } finally {
      clearTimeout(timer);
      this.options.afterCall?.();
    }
  }

  networkAllocate(nid: string, options: StringMap, ipv4: IpamData[], ipv6: IpamData[]): Promise<StringMap> {
    return this.run('network-allocate', () => checkStringMap(this.exports.driver.networkAllocate(nid, options, ipv4, ipv6), 'network-allocate'));
  }

  networkFree(nid: string): Promise<void> {
    return this.run('network-free', () => this.exports.driver.networkFree(nid));
  }

  async createNetwork(nid: string, options: Options, ipv4: IpamData[], ipv6: IpamData[]): Promise<NetworkInfo> {
    const { ctx } = this.deadline();
    const info = new NetworkInfo();
    // The pools are in scope during the call, so the driver can put the gateway address on its bridge.
    const scopes = this.options.scopes;
    scopes?.store.setPools(scopes.driver, nid, poolsOf([...ipv4, ...ipv6]));
    try {
      return await this.run('create-network', () => {
        this.exports.driver.createNetwork(ctx, nid, options, info as never, ipv4, ipv6);
        return info;
      });
    } catch (e) {
      scopes?.store.removeNetwork(scopes.driver, nid);
      throw e;
    }
  }

  async deleteNetwork(nid: string): Promise<void> {
    try {
      await this.run('delete-network', () => this.exports.driver.deleteNetwork(nid));
    } finally {
      // dockerd forgets the network whatever the driver answers.
      const scopes = this.options.scopes;
      scopes?.store.removeNetwork(scopes.driver, nid);
    }
  }

  /** Returns what the driver filled in. */
  createEndpoint(nid: string, eid: string, given: EndpointInterface, options: Options): Promise<Partial<EndpointInterface>> {
    const { ctx } = this.deadline();
    const info = new InterfaceInfo(given);
    return this.run('create-endpoint', () => {
      this.exports.driver.createEndpoint(ctx, nid, eid, info as never, options);
      return { ...info.set };
    });
  }

  deleteEndpoint(nid: string, eid: string): Promise<void> {
    return this.run('delete-endpoint', () => this.exports.driver.deleteEndpoint(nid, eid));
  }

  endpointOperInfo(nid: string, eid: string): Promise<Options> {
    return this.run('endpoint-oper-info', () => checkOptions(this.exports.driver.endpointOperInfo(nid, eid), 'endpoint-oper-info'));
  }

  async join(nid: string, eid: string, sandboxKey: string, endpointOptions: Options, sandboxOptions: Options): Promise<JoinResult> {
    const { ctx } = this.deadline();
    const info = new JoinInfo();
    const scopes = this.options.scopes;
    scopes?.store.addSandbox(scopes.driver, nid, eid, sandboxKey);
    try {
      return await this.join1(ctx, nid, eid, sandboxKey, info, endpointOptions, sandboxOptions);
    } catch (e) {
      scopes?.store.removeSandbox(scopes.driver, nid, eid);
      throw e;
    }
  }

  private join1(ctx: { deadlineMs: bigint }, nid: string, eid: string, sandboxKey: string, info: JoinInfo, endpointOptions: Options, sandboxOptions: Options): Promise<JoinResult> {
    return this.run('join', () => {
      this.exports.driver.join(ctx, nid, eid, sandboxKey, info as never, endpointOptions, sandboxOptions);
      return {
        names: info.names,
        gateway: info.gateway,
        gatewayIpv6: info.gatewayIpv6,
        staticRoutes: [...info.staticRoutes],
        disableGatewayService: info.gatewayServiceDisabled,
      };
    });
  }

  async leave(nid: string, eid: string): Promise<void> {
    try {
      await this.run('leave', () => this.exports.driver.leave(nid, eid));
    } finally {
      const scopes = this.options.scopes;
      scopes?.store.removeSandbox(scopes.driver, nid, eid);
    }
  }

  /** Only when the driver exports ext-conner; otherwise there is nothing to program. */
  programExternalConnectivity(nid: string, eid: string, gw4Id: string, gw6Id: string): Promise<void> {
    const conner = this.exports.extConner;
    if (!this.description.extConner || !conner) return Promise.resolve();
    const { ctx } = this.deadline();
    return this.run('program-external-connectivity', () => conner.programExternalConnectivity(ctx, nid, eid, gw4Id, gw6Id));
  }

  getSkipGwAlloc(options: Options): Promise<SkipGwAlloc> {
    const checker = this.exports.gwAllocChecker;
    if (!this.description.gwAllocChecker || !checker) return Promise.resolve({ skipIpv4: false, skipIpv6: false });
    return this.run('get-skip-gw-alloc', () => {
      const r = checker.getSkipGwAlloc(options);
      if (typeof r?.skipIpv4 !== 'boolean' || typeof r?.skipIpv6 !== 'boolean') throw new DriverCallError('internal', 'get-skip-gw-alloc: driver returned a malformed value');
      return { skipIpv4: r.skipIpv4, skipIpv6: r.skipIpv6 };
    });
  }
}

/** The address pools of a network, as CIDRs (the gateway's network when dockerd gave no pool). */
function poolsOf(data: IpamData[]): string[] {
  const out: string[] = [];
  for (const d of data) {
    const cidr = d.pool ?? d.gateway;
    if (!cidr) continue;
    const [ip, len] = ipaddr.parseCIDR(cidr);
    const bytes = ip.toByteArray();
    for (let i = 0; i < bytes.length; i++) {
      const keep = Math.max(0, Math.min(8, len - i * 8));
      bytes[i]! &= (0xff << (8 - keep)) & 0xff;
    }
    out.push(`${ipaddr.fromByteArray(bytes).toString()}/${len}`);
  }
  return out;
}

/** Calls into the driver, turning whatever it throws into a DriverCallError. */
function call<T>(method: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toDriverCallError(method, e);
  }
}

/** The shapes an error from a component can take: err(driver-error) as a payload, or a trap. */
export function toDriverCallError(method: string, e: unknown): DriverCallError {
  if (e instanceof DriverCallError) return e;
  const payload = (e as { payload?: unknown })?.payload ?? e;
  const p = payload as { kind?: unknown; message?: unknown };
  if (p && typeof p === 'object' && typeof p.kind === 'string' && (errorKinds as string[]).includes(p.kind) && typeof p.message === 'string') {
    return new DriverCallError(p.kind as DriverCallError['kind'], `${method}: ${p.message.slice(0, 4096)}`);
  }
  const message = e instanceof Error ? e.message : String(e);
  return new DriverCallError('internal', `${method}: driver failed: ${message.slice(0, 4096)}`);
}

const maxEntries = 4096;

function checkOptions(value: unknown, method: string): Options {
  if (!Array.isArray(value) || value.length > maxEntries) throw new DriverCallError('internal', `${method}: driver returned a malformed options list`);
  const seen = new Set<string>();
  for (const e of value as { key?: unknown; value?: unknown }[]) {
    if (typeof e?.key !== 'string' || typeof e.value !== 'string' || seen.has(e.key)) throw new DriverCallError('internal', `${method}: driver returned a malformed options entry`);
    try {
      JSON.parse(e.value);
    } catch {
      throw new DriverCallError('internal', `${method}: driver returned option ${JSON.stringify(e.key)} whose value is not JSON`);
    }
    seen.add(e.key);
  }
  return value as Options;
}

function checkStringMap(value: unknown, method: string): StringMap {
  if (!Array.isArray(value) || value.length > maxEntries || !value.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'string')) {
    throw new DriverCallError('internal', `${method}: driver returned a malformed string map`);
  }
  return value as StringMap;
}
