// The small interface the rest of wasmnet uses for netlink. The capability
// broker (runtime/broker/netlink.ts) checks policy and then calls a backend;
// the real one speaks rtnetlink over an AF_NETLINK socket (rtnetlink.ts).
// All calls are synchronous: one request, one acknowledgement.

export type LinkKind = 'bridge' | 'veth' | 'dummy' | 'vxlan' | 'macvlan' | 'ipvlan' | 'other';
export type CreatableKind = Exclude<LinkKind, 'other'>;

export interface LinkInfo {
  index: number;
  name: string;
  kind: LinkKind;
  mtu: number;
  /** MAC address as `aa:bb:cc:dd:ee:ff`, or "" when the link has none. */
  mac: string;
  /** Administrative state (IFF_UP). */
  up: boolean;
  /** Name of the master (bridge) link, when enslaved. */
  master?: string;
}

export interface CreateLinkRequest {
  name: string;
  kind: CreatableKind;
  mtu?: number;
  mac?: string;
  /** For veth: the other end. */
  peer?: { name: string; mtu?: number; mac?: string };
  /** For vxlan. `underlay` is a link name; `local`/`group` are IPs; port defaults to the kernel's. */
  vxlan?: { vni: number; local?: string; group?: string; port?: number; underlay?: string; learning: boolean };
  /** For macvlan: the parent link (by name) and the mode. */
  macvlan?: { parent: string; mode: 'private' | 'vepa' | 'bridge' | 'passthru' };
  /** For ipvlan: the parent link (by name) and the mode. */
  ipvlan?: { parent: string; mode: 'l2' | 'l3' | 'l3s' };
}

/** A route in the main table. */
export interface RouteInfo {
  /** CIDR; `0.0.0.0/0` or `::/0` for a default route. */
  destination: string;
  gateway?: string;
  /** Output link name. */
  link?: string;
  metric?: number;
}

/** A permanent neighbour (ARP/NDP) entry. */
export interface NeighborInfo {
  link: string;
  ip: string;
  mac: string;
}

/** A bridge forwarding-database entry (AF_BRIDGE neighbour), e.g. on a vxlan link. */
export interface FdbEntry {
  link: string;
  mac: string;
  /** Remote tunnel endpoint IP (vxlan). */
  dst?: string;
  vni?: number;
}

export interface BridgePortSettings {
  hairpin?: boolean;
  isolated?: boolean;
  learning?: boolean;
}

export interface NetlinkBackend {
  createLink(req: CreateLinkRequest): LinkInfo;
  getLink(name: string): LinkInfo | undefined;
  /** Just the interface index of a link, or undefined if there is none (cheaper than getLink). */
  linkIndex(name: string): number | undefined;
  listLinks(): LinkInfo[];
  setLinkUp(name: string, up: boolean): void;
  setLinkMtu(name: string, mtu: number): void;
  /** Enslaves `name` to the bridge `master`, or frees it with null. */
  setLinkMaster(name: string, master: string | null): void;
  setLinkMac(name: string, mac: string): void;
  renameLink(name: string, newName: string): void;
  /** Moves the link into the network namespace whose file is `netnsPath` (e.g. a sandbox key). */
  moveLinkToNetns(name: string, netnsPath: string): void;
  deleteLink(name: string): void;
  /** Bridge-port flags of a link enslaved to a bridge. */
  setBridgePort(name: string, settings: BridgePortSettings): void;
  /** `cidr` is `addr/len`, IPv4 or IPv6. */
  addAddress(link: string, cidr: string): void;
  deleteAddress(link: string, cidr: string): void;
  /** The link's addresses as CIDRs (IPv4 first, then IPv6; link-local IPv6 included). */
  listAddresses(link: string): string[];
  addRoute(route: RouteInfo): void;
  deleteRoute(route: RouteInfo): void;
  /** Main-table routes whose output link is `link`. */
  listRoutes(link: string): RouteInfo[];
  addNeighbor(n: NeighborInfo): void;
  deleteNeighbor(n: NeighborInfo): void;
  listNeighbors(link: string): NeighborInfo[];
  addFdbEntry(e: FdbEntry): void;
  deleteFdbEntry(e: FdbEntry): void;
  listFdbEntries(link: string): FdbEntry[];
  close(): void;
}

/** A request the kernel refused: `errno` is positive (e.g. 17), `code` its name (e.g. "EEXIST"). */
export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(errno: number, code: string, message: string) {
    super(message);
    this.name = 'NetlinkError';
    this.errno = errno;
    this.code = code;
  }
}
