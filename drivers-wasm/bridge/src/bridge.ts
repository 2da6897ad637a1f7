/// <reference path="../gen/bridge-driver.d.ts" />
// The bridge driver's logic: a Linux bridge per network, a veth pair per
// joined endpoint. The host capabilities (netlink, store, log) are injected,
// so this module runs unchanged inside the component (index.ts wires the WIT
// imports) and in plain Node or Deno under test with fakes.
//
// All state lives in the host store, never in this object: the instance may
// be restarted or replaced by a new version between two calls, and dockerd
// never replays CreateNetwork, CreateEndpoint or Join. Store layout:
//   network/<nid>          NetworkRecord
//   endpoint/<nid>/<eid>   EndpointRecord
//   join/<nid>/<eid>       JoinRecord
import type * as NetlinkIface from 'wasmnet:host/netlink@0.1.0';
import type * as StoreIface from 'wasmnet:host/store@0.1.0';
import type * as LogIface from 'wasmnet:host/log@0.1.0';
import type * as Types from 'wasmnet:driver/types@0.1.0';
import type * as Callbacks from 'wasmnet:driver/callbacks@0.1.0';
import type * as Registration from 'wasmnet:driver/registration@0.1.0';
import { cidrContains, macFromIPv4, macFromString, normalizeMac, parseCidr, type Cidr } from './net.ts';

/** The netlink calls this driver makes: it needs no more of the interface. */
export type Netlink = Pick<typeof NetlinkIface, 'createBridge' | 'createVeth' | 'getLink' | 'setLinkUp' | 'setLinkMtu' | 'setLinkMaster' | 'deleteLink' | 'addAddress' | 'deleteAddress' | 'listAddresses'>;
export type Store = typeof StoreIface;
export type Log = typeof LogIface;
export type NetlinkError = NetlinkIface.NetlinkError;
export type StoreError = StoreIface.StoreError;
export type Link = NetlinkIface.Link;
export type LogLevel = LogIface.Level;
export type DriverError = Types.DriverError;
export type ErrorKind = Types.ErrorKind;
export type Options = Types.Options;
export type StringMap = Types.StringMap;
export type IpamData = Types.IpamData;
export type CallContext = Types.CallContext;
export type NetworkInfo = Callbacks.NetworkInfo;
export type InterfaceInfo = Callbacks.InterfaceInfo;
export type InterfaceNameInfo = Callbacks.InterfaceNameInfo;
export type JoinInfo = Callbacks.JoinInfo;
export type RegistrationInfo = Registration.RegistrationInfo;

/** The host capabilities the driver uses. */
export interface Host {
  netlink: Netlink;
  store: Store;
  log: Log;
}

export const DRIVER_NAME = 'wasmnet-bridge';
export const OPT_GENERIC = 'com.docker.network.generic';
export const OPT_BRIDGE_NAME = 'com.docker.network.bridge.name';
export const OPT_MTU = 'com.docker.network.driver.mtu';
export const OPT_ENDPOINT_MAC = 'com.docker.network.endpoint.macaddress';
export const SUPPORTED_DRIVER_OPTIONS: readonly string[] = [OPT_BRIDGE_NAME, OPT_MTU];
export const DEFAULT_MTU = 1500;
/** Every link the driver creates on its own starts with this. */
export const LINK_PREFIX = 'wn';

export interface NetworkRecord {
  bridge: string;
  mtu: number;
  /** Gateway CIDRs added to the bridge (`172.18.0.1/16`). */
  gateway4?: string;
  gateway6?: string;
}

export interface EndpointRecord {
  mac: string;
  /** Whether the driver chose the MAC (true) or dockerd had set it. */
  macSetByDriver: boolean;
  address?: string;
  addressIpv6?: string;
}

export interface JoinRecord {
  /** The host end of the veth pair, enslaved to the bridge. */
  hostIf: string;
  /** The end dockerd moves into the sandbox. */
  containerIf: string;
  sandboxKey: string;
}

/**
 * A driver error. It carries the WIT `driver-error` as an own `payload`
 * property, which is what componentize-js's export glue reads to return
 * err(payload) to the host; index.ts still normalises every exception.
 */
export class DriverFailure extends Error {
  readonly payload: DriverError;
  constructor(kind: ErrorKind, message: string) {
    super(message);
    this.name = 'DriverFailure';
    this.payload = { kind, message };
  }
  get kind(): ErrorKind {
    return this.payload.kind;
  }
}

const fail = (kind: ErrorKind, message: string): DriverFailure => new DriverFailure(kind, message);

/**
 * The error value a failed host import carried. componentize-js throws a
 * `ComponentError` whose `payload` is the WIT error value; note that inside
 * the component it is not `instanceof Error` (another realm), so this looks
 * at the property only.
 */
export function errorPayload(e: unknown): unknown {
  if (e !== null && typeof e === 'object' && Object.prototype.hasOwnProperty.call(e, 'payload')) {
    return (e as { payload: unknown }).payload;
  }
  return e;
}

function asNetlinkError(e: unknown): NetlinkError | undefined {
  const p = errorPayload(e);
  if (p === null || typeof p !== 'object') return undefined;
  const tag = (p as { tag?: unknown }).tag;
  return tag === 'denied' || tag === 'rate-limited' || tag === 'invalid' || tag === 'kernel' ? (p as NetlinkError) : undefined;
}

function asStoreError(e: unknown): StoreError | undefined {
  const p = errorPayload(e);
  if (p === null || typeof p !== 'object') return undefined;
  const tag = (p as { tag?: unknown }).tag;
  return tag === 'invalid' || tag === 'unavailable' ? (p as StoreError) : undefined;
}

const ENODEV = 19;
const EEXIST = 17;

function isErrno(e: unknown, code: number, name: string): boolean {
  const n = asNetlinkError(e);
  return n?.tag === 'kernel' && (n.val.code === code || n.val.name === name);
}

/** Text of any exception, for messages and the log. */
export function describeError(e: unknown): string {
  if (e instanceof DriverFailure) return e.message;
  const n = asNetlinkError(e);
  if (n) {
    if (n.tag === 'kernel') return `${n.val.name} (errno ${n.val.code}): ${n.val.message}`;
    return `${n.tag}: ${n.val}`;
  }
  const s = asStoreError(e);
  if (s) return `store ${s.tag}: ${s.val}`;
  const p = errorPayload(e);
  if (p !== null && typeof p === 'object') {
    const { kind, name, message } = p as { kind?: unknown; name?: unknown; message?: unknown };
    if (typeof kind === 'string' && typeof message === 'string') return `${kind}: ${message}`;
    if (typeof name === 'string' && name !== 'Error' && typeof message === 'string') return `${name}: ${message}`;
    if (typeof message === 'string') return message;
  }
  return String(p);
}

/**
 * Converts any exception to the WIT `driver-error` the host gets. Netlink
 * refusals keep their meaning (policy → forbidden, malformed → invalid-parameter).
 */
export function toDriverError(e: unknown, context?: string): DriverError {
  if (e instanceof DriverFailure) return e.payload;
  const p = errorPayload(e);
  if (p !== null && typeof p === 'object' && !Array.isArray(p)) {
    const { kind, message } = p as { kind?: unknown; message?: unknown };
    if (typeof kind === 'string' && KINDS.has(kind as ErrorKind) && typeof message === 'string') {
      return { kind: kind as ErrorKind, message };
    }
  }
  const prefix = context ? `${context}: ` : '';
  const n = asNetlinkError(e);
  if (n?.tag === 'denied') return { kind: 'forbidden', message: `${prefix}denied by the host's policy: ${n.val}` };
  if (n?.tag === 'rate-limited') return { kind: 'no-service', message: `${prefix}the host's rate limit: ${n.val}` };
  if (n?.tag === 'invalid') return { kind: 'invalid-parameter', message: `${prefix}${n.val}` };
  const s = asStoreError(e);
  if (s?.tag === 'unavailable') return { kind: 'no-service', message: `${prefix}state store unavailable: ${s.val}` };
  return { kind: 'internal', message: prefix + describeError(e) };
}

/**
 * Wraps an exported function for componentize-js: whatever it throws leaves
 * as `{ payload: driver-error }`, which the glue returns to the host as
 * err(payload). Without this, any other exception (a TypeError, a plain
 * Error) traps the instance, and a trapped instance refuses every later call.
 * Unexpected (internal) errors are logged.
 */
export function guard<A extends unknown[], R>(log: Log, op: string, f: (...args: A) => R): (...args: A) => R {
  return (...args: A): R => {
    try {
      return f(...args);
    } catch (e) {
      const payload = toDriverError(e, op);
      if (payload.kind === 'internal') {
        try {
          log.log('error', `${op} failed: ${payload.message}`);
        } catch {
          // nothing more to do
        }
      }
      const err: { payload: DriverError } = { payload };
      throw err;
    }
  };
}

const KINDS = new Set<ErrorKind>(['invalid-parameter', 'not-found', 'forbidden', 'no-service', 'not-implemented', 'timeout', 'internal']);

/** A Linux interface name: 1..15 of [A-Za-z0-9_.-], not `.` or `..`. */
export function isValidLinkName(name: string): boolean {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(name) && name !== '.' && name !== '..';
}

export function hostIfName(eid: string): string {
  return `${LINK_PREFIX}h${eid.slice(0, 9)}`;
}

export function containerIfName(eid: string): string {
  return `${LINK_PREFIX}c${eid.slice(0, 9)}`;
}

export function defaultBridgeName(nid: string): string {
  return `${LINK_PREFIX}${nid.slice(0, 12)}`;
}

/** What create-network takes from its options. */
export interface NetworkConfig {
  bridge: string;
  mtu: number;
}

/**
 * Reads the `-o` driver options from `com.docker.network.generic` (JSON text
 * of a string map). Unknown `-o` keys are refused; other top-level options
 * (enable_ipv6, internal, ...) are not this driver's business and are ignored.
 */
export function parseNetworkOptions(nid: string, options: Options): NetworkConfig {
  let bridge = defaultBridgeName(nid);
  let mtu = DEFAULT_MTU;
  const entry = options.find((o) => o.key === OPT_GENERIC);
  let generic: unknown = null;
  if (entry) {
    try {
      generic = JSON.parse(entry.value);
    } catch {
      throw fail('invalid-parameter', `option ${OPT_GENERIC} is not valid JSON`);
    }
  }
  if (generic !== null && generic !== undefined) {
    if (typeof generic !== 'object' || Array.isArray(generic)) {
      throw fail('invalid-parameter', `option ${OPT_GENERIC} must be an object of driver options`);
    }
    const supported = SUPPORTED_DRIVER_OPTIONS.join(', ');
    for (const [key, value] of Object.entries(generic as Record<string, unknown>)) {
      if (!SUPPORTED_DRIVER_OPTIONS.includes(key)) {
        throw fail('invalid-parameter', `driver option "${key}" is not supported by ${DRIVER_NAME}; supported options: ${supported}`);
      }
      if (typeof value !== 'string') {
        throw fail('invalid-parameter', `driver option ${key} must be a string, got ${JSON.stringify(value)}`);
      }
      if (key === OPT_BRIDGE_NAME) {
        if (!isValidLinkName(value)) {
          throw fail('invalid-parameter', `${OPT_BRIDGE_NAME} "${value}" is not a valid interface name (1 to 15 characters of A-Z a-z 0-9 _ . -)`);
        }
        bridge = value;
      } else if (key === OPT_MTU) {
        const n = /^[0-9]{1,5}$/.test(value) ? Number(value) : NaN;
        if (!(n >= 68 && n <= 65535)) {
          throw fail('invalid-parameter', `${OPT_MTU} "${value}" is not an integer between 68 and 65535`);
        }
        mtu = n;
      }
    }
  }
  if (!isValidLinkName(bridge)) {
    throw fail('invalid-parameter', `cannot derive a bridge name from network ID "${nid}"; set ${OPT_BRIDGE_NAME}`);
  }
  return { bridge, mtu };
}

/** Checks one family's IPAM data; returns the gateway CIDR, if any. */
export function parseIpamData(family: 4 | 6, data: IpamData[]): string | undefined {
  const v = `IPv${family}`;
  if (data.length > 1) {
    throw fail('invalid-parameter', `${DRIVER_NAME} supports at most one ${v} subnet per network, got ${data.length}`);
  }
  const d = data[0];
  if (!d) return undefined;
  let pool: Cidr | undefined;
  if (d.pool !== undefined) {
    const p = parseCidr(d.pool);
    if (!p || p.family !== family) throw fail('invalid-parameter', `${v} pool "${d.pool}" is not an ${v} CIDR`);
    pool = p;
  }
  if (d.gateway === undefined) return undefined;
  const gw = parseCidr(d.gateway);
  if (!gw || gw.family !== family) {
    throw fail('invalid-parameter', `${v} gateway "${d.gateway}" is not an ${v} CIDR (addr/len)`);
  }
  if (pool && !cidrContains(pool, gw)) {
    throw fail('invalid-parameter', `${v} gateway ${d.gateway} is outside the pool ${d.pool}`);
  }
  return d.gateway;
}

const gatewayIp = (cidr: string): string => cidr.slice(0, cidr.indexOf('/'));

const isStr = (v: unknown): v is string => typeof v === 'string';
const isOptCidr = (v: unknown): boolean => v === undefined || (isStr(v) && parseCidr(v) !== null);
const isNetworkRecord = (r: Record<string, unknown>): boolean =>
  isStr(r.bridge) && isValidLinkName(r.bridge) && Number.isInteger(r.mtu) && isOptCidr(r.gateway4) && isOptCidr(r.gateway6);
const isEndpointRecord = (r: Record<string, unknown>): boolean =>
  isStr(r.mac) && (r.address === undefined || isStr(r.address)) && (r.addressIpv6 === undefined || isStr(r.addressIpv6));
const isJoinRecord = (r: Record<string, unknown>): boolean =>
  isStr(r.hostIf) && isValidLinkName(r.hostIf) && isStr(r.containerIf) && isStr(r.sandboxKey);

export class BridgeDriver {
  readonly #host: Host;

  constructor(host: Host) {
    this.#host = host;
  }

  // --- registration / identity -------------------------------------------

  describe(): RegistrationInfo {
    return { name: DRIVER_NAME, capability: { dataScope: 'local', connectivityScope: 'local' } };
  }

  type(): string {
    return DRIVER_NAME;
  }

  isBuiltIn(): boolean {
    return false;
  }

  networkAllocate(_nid: string, _options: StringMap, _v4: IpamData[], _v6: IpamData[]): StringMap {
    throw fail('not-implemented', `${DRIVER_NAME} is a local-scope driver: network-allocate is not implemented`);
  }

  networkFree(_nid: string): void {
    throw fail('not-implemented', `${DRIVER_NAME} is a local-scope driver: network-free is not implemented`);
  }

  // --- networks ------------------------------------------------------------

  createNetwork(nid: string, options: Options, ipv4Data: IpamData[], ipv6Data: IpamData[]): void {
    if (!nid) throw fail('invalid-parameter', 'empty network ID');
    const cfg = parseNetworkOptions(nid, options);
    const gateway4 = parseIpamData(4, ipv4Data);
    const gateway6 = parseIpamData(6, ipv6Data);
    if (this.#getNetwork(nid)) throw fail('forbidden', `network ${nid} already exists`);
    for (const [key, value] of this.#host.store.entries('network/')) {
      let other: unknown;
      try {
        other = JSON.parse(value);
      } catch {
        continue; // a corrupt record must not block every new network
      }
      if ((other as Partial<NetworkRecord> | null)?.bridge === cfg.bridge) {
        throw fail('forbidden', `bridge name "${cfg.bridge}" is already used by network ${key.slice('network/'.length)}`);
      }
    }

    const { netlink } = this.#host;
    let created = false;
    try {
      try {
        netlink.createBridge({ name: cfg.bridge, mtu: cfg.mtu });
      } catch (e) {
        if (isErrno(e, EEXIST, 'EEXIST')) {
          throw fail('forbidden', `cannot create bridge "${cfg.bridge}": a link with that name already exists on the host`);
        }
        throw fail(toDriverError(e).kind, `cannot create bridge "${cfg.bridge}": ${describeError(e)}`);
      }
      created = true;
      for (const gw of [gateway4, gateway6]) {
        if (gw === undefined) continue;
        this.#step(`cannot add gateway ${gw} to bridge "${cfg.bridge}"`, () => netlink.addAddress(cfg.bridge, gw));
      }
      this.#step(`cannot bring bridge "${cfg.bridge}" up`, () => netlink.setLinkUp(cfg.bridge, true));
      const record: NetworkRecord = { bridge: cfg.bridge, mtu: cfg.mtu };
      if (gateway4 !== undefined) record.gateway4 = gateway4;
      if (gateway6 !== undefined) record.gateway6 = gateway6;
      this.#put(`network/${nid}`, record);
    } catch (e) {
      if (created) this.#rollbackLink(cfg.bridge, `create-network ${nid}`);
      throw e;
    }
    this.#log('info', `network ${nid}: bridge ${cfg.bridge} created (mtu ${cfg.mtu}${gateway4 ? `, gateway ${gateway4}` : ''}${gateway6 ? `, gateway ${gateway6}` : ''})`);
  }

  deleteNetwork(nid: string): void {
    const { store } = this.#host;
    // dockerd forgets the network whatever the answer, so a damaged record
    // must not stop the cleanup: fall back to the name the driver would have chosen.
    let bridge: string | undefined;
    try {
      bridge = this.#getNetwork(nid)?.bridge;
    } catch (e) {
      bridge = defaultBridgeName(nid);
      this.#log('error', `delete-network ${nid}: ${describeError(e)}; deleting ${bridge} if present`);
    }
    // Joins that were never left: their host-side veths are not removed with the bridge.
    for (const [key, value] of store.entries(`join/${nid}/`)) {
      const j = this.#joinRecord(key, value, key.slice(`join/${nid}/`.length));
      this.#deleteLinkIfPresent(j.hostIf, `delete-network ${nid}`);
      this.#del(key);
    }
    if (bridge !== undefined && isValidLinkName(bridge)) {
      this.#deleteLinkIfPresent(bridge, `delete-network ${nid}`);
    }
    for (const [key] of store.entries(`endpoint/${nid}/`)) this.#del(key);
    const existed = this.#del(`network/${nid}`);
    if (existed) this.#log('info', `network ${nid}: bridge ${bridge} deleted`);
    else this.#log('debug', `delete-network ${nid}: unknown network, nothing to do`);
  }

  // --- endpoints -----------------------------------------------------------

  createEndpoint(nid: string, eid: string, ifInfo: InterfaceInfo, _options: Options): void {
    if (!eid) throw fail('invalid-parameter', 'empty endpoint ID');
    if (!this.#getNetwork(nid)) throw fail('not-found', `network ${nid} not found`);
    const key = `endpoint/${nid}/${eid}`;
    if (this.#host.store.get(key) !== undefined) throw fail('forbidden', `endpoint ${eid} already exists`);

    const address = nonEmpty(ifInfo.address());
    const addressIpv6 = nonEmpty(ifInfo.addressIpv6());
    const given = nonEmpty(ifInfo.macAddress());
    let mac: string;
    let macSetByDriver = false;
    if (given !== undefined) {
      // dockerd set it (the user's --mac-address): never set it again.
      mac = normalizeMac(given) ?? given;
    } else {
      const v4 = address !== undefined ? parseCidr(address) : null;
      if (address !== undefined && (!v4 || v4.family !== 4)) {
        throw fail('invalid-parameter', `endpoint ${eid}: IPv4 address "${address}" is not an IPv4 CIDR`);
      }
      mac = v4 ? macFromIPv4(v4.bytes) : macFromString(eid);
      try {
        ifInfo.setMacAddress(mac);
      } catch (e) {
        throw fail(toDriverError(e).kind, `endpoint ${eid}: cannot set MAC address ${mac}: ${describeError(e)}`);
      }
      macSetByDriver = true;
    }
    const record: EndpointRecord = { mac, macSetByDriver };
    if (address !== undefined) record.address = address;
    if (addressIpv6 !== undefined) record.addressIpv6 = addressIpv6;
    this.#put(key, record);
    this.#log('info', `endpoint ${eid} on network ${nid}: mac ${mac}${macSetByDriver ? '' : ' (from dockerd)'}${address ? `, ${address}` : ''}${addressIpv6 ? `, ${addressIpv6}` : ''}`);
  }

  deleteEndpoint(nid: string, eid: string): void {
    // A join that was never left would leave its veth behind.
    const jkey = `join/${nid}/${eid}`;
    const jv = this.#host.store.get(jkey);
    if (jv !== undefined) {
      const j = this.#joinRecord(jkey, jv, eid);
      this.#deleteLinkIfPresent(j.hostIf, `delete-endpoint ${eid}`);
      this.#del(jkey);
    }
    if (this.#del(`endpoint/${nid}/${eid}`)) this.#log('info', `endpoint ${eid} on network ${nid} deleted`);
    else this.#log('debug', `delete-endpoint ${eid}: unknown endpoint, nothing to do`);
  }

  endpointOperInfo(nid: string, eid: string): Options {
    const ep = this.#getEndpoint(nid, eid);
    if (!ep) throw fail('not-found', `endpoint ${eid} not found on network ${nid}`);
    return [{ key: OPT_ENDPOINT_MAC, value: JSON.stringify(ep.mac) }];
  }

  // --- join / leave --------------------------------------------------------

  join(nid: string, eid: string, sandboxKey: string, joinInfo: JoinInfo): void {
    const net = this.#getNetwork(nid);
    if (!net) throw fail('not-found', `network ${nid} not found`);
    const ep = this.#getEndpoint(nid, eid);
    if (!ep) throw fail('not-found', `endpoint ${eid} not found on network ${nid}`);
    const hostIf = hostIfName(eid);
    const containerIf = containerIfName(eid);
    if (!isValidLinkName(hostIf) || !isValidLinkName(containerIf)) {
      throw fail('invalid-parameter', `cannot derive interface names from endpoint ID "${eid}"`);
    }
    const { netlink } = this.#host;
    let created = false;
    try {
      try {
        netlink.createVeth({ name: hostIf, peerName: containerIf, mtu: net.mtu, peerMac: ep.mac });
      } catch (e) {
        if (isErrno(e, EEXIST, 'EEXIST')) {
          throw fail('forbidden', `cannot create veth ${hostIf}/${containerIf}: a link with that name already exists (endpoint already joined?)`);
        }
        throw fail(toDriverError(e).kind, `cannot create veth ${hostIf}/${containerIf}: ${describeError(e)}`);
      }
      created = true;
      this.#step(`cannot attach ${hostIf} to bridge "${net.bridge}"`, () => netlink.setLinkMaster(hostIf, net.bridge));
      this.#step(`cannot bring ${hostIf} up`, () => netlink.setLinkUp(hostIf, true));
      this.#step('cannot set the interface names', () => {
        const names = joinInfo.interfaceName();
        try {
          names.setNames(containerIf, 'eth', '');
        } finally {
          names[Symbol.dispose]();
        }
      });
      // A gateway is given only to an endpoint with an address of that family:
      // a default route via an unreachable gateway would fail the sandbox setup.
      if (net.gateway4 !== undefined && ep.address !== undefined) {
        const gw = gatewayIp(net.gateway4);
        this.#step(`cannot set gateway ${gw}`, () => joinInfo.setGateway(gw));
      }
      if (net.gateway6 !== undefined && ep.addressIpv6 !== undefined) {
        const gw = gatewayIp(net.gateway6);
        this.#step(`cannot set IPv6 gateway ${gw}`, () => joinInfo.setGatewayIpv6(gw));
      }
      const record: JoinRecord = { hostIf, containerIf, sandboxKey };
      this.#put(`join/${nid}/${eid}`, record);
    } catch (e) {
      if (created) this.#rollbackLink(hostIf, `join ${eid}`);
      throw e;
    }
    this.#log('info', `endpoint ${eid} joined sandbox ${sandboxKey}: ${hostIf} on ${net.bridge}, ${containerIf} goes in as eth*`);
  }

  leave(nid: string, eid: string): void {
    const key = `join/${nid}/${eid}`;
    const v = this.#host.store.get(key);
    if (v === undefined) {
      this.#log('debug', `leave ${eid}: not joined, nothing to do`);
      return;
    }
    const j = this.#joinRecord(key, v, eid);
    this.#deleteLinkIfPresent(j.hostIf, `leave ${eid}`);
    this.#del(key);
    this.#log('info', `endpoint ${eid} left sandbox ${j.sandboxKey}: ${j.hostIf} deleted`);
  }

  // --- ext-conner ----------------------------------------------------------

  programExternalConnectivity(nid: string, eid: string, gw4Id: string, gw6Id: string): void {
    this.#log('debug', `program-external-connectivity ${nid}/${eid} (gw4 "${gw4Id}", gw6 "${gw6Id}"): nothing to do, no NAT`);
  }

  // --- helpers -------------------------------------------------------------

  #log(level: LogLevel, message: string): void {
    try {
      this.#host.log.log(level, message);
    } catch {
      // Logging must never fail a call.
    }
  }

  #step(what: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      throw fail(toDriverError(e).kind, `${what}: ${describeError(e)}`);
    }
  }

  /** Parses a stored record and checks its shape, so a damaged store gives an error, not a wrong link. */
  #parse<T>(key: string, value: string, valid: (r: Record<string, unknown>) => boolean): T {
    let r: unknown;
    try {
      r = JSON.parse(value);
    } catch {
      r = undefined;
    }
    if (r === null || typeof r !== 'object' || Array.isArray(r) || !valid(r as Record<string, unknown>)) {
      throw fail('internal', `corrupt state record ${key}`);
    }
    return r as T;
  }

  /**
   * A join record for the delete paths, which must clean up even after damage:
   * a damaged record is logged and replaced by the names join derives from the eid.
   */
  #joinRecord(key: string, value: string, eid: string): JoinRecord {
    try {
      return this.#parse<JoinRecord>(key, value, isJoinRecord);
    } catch (e) {
      const fallback: JoinRecord = { hostIf: hostIfName(eid), containerIf: containerIfName(eid), sandboxKey: '?' };
      this.#log('error', `${describeError(e)}; assuming ${fallback.hostIf}`);
      return fallback;
    }
  }

  #getNetwork(nid: string): NetworkRecord | undefined {
    const key = `network/${nid}`;
    const v = this.#host.store.get(key);
    return v === undefined ? undefined : this.#parse<NetworkRecord>(key, v, isNetworkRecord);
  }

  #getEndpoint(nid: string, eid: string): EndpointRecord | undefined {
    const key = `endpoint/${nid}/${eid}`;
    const v = this.#host.store.get(key);
    return v === undefined ? undefined : this.#parse<EndpointRecord>(key, v, isEndpointRecord);
  }

  #put(key: string, value: unknown): void {
    try {
      this.#host.store.set(key, JSON.stringify(value));
    } catch (e) {
      throw fail(toDriverError(e).kind === 'no-service' ? 'no-service' : 'internal', `cannot save ${key}: ${describeError(e)}`);
    }
  }

  #del(key: string): boolean {
    try {
      return this.#host.store.delete(key);
    } catch (e) {
      throw fail(toDriverError(e).kind === 'no-service' ? 'no-service' : 'internal', `cannot delete ${key}: ${describeError(e)}`);
    }
  }

  /** Deletes a link; a link that is already gone is fine. */
  #deleteLinkIfPresent(name: string, context: string): void {
    const { netlink } = this.#host;
    try {
      if (netlink.getLink(name) === undefined) return;
      netlink.deleteLink(name);
    } catch (e) {
      if (isErrno(e, ENODEV, 'ENODEV')) return;
      throw fail(toDriverError(e).kind, `${context}: cannot delete link ${name}: ${describeError(e)}`);
    }
  }

  /** Undoes a link created earlier in a failed call; reports, never throws. */
  #rollbackLink(name: string, context: string): void {
    try {
      this.#host.netlink.deleteLink(name);
      this.#log('warn', `${context} failed: rolled back, link ${name} deleted`);
    } catch (e) {
      if (isErrno(e, ENODEV, 'ENODEV')) this.#log('warn', `${context} failed: rolled back, link ${name} was already gone`);
      else this.#log('error', `${context} failed, and rolling back link ${name} failed too: ${describeError(e)}`);
    }
  }
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s);
