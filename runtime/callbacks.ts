// The host side of `wasmnet:driver/callbacks`: the objects libnetwork hands a
// driver (NetworkInfo, InterfaceInfo, InterfaceNameInfo, JoinInfo). A driver
// gets borrows of them for one call; every value it sets is validated here,
// since the driver is not trusted, and what it set is read back by the host
// to build dockerd's response.
import { type Addr, parseCidr as parseStrictCidr, parseIp as parseStrictIp } from './addresses.ts';
import type { IpamData, ObjectType, RouteType } from './contract.ts';
import { DriverCallError } from './contract.ts';

/**
 * The callback objects that are valid now: made by the host for the call in
 * progress. A handle the driver kept from an earlier call, or one the glue
 * made up for a forged index, is not among them, and using it traps the
 * driver (a plain error, not a driver-error).
 */
const live = new WeakSet<object>();

function alive(o: object): void {
  if (!live.has(o)) throw new Error('wasmnet: a callback handle that is not valid in this call was used');
}

/** Ends the validity of a callback object (and of what it handed out) when its call returns. */
export function retire(o: object): void {
  live.delete(o);
  if (o instanceof JoinInfo) for (const n of o.issued) live.delete(n);
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;
/** Linux interface names: 1..15 bytes, no '/', ':' or whitespace. */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function invalid(message: string): never {
  throw new DriverCallError('invalid-parameter', message);
}

export function parseCidr(text: string, what: string): [Addr, number] {
  return parseStrictCidr(text) ?? invalid(`${what}: ${JSON.stringify(typeof text === 'string' ? text.slice(0, 64) : text)} is not a CIDR such as 10.0.0.2/24`);
}

function parseIp(text: string, kind: 'ipv4' | 'ipv6', what: string): string {
  const ip = parseStrictIp(text) ?? invalid(`${what}: ${JSON.stringify(typeof text === 'string' ? text.slice(0, 64) : text)} is not an IP address`);
  if (ip.kind() !== kind) invalid(`${what}: ${text} is not an ${kind === 'ipv4' ? 'IPv4' : 'IPv6'} address`);
  return ip.toString();
}

/** `driverapi.NetworkInfo`. The remote protocol cannot carry table registrations or IPAM updates back to dockerd. */
export class NetworkInfo {
  /** IPAM updates a driver asked for (logged by the host; dockerd has no way to receive them). */
  readonly ipamUpdates: IpamData[][] = [];

  constructor() {
    live.add(this);
  }

  tableEventRegister(tableName: string, _objectType: ObjectType): void {
    alive(this);
    throw new DriverCallError('not-implemented', `table-event-register(${JSON.stringify(tableName)}): driver tables need a global-scope (multi-host) setup`);
  }

  updateIpamConfig(ipv4Data: IpamData[]): void {
    alive(this);
    this.ipamUpdates.push(ipv4Data);
  }
}

/** The endpoint interface as dockerd sent it: "" where not yet allocated. */
export interface EndpointInterface {
  address: string;
  addressIpv6: string;
  macAddress: string;
}

/** `driverapi.InterfaceInfo`: a driver may fill in only what dockerd left empty. */
export class InterfaceInfo {
  private readonly given: EndpointInterface;
  private readonly netns: string;
  /** What the driver set, to be returned to dockerd. */
  readonly set: Partial<EndpointInterface> = {};
  createdInContainer = false;

  constructor(given: EndpointInterface, netnsPath = '') {
    this.given = given;
    this.netns = netnsPath;
    live.add(this);
  }

  setMacAddress(mac: string): void {
    alive(this);
    if (typeof mac !== 'string' || !MAC.test(mac.toLowerCase())) invalid(`set-mac-address: ${JSON.stringify(mac)} is not a MAC address`);
    if (this.given.macAddress !== '' || this.set.macAddress !== undefined) {
      throw new DriverCallError('forbidden', 'set-mac-address: the endpoint already has a MAC address');
    }
    this.set.macAddress = mac.toLowerCase();
  }

  setIpAddress(cidr: string): void {
    alive(this);
    const [ip, len] = parseCidr(cidr, 'set-ip-address');
    const slot = ip.kind() === 'ipv4' ? 'address' : 'addressIpv6';
    if (this.given[slot] !== '' || this.set[slot] !== undefined) {
      throw new DriverCallError('forbidden', `set-ip-address: the endpoint already has an ${ip.kind() === 'ipv4' ? 'IPv4' : 'IPv6'} address`);
    }
    this.set[slot] = `${ip.toString()}/${len}`;
  }

  macAddress(): string | undefined {
    alive(this);
    return this.set.macAddress ?? (this.given.macAddress || undefined);
  }

  address(): string | undefined {
    alive(this);
    return this.set.address ?? (this.given.address || undefined);
  }

  addressIpv6(): string | undefined {
    alive(this);
    return this.set.addressIpv6 ?? (this.given.addressIpv6 || undefined);
  }

  netnsPath(): string {
    alive(this);
    return this.netns;
  }

  setCreatedInContainer(created: boolean): void {
    alive(this);
    this.createdInContainer = created === true;
  }
}

export interface InterfaceNames {
  srcName: string;
  dstPrefix: string;
  dstName: string;
}

/** `driverapi.InterfaceNameInfo`, handed out by JoinInfo.interface-name. */
export class InterfaceNameInfo {
  private readonly join: JoinInfo;
  constructor(join: JoinInfo) {
    this.join = join;
    live.add(this);
  }

  setNames(srcName: string, dstPrefix: string, dstName: string): void {
    alive(this);
    if (typeof srcName !== 'string' || !IFNAME.test(srcName)) invalid(`set-names: source name ${JSON.stringify(srcName)} is not an interface name`);
    if (typeof dstPrefix !== 'string' || (dstPrefix !== '' && !/^[A-Za-z0-9_.-]{1,12}$/.test(dstPrefix))) invalid(`set-names: destination prefix ${JSON.stringify(dstPrefix)} is not a valid prefix (1 to 12 characters)`);
    if (typeof dstName !== 'string' || (dstName !== '' && !IFNAME.test(dstName))) invalid(`set-names: destination name ${JSON.stringify(dstName)} is not an interface name`);
    if (dstPrefix === '' && dstName === '') invalid('set-names: give a destination prefix or name');
    this.join.names = { srcName, dstPrefix, dstName };
  }
}

export interface StaticRoute {
  destination: string;
  routeType: RouteType;
  nextHop: string;
}

/** `driverapi.JoinInfo`: what the driver sets becomes dockerd's Join response. */
export class JoinInfo {
  names: InterfaceNames | undefined;
  gateway: string | undefined;
  gatewayIpv6: string | undefined;
  readonly staticRoutes: StaticRoute[] = [];
  gatewayServiceDisabled = false;
  static readonly maxRoutes = 256;

  /** The interface-name objects handed out, retired with this one. */
  readonly issued: InterfaceNameInfo[] = [];

  constructor() {
    live.add(this);
  }

  interfaceName(): InterfaceNameInfo {
    alive(this);
    if (this.issued.length >= 16) invalid('interface-name: asked too often');
    const n = new InterfaceNameInfo(this);
    this.issued.push(n);
    return n;
  }

  setGateway(ip: string): void {
    alive(this);
    this.gateway = parseIp(ip, 'ipv4', 'set-gateway');
  }

  setGatewayIpv6(ip: string): void {
    alive(this);
    this.gatewayIpv6 = parseIp(ip, 'ipv6', 'set-gateway-ipv6');
  }

  addStaticRoute(destination: string, routeType: RouteType, nextHop: string): void {
    alive(this);
    const [ip, len] = parseCidr(destination, 'add-static-route');
    if (routeType !== 'next-hop' && routeType !== 'connected') invalid('add-static-route: unknown route type');
    let hop = '';
    if (routeType === 'next-hop') hop = parseIp(nextHop, ip.kind(), 'add-static-route next hop');
    if (this.staticRoutes.length >= JoinInfo.maxRoutes) invalid(`add-static-route: at most ${JoinInfo.maxRoutes} routes`);
    this.staticRoutes.push({ destination: `${ip.toString()}/${len}`, routeType, nextHop: hop });
  }

  disableGatewayService(): void {
    alive(this);
    this.gatewayServiceDisabled = true;
  }

  addTableEntry(tableName: string, _key: string, _value: Uint8Array): void {
    alive(this);
    throw new DriverCallError('not-implemented', `add-table-entry(${JSON.stringify(tableName)}): driver tables need a global-scope (multi-host) setup`);
  }
}

/** The `wasmnet:driver/callbacks` import: the resource classes. */
export const callbacksImport = { NetworkInfo, InterfaceInfo, InterfaceNameInfo, JoinInfo };
