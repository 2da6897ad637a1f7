// Request bodies of Docker's remote network-driver protocol, as dockerd sends
// them (Go struct names, no JSON tags: PascalCase). These valibot schemas are
// the single source of the request types: everything else infers from them.
// Reference: daemon/libnetwork/drivers/remote/api/api.go.
import * as v from 'valibot';
import { parseCidr } from '../../runtime/addresses.ts';

/** Network and endpoint IDs: dockerd sends 64 hex digits; accept any short alphanumeric ID. */
export const Id = v.pipe(v.string(), v.regex(/^[0-9A-Za-z]{1,64}$/, 'must be 1 to 64 letters or digits'));

/** `addr/len`, IPv4 or IPv6, in the forms Go prints. */
export const Cidr = v.pipe(
  v.string(),
  v.check((s) => parseCidr(s) !== undefined, 'must be a CIDR such as 10.0.0.1/24'),
);

/** valibot's v.object() and record() also take a JSON list; where every field is optional, that must be refused. */
const NOT_LIST = 'must be a JSON object, not a list';
/** `schema`, for a value that must not be a list (checked before the schema reads it). */
const plain = <S extends v.GenericSchema>(schema: S) => v.pipe(v.unknown(), v.check((x) => !Array.isArray(x), NOT_LIST), schema);

const CidrOrEmpty = v.union([v.literal(''), Cidr]);
const Mac = v.pipe(v.string(), v.regex(/^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/, 'must be a MAC address such as 02:42:0a:00:00:02'));
const MacOrEmpty = v.union([v.literal(''), Mac]);

/** `map[string]interface{}`: any JSON object; null and absent mean empty. */
export const Options = v.optional(v.nullable(plain(v.record(v.string(), v.unknown()))), {});
const StringMap = v.optional(v.nullable(plain(v.record(v.string(), v.string()))), {});

/** driverapi.IPAMData as marshalled by dockerd: Pool, Gateway and AuxAddresses are CIDRs, omitted when nil. */
export const IpamData = plain(
  v.object({
    AddressSpace: v.optional(v.string(), ''),
    Pool: v.optional(Cidr),
    Gateway: v.optional(Cidr),
    AuxAddresses: v.optional(v.nullable(plain(v.record(v.string(), Cidr))), {}),
  }),
);
const IpamList = v.optional(v.nullable(v.array(IpamData)), []);

const NetworkRef = { NetworkID: Id };
const EndpointRef = { NetworkID: Id, EndpointID: Id };

export const requests = {
  GwAllocCheck: plain(v.object({ Options })),
  CreateNetwork: v.object({ ...NetworkRef, Options, IPv4Data: IpamList, IPv6Data: IpamList }),
  DeleteNetwork: v.object(NetworkRef),
  CreateEndpoint: v.object({
    ...EndpointRef,
    Interface: v.optional(
      v.nullable(
        plain(
          v.object({
            Address: v.optional(CidrOrEmpty, ''),
            AddressIPv6: v.optional(CidrOrEmpty, ''),
            MacAddress: v.optional(MacOrEmpty, ''),
          }),
        ),
      ),
      { Address: '', AddressIPv6: '', MacAddress: '' },
    ),
    Options,
  }),
  EndpointOperInfo: v.object(EndpointRef),
  DeleteEndpoint: v.object(EndpointRef),
  Join: v.object({ ...EndpointRef, SandboxKey: v.pipe(v.string(), v.maxLength(4096)), Options }),
  Leave: v.object(EndpointRef),
  ProgramExternalConnectivity: v.object({ ...EndpointRef, Options }),
  RevokeExternalConnectivity: v.object(EndpointRef),
  DiscoverNew: v.object({ DiscoveryType: v.pipe(v.number(), v.integer()), DiscoveryData: v.unknown() }),
  DiscoverDelete: v.object({ DiscoveryType: v.pipe(v.number(), v.integer()), DiscoveryData: v.unknown() }),
  AllocateNetwork: v.object({ ...NetworkRef, Options: StringMap, IPv4Data: IpamList, IPv6Data: IpamList }),
  FreeNetwork: v.object(NetworkRef),
};

export type Method = keyof typeof requests;
export type Request<M extends Method> = v.InferOutput<(typeof requests)[M]>;
export type IpamDataJson = v.InferOutput<typeof IpamData>;

export const methods = Object.keys(requests) as Method[];

/** Validates `body` as the request of `method`; throws ProtocolError with every issue. */
export function parseRequest<M extends Method>(method: M, body: unknown): Request<M> {
  const result = v.safeParse(requests[method], body);
  if (!result.success) {
    const issues = result.issues.map((i) => {
      const path = v.getDotPath(i);
      return path ? `${path}: ${i.message}` : i.message;
    });
    throw new ProtocolError(`invalid ${method} request: ${issues.join('; ')}`);
  }
  return result.output as Request<M>;
}

/** A request dockerd (or anyone on the socket) got wrong. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}
