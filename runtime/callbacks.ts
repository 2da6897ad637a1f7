// The host side of `wasmnet:driver/callbacks`: the objects libnetwork hands a
// driver (NetworkInfo, InterfaceInfo, InterfaceNameInfo, JoinInfo). A driver
// gets borrows of them for one call; every value it sets is validated here,
// since the driver is not trusted, and what it set is read back by the host
// to build dockerd's response.
import { type Addr, parseCidr as parseStrictCidr, parseIp as parseStrictIp } from './addresses.ts';
import type { IpamData, ObjectType, RouteType } from './contract.ts';
import { DriverCallError } from './contract.ts';

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

  tableEventRegister(tableName: string, _objectType: ObjectType): void {
    throw new DriverCallError('not-implemented', `table-event-register(${JSON.stringify(tableName)}): driver tables need a global-scope (multi-host) setup`);
  }

  updateIpamConfig(ipv4Data: IpamData[]): void {
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
  }

  setMacAddress(mac: string): void {
    if (typeof mac !== 'string' || !MAC.test(mac.toLowerCase())) invalid(`set-mac-address: ${JSON.stringify(mac)} is not a MAC address`);
    if (this.given.macAddress !== '' || this.set.macAddress !== undefined) {
      throw new DriverCallError('forbidden', 'set-mac-address: the endpoint already has a MAC address');
    }
    this.set.macAddress = mac.toLowerCase();
  }

  setIpAddress(cidr: string): void {
    const [ip, len] = parseCidr(cidr, 'set-ip-address');
    const slot = ip.kind() === 'ipv4' ? 'address' : 'addressIpv6';
    if (this.given[slot] !== '' || this.set[slot] !== undefined) {
      throw new DriverCallError('forbidden', `set-ip-address: the endpoint already has an ${ip.kind() === 'ipv4' ? 'IPv4' : 'IPv6'} address`);
    }
    this.set[slot] = `${ip.toString()}/${len}`;
  }

  macAddress(): string | undefined {
    return this.set.macAddress ?? (this.given.macAddress || undefined);
  }

  address(): string | undefined {
    return this.set.address ?? (this.given.address || undefined);
  }

  addressIpv6(): string | undefined {
    return this.set.addressIpv6 ?? (this.given.addressIpv6 || undefined);
  }

  netnsPath(): string {
    return this.netns;
  }

  setCreatedInContainer(created: boolean): void {
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
  }

  setNames(srcName: string, dstPrefix: string, dstName: string): void {
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

  interfaceName(): InterfaceNameInfo {
    return new InterfaceNameInfo(this);
  }

  setGateway(ip: string): void {
    this.gateway = parseIp(ip, 'ipv4', 'set-gateway');
  }

  setGatewayIpv6(ip: string): void {
    this.gatewayIpv6 = parseIp(ip, 'ipv6', 'set-gateway-ipv6');
  }

  addStaticRoute(destination: string, routeType: RouteType, nextHop: string): void {
    const [ip, len] = parseCidr(destination, 'add-static-route');
    if (routeType !== 'next-hop' && routeType !== 'connected') invalid('add-static-route: unknown route type');
    let hop = '';
    if (routeType === 'next-hop') hop = parseIp(nextHop, ip.kind(), 'add-static-route next hop');
    if (this.staticRoutes.length >= JoinInfo.maxRoutes) invalid(`add-static-route: at most ${JoinInfo.maxRoutes} routes`);
    this.staticRoutes.push({ destination: `${ip.toString()}/${len}`, routeType, nextHop: hop });
  }

  disableGatewayService(): void {
    this.gatewayServiceDisabled = true;
  }

  addTableEntry(tableName: string, _key: string, _value: Uint8Array): void {
    throw new DriverCallError('not-implemented', `add-table-entry(${JSON.stringify(tableName)}): driver tables need a global-scope (multi-host) setup`);
  }
}

/** The `wasmnet:driver/callbacks` import: the resource classes. */
export const callbacksImport = { NetworkInfo, InterfaceInfo, InterfaceNameInfo, JoinInfo };
