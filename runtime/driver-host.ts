// One loaded driver, seen from the protocol side: each method takes and
// returns plain values, asks the invoker to hand the driver the callback
// object it expects, validates again what the driver set, enforces the
// per-call deadline (dockerd has none) and turns a driver's err(driver-error)
// or a trap into DriverCallError.
import ipaddr from 'ipaddr.js';
import { parseCidr } from './addresses.ts';
import { CONTRACT_VERSION, DriverCallError, type IpamData, type Options, type SkipGwAlloc, type StringMap, type Capability } from './contract.ts';
import { type EndpointInterface, InterfaceInfo, JoinInfo, type InterfaceNames, type StaticRoute } from './callbacks.ts';
import type { PreparedComponent } from './engine/engine.ts';
import { type CallbackState, type DriverCall, driverErrorOf, type Invoker } from './invoker.ts';
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
  /** Whether the driver exports lifecycle (migrate, self-check). */
  lifecycle: boolean;
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
  private readonly invoker: Invoker;
  private readonly options: DriverHostOptions;

  private constructor(invoker: Invoker, description: DriverDescription, options: DriverHostOptions) {
    this.invoker = invoker;
    this.description = description;
    this.options = options;
  }

  /** Checks that the component speaks this contract and reads its registration. */
  static async start(prepared: PreparedComponent, invoker: Invoker, options: Partial<DriverHostOptions> = {}): Promise<DriverHost> {
    const wanted = [`wasmnet:driver/driver@${CONTRACT_VERSION}`, `wasmnet:driver/registration@${CONTRACT_VERSION}`];
    const missing = wanted.filter((w) => !prepared.exports.includes(w));
    if (missing.length > 0) {
      throw new Error(`component ${prepared.digest} does not export ${missing.join(' and ')} (it exports: ${prepared.exports.join(', ') || 'nothing'})`);
    }
    const has = (iface: string) => prepared.exports.includes(`wasmnet:driver/${iface}@${CONTRACT_VERSION}`);
    const callTimeoutMs = options.callTimeoutMs ?? defaultCallTimeoutMs;
    const outcome = await invoker.invoke({ iface: 'registration', fn: 'describe', args: [] }, callTimeoutMs);
    if (!outcome.ok) throw new Error(`driver failed to describe itself: ${'trap' in outcome ? outcome.trap : outcome.error.message}`);
    const info = outcome.value as { name?: unknown; capability?: { dataScope?: unknown; connectivityScope?: unknown } } | undefined;
    const name = info?.name;
    if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name)) throw new Error(`driver registered an invalid name ${JSON.stringify(name)}`);
    const scopes = ['local', 'global'];
    const cap = info?.capability;
    if (typeof cap?.dataScope !== 'string' || typeof cap.connectivityScope !== 'string' || !scopes.includes(cap.dataScope) || !scopes.includes(cap.connectivityScope)) {
      throw new Error(`driver ${name} registered an invalid capability ${JSON.stringify(cap)}`);
    }
    const description: DriverDescription = {
      name,
      capability: { dataScope: cap.dataScope as Capability['dataScope'], connectivityScope: cap.connectivityScope as Capability['connectivityScope'] },
      gwAllocChecker: has('gw-alloc-checker'),
      extConner: has('ext-conner'),
      tableWatcher: has('table-watcher'),
      lifecycle: has('lifecycle'),
    };
    return new DriverHost(invoker, description, { ...options, callTimeoutMs });
  }

  private ctx(): { deadlineMs: bigint } {
    return { deadlineMs: BigInt(Date.now() + this.options.callTimeoutMs) };
  }

  /** Runs one driver call under the deadline; returns its value and callback state, or throws DriverCallError. */
  private async run(method: string, call: DriverCall, afterCall = true): Promise<{ value: unknown; callback?: CallbackState }> {
    const timeoutMs = this.options.callTimeoutMs;
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DriverCallError('timeout', `${method}: no answer from driver ${this.description.name} within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const outcome = await Promise.race([this.invoker.invoke(call, timeoutMs), expired]);
      // A call that ran synchronously past its deadline is still answered as a timeout.
      if (performance.now() - started > timeoutMs) throw new DriverCallError('timeout', `${method}: driver ${this.description.name} took longer than ${timeoutMs} ms`);
      if ('trap' in outcome) throw new DriverCallError(outcome.timedOut ? 'timeout' : 'internal', `${method}: driver failed: ${outcome.trap}`);
      if (!outcome.ok) throw new DriverCallError(outcome.error.kind, `${method}: ${outcome.error.message}`);
      return { value: outcome.value, callback: outcome.callback };
    } finally {
      clearTimeout(timer);
      if (afterCall) this.options.afterCall?.();
    }
  }

  async networkAllocate(nid: string, options: StringMap, ipv4: IpamData[], ipv6: IpamData[]): Promise<StringMap> {
    const r = await this.run('network-allocate', { iface: 'driver', fn: 'networkAllocate', args: [nid, options, ipv4, ipv6] });
    return checkStringMap(r.value, 'network-allocate');
  }

  async networkFree(nid: string): Promise<void> {
    await this.run('network-free', { iface: 'driver', fn: 'networkFree', args: [nid] });
  }

  async createNetwork(nid: string, options: Options, ipv4: IpamData[], ipv6: IpamData[]): Promise<void> {
    // The pools are in scope during the call, so the driver can put the gateway address on its bridge.
    const scopes = this.options.scopes;
    // What was in scope before, put back as it was if the driver refuses (a duplicate create must not clear a live network).
    const before = scopes?.store.networkPools(scopes.driver, nid) ?? [];
    scopes?.store.setPools(scopes.driver, nid, poolsOf([...ipv4, ...ipv6]));
    try {
      await this.run('create-network', {
        iface: 'driver',
        fn: 'createNetwork',
        args: [this.ctx(), nid, options, null, ipv4, ipv6],
        callback: { at: 3, spec: { kind: 'network-info' } },
      });
    } catch (e) {
      scopes?.store.setPools(scopes.driver, nid, before);
      throw e;
    }
  }

  async deleteNetwork(nid: string): Promise<void> {
    try {
      await this.run('delete-network', { iface: 'driver', fn: 'deleteNetwork', args: [nid] });
    } finally {
      // dockerd forgets the network whatever the driver answers.
      const scopes = this.options.scopes;
      scopes?.store.removeNetwork(scopes.driver, nid);
    }
  }

  /** Returns what the driver filled in, checked again on this side. */
  async createEndpoint(nid: string, eid: string, given: EndpointInterface, options: Options): Promise<Partial<EndpointInterface>> {
    const r = await this.run('create-endpoint', {
      iface: 'driver',
      fn: 'createEndpoint',
      args: [this.ctx(), nid, eid, null, options],
      callback: { at: 3, spec: { kind: 'interface-info', given } },
    });
    return replayInterfaceInfo(given, r.callback);
  }

  async deleteEndpoint(nid: string, eid: string): Promise<void> {
    await this.run('delete-endpoint', { iface: 'driver', fn: 'deleteEndpoint', args: [nid, eid] });
  }

  async endpointOperInfo(nid: string, eid: string): Promise<Options> {
    const r = await this.run('endpoint-oper-info', { iface: 'driver', fn: 'endpointOperInfo', args: [nid, eid] });
    return checkOptions(r.value, 'endpoint-oper-info');
  }

  async join(nid: string, eid: string, sandboxKey: string, endpointOptions: Options, sandboxOptions: Options): Promise<JoinResult> {
    const scopes = this.options.scopes;
    const before = scopes?.store.sandboxOf(scopes.driver, nid, eid);
    scopes?.store.addSandbox(scopes.driver, nid, eid, sandboxKey);
    try {
      const r = await this.run('join', {
        iface: 'driver',
        fn: 'join',
        args: [this.ctx(), nid, eid, sandboxKey, null, endpointOptions, sandboxOptions],
        callback: { at: 4, spec: { kind: 'join-info' } },
      });
      return replayJoinInfo(r.callback);
    } catch (e) {
      // A refused second join leaves the live join in scope.
      if (scopes && before !== undefined) scopes.store.addSandbox(scopes.driver, nid, eid, before);
      else scopes?.store.removeSandbox(scopes.driver, nid, eid);
      throw e;
    }
  }

  async leave(nid: string, eid: string): Promise<void> {
    try {
      await this.run('leave', { iface: 'driver', fn: 'leave', args: [nid, eid] });
    } finally {
      const scopes = this.options.scopes;
      scopes?.store.removeSandbox(scopes.driver, nid, eid);
    }
  }

  /** Only when the driver exports ext-conner; otherwise there is nothing to program. */
  async programExternalConnectivity(nid: string, eid: string, gw4Id: string, gw6Id: string): Promise<void> {
    if (!this.description.extConner) return;
    await this.run('program-external-connectivity', { iface: 'extConner', fn: 'programExternalConnectivity', args: [this.ctx(), nid, eid, gw4Id, gw6Id] });
  }

  async getSkipGwAlloc(options: Options): Promise<SkipGwAlloc> {
    if (!this.description.gwAllocChecker) return { skipIpv4: false, skipIpv6: false };
    const r = (await this.run('get-skip-gw-alloc', { iface: 'gwAllocChecker', fn: 'getSkipGwAlloc', args: [options] })).value as Partial<SkipGwAlloc> | undefined;
    if (typeof r?.skipIpv4 !== 'boolean' || typeof r?.skipIpv6 !== 'boolean') throw new DriverCallError('internal', 'get-skip-gw-alloc: driver returned a malformed value');
    return { skipIpv4: r.skipIpv4, skipIpv6: r.skipIpv6 };
  }

  /** lifecycle.self-check, when the driver has it. */
  async selfCheck(): Promise<void> {
    if (!this.description.lifecycle) return;
    await this.run('self-check', { iface: 'lifecycle', fn: 'selfCheck', args: [] });
  }

  /**
   * lifecycle.migrate, when the driver has it. The caller holds the store
   * transaction, so nothing is flushed from inside it.
   */
  async migrate(fromVersion: string): Promise<void> {
    if (!this.description.lifecycle) return;
    await this.run('migrate', { iface: 'lifecycle', fn: 'migrate', args: [fromVersion] }, false);
  }

  close(): Promise<void> {
    return this.invoker.close();
  }
}

/** Applies what the driver set through the real setters, so every value is validated on the host's side. */
function replay(method: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    throw new DriverCallError('internal', `${method}: the driver set an invalid value: ${(e as Error).message}`);
  }
}

function replayInterfaceInfo(given: EndpointInterface, state: CallbackState | undefined): Partial<EndpointInterface> {
  const info = new InterfaceInfo(given);
  if (state?.kind !== 'interface-info') return {};
  const set = (state.set ?? {}) as Partial<Record<keyof EndpointInterface, unknown>>;
  replay('create-endpoint', () => {
    if (set.macAddress !== undefined) info.setMacAddress(set.macAddress as string);
    if (set.address !== undefined) info.setIpAddress(set.address as string);
    if (set.addressIpv6 !== undefined) info.setIpAddress(set.addressIpv6 as string);
  });
  return { ...info.set };
}

function replayJoinInfo(state: CallbackState | undefined): JoinResult {
  const info = new JoinInfo();
  if (state?.kind === 'join-info') {
    replay('join', () => {
      const n = state.names;
      if (n !== undefined) info.interfaceName().setNames(n.srcName, n.dstPrefix, n.dstName);
      if (state.gateway !== undefined) info.setGateway(state.gateway);
      if (state.gatewayIpv6 !== undefined) info.setGatewayIpv6(state.gatewayIpv6);
      if (!Array.isArray(state.staticRoutes)) throw new Error('static routes are not a list');
      for (const r of state.staticRoutes) info.addStaticRoute(r.destination, r.routeType, r.nextHop);
      if (state.disableGatewayService === true) info.disableGatewayService();
    });
  }
  return { names: info.names, gateway: info.gateway, gatewayIpv6: info.gatewayIpv6, staticRoutes: [...info.staticRoutes], disableGatewayService: info.gatewayServiceDisabled };
}

/** The address pools of a network, as CIDRs (the gateway's network when dockerd gave no pool). */
function poolsOf(data: IpamData[]): string[] {
  const out: string[] = [];
  for (const d of data) {
    const cidr = d.pool ?? d.gateway;
    if (!cidr) continue;
    const parsed = parseCidr(cidr);
    if (!parsed) continue;
    const [ip, len] = parsed;
    const bytes = ip.toByteArray();
    for (let i = 0; i < bytes.length; i++) {
      const keep = Math.max(0, Math.min(8, len - i * 8));
      bytes[i]! &= (0xff << (8 - keep)) & 0xff;
    }
    out.push(`${ipaddr.fromByteArray(bytes).toString()}/${len}`);
  }
  return out;
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

/** A DriverCallError for whatever a component threw: its err(driver-error), or a trap. */
export function toDriverCallError(method: string, e: unknown): DriverCallError {
  if (e instanceof DriverCallError) return e;
  const error = driverErrorOf(e);
  if (error) return new DriverCallError(error.kind, `${method}: ${error.message}`);
  return new DriverCallError('internal', `${method}: driver failed: ${(e instanceof Error ? e.message : String(e)).slice(0, 4096)}`);
}
