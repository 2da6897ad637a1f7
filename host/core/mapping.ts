// Between dockerd's JSON and the contract's values: options maps become lists
// of (key, JSON text) so that nested values survive the trip unchanged;
// IPAMData becomes ipam-data; what the driver set through the callbacks
// becomes the response fields dockerd reads.
import type { IpamData, Options, StringMap } from '../../runtime/contract.ts';
import type { JoinResult } from '../../runtime/driver-host.ts';
import type { EndpointInterface } from '../../runtime/callbacks.ts';
import type { IpamDataJson } from './schemas.ts';

export function toOptions(obj: Record<string, unknown> | null | undefined): Options {
  return Object.entries(obj ?? {}).map(([key, value]) => ({ key, value: JSON.stringify(value ?? null) }));
}

export function fromOptions(options: Options): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of options) out[key] = JSON.parse(value);
  return out;
}

export function toStringMap(obj: Record<string, string> | null | undefined): StringMap {
  return Object.entries(obj ?? {});
}

export function fromStringMap(map: StringMap): Record<string, string> {
  return Object.fromEntries(map);
}

export function toIpamData(list: IpamDataJson[] | null | undefined): IpamData[] {
  return (list ?? []).map((d) => ({
    addressSpace: d.AddressSpace,
    pool: d.Pool,
    gateway: d.Gateway,
    auxAddresses: Object.entries(d.AuxAddresses ?? {}),
  }));
}

/** CreateEndpoint response: only the fields the driver set; no Interface when it set none. */
export function createEndpointResponse(set: Partial<EndpointInterface>): { Interface?: { Address: string; AddressIPv6: string; MacAddress: string } } {
  if (set.address === undefined && set.addressIpv6 === undefined && set.macAddress === undefined) return {};
  return { Interface: { Address: set.address ?? '', AddressIPv6: set.addressIpv6 ?? '', MacAddress: set.macAddress ?? '' } };
}

export function joinResponse(r: JoinResult): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.names) out.InterfaceName = { SrcName: r.names.srcName, DstPrefix: r.names.dstPrefix, DstName: r.names.dstName };
  if (r.gateway) out.Gateway = r.gateway;
  if (r.gatewayIpv6) out.GatewayIPv6 = r.gatewayIpv6;
  if (r.staticRoutes.length > 0) {
    out.StaticRoutes = r.staticRoutes.map((s) => ({ Destination: s.destination, RouteType: s.routeType === 'next-hop' ? 0 : 1, NextHop: s.nextHop }));
  }
  if (r.disableGatewayService) out.DisableGatewayService = true;
  return out;
}
