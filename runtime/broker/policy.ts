// The least-privilege rules for netlink, checked by the broker before every
// call (netlink.ts). A network driver legitimately needs: links of its own
// (named under its prefix, of the kinds it was granted), the host links the
// operator named as parents, addresses/routes/neighbours inside the pools
// dockerd gave its networks, and the namespaces of the sandboxes dockerd
// joined to it. Nothing else.
import ipaddr from 'ipaddr.js';
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

type Addr = ipaddr.IPv4 | ipaddr.IPv6;

// The family is chosen by the text (':' means IPv6) rather than by trying
// one parser after the other: this runs on every privileged call.
function parseIp(text: string, what: string): Addr {
  try {
    if (typeof text !== 'string') throw new Error();
    return text.includes(':') ? ipaddr.IPv6.parse(text) : ipaddr.IPv4.parse(text);
  } catch {
    throw new PolicyDenied(`${what}: ${JSON.stringify(text)} is not an IP address`);
  }
}

function parseCidr(text: string, what: string): [Addr, number] {
  try {
    if (typeof text !== 'string') throw new Error();
    return text.includes(':') ? ipaddr.IPv6.parseCIDR(text) : ipaddr.IPv4.parseCIDR(text);
  } catch {
    throw new PolicyDenied(`${what}: ${JSON.stringify(text)} is not a CIDR`);
  }
}

export class NetlinkPolicy {
  readonly driver: string;
  private readonly grant: NetlinkGrant;
  private readonly ledger: LinkLedger;
  private readonly scopes: DriverScopes;
  private readonly bucket: TokenBucket;

  constructor(driver: string, grant: NetlinkGrant, ledger: LinkLedger, scopes: DriverScopes) {
    this.driver = driver;
    this.grant = grant;
    this.ledger = ledger;
    this.scopes = scopes;
    this.bucket = new TokenBucket(grant.callsPerSecond);
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

  /** A link the driver created, which it may change or delete. */
  owned(name: string): void {
    if (typeof name !== 'string' || !this.ledger.owns(this.driver, name)) throw new PolicyDenied(`link ${JSON.stringify(name)} was not created by this driver`);
  }

  /** A host link the operator allowed as parent or underlay. */
  parent(name: string): void {
    if (!this.grant.parents.includes(name)) throw new PolicyDenied(`link ${JSON.stringify(name)} is not a parent link granted to this driver (granted: ${this.grant.parents.join(', ') || 'none'})`);
  }

  visible(name: string): boolean {
    return this.ledger.owns(this.driver, name) || this.grant.parents.includes(name);
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

  /** A CIDR (address with its prefix) whose address is inside a pool. */
  addressInPools(cidr: string, what: string): void {
    const [a] = parseCidr(cidr, what);
    this.ipInPools(a.toString(), what);
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
