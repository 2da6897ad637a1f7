/// <reference path="../gen/macvlan-driver.d.ts" />
// The macvlan driver's logic: one macvlan link per joined endpoint, on a
// parent link of the host that the operator granted to the driver (manifest
// `capabilities.netlink.parents`). Like Docker's own macvlan driver, nothing
// is created when a network is created: the network only records its parent,
// mode, MTU and gateways; join creates the endpoint's macvlan, which dockerd
// moves into the container as eth*. Containers on the same parent reach each
// other directly (bridge mode) and the parent's segment; the gateway is a
// router on that segment, not something this driver provides.
//
// dockerd (20.10, checked end to end) calls Leave while the macvlan is still
// in the container; only then does it move the link back to the host
// namespace under its own name, and then it calls DeleteEndpoint. So leave
// deletes the macvlan if it is already back (or was never moved), and
// otherwise marks the join as left; delete-endpoint (or delete-network, or a
// new join of the endpoint) deletes what came back.
//
// The host capabilities (netlink, store, log) are injected, so this module
// runs unchanged inside the component (index.ts wires the WIT imports) and in
// plain Node or Deno under test with fakes.
//
// All state lives in the host store, never in this object. Store layout:
//   network/<nid>          NetworkRecord
//   endpoint/<nid>/<eid>   EndpointRecord
//   join/<nid>/<eid>       JoinRecord
//
// The error plumbing across the component boundary and the address helpers
// are the bridge driver's (pure functions, no driver state).
import type * as NetlinkIface from 'wasmnet:host/netlink@0.1.0';
import type * as StoreIface from 'wasmnet:host/store@0.1.0';
import type * as LogIface from 'wasmnet:host/log@0.1.0';
import type * as Types from 'wasmnet:driver/types@0.1.0';
import type * as Callbacks from 'wasmnet:driver/callbacks@0.1.0';
import type * as Registration from 'wasmnet:driver/registration@0.1.0';
import { DriverFailure, describeError, errorPayload, isValidLinkName, toDriverError } from '../../bridge/src/bridge.ts';
import { cidrContains, macFromIPv4, macFromString, normalizeMac, parseCidr, type Cidr } from '../../bridge/src/net.ts';

export { DriverFailure, describeError, guard, toDriverError } from '../../bridge/src/bridge.ts';

/** The netlink calls this driver makes: it needs no more of the interface. */
export type Netlink = Pick<typeof NetlinkIface, 'createMacvlan' | 'getLink' | 'deleteLink'>;
export type Store = typeof StoreIface;
export type Log = typeof LogIface;
export type Link = NetlinkIface.Link;
export type MacvlanMode = NetlinkIface.MacvlanMode;
export type NetlinkError = NetlinkIface.NetlinkError;
export type LogLevel = LogIface.Level;
export type DriverError = Types.DriverError;
export type ErrorKind = Types.ErrorKind;
export type Options = Types.Options;
export type StringMap = Types.StringMap;
export type IpamData = Types.IpamData;
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

export const DRIVER_NAME = 'wasmnet-macvlan';
export const OPT_GENERIC = 'com.docker.network.generic';
/** `-o parent=<link>`: the host link the network's macvlans hang off (Docker's macvlan option). */
export const OPT_PARENT = 'parent';
/** `-o macvlan_mode=bridge|private|vepa|passthru` (Docker's macvlan option). */
export const OPT_MODE = 'macvlan_mode';
export const OPT_MTU = 'com.docker.network.driver.mtu';
export const OPT_ENDPOINT_MAC = 'com.docker.network.endpoint.macaddress';
export const SUPPORTED_DRIVER_OPTIONS: readonly string[] = [OPT_PARENT, OPT_MODE, OPT_MTU];
export const MODES: readonly MacvlanMode[] = ['bridge', 'private', 'vepa', 'passthru'];
export const DEFAULT_MODE: MacvlanMode = 'bridge';
/** Every link the driver creates starts with this (the manifest's linkPrefix). */
export const LINK_PREFIX = 'mv';

export interface NetworkRecord {
  parent: string;
  mode: MacvlanMode;
  /** The macvlans' MTU; absent: the parent's. */
  mtu?: number;
  /** Gateway CIDRs dockerd's IPAM gave the network (`10.202.0.1/24`): a router on the parent's segment. */
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
  /** The endpoint's macvlan, created in the host namespace; dockerd moves it into the sandbox. */
  link: string;
  sandboxKey: string;
  /**
   * Set by leave when the macvlan was not back in the host namespace yet:
   * dockerd returns it after Leave, and delete-endpoint deletes it.
   */
  left?: boolean;
}

const fail = (kind: ErrorKind, message: string): DriverFailure => new DriverFailure(kind, message);

const ENODEV = 19;
const EEXIST = 17;

function asNetlinkError(e: unknown): NetlinkError | undefined {
  const p = errorPayload(e);
  if (p === null || typeof p !== 'object') return undefined;
  const tag = (p as { tag?: unknown }).tag;
  return tag === 'denied' || tag === 'rate-limited' || tag === 'invalid' || tag === 'kernel' ? (p as NetlinkError) : undefined;
}

function isErrno(e: unknown, code: number, name: string): boolean {
  const n = asNetlinkError(e);
  return n?.tag === 'kernel' && (n.val.code === code || n.val.name === name);
}

const isDenied = (e: unknown): boolean => asNetlinkError(e)?.tag === 'denied';

/** The endpoint's macvlan: the prefix and 10 characters of the endpoint ID (12 in all). */
export function macvlanName(eid: string): string {
  return `${LINK_PREFIX}${eid.slice(0, 10)}`;
}

/** What create-network takes from its options. */
export interface NetworkConfig {
  parent: string;
  mode: MacvlanMode;
  mtu?: number;
}

/**
 * Reads the `-o` driver options from `com.docker.network.generic` (JSON text
 * of a string map): `parent` (required), `macvlan_mode`, the MTU. Unknown
 * `-o` keys are refused; other top-level options (enable_ipv6, internal, ...)
 * are not this driver's business and are ignored.
 */
export function parseNetworkOptions(options: Options): NetworkConfig {
  const entry = options.find((o) => o.key === OPT_GENERIC);
  let generic: unknown = null;
  if (entry) {
    try {
      generic = JSON.parse(entry.value);
    } catch {
      throw fail('invalid-parameter', `option ${OPT_GENERIC} is not valid JSON`);
    }
  }
  if (generic !== null && (typeof generic !== 'object' || Array.isArray(generic))) {
    throw fail('invalid-parameter', `option ${OPT_GENERIC} must be an object of driver options`);
  }
  let parent: string | undefined;
  let mode = DEFAULT_MODE;
  let mtu: number | undefined;
  const supported = SUPPORTED_DRIVER_OPTIONS.join(', ');
  for (const [key, value] of Object.entries((generic ?? {}) as Record<string, unknown>)) {
    if (!SUPPORTED_DRIVER_OPTIONS.includes(key)) {
      throw fail('invalid-parameter', `driver option "${key}" is not supported by ${DRIVER_NAME}; supported options: ${supported}`);
    }
    if (typeof value !== 'string') {
      throw fail('invalid-parameter', `driver option ${key} must be a string, got ${JSON.stringify(value)}`);
    }
    if (key === OPT_PARENT) {
      if (!isValidLinkName(value)) {
        throw fail('invalid-parameter', `parent "${value}" is not a valid interface name (1 to 15 characters of A-Z a-z 0-9 _ . -)`);
      }
      if (value.startsWith(LINK_PREFIX)) {
        throw fail('invalid-parameter', `parent "${value}" is under the driver's own link prefix "${LINK_PREFIX}": the parent must be a host link, not an endpoint's macvlan`);
      }
      parent = value;
    } else if (key === OPT_MODE) {
      if (!(MODES as readonly string[]).includes(value)) {
        throw fail('invalid-parameter', `${OPT_MODE} "${value}" is not one of ${MODES.join(', ')}`);
      }
      mode = value as MacvlanMode;
    } else if (key === OPT_MTU) {
      const n = /^[0-9]{1,5}$/.test(value) ? Number(value) : NaN;
      if (!(n >= 68 && n <= 65535)) {
        throw fail('invalid-parameter', `${OPT_MTU} "${value}" is not an integer between 68 and 65535`);
      }
      mtu = n;
    }
  }
  if (parent === undefined) {
    throw fail('invalid-parameter', `${DRIVER_NAME} needs the parent link: docker network create -d <plugin> -o ${OPT_PARENT}=<host link> ...`);
  }
  const cfg: NetworkConfig = { parent, mode };
  if (mtu !== undefined) cfg.mtu = mtu;
  return cfg;
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
  isStr(r.parent) &&
  isValidLinkName(r.parent) &&
  (MODES as readonly unknown[]).includes(r.mode) &&
  (r.mtu === undefined || Number.isInteger(r.mtu)) &&
  isOptCidr(r.gateway4) &&
  isOptCidr(r.gateway6);
const isEndpointRecord = (r: Record<string, unknown>): boolean =>
  isStr(r.mac) && (r.address === undefined || isStr(r.address)) && (r.addressIpv6 === undefined || isStr(r.addressIpv6));
const isJoinRecord = (r: Record<string, unknown>): boolean =>
  isStr(r.link) && isValidLinkName(r.link) && r.link.startsWith(LINK_PREFIX) && isStr(r.sandboxKey) && (r.left === undefined || r.left === true);

export class MacvlanDriver {
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
    const cfg = parseNetworkOptions(options);
    const gateway4 = parseIpamData(4, ipv4Data);
    const gateway6 = parseIpamData(6, ipv6Data);
    if (this.#getNetwork(nid)) throw fail('forbidden', `network ${nid} already exists`);
    // Like Docker's macvlan driver: one network per parent link.
    for (const [key, value] of this.#host.store.entries('network/')) {
      let other: unknown;
      try {
        other = JSON.parse(value);
      } catch {
        continue; // a corrupt record must not block every new network
      }
      if ((other as Partial<NetworkRecord> | null)?.parent === cfg.parent) {
        throw fail('forbidden', `network ${key.slice('network/'.length)} is already using parent interface ${cfg.parent}`);
      }
    }

    const parent = this.#parentLink(cfg.parent);
    if (cfg.mtu !== undefined && cfg.mtu > parent.mtu) {
      throw fail('invalid-parameter', `${OPT_MTU} ${cfg.mtu} is larger than the MTU of parent ${cfg.parent} (${parent.mtu})`);
    }
    if (!parent.up) {
      this.#log('warn', `network ${nid}: parent ${cfg.parent} is down; its containers have no connectivity until the operator brings it up`);
    }

    const record: NetworkRecord = { parent: cfg.parent, mode: cfg.mode };
    if (cfg.mtu !== undefined) record.mtu = cfg.mtu;
    if (gateway4 !== undefined) record.gateway4 = gateway4;
    if (gateway6 !== undefined) record.gateway6 = gateway6;
    this.#put(`network/${nid}`, record);
    this.#log(
      'info',
      `network ${nid}: macvlan ${cfg.mode} on parent ${cfg.parent} (mtu ${cfg.mtu ?? `${parent.mtu}, the parent's`}` +
        `${gateway4 ? `, gateway ${gateway4}` : ''}${gateway6 ? `, gateway ${gateway6}` : ''})`,
    );
  }

  deleteNetwork(nid: string): void {
    const { store } = this.#host;
    // dockerd forgets the network whatever the answer: clean up even after damage.
    for (const [key, value] of store.entries(`join/${nid}/`)) {
      const j = this.#joinRecord(key, value, key.slice(`join/${nid}/`.length));
      this.#deleteLinkIfPresent(j.link, `delete-network ${nid}`);
      this.#del(key);
    }
    for (const [key] of store.entries(`endpoint/${nid}/`)) this.#del(key);
    if (this.#del(`network/${nid}`)) this.#log('info', `network ${nid} deleted`);
    else this.#log('debug', `delete-network ${nid}: unknown network, nothing to do`);
  }

  // --- endpoints -----------------------------------------------------------

  createEndpoint(nid: string, eid: string, ifInfo: InterfaceInfo, _options: Options): void {
    if (!eid) throw fail('invalid-parameter', 'empty endpoint ID');
    const net = this.#getNetwork(nid);
    if (!net) throw fail('not-found', `network ${nid} not found`);
    const key = `endpoint/${nid}/${eid}`;
    if (this.#host.store.get(key) !== undefined) throw fail('forbidden', `endpoint ${eid} already exists`);

    const address = nonEmpty(ifInfo.address());
    const addressIpv6 = nonEmpty(ifInfo.addressIpv6());
    const given = nonEmpty(ifInfo.macAddress());
    // In passthru mode the macvlan takes the parent's MAC, and setting another
    // one on it (dockerd does, inside the sandbox) sets the parent's: so the
    // endpoint's MAC is the parent's, and the parent stays as it is.
    const passthruMac = net.mode === 'passthru' ? this.#parentMac(net.parent) : undefined;
    let mac: string;
    let macSetByDriver = false;
    if (given !== undefined) {
      // dockerd set it (the user's --mac-address): never set it again.
      const m = normalizeMac(given);
      if (m === null) throw fail('invalid-parameter', `endpoint ${eid}: MAC address "${given}" is malformed`);
      if (passthruMac !== undefined && m !== passthruMac) {
        throw fail(
          'invalid-parameter',
          `endpoint ${eid}: MAC address ${m} on a passthru network: the container takes the MAC of parent ${net.parent} (${passthruMac}), ` +
            'and another one would change the parent\'s',
        );
      }
      mac = m;
    } else {
      const v4 = address !== undefined ? parseCidr(address) : null;
      if (address !== undefined && (!v4 || v4.family !== 4)) {
        throw fail('invalid-parameter', `endpoint ${eid}: IPv4 address "${address}" is not an IPv4 CIDR`);
      }
      mac = passthruMac ?? (v4 ? macFromIPv4(v4.bytes) : macFromString(eid));
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
    // The macvlan of a join: dockerd has moved it back by now (or it was never left).
    const jkey = `join/${nid}/${eid}`;
    const jv = this.#host.store.get(jkey);
    if (jv !== undefined) {
      const j = this.#joinRecord(jkey, jv, eid);
      this.#deleteLinkIfPresent(j.link, `delete-endpoint ${eid}`);
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
    const link = macvlanName(eid);
    if (!isValidLinkName(link)) throw fail('invalid-parameter', `cannot derive an interface name from endpoint ID "${eid}"`);
    const jkey = `join/${nid}/${eid}`;
    const previous = this.#host.store.get(jkey);
    if (previous !== undefined) {
      const p = this.#joinRecord(jkey, previous, eid);
      if (!p.left) throw fail('forbidden', `endpoint ${eid} is already joined to sandbox ${p.sandboxKey}`);
      // Left, not deleted, and joined again: the old macvlan may be back on the host.
      this.#deleteLinkIfPresent(p.link, `join ${eid}`);
      this.#del(jkey);
    }
    if (net.mode === 'passthru') {
      const other = this.#host.store.entries(`join/${nid}/`).find(([k, v]) => k !== jkey && !this.#joinRecord(k, v, k.slice(`join/${nid}/`.length)).left);
      if (other) {
        throw fail('forbidden', `network ${nid} is in passthru mode: parent ${net.parent} already serves endpoint ${other[0].slice(`join/${nid}/`.length)}, and passthru allows one`);
      }
    }
    const { netlink } = this.#host;
    let created = false;
    try {
      try {
        const spec: NetlinkIface.MacvlanSpec = { name: link, parent: net.parent, mode: net.mode, mac: ep.mac };
        if (net.mtu !== undefined) spec.mtu = net.mtu;
        netlink.createMacvlan(spec);
      } catch (e) {
        if (isErrno(e, EEXIST, 'EEXIST')) {
          throw fail('forbidden', `cannot create macvlan ${link}: a link with that name already exists (endpoint already joined?)`);
        }
        if (isDenied(e)) {
          throw fail('forbidden', `cannot create macvlan ${link} on ${net.parent}: ${describeError(e)} (was the parent's grant withdrawn?)`);
        }
        if (isErrno(e, ENODEV, 'ENODEV')) {
          throw fail('not-found', `cannot create macvlan ${link}: parent ${net.parent} no longer exists: ${describeError(e)}`);
        }
        throw fail(toDriverError(e).kind, `cannot create macvlan ${link} (${net.mode}) on ${net.parent}: ${describeError(e)}`);
      }
      created = true;
      this.#step('cannot set the interface names', () => {
        const names = joinInfo.interfaceName();
        try {
          names.setNames(link, 'eth', '');
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
      const record: JoinRecord = { link, sandboxKey };
      this.#put(jkey, record);
    } catch (e) {
      if (created) this.#rollbackLink(link, `join ${eid}`);
      throw e;
    }
    this.#log('info', `endpoint ${eid} joined sandbox ${sandboxKey}: macvlan ${link} (${net.mode}) on ${net.parent} goes in as eth*`);
  }

  leave(nid: string, eid: string): void {
    const key = `join/${nid}/${eid}`;
    const v = this.#host.store.get(key);
    if (v === undefined) {
      this.#log('debug', `leave ${eid}: not joined, nothing to do`);
      return;
    }
    const j = this.#joinRecord(key, v, eid);
    if (j.left) {
      this.#log('debug', `leave ${eid}: already left`);
      return;
    }
    // dockerd calls Leave before it moves the macvlan back out of the
    // container: out of the driver's sight it is still in the sandbox, and
    // delete-endpoint deletes it once it is back.
    if (this.#deleteLinkIfPresent(j.link, `leave ${eid}`)) {
      this.#del(key);
      this.#log('info', `endpoint ${eid} left sandbox ${j.sandboxKey}: macvlan ${j.link} deleted`);
      return;
    }
    const record: JoinRecord = { ...j, left: true };
    this.#put(key, record);
    this.#log('info', `endpoint ${eid} left sandbox ${j.sandboxKey}: macvlan ${j.link} is not in the host namespace; deleted when dockerd returns it (delete-endpoint)`);
  }

  // --- helpers -------------------------------------------------------------

  /** The parent link, which must exist and be granted to the driver. */
  #parentLink(name: string): Link {
    let l: Link | undefined;
    try {
      l = this.#host.netlink.getLink(name);
    } catch (e) {
      if (isDenied(e)) {
        throw fail(
          'forbidden',
          `parent ${name} is not granted to ${DRIVER_NAME}: the operator lists the host links it may use in its manifest ` +
            `(capabilities.netlink.parents) and installs it again with \`wasmnet install --manifest <file>\` (${describeError(e)})`,
        );
      }
      throw fail(toDriverError(e).kind, `cannot look up parent ${name}: ${describeError(e)}`);
    }
    if (l === undefined) throw fail('not-found', `parent ${name} does not exist on the host`);
    return l;
  }

  /** The parent's MAC, normalised; a parent without one cannot serve a passthru endpoint. */
  #parentMac(name: string): string {
    const l = this.#parentLink(name);
    const mac = normalizeMac(l.mac);
    if (mac === null) throw fail('invalid-parameter', `parent ${name} has no Ethernet MAC address ("${l.mac}"), which passthru mode needs`);
    return mac;
  }

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
   * a damaged record is logged and replaced by the name join derives from the eid.
   */
  #joinRecord(key: string, value: string, eid: string): JoinRecord {
    try {
      return this.#parse<JoinRecord>(key, value, isJoinRecord);
    } catch (e) {
      const fallback: JoinRecord = { link: macvlanName(eid), sandboxKey: '?' };
      this.#log('error', `${describeError(e)}; assuming ${fallback.link}`);
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

  /**
   * Deletes one of the driver's macvlans if it is in the host namespace;
   * returns whether it deleted it. Gone (or inside a container, out of the
   * driver's sight) is fine. A name the host no longer counts as the
   * driver's is not the driver's to delete: logged, not an error.
   */
  #deleteLinkIfPresent(name: string, context: string): boolean {
    const { netlink } = this.#host;
    try {
      if (netlink.getLink(name) === undefined) return false;
      netlink.deleteLink(name);
      return true;
    } catch (e) {
      if (isErrno(e, ENODEV, 'ENODEV')) return false;
      if (isDenied(e)) {
        this.#log('warn', `${context}: link ${name} is no longer the driver's to delete, leaving it: ${describeError(e)}`);
        return false;
      }
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
