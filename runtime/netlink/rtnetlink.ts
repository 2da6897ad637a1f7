// The real NetlinkBackend: rtnetlink requests over an AF_NETLINK socket.
// Arguments are validated here, before anything is sent, so that bad input
// fails with a plain Error naming the argument, while refusals by the kernel
// come back as NetlinkError with the errno's name (EEXIST, ENODEV...).

import ipaddr from 'ipaddr.js';
import { NetlinkError, type CreateLinkRequest, type LinkInfo, type LinkKind, type NetlinkBackend } from './backend.ts';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  IFA_ADDRESS,
  IFA_LOCAL,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  NLM_F_CREATE,
  NLM_F_EXCL,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_SETLINK,
  bytesAttr,
  decodeAddress,
  decodeLink,
  encodeIfAddrMsg,
  encodeIfInfoMsg,
  nestedAttr,
  netlinkError,
  strAttr,
  u32Attr,
  vethPeerAttr,
  type Attr,
  type DecodedLink,
} from './codec.ts';
import { NetlinkSocket, type NetlinkSocketOptions } from './socket.ts';

const ENODEV = 19;

export type RtNetlinkOptions = NetlinkSocketOptions;

export class RtNetlink implements NetlinkBackend {
  readonly #socket: NetlinkSocket;

  /** Opens the socket, in `options.netns` (a namespace file path) when given. */
  constructor(options: RtNetlinkOptions = {}) {
    this.#socket = new NetlinkSocket(options);
  }

  createLink(req: CreateLinkRequest): LinkInfo {
    const kind: string = req.kind;
    if (kind !== 'bridge' && kind !== 'veth' && kind !== 'dummy') {
      throw new Error(`link kind must be bridge, veth or dummy, not ${JSON.stringify(kind)}`);
    }
    const attrs = endAttrs(req);
    if (req.kind === 'veth') {
      if (!req.peer) throw new Error(`veth ${req.name} needs a peer`);
      const peerAttrs = endAttrs(req.peer);
      if (req.peer.name === req.name) throw new Error(`veth ${req.name}: the peer needs a different name`);
      attrs.push(
        nestedAttr(IFLA_LINKINFO, [strAttr(IFLA_INFO_KIND, 'veth'), nestedAttr(IFLA_INFO_DATA, [vethPeerAttr(peerAttrs)])]),
      );
    } else {
      if (req.peer) throw new Error(`${req.kind} ${req.name} cannot have a peer (only veth has one)`);
      attrs.push(nestedAttr(IFLA_LINKINFO, [strAttr(IFLA_INFO_KIND, req.kind)]));
    }
    this.#socket.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, encodeIfInfoMsg({}), attrs, `create link ${req.name}`);
    const link = this.getLink(req.name);
    if (!link) throw new Error(`create link ${req.name}: created, but it is gone when read back`);
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

  deleteLink(name: string): void {
    checkName(name, 'link name');
    this.#socket.request(RTM_DELLINK, 0, encodeIfInfoMsg({}), [strAttr(IFLA_IFNAME, name)], `delete link ${name}`);
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
    // IPv4 first, then IPv6; sort is stable, so kernel order is kept within a family.
    addresses.sort((a, b) => (a.family === b.family ? 0 : a.family === AF_INET ? -1 : 1));
    return addresses.map((a) => `${ipaddr.fromByteArray(Array.from(a.address)).toString()}/${a.prefixlen}`);
  }

  close(): void {
    this.#socket.close();
  }

  /** RTM_GETLINK for one link; undefined when the kernel answers ENODEV. */
  #getLink(selector: Attr[], context: string, index = 0): DecodedLink | undefined {
    try {
      const [reply] = this.#socket.request(RTM_GETLINK, 0, encodeIfInfoMsg({ index }), selector, context);
      return reply && decodeLink(reply.payload);
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ENODEV) return undefined;
      throw err;
    }
  }

  #nameOf(index: number): string | undefined {
    return this.#getLink([], `get link #${index}`, index)?.name;
  }

  /** The index of a link that must exist; a missing one fails as ENODEV under `context`. */
  #indexOf(name: string, context: string): number {
    const link = this.#getLink([strAttr(IFLA_IFNAME, name)], context);
    if (!link) throw netlinkError(ENODEV, context);
    return link.index;
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

function toLinkInfo(link: DecodedLink, master: string | undefined): LinkInfo {
  const kind: LinkKind = link.kind === 'bridge' || link.kind === 'veth' || link.kind === 'dummy' ? link.kind : 'other';
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

/** The kernel's rules for interface names (dev_valid_name): 1..15 bytes, no '/', ':' or whitespace, not "." or "..". */
function checkName(name: unknown, what: string): void {
  if (typeof name !== 'string') throw new Error(`${what} must be a string`);
  const bytes = new TextEncoder().encode(name).length;
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

/** Parses `aa:bb:cc:dd:ee:ff`, which must be a unicast, non-zero Ethernet address. */
function parseMac(mac: unknown): Uint8Array {
  if (typeof mac !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) {
    throw new Error(`mac ${JSON.stringify(mac)} must look like aa:bb:cc:dd:ee:ff`);
  }
  const bytes = Uint8Array.from(mac.split(':'), (h) => parseInt(h, 16));
  if (bytes[0]! & 1) throw new Error(`mac ${mac} is a multicast address; links need a unicast one`);
  if (bytes.every((b) => b === 0)) throw new Error(`mac ${mac} is all zeros`);
  return bytes;
}

/** Parses `addr/len` strictly: dotted-quad IPv4 (no short or octal forms) or IPv6 without a zone. */
function parseCidr(cidr: unknown): { family: number; bytes: Uint8Array; prefixlen: number } {
  const bad = () => new Error(`address ${JSON.stringify(cidr)} must be a CIDR such as 10.0.0.1/24 or fd00::1/64`);
  if (typeof cidr !== 'string') throw bad();
  const slash = cidr.lastIndexOf('/');
  const addr = cidr.slice(0, slash);
  const len = cidr.slice(slash + 1);
  if (slash < 0 || !/^\d{1,3}$/.test(len)) throw bad();
  const prefixlen = Number(len);
  if (ipaddr.IPv4.isValidFourPartDecimal(addr)) {
    if (prefixlen > 32) throw bad();
    return { family: AF_INET, bytes: Uint8Array.from(ipaddr.IPv4.parse(addr).toByteArray()), prefixlen };
  }
  if (!addr.includes('%') && ipaddr.IPv6.isValid(addr)) {
    if (prefixlen > 128) throw bad();
    return { family: AF_INET6, bytes: Uint8Array.from(ipaddr.IPv6.parse(addr).toByteArray()), prefixlen };
  }
  throw bad();
}
