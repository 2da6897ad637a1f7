// The small interface the rest of wasmnet uses for netlink. The capability
// broker (runtime/broker/netlink.ts) checks policy and then calls a backend;
// the real one speaks rtnetlink over an AF_NETLINK socket (rtnetlink.ts).
// All calls are synchronous: one request, one acknowledgement.

export type LinkKind = 'bridge' | 'veth' | 'dummy' | 'other';

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
  kind: 'bridge' | 'veth' | 'dummy';
  mtu?: number;
  mac?: string;
  /** For veth: the other end. */
  peer?: { name: string; mtu?: number; mac?: string };
}

export interface NetlinkBackend {
  createLink(req: CreateLinkRequest): LinkInfo;
  getLink(name: string): LinkInfo | undefined;
  listLinks(): LinkInfo[];
  setLinkUp(name: string, up: boolean): void;
  setLinkMtu(name: string, mtu: number): void;
  /** Enslaves `name` to the bridge `master`, or frees it with null. */
  setLinkMaster(name: string, master: string | null): void;
  deleteLink(name: string): void;
  /** `cidr` is `addr/len`, IPv4 or IPv6. */
  addAddress(link: string, cidr: string): void;
  deleteAddress(link: string, cidr: string): void;
  /** The link's addresses as CIDRs (IPv4 first, then IPv6; link-local IPv6 included). */
  listAddresses(link: string): string[];
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
