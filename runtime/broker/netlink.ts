// `wasmnet:host/netlink`: privileged network operations, carried out by the
// host for one driver. Every call is rate limited, checked against the
// driver's grant (policy.ts), run on the backend, and audited (audit.ts).
// Kernel errors come back to the driver as typed errors with their errno,
// never as a trap.
import type { Logger } from 'pino';
import type { LinkInfo, NetlinkBackend } from '../netlink/backend.ts';
import type { AuditLog, DriverScopes, LinkLedger } from '../store/store.ts';
import type { NetlinkGrant } from '../manifest.ts';
import type * as Wit from '../gen/interfaces/wasmnet-host-netlink.js';
import { NetlinkPolicy } from './policy.ts';
import { auditedCall, type CallerIdentity } from './audit.ts';
import type { NetlinkWorkers } from '../netlink/workers.ts';

function toWitLink(l: LinkInfo): Wit.Link {
  return { index: l.index, name: l.name, kind: l.kind, mtu: l.mtu, mac: l.mac, up: l.up, master: l.master };
}

export interface NetlinkBrokerDeps {
  /** Answers the policy's look-ups, and runs operations when there are no workers. */
  backend: NetlinkBackend;
  /**
   * Runs operations off the host's thread (a driver in a sandbox process waits
   * for its answer anyway); without them, operations are synchronous, as a
   * driver running in the host's own thread needs.
   */
  workers?: NetlinkWorkers;
  grant: NetlinkGrant;
  who: CallerIdentity;
  ledger: LinkLedger;
  scopes: DriverScopes;
  audit: AuditLog;
  logger: Logger;
}

type Maybe<T> = T | Promise<T>;
/** The import; with netlink workers its functions answer with promises (the sandbox waits for them). */
type NetlinkImport = { [K in keyof typeof Wit]: (...args: Parameters<(typeof Wit)[K]>) => Maybe<ReturnType<(typeof Wit)[K]>> };
type AsyncBackend = { [K in keyof NetlinkBackend]: (...args: Parameters<NetlinkBackend[K]>) => Maybe<ReturnType<NetlinkBackend[K]>> };

export function netlinkImport(d: NetlinkBrokerDeps): NetlinkImport {
  const policy = new NetlinkPolicy(d.who.driver, d.grant, d.ledger, d.scopes, (name) => d.backend.linkIndex(name));
  const call = auditedCall(d.audit, d.who, d.logger);
  const driver = d.who.driver;
  /** The backend, or the workers: each operation's result, or a promise of it. */
  const nl = new Proxy({} as AsyncBackend, {
    get: (_t, op: string) => (...args: unknown[]) => (d.workers ? d.workers.run(op, args) : (d.backend as unknown as Record<string, (...a: unknown[]) => unknown>)[op]!(...args)),
  });
  /** Applies `f` to a result that may still be coming. */
  const then = <T, U>(x: T | Promise<T>, f: (v: T) => U): U | Promise<U> => (x instanceof Promise ? x.then(f) : f(x));
  /** Every call pays the rate limit first, then its own checks. */
  const checked = (...checks: (() => void)[]) => () => {
    policy.rate();
    for (const c of checks) c();
  };
  /** Records what was created, by name and index (a veth's peer too). */
  const created = (made: LinkInfo | Promise<LinkInfo>, peer?: string) =>
    then(made, (l) => {
      d.ledger.add(driver, l.name, l.index, peer);
      const p = peer === undefined ? undefined : d.backend.getLink(peer);
      if (p) d.ledger.add(driver, p.name, p.index, l.name);
      return toWitLink(l);
    });
  /** After ENODEV the name is no longer the driver's link: forget it. */
  const gone = <T>(name: string, run: () => T | Promise<T>): T | Promise<T> => {
    const forget = (e: unknown): never => {
      if ((e as { code?: string }).code === 'ENODEV') d.ledger.remove(driver, name);
      throw e;
    };
    try {
      const r = run();
      return r instanceof Promise ? r.catch(forget) : r;
    } catch (e) {
      return forget(e);
    }
  };

  return {
    createBridge: (spec) =>
      call('create-bridge', { ...spec }, checked(() => policy.kind('bridge'), () => policy.newName(spec.name)), () =>
        created(nl.createLink({ name: spec.name, kind: 'bridge', mtu: spec.mtu, mac: spec.mac })),
      ),
    createVeth: (spec) =>
      call('create-veth', { ...spec }, checked(() => policy.kind('veth'), () => policy.newName(spec.name), () => policy.newName(spec.peerName)), () =>
        created(nl.createLink({ name: spec.name, kind: 'veth', mtu: spec.mtu, peer: { name: spec.peerName, mtu: spec.mtu, mac: spec.peerMac } }), spec.peerName),
      ),
    createDummy: (spec) =>
      call('create-dummy', { ...spec }, checked(() => policy.kind('dummy'), () => policy.newName(spec.name)), () =>
        created(nl.createLink({ name: spec.name, kind: 'dummy', mtu: spec.mtu })),
      ),
    createVxlan: (spec) =>
      call(
        'create-vxlan',
        { ...spec },
        checked(() => policy.kind('vxlan'), () => policy.newName(spec.name), () => policy.vxlanPort(spec.port), () => spec.underlay !== undefined && policy.parent(spec.underlay)),
        () =>
          created(
            nl.createLink({
              name: spec.name,
              kind: 'vxlan',
              mtu: spec.mtu,
              vxlan: { vni: spec.vni, local: spec.local, group: spec.group, port: spec.port, underlay: spec.underlay, learning: spec.learning },
            }),
          ),
      ),
    createMacvlan: (spec) =>
      call('create-macvlan', { ...spec }, checked(() => policy.kind('macvlan'), () => policy.newName(spec.name), () => policy.parent(spec.parent)), () =>
        created(nl.createLink({ name: spec.name, kind: 'macvlan', mtu: spec.mtu, mac: spec.mac, macvlan: { parent: spec.parent, mode: spec.mode } })),
      ),
    createIpvlan: (spec) =>
      call('create-ipvlan', { ...spec }, checked(() => policy.kind('ipvlan'), () => policy.newName(spec.name), () => policy.parent(spec.parent)), () =>
        created(nl.createLink({ name: spec.name, kind: 'ipvlan', mtu: spec.mtu, ipvlan: { parent: spec.parent, mode: spec.mode } })),
      ),
    // A look-up of a link the driver may not see is refused (and audited), like any other use of it.
    getLink: (name) =>
      policy.visible(name)
        ? call('get-link', { name }, checked(), () => then(nl.getLink(name), (l) => l && toWitLink(l)))
        : call('get-link', { name }, checked(() => policy.owned(name)), () => undefined),
    listLinks: () =>
      call('list-links', {}, checked(), () =>
        then(nl.listLinks(), (all) => {
          const mine = new Set(d.ledger.list(driver));
          return all.filter((l) => mine.has(l.name)).map(toWitLink);
        }),
      ),
    setLinkUp: (name, up) => call('set-link-up', { name, up }, checked(() => policy.owned(name)), () => nl.setLinkUp(name, up)),
    setLinkMtu: (name, mtu) => call('set-link-mtu', { name, mtu }, checked(() => policy.owned(name)), () => nl.setLinkMtu(name, mtu)),
    setLinkMac: (name, mac) => call('set-link-mac', { name, mac }, checked(() => policy.owned(name)), () => nl.setLinkMac(name, mac)),
    setLinkMaster: (name, master) =>
      call('set-link-master', { name, master }, checked(() => policy.owned(name), () => master !== undefined && policy.owned(master)), () => nl.setLinkMaster(name, master ?? null)),
    renameLink: (name, newName) =>
      call('rename-link', { name, newName }, checked(() => policy.owned(name), () => policy.newName(newName)), () =>
        then(nl.renameLink(name, newName), () => d.ledger.rename(driver, name, newName)),
      ),
    moveLinkToSandbox: (name, sandboxKey) =>
      call('move-link-to-sandbox', { name, sandboxKey }, checked(() => policy.owned(name), () => policy.sandbox(sandboxKey)), () =>
        // It leaves the host's namespace, and the driver's sight.
        then(nl.moveLinkToNetns(name, sandboxKey), () => d.ledger.remove(driver, name)),
      ),
    deleteLink: (name) =>
      call('delete-link', { name }, checked(() => policy.owned(name)), () =>
        gone(name, () => then(nl.deleteLink(name), () => d.ledger.remove(driver, name))),
      ),
    setBridgePort: (name, settings) => call('set-bridge-port', { name, ...settings }, checked(() => policy.owned(name)), () => nl.setBridgePort(name, settings)),

    addAddress: (linkName, cidr) =>
      call('add-address', { linkName, cidr }, checked(() => policy.owned(linkName), () => policy.addressInPools(cidr, 'address')), () => nl.addAddress(linkName, cidr)),
    deleteAddress: (linkName, cidr) =>
      call('delete-address', { linkName, cidr }, checked(() => policy.owned(linkName), () => policy.addressInPools(cidr, 'address')), () => nl.deleteAddress(linkName, cidr)),
    listAddresses: (linkName) => call('list-addresses', { linkName }, checked(() => policy.owned(linkName)), () => nl.listAddresses(linkName)),

    addRoute: (route) => call('add-route', { ...route }, checked(...routeChecks(policy, route)), () => nl.addRoute(route)),
    deleteRoute: (route) => call('delete-route', { ...route }, checked(...routeChecks(policy, route)), () => nl.deleteRoute(route)),
    listRoutes: (linkName) => call('list-routes', { linkName }, checked(() => policy.owned(linkName)), () => nl.listRoutes(linkName)),

    addNeighbor: (n) => call('add-neighbor', { ...n }, checked(() => policy.owned(n.link), () => policy.ipInPools(n.ip, 'neighbour')), () => nl.addNeighbor(n)),
    deleteNeighbor: (n) => call('delete-neighbor', { ...n }, checked(() => policy.owned(n.link), () => policy.ipInPools(n.ip, 'neighbour')), () => nl.deleteNeighbor(n)),
    listNeighbors: (linkName) => call('list-neighbors', { linkName }, checked(() => policy.owned(linkName)), () => nl.listNeighbors(linkName)),

    // FDB entries point at remote tunnel endpoints on the underlay, which are not in the pools.
    addFdbEntry: (e) => call('add-fdb-entry', { ...e }, checked(() => policy.owned(e.link)), () => nl.addFdbEntry(e)),
    deleteFdbEntry: (e) => call('delete-fdb-entry', { ...e }, checked(() => policy.owned(e.link)), () => nl.deleteFdbEntry(e)),
    listFdbEntries: (linkName) => call('list-fdb-entries', { linkName }, checked(() => policy.owned(linkName)), () => nl.listFdbEntries(linkName)),
  };
}

/** A route must leave through an owned link, to a destination inside the pools, via a gateway inside the pools. */
function routeChecks(policy: NetlinkPolicy, route: Wit.Route): (() => void)[] {
  return [
    () => {
      if (route.link === undefined && route.gateway === undefined) throw new Error('a route needs a link or a gateway');
    },
    () => route.link !== undefined && policy.owned(route.link),
    () => policy.networkInPools(route.destination, 'route destination'),
    () => route.gateway !== undefined && policy.ipInPools(route.gateway, 'route gateway'),
  ];
}
