// `wasmnet:host/netlink`: privileged link and address operations, carried out
// by the host for the driver. Every call goes through here; the backend does
// the syscalls. Kernel errors come back to the driver as typed errors with
// their errno, never as a trap.
import type { Logger } from 'pino';
import { type LinkInfo, type NetlinkBackend, NetlinkError } from '../netlink/backend.ts';
import { witError } from '../contract.ts';
import type * as Wit from '../gen/interfaces/wasmnet-host-netlink.js';

function toWitLink(l: LinkInfo): Wit.Link {
  return { index: l.index, name: l.name, kind: l.kind, mtu: l.mtu, mac: l.mac, up: l.up, master: l.master };
}

export function netlinkImport(backend: NetlinkBackend, logger: Logger) {
  /** Runs one operation; maps failures to netlink-error. */
  function op<T>(name: string, args: unknown, fn: () => T): T {
    try {
      const result = fn();
      logger.debug({ op: name, args }, 'netlink');
      return result;
    } catch (e) {
      logger.info({ op: name, args, err: (e as Error).message }, 'netlink call failed');
      if (e instanceof NetlinkError) throw witError({ tag: 'kernel', val: { code: e.errno, name: e.code, message: e.message } });
      throw witError({ tag: 'invalid', val: e instanceof Error ? e.message : String(e) });
    }
  }

  return {
    createBridge(spec: Wit.BridgeSpec): Wit.Link {
      return op('create-bridge', spec, () => toWitLink(backend.createLink({ name: spec.name, kind: 'bridge', mtu: spec.mtu, mac: spec.mac })));
    },
    createVeth(spec: Wit.VethSpec): Wit.Link {
      return op('create-veth', spec, () =>
        toWitLink(backend.createLink({ name: spec.name, kind: 'veth', mtu: spec.mtu, peer: { name: spec.peerName, mtu: spec.mtu, mac: spec.peerMac } })),
      );
    },
    getLink(name: string): Wit.Link | undefined {
      return op('get-link', { name }, () => {
        const l = backend.getLink(name);
        return l && toWitLink(l);
      });
    },
    setLinkUp(name: string, up: boolean): void {
      op('set-link-up', { name, up }, () => backend.setLinkUp(name, up));
    },
    setLinkMtu(name: string, mtu: number): void {
      op('set-link-mtu', { name, mtu }, () => backend.setLinkMtu(name, mtu));
    },
    setLinkMaster(name: string, master: string | undefined): void {
      op('set-link-master', { name, master }, () => backend.setLinkMaster(name, master ?? null));
    },
    deleteLink(name: string): void {
      op('delete-link', { name }, () => backend.deleteLink(name));
    },
    addAddress(linkName: string, cidr: string): void {
      op('add-address', { linkName, cidr }, () => backend.addAddress(linkName, cidr));
    },
    deleteAddress(linkName: string, cidr: string): void {
      op('delete-address', { linkName, cidr }, () => backend.deleteAddress(linkName, cidr));
    },
    listAddresses(linkName: string): string[] {
      return op('list-addresses', { linkName }, () => backend.listAddresses(linkName));
    },
  };
}
