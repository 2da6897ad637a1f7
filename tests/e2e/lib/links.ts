// The host namespace's links as `ip -j -d link show` reports them, for the
// end-to-end tests' checks that a driver left nothing behind.
import { execFileSync } from 'node:child_process';

export interface Link {
  ifname: string;
  /** For a macvlan: its parent; for a veth: its peer. */
  link?: string;
  link_netnsid?: number;
  address?: string;
  master?: string;
  mtu?: number;
  operstate?: string;
  link_type?: string;
  linkinfo?: { info_kind?: string; info_data?: { mode?: string } };
}

export function hostLinks(): Link[] {
  return JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show'], { encoding: 'utf8' })) as Link[];
}

export function linkExists(name: string): boolean {
  return hostLinks().some((l) => l.ifname === name);
}
