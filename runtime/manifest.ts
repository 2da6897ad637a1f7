// A driver's manifest: who it is and what it asks for. The operator grants a
// manifest for one component digest (runtime/grants.ts); the host then gives
// the component exactly the granted host interfaces, within the granted
// scopes. Validated here with valibot, the single source of its type.
import * as v from 'valibot';
import { CONTRACT_VERSION } from './contract.ts';

/** Host interfaces a driver may ask for, by short name (`wasmnet:host/<name>`). */
export const hostInterfaces = ['log', 'store', 'netlink'] as const;
export type HostInterface = (typeof hostInterfaces)[number];

export const creatableKinds = ['bridge', 'veth', 'dummy', 'vxlan', 'macvlan', 'ipvlan'] as const;

/**
 * Prefixes that would reach links a host already has or other software
 * makes: a driver's prefix may not be one of these nor a prefix of one.
 */
const reservedPrefixes = ['lo', 'eth', 'en', 'wl', 'ww', 'ib', 'docker', 'br-', 'veth', 'virbr', 'vnet', 'tun', 'tap', 'bond', 'team', 'cni', 'flannel', 'cali', 'weave', 'vxlan', 'wg', 'tailscale', 'zt', 'ovs', 'podman', 'lxc', 'lxd', 'kube'];

const LinkPrefix = v.pipe(
  v.string(),
  v.regex(/^[a-z][a-z0-9]{1,7}$/, 'must be 2 to 8 lowercase letters or digits, starting with a letter'),
  v.check((p) => !reservedPrefixes.some((r) => r.startsWith(p) || p.startsWith(r)), `must not overlap a reserved prefix (${reservedPrefixes.join(', ')})`),
);

const IfName = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,15}$/, 'must be an interface name'));

export const Manifest = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be lowercase letters, digits, ".", "_" or "-" (up to 63)')),
  version: v.pipe(v.string(), v.regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/, 'must be a semantic version such as 1.2.3')),
  contract: v.literal(CONTRACT_VERSION, `must be ${CONTRACT_VERSION}, the contract this host speaks`),
  publisher: v.optional(v.pipe(v.string(), v.maxLength(200))),
  description: v.optional(v.pipe(v.string(), v.maxLength(1000))),
  capabilities: v.strictObject({
    log: v.optional(v.strictObject({})),
    store: v.optional(v.strictObject({})),
    netlink: v.optional(
      v.strictObject({
        /** Every link the driver creates is named with this prefix. */
        linkPrefix: LinkPrefix,
        /** Kinds of link it may create. */
        linkKinds: v.pipe(v.array(v.picklist(creatableKinds)), v.minLength(1), v.maxLength(creatableKinds.length)),
        /** Host links it may use as a parent (macvlan, ipvlan) or underlay (vxlan); it may not change them. */
        parents: v.optional(v.pipe(v.array(IfName), v.maxLength(16)), []),
        /** UDP ports vxlan links may use (the kernel's default is 8472; IANA's is 4789). */
        vxlanPorts: v.optional(v.pipe(v.array(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535))), v.maxLength(8)), [4789, 8472]),
        /** Privileged calls per second, on average (bursts up to twice that). */
        callsPerSecond: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000)), 200),
      }),
    ),
  }),
});

export type Manifest = v.InferOutput<typeof Manifest>;
export type NetlinkGrant = NonNullable<Manifest['capabilities']['netlink']>;

export class ManifestError extends Error {
  override name = 'ManifestError';
}

export function parseManifest(json: unknown, source = 'manifest'): Manifest {
  const r = v.safeParse(Manifest, json);
  if (!r.success) {
    throw new ManifestError(`${source}: ${r.issues.map((i) => `${v.getDotPath(i) ?? '(root)'}: ${i.message}`).join('; ')}`);
  }
  return r.output;
}

/** The WIT name of a host interface at this contract version. */
export const witName = (i: HostInterface) => `wasmnet:host/${i}@${CONTRACT_VERSION}`;

/** Interfaces of the contract itself, which every driver may import. */
export const contractImports = [`wasmnet:driver/types@${CONTRACT_VERSION}`, `wasmnet:driver/callbacks@${CONTRACT_VERSION}`];

/**
 * Checks a component's imports against its manifest: every host interface it
 * imports must be requested, and nothing unknown may be imported.
 */
export function checkImports(imports: string[], manifest: Manifest): void {
  const requested = new Set(hostInterfaces.filter((i) => manifest.capabilities[i] !== undefined).map(witName));
  for (const i of imports) {
    if (contractImports.includes(i)) continue;
    if (!requested.has(i)) {
      const known = hostInterfaces.map(witName).includes(i);
      throw new ManifestError(known ? `the component imports ${i}, which its manifest does not request` : `the component imports ${i}, which this host does not offer`);
    }
  }
}

/** The privileges of a manifest, one line each, in the manner of `docker plugin install`. */
export function describePrivileges(m: Manifest): string[] {
  const lines: string[] = [];
  const c = m.capabilities;
  if (c.log) lines.push('log: [write to the host log]');
  if (c.store) lines.push('store: [a key-value store of its own]');
  if (c.netlink) {
    const n = c.netlink;
    lines.push(`netlink links: [create ${n.linkKinds.join(', ')} named ${n.linkPrefix}*; change and delete only links it created]`);
    if (n.parents.length > 0) lines.push(`netlink parents: [${n.parents.join(', ')}] (as parent or underlay, unchanged)`);
    lines.push('netlink addresses, routes, neighbours: [inside the pools dockerd gives its networks]');
    lines.push('netlink namespaces: [only sandboxes dockerd joins to it]');
    lines.push(`netlink rate: [${n.callsPerSecond} calls per second]`);
  }
  if (lines.length === 0) lines.push('none');
  return lines;
}
