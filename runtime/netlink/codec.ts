// A hand-written rtnetlink message codec: pure functions over Uint8Array and
// DataView, no I/O. It is hand-written because no maintained npm library
// speaks rtnetlink in-process under both Node and Deno, and spawning `ip` for
// every operation costs milliseconds each time. wasmnet needs only a small
// part of rtnetlink (links and their kind-specific data, bridge ports,
// addresses, routes, neighbours and forwarding-database entries), which fits
// here.
//
// Wire format (see netlink(7), rtnetlink(7), <linux/netlink.h>,
// <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>,
// <linux/neighbour.h>):
//
//   nlmsghdr (16 bytes) | family header (ifinfomsg, ifaddrmsg, rtmsg or ndmsg) | rtattrs...
//
// Every rtattr is { u16 len, u16 type, payload } padded to 4 bytes; `len`
// counts the 4-byte header and the payload but not the padding. A nested
// attribute's payload is itself a list of rtattrs. Integers are in host byte
// order, which on every platform wasmnet runs on is little-endian, except
// where the kernel says otherwise (IFLA_VXLAN_PORT is big-endian).

import { NetlinkError } from './backend.ts';

// --- Constants --------------------------------------------------------------

/** Control message types (<linux/netlink.h>). */
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

/** nlmsghdr flags. */
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
/** Set on dump parts when the dump was interrupted by a change; redo it. */
export const NLM_F_DUMP_INTR = 0x10;
/** Flags for new objects (RTM_NEW*). */
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
/** Flag for get requests: dump every object. */
export const NLM_F_DUMP = 0x300;
/** Flags on NLMSG_ERROR: request echo cut to its header; extended-ack TLVs follow. */
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

/** rtnetlink message types (<linux/rtnetlink.h>). */
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

/** Address families. */
export const AF_UNSPEC = 0;
export const AF_INET = 2;
/** The bridge family: bridge-port settings (RTM_SETLINK) and FDB entries (RTM_*NEIGH). */
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

/** Link attributes (<linux/if_link.h>). */
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
/** The parent (lower) link's index, for macvlan and ipvlan. */
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
/** Nested bridge-port settings (IFLA_BRPORT_*) in an AF_BRIDGE RTM_SETLINK. */
export const IFLA_PROTINFO = 12;
export const IFLA_LINKINFO = 18;
/** A u32 file descriptor of a network namespace to move the link into. */
export const IFLA_NET_NS_FD = 28;
/** A u32 of RTEXT_FILTER_* bits in an RTM_GETLINK request: what the reply may leave out. */
export const IFLA_EXT_MASK = 29;
/** Leave the interface statistics out of an RTM_GETLINK reply. */
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;
/** Inside IFLA_LINKINFO. */
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
/** Inside IFLA_INFO_DATA of a veth: an ifinfomsg followed by the peer's attributes. */
export const VETH_INFO_PEER = 1;

/** Inside IFLA_INFO_DATA of a vxlan (<linux/if_link.h>). */
export const IFLA_VXLAN_ID = 1;
/** Multicast group (or unicast remote) IPv4 address, 4 bytes. */
export const IFLA_VXLAN_GROUP = 2;
/** Underlay link index, u32. */
export const IFLA_VXLAN_LINK = 3;
export const IFLA_VXLAN_LOCAL = 4;
export const IFLA_VXLAN_LEARNING = 7;
/** Destination UDP port, u16 in network byte order. */
export const IFLA_VXLAN_PORT = 15;
export const IFLA_VXLAN_GROUP6 = 16;
export const IFLA_VXLAN_LOCAL6 = 17;

/** Inside IFLA_INFO_DATA of a macvlan: the mode, u32. */
export const IFLA_MACVLAN_MODE = 1;
export const MACVLAN_MODE_PRIVATE = 1;
export const MACVLAN_MODE_VEPA = 2;
export const MACVLAN_MODE_BRIDGE = 4;
export const MACVLAN_MODE_PASSTHRU = 8;

/** Inside IFLA_INFO_DATA of an ipvlan: the mode, u16. */
export const IFLA_IPVLAN_MODE = 1;
export const IPVLAN_MODE_L2 = 0;
export const IPVLAN_MODE_L3 = 1;
export const IPVLAN_MODE_L3S = 2;

/** Inside IFLA_PROTINFO (bridge-port settings), each a u8. */
export const IFLA_BRPORT_MODE = 4;
export const IFLA_BRPORT_LEARNING = 8;
export const IFLA_BRPORT_ISOLATED = 33;
/** IFLA_BRPORT_MODE values (<linux/if_bridge.h>): hairpin on is BRIDGE_MODE_HAIRPIN. */
export const BRIDGE_MODE_VEB = 0;
export const BRIDGE_MODE_HAIRPIN = 1;

/** Address attributes (<linux/if_addr.h>). */
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;

/** Route attributes (<linux/rtnetlink.h>). */
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_TABLE = 15;
/** The main routing table, the one `ip route` shows by default. */
export const RT_TABLE_MAIN = 254;
/** rtm_protocol: who installed the route. */
export const RTPROT_UNSPEC = 0;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;
/** rtm_scope. */
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
/** "Any scope" in a delete request. */
export const RT_SCOPE_NOWHERE = 255;
/** rtm_type. */
export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;

/** Neighbour attributes (<linux/neighbour.h>). */
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
/** VXLAN network identifier of an FDB entry, u32. */
export const NDA_VNI = 7;
/** ndm_state bits. */
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
/** ndm_flags bits: the entry belongs to the device itself, or to its master (bridge). */
export const NTF_SELF = 0x2;
export const NTF_MASTER = 0x4;

/** Interface flags (<linux/if.h>). */
export const IFF_UP = 0x1;

/** Extended-ack attribute carrying the kernel's error text. */
export const NLMSGERR_ATTR_MSG = 1;

/** Attribute type bits that are flags rather than part of the type. */
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

export const NLMSG_HDRLEN = 16;
export const IFINFOMSG_LEN = 16;
export const IFADDRMSG_LEN = 8;
export const RTMSG_LEN = 12;
export const NDMSG_LEN = 12;
const RTA_HDRLEN = 4;

/** Rounds up to the 4-byte netlink alignment. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

// --- Encoding ---------------------------------------------------------------

/** An attribute to encode: raw bytes, or a list of attributes for a nested one. */
export interface Attr {
  type: number;
  value: Uint8Array | Attr[];
}

const utf8 = new TextEncoder();

/** A NUL-terminated string attribute (e.g. IFLA_IFNAME, IFLA_INFO_KIND). */
export function strAttr(type: number, s: string): Attr {
  const bytes = utf8.encode(s);
  const value = new Uint8Array(bytes.length + 1);
  value.set(bytes);
  return { type, value };
}

/** A native-endian u32 attribute (e.g. IFLA_MTU, IFLA_MASTER). */
export function u32Attr(type: number, n: number): Attr {
  const value = new Uint8Array(4);
  new DataView(value.buffer).setUint32(0, n, true);
  return { type, value };
}

/** A u8 attribute (e.g. IFLA_VXLAN_LEARNING, IFLA_BRPORT_*). */
export function u8Attr(type: number, n: number): Attr {
  return { type, value: Uint8Array.of(n) };
}

/** A native-endian u16 attribute (e.g. IFLA_IPVLAN_MODE). */
export function u16Attr(type: number, n: number): Attr {
  const value = new Uint8Array(2);
  new DataView(value.buffer).setUint16(0, n, true);
  return { type, value };
}

/** A big-endian (network byte order) u16 attribute (e.g. IFLA_VXLAN_PORT). */
export function be16Attr(type: number, n: number): Attr {
  const value = new Uint8Array(2);
  new DataView(value.buffer).setUint16(0, n, false);
  return { type, value };
}

/** A raw bytes attribute (e.g. IFLA_ADDRESS, IFA_LOCAL). */
export function bytesAttr(type: number, value: Uint8Array): Attr {
  return { type, value };
}

/** A nested attribute; NLA_F_NESTED is set, as iproute2 does. */
export function nestedAttr(type: number, children: Attr[]): Attr {
  return { type: type | NLA_F_NESTED, value: children };
}

function attrSize(a: Attr): number {
  return RTA_HDRLEN + (a.value instanceof Uint8Array ? a.value.length : attrsSize(a.value));
}

function attrsSize(attrs: Attr[]): number {
  let n = 0;
  for (const a of attrs) n += align4(attrSize(a));
  return n;
}

function writeAttrs(out: Uint8Array, view: DataView, offset: number, attrs: Attr[]): number {
  for (const a of attrs) {
    const len = attrSize(a);
    view.setUint16(offset, len, true);
    view.setUint16(offset + 2, a.type, true);
    if (a.value instanceof Uint8Array) out.set(a.value, offset + RTA_HDRLEN);
    else writeAttrs(out, view, offset + RTA_HDRLEN, a.value);
    offset += align4(len); // padding bytes stay zero
  }
  return offset;
}

/** Encodes a list of attributes, each padded to 4 bytes. */
export function encodeAttrs(attrs: Attr[]): Uint8Array {
  const out = new Uint8Array(attrsSize(attrs));
  writeAttrs(out, new DataView(out.buffer), 0, attrs);
  return out;
}

export interface IfInfoMsg {
  family?: number;
  /** ARPHRD_* device type; 0 in requests. */
  type?: number;
  index?: number;
  flags?: number;
  /** Mask of the `flags` bits to change. */
  change?: number;
}

/** Encodes struct ifinfomsg (16 bytes). */
export function encodeIfInfoMsg(m: IfInfoMsg): Uint8Array {
  const out = new Uint8Array(IFINFOMSG_LEN);
  const v = new DataView(out.buffer);
  v.setUint8(0, m.family ?? AF_UNSPEC);
  v.setUint16(2, m.type ?? 0, true);
  v.setInt32(4, m.index ?? 0, true);
  v.setUint32(8, m.flags ?? 0, true);
  v.setUint32(12, m.change ?? 0, true);
  return out;
}

export interface IfAddrMsg {
  family: number;
  prefixlen: number;
  flags?: number;
  scope?: number;
  index: number;
}

/** Encodes struct ifaddrmsg (8 bytes). */
export function encodeIfAddrMsg(m: IfAddrMsg): Uint8Array {
  const out = new Uint8Array(IFADDRMSG_LEN);
  const v = new DataView(out.buffer);
  v.setUint8(0, m.family);
  v.setUint8(1, m.prefixlen);
  v.setUint8(2, m.flags ?? 0);
  v.setUint8(3, m.scope ?? 0);
  v.setUint32(4, m.index, true);
  return out;
}

/**
 * The payload of VETH_INFO_PEER: the peer's own ifinfomsg followed by its
 * attributes (IFLA_IFNAME, IFLA_MTU, IFLA_ADDRESS...).
 */
export function vethPeerAttr(peerAttrs: Attr[]): Attr {
  return bytesAttr(VETH_INFO_PEER, concat(encodeIfInfoMsg({}), encodeAttrs(peerAttrs)));
}

/** IFLA_LINKINFO for a link of `kind`, with IFLA_INFO_DATA when `data` is given. */
export function linkInfoAttr(kind: string, data?: Attr[]): Attr {
  const children = [strAttr(IFLA_INFO_KIND, kind)];
  if (data !== undefined) children.push(nestedAttr(IFLA_INFO_DATA, data));
  return nestedAttr(IFLA_LINKINFO, children);
}

/** The already-validated settings of a vxlan link, as the kernel wants them. */
export interface VxlanData {
  /** VXLAN network identifier, 0..2^24-1. */
  vni: number;
  /** Multicast group: 4 bytes (IFLA_VXLAN_GROUP) or 16 (IFLA_VXLAN_GROUP6). */
  group?: Uint8Array;
  /** Local tunnel address: 4 bytes (IFLA_VXLAN_LOCAL) or 16 (IFLA_VXLAN_LOCAL6). */
  local?: Uint8Array;
  /** Underlay link index. */
  link?: number;
  /** Destination UDP port; the kernel's default (8472) when absent. */
  port?: number;
  learning: boolean;
}

/** The IFLA_INFO_DATA attributes of a vxlan link. */
export function vxlanInfoData(d: VxlanData): Attr[] {
  const attrs = [u32Attr(IFLA_VXLAN_ID, d.vni)];
  if (d.group) attrs.push(bytesAttr(d.group.length === 16 ? IFLA_VXLAN_GROUP6 : IFLA_VXLAN_GROUP, d.group));
  if (d.local) attrs.push(bytesAttr(d.local.length === 16 ? IFLA_VXLAN_LOCAL6 : IFLA_VXLAN_LOCAL, d.local));
  if (d.link !== undefined) attrs.push(u32Attr(IFLA_VXLAN_LINK, d.link));
  if (d.port !== undefined) attrs.push(be16Attr(IFLA_VXLAN_PORT, d.port));
  attrs.push(u8Attr(IFLA_VXLAN_LEARNING, d.learning ? 1 : 0));
  return attrs;
}

/** The IFLA_INFO_DATA attributes of a macvlan link: its MACVLAN_MODE_* as a u32. */
export function macvlanInfoData(mode: number): Attr[] {
  return [u32Attr(IFLA_MACVLAN_MODE, mode)];
}

/** The IFLA_INFO_DATA attributes of an ipvlan link: its IPVLAN_MODE_* as a u16. */
export function ipvlanInfoData(mode: number): Attr[] {
  return [u16Attr(IFLA_IPVLAN_MODE, mode)];
}

/**
 * IFLA_PROTINFO (nested) for an AF_BRIDGE RTM_SETLINK: the bridge-port
 * settings that are given, each a u8. Hairpin is IFLA_BRPORT_MODE.
 */
export function bridgePortAttr(s: { hairpin?: boolean; learning?: boolean; isolated?: boolean }): Attr {
  const children: Attr[] = [];
  if (s.hairpin !== undefined) children.push(u8Attr(IFLA_BRPORT_MODE, s.hairpin ? BRIDGE_MODE_HAIRPIN : BRIDGE_MODE_VEB));
  if (s.learning !== undefined) children.push(u8Attr(IFLA_BRPORT_LEARNING, s.learning ? 1 : 0));
  if (s.isolated !== undefined) children.push(u8Attr(IFLA_BRPORT_ISOLATED, s.isolated ? 1 : 0));
  return nestedAttr(IFLA_PROTINFO, children);
}

export interface RtMsg {
  family: number;
  dstLen: number;
  srcLen?: number;
  tos?: number;
  /** RT_TABLE_*; tables above 255 need RTA_TABLE instead. */
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags?: number;
}

/** Encodes struct rtmsg (12 bytes). */
export function encodeRtMsg(m: RtMsg): Uint8Array {
  const out = new Uint8Array(RTMSG_LEN);
  const v = new DataView(out.buffer);
  v.setUint8(0, m.family);
  v.setUint8(1, m.dstLen);
  v.setUint8(2, m.srcLen ?? 0);
  v.setUint8(3, m.tos ?? 0);
  v.setUint8(4, m.table);
  v.setUint8(5, m.protocol);
  v.setUint8(6, m.scope);
  v.setUint8(7, m.type);
  v.setUint32(8, m.flags ?? 0, true);
  return out;
}

/** The attributes of a route request; addresses are 4 or 16 raw bytes. */
export interface RouteAttrs {
  /** Destination network; omitted for a default route. */
  dst?: Uint8Array;
  gateway?: Uint8Array;
  /** Output link index. */
  oif?: number;
  /** Metric. */
  priority?: number;
}

/** RTA_DST, RTA_GATEWAY, RTA_OIF and RTA_PRIORITY, those that are given, in that order. */
export function routeAttrs(r: RouteAttrs): Attr[] {
  const attrs: Attr[] = [];
  if (r.dst) attrs.push(bytesAttr(RTA_DST, r.dst));
  if (r.gateway) attrs.push(bytesAttr(RTA_GATEWAY, r.gateway));
  if (r.oif !== undefined) attrs.push(u32Attr(RTA_OIF, r.oif));
  if (r.priority !== undefined) attrs.push(u32Attr(RTA_PRIORITY, r.priority));
  return attrs;
}

export interface NdMsg {
  family: number;
  index: number;
  /** NUD_* bits. */
  state?: number;
  /** NTF_* bits. */
  flags?: number;
  type?: number;
}

/** Encodes struct ndmsg (12 bytes; 3 bytes of padding after the family). */
export function encodeNdMsg(m: NdMsg): Uint8Array {
  const out = new Uint8Array(NDMSG_LEN);
  const v = new DataView(out.buffer);
  v.setUint8(0, m.family);
  v.setInt32(4, m.index, true);
  v.setUint16(8, m.state ?? 0, true);
  v.setUint8(10, m.flags ?? 0);
  v.setUint8(11, m.type ?? 0);
  return out;
}

/** The attributes of a neighbour or FDB request. */
export interface NeighAttrs {
  /** The neighbour's IP (ARP/NDP), or the remote tunnel endpoint (vxlan FDB). */
  dst?: Uint8Array;
  /** The hardware address. */
  lladdr?: Uint8Array;
  vni?: number;
}

/** NDA_DST, NDA_LLADDR and NDA_VNI, those that are given, in that order. */
export function neighAttrs(n: NeighAttrs): Attr[] {
  const attrs: Attr[] = [];
  if (n.dst) attrs.push(bytesAttr(NDA_DST, n.dst));
  if (n.lladdr) attrs.push(bytesAttr(NDA_LLADDR, n.lladdr));
  if (n.vni !== undefined) attrs.push(u32Attr(NDA_VNI, n.vni));
  return attrs;
}

export interface MessageHeader {
  type: number;
  flags: number;
  seq: number;
  /** Sender port id; 0 for messages to the kernel. */
  pid?: number;
}

/** Encodes one netlink message: nlmsghdr + family header + attributes. */
export function encodeMessage(h: MessageHeader, familyHeader: Uint8Array, attrs: Attr[] = []): Uint8Array {
  const out = new Uint8Array(messageSize(familyHeader, attrs));
  encodeMessageInto(out, h, familyHeader, attrs);
  return out;
}

/** The number of bytes encodeMessage produces for this family header and these attributes. */
export function messageSize(familyHeader: Uint8Array, attrs: Attr[] = []): number {
  return NLMSG_HDRLEN + align4(familyHeader.length + attrsSize(attrs));
}

/**
 * Encodes one message, as encodeMessage does, at the start of `out` (a
 * buffer reused from request to request), and returns its size. `out` must
 * hold at least messageSize() bytes; the bytes after the message are left
 * as they are.
 */
export function encodeMessageInto(out: Uint8Array, h: MessageHeader, familyHeader: Uint8Array, attrs: Attr[] = []): number {
  const bodyLength = familyHeader.length + attrsSize(attrs);
  const size = NLMSG_HDRLEN + align4(bodyLength);
  if (out.length < size) throw new RangeError(`netlink: a ${size}-byte message does not fit in ${out.length} bytes`);
  out.fill(0, 0, size); // padding bytes are zero
  const v = viewOf(out);
  v.setUint32(0, NLMSG_HDRLEN + bodyLength, true);
  v.setUint16(4, h.type, true);
  v.setUint16(6, h.flags, true);
  v.setUint32(8, h.seq, true);
  v.setUint32(12, h.pid ?? 0, true);
  out.set(familyHeader, NLMSG_HDRLEN);
  writeAttrs(out, v, NLMSG_HDRLEN + familyHeader.length, attrs);
  return size;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// --- Decoding ---------------------------------------------------------------

/** A decoded netlink message; `payload` excludes the 16-byte nlmsghdr. */
export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Uint8Array;
}

function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Splits one received datagram into its messages. Throws on a malformed one. */
export function decodeMessages(buf: Uint8Array): NetlinkMessage[] {
  const v = viewOf(buf);
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = v.getUint32(off, true);
    if (len < NLMSG_HDRLEN || off + len > buf.length) {
      throw new Error(`netlink: malformed message (length ${len} at offset ${off} of ${buf.length})`);
    }
    out.push({
      type: v.getUint16(off + 4, true),
      flags: v.getUint16(off + 6, true),
      seq: v.getUint32(off + 8, true),
      pid: v.getUint32(off + 12, true),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/**
 * Decodes a list of attributes into type -> payload (flag bits such as
 * NLA_F_NESTED removed). The first occurrence of a type wins.
 */
export function decodeAttrs(buf: Uint8Array): Map<number, Uint8Array> {
  const v = viewOf(buf);
  const out = new Map<number, Uint8Array>();
  let off = 0;
  while (off + RTA_HDRLEN <= buf.length) {
    const len = v.getUint16(off, true);
    if (len < RTA_HDRLEN || off + len > buf.length) {
      throw new Error(`netlink: malformed attribute (length ${len} at offset ${off} of ${buf.length})`);
    }
    const type = v.getUint16(off + 2, true) & NLA_TYPE_MASK;
    if (!out.has(type)) out.set(type, buf.subarray(off + RTA_HDRLEN, off + len));
    off += align4(len);
  }
  return out;
}

/**
 * As decodeAttrs, but keeps only the payloads of `types` (the first
 * occurrence of each), in that order: for decoders that want a few
 * attributes out of a long list. Every attribute's length is checked all
 * the same.
 */
function pickAttrs(buf: Uint8Array, types: readonly number[]): (Uint8Array | undefined)[] {
  const v = viewOf(buf);
  const out: (Uint8Array | undefined)[] = types.map(() => undefined);
  let off = 0;
  while (off + RTA_HDRLEN <= buf.length) {
    const len = v.getUint16(off, true);
    if (len < RTA_HDRLEN || off + len > buf.length) {
      throw new Error(`netlink: malformed attribute (length ${len} at offset ${off} of ${buf.length})`);
    }
    const i = types.indexOf(v.getUint16(off + 2, true) & NLA_TYPE_MASK);
    if (i >= 0 && out[i] === undefined) out[i] = buf.subarray(off + RTA_HDRLEN, off + len);
    off += align4(len);
  }
  return out;
}

const utf8d = new TextDecoder();

/** Reads a string attribute, stopping at the first NUL. */
export function attrString(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return utf8d.decode(nul < 0 ? b : b.subarray(0, nul));
}

/** Reads a native-endian u32 attribute. */
export function attrU32(b: Uint8Array): number {
  if (b.length < 4) throw new Error(`netlink: u32 attribute has ${b.length} bytes`);
  return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0; // little-endian, as getUint32(0, true)
}

const HEX_BYTES = Array.from({ length: 256 }, (_, x) => x.toString(16).padStart(2, '0'));

/** Formats hardware-address bytes as `aa:bb:cc:dd:ee:ff`. */
export function formatMac(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += i === 0 ? HEX_BYTES[b[i]!] : `:${HEX_BYTES[b[i]!]}`;
  return s;
}

/** A link as carried by RTM_NEWLINK, before master indexes are resolved to names. */
export interface DecodedLink {
  index: number;
  name: string;
  /** IFLA_INFO_KIND, e.g. "bridge", "veth"; undefined for links without one (lo, physical NICs). */
  kind?: string;
  mtu: number;
  mac: string;
  flags: number;
  /** IFLA_MASTER index, when enslaved. */
  masterIndex?: number;
}

const LINK_ATTRS = [IFLA_IFNAME, IFLA_MTU, IFLA_ADDRESS, IFLA_LINKINFO, IFLA_MASTER] as const;
const INFO_KIND = [IFLA_INFO_KIND] as const;

/** Decodes the payload of an RTM_NEWLINK message (ifinfomsg + attributes). */
export function decodeLink(payload: Uint8Array): DecodedLink {
  if (payload.length < IFINFOMSG_LEN) throw new Error(`netlink: short ifinfomsg (${payload.length} bytes)`);
  const v = viewOf(payload);
  const [name, mtu, mac, linkinfo, master] = pickAttrs(payload.subarray(IFINFOMSG_LEN), LINK_ATTRS);
  const link: DecodedLink = {
    index: v.getInt32(4, true),
    name: name ? attrString(name) : '',
    mtu: mtu ? attrU32(mtu) : 0,
    mac: mac ? formatMac(mac) : '',
    flags: v.getUint32(8, true),
  };
  const [kind] = linkinfo ? pickAttrs(linkinfo, INFO_KIND) : [];
  if (kind) link.kind = attrString(kind);
  if (master && attrU32(master) !== 0) link.masterIndex = attrU32(master);
  return link;
}

/** An address as carried by RTM_NEWADDR. */
export interface DecodedAddress {
  family: number;
  prefixlen: number;
  index: number;
  /** The interface's own address: IFA_LOCAL when present (IPv4), else IFA_ADDRESS (IPv6). */
  address: Uint8Array;
}

/** Decodes the payload of an RTM_NEWADDR message (ifaddrmsg + attributes). */
export function decodeAddress(payload: Uint8Array): DecodedAddress {
  if (payload.length < IFADDRMSG_LEN) throw new Error(`netlink: short ifaddrmsg (${payload.length} bytes)`);
  const v = viewOf(payload);
  const attrs = decodeAttrs(payload.subarray(IFADDRMSG_LEN));
  return {
    family: v.getUint8(0),
    prefixlen: v.getUint8(1),
    index: v.getUint32(4, true),
    address: attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS) ?? new Uint8Array(),
  };
}

/** A route as carried by RTM_NEWROUTE. */
export interface DecodedRoute {
  family: number;
  dstLen: number;
  /** RTA_TABLE when present (it holds tables above 255), else rtm_table. */
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
  /** RTA_DST; absent for a default route. */
  dst?: Uint8Array;
  gateway?: Uint8Array;
  oif?: number;
  priority?: number;
}

/** Decodes the payload of an RTM_NEWROUTE message (rtmsg + attributes). */
export function decodeRoute(payload: Uint8Array): DecodedRoute {
  if (payload.length < RTMSG_LEN) throw new Error(`netlink: short rtmsg (${payload.length} bytes)`);
  const v = viewOf(payload);
  const attrs = decodeAttrs(payload.subarray(RTMSG_LEN));
  const table = attrs.get(RTA_TABLE);
  const route: DecodedRoute = {
    family: v.getUint8(0),
    dstLen: v.getUint8(1),
    table: table ? attrU32(table) : v.getUint8(4),
    protocol: v.getUint8(5),
    scope: v.getUint8(6),
    type: v.getUint8(7),
    flags: v.getUint32(8, true),
  };
  const dst = attrs.get(RTA_DST);
  if (dst) route.dst = dst;
  const gateway = attrs.get(RTA_GATEWAY);
  if (gateway) route.gateway = gateway;
  const oif = attrs.get(RTA_OIF);
  if (oif) route.oif = attrU32(oif);
  const priority = attrs.get(RTA_PRIORITY);
  if (priority) route.priority = attrU32(priority);
  return route;
}

/** A neighbour or FDB entry as carried by RTM_NEWNEIGH. */
export interface DecodedNeighbor {
  family: number;
  index: number;
  state: number;
  flags: number;
  type: number;
  dst?: Uint8Array;
  lladdr?: Uint8Array;
  vni?: number;
}

/** Decodes the payload of an RTM_NEWNEIGH message (ndmsg + attributes). */
export function decodeNeighbor(payload: Uint8Array): DecodedNeighbor {
  if (payload.length < NDMSG_LEN) throw new Error(`netlink: short ndmsg (${payload.length} bytes)`);
  const v = viewOf(payload);
  const attrs = decodeAttrs(payload.subarray(NDMSG_LEN));
  const neigh: DecodedNeighbor = {
    family: v.getUint8(0),
    index: v.getInt32(4, true),
    state: v.getUint16(8, true),
    flags: v.getUint8(10),
    type: v.getUint8(11),
  };
  const dst = attrs.get(NDA_DST);
  if (dst) neigh.dst = dst;
  const lladdr = attrs.get(NDA_LLADDR);
  if (lladdr) neigh.lladdr = lladdr;
  const vni = attrs.get(NDA_VNI);
  if (vni) neigh.vni = attrU32(vni);
  return neigh;
}

/** The kernel sends errors as negative errnos; this turns them positive (and avoids -0 for an ack). */
function negate(n: number): number {
  return n === 0 ? 0 : -n;
}

/** The content of an NLMSG_ERROR message: errno 0 is an acknowledgement. */
export interface ErrorReply {
  /** Positive errno, or 0 for an ack. */
  errno: number;
  /** The kernel's extended-ack text, e.g. "Unknown device type", when it sent one. */
  extack?: string;
}

/**
 * Decodes an NLMSG_ERROR message: a negative int32 errno, the echoed request
 * header (whole request unless NLM_F_CAPPED), then extended-ack TLVs when
 * NLM_F_ACK_TLVS is set.
 */
export function decodeError(msg: NetlinkMessage): ErrorReply {
  const p = msg.payload;
  if (p.length < 4) throw new Error(`netlink: short error message (${p.length} bytes)`);
  const v = viewOf(p);
  const reply: ErrorReply = { errno: negate(v.getInt32(0, true)) };
  if (msg.flags & NLM_F_ACK_TLVS && p.length >= 4 + NLMSG_HDRLEN) {
    const echoed = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : v.getUint32(4, true);
    const tlvs = decodeAttrs(p.subarray(Math.min(p.length, 4 + align4(echoed))));
    const text = tlvs.get(NLMSGERR_ATTR_MSG);
    if (text) reply.extack = attrString(text);
  }
  return reply;
}

/**
 * Gathers the replies to one request, fed datagram by datagram. A request
 * sent with NLM_F_ACK ends with an NLMSG_ERROR (errno 0 for success); a dump
 * ends with NLMSG_DONE. Messages for other sequence numbers (late replies to
 * an earlier request) are ignored. The data messages kept are copied out of
 * the datagram, so the buffer it was received in can be reused at once.
 */
export class ReplyCollector {
  readonly seq: number;
  /** Data messages (RTM_NEW*) received for this request, in order. */
  readonly messages: NetlinkMessage[] = [];
  /** Set when the kernel refused the request or aborted the dump. */
  error: ErrorReply | undefined;
  /** True when a dump was interrupted by a concurrent change and should be redone. */
  interrupted = false;
  done = false;

  constructor(seq: number) {
    this.seq = seq;
  }

  /** Takes one datagram; returns true once the request is complete. */
  feed(datagram: Uint8Array): boolean {
    for (const msg of decodeMessages(datagram)) {
      if (this.done || msg.seq !== this.seq || msg.type === NLMSG_NOOP) continue;
      if (msg.flags & NLM_F_DUMP_INTR) this.interrupted = true;
      if (msg.type === NLMSG_ERROR) {
        const reply = decodeError(msg);
        if (reply.errno !== 0) this.error = reply;
        this.done = true;
      } else if (msg.type === NLMSG_DONE) {
        // A dump that failed part-way carries a negative errno in NLMSG_DONE.
        const errno = msg.payload.length >= 4 ? negate(viewOf(msg.payload).getInt32(0, true)) : 0;
        if (errno > 0) this.error = { errno };
        this.done = true;
      } else {
        this.messages.push({ ...msg, payload: msg.payload.slice() });
      }
    }
    return this.done;
  }
}

// --- Errors -----------------------------------------------------------------

/** Linux errno numbers (x86-64 and arm64 share them) with strerror() texts. */
const ERRNOS: Record<number, [code: string, text: string]> = {
  1: ['EPERM', 'Operation not permitted'],
  2: ['ENOENT', 'No such file or directory'],
  3: ['ESRCH', 'No such process'],
  4: ['EINTR', 'Interrupted system call'],
  5: ['EIO', 'Input/output error'],
  6: ['ENXIO', 'No such device or address'],
  7: ['E2BIG', 'Argument list too long'],
  9: ['EBADF', 'Bad file descriptor'],
  11: ['EAGAIN', 'Resource temporarily unavailable'],
  12: ['ENOMEM', 'Cannot allocate memory'],
  13: ['EACCES', 'Permission denied'],
  14: ['EFAULT', 'Bad address'],
  16: ['EBUSY', 'Device or resource busy'],
  17: ['EEXIST', 'File exists'],
  18: ['EXDEV', 'Invalid cross-device link'],
  19: ['ENODEV', 'No such device'],
  20: ['ENOTDIR', 'Not a directory'],
  21: ['EISDIR', 'Is a directory'],
  22: ['EINVAL', 'Invalid argument'],
  23: ['ENFILE', 'Too many open files in system'],
  24: ['EMFILE', 'Too many open files'],
  28: ['ENOSPC', 'No space left on device'],
  34: ['ERANGE', 'Numerical result out of range'],
  36: ['ENAMETOOLONG', 'File name too long'],
  38: ['ENOSYS', 'Function not implemented'],
  39: ['ENOTEMPTY', 'Directory not empty'],
  40: ['ELOOP', 'Too many levels of symbolic links'],
  42: ['ENOMSG', 'No message of desired type'],
  61: ['ENODATA', 'No data available'],
  71: ['EPROTO', 'Protocol error'],
  74: ['EBADMSG', 'Bad message'],
  75: ['EOVERFLOW', 'Value too large for defined data type'],
  90: ['EMSGSIZE', 'Message too long'],
  92: ['ENOPROTOOPT', 'Protocol not available'],
  93: ['EPROTONOSUPPORT', 'Protocol not supported'],
  // ENOTSUP is the same number as EOPNOTSUPP on Linux.
  95: ['EOPNOTSUPP', 'Operation not supported'],
  97: ['EAFNOSUPPORT', 'Address family not supported by protocol'],
  98: ['EADDRINUSE', 'Address already in use'],
  99: ['EADDRNOTAVAIL', 'Cannot assign requested address'],
  100: ['ENETDOWN', 'Network is down'],
  101: ['ENETUNREACH', 'Network is unreachable'],
  105: ['ENOBUFS', 'No buffer space available'],
  110: ['ETIMEDOUT', 'Connection timed out'],
  113: ['EHOSTUNREACH', 'No route to host'],
  114: ['EALREADY', 'Operation already in progress'],
  115: ['EINPROGRESS', 'Operation now in progress'],
  122: ['EDQUOT', 'Disk quota exceeded'],
  // Kernel-internal, but some drivers leak it to user space.
  524: ['ENOTSUPP', 'Operation not supported'],
};

/** The symbolic name of a positive errno, e.g. 17 -> "EEXIST"; "ERRNO_<n>" when unknown. */
export function errnoName(errno: number): string {
  return ERRNOS[errno]?.[0] ?? `ERRNO_${errno}`;
}

/**
 * Builds the error for a refused operation, e.g.
 * "create link br-x: File exists (EEXIST)", with the kernel's extended-ack
 * text appended when there is one.
 */
export function netlinkError(errno: number, context: string, extack?: string): NetlinkError {
  const [code, text] = ERRNOS[errno] ?? [errnoName(errno), `Unknown error ${errno}`];
  const detail = extack ? `: ${extack}` : '';
  return new NetlinkError(errno, code, `${context}: ${text} (${code})${detail}`);
}
