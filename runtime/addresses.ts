// Strict reading of the addresses that cross the boundary: only the forms Go's
// net.ParseIP / net.ParseCIDR accept and dockerd prints (dotted-quad IPv4,
// IPv6 without a zone). ipaddr.js alone would also read `010.0.0.0` (as
// octal), `0x0a.0.0.1`, `10.1` or `fe80::1%eth0`, and then the host and the
// driver would disagree about what an address is.
import ipaddr from 'ipaddr.js';

export type Addr = ipaddr.IPv4 | ipaddr.IPv6;

const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** The address, or undefined when `text` is not a plain IPv4 or IPv6 address. */
export function parseIp(text: unknown): Addr | undefined {
  if (typeof text !== 'string' || text.length > 45) return undefined;
  if (text.includes(':')) {
    if (text.includes('%') || !ipaddr.IPv6.isValid(text)) return undefined;
    return ipaddr.IPv6.parse(text);
  }
  return DOTTED_QUAD.test(text) ? ipaddr.IPv4.parse(text) : undefined;
}

/** [address, prefix length], or undefined when `text` is not `address/length`. */
export function parseCidr(text: unknown): [Addr, number] | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0 || !/^\d{1,3}$/.test(text.slice(slash + 1))) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const len = Number(text.slice(slash + 1));
  if (!ip || len > (ip.kind() === 'ipv4' ? 32 : 128)) return undefined;
  return [ip, len];
}
