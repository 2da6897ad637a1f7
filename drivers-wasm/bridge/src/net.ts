// Address helpers of the bridge driver: parsing of the IP, CIDR and MAC text
// forms that cross the WIT boundary, and the MAC derivations Docker uses.
// Pure functions, no host capability needed.

export interface Cidr {
  family: 4 | 6;
  /** The address part as written (`172.18.0.1`). */
  ip: string;
  /** The address as bytes (4 or 16). */
  bytes: number[];
  prefix: number;
}

/** Parses a dotted-quad IPv4 address; null when malformed. */
export function parseIPv4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    // Decimal only, no leading zeros (Go's net.ParseIP refuses them too).
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/** Parses an IPv6 address (with `::` and an optional dotted IPv4 tail); null when malformed. */
export function parseIPv6(s: string): number[] | null {
  if (s.length === 0 || s.includes('%')) return null;
  let head = s;
  let tail4: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.slice(lastColon + 1).includes('.')) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return null;
    tail4 = v4;
    head = s.slice(0, lastColon + 1);
    // `::1.2.3.4` leaves `::`, `a:b::1.2.3.4` leaves `a:b::`, `a:b:c:d:e:f:1.2.3.4` leaves `a:...:f:`.
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const groupsWanted = 8 - tail4.length / 2;
  const parseGroups = (t: string): number[] | null => {
    if (t === '') return [];
    const out: number[] = [];
    for (const g of t.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  const dbl = head.indexOf('::');
  if (dbl >= 0) {
    if (head.indexOf('::', dbl + 1) >= 0) return null;
    const left = parseGroups(head.slice(0, dbl));
    const right = parseGroups(head.slice(dbl + 2));
    if (!left || !right) return null;
    const missing = groupsWanted - left.length - right.length;
    if (missing < 1) return null;
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    const all = parseGroups(head);
    if (!all || all.length !== groupsWanted) return null;
    groups = all;
  }
  const bytes: number[] = [];
  for (const g of groups) bytes.push(g >> 8, g & 0xff);
  return [...bytes, ...tail4];
}

/** Parses `addr/len`; null when malformed or the prefix is out of range. */
export function parseCidr(s: string): Cidr | null {
  const slash = s.indexOf('/');
  if (slash < 0 || slash !== s.lastIndexOf('/')) return null;
  const ip = s.slice(0, slash);
  const len = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(len)) return null;
  const prefix = Number(len);
  const v4 = parseIPv4(ip);
  if (v4) return prefix <= 32 ? { family: 4, ip, bytes: v4, prefix } : null;
  const v6 = parseIPv6(ip);
  if (v6) return prefix <= 128 ? { family: 6, ip, bytes: v6, prefix } : null;
  return null;
}

/** Whether the address `addr` lies inside the network `net` (same family). */
export function cidrContains(net: Cidr, addr: Cidr): boolean {
  if (net.family !== addr.family) return false;
  let bits = net.prefix;
  for (let i = 0; i < net.bytes.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((net.bytes[i] ?? 0) & mask) !== ((addr.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** Formats 6 bytes as `aa:bb:cc:dd:ee:ff`. */
export function formatMac(bytes: number[]): string {
  return bytes.map(hex2).join(':');
}

/** A MAC in the canonical form, lower case; null when malformed. */
export function normalizeMac(s: string): string | null {
  const m = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(s);
  if (!m) return null;
  return [m[1], m[3], m[4], m[5], m[6], m[7]].join(':').toLowerCase();
}

/**
 * Docker's `GenerateMACFromIP`: 02:42 followed by the four bytes of the IPv4
 * address, so a container's MAC follows its address.
 */
export function macFromIPv4(bytes: number[]): string {
  if (bytes.length !== 4) throw new RangeError('macFromIPv4 needs 4 bytes');
  return formatMac([0x02, 0x42, ...bytes]);
}

/**
 * A MAC derived from a string (the endpoint ID) when there is no IPv4
 * address: 48 bits of its FNV-1a 64 hash, with the locally administered bit
 * set and the multicast bit cleared. It never starts with 02:42, so it cannot
 * collide with an address-derived MAC. Deterministic: the same endpoint gets
 * the same MAC whichever instance of the driver computes it.
 */
export function macFromString(s: string): string {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  const feed = (b: number): void => {
    h ^= BigInt(b);
    h = (h * prime) & mask;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    feed(c & 0xff);
    if (c > 0xff) feed(c >> 8);
  }
  const bytes: number[] = [];
  for (let i = 0; i < 6; i++) bytes.push(Number((h >> BigInt(8 * (7 - i))) & 0xffn));
  bytes[0] = ((bytes[0] ?? 0) & 0xfc) | 0x02;
  if (bytes[0] === 0x02 && bytes[1] === 0x42) bytes[1] = 0x43;
  return formatMac(bytes);
}
