// The real NetlinkBackend: rtnetlink requests over an AF_NETLINK socket.
// Arguments are validated here, before anything is sent, so that bad input
// fails with a plain Error naming the argument, while refusals by the kernel
// come back as NetlinkError with the errno's name (EEXIST, ENODEV...).

import ipaddr from 'ipaddr.js';
import {
  NetlinkError,
  type BridgePortSettings,
  type CreatableKind,
  type CreateLinkRequest,
  type FdbEntry,
  type LinkInfo,
  type LinkKind,
  type NeighborInfo,
  type NetlinkBackend,
  type RouteInfo,
} from './backend.ts';
import {
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  IFA_ADDRESS,
  IFA_LOCAL,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  IFLA_LINK,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  IPVLAN_MODE_L2,
  IPVLAN_MODE_L3,
  IPVLAN_MODE_L3S,
  MACVLAN_MODE_BRIDGE,
  MACVLAN_MODE_PASSTHRU,
  MACVLAN_MODE_PRIVATE,
  MACVLAN_MODE_VEPA,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NTF_SELF,
  NUD_NOARP,
  NUD_PERMANENT,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETNEIGH,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTM_SETLINK,
  RTEXT_FILTER_SKIP_STATS,
  RTN_UNICAST,
  RTN_UNSPEC,
  RTPROT_STATIC,
  RTPROT_UNSPEC,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  bridgePortAttr,
  bytesAttr,
  decodeAddress,
  decodeLink,
  decodeNeighbor,
  decodeRoute,
  encodeIfAddrMsg,
  encodeIfInfoMsg,
  encodeNdMsg,
  encodeRtMsg,
  formatMac,
  ipvlanInfoData,
  linkInfoAttr,
  macvlanInfoData,
  neighAttrs,
  routeAttrs,
  strAttr,
  u32Attr,
  vethPeerAttr,
  vxlanInfoData,
  type Attr,
  type DecodedLink,
} from './codec.ts';
import { NetlinkSocket, withNetnsFd, type NetlinkSocketOptions } from './socket.ts';

const ENODEV = 19;

export type RtNetlinkOptions = NetlinkSocketOptions;

const CREATABLE_KINDS: readonly CreatableKind[] = ['bridge', 'veth', 'dummy', 'vxlan', 'macvlan', 'ipvlan'];

const MACVLAN_MODES: Record<string, number> = {
  private: MACVLAN_MODE_PRIVATE,
  vepa: MACVLAN_MODE_VEPA,
  bridge: MACVLAN_MODE_BRIDGE,
  passthru: MACVLAN_MODE_PASSTHRU,
};

const IPVLAN_MODES: Record<string, number> = { l2: IPVLAN_MODE_L2, l3: IPVLAN_MODE_L3, l3s: IPVLAN_MODE_L3S };

/** The largest VXLAN network identifier (24 bits). */
const VNI_MAX = 0xffffff;

export class RtNetlink implements NetlinkBackend {
  readonly #socket: NetlinkSocket;

  /** Opens the socket, in `options.netns` (a namespace file path) when given. */
  constructor(options: RtNetlinkOptions = {}) {
    this.#socket = new NetlinkSocket(options);
  }

  /**
   * Creates a link with NLM_F_EXCL. Everything in the request is validated
   * first; then the links it names (vxlan underlay, macvlan/ipvlan parent)
   * are looked up, failing as ENODEV when missing; then the link is created
   * and read back.
   */
  createLink(req: CreateLinkRequest): LinkInfo {
    if (typeof req !== 'object' || req === null) throw new Error('link request must be an object');
    const kind = req.kind as unknown;
    if (typeof kind !== 'string' || !(CREATABLE_KINDS as readonly string[]).includes(kind)) {
      throw new Error(`link kind must be one of ${CREATABLE_KINDS.join(', ')}, not ${JSON.stringify(kind)}`);
    }
    const attrs = endAttrs(req);
    const context = `create link ${req.name}`;
    if (req.peer !== undefined && req.kind !== 'veth') throw new Error(`${req.kind} ${req.name} cannot have a peer (only veth has one)`);
    for (const part of ['vxlan', 'macvlan', 'ipvlan'] as const) {
      if (req[part] !== undefined && req.kind !== part) {
        throw new Error(`${req.kind} ${req.name} cannot have ${part} settings (only a ${part} link has them)`);
      }
    }

    switch (req.kind) {
      case 'veth': {
        if (!req.peer) throw new Error(`veth ${req.name} needs a peer`);
        const peerAttrs = endAttrs(req.peer);
        if (req.peer.name === req.name) throw new Error(`veth ${req.name}: the peer needs a different name`);
        attrs.push(linkInfoAttr('veth', [vethPeerAttr(peerAttrs)]));
        break;
      }
      case 'vxlan': {
        const vxlan = checkVxlan(req.name, req.vxlan);
        const link = vxlan.underlay === undefined ? undefined : this.#indexOf(vxlan.underlay, `${context} (underlay ${vxlan.underlay})`);
        attrs.push(linkInfoAttr('vxlan', vxlanInfoData({ ...vxlan, link })));
        break;
      }
      case 'macvlan': {
        const { parent, mode } = checkParentAndMode('macvlan', req.name, req.macvlan, MACVLAN_MODES);
        attrs.push(u32Attr(IFLA_LINK, this.#indexOf(parent, `${context} (parent ${parent})`)));
        attrs.push(linkInfoAttr('macvlan', macvlanInfoData(mode)));
        break;
      }
      case 'ipvlan': {
        const { parent, mode } = checkParentAndMode('ipvlan', req.name, req.ipvlan, IPVLAN_MODES);
        attrs.push(u32Attr(IFLA_LINK, this.#indexOf(parent, `${context} (parent ${parent})`)));
        attrs.push(linkInfoAttr('ipvlan', ipvlanInfoData(mode)));
        break;
      }
      default:
        attrs.push(linkInfoAttr(req.kind));
    }
    this.#socket.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, encodeIfInfoMsg({}), attrs, context);
    const link = this.getLink(req.name);
    if (!link) throw new Error(`${context}: created, but it is gone when read back`);
    return link;
  }

  getLink(name: string): LinkInfo | undefined {
    checkName(name, 'link name');
    const link = this.#getLink([strAttr(IFLA_IFNAME, name)], `get link ${name}`);
    if (!link) return undefined;
    const master = link.masterIndex === undefined ? undefined : this.#nameOf(link.masterIndex);
    return toLinkInfo(link, master);
  }

  listLinks(): LinkInfo[] {
    const links = this.#socket.dump(RTM_GETLINK, encodeIfInfoMsg({}), 'list links').map((m) => decodeLink(m.payload));
    const names = new Map(links.map((l) => [l.index, l.name]));
    return links.map((l) => toLinkInfo(l, l.masterIndex === undefined ? undefined : names.get(l.masterIndex)));
  }

  setLinkUp(name: string, up: boolean): void {
    checkName(name, 'link name');
    checkBoolean(up, 'up');
    const header = encodeIfInfoMsg({ flags: up ? IFF_UP : 0, change: IFF_UP });
    this.#setLink(header, [strAttr(IFLA_IFNAME, name)], `set link ${name} ${up ? 'up' : 'down'}`);
  }

  setLinkMtu(name: string, mtu: number): void {
    checkName(name, 'link name');
    checkMtu(mtu);
    this.#setLink(encodeIfInfoMsg({}), [strAttr(IFLA_IFNAME, name), u32Attr(IFLA_MTU, mtu)], `set mtu of ${name} to ${mtu}`);
  }

  setLinkMaster(name: string, master: string | null): void {
    checkName(name, 'link name');
    if (master !== null) checkName(master, 'master name');
    const context = master === null ? `set ${name} nomaster` : `set master of ${name} to ${master}`;
    const masterIndex = master === null ? 0 : this.#indexOf(master, context);
    this.#setLink(encodeIfInfoMsg({}), [strAttr(IFLA_IFNAME, name), u32Attr(IFLA_MASTER, masterIndex)], context);
  }

  setLinkMac(name: string, mac: string): void {
    checkName(name, 'link name');
    const bytes = parseMac(mac);
    this.#setLink(encodeIfInfoMsg({}), [strAttr(IFLA_IFNAME, name), bytesAttr(IFLA_ADDRESS, bytes)], `set mac of ${name} to ${mac}`);
  }

  /**
   * Renames by index (IFLA_IFNAME then carries the new name); EEXIST when
   * the name is taken. Older kernels refuse to rename a link that is up
   * (EBUSY); this one (6.18) allows it.
   */
  renameLink(name: string, newName: string): void {
    checkName(name, 'link name');
    checkName(newName, 'new link name');
    const context = `rename link ${name} to ${newName}`;
    const index = this.#indexOf(name, context);
    this.#setLink(encodeIfInfoMsg({ index }), [strAttr(IFLA_IFNAME, newName)], context);
  }

  /**
   * Opens the namespace file, sends RTM_NEWLINK with IFLA_NET_NS_FD, and
   * closes the file. The link keeps its name; the kernel refuses (EEXIST)
   * when the target namespace already has a link of that name, and (EINVAL)
   * when the file is not a network namespace.
   */
  moveLinkToNetns(name: string, netnsPath: string): void {
    checkName(name, 'link name');
    checkNetnsPath(netnsPath);
    const context = `move link ${name} to network namespace ${netnsPath}`;
    withNetnsFd(netnsPath, context, (fd) => {
      this.#socket.request(RTM_NEWLINK, 0, encodeIfInfoMsg({}), [strAttr(IFLA_IFNAME, name), u32Attr(IFLA_NET_NS_FD, fd)], context);
    });
  }

  deleteLink(name: string): void {
    checkName(name, 'link name');
    this.#socket.request(RTM_DELLINK, 0, encodeIfInfoMsg({}), [strAttr(IFLA_IFNAME, name)], `delete link ${name}`);
  }

  /**
   * AF_BRIDGE RTM_SETLINK with IFLA_PROTINFO holding the given settings; the
   * kernel refuses (EOPNOTSUPP) when the link is not enslaved to a bridge.
   */
  setBridgePort(name: string, settings: BridgePortSettings): void {
    checkName(name, 'link name');
    if (typeof settings !== 'object' || settings === null) throw new Error('bridge-port settings must be an object');
    const { hairpin, isolated, learning } = settings;
    for (const [what, value] of [['hairpin', hairpin], ['isolated', isolated], ['learning', learning]] as const) {
      if (value !== undefined) checkBoolean(value, what);
    }
    const context = `set bridge port ${name}`;
    const index = this.#indexOf(name, context);
    const header = encodeIfInfoMsg({ family: AF_BRIDGE, index });
    this.#setLink(header, [bridgePortAttr({ hairpin, isolated, learning })], context);
  }

  addAddress(link: string, cidr: string): void {
    this.#changeAddress(RTM_NEWADDR, link, cidr, `add address ${cidr} to ${link}`);
  }

  deleteAddress(link: string, cidr: string): void {
    this.#changeAddress(RTM_DELADDR, link, cidr, `delete address ${cidr} from ${link}`);
  }

  listAddresses(link: string): string[] {
    checkName(link, 'link name');
    const context = `list addresses of ${link}`;
    const index = this.#indexOf(link, context);
    const addresses = this.#socket
      .dump(RTM_GETADDR, encodeIfAddrMsg({ family: AF_UNSPEC, prefixlen: 0, index: 0 }), context)
      .map((m) => decodeAddress(m.payload))
      .filter((a) => a.index === index && (a.family === AF_INET || a.family === AF_INET6));
    return ipv4First(addresses).map((a) => `${formatIp(a.address)}/${a.prefixlen}`);
  }

  /**
   * Adds a unicast route to the main table (NLM_F_EXCL), protocol static,
   * scope universe with a gateway and link without one.
   */
  addRoute(route: RouteInfo): void {
    const r = checkRoute(route);
    const context = `add route ${describeRoute(r)}`;
    const oif = r.link === undefined ? undefined : this.#indexOf(r.link, context);
    const header = encodeRtMsg({
      family: r.family,
      dstLen: r.dstLen,
      table: RT_TABLE_MAIN,
      protocol: RTPROT_STATIC,
      scope: r.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
      type: RTN_UNICAST,
    });
    const attrs = routeAttrs({ dst: r.dstLen > 0 ? r.dst : undefined, gateway: r.gateway, oif, priority: r.metric });
    this.#socket.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, header, attrs, context);
  }

  /**
   * Deletes the main-table route to `destination` that matches the gateway,
   * link and metric given (any protocol and scope, as `ip route del` does);
   * ESRCH when there is none.
   */
  deleteRoute(route: RouteInfo): void {
    const r = checkRoute(route);
    const context = `delete route ${describeRoute(r)}`;
    const oif = r.link === undefined ? undefined : this.#indexOf(r.link, context);
    const header = encodeRtMsg({
      family: r.family,
      dstLen: r.dstLen,
      table: RT_TABLE_MAIN,
      protocol: RTPROT_UNSPEC,
      scope: RT_SCOPE_NOWHERE,
      type: RTN_UNSPEC,
    });
    const attrs = routeAttrs({ dst: r.dstLen > 0 ? r.dst : undefined, gateway: r.gateway, oif, priority: r.metric });
    this.#socket.request(RTM_DELROUTE, 0, header, attrs, context);
  }

  /**
   * Unicast routes of the main table whose output link is `link`, the
   * kernel's own prefix routes included; IPv4 first, then IPv6. Multipath
   * routes (no single RTA_OIF) are not reported.
   */
  listRoutes(link: string): RouteInfo[] {
    checkName(link, 'link name');
    const context = `list routes of ${link}`;
    const index = this.#indexOf(link, context);
    const header = encodeRtMsg({ family: AF_UNSPEC, dstLen: 0, table: 0, protocol: 0, scope: 0, type: 0 });
    const routes = this.#socket
      .dump(RTM_GETROUTE, header, context)
      .map((m) => decodeRoute(m.payload))
      .filter(
        (r) =>
          (r.family === AF_INET || r.family === AF_INET6) &&
          r.table === RT_TABLE_MAIN &&
          r.type === RTN_UNICAST &&
          r.oif === index,
      );
    return ipv4First(routes).map((r) => {
      const dst = r.dst ?? new Uint8Array(r.family === AF_INET ? 4 : 16);
      const info: RouteInfo = { destination: `${formatIp(dst)}/${r.dstLen}`, link };
      if (r.gateway) info.gateway = formatIp(r.gateway);
      if (r.priority !== undefined) info.metric = r.priority;
      return info;
    });
  }

  /** Adds a permanent ARP/NDP entry (NLM_F_EXCL: EEXIST when the link already has an entry for that IP). */
  addNeighbor(n: NeighborInfo): void {
    const { link, family, ip, mac } = checkNeighbor(n);
    const context = `add neighbour ${n.ip} lladdr ${n.mac} on ${link}`;
    const index = this.#indexOf(link, context);
    const header = encodeNdMsg({ family, index, state: NUD_PERMANENT });
    this.#socket.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, header, neighAttrs({ dst: ip, lladdr: mac }), context);
  }

  /** Deletes the link's entry for the IP (whatever its MAC, which is validated but not matched). */
  deleteNeighbor(n: NeighborInfo): void {
    const { link, family, ip } = checkNeighbor(n);
    const context = `delete neighbour ${n.ip} on ${link}`;
    const index = this.#indexOf(link, context);
    this.#socket.request(RTM_DELNEIGH, 0, encodeNdMsg({ family, index }), neighAttrs({ dst: ip }), context);
  }

  /**
   * The link's ARP/NDP entries that have a MAC, IPv4 first. Like `ip neigh
   * show`, NOARP entries (the kernel's own multicast mappings such as
   * ff02::16) are left out.
   */
  listNeighbors(link: string): NeighborInfo[] {
    checkName(link, 'link name');
    const context = `list neighbours of ${link}`;
    const index = this.#indexOf(link, context);
    const entries = this.#socket
      .dump(RTM_GETNEIGH, encodeNdMsg({ family: AF_UNSPEC, index: 0 }), context)
      .map((m) => decodeNeighbor(m.payload))
      .filter(
        (e) =>
          (e.family === AF_INET || e.family === AF_INET6) &&
          e.index === index &&
          e.dst !== undefined &&
          (e.lladdr?.length ?? 0) > 0 &&
          (e.state & NUD_NOARP) === 0,
      );
    return ipv4First(entries).map((e) => ({ link, ip: formatIp(e.dst!), mac: formatMac(e.lladdr!) }));
  }

  /**
   * Adds a permanent entry to the link's own forwarding database (NTF_SELF),
   * with `bridge fdb append` semantics: on a vxlan link one MAC (e.g. the
   * all-zero default) may have several remote endpoints, and adding an
   * existing entry again succeeds.
   */
  addFdbEntry(e: FdbEntry): void {
    const { link, mac, dst, vni } = checkFdbEntry(e);
    const context = `add fdb entry ${e.mac} on ${link}`;
    const index = this.#indexOf(link, context);
    const header = encodeNdMsg({ family: AF_BRIDGE, index, state: NUD_PERMANENT, flags: NTF_SELF });
    this.#socket.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, header, neighAttrs({ dst, lladdr: mac, vni }), context);
  }

  /** Deletes an NTF_SELF entry; on a vxlan link with `dst`, only that remote endpoint of the MAC. */
  deleteFdbEntry(e: FdbEntry): void {
    const { link, mac, dst, vni } = checkFdbEntry(e);
    const context = `delete fdb entry ${e.mac} on ${link}`;
    const index = this.#indexOf(link, context);
    const header = encodeNdMsg({ family: AF_BRIDGE, index, state: NUD_PERMANENT, flags: NTF_SELF });
    this.#socket.request(RTM_DELNEIGH, 0, header, neighAttrs({ dst, lladdr: mac, vni }), context);
  }

  /**
   * The link's own forwarding-database entries (NTF_SELF, as `bridge fdb
   * show dev LINK` marks "self"), one per remote endpoint on a vxlan link.
   * Entries the master bridge learned for the port are not included. `vni`
   * is reported only when it differs from the vxlan link's own VNI (as the
   * kernel reports it).
   */
  listFdbEntries(link: string): FdbEntry[] {
    checkName(link, 'link name');
    const context = `list fdb entries of ${link}`;
    const index = this.#indexOf(link, context);
    return this.#socket
      .dump(RTM_GETNEIGH, encodeNdMsg({ family: AF_BRIDGE, index: 0 }), context)
      .map((m) => decodeNeighbor(m.payload))
      .filter((e) => e.family === AF_BRIDGE && e.index === index && e.flags & NTF_SELF && e.lladdr?.length === 6)
      .map((e) => {
        const entry: FdbEntry = { link, mac: formatMac(e.lladdr!) };
        if (e.dst) entry.dst = formatIp(e.dst);
        if (e.vni !== undefined) entry.vni = e.vni;
        return entry;
      });
  }

  close(): void {
    this.#socket.close();
  }

  /** RTM_GETLINK for one link (its statistics left out); undefined when the kernel answers ENODEV. */
  #getLink(selector: Attr[], context: string): DecodedLink | undefined {
    try {
      const attrs = [...selector, u32Attr(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)];
      return decodeLink(this.#socket.get(RTM_GETLINK, encodeIfInfoMsg({}), attrs, context).payload);
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ENODEV) return undefined;
      throw err;
    }
  }

  /** The name the link with this index has now, if there is one. */
  #nameOf(index: number): string | undefined {
    return this.#socket.linkName(index, `get link #${index}`);
  }

  /**
   * The index of a link that must exist, looked up afresh for every
   * operation (never kept: links are renamed and moved behind our back); a
   * missing one fails as ENODEV under `context`.
   */
  linkIndex(name: string): number | undefined {
    try {
      return this.#indexOf(name, `look up ${name}`);
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENODEV') return undefined;
      throw e;
    }
  }

  #indexOf(name: string, context: string): number {
    return this.#socket.linkIndex(name, context);
  }

  #setLink(header: Uint8Array, attrs: Attr[], context: string): void {
    this.#socket.request(RTM_SETLINK, 0, header, attrs, context);
  }

  #changeAddress(type: number, link: string, cidr: string, context: string): void {
    checkName(link, 'link name');
    const { family, bytes, prefixlen } = parseCidr(cidr);
    const index = this.#indexOf(link, context);
    const header = encodeIfAddrMsg({ family, prefixlen, index });
    const attrs = [bytesAttr(IFA_LOCAL, bytes), bytesAttr(IFA_ADDRESS, bytes)];
    this.#socket.request(type, type === RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0, header, attrs, context);
  }
}

/** Sorts IPv4 before IPv6; sort is stable, so kernel order is kept within a family. */
function ipv4First<T extends { family: number }>(items: T[]): T[] {
  return items.sort((a, b) => (a.family === b.family ? 0 : a.family === AF_INET ? -1 : 1));
}

/** Formats 4 or 16 address bytes the way iproute2 does (IPv6 compressed). */
function formatIp(bytes: Uint8Array): string {
  return ipaddr.fromByteArray(Array.from(bytes)).toString();
}

function toLinkInfo(link: DecodedLink, master: string | undefined): LinkInfo {
  const kind: LinkKind = (CREATABLE_KINDS as readonly string[]).includes(link.kind ?? '') ? (link.kind as LinkKind) : 'other';
  const info: LinkInfo = { index: link.index, name: link.name, kind, mtu: link.mtu, mac: link.mac, up: (link.flags & IFF_UP) !== 0 };
  if (master !== undefined) info.master = master;
  return info;
}

/** Validates one end of a link to create and returns its IFLA_IFNAME/IFLA_MTU/IFLA_ADDRESS attributes. */
function endAttrs(end: { name: string; mtu?: number; mac?: string }): Attr[] {
  checkName(end.name, 'link name');
  const attrs = [strAttr(IFLA_IFNAME, end.name)];
  if (end.mtu !== undefined) {
    checkMtu(end.mtu);
    attrs.push(u32Attr(IFLA_MTU, end.mtu));
  }
  if (end.mac !== undefined) attrs.push(bytesAttr(IFLA_ADDRESS, parseMac(end.mac)));
  return attrs;
}

const IFNAMSIZ = 16;

/** The length of `s` in UTF-8, as TextEncoder encodes it (a lone surrogate becomes U+FFFD, 3 bytes). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4; // a surrogate pair
      i++;
    } else n += 3;
  }
  return n;
}

/** The kernel's rules for interface names (dev_valid_name): 1..15 bytes, no '/', ':' or whitespace, not "." or "..". */
function checkName(name: unknown, what: string): void {
  if (typeof name !== 'string') throw new Error(`${what} must be a string`);
  const bytes = utf8Length(name);
  if (bytes < 1 || bytes >= IFNAMSIZ) {
    throw new Error(`${what} ${JSON.stringify(name)} must be 1 to ${IFNAMSIZ - 1} bytes long`);
  }
  if (name === '.' || name === '..' || /[/:\s\0]/.test(name)) {
    throw new Error(`${what} ${JSON.stringify(name)} is invalid: no '/', ':', whitespace, "." or ".."`);
  }
}

/** 68 is the IPv4 minimum MTU; 65535 the largest that bridges and veths accept. */
function checkMtu(mtu: unknown): void {
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new Error(`mtu ${String(mtu)} must be an integer from 68 to 65535`);
  }
}

/** Parses `aa:bb:cc:dd:ee:ff` into 6 bytes. */
function parseMacSyntax(mac: unknown, what: string): Uint8Array {
  if (typeof mac !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) {
    throw new Error(`${what} ${JSON.stringify(mac)} must look like aa:bb:cc:dd:ee:ff`);
  }
  return Uint8Array.from(mac.split(':'), (h) => parseInt(h, 16));
}

/** Parses `aa:bb:cc:dd:ee:ff`, which must be a unicast, non-zero Ethernet address. */
function parseMac(mac: unknown, what = 'mac'): Uint8Array {
  const bytes = parseMacSyntax(mac, what);
  if (bytes[0]! & 1) throw new Error(`${what} ${String(mac)} is a multicast address; a unicast one is needed`);
  if (bytes.every((b) => b === 0)) throw new Error(`${what} ${String(mac)} is all zeros`);
  return bytes;
}

/** Parses a FDB entry's MAC: unicast, or all zeros (a vxlan link's default destination). */
function parseFdbMac(mac: unknown): Uint8Array {
  const bytes = parseMacSyntax(mac, 'fdb mac');
  if (bytes[0]! & 1) throw new Error(`fdb mac ${String(mac)} is a multicast address; entries need a unicast one or 00:00:00:00:00:00`);
  return bytes;
}

interface ParsedIp {
  family: number;
  bytes: Uint8Array;
  addr: ipaddr.IPv4 | ipaddr.IPv6;
}

/**
 * Parses dotted-quad IPv4 the way ipaddr.IPv4.isValidFourPartDecimal
 * accepts it: four decimal parts from 0 to 255, no leading zeros, nothing
 * else. Undefined when `s` is not one.
 */
function parseIpv4(s: string): Uint8Array | undefined {
  const bytes = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return undefined; // a leading zero
      value = value * 10 + (c - 0x30);
      if (value > 255) return undefined;
      digits++;
    } else if (c === 0x2e && digits > 0 && part < 3) {
      bytes[part++] = value;
      value = 0;
      digits = 0;
    } else {
      return undefined;
    }
  }
  if (part !== 3 || digits === 0) return undefined;
  bytes[3] = value;
  return bytes;
}

/** Parses an IP strictly to its family and bytes: dotted-quad IPv4 (no short or octal forms) or IPv6 without a zone; undefined when it is neither. */
function tryParseIpBytes(s: string): { family: number; bytes: Uint8Array } | undefined {
  const v4 = parseIpv4(s);
  if (v4) return { family: AF_INET, bytes: v4 };
  if (!s.includes('%') && ipaddr.IPv6.isValid(s)) {
    return { family: AF_INET6, bytes: Uint8Array.from(ipaddr.IPv6.parse(s).toByteArray()) };
  }
  return undefined;
}

/** As tryParseIpBytes, with the parsed address for range checks. */
function tryParseIp(s: string): ParsedIp | undefined {
  const parsed = tryParseIpBytes(s);
  return parsed && { ...parsed, addr: ipaddr.fromByteArray(Array.from(parsed.bytes)) };
}

/**
 * Parses an IP argument named `what`. The unspecified address and IPv4
 * limited broadcast are always refused; multicast only unless
 * `allow.multicast`.
 */
function parseIp(ip: unknown, what: string, allow: { multicast?: boolean } = {}): ParsedIp {
  const parsed = typeof ip === 'string' ? tryParseIp(ip) : undefined;
  if (!parsed) throw new Error(`${what} ${JSON.stringify(ip)} must be an IP address such as 10.0.0.1 or fd00::1`);
  const range = parsed.addr.range();
  if (range === 'unspecified') throw new Error(`${what} ${String(ip)} is the unspecified address`);
  if (range === 'broadcast' || (range === 'multicast' && !allow.multicast)) {
    throw new Error(`${what} ${String(ip)} is a ${range} address; a unicast one is needed`);
  }
  return parsed;
}

/** Parses `addr/len` strictly: dotted-quad IPv4 (no short or octal forms) or IPv6 without a zone. */
function parseCidr(cidr: unknown, what = 'address'): { family: number; bytes: Uint8Array; prefixlen: number } {
  const bad = () => new Error(`${what} ${JSON.stringify(cidr)} must be a CIDR such as 10.0.0.1/24 or fd00::1/64`);
  if (typeof cidr !== 'string') throw bad();
  const slash = cidr.lastIndexOf('/');
  const len = cidr.slice(slash + 1);
  if (slash < 0 || !/^\d{1,3}$/.test(len)) throw bad();
  const parsed = tryParseIpBytes(cidr.slice(0, slash));
  const prefixlen = Number(len);
  if (!parsed || prefixlen > (parsed.family === AF_INET ? 32 : 128)) throw bad();
  return { family: parsed.family, bytes: parsed.bytes, prefixlen };
}

function checkBoolean(value: unknown, what: string): asserts value is boolean {
  if (typeof value !== 'boolean') throw new Error(`${what} must be true or false, not ${JSON.stringify(value)}`);
}

function checkObject(value: unknown, what: string): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} must be an object`);
}

function checkInteger(value: unknown, what: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const shown = typeof value === 'number' ? String(value) : JSON.stringify(value);
    throw new Error(`${what} ${shown} must be an integer from ${min} to ${max}`);
  }
}

/** A namespace file path: absolute, no NUL, within PATH_MAX. What it names is checked by the kernel when it is opened. */
function checkNetnsPath(path: unknown): asserts path is string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0') || path.length >= 4096) {
    throw new Error(`network namespace path ${JSON.stringify(path)} must be an absolute file path, e.g. /var/run/netns/NAME`);
  }
}

/** Validates a vxlan request's settings; the underlay is still a name. */
function checkVxlan(
  name: string,
  vxlan: CreateLinkRequest['vxlan'],
): { vni: number; group?: Uint8Array; local?: Uint8Array; port?: number; underlay?: string; learning: boolean } {
  if (vxlan === undefined) throw new Error(`vxlan ${name} needs vxlan settings (at least vni and learning)`);
  checkObject(vxlan, `vxlan settings of ${name}`);
  checkInteger(vxlan.vni, 'vxlan vni', 0, VNI_MAX);
  checkBoolean(vxlan.learning, 'vxlan learning');
  const out: { vni: number; group?: Uint8Array; local?: Uint8Array; port?: number; underlay?: string; learning: boolean } = {
    vni: vxlan.vni,
    learning: vxlan.learning,
  };
  let groupFamily: number | undefined;
  if (vxlan.group !== undefined) {
    const group = parseIp(vxlan.group, 'vxlan group', { multicast: true });
    if (group.addr.range() !== 'multicast') {
      throw new Error(`vxlan group ${vxlan.group} must be a multicast address (unicast remotes go in the FDB)`);
    }
    out.group = group.bytes;
    groupFamily = group.family;
  }
  if (vxlan.local !== undefined) {
    const local = parseIp(vxlan.local, 'vxlan local');
    if (groupFamily !== undefined && local.family !== groupFamily) {
      throw new Error(`vxlan local ${vxlan.local} and group ${vxlan.group} must be of the same IP family`);
    }
    out.local = local.bytes;
  }
  if (vxlan.port !== undefined) {
    checkInteger(vxlan.port, 'vxlan port', 1, 65535);
    out.port = vxlan.port;
  }
  if (vxlan.underlay !== undefined) {
    checkName(vxlan.underlay, 'vxlan underlay');
    out.underlay = vxlan.underlay;
  }
  return out;
}

/** Validates the parent and mode of a macvlan or ipvlan request. */
function checkParentAndMode(
  kind: 'macvlan' | 'ipvlan',
  name: string,
  settings: { parent: string; mode: string } | undefined,
  modes: Record<string, number>,
): { parent: string; mode: number } {
  if (settings === undefined) throw new Error(`${kind} ${name} needs ${kind} settings (parent and mode)`);
  checkObject(settings, `${kind} settings of ${name}`);
  checkName(settings.parent, `${kind} parent`);
  if (settings.parent === name) throw new Error(`${kind} ${name} cannot be its own parent`);
  const mode = typeof settings.mode === 'string' && Object.hasOwn(modes, settings.mode) ? modes[settings.mode] : undefined;
  if (mode === undefined) {
    throw new Error(`${kind} mode must be one of ${Object.keys(modes).join(', ')}, not ${JSON.stringify(settings.mode)}`);
  }
  return { parent: settings.parent, mode };
}

interface CheckedRoute {
  family: number;
  /** The destination network address (host bits zero). */
  dst: Uint8Array;
  dstLen: number;
  destination: string;
  gateway?: Uint8Array;
  gatewayText?: string;
  link?: string;
  metric?: number;
}

/** Validates a route: a network CIDR, a same-family unicast gateway and/or a link, a u32 metric. */
function checkRoute(route: RouteInfo): CheckedRoute {
  checkObject(route, 'route');
  const { family, bytes, prefixlen } = parseCidr(route.destination, 'route destination');
  for (let bit = prefixlen; bit < bytes.length * 8; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) {
      throw new Error(`route destination ${route.destination} has host bits set; give the network address`);
    }
  }
  const r: CheckedRoute = { family, dst: bytes, dstLen: prefixlen, destination: route.destination };
  if (route.gateway !== undefined) {
    const gw = parseIp(route.gateway, 'route gateway');
    if (gw.family !== family) throw new Error(`route gateway ${route.gateway} is not of the same IP family as ${route.destination}`);
    r.gateway = gw.bytes;
    r.gatewayText = route.gateway;
  }
  if (route.link !== undefined) {
    checkName(route.link, 'route link');
    r.link = route.link;
  }
  if (r.gateway === undefined && r.link === undefined) throw new Error(`route to ${route.destination} needs a gateway or a link`);
  if (route.metric !== undefined) {
    checkInteger(route.metric, 'route metric', 0, 0xffffffff);
    r.metric = route.metric;
  }
  return r;
}

function describeRoute(r: CheckedRoute): string {
  return [
    r.destination,
    ...(r.gatewayText === undefined ? [] : ['via', r.gatewayText]),
    ...(r.link === undefined ? [] : ['dev', r.link]),
    ...(r.metric === undefined ? [] : ['metric', String(r.metric)]),
  ].join(' ');
}

/** Validates a neighbour: a link name, a unicast IP and a unicast MAC. */
function checkNeighbor(n: NeighborInfo): { link: string; family: number; ip: Uint8Array; mac: Uint8Array } {
  checkObject(n, 'neighbour');
  checkName(n.link, 'neighbour link');
  const ip = parseIp(n.ip, 'neighbour ip');
  return { link: n.link, family: ip.family, ip: ip.bytes, mac: parseMac(n.mac, 'neighbour mac') };
}

/** Validates a FDB entry: link name, MAC (unicast or all zeros), remote IP (may be multicast), VNI. */
function checkFdbEntry(e: FdbEntry): { link: string; mac: Uint8Array; dst?: Uint8Array; vni?: number } {
  checkObject(e, 'fdb entry');
  checkName(e.link, 'fdb link');
  const out: { link: string; mac: Uint8Array; dst?: Uint8Array; vni?: number } = { link: e.link, mac: parseFdbMac(e.mac) };
  if (e.dst !== undefined) out.dst = parseIp(e.dst, 'fdb dst', { multicast: true }).bytes;
  if (e.vni !== undefined) {
    checkInteger(e.vni, 'fdb vni', 0, VNI_MAX);
    out.vni = e.vni;
  }
  return out;
}
