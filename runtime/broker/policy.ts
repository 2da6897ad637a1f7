// The least-privilege rules for netlink, checked by the broker before every
// call (netlink.ts). A network driver legitimately needs: links of its own
// (named under its prefix, of the kinds it was granted), the host links the
// operator named as parents, addresses/routes/neighbours inside the pools
// dockerd gave its networks, and the namespaces of the sandboxes dockerd
// joined to it. Nothing else.
import ipaddr from 'ipaddr.js';
import { type Addr, parseCidr as parseStrictCidr, parseIp as parseStrictIp } from '../addresses.ts';
import type { NetlinkGrant } from '../manifest.ts';
import type { DriverScopes, LinkLedger } from '../store/store.ts';

/** Refused by policy; the broker answers netlink-error.denied and audits it. */
export class PolicyDenied extends Error {
  override name = 'PolicyDenied';
}

/** Over the rate limit; answered as netlink-error.rate-limited. */
export class RateLimited extends Error {
  override name = 'RateLimited';
}

/** A token bucket: `rate` calls per second on average, bursts up to `burst`. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly rate: number;
  private readonly burst: number;
  private readonly now: () => number;

  constructor(rate: number, burst = rate * 2, now: () => number = () => performance.now()) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.now = now;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}


function parseIp(text: string, what: string): Addr {
  const ip = parseStrictIp(text);
  if (!ip) throw new PolicyDenied(`${what}: ${JSON.stringify(text)} is not an IP address`);
  return ip;
}

function parseCidr(text: string, what: string): [Addr, number] {
  const cidr = parseStrictCidr(text);
  if (!cidr) throw new PolicyDenied(`${what}: ${JSON.stringify(text)} is not a CIDR`);
  return cidr;
}

export class NetlinkPolicy {
  readonly driver: string;
  private readonly grant: NetlinkGrant;
  private readonly ledger: LinkLedger;
  private readonly scopes: DriverScopes;
  private readonly bucket: TokenBucket;
  /** The interface index a link of that name has now, if there is one. */
  private readonly currentIndex: (name: string) => number | undefined;

  constructor(driver: string, grant: NetlinkGrant, ledger: LinkLedger, scopes: DriverScopes, currentIndex: (name: string) => number | undefined) {
    this.driver = driver;
    this.grant = grant;
    this.ledger = ledger;
    this.scopes = scopes;
    this.currentIndex = currentIndex;
    this.bucket = new TokenBucket(grant.callsPerSecond);
  }

  /** A vxlan UDP port the operator allowed. */
  vxlanPort(port: number | undefined): void {
    const p = port ?? 8472;
    if (!this.grant.vxlanPorts.includes(p)) throw new PolicyDenied(`vxlan port ${p} was not granted (granted: ${this.grant.vxlanPorts.join(', ')})`);
  }

  rate(): void {
    if (!this.bucket.take()) throw new RateLimited(`over ${this.grant.callsPerSecond} netlink calls per second`);
  }

  /** A name the driver may give a new link. */
  newName(name: string): void {
    if (typeof name !== 'string' || !name.startsWith(this.grant.linkPrefix)) {
      throw new PolicyDenied(`link name ${JSON.stringify(name)} is outside the driver's prefix "${this.grant.linkPrefix}"`);
    }
  }

  kind(kind: string): void {
    if (!(this.grant.linkKinds as string[]).includes(kind)) throw new PolicyDenied(`creating ${kind} links was not granted (granted: ${this.grant.linkKinds.join(', ')})`);
  }

  /**
   * A link the driver created, which it may change or delete: the name is in
   * its ledger and the link of that name is the very link it created (same
   * interface index). A link that went away and whose name was taken by
   * another is not the driver's; its stale entry is dropped.
   */
  owned(name: string): void {
    const index = typeof name === 'string' ? this.ledger.indexOf(this.driver, name) : undefined;
    if (index === undefined) throw new PolicyDenied(`link ${JSON.stringify(name)} was not created by this driver`);
    const current = this.currentIndex(name);
    if (current !== undefined && current !== index) {
      this.ledger.remove(this.driver, name);
      throw new PolicyDenied(`link ${JSON.stringify(name)} is not the link this driver created (that one is gone; this one is another's)`);
    }
  }

  /** A host link the operator allowed as parent or underlay. */
  parent(name: string): void {
    if (!this.grant.parents.includes(name)) throw new PolicyDenied(`link ${JSON.stringify(name)} is not a parent link granted to this driver (granted: ${this.grant.parents.join(', ') || 'none'})`);
  }

  visible(name: string): boolean {
    return this.ledger.indexOf(this.driver, name) !== undefined || this.grant.parents.includes(name);
  }

  private parsedFrom: string[] | undefined;
  private parsed: [Addr, number][] = [];

  /** The pools, parsed once for each version of the list the store hands out. */
  private pools(): [Addr, number][] {
    const current = this.scopes.pools(this.driver);
    if (current !== this.parsedFrom) {
      this.parsed = current.map((c) => ipaddr.parseCIDR(c));
      this.parsedFrom = current;
    }
    return this.parsed;
  }

  /** An IP inside one of the pools of the driver's networks. */
  ipInPools(ip: string, what: string): void {
    const a = parseIp(ip, what);
    if (!this.pools().some((p) => p[0].kind() === a.kind() && a.match(p))) throw new PolicyDenied(`${what} ${ip} is outside the pools of this driver's networks`);
  }

  /**
   * An address with its prefix that lies wholly inside one pool: the address
   * in the pool and the prefix no wider than the pool's, since the kernel adds
   * a route for the prefix (fd88::5/0 would be a default route).
   */
  addressInPools(cidr: string, what: string): void {
    const [a, len] = parseCidr(cidr, what);
    const inside = this.pools().some(([p, plen]) => p.kind() === a.kind() && len >= plen && a.match(p, plen));
    if (!inside) throw new PolicyDenied(`${what} ${cidr} is outside the pools of this driver's networks (or its prefix is wider than the pool's)`);
  }

  /** A destination network wholly inside one pool. */
  networkInPools(cidr: string, what: string): void {
    const [a, len] = parseCidr(cidr, what);
    const inside = this.pools().some(([p, plen]) => p.kind() === a.kind() && len >= plen && a.match(p, plen));
    if (!inside) throw new PolicyDenied(`${what} ${cidr} is outside the pools of this driver's networks`);
  }

  sandbox(key: string): void {
    if (typeof key !== 'string' || !this.scopes.hasSandbox(this.driver, key)) throw new PolicyDenied(`namespace ${JSON.stringify(key)} is not a sandbox dockerd joined to this driver`);
  }
}
