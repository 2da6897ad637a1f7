// Unit tests of the rtnetlink codec. Expected bytes are written out by hand
// from the kernel's struct layouts (little-endian), so the encoder is checked
// against the wire format rather than against the decoder.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetlinkError } from './backend.ts';
import {
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  IFLA_IFNAME,
  IFLA_LINK,
  IFLA_NET_NS_FD,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MTU,
  NLA_F_NESTED,
  IPVLAN_MODE_L3,
  MACVLAN_MODE_BRIDGE,
  NLM_F_ACK,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  NTF_SELF,
  NUD_PERMANENT,
  RTM_DELROUTE,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTM_SETLINK,
  RTN_UNICAST,
  RTN_UNSPEC,
  RTPROT_STATIC,
  RTPROT_UNSPEC,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  ReplyCollector,
  VETH_INFO_PEER,
  align4,
  attrString,
  attrU32,
  be16Attr,
  bridgePortAttr,
  decodeAddress,
  decodeAttrs,
  decodeError,
  decodeLink,
  decodeMessages,
  decodeNeighbor,
  decodeRoute,
  encodeAttrs,
  encodeIfAddrMsg,
  encodeIfInfoMsg,
  encodeMessage,
  encodeMessageInto,
  encodeNdMsg,
  encodeRtMsg,
  errnoName,
  ipvlanInfoData,
  linkInfoAttr,
  macvlanInfoData,
  messageSize,
  neighAttrs,
  nestedAttr,
  netlinkError,
  routeAttrs,
  strAttr,
  u16Attr,
  u32Attr,
  u8Attr,
  vethPeerAttr,
  vxlanInfoData,
} from './codec.ts';

/** Bytes from hex, ignoring whitespace and `|` separators used for readability. */
function hex(s: string): Uint8Array {
  const clean = s.replace(/[\s|]/g, '');
  return Uint8Array.from(clean.match(/../g) ?? [], (h) => parseInt(h, 16));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

describe('encoding', () => {
  test('align4 rounds up to multiples of 4', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 8, 9].map(align4), [0, 4, 4, 4, 4, 8, 8, 12]);
  });

  test('string attributes are NUL-terminated and padded to 4 bytes', () => {
    // "br0\0" fills the 4 payload bytes exactly: len 8, no padding.
    assert.deepEqual(encodeAttrs([strAttr(IFLA_IFNAME, 'br0')]), hex('0800 0300 | 62723000'));
    // "eth10\0" is 6 bytes: len 10, then 2 zero bytes of padding.
    assert.deepEqual(encodeAttrs([strAttr(IFLA_IFNAME, 'eth10')]), hex('0a00 0300 | 6574683130 00 | 0000'));
  });

  test('u32 attributes are native-endian (little-endian)', () => {
    assert.deepEqual(encodeAttrs([u32Attr(IFLA_MTU, 1400)]), hex('0800 0400 | 78050000'));
  });

  test('nested attributes carry NLA_F_NESTED and the padded size of their children', () => {
    const bytes = encodeAttrs([nestedAttr(IFLA_LINKINFO, [strAttr(IFLA_INFO_KIND, 'bridge')])]);
    // IFLA_LINKINFO (18 | 0x8000), len 16 = 4 + IFLA_INFO_KIND (len 11, padded to 12).
    assert.deepEqual(bytes, hex('1000 1280 | 0b00 0100 | 627269646765 00 | 00'));
  });

  test('consecutive attributes each start on a 4-byte boundary', () => {
    const bytes = encodeAttrs([strAttr(IFLA_IFNAME, 'v0'), u32Attr(IFLA_MTU, 9000)]);
    assert.deepEqual(bytes, hex('0700 0300 | 763000 00 | 0800 0400 | 28230000'));
  });

  test('ifinfomsg and ifaddrmsg layouts', () => {
    assert.deepEqual(
      encodeIfInfoMsg({ index: 3, flags: 1, change: 1 }),
      hex('00 00 0000 | 03000000 | 01000000 | 01000000'),
    );
    assert.deepEqual(encodeIfAddrMsg({ family: AF_INET, prefixlen: 24, index: 5 }), hex('02 18 00 00 | 05000000'));
  });

  test('a message has a 16-byte header whose length covers the whole message', () => {
    const msg = encodeMessage(
      { type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq: 42 },
      encodeIfInfoMsg({}),
      [strAttr(IFLA_IFNAME, 'br0')],
    );
    assert.deepEqual(
      msg,
      hex(`28000000 1000 0506 2a000000 00000000
           00000000 00000000 00000000 00000000
           0800 0300 62723000`),
    );
  });

  test('a message encoded into a reused buffer is the same bytes, and the rest of the buffer is left alone', () => {
    const header = { type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 7 };
    const attrs = [strAttr(IFLA_IFNAME, 'br0'), u32Attr(IFLA_MTU, 1400)];
    const expected = encodeMessage(header, encodeIfInfoMsg({}), attrs);
    assert.equal(messageSize(encodeIfInfoMsg({}), attrs), expected.length);
    const buffer = new Uint8Array(expected.length + 8).fill(0xee); // dirty, as after a larger request
    assert.equal(encodeMessageInto(buffer, header, encodeIfInfoMsg({}), attrs), expected.length);
    assert.deepEqual(buffer.subarray(0, expected.length), expected);
    assert.deepEqual(buffer.subarray(expected.length), new Uint8Array(8).fill(0xee));
    // Padding after an odd-sized string comes out zero in a dirty buffer too.
    const odd = [strAttr(IFLA_IFNAME, 'b')];
    const small = encodeMessage(header, encodeIfInfoMsg({}), odd);
    buffer.fill(0xee);
    encodeMessageInto(buffer, header, encodeIfInfoMsg({}), odd);
    assert.deepEqual(buffer.subarray(0, small.length), small);
    assert.throws(() => encodeMessageInto(new Uint8Array(expected.length - 1), header, encodeIfInfoMsg({}), attrs), RangeError);
  });

  test('a veth request embeds the peer ifinfomsg and attributes in VETH_INFO_PEER', () => {
    const linkinfo = nestedAttr(IFLA_LINKINFO, [
      strAttr(IFLA_INFO_KIND, 'veth'),
      nestedAttr(IFLA_INFO_DATA, [vethPeerAttr([strAttr(IFLA_IFNAME, 'v1'), u32Attr(IFLA_MTU, 1400)])]),
    ]);
    const bytes = encodeAttrs([linkinfo]);
    assert.deepEqual(
      bytes,
      hex(`3800 1280
             0900 0100 7665746800 000000
             2800 0280
               2400 0100
                 00000000 00000000 00000000 00000000
                 0700 0300 763100 00
                 0800 0400 78050000`),
    );

    // And it decodes back through the same layers.
    const outer = decodeAttrs(bytes).get(IFLA_LINKINFO)!;
    const inner = decodeAttrs(outer);
    assert.equal(attrString(inner.get(IFLA_INFO_KIND)!), 'veth');
    const peer = decodeAttrs(inner.get(IFLA_INFO_DATA)!).get(VETH_INFO_PEER)!;
    assert.deepEqual(peer.subarray(0, 16), new Uint8Array(16));
    const peerAttrs = decodeAttrs(peer.subarray(16));
    assert.equal(attrString(peerAttrs.get(IFLA_IFNAME)!), 'v1');
    assert.equal(attrU32(peerAttrs.get(IFLA_MTU)!), 1400);
  });
});

describe('encoding of link kinds, bridge ports and namespace moves', () => {
  test('u8, u16 and big-endian u16 attributes', () => {
    // A u8 payload is 1 byte: len 5, 3 bytes of padding.
    assert.deepEqual(encodeAttrs([u8Attr(7, 1)]), hex('0500 0700 | 01 | 000000'));
    // len 6, 2 bytes of padding; native order is little-endian...
    assert.deepEqual(encodeAttrs([u16Attr(1, 0x0102)]), hex('0600 0100 | 0201 | 0000'));
    // ...and network order big-endian: 4789 = 0x12b5.
    assert.deepEqual(encodeAttrs([be16Attr(15, 4789)]), hex('0600 0f00 | 12b5 | 0000'));
  });

  test('an IPv4 vxlan: VNI, group, local, underlay, port in network order, learning', () => {
    const attr = linkInfoAttr(
      'vxlan',
      vxlanInfoData({ vni: 42, group: hex('ef010101'), local: hex('0a000001'), link: 3, port: 4789, learning: false }),
    );
    assert.deepEqual(
      encodeAttrs([attr]),
      hex(`4400 1280
             0a00 0100 76786c616e00 0000
             3400 0280
               0800 0100 2a000000
               0800 0200 ef010101
               0800 0400 0a000001
               0800 0300 03000000
               0600 0f00 12b5 0000
               0500 0700 00 000000`),
    );
  });

  test('an IPv6 vxlan uses IFLA_VXLAN_GROUP6/LOCAL6; port and underlay are optional', () => {
    const data = vxlanInfoData({
      vni: 0xffffff,
      group: hex('ff050000000000000000000000000001'),
      local: hex('fd000000000000000000000000000001'),
      learning: true,
    });
    assert.deepEqual(
      encodeAttrs(data),
      hex(`0800 0100 ffffff00
           1400 1000 ff050000000000000000000000000001
           1400 1100 fd000000000000000000000000000001
           0500 0700 01 000000`),
    );
  });

  test('a macvlan request: IFLA_LINK is the parent, IFLA_MACVLAN_MODE a u32', () => {
    const msg = encodeMessage({ type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq: 1 }, encodeIfInfoMsg({}), [
      strAttr(IFLA_IFNAME, 'mv0'),
      u32Attr(IFLA_LINK, 3),
      linkInfoAttr('macvlan', macvlanInfoData(MACVLAN_MODE_BRIDGE)),
    ]);
    assert.deepEqual(
      msg,
      hex(`4c000000 1000 0506 01000000 00000000
           00000000 00000000 00000000 00000000
           0800 0300 6d763000
           0800 0500 03000000
           1c00 1280
             0c00 0100 6d6163766c616e00
             0c00 0280 0800 0100 04000000`),
    );
  });

  test('an ipvlan mode is a u16', () => {
    assert.deepEqual(
      encodeAttrs([linkInfoAttr('ipvlan', ipvlanInfoData(IPVLAN_MODE_L3))]),
      hex(`1c00 1280
             0b00 0100 6970766c616e00 00
             0c00 0280 0600 0100 0100 0000`),
    );
  });

  test('a link kind without data has no IFLA_INFO_DATA', () => {
    assert.deepEqual(encodeAttrs([linkInfoAttr('bridge')]), encodeAttrs([nestedAttr(IFLA_LINKINFO, [strAttr(IFLA_INFO_KIND, 'bridge')])]));
  });

  test('bridge-port settings: AF_BRIDGE RTM_SETLINK by index with nested IFLA_PROTINFO u8s', () => {
    const msg = encodeMessage({ type: RTM_SETLINK, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 2 }, encodeIfInfoMsg({ family: AF_BRIDGE, index: 5 }), [
      bridgePortAttr({ hairpin: true, learning: false, isolated: true }),
    ]);
    assert.deepEqual(
      msg,
      hex(`3c000000 1300 0500 02000000 00000000
           07 00 0000 05000000 00000000 00000000
           1c00 0c80
             0500 0400 01 000000
             0500 0800 00 000000
             0500 2100 01 000000`),
    );
    // Only the given settings are sent.
    assert.deepEqual(encodeAttrs([bridgePortAttr({ learning: true })]), hex('0c00 0c80 | 0500 0800 01 000000'));
    assert.deepEqual(encodeAttrs([bridgePortAttr({})]), hex('0400 0c80'));
  });

  test('a move to another namespace names the link and carries the namespace fd as a u32', () => {
    assert.deepEqual(
      encodeAttrs([strAttr(IFLA_IFNAME, 'veth1'), u32Attr(IFLA_NET_NS_FD, 7)]),
      hex('0a00 0300 766574683100 0000 | 0800 1c00 07000000'),
    );
  });
});

describe('encoding of routes, neighbours and FDB entries', () => {
  test('rtmsg layout', () => {
    const header = encodeRtMsg({
      family: AF_INET,
      dstLen: 16,
      table: RT_TABLE_MAIN,
      protocol: RTPROT_STATIC,
      scope: RT_SCOPE_UNIVERSE,
      type: RTN_UNICAST,
    });
    assert.deepEqual(header, hex('02 10 00 00 fe 04 00 01 | 00000000'));
  });

  test('an IPv4 route through a gateway, with link and metric', () => {
    const msg = encodeMessage(
      { type: RTM_NEWROUTE, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq: 3 },
      encodeRtMsg({ family: AF_INET, dstLen: 16, table: RT_TABLE_MAIN, protocol: RTPROT_STATIC, scope: RT_SCOPE_UNIVERSE, type: RTN_UNICAST }),
      routeAttrs({ dst: hex('0a0a0000'), gateway: hex('0a0900fe'), oif: 3, priority: 50 }),
    );
    assert.deepEqual(
      msg,
      hex(`3c000000 1800 0506 03000000 00000000
           02 10 00 00 fe 04 00 01 00000000
           0800 0100 0a0a0000
           0800 0500 0a0900fe
           0800 0400 03000000
           0800 0600 32000000`),
    );
  });

  test('an IPv6 default route on a link: no RTA_DST, scope link', () => {
    const header = encodeRtMsg({ family: AF_INET6, dstLen: 0, table: RT_TABLE_MAIN, protocol: RTPROT_STATIC, scope: RT_SCOPE_LINK, type: RTN_UNICAST });
    assert.deepEqual(header, hex('0a 00 00 00 fe 04 fd 01 | 00000000'));
    assert.deepEqual(encodeAttrs(routeAttrs({ oif: 9 })), hex('0800 0400 09000000'));
  });

  test('a route delete matches any protocol, scope and type', () => {
    const msg = encodeMessage(
      { type: RTM_DELROUTE, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 4 },
      encodeRtMsg({ family: AF_INET, dstLen: 24, table: RT_TABLE_MAIN, protocol: RTPROT_UNSPEC, scope: RT_SCOPE_NOWHERE, type: RTN_UNSPEC }),
      routeAttrs({ dst: hex('0a0b0000') }),
    );
    assert.deepEqual(msg, hex('24000000 1900 0500 04000000 00000000 | 02 18 00 00 fe 00 ff 00 00000000 | 0800 0100 0a0b0000'));
  });

  test('a permanent IPv4 neighbour: ndmsg, NDA_DST, NDA_LLADDR', () => {
    const msg = encodeMessage(
      { type: RTM_NEWNEIGH, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq: 5 },
      encodeNdMsg({ family: AF_INET, index: 3, state: NUD_PERMANENT }),
      neighAttrs({ dst: hex('0a090005'), lladdr: hex('020000000005') }),
    );
    assert.deepEqual(
      msg,
      hex(`30000000 1c00 0506 05000000 00000000
           02 00 0000 03000000 8000 00 00
           0800 0100 0a090005
           0a00 0200 020000000005 0000`),
    );
  });

  test('a vxlan FDB entry: AF_BRIDGE, NTF_SELF, remote IPv6 and VNI, appended', () => {
    const msg = encodeMessage(
      { type: RTM_NEWNEIGH, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND, seq: 6 },
      encodeNdMsg({ family: AF_BRIDGE, index: 6, state: NUD_PERMANENT, flags: NTF_SELF }),
      neighAttrs({ dst: hex('fd000000000000000000000000000003'), lladdr: hex('000000000000'), vni: 99 }),
    );
    assert.deepEqual(
      msg,
      hex(`44000000 1c00 050c 06000000 00000000
           07 00 0000 06000000 8000 02 00
           1400 0100 fd000000000000000000000000000003
           0a00 0200 000000000000 0000
           0800 0700 63000000`),
    );
  });
});

// A link dump as the kernel sends it: two RTM_NEWLINK parts (NLM_F_MULTI,
// seq 7, port 1234) in one datagram, then NLMSG_DONE in a second one.
const BRIDGE_PART = hex(`4c000000 1000 0200 07000000 d2040000
  00 00 0100 03000000 03100000 00000000
  0800 0300 62723000
  0800 0400 78050000
  0a00 0100 021122334455 0000
  1000 1280 0b00 0100 627269646765 00 00`);
const VETH_PART = hex(`48000000 1000 0200 07000000 d2040000
  00 00 0100 04000000 02100000 00000000
  0700 0300 763000 00
  0800 0400 dc050000
  0800 0a00 03000000
  1000 1280 0900 0100 7665746800 000000`);
const DONE = hex('14000000 0300 0200 07000000 d2040000 00000000');
/** A late reply to an earlier request (seq 6): must be ignored. */
const STALE_ACK = hex('24000000 0200 0001 06000000 d2040000 00000000 | 14000000 1200 0500 06000000 00000000');

describe('decoding', () => {
  test('a datagram splits into its messages', () => {
    const msgs = decodeMessages(concat(BRIDGE_PART, VETH_PART));
    assert.equal(msgs.length, 2);
    assert.deepEqual(
      msgs.map((m) => [m.type, m.flags, m.seq, m.pid, m.payload.length]),
      [
        [RTM_NEWLINK, 2, 7, 1234, 60],
        [RTM_NEWLINK, 2, 7, 1234, 56],
      ],
    );
  });

  test('RTM_NEWLINK decodes to name, kind, mtu, mac, flags and master', () => {
    const [bridge, veth] = decodeMessages(concat(BRIDGE_PART, VETH_PART)).map((m) => decodeLink(m.payload));
    assert.deepEqual(bridge, { index: 3, name: 'br0', kind: 'bridge', mtu: 1400, mac: '02:11:22:33:44:55', flags: 0x1003 });
    assert.deepEqual(veth, { index: 4, name: 'v0', kind: 'veth', mtu: 1500, mac: '', flags: 0x1002, masterIndex: 3 });
  });

  test('a multi-part dump is complete at NLMSG_DONE and skips other sequence numbers', () => {
    const replies = new ReplyCollector(7);
    assert.equal(replies.feed(concat(STALE_ACK, BRIDGE_PART, VETH_PART)), false);
    assert.equal(replies.feed(DONE), true);
    assert.equal(replies.error, undefined);
    assert.equal(replies.interrupted, false);
    assert.deepEqual(
      replies.messages.map((m) => decodeLink(m.payload).name),
      ['br0', 'v0'],
    );
  });

  test('the messages kept are copies: the datagram buffer can be reused at once', () => {
    const datagram = concat(BRIDGE_PART, DONE);
    const replies = new ReplyCollector(7);
    assert.equal(replies.feed(datagram), true);
    datagram.fill(0);
    assert.equal(decodeLink(replies.messages[0]!.payload).name, 'br0');
  });

  test('RTM_NEWLINK: the first of repeated attributes wins, and a malformed attribute anywhere is rejected', () => {
    const payload = decodeMessages(BRIDGE_PART)[0]!.payload;
    const repeated = concat(payload, hex('0800 0300 78797a00 | 0800 0400 dc050000')); // IFLA_IFNAME "xyz", IFLA_MTU 1500
    assert.deepEqual(decodeLink(repeated), decodeLink(payload));
    assert.throws(() => decodeLink(concat(payload, hex('0900 0f00 6100'))), /malformed attribute/);
    // Inside IFLA_LINKINFO: an IFLA_INFO_KIND of 9 bytes in an 8-byte nest.
    assert.throws(() => decodeLink(concat(payload.subarray(0, 16), hex('0c00 1280 | 0900 0100 61000000'))), /malformed attribute/);
  });

  test('u32 attributes read back unsigned and little-endian; shorter ones are refused', () => {
    assert.equal(attrU32(hex('ffffffff')), 0xffffffff);
    assert.equal(attrU32(hex('00000080')), 0x80000000);
    assert.equal(attrU32(hex('78050000 99')), 1400);
    assert.throws(() => attrU32(hex('780500')), /u32 attribute has 3 bytes/);
  });

  test('RTM_NEWLINK without a name, MTU, MAC, kind or master', () => {
    assert.deepEqual(decodeLink(hex('00 00 0100 09000000 00000000 00000000')), { index: 9, name: '', mtu: 0, mac: '', flags: 0 });
  });

  test('a dump part with NLM_F_DUMP_INTR marks the dump as interrupted', () => {
    const part = BRIDGE_PART.slice();
    part[6] = 0x12; // NLM_F_MULTI | NLM_F_DUMP_INTR
    const replies = new ReplyCollector(7);
    replies.feed(concat(part, DONE));
    assert.equal(replies.interrupted, true);
  });

  test('NLMSG_DONE carrying a negative errno fails the dump', () => {
    const replies = new ReplyCollector(7);
    assert.equal(replies.feed(hex('14000000 0300 0200 07000000 d2040000 f0ffffff')), true);
    assert.deepEqual(replies.error, { errno: 16 });
  });

  test('NLMSG_ERROR with errno 0 is an acknowledgement', () => {
    // Capped ack: error 0 + the request's nlmsghdr.
    const ack = hex('24000000 0200 0001 09000000 d2040000 00000000 | 28000000 1000 0506 09000000 00000000');
    const [msg] = decodeMessages(ack);
    assert.deepEqual(decodeError(msg!), { errno: 0 });
    const replies = new ReplyCollector(9);
    assert.equal(replies.feed(ack), true);
    assert.equal(replies.error, undefined);
    assert.deepEqual(replies.messages, []);
  });

  test('NLMSG_ERROR carries a positive errno and the extended-ack text', () => {
    // Capped + ACK_TLVS: error -17, echoed header, NLMSGERR_ATTR_MSG "test text".
    const err = hex(`34000000 0200 0003 09000000 d2040000
      efffffff
      28000000 1000 0506 09000000 00000000
      0e00 0100 7465737420746578 7400 0000`);
    const replies = new ReplyCollector(9);
    assert.equal(replies.feed(err), true);
    assert.deepEqual(replies.error, { errno: 17, extack: 'test text' });
  });

  test('an uncapped NLMSG_ERROR echoes the whole request before the TLVs', () => {
    const request = encodeMessage({ type: RTM_NEWLINK, flags: 5, seq: 3 }, encodeIfInfoMsg({}), [strAttr(IFLA_IFNAME, 'x')]);
    const tlv = hex('0800 0100 6f6b2100'); // "ok!"
    const payload = concat(hex('eaffffff'), request, tlv); // -22 = EINVAL
    const header = new Uint8Array(16);
    const v = new DataView(header.buffer);
    v.setUint32(0, 16 + payload.length, true);
    v.setUint16(4, 2, true);
    v.setUint16(6, 0x200, true); // ACK_TLVS, not capped
    v.setUint32(8, 3, true);
    const [msg] = decodeMessages(concat(header, payload));
    assert.deepEqual(decodeError(msg!), { errno: 22, extack: 'ok!' });
  });

  test('RTM_NEWADDR decodes IFA_LOCAL for IPv4 and IFA_ADDRESS for IPv6', () => {
    const v4 = decodeAddress(hex('02 18 80 00 05000000 | 0800 0100 0a000002 | 0800 0200 0a000001'));
    assert.deepEqual(v4, { family: 2, prefixlen: 24, index: 5, address: hex('0a000001') });
    const v6 = decodeAddress(hex('0a 40 80 00 05000000 | 1400 0100 fd000000000000000000000000000001'));
    assert.deepEqual(v6, { family: 10, prefixlen: 64, index: 5, address: hex('fd000000000000000000000000000001') });
  });

  test('RTM_NEWROUTE decodes header fields and RTA_DST/GATEWAY/OIF/PRIORITY; RTA_TABLE wins over rtm_table', () => {
    // A kernel prefix route: 10.9.0.0/24 dev #3, proto kernel, scope link, with RTA_TABLE and RTA_PREFSRC.
    const prefix = decodeRoute(
      hex(`02 18 00 00 fe 02 fd 01 00000000
           0800 0f00 fe000000
           0800 0100 0a090000
           0800 0700 0a090001
           0800 0400 03000000`),
    );
    assert.deepEqual(prefix, { family: 2, dstLen: 24, table: 254, protocol: 2, scope: 253, type: 1, flags: 0, dst: hex('0a090000'), oif: 3 });
    // An IPv6 default route via a gateway with a metric, in table 1000 (rtm_table says RT_TABLE_COMPAT).
    const dflt = decodeRoute(
      hex(`0a 00 00 00 fc 04 00 01 00000000
           0800 0f00 e8030000
           0800 0600 00040000
           1400 0500 fd0900000000000000000000000000fe
           0800 0400 05000000`),
    );
    assert.deepEqual(dflt, {
      family: 10,
      dstLen: 0,
      table: 1000,
      protocol: 4,
      scope: 0,
      type: 1,
      flags: 0,
      gateway: hex('fd0900000000000000000000000000fe'),
      oif: 5,
      priority: 1024,
    });
  });

  test('RTM_NEWNEIGH decodes neighbours and FDB entries', () => {
    // IPv6 neighbour with NDA_CACHEINFO (ignored).
    const neigh = decodeNeighbor(
      hex(`0a 000000 05000000 8000 00 00
           1400 0100 fd090000000000000000000000000005
           0a00 0200 020000000006 0000
           1400 0300 00000000 00000000 00000000 00000000`),
    );
    assert.deepEqual(neigh, {
      family: AF_INET6,
      index: 5,
      state: NUD_PERMANENT,
      flags: 0,
      type: 0,
      dst: hex('fd090000000000000000000000000005'),
      lladdr: hex('020000000006'),
    });
    // A vxlan FDB entry, self, with a remote and a VNI.
    const fdb = decodeNeighbor(hex('07 000000 06000000 8000 02 00 | 0a00 0200 020000000001 0000 | 0800 0100 0a000002 | 0800 0700 63000000'));
    assert.deepEqual(fdb, { family: AF_BRIDGE, index: 6, state: 0x80, flags: NTF_SELF, type: 0, dst: hex('0a000002'), lladdr: hex('020000000001'), vni: 99 });
  });

  test('short family headers are rejected', () => {
    assert.throws(() => decodeRoute(hex('02 18 00 00')), /short rtmsg/);
    assert.throws(() => decodeNeighbor(hex('02 000000 03000000')), /short ndmsg/);
  });

  test('malformed lengths are rejected', () => {
    assert.throws(() => decodeMessages(hex('40000000 1000 0000 01000000 00000000')), /malformed message/);
    assert.throws(() => decodeMessages(hex('08000000 1000 0000 01000000 00000000')), /malformed message/);
    assert.throws(() => decodeAttrs(hex('0900 0300 6100')), /malformed attribute/);
  });

  test('decodeAttrs masks the nested flag from attribute types', () => {
    // Type 0x8012 = IFLA_LINKINFO | NLA_F_NESTED.
    const attrs = decodeAttrs(hex('0c00 1280 | 0800 0100 61626300'));
    assert.deepEqual([...attrs.keys()], [IFLA_LINKINFO]);
    assert.equal(0x8012, IFLA_LINKINFO | NLA_F_NESTED);
  });
});

describe('errors', () => {
  test('errno numbers map to names', () => {
    assert.equal(errnoName(17), 'EEXIST');
    assert.equal(errnoName(19), 'ENODEV');
    assert.equal(errnoName(99), 'EADDRNOTAVAIL');
    assert.equal(errnoName(95), 'EOPNOTSUPP');
    assert.equal(errnoName(4242), 'ERRNO_4242');
  });

  test('netlinkError builds a NetlinkError with a readable message', () => {
    const err = netlinkError(17, 'create link br-x');
    assert.ok(err instanceof NetlinkError);
    assert.equal(err.errno, 17);
    assert.equal(err.code, 'EEXIST');
    assert.equal(err.message, 'create link br-x: File exists (EEXIST)');
    assert.equal(
      netlinkError(22, 'create link y', 'Unknown device type').message,
      'create link y: Invalid argument (EINVAL): Unknown device type',
    );
    assert.equal(netlinkError(4242, 'z').message, 'z: Unknown error 4242 (ERRNO_4242)');
  });
});
