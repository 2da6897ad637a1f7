/// <reference path="../gen/hostile-driver.d.ts" />
// The escape attempts of the hostile test driver. Each is one thing a driver
// must not be able to do through wasmnet:host/netlink (see host.wit and
// runtime/broker/policy.ts); `runAttempt` performs it and says what the host
// answered. Attempts that need a link of the driver's own (a legitimate,
// allowed step) make it first and delete it afterwards, so that a refused
// attempt leaves the namespace as it found it.
//
// The netlink capability is injected, so this module runs inside the
// component (index.ts) and could run under test with a fake.
import type * as NetlinkIface from 'wasmnet:host/netlink@0.1.0';

export type Netlink = typeof NetlinkIface;

/** What the host answered to the escape step. */
export type Outcome = 'denied' | 'rate-limited' | 'invalid' | 'kernel' | 'allowed' | 'setup-failed' | 'unknown-attempt';

export interface Report {
  attempt: string;
  outcome: Outcome;
  detail: unknown;
}

export interface AttemptContext {
  nl: Netlink;
  /** Path of a network namespace never given to this driver (`hostile.netns`). */
  netns: string;
}

/** Links the driver may create: its prefix is "hx". */
export const OWN_BRIDGE = 'hxown0';
export const OWN_VETH = 'hxv0';
export const OWN_VETH_PEER = 'hxv1';
/** The one link an attempt leaves behind ('keep-own-bridge'). */
export const STALE_BRIDGE = 'hxstale';

interface Answer {
  outcome: Outcome;
  detail: unknown;
}

/** The WIT netlink-error variant carried by a failed host call (componentize-js puts it in `payload`). */
function answerOf(e: unknown): Answer {
  const p = (e as { payload?: { tag?: unknown; val?: unknown } } | null)?.payload;
  if (p && typeof p === 'object' && typeof p.tag === 'string' && ['denied', 'rate-limited', 'invalid', 'kernel'].includes(p.tag)) {
    return { outcome: p.tag as Outcome, detail: p.val };
  }
  return { outcome: 'invalid', detail: `not a netlink-error: ${describe(e)}` };
}

function describe(e: unknown): string {
  if (e && typeof e === 'object' && 'message' in e) return String((e as { message: unknown }).message);
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

/** Runs one host call: 'allowed' with its result, or the error the host returned. */
function tryCall(f: () => unknown): Answer {
  try {
    const result = f();
    return { outcome: 'allowed', detail: result === undefined ? null : result };
  } catch (e) {
    return answerOf(e);
  }
}

/**
 * Makes a link of its own (allowed), runs the escape step, and deletes the
 * link again whatever happened. A failed set-up is reported as such, so that
 * it is never mistaken for a refusal of the escape.
 */
function withOwn(ctx: AttemptContext, make: () => unknown, name: string, escape: () => Answer, opts: { up?: boolean } = {}): Answer {
  const made = tryCall(make);
  if (made.outcome !== 'allowed') return { outcome: 'setup-failed', detail: { step: `create ${name}`, ...made } };
  try {
    if (opts.up) {
      const up = tryCall(() => ctx.nl.setLinkUp(name, true));
      if (up.outcome !== 'allowed') return { outcome: 'setup-failed', detail: { step: `set ${name} up`, ...up } };
    }
    return escape();
  } finally {
    // The outcome of the clean-up is not reported: the test compares the namespace's tables instead.
    tryCall(() => ctx.nl.deleteLink(name));
  }
}

const withOwnBridge = (ctx: AttemptContext, escape: () => Answer, opts: { up?: boolean } = {}) =>
  withOwn(ctx, () => ctx.nl.createBridge({ name: OWN_BRIDGE }), OWN_BRIDGE, escape, opts);

const withOwnVeth = (ctx: AttemptContext, escape: () => Answer) =>
  withOwn(ctx, () => ctx.nl.createVeth({ name: OWN_VETH, peerName: OWN_VETH_PEER }), OWN_VETH, escape);

/** An escape that, if the host allowed it, also reports the routes it got on its own bridge. */
function withRoutes(ctx: AttemptContext, f: () => unknown): Answer {
  const a = tryCall(f);
  if (a.outcome !== 'allowed') return a;
  const routes = tryCall(() => ctx.nl.listRoutes(OWN_BRIDGE));
  return { outcome: 'allowed', detail: { result: a.detail, routesOnOwnBridge: routes.detail } };
}

/**
 * Privileged calls until the host answers rate-limited (at most `max`);
 * list-links is the cheapest call a driver may make.
 */
function exceedRate(ctx: AttemptContext, max = 10_000): Answer {
  let succeeded = 0;
  for (let i = 0; i < max; i++) {
    const a = tryCall(() => ctx.nl.listLinks());
    if (a.outcome === 'allowed') {
      succeeded++;
      continue;
    }
    return { outcome: a.outcome, detail: { succeeded, error: a.detail } };
  }
  return { outcome: 'allowed', detail: { succeeded, error: `never limited in ${max} calls` } };
}

/** Every attempt, by the name the test passes in `hostile.attempt`. */
export const attempts: Record<string, (ctx: AttemptContext) => Answer> = {
  // The host's own links: lo and eth0.
  'delete-lo': (c) => tryCall(() => c.nl.deleteLink('lo')),
  'delete-eth0': (c) => tryCall(() => c.nl.deleteLink('eth0')),
  'rename-lo': (c) => tryCall(() => c.nl.renameLink('lo', 'hxlo')),
  'rename-eth0': (c) => tryCall(() => c.nl.renameLink('eth0', 'hxeth0')),
  'down-lo': (c) => tryCall(() => c.nl.setLinkUp('lo', false)),
  'down-eth0': (c) => tryCall(() => c.nl.setLinkUp('eth0', false)),
  'mtu-eth0': (c) => tryCall(() => c.nl.setLinkMtu('eth0', 1280)),
  'mac-eth0': (c) => tryCall(() => c.nl.setLinkMac('eth0', '02:00:00:00:00:99')),
  'get-eth0': (c) => tryCall(() => c.nl.getLink('eth0')),
  'addr-lo': (c) => tryCall(() => c.nl.addAddress('lo', '10.88.0.5/24')),
  'addr-eth0': (c) => tryCall(() => c.nl.addAddress('eth0', '10.88.0.6/24')),
  'list-addr-eth0': (c) => tryCall(() => c.nl.listAddresses('eth0')),
  'default-route-eth0': (c) => tryCall(() => c.nl.addRoute({ destination: '0.0.0.0/0', link: 'eth0', metric: 10 })),
  'default-route-via-pool-gateway': (c) => tryCall(() => c.nl.addRoute({ destination: '0.0.0.0/0', gateway: '10.88.0.1' })),
  'delete-default-route': (c) => tryCall(() => c.nl.deleteRoute({ destination: '0.0.0.0/0', gateway: '192.0.2.1' })),
  'move-eth0': (c) => tryCall(() => c.nl.moveLinkToSandbox('eth0', c.netns)),
  'move-lo': (c) => tryCall(() => c.nl.moveLinkToSandbox('lo', c.netns)),
  'macvlan-on-eth0': (c) => tryCall(() => c.nl.createMacvlan({ name: 'hxmv0', parent: 'eth0', mode: 'bridge' })),

  // Names outside its prefix, kinds not granted.
  'create-outside-prefix': (c) => tryCall(() => c.nl.createBridge({ name: 'evil0' })),
  'veth-peer-outside-prefix': (c) => tryCall(() => c.nl.createVeth({ name: OWN_VETH, peerName: 'evil1' })),
  'rename-own-outside-prefix': (c) => withOwnBridge(c, () => tryCall(() => c.nl.renameLink(OWN_BRIDGE, 'evil2'))),
  'create-ungranted-kind': (c) => tryCall(() => c.nl.createDummy({ name: 'hxd0' })),

  // Another driver's link (wasmnet-bridge's "wnother").
  'delete-other-driver': (c) => tryCall(() => c.nl.deleteLink('wnother')),
  'down-other-driver': (c) => tryCall(() => c.nl.setLinkUp('wnother', false)),
  'rename-other-driver': (c) => tryCall(() => c.nl.renameLink('wnother', 'hxstolen')),
  'enslave-to-other-driver': (c) => withOwnVeth(c, () => tryCall(() => c.nl.setLinkMaster(OWN_VETH, 'wnother'))),
  'addr-other-driver-pool': (c) => withOwnBridge(c, () => tryCall(() => c.nl.addAddress(OWN_BRIDGE, '10.77.0.9/24'))),

  // A link under its own prefix that it did not create ("hxforeign", made with `ip`).
  'delete-foreign': (c) => tryCall(() => c.nl.deleteLink('hxforeign')),
  'up-foreign': (c) => tryCall(() => c.nl.setLinkUp('hxforeign', true)),
  'enslave-foreign': (c) => withOwnBridge(c, () => tryCall(() => c.nl.setLinkMaster('hxforeign', OWN_BRIDGE))),

  // Its own bridge, with addresses, routes and neighbours outside its pools.
  'addr-outside-pools': (c) => withOwnBridge(c, () => tryCall(() => c.nl.addAddress(OWN_BRIDGE, '10.99.0.5/24'))),
  'addr6-outside-pools': (c) => withOwnBridge(c, () => tryCall(() => c.nl.addAddress(OWN_BRIDGE, 'fd99::5/64'))),
  'route-outside-pools': (c) => withOwnBridge(c, () => tryCall(() => c.nl.addRoute({ destination: '10.123.0.0/16', link: OWN_BRIDGE }))),
  'route-wider-than-pool': (c) => withOwnBridge(c, () => tryCall(() => c.nl.addRoute({ destination: '10.88.0.0/16', link: OWN_BRIDGE }))),
  'route-gateway-outside-pools': (c) =>
    withOwnBridge(c, () => tryCall(() => c.nl.addRoute({ destination: '10.88.0.128/25', gateway: '192.0.2.1', link: OWN_BRIDGE }))),
  'default-route-own': (c) => withOwnBridge(c, () => tryCall(() => c.nl.addRoute({ destination: '0.0.0.0/0', link: OWN_BRIDGE }))),
  'default-route6-own': (c) => withOwnBridge(c, () => tryCall(() => c.nl.addRoute({ destination: '::/0', link: OWN_BRIDGE }))),
  'neighbor-outside-pools': (c) =>
    withOwnBridge(c, () => tryCall(() => c.nl.addNeighbor({ link: OWN_BRIDGE, ip: '192.0.2.1', mac: '02:00:00:00:00:01' }))),
  // An address inside the pool whose prefix is wider than the pool: the kernel
  // then adds a prefix route for the wider network (10.0.0.0/8; for IPv6 /0, a
  // default route) on the driver's link.
  'addr-wider-prefix': (c) => withOwnBridge(c, () => withRoutes(c, () => c.nl.addAddress(OWN_BRIDGE, '10.88.0.5/8')), { up: true }),
  'addr6-zero-prefix': (c) => withOwnBridge(c, () => withRoutes(c, () => c.nl.addAddress(OWN_BRIDGE, 'fd88::5/0')), { up: true }),

  // A namespace never given to it (no Join passed that sandbox key).
  'move-own-to-unjoined-netns': (c) => withOwnBridge(c, () => tryCall(() => c.nl.moveLinkToSandbox(OWN_BRIDGE, c.netns))),

  // Ownership is recorded by name: a link of its own that went away without
  // the host seeing it (a reboot, a sandbox's namespace deleted with the veth
  // in it, a move into a sandbox) leaves its name in the ledger. The test
  // makes the first attempt keep its bridge, then replaces that bridge with
  // one it makes with `ip`, and the second tries to delete that one.
  'keep-own-bridge': (c) => tryCall(() => c.nl.createBridge({ name: STALE_BRIDGE })),
  'delete-replaced-bridge': (c) => tryCall(() => c.nl.deleteLink(STALE_BRIDGE)),

  // The rate limit.
  'rate-limit': (c) => exceedRate(c),
};

export function runAttempt(name: string, ctx: AttemptContext): Report {
  const f = Object.hasOwn(attempts, name) ? attempts[name] : undefined;
  if (!f) return { attempt: name, outcome: 'unknown-attempt', detail: `known: ${Object.keys(attempts).join(', ')}` };
  return { attempt: name, ...f(ctx) };
}
